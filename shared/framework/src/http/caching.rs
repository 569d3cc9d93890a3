//! Caching: who may keep an answer, for how long, and how a client asks
//! whether what it kept is still current. A route declares its
//! [`CachePolicy`] once ([`super::HttpServer::cache`]); the layer applies it
//! to every answer of the route, so no handler sets a caching header:
//!
//! - a `200` to a GET gets a strong `ETag` (unless nothing may keep it): the handler's own (a versioned
//!   item's `"<version>"`: every change of the item, stock included, moves its
//!   version), otherwise a hash of the exact body (a listing's tag changes
//!   when any item on the page, the next cursor or the total changes);
//! - a GET whose `If-None-Match` names that tag (or `*`) is answered
//!   `304 Not Modified`, with no body and the same `ETag`, `Cache-Control`
//!   and `Vary`;
//! - `Cache-Control` is the route's policy on a successful GET and `no-store`
//!   on everything else (writes, auth, errors: the security headers' default);
//!   a public answer to a request that carried a token is `private, no-cache`
//!   instead: what depended on a token is never shared;
//! - `Vary` names every request header an answer depends on: `Origin` (CORS),
//!   `Accept-Encoding` (API Gateway compresses answers of 1 KB or more) and,
//!   on routes that read tokens, `Authorization`.

use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use lambda_http::{Body, Response};
use sha2::{Digest, Sha256};

/// Who may keep a route's successful GET answers, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CachePolicy {
    /// Nobody keeps them: `no-store` (health, whose point is to be asked).
    NoStore,
    /// Only the caller's own client, which revalidates before each use:
    /// `private, no-cache` (anything personal: profiles, orders, admin views,
    /// the data export).
    Private,
    /// Anyone, browsers and shared caches alike (the public catalogue).
    Public(PublicCache),
}

/// How long anyone may keep a public answer: fresh for `max_age`, then
/// served stale for up to `stale_while_revalidate` more while a fresh copy is
/// fetched in the background.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicCache {
    max_age: Duration,
    stale_while_revalidate: Duration,
}

impl PublicCache {
    /// The defaults (docs/architecture.md, Caching Strategy): 10 s fresh, 20 s
    /// stale while revalidating.
    pub const DEFAULT: Self = Self::new(Duration::from_secs(10), Duration::from_secs(20));

    /// Fresh for `max_age`, then stale for `stale_while_revalidate`; whole seconds count.
    pub const fn new(max_age: Duration, stale_while_revalidate: Duration) -> Self {
        Self { max_age, stale_while_revalidate }
    }

    /// Reads `CACHE_MAX_AGE_SECONDS` and `CACHE_STALE_WHILE_REVALIDATE_SECONDS`
    /// (whole seconds, 0 allowed) through `lookup`; a missing one keeps its default.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let seconds = |name: &str, default: Duration| -> anyhow::Result<Duration> {
            lookup(name).map_or(Ok(default), |raw| {
                raw.parse()
                    .map(Duration::from_secs)
                    .with_context(|| format!("{name} must be a whole number of seconds"))
            })
        };
        Ok(Self::new(
            seconds("CACHE_MAX_AGE_SECONDS", Self::DEFAULT.max_age)?,
            seconds("CACHE_STALE_WHILE_REVALIDATE_SECONDS", Self::DEFAULT.stale_while_revalidate)?,
        ))
    }

    /// [`PublicCache::from_lookup`] on the process environment.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The longest a cache may serve an answer after it was made.
    pub fn staleness_bound(&self) -> Duration {
        self.max_age + self.stale_while_revalidate
    }

    fn header(&self) -> String {
        format!(
            "public, max-age={}, stale-while-revalidate={}",
            self.max_age.as_secs(),
            self.stale_while_revalidate.as_secs()
        )
    }
}

/// The route's policy, ready to apply: its headers are built once.
#[derive(Debug, Clone)]
pub(super) struct Caching {
    /// `Cache-Control` of a successful GET without a token.
    cache_control: HeaderValue,
    /// Whether a token makes the answer private (the policy is public).
    public: bool,
    /// Whether answers get an `ETag` and `If-None-Match` is honoured: not
    /// where nothing may keep them (health is asked to be answered afresh).
    validates: bool,
    /// `Vary` of every answer.
    vary: HeaderValue,
}

