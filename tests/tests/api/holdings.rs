//! Hoarding from outside: one account's open orders are capped (orders hold
//! stock without payment), even for orders sent at once.

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, app};

fn order_body(product_id: &str, quantity: i64) -> Value {
    json!({"lines": [{"product_id": product_id, "quantity": quantity}]})
}

/// POST /orders with a fresh Idempotency-Key.
async fn place(app: &TestApp, token: &str, body: &Value) -> reqwest::Response {
    let key = ulid::Ulid::new().to_string();
    app.client
        .post(app.url("/orders"))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap()
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
