//! Account deletion from outside: a customer exports their data, deletes
//! their account with its password, and then the address registers again,
//! the old credentials fail like an unknown address, the old token reads and
//! changes nothing, a repeat is answered 204 again, and the orders stay in an admin's
//! view without their owner. An admin cannot delete their own account.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, app, error_code, unique_email};

async fn delete_me(token: &str, body: Value) -> reqwest::Response {
    app().request(Method::DELETE, "/users/me", Some(token), Some(body)).await
}

/// An order of the caller, cancelled (a final status: an account with open
/// orders cannot be deleted).
async fn cancelled_order(token: &str, product_id: &str) -> Value {
    let app = app();
    let placed = app.post("/orders", Some(token), json!({"lines": [{"product_id": product_id, "quantity": 2}]})).await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let placed: Value = placed.json().await.unwrap();
    let path = format!("/orders/{}", placed["id"].as_str().unwrap());
    // The reservation may confirm it meanwhile: confirmed orders cancel too.
    for _ in 0..5 {
        let response = app.request(Method::DELETE, &path, Some(token), None).await;
        if response.status() == StatusCode::OK {
            return response.json().await.unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("the order could not be cancelled");
}

#[tokio::test]
async fn a_customer_exports_then_deletes_their_account_and_the_shop_keeps_the_orders_without_them() {
    let app = app();
    let admin = app.new_admin("erasure-admin").await;
    let customer = app.new_user("erased").await;
    let product = app.new_product(&admin.token, "ERASE", 1250, 50).await;
    let order = cancelled_order(&customer.token, product["id"].as_str().unwrap()).await;
    let order_path = format!("/orders/{}", order["id"].as_str().unwrap());

    // Export first: the account and the order.
    let export = app.get("/users/me/export", Some(&customer.token)).await;
    assert_eq!(export.status(), StatusCode::OK);
    let export: Value = export.json().await.unwrap();
    assert_eq!(export["account"]["email"].as_str(), Some(&*customer.email));
    assert!(export["orders"].as_array().unwrap().iter().any(|exported| exported["id"] == order["id"]), "{export}");

    // Re-authentication: the token alone erases nothing.
    let without = app.request(Method::DELETE, "/users/me", Some(&customer.token), None).await;
    assert!(without.status().is_client_error(), "a delete without the password is refused: {}", without.status());
    let wrong = delete_me(&customer.token, json!({"password": "not the password at all"})).await;
    assert_eq!(error_code(wrong, StatusCode::FORBIDDEN).await, "password_incorrect");
    assert_eq!(app.get("/users/me", Some(&customer.token)).await.status(), StatusCode::OK, "still there");

    // A session of another device, whose refresh token must die with the account.
    let other_device: Value = app.login(&customer.email, PASSWORD).await.json().await.unwrap();
    assert!(other_device["refresh_token"].is_string(), "{other_device}");

    let deleted = delete_me(&customer.token, json!({"password": PASSWORD})).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let refreshed = app.post("/auth/refresh", None, json!({"refresh_token": other_device["refresh_token"]})).await;
    assert_eq!(refreshed.status(), StatusCode::UNAUTHORIZED, "no session outlives its account");

    // A retry (the client lost the 204) is answered as the first was, and changes nothing.
    let retried = delete_me(&customer.token, json!({"password": PASSWORD})).await;
    assert_eq!(retried.status(), StatusCode::NO_CONTENT);
    // The old token reads nothing and changes nothing.
    assert_eq!(app.get("/users/me", Some(&customer.token)).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get("/users/me/export", Some(&customer.token)).await.status(), StatusCode::NOT_FOUND);
    let own: Value = app.get("/orders", Some(&customer.token)).await.json().await.unwrap();
    assert_eq!(own["data"].as_array().map(Vec::len), Some(0), "no order is listed under the erased account: {own}");
    let reorder = app
        .post("/orders", Some(&customer.token), json!({"lines": [{"product_id": product["id"], "quantity": 1}]}))
        .await;
    assert_eq!(error_code(reorder, StatusCode::UNAUTHORIZED).await, "invalid_token");
    // Signing in with the old credentials fails exactly like an unknown address.
    let old = app.login(&customer.email, PASSWORD).await;
    let old_code = error_code(old, StatusCode::UNAUTHORIZED).await;
    let unknown = app.login(&unique_email("nobody"), PASSWORD).await;
    assert_eq!(old_code, error_code(unknown, StatusCode::UNAUTHORIZED).await);

    // The shop's books keep the order, without its owner.
    let kept = app.get(&order_path, Some(&admin.token)).await;
    assert_eq!(kept.status(), StatusCode::OK);
    let kept: Value = kept.json().await.unwrap();
    assert_eq!(kept["owner_id"], Value::Null, "{kept}");
    assert_eq!((&kept["total"], &kept["lines"], &kept["status"]), (&order["total"], &order["lines"], &order["status"]));
    let listed = listed_for_admin(&admin.token, order["id"].as_str().unwrap()).await;
    assert_eq!(listed["owner_id"], Value::Null, "the admin's listing reads it back: {listed}");

    // The address registers again, as a new account.
    let again = app.register(&customer.email, "another correct horse battery").await;
    assert!(matches!(again.status(), StatusCode::CREATED | StatusCode::ACCEPTED), "{}", again.status());
    let token = app.login(&customer.email, "another correct horse battery").await;
    assert_eq!(token.status(), StatusCode::OK, "the new account signs in with its own password");
    let token: Value = token.json().await.unwrap();
    let me: Value = app.get("/users/me", token["token"].as_str()).await.json().await.unwrap();
    assert_eq!(me["email"].as_str(), Some(&*customer.email));
    assert_ne!(me["id"].as_str(), Some(&*customer.id), "a new account, not the old one back");
}

/// The order `id` as an admin's listing of cancelled orders shows it
/// (newest first; a few pages at most, whatever else the run placed).
async fn listed_for_admin(admin_token: &str, id: &str) -> Value {
    let app = app();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            Some(cursor) => format!("/orders?status=cancelled&limit=100&cursor={cursor}"),
            None => "/orders?status=cancelled&limit=100".to_owned(),
        };
        let page: Value = app.get(&path, Some(admin_token)).await.json().await.unwrap();
        if let Some(found) = page["data"].as_array().unwrap().iter().find(|order| order["id"] == id) {
            return found.clone();
        }
        match page["pagination"]["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    panic!("order {id} is not in the admin's listing");
}

/// A client whose first answer was lost (a timeout) sends the deletion
/// again with the same, still valid access token and password: 204 both
/// times. Any other request with that token is refused as before.
#[tokio::test]
async fn a_deletion_sent_twice_with_the_same_token_answers_204_twice() {
    let app = app();
    let customer = app.new_user("erased-twice").await;

    let first = delete_me(&customer.token, json!({"password": PASSWORD})).await;
    assert_eq!(first.status(), StatusCode::NO_CONTENT);
    let again = delete_me(&customer.token, json!({"password": PASSWORD})).await;
    assert_eq!(again.status(), StatusCode::NO_CONTENT, "a retry of a deletion that happened");

    let change = app.request(
        Method::POST,
        "/users/me/password",
        Some(&customer.token),
        Some(json!({
            "current_password": PASSWORD,
            "new_password": PASSWORD,
        })),
    );
    assert_eq!(error_code(change.await, StatusCode::UNAUTHORIZED).await, "invalid_token", "other writes stay refused");
}

#[tokio::test]
async fn an_admin_cannot_delete_their_own_account_and_open_orders_block_a_deletion() {
    let app = app();
    let admin = app.new_admin("erasure-last").await;
    let refused = delete_me(&admin.token, json!({"password": PASSWORD})).await;
    assert_eq!(error_code(refused, StatusCode::CONFLICT).await, "admin_account");
    assert_eq!(app.get("/users/me", Some(&admin.token)).await.status(), StatusCode::OK, "still an admin");

    let customer = app.new_user("erasure-open").await;
    let product = app.new_product(&admin.token, "ERASE-OPEN", 500, 50).await;
    let placed = app
        .post("/orders", Some(&customer.token), json!({"lines": [{"product_id": product["id"], "quantity": 1}]}))
        .await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let refused = delete_me(&customer.token, json!({"password": PASSWORD})).await;
    assert_eq!(error_code(refused, StatusCode::CONFLICT).await, "orders_open");
    assert_eq!(app.get("/users/me", Some(&customer.token)).await.status(), StatusCode::OK);
}

/// The erasing write commits and the function dies before the orders are
/// taken off the account (the erasure is made here through the operator's
/// door, without the request's follow-up), and a session item lands in the
/// account's partition after it: the scheduled sweep finishes the job.
#[tokio::test]
async fn the_sweep_finishes_an_erasure_the_request_could_not() {
    use adapters::dynamo::{DynamoAccountErasure, Table};
    use domain::ports::{AccountErasure, UserStore};

    let app = app();
    let admin = app.new_admin("sweep-admin").await;
    let customer = app.new_user("swept").await;
    let product = app.new_product(&admin.token, "SWEEP", 700, 50).await;
    let order = cancelled_order(&customer.token, product["id"].as_str().unwrap()).await;
    let order_path = format!("/orders/{}", order["id"].as_str().unwrap());
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let table = Table::from_config(&config, crate::helpers::env("TABLE_NAME"));
    let id = domain::UserId::parse(&customer.id).unwrap();
    let user = crate::helpers::user_store().await.get(id).await.unwrap().expect("registered");
    DynamoAccountErasure::new(table.clone()).erase(&user).await.expect("erased");
    let late = [("pk", format!("USER#{id}")), ("sk", "SESSION#late".to_owned())]
        .map(|(name, value)| (name.to_owned(), aws_sdk_dynamodb::types::AttributeValue::S(value)));
    table.client().put_item().table_name(table.name()).set_item(Some(late.clone().into())).send().await.unwrap();
    let before: Value = app.get(&order_path, Some(&admin.token)).await.json().await.unwrap();
    assert_eq!(before["owner_id"].as_str(), Some(&*customer.id), "not taken off yet");

    let answer = app
        .client
        .post(format!("{}/2015-03-31/functions/finish-erasures/invocations", crate::helpers::env("SHOP_FUNCTIONS_URL")))
        .json(&json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());
    let swept: Value = answer.json().await.unwrap();
    assert!(swept["finished"].as_u64().is_some_and(|finished| finished >= 1), "{swept}");

    let after: Value = app.get(&order_path, Some(&admin.token)).await.json().await.unwrap();
    assert_eq!(after["owner_id"], Value::Null, "{after}");
    assert_eq!(after["total"], order["total"]);
    let left = table.client().get_item().table_name(table.name()).set_key(Some(late.into())).send().await.unwrap();
    assert!(left.item.is_none(), "what landed in the partition after the erasure is gone too");
}
