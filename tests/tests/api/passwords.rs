//! Password reset and change end to end: the 202 for every address, the
//! emailed link read back from moto's SES (/moto-api/data.json), its single
//! use, its expiry (the test stack's PASSWORD_RESET_TTL_SECONDS is short),
//! the throttle, and the sessions each ends.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, app, emails_to, env, error_code, unique_email};

const PATIENCE: Duration = Duration::from_secs(90);

/// The token of the `nth` (1-based) reset email to `to`.
async fn reset_token(to: &str, nth: usize) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let links: Vec<String> = emails_to(to, 1, PATIENCE)
            .await
            .iter()
            .filter_map(|email| email["body"].as_str())
            .filter_map(|body| body.split_once("/reset-password#token="))
            .filter_map(|(_, rest)| rest.split_whitespace().next().map(str::to_owned))
            .collect();
        if let Some(token) = links.get(nth - 1) {
            return token.clone();
        }
        assert!(Instant::now() < deadline, "reset email {nth} to {to} did not arrive: {links:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn ask(app: &TestApp, email: &str) -> reqwest::Response {
    app.post("/auth/password-reset", None, json!({ "email": email })).await
}

async fn confirm(app: &TestApp, token: &str, password: &str) -> reqwest::Response {
    app.post("/auth/password-reset/confirm", None, json!({ "token": token, "password": password })).await
}

async fn refresh_token(app: &TestApp, email: &str, password: &str) -> Value {
    let response = app.login(email, password).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json::<Value>().await.unwrap()["refresh_token"].clone()
}

async fn refresh(app: &TestApp, token: &Value) -> StatusCode {
    app.post("/auth/refresh", None, json!({ "refresh_token": token })).await.status()
}

#[tokio::test]
async fn a_reset_link_sets_a_new_password_once_and_ends_every_session() {
    let app = app();
    let customer = app.new_user("reset").await;
    let session = refresh_token(&app, &customer.email, PASSWORD).await;

    let known = ask(&app, &customer.email).await;
    let unknown = ask(&app, &unique_email("nobody")).await;
    assert_eq!((known.status(), unknown.status()), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
    let (known, unknown): (Value, Value) = (known.json().await.unwrap(), unknown.json().await.unwrap());
    assert_eq!(known, unknown, "the answer does not tell which address has an account");

    let token = reset_token(&customer.email, 1).await;
    let weak = confirm(&app, &token, "short").await;
    assert_eq!(weak.status(), StatusCode::UNPROCESSABLE_ENTITY, "the registration policy");
    assert_eq!(confirm(&app, &token, "a brand new passphrase").await.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.login(&customer.email, PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.login(&customer.email, "a brand new passphrase").await.status(), StatusCode::OK);
    assert_eq!(refresh(&app, &session).await, StatusCode::UNAUTHORIZED, "every earlier session ended");

    let again = confirm(&app, &token, "yet another passphrase").await;
    assert_eq!(error_code(again, StatusCode::BAD_REQUEST).await, "invalid_reset_token", "a link works once");
    let notices = emails_to(&customer.email, 3, PATIENCE).await;
    assert!(
        notices.iter().any(|email| email["subject"] == "Your password was changed"),
        "the owner is told: {notices:?}"
    );
}

#[tokio::test]
async fn only_the_newest_link_works_and_not_after_it_expires() {
    let app = app();
    let customer = app.new_user("reset-newest").await;
    assert_eq!(ask(&app, &customer.email).await.status(), StatusCode::ACCEPTED);
    let older = reset_token(&customer.email, 1).await;
    assert_eq!(ask(&app, &customer.email).await.status(), StatusCode::ACCEPTED);
    let newer = reset_token(&customer.email, 2).await;
    let replaced = confirm(&app, &older, "a brand new passphrase").await;
    assert_eq!(error_code(replaced, StatusCode::BAD_REQUEST).await, "invalid_reset_token");

    let lifetime: u64 = env("PASSWORD_RESET_TTL_SECONDS").parse().unwrap();
    tokio::time::sleep(Duration::from_secs(lifetime + 2)).await;
    let expired = confirm(&app, &newer, "a brand new passphrase").await;
    assert_eq!(error_code(expired, StatusCode::BAD_REQUEST).await, "invalid_reset_token");
    assert_eq!(app.login(&customer.email, PASSWORD).await.status(), StatusCode::OK, "the password is unchanged");
}

#[tokio::test]
async fn requests_are_throttled_per_address_alike_with_or_without_an_account() {
    let app = app();
    let nobody = unique_email("reset-cannon");
    for _ in 0..3 {
        assert_eq!(ask(&app, &nobody).await.status(), StatusCode::ACCEPTED);
    }
    let refused = ask(&app, &nobody).await;
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(error_code(refused, StatusCode::TOO_MANY_REQUESTS).await, "rate_limited");
}

#[tokio::test]
async fn changing_the_password_keeps_the_callers_session_and_ends_the_others() {
    let app = app();
    let customer = app.new_user("change").await;
    let mine = refresh_token(&app, &customer.email, PASSWORD).await;
    let other = refresh_token(&app, &customer.email, PASSWORD).await;
    let change = |current: &str| json!({ "current_password": current, "new_password": "a brand new passphrase", "refresh_token": mine });

    let wrong = app.post("/users/me/password", Some(&customer.token), change("not my password")).await;
    assert_eq!(error_code(wrong, StatusCode::UNAUTHORIZED).await, "invalid_credentials");
    let changed = app.post("/users/me/password", Some(&customer.token), change(PASSWORD)).await;
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);
    assert_eq!(refresh(&app, &other).await, StatusCode::UNAUTHORIZED, "the other session ended");
    assert_eq!(refresh(&app, &mine).await, StatusCode::OK, "the caller's own is kept");
    assert_eq!(app.login(&customer.email, "a brand new passphrase").await.status(), StatusCode::OK);
}
