use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, app, error_code, unique_email};

#[tokio::test]
async fn register_login_and_read_own_profile() {
    let app = app();
    let email = unique_email("ada");

    let registered = app.register(&email.to_uppercase(), PASSWORD).await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    assert_eq!(registered.headers()["location"], "/api/v1/users/me");
    let profile: Value = registered.json().await.unwrap();
    assert_eq!(profile["email"], email, "stored normalised");
    assert_eq!(profile["role"], "user");
    assert!(profile.get("password_hash").is_none() && !profile.to_string().contains("argon2"));

    let login = app.login(&email, PASSWORD).await;
    assert_eq!(login.status(), StatusCode::OK);
    let login: Value = login.json().await.unwrap();
    assert_eq!(login["expires_in"], 900);
    let token = login["token"].as_str().unwrap();

    let me = app.get("/users/me", Some(token)).await;
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(me.headers()["etag"], "\"1\"");
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["id"], profile["id"]);
    assert_eq!(me["email"], email);
}

#[tokio::test]
async fn an_email_registers_once_whatever_its_case() {
    let app = app();
    let email = unique_email("dup");
    assert_eq!(app.register(&email, PASSWORD).await.status(), StatusCode::CREATED);
    let again = app.register(&format!("  {}  ", email.to_uppercase()), PASSWORD).await;
    assert_eq!(error_code(again, StatusCode::CONFLICT).await, "email_taken");
}

#[tokio::test]
async fn concurrent_registrations_of_one_email_have_exactly_one_winner() {
    let app = app();
    let email = unique_email("race");
    let attempts = (0..6).map(|_| app.register(&email, PASSWORD));
    let statuses: Vec<StatusCode> = join_all(attempts).await.iter().map(|r| r.status()).collect();
    let created = statuses.iter().filter(|s| **s == StatusCode::CREATED).count();
    let conflicts = statuses.iter().filter(|s| **s == StatusCode::CONFLICT).count();
    assert_eq!((created, conflicts), (1, 5), "{statuses:?}");
}

#[tokio::test]
async fn registration_rejects_bad_input_with_every_field_named() {
    let response = app().register("not-an-email", "short").await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    let fields: Vec<&str> = body["error"]["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["email", "password"]);
}

#[tokio::test]
async fn registration_cannot_choose_a_role() {
    let email = unique_email("sneaky");
    let response = app().post("/auth/register", None, json!({"email": email, "password": PASSWORD, "role": "admin"})).await;
    assert_eq!(error_code(response, StatusCode::UNPROCESSABLE_ENTITY).await, "validation_failed");
    assert_eq!(app().login(&email, PASSWORD).await.status(), StatusCode::UNAUTHORIZED, "nothing was created");
}

#[tokio::test]
async fn login_refuses_wrong_password_and_unknown_email_alike() {
    let app = app();
    let user = app.new_user("login").await;
    let wrong = app.login(&user.email, "wrong password!").await;
    let unknown = app.login(&unique_email("nobody"), PASSWORD).await;
    assert_eq!(error_code(wrong, StatusCode::UNAUTHORIZED).await, "invalid_credentials");
    assert_eq!(error_code(unknown, StatusCode::UNAUTHORIZED).await, "invalid_credentials");
}
