//! `ApiError`: every way a request can fail, with its status, error code,
//! headers and JSON envelope.

use domain::ValidationError;
use domain::ports::StoreError;
use http::StatusCode;
use serde_json::{Value, json};

/// Every way a request can fail, each mapped to one status code here and
/// nowhere else. 4xx messages are safe to show; a 5xx shows the client only a
/// fixed message while the cause chain goes to the log.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request itself is unusable (bad JSON, a bad cursor, a bad header).
    #[error("{message}")]
    BadRequest {
        /// The error code clients branch on.
        code: &'static str,
        /// What is wrong, safe to show.
        message: String,
    },
    /// 422: well-formed input that the domain refuses, field by field.
    #[error("{0}")]
    Validation(ValidationError),
    /// 401: the route needs a token and none was sent.
    #[error("authentication required")]
    Unauthenticated,
    /// 401: a token was sent but does not verify (or has expired).
    #[error("token is invalid or expired")]
    InvalidToken,
    /// 401: a login failed; never says whether the email or the password was wrong.
    #[error("email or password is incorrect")]
    InvalidCredentials,
    /// 403: the caller is known but their account is disabled.
    #[error("this account is disabled")]
    AccountDisabled,
    /// 403: a request that asks for the account's current password again
    /// (re-authentication before deleting it) got another one.
    #[error("the password is incorrect")]
    PasswordIncorrect,
    /// 403: the caller is known but may not do this.
    #[error("you are not allowed to do this")]
    Forbidden,
    /// 403: the caller's email address is not verified yet, which this
    /// route requires (placing orders); following the emailed link fixes it.
    #[error("verify your email address first: follow the link we emailed you, or ask for a new one")]
    EmailUnverified,
    /// 401: the password was right, but the account has a confirmed second
    /// factor and the login sent no `totp_code` or `recovery_code`.
    #[error("this account needs a code from its authenticator app (totp_code) or a recovery code")]
    MfaRequired,
    /// 401: the second factor sent with a right password is wrong, used
    /// already (a replayed code) or not this account's.
    #[error("the authenticator or recovery code is incorrect or was used already")]
    InvalidMfaCode,
    /// 403: admin routes need a sign-in with a second factor here; the
    /// admin enrols (POST /users/me/mfa/totp) and signs in with a code.
    #[error("admin routes need a sign-in with a second factor: enrol TOTP and sign in with a code")]
    MfaEnrolmentRequired,
    /// 404: no such resource, or one the caller may not know exists.
    #[error("not found")]
    NotFound,
    /// 409: the request clashes with current state (a taken email or SKU, a
    /// status change that is not allowed).
    #[error("{message}")]
    Conflict {
        /// The error code clients branch on.
        code: &'static str,
        /// What clashed, safe to show.
        message: String,
    },
    /// 409: a new order would take the account beyond a cap on what it may
    /// hold at once (`open_order_limit`, `product_hold_limit`); the cap is in
    /// the details.
    #[error("{0}")]
    LimitReached(domain::HoldLimitExceeded),
    /// 412: the resource changed since the client read it (a stale `If-Match`,
    /// or a concurrent write won); nothing was written.
    #[error("the resource was changed since you read it; fetch it again and retry")]
    PreconditionFailed,
    /// 428: an update came without `If-Match`.
    #[error("this update needs an If-Match header with the resource's ETag")]
    PreconditionRequired,
    /// 413: the body is over the configured limit.
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge {
        /// The largest body accepted, in bytes.
        limit: usize,
    },
    /// 415: a body that is not declared as JSON.
    #[error("request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    /// 429 with `Retry-After`: a throttle refused the attempt.
    #[error("too many requests; retry after {retry_after_seconds} seconds")]
    TooManyRequests {
        /// Seconds until the limit's window ends.
        retry_after_seconds: u64,
    },
    /// 503 with `Retry-After: 1`: a dependency is down, throttling or too
    /// slow for the request's budget; the same request may work later.
    #[error("a dependency is unavailable; retry later")]
    Unavailable(#[source] anyhow::Error),
    /// 500: a bug or a misconfiguration; retrying will not help.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// A 400 with `code` and a message safe to show.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest { code, message: message.into() }
    }

    /// A 409 with `code` and a message safe to show.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict { code, message: message.into() }
    }

    /// A 500 whose cause is logged, never shown.
    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        Self::Internal(error.into())
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthenticated
            | Self::InvalidToken
            | Self::InvalidCredentials
            | Self::MfaRequired
            | Self::InvalidMfaCode => StatusCode::UNAUTHORIZED,
            Self::MfaEnrolmentRequired => StatusCode::FORBIDDEN,
            Self::Forbidden | Self::AccountDisabled | Self::PasswordIncorrect | Self::EmailUnverified => {
                StatusCode::FORBIDDEN
            }
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict { .. } | Self::LimitReached(_) => StatusCode::CONFLICT,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable, machine-readable code for clients to branch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. } | Self::Conflict { code, .. } => code,
            Self::Validation(_) => "validation_failed",
            Self::LimitReached(exceeded) => exceeded.code(),
            Self::Unauthenticated => "unauthenticated",
            Self::InvalidToken => "invalid_token",
            Self::InvalidCredentials => "invalid_credentials",
            Self::AccountDisabled => "account_disabled",
            Self::PasswordIncorrect => "password_incorrect",
            Self::Forbidden => "forbidden",
            Self::EmailUnverified => "email_unverified",
            Self::MfaRequired => "mfa_required",
            Self::InvalidMfaCode => "invalid_mfa_code",
            Self::MfaEnrolmentRequired => "mfa_enrolment_required",
            Self::NotFound => "not_found",
            Self::PreconditionFailed => "precondition_failed",
            Self::PreconditionRequired => "precondition_required",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::TooManyRequests { .. } => "rate_limited",
            Self::Unavailable(_) => "service_unavailable",
            Self::Internal(_) => "internal_error",
        }
    }

    /// Headers this error adds to its response: the challenge on a 401, when
    /// to retry on a 429 or 503.
    pub fn headers(&self) -> Vec<(http::HeaderName, String)> {
        match self {
            Self::Unauthenticated | Self::InvalidToken => vec![(http::header::WWW_AUTHENTICATE, "Bearer".to_owned())],
            Self::TooManyRequests { retry_after_seconds } => {
                vec![(http::header::RETRY_AFTER, retry_after_seconds.to_string())]
            }
            Self::Unavailable(_) => vec![(http::header::RETRY_AFTER, "1".to_owned())],
            _ => Vec::new(),
        }
    }

    /// The `{"error": {...}}` envelope.
    pub fn envelope(&self, request_id: &str) -> Value {
        let details = match self {
            Self::Validation(errors) => json!(errors.fields()),
            Self::LimitReached(exceeded) => {
                json!([{"field": exceeded.field(), "message": exceeded.to_string(), "limit": exceeded.limit()}])
            }
            _ => json!([]),
        };
        json!({
            "error": {
                "code": self.code(),
                "message": self.to_string(),
                "details": details,
                "request_id": request_id,
            }
        })
    }
}

