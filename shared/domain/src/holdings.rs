//! Holdings: what one account keeps out of everyone else's reach at once.
//! An open order (pending or confirmed) holds its units of each product until
//! it ends (rejected, cancelled, shipped); [`HoldLimits`] caps how many open
//! orders an account may have and how many units of one product it may hold,
//! so that no free account can take a product's whole stock off the shelf.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::{Order, OrderStatus, ProductId, ValidationError};

/// The caps one account's open orders must stay within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldLimits {
    open_orders: u32,
    units_per_product: u32,
}

impl HoldLimits {
    /// At most 10 open orders per account by default.
    pub const DEFAULT_OPEN_ORDERS: u32 = 10;
    /// At most 20 units of one product held per account by default.
    pub const DEFAULT_UNITS_PER_PRODUCT: u32 = 20;

    /// Both caps must be at least 1; errors name the offending field.
    pub fn new(open_orders: u32, units_per_product: u32) -> Result<Self, ValidationError> {
        if open_orders == 0 {
            return Err(ValidationError::field("open_orders", "must be at least 1"));
        }
        if units_per_product == 0 {
            return Err(ValidationError::field("units_per_product", "must be at least 1"));
        }
        Ok(Self { open_orders, units_per_product })
    }

    /// How many orders may be open (pending or confirmed) at once.
    pub fn open_orders(self) -> u32 {
        self.open_orders
    }

    /// How many units of one product the open orders may hold together.
    pub fn units_per_product(self) -> u32 {
        self.units_per_product
    }
}

impl Default for HoldLimits {
    fn default() -> Self {
        Self { open_orders: Self::DEFAULT_OPEN_ORDERS, units_per_product: Self::DEFAULT_UNITS_PER_PRODUCT }
    }
}

/// A cap a new order would break; nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HoldLimitExceeded {
    /// The account already has as many open orders as allowed.
    #[error("at most {limit} orders may be open (pending or confirmed) at once; wait for one to ship or cancel one")]
    OpenOrders {
        /// The cap.
        limit: u32,
    },
    /// With this order the account would hold more units of one product than allowed.
    #[error("at most {limit} units of product {product_id} may be held at once by open orders")]
    ProductUnits {
        /// The product whose cap the order breaks.
        product_id: ProductId,
        /// The order's line for it (`lines[index]`).
        line: usize,
        /// The cap.
        limit: u32,
    },
}

impl HoldLimitExceeded {
    /// The machine-readable error code clients branch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::OpenOrders { .. } => "open_order_limit",
            Self::ProductUnits { .. } => "product_hold_limit",
        }
    }

    /// The cap that was reached.
    pub fn limit(&self) -> u32 {
        match self {
            Self::OpenOrders { limit } | Self::ProductUnits { limit, .. } => *limit,
        }
    }

    /// The request field the refusal is about.
    pub fn field(&self) -> String {
        match self {
            Self::OpenOrders { .. } => "lines".to_owned(),
            Self::ProductUnits { line, .. } => format!("lines[{line}].quantity"),
        }
    }
}

/// What one account's open orders hold right now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holdings {
    /// Orders pending or confirmed.
    pub open_orders: i64,
    /// Units held per product (absent: none).
    pub units: BTreeMap<ProductId, i64>,
}

impl Holdings {
    /// Whether `order` (a new, pending order) fits within `limits` on top of
    /// what is held; the first cap it breaks otherwise.
    pub fn admit(&self, order: &Order, limits: HoldLimits) -> Result<(), HoldLimitExceeded> {
        if self.open_orders >= i64::from(limits.open_orders) {
            return Err(HoldLimitExceeded::OpenOrders { limit: limits.open_orders });
        }
        Self::admit_lines(order, limits, |product| self.units.get(&product).copied().unwrap_or(0))
    }

    /// Whether `order` could ever fit: no line asks for more than the
    /// per-product cap on its own. Checked before anything is stored.
    pub fn admit_alone(order: &Order, limits: HoldLimits) -> Result<(), HoldLimitExceeded> {
        Self::admit_lines(order, limits, |_| 0)
    }

    fn admit_lines(
        order: &Order,
        limits: HoldLimits,
        held: impl Fn(ProductId) -> i64,
    ) -> Result<(), HoldLimitExceeded> {
        let cap = i64::from(limits.units_per_product);
        for (line_index, line) in order.lines.iter().enumerate() {
            if held(line.product_id) + i64::from(line.quantity.get()) > cap {
                return Err(HoldLimitExceeded::ProductUnits {
                    product_id: line.product_id,
                    line: line_index,
                    limit: limits.units_per_product,
                });
            }
        }
        Ok(())
    }

    /// Adds (`sign` 1) or takes away (`sign` -1) what `order` holds.
    pub fn apply(&mut self, order: &Order, sign: i64) {
        self.open_orders += sign;
        for line in &order.lines {
            *self.units.entry(line.product_id).or_default() += sign * i64::from(line.quantity.get());
        }
        self.units.retain(|_, units| *units != 0);
    }
}

