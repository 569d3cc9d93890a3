//! `HttpServer`: one request through the layer, in the steps it takes:
//! read the request's metadata, answer a preflight or run the handler (after
//! authentication, within the request's time budget), decorate the response
//! (envelope, error headers, CORS, security headers, ids), then write the log
//! line and the metrics.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use tracing::Instrument;

use super::auth::{Authenticator, needs_current_account};
use super::caching::{CachePolicy, Caching};
use super::client_ip::ClientIp;
use super::headers::add_security_headers;
use super::{ApiError, ApiRequest, ApiResponse, Commit, CommitState, Cors};
use crate::Settings;
use crate::auth::{Principal, Role};
use crate::budget::{Budget, lambda_deadline};
use crate::metrics::{self, Unit, names};
use crate::runtime::WarmUps;
use crate::{invocation, redact, telemetry};

/// Who may call a route, with what checks it: every level that reads a
/// token carries the [`Authenticator`] that verifies it, so a route cannot
/// ask for users and forget how to recognise them. Checked here, once,
/// before any handler runs.
pub enum Access {
    /// Anyone; tokens are not read (health, register, login).
    Guest,
    /// Anyone, and a token, when sent, is verified: admins see more (the catalogue).
    GuestWithOptionalToken(Authenticator),
    /// Any signed-in user; handlers still check ownership.
    User(Authenticator),
    /// A signed-in user whose account may be gone already: a write with a
    /// token whose account no longer exists reaches the handler, with the
    /// token's claims, instead of being refused, so that the handler can
    /// tell an erased account from one that never was (a retried DELETE
    /// /users/me). Its handler reads the account itself; otherwise as
    /// [`Access::User`] (a disabled account is refused).
    UserOrErased(Authenticator),
    /// Administrators only.
    Admin(Authenticator),
}

impl Access {
    /// The authenticator this level verifies tokens with, if it reads them.
    fn authenticator(&self) -> Option<&Authenticator> {
        match self {
            Self::Guest => None,
            Self::GuestWithOptionalToken(auth) | Self::User(auth) | Self::UserOrErased(auth) | Self::Admin(auth) => {
                Some(auth)
            }
        }
    }
}

/// Runs one API function: wraps its handler in the shared HTTP behaviour.
pub struct HttpServer {
    name: String,
    access: Access,
    cors: Cors,
    max_body_bytes: usize,
    client_ip: ClientIp,
    budget: Budget,
    caching: Caching,
    /// Admin routes need a token whose sign-in checked a second factor.
    admin_mfa_required: bool,
    /// Init's I/O, finished before the first request.
    warm_ups: Option<Arc<WarmUps>>,
}

/// What the layer knows about a request before any handler runs.
struct RequestMeta {
    request_id: String,
    trace_id: String,
    correlation_id: String,
    client_ip: String,
    cold_start: bool,
    started: Instant,
    /// When the request must be answered, unless its write has been sent.
    deadline: Instant,
    /// When a request whose write was sent must be answered: the function's
    /// own limit, less the margin Lambda needs to deliver the answer.
    commit_deadline: Instant,
    /// The request's committing write, shared with its handler.
    commit: Commit,
}

impl HttpServer {
    /// The layer for the function `name`, whose routes all need `access`,
    /// with CORS, body limit, client-IP rule and budgets from `settings`.
    /// Its GETs' answers are [`CachePolicy::Private`] unless the route
    /// declares otherwise ([`HttpServer::cache`]).
    pub fn new(name: &str, access: Access, settings: &Settings) -> Self {
        let reads_tokens = access.authenticator().is_some();
        Self {
            caching: Caching::new(CachePolicy::Private, reads_tokens),
            name: name.to_owned(),
            access,
            cors: Cors::new(settings.cors_allowed_origins.clone()),
            max_body_bytes: settings.max_body_bytes,
            client_ip: ClientIp::new(settings.client_ip_header.as_deref(), settings.client_ip_trusted_hops),
            budget: settings.budget(),
            admin_mfa_required: settings.admin_mfa_required,
            warm_ups: None,
        }
    }

    /// Waits for `warm_ups` (init's connections and reads, running at once)
    /// before taking the first request.
    pub fn after_warm_ups(mut self, warm_ups: Arc<WarmUps>) -> Self {
        self.warm_ups = Some(warm_ups);
        self
    }

    /// Declares who may keep this route's successful GET answers (see
    /// [`CachePolicy`]); every other answer is `no-store` whatever it says.
    pub fn cache(mut self, policy: CachePolicy) -> Self {
        self.caching = Caching::new(policy, self.access.authenticator().is_some());
        self
    }

