//! The catalogue from outside: only admins write it (SKUs unique, replaces
//! need the current version), guests see active products only; also the
//! product helpers the other black-box tests use.

use std::time::{Duration, Instant};

use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, app, env, error_code};

pub fn product_body(sku: &str, price: i64, currency: &str, stock: i64) -> Value {
    json!({"sku": sku, "name": format!("Product {sku}"), "description": "A fine thing.",
           "price": {"amount_minor": price, "currency": currency}, "stock": stock})
}

pub use crate::helpers::unique_sku;

/// Creates a product as `admin_token`; returns its JSON.
pub async fn create_product(app: &TestApp, admin_token: &str, body: Value) -> Value {
    let response = app.post("/products", Some(admin_token), body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

async fn put_product(app: &TestApp, token: &str, id: &str, if_match: Option<&str>, body: Value) -> reqwest::Response {
    let mut request =
        app.client.request(Method::PUT, app.url(&format!("/products/{id}"))).bearer_auth(token).json(&body);
    if let Some(etag) = if_match {
        request = request.header("if-match", etag);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn admins_manage_the_catalogue_and_guests_browse_it() {
    let app = app();
    let admin = app.new_admin("catalog").await;
    let sku = unique_sku("tee");
    let response = app.post("/products", Some(&admin.token), product_body(&sku.to_lowercase(), 1999, "eur", 5)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["etag"], "\"1\"");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let product: Value = response.json().await.unwrap();
    assert_eq!(product["sku"], sku.to_uppercase());
    assert_eq!(product["price"], json!({"amount_minor": 1999, "currency": "EUR"}));
    assert_eq!(location, format!("/api/v1/products/{}", product["id"].as_str().unwrap()));

    let fetched = app.get(&format!("/products/{}", product["id"].as_str().unwrap()), None).await;
    assert_eq!(fetched.status(), StatusCode::OK);
    // An admin's listing is the table's (a guest's first page may be up to the read cache's TTL old).
    let listed: Value = app.get("/products?limit=100", Some(&admin.token)).await.json().await.unwrap();
    assert!(listed["data"].as_array().unwrap().iter().any(|p| p["id"] == product["id"]));
    assert!(listed["pagination"]["total"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn only_admins_write_the_catalogue_and_input_is_validated() {
    let app = app();
    let user = app.new_user("shopper").await;
    let body = product_body(&unique_sku("x"), 100, "EUR", 1);
    assert_eq!(
        error_code(app.post("/products", None, body.clone()).await, StatusCode::UNAUTHORIZED).await,
        "unauthenticated"
    );
    assert_eq!(
        error_code(app.post("/products", Some(&user.token), body).await, StatusCode::FORBIDDEN).await,
        "forbidden"
    );

    let admin = app.new_admin("validator").await;
    let bad = json!({"sku": "x", "name": "", "price": {"amount_minor": -5, "currency": "EURO"}, "stock": -1});
    let response = app.post("/products", Some(&admin.token), bad).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    let fields: Vec<&str> =
        body["error"]["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["sku", "name", "currency", "price", "stock"]);
}

#[tokio::test]
async fn skus_are_unique_and_free_again_after_delete() {
    let app = app();
    let admin = app.new_admin("skus").await;
    let sku = unique_sku("mug");
    let first = create_product(&app, &admin.token, product_body(&sku, 900, "EUR", 3)).await;
    let clash = app.post("/products", Some(&admin.token), product_body(&sku, 900, "EUR", 3)).await;
    assert_eq!(error_code(clash, StatusCode::CONFLICT).await, "sku_taken");

    let id = first["id"].as_str().unwrap();
    let deleted = app.request(Method::DELETE, &format!("/products/{id}"), Some(&admin.token), None).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.get(&format!("/products/{id}"), None).await.status(), StatusCode::NOT_FOUND);
    create_product(&app, &admin.token, product_body(&sku, 900, "EUR", 3)).await;
}

#[tokio::test]
async fn replacing_a_product_needs_the_current_version_and_one_writer_wins() {
    let app = app();
    let admin = app.new_admin("editor").await;
    let sku = unique_sku("cap");
    let product = create_product(&app, &admin.token, product_body(&sku, 1500, "EUR", 10)).await;
    let id = product["id"].as_str().unwrap();

    let missing = put_product(&app, &admin.token, id, None, product_body(&sku, 1600, "EUR", 10)).await;
    assert_eq!(error_code(missing, StatusCode::PRECONDITION_REQUIRED).await, "precondition_required");
    let stale = put_product(&app, &admin.token, id, Some("\"9\""), product_body(&sku, 1600, "EUR", 10)).await;
    assert_eq!(error_code(stale, StatusCode::PRECONDITION_FAILED).await, "precondition_failed");

    let writers = [1600, 1700, 1800]
        .map(|price| put_product(&app, &admin.token, id, Some("\"1\""), product_body(&sku, price, "EUR", 10)));
    let statuses: Vec<StatusCode> = join_all(writers).await.iter().map(reqwest::Response::status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::PRECONDITION_FAILED).count(), 2, "{statuses:?}");
    let stored: Value = app.get(&format!("/products/{id}"), None).await.json().await.unwrap();
    assert_eq!(stored["version"], 2);
}

#[tokio::test]
async fn inactive_products_are_hidden_from_everyone_but_admins() {
    let app = app();
    let admin = app.new_admin("curator").await;
    let user = app.new_user("browser").await;
    let sku = unique_sku("old");
    let mut body = product_body(&sku, 500, "EUR", 1);
    body["active"] = json!(false);
    let product = create_product(&app, &admin.token, body).await;
    let path = format!("/products/{}", product["id"].as_str().unwrap());

    assert_eq!(app.get(&path, None).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get(&path, Some(&user.token)).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get(&path, Some(&admin.token)).await.status(), StatusCode::OK);
    let active: Value = app.get("/products?limit=100", None).await.json().await.unwrap();
    assert!(!active["data"].as_array().unwrap().iter().any(|p| p["id"] == product["id"]));
    let inactive: Value = app.get("/products?active=false&limit=100", Some(&admin.token)).await.json().await.unwrap();
    assert!(inactive["data"].as_array().unwrap().iter().any(|p| p["id"] == product["id"]));
    assert_eq!(app.get("/products?active=false", Some(&user.token)).await.status(), StatusCode::FORBIDDEN);

    // Activated again, it moves from one listing (and its total) to the other: at once for an
    // admin, and for a guest (whose 404 above the read cache keeps) within the cache's TTL.
    let before: Value = app.get("/products?limit=1", Some(&admin.token)).await.json().await.unwrap();
    let reactivated =
        put_product(&app, &admin.token, product["id"].as_str().unwrap(), Some("*"), product_body(&sku, 500, "EUR", 1))
            .await;
    assert_eq!(reactivated.status(), StatusCode::OK);
    assert_eq!(app.get(&path, Some(&admin.token)).await.status(), StatusCode::OK);
    let after: Value = app.get("/products?limit=1", Some(&admin.token)).await.json().await.unwrap();
    assert!(after["pagination"]["total"].as_u64() > before["pagination"]["total"].as_u64(), "{before} {after}");
    let ttl = Duration::from_secs(env("CATALOGUE_CACHE_TTL_SECONDS").parse().unwrap());
    let deadline = Instant::now() + ttl + Duration::from_secs(1);
    while app.get(&path, None).await.status() != StatusCode::OK {
        assert!(Instant::now() < deadline, "a guest still gets 404 past the read cache's TTL");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn changing_a_sku_frees_the_old_one() {
    let app = app();
    let admin = app.new_admin("renamer").await;
    let (old, new) = (unique_sku("old"), unique_sku("new"));
    let product = create_product(&app, &admin.token, product_body(&old, 100, "EUR", 1)).await;
    let id = product["id"].as_str().unwrap();
    let renamed = put_product(&app, &admin.token, id, Some("\"1\""), product_body(&new, 100, "EUR", 1)).await;
    assert_eq!(renamed.status(), StatusCode::OK);
    let taken = app.post("/products", Some(&admin.token), product_body(&new, 100, "EUR", 1)).await;
    assert_eq!(error_code(taken, StatusCode::CONFLICT).await, "sku_taken");
    create_product(&app, &admin.token, product_body(&old, 100, "EUR", 1)).await;
}
