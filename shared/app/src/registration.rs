//! POST /auth/register, POST /auth/verify-email and
//! POST /auth/verify-email/resend: registration that never reveals whether an
//! address has an account, and the email verification it starts.
//!
//! Every registration is answered `202` with the same body, after the same
//! work: the password is hashed (argon2, most of the time spent), the address
//! looked up, its email counter counted and one transaction committed with
//! one email. What differs is only which email, and that goes to the
//! address's owner:
//! - a new address gets an unverified account and a verification link;
//! - an address whose account is still unverified gets a fresh link (the
//!   older one stops working) and nothing else: the password sent is not
//!   used, so nobody can take over an account by registering it again;
//! - an address whose account is verified gets "someone tried to register
//!   with your address", at most once an hour (its dedupe key names the hour).
//!
//! An unverified account may sign in, browse and read its profile; it may
//! not place orders (`403 email_unverified`, see `orders::place`).

use std::time::Duration;

use crate::error::AppError;
use adapters::throttle::Limit;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::ports::{Publisher, StoreError, Taken, Throttle, UserStore, Verifications};
use domain::{
    DomainEvent, Email, EmailTask, NewUser, Password, PendingVerification, User, UserId, VerificationToken,
    VerificationTtl, VerifyOutcome,
};
use framework::auth::PasswordHasher;
use framework::http::{ApiError, ApiRequest, ApiResponse};
use framework::idempotency::{Idempotency, IdempotencyStore};
use http::StatusCode;
use rand::RngCore;
use serde::Deserialize;
use time::OffsetDateTime;

use crate::auth::{parse_credentials, short_hash};

/// Verification emails (and "someone tried to register" notices) per address:
/// three an hour, counted for every address asked about, with an account or
/// not, so the count reveals nothing; bounds what anyone can make the shop
/// send to one inbox.
pub const EMAILS_PER_ADDRESS: Limit = Limit { name: "VERIFY-EMAIL", attempts: 3, window: Duration::from_secs(60 * 60) };

/// What registration and verification need besides the request: the
/// accounts, their pending verifications, the per-address email counter and
/// where links point.
pub struct Registration<U, V, T> {
    /// Accounts, looked up by email.
    pub users: U,
    /// Pending verifications and the writes that carry emails.
    pub verifications: V,
    /// Counts [`EMAILS_PER_ADDRESS`].
    pub emails_per_address: T,
    /// The links the emails carry.
    pub links: Links,
}

/// How verification links are made.
#[derive(Debug, Clone)]
pub struct Links {
    /// The shop's website (configured, never a request's Host): a link is
    /// `<base>/verify-email#token=<token>`, the page posting the token to
    /// POST /api/v1/auth/verify-email (a fragment never reaches a server log).
    pub base_url: String,
    /// How long a link works.
    pub ttl: VerificationTtl,
}