    /// Hands the process over to the Lambda runtime.
    pub async fn serve<H, F, E>(self, handler: H) -> Result<(), lambda_http::Error>
    where
        H: Fn(ApiRequest) -> F + Send + Sync + 'static,
        F: Future<Output = Result<ApiResponse, E>> + Send,
        E: Into<ApiError>,
    {
        if let Some(warm_ups) = &self.warm_ups {
            warm_ups.finish().await;
        }
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
    pub async fn handle<H, F, E>(&self, event: Request, handler: &H) -> Response<Body>
    where
        H: Fn(ApiRequest) -> F,
        F: Future<Output = Result<ApiResponse, E>>,
        E: Into<ApiError>,
    {
        let debug_sampled = telemetry::begin_invocation();
        let meta = self.metadata(&event);
        let route = route(&event);
        let span = tracing::info_span!(
            "request",
            function = %self.name,
            request_id = %meta.request_id,
            trace_id = %invocation::trace_id(&meta.trace_id),
            correlation_id = %meta.correlation_id,
            cold_start = meta.cold_start,
            method = %event.method(),
            path = %event.raw_http_path(),
            client_ip = %meta.client_ip,
        );
        let trace = meta.trace_id.clone();
        let work = async {
            if debug_sampled {
                tracing::debug!("this invocation logs at DEBUG (sampled)");
            }
            telemetry::log_event(|| event_summary(&event));
            let request_headers = event.headers().clone();
            let method = event.method().clone();
            let response = if event.method() == Method::OPTIONS {
                // Any OPTIONS is answered as a preflight, and never reaches
                // the handler: only a real preflight gets the CORS grants.
                let mut response = empty_response(StatusCode::NO_CONTENT);
                self.cors.add_preflight_headers(&request_headers, response.headers_mut());
                response
            } else {
                let outcome = self.run(event, &meta, handler).await;
                let mut response = to_response(outcome, &meta.request_id);
                self.cors.add_response_headers(&request_headers, response.headers_mut());
                response
            };
            let response = self.caching.apply(&method, &request_headers, decorate(response, &meta));
            self.observe(&meta, &response);
            self.report_trace(&meta, &route, &response);
            response
        };
        // Boxed: the request's whole state (spans, trace scope, handler) is large.
        let response = invocation::with_trace(trace, Box::pin(work.instrument(span))).await;
        crate::trace::flush();
        response
    }

    /// The request as one span of its trace, with its annotations.
    fn report_trace(&self, meta: &RequestMeta, route: &str, response: &Response<Body>) {
        if !crate::trace::is_on() {
            return;
        }
        let status = response.status().as_u16();
        let took = meta.started.elapsed();
        crate::trace::work(
            &meta.trace_id,
            &crate::trace::Work {
                function: &self.name,
                route,
                outcome: crate::trace::status_class(status),
                fault: status >= 500,
                cold_start: meta.cold_start,
                started: std::time::SystemTime::now() - took,
                took,
            },
        );
    }

    fn metadata(&self, event: &Request) -> RequestMeta {
        let started = Instant::now();
        let context = event.lambda_context_ref();
        let request_id = context.map_or_else(|| "unknown".to_owned(), |c| c.request_id.clone());
        let correlation_id = event
            .headers()
            .get("x-correlation-id")
            .and_then(|value| value.to_str().ok())
            .filter(|id| is_safe_correlation_id(id))
            .map_or_else(|| request_id.clone(), str::to_owned);
        let lambda_deadline = context.and_then(|c| lambda_deadline(c.deadline));
        RequestMeta {
            trace_id: context.and_then(|c| c.xray_trace_id.clone()).unwrap_or_default(),
            correlation_id,
            client_ip: self.client_ip.of(event.headers(), source_ip(event).as_deref()),
            cold_start: invocation::take_cold_start(),
            deadline: self.budget.work_deadline(started, lambda_deadline, self.budget.request()),
            commit_deadline: self.budget.work_deadline(
                started,
                lambda_deadline,
                self.budget.function_timeout().saturating_sub(self.budget.margin()),
            ),
            commit: Commit::default(),
            started,
            request_id,
        }
    }

    /// Authenticates and runs the handler, within the request's deadline: a
    /// dependency that hangs becomes a 503 the client can retry, long
    /// before Lambda's own timeout would cut the connection. A write already
    /// sent is never cut short: the request waits for its outcome (until the
    /// function's own limit), and a committed write is answered as committed
    /// even if the work after it (publishing) is still running.
    async fn run<H, F, E>(&self, event: Request, meta: &RequestMeta, handler: &H) -> Result<ApiResponse, ApiError>
    where
        H: Fn(ApiRequest) -> F,
        F: Future<Output = Result<ApiResponse, E>>,
        E: Into<ApiError>,
    {
        let call = self.authorised_call(event, meta, handler);
        let mut call = std::pin::pin!(call);
        if let Ok(outcome) = tokio::time::timeout_at(meta.deadline.into(), &mut call).await {
            return outcome;
        }
        let over_budget = || {
            ApiError::Unavailable(anyhow::anyhow!(
                "the request did not finish within its {:?} budget",
                self.budget.request()
            ))
        };
        match meta.commit.state() {
            CommitState::NotSent => Err(over_budget()),
            CommitState::Committed(response) => {
                tracing::warn!("the write committed; the work after it was cut short by the request's budget");
                Ok(response)
            }
            CommitState::Sent => {
                tracing::warn!("the request's budget ran out while its write was in flight; waiting for its outcome");
                let outcome = tokio::select! {
                    outcome = &mut call => outcome,
                    response = meta.commit.committed() => Ok(response),
                    () = tokio::time::sleep_until(meta.commit_deadline.into()) => Err(over_budget()),
                };
                outcome
            }
        }
    }

    async fn authorised_call<H, F, E>(
        &self,
        event: Request,
        meta: &RequestMeta,
        handler: &H,
    ) -> Result<ApiResponse, ApiError>
    where
        H: Fn(ApiRequest) -> F,
        F: Future<Output = Result<ApiResponse, E>>,
        E: Into<ApiError>,
    {
        let claimed = self.token_principal(event.headers()).await?;
        let request = self.api_request(event, meta, claimed.clone().map(|principal| self.effective(principal)))?;
        let (Some(claimed), Some(auth)) = (claimed, self.access.authenticator()) else {
            self.check_access(None)?;
            return call(handler, request).await;
        };
        if !needs_current_account(&request.method, &claimed) {
            self.check_access(Some(&claimed))?;
            return call(handler, request).await;
        }
        if request.method.is_safe() {
            // A read has no effect: run it beside the account check and keep
            // its answer only if the account still allows it as it was.
            self.check_access(Some(&claimed))?;
            let (current, outcome) = tokio::join!(auth.current(&claimed), call(handler, request.clone()));
            let current = current?;
            if current == claimed {
                return outcome;
            }
            self.check_access(Some(&current))?;
            return call(handler, request.with_principal(self.effective(current))).await;
        }
        let current = match self.access {
            // Its handler reads the account and answers for a gone one.
            Access::UserOrErased(_) => auth.current_if_exists(&claimed).await?.unwrap_or_else(|| claimed.clone()),
            _ => auth.current(&claimed).await?,
        };
        self.check_access(Some(&current))?;
        call(handler, request.with_principal(self.effective(current))).await
    }

    /// The principal the request's token names, where the route reads tokens.
    async fn token_principal(&self, headers: &HeaderMap) -> Result<Option<Principal>, ApiError> {
        match &self.access {
            Access::Guest => Ok(None),
            Access::GuestWithOptionalToken(_) if !headers.contains_key(http::header::AUTHORIZATION) => Ok(None),
            Access::GuestWithOptionalToken(auth)
            | Access::User(auth)
            | Access::UserOrErased(auth)
            | Access::Admin(auth) => auth.from_token(headers).await.map(Some),
        }
    }

    /// The caller as handlers see it: where the second factor is mandatory,
    /// an admin whose sign-in did not check one has a customer's rights on
    /// the routes open to customers (their own orders, not everyone's), as
    /// [`HttpServer::check_access`] keeps them off admin-only routes.
    fn effective(&self, principal: Principal) -> Principal {
        if self.admin_mfa_required && principal.is_admin() && !principal.mfa {
            return Principal { role: Role::User, ..principal };
        }
        principal
    }

    fn check_access(&self, principal: Option<&Principal>) -> Result<(), ApiError> {
        match (&self.access, principal) {
            (Access::User(_) | Access::UserOrErased(_) | Access::Admin(_), None) => Err(ApiError::Unauthenticated),
            (Access::Admin(_), Some(principal)) if !principal.is_admin() => Err(ApiError::Forbidden),
            (Access::Admin(_), Some(principal)) if self.admin_mfa_required && !principal.mfa => {
                Err(ApiError::MfaEnrolmentRequired)
            }
            (Access::Guest | Access::GuestWithOptionalToken(_), _)
            | (Access::User(_) | Access::UserOrErased(_) | Access::Admin(_), Some(_)) => Ok(()),
        }
    }

    fn api_request(
        &self,
        event: Request,
        meta: &RequestMeta,
        principal: Option<Principal>,
    ) -> Result<ApiRequest, ApiError> {
        let body = match event.body() {
            Body::Text(text) => text.as_bytes().to_vec(),
            Body::Binary(bytes) => bytes.clone(),
            _ => Vec::new(),
        };
        if body.len() > self.max_body_bytes {
            return Err(ApiError::PayloadTooLarge { limit: self.max_body_bytes });
        }
        Ok(ApiRequest {
            base_url: base_url(&event),
            method: event.method().clone(),
            path_params: first_values(event.path_parameters_ref()),
            query: first_values(event.query_string_parameters_ref()),
            headers: event.headers().clone(),
            body,
            principal,
            client_ip: meta.client_ip.clone(),
            request_id: meta.request_id.clone(),
            correlation_id: meta.correlation_id.clone(),
            commit: meta.commit.clone(),
        })
    }

    /// The request's log line and its metrics.
    fn observe(&self, meta: &RequestMeta, response: &Response<Body>) {
        let status = response.status().as_u16();
        let latency_ms = meta.started.elapsed().as_secs_f64() * 1000.0;
        let (aws_calls, aws_ms) = crate::aws::calls::summary();
        tracing::info!(status, latency_ms, aws_calls, aws_ms, function = %self.name, "request completed");
        metrics::count(names::COLD_START, f64::from(u8::from(meta.cold_start)));
        metrics::count(names::REQUESTS, 1.0);
        metrics::count(names::CLIENT_ERRORS, f64::from(u8::from((400..500).contains(&status))));
        metrics::count(names::SERVER_ERRORS, f64::from(u8::from(status >= 500)));
        metrics::add(names::LATENCY, latency_ms, Unit::Milliseconds);
        metrics::flush(&[
            (metrics::REQUEST_ID, &meta.request_id),
            (metrics::CORRELATION_ID, &meta.correlation_id),
            (metrics::TRACE_ID, invocation::trace_id(&meta.trace_id)),
        ]);
    }
}

/// Runs the handler; a panic becomes a 500 for this request, not a crashed
/// runtime that fails every request queued behind it.
async fn call<H, F, E>(handler: &H, request: ApiRequest) -> Result<ApiResponse, ApiError>
where
    H: Fn(ApiRequest) -> F,
    F: Future<Output = Result<ApiResponse, E>>,
    E: Into<ApiError>,
{
    match AssertUnwindSafe(handler(request)).catch_unwind().await {
        Ok(outcome) => outcome.map_err(Into::into),
        Err(_) => Err(ApiError::internal(anyhow::anyhow!("handler panicked"))),
    }
}

/// The handler's answer, or the error's envelope with the error's own headers.
fn to_response(outcome: Result<ApiResponse, ApiError>, request_id: &str) -> Response<Body> {
    match outcome {
        Ok(api) => {
            let mut response = match (&api.body, api.text) {
                (Some(body), _) => json_response(api.status, body),
                (None, Some(text)) => text_response(api.status, text),
                (None, None) => empty_response(api.status),
            };
            for (name, value) in api.headers {
                response.headers_mut().append(name, value);
            }
            response
        }
        Err(error) => {
            match &error {
                ApiError::Internal(cause) | ApiError::Unavailable(cause) => {
                    tracing::error!(
                        error = crate::telemetry::chain(cause.as_ref()),
                        code = error.code(),
                        "request failed"
                    );
                }
                client_error => tracing::info!(code = client_error.code(), "request refused"),
            }
            let mut response = json_response(error.status(), &error.envelope(request_id));
            for (name, value) in error.headers() {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    response.headers_mut().insert(name, value);
                }
            }
            response
        }
    }
}

