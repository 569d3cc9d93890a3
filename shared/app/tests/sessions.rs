//! Sessions on in-memory adapters: refresh rotation, reuse detection,
//! expiry on a moved clock, logout, logging out everywhere, and the end of
//! a session when its account changes.

mod support;

use std::sync::Arc;
use std::time::Duration;

use app::caller::Caller as _;
use app::sessions::{Sessions, signed_in};
use domain::ports::{SessionStore, UserStore};
use domain::{RefreshLifetime, Role, User};
use framework::http::{ApiError, ApiResponse};
use http::{Method, StatusCode};
use in_memory::{Memory, MemorySessionStore};
use serde_json::json;
use support::{body, request, user, with_header, with_path};
use time::OffsetDateTime;

fn sessions(memory: &Memory, lifetime: Duration) -> Sessions<MemorySessionStore> {
    Sessions { store: memory.sessions(), lifetime: RefreshLifetime::new(lifetime).unwrap() }
}

/// A signed-in session of `user` at `now`: its refresh token.
async fn sign_in(sessions: &Sessions<MemorySessionStore>, user: &User, now: OffsetDateTime) -> String {
    let refresh = app::sessions::start(sessions, user, false, now).await.unwrap();
    let access =
        support::tokens().issue(app::caller::subject(user.id), app::caller::access_role(user.role)).await.unwrap();
    let response = signed_in(&access, &refresh);
    assert_eq!(body(&response)["expires_in"], 900);
    assert_eq!(body(&response)["refresh_expires_in"], sessions.lifetime.get().as_secs());
    refresh.token
}

async fn refresh(
    memory: &Memory,
    sessions: &Sessions<MemorySessionStore>,
    token: &str,
    now: OffsetDateTime,
) -> Result<ApiResponse, ApiError> {
    let request = request(Method::POST, None, Some(json!({ "refresh_token": token })));
    app::sessions::refresh(request, &memory.users(), sessions, &support::tokens(), now).await.map_err(ApiError::from)
}

fn refresh_token(response: &ApiResponse) -> String {
    body(response)["refresh_token"].as_str().unwrap().to_owned()
}

fn refused(outcome: Result<ApiResponse, ApiError>) -> bool {
    matches!(outcome, Err(ApiError::InvalidToken))
}

#[tokio::test]
async fn a_refresh_rotates_and_a_reused_token_revokes_the_session() {
    let memory = Memory::new();
    let sessions = sessions(&memory, Duration::from_secs(3600));
    let customer = user(&memory, Role::User).await;
    let now = OffsetDateTime::now_utc();
    let first = sign_in(&sessions, &customer, now).await;

    let second = refresh(&memory, &sessions, &first, now).await.unwrap();
    assert_eq!(second.status, StatusCode::OK);
    let access = body(&second)["token"].as_str().unwrap().to_owned();
    let principal = support::tokens().verify(&access).await.unwrap();
    assert_eq!((principal.user_id(), principal.role), (customer.id, framework::auth::Role::User));
    let second = refresh_token(&second);
    assert_ne!(second, first, "every refresh hands out a new refresh token");
    let third = refresh_token(&refresh(&memory, &sessions, &second, now).await.unwrap());

    // The first token again: a theft is assumed, the whole session ends.
    assert!(refused(refresh(&memory, &sessions, &first, now).await));
    assert!(refused(refresh(&memory, &sessions, &third, now).await), "the newest token died with its session");
    assert!(sessions.store.list(customer.id, now).await.unwrap().is_empty());
    assert!(
        !format!("{:?}", memory.sessions().list(customer.id, now).await).contains(&third[third.len() - 43..]),
        "only hashes are stored"
    );
}