impl OrderStatus {
    /// Whether an order in this status counts against its owner's
    /// [`HoldLimits`]: pending and confirmed orders do, until they end.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Pending | Self::Confirmed)
    }
}

/// Whether the change from `previous` to `next` ends an order's hold (so its
/// owner's holdings shrink by it in the same write).
pub fn ends_hold(previous: OrderStatus, next: OrderStatus) -> bool {
    previous.is_open() && !next.is_open()
}

/// How long an order may stay open (pending or confirmed, not shipped) before
/// it expires and its stock goes back: 48 hours unless configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldTime(Duration);

impl HoldTime {
    /// The default: 48 hours.
    pub const DEFAULT: HoldTime = HoldTime(Duration::from_secs(48 * 60 * 60));

    /// Any positive duration.
    pub fn new(duration: Duration) -> Result<Self, ValidationError> {
        if duration.is_zero() {
            return Err(ValidationError::field("hold_time", "must be positive"));
        }
        Ok(Self(duration))
    }

    /// The duration.
    pub fn get(self) -> Duration {
        self.0
    }

    /// The reason an expired order carries.
    pub fn expiry_reason(self) -> String {
        let seconds = self.0.as_secs();
        let span = if seconds.is_multiple_of(3600) {
            format!("{} hours", seconds / 3600)
        } else {
            format!("{seconds} seconds")
        };
        format!("expired: not shipped within {span} of being placed")
    }
}

impl Default for HoldTime {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;
    use crate::{OrderRequest, ProductDraft, UserId};

    fn order(quantities: &[(ProductId, i64)]) -> Order {
        let products: Vec<_> = quantities
            .iter()
            .map(|(id, _)| {
                let mut product = ProductDraft::parse("SKU-1", "Thing", None, 100, "EUR", 100, Some(true))
                    .unwrap()
                    .into_product(OffsetDateTime::UNIX_EPOCH);
                product.id = *id;
                product
            })
            .collect();
        let lines: Vec<(String, i64)> = quantities.iter().map(|(id, q)| (id.to_string(), *q)).collect();
        OrderRequest::parse(&lines).unwrap().price(UserId::generate(), &products, OffsetDateTime::UNIX_EPOCH).unwrap()
    }

    #[test]
    fn limits_are_positive_and_default_to_ten_orders_and_twenty_units() {
        assert_eq!((HoldLimits::default().open_orders(), HoldLimits::default().units_per_product()), (10, 20));
        assert!(HoldLimits::new(0, 5).is_err());
        assert!(HoldLimits::new(5, 0).is_err());
    }

    #[test]
    fn an_order_fits_until_a_cap_is_reached() {
        let limits = HoldLimits::new(2, 5).unwrap();
        let (mug, tee) = (ProductId::generate(), ProductId::generate());
        let mut held = Holdings::default();
        let first = order(&[(mug, 3)]);
        held.admit(&first, limits).unwrap();
        held.apply(&first, 1);
        let refused = held.admit(&order(&[(tee, 1), (mug, 3)]), limits).unwrap_err();
        assert_eq!(refused, HoldLimitExceeded::ProductUnits { product_id: mug, line: 1, limit: 5 });
        assert_eq!(
            (refused.code(), refused.field(), refused.limit()),
            ("product_hold_limit", "lines[1].quantity".into(), 5)
        );
        let second = order(&[(mug, 2)]);
        held.admit(&second, limits).expect("exactly at the cap");
        held.apply(&second, 1);
        let third = held.admit(&order(&[(tee, 1)]), limits).unwrap_err();
        assert_eq!((third.code(), third.limit()), ("open_order_limit", 2));
        held.apply(&first, -1);
        held.apply(&second, -1);
        assert_eq!(held, Holdings::default(), "ended orders leave nothing behind");
        assert!(Holdings::admit_alone(&order(&[(mug, 6)]), limits).is_err());
    }

    #[test]
    fn only_pending_and_confirmed_orders_hold() {
        use OrderStatus::*;
        let open: Vec<_> = OrderStatus::ALL.into_iter().filter(|s| s.is_open()).collect();
        assert_eq!(open, [Pending, Confirmed]);
        assert!(ends_hold(Confirmed, Shipped) && ends_hold(Pending, Rejected) && ends_hold(Confirmed, Cancelled));
        assert!(!ends_hold(Pending, Confirmed));
    }

    #[test]
    fn the_expiry_reason_names_the_hold_time() {
        assert_eq!(HoldTime::DEFAULT.expiry_reason(), "expired: not shipped within 48 hours of being placed");
        assert!(HoldTime::new(Duration::ZERO).is_err());
        assert!(HoldTime::new(Duration::from_secs(20)).unwrap().expiry_reason().contains("20 seconds"));
    }
}