/// What every response carries: the security headers and the request's ids.
/// A `Content-Security-Policy` the handler set (only the reference's pages
/// set one, see [`ApiResponse::text`]) is kept.
fn decorate(mut response: Response<Body>, meta: &RequestMeta) -> Response<Body> {
    let headers = response.headers_mut();
    let own_policy = headers.remove(http::header::CONTENT_SECURITY_POLICY);
    add_security_headers(headers);
    if let Some(policy) = own_policy {
        headers.insert(http::header::CONTENT_SECURITY_POLICY, policy);
    }
    insert_header(headers, "x-request-id", &meta.request_id);
    insert_header(headers, "x-correlation-id", &meta.correlation_id);
    insert_header(headers, "x-api-version", super::headers::API_VERSION);
    response
}

/// What the event log shows of a request (redacted by `telemetry::log_event`):
/// the body only as [`redact::body`] shows one (fails closed), and each
/// query parameter as a field, so a secret-named one is redacted by name.
fn event_summary(event: &Request) -> serde_json::Value {
    let headers: serde_json::Map<String, serde_json::Value> = event
        .headers()
        .iter()
        .map(|(name, value)| (name.to_string(), String::from_utf8_lossy(value.as_bytes()).into()))
        .collect();
    let content_type =
        event.headers().get(http::header::CONTENT_TYPE).map(|value| String::from_utf8_lossy(value.as_bytes()));
    let body = match event.body() {
        Body::Text(text) => redact::body(text.as_bytes(), content_type.as_deref()),
        Body::Binary(bytes) => redact::body(bytes, content_type.as_deref()),
        _ => serde_json::Value::Null,
    };
    serde_json::json!({
        "method": event.method().as_str(),
        "path": event.raw_http_path(),
        "query": event.query_string_parameters_ref().map(|q| q.iter().map(|(k, v)| serde_json::json!({k: v})).collect::<Vec<_>>()),
        "headers": headers,
        "body": body,
    })
}

