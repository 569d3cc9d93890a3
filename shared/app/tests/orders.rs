//! Orders use cases on in-memory adapters: placement priced from the
//! catalogue, idempotent retries, ownership, status changes and stock.

mod support;

use domain::ports::{OrderFilter, OrderStore, Reservation, StoreError};
use domain::{DomainEvent, IdempotencyRecord, Order, OrderId, OrderStatus, Page, PageRequest, Role};
use framework::http::ApiError;
use http::{Method, StatusCode};
use in_memory::{Dependency, Memory};
use serde_json::json;
use support::{body, header, id, product, request, user, with_header, with_path};

/// POST /orders of `request`, with a fresh Idempotency-Key unless it has one.
async fn place(
    memory: &Memory,
    mut request: framework::http::ApiRequest,
) -> Result<framework::http::ApiResponse, ApiError> {
    if !request.headers.contains_key("idempotency-key") {
        request = with_header(request, "idempotency-key", &ulid::Ulid::new().to_string());
    }
    app::orders::place(
        request,
        &memory.users(),
        &memory.products(),
        &memory.orders(),
        &memory.idempotency(),
        &memory.publisher(),
    )
    .await
    .map_err(ApiError::from)
}

/// A client that does not send the key is refused before anything is
/// written: without it a retry of an order whose answer was lost would place
/// a second one.
#[tokio::test]
async fn an_order_without_an_idempotency_key_is_refused_and_writes_nothing() {
    let memory = Memory::new();
    let buyer = user(&memory, Role::User).await;
    let mug = product(&memory, 1250, 10).await;
    let unkeyed = request(Method::POST, Some(&buyer), Some(order_body(&[(&mug, 1)])));
    let refused = app::orders::place(
        unkeyed,
        &memory.users(),
        &memory.products(),
        &memory.orders(),
        &memory.idempotency(),
        &memory.publisher(),
    )
    .await
    .map_err(ApiError::from)
    .unwrap_err();
    assert_eq!((refused.status(), refused.code()), (StatusCode::BAD_REQUEST, "idempotency_key_required"));
    assert!(memory.published().is_empty() && memory.outbox().is_empty(), "nothing placed");
}

fn order_body(lines: &[(&domain::Product, i64)]) -> serde_json::Value {
    json!({"lines": lines.iter().map(|(p, q)| json!({"product_id": p.id.to_string(), "quantity": q})).collect::<Vec<_>>()})
}

#[tokio::test]
async fn an_order_is_priced_from_the_catalogue_stored_pending_and_its_event_published() {
    let memory = Memory::new();
    let buyer = user(&memory, Role::User).await;
    let mug = product(&memory, 1250, 10).await;
    let response = place(&memory, request(Method::POST, Some(&buyer), Some(order_body(&[(&mug, 3)])))).await.unwrap();
    assert_eq!(response.status, StatusCode::CREATED);
    assert_eq!(body(&response)["total"], json!({"amount_minor": 3750, "currency": "EUR"}));
    let stored = memory.order(OrderId::parse(&id(&response)).unwrap()).unwrap();
    assert_eq!((stored.status, stored.owner), (OrderStatus::Pending, Some(buyer.id)));
    assert_eq!(memory.published().len(), 1, "order-placed went out after the commit");
    assert!(memory.outbox().is_empty());
}

#[tokio::test]
async fn with_the_queues_down_the_order_is_accepted_and_its_event_waits_in_the_outbox() {
    let memory = Memory::new();
    let buyer = user(&memory, Role::User).await;
    let mug = product(&memory, 100, 1).await;
    memory.set_down(Dependency::Queues, true);
    let response = place(&memory, request(Method::POST, Some(&buyer), Some(order_body(&[(&mug, 1)])))).await.unwrap();
    assert_eq!(response.status, StatusCode::CREATED);
    assert_eq!(memory.outbox().len(), 1);
    memory.set_down(Dependency::Queues, false);
    assert_eq!(memory.relay(), 1);
    assert_eq!(memory.published()[0].kind(), "order-placed");
}

#[tokio::test]
async fn a_retry_with_the_same_key_replays_the_first_answer_and_another_body_is_refused() {
    let memory = Memory::new();
    let buyer = user(&memory, Role::User).await;
    let mug = product(&memory, 100, 10).await;
    let keyed = |body| with_header(request(Method::POST, Some(&buyer), Some(body)), "idempotency-key", "order-1");
    let first = place(&memory, keyed(order_body(&[(&mug, 1)]))).await.unwrap();
    let retry = place(&memory, keyed(order_body(&[(&mug, 1)]))).await.unwrap();
    assert_eq!((retry.status, body(&retry)), (first.status, body(&first)));
    assert_eq!(header(&retry, "idempotent-replayed"), Some("true"));
    assert_eq!(header(&retry, "etag"), header(&first, "etag"), "the replay carries the first ETag");
    assert_eq!(header(&retry, "location"), header(&first, "location"));
    let other = place(&memory, keyed(order_body(&[(&mug, 2)]))).await.unwrap_err();
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let listed = app::orders::list(request(Method::GET, Some(&buyer), None), &memory.orders(), &support::cursors())
        .await
        .unwrap();
    assert_eq!(body(&listed)["pagination"]["total"], 1, "one order for one key");
}

