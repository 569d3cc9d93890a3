//! Sessions you can end: POST /auth/refresh, POST /auth/logout,
//! POST /auth/logout-all, the session a login starts, and the end of every
//! session when an account's role or disabled flag changes.
//!
//! An access token (a signed JWT) lives minutes and is never looked up; a
//! refresh token lives days, is stored only as a hash, and works once: each
//! refresh rotates it. A rotated token presented again revokes its whole
//! session (theft detection). A session never outlives a change of its
//! account's role or a disable, so a read trusts an old role for at most one
//! access-token lifetime after the change commits.

use crate::caller::{Caller as _, access_role, subject};
use crate::error::AppError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::ports::{SessionStore, UserStore};
use domain::{RefreshLifetime, RefreshToken, Rotation, SecretHash, Session, TokenSecret, User};
use framework::auth::{IssuedToken, Tokens};
use framework::http::{ApiError, ApiRequest, ApiResponse};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// Where sessions are kept and how long their refresh tokens live.
pub struct Sessions<S> {
    /// The sessions' store.
    pub store: S,
    /// How long a refresh token stays valid unused.
    pub lifetime: RefreshLifetime,
}

/// A refresh token just issued, as a response hands it out.
#[derive(Debug)]
pub struct IssuedRefresh {
    /// `<user id>.<session id>.<secret>`: shown to the client once, never stored or logged.
    pub token: String,
    /// Seconds until it stops working unless used.
    pub expires_in: u64,
}

/// A fresh secret (32 random bytes) and the hash the table keeps of it.
pub(crate) fn new_secret() -> (TokenSecret, SecretHash) {
    let text = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let secret = TokenSecret::parse(&text).expect("32 bytes are 43 base64url characters");
    let hash = hash_of(&secret);
    (secret, hash)
}

/// SHA-256 of a secret's text: a fast hash suits 256 random bits (argon2 is
/// for passwords people choose).
pub(crate) fn hash_of(secret: &TokenSecret) -> SecretHash {
    SecretHash::from_bytes(Sha256::digest(secret.expose().as_bytes()).into())
}

/// Whole seconds from `now` to `moment`, as the table counts them.
fn seconds_until(moment: OffsetDateTime, now: OffsetDateTime) -> u64 {
    u64::try_from((moment - domain::session::whole_seconds(now)).whole_seconds()).unwrap_or(0)
}

/// Starts a session for `user`, who has just proved who they are (login,
/// with a second factor when `mfa`): its first refresh token.
pub async fn start(
    sessions: &Sessions<impl SessionStore>,
    user: &User,
    mfa: bool,
    now: OffsetDateTime,
) -> Result<IssuedRefresh, AppError> {
    let (secret, hash) = new_secret();
    let session = Session::start(user.id, user.role, mfa, hash, now, sessions.lifetime);
    sessions.store.start(&session).await?;
    let token = RefreshToken { user_id: user.id, session_id: session.id, secret };
    Ok(IssuedRefresh { token: token.to_text(), expires_in: seconds_until(session.expires_at, now) })
}

