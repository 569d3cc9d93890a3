//! The admins' second factor end to end: enrolment shown once as an
//! `otpauth://` URI, confirmation with a code (the test computes codes from
//! that URI's secret with totp-rs, as an authenticator app would), login
//! refused without a code, accepted with one, a replayed code refused, a
//! recovery code good once, and the mandatory setting enforced on an admin
//! route (a second `list-users` process started with ADMIN_MFA_REQUIRED=true
//! beside the shared stack, whose functions keep it off).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use totp_rs::{Algorithm, Secret, TOTP};

use crate::helpers::{self, PASSWORD, TestApp, TestUser, error_code};

/// The authenticator app of an `otpauth://` URI.
pub(crate) fn authenticator(uri: &str) -> TOTP {
    assert!(uri.starts_with("otpauth://totp/Shop:"), "{uri}");
    let query = uri.split_once('?').expect("a query").1;
    let secret = query.split('&').find_map(|pair| pair.strip_prefix("secret=")).expect("a secret");
    TOTP::new(Algorithm::SHA1, 6, 1, 30, Secret::Encoded(secret.to_owned()).to_bytes().unwrap()).unwrap()
}

/// The app's code `offset` seconds from now.
pub(crate) fn code(app: &TOTP, offset: i64) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp() + offset;
    app.generate(u64::try_from(now).unwrap())
}

/// A six-digit code that is not `right`.
pub(crate) fn wrong(right: &str) -> String {
    format!("{}{}", &right[..5], (right.as_bytes()[5] - b'0' + 1) % 10)
}

