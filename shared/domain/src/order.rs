//! Orders: what a customer asks for, how it is priced from the catalogue, and
//! the status machine every change must follow.

use std::collections::HashSet;
use std::fmt;

use time::OffsetDateTime;

use crate::{Money, OrderId, Product, ProductId, Sku, UserId, ValidationError};

/// How many units of one product a line asks for: 1 to 1000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity(u32);

impl Quantity {
    /// The most units one line may ask for.
    pub const MAX: u32 = 1000;

    /// Accepts a whole number from 1 to [`Quantity::MAX`]; errors name the field `quantity`.
    pub fn parse(raw: i64) -> Result<Self, ValidationError> {
        u32::try_from(raw)
            .ok()
            .filter(|q| (1..=Self::MAX).contains(q))
            .map(Self)
            .ok_or_else(|| ValidationError::field("quantity", "must be a whole number from 1 to 1000"))
    }

    /// The number of units, always within 1..=[`Quantity::MAX`].
    pub fn get(self) -> u32 {
        self.0
    }
}

/// Where an order is in its life; [`OrderStatus::can_become`] says which
/// changes are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    /// Placed, with no stock taken yet; waiting for its reservation.
    Pending,
    /// Stock was taken for every line.
    Confirmed,
    /// Some line could not be served; nothing was taken. Final.
    Rejected,
    /// Sent to the customer by an admin. Final.
    Shipped,
    /// Withdrawn before shipping; any stock it held went back. Final.
    Cancelled,
}

impl OrderStatus {
    /// Every status, once each.
    pub const ALL: [OrderStatus; 5] = [Self::Pending, Self::Confirmed, Self::Rejected, Self::Shipped, Self::Cancelled];

    /// Accepts the lower-case wire name (`pending`, ...); errors name the field `status`.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw).ok_or_else(|| {
            ValidationError::field("status", "must be one of pending, confirmed, rejected, shipped, cancelled")
        })
    }

    /// The wire name, as stored and as clients see it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Confirmed => "confirmed",
            Self::Rejected => "rejected",
            Self::Shipped => "shipped",
            Self::Cancelled => "cancelled",
        }
    }

    /// The status machine: pending -> confirmed | rejected, confirmed ->
    /// shipped, pending | confirmed -> cancelled. Nothing else.
    pub fn can_become(self, next: OrderStatus) -> bool {
        use OrderStatus::{Cancelled, Confirmed, Pending, Rejected, Shipped};
        matches!((self, next), (Pending, Confirmed | Rejected | Cancelled) | (Confirmed, Shipped | Cancelled))
    }

    /// Stock is held while an order is confirmed (and gone once shipped).
    pub fn holds_stock(self) -> bool {
        self == Self::Confirmed
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One product in an order, priced from the catalogue at the time of ordering.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderLine {
    /// The product ordered (it may since have been deleted).
    pub product_id: ProductId,
    /// The product's SKU when ordered.
    pub sku: Sku,
    /// The product's name when ordered.
    pub name: String,
    /// How many units.
    pub quantity: Quantity,
    /// The catalogue price of one unit when ordered; later price changes do not touch it.
    pub unit_price: Money,
}

/// A customer's order: priced once, when placed, then only changed in status.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    /// Assigned when priced.
    pub id: OrderId,
    /// The customer who placed it; only they and admins may see it. `None`
    /// once that customer's account was erased: the order stays in the
    /// shop's books (lines, total, status, dates) without anyone's identity.
    pub owner: Option<UserId>,
    /// At least one line, at most [`MAX_LINES`], no product twice.
    pub lines: Vec<OrderLine>,
    /// The sum of every line's unit price times quantity, in their one currency.
    pub total: Money,
    /// Where the order is in its life.
    pub status: OrderStatus,
    /// Why the order was rejected, when it was.
    pub reason: Option<String>,
    /// When it was placed.
    pub created_at: OffsetDateTime,
    /// When its status last changed.
    pub updated_at: OffsetDateTime,
    /// 1 when placed, bumped on every change; the basis of `ETag` and `If-Match`.
    pub version: u64,
}

/// What a client asks for: products and quantities. No prices: prices come
/// from the catalogue, never from the client.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderRequest {
    /// 1 to [`MAX_LINES`] lines, each product at most once.
    pub lines: Vec<(ProductId, Quantity)>,
}

/// The most lines one order may have (each a different product).
pub const MAX_LINES: usize = 50;

