//! DynamoDB hanging or throttling, seen by the API.

use std::time::Duration;

use futures::future::join_all;
use local_cloud::faults::{Fault, Rule};
use local_cloud::template::Template;
use serde_json::{Value, json};

use crate::harness::{TIMEOUT, proxy, sample_event, start, status_and_headers, token, with_token};
use crate::helpers::app;

/// Every API function, by package name.
fn api_functions() -> Vec<String> {
    let template = Template::load_project().unwrap();
    template.functions().unwrap().into_iter().filter(|f| !f.routes.is_empty()).map(|f| f.package).collect()
}

/// Starts every API function with DynamoDB behind `fault`, sends each its
/// sample event (with a valid admin token); the status, headers and time of each.
async fn every_route_under(fault: Fault) -> Vec<(String, u64, serde_json::Map<String, Value>, Duration)> {
    let proxy = proxy("AWS_ENDPOINT_URL_DYNAMODB").await;
    proxy.set(fault);
    let admin = token(&ulid::Ulid::new().to_string(), "admin").await;
    // The reference (get-docs) reads nothing from the table after its start.
    let runs = api_functions().into_iter().filter(|function| function != "get-docs").map(|function| {
        let (endpoint, admin) = (proxy.url(), admin.clone());
        async move {
            let mut process = start(&function, &[("AWS_ENDPOINT_URL_DYNAMODB", endpoint)]).await;
            process.ready(Duration::from_secs(60)).await.unwrap();
            let event = with_token(sample_event(&function), &admin);
            let invocation = process.invoke(&event, TIMEOUT * 2).await.unwrap();
            let (status, headers) = status_and_headers(&invocation.payload);
            (function, status, headers, invocation.took)
        }
    });
    join_all(runs).await
}

/// Regression: the SDK had no timeouts, so a hung table ran every
/// request into Lambda's timeout (a gateway error after the write may have
/// committed). Now every route answers 503 with Retry-After, early.
#[tokio::test]
async fn with_the_table_black_holed_every_route_answers_503_with_retry_after_well_before_its_timeout() {
    let answers = every_route_under(Fault::BlackHole).await;
    assert!(answers.len() >= 16, "{} API functions", answers.len());
    for (function, status, headers, took) in answers {
        assert_eq!(status, 503, "{function}");
        assert!(headers.contains_key("retry-after"), "{function}: {headers:?}");
        assert!(took < TIMEOUT / 2 + Duration::from_secs(1), "{function} answered after {took:?} of its {TIMEOUT:?}");
    }
}

#[tokio::test]
async fn with_the_table_throttling_every_route_answers_503_with_retry_after() {
    for (function, status, headers, took) in every_route_under(Fault::Throttle).await {
        assert_eq!(status, 503, "{function}");
        assert!(headers.contains_key("retry-after"), "{function}: {headers:?}");
        assert!(took < TIMEOUT / 2 + Duration::from_secs(1), "{function} answered after {took:?}");
    }
}

/// An order whose transaction is throttled is a 503 that leaves nothing
/// behind; one throttled attempt is absorbed by the SDK's retries.
#[tokio::test]
async fn a_throttled_order_leaves_no_partial_write_and_a_brief_throttle_is_retried_away() {
    let app = app();
    let admin = app.new_admin("throttle-admin").await;
    let buyer = app.new_user("throttle-buyer").await;
    let product = app.new_product(&admin.token, "THR", 100, 5).await;
    let order = json!({"lines": [{"product_id": product["id"], "quantity": 2}]});

    let proxy = proxy("AWS_ENDPOINT_URL_DYNAMODB").await;
    let mut process = start("place-order", &[("AWS_ENDPOINT_URL_DYNAMODB", proxy.url())]).await;
    process.ready(Duration::from_secs(30)).await.unwrap();
    // One operation: the client retries the refused order with the same key.
    let event = crate::harness::with_fresh_key(crate::harness::api_event("place-order", &order, &buyer.token));

    proxy.set_rule(Rule::always(Fault::Throttle).only("TransactWriteItems"));
    let refused = process.invoke(&event, TIMEOUT * 2).await.unwrap();
    let (status, headers) = status_and_headers(&refused.payload);
    assert_eq!(status, 503, "{}", refused.payload);
    assert!(headers.contains_key("retry-after"));
    let orders: Value = app.get("/orders", Some(&buyer.token)).await.json().await.unwrap();
    assert_eq!(orders["pagination"]["total"], 0, "no order, no counter moved");
    let stored: Value =
        app.get(&format!("/products/{}", product["id"].as_str().unwrap()), None).await.json().await.unwrap();
    assert_eq!(stored["stock"], 5);

    proxy.set_rule(Rule::always(Fault::Throttle).only("TransactWriteItems").times(1));
    let placed = process.invoke(&event, TIMEOUT * 2).await.unwrap();
    assert_eq!(status_and_headers(&placed.payload).0, 201, "{}", placed.payload);
    let orders: Value = app.get("/orders", Some(&buyer.token)).await.json().await.unwrap();
    assert_eq!(orders["pagination"]["total"], 1);
}

