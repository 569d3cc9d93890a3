//! Hoarding use cases on in-memory adapters: the caps on what one account's
//! open orders may hold, checked at placement even for orders sent in
//! parallel, and freed when an order ends.

mod support;

use domain::{HoldLimits, OrderId, Role, User};
use framework::http::ApiError;
use http::{Method, StatusCode};
use in_memory::Memory;
use serde_json::{Value, json};
use support::{body, id, product, request, user, with_header, with_path};

fn order_body(product: &domain::Product, quantity: i64) -> Value {
    json!({"lines": [{"product_id": product.id.to_string(), "quantity": quantity}]})
}

/// POST /orders as `buyer`, with a fresh Idempotency-Key, on a store with `limits`.
async fn place(
    memory: &Memory,
    limits: HoldLimits,
    buyer: &User,
    body: Value,
) -> Result<framework::http::ApiResponse, ApiError> {
    let request =
        with_header(request(Method::POST, Some(buyer), Some(body)), "idempotency-key", &ulid::Ulid::new().to_string());
    app::orders::place(
        request,
        &memory.users(),
        &memory.products(),
        &memory.orders_with_limits(limits),
        &memory.idempotency(),
        &memory.publisher(),
    )
    .await
    .map_err(ApiError::from)
}

fn envelope(error: &ApiError) -> Value {
    error.envelope("test")["error"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_orders_sent_in_parallel_for_ten_places_place_exactly_ten() {
    let memory = Memory::new();
    let buyer = user(&memory, Role::User).await;
    let mug = product(&memory, 100, 1000).await;
    let limits = HoldLimits::default();

    let racers: Vec<_> = (0..20)
        .map(|_| {
            let (memory, buyer, body) = (memory.clone(), buyer.clone(), order_body(&mug, 1));
            tokio::spawn(async move { place(&memory, limits, &buyer, body).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for racer in racers {
        outcomes.push(racer.await.expect("no panic"));
    }

    let placed: Vec<String> = outcomes.iter().filter_map(|o| o.as_ref().ok()).map(id).collect();
    let refused: Vec<Value> = outcomes.iter().filter_map(|o| o.as_ref().err()).map(envelope).collect();
    assert_eq!((placed.len(), refused.len()), (10, 10), "{refused:?}");
    for error in &refused {
        assert_eq!(error["code"], "open_order_limit", "{error}");
        assert_eq!(error["details"][0]["limit"], 10, "{error}");
    }
    assert_eq!(memory.holdings(buyer.id).open_orders, 10);
    assert_eq!(memory.published().len(), 10, "no event for a refused order");

    // Cancelling one frees its place for the next order.
    let cancel = with_path(request(Method::DELETE, Some(&buyer), None), &placed[0]);
    app::orders::cancel(cancel, &memory.orders()).await.unwrap();
    let next = place(&memory, limits, &buyer, order_body(&mug, 1)).await.expect("a place was freed");
    assert_eq!(next.status, StatusCode::CREATED);
}

#[tokio::test]
async fn units_of_one_product_are_capped_across_open_orders_and_shipping_frees_them() {
    let memory = Memory::new();
    let (buyer, admin) = (user(&memory, Role::User).await, user(&memory, Role::Admin).await);
    let mug = product(&memory, 100, 1000).await;
    let limits = HoldLimits::new(10, 20).unwrap();

    let too_many = place(&memory, limits, &buyer, order_body(&mug, 21)).await.unwrap_err();
    assert_eq!(too_many.status(), StatusCode::CONFLICT);
    let error = envelope(&too_many);
    assert_eq!(
        (error["code"].as_str(), error["details"][0]["field"].as_str()),
        (Some("product_hold_limit"), Some("lines[0].quantity"))
    );
    assert_eq!(error["details"][0]["limit"], 20);

    let first = place(&memory, limits, &buyer, order_body(&mug, 15)).await.unwrap();
    let refused = place(&memory, limits, &buyer, order_body(&mug, 6)).await.unwrap_err();
    assert_eq!(envelope(&refused)["code"], "product_hold_limit", "15 held + 6 is beyond 20");
    place(&memory, limits, &buyer, order_body(&mug, 5)).await.expect("15 + 5 is exactly 20");

    // Shipped, the first order's units are the customer's, no longer held.
    let first_id = OrderId::parse(&id(&first)).unwrap();
    let notify = |order: &domain::Order| {
        domain::DomainEvent::order_placed(order.id, order.owner.expect("placed by an account"), "t", order.updated_at)
    };
    domain::ports::OrderStore::reserve(&memory.orders(), first_id, &notify).await.unwrap();
    let ship = with_header(
        with_path(request(Method::PATCH, Some(&admin), Some(json!({"status": "shipped"}))), first_id),
        "if-match",
        "*",
    );
    assert_eq!(body(&app::orders::update(ship, &memory.orders()).await.unwrap())["status"], "shipped");
    place(&memory, limits, &buyer, order_body(&mug, 15)).await.expect("the shipped units no longer count");
}

// Expiry: orders open beyond the hold time are cancelled, their stock goes
// back and their owner is told once. Time is passed in (`run_at`), so a test
// moves it by days without waiting.

const HOUR: std::time::Duration = std::time::Duration::from_secs(3600);

async fn confirmed_order(memory: &Memory, buyer: &User, product: &domain::Product, quantity: i64) -> OrderId {
    let placed = place(memory, HoldLimits::default(), buyer, order_body(product, quantity)).await.unwrap();
    let order_id = OrderId::parse(&id(&placed)).unwrap();
    let notify = |order: &domain::Order| {
        domain::DomainEvent::order_placed(order.id, order.owner.expect("placed by an account"), "t", order.updated_at)
    };
    let (outcome, _) = domain::ports::OrderStore::reserve(&memory.orders(), order_id, &notify).await.unwrap();
    assert_eq!(outcome, domain::ports::Reservation::Confirmed);
    order_id
}

fn expiry_emails(memory: &Memory) -> Vec<domain::EmailTask> {
    memory
        .published()
        .into_iter()
        .chain(memory.outbox())
        .filter_map(|event| match event.data {
            domain::EventData::EmailRequested(task @ domain::EmailTask::OrderExpired { .. }) => Some(task),
            _ => None,
        })
        .collect()
}

async fn expire(memory: &Memory, at: time::OffsetDateTime) -> app::expiry::Report {
    let (hold, budget) = (domain::HoldTime::DEFAULT, std::time::Duration::from_secs(60));
    app::expiry::run_at(&memory.orders(), &memory.users(), &memory.publisher(), hold, at, budget).await.unwrap()
}

#[tokio::test]
async fn an_order_open_beyond_the_hold_expires_once_with_its_stock_back_and_one_email() {
    let memory = Memory::new();
    let buyer = user(&memory, Role::User).await;
    let mug = product(&memory, 100, 10).await;
    let confirmed = confirmed_order(&memory, &buyer, &mug, 3).await;
    let pending = place(&memory, HoldLimits::default(), &buyer, order_body(&mug, 1)).await.unwrap();
    let pending = OrderId::parse(&id(&pending)).unwrap();
    assert_eq!(memory.product(mug.id).unwrap().stock, 7);
    let now = time::OffsetDateTime::now_utc();

    assert_eq!(expire(&memory, now + 47 * HOUR).await, app::expiry::Report::default(), "within the hold");
    assert_eq!(memory.order(confirmed).unwrap().status, domain::OrderStatus::Confirmed);

    // The queue is down when the hold runs out: the emails wait in the outbox.
    memory.set_down(in_memory::Dependency::Queues, true);
    let report = expire(&memory, now + 49 * HOUR).await;
    assert_eq!((report.expired, report.lost_races), (2, 0));
    for order_id in [confirmed, pending] {
        let order = memory.order(order_id).unwrap();
        assert_eq!(order.status, domain::OrderStatus::Cancelled);
        assert_eq!(order.reason.as_deref(), Some("expired: not shipped within 48 hours of being placed"));
    }
    assert_eq!(memory.product(mug.id).unwrap().stock, 10, "the confirmed order's stock is back");
    assert_eq!(memory.holdings(buyer.id), domain::Holdings::default(), "nothing held any more");

    // A run retried (a timeout, the next schedule) finds nothing to do.
    memory.set_down(in_memory::Dependency::Queues, false);
    assert_eq!(expire(&memory, now + 50 * HOUR).await, app::expiry::Report::default());
    memory.relay();
    let emails = expiry_emails(&memory);
    assert_eq!(emails.len(), 2, "one email per expired order: {emails:?}");
    assert!(emails.iter().all(|task| task.to() == buyer.email.as_ref()));
    let keys: std::collections::BTreeSet<&str> = emails.iter().map(domain::EmailTask::dedupe_key).collect();
    assert!(keys.contains(format!("order-expired#{confirmed}").as_str()), "{keys:?}");

    // The send-email consumer sends each once, however often it is delivered.
    let claims = memory.message_claims(std::time::Duration::from_secs(60));
    for task in emails.iter().chain(&emails) {
        let event = domain::DomainEvent::email_requested(task.clone(), "t", now);
        let cloud_event = adapters::outbox::envelope(&event);
        app::consumers::send_email(cloud_event, &memory.mailer(), &claims).await.unwrap();
    }
    let sent = memory.sent_emails();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent.iter().all(|email| email.subject.ends_with("expired")), "{sent:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expiry_racing_shipments_and_cancellations_loses_cleanly() {
    let memory = Memory::new();
    let admin = user(&memory, Role::Admin).await;
    let mug = product(&memory, 100, 1000).await;
    let mut orders = Vec::new();
    for _ in 0..4 {
        let buyer = user(&memory, Role::User).await;
        for _ in 0..6 {
            orders.push((buyer.clone(), confirmed_order(&memory, &buyer, &mug, 2).await));
        }
    }
    assert_eq!(memory.product(mug.id).unwrap().stock, 1000 - 48);

    // Once the expiry has listed every order as due, each is shipped (even)
    // or cancelled by its owner (odd) while the expiry writes.
    let later = time::OffsetDateTime::now_utc() + 49 * HOUR;
    let listed = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let expiry = {
        let store = ListedThenRaced { inner: memory.orders(), listed: listed.clone() };
        let memory = memory.clone();
        tokio::spawn(async move {
            let hold = domain::HoldTime::DEFAULT;
            let budget = std::time::Duration::from_secs(60);
            app::expiry::run_at(&store, &memory.users(), &memory.publisher(), hold, later, budget).await.unwrap()
        })
    };
    let changes: Vec<_> = orders
        .iter()
        .enumerate()
        .map(|(index, (buyer, order_id))| {
            let (memory, admin, buyer, order_id) = (memory.clone(), admin.clone(), buyer.clone(), *order_id);
            let listed = listed.clone();
            tokio::spawn(async move {
                let _listed = listed.acquire().await.unwrap();
                if index % 2 == 0 {
                    let ship = with_header(
                        with_path(request(Method::PATCH, Some(&admin), Some(json!({"status": "shipped"}))), order_id),
                        "if-match",
                        "*",
                    );
                    app::orders::update(ship, &memory.orders()).await
                } else {
                    app::orders::cancel(
                        with_path(request(Method::DELETE, Some(&buyer), None), order_id),
                        &memory.orders(),
                    )
                    .await
                }
            })
        })
        .collect();
    let report = expiry.await.unwrap();
    let mut changed = 0;
    for change in changes {
        match change.await.unwrap() {
            Ok(_) => changed += 1,
            Err(lost) => assert_eq!(envelope(&lost.into())["code"], "illegal_transition", "a loser sees the winner"),
        }
    }

    // Each order was changed exactly once: by its shipment, its owner or the expiry.
    let stored: Vec<domain::Order> = orders.iter().map(|(_, id)| memory.order(*id).unwrap()).collect();
    let expired = stored.iter().filter(|o| o.reason.as_deref().is_some_and(|r| r.starts_with("expired"))).count();
    let shipped = stored.iter().filter(|o| o.status == domain::OrderStatus::Shipped).count();
    assert_eq!(changed + report.expired, orders.len(), "{report:?}");
    assert_eq!((expired, report.expired + report.lost_races), (report.expired, orders.len()));
    assert!(stored.iter().all(|o| o.version == 3), "one change after the confirmation each");
    assert_eq!(memory.product(mug.id).unwrap().stock as usize, 1000 - 2 * shipped, "only shipped units are gone");
    assert_eq!(expiry_emails(&memory).len(), report.expired, "an email for each expiry that won, no other");
    for (buyer, _) in &orders {
        assert_eq!(memory.holdings(buyer.id), domain::Holdings::default());
    }
}

/// The order store, announcing (one permit per order) when the expiry has
/// listed the due orders, so the changes race its writes, not its read.
struct ListedThenRaced {
    inner: in_memory::MemoryOrderStore,
    listed: std::sync::Arc<tokio::sync::Semaphore>,
}

#[async_trait::async_trait]
impl domain::ports::OrderStore for ListedThenRaced {
    async fn place(
        &self,
        order: &domain::Order,
        event: &domain::DomainEvent,
        idempotency: Option<&domain::IdempotencyRecord>,
    ) -> Result<(), domain::ports::StoreError> {
        self.inner.place(order, event, idempotency).await
    }
    async fn get(&self, id: OrderId) -> Result<Option<domain::Order>, domain::ports::StoreError> {
        self.inner.get(id).await
    }
    async fn list(
        &self,
        filter: domain::ports::OrderFilter,
        page: &domain::PageRequest,
    ) -> Result<domain::Page<domain::Order>, domain::ports::StoreError> {
        self.inner.list(filter, page).await
    }
    async fn transition_with_event(
        &self,
        previous: &domain::Order,
        next: &domain::Order,
        event: Option<&domain::DomainEvent>,
    ) -> Result<(), domain::ports::StoreError> {
        tokio::task::yield_now().await; // Let the racing changes in.
        self.inner.transition_with_event(previous, next, event).await
    }
    async fn open_orders_placed_before(
        &self,
        cutoff: time::OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<domain::Order>, domain::ports::StoreError> {
        let due = self.inner.open_orders_placed_before(cutoff, limit).await?;
        self.listed.add_permits(due.len());
        Ok(due)
    }
    async fn reserve(
        &self,
        order_id: OrderId,
        notify: &(dyn for<'o> Fn(&'o domain::Order) -> domain::DomainEvent + Send + Sync),
    ) -> Result<(domain::ports::Reservation, Option<domain::DomainEvent>), domain::ports::StoreError> {
        self.inner.reserve(order_id, notify).await
    }
}

#[tokio::test]
async fn a_backlog_beyond_one_listing_drains_in_one_run_while_its_time_lasts() {
    let memory = Memory::new();
    let buyer = user(&memory, Role::User).await;
    let mug = product(&memory, 100, 1000).await;
    let roomy = HoldLimits::new(500, 500).unwrap();
    let backlog = 2 * app::expiry::BATCH + 7;
    for _ in 0..backlog {
        place(&memory, roomy, &buyer, order_body(&mug, 1)).await.unwrap();
    }
    let later = time::OffsetDateTime::now_utc() + 49 * HOUR;
    let hold = domain::HoldTime::DEFAULT;
    let (orders, users, publisher) = (memory.orders(), memory.users(), memory.publisher());

    let spent = app::expiry::run_at(&orders, &users, &publisher, hold, later, std::time::Duration::ZERO).await.unwrap();
    assert_eq!(spent.expired, 0, "no time, no expiry");
    let report = app::expiry::run_at(&orders, &users, &publisher, hold, later, HOUR).await.unwrap();
    assert_eq!(report.expired, backlog);
    assert_eq!(memory.holdings(buyer.id), domain::Holdings::default());
}
