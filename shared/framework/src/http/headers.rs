//! Headers every response carries: security headers, and CORS from an allow-list.

use http::{HeaderMap, HeaderValue, Method};

/// Sent on every response, errors included. `cache-control: no-store` is
/// the default: a route's caching policy replaces it on its successful GETs
/// (see `caching.rs`), and only there.
pub const SECURITY_HEADERS: [(&str, &str); 6] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("strict-transport-security", "max-age=31536000; includeSubDomains"),
    ("content-security-policy", "default-src 'self'; frame-ancestors 'none'"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
];

/// The release that answers (the workspace's version), in every response's
/// `x-api-version` and in /health's body.
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The commit the pipeline built (`GITHUB_SHA` at build time), or "unknown"
/// for a build outside the pipeline.
pub const BUILD_COMMIT: &str = match option_env!("GITHUB_SHA") {
    Some(commit) => commit,
    None => "unknown",
};

/// Sets every [`SECURITY_HEADERS`] entry, replacing any value a handler set.
pub fn add_security_headers(headers: &mut HeaderMap) {
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

/// CORS from an allow-list: an allowed origin is echoed back; any other
/// origin gets no CORS headers at all, so browsers refuse it.
#[derive(Debug, Clone, Default)]
pub struct Cors {
    allowed_origins: Vec<String>,
}

/// The methods a preflight grants to an allowed origin. Preflights are
/// answered from these constants only: in the cloud by API Gateway's mock
/// integration (template.yaml; the stack check holds it to these values),
/// locally by the API front through the same [`Cors`].
pub const ALLOWED_METHODS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
/// The request headers a preflight lets a browser send.
pub const ALLOWED_HEADERS: &str =
    "authorization, content-type, idempotency-key, if-match, if-none-match, x-correlation-id";
/// The response headers a browser script may read, on allowed origins.
pub const EXPOSED_HEADERS: &str = "etag, location, retry-after, x-request-id, x-correlation-id, idempotent-replayed, x-api-version, content-disposition";
/// How long, in seconds, a browser may cache a preflight's answer.
pub const PREFLIGHT_MAX_AGE: &str = "600";

impl Cors {
    /// Allows exactly these origins, compared as exact strings (scheme, host
    /// and port, no trailing slash); empty allows none.
    pub fn new(allowed_origins: Vec<String>) -> Self {
        Self { allowed_origins }
    }

    fn allowed<'a>(&self, request: &'a HeaderMap) -> Option<&'a HeaderValue> {
        let origin = request.get(http::header::ORIGIN)?;
        let text = origin.to_str().ok()?;
        self.allowed_origins.iter().any(|allowed| allowed == text).then_some(origin)
    }

    /// Is this a real CORS preflight (OPTIONS with `Access-Control-Request-Method`)?
    /// Only a real one gets the preflight grants.
    pub fn is_preflight(method: &Method, request: &HeaderMap) -> bool {
        method == Method::OPTIONS && request.contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)
    }

    /// Adds `Vary: Origin` always, and the allow-origin and expose headers
    /// when the request's origin is allowed.
    pub fn add_response_headers(&self, request: &HeaderMap, response: &mut HeaderMap) {
        response.insert(http::header::VARY, HeaderValue::from_static("Origin"));
        let Some(origin) = self.allowed(request) else { return };
        response.insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        response.insert(http::header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSED_HEADERS));
    }

    /// The response headers, plus the methods, headers and max age a
    /// preflight grants; an origin not allowed is granted nothing.
    pub fn add_preflight_headers(&self, request: &HeaderMap, response: &mut HeaderMap) {
        self.add_response_headers(request, response);
        if self.allowed(request).is_none() || !Self::is_preflight(&Method::OPTIONS, request) {
            return;
        }
        response.insert(http::header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOWED_METHODS));
        response.insert(http::header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOWED_HEADERS));
        response.insert(http::header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(PREFLIGHT_MAX_AGE));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_from(origin: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::ORIGIN, origin.parse().unwrap());
        headers
    }

    #[test]
    fn echoes_only_allowed_origins() {
        let cors = Cors::new(vec!["https://shop.example".into()]);
        let mut response = HeaderMap::new();
        cors.add_response_headers(&request_from("https://shop.example"), &mut response);
        assert_eq!(response[http::header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://shop.example");

        let mut response = HeaderMap::new();
        cors.add_preflight_headers(&request_from("https://evil.example"), &mut response);
        assert!(!response.contains_key(http::header::ACCESS_CONTROL_ALLOW_ORIGIN));
        assert!(!response.contains_key(http::header::ACCESS_CONTROL_ALLOW_METHODS));
    }
}
