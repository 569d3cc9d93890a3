//! `ApiRequest`, the request as handlers see it (size-checked,
//! authenticated), and `If-Match` preconditions.

use std::collections::HashMap;

use http::{HeaderMap, Method};
use serde::de::DeserializeOwned;

use super::commit::Commit;
use super::{ApiError, ApiResponse};
use crate::auth::Principal;

/// A request as handlers see it: already size-checked and authenticated.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    /// The URL the caller reached the API at, up to the stage
    /// (`https://<api>.execute-api.<region>.amazonaws.com/v1`), where the
    /// request tells it; the routes' paths follow it.
    pub base_url: Option<String>,
    /// The HTTP method.
    pub method: Method,
    /// The route's `{name}` segments, as API Gateway matched them.
    pub path_params: HashMap<String, String>,
    /// Query parameters; of a repeated one, only the first value.
    pub query: HashMap<String, String>,
    /// The request headers, untouched.
    pub headers: HeaderMap,
    /// The raw body, at most `MAX_BODY_BYTES` long.
    pub body: Vec<u8>,
    /// The verified caller; `None` on a guest request without a token.
    /// Where the route needs it, the role is the stored account's, not the token's.
    pub principal: Option<Principal>,
    /// The caller's address (see `ClientIp`), for limits keyed by client.
    pub client_ip: String,
    /// Lambda's id for this invocation, echoed as `x-request-id` and in error bodies.
    pub request_id: String,
    /// The client's `x-correlation-id` when it is plain and short, the request
    /// id otherwise; carried into logs and the events this request causes.
    pub correlation_id: String,
    /// The request's committing write, shared with the layer (see [`Commit`]).
    pub(crate) commit: Commit,
}

/// An `If-Match` precondition (RFC 9110, 13.1.1): `*`, or a list of entity
/// tags. Our tags are versions; a tag that is not one of ours matches nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: any current representation, so the resource must exist.
    Any,
    /// The versions the client last read; the resource must still be at one of them.
    Versions(Vec<u64>),
}

impl IfMatch {
    /// Reads the header's value; never fails, since tags that are not our
    /// versions are dropped (and so match nothing).
    pub fn parse(raw: &str) -> Self {
        if raw.trim() == "*" {
            return Self::Any;
        }
        // Weak tags are compared as strong ones: a compressing proxy may weaken ours.
        let versions = raw
            .split(',')
            .filter_map(|tag| tag.trim().trim_start_matches("W/").trim_matches('"').parse().ok())
            .collect();
        Self::Versions(versions)
    }

    /// Does the resource, now at `current_version`, meet the precondition?
    pub fn matches(&self, current_version: u64) -> bool {
        match self {
            Self::Any => true,
            Self::Versions(versions) => versions.contains(&current_version),
        }
    }
}

impl ApiRequest {
    /// A bare request, for tests and tools.
    pub fn new(method: Method) -> Self {
        Self {
            base_url: None,
            method,
            path_params: HashMap::new(),
            query: HashMap::new(),
            headers: HeaderMap::new(),
            body: Vec::new(),
            principal: None,
            client_ip: "unknown".into(),
            request_id: "local".into(),
            correlation_id: "local".into(),
            commit: Commit::default(),
        }
    }

    /// Runs the request's committing `write`: once sent, the request's
    /// deadline no longer cuts it short, and once it has succeeded,
    /// `response` is the answer even if the work after it does not finish.
    pub async fn commit<T, E>(
        &self,
        response: &ApiResponse,
        write: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        self.commit.run(response, write).await
    }

