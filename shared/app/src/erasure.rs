//! DELETE /users/me (a customer erases their own account) and the sweep that
//! finishes erasures the request could not.
//!
//! The request re-authenticates with the current password (a stolen access
//! token alone erases nothing), then one atomic write erases the account
//! and everything stored under it (see `domain::erasure`); the orders are
//! then taken off the account in pages, in the request while its budget
//! lasts, and by [`sweep`] for what is left. Every step is conditional on
//! what it changes, so a repeat, a concurrent duplicate or a crash between
//! steps finishes the job instead of doing it twice.

use std::time::Duration;

use crate::caller::Caller as _;
use crate::error::AppError;
use adapters::throttle::Limit;
use domain::ports::{AccountErasure, StoreError, Throttle, UserStore};
use domain::{ErasureError, Password, UserId};
use framework::http::{ApiError, ApiRequest, ApiResponse};
use serde::Deserialize;

use crate::auth::PasswordCheck;

/// Password checks per account on this route: a stolen access token gets
/// five guesses at the password per quarter hour, never an erasure.
pub const ERASE_ATTEMPTS: Limit = Limit { name: "ERASE", attempts: 5, window: Duration::from_secs(15 * 60) };

/// Orders taken off an erased account per step (one index page; the
/// updates of a step run concurrently).
pub const ORDERS_PER_STEP: usize = 100;

/// Steps the request itself takes before leaving the rest to the sweep:
/// up to 500 orders, well within the request's budget; an account with
/// more is erased at once and its older orders within a sweep or two.
pub const STEPS_IN_REQUEST: usize = 5;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reauthentication {
    password: String,
}

/// DELETE /users/me: erases the caller's account, given its current
/// password. `204` once the account is gone (also when a concurrent
/// duplicate erased it first); `403 password_incorrect`; `409 admin_account`
/// (another admin first makes it a customer account), `409 orders_open`;
/// `429` past [`ERASE_ATTEMPTS`]. A retry with the same, still valid token
/// after the erasure (its first answer was lost) is `204` as well: the
/// function admits a token whose account is gone
/// ([`framework::http::Access::UserOrErased`]) and this answers `204` only
/// when the erasure record names the account; a token of an id that never
/// was an account is `401`, as everywhere. After the `204` the email claim is gone
/// (the address can register again, and signing in with it fails as for
/// any unknown address), and any token of the account is refused by every
/// write and admin read (the account is read on those); the orders keep
/// everything but their owner.
pub async fn delete_me(
    request: ApiRequest,
    users: &impl UserStore,
    erasures: &impl AccountErasure,
    hasher: &impl PasswordCheck,
    attempts: &impl Throttle,
) -> Result<ApiResponse, AppError> {
    let id = request.principal()?.user_id();
    let body: Reauthentication = request.json()?;
    let password = Password::parse_attempt(body.password)?;
    // Counted before the password is checked, so parallel guesses cannot outrun it.
    let decision = attempts.hit(&id.to_string()).await?;
    if !decision.allowed {
        tracing::warn!(user_id = %id, "account deletion refused: too many password attempts");
        return Err(ApiError::TooManyRequests { retry_after_seconds: decision.reset_seconds }.into());
    }
    for _ in 0..3 {
        let Some(user) = users.get(id).await? else {
            hasher.verify_nothing(&password);
            // Erased already (a retry after a lost answer, or a duplicate of a request that won): done.
            if erasures.erased(id).await? {
                tracing::info!(user_id = %id, "account deletion repeated: erased already");
                return Ok(ApiResponse::no_content());
            }
            tracing::info!("token refused: no such account");
            return Err(ApiError::InvalidToken.into());
        };
        if !hasher.verify(&password, &user.password_hash) {
            tracing::info!(user_id = %id, "account deletion refused: wrong password");
            return Err(AppError::PasswordIncorrect);
        }
        let response = ApiResponse::no_content();
        match request.commit(&response, erasures.erase(&user)).await {
            Ok(()) => {
                tracing::info!(user_id = %id, "account erased");
                finish(erasures, id, STEPS_IN_REQUEST).await;
                return Ok(response);
            }
            Err(ErasureError::Refused(refused)) => {
                return Err(AppError::ErasureRefused(refused));
            }
            Err(ErasureError::Store(StoreError::NotFound)) => return Ok(response),
            // Changed since it was read (an admin's edit): read it again.
            Err(ErasureError::Store(StoreError::VersionMismatch)) => {}
            Err(ErasureError::Store(error)) => return Err(error.into()),
        }
    }
    Err(ApiError::Unavailable(anyhow::anyhow!("the account kept changing during its erasure")).into())
}

/// Takes up to `steps` pages of the erased account's orders off it; whether
/// it finished. A failure is only logged: the erasure stays recorded as
/// unfinished and [`sweep`] completes it.
async fn finish(erasures: &impl AccountErasure, id: UserId, steps: usize) -> bool {
    for _ in 0..steps {
        match erasures.finish(id, ORDERS_PER_STEP).await {
            Ok(true) => return true,
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(user_id = %id, error = framework::telemetry::chain(&error), "erasure left for the sweep");
                return false;
            }
        }
    }
    tracing::info!(user_id = %id, "erasure has more orders; the sweep finishes it");
    false
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Swept {
    /// Erasures found unfinished.
    pub unfinished: usize,
    /// Of those, finished by this sweep.
    pub finished: usize,
}

/// Unfinished erasures one sweep reads.
pub const SWEEP_BATCH: usize = 25;

/// The scheduled sweep: finishes unfinished erasures (up to
/// [`SWEEP_BATCH`]: their remaining orders taken off them, whatever else
/// is left under them removed), one page of orders at a time, starting no
/// page once `budget` is spent (what is left waits for the next run).
/// Idempotent: an erasure that its request or another sweep finishes at
/// the same time is simply finished.
pub async fn sweep(erasures: &impl AccountErasure, budget: Duration) -> Result<Swept, StoreError> {
    let started = tokio::time::Instant::now();
    let unfinished = erasures.unfinished(SWEEP_BATCH).await?;
    let mut swept = Swept { unfinished: unfinished.len(), finished: 0 };
    for id in unfinished {
        while started.elapsed() < budget {
            if erasures.finish(id, ORDERS_PER_STEP).await? {
                swept.finished += 1;
                break;
            }
        }
    }
    tracing::info!(unfinished = swept.unfinished, finished = swept.finished, "erasure sweep");
    Ok(swept)
}
