//! Registration and email verification on in-memory adapters, with a
//! movable clock: the same answer for every address, the emails that tell
//! the truth to the address's owner only, single-use links that expire, the
//! per-address email limit, and orders refused until the address is verified.

mod support;

use domain::ports::UserStore;
use domain::{DomainEvent, Email, EmailTask, EventData, User};
use framework::http::{ApiError, ApiResponse};
use http::{Method, StatusCode};
use in_memory::Memory;
use serde_json::json;
use support::{body, header, register, registration, request};
use time::OffsetDateTime;

const PASSWORD: &str = "correct horse battery";

/// The emails asked for so far, in order.
fn emails(memory: &Memory) -> Vec<EmailTask> {
    memory
        .published()
        .into_iter()
        .filter_map(|event| match event.data {
            EventData::EmailRequested(task) => Some(task),
            _ => None,
        })
        .collect()
}

/// The token of the latest verification link sent to `to`.
fn latest_token(memory: &Memory, to: &str) -> String {
    emails(memory)
        .into_iter()
        .rev()
        .find_map(|task| match task {
            EmailTask::VerifyEmail { to: recipient, link, .. } if recipient == to => Some(link),
            _ => None,
        })
        .and_then(|link| link.split_once("#token=").map(|(_, token)| token.to_owned()))
        .expect("a verification link was sent")
}

async fn user(memory: &Memory, email: &str) -> User {
    memory.users().find_by_email(&Email::parse(email).unwrap()).await.unwrap().expect("the account exists")
}

async fn verify(memory: &Memory, token: &str, now: OffsetDateTime) -> Result<ApiResponse, ApiError> {
    let request = request(Method::POST, None, Some(json!({"token": token})));
    app::registration::verify_email(request, &memory.verifications(), &memory.publisher(), now)
        .await
        .map_err(ApiError::from)
}

async fn resend(memory: &Memory, email: &str) -> Result<ApiResponse, ApiError> {
    let request = request(Method::POST, None, Some(json!({"email": email})));
    app::registration::resend(request, &registration(memory), &memory.publisher(), OffsetDateTime::now_utc())
        .await
        .map_err(ApiError::from)
}

async fn place_order(memory: &Memory, customer: &User) -> Result<ApiResponse, ApiError> {
    let product = support::product(memory, 500, 10).await;
    let body = json!({"lines": [{"product_id": product.id.to_string(), "quantity": 1}]});
    let request = support::with_header(
        request(Method::POST, Some(customer), Some(body)),
        "idempotency-key",
        &ulid::Ulid::new().to_string(),
    );
    app::orders::place(
        request,
        &memory.users(),
        &memory.products(),
        &memory.orders(),
        &memory.idempotency(),
        &memory.publisher(),
    )
    .await
    .map_err(ApiError::from)
}

#[tokio::test]
async fn registration_answers_alike_and_tells_only_the_owner() {
    let memory = Memory::new();
    let new = register(&memory, "new@example.com", PASSWORD, None).await.unwrap();
    let token = latest_token(&memory, "new@example.com");
    verify(&memory, &token, OffsetDateTime::now_utc()).await.unwrap();
    let before = user(&memory, "new@example.com").await;

    let again = register(&memory, "new@example.com", "another long password", None).await.unwrap();
    assert_eq!((again.status, body(&again)), (StatusCode::ACCEPTED, body(&new)), "the same answer");
    assert_eq!(new.status, StatusCode::ACCEPTED);
    assert!(!body(&new).to_string().contains("new@example.com"), "the answer names no account");
    let after = user(&memory, "new@example.com").await;
    assert_eq!(after.password_hash, before.password_hash, "a registration never changes an account");
    let sent = emails(&memory);
    let templates: Vec<&str> = sent.iter().map(EmailTask::template).collect();
    assert_eq!(templates, ["verify-email", "welcome", "account-exists"], "{sent:?}");

    // Repeated within the hour, the notice has the same dedupe key: sent once.
    register(&memory, "new@example.com", PASSWORD, None).await.unwrap();
    let notices: Vec<String> = emails(&memory)
        .iter()
        .filter(|task| task.template() == "account-exists")
        .map(|task| task.dedupe_key().to_owned())
        .collect();
    assert_eq!(notices.len(), 2);
    assert_eq!(notices[0], notices[1], "the send-email consumer sends it once");
}

#[tokio::test]
async fn registering_an_unverified_address_again_sends_a_fresh_link_and_takes_nothing_over() {
    let memory = Memory::new();
    register(&memory, "slow@example.com", PASSWORD, None).await.unwrap();
    let first = latest_token(&memory, "slow@example.com");
    let before = user(&memory, "slow@example.com").await;
    register(&memory, "slow@example.com", "an attacker's password", None).await.unwrap();
    let second = latest_token(&memory, "slow@example.com");
    assert_ne!(first, second, "a fresh link");
    assert_eq!(user(&memory, "slow@example.com").await, before, "the account is as it was");
    let now = OffsetDateTime::now_utc();
    let refused = verify(&memory, &first, now).await.unwrap_err();
    assert_eq!((refused.status(), refused.code()), (StatusCode::BAD_REQUEST, "invalid_verification_token"));
    verify(&memory, &second, now).await.expect("the latest link works");
    assert!(user(&memory, "slow@example.com").await.email_verified);
}

