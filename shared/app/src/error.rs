//! `AppError`: every way a shop request fails, mapped once (in
//! `From<AppError> for ApiError`) to the framework's HTTP problems. The
//! framework knows HTTP (not found, a stale `If-Match`, a throttle); the
//! shop's own refusals (its validation, its stores' conflicts and caps, a
//! failed login or second factor, a taken email or SKU, a refused status
//! change or erasure, a spent emailed link) get their status and code here
//! and nowhere else: handlers name them by variant.

use domain::ports::{StoreError, Taken};
use domain::user::PatchRefused;
use domain::{ErasureRefused, HoldLimitExceeded, IllegalTransition, ValidationError};
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
    /// 409 `email_taken`: another account has this email (an account the
    /// operator creates; a registration never says so).
    #[error("an account with this email already exists")]
    EmailTaken,
    /// 409 `sku_taken`: another product has this SKU.
    #[error("another product already has this SKU")]
    SkuTaken,
    /// 409 `stock_needs_version`: an edit not pinned to a version read
    /// (`If-Match: *`) would set the stock, which orders move meanwhile; the
    /// message tells the stock now.
    #[error("the stock is {stock} now and orders move it: to set it, send If-Match with the version you read")]
    StockNeedsVersion {
        /// The product's stock when the edit was refused.
        stock: u32,
    },
    /// 409 `self_lockout`: an admin's patch of their own account that the
    /// domain refuses.
    #[error(transparent)]
    PatchRefused(PatchRefused),
    /// 409 `illegal_transition`: an order status change the status machine
    /// refuses.
    #[error(transparent)]
    IllegalTransition(IllegalTransition),
    /// 409 `mfa_already_enrolled`: the account's second factor is confirmed
    /// already.
    #[error("this account's second factor is already confirmed")]
    MfaAlreadyEnrolled,
    /// 409 `mfa_not_pending`: a confirmation with no enrolment begun.
    #[error("no enrolment is pending: begin one with POST /api/v1/users/me/mfa/totp")]
    MfaNotPending,
    /// 409 `account_changed`: the account changed between the reset link's
    /// check and its use.
    #[error("the account changed meanwhile: try the link again")]
    AccountChanged,
    /// 409 `admin_account` or `orders_open`: an erasure the owner asked for
    /// that a rule refuses.
    #[error(transparent)]
    ErasureRefused(ErasureRefused),
    /// 400 `invalid_reset_token`: a password reset token that is wrong, used,
    /// replaced, expired or older than the account's password.
    #[error("this reset link is invalid, used or expired: ask for a new one")]
    InvalidResetToken,
    /// 400 `invalid_verification_token`: a verification token that is
    /// malformed, unknown, used, replaced or expired.
    #[error("this verification link is invalid, used or expired; ask for a new one")]
    InvalidVerificationToken,
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
        let (status, code) = match error {
            AppError::Http(error) => return error,
            AppError::Invalid(invalid) => {
                return ApiError::Validation(
                    invalid
                        .fields()
                        .iter()
                        .map(|refused| FieldProblem { field: refused.field.clone(), message: refused.message.clone() })
                        .collect(),
                );
            }
            AppError::Store(error) => return store_error(error),
            AppError::InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_credentials"),
            AppError::PasswordIncorrect => (StatusCode::FORBIDDEN, "password_incorrect"),
            AppError::EmailUnverified => (StatusCode::FORBIDDEN, "email_unverified"),
            AppError::MfaRequired => (StatusCode::UNAUTHORIZED, "mfa_required"),
            AppError::InvalidMfaCode => (StatusCode::UNAUTHORIZED, "invalid_mfa_code"),
            AppError::EmailTaken => (StatusCode::CONFLICT, "email_taken"),
            AppError::SkuTaken => (StatusCode::CONFLICT, "sku_taken"),
            AppError::StockNeedsVersion { .. } => (StatusCode::CONFLICT, "stock_needs_version"),
            AppError::PatchRefused(PatchRefused::SelfLockout) => (StatusCode::CONFLICT, "self_lockout"),
            AppError::IllegalTransition(_) => (StatusCode::CONFLICT, "illegal_transition"),
            AppError::MfaAlreadyEnrolled => (StatusCode::CONFLICT, "mfa_already_enrolled"),
            AppError::MfaNotPending => (StatusCode::CONFLICT, "mfa_not_pending"),
            AppError::AccountChanged => (StatusCode::CONFLICT, "account_changed"),
            AppError::ErasureRefused(ErasureRefused::Admin) => (StatusCode::CONFLICT, "admin_account"),
            AppError::ErasureRefused(ErasureRefused::OpenOrders) => (StatusCode::CONFLICT, "orders_open"),
            AppError::InvalidResetToken => (StatusCode::BAD_REQUEST, "invalid_reset_token"),
            AppError::InvalidVerificationToken => (StatusCode::BAD_REQUEST, "invalid_verification_token"),
        };
        // The framework's own 400 and 409 for those statuses, a named problem
        // otherwise: the envelope is the same (no details) either way.
        match status {
            StatusCode::BAD_REQUEST => ApiError::bad_request(code, message),
            StatusCode::CONFLICT => ApiError::conflict(code, message),
            _ => ApiError::problem(status, code, message),
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

    /// Each refusal a handler names by variant, with the status, code and
    /// message docs/openapi.yaml and the black-box tests expect, byte for byte.
    #[test]
    fn the_named_refusals_keep_their_answers() {
        let illegal = IllegalTransition { from: domain::OrderStatus::Shipped, to: domain::OrderStatus::Cancelled };
        let answers = [
            (AppError::EmailTaken, StatusCode::CONFLICT, "email_taken", "an account with this email already exists"),
            (AppError::SkuTaken, StatusCode::CONFLICT, "sku_taken", "another product already has this SKU"),
            (
                AppError::StockNeedsVersion { stock: 7 },
                StatusCode::CONFLICT,
                "stock_needs_version",
                "the stock is 7 now and orders move it: to set it, send If-Match with the version you read",
            ),
            (
                AppError::PatchRefused(PatchRefused::SelfLockout),
                StatusCode::CONFLICT,
                "self_lockout",
                "administrators cannot demote or disable their own account",
            ),
            (
                AppError::IllegalTransition(illegal),
                StatusCode::CONFLICT,
                "illegal_transition",
                "an order that is shipped cannot become cancelled",
            ),
            (
                AppError::MfaAlreadyEnrolled,
                StatusCode::CONFLICT,
                "mfa_already_enrolled",
                "this account's second factor is already confirmed",
            ),
            (
                AppError::MfaNotPending,
                StatusCode::CONFLICT,
                "mfa_not_pending",
                "no enrolment is pending: begin one with POST /api/v1/users/me/mfa/totp",
            ),
            (
                AppError::AccountChanged,
                StatusCode::CONFLICT,
                "account_changed",
                "the account changed meanwhile: try the link again",
            ),
            (
                AppError::ErasureRefused(ErasureRefused::Admin),
                StatusCode::CONFLICT,
                "admin_account",
                "an administrator's account cannot be deleted; another administrator must first make it a customer account",
            ),
            (
                AppError::ErasureRefused(ErasureRefused::OpenOrders),
                StatusCode::CONFLICT,
                "orders_open",
                "the account has open orders; cancel them or wait until they are shipped, then delete the account",
            ),
            (
                AppError::InvalidResetToken,
                StatusCode::BAD_REQUEST,
                "invalid_reset_token",
                "this reset link is invalid, used or expired: ask for a new one",
            ),
            (
                AppError::InvalidVerificationToken,
                StatusCode::BAD_REQUEST,
                "invalid_verification_token",
                "this verification link is invalid, used or expired; ask for a new one",
            ),
        ];
        for (error, status, code, message) in answers {
            let error = ApiError::from(error);
            let body = error.envelope("r");
            assert_eq!((error.status(), error.code()), (status, code));
            assert_eq!(body["error"]["message"], message, "{code}");
            assert_eq!(body["error"]["details"], json!([]), "{code}");
            assert!(error.headers().is_empty(), "{code}");
        }
    }
}
