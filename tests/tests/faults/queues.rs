//! SQS unreachable while orders are placed: nothing is lost, nothing doubled.

use std::time::Duration;

use local_cloud::faults::Fault;
use serde_json::{Value, json};

use crate::harness::{TIMEOUT, api_event, env, proxy, start, status_and_headers};
use crate::helpers::{app, emails_to};
use crate::queued_work::relay_through;

#[tokio::test]
async fn orders_placed_while_the_queue_is_down_are_accepted_and_each_is_handled_once_when_it_returns() {
    let app = app();
    let admin = app.new_admin("queue-down-admin").await;
    let buyer = app.new_user("queue-down-buyer").await;
    let product = app.new_product(&admin.token, "QDN", 250, 10).await;
    let product_path = format!("/products/{}", product["id"].as_str().unwrap());

    let queues = proxy("AWS_ENDPOINT_URL_SQS").await;
    let mut place = start("place-order", &[("AWS_ENDPOINT_URL_SQS", queues.url())]).await;
    place.ready(Duration::from_secs(30)).await.unwrap();
    let mut placed = Vec::new();
    let placed_at = std::time::Instant::now();
    for (index, fault) in [Fault::BlackHole, Fault::ServerError, Fault::ServerError].into_iter().enumerate() {
        queues.set(fault);
        let mut event =
            api_event("place-order", &json!({"lines": [{"product_id": product["id"], "quantity": 1}]}), &buyer.token);
        event["headers"]["Idempotency-Key"] = Value::String(format!("queue-down-{index}-{}", ulid::Ulid::new()));
        let answer = place.invoke(&event, TIMEOUT * 2).await.unwrap();
        let (status, _) = status_and_headers(&answer.payload);
        assert_eq!(status, 201, "accepted while the queue is down: {}", answer.payload);
        assert!(answer.took < TIMEOUT / 2 + Duration::from_secs(1), "answered after {:?}", answer.took);
        let order: Value = serde_json::from_str(answer.payload["body"].as_str().unwrap()).unwrap();
        placed.push(order["id"].as_str().unwrap().to_owned());
    }
    // None went out through this place-order (its queue is down). The test
    // stack's own scheduled relay, whose queue is up, may already have
    // published a record older than the relay's five seconds (a slow run,
    // coverage's instrumented build: seen once with 2 of 3 pending), so only
    // the sum is fixed here; exactly once is checked at the end.
    let pending: Value = app.get("/orders?status=pending", Some(&buyer.token)).await.json().await.unwrap();
    let pending = pending["pagination"]["total"].as_u64().unwrap();
    // The relay compares whole seconds: a record can pass at 4.01 s.
    let old_enough_for_a_relay = placed_at.elapsed() > Duration::from_secs(4);
    assert!(pending == 3 || (old_enough_for_a_relay && pending < 3), "{pending} of 3 pending");

    // The queue is back: the relay (old enough records) publishes what is left.
    queues.set(Fault::Pass);
    relay_through(&queues).await;

    crate::consumers::settle(&app, &buyer.token).await;
    let confirmed: Value = app.get("/orders?status=confirmed", Some(&buyer.token)).await.json().await.unwrap();
    assert_eq!(confirmed["pagination"]["total"], 3, "{confirmed}");
    let stock: Value = app.get(&product_path, None).await.json().await.unwrap();
    assert_eq!(stock["stock"], 7, "each order reserved its stock exactly once");
    let emails = emails_to(&buyer.email, 4, Duration::from_secs(60)).await;
    for id in &placed {
        let confirmations =
            emails.iter().filter(|e| e["subject"].as_str().unwrap_or_default().contains(id.as_str())).count();
        assert_eq!(confirmations, 1, "one confirmation for order {id}");
    }
    let _ = env("SHOP_API_URL");
}
