//! The contract every adapter of a port keeps, as test functions generic over
//! the port. They run against the in-memory adapters (`cargo test -p
//! in-memory`) and against the DynamoDB adapters on DynamoDB Local
//! (`tests/store`), so the two kinds cannot drift apart. Each expects empty
//! stores and panics on a broken promise.

use std::time::Duration;

use domain::ports::{OrderFilter, OrderStore, ProductStore, Reservation, StoreError, Taken, Throttle, UserStore};
use domain::{
    DomainEvent, Email, IdempotencyRecord, NewUser, Order, OrderRequest, OrderStatus, PageLimit, PageRequest,
    PasswordHash, Product, ProductDraft, Role, User, UserId,
};
use framework::batch::{Claim, MessageClaims};
use framework::idempotency::IdempotencyStore;
use time::OffsetDateTime;

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// A new user with a unique email.
pub fn new_user(tag: &str) -> User {
    let email =
        Email::parse(&format!("{tag}.{}@example.com", UserId::generate().to_string().to_lowercase())).expect("valid");
    NewUser {
        email,
        password_hash: PasswordHash::from_phc("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into()),
        role: Role::User,
    }
    .into_user(now())
}

/// A stored account that may order (its email verified): the stores place
/// orders only for one.
pub async fn stored_customer(users: &impl UserStore) -> UserId {
    let user = User { email_verified: true, ..new_user("customer") };
    users.insert(&user, None).await.expect("stored");
    user.id
}

/// A new active product with a unique SKU.
pub fn new_product(price_minor: i64, stock: i64) -> Product {
    let sku = format!("SKU-{}", &UserId::generate().to_string()[14..]);
    ProductDraft::parse(&sku, "A thing", Some("It does things."), price_minor, "EUR", stock, Some(true))
        .expect("valid draft")
        .into_product(now())
}

/// A pending order of `owner` for `quantity` of each product.
pub fn new_order(owner: UserId, products: &[&Product], quantity: i64) -> Order {
    let lines: Vec<(String, i64)> = products.iter().map(|p| (p.id.to_string(), quantity)).collect();
    let catalogue: Vec<Product> = products.iter().map(|p| (*p).clone()).collect();
    OrderRequest::parse(&lines).expect("valid request").price(owner, &catalogue, now()).expect("priced")
}

fn page(limit: &str, after: Option<String>) -> PageRequest {
    PageRequest { limit: PageLimit::parse(Some(limit)).expect("valid limit"), after }
}

fn email_event(order: &Order) -> DomainEvent {
    let task = domain::EmailTask::OrderConfirmed {
        to: "customer@example.com".into(),
        dedupe_key: format!("order#{}", order.id),
        order_id: order.id.to_string(),
        total: order.total.to_string(),
    };
    DomainEvent::email_requested(task, "contract", now())
}

/// One account per email, even for registrations racing each other; a
/// refused insert writes nothing.
pub async fn users_are_unique_by_email(users: &impl UserStore) {
    let user = new_user("unique");
    let event = DomainEvent::user_created(user.id, &user.email, "contract", now());
    users.insert(&user, Some(&event)).await.expect("first insert");
    let mut twin = new_user("twin");
    twin.email = user.email.clone();
    assert!(matches!(users.insert(&twin, None).await, Err(StoreError::AlreadyExists(Taken::Email))));
    assert_eq!(users.find_by_email(&user.email).await.unwrap(), Some(user.clone()));
    assert_eq!(users.get(user.id).await.unwrap(), Some(user));
    assert_eq!(users.get(twin.id).await.unwrap(), None, "the refused user was not written");

    // Registered at the same moment: exactly one wins.
    let email = new_user("race").email;
    let racers: Vec<User> = (0..8).map(|_| User { email: email.clone(), ..new_user("racer") }).collect();
    let outcomes = futures::future::join_all(racers.iter().map(|user| users.insert(user, None))).await;
    let winners = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    let taken =
        outcomes.iter().filter(|outcome| matches!(outcome, Err(StoreError::AlreadyExists(Taken::Email)))).count();
    assert_eq!((winners, taken), (1, 7), "{outcomes:?}");
    assert_eq!(users.list(&page("100", None)).await.unwrap().total, 2, "the count moved once per account");
}

/// An update lands only on the version it was made from.
pub async fn user_updates_are_conditional_on_the_version(users: &impl UserStore) {
    let user = new_user("versioned");
    users.insert(&user, None).await.unwrap();
    let patch = domain::UserPatch { role: Some(Role::Admin), disabled: None };
    let promoted = user.patched(&patch, UserId::generate(), now()).unwrap();
    users.update(&promoted, None).await.expect("update at the read version");
    assert!(
        matches!(users.update(&promoted, None).await, Err(StoreError::VersionMismatch)),
        "a stale update is refused"
    );
    let stored = users.find_by_email(&user.email).await.unwrap().unwrap();
    assert_eq!((stored.role, stored.version), (Role::Admin, 2), "the email lookup sees the update too");
    let ghost = new_user("ghost").patched(&patch, UserId::generate(), now()).unwrap();
    assert!(matches!(users.update(&ghost, None).await, Err(StoreError::NotFound)));
}

/// A change that takes an admin away lands only while its witness (the
/// admin making it) is still an active admin, and never on the witness itself.
pub async fn taking_an_admin_away_needs_another_active_admin(users: &impl UserStore) {
    let mut first = new_user("witness");
    first.role = Role::Admin;
    let mut second = new_user("witnessed");
    second.role = Role::Admin;
    users.insert(&first, None).await.unwrap();
    users.insert(&second, None).await.unwrap();
    let demote = domain::UserPatch { role: Some(Role::User), disabled: None };
    let disable = domain::UserPatch { role: None, disabled: Some(true) };

    let second_demoted = second.patched(&demote, first.id, now()).unwrap();
    let first_demoted = first.patched(&demote, second.id, now()).unwrap();
    let refused = users.update(&first_demoted, Some(first.id)).await;
    assert!(matches!(refused, Err(StoreError::LastAdmin)), "nobody witnesses their own removal: {refused:?}");
    users.update(&second_demoted, Some(first.id)).await.expect("an active admin witnesses");
    let refused = users.update(&first_demoted, Some(second.id)).await;
    assert!(matches!(refused, Err(StoreError::LastAdmin)), "the witness is no admin any more: {refused:?}");
    let first_disabled = first.patched(&disable, second.id, now()).unwrap();
    assert!(matches!(users.update(&first_disabled, Some(second.id)).await, Err(StoreError::LastAdmin)));
    let stored = users.get(first.id).await.unwrap().unwrap();
    assert!(stored.is_active_admin() && stored.version == 1, "nothing was written: {stored:?}");
    assert!(matches!(users.update(&first_demoted, Some(UserId::generate())).await, Err(StoreError::LastAdmin)));
}

/// Listings are newest first, page after page, with exact totals; a
/// position the store did not issue is refused.
pub async fn users_list_newest_first_in_pages(users: &impl UserStore) {
    let mut ids = Vec::new();
    for index in 0..5 {
        let user = new_user(&format!("listed{index}"));
        users.insert(&user, None).await.unwrap();
        ids.push(user.id);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    ids.reverse();
    let first = users.list(&page("2", None)).await.unwrap();
    assert_eq!(first.total, 5);
    assert_eq!(first.items.iter().map(|u| u.id).collect::<Vec<_>>(), ids[..2]);
    let second = users.list(&page("2", first.next.clone())).await.unwrap();
    assert_eq!(second.items.iter().map(|u| u.id).collect::<Vec<_>>(), ids[2..4]);
    let last = users.list(&page("2", second.next.clone())).await.unwrap();
    assert_eq!(last.items.iter().map(|u| u.id).collect::<Vec<_>>(), ids[4..]);
    assert_eq!(last.next, None);
    let exact = users.list(&page("5", None)).await.unwrap();
    assert_eq!((exact.items.len(), exact.next), (5, None), "a full last page has no next position");
    assert!(matches!(users.list(&page("2", Some("garbage".into()))).await, Err(StoreError::InvalidPosition)));
}

/// One product per SKU; a replace that changes the SKU frees the old one
/// and takes the new one.
pub async fn skus_are_unique_and_move_with_a_replace(products: &impl ProductStore) {
    let first = new_product(100, 1);
    let second = new_product(200, 2);
    products.insert(&first).await.unwrap();
    products.insert(&second).await.unwrap();
    let mut clash = new_product(300, 3);
    clash.sku = first.sku.clone();
    assert!(matches!(products.insert(&clash).await, Err(StoreError::AlreadyExists(Taken::Sku))));

    let draft = |product: &Product, sku: &domain::Sku| ProductDraft {
        sku: sku.clone(),
        name: product.name.clone(),
        description: product.description.clone(),
        price: product.price,
        stock: product.stock,
        active: product.active,
    };
    let taken = second.replaced(draft(&second, &first.sku), now());
    assert!(matches!(products.replace(&second, &taken).await, Err(StoreError::AlreadyExists(Taken::Sku))));
    let fresh_sku = domain::Sku::parse(&format!("NEW-{}", &UserId::generate().to_string()[16..])).unwrap();
    let renamed = first.replaced(draft(&first, &fresh_sku), now());
    products.replace(&first, &renamed).await.expect("a free SKU");
    // The old SKU is free again, the new one is taken.
    let mut reuse = new_product(400, 4);
    reuse.sku = first.sku.clone();
    products.insert(&reuse).await.expect("the old SKU was released");
    let mut clash = new_product(500, 5);
    clash.sku = fresh_sku;
    assert!(matches!(products.insert(&clash).await, Err(StoreError::AlreadyExists(Taken::Sku))));
}

/// Replace and delete land only on the version they were made from, and a
/// deleted product's SKU is free again.
pub async fn product_changes_are_conditional_on_the_version(products: &impl ProductStore) {
    let product = new_product(100, 1);
    products.insert(&product).await.unwrap();
    let draft = ProductDraft {
        sku: product.sku.clone(),
        name: "Renamed".into(),
        description: String::new(),
        price: product.price,
        stock: 9,
        active: true,
    };
    let next = product.replaced(draft, now());
    products.replace(&product, &next).await.unwrap();
    assert!(matches!(products.replace(&product, &next).await, Err(StoreError::VersionMismatch)));
    assert!(products.delete(&product).await.is_err(), "a delete at a stale version is refused");
    assert_eq!(products.get(product.id).await.unwrap().map(|p| p.stock), Some(9));
    products.delete(&next).await.expect("a delete at the current version");
    assert_eq!(products.get(product.id).await.unwrap(), None);
    assert!(matches!(products.delete(&next).await, Err(StoreError::NotFound)));
    let mut reuse = new_product(1, 1);
    reuse.sku = product.sku.clone();
    products.insert(&reuse).await.expect("a deleted product's SKU is free");
}

/// Active and inactive products are listed apart; `get_many` skips ids that
/// do not exist.
pub async fn product_listings_split_active_and_inactive(products: &impl ProductStore) {
    let active = new_product(100, 1);
    let mut inactive = new_product(100, 1);
    inactive.active = false;
    products.insert(&active).await.unwrap();
    products.insert(&inactive).await.unwrap();
    let listed = products.list(true, &page("10", None)).await.unwrap();
    assert_eq!((listed.total, listed.items[0].id), (1, active.id));
    let listed = products.list(false, &page("10", None)).await.unwrap();
    assert_eq!((listed.total, listed.items[0].id), (1, inactive.id));
    let found = products.get_many(&[active.id, inactive.id, domain::ProductId::generate()]).await.unwrap();
    assert_eq!(found.len(), 2, "get_many returns the products that exist");
}

/// The first placement with a key wins; the second writes nothing, and the
/// stored record reads back exactly.
pub async fn an_idempotency_key_is_claimed_once(
    users: &impl UserStore,
    orders: &impl OrderStore,
    idempotency: &impl IdempotencyStore,
) {
    let product = new_product(100, 10);
    let owner = stored_customer(users).await;
    // Whole seconds: that is what a stored expiry keeps.
    let expires_at = OffsetDateTime::from_unix_timestamp((now() + time::Duration::hours(24)).unix_timestamp()).unwrap();
    let record = |order: &Order| IdempotencyRecord {
        key: format!("contract#{owner}"),
        fingerprint: "same".into(),
        status: 201,
        body: format!("{{\"id\":\"{}\"}}", order.id),
        location: Some(format!("/api/v1/orders/{}", order.id)),
        etag: Some("\"1\"".into()),
        expires_at,
    };
    let first = new_order(owner, &[&product], 1);
    let event = DomainEvent::order_placed(first.id, owner, "contract", now());
    orders.place(&first, &event, Some(&record(&first))).await.unwrap();
    let second = new_order(owner, &[&product], 1);
    let event = DomainEvent::order_placed(second.id, owner, "contract", now());
    let again = orders.place(&second, &event, Some(&record(&second))).await;
    assert!(matches!(again, Err(StoreError::AlreadyExists(Taken::IdempotencyKey))), "{again:?}");
    assert_eq!(orders.get(second.id).await.unwrap(), None, "the losing order was not written");
    let stored = idempotency.find(&record(&first).key).await.unwrap().expect("the record");
    assert_eq!(stored, crate::replayable(&record(&first)));
    assert_eq!(idempotency.find("contract#nobody").await.unwrap(), None);
}

/// A stored record as the stores keep it: expiry in whole seconds.
fn record_for(key: String, location: String) -> IdempotencyRecord {
    let expires_at = OffsetDateTime::from_unix_timestamp((now() + time::Duration::hours(24)).unix_timestamp()).unwrap();
    IdempotencyRecord {
        key,
        fingerprint: "same".into(),
        status: 201,
        body: "{}".into(),
        location: Some(location),
        etag: Some("\"1\"".into()),
        expires_at,
    }
}

/// Registration and product creation store their record in the same
/// transaction: a second create under the key writes nothing (not even a
/// second account for another email), and the record reads back.
pub async fn creates_claim_their_idempotency_key_with_the_write(
    users: &impl UserStore,
    products: &impl ProductStore,
    idempotency: &impl IdempotencyStore,
) {
    let key = format!("auth:register#guest#{}", UserId::generate());
    let first = new_user("keyed");
    users.create(&first, None, Some(&record_for(key.clone(), "/api/v1/users/me".into()))).await.unwrap();
    let second = new_user("keyed");
    let again = users.create(&second, None, Some(&record_for(key.clone(), "/api/v1/users/me".into()))).await;
    assert!(matches!(again, Err(StoreError::AlreadyExists(Taken::IdempotencyKey))), "{again:?}");
    assert_eq!(users.get(second.id).await.unwrap(), None, "the second account was not written");
    assert_eq!(users.find_by_email(&second.email).await.unwrap(), None, "nor its email claim");
    let stored = idempotency.find(&key).await.unwrap();
    assert_eq!(stored, Some(crate::replayable(&record_for(key.clone(), "/api/v1/users/me".into()))));

    let key = format!("products:create#admin#{}", UserId::generate());
    let product = new_product(100, 1);
    let location = format!("/api/v1/products/{}", product.id);
    // One record: its expiry is taken from the clock once, so the comparison below cannot straddle a second.
    let record = record_for(key.clone(), location.clone());
    products.create(&product, Some(&record)).await.unwrap();
    let other = new_product(100, 1);
    let again = products.create(&other, Some(&record)).await;
    assert!(matches!(again, Err(StoreError::AlreadyExists(Taken::IdempotencyKey))), "{again:?}");
    assert_eq!(products.get(other.id).await.unwrap(), None, "the second product was not written");
    assert_eq!(idempotency.find(&key).await.unwrap(), Some(crate::replayable(&record)));
    // The SKU guard still holds under a fresh key.
    let clash = products.create(&product, None).await;
    assert!(matches!(clash, Err(StoreError::AlreadyExists(Taken::Sku | Taken::Id))), "{clash:?}");
}

/// A reservation takes stock for every line or for none, decides once, and
/// always carries its email event. `products` must hold the products
/// `orders` reserves (the same table).
pub async fn reservation_is_all_or_nothing(
    users: &impl UserStore,
    products: &impl ProductStore,
    orders: &impl OrderStore,
) {
    let plenty = new_product(100, 10);
    let scarce = new_product(100, 1);
    products.insert(&plenty).await.unwrap();
    products.insert(&scarce).await.unwrap();
    let owner = stored_customer(users).await;

    let greedy = new_order(owner, &[&plenty, &scarce], 2);
    orders.place(&greedy, &DomainEvent::order_placed(greedy.id, owner, "c", now()), None).await.unwrap();
    let (outcome, event) = orders.reserve(greedy.id, &email_event).await.unwrap();
    assert_eq!(outcome, Reservation::Rejected);
    assert!(event.is_some(), "a decision always carries its email");
    let rejected = orders.get(greedy.id).await.unwrap().unwrap();
    assert_eq!(rejected.status, OrderStatus::Rejected);
    assert!(rejected.reason.as_deref().unwrap_or_default().contains(scarce.sku.as_ref()), "{:?}", rejected.reason);
    assert_eq!(products.get(plenty.id).await.unwrap().unwrap().stock, 10, "nothing was taken from any line");

    let modest = new_order(owner, &[&plenty, &scarce], 1);
    orders.place(&modest, &DomainEvent::order_placed(modest.id, owner, "c", now()), None).await.unwrap();
    let (outcome, _) = orders.reserve(modest.id, &email_event).await.unwrap();
    assert_eq!(outcome, Reservation::Confirmed);
    assert_eq!(products.get(plenty.id).await.unwrap().unwrap().stock, 9);
    assert_eq!(products.get(scarce.id).await.unwrap().unwrap().stock, 0);
    let (again, event) = orders.reserve(modest.id, &email_event).await.unwrap();
    assert_eq!((again, event), (Reservation::NotPending, None), "a second reservation takes nothing");
    assert_eq!(products.get(plenty.id).await.unwrap().unwrap().stock, 9);
    assert!(matches!(orders.reserve(domain::OrderId::generate(), &email_event).await, Err(StoreError::NotFound)));
}

/// Cancelling a confirmed order gives its stock back; a transition lands only
/// on the version it was made from, and only on an order that exists.
pub async fn cancelling_a_confirmed_order_gives_its_stock_back(
    users: &impl UserStore,
    products: &impl ProductStore,
    orders: &impl OrderStore,
) {
    let product = new_product(100, 5);
    products.insert(&product).await.unwrap();
    let owner = stored_customer(users).await;
    let order = new_order(owner, &[&product], 3);
    orders.place(&order, &DomainEvent::order_placed(order.id, owner, "c", now()), None).await.unwrap();
    orders.reserve(order.id, &email_event).await.unwrap();
    let confirmed = orders.get(order.id).await.unwrap().unwrap();
    let cancelled = confirmed.transitioned(OrderStatus::Cancelled, None, now()).unwrap();
    orders.transition(&confirmed, &cancelled).await.unwrap();
    assert_eq!(products.get(product.id).await.unwrap().unwrap().stock, 5);
    assert!(matches!(orders.transition(&confirmed, &cancelled).await, Err(StoreError::VersionMismatch)));
    let stranger = new_order(owner, &[&product], 1);
    let next = stranger.transitioned(OrderStatus::Cancelled, None, now()).unwrap();
    assert!(matches!(orders.transition(&stranger, &next).await, Err(StoreError::NotFound)));
}

/// The caps [`hold_limits_contract`] configures: 3 open orders, 5 units of one product.
pub fn hold_limits_contract() -> domain::HoldLimits {
    domain::HoldLimits::new(3, 5).expect("positive caps")
}

/// An account's open orders stay within its caps, even for orders racing
/// each other; an order that ends (rejected, cancelled, shipped) frees its
/// place and its units; one account's holdings never limit another's.
/// `orders` must refuse beyond [`hold_limits_contract`], and `products` hold
/// the products it reserves.
pub async fn open_orders_stay_within_the_caps(
    users: &impl UserStore,
    products: &impl ProductStore,
    orders: &impl OrderStore,
) {
    let plenty = new_product(100, 100);
    let scarce = new_product(100, 1);
    products.insert(&plenty).await.unwrap();
    products.insert(&scarce).await.unwrap();
    let owner = stored_customer(users).await;
    let placed =
        |order: &Order| DomainEvent::order_placed(order.id, order.owner.expect("placed by an account"), "c", now());

    // Eight orders at once for three places: exactly three are taken.
    let racers: Vec<Order> = (0..8).map(|_| new_order(owner, &[&plenty], 1)).collect();
    let events: Vec<DomainEvent> = racers.iter().map(placed).collect();
    let outcomes =
        futures::future::join_all(racers.iter().zip(&events).map(|(order, event)| orders.place(order, event, None)))
            .await;
    let won: Vec<&Order> = racers.iter().zip(&outcomes).filter(|(_, o)| o.is_ok()).map(|(order, _)| order).collect();
    let capped = outcomes
        .iter()
        .filter(|o| matches!(o, Err(StoreError::LimitReached(domain::HoldLimitExceeded::OpenOrders { limit: 3 }))))
        .count();
    assert_eq!((won.len(), capped), (3, 5), "{outcomes:?}");
    for (order, outcome) in racers.iter().zip(&outcomes) {
        assert_eq!(orders.get(order.id).await.unwrap().is_some(), outcome.is_ok(), "a refused order is not stored");
    }
    let stranger = new_order(stored_customer(users).await, &[&plenty], 5);
    orders.place(&stranger, &placed(&stranger), None).await.expect("another account has its own caps");

    // Each way an order ends frees its place.
    let pending = orders.get(won[0].id).await.unwrap().unwrap();
    orders.transition(&pending, &pending.transitioned(OrderStatus::Cancelled, None, now()).unwrap()).await.unwrap();
    orders.reserve(won[1].id, &email_event).await.unwrap();
    let confirmed = orders.get(won[1].id).await.unwrap().unwrap();
    orders.transition(&confirmed, &confirmed.transitioned(OrderStatus::Shipped, None, now()).unwrap()).await.unwrap();
    let doomed = new_order(owner, &[&scarce], 2);
    orders.place(&doomed, &placed(&doomed), None).await.expect("a place is free again");
    assert_eq!(orders.reserve(doomed.id, &email_event).await.unwrap().0, Reservation::Rejected);

    // Units of one product count across open orders, up to the cap exactly.
    let four = new_order(owner, &[&scarce, &plenty], 2);
    orders.place(&four, &placed(&four), None).await.expect("two open orders now");
    let over = new_order(owner, &[&plenty], 4);
    let refused = orders.place(&over, &placed(&over), None).await;
    assert!(
        matches!(
            &refused,
            Err(StoreError::LimitReached(domain::HoldLimitExceeded::ProductUnits { product_id, line: 0, limit: 5 }))
                if *product_id == plenty.id
        ),
        "1 + 2 held, 4 more is beyond 5: {refused:?}"
    );
    let alone = new_order(stored_customer(users).await, &[&plenty], 6);
    assert!(matches!(orders.place(&alone, &placed(&alone), None).await, Err(StoreError::LimitReached(_))));
    let exact = new_order(owner, &[&plenty], 2);
    orders.place(&exact, &placed(&exact), None).await.expect("1 + 2 + 2 units is exactly the cap");
}

/// The expiry's view: open orders placed before a moment, oldest first per
/// status, without the ended or the younger; its change lands only on the
/// version listed and gives confirmed stock back.
pub async fn open_orders_are_listed_by_age_for_the_expiry(
    users: &impl UserStore,
    products: &impl ProductStore,
    orders: &impl OrderStore,
) {
    let product = new_product(100, 10);
    products.insert(&product).await.unwrap();
    let owner = stored_customer(users).await;
    let placed =
        |order: &Order| DomainEvent::order_placed(order.id, order.owner.expect("placed by an account"), "c", now());
    let mut old = Vec::new();
    for _ in 0..3 {
        let order = new_order(owner, &[&product], 2);
        orders.place(&order, &placed(&order), None).await.unwrap();
        old.push(order);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    orders.reserve(old[1].id, &email_event).await.unwrap();
    let ended = orders.get(old[2].id).await.unwrap().unwrap();
    orders.transition(&ended, &ended.transitioned(OrderStatus::Cancelled, None, now()).unwrap()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2)).await;
    let cutoff = now();
    tokio::time::sleep(Duration::from_millis(2)).await;
    let young = new_order(owner, &[&product], 1);
    orders.place(&young, &placed(&young), None).await.unwrap();

    let due = orders.open_orders_placed_before(cutoff, 10).await.unwrap();
    let listed: Vec<(domain::OrderId, OrderStatus)> = due.iter().map(|o| (o.id, o.status)).collect();
    assert_eq!(listed, [(old[0].id, OrderStatus::Pending), (old[1].id, OrderStatus::Confirmed)]);
    assert_eq!(products.get(product.id).await.unwrap().unwrap().stock, 8);

    let confirmed = &due[1];
    let expired = confirmed.transitioned(OrderStatus::Cancelled, Some("expired".into()), now()).unwrap();
    orders.transition_with_event(confirmed, &expired, Some(&email_event(&expired))).await.unwrap();
    assert_eq!(orders.get(confirmed.id).await.unwrap().unwrap().reason.as_deref(), Some("expired"));
    assert_eq!(products.get(product.id).await.unwrap().unwrap().stock, 10, "its stock is back");
    let again = orders.transition_with_event(confirmed, &expired, Some(&email_event(&expired))).await;
    assert!(matches!(again, Err(StoreError::VersionMismatch)), "a second expiry of the same version loses");
    let left = orders.open_orders_placed_before(cutoff, 10).await.unwrap();
    assert_eq!(left.iter().map(|o| o.id).collect::<Vec<_>>(), [old[0].id]);
}

/// Order listings filter by owner and by status, newest first.
pub async fn order_listings_filter_by_owner_and_status(users: &impl UserStore, orders: &impl OrderStore) {
    let product = new_product(100, 5);
    let (alice, bob) = (stored_customer(users).await, stored_customer(users).await);
    let mut placed = Vec::new();
    for owner in [alice, alice, bob] {
        let order = new_order(owner, &[&product], 1);
        orders.place(&order, &DomainEvent::order_placed(order.id, owner, "c", now()), None).await.unwrap();
        placed.push(order);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let cancelled = placed[0].transitioned(OrderStatus::Cancelled, None, now()).unwrap();
    orders.transition(&placed[0], &cancelled).await.unwrap();
    let ten = page("10", None);
    let list = |owner, status| orders.list(OrderFilter { owner, status }, &ten);
    assert_eq!(list(Some(alice), None).await.unwrap().total, 2);
    let pending = list(Some(alice), Some(OrderStatus::Pending)).await.unwrap();
    assert_eq!((pending.total, pending.items[0].id), (1, placed[1].id));
    assert_eq!(list(None, Some(OrderStatus::Cancelled)).await.unwrap().total, 1);
    let everyone = list(None, None).await.unwrap();
    assert_eq!(everyone.total, 3);
    assert_eq!(everyone.items.iter().map(|o| o.id).collect::<Vec<_>>(), [placed[2].id, placed[1].id, placed[0].id]);
}

/// A claim is exclusive until done or released, an expired claim is free, and
/// release never undoes done. `claims` must hold a claim for less time than
/// `wait_past_expiry` waits.
pub async fn message_claims_hold_until_they_expire(claims: &impl MessageClaims, wait_past_expiry: impl AsyncFn()) {
    let key = format!("contract#{}", UserId::generate());
    assert_eq!(claims.claim(&key).await.unwrap(), Claim::Acquired);
    assert_eq!(claims.claim(&key).await.unwrap(), Claim::InProgress, "held, not done: never a duplicate");
    wait_past_expiry().await;
    assert_eq!(claims.claim(&key).await.unwrap(), Claim::Acquired, "a lapsed claim (a crashed holder) is free");
    claims.complete(&key).await.unwrap();
    assert_eq!(claims.claim(&key).await.unwrap(), Claim::Done);
    claims.release(&key).await.unwrap();
    assert_eq!(claims.claim(&key).await.unwrap(), Claim::Done, "release never undoes done");

    let failed = format!("contract#{}", UserId::generate());
    assert_eq!(claims.claim(&failed).await.unwrap(), Claim::Acquired);
    claims.release(&failed).await.unwrap();
    assert_eq!(claims.claim(&failed).await.unwrap(), Claim::Acquired, "a released claim is free at once");
}

/// Concurrent attempts are counted atomically; reset and refund give
/// attempts back; keys are counted apart. `throttle` must allow 3 attempts
/// per window.
pub async fn throttles_count_every_attempt(throttle: &impl Throttle) {
    let key = format!("contract-{}", UserId::generate());
    // A refund with nothing counted gives nothing: the window never goes below zero.
    throttle.refund(&key).await.unwrap();
    // Started together, so the counting itself must be atomic.
    let decisions: Vec<bool> = futures::future::join_all((0..5).map(|_| throttle.hit(&key)))
        .await
        .into_iter()
        .map(|d| d.unwrap().allowed)
        .collect();
    assert_eq!(decisions.iter().filter(|allowed| **allowed).count(), 3, "{decisions:?}");
    throttle.reset(&key).await.unwrap();
    let fresh = throttle.hit(&key).await.unwrap();
    assert_eq!((fresh.allowed, fresh.remaining), (true, 2), "a reset forgets the window");
    assert!(throttle.hit(&key).await.unwrap().allowed);
    assert!(throttle.hit(&key).await.unwrap().allowed);
    throttle.refund(&key).await.unwrap();
    assert!(throttle.hit(&key).await.unwrap().allowed, "a refund gives one attempt back");
    assert!(!throttle.hit(&key).await.unwrap().allowed);
    let other = throttle.hit(&format!("{key}-other")).await.unwrap();
    assert!(other.allowed, "keys are counted apart");
}

/// A remembered key is known and no other is; an entry lapses after the
/// history's time to live (`lapse` lets it pass: the store must treat an
/// expired entry as absent, as DynamoDB's TTL deletes it lazily); remembering
/// again starts it afresh. `history` must keep entries for about a second.
pub async fn sign_in_histories_forget_after_their_time_to_live(
    history: &impl domain::ports::SignInHistory,
    lapse: impl AsyncFn(),
) {
    let key = format!("contract-{}", UserId::generate());
    assert!(!history.knows(&key).await.unwrap(), "nothing is known at first");
    history.remember(&key).await.unwrap();
    assert!(history.knows(&key).await.unwrap(), "a remembered key is known at once");
    assert!(!history.knows(&format!("{key}-other")).await.unwrap(), "keys are apart");
    lapse().await;
    assert!(!history.knows(&key).await.unwrap(), "an expired entry is absent");
    history.remember(&key).await.unwrap();
    assert!(history.knows(&key).await.unwrap(), "remembering again renews it");
}

/// A hash standing for the secret `n` (the stores see only hashes).
fn secret_hash(n: u8) -> domain::SecretHash {
    domain::SecretHash::from_bytes([n; 32])
}

fn session_of(user: UserId, hash: u8, now: OffsetDateTime) -> domain::Session {
    domain::Session::start(user, Role::User, false, secret_hash(hash), now, domain::RefreshLifetime::DEFAULT)
}

/// A refresh token works once: rotating replaces the stored hash; the
/// replaced one presented again revokes the whole session, whose newest
/// token then stops working too.
pub async fn sessions_rotate_once_and_a_reused_token_revokes_the_family(sessions: &impl domain::ports::SessionStore) {
    use domain::Rotation;
    let (user, now) = (UserId::generate(), now());
    let session = session_of(user, 1, now);
    sessions.start(&session).await.expect("start");
    assert!(matches!(sessions.start(&session).await, Err(StoreError::AlreadyExists(Taken::Id))));
    let later = now + Duration::from_secs(60);
    let expires = later + Duration::from_secs(3600);
    let rotated = sessions.rotate(user, session.id, &secret_hash(1), &secret_hash(2), later, expires).await.unwrap();
    let Rotation::Rotated(stored) = rotated else { panic!("the current token rotates: {rotated:?}") };
    assert_eq!(stored.secret_hash, secret_hash(2));
    assert_eq!(stored.expires_at.unix_timestamp(), expires.unix_timestamp());
    assert_eq!((stored.started_at, stored.role), (session.started_at, Role::User), "the rest is kept");
    let rotated = sessions.rotate(user, session.id, &secret_hash(2), &secret_hash(3), later, expires).await.unwrap();
    assert!(matches!(rotated, Rotation::Rotated(_)), "the new token rotates in turn: {rotated:?}");

    // The first token again: theft detected, the family is gone.
    let reused = sessions.rotate(user, session.id, &secret_hash(1), &secret_hash(9), later, expires).await.unwrap();
    assert_eq!(reused, Rotation::Reused);
    let newest = sessions.rotate(user, session.id, &secret_hash(3), &secret_hash(4), later, expires).await.unwrap();
    assert_eq!(newest, Rotation::Unknown, "the newest token of a revoked family is refused");
    assert!(sessions.list(user, later).await.unwrap().is_empty());
    // Another account's id with this session's id finds nothing.
    let (current, next) = (secret_hash(3), secret_hash(4));
    let other = sessions.rotate(UserId::generate(), session.id, &current, &next, later, expires).await.unwrap();
    assert_eq!(other, Rotation::Unknown);
}

/// An expired token does not rotate (the time is the caller's, so a moved
/// clock expires it) and ends its session.
pub async fn expired_sessions_do_not_rotate(sessions: &impl domain::ports::SessionStore) {
    use domain::Rotation;
    let (user, now) = (UserId::generate(), now());
    let session = session_of(user, 1, now);
    sessions.start(&session).await.unwrap();
    let at_expiry = session.expires_at;
    assert_eq!(sessions.list(user, at_expiry - Duration::from_secs(1)).await.unwrap(), vec![session.clone()]);
    assert!(sessions.list(user, at_expiry).await.unwrap().is_empty(), "not live at its expiry");
    let expires = at_expiry + Duration::from_secs(3600);
    let late = sessions.rotate(user, session.id, &secret_hash(1), &secret_hash(2), at_expiry, expires).await.unwrap();
    assert_eq!(late, Rotation::Expired);
    let again = sessions.rotate(user, session.id, &secret_hash(1), &secret_hash(2), now, expires).await.unwrap();
    assert_eq!(again, Rotation::Unknown, "an expired session is ended, not kept for later");
}

/// Logout ends one session; logging out everywhere ends every session of
/// the account but the one kept, and no other account's.
pub async fn sessions_end_one_or_all(sessions: &impl domain::ports::SessionStore) {
    let (user, other, now) = (UserId::generate(), UserId::generate(), now());
    let mine: Vec<domain::Session> = (1..=4).map(|n| session_of(user, n, now)).collect();
    let theirs = session_of(other, 5, now);
    for session in mine.iter().chain([&theirs]) {
        sessions.start(session).await.unwrap();
    }
    assert!(sessions.end(user, mine[0].id).await.unwrap());
    assert!(!sessions.end(user, mine[0].id).await.unwrap(), "ending twice is harmless");
    assert!(!sessions.end(other, mine[1].id).await.unwrap(), "another account cannot end it");
    assert_eq!(sessions.list(user, now).await.unwrap().len(), 3);
    assert_eq!(sessions.end_all(user, Some(mine[3].id)).await.unwrap(), 2);
    let left: Vec<_> = sessions.list(user, now).await.unwrap().into_iter().map(|session| session.id).collect();
    assert_eq!(left, vec![mine[3].id]);
    assert_eq!(sessions.end_all(user, None).await.unwrap(), 1);
    assert!(sessions.list(user, now).await.unwrap().is_empty());
    assert_eq!(sessions.list(other, now).await.unwrap(), vec![theirs], "another account's session is untouched");
}

/// Many refreshes with one token at the same moment, on as many threads:
/// exactly one rotates it, the others find it rotated and revoke the
/// family, so the winner's new token is dead too (a stolen token raced
/// against its owner gives the thief nothing lasting).
pub async fn concurrent_refreshes_with_one_token_rotate_once<S>(sessions: S)
where
    S: domain::ports::SessionStore + Clone + 'static,
{
    use domain::Rotation;
    let (user, now) = (UserId::generate(), now());
    let session = session_of(user, 1, now);
    sessions.start(&session).await.unwrap();
    let expires = now + Duration::from_secs(3600);
    let racers: Vec<_> = (0..8_u8)
        .map(|n| {
            let sessions = sessions.clone();
            tokio::spawn(async move {
                sessions.rotate(user, session.id, &secret_hash(1), &secret_hash(10 + n), now, expires).await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for racer in racers {
        outcomes.push(racer.await.expect("no panic").expect("the store answers"));
    }
    let rotated: Vec<_> = outcomes.iter().filter(|outcome| matches!(outcome, Rotation::Rotated(_))).collect();
    assert_eq!(rotated.len(), 1, "exactly one refresh wins: {outcomes:?}");
    assert!(outcomes.contains(&Rotation::Reused), "a loser finds the token rotated and revokes: {outcomes:?}");
    let Rotation::Rotated(winner) = rotated[0] else { unreachable!() };
    let after = sessions.rotate(user, session.id, &winner.secret_hash, &secret_hash(99), now, expires).await.unwrap();
    assert_eq!(after, Rotation::Unknown, "the family was revoked, the winner's token with it");
}

/// A pending TOTP enrolment of a fresh account, with a secret made of `fill`.
fn pending_enrolment(user: UserId, fill: u8) -> domain::totp::TotpEnrolment {
    let secret = domain::totp::TotpSecret::from_random([fill; domain::totp::SECRET_BYTES]);
    domain::totp::TotpEnrolment::begin(user, secret, now())
}

fn recovery_hashes(user: UserId, count: u8) -> Vec<domain::totp::RecoveryCodeHash> {
    (0..count)
        .map(|n| domain::totp::RecoveryCode::from_random([n; domain::totp::RECOVERY_CODE_BYTES]).hash(user))
        .collect()
}

/// An enrolment stays pending until a code confirms it; a newer pending
/// enrolment replaces an older one, whose secret can then no longer be
/// confirmed; a confirmed one is never replaced.
pub async fn totp_enrolment_is_pending_until_confirmed(factors: &impl domain::ports::SecondFactorStore) {
    use domain::ports::EnrolmentStart;
    use domain::totp::{EnrolmentState, TimeStep};
    let user = UserId::generate();
    assert_eq!(factors.enrolment(user).await.unwrap(), None);
    let first = pending_enrolment(user, 1);
    assert_eq!(factors.begin(&first).await.unwrap(), EnrolmentStart::Begun);
    let stored = factors.enrolment(user).await.unwrap().expect("stored");
    assert_eq!((stored.state, stored.last_step), (EnrolmentState::Pending, None));
    assert_eq!(stored.secret, first.secret);
    assert!(!factors.use_step(user, TimeStep::from_stored(5)).await.unwrap(), "pending: no code is used");

    let second = pending_enrolment(user, 2);
    assert_eq!(factors.begin(&second).await.unwrap(), EnrolmentStart::Begun, "a pending one is replaced");
    let step = TimeStep::from_stored(1_000);
    assert!(!factors.confirm(&first, step, &recovery_hashes(user, 10)).await.unwrap(), "the old secret is gone");
    assert!(factors.confirm(&second, step, &recovery_hashes(user, 10)).await.unwrap());
    assert!(!factors.confirm(&second, step, &recovery_hashes(user, 3)).await.unwrap(), "confirmed once");
    let confirmed = factors.enrolment(user).await.unwrap().expect("stored");
    assert_eq!((confirmed.state, confirmed.last_step), (EnrolmentState::Confirmed, Some(step)));
    assert_eq!(confirmed.secret, second.secret);
    assert_eq!(factors.recovery_codes_left(user).await.unwrap(), 10);
    assert_eq!(factors.begin(&pending_enrolment(user, 3)).await.unwrap(), EnrolmentStart::AlreadyConfirmed);
    assert_eq!(factors.enrolment(user).await.unwrap().expect("kept").secret, second.secret, "nothing replaced");
    assert_eq!(factors.enrolment(UserId::generate()).await.unwrap(), None, "accounts are apart");

    // An operator's reset removes it whole; again, it finds nothing; the account enrols anew.
    let bystander = UserId::generate();
    factors.begin(&pending_enrolment(bystander, 5)).await.unwrap();
    assert!(factors.remove(user).await.unwrap(), "the confirmed enrolment and its codes were there");
    assert_eq!(factors.enrolment(user).await.unwrap(), None);
    assert_eq!(factors.recovery_codes_left(user).await.unwrap(), 0);
    assert!(!factors.remove(user).await.unwrap(), "nothing is left to remove");
    assert_eq!(factors.begin(&pending_enrolment(user, 4)).await.unwrap(), EnrolmentStart::Begun, "enrols anew");
    assert!(factors.enrolment(bystander).await.unwrap().is_some(), "another account keeps its own");
}

/// Codes of one step sent at the same moment, on as many threads: exactly
/// one is accepted; a step no later than the last accepted one is refused
/// (a replay, or an older code), a later one accepted.
pub async fn a_totp_step_is_used_once<S>(factors: S)
where
    S: domain::ports::SecondFactorStore + Clone + 'static,
{
    use domain::totp::TimeStep;
    let user = UserId::generate();
    let pending = pending_enrolment(user, 7);
    factors.begin(&pending).await.unwrap();
    assert!(factors.confirm(&pending, TimeStep::from_stored(100), &[]).await.unwrap());
    assert!(!factors.use_step(user, TimeStep::from_stored(100)).await.unwrap(), "the confirming step is used");
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let factors = factors.clone();
            tokio::spawn(async move { factors.use_step(user, TimeStep::from_stored(101)).await })
        })
        .collect();
    let mut accepted = 0;
    for racer in racers {
        accepted += usize::from(racer.await.expect("no panic").expect("the store answers"));
    }
    assert_eq!(accepted, 1, "exactly one use of a step wins");
    assert!(!factors.use_step(user, TimeStep::from_stored(100)).await.unwrap(), "an older step is refused");
    assert!(factors.use_step(user, TimeStep::from_stored(103)).await.unwrap(), "a later step is accepted");
    assert!(!factors.use_step(UserId::generate(), TimeStep::from_stored(200)).await.unwrap(), "no enrolment");
}

/// A recovery code works once, even when sent on many threads at once;
/// the others stay usable; a new confirmation replaces the codes.
pub async fn a_recovery_code_is_used_once<S>(factors: S)
where
    S: domain::ports::SecondFactorStore + Clone + 'static,
{
    use domain::totp::TimeStep;
    let user = UserId::generate();
    let pending = pending_enrolment(user, 9);
    factors.begin(&pending).await.unwrap();
    let codes = recovery_hashes(user, 10);
    assert!(factors.confirm(&pending, TimeStep::from_stored(100), &codes).await.unwrap());
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let (factors, code) = (factors.clone(), codes[3].clone());
            tokio::spawn(async move { factors.use_recovery_code(user, &code).await })
        })
        .collect();
    let mut accepted = 0;
    for racer in racers {
        accepted += usize::from(racer.await.expect("no panic").expect("the store answers"));
    }
    assert_eq!(accepted, 1, "exactly one use of a recovery code wins");
    assert!(!factors.use_recovery_code(user, &codes[3]).await.unwrap(), "used up");
    assert_eq!(factors.recovery_codes_left(user).await.unwrap(), 9);
    assert!(factors.use_recovery_code(user, &codes[4]).await.unwrap(), "the others still work");
    assert!(!factors.use_recovery_code(UserId::generate(), &codes[5]).await.unwrap(), "only for their account");
    let stranger = recovery_hashes(UserId::generate(), 1).remove(0);
    assert!(!factors.use_recovery_code(user, &stranger).await.unwrap(), "an unknown code is refused");
    for code in &codes[5..] {
        assert!(factors.use_recovery_code(user, code).await.unwrap());
    }
    for code in &codes[..3] {
        assert!(factors.use_recovery_code(user, code).await.unwrap());
    }
    assert_eq!(factors.recovery_codes_left(user).await.unwrap(), 0, "every code used");
    assert!(!factors.use_recovery_code(user, &codes[0]).await.unwrap(), "none twice, even the last one");
}

/// A pending verification for `user` with a token made of `fill` (one
/// character repeated), issued at `now` for an hour.
fn verification_for(
    user: &User,
    fill: char,
    now: OffsetDateTime,
) -> (domain::VerificationToken, domain::PendingVerification) {
    let token = domain::VerificationToken::new(user.id, std::iter::repeat_n(fill, 43).collect()).expect("valid");
    let ttl = domain::VerificationTtl::new(3600).expect("valid");
    let pending = domain::PendingVerification::of(&token, now, ttl);
    (token, pending)
}

fn verify_email_event(user: &User) -> DomainEvent {
    let task = domain::EmailTask::VerifyEmail {
        to: user.email.to_string(),
        dedupe_key: format!("verify-email#{}", user.id),
        link: "https://shop.example.com/verify-email".into(),
    };
    DomainEvent::email_requested(task, "contract", now())
}

fn welcome(user: &User) -> DomainEvent {
    let task = domain::EmailTask::Welcome { to: user.email.to_string(), dedupe_key: format!("welcome#{}", user.id) };
    DomainEvent::email_requested(task, "contract", now())
}

/// A verification link works once, only with its own token, only until it
/// expires, and only the latest link of an account works; the account reads
/// back verified by id and by email.
pub async fn verification_links_work_once_and_only_until_they_expire(
    users: &impl UserStore,
    verifications: &impl domain::ports::Verifications,
) {
    use domain::VerifyOutcome;
    let issued = now();
    let user = new_user("verify");
    assert!(!user.email_verified);
    let (token, pending) = verification_for(&user, 'A', issued);
    verifications.register(&user, &pending, &verify_email_event(&user), None).await.expect("registered");
    assert_eq!(users.find_by_email(&user.email).await.unwrap().map(|u| u.email_verified), Some(false));
    let mut twin = new_user("verify-twin");
    twin.email = user.email.clone();
    let (_, twin_pending) = verification_for(&twin, 'A', issued);
    let taken = verifications.register(&twin, &twin_pending, &verify_email_event(&twin), None).await;
    assert!(matches!(taken, Err(StoreError::AlreadyExists(Taken::Email))), "{taken:?}");

    let (other, _) = verification_for(&user, 'B', issued);
    let outcome = verifications.verify(user.id, &other.hash(), issued, &welcome).await.unwrap();
    assert_eq!(outcome, VerifyOutcome::Refused, "another token");
    let late = issued + time::Duration::hours(1);
    let outcome = verifications.verify(user.id, &token.hash(), late, &welcome).await.unwrap();
    assert_eq!(outcome, VerifyOutcome::Refused, "expired at its deadline");
    let outcome = verifications.verify(UserId::generate(), &token.hash(), issued, &welcome).await.unwrap();
    assert_eq!(outcome, VerifyOutcome::Refused, "no such account");
    assert_eq!(users.get(user.id).await.unwrap().map(|u| (u.email_verified, u.version)), Some((false, 1)));

    let outcome = verifications.verify(user.id, &token.hash(), issued + time::Duration::minutes(59), &welcome).await;
    let VerifyOutcome::Verified(event) = outcome.unwrap() else { panic!("the link verifies") };
    assert!(
        matches!(&event.data, domain::EventData::EmailRequested(domain::EmailTask::Welcome { to, .. }) if *to == user.email.to_string())
    );
    let stored = users.find_by_email(&user.email).await.unwrap().unwrap();
    assert_eq!((stored.email_verified, stored.version), (true, 2), "the email lookup sees it too");
    assert_eq!(users.get(user.id).await.unwrap().unwrap(), stored);
    let again = verifications.verify(user.id, &token.hash(), issued, &welcome).await.unwrap();
    assert_eq!(again, VerifyOutcome::AlreadyVerified, "a second click is harmless");
    assert_eq!(users.get(user.id).await.unwrap().unwrap().version, 2, "and changes nothing");

    // A fresh link replaces the older one.
    let second = new_user("verify-renewed");
    let (first_token, first_pending) = verification_for(&second, 'C', issued);
    verifications.register(&second, &first_pending, &verify_email_event(&second), None).await.unwrap();
    let (new_token, new_pending) = verification_for(&second, 'D', issued);
    verifications.renew(&new_pending, &verify_email_event(&second), None).await.unwrap();
    let outcome = verifications.verify(second.id, &first_token.hash(), issued, &welcome).await.unwrap();
    assert_eq!(outcome, VerifyOutcome::Refused, "the older link stopped working");
    let outcome = verifications.verify(second.id, &new_token.hash(), issued, &welcome).await.unwrap();
    assert!(matches!(outcome, VerifyOutcome::Verified(_)), "{outcome:?}");

    // A notice and a renewal claim their idempotency key with the write.
    let key = format!("auth:register#guest#{}", UserId::generate());
    let record = record_for(key.clone(), "/api/v1/auth/register".into());
    verifications.notify(&welcome(&second), Some(&record)).await.unwrap();
    let again = verifications.renew(&new_pending, &verify_email_event(&second), Some(&record)).await;
    assert!(matches!(again, Err(StoreError::AlreadyExists(Taken::IdempotencyKey))), "{again:?}");
}

/// Many attempts with one link at the same moment, in parallel: exactly one
/// verifies (one welcome, one version step), the others find the account
/// verified.
pub async fn concurrent_verifications_with_one_link_verify_once<V>(users: &impl UserStore, verifications: &V)
where
    V: domain::ports::Verifications + Clone + 'static,
{
    use domain::VerifyOutcome;
    let issued = now();
    let user = new_user("verify-race");
    let (token, pending) = verification_for(&user, 'E', issued);
    verifications.register(&user, &pending, &verify_email_event(&user), None).await.unwrap();
    let attempts: Vec<_> = (0..16)
        .map(|_| {
            let (verifications, hash) = (verifications.clone(), token.hash());
            tokio::spawn(async move { verifications.verify(user.id, &hash, issued, &welcome).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for attempt in attempts {
        outcomes.push(attempt.await.expect("no panic").expect("no store error"));
    }
    let verified = outcomes.iter().filter(|outcome| matches!(outcome, VerifyOutcome::Verified(_))).count();
    let already = outcomes.iter().filter(|outcome| **outcome == VerifyOutcome::AlreadyVerified).count();
    assert_eq!((verified, already), (1, 15), "{outcomes:?}");
    let stored = users.get(user.id).await.unwrap().unwrap();
    assert_eq!((stored.email_verified, stored.version), (true, 2), "verified once");
}

fn reset_of(user: &User, secret: u8, now: OffsetDateTime, lifetime: Duration) -> domain::PendingReset {
    let lifetime = domain::ResetLifetime::new(lifetime).expect("positive");
    domain::PendingReset::new(user.id, secret_hash(secret), secret_hash(0), now, lifetime)
}

fn with_new_password(user: &User, n: u8) -> User {
    let hash = PasswordHash::from_phc(format!("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$bmV3{n:02}"));
    User { password_hash: hash, version: user.version + 1, ..user.clone() }
}

fn changed_email(user: &User) -> DomainEvent {
    let task = domain::EmailTask::PasswordChanged { to: user.email.to_string(), dedupe_key: format!("c#{}", user.id) };
    DomainEvent::email_requested(task, "contract", now())
}

/// A reset works once, only with the newest link, only before it expires,
/// and only on the account as it was read; each refusal changes nothing.
pub async fn password_resets_work_once_until_replaced_or_expired(
    users: &impl UserStore,
    resets: &impl domain::ports::PasswordResets,
) {
    let (user, now) = (new_user("reset"), now());
    users.insert(&user, None).await.unwrap();
    let hour = Duration::from_secs(3600);
    let first = reset_of(&user, 1, now, hour);
    resets.request(&first, &changed_email(&user)).await.unwrap();
    assert_eq!(resets.pending(user.id).await.unwrap(), Some(first));
    let second = reset_of(&user, 2, now, hour);
    resets.request(&second, &changed_email(&user)).await.unwrap();
    assert_eq!(resets.pending(user.id).await.unwrap(), Some(second.clone()), "a newer request replaces the older");

    let changed = with_new_password(&user, 1);
    let older = resets.complete(&changed, &secret_hash(1), now, &changed_email(&changed)).await;
    assert!(matches!(older, Err(StoreError::NotFound)), "the replaced link is refused: {older:?}");
    let late = resets.complete(&changed, &secret_hash(2), second.expires_at, &changed_email(&changed)).await;
    assert!(matches!(late, Err(StoreError::NotFound)), "expired: {late:?}");
    let stale = with_new_password(&with_new_password(&user, 9), 1);
    let raced = resets.complete(&stale, &secret_hash(2), now, &changed_email(&stale)).await;
    assert!(matches!(raced, Err(StoreError::VersionMismatch)), "the account moved on: {raced:?}");
    assert_eq!(users.get(user.id).await.unwrap(), Some(user.clone()), "nothing was written");

    resets.complete(&changed, &secret_hash(2), now, &changed_email(&changed)).await.expect("the newest link, in time");
    assert_eq!(users.get(user.id).await.unwrap(), Some(changed.clone()));
    assert_eq!(users.find_by_email(&user.email).await.unwrap(), Some(changed.clone()), "the email lookup sees it");
    assert_eq!(resets.pending(user.id).await.unwrap(), None, "used up");
    let again = with_new_password(&changed, 3);
    let twice = resets.complete(&again, &secret_hash(2), now, &changed_email(&again)).await;
    assert!(matches!(twice, Err(StoreError::NotFound)), "a link works once: {twice:?}");
}

/// Many confirmations with one link at the same moment, on as many threads:
/// exactly one sets a password.
pub async fn concurrent_confirmations_complete_once<U, R>(users: U, resets: R)
where
    U: UserStore,
    R: domain::ports::PasswordResets + Clone + 'static,
{
    let (user, now) = (new_user("reset-race"), now());
    users.insert(&user, None).await.unwrap();
    resets.request(&reset_of(&user, 1, now, Duration::from_secs(3600)), &changed_email(&user)).await.unwrap();
    let racers: Vec<_> = (0..8_u8)
        .map(|n| {
            let (resets, changed) = (resets.clone(), with_new_password(&user, n));
            tokio::spawn(async move { resets.complete(&changed, &secret_hash(1), now, &changed_email(&changed)).await })
        })
        .collect();
    let mut done = 0;
    for racer in racers {
        match racer.await.expect("no panic") {
            Ok(()) => done += 1,
            Err(StoreError::NotFound | StoreError::VersionMismatch) => {}
            Err(other) => panic!("unexpected: {other:?}"),
        }
    }
    assert_eq!(done, 1, "exactly one confirmation sets a password");
    assert_eq!(users.get(user.id).await.unwrap().unwrap().version, user.version + 1);
}
