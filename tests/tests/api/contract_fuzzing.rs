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

/// Behind the one emulator exclusion of xtask/checks/fuzz-exclusions.yaml
/// (`emulator-body-not-utf8`): `cargo lambda watch` answers a body that is
/// not UTF-8 with its own 500 before any function runs, while API Gateway
/// passes it on base64-encoded. Sent that way, straight to the function, it
/// is a 400 malformed_json, never a 500.
#[tokio::test]
async fn a_body_that_is_not_utf8_is_a_400_from_the_function() {
    use base64::Engine;

    let mut event = sample_register_event();
    event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(b"\xaa\x04\x02S\"\x18\xff"));
    event["isBase64Encoded"] = json!(true);
    let output = invoke_register(&event).await;
    assert_eq!(output["statusCode"], 400, "{output}");
    let body: Value = serde_json::from_str(output["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "malformed_json", "{body}");
}

/// Behind `emulator-header-not-ascii`: `cargo lambda watch` answers a header
/// value beyond ASCII with its own 500; API Gateway passes it on, and the
/// function, given one straight, answers as usual.
#[tokio::test]
async fn a_header_value_beyond_ascii_reaches_the_function_and_is_no_500() {
    let mut event = sample_register_event();
    let email = crate::helpers::unique_email("latin1");
    event["body"] = json!(json!({"email": email, "password": crate::helpers::PASSWORD}).to_string());
    event["headers"]["If-Match"] = json!("\u{b1}\u{af}");
    event["multiValueHeaders"]["If-Match"] = json!(["\u{b1}\u{af}"]);
    let output = invoke_register(&event).await;
    assert_eq!(output["statusCode"], 202, "{output}");
}

/// `events/register.json`, API Gateway's event for a registration.
fn sample_register_event() -> Value {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    serde_json::from_str(&std::fs::read_to_string(root.join("events/register.json")).unwrap()).unwrap()
}

/// Invokes the register function straight (past `cargo lambda watch`'s
/// HTTP front) and returns its API Gateway response.
async fn invoke_register(event: &Value) -> Value {
    let response = app()
        .client
        .post(format!("{}/2015-03-31/functions/register/invocations", crate::helpers::env("SHOP_FUNCTIONS_URL")))
        .json(event)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "invoke failed with {}", response.status());
    response.json().await.unwrap()
}
