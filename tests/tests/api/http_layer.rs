//! The shared HTTP layer, observed from outside: statuses for bad bodies,
//! size limit, security headers and CORS on every response.

use reqwest::{Method, StatusCode};

use crate::helpers::{app, error_code};

const SECURITY_HEADERS: [(&str, &str); 4] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("strict-transport-security", "max-age=31536000; includeSubDomains"),
    ("content-security-policy", "default-src 'self'; frame-ancestors 'none'"),
];

async fn post_raw(path: &str, content_type: &str, body: String) -> reqwest::Response {
    let app = app();
    app.client.post(app.url(path)).header("content-type", content_type).body(body).send().await.unwrap()
}

#[tokio::test]
async fn malformed_bodies_are_client_errors_never_500() {
    let cases = [
        ("application/json", "{\"email\":", StatusCode::BAD_REQUEST, "malformed_json"),
        ("application/json", "", StatusCode::BAD_REQUEST, "malformed_json"),
        ("application/json", "[1,2,3]", StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        ("application/json", "{\"email\":42,\"password\":true}", StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        ("text/plain", "{}", StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
    ];
    for (content_type, body, status, code) in cases {
        let response = post_raw("/auth/register", content_type, body.into()).await;
        assert_eq!(error_code(response, status).await, code, "{content_type} {body}");
    }
}

#[tokio::test]
async fn oversized_bodies_are_refused_before_parsing() {
    let body = format!("{{\"email\":\"a@example.com\",\"password\":\"{}\"}}", "x".repeat(70 * 1024));
    let response = post_raw("/auth/register", "application/json", body).await;
    assert_eq!(error_code(response, StatusCode::PAYLOAD_TOO_LARGE).await, "payload_too_large");
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = app();
    let responses = [
        app.get("/health", None).await,
        app.get("/users/me", None).await,
        post_raw("/auth/login", "application/json", "{".into()).await,
    ];
    for response in responses {
        for (name, value) in SECURITY_HEADERS {
            assert_eq!(
                response.headers().get(name).map(|v| v.to_str().unwrap()),
                Some(value),
                "{name} on {}",
                response.status()
            );
        }
        assert!(response.headers().contains_key("x-request-id"));
    }
}

#[tokio::test]
async fn correlation_id_is_echoed_when_given() {
    let app = app();
    let response = app.client.get(app.url("/health")).header("x-correlation-id", "order-flow-42").send().await.unwrap();
    assert_eq!(response.headers()["x-correlation-id"], "order-flow-42");
}

#[tokio::test]
async fn cors_follows_the_allow_list() {
    let app = app();
    let preflight = |origin: &'static str| {
        app.client
            .request(Method::OPTIONS, app.url("/auth/login"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let allowed = preflight("http://localhost:3000").await.unwrap();
    assert_eq!(allowed.status(), StatusCode::NO_CONTENT);
    assert_eq!(allowed.headers()["access-control-allow-origin"], "http://localhost:3000");
    assert!(allowed.headers()["access-control-allow-methods"].to_str().unwrap().contains("POST"));

    let refused = preflight("https://evil.example").await.unwrap();
    assert!(!refused.headers().contains_key("access-control-allow-origin"));

    let simple = app.client.get(app.url("/health")).header("origin", "https://evil.example").send().await.unwrap();
    assert_eq!(simple.status(), StatusCode::OK);
    assert!(!simple.headers().contains_key("access-control-allow-origin"));
}

/// Regression: an OPTIONS request that is not a CORS preflight
/// ran the route's real handler, so it could place an order.
#[tokio::test]
async fn an_options_request_that_is_not_a_preflight_changes_nothing() {
    let app = app();
    let admin = app.new_admin("options").await;
    let buyer = app.new_user("options-buyer").await;
    let product = crate::catalogue::create_product(
        &app,
        &admin.token,
        crate::catalogue::product_body(&crate::catalogue::unique_sku("opt"), 100, "EUR", 5),
    )
    .await;
    let body = serde_json::json!({"lines": [{"product_id": product["id"], "quantity": 1}]});
    // Answered as a preflight (without CORS grants: it is not one), as
    // API Gateway's mock integration answers it: nothing runs.
    let response = app
        .client
        .request(Method::OPTIONS, app.url("/orders"))
        .bearer_auth(&buyer.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(!response.headers().contains_key("access-control-allow-methods"));
    let orders: serde_json::Value = app.get("/orders", Some(&buyer.token)).await.json().await.unwrap();
    assert_eq!(orders["pagination"]["total"], 0, "no order was placed: {orders}");
    let registered = app
        .client
        .request(Method::OPTIONS, app.url("/auth/register"))
        .json(&serde_json::json!({"email": crate::helpers::unique_email("options"), "password": crate::helpers::PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::NO_CONTENT);
}

/// As API Gateway's resource tree: `/users/me` is a resource of its own, so
/// a PATCH there is 405 listing its methods (not forwarded as `/users/{id}`),
/// and an unknown path is 404; both in the error envelope with a request id.
#[tokio::test]
async fn a_literal_resource_is_not_an_instance_of_its_parameter_sibling() {
    let app = app();
    let user = app.new_user("me-patch").await;
    let response = app.request(Method::PATCH, "/users/me", Some(&user.token), Some(serde_json::json!({}))).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "DELETE, GET");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
    assert!(body["error"]["request_id"].as_str().is_some_and(|id| !id.is_empty()), "{body}");
    let unknown = app.get("/no-such-thing", None).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}