/// The body of a sign-in (login, refresh): the access token, and the refresh
/// token to get the next one with.
pub fn signed_in(access: &IssuedToken, refresh: &IssuedRefresh) -> ApiResponse {
    ApiResponse::ok(serde_json::json!({
        "token": access.token,
        "token_type": "Bearer",
        "expires_in": access.expires_in,
        "refresh_token": refresh.token,
        "refresh_expires_in": refresh.expires_in,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

/// POST /auth/refresh: trades a refresh token for a new access token and a
/// new refresh token; the one presented stops working. 422 for a body that
/// holds no well-formed token; 401 `invalid_token` for one that is unknown,
/// expired, ended, already used
/// (which also revokes its session), or whose account was disabled or
/// changed role since the session began (which ends the session).
///
/// The account is read in parallel with the rotation (one round trip of
/// latency, two reads' worth of cost): the new access token carries the
/// account's role as it is now, never the session's.
pub async fn refresh(
    request: ApiRequest,
    users: &impl UserStore,
    sessions: &Sessions<impl SessionStore>,
    tokens: &Tokens,
    now: OffsetDateTime,
) -> Result<ApiResponse, AppError> {
    let body: RefreshBody = request.json()?;
    // Malformed is 422 (as the API document's pattern says); a well-formed
    // token that opens nothing is 401.
    let presented = RefreshToken::parse(&body.refresh_token)?;
    let (next_secret, next_hash) = new_secret();
    let (presented_hash, expires_at) = (hash_of(&presented.secret), sessions.lifetime.expiry(now));
    let (user, rotation) = tokio::join!(
        users.get(presented.user_id),
        sessions.store.rotate(presented.user_id, presented.session_id, &presented_hash, &next_hash, now, expires_at),
    );
    let session = match rotation? {
        Rotation::Rotated(session) => session,
        Rotation::Reused => {
            // Whoever holds the newest token, thief or owner, must sign in again.
            tracing::warn!(user_id = %presented.user_id, session_id = %presented.session_id, "refresh token reused: session revoked");
            framework::metrics::count(framework::metrics::names::REFRESH_TOKENS_REUSED, 1.0);
            return Err(refused("reused"));
        }
        Rotation::Expired => return Err(refused("expired")),
        Rotation::Unknown => return Err(refused("unknown")),
    };
    let user = user?;
    let Some(user) = user.filter(|user| user.can_sign_in() && user.role == session.role) else {
        // Disabled, deleted or another role since sign-in: the session ends here.
        sessions.store.end(session.user_id, session.id).await?;
        return Err(refused("account changed"));
    };
    // The second factor of the sign-in carries over: an admin who proved one
    // keeps the claim across refreshes.
    let access = tokens
        .issue_with_mfa(subject(user.id), access_role(user.role), session.mfa)
        .await
        .map_err(ApiError::Unavailable)?;
    let token = RefreshToken { user_id: user.id, session_id: session.id, secret: next_secret };
    let refresh = IssuedRefresh { token: token.to_text(), expires_in: seconds_until(session.expires_at, now) };
    tracing::info!(user_id = %user.id, session_id = %session.id, "session refreshed");
    Ok(signed_in(&access, &refresh))
}

fn refused(reason: &'static str) -> AppError {
    tracing::info!(reason, "refresh refused");
    ApiError::InvalidToken.into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogoutBody {
    refresh_token: String,
}

/// POST /auth/logout: ends the session of the refresh token in the body
/// (no access token needed: one that has expired must not keep a client
/// from logging out). 204 whether or not the session was still there
/// (RFC 7009); 422 for a body that is no refresh token at all. Access
/// tokens already issued to it work until they expire (minutes).
pub async fn logout(request: ApiRequest, sessions: &impl SessionStore) -> Result<ApiResponse, AppError> {
    let body: LogoutBody = request.json()?;
    let token = RefreshToken::parse(&body.refresh_token)?;
    let ended = sessions.end(token.user_id, token.session_id).await?;
    tracing::info!(user_id = %token.user_id, session_id = %token.session_id, ended, "logout");
    Ok(ApiResponse::no_content())
}

/// POST /auth/logout-all (signed in): ends every session of the caller's
/// account, on every device. 200 `{"sessions_ended": n}`.
pub async fn logout_all(request: ApiRequest, sessions: &impl SessionStore) -> Result<ApiResponse, AppError> {
    let user = request.principal()?.user_id();
    let ended = sessions.end_all(user, None).await?;
    tracing::info!(user_id = %user, ended, "logged out everywhere");
    Ok(ApiResponse::ok(serde_json::json!({ "sessions_ended": ended })))
}

/// Ends every session of an account whose role or disabled flag an admin
/// just changed (`before` -> `after`, committed). A failure is logged, not
/// returned: the change is committed, and a refresh checks the account's
/// role and flag itself and ends the session then.
pub async fn end_on_account_change(sessions: &impl SessionStore, before: &User, after: &User) {
    if before.role == after.role && before.disabled == after.disabled {
        return;
    }
    match sessions.end_all(after.id, None).await {
        Ok(ended) => tracing::info!(user_id = %after.id, ended, "sessions ended after an account change"),
        Err(error) => tracing::warn!(
            user_id = %after.id,
            error = framework::telemetry::chain(&error),
            "could not end the sessions of a changed account; refreshes will refuse them"
        ),
    }
}
