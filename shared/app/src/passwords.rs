//! POST /auth/password-reset, POST /auth/password-reset/confirm and
//! POST /users/me/password.
//!
//! A reset request answers 202 whatever the address (counted per address
//! first, every address alike, so neither the answer nor the 429 says which
//! addresses have accounts); an account's owner gets a link with a
//! single-use token that works for `PASSWORD_RESET_TTL_SECONDS` (30 minutes),
//! stops working when a newer one is asked for or the password changes by
//! any path, and is stored only as a hash. Confirming sets the new password
//! (the registration policy) and ends every session of the account.
//! Changing the password while signed in needs the current one and ends
//! every other session.

use std::fmt::Write as _;
use std::time::Duration;

use crate::caller::Caller as _;
use crate::error::AppError;
use adapters::throttle::Limit;
use domain::ports::{PasswordResets, Publisher, SessionStore, StoreError, Throttle, UserStore};
use domain::{
    DomainEvent, Email, EmailTask, Password, PasswordHash, PendingReset, RefreshToken, ResetLifetime, ResetToken,
    SecretHash, User, ValidationError,
};
use framework::auth::PasswordHasher;
use framework::http::{ApiError, ApiRequest, ApiResponse};
use http::StatusCode;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::auth::PasswordCheck;
use crate::sessions::{hash_of, new_secret};

/// Reset emails per address: three an hour, counted for every address
/// asked about, with an account or not; bounds what anyone can make the
/// shop send to one inbox.
pub const RESETS_PER_ADDRESS: Limit =
    Limit { name: "PASSWORD-RESET", attempts: 3, window: Duration::from_secs(60 * 60) };

/// Current-password checks of a password change per account: five per
/// quarter hour, so a stolen access token cannot be turned into a password
/// guesser.
pub const CHANGE_CHECKS_PER_ACCOUNT: Limit =
    Limit { name: "PASSWORD-CHANGE", attempts: 5, window: Duration::from_secs(15 * 60) };

/// What a reset request needs besides the request itself.
pub struct Resets<U, R, T> {
    /// Accounts, looked up by email.
    pub users: U,
    /// Pending resets, and the writes that carry their emails.
    pub resets: R,
    /// Counts [`RESETS_PER_ADDRESS`].
    pub per_address: T,
    /// The shop's website (configured, never a request's Host): a link is
    /// `<base>/reset-password#token=<token>` (a fragment never reaches a server log).
    pub base_url: String,
    /// How long a link works.
    pub lifetime: ResetLifetime,
}

/// SHA-256 of an account's password hash: what a pending reset remembers of
/// the password it may replace.
fn fingerprint(hash: &PasswordHash) -> SecretHash {
    SecretHash::from_bytes(Sha256::digest(hash.as_str().as_bytes()).into())
}

/// A short, stable, one-way name for `text` (keys of the per-address counter).
fn short_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().take(12).fold(String::new(), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    })
}

/// `user` with `password_hash`, changed at `now`, one version on.
fn with_password(user: &User, password_hash: PasswordHash, now: OffsetDateTime) -> User {
    User { password_hash, updated_at: now, version: user.version + 1, ..user.clone() }
}

