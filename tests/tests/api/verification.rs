//! Registration without enumeration and email verification, end to end: the
//! answers a client sees, and the emails moto's SES recorded (read back from
//! /moto-api/data.json, as `cargo xtask mail` does).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::catalogue::{create_product, product_body, unique_sku};
use crate::helpers::{PASSWORD, TestApp, app, emails_to, env, error_code, unique_email};

const PATIENCE: Duration = Duration::from_secs(90);

/// The token of the `nth` email (1-based) sent to `to`, which must carry a
/// verification link.
pub async fn emailed_token(to: &str, nth: usize) -> String {
    let emails = emails_to(to, nth, PATIENCE).await;
    let email = emails.get(nth - 1).unwrap_or_else(|| panic!("email {nth} to {to} did not arrive: {emails:?}"));
    token_in(email).unwrap_or_else(|| panic!("no verification link in {email}"))
}

fn token_in(email: &Value) -> Option<String> {
    let body = email["body"].as_str()?;
    let (_, rest) = body.split_once("#token=")?;
    Some(rest.split_whitespace().next()?.to_owned())
}

async fn verify(app: &TestApp, token: &str) -> reqwest::Response {
    app.post("/auth/verify-email", None, json!({"token": token})).await
}

async fn resend(app: &TestApp, email: &str) -> reqwest::Response {
    app.post("/auth/verify-email/resend", None, json!({"email": email})).await
}

/// The status, the body and the headers a client could tell apart by
/// (everything but those that name the request itself).
async fn answer(response: reqwest::Response) -> (StatusCode, Vec<(String, String)>, Value) {
    let mut headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter(|(name, _)| {
            !["x-request-id", "x-correlation-id", "date", "x-amzn-trace-id", "traceparent"].contains(&name.as_str())
        })
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or_default().to_owned()))
        .collect();
    headers.sort();
    (response.status(), headers, response.json().await.unwrap())
}

#[tokio::test]
async fn a_new_and_an_existing_address_get_the_same_answer() {
    let app = app();
    let new = unique_email("fresh");
    let first = answer(app.register(&new, PASSWORD).await).await;
    assert_eq!(first.0, StatusCode::ACCEPTED, "{first:?}");
    // The same address again (its account now exists, unverified), and a
    // verified customer's address: answered exactly alike.
    let again = answer(app.register(&new, "another long password").await).await;
    let customer = app.new_user("existing").await;
    let existing = answer(app.register(&customer.email, PASSWORD).await).await;
    assert_eq!(again, first);
    assert_eq!(existing, first);
    // The truth goes to the owner only: after the customer's own link,
    // "someone tried to register", without a link.
    let emails = emails_to(&customer.email, 2, PATIENCE).await;
    let notices: Vec<&Value> =
        emails.iter().filter(|email| email["subject"] == "Someone tried to register with your address").collect();
    assert_eq!((emails.len(), notices.len()), (2, 1), "{emails:?}");
    assert!(token_in(notices[0]).is_none(), "the notice carries no link");
}

#[tokio::test]
async fn the_emailed_link_verifies_once_and_then_the_account_may_order() {
    let app = app();
    let admin = app.new_admin("verify-shop").await;
    let product = create_product(&app, &admin.token, product_body(&unique_sku("verify"), 700, "EUR", 5)).await;
    let order = json!({"lines": [{"product_id": product["id"], "quantity": 1}]});
    let buyer = app.new_unverified_user("verify-buyer").await;
    // Signed in and browsing, but not ordering.
    assert_eq!(app.get("/users/me", Some(&buyer.token)).await.status(), StatusCode::OK);
    let refused = app.post("/orders", Some(&buyer.token), order.clone()).await;
    assert_eq!(error_code(refused, StatusCode::FORBIDDEN).await, "email_unverified");

    let token = emailed_token(&buyer.email, 1).await;
    let verified = verify(&app, &token).await;
    assert_eq!(verified.status(), StatusCode::OK);
    let body: Value = verified.json().await.unwrap();
    // The same token works at once: the order reads the account, not the token.
    let placed = app.post("/orders", Some(&buyer.token), order).await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    // A second click is harmless: the same success.
    let again = verify(&app, &token).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.json::<Value>().await.unwrap(), body);
    let emails = emails_to(&buyer.email, 2, PATIENCE).await;
    let welcomes = emails.iter().filter(|email| email["subject"] == "Welcome to the shop").count();
    assert_eq!(welcomes, 1, "{emails:?}");
}

#[tokio::test]
async fn a_superseded_an_expired_and_a_forged_link_are_refused() {
    let app = app();
    let email = unique_email("expiring");
    assert_eq!(app.register(&email, PASSWORD).await.status(), StatusCode::ACCEPTED);
    let first = emailed_token(&email, 1).await;
    assert_eq!(resend(&app, &email).await.status(), StatusCode::ACCEPTED);
    let second = emailed_token(&email, 2).await;
    assert_ne!(first, second);
    assert_eq!(error_code(verify(&app, &first).await, StatusCode::BAD_REQUEST).await, "invalid_verification_token");
    let forged = format!("{}{}", &second[..second.len() - 2], if second.ends_with("AA") { "BB" } else { "AA" });
    assert_eq!(error_code(verify(&app, &forged).await, StatusCode::BAD_REQUEST).await, "invalid_verification_token");
    assert_eq!(error_code(verify(&app, "nonsense").await, StatusCode::BAD_REQUEST).await, "invalid_verification_token");
    // The local stack's links expire quickly (`EMAIL_VERIFICATION_TTL_SECONDS`).
    let ttl: u64 = env("EMAIL_VERIFICATION_TTL_SECONDS").parse().unwrap();
    assert!(ttl <= 60, "the test stack's links should expire within a minute, not {ttl} s");
    tokio::time::sleep(Duration::from_secs(ttl + 2)).await;
    assert_eq!(error_code(verify(&app, &second).await, StatusCode::BAD_REQUEST).await, "invalid_verification_token");
}

#[tokio::test]
async fn resending_is_limited_per_address_with_or_without_an_account() {
    let app = app();
    let waiting = unique_email("resend");
    assert_eq!(app.register(&waiting, PASSWORD).await.status(), StatusCode::ACCEPTED);
    let nobody = unique_email("nobody");
    // Three emails an hour per address: registration counted one.
    for _ in 0..2 {
        assert_eq!(resend(&app, &waiting).await.status(), StatusCode::ACCEPTED);
    }
    let limited = resend(&app, &waiting).await;
    assert!(limited.headers().get("retry-after").is_some());
    assert_eq!(error_code(limited, StatusCode::TOO_MANY_REQUESTS).await, "rate_limited");
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(answer(resend(&app, &nobody).await).await);
    }
    assert!(answers.iter().all(|answer| answer.0 == StatusCode::ACCEPTED), "{answers:?}");
    assert_eq!(resend(&app, &nobody).await.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(emails_to(&waiting, 3, PATIENCE).await.len(), 3, "the link and two resends");
    assert!(emails_to(&nobody, 1, Duration::from_secs(2)).await.is_empty(), "nothing to an address without an account");
}
