//! The table's layout, named once: every item key, index partition and
//! counter the adapters (stores, outbox, claims, throttles) read or write is
//! built here, so each key format is written in exactly one place.
//!
//! | item | pk | sk | listed in (sort key: the id, a ULID) |
//! |---|---|---|---|
//! | user | `USER#<id>` | `USER` | gsi1 `USERS` |
//! | email claim (a copy of the user) | `EMAIL#<email>` | `USER` | - |
//! | TOTP enrolment (secret, `pending`/`confirmed`, last used time step) | `USER#<id>` | `TOTP` | - |
//! | recovery codes (a string set of their SHA-256 hashes) | `USER#<id>` | `RECOVERY` | - |
//! | a session: one refresh-token family (hash of its current secret, `expires_at` TTL) | `USER#<id>` | `SESSION#<session id>` | - |
//! | pending password reset (hash of the emailed secret, `expires_at` TTL) | `USER#<id>` | `RESET` | - |
//! | pending email verification (token hash, `expires_at` TTL) | `USER#<id>` | `VERIFY` | - |
//! | product | `PRODUCT#<id>` | `PRODUCT` | gsi1 `PRODUCTS#active#<shard>` or `PRODUCTS#inactive#<shard>` |
//! | SKU claim | `SKU#<sku>` | `SKU` | - |
//! | order | `ORDER#<id>` | `ORDER` | gsi1 `ORDERS#OWNER#<owner>`, gsi2 `ORDERS#STATUS#<status>#<shard>`, gsi3 `ORDERS#OWNER#<owner>#STATUS#<status>`, gsi4 `ORDERS#<shard>` |
//! | holdings of an account's open orders | `HOLDINGS#<user id>` | `HOLDINGS` | - |
//! | counter | `COUNTER#<name>` | `COUNTER` | - |
//! | outbox record | `OUTBOX#<event id>` | `OUTBOX` | gsi1 `OUTBOX#<shard>` (parked: `OUTBOX#PARKED`) |
//! | idempotency record | `IDEMPOTENCY#<key>` | `IDEMPOTENCY` | - |
//! | message claim | `PROCESSED#<key>` | `PROCESSED` | - |
//! | throttle window | `<name>#<key>#<window start>` | `WINDOW` | - |
//! | sign-in history entry | `<name>#<key>` | `SIGNIN` | - |
//! | account erasure (unfinished: orders still to take off it; finished: kept a day, `expires_at` TTL) | `ERASURE#<user id>` | `ERASURE` | gsi1 `ERASURES` while unfinished |
//!
//! No key is written by every order: what all orders share (the listings
//! across owners, their counters, the outbox, the catalogue listing whose
//! copy of `stock` every reservation writes) is spread over [`SHARDS`]
//! partitions, the shard picked by the item's id; readers ask
//! every shard and merge (`listing`). Partitions and counters written before
//! the shards (`ORDERS`, `ORDERS#STATUS#<status>`, `OUTBOX`, `PRODUCTS#...`, counters
//! `orders`, `orders#status#<status>`) are still read, as one more shard,
//! so data written before the change stays listed and counted.

use aws_sdk_dynamodb::types::AttributeValue;
use domain::ports::OrderFilter;
use domain::{Email, OrderId, OrderStatus, ProductId, SessionId, Sku, UserId};

use super::items::{Item, s};

/// How many partitions the keys every order writes are spread over (the
/// listings across owners, their counters, the outbox). A partition takes
/// 1,000 write units a second; an order writes about 6 units over its life
/// to the busiest of these families (its all-orders entry at placement and
/// at each status change, up to 2 units each; its status counter 2 units
/// up and 2 down), so 10,000 orders a second need 60,000 / 1,000 = 60
/// shards: 64 (the load's hot-key report measures it).
pub(crate) const SHARDS: u8 = 64;

/// How many partitions the catalogue listing is spread over: it is written
/// by each product's stock changes, bounded per product anyway.
pub(crate) const PRODUCT_SHARDS: u8 = 16;

/// One of the [`SHARDS`] (or [`PRODUCT_SHARDS`]) partitions of a listing
/// written across owners; `None` where data from before the shards lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Shard(Option<u8>);

impl Shard {
    /// The shard of the item whose id is `id`: FNV-1a of the id, so the
    /// choice is stable across releases and even over random ULIDs.
    pub fn of(id: &str) -> Self {
        Self::of_in(id, SHARDS)
    }