/// The register event for `email`, with `Idempotency-Key: key` when given.
fn registration(email: &str, key: Option<&str>) -> Value {
    let mut event = sample_event("register");
    event["body"] = Value::String(json!({"email": email, "password": crate::helpers::PASSWORD}).to_string());
    if let Some(key) = key {
        event["headers"]["Idempotency-Key"] = json!(key);
        event["multiValueHeaders"]["Idempotency-Key"] = json!([key]);
    }
    event
}

/// Regression: a registration's transaction commits but its answer is lost
/// on the way back (the SDK times out waiting for it). With an
/// Idempotency-Key, the function's own retry and the client's retry both
/// answer the stored 202; one account exists. Without a key the retry is
/// answered 202 like any registration (it cannot tell, and says nothing of
/// whether the address has an account); still one account exists.
#[tokio::test]
async fn a_registration_whose_answer_was_lost_is_retried_with_its_key_into_its_202() {
    let app = app();
    let proxy = proxy("AWS_ENDPOINT_URL_DYNAMODB").await;
    let mut process = start("register", &[("AWS_ENDPOINT_URL_DYNAMODB", proxy.url())]).await;
    process.ready(Duration::from_secs(30)).await.unwrap();
    let lose_one_commit = || proxy.set_rule(Rule::always(Fault::LoseResponse).only("TransactWriteItems").times(1));

    let email = crate::helpers::unique_email("lost-answer");
    let event = registration(&email, Some(&ulid::Ulid::new().to_string()));
    lose_one_commit();
    let first = process.invoke(&event, TIMEOUT * 2).await.unwrap();
    let (status, _) = status_and_headers(&first.payload);
    assert!(
        matches!(status, 202 | 503),
        "the commit landed; the caller sees its 202 or a retryable 503: {}",
        first.payload
    );
    let retry = process.invoke(&event, TIMEOUT * 2).await.unwrap();
    let (status, headers) = status_and_headers(&retry.payload);
    assert_eq!(status, 202, "{}", retry.payload);
    assert_eq!(headers.get("idempotent-replayed"), Some(&json!("true")));
    let token = app.token_for(&email).await;
    let me: Value = app.get("/users/me", Some(&token)).await.json().await.unwrap();
    assert_eq!(me["email"], email.as_str(), "the account the first attempt created exists and signs in");

    let unkeyed = crate::helpers::unique_email("lost-answer");
    lose_one_commit();
    let _ = process.invoke(&registration(&unkeyed, None), TIMEOUT * 2).await.unwrap();
    let retry = process.invoke(&registration(&unkeyed, None), TIMEOUT * 2).await.unwrap();
    assert_eq!(
        status_and_headers(&retry.payload).0,
        202,
        "a retry is answered like any registration: {}",
        retry.payload
    );
    let token = app.token_for(&unkeyed).await;
    let me: Value = app.get("/users/me", Some(&token)).await.json().await.unwrap();
    assert_eq!(me["email"], unkeyed.as_str());
}

/// The sum of `metric` over the EMF documents in `log`.
fn metric_total(log: &std::path::Path, metric: &str) -> f64 {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|document| document.get("_aws").is_some())
        .filter_map(|document| document[metric].as_f64())
        .sum()
}

/// Transactions that meet another one on the same items (the global
/// counters under load in the cloud; DynamoDB Local runs transactions one at
/// a time, so it never shows this) are retried by the store with backoff and
/// counted in `TransactionConflicts`; past its attempts the order is a 503
/// with Retry-After that wrote nothing.
#[tokio::test]
async fn a_conflicting_order_transaction_is_retried_and_counted_and_past_its_attempts_is_a_clean_503() {
    let app = app();
    let admin = app.new_admin("conflict-admin").await;
    let buyer = app.new_user("conflict-buyer").await;
    let product = app.new_product(&admin.token, "CON", 100, 5).await;
    let order = json!({"lines": [{"product_id": product["id"], "quantity": 1}]});
    let proxy = proxy("AWS_ENDPOINT_URL_DYNAMODB").await;
    let log = std::env::temp_dir().join(format!("conflicts-{}.log", ulid::Ulid::new()));
    let mut process =
        crate::harness::start_logging("place-order", &[("AWS_ENDPOINT_URL_DYNAMODB", proxy.url())], Some(log.clone()))
            .await;
    process.ready(Duration::from_secs(30)).await.unwrap();
    let event = || crate::harness::with_fresh_key(crate::harness::api_event("place-order", &order, &buyer.token));

    proxy.set_rule(Rule::always(Fault::TransactionConflict).only("TransactWriteItems").times(2));
    let placed = process.invoke(&event(), TIMEOUT * 2).await.unwrap();
    assert_eq!(status_and_headers(&placed.payload).0, 201, "{}", placed.payload);
    assert!((metric_total(&log, "TransactionConflicts") - 2.0).abs() < f64::EPSILON, "both conflicts counted");

    proxy.set_rule(Rule::always(Fault::TransactionConflict).only("TransactWriteItems"));
    let refused = process.invoke(&event(), TIMEOUT * 2).await.unwrap();
    let (status, headers) = status_and_headers(&refused.payload);
    assert_eq!(status, 503, "{}", refused.payload);
    assert!(headers.contains_key("retry-after"));
    let orders: Value = app.get("/orders", Some(&buyer.token)).await.json().await.unwrap();
    assert_eq!(orders["pagination"]["total"], 1, "only the first order exists");
    let _ = std::fs::remove_file(log);
}