fn no_store() -> HeaderValue {
    HeaderValue::from_static("no-store")
}

fn private() -> HeaderValue {
    HeaderValue::from_static("private, no-cache")
}

impl Caching {
    /// `policy` on a route that reads tokens (`reads_tokens`) or not.
    pub(super) fn new(policy: CachePolicy, reads_tokens: bool) -> Self {
        let cache_control = match policy {
            CachePolicy::NoStore => no_store(),
            CachePolicy::Private => private(),
            CachePolicy::Public(public) => {
                HeaderValue::from_str(&public.header()).expect("digits and ASCII words are a valid header value")
            }
        };
        let vary = if reads_tokens { "Origin, Accept-Encoding, Authorization" } else { "Origin, Accept-Encoding" };
        Self {
            cache_control,
            public: matches!(policy, CachePolicy::Public(_)),
            validates: policy != CachePolicy::NoStore,
            vary: HeaderValue::from_static(vary),
        }
    }

    /// Sets the caching headers of the answer to a `method` request with
    /// `request` headers, and turns a GET's `200` whose tag the client
    /// already has into a `304` with no body.
    pub(super) fn apply(&self, method: &Method, request: &HeaderMap, mut response: Response<Body>) -> Response<Body> {
        response.headers_mut().insert(http::header::VARY, self.vary.clone());
        let cacheable = (method == Method::GET || method == Method::HEAD) && response.status() == StatusCode::OK;
        if !cacheable || !self.validates {
            response.headers_mut().insert(http::header::CACHE_CONTROL, no_store());
            return response;
        }
        let cache_control = if self.public && request.contains_key(http::header::AUTHORIZATION) {
            private()
        } else {
            self.cache_control.clone()
        };
        response.headers_mut().insert(http::header::CACHE_CONTROL, cache_control);
        let tag = if let Some(tag) = response.headers().get(http::header::ETAG) {
            tag.clone()
        } else {
            let tag = body_tag(response.body());
            response.headers_mut().insert(http::header::ETAG, tag.clone());
            tag
        };
        let known = request.get(http::header::IF_NONE_MATCH).and_then(|value| value.to_str().ok());
        if known.is_some_and(|known| none_match_fails(known, tag.to_str().unwrap_or_default())) {
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            *response.body_mut() = Body::Empty;
            response.headers_mut().remove(http::header::CONTENT_TYPE);
            response.headers_mut().remove(http::header::CONTENT_LENGTH);
        }
        response
    }
}

/// A strong tag for exactly these bytes: the first 128 bits of their
/// SHA-256, base64url (a collision needs about 2^64 different bodies).
pub fn body_tag(body: &Body) -> HeaderValue {
    let bytes: &[u8] = match body {
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    };
    let digest = Sha256::digest(bytes);
    let tag = format!("\"{}\"", URL_SAFE_NO_PAD.encode(&digest[..16]));
    HeaderValue::from_str(&tag).expect("base64url in quotes is a valid header value")
}

