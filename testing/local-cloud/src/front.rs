//! The local API front: what API Gateway and WAF do in front of the functions
//! in the cloud, done locally in front of `cargo lambda watch`.
//!
//! - Routes: only the template's API routes reach a function. An unknown
//!   path is a 404 and a known path with another method a 405, in the API's
//!   error envelope (in the cloud: the API's gateway responses).
//! - CORS preflights are answered here, with the functions' own allow-list
//!   and headers (in the cloud: API Gateway's mock integration).
//! - The per-client rate limit: so many requests per minute per client
//!   address, then 429 with `Retry-After` (in the cloud: the WAF rate rule).
//!   The functions themselves never pay a write per request for it.
//! - The reference's short addresses: `GET /docs` and `GET /openapi.yaml`
//!   redirect to the function that serves it (reference.rs).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use bytes::Bytes;
use framework::http::ClientIp;
use framework::http::headers::{Cors, add_security_headers};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::template::Route;

/// API Gateway's payload limit.
const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// What the front enforces, read from the template by the caller.
#[derive(Debug, Clone)]
pub struct FrontConfig {
    pub routes: Vec<Route>,
    /// Where `cargo lambda watch` serves the functions.
    pub upstream: String,
    pub requests_per_minute: u32,
    pub client_ip_header: Option<String>,
    pub cors_allowed_origins: Vec<String>,
}

/// A running front. Dropping it stops it.
pub struct Front {
    pub address: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Front {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct State {
    config: FrontConfig,
    cors: Cors,
    client_ip: ClientIp,
    http: reqwest::Client,
    /// Requests per (client, minute).
    windows: Mutex<HashMap<(String, u64), u32>>,
}

impl Front {
    /// Serves on `listener` (bind it first, so the port is known and held).
    pub fn start(listener: TcpListener, config: FrontConfig) -> anyhow::Result<Self> {
        let address = listener.local_addr()?;
        let state = Arc::new(State {
            cors: Cors::new(config.cors_allowed_origins.clone()),
            client_ip: ClientIp::new(config.client_ip_header.as_deref(), 1),
            http: reqwest::Client::builder().timeout(Duration::from_secs(300)).build().context("HTTP client")?,
            windows: Mutex::new(HashMap::new()),
            config,
        });
        let task = tokio::spawn(crate::serve::http(listener, move |request, peer| {
            let state = state.clone();
            async move { Ok::<_, Infallible>(state.answer(request, peer).await) }
        }));
        Ok(Self { address, task })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }
}

impl State {
    async fn answer(&self, request: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
        let client = self.client_ip.of(request.headers(), Some(&peer.ip().to_string()));
        if request.method() == Method::GET
            && let Some(mut redirect) = crate::reference::redirect(request.uri().path())
        {
            add_security_headers(redirect.headers_mut());
            return redirect;
        }
        let mut response = match self.route(&request) {
            Err(refusal) => *refusal,
            Ok(()) if request.method() == Method::OPTIONS => self.preflight(request.headers()),
            Ok(()) => match self.count(&client) {
                Err(retry_after) => rate_limited(retry_after),
                Ok(()) => self.forward(request).await,
            },
        };
        // A function's own caching policy and page policy pass through, as
        // API Gateway passes them; the front's own answers get the defaults.
        let kept = [http::header::CACHE_CONTROL, http::header::CONTENT_SECURITY_POLICY]
            .map(|name| response.headers().get(&name).cloned().map(|value| (name, value)));
        add_security_headers(response.headers_mut());
        for (name, value) in kept.into_iter().flatten() {
            response.headers_mut().insert(name, value);
        }
        response
    }

    /// Refuses a request no route of the template serves.
    fn route(&self, request: &Request<Incoming>) -> Result<(), Box<Response<Full<Bytes>>>> {
        let path = request.uri().path();
        // As API Gateway's resource tree: a literal segment beats a {parameter}
        // (`/users/me` is its own resource, not an instance of `/users/{id}`).
        let resource = self
            .config
            .routes
            .iter()
            .filter(|route| path_matches(&route.path, path))
            .map(|route| route.path.as_str())
            .max_by_key(|template| literal_segments(template));
        let methods: Vec<&str> = self
            .config
            .routes
            .iter()
            .filter(|route| Some(route.path.as_str()) == resource)
            .map(|route| route.method.as_str())
            .collect();
        if methods.is_empty() {
            return Err(Box::new(envelope(StatusCode::NOT_FOUND, "not_found", "no such resource")));
        }
        let method = request.method().as_str();
        if method == "OPTIONS" || methods.contains(&method) {
            return Ok(());
        }
        let mut refusal =
            envelope(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this resource does not allow that method");
        let allow = methods.into_iter().filter(|m| *m != "OPTIONS").collect::<Vec<_>>().join(", ");
        if let Ok(allow) = HeaderValue::from_str(&allow) {
            refusal.headers_mut().insert(http::header::ALLOW, allow);
        }
        Err(Box::new(refusal))
    }

    /// Any OPTIONS on a route is answered as a preflight, with no function involved.
    fn preflight(&self, request: &HeaderMap) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::NO_CONTENT;
        self.cors.add_preflight_headers(request, response.headers_mut());
        response
    }

    /// Counts a request against its client's minute; `Err(seconds until the
    /// window resets)` when over the limit.
    fn count(&self, client: &str) -> Result<(), u64> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let minute = now / 60;
        let mut windows = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        windows.retain(|(_, window), _| *window >= minute);
        let count = windows.entry((client.to_owned(), minute)).or_insert(0);
        *count += 1;
        if *count > self.config.requests_per_minute {
            return Err((minute + 1) * 60 - now);
        }
        Ok(())
    }

    async fn forward(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = request.into_parts();
        let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
            Ok(body) => body.to_bytes(),
            Err(_) => return envelope(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "request body is too large"),
        };
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut upstream = self.http.request(parts.method, format!("{}{path}", self.config.upstream)).body(body);
        // The Host the client called goes through, as API Gateway's does: a
        // function that names the API's own URL (the reference) names this front.
        for (name, value) in &parts.headers {
            if !is_hop_by_hop(name.as_str()) {
                upstream = upstream.header(name, value);
            }
        }
        let answer = match upstream.send().await {
            Ok(answer) => answer,
            Err(error) => {
                eprintln!("local front: the functions did not answer: {error}");
                return envelope(StatusCode::BAD_GATEWAY, "bad_gateway", "the function did not answer");
            }
        };
        let status = answer.status();
        let headers = answer.headers().clone();
        let bytes = answer.bytes().await.unwrap_or_default();
        let mut response = Response::new(Full::new(bytes));
        *response.status_mut() = status;
        for (name, value) in &headers {
            if !is_hop_by_hop(name.as_str()) {
                response.headers_mut().append(name, value.clone());
            }
        }
        response
    }
}

