//! Password reset and change on in-memory adapters, with a movable clock:
//! the 202 for every address, a link that works once, only the newest, only
//! for its lifetime and only until the password changes; the throttle; the
//! sessions each ends.

mod support;

use std::sync::Arc;
use std::time::Duration;

use app::passwords::{RESETS_PER_ADDRESS, Resets};
use app::sessions::Sessions;
use domain::ports::{PasswordResets, SessionStore};
use domain::{EmailTask, EventData, Password, RefreshLifetime, ResetLifetime, Role, User};
use framework::auth::PasswordHasher;
use framework::http::{ApiError, ApiResponse};
use http::{Method, StatusCode};
use in_memory::{Memory, MemoryPasswordResets, MemoryThrottle, MemoryUserStore};
use serde_json::json;
use support::{body, request, user};
use time::OffsetDateTime;

type TestResets = Resets<MemoryUserStore, MemoryPasswordResets, MemoryThrottle>;

fn resets(memory: &Memory) -> TestResets {
    Resets {
        users: memory.users(),
        resets: memory.password_resets(),
        per_address: memory.throttle(RESETS_PER_ADDRESS.name, RESETS_PER_ADDRESS.attempts, RESETS_PER_ADDRESS.window),
        base_url: "https://shop.example".into(),
        lifetime: ResetLifetime::DEFAULT,
    }
}

async fn ask(memory: &Memory, resets: &TestResets, email: &str, now: OffsetDateTime) -> Result<ApiResponse, ApiError> {
    let request = request(Method::POST, None, Some(json!({ "email": email })));
    app::passwords::request_reset(request, resets, &memory.publisher(), now).await.map_err(ApiError::from)
}

/// The token of the newest reset email to `to`, from the outbox and what was published.
fn emailed_token(memory: &Memory, to: &str) -> String {
    let events = memory.published().into_iter().chain(memory.outbox());
    let links: Vec<String> = events
        .filter_map(|event| match event.data {
            EventData::EmailRequested(EmailTask::PasswordReset { to: recipient, link, .. }) if recipient == to => {
                Some(link)
            }
            _ => None,
        })
        .collect();
    let link = links.last().unwrap_or_else(|| panic!("no reset email to {to}"));
    assert!(link.starts_with("https://shop.example/reset-password#token="), "{link}");
    link.split_once("#token=").unwrap().1.to_owned()
}

async fn confirm(memory: &Memory, token: &str, password: &str, now: OffsetDateTime) -> Result<ApiResponse, ApiError> {
    let request = request(Method::POST, None, Some(json!({ "token": token, "password": password })));
    let hasher = PasswordHasher::new();
    app::passwords::confirm_reset(
        request,
        &memory.users(),
        &memory.password_resets(),
        &memory.sessions(),
        &hasher,
        &memory.publisher(),
        now,
    )
    .await
    .map_err(ApiError::from)
}

fn has_password(memory: &Memory, user: &User, password: &str) -> bool {
    let stored = memory.user(user.id).unwrap();
    app::auth::PasswordCheck::verify(
        &PasswordHasher::new(),
        &Password::parse_attempt(password.into()).unwrap(),
        &stored.password_hash,
    )
}

fn invalid(outcome: Result<ApiResponse, ApiError>) -> bool {
    outcome.is_err_and(|error| error.code() == "invalid_reset_token")
}

async fn session(memory: &Memory, user: &User, now: OffsetDateTime) -> String {
    let sessions = Sessions { store: memory.sessions(), lifetime: RefreshLifetime::DEFAULT };
    app::sessions::start(&sessions, user, false, now).await.unwrap().token
}

#[tokio::test]
async fn a_reset_answers_alike_for_every_address_and_its_link_works_once() {
    let memory = Memory::new();
    let resets = resets(&memory);
    let customer = user(&memory, Role::User).await;
    let now = OffsetDateTime::now_utc();
    let known = ask(&memory, &resets, customer.email.as_ref(), now).await.unwrap();
    let unknown = ask(&memory, &resets, "nobody@example.com", now).await.unwrap();
    assert_eq!((known.status, body(&known)), (unknown.status, body(&unknown)));
    assert_eq!(known.status, StatusCode::ACCEPTED);
    let token = emailed_token(&memory, customer.email.as_ref());
    assert!(memory.password_resets().pending(customer.id).await.unwrap().is_some());
    let (phone, laptop) = (session(&memory, &customer, now).await, session(&memory, &customer, now).await);
    assert_eq!(memory.sessions().list(customer.id, now).await.unwrap().len(), 2);

    let short = confirm(&memory, &token, "short", now).await.unwrap_err();
    assert_eq!(short.status(), StatusCode::UNPROCESSABLE_ENTITY, "the registration policy");
    let done = confirm(&memory, &token, "a brand new passphrase", now).await.unwrap();
    assert_eq!(done.status, StatusCode::NO_CONTENT);
    assert!(has_password(&memory, &customer, "a brand new passphrase"));
    assert!(memory.sessions().list(customer.id, now).await.unwrap().is_empty(), "every session ended");
    assert!(!phone.is_empty() && !laptop.is_empty());
    assert!(invalid(confirm(&memory, &token, "yet another passphrase", now).await), "a link works once");
    assert!(has_password(&memory, &customer, "a brand new passphrase"));
    let notices = memory.published().into_iter().chain(memory.outbox()).filter(|event| {
        matches!(&event.data, EventData::EmailRequested(EmailTask::PasswordChanged { to, .. }) if to == customer.email.as_ref())
    });
    assert_eq!(notices.count(), 1, "the owner is told");
}