#[tokio::test]
async fn malformed_and_forged_tokens_are_refused() {
    let memory = Memory::new();
    let sessions = sessions(&memory, Duration::from_secs(3600));
    let customer = user(&memory, Role::User).await;
    let now = OffsetDateTime::now_utc();
    let token = sign_in(&sessions, &customer, now).await;
    let (user_and_session, _) = token.rsplit_once('.').unwrap();
    let forged = format!("{user_and_session}.{}", "B".repeat(43));
    for bad in ["", "nonsense", &token[..token.len() - 1], &format!("{token}.x")] {
        let malformed = refresh(&memory, &sessions, bad, now).await.unwrap_err();
        assert_eq!(malformed.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    // A well-formed guess at the secret of a live session revokes it: only
    // a holder of one of its tokens knows its id.
    assert!(refused(refresh(&memory, &sessions, &forged, now).await));
    assert!(refused(refresh(&memory, &sessions, &token, now).await));
    let unknown_field = request(Method::POST, None, Some(json!({ "refresh_token": token, "scope": "admin" })));
    let outcome = app::sessions::refresh(unknown_field, &memory.users(), &sessions, &support::tokens(), now).await;
    assert_eq!(outcome.map_err(ApiError::from).unwrap_err().status(), StatusCode::UNPROCESSABLE_ENTITY, "strict input");
}

#[tokio::test]
async fn refresh_tokens_expire_a_lifetime_after_their_last_use() {
    let memory = Memory::new();
    let sessions = sessions(&memory, Duration::from_secs(60));
    let customer = user(&memory, Role::User).await;
    let start = OffsetDateTime::now_utc();
    let token = sign_in(&sessions, &customer, start).await;
    // Used within its lifetime it lives on: each refresh starts it again.
    let later = start + Duration::from_secs(59);
    let renewed = refresh(&memory, &sessions, &token, later).await.unwrap();
    assert_eq!(body(&renewed)["refresh_expires_in"], 60);
    let renewed = refresh_token(&renewed);
    let still = refresh(&memory, &sessions, &renewed, later + Duration::from_secs(59)).await.unwrap();
    // Left unused for a lifetime, it is refused, and the session is gone.
    let idle = refresh_token(&still);
    let too_late = later + Duration::from_secs(59 + 61);
    assert!(refused(refresh(&memory, &sessions, &idle, too_late).await));
    assert!(refused(refresh(&memory, &sessions, &idle, later).await), "ended, not merely refused once");
}

#[tokio::test]
async fn logout_ends_one_session_and_logout_all_every_one() {
    let memory = Memory::new();
    let sessions = sessions(&memory, Duration::from_secs(3600));
    let customer = user(&memory, Role::User).await;
    let neighbour = user(&memory, Role::User).await;
    let now = OffsetDateTime::now_utc();
    let (phone, laptop, tablet) = (
        sign_in(&sessions, &customer, now).await,
        sign_in(&sessions, &customer, now).await,
        sign_in(&sessions, &customer, now).await,
    );
    let theirs = sign_in(&sessions, &neighbour, now).await;

    let logout = |token: &str| request(Method::POST, None, Some(json!({ "refresh_token": token })));
    assert_eq!(app::sessions::logout(logout(&phone), &memory.sessions()).await.unwrap().status, StatusCode::NO_CONTENT);
    assert_eq!(
        app::sessions::logout(logout(&phone), &memory.sessions()).await.unwrap().status,
        StatusCode::NO_CONTENT,
        "logging out twice is harmless"
    );
    let garbage =
        app::sessions::logout(logout("garbage"), &memory.sessions()).await.map_err(ApiError::from).unwrap_err();
    assert_eq!(garbage.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused(refresh(&memory, &sessions, &phone, now).await));
    let laptop = refresh_token(&refresh(&memory, &sessions, &laptop, now).await.unwrap());

    let everywhere = request(Method::POST, Some(&customer), None);
    let ended = app::sessions::logout_all(everywhere, &memory.sessions()).await.unwrap();
    assert_eq!(body(&ended), json!({ "sessions_ended": 2 }));
    assert!(refused(refresh(&memory, &sessions, &laptop, now).await));
    assert!(refused(refresh(&memory, &sessions, &tablet, now).await));
    assert!(refresh(&memory, &sessions, &theirs, now).await.is_ok(), "another account's session lives on");
}

#[tokio::test]
async fn demoting_or_disabling_an_account_ends_its_sessions() {
    let memory = Memory::new();
    let sessions = sessions(&memory, Duration::from_secs(3600));
    let admin = user(&memory, Role::Admin).await;
    let now = OffsetDateTime::now_utc();
    for change in [json!({"role": "user"}), json!({"disabled": true})] {
        let target = user(&memory, Role::Admin).await;
        let token = sign_in(&sessions, &target, now).await;
        let patch = with_header(
            with_path(request(Method::PATCH, Some(&admin), Some(change.clone())), target.id),
            "if-match",
            "*",
        );
        app::users::update(patch, &memory.users(), &memory.sessions()).await.unwrap();
        assert!(memory.sessions().list(target.id, now).await.unwrap().is_empty(), "{change}: ended at once");
        assert!(refused(refresh(&memory, &sessions, &token, now).await), "{change}");
    }
    // A change to something else (none here: a patch to the same role) keeps them.
    let kept = user(&memory, Role::User).await;
    let token = sign_in(&sessions, &kept, now).await;
    let same = with_header(
        with_path(request(Method::PATCH, Some(&admin), Some(json!({"role": "user"}))), kept.id),
        "if-match",
        "*",
    );
    app::users::update(same, &memory.users(), &memory.sessions()).await.unwrap();
    assert!(refresh(&memory, &sessions, &token, now).await.is_ok());
}

/// Whatever happens to the account's sessions, a refresh checks the account
/// itself: one changed behind the sessions' back (their ending failed) is
/// refused and its session ended.
#[tokio::test]
async fn a_refresh_refuses_an_account_changed_since_sign_in() {
    let memory = Memory::new();
    let sessions = sessions(&memory, Duration::from_secs(3600));
    let now = OffsetDateTime::now_utc();
    let admin = user(&memory, Role::Admin).await;
    let witness = user(&memory, Role::Admin).await;
    let token = sign_in(&sessions, &admin, now).await;
    let mut demoted = memory.user(admin.id).unwrap();
    demoted.role = Role::User;
    demoted.version += 1;
    memory.users().update(&demoted, Some(witness.id)).await.unwrap();
    assert!(refused(refresh(&memory, &sessions, &token, now).await));
    assert!(memory.sessions().list(admin.id, now).await.unwrap().is_empty(), "the session was ended");
}

/// Many refreshes with one token at once, on four threads: exactly one
/// succeeds, and the session is revoked, so its new token is dead too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_with_one_token_succeed_once_and_revoke_the_session() {
    for _ in 0..10 {
        let memory = Memory::new();
        let sessions = Arc::new(sessions(&memory, Duration::from_secs(3600)));
        let customer = user(&memory, Role::User).await;
        let now = OffsetDateTime::now_utc();
        let token = sign_in(&sessions, &customer, now).await;
        let racers: Vec<_> = (0..8)
            .map(|_| {
                let (memory, sessions, token) = (memory.clone(), sessions.clone(), token.clone());
                tokio::spawn(async move { refresh(&memory, &sessions, &token, now).await })
            })
            .collect();
        let mut winners = Vec::new();
        for racer in racers {
            if let Ok(response) = racer.await.unwrap() {
                winners.push(refresh_token(&response));
            }
        }
        assert_eq!(winners.len(), 1, "exactly one refresh succeeds");
        assert!(refused(refresh(&memory, &sessions, &winners[0], now).await), "the session was revoked");
    }
}

/// An admin who signed in with a second factor keeps the claim across
/// refreshes (else a refreshed token would be refused where one is required).
#[tokio::test]
async fn a_refresh_carries_the_second_factor_of_the_sign_in() {
    let memory = Memory::new();
    let sessions = sessions(&memory, Duration::from_secs(3600));
    let now = OffsetDateTime::now_utc();
    for mfa in [true, false] {
        let admin = user(&memory, Role::Admin).await;
        let token = app::sessions::start(&sessions, &admin, mfa, now).await.unwrap().token;
        let refreshed = refresh(&memory, &sessions, &token, now).await.unwrap();
        let principal = support::tokens().verify(body(&refreshed)["token"].as_str().unwrap()).await.unwrap();
        assert_eq!((principal.role, principal.mfa), (framework::auth::Role::Admin, mfa));
    }
}
