//! `ApiError`: every way a request can fail, with its status, error code,
//! headers and JSON envelope. It knows HTTP's problems, not an
//! application's: an application names its own refusals as
//! [`ApiError::Problem`] (or [`ApiError::Validation`] for refused fields),
//! mapped once from its own error type.

use std::fmt;

use http::StatusCode;
use serde_json::{Value, json};

/// One refused input field, with a message safe to show to a client.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldProblem {
    /// The request field as the client spelled it (`lines[2].quantity`, or a
    /// header's name).
    pub field: String,
    /// Why it was refused, phrased for the client.
    pub message: String,
}

/// Input refused field by field: the 422 `validation_failed` whose details
/// name every offending field.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InvalidFields(Vec<FieldProblem>);

impl InvalidFields {
    /// Refuses the single field `field` with `message`.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self(vec![FieldProblem { field: field.into(), message: message.into() }])
    }

    /// The refused fields, in the order they were found.
    pub fn fields(&self) -> &[FieldProblem] {
        &self.0
    }
}

impl FromIterator<FieldProblem> for InvalidFields {
    fn from_iter<I: IntoIterator<Item = FieldProblem>>(fields: I) -> Self {
        Self(fields.into_iter().collect())
    }
}

impl fmt::Display for InvalidFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let messages: Vec<String> = self.0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
        write!(f, "invalid input ({})", messages.join("; "))
    }
}

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
    /// 422: well-formed input that is refused, field by field.
    #[error("{0}")]
    Validation(InvalidFields),
    /// 401: the route needs a token and none was sent.
    #[error("authentication required")]
    Unauthenticated,
    /// 401: a token was sent but does not verify (or has expired).
    #[error("token is invalid or expired")]
    InvalidToken,
    /// 403: the caller is known but their account is disabled.
    #[error("this account is disabled")]
    AccountDisabled,
    /// 403: the caller is known but may not do this.
    #[error("you are not allowed to do this")]
    Forbidden,
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
    /// Any other refusal an application names (a failed login, a cap
    /// reached): its status, code, message and details, answered as they are.
    #[error("{message}")]
    Problem {
        /// The HTTP status, a 4xx.
        status: StatusCode,
        /// The error code clients branch on.
        code: &'static str,
        /// What is wrong, safe to show.
        message: String,
        /// The envelope's `details` entries.
        details: Vec<Value>,
    },
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

    /// A refusal the application names: `status` (a 4xx) with `code`, a
    /// message safe to show and no details.
    pub fn problem(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self::Problem { status, code, message: message.into(), details: Vec::new() }
    }

    /// A 422 refusing the single field `field` with `message`.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(InvalidFields::field(field, message))
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
            Self::Unauthenticated | Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::AccountDisabled | Self::MfaEnrolmentRequired => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::Problem { status, .. } => *status,
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
            Self::BadRequest { code, .. } | Self::Conflict { code, .. } | Self::Problem { code, .. } => code,
            Self::Validation(_) => "validation_failed",
            Self::Unauthenticated => "unauthenticated",
            Self::InvalidToken => "invalid_token",
            Self::AccountDisabled => "account_disabled",
            Self::Forbidden => "forbidden",
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
            Self::Problem { details, .. } => json!(details),
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

/// A port that could not answer: 503 with `Retry-After` when its store is
/// only unavailable, 500 otherwise.
impl From<crate::lookup::LookupError> for ApiError {
    fn from(error: crate::lookup::LookupError) -> Self {
        match error {
            crate::lookup::LookupError::Unavailable(source) => Self::Unavailable(anyhow::Error::from_boxed(source)),
            crate::lookup::LookupError::Failed(source) => Self::Internal(anyhow::Error::from_boxed(source)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_carries_code_message_details_and_request_id() {
        let error = ApiError::invalid_field("email", "must contain '@'");
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
    fn problems_answer_with_their_own_status_code_and_details() {
        let capped = ApiError::Problem {
            status: StatusCode::CONFLICT,
            code: "open_order_limit",
            message: "at most 10 orders may be open".to_owned(),
            details: vec![json!({"field": "lines", "limit": 10})],
        };
        assert_eq!((capped.status(), capped.code()), (StatusCode::CONFLICT, "open_order_limit"));
        let body = capped.envelope("r");
        assert_eq!(body["error"]["details"][0]["limit"], 10);
        assert_eq!(body["error"]["message"], "at most 10 orders may be open");
        let refused = ApiError::problem(StatusCode::UNAUTHORIZED, "invalid_credentials", "no");
        assert_eq!((refused.status(), refused.code()), (StatusCode::UNAUTHORIZED, "invalid_credentials"));
        assert!(refused.headers().is_empty(), "a refused login is no bearer challenge");
        assert_eq!(refused.envelope("r")["error"]["details"], json!([]));
    }
}
