//! The admins' second factor (TOTP, RFC 6238): POST /users/me/mfa/totp
//! begins an enrolment and shows its secret once, as an `otpauth://` URI;
//! POST /users/me/mfa/totp/confirm confirms it with a code and shows ten
//! one-time recovery codes once. Once confirmed, login asks for a code (or a
//! recovery code) after the password ([`at_sign_in`]).
//!
//! Every code is counted per account before it is checked ([`CODE_ATTEMPTS`],
//! [`CODE_ATTEMPTS_PER_DAY`]), so the million 6-digit codes cannot be tried
//! at any useful rate; an accepted code's time step is recorded with a
//! condition (a later step only), so a code cannot be replayed within its
//! window; a recovery code is removed with a condition, so it works once.

use std::time::Duration;

use crate::caller::Caller as _;
use crate::error::AppError;
use adapters::throttle::Limit;
use domain::ports::{EnrolmentStart, SecondFactorStore, SessionStore, Throttle, UserStore};
use domain::totp::{RECOVERY_CODES, RecoveryCode, TotpCode, TotpEnrolment, TotpSecret};
use domain::{Email, Role, User, UserId, ValidationError};
use framework::http::{ApiError, ApiRequest, ApiResponse};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

/// Second-factor attempts per account (codes and recovery codes, at sign-in
/// and confirmation): only someone who has the password gets this far, and
/// with one step either side accepted a guess hits 3 codes in a million.
pub const CODE_ATTEMPTS: Limit = Limit { name: "MFA", attempts: 5, window: Duration::from_secs(15 * 60) };
/// Second-factor attempts per account per UTC day: 20 guesses a day find a
/// code with odds of about 1 in 16,000 a day. A success resets both limits,
/// so only someone who has the password and keeps guessing wrong can use
/// them up (and the owner still has the password reset to end that).
pub const CODE_ATTEMPTS_PER_DAY: Limit =
    Limit { name: "MFA-DAY", attempts: 20, window: Duration::from_secs(24 * 60 * 60) };

/// What the second factor's routes and login need: the store and the
/// per-account attempt limits.
pub struct SecondFactors<S, T> {
    /// The enrolments and recovery codes.
    pub store: S,
    /// Counts [`CODE_ATTEMPTS`].
    pub attempts: T,
    /// Counts [`CODE_ATTEMPTS_PER_DAY`].
    pub daily_attempts: T,
}

impl SecondFactors<adapters::dynamo::DynamoSecondFactorStore, adapters::throttle::FixedWindow> {
    /// The table's second factors and attempt limits, as the functions wire them.
    pub fn on_table(init: &adapters::Init) -> Self {
        Self {
            store: init.second_factors(),
            attempts: init.throttle(CODE_ATTEMPTS),
            daily_attempts: init.throttle(CODE_ATTEMPTS_PER_DAY),
        }
    }
}

/// The second factor a login sent beside the password, parsed.
#[derive(Debug)]
pub enum Proof {
    /// Neither `totp_code` nor `recovery_code`.
    Absent,
    /// A code of the authenticator app.
    Totp(TotpCode),
    /// One of the recovery codes.
    Recovery(RecoveryCode),
}

impl Proof {
    /// The login body's `totp_code` and `recovery_code`: at most one, each
    /// well-formed.
    pub fn parse(totp_code: Option<&str>, recovery_code: Option<&str>) -> Result<Self, ValidationError> {
        match (totp_code, recovery_code) {
            (None, None) => Ok(Self::Absent),
            (Some(code), None) => Ok(Self::Totp(TotpCode::parse(code, "totp_code")?)),
            (None, Some(code)) => Ok(Self::Recovery(RecoveryCode::parse(code, "recovery_code")?)),
            (Some(_), Some(_)) => {
                Err(ValidationError::field("recovery_code", "send totp_code or recovery_code, not both"))
            }
        }
    }
}

