use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt;
use http::{HeaderMap, HeaderValue, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use tracing::Instrument;

use super::headers::add_security_headers;
use super::{ApiError, ApiRequest, ApiResponse, Cors};
use crate::Settings;
use crate::auth::{Principal, TokenError, Tokens};
use crate::metrics::{MetricSet, Unit};
use crate::ratelimit::{Decision, FixedWindow};
use crate::telemetry;

/// Who may call a route. Checked here, once, before any handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, with or without a token (health, register, login, catalogue).
    Guest,
    /// Any signed-in user; handlers still check ownership.
    User,
    /// Administrators only.
    Admin,
}

/// Runs one API function: wraps its handler in the shared HTTP behaviour.
pub struct HttpServer {
    name: String,
    access: Access,
    tokens: Option<Tokens>,
    cors: Cors,
    max_body_bytes: usize,
    rate_limit: Option<FixedWindow>,
    client_ip_header: Option<String>,
}

impl HttpServer {
    pub fn new(name: &str, access: Access, settings: &Settings) -> Self {
        Self {
            name: name.to_owned(),
            access,
            tokens: None,
            cors: Cors::new(settings.cors_allowed_origins.clone()),
            max_body_bytes: settings.max_body_bytes,
            rate_limit: None,
            client_ip_header: settings.client_ip_header.clone(),
        }
    }

    /// Counts every request against its client IP's per-minute budget.
    pub fn with_rate_limit(mut self, limiter: FixedWindow) -> Self {
        self.rate_limit = Some(limiter);
        self
    }

    /// Token verification: required by every route that is not `Access::Guest`;
    /// on guest routes a token, when sent, is verified too (admins see more).
    pub fn with_tokens(mut self, tokens: Tokens) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// Hands the process over to the Lambda runtime.
    pub async fn serve<H, F>(self, handler: H) -> Result<(), lambda_http::Error>
    where
        H: Fn(ApiRequest) -> F + Send + Sync + 'static,
        F: Future<Output = Result<ApiResponse, ApiError>> + Send,
    {
        assert!(
            self.access == Access::Guest || self.tokens.is_some(),
            "route {} needs tokens to check access",
            self.name
        );
        let server = Arc::new(self);
        let handler = Arc::new(handler);
        lambda_http::run(lambda_http::service_fn(move |event: Request| {
            let server = server.clone();
            let handler = handler.clone();
            async move { Ok::<_, std::convert::Infallible>(server.handle(event, &*handler).await) }
        }))
        .await
    }

    /// One request through the layer; public so tests can drive it without a runtime.
    pub async fn handle<H, F>(&self, event: Request, handler: &H) -> Response<Body>
    where
        H: Fn(ApiRequest) -> F,
        F: Future<Output = Result<ApiResponse, ApiError>>,
    {
        let started = Instant::now();
        let cold_start = telemetry::take_cold_start();
        let context = event.lambda_context_ref();
        let request_id = context.map(|c| c.request_id.clone()).unwrap_or_else(|| "unknown".into());
        let trace_id = context.and_then(|c| c.xray_trace_id.clone()).unwrap_or_default();
        let correlation_id = event
            .headers()
            .get("x-correlation-id")
            .and_then(|value| value.to_str().ok())
            .filter(|id| is_safe_correlation_id(id))
            .map_or_else(|| request_id.clone(), str::to_owned);
        let client_ip = self.client_ip(&event);
        let span = tracing::info_span!(
            "request",
            function = %self.name,
            request_id = %request_id,
            trace_id = %trace_id,
            correlation_id = %correlation_id,
            cold_start,
            method = %event.method(),
            path = %event.raw_http_path(),
            client_ip = %client_ip,
        );
        async {
            let request_headers = event.headers().clone();
            let preflight = Cors::is_preflight(event.method(), &request_headers);
            let mut response = if preflight {
                let mut response = empty_response(StatusCode::NO_CONTENT);
                self.cors.add_preflight_headers(&request_headers, response.headers_mut());
                response
            } else {
                let limit = self.count_request(&client_ip).await;
                let outcome = match limit {
                    Some(decision) if !decision.allowed => {
                        Err(ApiError::TooManyRequests { retry_after_seconds: decision.reset_seconds })
                    }
                    _ => self.process(event, handler, &request_id, &correlation_id).await,
                };
                let mut response = self.to_response(outcome, &request_id);
                if let Some(decision) = limit {
                    let headers = response.headers_mut();
                    insert_header(headers, "ratelimit-limit", &decision.limit.to_string());
                    insert_header(headers, "ratelimit-remaining", &decision.remaining.to_string());
                    insert_header(headers, "ratelimit-reset", &decision.reset_seconds.to_string());
                }
                self.cors.add_response_headers(&request_headers, response.headers_mut());
                response
            };
            let headers = response.headers_mut();
            add_security_headers(headers);
            insert_header(headers, "x-request-id", &request_id);
            insert_header(headers, "x-correlation-id", &correlation_id);

            let status = response.status().as_u16();
            let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
            tracing::info!(status, latency_ms, "request completed");
            MetricSet::new()
                .dimension("Function", self.name.clone())
                .value("Requests", 1.0, Unit::Count)
                .value("ClientErrors", f64::from(u8::from((400..500).contains(&status))), Unit::Count)
                .value("ServerErrors", f64::from(u8::from(status >= 500)), Unit::Count)
                .value("Latency", latency_ms, Unit::Milliseconds)
                .emit();
            response
        }
        .instrument(span)
        .await
    }

