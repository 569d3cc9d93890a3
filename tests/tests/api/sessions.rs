//! Sessions end to end: login hands out a refresh token, a refresh rotates
//! it, a reused one revokes its session, an unused one expires (the test
//! stack's REFRESH_TOKEN_TTL_SECONDS is short), logout and logging out
//! everywhere end sessions, and so does an admin disabling the account.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, app, env, error_code};

async fn sign_in(app: &TestApp, email: &str) -> Value {
    let response = app.login(email, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["expires_in"], 300, "access tokens live five minutes");
    let lifetime: u64 = env("REFRESH_TOKEN_TTL_SECONDS").parse().unwrap();
    assert_eq!(body["refresh_expires_in"], lifetime);
    body
}

async fn refresh(app: &TestApp, refresh_token: &Value) -> reqwest::Response {
    app.post("/auth/refresh", None, json!({ "refresh_token": refresh_token })).await
}

/// Refreshes with `refresh_token`, which must work: the new tokens.
async fn refreshed(app: &TestApp, refresh_token: &Value) -> Value {
    let response = refresh(app, refresh_token).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn refused(app: &TestApp, refresh_token: &Value) {
    assert_eq!(error_code(refresh(app, refresh_token).await, StatusCode::UNAUTHORIZED).await, "invalid_token");
}

#[tokio::test]
async fn a_session_refreshes_and_ends_at_logout() {
    let app = app();
    let customer = app.new_user("session").await;
    let signed_in = sign_in(&app, &customer.email).await;

    let next = refreshed(&app, &signed_in["refresh_token"]).await;
    // (The access token may equal the first: same claims within one second, and Ed25519 is deterministic.)
    assert_ne!(next["refresh_token"], signed_in["refresh_token"], "rotated");
    let me = app.get("/users/me", next["token"].as_str()).await;
    assert_eq!(me.status(), StatusCode::OK, "the refreshed access token works");
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["id"], customer.id.as_str());

    let logout = app.post("/auth/logout", None, json!({ "refresh_token": next["refresh_token"] })).await;
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    refused(&app, &next["refresh_token"]).await;
    let again = app.post("/auth/logout", None, json!({ "refresh_token": next["refresh_token"] })).await;
    assert_eq!(again.status(), StatusCode::NO_CONTENT, "logging out twice is harmless");
    let malformed = app.post("/auth/logout", None, json!({ "refresh_token": "nope" })).await;
    assert_eq!(malformed.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

/// The theft case: the first token is used again after it rotated; the
/// whole session ends, the newest token included.
#[tokio::test]
async fn a_reused_refresh_token_revokes_its_session() {
    let app = app();
    let customer = app.new_user("reuse").await;
    let stolen = sign_in(&app, &customer.email).await["refresh_token"].clone();
    let owners = refreshed(&app, &stolen).await["refresh_token"].clone();
    refused(&app, &stolen).await;
    refused(&app, &owners).await;
    // Another sign-in of the same account is untouched.
    let other = sign_in(&app, &customer.email).await["refresh_token"].clone();
    refreshed(&app, &other).await;
}

/// Concurrent refreshes with one token on DynamoDB Local: one wins, the
/// session is revoked, so the winner's token is refused next.
#[tokio::test]
async fn concurrent_refreshes_with_one_token_succeed_once() {
    let app = app();
    let customer = app.new_user("race").await;
    let token = sign_in(&app, &customer.email).await["refresh_token"].clone();
    let responses = futures::future::join_all((0..4).map(|_| refresh(&app, &token))).await;
    let mut winners = Vec::new();
    for response in responses {
        match response.status() {
            StatusCode::OK => winners.push(response.json::<Value>().await.unwrap()["refresh_token"].clone()),
            status => assert_eq!(status, StatusCode::UNAUTHORIZED),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one refresh succeeds");
    refused(&app, &winners[0]).await;
}

#[tokio::test]
async fn an_unused_refresh_token_expires() {
    let app = app();
    let customer = app.new_user("expiry").await;
    let lifetime: u64 = env("REFRESH_TOKEN_TTL_SECONDS").parse().unwrap();
    let token = sign_in(&app, &customer.email).await["refresh_token"].clone();
    // Used within its lifetime, it is replaced by one with a whole lifetime.
    let token = refreshed(&app, &token).await["refresh_token"].clone();
    tokio::time::sleep(Duration::from_secs(lifetime + 2)).await;
    refused(&app, &token).await;
}

#[tokio::test]
async fn logging_out_everywhere_and_disabling_the_account_end_every_session() {
    let app = app();
    let customer = app.new_user("everywhere").await;
    let (phone, laptop) = (sign_in(&app, &customer.email).await, sign_in(&app, &customer.email).await);
    let ended = app.post("/auth/logout-all", Some(&customer.token), json!({})).await;
    assert_eq!(ended.status(), StatusCode::OK);
    let ended: Value = ended.json().await.unwrap();
    // The helper's own sign-in is one more session of the account.
    assert_eq!(ended["sessions_ended"], 3);
    refused(&app, &phone["refresh_token"]).await;
    refused(&app, &laptop["refresh_token"]).await;

    let admin = app.new_admin("disabler").await;
    let session = sign_in(&app, &customer.email).await;
    let path = format!("/users/{}", customer.id);
    let disable = app
        .client
        .patch(app.url(&path))
        .bearer_auth(&admin.token)
        .header("if-match", "*")
        .json(&json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(disable.status(), StatusCode::OK);
    refused(&app, &session["refresh_token"]).await;
}