/// Enrols and confirms `admin`'s second factor; the app and the recovery codes.
async fn enrol_and_confirm(app: &TestApp, admin: &TestUser) -> (TOTP, Vec<String>) {
    let enrolled = app.post("/users/me/mfa/totp", Some(&admin.token), json!(null)).await;
    assert_eq!(enrolled.status(), StatusCode::CREATED);
    assert_eq!(enrolled.headers()["cache-control"], "no-store", "a secret is never cached");
    let enrolled: Value = enrolled.json().await.unwrap();
    assert_eq!(enrolled["status"], "pending");
    let authenticator = authenticator(enrolled["otpauth_uri"].as_str().unwrap());

    let now = code(&authenticator, 0);
    let refused = app.post("/users/me/mfa/totp/confirm", Some(&admin.token), json!({"code": wrong(&now)})).await;
    assert_eq!(error_code(refused, StatusCode::UNPROCESSABLE_ENTITY).await, "validation_failed");
    let confirmed = app.post("/users/me/mfa/totp/confirm", Some(&admin.token), json!({"code": now})).await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    let confirmed: Value = confirmed.json().await.unwrap();
    assert_eq!(confirmed["status"], "confirmed");
    let codes: Vec<String> =
        confirmed["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    assert_eq!(codes.len(), 10);
    (authenticator, codes)
}

async fn login_with(app: &TestApp, email: &str, password: &str, extra: Value) -> reqwest::Response {
    let mut body = json!({"email": email, "password": password});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    app.post("/auth/login", None, body).await
}

async fn token_of(response: reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["token"].as_str().expect("a token").to_owned()
}

#[tokio::test]
async fn an_enrolled_admin_signs_in_with_a_code_once_and_a_recovery_code_once() {
    let app = helpers::app();
    let admin = app.new_admin("mfa").await;
    let customer = app.new_user("mfa-customer").await;
    let refused = app.post("/users/me/mfa/totp", Some(&customer.token), json!(null)).await;
    assert_eq!(error_code(refused, StatusCode::FORBIDDEN).await, "forbidden", "customers have no second factor");

    let (authenticator, recovery) = enrol_and_confirm(&app, &admin).await;
    let again = app.post("/users/me/mfa/totp", Some(&admin.token), json!(null)).await;
    assert_eq!(error_code(again, StatusCode::CONFLICT).await, "mfa_already_enrolled");

    let without = login_with(&app, &admin.email, PASSWORD, json!({})).await;
    assert_eq!(error_code(without, StatusCode::UNAUTHORIZED).await, "mfa_required");
    let wrong_password = login_with(&app, &admin.email, "not the password", json!({})).await;
    assert_eq!(
        error_code(wrong_password, StatusCode::UNAUTHORIZED).await,
        "invalid_credentials",
        "a wrong password learns nothing about the second factor"
    );
    // The confirmation's code again: its time step is used.
    let replayed = login_with(&app, &admin.email, PASSWORD, json!({"totp_code": code(&authenticator, 0)})).await;
    assert_eq!(error_code(replayed, StatusCode::UNAUTHORIZED).await, "invalid_mfa_code");

    // The next step's code (one step of drift is accepted) signs in, once.
    let next = code(&authenticator, 30);
    let token = token_of(login_with(&app, &admin.email, PASSWORD, json!({"totp_code": next})).await).await;
    assert_eq!(app.get("/users", Some(&token)).await.status(), StatusCode::OK);
    let replayed = login_with(&app, &admin.email, PASSWORD, json!({"totp_code": next})).await;
    assert_eq!(error_code(replayed, StatusCode::UNAUTHORIZED).await, "invalid_mfa_code", "a code works once");

    let first = login_with(&app, &admin.email, PASSWORD, json!({"recovery_code": recovery[0]})).await;
    token_of(first).await;
    let reused = login_with(&app, &admin.email, PASSWORD, json!({"recovery_code": recovery[0]})).await;
    assert_eq!(error_code(reused, StatusCode::UNAUTHORIZED).await, "invalid_mfa_code", "a recovery code works once");
    let second = login_with(&app, &admin.email, PASSWORD, json!({"recovery_code": recovery[1]})).await;
    token_of(second).await;
}

/// `event` (a sample API Gateway event) carrying `token`.
fn with_token(mut event: Value, token: &str) -> Value {
    event["headers"]["Authorization"] = json!(format!("Bearer {token}"));
    event["multiValueHeaders"]["Authorization"] = json!([format!("Bearer {token}")]);
    event
}

#[tokio::test]
async fn where_the_second_factor_is_mandatory_admin_routes_need_a_sign_in_with_it() {
    let app = helpers::app();
    let admin = app.new_admin("mfa-mandatory").await;
    // The shared stack keeps the setting off (it is on in prod): the
    // password-only token works on its admin routes.
    assert_eq!(app.get("/users", Some(&admin.token)).await.status(), StatusCode::OK);

    let mut command = local_cloud::lambda::FunctionProcess::binary("list-users");
    command.stdout(std::process::Stdio::null());
    let overrides = [("ADMIN_MFA_REQUIRED".to_owned(), "true".to_owned())];
    let timeout = Duration::from_secs(10);
    let mut mandatory = local_cloud::lambda::FunctionProcess::start("list-users", command, &overrides, timeout)
        .await
        .expect("list-users starts");
    mandatory.ready(timeout).await.expect("its init finishes");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let sample: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("events/list-users.json")).unwrap()).unwrap();
    let mut list_users = async |token: &str| {
        let answer = mandatory.invoke(&with_token(sample.clone(), token), timeout).await.expect("an answer");
        let body: Value = serde_json::from_str(answer.payload["body"].as_str().unwrap_or("null")).unwrap();
        (answer.payload["statusCode"].as_u64().unwrap(), body["error"]["code"].as_str().unwrap_or("").to_owned())
    };

    // Not enrolled: signed in, but kept out of admin routes until enrolled.
    assert_eq!(list_users(&admin.token).await, (403, "mfa_enrolment_required".to_owned()));
    // Enrolment stays open to them; a sign-in with a code opens the admin routes.
    let (authenticator, _) = enrol_and_confirm(&app, &admin).await;
    assert_eq!(list_users(&admin.token).await.0, 403, "the token from before still lacks the second factor");
    let login = login_with(&app, &admin.email, PASSWORD, json!({"totp_code": code(&authenticator, 30)})).await;
    let token = token_of(login).await;
    assert_eq!(list_users(&token).await.0, 200);
}