    async fn process<H, F>(
        &self,
        event: Request,
        handler: &H,
        request_id: &str,
        correlation_id: &str,
    ) -> Result<ApiResponse, ApiError>
    where
        H: Fn(ApiRequest) -> F,
        F: Future<Output = Result<ApiResponse, ApiError>>,
    {
        let principal = match self.access {
            Access::Guest if self.tokens.is_some() && event.headers().contains_key(http::header::AUTHORIZATION) => {
                Some(self.authenticate(event.headers()).await?)
            }
            Access::Guest => None,
            Access::User | Access::Admin => Some(self.authenticate(event.headers()).await?),
        };
        if self.access == Access::Admin && !principal.as_ref().is_some_and(Principal::is_admin) {
            return Err(ApiError::Forbidden);
        }
        let body = match event.body() {
            Body::Empty => Vec::new(),
            Body::Text(text) => text.as_bytes().to_vec(),
            Body::Binary(bytes) => bytes.clone(),
            _ => Vec::new(),
        };
        if body.len() > self.max_body_bytes {
            return Err(ApiError::PayloadTooLarge { limit: self.max_body_bytes });
        }
        let request = ApiRequest {
            method: event.method().clone(),
            path_params: first_values(event.path_parameters_ref()),
            query: first_values(event.query_string_parameters_ref()),
            headers: event.headers().clone(),
            body,
            principal,
            request_id: request_id.to_owned(),
            correlation_id: correlation_id.to_owned(),
        };
        // A panic in one request must become a 500 for that request, not a
        // crashed runtime that fails every request queued behind it.
        match AssertUnwindSafe(handler(request)).catch_unwind().await {
            Ok(outcome) => outcome,
            Err(_) => Err(ApiError::internal(anyhow::anyhow!("handler panicked"))),
        }
    }

    /// Counts the request against its client's budget. If the counter itself
    /// is unreachable the request goes through: the limit protects the
    /// service, it must not become the outage (the WAF rule still applies).
    async fn count_request(&self, client_ip: &str) -> Option<Decision> {
        let limiter = self.rate_limit.as_ref()?;
        match limiter.hit(client_ip).await {
            Ok(decision) => Some(decision),
            Err(error) => {
                tracing::warn!(error = format!("{:#}", anyhow::Error::from(error)), "rate limiter unavailable; request allowed");
                None
            }
        }
    }

    async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        let tokens = self.tokens.as_ref().ok_or_else(|| ApiError::internal(anyhow::anyhow!("no token verifier")))?;
        let value = headers.get(http::header::AUTHORIZATION).ok_or(ApiError::Unauthenticated)?;
        let value = value.to_str().map_err(|_| ApiError::InvalidToken)?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or(ApiError::InvalidToken)?
            .trim();
        tokens.verify(token).await.map_err(|error| match error {
            TokenError::KeysUnavailable(source) => ApiError::Unavailable(source),
            refused => {
                tracing::info!(reason = %refused, "token refused");
                ApiError::InvalidToken
            }
        })
    }

    fn to_response(&self, outcome: Result<ApiResponse, ApiError>, request_id: &str) -> Response<Body> {
        match outcome {
            Ok(api) => {
                let mut response = match &api.body {
                    Some(body) => json_response(api.status, body),
                    None => empty_response(api.status),
                };
                for (name, value) in api.headers {
                    response.headers_mut().append(name, value);
                }
                response
            }
            Err(error) => {
                match &error {
                    ApiError::Internal(cause) | ApiError::Unavailable(cause) => {
                        tracing::error!(error = format!("{cause:#}"), code = error.code(), "request failed");
                    }
                    client_error => tracing::info!(code = client_error.code(), "request refused"),
                }
                let mut response = json_response(error.status(), &error.envelope(request_id));
                let headers = response.headers_mut();
                match error {
                    ApiError::Unauthenticated | ApiError::InvalidToken => {
                        insert_header(headers, "www-authenticate", "Bearer");
                    }
                    ApiError::TooManyRequests { retry_after_seconds } => {
                        insert_header(headers, "retry-after", &retry_after_seconds.to_string());
                    }
                    ApiError::Unavailable(_) => insert_header(headers, "retry-after", "1"),
                    _ => {}
                }
                response
            }
        }
    }
}