    fn of_in(id: &str, count: u8) -> Self {
        let hash = id
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3));
        Self(Some(u8::try_from(hash % u64::from(count)).expect("below the count")))
    }

    /// Every shard a reader must ask, the partition from before the shards included.
    pub fn all() -> impl Iterator<Item = Self> {
        Self::all_in(SHARDS)
    }

    fn all_in(count: u8) -> impl Iterator<Item = Self> {
        (0..count).map(|shard| Self(Some(shard))).chain([Self(None)])
    }

    /// `base` in this shard: `base#07`, or `base` itself for the unsharded past.
    fn name(self, base: &str) -> String {
        match self.0 {
            Some(shard) => format!("{base}#{shard:02}"),
            None => base.to_owned(),
        }
    }
}

/// The first part of each base-table partition key, named once: [`Key`]
/// builds its keys from them, and a function's IAM statements on the table
/// may name only these (and the throttles' names, the first part of their
/// windows' keys) in `dynamodb:LeadingKeys` (`cargo xtask codegen` checks).
pub mod prefix {
    pub const USER: &str = "USER#";
    pub const EMAIL: &str = "EMAIL#";
    pub const PRODUCT: &str = "PRODUCT#";
    pub const SKU: &str = "SKU#";
    pub const ORDER: &str = "ORDER#";
    pub const HOLDINGS: &str = "HOLDINGS#";
    pub const COUNTER: &str = "COUNTER#";
    pub const OUTBOX: &str = "OUTBOX#";
    pub const IDEMPOTENCY: &str = "IDEMPOTENCY#";
    /// Message claims (their older name kept).
    pub const CLAIM: &str = "PROCESSED#";
    pub const ERASURE: &str = "ERASURE#";
    /// The one key every function reads at start-up; nothing is stored under it.
    pub const WARM_UP: &str = "WARMUP";
}

/// Every base-table partition key prefix of [`prefix`] (the throttles'
/// windows and sign-in histories start with their own names instead).
pub const TABLE_PREFIXES: &[&str] = &[
    prefix::USER,
    prefix::EMAIL,
    prefix::PRODUCT,
    prefix::SKU,
    prefix::ORDER,
    prefix::HOLDINGS,
    prefix::COUNTER,
    prefix::OUTBOX,
    prefix::IDEMPOTENCY,
    prefix::CLAIM,
    prefix::ERASURE,
    prefix::WARM_UP,
];

/// The first part of each index partition, by index name: what a Query's
/// `dynamodb:LeadingKeys` on that index is (its partition key, `gsi1pk`, ...).
pub const INDEX_PREFIXES: &[(&str, &str)] = &[
    ("gsi1", USERS),
    ("gsi1", PRODUCTS_ACTIVE),
    ("gsi1", PRODUCTS_INACTIVE),
    ("gsi1", ERASURES),
    ("gsi1", ORDERS_BY_OWNER),
    ("gsi1", OUTBOX),
    ("gsi2", ORDERS_BY_STATUS),
    ("gsi3", ORDERS_BY_OWNER),
    ("gsi4", ORDERS),
];

const USERS: &str = "USERS";
const PRODUCTS_ACTIVE: &str = "PRODUCTS#active";
const PRODUCTS_INACTIVE: &str = "PRODUCTS#inactive";
const ERASURES: &str = "ERASURES";
const ORDERS_BY_OWNER: &str = "ORDERS#OWNER#";
const ORDERS_BY_STATUS: &str = "ORDERS#STATUS#";
const ORDERS: &str = "ORDERS";
const OUTBOX: &str = "OUTBOX";

/// A base-table key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Key {
    pub pk: String,
    pub sk: &'static str,
}

impl Key {
    pub fn user(id: UserId) -> Self {
        Self { pk: format!("{}{id}", prefix::USER), sk: "USER" }
    }

    /// The account's pending email verification: the hash of the emailed
    /// token and its expiry, in the account's own partition.
    pub fn verification(id: UserId) -> Self {
        Self { pk: format!("{}{id}", prefix::USER), sk: "VERIFY" }
    }

    /// The account's TOTP enrolment, in the account's own partition.
    pub fn totp(id: UserId) -> Self {
        Self { pk: format!("{}{id}", prefix::USER), sk: "TOTP" }
    }