    /// Parses the body as strict JSON: the media type must be JSON, syntax
    /// errors are 400, and well-formed JSON of the wrong shape (unknown or
    /// missing fields, wrong types) is 422. Never a 500.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let content_type = self.header("content-type").unwrap_or_default();
        let media_type = content_type.split(';').next().unwrap_or_default().trim();
        if !media_type.eq_ignore_ascii_case("application/json") {
            return Err(ApiError::UnsupportedMediaType);
        }
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request("malformed_json", "request body is empty"));
        }
        serde_json::from_slice(&self.body).map_err(|error| {
            use serde_json::error::Category;
            match error.classify() {
                Category::Data => ApiError::invalid_field("body", error.to_string()),
                Category::Syntax | Category::Eof | Category::Io => {
                    ApiError::bad_request("malformed_json", format!("request body is not valid JSON: {error}"))
                }
            }
        })
    }

    /// The header's value; `None` when it is absent or not visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The path parameter `name`; a 500 if the route has none, since that is
    /// a wiring bug, not a bad request.
    pub fn path_param(&self, name: &str) -> Result<&str, ApiError> {
        self.path_params
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("route has no path parameter {name}")))
    }

    /// The query parameter `name`, if the client sent it.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    /// The caller; `Unauthenticated` on a guest request.
    pub fn principal(&self) -> Result<&Principal, ApiError> {
        self.principal.as_ref().ok_or(ApiError::Unauthenticated)
    }

    /// The precondition an update must meet. Missing is 428: an
    /// unconditional update could silently overwrite someone else's change.
    pub fn if_match(&self) -> Result<IfMatch, ApiError> {
        self.optional_if_match().ok_or(ApiError::PreconditionRequired)
    }

    /// The precondition, where one is optional (deletes and cancellations).
    /// A value that is not ASCII holds none of our tags: it matches nothing
    /// (412), never counts as absent (which would make the change unconditional).
    pub fn optional_if_match(&self) -> Option<IfMatch> {
        let value = self.headers.get("if-match")?;
        Some(value.to_str().map_or(IfMatch::Versions(Vec::new()), IfMatch::parse))
    }

    /// The same request, made by `principal` (the account as it is now).
    pub fn with_principal(mut self, principal: Principal) -> Self {
        self.principal = Some(principal);
        self
    }
}

#[cfg(test)]
mod tests {
    use http::StatusCode;

    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Login {
        email: String,
    }

    fn with_body(content_type: &str, body: &str) -> ApiRequest {
        let mut request = ApiRequest::new(Method::POST);
        request.headers.insert("content-type", content_type.parse().unwrap());
        request.body = body.as_bytes().to_vec();
        request
    }

    #[test]
    fn strict_json_maps_each_failure_to_its_status() {
        let status = |request: ApiRequest| request.json::<Login>().unwrap_err().status();
        assert_eq!(status(with_body("text/plain", r#"{"email":"a"}"#)), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(status(with_body("application/json", "")), StatusCode::BAD_REQUEST);
        assert_eq!(status(with_body("application/json", "{\"email\":")), StatusCode::BAD_REQUEST);
        assert_eq!(status(with_body("application/json", "not json")), StatusCode::BAD_REQUEST);
        assert_eq!(status(with_body("application/json", r#"{"email":1}"#)), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(status(with_body("application/json", r"{}")), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            status(with_body("application/json", r#"{"email":"a","admin":true}"#)),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert!(with_body("application/json; charset=utf-8", r#"{"email":"a"}"#).json::<Login>().is_ok());
    }

    /// Regression (found by contract fuzzing): an If-Match of bytes beyond
    /// ASCII read as no If-Match, so a delete went ahead unconditionally.
    #[test]
    fn an_if_match_beyond_ascii_matches_nothing_rather_than_vanishing() {
        let mut request = ApiRequest::new(Method::DELETE);
        request.headers.insert("if-match", http::HeaderValue::from_bytes(b"\"1\xe9\"").unwrap());
        let precondition = request.optional_if_match().expect("present");
        assert!(!precondition.matches(1));
        assert!(request.if_match().is_ok_and(|precondition| !precondition.matches(1)), "412, not 428");
    }

    #[test]
    fn if_match_follows_rfc_9110() {
        let mut request = ApiRequest::new(Method::PATCH);
        assert_eq!(request.if_match().unwrap_err().status(), StatusCode::PRECONDITION_REQUIRED);
        assert_eq!(request.optional_if_match(), None);
        for (header, version, matches) in [
            ("\"3\"", 3, true),
            ("\"3\"", 4, false),
            ("W/\"4\"", 4, true),
            ("*", 17, true),
            (" * ", 1, true),
            ("\"1\", \"2\"", 2, true),
            ("\"x\"", 1, false),
            ("", 1, false),
        ] {
            request.headers.insert("if-match", header.parse().unwrap());
            assert_eq!(request.if_match().unwrap().matches(version), matches, "{header:?} vs {version}");
        }
    }
}
