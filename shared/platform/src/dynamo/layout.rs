//! The table's layout, named once: every item key, index partition and
//! counter the adapters (stores, outbox, claims, throttles) read or write is
//! built here, so each key format is written in exactly one place.
//!
//! | item | pk | sk | listed in (sort key: the id, a ULID) |
//! |---|---|---|---|
//! | user | `USER#<id>` | `USER` | gsi1 `USERS` |
//! | email claim (a copy of the user) | `EMAIL#<email>` | `USER` | - |
//! | product | `PRODUCT#<id>` | `PRODUCT` | gsi1 `PRODUCTS#active` or `PRODUCTS#inactive` |
//! | SKU claim | `SKU#<sku>` | `SKU` | - |
//! | order | `ORDER#<id>` | `ORDER` | gsi1 `ORDERS#OWNER#<owner>`, gsi2 `ORDERS#STATUS#<status>`, gsi3 `ORDERS#OWNER#<owner>#STATUS#<status>`, gsi4 `ORDERS` |
//! | holdings of an account's open orders | `HOLDINGS#<user id>` | `HOLDINGS` | - |
//! | counter | `COUNTER#<name>` | `COUNTER` | - |
//! | outbox record | `OUTBOX#<event id>` | `OUTBOX` | gsi1 `OUTBOX` |
//! | idempotency record | `IDEMPOTENCY#<key>` | `IDEMPOTENCY` | - |
//! | message claim | `PROCESSED#<key>` | `PROCESSED` | - |
//! | throttle window | `<name>#<key>#<window start>` | `WINDOW` | - |
//! | sign-in history entry | `<name>#<key>` | `SIGNIN` | - |

use aws_sdk_dynamodb::types::AttributeValue;
use domain::ports::OrderFilter;
use domain::{Email, OrderId, OrderStatus, ProductId, Sku, UserId};

use super::items::{Item, s};

/// A base-table key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Key {
    pub pk: String,
    pub sk: &'static str,
}

impl Key {
    pub fn user(id: UserId) -> Self {
        Self { pk: format!("USER#{id}"), sk: "USER" }
    }

    /// The copy of a user that makes its email unique and findable.
    pub fn email_claim(email: &Email) -> Self {
        Self { pk: format!("EMAIL#{email}"), sk: "USER" }
    }

    pub fn product(id: ProductId) -> Self {
        Self { pk: format!("PRODUCT#{id}"), sk: "PRODUCT" }
    }

    /// The item that makes a SKU unique.
    pub fn sku_claim(sku: &Sku) -> Self {
        Self { pk: format!("SKU#{sku}"), sk: "SKU" }
    }

    pub fn order(id: OrderId) -> Self {
        Self { pk: format!("ORDER#{id}"), sk: "ORDER" }
    }

    /// What one account's open orders hold (`open_orders`, `units#<product id>`):
    /// one item per account, so no key is shared across accounts.
    pub fn holdings(owner: UserId) -> Self {
        Self { pk: format!("HOLDINGS#{owner}"), sk: "HOLDINGS" }
    }

    pub fn counter(counter: &Counter) -> Self {
        Self { pk: format!("COUNTER#{}", counter.name()), sk: "COUNTER" }
    }

    pub fn outbox(event_id: &str) -> Self {
        Self { pk: format!("OUTBOX#{event_id}"), sk: "OUTBOX" }
    }

    pub fn idempotency(key: &str) -> Self {
        Self { pk: format!("IDEMPOTENCY#{key}"), sk: "IDEMPOTENCY" }
    }

    /// A message claim (see `ProcessedMessages`).
    pub fn claim(key: &str) -> Self {
        Self { pk: format!("PROCESSED#{key}"), sk: "PROCESSED" }
    }

    /// One fixed window of a throttle, named by the window's start.
    pub fn window(throttle: &str, key: &str, start: i64) -> Self {
        Self { pk: format!("{throttle}#{key}#{start}"), sk: "WINDOW" }
    }

    /// One entry of a sign-in history (see `DynamoSignInHistory`).
    pub fn sign_in(history: &str, key: &str) -> Self {
        Self { pk: format!("{history}#{key}"), sk: "SIGNIN" }
    }

    /// A key nothing is ever stored under: reading it proves the table is reachable.
    pub fn warm_up() -> Self {
        Self { pk: "WARMUP".into(), sk: "WARMUP" }
    }

    /// The key as item attributes.
    pub fn item(&self) -> Item {
        Item::from([("pk".into(), s(&self.pk)), ("sk".into(), s(self.sk))])
    }
}

/// A listing: one partition of one index, read newest first, with the
/// counter that keeps its total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Partition {
    pub index: Index,
    pub value: String,
}

/// The table's indexes; each has `<name>pk` and `<name>sk` attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Index {
    Gsi1,
    Gsi2,
    Gsi3,
    Gsi4,
}

impl Index {
    pub fn name(self) -> &'static str {
        match self {
            Self::Gsi1 => "gsi1",
            Self::Gsi2 => "gsi2",
            Self::Gsi3 => "gsi3",
            Self::Gsi4 => "gsi4",
        }
    }

    pub fn partition_attribute(self) -> &'static str {
        match self {
            Self::Gsi1 => "gsi1pk",
            Self::Gsi2 => "gsi2pk",
            Self::Gsi3 => "gsi3pk",
            Self::Gsi4 => "gsi4pk",
        }
    }

    pub fn sort_attribute(self) -> &'static str {
        match self {
            Self::Gsi1 => "gsi1sk",
            Self::Gsi2 => "gsi2sk",
            Self::Gsi3 => "gsi3sk",
            Self::Gsi4 => "gsi4sk",
        }
    }
}

