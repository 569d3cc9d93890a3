//! Hoarding use cases on in-memory adapters: the caps on what one account's
//! open orders may hold, checked at placement even for orders sent in
//! parallel, and freed when an order ends.

mod support;

use domain::{HoldLimits, OrderId, Role, User};
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
) -> Result<platform::http::ApiResponse, platform::http::ApiError> {
    let request =
        with_header(request(Method::POST, Some(buyer), Some(body)), "idempotency-key", &ulid::Ulid::new().to_string());
    app::orders::place(
        request,
        &memory.products(),
        &memory.orders_with_limits(limits),
        &memory.idempotency(),
        &memory.publisher(),
    )
    .await
}

fn envelope(error: &platform::http::ApiError) -> Value {
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
    let notify =
        |order: &domain::Order| domain::DomainEvent::order_placed(order.id, order.owner, "t", order.updated_at);
    domain::ports::OrderStore::reserve(&memory.orders(), first_id, &notify).await.unwrap();
    let ship = with_header(
        with_path(request(Method::PATCH, Some(&admin), Some(json!({"status": "shipped"}))), first_id),
        "if-match",
        "*",
    );
    assert_eq!(body(&app::orders::update(ship, &memory.orders()).await.unwrap())["status"], "shipped");
    place(&memory, limits, &buyer, order_body(&mug, 15)).await.expect("the shipped units no longer count");
}