    /// The account's unused recovery codes (hashed), in its own partition.
    pub fn recovery_codes(id: UserId) -> Self {
        Self { pk: format!("{}{id}", prefix::USER), sk: "RECOVERY" }
    }

    /// The account's pending password reset: the hash of the emailed token
    /// and its expiry, in the account's own partition.
    pub fn password_reset(id: UserId) -> Self {
        Self { pk: format!("{}{id}", prefix::USER), sk: "RESET" }
    }

    /// The copy of a user that makes its email unique and findable.
    pub fn email_claim(email: &Email) -> Self {
        Self { pk: format!("{}{email}", prefix::EMAIL), sk: "USER" }
    }

    pub fn product(id: ProductId) -> Self {
        Self { pk: format!("{}{id}", prefix::PRODUCT), sk: "PRODUCT" }
    }

    /// The item that makes a SKU unique.
    pub fn sku_claim(sku: &Sku) -> Self {
        Self { pk: format!("{}{sku}", prefix::SKU), sk: "SKU" }
    }

    pub fn order(id: OrderId) -> Self {
        Self { pk: format!("{}{id}", prefix::ORDER), sk: "ORDER" }
    }

    /// What one account's open orders hold (`open_orders`, `units#<product id>`):
    /// one item per account, so no key is shared across accounts.
    pub fn holdings(owner: UserId) -> Self {
        Self { pk: format!("{}{owner}", prefix::HOLDINGS), sk: "HOLDINGS" }
    }

    pub fn counter(counter: &Counter) -> Self {
        Self { pk: format!("{}{}", prefix::COUNTER, counter.name()), sk: "COUNTER" }
    }

    pub fn outbox(event_id: &str) -> Self {
        Self { pk: format!("{}{event_id}", prefix::OUTBOX), sk: "OUTBOX" }
    }

    pub fn idempotency(key: &str) -> Self {
        Self { pk: format!("{}{key}", prefix::IDEMPOTENCY), sk: "IDEMPOTENCY" }
    }

    /// A message claim (see `MessageClaims`). The prefix keeps its older name
    /// `PROCESSED#` so claims already stored stay readable.
    pub fn claim(key: &str) -> Self {
        Self { pk: format!("{}{key}", prefix::CLAIM), sk: "PROCESSED" }
    }

    /// One fixed window of a throttle, named by the window's start.
    pub fn window(throttle: &str, key: &str, start: i64) -> Self {
        Self { pk: format!("{throttle}#{key}#{start}"), sk: "WINDOW" }
    }

    /// One entry of a sign-in history (see `DynamoSignInHistory`).
    pub fn sign_in(history: &str, key: &str) -> Self {
        Self { pk: format!("{history}#{key}"), sk: "SIGNIN" }
    }

    /// The record of the erasure of account `id`: unfinished while its
    /// orders, or items the erasing write could not hold, are still to
    /// remove; then kept, marked finished, until its `expires_at`.
    pub fn erasure(id: UserId) -> Self {
        Self { pk: format!("{}{id}", prefix::ERASURE), sk: "ERASURE" }
    }

    /// A key nothing is ever stored under: reading it proves the table is reachable.
    pub fn warm_up() -> Self {
        Self { pk: prefix::WARM_UP.into(), sk: "WARMUP" }
    }

    /// The key as item attributes.
    pub fn item(&self) -> Item {
        Item::from([("pk".into(), s(&self.pk)), ("sk".into(), s(self.sk))])
    }
}

/// The sort keys of an account's sessions start with this; each is
/// `SESSION#<session id>` in the account's partition `USER#<id>`.
pub(crate) const SESSION_PREFIX: &str = "SESSION#";