impl OrderRequest {
    /// Parses `(product id, quantity)` pairs as the client sent them,
    /// reporting every bad line at once under `lines[i].product_id` or
    /// `lines[i].quantity`; a product on two lines is refused.
    pub fn parse(lines: &[(String, i64)]) -> Result<Self, ValidationError> {
        if lines.is_empty() || lines.len() > MAX_LINES {
            return Err(ValidationError::field("lines", "must have 1 to 50 lines"));
        }
        let mut errors = ValidationError::default();
        let mut parsed = Vec::with_capacity(lines.len());
        let mut seen = HashSet::new();
        for (index, (product_id, quantity)) in lines.iter().enumerate() {
            let id =
                errors.collect(ProductId::parse(product_id).map_err(|e| e.at(&format!("lines[{index}].product_id"))));
            let quantity =
                errors.collect(Quantity::parse(*quantity).map_err(|e| e.at(&format!("lines[{index}].quantity"))));
            if let Some(id) = id
                && !seen.insert(id)
            {
                errors.collect::<()>(Err(ValidationError::field(
                    format!("lines[{index}].product_id"),
                    "appears twice; put the whole quantity on one line",
                )));
            }
            if let (Some(id), Some(quantity)) = (id, quantity) {
                parsed.push((id, quantity));
            }
        }
        errors.into_result()?;
        Ok(Self { lines: parsed })
    }
}

/// Why an order cannot be priced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    /// No product has this id.
    #[error("product {0} does not exist")]
    UnknownProduct(ProductId),
    /// The product exists but is inactive, so it cannot be ordered.
    #[error("product {0} is not available")]
    Unavailable(ProductId),
    /// The products are priced in more than one currency.
    #[error("all products of one order must share one currency")]
    MixedCurrencies,
    /// Beyond the largest amount an order may hold ([`crate::money::MAX_MINOR`]).
    #[error("the order total would exceed the largest amount an order may hold (10000000000 minor units)")]
    TooLarge,
}

impl OrderRequest {
    /// Prices the request from catalogue `products` (looked up by id) into a
    /// new pending order of `owner`.
    pub fn price(&self, owner: UserId, products: &[Product], now: OffsetDateTime) -> Result<Order, PricingError> {
        let mut lines = Vec::with_capacity(self.lines.len());
        let mut total: Option<Money> = None;
        for (product_id, quantity) in &self.lines {
            let product =
                products.iter().find(|p| p.id == *product_id).ok_or(PricingError::UnknownProduct(*product_id))?;
            if !product.active {
                return Err(PricingError::Unavailable(*product_id));
            }
            let line_total = product.price.times(quantity.get()).ok_or(PricingError::TooLarge)?;
            total = Some(match total {
                None => line_total,
                Some(sum) => {
                    if sum.currency() != line_total.currency() {
                        return Err(PricingError::MixedCurrencies);
                    }
                    sum.plus(&line_total).ok_or(PricingError::TooLarge)?
                }
            });
            lines.push(OrderLine {
                product_id: product.id,
                sku: product.sku.clone(),
                name: product.name.clone(),
                quantity: *quantity,
                unit_price: product.price,
            });
        }
        Ok(Order {
            id: OrderId::generate(),
            owner: Some(owner),
            lines,
            total: total.expect("at least one line"),
            status: OrderStatus::Pending,
            reason: None,
            created_at: now,
            updated_at: now,
            version: 1,
        })
    }
}

/// A transition the status machine refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an order that is {from} cannot become {to}")]
pub struct IllegalTransition {
    /// The order's status when the change was asked for.
    pub from: OrderStatus,
    /// The status asked for.
    pub to: OrderStatus,
}

impl Order {
    /// The order in status `next`, as the next version.
    pub fn transitioned(
        &self,
        next: OrderStatus,
        reason: Option<String>,
        now: OffsetDateTime,
    ) -> Result<Order, IllegalTransition> {
        if !self.status.can_become(next) {
            return Err(IllegalTransition { from: self.status, to: next });
        }
        Ok(Order { status: next, reason, updated_at: now, version: self.version + 1, ..self.clone() })
    }

    /// Whether `user` placed this order (never true once its owner was erased).
    pub fn is_owned_by(&self, user: UserId) -> bool {
        self.owner == Some(user)
    }

