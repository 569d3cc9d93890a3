//! Orders from outside: priced from the catalogue, created once per
//! Idempotency-Key, invisible to other customers, paged per owner, and changed
//! only along the status machine at the current version.

use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::catalogue::{create_product, product_body, unique_sku};
use crate::helpers::{TestApp, app, error_code};

async fn product(app: &TestApp, admin: &str, price: i64, currency: &str, stock: i64) -> String {
    let body = create_product(app, admin, product_body(&unique_sku("p"), price, currency, stock)).await;
    body["id"].as_str().unwrap().to_owned()
}

fn order_body(lines: &[(&str, i64)]) -> Value {
    json!({"lines": lines.iter().map(|(id, q)| json!({"product_id": id, "quantity": q})).collect::<Vec<_>>()})
}

/// POST /orders with `key` as its Idempotency-Key, or a fresh one.
pub(crate) async fn place(app: &TestApp, token: &str, key: Option<&str>, body: &Value) -> reqwest::Response {
    let key = key.map_or_else(|| ulid::Ulid::new().to_string(), str::to_owned);
    app.client
        .post(app.url("/orders"))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Without the key a retry of an order whose answer was lost would place a
/// second one, so the route refuses it and places nothing.
#[tokio::test]
async fn an_order_without_an_idempotency_key_is_a_400_and_places_nothing() {
    let app = app();
    let admin = app.new_admin("unkeyed-admin").await;
    let buyer = app.new_user("unkeyed-buyer").await;
    let item = app.new_product(&admin.token, "UNK", 100, 5).await;
    let body = order_body(&[(item["id"].as_str().unwrap(), 1)]);
    let response = app.client.post(app.url("/orders")).bearer_auth(&buyer.token).json(&body).send().await.unwrap();
    assert_eq!(error_code(response, StatusCode::BAD_REQUEST).await, "idempotency_key_required");
    let orders: Value = app.get("/orders", Some(&buyer.token)).await.json().await.unwrap();
    assert_eq!(orders["pagination"]["total"], 0);
}

async fn patch_status(app: &TestApp, token: &str, id: &str, version: &str, status: &str) -> reqwest::Response {
    app.client
        .request(Method::PATCH, app.url(&format!("/orders/{id}")))
        .bearer_auth(token)
        .header("if-match", version)
        .json(&json!({"status": status}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn orders_are_priced_from_the_catalogue() {
    let app = app();
    let admin = app.new_admin("pricer").await;
    let buyer = app.new_user("buyer").await;
    let tee = product(&app, &admin.token, 1999, "EUR", 10).await;
    let mug = product(&app, &admin.token, 850, "EUR", 10).await;

    let response = place(&app, &buyer.token, None, &order_body(&[(&tee, 2), (&mug, 1)])).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let order: Value = response.json().await.unwrap();
    assert_eq!(order["total"], json!({"amount_minor": 2 * 1999 + 850, "currency": "EUR"}));
    assert_eq!(order["status"], "pending");
    assert_eq!(order["owner_id"], buyer.id);
    assert_eq!(order["lines"][0]["unit_price"]["amount_minor"], 1999);

    // A price from the client is not even accepted as input.
    let sneaky = json!({"lines": [{"product_id": tee, "quantity": 1, "unit_price": 1}]});
    assert_eq!(
        error_code(place(&app, &buyer.token, None, &sneaky).await, StatusCode::UNPROCESSABLE_ENTITY).await,
        "validation_failed"
    );
}

#[tokio::test]
async fn unorderable_requests_are_422_and_create_nothing() {
    let app = app();
    let admin = app.new_admin("gatekeeper").await;
    let buyer = app.new_user("picky").await;
    let euros = product(&app, &admin.token, 100, "EUR", 10).await;
    let dollars = product(&app, &admin.token, 100, "USD", 10).await;
    let mut inactive = product_body(&unique_sku("gone"), 100, "EUR", 10);
    inactive["active"] = json!(false);
    let inactive = create_product(&app, &admin.token, inactive).await["id"].as_str().unwrap().to_owned();

    for body in [
        order_body(&[(&euros, 1), (&dollars, 1)]),
        order_body(&[(&inactive, 1)]),
        order_body(&[("01J9Z3NDEKTSV4RRFFQ69G5FAV", 1)]),
        order_body(&[(&euros, 0)]),
        order_body(&[(&euros, 1), (&euros, 2)]),
        json!({"lines": []}),
    ] {
        let response = place(&app, &buyer.token, None, &body).await;
        assert_eq!(error_code(response, StatusCode::UNPROCESSABLE_ENTITY).await, "validation_failed", "{body}");
    }
    let listed: Value = app.get("/orders", Some(&buyer.token)).await.json().await.unwrap();
    assert_eq!(listed["pagination"]["total"], 0);
}

#[tokio::test]
async fn a_retried_post_with_the_same_idempotency_key_creates_one_order() {
    let app = app();
    let admin = app.new_admin("idem").await;
    let buyer = app.new_user("retrier").await;
    let item = product(&app, &admin.token, 1000, "EUR", 10).await;
    let body = order_body(&[(&item, 1)]);
    let key = ulid::Ulid::new().to_string();

    let first = place(&app, &buyer.token, Some(&key), &body).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let retry = place(&app, &buyer.token, Some(&key), &body).await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.headers()["location"], format!("/api/v1/orders/{}", first["id"].as_str().unwrap()));
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(retry, first, "the first response, exactly");

    let other_body = place(&app, &buyer.token, Some(&key), &order_body(&[(&item, 2)])).await;
    assert_eq!(error_code(other_body, StatusCode::UNPROCESSABLE_ENTITY).await, "validation_failed");

    // Concurrent duplicates of a fresh key: still one order.
    let key = ulid::Ulid::new().to_string();
    let racers = (0..4).map(|_| place(&app, &buyer.token, Some(&key), &body));
    let responses = join_all(racers).await;
    let mut ids = Vec::new();
    for response in responses {
        assert_eq!(response.status(), StatusCode::CREATED);
        let order: Value = response.json().await.unwrap();
        ids.push(order["id"].as_str().unwrap().to_owned());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");

    let listed: Value = app.get("/orders", Some(&buyer.token)).await.json().await.unwrap();
    assert_eq!(listed["pagination"]["total"], 2, "one order per key");
}

#[tokio::test]
async fn other_customers_orders_do_not_exist_for_you() {
    let app = app();
    let admin = app.new_admin("owner-check").await;
    let alice = app.new_user("alice").await;
    let mallory = app.new_user("mallory").await;
    let item = product(&app, &admin.token, 1000, "EUR", 10).await;
    let order: Value = place(&app, &alice.token, None, &order_body(&[(&item, 1)])).await.json().await.unwrap();
    let path = format!("/orders/{}", order["id"].as_str().unwrap());

    assert_eq!(error_code(app.get(&path, Some(&mallory.token)).await, StatusCode::NOT_FOUND).await, "not_found");
    let patch = patch_status(&app, &mallory.token, order["id"].as_str().unwrap(), "\"1\"", "cancelled").await;
    assert_eq!(error_code(patch, StatusCode::NOT_FOUND).await, "not_found");
    let delete = app.request(Method::DELETE, &path, Some(&mallory.token), None).await;
    assert_eq!(error_code(delete, StatusCode::NOT_FOUND).await, "not_found");
    assert_eq!(app.get(&path, Some(&admin.token)).await.status(), StatusCode::OK);
    assert_eq!(app.get(&path, Some(&alice.token)).await.status(), StatusCode::OK);

    let mallorys: Value = app.get("/orders", Some(&mallory.token)).await.json().await.unwrap();
    assert_eq!(mallorys["data"], json!([]));
}

#[tokio::test]
async fn listing_pages_through_own_orders_and_cursors_stay_with_their_owner() {
    let app = app();
    let admin = app.new_admin("lister").await;
    let buyer = app.new_user("collector").await;
    let other = app.new_user("neighbour").await;
    let item = product(&app, &admin.token, 100, "EUR", 100).await;
    for _ in 0..5 {
        assert_eq!(place(&app, &buyer.token, None, &order_body(&[(&item, 1)])).await.status(), StatusCode::CREATED);
    }
    let page: Value = app.get("/orders?limit=2", Some(&buyer.token)).await.json().await.unwrap();
    assert_eq!(page["pagination"]["total"], 5);
    let cursor = page["pagination"]["next_cursor"].as_str().unwrap().to_owned();

    let stolen = app.get(&format!("/orders?limit=2&cursor={cursor}"), Some(&other.token)).await;
    assert_eq!(error_code(stolen, StatusCode::BAD_REQUEST).await, "invalid_cursor");
    let refiltered = app.get(&format!("/orders?limit=2&status=shipped&cursor={cursor}"), Some(&buyer.token)).await;
    assert_eq!(error_code(refiltered, StatusCode::BAD_REQUEST).await, "invalid_cursor");

    let mut seen: Vec<String> =
        page["data"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_owned()).collect();
    let mut next = Some(cursor);
    while let Some(cursor) = next {
        let page: Value =
            app.get(&format!("/orders?limit=2&cursor={cursor}"), Some(&buyer.token)).await.json().await.unwrap();
        seen.extend(page["data"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_owned()));
        next = page["pagination"]["next_cursor"].as_str().map(str::to_owned);
    }
    assert_eq!(seen.len(), 5);
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "newest first, no duplicates");

    let filtered: Value = app.get("/orders?status=cancelled", Some(&buyer.token)).await.json().await.unwrap();
    assert_eq!(filtered["pagination"]["total"], 0);
    let bad = app.get("/orders?status=lost", Some(&buyer.token)).await;
    assert_eq!(error_code(bad, StatusCode::UNPROCESSABLE_ENTITY).await, "validation_failed");
}

#[tokio::test]
async fn owners_cancel_admins_ship_and_the_status_machine_holds() {
    let app = app();
    let admin = app.new_admin("shipper").await;
    let buyer = app.new_user("canceller").await;
    let item = product(&app, &admin.token, 100, "EUR", 100).await;
    let sold_out = product(&app, &admin.token, 100, "EUR", 0).await;
    let first: Value = place(&app, &buyer.token, None, &order_body(&[(&item, 1)])).await.json().await.unwrap();
    let second: Value = place(&app, &buyer.token, None, &order_body(&[(&item, 1)])).await.json().await.unwrap();
    let hopeless: Value = place(&app, &buyer.token, None, &order_body(&[(&sold_out, 1)])).await.json().await.unwrap();
    crate::flows::settle(&app, &buyer.token).await;
    let (first, second, hopeless) =
        (first["id"].as_str().unwrap(), second["id"].as_str().unwrap(), hopeless["id"].as_str().unwrap());
    // Each was decided once by the stock reservation: version 2.
    let shipping = patch_status(&app, &buyer.token, first, "\"2\"", "shipped").await;
    assert_eq!(error_code(shipping, StatusCode::FORBIDDEN).await, "forbidden");
    let confirm = patch_status(&app, &admin.token, first, "\"2\"", "confirmed").await;
    assert_eq!(error_code(confirm, StatusCode::UNPROCESSABLE_ENTITY).await, "validation_failed");
    let ship_rejected = patch_status(&app, &admin.token, hopeless, "\"2\"", "shipped").await;
    assert_eq!(error_code(ship_rejected, StatusCode::CONFLICT).await, "illegal_transition");
    let stale = patch_status(&app, &buyer.token, first, "\"1\"", "cancelled").await;
    assert_eq!(error_code(stale, StatusCode::PRECONDITION_FAILED).await, "precondition_failed");

    // Two cancellations of version 2 race: exactly one lands.
    let racers = (0..2).map(|_| patch_status(&app, &buyer.token, first, "\"2\"", "cancelled"));
    let statuses: Vec<StatusCode> = join_all(racers).await.iter().map(reqwest::Response::status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1, "{statuses:?}");
    let again = app.request(Method::DELETE, &format!("/orders/{first}"), Some(&buyer.token), None).await;
    assert_eq!(error_code(again, StatusCode::CONFLICT).await, "illegal_transition");
    let stored: Value = app.get(&format!("/orders/{first}"), Some(&buyer.token)).await.json().await.unwrap();
    assert_eq!((stored["status"].as_str(), stored["version"].as_u64()), (Some("cancelled"), Some(3)));

    // The admin ships a confirmed order; a shipped order can no longer be cancelled.
    let shipped = patch_status(&app, &admin.token, second, "\"2\"", "shipped").await;
    assert_eq!(shipped.status(), StatusCode::OK);
    let late = app.request(Method::DELETE, &format!("/orders/{second}"), Some(&buyer.token), None).await;
    assert_eq!(error_code(late, StatusCode::CONFLICT).await, "illegal_transition");
}

#[tokio::test]
async fn admins_list_every_customers_orders_by_status() {
    let app = app();
    let admin = app.new_admin("overseer").await;
    let buyer = app.new_user("customer").await;
    let item = product(&app, &admin.token, 100, "EUR", 100).await;
    let order: Value = place(&app, &buyer.token, None, &order_body(&[(&item, 1)])).await.json().await.unwrap();
    crate::flows::settle(&app, &buyer.token).await;

    let all: Value = app.get("/orders?limit=100", Some(&admin.token)).await.json().await.unwrap();
    assert!(all["data"].as_array().unwrap().iter().any(|o| o["id"] == order["id"]));
    assert!(all["pagination"]["total"].as_u64().unwrap() >= 1);
    let confirmed: Value =
        app.get("/orders?status=confirmed&limit=100", Some(&admin.token)).await.json().await.unwrap();
    assert!(confirmed["data"].as_array().unwrap().iter().all(|o| o["status"] == "confirmed"));
    assert!(confirmed["data"].as_array().unwrap().iter().any(|o| o["id"] == order["id"]));
}

/// Regression: an order whose total exceeds the money bound was
/// written with 201 and then broke every read of it (GET, cancel, listings).
#[tokio::test]
async fn an_order_beyond_the_money_bound_is_refused_and_listings_stay_readable() {
    let app = app();
    let admin = app.new_admin("rich").await;
    let buyer = app.new_user("whale").await;
    // 100 million major units each: 1000 of them is far beyond the bound.
    let expensive = product(&app, &admin.token, 10_000_000_000, "EUR", 1_000_000).await;
    let response = place(&app, &buyer.token, None, &order_body(&[(&expensive, 1000)])).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["details"][0]["field"], "lines", "{body}");

    // 50 lines of mid-priced products add up beyond the bound as well.
    let mut lines = Vec::new();
    for _ in 0..50 {
        lines.push(product(&app, &admin.token, 250_000_000, "EUR", 1000).await);
    }
    let many: Vec<(&str, i64)> = lines.iter().map(|id| (id.as_str(), 1000)).collect();
    let response = place(&app, &buyer.token, None, &order_body(&many)).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let listed = app.get("/orders", Some(&buyer.token)).await;
    assert_eq!(listed.status(), StatusCode::OK);
    let listed: Value = listed.json().await.unwrap();
    assert_eq!(listed["pagination"]["total"], 0, "nothing was written");
}

/// Regression: `If-Match: *` matches any current version (RFC 9110).
#[tokio::test]
async fn if_match_star_matches_the_current_version() {
    let app = app();
    let admin = app.new_admin("star").await;
    let buyer = app.new_user("star-buyer").await;
    let id = product(&app, &admin.token, 100, "EUR", 5).await;
    let order: Value = place(&app, &buyer.token, None, &order_body(&[(&id, 1)])).await.json().await.unwrap();
    let cancelled = patch_status(&app, &buyer.token, order["id"].as_str().unwrap(), "*", "cancelled").await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    let missing = patch_status(&app, &buyer.token, "01J9Z3NDEKTSV4RRFFQ69G5FAV", "*", "cancelled").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND, "`*` does not match a resource that does not exist");
}
