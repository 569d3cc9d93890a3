//! A committed order is never answered as a failure, and a client that
//! retries what it is told to retry never places an order twice.

use std::time::Duration;

use local_cloud::faults::{Fault, Rule};
use serde_json::{Value, json};

use crate::harness::{TIMEOUT, api_event, proxy, start, status_and_headers};
use crate::helpers::app;

/// `event` with `key` as its Idempotency-Key, or with none.
fn keyed(mut event: Value, key: Option<&str>) -> Value {
    for headers in ["headers", "multiValueHeaders"] {
        event[headers].as_object_mut().unwrap().remove("Idempotency-Key");
    }
    if let Some(key) = key {
        event["headers"]["Idempotency-Key"] = json!(key);
        event["multiValueHeaders"]["Idempotency-Key"] = json!([key]);
    }
    event
}

/// How many orders `token`'s owner has.
async fn orders_of(app: &tests::helpers::TestApp, token: &str) -> u64 {
    let orders: Value = app.get("/orders", Some(token)).await.json().await.unwrap();
    orders["pagination"]["total"].as_u64().unwrap()
}

/// Regression: `POST /orders` has a request budget of half the function's
/// timeout; with the table and the queue slow, the transaction committed
/// (late, or followed by a slow publish) and the client got `503
/// Retry-After: 1` for an order that existed. Now the budget stops applying
/// once the transaction is sent, and a committed order is answered 201
/// whatever the publish after it does (the relay sends the event).
#[tokio::test]
async fn an_order_committed_late_or_followed_by_a_slow_publish_is_answered_201() {
    let app = app();
    let admin = app.new_admin("late-commit-admin").await;
    let buyer = app.new_user("late-commit-buyer").await;
    let product = app.new_product(&admin.token, "LATE", 100, 10).await;
    let table = proxy("AWS_ENDPOINT_URL_DYNAMODB").await;
    let queue = proxy("AWS_ENDPOINT_URL_SQS").await;
    let mut process =
        start("place-order", &[("AWS_ENDPOINT_URL_DYNAMODB", table.url()), ("AWS_ENDPOINT_URL_SQS", queue.url())])
            .await;
    process.ready(Duration::from_secs(30)).await.unwrap();
    let order = json!({"lines": [{"product_id": product["id"], "quantity": 1}]});

    // Account check, key lookup, catalogue read and transaction 1.5 s each;
    // the publish hangs until its own 3 s limit: 9 s of work in a 5 s
    // budget, the commit sent at 4.5 s and answered at 6 s.
    table.set(Fault::Delay { millis: 1500 });
    queue.set(Fault::BlackHole);
    let event = keyed(api_event("place-order", &order, &buyer.token), Some(&ulid::Ulid::new().to_string()));
    let answer = process.invoke(&event, TIMEOUT * 2).await.unwrap();
    assert_eq!(status_and_headers(&answer.payload).0, 201, "slow publish after the commit: {}", answer.payload);

    // Each call 1.4 s, the queue quick: the transaction is sent at 4.2 s and
    // answers at 5.6 s, after the budget.
    table.set(Fault::Delay { millis: 1400 });
    queue.set(Fault::Pass);
    let event = keyed(api_event("place-order", &order, &buyer.token), Some(&ulid::Ulid::new().to_string()));
    let answer = process.invoke(&event, TIMEOUT * 2).await.unwrap();
    assert_eq!(status_and_headers(&answer.payload).0, 201, "commit answered late: {}", answer.payload);
    table.set(Fault::Pass);
    assert_eq!(orders_of(&app, &buyer.token).await, 2, "two orders placed, two answered 201");
}

/// Regression: with `Idempotency-Key` optional, an order whose transaction
/// committed but whose answers were lost until the call's own limit (the
/// SDK's retries of one call share a `ClientRequestToken`, so one lost answer
/// is absorbed; two are not) came back as a 503, and the client's retry (as
/// the API advises for a 503) placed a second order: stock reserved twice,
/// two emails. The key is now required on this route, and a keyed retry
/// replays the order that exists.
#[tokio::test]
async fn an_order_whose_answer_was_lost_is_placed_once_however_the_client_retries() {
    let app = app();
    let admin = app.new_admin("lost-order-admin").await;
    let buyer = app.new_user("lost-order-buyer").await;
    let product = app.new_product(&admin.token, "LOST", 100, 10).await;
    let table = proxy("AWS_ENDPOINT_URL_DYNAMODB").await;
    let mut process = start("place-order", &[("AWS_ENDPOINT_URL_DYNAMODB", table.url())]).await;
    process.ready(Duration::from_secs(30)).await.unwrap();
    let order = json!({"lines": [{"product_id": product["id"], "quantity": 1}]});
    let lose_commit_answers = || table.set_rule(Rule::always(Fault::LoseResponse).only("TransactWriteItems").times(2));

    // A client without a key, retrying whatever is not a success.
    lose_commit_answers();
    let unkeyed = keyed(api_event("place-order", &order, &buyer.token), None);
    for _attempt in 0..3 {
        let answer = process.invoke(&unkeyed, TIMEOUT * 2).await.unwrap();
        if status_and_headers(&answer.payload).0 == 201 {
            break;
        }
    }
    assert!(orders_of(&app, &buyer.token).await <= 1, "a retrying client placed more than one order");

    // The same client with a key: its answers name one order, which exists once.
    let before = orders_of(&app, &buyer.token).await;
    lose_commit_answers();
    let event = keyed(api_event("place-order", &order, &buyer.token), Some(&ulid::Ulid::new().to_string()));
    let first = process.invoke(&event, TIMEOUT * 2).await.unwrap();
    let retry = process.invoke(&event, TIMEOUT * 2).await.unwrap();
    let (status, headers) = status_and_headers(&retry.payload);
    assert_eq!(status, 201, "{}", retry.payload);
    assert_eq!(headers.get("idempotent-replayed"), Some(&json!("true")));
    if status_and_headers(&first.payload).0 == 201 {
        assert_eq!(first.payload["body"], retry.payload["body"], "both answers name the same order");
    }
    assert_eq!(orders_of(&app, &buyer.token).await, before + 1);
}