/// The key of session `session` of account `user` (its sort key is not one
/// fixed word, so it is not a [`Key`]).
pub(crate) fn session_key(user: UserId, session: SessionId) -> Item {
    Item::from([("pk".into(), s(Key::user(user).pk)), ("sk".into(), s(format!("{SESSION_PREFIX}{session}")))])
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
        Self { index: Index::Gsi1, value: USERS.into() }
    }

    /// The shard of the catalogue listing that holds product `id`. Sharded
    /// because the index copies `stock`: every reservation writes the
    /// product's listing entry, so one partition for all products would take
    /// every order's stock changes.
    pub fn products(active: bool, id: &str) -> Self {
        Self::products_in(active, Shard::of_in(id, PRODUCT_SHARDS))
    }

    /// Every partition of the catalogue listing (its shards and the unsharded past).
    pub fn products_read(active: bool) -> Vec<Self> {
        Shard::all_in(PRODUCT_SHARDS).map(|shard| Self::products_in(active, shard)).collect()
    }

    fn products_in(active: bool, shard: Shard) -> Self {
        Self { index: Index::Gsi1, value: shard.name(if active { PRODUCTS_ACTIVE } else { PRODUCTS_INACTIVE }) }
    }

    /// Unfinished account erasures, oldest first (written once per erased account).
    pub fn erasures() -> Self {
        Self { index: Index::Gsi1, value: ERASURES.into() }
    }

    /// The partition of the listing for `filter` that the order `id` is in:
    /// the owner's own, or one shard of a listing across owners.
    pub fn orders(filter: OrderFilter, id: OrderId) -> Self {
        Self::orders_in(filter, Shard::of(&id.to_string()))
    }

    /// Every partition the listing for `filter` reads: an owner's one, or
    /// every shard of a listing across owners.
    pub fn orders_read(filter: OrderFilter) -> Vec<Self> {
        if filter.owner.is_some() {
            return vec![Self::orders_in(filter, Shard(None))];
        }
        Shard::all().map(|shard| Self::orders_in(filter, shard)).collect()
    }

    fn orders_in(filter: OrderFilter, shard: Shard) -> Self {
        match (filter.owner, filter.status) {
            (Some(owner), None) => Self { index: Index::Gsi1, value: format!("{ORDERS_BY_OWNER}{owner}") },
            (None, Some(status)) => {
                Self { index: Index::Gsi2, value: shard.name(&format!("{ORDERS_BY_STATUS}{status}")) }
            }
            (Some(owner), Some(status)) => {
                Self { index: Index::Gsi3, value: format!("{ORDERS_BY_OWNER}{owner}#STATUS#{status}") }
            }
            (None, None) => Self { index: Index::Gsi4, value: shard.name(ORDERS) },
        }
    }

    /// The partition of outbox records not yet published that holds `event_id`.
    pub fn outbox(event_id: &str) -> Self {
        Self { index: Index::Gsi1, value: Shard::of(event_id).name(OUTBOX) }
    }

    /// Every partition of outbox records not yet published, each oldest first by event id.
    pub fn outbox_read() -> Vec<Self> {
        Shard::all().map(|shard| Self { index: Index::Gsi1, value: shard.name(OUTBOX) }).collect()
    }

    /// Where an outbox record that can never be published is parked, with
    /// its reason, out of the relay's way.
    pub fn outbox_parked() -> Self {
        Self { index: Index::Gsi1, value: format!("{OUTBOX}#PARKED") }
    }

    /// The index attributes an item listed here with `sort` carries.
    pub fn attributes(&self, sort: &str) -> [(String, AttributeValue); 2] {
        [(self.index.partition_attribute().into(), s(&self.value)), (self.index.sort_attribute().into(), s(sort))]
    }
}

/// The index attributes of an order: it is listed by owner, by status, by
/// both, and among all orders (the last two in the shard of its id). An order
/// whose owner was erased is listed by status and among all orders only.
pub(crate) fn order_listings(id: OrderId, owner: Option<UserId>, status: OrderStatus) -> Vec<Partition> {
    let with = |owner, status| Partition::orders(OrderFilter { owner, status }, id);
    match owner {
        Some(owner) => {
            vec![with(Some(owner), None), with(None, Some(status)), with(Some(owner), Some(status)), with(None, None)]
        }
        None => vec![with(None, Some(status)), with(None, None)],
    }
}

/// A total kept beside a listing, updated in the same transaction as the
/// items it counts. The order counters across owners are sharded like their
/// listings: a total is the sum of its shards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Counter {
    Users,
    Products { active: bool },
    Orders(OrderFilter, Shard),
}

impl Counter {
    pub fn name(&self) -> String {
        match self {
            Self::Users => "users".into(),
            Self::Products { active: true } => "products#active".into(),
            Self::Products { active: false } => "products#inactive".into(),
            Self::Orders(OrderFilter { owner: None, status: None }, shard) => shard.name("orders"),
            Self::Orders(OrderFilter { owner: Some(owner), status: None }, _) => format!("orders#owner#{owner}"),
            Self::Orders(OrderFilter { owner: None, status: Some(status) }, shard) => {
                shard.name(&format!("orders#status#{status}"))
            }
            Self::Orders(OrderFilter { owner: Some(owner), status: Some(status) }, _) => {
                format!("orders#owner#{owner}#status#{status}")
            }
        }
    }

