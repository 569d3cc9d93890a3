//! `AppError`: every way a shop request fails, mapped once (in
//! `From<AppError> for ApiError`) to the framework's HTTP problems. The
//! framework knows HTTP (not found, a stale `If-Match`, a throttle); the
//! shop's own refusals (its validation, its stores' conflicts and caps, a
//! failed login or second factor) get their status and code here and
//! nowhere else.

use domain::ports::{StoreError, Taken};
use domain::{HoldLimitExceeded, ValidationError};
use framework::http::{ApiError, FieldProblem};
use http::StatusCode;
use serde_json::json;

/// What a handler answers when it refuses; `?` turns the domain's errors
/// and the framework's [`ApiError`] into one.
/// Its message is the one the client is shown (a 5xx shows only a fixed one).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A problem the framework names as it is (404, 412, 429, 503...).
    #[error(transparent)]
    Http(ApiError),
    /// 422 `validation_failed`: input the domain refuses, field by field.
    #[error(transparent)]
    Invalid(ValidationError),
    /// What a store reported: a taken email or key, a stale version, a cap,
    /// the last admin, an outage.
    #[error(transparent)]
    Store(StoreError),
    /// 401 `invalid_credentials`: a login failed; never says whether the
    /// email or the password was wrong.
    #[error("email or password is incorrect")]
    InvalidCredentials,
    /// 403 `password_incorrect`: a request that asks for the account's
    /// current password again (re-authentication before deleting it) got
    /// another one.
    #[error("the password is incorrect")]
    PasswordIncorrect,
    /// 403 `email_unverified`: the caller's address is not verified yet,
    /// which this route requires (placing orders).
    #[error("verify your email address first: follow the link we emailed you, or ask for a new one")]
    EmailUnverified,
    /// 401 `mfa_required`: the password was right, but the account has a
    /// confirmed second factor and the login sent no code.
    #[error("this account needs a code from its authenticator app (totp_code) or a recovery code")]
    MfaRequired,
    /// 401 `invalid_mfa_code`: the second factor sent with a right password
    /// is wrong, used already or not this account's.
    #[error("the authenticator or recovery code is incorrect or was used already")]
    InvalidMfaCode,
}

impl From<ApiError> for AppError {
    fn from(error: ApiError) -> Self {
        Self::Http(error)
    }
}

impl From<ValidationError> for AppError {
    fn from(error: ValidationError) -> Self {
        Self::Invalid(error)
    }
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        let message = error.to_string();
        let problem = |status, code| ApiError::problem(status, code, message);
        match error {
            AppError::Http(error) => error,
            AppError::Invalid(invalid) => ApiError::Validation(
                invalid
                    .fields()
                    .iter()
                    .map(|refused| FieldProblem { field: refused.field.clone(), message: refused.message.clone() })
                    .collect(),
            ),
            AppError::Store(error) => store_error(error),
            AppError::InvalidCredentials => problem(StatusCode::UNAUTHORIZED, "invalid_credentials"),
            AppError::PasswordIncorrect => problem(StatusCode::FORBIDDEN, "password_incorrect"),
            AppError::EmailUnverified => problem(StatusCode::FORBIDDEN, "email_unverified"),
            AppError::MfaRequired => problem(StatusCode::UNAUTHORIZED, "mfa_required"),
            AppError::InvalidMfaCode => problem(StatusCode::UNAUTHORIZED, "invalid_mfa_code"),
        }
    }
}

/// A store's refusal as the client sees it.
fn store_error(error: StoreError) -> ApiError {
    match error {
        StoreError::AlreadyExists(Taken::IdempotencyKey) => framework::idempotency::key_in_use(),
        StoreError::AlreadyExists(what) => ApiError::conflict("already_exists", format!("{what} already exists")),
        StoreError::VersionMismatch => ApiError::PreconditionFailed,
        StoreError::LastAdmin => ApiError::conflict(
            "last_active_admin",
            "the change would leave the shop without an active admin: your own account is no longer one",
        ),
        StoreError::LimitReached(exceeded) => limit_reached(&exceeded),
        StoreError::NotFound => ApiError::NotFound,
        StoreError::InvalidPosition => ApiError::bad_request("invalid_cursor", "cursor is invalid"),
        StoreError::Unavailable(source) => ApiError::Unavailable(anyhow::Error::from_boxed(source)),
        StoreError::Failed(source) => ApiError::Internal(anyhow::Error::from_boxed(source)),
    }
}

/// 409: a new order would take the account beyond a cap on what it may hold
/// at once (`open_order_limit`, `product_hold_limit`); the cap is in the details.
fn limit_reached(exceeded: &HoldLimitExceeded) -> ApiError {
    ApiError::Problem {
        status: StatusCode::CONFLICT,
        code: exceeded.code(),
        message: exceeded.to_string(),
        details: vec![json!({"field": exceeded.field(), "message": exceeded.to_string(), "limit": exceeded.limit()})],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(error: impl Into<AppError>) -> ApiError {
        ApiError::from(error.into())
    }

    #[test]
    fn validation_is_a_422_naming_every_field() {
        let mut refused = ValidationError::field("email", "must contain '@'");
        refused.collect::<()>(Err(ValidationError::field("password", "is too short")));
        let error = answer(refused);
        let body = error.envelope("req-1");
        assert_eq!((error.status(), error.code()), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"));
        assert_eq!(body["error"]["details"][1]["field"], "password");
        assert_eq!(body["error"]["message"], "invalid input (email: must contain '@'; password: is too short)");
    }

    #[test]
    fn store_errors_map_to_client_meaningful_statuses() {
        assert_eq!(answer(StoreError::AlreadyExists(Taken::Email)).status(), StatusCode::CONFLICT);
        let key = answer(StoreError::AlreadyExists(Taken::IdempotencyKey));
        assert_eq!((key.status(), key.code()), (StatusCode::CONFLICT, framework::idempotency::KEY_IN_USE));
        assert_eq!(answer(StoreError::VersionMismatch).status(), StatusCode::PRECONDITION_FAILED);
        let capped = answer(StoreError::LimitReached(HoldLimitExceeded::OpenOrders { limit: 10 }));
        assert_eq!((capped.status(), capped.code()), (StatusCode::CONFLICT, "open_order_limit"));
        assert_eq!(capped.envelope("r")["error"]["details"][0]["limit"], 10);
        assert_eq!(answer(StoreError::InvalidPosition).status(), StatusCode::BAD_REQUEST);
        let outage = answer(StoreError::Unavailable("throttled".into()));
        assert_eq!((outage.status(), outage.headers().len()), (StatusCode::SERVICE_UNAVAILABLE, 1));
    }

    #[test]
    fn the_shops_refusals_keep_their_codes() {
        let codes = [
            (AppError::InvalidCredentials, StatusCode::UNAUTHORIZED, "invalid_credentials"),
            (AppError::PasswordIncorrect, StatusCode::FORBIDDEN, "password_incorrect"),
            (AppError::EmailUnverified, StatusCode::FORBIDDEN, "email_unverified"),
            (AppError::MfaRequired, StatusCode::UNAUTHORIZED, "mfa_required"),
            (AppError::InvalidMfaCode, StatusCode::UNAUTHORIZED, "invalid_mfa_code"),
        ];
        for (error, status, code) in codes {
            let error = ApiError::from(error);
            assert_eq!((error.status(), error.code()), (status, code));
            assert!(error.headers().is_empty(), "{code} is no bearer challenge");
        }
        assert!(matches!(answer(ApiError::NotFound), ApiError::NotFound), "the framework's own pass through");
    }
}