/// Does a template path (`/api/v1/orders/{id}`) match a request path?
fn path_matches(template: &str, path: &str) -> bool {
    let mut wanted = template.trim_end_matches('/').split('/');
    let mut given = path.trim_end_matches('/').split('/');
    loop {
        match (wanted.next(), given.next()) {
            (None, None) => return true,
            (Some(w), Some(g)) if w.starts_with('{') && w.ends_with('}') && !g.is_empty() => {}
            (Some(w), Some(g)) if w == g => {}
            _ => return false,
        }
    }
}

/// Which segments of a template path are literal, in order: the more
/// specific of two templates matching one path compares greater.
fn literal_segments(template: &str) -> Vec<bool> {
    template.split('/').map(|segment| !segment.starts_with('{')).collect()
}

fn is_hop_by_hop(name: &str) -> bool {
    matches!(name, "connection" | "keep-alive" | "transfer-encoding" | "content-length" | "upgrade" | "te" | "trailer")
}

/// An answer of the front itself, in the API's error envelope, with a
/// request id of its own (as API Gateway gives its own answers one).
fn envelope(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    let request_id = format!("front-{:016x}", rand::random::<u64>());
    let body = json!({"error": {"code": code, "message": message, "details": [], "request_id": request_id}});
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert("x-request-id", value);
    }
    response
}

fn rate_limited(retry_after: u64) -> Response<Full<Bytes>> {
    let mut response = envelope(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        &format!("too many requests; retry after {retry_after} seconds"),
    );
    response.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_literal_segment_beats_a_parameter() {
        let templates = ["/api/v1/users/{id}", "/api/v1/users/me"];
        let chosen = templates
            .iter()
            .filter(|t| path_matches(t, "/api/v1/users/me"))
            .max_by_key(|t| literal_segments(t))
            .unwrap();
        assert_eq!(*chosen, "/api/v1/users/me");
        let chosen = templates
            .iter()
            .filter(|t| path_matches(t, "/api/v1/users/01ABC"))
            .max_by_key(|t| literal_segments(t))
            .unwrap();
        assert_eq!(*chosen, "/api/v1/users/{id}");
    }

    #[test]
    fn template_paths_match_their_instances_only() {
        assert!(path_matches("/api/v1/orders/{id}", "/api/v1/orders/01ABC"));
        assert!(path_matches("/api/v1/orders", "/api/v1/orders/"));
        assert!(!path_matches("/api/v1/orders/{id}", "/api/v1/orders"));
        assert!(!path_matches("/api/v1/orders/{id}", "/api/v1/orders/"));
        assert!(!path_matches("/api/v1/orders/{id}", "/api/v1/orders/1/lines"));
        assert!(!path_matches("/api/v1/users/me", "/api/v1/users/you"));
    }
}