    /// The counters whose sum is the total of the listing for `filter`.
    pub fn orders_read(filter: OrderFilter) -> Vec<Self> {
        if filter.owner.is_some() {
            return vec![Self::Orders(filter, Shard(None))];
        }
        Shard::all().map(|shard| Self::Orders(filter, shard)).collect()
    }

    /// The counters an order moves when it comes to be (or leaves) `status`;
    /// `with_totals` adds the ones that do not depend on the status. The
    /// counters across owners are the shard of the order's id.
    /// An order whose owner was erased moves only the counters across owners.
    pub fn for_order(id: OrderId, owner: Option<UserId>, status: OrderStatus, with_totals: bool) -> Vec<Self> {
        let shard = Shard::of(&id.to_string());
        let filter = |owner, status| Self::Orders(OrderFilter { owner, status }, shard);
        let mut counters = vec![filter(None, Some(status))];
        counters.extend(owner.map(|owner| filter(Some(owner), Some(status))));
        if with_totals {
            counters.push(filter(None, None));
            counters.extend(owner.map(|owner| filter(Some(owner), None)));
        }
        counters
    }

    /// Every counter of one owner's orders (all of them, and per status):
    /// what an erased account's orders leave behind once they are all
    /// taken off it.
    pub fn owner_counters(owner: UserId) -> Vec<Self> {
        let filter = |status| Self::Orders(OrderFilter { owner: Some(owner), status }, Shard(None));
        [None].into_iter().chain(OrderStatus::ALL.map(Some)).map(filter).collect()
    }
}

/// The index entries an update or delete of the item at `pk` rewrites
/// (the request names only the key): a product's catalogue entry copies
/// `stock`, so every stock change rewrites it (active: only active products
/// are reserved); an outbox record's delete removes its listing entry.
pub(crate) fn index_echo(pk: &str, delete: bool) -> Vec<(Index, String)> {
    if let Some(id) = pk.strip_prefix(prefix::PRODUCT) {
        return vec![(Index::Gsi1, Partition::products(true, id).value)];
    }
    match pk.strip_prefix(prefix::OUTBOX) {
        Some(id) if delete => vec![(Index::Gsi1, Partition::outbox(id).value)],
        _ => Vec::new(),
    }
}