#[tokio::test]
async fn duplicates_sent_together_place_one_order() {
    let memory = Memory::new();
    let buyer = user(&memory, Role::User).await;
    let mug = product(&memory, 100, 10).await;
    let attempts = (0..5).map(|_| {
        place(
            &memory,
            with_header(request(Method::POST, Some(&buyer), Some(order_body(&[(&mug, 1)]))), "idempotency-key", "same"),
        )
    });
    let outcomes = futures::future::join_all(attempts).await;
    let ids: std::collections::BTreeSet<String> = outcomes.iter().filter_map(|o| o.as_ref().ok()).map(id).collect();
    assert_eq!(ids.len(), 1, "{outcomes:?}");
}

#[tokio::test]
async fn unknown_inactive_duplicate_and_oversized_lines_are_refused_and_nothing_is_written() {
    let memory = Memory::new();
    let buyer = user(&memory, Role::User).await;
    let mug = product(&memory, 100, 10).await;
    let mut retired = product(&memory, 100, 10).await;
    retired.active = false;
    memory.put_product(retired.clone());
    let fortune = product(&memory, 10_000_000_000, 10).await;
    for body in [
        json!({"lines": []}),
        json!({"lines": [{"product_id": OrderId::generate().to_string(), "quantity": 1}]}),
        order_body(&[(&retired, 1)]),
        order_body(&[(&mug, 1), (&mug, 2)]),
        order_body(&[(&mug, 0)]),
        order_body(&[(&fortune, 2)]),
        json!({"lines": [{"product_id": mug.id.to_string(), "quantity": 1, "unit_price": 1}]}),
    ] {
        let refused = place(&memory, request(Method::POST, Some(&buyer), Some(body.clone()))).await.unwrap_err();
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    assert!(memory.published().is_empty() && memory.outbox().is_empty(), "no order, no event");
}

#[tokio::test]
async fn a_store_outage_is_a_503_and_writes_nothing() {
    let memory = Memory::new();
    let buyer = user(&memory, Role::User).await;
    let mug = product(&memory, 100, 10).await;
    memory.set_down(Dependency::Table, true);
    let error = place(&memory, request(Method::POST, Some(&buyer), Some(order_body(&[(&mug, 1)])))).await.unwrap_err();
    assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
    memory.set_down(Dependency::Table, false);
    assert!(memory.outbox().is_empty() && memory.published().is_empty());
}

#[tokio::test]
async fn owners_cancel_admins_ship_and_strangers_see_nothing() {
    let memory = Memory::new();
    let (buyer, stranger, admin) =
        (user(&memory, Role::User).await, user(&memory, Role::User).await, user(&memory, Role::Admin).await);
    let mug = product(&memory, 100, 10).await;
    let placed = place(&memory, request(Method::POST, Some(&buyer), Some(order_body(&[(&mug, 2)])))).await.unwrap();
    let order_id = id(&placed);
    let get = |who| with_path(request(Method::GET, Some(who), None), &order_id);
    assert_eq!(
        app::orders::get(get(&stranger), &memory.orders()).await.map_err(ApiError::from).unwrap_err().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(app::orders::get(get(&admin), &memory.orders()).await.unwrap().status, StatusCode::OK);

    // Confirmed by the consumer: stock is held.
    let (outcome, _) =
        domain::ports::OrderStore::reserve(&memory.orders(), OrderId::parse(&order_id).unwrap(), &|order| {
            domain::DomainEvent::order_placed(
                order.id,
                order.owner.expect("placed by an account"),
                "t",
                time::OffsetDateTime::now_utc(),
            )
        })
        .await
        .unwrap();
    assert_eq!(outcome, domain::ports::Reservation::Confirmed);
    assert_eq!(memory.product(mug.id).unwrap().stock, 8);

    let patch = |who, status: &str, if_match: &str| {
        with_header(
            with_path(request(Method::PATCH, Some(who), Some(json!({"status": status}))), &order_id),
            "if-match",
            if_match,
        )
    };
    assert_eq!(
        app::orders::update(patch(&buyer, "shipped", "*"), &memory.orders())
            .await
            .map_err(ApiError::from)
            .unwrap_err()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app::orders::update(patch(&buyer, "cancelled", "\"1\""), &memory.orders())
            .await
            .map_err(ApiError::from)
            .unwrap_err()
            .status(),
        StatusCode::PRECONDITION_FAILED
    );
    let missing = with_path(request(Method::PATCH, Some(&buyer), Some(json!({"status": "cancelled"}))), &order_id);
    assert_eq!(
        app::orders::update(missing, &memory.orders()).await.map_err(ApiError::from).unwrap_err().status(),
        StatusCode::PRECONDITION_REQUIRED
    );
    let cancelled = app::orders::update(patch(&buyer, "cancelled", "\"2\""), &memory.orders()).await.unwrap();
    assert_eq!(body(&cancelled)["status"], "cancelled");
    assert_eq!(memory.product(mug.id).unwrap().stock, 10, "a cancelled confirmed order gives its stock back");
    let again =
        app::orders::cancel(with_path(request(Method::DELETE, Some(&buyer), None), &order_id), &memory.orders()).await;
    assert_eq!(again.map_err(ApiError::from).unwrap_err().status(), StatusCode::CONFLICT, "cancelled is final");
}

#[tokio::test]
async fn admins_ship_confirmed_orders_only() {
    let memory = Memory::new();
    let (buyer, admin) = (user(&memory, Role::User).await, user(&memory, Role::Admin).await);
    let mug = product(&memory, 100, 10).await;
    let placed = place(&memory, request(Method::POST, Some(&buyer), Some(order_body(&[(&mug, 1)])))).await.unwrap();
    let order_id = id(&placed);
    let ship = || {
        with_header(
            with_path(request(Method::PATCH, Some(&admin), Some(json!({"status": "shipped"}))), &order_id),
            "if-match",
            "*",
        )
    };
    assert_eq!(
        app::orders::update(ship(), &memory.orders()).await.map_err(ApiError::from).unwrap_err().status(),
        StatusCode::CONFLICT,
        "pending cannot ship"
    );
    domain::ports::OrderStore::reserve(&memory.orders(), OrderId::parse(&order_id).unwrap(), &|order| {
        domain::DomainEvent::order_placed(
            order.id,
            order.owner.expect("placed by an account"),
            "t",
            time::OffsetDateTime::now_utc(),
        )
    })
    .await
    .unwrap();
    assert_eq!(body(&app::orders::update(ship(), &memory.orders()).await.unwrap())["status"], "shipped");
}

/// The consumer confirms the order between the reader's read and its write:
/// the reader holds version 1 while the table is at version 2.
struct ConfirmedBehindTheReader {
    inner: in_memory::MemoryOrderStore,
    confirmed: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl OrderStore for ConfirmedBehindTheReader {
    async fn place(
        &self,
        order: &Order,
        event: &DomainEvent,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<(), StoreError> {
        self.inner.place(order, event, idempotency).await
    }
    async fn get(&self, id: OrderId) -> Result<Option<Order>, StoreError> {
        let read = self.inner.get(id).await?;
        if !self.confirmed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            let notify = |order: &Order| {
                DomainEvent::order_placed(
                    order.id,
                    order.owner.expect("placed by an account"),
                    "test",
                    order.updated_at,
                )
            };
            self.inner.reserve(id, &notify).await?;
        }
        Ok(read)
    }
    async fn list(&self, filter: OrderFilter, page: &PageRequest) -> Result<Page<Order>, StoreError> {
        self.inner.list(filter, page).await
    }
    async fn transition_with_event(
        &self,
        previous: &Order,
        next: &Order,
        event: Option<&DomainEvent>,
    ) -> Result<(), StoreError> {
        self.inner.transition_with_event(previous, next, event).await
    }
    async fn open_orders_placed_before(
        &self,
        cutoff: time::OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Order>, StoreError> {
        self.inner.open_orders_placed_before(cutoff, limit).await
    }
    async fn reserve(
        &self,
        order_id: OrderId,
        notify: &(dyn for<'o> Fn(&'o Order) -> DomainEvent + Send + Sync),
    ) -> Result<(Reservation, Option<DomainEvent>), StoreError> {
        self.inner.reserve(order_id, notify).await
    }
}

/// Regression (flaky `if_match_star_matches_the_current_version`): a cancel
/// with `If-Match: *` (or none) raced the consumer's confirmation into a 412,
/// though the client had asked for whatever version is current. Now it reads
/// again and cancels the confirmed order, giving its stock back; a pinned
/// version still gets its 412.
#[tokio::test]
async fn a_cancel_without_a_pinned_version_survives_a_concurrent_confirmation() {
    for if_match in [Some("*"), None, Some("\"1\"")] {
        let memory = Memory::new();
        let buyer = user(&memory, Role::User).await;
        let mug = product(&memory, 100, 5).await;
        let placed = place(&memory, request(Method::POST, Some(&buyer), Some(order_body(&[(&mug, 2)])))).await.unwrap();
        let orders =
            ConfirmedBehindTheReader { inner: memory.orders(), confirmed: std::sync::atomic::AtomicBool::new(false) };
        let cancel = with_path(request(Method::DELETE, Some(&buyer), None), id(&placed));
        let cancel = match if_match {
            Some(tag) => with_header(cancel, "if-match", tag),
            None => cancel,
        };
        let outcome = app::orders::cancel(cancel, &orders).await;
        if if_match == Some("\"1\"") {
            assert_eq!(
                outcome.map_err(ApiError::from).unwrap_err().status(),
                StatusCode::PRECONDITION_FAILED,
                "a pinned version is honoured"
            );
            continue;
        }
        let cancelled = outcome.unwrap_or_else(|error| panic!("If-Match {if_match:?}: {error:?}"));
        assert_eq!(
            (body(&cancelled)["status"].as_str(), body(&cancelled)["version"].as_u64()),
            (Some("cancelled"), Some(3))
        );
        assert_eq!(memory.product(mug.id).unwrap().stock, 5, "the confirmed stock came back");
    }
}