#[tokio::test]
async fn a_link_works_once_and_only_until_it_expires() {
    let memory = Memory::new();
    let now = OffsetDateTime::now_utc();
    register(&memory, "late@example.com", PASSWORD, None).await.unwrap();
    let token = latest_token(&memory, "late@example.com");
    // The links of the test's registration work for an hour.
    let expired = verify(&memory, &token, now + time::Duration::minutes(61)).await.unwrap_err();
    assert_eq!(expired.code(), "invalid_verification_token");
    for garbage in ["", "nonsense", &format!("{}x", &token[..token.len() - 1])] {
        let refused = verify(&memory, garbage, now).await.unwrap_err();
        assert_eq!((refused.status(), refused.code()), (StatusCode::BAD_REQUEST, "invalid_verification_token"));
    }
    assert!(!user(&memory, "late@example.com").await.email_verified);

    register(&memory, "early@example.com", PASSWORD, None).await.unwrap();
    let token = latest_token(&memory, "early@example.com");
    let first = verify(&memory, &token, now + time::Duration::minutes(59)).await.unwrap();
    let second = verify(&memory, &token, now + time::Duration::minutes(59)).await.unwrap();
    assert_eq!((first.status, body(&first)), (StatusCode::OK, json!({"status": "verified"})));
    assert_eq!((second.status, body(&second)), (first.status, body(&first)), "a second click is harmless");
    let welcomes = emails(&memory).iter().filter(|task| task.template() == "welcome").count();
    assert_eq!(welcomes, 1, "welcomed once");
    let verified = user(&memory, "early@example.com").await;
    assert_eq!((verified.email_verified, verified.version), (true, 2));
}

#[tokio::test]
async fn a_keyed_retry_gets_the_same_202_and_sends_nothing_again() {
    let memory = Memory::new();
    let first = register(&memory, "lin@example.com", PASSWORD, Some("signup-1")).await.unwrap();
    let retry = register(&memory, "lin@example.com", PASSWORD, Some("signup-1")).await.unwrap();
    assert_eq!((retry.status, body(&retry)), (StatusCode::ACCEPTED, body(&first)));
    assert_eq!(header(&retry, "idempotent-replayed"), Some("true"));
    // Another password under the same key: every registration is answered
    // alike, so the replay is the same 202 and changes nothing.
    let before = user(&memory, "lin@example.com").await;
    let other = register(&memory, "lin@example.com", "another long password", Some("signup-1")).await.unwrap();
    assert_eq!((other.status, header(&other, "idempotent-replayed")), (StatusCode::ACCEPTED, Some("true")));
    assert_eq!(user(&memory, "lin@example.com").await, before);
    assert_eq!(emails(&memory).len(), 1, "one email for one registration");
    // Another address under the same key is another request.
    let reused = register(&memory, "max@example.com", PASSWORD, Some("signup-1")).await.unwrap_err();
    assert_eq!(reused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let stored = memory.idempotency_records();
    assert!(stored.iter().all(|record| !record.body.contains(PASSWORD) && !record.fingerprint.contains(PASSWORD)));
}

#[tokio::test]
async fn resending_is_limited_per_address_whether_or_not_it_has_an_account() {
    let memory = Memory::new();
    register(&memory, "waiting@example.com", PASSWORD, None).await.unwrap();
    let limit = app::registration::EMAILS_PER_ADDRESS.attempts;
    // Registration counted one email for the address already.
    for _ in 1..limit {
        let response = resend(&memory, "waiting@example.com").await.unwrap();
        assert_eq!(response.status, StatusCode::ACCEPTED);
    }
    let links = emails(&memory).iter().filter(|task| task.template() == "verify-email").count();
    assert_eq!(links, limit as usize, "each within the limit sent a link");
    let refused = resend(&memory, "waiting@example.com").await.unwrap_err();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    for _ in 0..limit {
        let response = resend(&memory, "nobody@example.com").await.unwrap();
        assert_eq!((response.status, body(&response)), (StatusCode::ACCEPTED, body(&resend_answer())));
    }
    assert_eq!(resend(&memory, "nobody@example.com").await.unwrap_err().status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(emails(&memory).len(), limit as usize, "nothing was sent to an address without an account");
}

/// What resend answers within the limit, whatever the address.
fn resend_answer() -> ApiResponse {
    ApiResponse::with_status(
        StatusCode::ACCEPTED,
        json!({
            "status": "accepted",
            "message": "If this address has an account waiting for verification, a new link is on its way.",
        }),
    )
}

#[tokio::test]
async fn an_unverified_account_may_not_order_until_it_verifies() {
    let memory = Memory::new();
    register(&memory, "buyer@example.com", PASSWORD, None).await.unwrap();
    let customer = user(&memory, "buyer@example.com").await;
    let refused = place_order(&memory, &customer).await.unwrap_err();
    assert_eq!((refused.status(), refused.code()), (StatusCode::FORBIDDEN, "email_unverified"));
    let token = latest_token(&memory, "buyer@example.com");
    verify(&memory, &token, OffsetDateTime::now_utc()).await.unwrap();
    let placed = place_order(&memory, &customer).await.expect("verified accounts order");
    assert_eq!(placed.status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_registration_commits_its_email_with_the_account() {
    let memory = Memory::new();
    memory.set_down(in_memory::Dependency::Table, true);
    assert!(register(&memory, "down@example.com", PASSWORD, None).await.is_err());
    memory.set_down(in_memory::Dependency::Table, false);
    assert!(emails(&memory).is_empty() && memory.outbox().is_empty(), "nothing without the account");
    memory.set_down(in_memory::Dependency::Queues, true);
    let accepted = register(&memory, "queued@example.com", PASSWORD, None).await.unwrap();
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "a queue outage loses nothing");
    let waiting: Vec<DomainEvent> = memory.outbox();
    assert!(matches!(&waiting[..], [event] if event.kind() == "email-send"), "{waiting:?}");
}