/// Every partition written on behalf of all orders or all accounts: the
/// shards (and unsharded past) of the listings across owners, of the
/// outbox, and the counters of all orders, users and products (counters as
/// their table partition, `COUNTER#<name>`).
pub(crate) fn shared_partitions() -> std::collections::HashSet<String> {
    let everyone = [None].into_iter().chain(OrderStatus::ALL.map(Some));
    let filters: Vec<OrderFilter> = everyone.map(|status| OrderFilter { owner: None, status }).collect();
    let listings = filters.iter().flat_map(|filter| Partition::orders_read(*filter));
    let outbox = Partition::outbox_read().into_iter().chain([
        Partition::outbox_parked(),
        Partition::users(),
        Partition::erasures(),
    ]);
    let counters = filters.iter().flat_map(|filter| Counter::orders_read(*filter)).chain([
        Counter::Users,
        Counter::Products { active: true },
        Counter::Products { active: false },
    ]);
    listings
        .chain(outbox)
        .map(|partition| partition.value)
        .chain(counters.map(|counter| Key::counter(&counter).pk))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_formats_are_stable() {
        let id = UserId::parse("01J9Z3NDEKTSV4RRFFQ69G5FAV").unwrap();
        let order = OrderId::parse("01J9Z3NDEKTSV4RRFFQ69G5FAV").unwrap();
        assert_eq!(Key::user(id), Key { pk: "USER#01J9Z3NDEKTSV4RRFFQ69G5FAV".into(), sk: "USER" });
        assert_eq!(Key::window("LOGIN", "1.2.3.4", 120).pk, "LOGIN#1.2.3.4#120");
        assert_eq!(Key::holdings(id), Key { pk: "HOLDINGS#01J9Z3NDEKTSV4RRFFQ69G5FAV".into(), sk: "HOLDINGS" });
        let filter = OrderFilter { owner: Some(id), status: Some(OrderStatus::Pending) };
        let listing = Partition::orders(filter, order).value;
        assert_eq!(listing, "ORDERS#OWNER#01J9Z3NDEKTSV4RRFFQ69G5FAV#STATUS#pending");
        let counters: Vec<String> =
            Counter::for_order(order, Some(id), OrderStatus::Pending, true).iter().map(Counter::name).collect();
        // The shard of an id never changes across releases: stored items depend on it.
        assert_eq!(
            counters,
            [
                "orders#status#pending#02",
                "orders#owner#01J9Z3NDEKTSV4RRFFQ69G5FAV#status#pending",
                "orders#02",
                "orders#owner#01J9Z3NDEKTSV4RRFFQ69G5FAV",
            ]
        );
        assert_eq!(Partition::orders(OrderFilter { owner: None, status: None }, order).value, "ORDERS#02");
        assert_eq!(Partition::outbox_read().last().unwrap().value, "OUTBOX", "the unsharded past is still read");
    }

    #[test]
    fn every_order_filter_has_its_own_listing_and_counter() {
        let id = UserId::generate();
        let order = OrderId::generate();
        let filters = [
            OrderFilter { owner: None, status: None },
            OrderFilter { owner: Some(id), status: None },
            OrderFilter { owner: None, status: Some(OrderStatus::Shipped) },
            OrderFilter { owner: Some(id), status: Some(OrderStatus::Shipped) },
        ];
        let listings: std::collections::HashSet<String> =
            filters.iter().map(|f| Partition::orders(*f, order).value).collect();
        let counters: std::collections::HashSet<String> =
            Counter::for_order(order, Some(id), OrderStatus::Shipped, true).iter().map(Counter::name).collect();
        assert_eq!((listings.len(), counters.len()), (4, 4));
        let listed: Vec<String> =
            order_listings(order, Some(id), OrderStatus::Shipped).iter().map(|p| p.value.clone()).collect();
        for filter in filters {
            let read: Vec<String> = Partition::orders_read(filter).into_iter().map(|p| p.value).collect();
            assert!(read.iter().any(|p| listed.contains(p)), "an order is in every listing that can show it");
            let summed: Vec<String> = Counter::orders_read(filter).iter().map(Counter::name).collect();
            assert!(summed.iter().any(|c| counters.contains(c)), "and counted in every total that counts it");
        }
    }

    #[test]
    fn every_listing_starts_with_a_named_prefix_of_its_index() {
        let (owner, order) = (UserId::generate(), OrderId::generate());
        let statuses = [None].into_iter().chain(OrderStatus::ALL.map(Some));
        let owners = [None, Some(owner)];
        let orders = statuses
            .flat_map(|status| owners.map(|owner| OrderFilter { owner, status }))
            .flat_map(|filter| Partition::orders_read(filter).into_iter().chain([Partition::orders(filter, order)]));
        let partitions: Vec<Partition> = orders
            .chain(Partition::products_read(true))
            .chain(Partition::products_read(false))
            .chain(Partition::outbox_read())
            .chain([Partition::users(), Partition::erasures(), Partition::outbox_parked(), Partition::outbox("e")])
            .collect();
        for partition in partitions {
            let named = INDEX_PREFIXES
                .iter()
                .any(|(index, prefix)| *index == partition.index.name() && partition.value.starts_with(prefix));
            assert!(named, "{} on {} has no prefix in INDEX_PREFIXES", partition.value, partition.index.name());
        }
        let key = Key::counter(&Counter::Users).pk;
        assert!(TABLE_PREFIXES.iter().any(|prefix| key.starts_with(prefix)), "{key}");
    }

    #[test]
    fn orders_spread_evenly_over_the_shards() {
        let mut per_shard = [0u32; SHARDS as usize];
        for _ in 0..64_000 {
            per_shard[usize::from(Shard::of(&OrderId::generate().to_string()).0.unwrap())] += 1;
        }
        let (least, most) = (per_shard.iter().min().unwrap(), per_shard.iter().max().unwrap());
        assert!(*least > 850 && *most < 1150, "uneven spread: {per_shard:?}");
        assert_eq!(Partition::products_read(true).len(), usize::from(PRODUCT_SHARDS) + 1);
        assert_eq!(Partition::orders_read(OrderFilter { owner: None, status: None }).len(), usize::from(SHARDS) + 1);
    }
}