/// The second-factor step of a sign-in, after the password was right and
/// the account may sign in: whether a second factor was checked (the
/// token's `mfa` claim). An admin with a confirmed enrolment needs `proof`:
/// none is 401 `mfa_required`, a wrong, replayed or used one 401
/// `invalid_mfa_code`, too many tries 429. Everyone else passes without one.
pub async fn at_sign_in(
    user: &User,
    proof: Proof,
    factors: &SecondFactors<impl SecondFactorStore, impl Throttle>,
    now: OffsetDateTime,
) -> Result<bool, AppError> {
    if user.role != Role::Admin {
        return Ok(false);
    }
    let Some(enrolment) = factors.store.enrolment(user.id).await?.filter(TotpEnrolment::is_confirmed) else {
        return Ok(false);
    };
    let accepted = match proof {
        Proof::Absent => {
            tracing::info!(user_id = %user.id, "login needs the second factor");
            return Err(AppError::MfaRequired);
        }
        Proof::Totp(code) => {
            count_attempt(user, factors).await?;
            match enrolment.secret.matching_step(&code, now) {
                Some(step) => factors.store.use_step(user.id, step).await?,
                None => false,
            }
        }
        Proof::Recovery(code) => {
            count_attempt(user, factors).await?;
            let used = factors.store.use_recovery_code(user.id, &code.hash(user.id)).await?;
            if used {
                tracing::warn!(user_id = %user.id, "an admin signed in with a recovery code");
            }
            used
        }
    };
    if !accepted {
        tracing::info!(user_id = %user.id, "login refused: wrong, replayed or used second factor");
        framework::metrics::count(framework::metrics::names::LOGINS_FAILED, 1.0);
        return Err(AppError::InvalidMfaCode);
    }
    forgive_attempts(user, factors).await;
    Ok(true)
}

/// POST /users/me/mfa/totp: begins (or begins again) the caller's
/// enrolment and shows its secret, once, as an `otpauth://` URI. Admins
/// only; 409 `mfa_already_enrolled` once an enrolment is confirmed.
pub async fn enrol(
    request: ApiRequest,
    users: &impl UserStore,
    factors: &impl SecondFactorStore,
) -> Result<ApiResponse, AppError> {
    enrol_at(request, users, factors, OffsetDateTime::now_utc()).await
}