impl Partition {
    pub fn users() -> Self {
        Self { index: Index::Gsi1, value: "USERS".into() }
    }

    pub fn products(active: bool) -> Self {
        Self { index: Index::Gsi1, value: if active { "PRODUCTS#active" } else { "PRODUCTS#inactive" }.into() }
    }

    /// The one listing that serves `filter`: every order is in all four.
    pub fn orders(filter: OrderFilter) -> Self {
        match (filter.owner, filter.status) {
            (Some(owner), None) => Self { index: Index::Gsi1, value: format!("ORDERS#OWNER#{owner}") },
            (None, Some(status)) => Self { index: Index::Gsi2, value: format!("ORDERS#STATUS#{status}") },
            (Some(owner), Some(status)) => {
                Self { index: Index::Gsi3, value: format!("ORDERS#OWNER#{owner}#STATUS#{status}") }
            }
            (None, None) => Self { index: Index::Gsi4, value: "ORDERS".into() },
        }
    }

    /// Outbox records not yet published, oldest first by event id.
    pub fn outbox() -> Self {
        Self { index: Index::Gsi1, value: "OUTBOX".into() }
    }

    /// The index attributes an item listed here with `sort` carries.
    pub fn attributes(&self, sort: &str) -> [(String, AttributeValue); 2] {
        [(self.index.partition_attribute().into(), s(&self.value)), (self.index.sort_attribute().into(), s(sort))]
    }
}

/// The index attributes of an order: it is listed by owner, by status, by
/// both, and among all orders.
pub(crate) fn order_listings(owner: UserId, status: OrderStatus) -> [Partition; 4] {
    let with = |owner, status| Partition::orders(OrderFilter { owner, status });
    [with(Some(owner), None), with(None, Some(status)), with(Some(owner), Some(status)), with(None, None)]
}

/// A total kept beside a listing, updated in the same transaction as the
/// items it counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Counter {
    Users,
    Products { active: bool },
    Orders(OrderFilter),
}

impl Counter {
    pub fn name(&self) -> String {
        match self {
            Self::Users => "users".into(),
            Self::Products { active: true } => "products#active".into(),
            Self::Products { active: false } => "products#inactive".into(),
            Self::Orders(OrderFilter { owner: None, status: None }) => "orders".into(),
            Self::Orders(OrderFilter { owner: Some(owner), status: None }) => format!("orders#owner#{owner}"),
            Self::Orders(OrderFilter { owner: None, status: Some(status) }) => format!("orders#status#{status}"),
            Self::Orders(OrderFilter { owner: Some(owner), status: Some(status) }) => {
                format!("orders#owner#{owner}#status#{status}")
            }
        }
    }

    /// The counters an order moves when it comes to be (or leaves) `status`;
    /// `with_totals` adds the ones that do not depend on the status.
    pub fn for_order(owner: UserId, status: OrderStatus, with_totals: bool) -> Vec<Self> {
        let filter = |owner, status| Self::Orders(OrderFilter { owner, status });
        let mut counters = vec![filter(None, Some(status)), filter(Some(owner), Some(status))];
        if with_totals {
            counters.extend([filter(None, None), filter(Some(owner), None)]);
        }
        counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_formats_are_stable() {
        let id = UserId::parse("01J9Z3NDEKTSV4RRFFQ69G5FAV").unwrap();
        assert_eq!(Key::user(id), Key { pk: "USER#01J9Z3NDEKTSV4RRFFQ69G5FAV".into(), sk: "USER" });
        assert_eq!(Key::window("LOGIN", "1.2.3.4", 120).pk, "LOGIN#1.2.3.4#120");
        assert_eq!(Key::holdings(id), Key { pk: "HOLDINGS#01J9Z3NDEKTSV4RRFFQ69G5FAV".into(), sk: "HOLDINGS" });
        let filter = OrderFilter { owner: Some(id), status: Some(OrderStatus::Pending) };
        assert_eq!(Partition::orders(filter).value, "ORDERS#OWNER#01J9Z3NDEKTSV4RRFFQ69G5FAV#STATUS#pending");
        assert_eq!(Counter::Orders(filter).name(), "orders#owner#01J9Z3NDEKTSV4RRFFQ69G5FAV#status#pending");
    }

    #[test]
    fn every_order_filter_has_its_own_listing_and_counter() {
        let id = UserId::generate();
        let filters = [
            OrderFilter { owner: None, status: None },
            OrderFilter { owner: Some(id), status: None },
            OrderFilter { owner: None, status: Some(OrderStatus::Shipped) },
            OrderFilter { owner: Some(id), status: Some(OrderStatus::Shipped) },
        ];
        let listings: std::collections::HashSet<String> = filters.iter().map(|f| Partition::orders(*f).value).collect();
        let counters: std::collections::HashSet<String> = filters.iter().map(|f| Counter::Orders(*f).name()).collect();
        assert_eq!((listings.len(), counters.len()), (4, 4));
        let listed: Vec<String> = order_listings(id, OrderStatus::Shipped).iter().map(|p| p.value.clone()).collect();
        assert!(
            filters.iter().all(|f| listed.contains(&Partition::orders(*f).value)),
            "an order is in every listing that can show it"
        );
    }
}
