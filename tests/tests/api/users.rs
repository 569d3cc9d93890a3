//! Accounts from outside: listings for admins only and paged without gaps
//! while users arrive, bad limits and forged cursors refused, admin changes at
//! the current version only, and no admin can lock themselves out.

use std::collections::HashSet;

use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, app, error_code};

async fn patch_user(token: &str, id: &str, if_match: Option<&str>, body: Value) -> reqwest::Response {
    let app = app();
    let mut request =
        app.client.request(Method::PATCH, app.url(&format!("/users/{id}"))).bearer_auth(token).json(&body);
    if let Some(etag) = if_match {
        request = request.header("if-match", etag);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn listing_users_is_for_admins_only() {
    let app = app();
    let user = app.new_user("plain").await;
    assert_eq!(error_code(app.get("/users", None).await, StatusCode::UNAUTHORIZED).await, "unauthenticated");
    assert_eq!(error_code(app.get("/users", Some(&user.token)).await, StatusCode::FORBIDDEN).await, "forbidden");
    let response = patch_user(&user.token, &user.id, Some("\"1\""), json!({"role": "admin"})).await;
    assert_eq!(error_code(response, StatusCode::FORBIDDEN).await, "forbidden");
}

#[tokio::test]
async fn pages_walk_newest_first_without_duplicates_or_gaps_while_users_arrive() {
    let app = app();
    let admin = app.new_admin("pager").await;
    let mut mine = Vec::new();
    for _ in 0..5 {
        mine.push(app.new_user("paged").await.id);
    }

    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/users?limit=2&cursor={cursor}"),
            None => "/users?limit=2".to_owned(),
        };
        let response = app.get(&path, Some(&admin.token)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        let data = body["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        assert_eq!(body["pagination"]["limit"], 2);
        assert!(body["pagination"]["total"].as_u64().unwrap() >= 6);
        seen.extend(data.iter().map(|u| u["id"].as_str().unwrap().to_owned()));
        if pages == 0 {
            // Newcomers after the first page sort before it: they must not shift later pages.
            app.new_user("latecomer").await;
            app.new_user("latecomer").await;
        }
        pages += 1;
        match body["pagination"]["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no user twice");
    assert!(seen.windows(2).all(|pair| pair[0] > pair[1]), "newest first, strictly");
    let positions: Vec<usize> = mine.iter().map(|id| seen.iter().position(|s| s == id).expect("no gaps")).collect();
    assert!(positions.windows(2).all(|pair| pair[0] > pair[1]), "my users newest first: {positions:?}");
}

#[tokio::test]
async fn bad_limits_and_forged_cursors_are_refused() {
    let app = app();
    let admin = app.new_admin("cursor").await;
    for limit in ["0", "101", "ten"] {
        let response = app.get(&format!("/users?limit={limit}"), Some(&admin.token)).await;
        assert_eq!(error_code(response, StatusCode::UNPROCESSABLE_ENTITY).await, "validation_failed");
    }
    let first: Value = app.get("/users?limit=1", Some(&admin.token)).await.json().await.unwrap();
    let cursor = first["pagination"]["next_cursor"].as_str().unwrap();
    let (payload, signature) = cursor.split_once('.').unwrap();
    let forged = [
        format!("{payload}x.{signature}"),
        format!("{payload}.{}", &signature[1..]),
        "eyJzIjoidXNlcnMiLCJwIjoiWiJ9.AAAA".to_owned(),
        "garbage".to_owned(),
    ];
    for cursor in forged {
        let response = app.get(&format!("/users?cursor={cursor}"), Some(&admin.token)).await;
        assert_eq!(error_code(response, StatusCode::BAD_REQUEST).await, "invalid_cursor", "{cursor}");
    }
}

#[tokio::test]
async fn admin_disables_a_user_with_optimistic_concurrency() {
    let app = app();
    let admin = app.new_admin("boss").await;
    let user = app.new_user("worker").await;

    let missing = patch_user(&admin.token, &user.id, None, json!({"disabled": true})).await;
    assert_eq!(error_code(missing, StatusCode::PRECONDITION_REQUIRED).await, "precondition_required");
    let stale = patch_user(&admin.token, &user.id, Some("\"7\""), json!({"disabled": true})).await;
    assert_eq!(error_code(stale, StatusCode::PRECONDITION_FAILED).await, "precondition_failed");
    let invalid = patch_user(&admin.token, &user.id, Some("\"1\""), json!({"role": "god"})).await;
    assert_eq!(error_code(invalid, StatusCode::UNPROCESSABLE_ENTITY).await, "validation_failed");

    // The account's version as it is now (its verification was a change too).
    let version = current_version(&app, &user.token).await;
    let done = patch_user(&admin.token, &user.id, Some(&format!("\"{version}\"")), json!({"disabled": true})).await;
    assert_eq!(done.status(), StatusCode::OK);
    assert_eq!(done.headers()["etag"], format!("\"{}\"", version + 1).as_str());
    let body: Value = done.json().await.unwrap();
    assert_eq!((body["disabled"].as_bool(), body["version"].as_u64()), (Some(true), Some(version + 1)));

    let login = app.login(&user.email, PASSWORD).await;
    assert_eq!(error_code(login, StatusCode::FORBIDDEN).await, "account_disabled");
}

#[tokio::test]
async fn of_two_concurrent_updates_of_one_version_exactly_one_wins() {
    let app = app();
    let admin = app.new_admin("racer").await;
    let user = app.new_user("contested").await;
    let version = current_version(&app, &user.token).await;
    let tag = format!("\"{version}\"");
    let updates = [json!({"role": "admin"}), json!({"disabled": true}), json!({"role": "admin", "disabled": true})]
        .into_iter()
        .map(|body| patch_user(&admin.token, &user.id, Some(&tag), body));
    let statuses: Vec<StatusCode> = join_all(updates).await.iter().map(reqwest::Response::status).collect();
    let won = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let lost = statuses.iter().filter(|s| **s == StatusCode::PRECONDITION_FAILED).count();
    assert_eq!((won, lost), (1, 2), "{statuses:?}");
    let me: Value = app.get("/users/me", Some(&user.token)).await.json().await.unwrap();
    assert_eq!(me["version"], version + 1, "exactly one change landed");
}

/// The account's version as `/users/me` shows it.
async fn current_version(app: &crate::helpers::TestApp, token: &str) -> u64 {
    let me: Value = app.get("/users/me", Some(token)).await.json().await.unwrap();
    me["version"].as_u64().expect("a version")
}

#[tokio::test]
async fn admins_cannot_lock_themselves_out_and_unknown_users_are_404() {
    let app = app();
    let admin = app.new_admin("self").await;
    let demote = patch_user(&admin.token, &admin.id, Some("\"1\""), json!({"role": "user"})).await;
    assert_eq!(error_code(demote, StatusCode::CONFLICT).await, "self_lockout");
    for id in ["01J9Z3NDEKTSV4RRFFQ69G5FAV", "not-an-id"] {
        let response = patch_user(&admin.token, id, Some("\"1\""), json!({"disabled": true})).await;
        assert_eq!(error_code(response, StatusCode::NOT_FOUND).await, "not_found", "{id}");
    }
}

/// Regression: role and disabled flag were trusted from the token
/// for its whole lifetime, so a disabled or demoted admin could still act.
#[tokio::test]
async fn a_disabled_or_demoted_admin_loses_admin_rights_at_once() {
    let app = app();
    let boss = app.new_admin("boss").await;
    let rogue = app.new_admin("rogue").await;
    let target = app.new_user("target").await;

    let demoted = patch_user(&boss.token, &rogue.id, Some("\"1\""), json!({"role": "user"})).await;
    assert_eq!(demoted.status(), StatusCode::OK);
    let promote = patch_user(&rogue.token, &target.id, Some("\"1\""), json!({"role": "admin"})).await;
    assert_eq!(error_code(promote, StatusCode::FORBIDDEN).await, "forbidden");
    assert_eq!(error_code(app.get("/users", Some(&rogue.token)).await, StatusCode::FORBIDDEN).await, "forbidden");

    let disabled = patch_user(&boss.token, &rogue.id, Some("\"2\""), json!({"role": "admin", "disabled": true})).await;
    assert_eq!(disabled.status(), StatusCode::OK);
    let promote = patch_user(&rogue.token, &target.id, Some("\"1\""), json!({"role": "admin"})).await;
    assert_eq!(error_code(promote, StatusCode::FORBIDDEN).await, "account_disabled");
    let me: Value = app.get("/users/me", Some(&target.token)).await.json().await.unwrap();
    assert_eq!(me["role"], "user", "the target was never promoted");
}

/// POST /orders of one unit of `product_id` as `token`, with a fresh Idempotency-Key; the order's id.
async fn order_one(token: &str, product_id: &str) -> String {
    let app = app();
    let response = app
        .client
        .post(app.url("/orders"))
        .bearer_auth(token)
        .header("idempotency-key", ulid::Ulid::new().to_string())
        .json(&json!({"lines": [{"product_id": product_id, "quantity": 1}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
}

/// A customer's export reaches its own function (`/users/me/export` sits
/// beside `/users/me` and `/users/{id}`), holds the account without
/// credentials and exactly the caller's orders, and is a download never cached.
#[tokio::test]
async fn a_customer_exports_their_account_and_only_their_orders_as_a_download() {
    let app = app();
    let admin = app.new_admin("export").await;
    let product = app.new_product(&admin.token, "export", 250, 50).await;
    let product_id = product["id"].as_str().unwrap();
    let (customer, other) = (app.new_user("export").await, app.new_user("export-other").await);
    let mut mine = HashSet::new();
    for _ in 0..3 {
        mine.insert(order_one(&customer.token, product_id).await);
    }
    order_one(&other.token, product_id).await;

    let response = app.get("/users/me/export", Some(&customer.token)).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["cache-control"],
        "private, no-cache",
        "personal: only the customer's client keeps it"
    );
    assert_eq!(response.headers()["content-disposition"], "attachment; filename=\"shop-export.json\"");
    let export: Value = response.json().await.unwrap();
    assert_eq!(
        (export["account"]["id"].as_str(), export["account"]["email"].as_str()),
        (Some(&*customer.id), Some(&*customer.email))
    );
    assert!(!export.to_string().contains("password"), "no credentials: {}", export["account"]);
    let exported: HashSet<String> =
        export["orders"].as_array().unwrap().iter().map(|order| order["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(exported, mine, "the caller's orders, every one, no one else's");
    assert_eq!((export["orders_total"].as_u64(), export["orders_truncated"].as_bool()), (Some(3), Some(false)));
    assert_eq!(error_code(app.get("/users/me/export", None).await, StatusCode::UNAUTHORIZED).await, "unauthenticated");
}