impl Links {
    /// A fresh token for `user_id`, what the store keeps of it, and its email.
    fn issue(&self, user: &User, correlation_id: &str, now: OffsetDateTime) -> (PendingVerification, DomainEvent) {
        let mut secret = [0_u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let token = VerificationToken::new(user.id, URL_SAFE_NO_PAD.encode(secret)).expect("32 bytes in base64url");
        let pending = PendingVerification::of(&token, now, self.ttl);
        let task = EmailTask::VerifyEmail {
            to: user.email.to_string(),
            dedupe_key: format!("verify-email#{}#{}", user.id, pending.hash.short_name()),
            link: format!("{}/verify-email#token={}", self.base_url, token.expose()),
        };
        (pending, DomainEvent::email_requested(task, correlation_id, now))
    }
}

/// The one answer to every registration.
fn accepted() -> ApiResponse {
    ApiResponse::with_status(
        StatusCode::ACCEPTED,
        serde_json::json!({
            "status": "accepted",
            "message": "Check your inbox: we have sent this address an email with the next step.",
        }),
    )
}

/// "Someone tried to register with your address", at most once per account
/// per hour (the send-email consumer drops a second task with the same key).
fn account_exists(user: &User, correlation_id: &str, now: OffsetDateTime) -> DomainEvent {
    let hour = now.unix_timestamp().div_euclid(3600);
    let task = EmailTask::AccountExists {
        to: user.email.to_string(),
        dedupe_key: format!("account-exists#{}#{hour}", user.id),
    };
    DomainEvent::email_requested(task, correlation_id, now)
}

/// Registers a new address or tells an existing one's owner, answering
/// `202` alike (see the module). With an `Idempotency-Key`, a retry gets the
/// stored `202` and sends nothing again. The password stays out of the
/// stored fingerprint (no fast hash of it is kept); a replay needs no
/// confirming against it, since every registration gets the same answer and
/// a replay changes nothing.
pub async fn register(
    request: ApiRequest,
    registration: &Registration<impl UserStore, impl Verifications, impl Throttle>,
    keys: &impl IdempotencyStore,
    hasher: &PasswordHasher,
    publisher: &impl Publisher,
) -> Result<ApiResponse, AppError> {
    let idempotency = Idempotency::new("auth:register", keys).unhashed(&["password"]);
    idempotency
        .run(
            &request,
            async |_| Ok(true),
            async |key| -> Result<ApiResponse, AppError> {
                let (email, password) = parse_credentials(request.json()?, Password::parse_new)?;
                let now = OffsetDateTime::now_utc();
                let response = accepted();
                let record = key.map(|key| crate::idempotency::stored(key.record(&response)));
                // Hashed in every case: the answer must take as long for an
                // address with an account as for one without.
                let password_hash =
                    hasher.hash(password.expose()).map(domain::PasswordHash::from_phc).map_err(ApiError::Internal)?;
                // Counted under a hash: the counter's key must not hold the address.
                let address = short_hash(email.as_ref());
                let (existing, counted) = tokio::join!(
                    registration.users.find_by_email(&email),
                    registration.emails_per_address.hit(&address),
                );
                let (existing, allowed) = (existing?, counted?.allowed);
                let correlation_id = request.correlation_id.as_str();
                let event = if let Some(user) = existing {
                    tell_owner(registration, &user, allowed, correlation_id, now, record.as_ref()).await?
                } else {
                    let user = NewUser { email: email.clone(), password_hash, role: domain::Role::User }.into_user(now);
                    let (pending, event) = registration.links.issue(&user, correlation_id, now);
                    match registration.verifications.register(&user, &pending, &event, record.as_ref()).await {
                        Ok(()) => {
                            tracing::info!(user_id = %user.id, "user registered");
                            framework::metrics::count(framework::metrics::names::USERS_REGISTERED, 1.0);
                            event
                        }
                        // A registration of the same address committed first:
                        // answered as if it had come before this one.
                        Err(StoreError::AlreadyExists(Taken::Email)) => {
                            let gone =
                                || ApiError::Unavailable(anyhow::anyhow!("the account that won the race is gone"));
                            let user = registration.users.find_by_email(&email).await?.ok_or_else(gone)?;
                            tell_owner(registration, &user, allowed, correlation_id, now, record.as_ref()).await?
                        }
                        Err(error) => return Err(error.into()),
                    }
                };
                publisher.publish_after_commit(&event).await;
                Ok(response)
            },
        )
        .await
        .map_err(AppError::from)
}

/// The email a registration of `user`'s address sends its owner: a fresh
/// link while the account is unverified and the address within
/// [`EMAILS_PER_ADDRESS`], else the (hourly) notice. Committed with the
/// idempotency record; returns the event to publish.
async fn tell_owner(
    registration: &Registration<impl UserStore, impl Verifications, impl Throttle>,
    user: &User,
    allowed: bool,
    correlation_id: &str,
    now: OffsetDateTime,
    record: Option<&domain::IdempotencyRecord>,
) -> Result<DomainEvent, AppError> {
    if !user.email_verified && allowed {
        let (pending, event) = registration.links.issue(user, correlation_id, now);
        registration.verifications.renew(&pending, &event, record).await?;
        tracing::info!(user_id = %user.id, "registration of an unverified account: a fresh link sent");
        return Ok(event);
    }
    let event = account_exists(user, correlation_id, now);
    registration.verifications.notify(&event, record).await?;
    tracing::info!(user_id = %user.id, "registration of an existing account: its owner told");
    Ok(event)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyRequest {
    token: String,
}

/// Follows a verification link: the token's account becomes verified (and
/// is welcomed) if the token is its latest, unused and unexpired at `now`.
/// A second use of a link whose account is verified answers the same
/// success; anything else is `400 invalid_verification_token`, whatever was
/// wrong with it.
pub async fn verify_email(
    request: ApiRequest,
    verifications: &impl Verifications,
    publisher: &impl Publisher,
    now: OffsetDateTime,
) -> Result<ApiResponse, AppError> {
    let body: VerifyRequest = request.json()?;
    let token = VerificationToken::parse(&body.token).map_err(|_| AppError::InvalidVerificationToken)?;
    let correlation_id = request.correlation_id.clone();
    let welcome = move |user: &User| {
        let task = EmailTask::Welcome { to: user.email.to_string(), dedupe_key: format!("welcome#{}", user.id) };
        DomainEvent::email_requested(task, &correlation_id, now)
    };
    match verifications.verify(token.user_id(), &token.hash(), now, &welcome).await? {
        VerifyOutcome::Verified(event) => {
            tracing::info!(user_id = %token.user_id(), "email verified");
            publisher.publish_after_commit(&event).await;
        }
        VerifyOutcome::AlreadyVerified => {
            tracing::info!(user_id = %token.user_id(), "email verified before: answered as a success");
        }
        VerifyOutcome::Refused => {
            tracing::info!("verification refused: unknown, used, superseded or expired token");
            return Err(AppError::InvalidVerificationToken);
        }
    }
    Ok(ApiResponse::ok(serde_json::json!({"status": "verified"})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResendRequest {
    email: String,
}

/// Sends a fresh verification link to `email` if it has an unverified
/// account; answers `202` alike for every address. Counted against
/// [`EMAILS_PER_ADDRESS`] whatever the address (past it: `429` with
/// `Retry-After`, for addresses with or without an account alike).
pub async fn resend(
    request: ApiRequest,
    registration: &Registration<impl UserStore, impl Verifications, impl Throttle>,
    publisher: &impl Publisher,
    now: OffsetDateTime,
) -> Result<ApiResponse, AppError> {
    let body: ResendRequest = request.json()?;
    let email = Email::parse(&body.email)?;
    let address = short_hash(email.as_ref());
    let (counted, existing) =
        tokio::join!(registration.emails_per_address.hit(&address), registration.users.find_by_email(&email),);
    let (counted, existing) = (counted?, existing?);
    if !counted.allowed {
        return Err(ApiError::TooManyRequests { retry_after_seconds: counted.reset_seconds }.into());
    }
    if let Some(user) = existing.filter(|user| !user.email_verified) {
        let (pending, event) = registration.links.issue(&user, &request.correlation_id, now);
        registration.verifications.renew(&pending, &event, None).await?;
        tracing::info!(user_id = %user.id, "verification link sent again");
        publisher.publish_after_commit(&event).await;
    }
    Ok(ApiResponse::with_status(
        StatusCode::ACCEPTED,
        serde_json::json!({
            "status": "accepted",
            "message": "If this address has an account waiting for verification, a new link is on its way.",
        }),
    ))
}

/// Whether `user_id` may place orders: its account exists and its email is
/// verified. Read strongly consistent, so a verification counts at once.
///
/// # Errors
/// `403 email_unverified` for an unverified account, `401` when the token's
/// account is gone, and the store's errors.
pub async fn require_verified(users: &impl UserStore, user_id: UserId) -> Result<(), AppError> {
    match users.get(user_id).await? {
        Some(user) if user.email_verified => Ok(()),
        Some(_) => Err(AppError::EmailUnverified),
        None => Err(ApiError::InvalidToken.into()),
    }
}

/// The operator's door, for tools with the table's credentials (tests, the
/// load, the smoke journey; never an API route): marks `email`'s account
/// verified as a followed link would, without the welcome email. Returns
/// the account as stored afterwards.
///
/// # Errors
/// `404` when the address has no account, and the store's errors.
pub async fn mark_verified(users: &impl UserStore, email: &Email) -> Result<User, AppError> {
    for _ in 0..3 {
        let user = users.find_by_email(email).await?.ok_or(ApiError::NotFound)?;
        let verified = user.verified(OffsetDateTime::now_utc());
        if verified == user {
            return Ok(user);
        }
        match users.update(&verified, None).await {
            Ok(()) => return Ok(verified),
            Err(StoreError::VersionMismatch) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Err(ApiError::PreconditionFailed.into())
}
