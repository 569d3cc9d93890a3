//! Hoarding from outside: one account's open orders are capped (orders hold
//! stock without payment), even for orders sent at once, and an order left
//! open beyond the hold time expires (the test stack's hold is seconds).

use std::time::{Duration, Instant};

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, app, emails_to, env};

fn order_body(product_id: &str, quantity: i64) -> Value {
    json!({"lines": [{"product_id": product_id, "quantity": quantity}]})
}

/// POST /orders with a fresh Idempotency-Key.
async fn place(app: &TestApp, token: &str, body: &Value) -> reqwest::Response {
    crate::orders::place(app, token, None, body).await
}

#[tokio::test]
async fn one_account_holds_at_most_ten_open_orders_and_twenty_units_of_a_product() {
    let app = app();
    let admin = app.new_admin("hoard-admin").await;
    let hoarder = app.new_user("hoarder").await;
    let product = app.new_product(&admin.token, "hoard", 100, 1000).await;
    let product_id = product["id"].as_str().unwrap();

    let greedy = place(&app, &hoarder.token, &order_body(product_id, 21)).await;
    assert_eq!(greedy.status(), StatusCode::CONFLICT);
    let greedy: Value = greedy.json().await.unwrap();
    assert_eq!(greedy["error"]["code"], "product_hold_limit", "{greedy}");
    assert_eq!(greedy["error"]["details"][0]["limit"], 20, "{greedy}");
    assert_eq!(greedy["error"]["details"][0]["field"], "lines[0].quantity", "{greedy}");

    let body = order_body(product_id, 1);
    let answers = join_all((0..12).map(|_| place(&app, &hoarder.token, &body))).await;
    let statuses: Vec<StatusCode> = answers.iter().map(reqwest::Response::status).collect();
    let placed = statuses.iter().filter(|s| **s == StatusCode::CREATED).count();
    assert_eq!(placed, 10, "{statuses:?}");
    for answer in answers.into_iter().filter(|a| a.status() == StatusCode::CONFLICT) {
        let error: Value = answer.json().await.unwrap();
        assert_eq!(
            (error["error"]["code"].as_str(), error["error"]["details"][0]["limit"].as_u64()),
            (Some("open_order_limit"), Some(10))
        );
    }
    let listed: Value = app.get("/orders", Some(&hoarder.token)).await.json().await.unwrap();
    assert_eq!(listed["pagination"]["total"], 10, "a refused order is not stored");

    // Another customer is not limited by the hoarder's orders.
    let neighbour = app.new_user("neighbour").await;
    assert_eq!(place(&app, &neighbour.token, &order_body(product_id, 20)).await.status(), StatusCode::CREATED);
}

async fn order(app: &TestApp, token: &str, id: &str) -> Value {
    app.get(&format!("/orders/{id}"), Some(token)).await.json().await.unwrap()
}

/// The stock the table holds now: an admin's read (a guest's may come from
/// the catalogue's read cache, up to its TTL old).
async fn stock_of(app: &TestApp, admin_token: &str, product_id: &str) -> u64 {
    let product: Value = app.get(&format!("/products/{product_id}"), Some(admin_token)).await.json().await.unwrap();
    product["stock"].as_u64().unwrap()
}

/// Runs expire-orders now, as its schedule would.
async fn expire_orders(app: &TestApp) -> Value {
    let answer = app
        .client
        .post(format!("{}/2015-03-31/functions/expire-orders/invocations", env("SHOP_FUNCTIONS_URL")))
        .json(&json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());
    answer.json().await.unwrap()
}

#[tokio::test]
async fn a_confirmed_order_left_beyond_the_hold_expires_its_stock_goes_back_and_one_email_is_sent() {
    let app = app();
    let hold = Duration::from_secs(env("ORDER_HOLD_SECONDS").parse().unwrap());
    assert!(hold < Duration::from_secs(120), "the test stack's hold is short ({hold:?})");
    let admin = app.new_admin("expiry-admin").await;
    let buyer = app.new_user("expiry-buyer").await;
    let product = app.new_product(&admin.token, "expiring", 100, 5).await;
    let product_id = product["id"].as_str().unwrap();

    let placed = place(&app, &buyer.token, &order_body(product_id, 2)).await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let placed_at = Instant::now();
    let id = placed.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    while order(&app, &buyer.token, &id).await["status"] != "confirmed" {
        assert!(placed_at.elapsed() < hold, "not confirmed within the hold");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(stock_of(&app, &admin.token, product_id).await, 3);

    tokio::time::sleep((hold + Duration::from_secs(2)).saturating_sub(placed_at.elapsed())).await;
    // Whoever runs first expires it: this call, the stack's own schedule, or
    // another test invoking expire-orders on the shared stack (the sample
    // events do); the order's state below is what must hold.
    let report = expire_orders(&app).await;
    assert!(report["expired"].is_u64(), "{report}");
    let expired = order(&app, &buyer.token, &id).await;
    assert_eq!(expired["status"], "cancelled", "{expired}");
    assert!(expired["reason"].as_str().unwrap().starts_with("expired: not shipped within"), "{expired}");
    assert_eq!(stock_of(&app, &admin.token, product_id).await, 5, "the reserved stock is back");

    // Run again (a retry, the next schedule): nothing more happens.
    expire_orders(&app).await;
    let emails = emails_to(&buyer.email, 3, Duration::from_secs(90)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let emails_after = emails_to(&buyer.email, 3, Duration::from_secs(5)).await;
    let expiries = |emails: &[Value]| {
        emails.iter().filter(|e| e["subject"].as_str().unwrap() == format!("Order {id} expired")).count()
    };
    assert_eq!((expiries(&emails), expiries(&emails_after)), (1, 1), "{emails_after:?}");
    // The order's emails: its confirmation and its expiry, once each (the
    // registration's verification email aside; verified by the operator, so no welcome).
    let about_orders = emails_after.iter().filter(|e| e["subject"].as_str().unwrap().starts_with("Order ")).count();
    assert_eq!(about_orders, 2, "confirmation, expiry: {emails_after:?}");

    // Its units no longer count against the caps (2 more would be beyond 20).
    assert_eq!(place(&app, &buyer.token, &order_body(product_id, 20)).await.status(), StatusCode::CREATED);
}
