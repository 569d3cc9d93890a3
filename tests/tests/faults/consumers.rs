//! Queue consumers whose dependencies hang, and consumers killed mid-batch.

use std::time::{Duration, Instant};

use domain::ports::OrderStore;
use domain::{DomainEvent, OrderRequest, UserId};
use framework::events::CloudEvent;
use local_cloud::faults::Fault;
use serde_json::{Value, json};

use crate::harness::{TIMEOUT, env, proxy, start};
use crate::helpers::{TestApp, app};

/// Waits until none of `token`'s orders is pending.
pub async fn settle(app: &TestApp, token: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let pending: Value = app.get("/orders?status=pending", Some(token)).await.json().await.unwrap();
        if pending["pagination"]["total"] == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "orders still pending: {pending}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// An SQS event of `bodies`, as Lambda delivers one.
fn sqs_event(bodies: &[String]) -> Value {
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(index, body)| {
            json!({"messageId": format!("m{index}"), "receiptHandle": "h", "body": body, "attributes": {"ApproximateReceiveCount": "1"},
                   "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"})
        })
        .collect();
    json!({"Records": records})
}

fn failed_ids(response: &Value) -> Vec<String> {
    response["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
        .collect()
}

/// Regression: a consumer waiting on a hung queue ran into
/// Lambda's timeout; now the record is retried, reported well before it.
#[tokio::test]
async fn with_the_queue_black_holed_a_consumer_reports_its_record_failed_well_before_its_timeout() {
    let queues = proxy("AWS_ENDPOINT_URL_SQS").await;
    let mut consumer = start("on-user-created", &[("AWS_ENDPOINT_URL_SQS", queues.url())]).await;
    consumer.ready(Duration::from_secs(30)).await.unwrap();
    queues.set(Fault::BlackHole);
    let event = CloudEvent::new(
        adapters::outbox::SOURCE,
        ulid::Ulid::new().to_string(),
        "user-created",
        "faults",
        time::OffsetDateTime::now_utc(),
        json!({"user_id": UserId::generate().to_string(), "email": "black.hole@example.com"}),
    );
    let answer = consumer.invoke(&sqs_event(&[serde_json::to_string(&event).unwrap()]), TIMEOUT * 2).await.unwrap();
    assert!(!answer.failed, "{}", answer.payload);
    assert_eq!(failed_ids(&answer.payload), ["m0"], "the record goes back to the queue");
    assert!(answer.took < TIMEOUT / 2, "reported after {:?} of a {TIMEOUT:?} timeout", answer.took);
}

/// A consumer that times out, then is killed mid-batch: once it runs
/// normally again, every order is reserved exactly once.
#[tokio::test]
async fn a_consumer_timing_out_or_killed_mid_batch_handles_every_record_exactly_once_in_the_end() {
    let app = app();
    let admin = app.new_admin("killed-admin").await;
    let product = app.new_product(&admin.token, "KIL", 100, 20).await;
    let buyer = app.new_user("killed-buyer").await;
    let owner = UserId::parse(&buyer.id).unwrap();

    // Four pending orders and their order-placed events, written as place-order would.
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let orders =
        adapters::dynamo::DynamoOrderStore::new(adapters::dynamo::Table::from_config(&config, env("TABLE_NAME")));
    let stored = domain::ports::ProductStore::get(
        &adapters::dynamo::DynamoProductStore::new(adapters::dynamo::Table::from_config(&config, env("TABLE_NAME"))),
        domain::ProductId::parse(product["id"].as_str().unwrap()).unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    let mut bodies = Vec::new();
    for _ in 0..4 {
        let now = time::OffsetDateTime::now_utc();
        let order = OrderRequest::parse(&[(stored.id.to_string(), 2)])
            .unwrap()
            .price(owner, std::slice::from_ref(&stored), now)
            .unwrap();
        let event = DomainEvent::order_placed(order.id, owner, "faults", now);
        orders.place(&order, &event, None).await.unwrap();
        bodies.push(serde_json::to_string(&adapters::outbox::envelope(&event)).unwrap());
    }
    let batch = sqs_event(&bodies);
    let short = [("FUNCTION_TIMEOUT_SECONDS", "3".to_owned())];

    // Slow table: the batch runs out of time; unfinished records come back.
    let table = proxy("AWS_ENDPOINT_URL_DYNAMODB").await;
    let slow = |endpoint: String| [("AWS_ENDPOINT_URL_DYNAMODB", endpoint), short[0].clone()];
    let mut consumer = start("on-order-placed", &slow(table.url())).await;
    consumer.ready(Duration::from_secs(30)).await.unwrap();
    table.set(Fault::Delay { millis: 1500 });
    let timed_out = consumer.invoke(&batch, Duration::from_secs(10)).await.unwrap();
    assert!(!failed_ids(&timed_out.payload).is_empty(), "some records did not finish in time: {}", timed_out.payload);
    assert!(timed_out.took < Duration::from_secs(3), "answered before the timeout: {:?}", timed_out.took);

    // Killed in the middle of the next attempt.
    assert!(consumer.invoke(&batch, Duration::from_millis(700)).await.is_err(), "no answer: killed first");
    consumer.kill();

    // Back to normal, after the claims of the dead attempts expire (timeout + 5 s).
    table.set(Fault::Pass);
    tokio::time::sleep(Duration::from_secs(9)).await;
    let mut consumer = start("on-order-placed", &slow(table.url())).await;
    consumer.ready(Duration::from_secs(30)).await.unwrap();
    let healthy = consumer.invoke(&batch, Duration::from_secs(10)).await.unwrap();
    assert_eq!(failed_ids(&healthy.payload), Vec::<String>::new(), "{}", healthy.payload);
    let again = consumer.invoke(&batch, Duration::from_secs(10)).await.unwrap();
    assert_eq!(failed_ids(&again.payload), Vec::<String>::new(), "duplicates are acknowledged");

    settle(&app, &buyer.token).await;
    let confirmed: Value = app.get("/orders?status=confirmed", Some(&buyer.token)).await.json().await.unwrap();
    assert_eq!(confirmed["pagination"]["total"], 4);
    let after: Value = app.get(&format!("/products/{}", stored.id), None).await.json().await.unwrap();
    assert_eq!(after["stock"], 20 - 4 * 2, "each order took its stock exactly once");
}
