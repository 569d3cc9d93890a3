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
    let runs = api_functions().into_iter().map(|function| {
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

/// Regression (issue 8.3): the SDK had no timeouts, so a hung table ran every
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
    let body = json!({"sku": format!("THR-{}", &ulid::Ulid::new().to_string()[16..]), "name": "Throttled", "price": {"amount_minor": 100, "currency": "EUR"}, "stock": 5});
    let product: Value = app.post("/products", Some(&admin.token), body).await.json().await.unwrap();
    let order = json!({"lines": [{"product_id": product["id"], "quantity": 2}]});

    let proxy = proxy("AWS_ENDPOINT_URL_DYNAMODB").await;
    let mut process = start("place-order", &[("AWS_ENDPOINT_URL_DYNAMODB", proxy.url())]).await;
    process.ready(Duration::from_secs(30)).await.unwrap();
    let event = crate::harness::api_event("place-order", &order, &buyer.token);
    let mut event = event;
    event["headers"].as_object_mut().unwrap().remove("Idempotency-Key");

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