impl From<ValidationError> for ApiError {
    fn from(error: ValidationError) -> Self {
        Self::Validation(error)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::AlreadyExists(domain::ports::Taken::IdempotencyKey) => Self::conflict(
                crate::idempotency::KEY_IN_USE,
                "a request with this Idempotency-Key is in progress; retry",
            ),
            StoreError::AlreadyExists(what) => Self::conflict("already_exists", format!("{what} already exists")),
            StoreError::VersionMismatch => Self::PreconditionFailed,
            StoreError::LastAdmin => Self::conflict(
                "last_active_admin",
                "the change would leave the shop without an active admin: your own account is no longer one",
            ),
            StoreError::LimitReached(exceeded) => Self::LimitReached(exceeded),
            StoreError::NotFound => Self::NotFound,
            StoreError::InvalidPosition => Self::bad_request("invalid_cursor", "cursor is invalid"),
            StoreError::Unavailable(source) => Self::Unavailable(anyhow::Error::from_boxed(source)),
            StoreError::Failed(source) => Self::Internal(anyhow::Error::from_boxed(source)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_carries_code_message_details_and_request_id() {
        let error = ApiError::from(ValidationError::field("email", "must contain '@'"));
        let body = error.envelope("req-1");
        assert_eq!(error.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["error"]["code"], "validation_failed");
        assert_eq!(body["error"]["details"][0]["field"], "email");
        assert_eq!(body["error"]["request_id"], "req-1");
    }

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let error = ApiError::internal(anyhow::anyhow!("table shop-prod: AccessDenied for arn:aws:iam::123"));
        let body = error.envelope("req-2").to_string();
        assert!(!body.contains("AccessDenied"));
        assert!(body.contains("internal error"));
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn errors_carry_their_own_headers() {
        assert_eq!(ApiError::InvalidToken.headers(), [(http::header::WWW_AUTHENTICATE, "Bearer".to_owned())]);
        let limited = ApiError::TooManyRequests { retry_after_seconds: 42 };
        assert_eq!(limited.headers(), [(http::header::RETRY_AFTER, "42".to_owned())]);
        let outage = ApiError::Unavailable(anyhow::anyhow!("down"));
        assert_eq!(outage.headers(), [(http::header::RETRY_AFTER, "1".to_owned())]);
        assert!(ApiError::NotFound.headers().is_empty());
    }

    #[test]
    fn store_errors_map_to_client_meaningful_statuses() {
        assert_eq!(
            ApiError::from(StoreError::AlreadyExists(domain::ports::Taken::Email)).status(),
            StatusCode::CONFLICT
        );
        assert_eq!(ApiError::from(StoreError::VersionMismatch).status(), StatusCode::PRECONDITION_FAILED);
        let capped = ApiError::from(StoreError::LimitReached(domain::HoldLimitExceeded::OpenOrders { limit: 10 }));
        assert_eq!((capped.status(), capped.code()), (StatusCode::CONFLICT, "open_order_limit"));
        assert_eq!(capped.envelope("r")["error"]["details"][0]["limit"], 10);
        assert_eq!(ApiError::from(StoreError::InvalidPosition).status(), StatusCode::BAD_REQUEST);
        let outage = StoreError::Unavailable("throttled".into());
        assert_eq!(ApiError::from(outage).status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
