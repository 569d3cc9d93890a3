//! Whole flows through queues: the real consumers, fed by the local event
//! source mappings that `cargo xtask test` runs from template.yaml.

use std::time::Duration;

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::catalogue::{create_product, product_body, unique_sku};
use crate::helpers::{PASSWORD, TestApp, app, cloud_event, emails_to, env, sqs, unique_email};

const PATIENCE: Duration = Duration::from_secs(90);

async fn order_status(app: &TestApp, token: &str, id: &str) -> String {
    let order: Value = app.get(&format!("/orders/{id}"), Some(token)).await.json().await.unwrap();
    order["status"].as_str().unwrap().to_owned()
}

/// Waits until none of `token`'s orders is pending.
pub async fn settle(app: &TestApp, token: &str) {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let pending: Value = app.get("/orders?status=pending", Some(token)).await.json().await.unwrap();
        if pending["pagination"]["total"] == 0 {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "orders still pending: {pending}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The stock the table holds now: an admin's read (a guest's may come from
/// the catalogue's read cache, up to its TTL old).
async fn stock_of(app: &TestApp, admin_token: &str, product_id: &str) -> u64 {
    let product: Value = app.get(&format!("/products/{product_id}"), Some(admin_token)).await.json().await.unwrap();
    product["stock"].as_u64().unwrap()
}

#[tokio::test]
async fn registering_sends_a_verification_link_and_verifying_one_welcome_email() {
    let app = app();
    let email = unique_email("welcome");
    assert_eq!(app.register(&email, PASSWORD).await.status(), StatusCode::ACCEPTED);
    let token = crate::verification::emailed_token(&email, 1).await;
    let verified = app.post("/auth/verify-email", None, json!({"token": token})).await;
    assert_eq!(verified.status(), StatusCode::OK);
    let emails = emails_to(&email, 2, PATIENCE).await;
    let subjects: Vec<&str> = emails.iter().filter_map(|email| email["subject"].as_str()).collect();
    assert_eq!(subjects, ["Confirm your email address", "Welcome to the shop"]);
}

#[tokio::test]
async fn a_placed_order_is_confirmed_stock_is_taken_and_the_customer_told() {
    let app = app();
    let admin = app.new_admin("fulfil").await;
    let buyer = app.new_user("happy").await;
    let product = create_product(&app, &admin.token, product_body(&unique_sku("ok"), 2500, "EUR", 5)).await;
    let product_id = product["id"].as_str().unwrap();
    let body = json!({"lines": [{"product_id": product_id, "quantity": 2}]});
    let order: Value = app.post("/orders", Some(&buyer.token), body).await.json().await.unwrap();
    let id = order["id"].as_str().unwrap();

    settle(&app, &buyer.token).await;
    assert_eq!(order_status(&app, &buyer.token, id).await, "confirmed");
    assert_eq!(stock_of(&app, &admin.token, product_id).await, 3);
    let emails = emails_to(&buyer.email, 2, PATIENCE).await;
    let confirmation =
        emails.iter().find(|e| e["subject"].as_str().unwrap().contains("confirmed")).expect("confirmation");
    assert!(confirmation["body"].as_str().unwrap().contains("50.00 EUR"), "{confirmation}");

    // Cancelling a confirmed order gives its stock back.
    let cancelled = app.request(reqwest::Method::DELETE, &format!("/orders/{id}"), Some(&buyer.token), None).await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    assert_eq!(stock_of(&app, &admin.token, product_id).await, 5);
}

#[tokio::test]
async fn fifty_orders_for_ten_in_stock_confirm_exactly_ten() {
    let app = app();
    let admin = app.new_admin("scarce").await;
    // Five customers with ten orders each: one account may hold only ten open orders.
    let tags: Vec<String> = (0..5).map(|index| format!("crowd{index}")).collect();
    let buyers = join_all(tags.iter().map(|tag| app.new_user(tag))).await;
    let product = create_product(&app, &admin.token, product_body(&unique_sku("hot"), 100, "EUR", 10)).await;
    let product_id = product["id"].as_str().unwrap().to_owned();
    let body = json!({"lines": [{"product_id": product_id, "quantity": 1}]});

    let orders = buyers.iter().flat_map(|buyer| (0..10).map(|_| app.post("/orders", Some(&buyer.token), body.clone())));
    let placed = join_all(orders).await;
    assert!(placed.iter().all(|r| r.status() == StatusCode::CREATED));
    let (mut confirmed, mut rejected, mut accepted, mut refused) = (0, 0, 0, 0);
    for buyer in &buyers {
        settle(&app, &buyer.token).await;
        let total = async |status: &str| -> u64 {
            let page: Value =
                app.get(&format!("/orders?status={status}"), Some(&buyer.token)).await.json().await.unwrap();
            page["pagination"]["total"].as_u64().unwrap()
        };
        confirmed += total("confirmed").await;
        rejected += total("rejected").await;
        let emails = emails_to(&buyer.email, 11, PATIENCE).await;
        let count = |needle: &str| emails.iter().filter(|e| e["subject"].as_str().unwrap().contains(needle)).count();
        refused += count("could not be accepted");
        accepted += count("confirmed");
    }
    assert_eq!((confirmed, rejected), (10, 40));
    assert_eq!(stock_of(&app, &admin.token, &product_id).await, 0, "never negative, never oversold");
    assert_eq!((accepted, refused), (10, 40), "one email per order");
}

#[tokio::test]
async fn a_poison_message_is_parked_with_its_reason_while_the_batch_goes_on() {
    let sqs = sqs().await;
    let queue = env("USER_CREATED_QUEUE_URL");
    let email = unique_email("batchmate");
    let marker = format!("poison-{}", ulid::Ulid::new());
    let valid = cloud_event(
        "user-created",
        &ulid::Ulid::new().to_string(),
        json!({"user_id": ulid::Ulid::new().to_string(), "email": email}),
    );
    let wrong_type = cloud_event("order-placed", &marker, json!({}));
    let entries = [("garbage", format!("not json {marker}")), ("wrong-type", wrong_type), ("valid", valid)];
    let mut batch = sqs.send_message_batch().queue_url(&queue);
    for (id, body) in entries {
        batch = batch.entries(
            aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder().id(id).message_body(body).build().unwrap(),
        );
    }
    batch.send().await.unwrap();

    assert_eq!(emails_to(&email, 1, PATIENCE).await.len(), 1, "the valid message was handled");
    let dead = env("USER_CREATED_DLQ_URL");
    let deadline = std::time::Instant::now() + PATIENCE;
    let mut parked: Vec<(String, String)> = Vec::new();
    while parked.len() < 2 && std::time::Instant::now() < deadline {
        for letter in local_cloud::dlq::peek(&sqs, &dead).await.unwrap() {
            if letter.body.contains(&marker) && !parked.iter().any(|(body, _)| *body == letter.body) {
                parked.push((letter.body, letter.reason.unwrap_or_default()));
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(parked.len(), 2, "{parked:?}");
    assert!(parked.iter().any(|(_, reason)| reason.contains("not a CloudEvents")), "{parked:?}");
    assert!(parked.iter().any(|(_, reason)| reason.contains("expected event type")), "{parked:?}");
}

#[tokio::test]
async fn duplicate_deliveries_have_their_effect_once() {
    let app = app();
    let sqs = sqs().await;
    // The same user-created event three times, and a second event for the same user.
    let email = unique_email("twice");
    let user_id = ulid::Ulid::new().to_string();
    let event_id = ulid::Ulid::new().to_string();
    let event = cloud_event("user-created", &event_id, json!({"user_id": user_id, "email": email}));
    let again =
        cloud_event("user-created", &ulid::Ulid::new().to_string(), json!({"user_id": user_id, "email": email}));
    for body in [&event, &event, &event, &again] {
        sqs.send_message().queue_url(env("USER_CREATED_QUEUE_URL")).message_body(body).send().await.unwrap();
    }

    // An order whose order-placed event arrives three more times.
    let admin = app.new_admin("dedupe").await;
    let buyer = app.new_user("dup-buyer").await;
    let product = create_product(&app, &admin.token, product_body(&unique_sku("dup"), 100, "EUR", 10)).await;
    let product_id = product["id"].as_str().unwrap();
    let order: Value = app
        .post("/orders", Some(&buyer.token), json!({"lines": [{"product_id": product_id, "quantity": 3}]}))
        .await
        .json()
        .await
        .unwrap();
    settle(&app, &buyer.token).await;
    let replay = cloud_event(
        "order-placed",
        &ulid::Ulid::new().to_string(),
        json!({"order_id": order["id"], "owner_id": buyer.id}),
    );
    for _ in 0..3 {
        sqs.send_message().queue_url(env("ORDER_PLACED_QUEUE_URL")).message_body(&replay).send().await.unwrap();
    }

    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(emails_to(&email, 2, Duration::from_secs(5)).await.len(), 1, "one welcome email");
    assert_eq!(stock_of(&app, &admin.token, product_id).await, 7, "stock reserved once");
    let confirmations = emails_to(&buyer.email, 3, Duration::from_secs(5)).await;
    assert_eq!(confirmations.iter().filter(|e| e["subject"].as_str().unwrap().contains("confirmed")).count(), 1);
}

#[tokio::test]
async fn a_bad_email_task_is_parked_not_retried() {
    let sqs = sqs().await;
    let marker = ulid::Ulid::new().to_string();
    let task = cloud_event(
        "email-send",
        &marker,
        json!({"to": "not an address", "template": "welcome", "dedupe_key": marker}),
    );
    sqs.send_message().queue_url(env("EMAIL_SEND_QUEUE_URL")).message_body(task).send().await.unwrap();
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let letters = local_cloud::dlq::peek(&sqs, &env("EMAIL_SEND_DLQ_URL")).await.unwrap();
        if let Some(letter) = letters.iter().find(|l| l.body.contains(&marker)) {
            assert!(letter.reason.as_deref().unwrap_or_default().contains("to:"), "{letter:?}");
            return;
        }
        assert!(std::time::Instant::now() < deadline, "the bad task was not parked");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn the_relay_publishes_events_left_in_the_outbox() {
    let app = app();
    // Admins made by an operator tool commit their user-created event to the
    // outbox without publishing it: only the relay can deliver it.
    let admin = app.new_admin("relayed").await;
    tokio::time::sleep(Duration::from_secs(6)).await; // older than the relay's freshness window
    let relayed: Value = app
        .client
        .post(format!("{}/2015-03-31/functions/relay-outbox/invocations", env("SHOP_FUNCTIONS_URL")))
        .json(&json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(relayed["published"].as_u64().is_some(), "{relayed}");
    let emails = emails_to(&admin.email, 1, PATIENCE).await;
    assert_eq!(emails.len(), 1, "the welcome email arrived through the relay");
}