/// Does `If-None-Match: known` name the current `tag` (RFC 9110, 13.1.2)?
/// Then the condition fails and a GET is answered 304. The comparison is
/// weak (`W/"x"` names `"x"`): a compressing proxy may weaken our tags.
fn none_match_fails(known: &str, tag: &str) -> bool {
    let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    let tag = opaque(tag);
    known.split(',').any(|candidate| candidate.trim() == "*" || opaque(candidate) == tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(body: &str) -> Response<Body> {
        let mut response = Response::new(Body::Text(body.to_owned()));
        response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs.iter().map(|(name, value)| (http::HeaderName::from_static(name), value.parse().unwrap())).collect()
    }

    fn public() -> Caching {
        Caching::new(CachePolicy::Public(PublicCache::new(Duration::from_secs(10), Duration::from_secs(20))), true)
    }

    #[test]
    fn a_public_get_is_tagged_by_its_body_and_kept_by_anyone() {
        let response = public().apply(&Method::GET, &HeaderMap::new(), ok(r#"{"data":[1]}"#));
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "public, max-age=10, stale-while-revalidate=20");
        assert_eq!(response.headers()["vary"], "Origin, Accept-Encoding, Authorization");
        let tag = response.headers()["etag"].to_str().unwrap();
        assert!(tag.starts_with('"') && tag.ends_with('"') && tag.len() == 24, "{tag}");
        let other = public().apply(&Method::GET, &HeaderMap::new(), ok(r#"{"data":[2]}"#));
        assert_ne!(other.headers()["etag"], tag, "another body, another tag");
        let same = public().apply(&Method::GET, &HeaderMap::new(), ok(r#"{"data":[1]}"#));
        assert_eq!(same.headers()["etag"], tag, "the same body, the same tag");
    }

    #[test]
    fn a_known_tag_is_a_304_with_no_body_and_the_same_headers() {
        let first = public().apply(&Method::GET, &HeaderMap::new(), ok("{}"));
        let tag = first.headers()["etag"].to_str().unwrap().to_owned();
        for known in [tag.clone(), format!("W/{tag}"), format!("\"other\", {tag}"), "*".to_owned()] {
            let response = public().apply(&Method::GET, &headers(&[("if-none-match", &known)]), ok("{}"));
            assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{known}");
            assert!(matches!(response.body(), Body::Empty));
            assert!(!response.headers().contains_key("content-type"));
            for name in ["etag", "cache-control", "vary"] {
                assert_eq!(response.headers()[name], first.headers()[name], "{name}");
            }
        }
        let changed = public().apply(&Method::GET, &headers(&[("if-none-match", "\"other\"")]), ok("{}"));
        assert_eq!(changed.status(), StatusCode::OK);
    }

    #[test]
    fn a_handlers_version_tag_is_kept_and_compared() {
        let mut response = ok("{}");
        response.headers_mut().insert(http::header::ETAG, HeaderValue::from_static("\"3\""));
        let response = public().apply(&Method::GET, &headers(&[("if-none-match", "\"3\"")]), response);
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(response.headers()["etag"], "\"3\"");
    }

    #[test]
    fn an_answer_to_a_token_is_never_public() {
        let response = public().apply(&Method::GET, &headers(&[("authorization", "Bearer x")]), ok("{}"));
        assert_eq!(response.headers()["cache-control"], "private, no-cache");
        assert!(response.headers().contains_key("etag"));
    }

    #[test]
    fn errors_writes_and_no_store_routes_are_not_kept() {
        let mut missing = ok("{}");
        *missing.status_mut() = StatusCode::NOT_FOUND;
        let missing = public().apply(&Method::GET, &HeaderMap::new(), missing);
        assert_eq!(missing.headers()["cache-control"], "no-store");
        assert!(!missing.headers().contains_key("etag"));
        let written = public().apply(&Method::POST, &HeaderMap::new(), ok("{}"));
        assert_eq!(written.headers()["cache-control"], "no-store");
        let health = Caching::new(CachePolicy::NoStore, false).apply(&Method::GET, &HeaderMap::new(), ok("{}"));
        assert_eq!(health.headers()["cache-control"], "no-store");
        assert!(!health.headers().contains_key("etag"), "nothing may keep it: no validator");
        assert_eq!(health.headers()["vary"], "Origin, Accept-Encoding");
        let mine = Caching::new(CachePolicy::Private, true).apply(&Method::GET, &HeaderMap::new(), ok("{}"));
        assert_eq!(mine.headers()["cache-control"], "private, no-cache");
    }

    #[test]
    fn public_lifetimes_are_read_from_the_environment() {
        let lookup = |name: &str| match name {
            "CACHE_MAX_AGE_SECONDS" => Some("2".to_owned()),
            "CACHE_STALE_WHILE_REVALIDATE_SECONDS" => Some("0".to_owned()),
            _ => None,
        };
        let read = PublicCache::from_lookup(lookup).unwrap();
        assert_eq!(read.header(), "public, max-age=2, stale-while-revalidate=0");
        assert_eq!(read.staleness_bound(), Duration::from_secs(2));
        assert_eq!(PublicCache::from_lookup(|_| None).unwrap(), PublicCache::DEFAULT);
        assert!(PublicCache::from_lookup(|_| Some("soon".to_owned())).is_err());
    }
}