impl HttpServer {
    /// The caller's address: API Gateway's `sourceIp`, unless a trusted
    /// client-IP header is configured and present (its first address).
    fn client_ip(&self, event: &Request) -> String {
        let forwarded = self.client_ip_header.as_ref().and_then(|name| {
            let value = event.headers().get(name.as_str())?.to_str().ok()?;
            let first = value.split(',').next()?.trim();
            first.parse::<std::net::IpAddr>().ok().map(|ip| ip.to_string())
        });
        forwarded.unwrap_or_else(|| source_ip(event))
    }
}

/// The caller's address as API Gateway saw it.
fn source_ip(event: &Request) -> String {
    use lambda_http::request::RequestContext;
    let ip = match event.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(context)) => context.identity.source_ip.clone(),
        Some(RequestContext::ApiGatewayV2(context)) => context.http.source_ip.clone(),
        _ => None,
    };
    ip.unwrap_or_else(|| "unknown".to_owned())
}

fn first_values(map: Option<&lambda_http::aws_lambda_events::query_map::QueryMap>) -> HashMap<String, String> {
    let mut values = HashMap::new();
    if let Some(map) = map {
        for (key, value) in map.iter() {
            values.entry(key.to_owned()).or_insert_with(|| value.to_owned());
        }
    }
    values
}

fn is_safe_correlation_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn empty_response(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = status;
    response
}

fn insert_header(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings::from_lookup(|name| match name {
            "TABLE_NAME" => Some("t".into()),
            "MAX_BODY_BYTES" => Some("16".into()),
            "CORS_ALLOWED_ORIGINS" => Some("https://shop.example".into()),
            _ => None,
        })
        .unwrap()
    }

    async fn echo(request: ApiRequest) -> Result<ApiResponse, ApiError> {
        Ok(ApiResponse::ok(serde_json::json!({"bytes": request.body.len()})))
    }

    async fn panics(_: ApiRequest) -> Result<ApiResponse, ApiError> {
        panic!("boom")
    }

    fn post(body: &str) -> Request {
        let mut request = Request::new(Body::Text(body.to_owned()));
        *request.method_mut() = http::Method::POST;
        request
    }

    fn body_json(response: &Response<Body>) -> serde_json::Value {
        match response.body() {
            Body::Text(text) => serde_json::from_str(text).unwrap(),
            other => panic!("unexpected body {other:?}"),
        }
    }

    #[tokio::test]
    async fn every_response_carries_security_headers() {
        let server = HttpServer::new("test", Access::Guest, &settings());
        let response = server.handle(post("{}"), &echo).await;
        assert_eq!(response.status(), StatusCode::OK);
        for (name, value) in super::super::headers::SECURITY_HEADERS {
            assert_eq!(response.headers()[name], value, "{name}");
        }
        let response = server.handle(post(&"x".repeat(17)), &echo).await;
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        assert_eq!(body_json(&response)["error"]["code"], "payload_too_large");
    }

    #[tokio::test]
    async fn a_panicking_handler_is_a_500_with_the_envelope() {
        let server = HttpServer::new("test", Access::Guest, &settings());
        let response = server.handle(post("{}"), &panics).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body_json(&response)["error"]["message"], "internal error");
    }

    #[tokio::test]
    async fn preflight_is_answered_for_allowed_origins_only() {
        let server = HttpServer::new("test", Access::Guest, &settings());
        let preflight = |origin: &str| {
            let mut request = Request::new(Body::Empty);
            *request.method_mut() = http::Method::OPTIONS;
            request.headers_mut().insert("origin", origin.parse().unwrap());
            request.headers_mut().insert("access-control-request-method", "POST".parse().unwrap());
            request
        };
        let allowed = server.handle(preflight("https://shop.example"), &echo).await;
        assert_eq!(allowed.status(), StatusCode::NO_CONTENT);
        assert_eq!(allowed.headers()["access-control-allow-origin"], "https://shop.example");
        let refused = server.handle(preflight("https://evil.example"), &echo).await;
        assert!(!refused.headers().contains_key("access-control-allow-origin"));
    }

    #[test]
    fn correlation_ids_are_bounded_and_plain() {
        assert!(is_safe_correlation_id("abc-123_x.y:z"));
        assert!(!is_safe_correlation_id(""));
        assert!(!is_safe_correlation_id("a\nb"));
        assert!(!is_safe_correlation_id(&"a".repeat(129)));
    }
}