    /// The order as the books keep it once its customer's account is erased:
    /// the owner removed, everything the books add up (lines, total,
    /// status, dates) kept, as the next version. An order already without
    /// an owner is returned as it is, so erasing twice changes nothing.
    #[must_use]
    pub fn without_owner(&self) -> Order {
        if self.owner.is_none() {
            return self.clone();
        }
        Order { owner: None, version: self.version + 1, ..self.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Currency, ProductDraft};

    fn product(price: u64, currency: &str, active: bool) -> Product {
        let mut product = ProductDraft::parse("SKU-1", "Thing", None, price as i64, currency, 10, Some(active))
            .unwrap()
            .into_product(OffsetDateTime::UNIX_EPOCH);
        product.id = ProductId::generate();
        product
    }

    fn request(products: &[&Product], quantity: i64) -> OrderRequest {
        let lines: Vec<(String, i64)> = products.iter().map(|p| (p.id.to_string(), quantity)).collect();
        OrderRequest::parse(&lines).unwrap()
    }

    #[test]
    fn status_machine_allows_exactly_the_designed_transitions() {
        use OrderStatus::*;
        let allowed: Vec<(OrderStatus, OrderStatus)> = OrderStatus::ALL
            .into_iter()
            .flat_map(|from| OrderStatus::ALL.into_iter().map(move |to| (from, to)))
            .filter(|(from, to)| from.can_become(*to))
            .collect();
        assert_eq!(
            allowed,
            [
                (Pending, Confirmed),
                (Pending, Rejected),
                (Pending, Cancelled),
                (Confirmed, Shipped),
                (Confirmed, Cancelled)
            ]
        );
    }

    #[test]
    fn prices_come_from_the_catalogue() {
        let a = product(1999, "EUR", true);
        let b = product(500, "EUR", true);
        let order = request(&[&a, &b], 3)
            .price(UserId::generate(), &[a.clone(), b.clone()], OffsetDateTime::now_utc())
            .unwrap();
        assert_eq!(order.total, Money::new(3 * 1999 + 3 * 500, Currency::parse("EUR").unwrap()).unwrap());
        assert_eq!(order.lines[0].unit_price.minor(), 1999);
        assert_eq!((order.status, order.version), (OrderStatus::Pending, 1));
    }

    #[test]
    fn refuses_unknown_inactive_and_mixed_currency_products() {
        let active = product(100, "EUR", true);
        let inactive = product(100, "EUR", false);
        let dollars = product(100, "USD", true);
        let now = OffsetDateTime::now_utc();
        let owner = UserId::generate();
        assert_eq!(request(&[&active], 1).price(owner, &[], now), Err(PricingError::UnknownProduct(active.id)));
        assert_eq!(
            request(&[&inactive], 1).price(owner, std::slice::from_ref(&inactive), now),
            Err(PricingError::Unavailable(inactive.id))
        );
        assert_eq!(
            request(&[&active, &dollars], 1).price(owner, &[active.clone(), dollars.clone()], now),
            Err(PricingError::MixedCurrencies)
        );
    }

    #[test]
    fn requests_are_bounded_and_free_of_duplicates() {
        assert!(OrderRequest::parse(&[]).is_err());
        let id = ProductId::generate().to_string();
        assert!(OrderRequest::parse(&[(id.clone(), 0)]).is_err());
        assert!(OrderRequest::parse(&[(id.clone(), 1001)]).is_err());
        let duplicate = OrderRequest::parse(&[(id.clone(), 1), (id.clone(), 2)]).unwrap_err();
        assert_eq!(duplicate.fields()[0].field, "lines[1].product_id");
        let many: Vec<(String, i64)> = (0..51).map(|_| (ProductId::generate().to_string(), 1)).collect();
        assert!(OrderRequest::parse(&many).is_err());
        let bad = OrderRequest::parse(&[("nope".into(), 1)]).unwrap_err();
        assert_eq!(bad.fields()[0].field, "lines[0].product_id");
    }

    #[test]
    fn transitions_bump_the_version() {
        let a = product(100, "EUR", true);
        let order =
            request(&[&a], 1).price(UserId::generate(), std::slice::from_ref(&a), OffsetDateTime::now_utc()).unwrap();
        let confirmed = order.transitioned(OrderStatus::Confirmed, None, OffsetDateTime::now_utc()).unwrap();
        assert_eq!(confirmed.version, 2);
        let error = confirmed.transitioned(OrderStatus::Pending, None, OffsetDateTime::now_utc()).unwrap_err();
        assert_eq!(error.to_string(), "an order that is confirmed cannot become pending");
    }

    #[test]
    fn erasing_the_owner_keeps_what_the_books_add_up_once() {
        let a = product(250, "EUR", true);
        let owner = UserId::generate();
        let order = request(&[&a], 2).price(owner, std::slice::from_ref(&a), OffsetDateTime::now_utc()).unwrap();
        assert!(order.is_owned_by(owner));
        let erased = order.without_owner();
        assert_eq!(erased.owner, None);
        assert!(!erased.is_owned_by(owner));
        assert_eq!(
            (erased.total, erased.lines.clone(), erased.status),
            (order.total, order.lines.clone(), order.status)
        );
        assert_eq!((erased.created_at, erased.updated_at, erased.version), (order.created_at, order.updated_at, 2));
        assert_eq!(erased.without_owner(), erased, "erasing twice changes nothing");
    }
}