/// [`enrol`] at `now`.
pub async fn enrol_at(
    request: ApiRequest,
    users: &impl UserStore,
    factors: &impl SecondFactorStore,
    now: OffsetDateTime,
) -> Result<ApiResponse, AppError> {
    let user = admin(&request, users).await?;
    let enrolment = TotpEnrolment::begin(user.id, TotpSecret::from_random(rand::random()), now);
    match factors.begin(&enrolment).await? {
        EnrolmentStart::Begun => {}
        EnrolmentStart::AlreadyConfirmed => return Err(AppError::MfaAlreadyEnrolled),
    }
    tracing::info!(user_id = %user.id, "TOTP enrolment begun");
    Ok(ApiResponse::created(
        json!({
            "status": "pending",
            "otpauth_uri": enrolment.secret.otpauth_uri(&user.email),
        }),
        "/api/v1/users/me/mfa/totp",
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Confirmation {
    code: String,
}

/// POST /users/me/mfa/totp/confirm `{"code"}`: confirms the pending
/// enrolment with a current code and shows the recovery codes, once; from
/// then on the admin's sign-ins need a code. A wrong code is 422; no
/// pending enrolment (none, confirmed, or replaced meanwhile) is 409
/// `mfa_not_pending`.
pub async fn confirm(
    request: ApiRequest,
    users: &impl UserStore,
    factors: &SecondFactors<impl SecondFactorStore, impl Throttle>,
) -> Result<ApiResponse, AppError> {
    confirm_at(request, users, factors, OffsetDateTime::now_utc()).await
}

/// [`confirm`] at `now` (a code is checked against the step `now` falls in).
pub async fn confirm_at(
    request: ApiRequest,
    users: &impl UserStore,
    factors: &SecondFactors<impl SecondFactorStore, impl Throttle>,
    now: OffsetDateTime,
) -> Result<ApiResponse, AppError> {
    // One round trip: the account (its role) beside the enrolment.
    let (user, enrolment) =
        tokio::join!(admin(&request, users), factors.store.enrolment(request.principal()?.user_id()));
    let (user, enrolment) = (user?, enrolment?);
    let confirmation: Confirmation = request.json()?;
    let code = TotpCode::parse(&confirmation.code, "code")?;
    let pending = match enrolment {
        Some(enrolment) if !enrolment.is_confirmed() => enrolment,
        Some(_) => return Err(AppError::MfaAlreadyEnrolled),
        None => return Err(AppError::MfaNotPending),
    };
    count_attempt(&user, factors).await?;
    let Some(step) = pending.secret.matching_step(&code, now) else {
        return Err(ValidationError::field("code", "is not the current code of the enrolment's secret").into());
    };
    let codes: Vec<RecoveryCode> = (0..RECOVERY_CODES).map(|_| RecoveryCode::from_random(rand::random())).collect();
    let hashes: Vec<_> = codes.iter().map(|code| code.hash(user.id)).collect();
    if !factors.store.confirm(&pending, step, &hashes).await? {
        return Err(AppError::MfaNotPending);
    }
    forgive_attempts(&user, factors).await;
    tracing::info!(user_id = %user.id, "TOTP enrolment confirmed");
    Ok(ApiResponse::ok(json!({
        "status": "confirmed",
        "recovery_codes": codes.iter().map(RecoveryCode::expose).collect::<Vec<_>>(),
    })))
}

/// The caller's account, if it is an admin's (the second factor is theirs).
async fn admin(request: &ApiRequest, users: &impl UserStore) -> Result<User, AppError> {
    let principal = request.principal()?;
    let user = users.get(principal.user_id()).await?.ok_or(ApiError::InvalidToken)?;
    if user.role != Role::Admin {
        return Err(ApiError::Forbidden.into());
    }
    Ok(user)
}

/// Counts one second-factor attempt of `user` against both limits; 429
/// over either, before anything is checked.
async fn count_attempt(
    user: &User,
    factors: &SecondFactors<impl SecondFactorStore, impl Throttle>,
) -> Result<(), AppError> {
    let key = user.id.to_string();
    let (short, daily) = tokio::join!(factors.attempts.hit(&key), factors.daily_attempts.hit(&key));
    let (short, daily) = (short?, daily?);
    for decision in [short, daily] {
        if !decision.allowed {
            tracing::warn!(user_id = %user.id, "second factor refused: too many attempts");
            framework::metrics::count(framework::metrics::names::LOGINS_FAILED, 1.0);
            return Err(ApiError::TooManyRequests { retry_after_seconds: decision.reset_seconds }.into());
        }
    }
    Ok(())
}

/// A right code: the account's earlier misses are forgiven (best effort).
async fn forgive_attempts(user: &User, factors: &SecondFactors<impl SecondFactorStore, impl Throttle>) {
    let key = user.id.to_string();
    let (short, daily) = tokio::join!(factors.attempts.reset(&key), factors.daily_attempts.reset(&key));
    if let Err(error) = short.and(daily) {
        tracing::warn!(error = framework::telemetry::chain(&error), "could not reset the second-factor counters");
    }
}

/// What an operator's reset of a second factor did ([`reset`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecondFactorReset {
    /// The account whose second factor was reset.
    pub user_id: UserId,
    /// Whether there was an enrolment (pending or confirmed) or recovery codes to remove.
    pub factor_removed: bool,
    /// How many of the account's sessions were ended.
    pub sessions_ended: usize,
}

/// The operator's door for an admin who lost both the authenticator and
/// the recovery codes (`cargo xtask admin reset-second-factor`, never an API
/// route): removes the account's TOTP enrolment and recovery codes, then
/// ends every session of it (also one begun with the old factor a moment
/// ago), so the password alone signs in again and the admin enrols anew.
/// The operator verifies the person before running it (docs/operations.md).
/// Idempotent: a second run removes and ends nothing.
///
/// # Errors
/// `404` when the address has no account, and the stores' errors.
pub async fn reset(
    users: &impl UserStore,
    factors: &impl SecondFactorStore,
    sessions: &impl SessionStore,
    email: &Email,
) -> Result<SecondFactorReset, AppError> {
    let user = users.find_by_email(email).await?.ok_or(ApiError::NotFound)?;
    let factor_removed = factors.remove(user.id).await?;
    let sessions_ended = sessions.end_all(user.id, None).await?;
    tracing::warn!(user_id = %user.id, factor_removed, sessions_ended, "second factor reset by an operator");
    Ok(SecondFactorReset { user_id: user.id, factor_removed, sessions_ended })
}
