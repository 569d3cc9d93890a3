//! Generators of valid domain values for property tests (feature `proptest`).
//!
//! Every value is made the way the write path makes it: raw input through the
//! domain's own parsers, so a generator can never produce something the API
//! would refuse, and the property tests find what it accepts but cannot read back.

use proptest::collection::vec;
use proptest::prelude::*;
use time::OffsetDateTime;

use crate::money::MAX_MINOR;
use crate::{
    Currency, Email, Money, NewUser, Order, OrderRequest, OrderStatus, PasswordHash, Product, ProductDraft, ProductId,
    Role, User, UserId,
};

/// Any instant from 1970 to 9999, with nanoseconds.
pub fn timestamp() -> impl Strategy<Value = OffsetDateTime> {
    (0_i64..253_402_300_799, 0_u32..1_000_000_000).prop_map(|(seconds, nanos)| {
        OffsetDateTime::from_unix_timestamp(seconds).expect("in range") + time::Duration::nanoseconds(i64::from(nanos))
    })
}

/// Any currency code, written in any case as clients do.
pub fn currency() -> impl Strategy<Value = Currency> {
    "[a-zA-Z]{3}".prop_map(|code| Currency::parse(&code).expect("three letters"))
}

/// Any amount `Money::new` accepts.
pub fn money() -> impl Strategy<Value = Money> {
    (0..=MAX_MINOR, currency()).prop_map(|(minor, currency)| Money::new(minor, currency).expect("within the bound"))
}

/// Any character but a control one (mapped, not filtered: proptest favours
/// unusual characters, and filtering them would reject most strings).
fn printable() -> impl Strategy<Value = char> {
    any::<char>().prop_map(|c| if c.is_control() { '~' } else { c })
}

/// Text as clients send it: mostly printable, sometimes with whitespace,
/// control characters and non-ASCII letters.
pub fn client_text(max_chars: usize) -> impl Strategy<Value = String> {
    vec(prop_oneof![8 => printable(), 1 => Just(' '), 1 => Just('\n'), 1 => any::<char>()], 0..=max_chars + 2)
        .prop_map(|chars| chars.into_iter().collect())
}

/// Any email address registration accepts.
pub fn email() -> impl Strategy<Value = Email> {
    ("[A-Za-z0-9][A-Za-z0-9._+-]{0,20}", "[a-z0-9]{1,10}(\\.[a-z0-9]{1,10}){0,2}", "[a-z]{2,6}")
        .prop_filter_map("an address the parser accepts", |(local, domain, tld)| {
            Email::parse(&format!(" {local}@{domain}.{tld} ")).ok()
        })
}

/// Any user the store may hold: either role, enabled or not, any version.
pub fn user() -> impl Strategy<Value = User> {
    (
        email(),
        any::<bool>(),
        any::<bool>(),
        timestamp(),
        timestamp(),
        1_u64..=u64::from(u32::MAX),
        "[a-zA-Z0-9$=,./+]{20,100}",
    )
        .prop_map(|(email, admin, disabled, created_at, updated_at, version, hash)| {
            let role = if admin { Role::Admin } else { Role::User };
            let mut user = NewUser { email, password_hash: PasswordHash::from_phc(format!("$argon2id${hash}")), role }
                .into_user(created_at);
            user.disabled = disabled;
            user.updated_at = updated_at;
            user.version = version;
            user
        })
}

/// Text a product may hold: any characters but control ones (newlines
/// allowed), up to `max_chars`.
pub fn product_text(max_chars: usize) -> impl Strategy<Value = String> {
    vec(prop_oneof![20 => printable(), 1 => Just('\n')], 1..=max_chars).prop_map(|chars| chars.into_iter().collect())
}

/// Any product an admin can create (or replace it with), in `currency`,
/// priced from `prices`.
pub fn product_priced(currency: Currency, prices: impl Strategy<Value = u64>) -> impl Strategy<Value = Product> {
    (
        "[A-Za-z0-9][A-Za-z0-9-]{1,30}[A-Za-z0-9]",
        product_text(200),
        proptest::option::of(product_text(2000)),
        prices,
        0_i64..=1_000_000,
        proptest::option::of(any::<bool>()),
        timestamp(),
    )
        .prop_filter_map(
            "a draft the parser accepts",
            move |(sku, name, description, price, stock, active, now)| {
                let draft = ProductDraft::parse(
                    &sku,
                    &name,
                    description.as_deref(),
                    price as i64,
                    currency.as_str(),
                    stock,
                    active,
                )
                .ok()?;
                Some(draft.into_product(now))
            },
        )
}

/// Any product an admin can create, in `currency`.
pub fn product_in(currency: Currency) -> impl Strategy<Value = Product> {
    product_priced(currency, 0..=MAX_MINOR)
}

/// Any product an admin can create, in any currency.
pub fn product() -> impl Strategy<Value = Product> {
    currency().prop_flat_map(product_in)
}

/// Any order placement accepts: 1 to 50 lines of distinct products of one
/// currency, 1 to 1000 units each, priced from those products. Totals beyond
/// the money bound are refused by pricing and so never generated.
pub fn order() -> impl Strategy<Value = Order> {
    currency()
        // Either many lines at prices whose 50 x 1000 units stay within the
        // bound, or one line at any price.
        .prop_flat_map(|currency| {
            prop_oneof![
                vec((product_priced(currency, 0..=MAX_MINOR / 50_000), 1_i64..=1000), 1..=50),
                vec((product_priced(currency, 0..=MAX_MINOR), 1_i64..=1000), 1..=1),
            ]
        })
        .prop_filter_map("a request pricing accepts", |lines| {
            let mut products: Vec<Product> = Vec::with_capacity(lines.len());
            let mut request = Vec::with_capacity(lines.len());
            for (mut product, quantity) in lines {
                product.id = ProductId::generate();
                product.active = true;
                request.push((product.id.to_string(), quantity));
                products.push(product);
            }
            let request = OrderRequest::parse(&request).ok()?;
            request.price(UserId::generate(), &products, OffsetDateTime::now_utc()).ok()
        })
}

/// An order moved through any sequence of the status machine's transitions.
pub fn order_in_any_status() -> impl Strategy<Value = Order> {
    (order(), vec(0_usize..OrderStatus::ALL.len(), 0..4), timestamp()).prop_map(|(mut order, steps, now)| {
        for step in steps {
            let reason = Some("not enough stock for SKU-1".to_owned());
            if let Ok(next) = order.transitioned(OrderStatus::ALL[step], reason, now) {
                order = next;
            }
        }
        order
    })
}