#[tokio::test]
async fn only_the_newest_link_works_and_only_for_its_lifetime() {
    let memory = Memory::new();
    let resets = resets(&memory);
    let customer = user(&memory, Role::User).await;
    let now = OffsetDateTime::now_utc();
    ask(&memory, &resets, customer.email.as_ref(), now).await.unwrap();
    let older = emailed_token(&memory, customer.email.as_ref());
    ask(&memory, &resets, customer.email.as_ref(), now).await.unwrap();
    let newer = emailed_token(&memory, customer.email.as_ref());
    assert_ne!(older, newer);
    assert!(invalid(confirm(&memory, &older, "a brand new passphrase", now).await), "replaced");
    let lifetime = ResetLifetime::DEFAULT.get();
    assert!(invalid(confirm(&memory, &newer, "a brand new passphrase", now + lifetime).await), "expired");
    let in_time = now + lifetime - Duration::from_secs(2);
    assert_eq!(
        confirm(&memory, &newer, "a brand new passphrase", in_time).await.unwrap().status,
        StatusCode::NO_CONTENT
    );
    for forged in [format!("{}.{}", customer.id, "A".repeat(43)), "garbage".to_owned()] {
        let outcome = confirm(&memory, &forged, "a brand new passphrase", now).await.unwrap_err();
        assert!(matches!(outcome.status(), StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY), "{forged}");
    }
}

#[tokio::test]
async fn requests_are_throttled_per_address_alike_for_every_address() {
    let memory = Memory::new();
    let resets = resets(&memory);
    let customer = user(&memory, Role::User).await;
    let now = OffsetDateTime::now_utc();
    for address in [customer.email.as_ref(), "nobody@example.com"] {
        for _ in 0..RESETS_PER_ADDRESS.attempts {
            assert_eq!(ask(&memory, &resets, address, now).await.unwrap().status, StatusCode::ACCEPTED);
        }
        let refused = ask(&memory, &resets, address, now).await.unwrap_err();
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS, "{address}");
    }
    let sent = memory.published().into_iter().chain(memory.outbox()).count();
    assert_eq!(sent, 3, "three emails at most, all to the account's owner");
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one_ends_the_other_sessions_and_voids_a_reset() {
    let memory = Memory::new();
    let resets = resets(&memory);
    let customer = user(&memory, Role::User).await;
    let now = OffsetDateTime::now_utc();
    // The fixture's password (contract::new_user) is not a real argon2 hash: set one first.
    ask(&memory, &resets, customer.email.as_ref(), now).await.unwrap();
    let token = emailed_token(&memory, customer.email.as_ref());
    confirm(&memory, &token, "the first passphrase", now).await.unwrap();
    ask(&memory, &resets, customer.email.as_ref(), now).await.unwrap();
    let pending = emailed_token(&memory, customer.email.as_ref());
    let (mine, other) = (session(&memory, &customer, now).await, session(&memory, &customer, now).await);

    let change = |current: &str, next: &str, keep: &str| {
        request(
            Method::POST,
            Some(&customer),
            Some(json!({ "current_password": current, "new_password": next, "refresh_token": keep })),
        )
    };
    let hasher = PasswordHasher::new();
    let limit = app::passwords::CHANGE_CHECKS_PER_ACCOUNT;
    let checks = memory.throttle(limit.name, limit.attempts, limit.window);
    let wrong = app::passwords::change_password(
        change("not the passphrase", "the second passphrase", &mine),
        &memory.users(),
        &memory.sessions(),
        &hasher,
        &checks,
        now,
    )
    .await
    .map_err(ApiError::from)
    .unwrap_err();
    assert_eq!((wrong.status(), wrong.code()), (StatusCode::UNAUTHORIZED, "invalid_credentials"));
    let changed = app::passwords::change_password(
        change("the first passphrase", "the second passphrase", &mine),
        &memory.users(),
        &memory.sessions(),
        &hasher,
        &checks,
        now,
    )
    .await
    .unwrap();
    assert_eq!(changed.status, StatusCode::NO_CONTENT);
    assert!(has_password(&memory, &customer, "the second passphrase"));
    let left: Vec<String> =
        memory.sessions().list(customer.id, now).await.unwrap().iter().map(|s| s.id.to_string()).collect();
    assert_eq!(left.len(), 1, "the other session ended");
    assert!(mine.contains(&left[0]) && !other.contains(&left[0]), "the caller's own session is kept");
    assert!(
        invalid(confirm(&memory, &pending, "a third passphrase", now).await),
        "the password changed since the request"
    );
}

/// Many confirmations of one link at once, on four threads: one sets its password.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_confirmations_of_one_link_succeed_once() {
    let memory = Memory::new();
    let resets = resets(&memory);
    let customer = user(&memory, Role::User).await;
    let now = OffsetDateTime::now_utc();
    ask(&memory, &resets, customer.email.as_ref(), now).await.unwrap();
    let token = Arc::new(emailed_token(&memory, customer.email.as_ref()));
    let racers: Vec<_> = (0..6)
        .map(|n| {
            let (memory, token) = (memory.clone(), token.clone());
            tokio::spawn(async move { confirm(&memory, &token, &format!("racing passphrase {n}"), now).await })
        })
        .collect();
    let mut done = 0;
    for racer in racers {
        if racer.await.unwrap().is_ok() {
            done += 1;
        }
    }
    assert_eq!(done, 1);
    assert_eq!(memory.user(customer.id).unwrap().version, customer.version + 1);
}
