//! Registration and login on in-memory adapters: one account per email, the
//! welcome event, and a login throttle that parallel guesses cannot outrun.

mod support;

use std::time::Duration;

use app::auth::LoginLimits;
use http::{Method, StatusCode};
use in_memory::Memory;
use platform::auth::PasswordHasher;
use platform::http::{ApiError, ApiResponse};
use serde_json::json;
use support::{body, header, request, with_header};

const PASSWORD: &str = "correct horse battery";

fn limits(memory: &Memory) -> LoginLimits<in_memory::MemoryThrottle> {
    LoginLimits {
        per_account_and_client: memory.throttle("LOGIN", 5, Duration::from_secs(900)),
        per_client: memory.throttle("LOGIN-CLIENT", 30, Duration::from_secs(900)),
    }
}

async fn login(
    memory: &Memory,
    limits: &LoginLimits<in_memory::MemoryThrottle>,
    email: &str,
    password: &str,
    ip: &str,
) -> Result<ApiResponse, ApiError> {
    let mut request = request(Method::POST, None, Some(json!({"email": email, "password": password})));
    request.client_ip = ip.to_owned();
    app::auth::login(request, &memory.users(), &PasswordHasher::new(), &support::tokens(), limits).await
}

/// Registers `email` with [`PASSWORD`] (no key).
async fn register(memory: &Memory, email: &str) -> ApiResponse {
    app::auth::register(
        request(Method::POST, None, Some(json!({"email": email, "password": PASSWORD}))),
        &memory.users(),
        &memory.idempotency(),
        &PasswordHasher::new(),
        &memory.publisher(),
    )
    .await
    .unwrap()
}

async fn register_keyed(memory: &Memory, key: &str, email: &str, password: &str) -> Result<ApiResponse, ApiError> {
    let body = json!({"email": email, "password": password});
    app::auth::register(
        with_header(request(Method::POST, None, Some(body)), "idempotency-key", key),
        &memory.users(),
        &memory.idempotency(),
        &PasswordHasher::new(),
        &memory.publisher(),
    )
    .await
}

/// A client whose 201 was lost retries with its key and gets
/// the 201, not 409 `email_taken`; one account and one welcome email.
#[tokio::test]
async fn a_registration_retried_with_its_key_gets_its_201_and_creates_one_account() {
    let memory = Memory::new();
    let first = register_keyed(&memory, "signup-1", "lin@example.com", PASSWORD).await.unwrap();
    let retry = register_keyed(&memory, "signup-1", "lin@example.com", PASSWORD).await.unwrap();
    assert_eq!((retry.status, body(&retry)), (StatusCode::CREATED, body(&first)));
    assert_eq!(header(&retry, "idempotent-replayed"), Some("true"));
    assert_eq!(header(&retry, "location"), Some("/api/v1/users/me"));
    assert_eq!(memory.published().len(), 1, "one welcome event");

    // Another email under the same key is another request: refused, nothing created.
    let other = register_keyed(&memory, "signup-1", "max@example.com", PASSWORD).await.unwrap_err();
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let max = domain::Email::parse("max@example.com").unwrap();
    assert!(domain::ports::UserStore::find_by_email(&memory.users(), &max).await.unwrap().is_none());
    // A fresh key for a taken email is a new registration: 409 as before.
    let again = register_keyed(&memory, "signup-2", "lin@example.com", PASSWORD).await.unwrap_err();
    assert_eq!(again.code(), "email_taken");
    // The stored replay holds the response, never the password.
    let stored = memory.idempotency_records();
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].body.contains(PASSWORD) && !stored[0].fingerprint.contains(PASSWORD));
}

