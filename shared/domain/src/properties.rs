//! Properties of the whole domain, over generated inputs: whatever the write
//! path accepts, the read path (the same parsers, run on what was stored)
//! reads back unchanged, and arithmetic never leaves its bounds.

use proptest::prelude::*;

use crate::money::MAX_MINOR;
use crate::strategies::{self, client_text};
use crate::{Email, Money, OrderRequest, OrderStatus, Product, ProductDraft, ProductId, Sku, UserId};

/// `PROPTEST_CASES` if set, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

proptest! {
    // Fewer cases than proptest's 256 (orders have up to 50 lines); set
    // PROPTEST_CASES for a longer run.
    #![proptest_config(ProptestConfig { cases: cases(64), ..ProptestConfig::default() })]

    #[test]
    fn money_arithmetic_stays_within_the_bound(a in strategies::money(), quantity in 1_u32..=1000, b in strategies::money()) {
        if let Some(product) = a.times(quantity) {
            prop_assert!(product.minor() <= MAX_MINOR);
            prop_assert_eq!(product.minor(), a.minor() * u64::from(quantity));
            prop_assert!(Money::new(product.minor(), product.currency()).is_ok());
        } else {
            prop_assert!(a.minor() * u64::from(quantity) > MAX_MINOR);
        }
        let b = Money::new(b.minor(), a.currency()).unwrap();
        match a.plus(&b) {
            Some(sum) => prop_assert_eq!(sum.minor(), a.minor() + b.minor()),
            None => prop_assert!(a.minor() + b.minor() > MAX_MINOR),
        }
    }

    #[test]
    fn every_priced_order_can_be_read_back(order in strategies::order_in_any_status()) {
        let total = Money::new(order.total.minor(), order.total.currency());
        prop_assert!(total.is_ok(), "total {} beyond the bound", order.total.minor());
        let mut sum = 0_u64;
        for line in &order.lines {
            prop_assert!(Money::new(line.unit_price.minor(), line.unit_price.currency()).is_ok());
            prop_assert_eq!(Sku::parse(line.sku.as_ref()).unwrap(), line.sku.clone());
            prop_assert_eq!(ProductId::parse(&line.product_id.to_string()).unwrap(), line.product_id);
            sum += line.unit_price.minor() * u64::from(line.quantity.get());
        }
        prop_assert_eq!(sum, order.total.minor());
        prop_assert_eq!(OrderStatus::parse(order.status.as_str()).unwrap(), order.status);
    }

    #[test]
    fn pricing_refuses_rather_than_writes_an_unreadable_total(
        price in 0..=MAX_MINOR, quantities in proptest::collection::vec(1_i64..=1000, 1..=50),
    ) {
        let currency = crate::Currency::parse("EUR").unwrap();
        let products: Vec<Product> = quantities
            .iter()
            .map(|_| {
                let mut product = ProductDraft::parse("SKU-1", "Thing", None, price as i64, "EUR", 1, None)
                    .unwrap()
                    .into_product(time::OffsetDateTime::UNIX_EPOCH);
                product.id = ProductId::generate();
                product
            })
            .collect();
        let lines: Vec<(String, i64)> = products.iter().zip(&quantities).map(|(p, q)| (p.id.to_string(), *q)).collect();
        let exact: u128 = quantities.iter().map(|q| u128::from(price) * (*q as u128)).sum();
        let priced = OrderRequest::parse(&lines).unwrap().price(UserId::generate(), &products, time::OffsetDateTime::UNIX_EPOCH);
        match priced {
            Ok(order) => {
                prop_assert!(exact <= u128::from(MAX_MINOR), "accepted a total of {} minor units", exact);
                prop_assert_eq!(u128::from(order.total.minor()), exact);
                prop_assert_eq!(order.total.currency(), currency);
            }
            Err(error) => {
                prop_assert_eq!(error, crate::PricingError::TooLarge);
                prop_assert!(exact > u128::from(MAX_MINOR));
            }
        }
    }

    #[test]
    fn accepted_emails_and_skus_parse_back_to_themselves(raw in client_text(80), sku in "[ -~]{0,40}") {
        if let Ok(email) = Email::parse(&raw) {
            prop_assert_eq!(Email::parse(email.as_ref()).unwrap(), email);
        }
        if let Ok(parsed) = Sku::parse(&sku) {
            prop_assert_eq!(Sku::parse(parsed.as_ref()).unwrap(), parsed);
        }
    }

    #[test]
    fn accepted_products_parse_back_to_themselves(product in strategies::product()) {
        let again = ProductDraft::parse(
            product.sku.as_ref(),
            &product.name,
            Some(&product.description),
            product.price.minor() as i64,
            product.price.currency().as_str(),
            i64::from(product.stock),
            Some(product.active),
        );
        prop_assert!(again.is_ok(), "{:?}", again);
        let again = again.unwrap();
        prop_assert_eq!((&again.name, &again.description, again.price, again.stock), (&product.name, &product.description, product.price, product.stock));
    }

    #[test]
    fn the_status_machine_only_moves_forward_one_version_at_a_time(order in strategies::order(), steps in proptest::collection::vec(0_usize..5, 0..8)) {
        let mut current = order;
        for step in steps {
            let target = OrderStatus::ALL[step];
            match current.transitioned(target, None, time::OffsetDateTime::UNIX_EPOCH) {
                Ok(next) => {
                    prop_assert!(current.status.can_become(target));
                    prop_assert_eq!(next.version, current.version + 1);
                    prop_assert_eq!(next.status, target);
                    prop_assert_eq!(&next.lines, &current.lines);
                    current = next;
                }
                Err(refused) => {
                    prop_assert!(!current.status.can_become(target));
                    prop_assert_eq!((refused.from, refused.to), (current.status, target));
                }
            }
        }
        // Terminal states stay terminal.
        if matches!(current.status, OrderStatus::Rejected | OrderStatus::Shipped | OrderStatus::Cancelled) {
            prop_assert!(OrderStatus::ALL.iter().all(|next| !current.status.can_become(*next)));
        }
    }
}