/// The URL the caller reached the API at, up to the stage, as API Gateway
/// saw the request: the scheme it was called with (`X-Forwarded-Proto`,
/// plain HTTP when absent, as on the local stack), its `Host`, and what the
/// path as called has before the route's path (the stage on an execute-api
/// URL, nothing behind a custom domain's mapping). `None` when the host is
/// not a plain host name (with an optional port).
fn base_url(event: &Request) -> Option<String> {
    use lambda_http::request::RequestContext;
    let header = |name: &str| event.headers().get(name).and_then(|value| value.to_str().ok());
    let host = header("host")?;
    let plain = |part: &str| part.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b));
    if host.is_empty() || !plain(host) {
        return None;
    }
    let scheme = match header("x-forwarded-proto") {
        Some("https") => "https",
        _ => "http",
    };
    let called = match event.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(context)) => context.path.clone(),
        _ => None,
    };
    let prefix = called
        .as_deref()
        .and_then(|called| called.strip_suffix(event.raw_http_path()))
        .filter(|prefix| plain(&prefix.replace('/', "")) && prefix.len() <= 64)
        .unwrap_or_default();
    Some(format!("{scheme}://{host}{prefix}"))
}

/// The route as API Gateway matched it (`GET /products/{id}`): its
/// template, never the raw path, so ids stay out of trace annotations.
fn route(event: &Request) -> String {
    use lambda_http::request::RequestContext;
    let template = match event.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(context)) => context.resource_path.clone(),
        Some(RequestContext::ApiGatewayV2(context)) => {
            context.route_key.as_deref().and_then(|key| key.split_once(' ')).map(|(_, path)| path.to_owned())
        }
        _ => None,
    };
    format!("{} {}", event.method(), template.as_deref().unwrap_or("?"))
}