/// Regression: the password was left out of the fingerprint, so a retry
/// with the same key that corrected the password was told it succeeded while
/// the account kept the first password. Now it is refused as a key reused
/// with another body, and nothing changes.
#[tokio::test]
async fn a_keyed_retry_with_another_password_is_refused_like_another_body() {
    let memory = Memory::new();
    let limits = limits(&memory);
    register_keyed(&memory, "k", "eve@example.com", PASSWORD).await.unwrap();
    let retry = register_keyed(&memory, "k", "eve@example.com", "another long password").await;
    let refused = retry.err().expect("a retry with another password is not replayed");
    assert_eq!((refused.status(), refused.code()), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"));
    assert!(login(&memory, &limits, "eve@example.com", PASSWORD, "192.0.2.7").await.is_ok());
    // The same request, password included, still replays.
    let same = register_keyed(&memory, "k", "eve@example.com", PASSWORD).await.unwrap();
    assert_eq!(header(&same, "idempotent-replayed"), Some("true"));
}

/// Regression: every guest shares one key scope and the password was not
/// compared, so anyone holding another guest's key and email was handed that
/// guest's user id.
#[tokio::test]
async fn someone_elses_key_and_email_without_their_password_get_no_user_id() {
    let memory = Memory::new();
    let first = register_keyed(&memory, "shared-key", "victim@example.com", PASSWORD).await.unwrap();
    let victim_id = body(&first)["id"].as_str().unwrap().to_owned();
    let probe = register_keyed(&memory, "shared-key", "victim@example.com", "an attacker's guess").await;
    let (status, answer) = match probe {
        Ok(response) => (response.status, body(&response).to_string()),
        Err(error) => (error.status(), error.envelope("request-1").to_string()),
    };
    assert!(!answer.contains(&victim_id), "the answer holds the victim's id: {status} {answer}");
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "refused like a key reused with another body");
}

#[tokio::test]
async fn an_email_registers_once_and_its_welcome_event_is_published() {
    let memory = Memory::new();
    let (users, keys, hasher, publisher) =
        (memory.users(), memory.idempotency(), PasswordHasher::new(), memory.publisher());
    let register = |email: &str| {
        app::auth::register(
            request(Method::POST, None, Some(json!({"email": email, "password": PASSWORD}))),
            &users,
            &keys,
            &hasher,
            &publisher,
        )
    };
    let created = register("  Ada@Example.com ").await.unwrap();
    assert_eq!((created.status, body(&created)["email"].as_str()), (StatusCode::CREATED, Some("ada@example.com")));
    assert_eq!(register("ada@EXAMPLE.com").await.unwrap_err().code(), "email_taken");
    let published = memory.published();
    assert_eq!((published.len(), published[0].kind()), (1, "user-created"));
}

/// Regression: the throttle read the count, checked the password,
/// then counted: parallel guesses all got a password check.
#[tokio::test]
async fn twenty_parallel_guesses_get_at_most_five_password_checks() {
    let memory = Memory::new();
    let limits = limits(&memory);
    let _ = register(&memory, "grace@example.com").await;
    let guesses = (0..20).map(|i| {
        login(&memory, &limits, "grace@example.com", if i == 19 { PASSWORD } else { "wrong password" }, "203.0.113.9")
    });
    let outcomes = futures::future::join_all(guesses).await;
    let checked =
        outcomes.iter().filter(|o| !matches!(o, Err(e) if e.status() == StatusCode::TOO_MANY_REQUESTS)).count();
    assert!(checked <= 5, "{checked} attempts reached the password check");
    // The owner, elsewhere, still gets in.
    assert_eq!(
        login(&memory, &limits, "grace@example.com", PASSWORD, "198.51.100.1").await.unwrap().status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_successful_login_forgives_earlier_misses_from_its_address() {
    let memory = Memory::new();
    let limits = limits(&memory);
    let _ = register(&memory, "alan@example.com").await;
    for _ in 0..4 {
        assert_eq!(
            login(&memory, &limits, "alan@example.com", "typo", "192.0.2.1").await.unwrap_err().code(),
            "invalid_credentials"
        );
    }
    assert!(login(&memory, &limits, "alan@example.com", PASSWORD, "192.0.2.1").await.is_ok());
    for _ in 0..4 {
        assert_eq!(
            login(&memory, &limits, "alan@example.com", "typo", "192.0.2.1").await.unwrap_err().code(),
            "invalid_credentials",
            "the window was reset"
        );
    }
    let unknown = login(&memory, &limits, "nobody@example.com", PASSWORD, "192.0.2.1").await.unwrap_err();
    assert_eq!(unknown.code(), "invalid_credentials", "an unknown email reads like a wrong password");
}

#[tokio::test]
async fn a_disabled_account_is_refused_only_after_the_right_password() {
    let memory = Memory::new();
    let limits = limits(&memory);
    let created = register(&memory, "off@example.com").await;
    let mut user = memory.user(support::user_id(&created)).unwrap();
    user.disabled = true;
    user.version += 1;
    domain::ports::UserStore::update(&memory.users(), &user).await.unwrap();
    assert_eq!(
        login(&memory, &limits, "off@example.com", "wrong", "192.0.2.2").await.unwrap_err().code(),
        "invalid_credentials"
    );
    assert_eq!(
        login(&memory, &limits, "off@example.com", PASSWORD, "192.0.2.2").await.unwrap_err().code(),
        "account_disabled"
    );
}
