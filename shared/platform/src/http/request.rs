use std::collections::HashMap;

use http::{HeaderMap, Method};
use serde::de::DeserializeOwned;

use super::ApiError;
use crate::auth::Principal;

/// A request as handlers see it: already size-checked and authenticated.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub method: Method,
    pub path_params: HashMap<String, String>,
    pub query: HashMap<String, String>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub principal: Option<Principal>,
    pub request_id: String,
    pub correlation_id: String,
}

impl ApiRequest {
    /// A bare request, for tests and tools.
    pub fn new(method: Method) -> Self {
        Self {
            method,
            path_params: HashMap::new(),
            query: HashMap::new(),
            headers: HeaderMap::new(),
            body: Vec::new(),
            principal: None,
            request_id: "local".into(),
            correlation_id: "local".into(),
        }
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
                Category::Data => ApiError::Validation(domain::ValidationError::field("body", error.to_string())),
                Category::Syntax | Category::Eof | Category::Io => {
                    ApiError::bad_request("malformed_json", format!("request body is not valid JSON: {error}"))
                }
            }
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    pub fn path_param(&self, name: &str) -> Result<&str, ApiError> {
        self.path_params
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("route has no path parameter {name}")))
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    /// The caller; `Unauthenticated` on a guest request.
    pub fn principal(&self) -> Result<&Principal, ApiError> {
        self.principal.as_ref().ok_or(ApiError::Unauthenticated)
    }

    /// The version an update is conditional on, from `If-Match: "<version>"`.
    /// Missing is 428 (an unconditional update could silently overwrite
    /// someone else's change); unparseable is 412, as it matches nothing.
    pub fn if_match_version(&self) -> Result<u64, ApiError> {
        let raw = self.header("if-match").ok_or(ApiError::PreconditionRequired)?;
        let tag = raw.trim().trim_start_matches("W/").trim_matches('"');
        tag.parse().map_err(|_| ApiError::PreconditionFailed)
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
        assert_eq!(status(with_body("application/json", r#"{}"#)), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            status(with_body("application/json", r#"{"email":"a","admin":true}"#)),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert!(with_body("application/json; charset=utf-8", r#"{"email":"a"}"#).json::<Login>().is_ok());
    }

    #[test]
    fn if_match_accepts_strong_and_weak_etags() {
        let mut request = ApiRequest::new(Method::PATCH);
        assert_eq!(request.if_match_version().unwrap_err().status(), StatusCode::PRECONDITION_REQUIRED);
        request.headers.insert("if-match", "\"3\"".parse().unwrap());
        assert_eq!(request.if_match_version().unwrap(), 3);
        request.headers.insert("if-match", "W/\"4\"".parse().unwrap());
        assert_eq!(request.if_match_version().unwrap(), 4);
        request.headers.insert("if-match", "*".parse().unwrap());
        assert_eq!(request.if_match_version().unwrap_err().status(), StatusCode::PRECONDITION_FAILED);
    }
}