/// The caller's address as API Gateway saw it.
fn source_ip(event: &Request) -> Option<String> {
    use lambda_http::request::RequestContext;
    match event.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(context)) => context.identity.source_ip.clone(),
        Some(RequestContext::ApiGatewayV2(context)) => context.http.source_ip.clone(),
        _ => None,
    }
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

fn text_response(status: StatusCode, text: super::TextBody) -> Response<Body> {
    let mut response = Response::new(Body::Text(text.text.into_owned()));
    *response.status_mut() = status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static(text.media_type));
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
    use std::time::Duration;

    use super::*;

    fn settings() -> Settings {
        Settings::from_lookup(|name| match name {
            "TABLE_NAME" => Some("t".into()),
            "MAX_BODY_BYTES" => Some("16".into()),
            "CORS_ALLOWED_ORIGINS" => Some("https://shop.example".into()),
            "FUNCTION_TIMEOUT_SECONDS" => Some("2".into()),
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

    async fn hangs(_: ApiRequest) -> Result<ApiResponse, ApiError> {
        std::future::pending().await
    }

    fn request(method: Method, body: &str) -> Request {
        let mut request = Request::new(Body::Text(body.to_owned()));
        *request.method_mut() = method;
        request
    }

    fn post(body: &str) -> Request {
        request(Method::POST, body)
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

    /// A page that loads its own scripts keeps its own policy; its other
    /// security headers, and every other answer's policy, are the layer's.
    #[tokio::test]
    async fn a_text_answer_keeps_its_media_type_and_its_own_page_policy() {
        let server = HttpServer::new("test", Access::Guest, &settings());
        let page = async |_: ApiRequest| -> Result<_, ApiError> {
            Ok(ApiResponse::text("text/html; charset=utf-8", "<!doctype html>")
                .header(http::header::CONTENT_SECURITY_POLICY, "default-src 'self'; style-src 'unsafe-inline'"))
        };
        let response = server.handle(request(Method::GET, ""), &page).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/html; charset=utf-8");
        assert_eq!(response.headers()["content-security-policy"], "default-src 'self'; style-src 'unsafe-inline'");
        assert_eq!(response.headers()["x-frame-options"], "DENY");
        assert!(matches!(response.body(), Body::Text(text) if text == "<!doctype html>"));
        let response = server.handle(request(Method::GET, ""), &echo).await;
        assert_eq!(response.headers()["content-security-policy"], "default-src 'self'; frame-ancestors 'none'");
    }

    /// The base URL a handler sees is the one the caller used: the stage of
    /// an execute-api URL, nothing behind a custom domain's mapping, plain
    /// HTTP without `X-Forwarded-Proto`, and none for a host that is not one.
    #[tokio::test]
    async fn a_handler_sees_the_url_the_api_was_reached_at() {
        use lambda_http::aws_lambda_events::apigw::ApiGatewayProxyRequestContext;
        use lambda_http::request::RequestContext;
        let server = HttpServer::new("test", Access::Guest, &settings());
        let seen = async |request: ApiRequest| {
            Ok::<_, ApiError>(ApiResponse::ok(serde_json::json!({ "base": request.base_url })))
        };
        let called = |host: &str, proto: Option<&str>, called_path: Option<&str>| {
            let mut event = request(Method::GET, "").with_raw_http_path("/api/v1/docs/openapi.yaml");
            event.headers_mut().insert("host", host.parse().unwrap());
            if let Some(proto) = proto {
                event.headers_mut().insert("x-forwarded-proto", proto.parse().unwrap());
            }
            let mut context = ApiGatewayProxyRequestContext::default();
            context.path = called_path.map(str::to_owned);
            event.with_request_context(RequestContext::ApiGatewayV1(context))
        };
        let base = async |event| body_json(&server.handle(event, &seen).await)["base"].clone();
        let execute_api = "abc.execute-api.eu-west-1.amazonaws.com";
        assert_eq!(
            base(called(execute_api, Some("https"), Some("/v1/api/v1/docs/openapi.yaml"))).await,
            format!("https://{execute_api}/v1")
        );
        assert_eq!(
            base(called("api.shop.example", Some("https"), Some("/api/v1/docs/openapi.yaml"))).await,
            "https://api.shop.example"
        );
        assert_eq!(base(called("127.0.0.1:9000", None, None)).await, "http://127.0.0.1:9000");
        assert_eq!(base(called("evil.example/x?", Some("https"), None)).await, serde_json::Value::Null);
    }

    /// With the second factor mandatory, an admin route refuses an admin
    /// whose token came from a sign-in without one (403
    /// `mfa_enrolment_required`) and serves one whose sign-in checked it;
    /// with the setting off, both are served.
    #[tokio::test]
    async fn admin_routes_need_a_second_factor_where_it_is_mandatory() {
        use crate::auth::{Account, Accounts, PrivateKeySet, SecretCache, Subject, Tokens};
        use crate::lookup::LookupError;

        /// One active admin.
        struct OneAdmin(Subject);

        #[async_trait::async_trait]
        impl Accounts for OneAdmin {
            async fn account(&self, subject: Subject) -> Result<Option<Account>, LookupError> {
                Ok((subject == self.0).then_some(Account { role: Role::Admin, active: true }))
            }
        }

        /// Answers the role the handler was given.
        async fn role(request: ApiRequest) -> Result<ApiResponse, ApiError> {
            Ok(ApiResponse::ok(serde_json::json!({"role": request.principal()?.role.as_str()})))
        }

        let keys = PrivateKeySet::generate(0).unwrap();
        let tokens = Tokens::issuing(
            Arc::new(SecretCache::fixed(keys.clone())),
            Arc::new(SecretCache::fixed(keys.public_keys(None).unwrap())),
            Duration::from_secs(300),
        );
        let admin = Subject::new(ulid::Ulid::new());
        let server = |mandatory: &'static str| {
            let settings = Settings::from_lookup(|name| match name {
                "TABLE_NAME" => Some("t".into()),
                "ADMIN_MFA_REQUIRED" => Some(mandatory.into()),
                _ => None,
            })
            .unwrap();
            HttpServer::new(
                "test",
                Access::Admin(Authenticator::new(tokens.clone(), Arc::new(OneAdmin(admin)))),
                &settings,
            )
        };
        let get = |token: &str| {
            let mut request = request(Method::GET, "");
            request.headers_mut().insert(http::header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
            request
        };
        let password_only = tokens.issue(admin, Role::Admin).await.unwrap().token;
        let with_code = tokens.issue_with_mfa(admin, Role::Admin, true).await.unwrap().token;

        let mandatory = server("true");
        let refused = mandatory.handle(get(&password_only), &echo).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        assert_eq!(body_json(&refused)["error"]["code"], "mfa_enrolment_required");
        assert_eq!(mandatory.handle(get(&with_code), &echo).await.status(), StatusCode::OK);
        let optional = server("false");
        assert_eq!(optional.handle(get(&password_only), &echo).await.status(), StatusCode::OK);

        // On a route open to customers, such an admin is served as one.
        let settings = Settings::from_lookup(|name| match name {
            "TABLE_NAME" => Some("t".into()),
            "ADMIN_MFA_REQUIRED" => Some("true".into()),
            _ => None,
        })
        .unwrap();
        let shared = HttpServer::new(
            "test",
            Access::User(Authenticator::new(tokens.clone(), Arc::new(OneAdmin(admin)))),
            &settings,
        );
        assert_eq!(body_json(&shared.handle(get(&password_only), &role).await)["role"], "user");
        assert_eq!(body_json(&shared.handle(get(&with_code), &role).await)["role"], "admin");
        let mut write = get(&password_only);
        *write.method_mut() = Method::POST;
        assert_eq!(body_json(&shared.handle(write, &role).await)["role"], "user", "writes read the account, same rule");
    }

    #[tokio::test]
    async fn a_panicking_handler_is_a_500_with_the_envelope() {
        let server = HttpServer::new("test", Access::Guest, &settings());
        let response = server.handle(post("{}"), &panics).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body_json(&response)["error"]["message"], "internal error");
    }

    #[tokio::test]
    async fn a_handler_that_hangs_is_a_503_with_retry_after_within_the_budget() {
        let server = HttpServer::new("test", Access::Guest, &settings());
        let started = Instant::now();
        let response = server.handle(post("{}"), &hangs).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["retry-after"], "1");
        assert!(started.elapsed() < Duration::from_millis(1500), "{:?} for a 2 s function", started.elapsed());
    }

    /// A ten-second function: a five-second request budget, nine seconds for a write in flight.
    fn ten_second_server() -> HttpServer {
        let settings = Settings::from_lookup(|name| match name {
            "TABLE_NAME" => Some("t".into()),
            "FUNCTION_TIMEOUT_SECONDS" => Some("10".into()),
            _ => None,
        })
        .unwrap();
        HttpServer::new("test", Access::Guest, &settings)
    }

    /// `elapsed` is `seconds` on the paused clock (plus the real microseconds the test took).
    fn assert_about(elapsed: Duration, seconds: u64) {
        let expected = Duration::from_secs(seconds);
        assert!(
            elapsed >= expected && elapsed < expected + Duration::from_millis(200),
            "{elapsed:?}, not {expected:?}"
        );
    }

    /// A handler whose write takes `commit` and whose work after it takes `after`.
    fn committing(
        commit: Duration,
        after: Duration,
    ) -> impl Fn(ApiRequest) -> std::pin::Pin<Box<dyn Future<Output = Result<ApiResponse, ApiError>>>> {
        move |request: ApiRequest| {
            Box::pin(async move {
                let response = ApiResponse::created(serde_json::json!({"id": "1"}), "/things/1");
                request
                    .commit(&response, async {
                        tokio::time::sleep(commit).await;
                        Ok::<_, ApiError>(())
                    })
                    .await?;
                tokio::time::sleep(after).await;
                Ok(response)
            })
        }
    }

    /// Regression: a transaction that committed after the request's budget
    /// (its answer arriving late) was answered 503, and a client retrying the
    /// 503 wrote twice. The budget stops applying once the write is sent.
    #[tokio::test(start_paused = true)]
    async fn a_write_whose_answer_arrives_after_the_budget_is_answered_as_committed() {
        let server = ten_second_server();
        let response = server.handle(post("{}"), &committing(Duration::from_secs(7), Duration::ZERO)).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }

    // Each case runs on a fresh paused clock: the layer's deadlines are read
    // from the real clock, which the paused one leaves behind after a jump.

    /// Regression: slow work after the commit (the publish the relay would
    /// redo anyway) turned a committed write's 201 into a 503.
    #[tokio::test(start_paused = true)]
    async fn work_after_a_commit_never_turns_its_answer_into_an_error() {
        let started = tokio::time::Instant::now();
        let response =
            ten_second_server().handle(post("{}"), &committing(Duration::ZERO, Duration::from_secs(3600))).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_about(started.elapsed(), 5);
    }

    /// Committed after the budget, then slow again: answered as soon as the commit is known.
    #[tokio::test(start_paused = true)]
    async fn a_late_commit_followed_by_slow_work_is_answered_when_it_commits() {
        let started = tokio::time::Instant::now();
        let slow = committing(Duration::from_secs(6), Duration::from_secs(3600));
        let response = ten_second_server().handle(post("{}"), &slow).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_about(started.elapsed(), 6);
    }

    /// A write whose outcome is still unknown at the function's own limit is
    /// a 503 (the client's retry with its Idempotency-Key then replays or
    /// writes once).
    #[tokio::test(start_paused = true)]
    async fn an_outcome_still_unknown_at_the_functions_limit_is_a_503() {
        let started = tokio::time::Instant::now();
        let response =
            ten_second_server().handle(post("{}"), &committing(Duration::from_secs(60), Duration::ZERO)).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_about(started.elapsed(), 9);
    }

    /// A write never sent stops at the budget, as before.
    #[tokio::test(start_paused = true)]
    async fn a_request_that_sent_no_write_stops_at_the_budget() {
        let started = tokio::time::Instant::now();
        let response = ten_second_server().handle(post("{}"), &hangs).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_about(started.elapsed(), 5);
    }

    #[tokio::test]
    async fn preflight_is_answered_for_allowed_origins_only() {
        let server = HttpServer::new("test", Access::Guest, &settings());
        let preflight = |origin: &str| {
            let mut request = request(Method::OPTIONS, "");
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

    #[tokio::test]
    async fn an_options_request_never_reaches_the_handler() {
        let server = HttpServer::new("test", Access::Guest, &settings());
        let response = server.handle(request(Method::OPTIONS, "{}"), &panics).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert!(!response.headers().contains_key("access-control-allow-methods"), "not a preflight: no CORS grant");
    }

    /// The route's policy reaches the wire: the security headers' `no-store`
    /// is replaced on a successful GET only, and a known tag is a 304.
    #[tokio::test]
    async fn a_public_route_answers_a_known_etag_with_a_304_and_errors_with_no_store() {
        let public = super::super::PublicCache::DEFAULT;
        let server = HttpServer::new("test", Access::Guest, &settings()).cache(CachePolicy::Public(public));
        let first = server.handle(request(Method::GET, ""), &echo).await;
        assert_eq!(first.headers()["cache-control"], "public, max-age=10, stale-while-revalidate=20");
        let tag = first.headers()["etag"].clone();
        let mut again = request(Method::GET, "");
        again.headers_mut().insert("if-none-match", tag.clone());
        let again = server.handle(again, &echo).await;
        assert_eq!((again.status(), &again.headers()["etag"]), (StatusCode::NOT_MODIFIED, &tag));
        assert_eq!(again.headers()["x-content-type-options"], "nosniff");
        assert!(matches!(again.body(), Body::Empty));
        let failed = server.handle(request(Method::GET, ""), &panics).await;
        assert_eq!(failed.headers()["cache-control"], "no-store");
        let written = server.handle(post("{}"), &echo).await;
        assert_eq!(written.headers()["cache-control"], "no-store");
    }

    #[test]
    fn correlation_ids_are_bounded_and_plain() {
        assert!(is_safe_correlation_id("abc-123_x.y:z"));
        assert!(!is_safe_correlation_id(""));
        assert!(!is_safe_correlation_id("a\nb"));
        assert!(!is_safe_correlation_id(&"a".repeat(129)));
    }
}
