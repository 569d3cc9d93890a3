//! Regression tests for what contract fuzzing (`cargo xtask fuzz-api`,
//! schemathesis against docs/openapi.yaml) found: each failed before its fix.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::catalogue::{create_product, unique_sku};
use crate::helpers::app;

/// JSON (and JSON Schema's `integer`) does not tell `2` from `2.0` or `2e0`:
/// schemathesis sent `"quantity": 550.0` and `"stock": 2129.0`, valid by the
/// document, and got 422. Whole numbers in any JSON spelling are accepted;
/// a fraction is still refused.
#[tokio::test]
async fn whole_numbers_are_accepted_in_any_json_spelling() {
    let app = app();
    let admin = app.new_admin("whole").await;
    let customer = app.new_user("whole").await;
    let body = json!({"sku": unique_sku("WHOLE"), "name": "Whole", "price": {"amount_minor": 250.0, "currency": "EUR"},
                      "stock": 1e3});
    let product = create_product(&app, &admin.token, body).await;
    assert_eq!((product["price"]["amount_minor"].clone(), product["stock"].clone()), (json!(250), json!(1000)));

    let order = app
        .post("/orders", Some(&customer.token), json!({"lines": [{"product_id": product["id"], "quantity": 2.0}]}))
        .await;
    assert_eq!(order.status(), StatusCode::CREATED);
    let order: Value = order.json().await.unwrap();
    assert_eq!(order["lines"][0]["quantity"], 2);

    let fraction = json!({"lines": [{"product_id": product["id"], "quantity": 1.5}]});
    assert_eq!(app.post("/orders", Some(&customer.token), fraction).await.status(), StatusCode::UNPROCESSABLE_ENTITY);
}