/// "Your password was changed": sent after a reset, so an owner who did not
/// ask learns of it.
fn password_changed(user: &User, correlation_id: &str, now: OffsetDateTime) -> DomainEvent {
    let task = EmailTask::PasswordChanged {
        to: user.email.to_string(),
        dedupe_key: format!("password-changed#{}#{}", user.id, user.version),
    };
    DomainEvent::email_requested(task, correlation_id, now)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetRequestBody {
    email: String,
}

/// POST /auth/password-reset: 202 whatever the address; the owner of an
/// account that can sign in gets a link (a newer one replaces the older).
/// 429 past [`RESETS_PER_ADDRESS`], for every address alike.
pub async fn request_reset(
    request: ApiRequest,
    resets: &Resets<impl UserStore, impl PasswordResets, impl Throttle>,
    publisher: &impl Publisher,
    now: OffsetDateTime,
) -> Result<ApiResponse, AppError> {
    let body: ResetRequestBody = request.json()?;
    let email = Email::parse(&body.email)?;
    // Hashed: the counter's key is stored and must not hold the address.
    let address = short_hash(email.as_ref());
    let (counted, user) = tokio::join!(resets.per_address.hit(&address), resets.users.find_by_email(&email));
    let counted = counted?;
    if !counted.allowed {
        return Err(ApiError::TooManyRequests { retry_after_seconds: counted.reset_seconds }.into());
    }
    if let Some(user) = user?.filter(User::can_sign_in) {
        let (secret, secret_hash) = new_secret();
        let pending = PendingReset::new(user.id, secret_hash, fingerprint(&user.password_hash), now, resets.lifetime);
        let token = ResetToken { user_id: user.id, secret };
        let task = EmailTask::PasswordReset {
            to: user.email.to_string(),
            dedupe_key: format!("password-reset#{}#{}", user.id, &secret_hash.to_hex()[..16]),
            link: format!("{}/reset-password#token={}", resets.base_url, token.to_text()),
        };
        let event = DomainEvent::email_requested(task, &request.correlation_id, now);
        resets.resets.request(&pending, &event).await?;
        tracing::info!(user_id = %user.id, "password reset requested");
        publisher.publish_after_commit(&event).await;
    }
    Ok(ApiResponse::with_status(
        StatusCode::ACCEPTED,
        serde_json::json!({
            "status": "accepted",
            "message": "If this address has an account, we have sent it a link to choose a new password.",
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetConfirmBody {
    token: String,
    password: String,
}

/// POST /auth/password-reset/confirm: sets the new password (the
/// registration policy: 422 otherwise) with the emailed token, once, and
/// ends every session of the account; 204. 400 `invalid_reset_token` for a
/// token that is wrong, used, replaced by a newer one, expired, or older
/// than the account's password.
pub async fn confirm_reset(
    request: ApiRequest,
    users: &impl UserStore,
    resets: &impl PasswordResets,
    sessions: &impl SessionStore,
    hasher: &PasswordHasher,
    publisher: &impl Publisher,
    now: OffsetDateTime,
) -> Result<ApiResponse, AppError> {
    let body: ResetConfirmBody = request.json()?;
    let mut errors = ValidationError::default();
    let token = errors.collect(ResetToken::parse(&body.token));
    let password = errors.collect(Password::parse_new(body.password));
    let (Some(token), Some(password)) = (token, password) else { return Err(errors.into()) };
    let presented = hash_of(&token.secret);
    let (user, pending) = tokio::join!(users.get(token.user_id), resets.pending(token.user_id));
    let (Some(user), Some(pending)) = (user?, pending?) else { return Err(AppError::InvalidResetToken) };
    if !pending.opens(&presented, &fingerprint(&user.password_hash), now) || !user.can_sign_in() {
        return Err(AppError::InvalidResetToken);
    }
    let changed = with_password(&user, hasher.hash_new(&password).map_err(ApiError::Internal)?, now);
    // Sessions end before the password changes too: none started with the
    // old password can outlive the change, even if the ending after it fails.
    sessions.end_all(user.id, None).await?;
    let event = password_changed(&changed, &request.correlation_id, now);
    match resets.complete(&changed, &presented, now, &event).await {
        Ok(()) => {}
        Err(StoreError::NotFound) => return Err(AppError::InvalidResetToken),
        Err(StoreError::VersionMismatch) => return Err(AppError::AccountChanged),
        Err(other) => return Err(other.into()),
    }
    tracing::info!(user_id = %user.id, "password reset");
    publisher.publish_after_commit(&event).await;
    if let Err(error) = sessions.end_all(user.id, None).await {
        tracing::warn!(error = framework::telemetry::chain(&error), "could not end sessions after a password reset");
    }
    Ok(ApiResponse::no_content())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeBody {
    current_password: String,
    new_password: String,
    /// The caller's own refresh token: its session is kept.
    refresh_token: Option<String>,
}

/// POST /users/me/password (signed in): sets a new password (the
/// registration policy) given the current one (401 `invalid_credentials`
/// otherwise; 429 past [`CHANGE_CHECKS_PER_ACCOUNT`]) and ends every other
/// session of the account: the one of the `refresh_token` sent, if it is the
/// caller's, is kept. A pending reset stops working (it remembers the
/// password it was asked against). 204.
pub async fn change_password(
    request: ApiRequest,
    users: &impl UserStore,
    sessions: &impl SessionStore,
    hasher: &(impl PasswordCheck + HashesPasswords),
    checks: &impl Throttle,
    now: OffsetDateTime,
) -> Result<ApiResponse, AppError> {
    let caller = request.principal()?.user_id();
    let body: ChangeBody = request.json()?;
    let mut errors = ValidationError::default();
    let current = errors.collect(Password::parse_attempt(body.current_password));
    let next = errors.collect(Password::parse_new(body.new_password));
    let keep = body.refresh_token.as_deref().map(RefreshToken::parse).transpose();
    let keep =
        errors.collect(keep.map_err(|_| ValidationError::field("refresh_token", "is not a valid refresh token")));
    let (Some(current), Some(next), Some(keep)) = (current, next, keep) else { return Err(errors.into()) };
    let account = caller.to_string();
    let (counted, user) = tokio::join!(checks.hit(&account), users.get(caller));
    let counted = counted?;
    if !counted.allowed {
        return Err(ApiError::TooManyRequests { retry_after_seconds: counted.reset_seconds }.into());
    }
    let user = user?.ok_or(ApiError::InvalidToken)?;
    if !hasher.verify(&current, &user.password_hash) {
        return Err(AppError::InvalidCredentials);
    }
    let changed = with_password(&user, hasher.hash_new(&next).map_err(ApiError::Internal)?, now);
    users.update(&changed, None).await?;
    let keep = keep.filter(|token| token.user_id == caller).map(|token| token.session_id);
    let ended = sessions.end_all(caller, keep).await?;
    tracing::info!(user_id = %caller, ended, "password changed");
    Ok(ApiResponse::no_content())
}

/// What changing a password needs of a hasher besides checking: hashing the
/// new one ([`PasswordHasher`] in the functions).
pub trait HashesPasswords {
    /// The argon2id hash of `password`.
    fn hash_new(&self, password: &Password) -> anyhow::Result<PasswordHash>;
}

impl HashesPasswords for PasswordHasher {
    fn hash_new(&self, password: &Password) -> anyhow::Result<PasswordHash> {
        self.hash(password.expose()).map(PasswordHash::from_phc)
    }
}
