//! Property tests of the framework's parsers over generated and hostile input:
//! pagination cursors (round trip, scope, key, tampering), the HTTP boundary
//! (API Gateway REST events as lambda_http reads them, and raw requests,
//! through `HttpServer`, tokens, the query and strict JSON), and the
//! CloudEvents envelope of queue messages (through the batch processor).
//! Default case counts keep this file to a few seconds of `cargo test`;
//! `cargo xtask fuzz-parsers --cases N` runs every property with N cases.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use framework::Settings;
use framework::auth::{KeySet, PrivateKeySet, SecretCache, Tokens};
use framework::batch::{self, BatchProcessor, MAX_REASON_CHARS, RecordError};
use framework::budget::Budget;
use framework::cursor::CursorCodec;
use framework::events::CloudEvent;
use framework::http::{Access, ApiError, ApiRequest, ApiResponse, Authenticator, HttpServer};
use framework::pagination::Cursors;
use http::{HeaderValue, Method, StatusCode};
use in_memory::Memory;
use lambda_http::{Body, Request, RequestExt, Response};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::test_runner::RngAlgorithm;
use serde_json::{Value, json};
use time::OffsetDateTime;

/// `PROPTEST_CASES` if set (the long run of `cargo xtask fuzz-parsers`), else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `default` cases (or `PROPTEST_CASES`), drawn with XorShift: in a debug
/// build ChaCha's random numbers alone take a fifth of the run. The limits
/// on inputs filtered out (rare) grow with the cases, so a long run does not
/// stop at proptest's fixed ones.
fn config(default: u32) -> ProptestConfig {
    let cases = cases(default);
    ProptestConfig {
        cases,
        rng_algorithm: RngAlgorithm::XorShift,
        max_global_rejects: cases.max(1024),
        max_local_rejects: cases.saturating_mul(4).max(65_536),
        ..ProptestConfig::default()
    }
}

/// Any JSON document, floats included, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    json_tree(prop_oneof![
        json_leaf(),
        any::<f64>().prop_filter("JSON has no NaN or infinity", |f| f.is_finite()).prop_map(Value::from),
    ])
}

/// Any JSON document without floats, as event data is: serde_json's default
/// float parser may read a float back one bit off (its `float_roundtrip`
/// feature is exact), and no event of ours carries a float.
fn json_data() -> impl Strategy<Value = Value> {
    json_tree(json_leaf())
}

fn json_leaf() -> impl Strategy<Value = Value> + Clone {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ]
}

fn json_tree(leaf: impl Strategy<Value = Value> + 'static) -> impl Strategy<Value = Value> {
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map(any::<String>(), inner, 0..6).prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// Bytes as a client or a broken producer sends them: any, sometimes many.
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![8 => vec(any::<u8>(), 0..256), 1 => vec(any::<u8>(), 0..20_000)]
}

// ---------------------------------------------------------------------------
// Cursors: `CursorCodec::seal` and `open`.

/// The longest cursor `CursorCodec::open` reads (its `MAX_CURSOR_LENGTH`).
const MAX_CURSOR_LENGTH: usize = 1024;

/// A signing secret as `KeySet` accepts it: 32 bytes or more.
fn secret() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 32..=64)
}

/// Scopes and positions: the shapes the listings use, and any text.
fn cursor_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "(orders|products|users)(:[a-z]{1,8}=[0-9A-Z]{26}){0,2}",
        "[0-9A-Z]{26}",
        "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{12}Z#[0-9A-Z]{26}",
        any::<String>(),
    ]
}

/// One edit of a cursor's text.
#[derive(Debug, Clone)]
enum Tamper {
    /// The character at this index (modulo the length) replaced by another.
    Replace(usize, char),
    /// A character inserted at this index (modulo the length + 1).
    Insert(usize, char),
    /// The character at this index (modulo the length) removed.
    Delete(usize),
    /// Only the first (index modulo the length) characters kept.
    Truncate(usize),
}

fn tamper() -> impl Strategy<Value = Tamper> {
    // Mostly characters of the cursor's own alphabet: the hardest edits to notice.
    let character = prop_oneof![
        4 => proptest::sample::select(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.".chars().collect::<Vec<_>>()
        ),
        1 => any::<char>(),
    ];
    prop_oneof![
        (any::<usize>(), character.clone()).prop_map(|(at, c)| Tamper::Replace(at, c)),
        (any::<usize>(), character).prop_map(|(at, c)| Tamper::Insert(at, c)),
        any::<usize>().prop_map(Tamper::Delete),
        any::<usize>().prop_map(Tamper::Truncate),
    ]
}

/// `cursor` (ASCII, as `seal` makes it) with `edit` applied; always different from it.
fn tampered(cursor: &str, edit: &Tamper) -> String {
    let mut chars: Vec<char> = cursor.chars().collect();
    let len = chars.len();
    match *edit {
        Tamper::Replace(at, c) => {
            let at = at % len;
            chars[at] = if chars[at] == c { if c == 'A' { 'B' } else { 'A' } } else { c };
        }
        Tamper::Insert(at, c) => chars.insert(at % (len + 1), c),
        Tamper::Delete(at) => {
            chars.remove(at % len);
        }
        Tamper::Truncate(at) => chars.truncate(at % len),
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn any_position_round_trips_under_its_scope(secret in secret(), scope in cursor_text(), position in cursor_text()) {
        let codec = CursorCodec::new(&secret);
        let cursor = codec.seal(&scope, &position);
        prop_assert!(cursor.is_ascii() && !cursor.contains(['/', '+', '=', '&', '?', '#']), "not URL-safe: {}", cursor);
        if cursor.len() <= MAX_CURSOR_LENGTH {
            prop_assert_eq!(codec.open(&cursor, &scope), Some(position));
        } else {
            // Real scopes and positions are far shorter than the bound.
            prop_assert_eq!(codec.open(&cursor, &scope), None);
        }
    }

    #[test]
    fn a_cursor_opens_under_no_other_scope_and_no_other_secret(
        (secret, other_secret) in (32_usize..=64).prop_flat_map(|len| (vec(any::<u8>(), len), vec(any::<u8>(), len))),
        scope in cursor_text(),
        other_scope in cursor_text(),
        position in cursor_text(),
    ) {
        // Secrets of one length: HMAC pads a short key with zeros, so `k` and
        // `k\0` are the same key (never an issue for keys from Secrets Manager).
        let cursor = CursorCodec::new(&secret).seal(&scope, &position);
        if other_scope != scope {
            prop_assert_eq!(CursorCodec::new(&secret).open(&cursor, &other_scope), None);
        }
        if other_secret != secret {
            prop_assert_eq!(CursorCodec::new(&other_secret).open(&cursor, &scope), None);
        }
    }

    #[test]
    fn a_tampered_cursor_never_opens(
        secret in secret(),
        scope in cursor_text(),
        position in cursor_text(),
        edits in vec(tamper(), 1..4),
    ) {
        let codec = CursorCodec::new(&secret);
        let cursor = codec.seal(&scope, &position);
        prop_assume!(cursor.len() <= MAX_CURSOR_LENGTH);
        let mut forged = cursor.clone();
        for edit in &edits {
            if !forged.is_empty() {
                forged = tampered(&forged, edit);
            }
        }
        prop_assume!(forged != cursor, "the edits undid each other");
        prop_assert_eq!(codec.open(&forged, &scope), None, "{:?} opened after {:?}", forged, edits);
    }

    #[test]
    fn arbitrary_text_never_opens_and_never_panics(
        secret in secret(),
        scope in cursor_text(),
        text in prop_oneof![
            any::<String>(),
            "[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,60}",
            // A well-formed payload (any JSON) with a made-up signature.
            (json_value(), vec(any::<u8>(), 0..40)).prop_map(|(payload, signature)| format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(payload.to_string()),
                URL_SAFE_NO_PAD.encode(signature)
            )),
            "\\PC{1000,1100}",
        ],
    ) {
        prop_assert_eq!(CursorCodec::new(&secret).open(&text, &scope), None);
    }
}

// ---------------------------------------------------------------------------
// The HTTP boundary: what lambda_http hands `HttpServer::handle`, and what a
// handler reads from `ApiRequest` (the query through `Cursors`, `If-Match`,
// the body through `json`).

/// The body limit of the servers under test (the functions' default is 64 KiB).
const MAX_BODY_BYTES: usize = 8192;
/// The listing scope of the handler under test.
const SCOPE: &str = "products:active";
/// The signing secret of the servers under test.
const KEYS: &str = r#"{"active_kid":"k1","k1":"0123456789abcdef0123456789abcdef"}"#;
/// The statuses the HTTP layer and strict JSON may answer a request with.
const LAYER_STATUSES: [u16; 7] = [200, 204, 400, 401, 413, 415, 422];

/// A body shaped like the API's: nested, strict.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Draft {
    name: String,
    price: i64,
    tags: Option<Vec<String>>,
    lines: Vec<Line>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Line {
    product_id: String,
    quantity: u32,
}

/// The servers under test, built once: a guest route without authentication
/// and a user route with it, over one account that exists.
struct Http {
    runtime: tokio::runtime::Runtime,
    guest: HttpServer,
    user: HttpServer,
    cursors: Cursors,
    /// A valid token of the existing account.
    token: String,
    /// A cursor of `SCOPE` that opens.
    cursor: String,
}

static HTTP: LazyLock<Http> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let settings = Settings::from_lookup(|name| match name {
        "TABLE_NAME" => Some("t".into()),
        "MAX_BODY_BYTES" => Some(MAX_BODY_BYTES.to_string()),
        "CORS_ALLOWED_ORIGINS" => Some("https://shop.example".into()),
        "CLIENT_IP_HEADER" => Some("x-forwarded-for".into()),
        "CLIENT_IP_TRUSTED_HOPS" => Some("2".into()),
        _ => None,
    })
    .unwrap();
    let keys = Arc::new(SecretCache::fixed(KeySet::parse(KEYS).unwrap()));
    let token_keys = PrivateKeySet::generate(0).unwrap();
    let tokens = Tokens::issuing(
        Arc::new(SecretCache::fixed(token_keys.clone())),
        Arc::new(SecretCache::fixed(token_keys.public_keys(None).unwrap())),
        Duration::from_secs(900),
    );
    let memory = Memory::new();
    let user = in_memory::contract::new_user("fuzz");
    let token = runtime.block_on(async {
        domain::ports::UserStore::insert(&memory.users(), &user, None).await.unwrap();
        tokens.issue(framework::auth::Subject::new(user.id.ulid()), framework::auth::Role::User).await.unwrap().token
    });
    let cursor = CursorCodec::new(KeySet::parse(KEYS).unwrap().active().1).seal(SCOPE, "01J9Z3NDEKTSV4RRFFQ69G5FAW");
    Http {
        guest: HttpServer::new("fuzz-guest", Access::Guest, &settings),
        user: HttpServer::new(
            "fuzz-user",
            Access::User(Authenticator::new(tokens, Arc::new(memory.users()))),
            &settings,
        ),
        cursors: Cursors::new(keys),
        runtime,
        token,
        cursor,
    }
});

/// What a handler does with a request: read its page's position
/// (`?cursor=`) and precondition, and on writes its body as strict JSON.
async fn handler(request: ApiRequest) -> Result<ApiResponse, ApiError> {
    let after = HTTP.cursors.position(&request, SCOPE).await?;
    let precondition = request.optional_if_match();
    if matches!(request.method, Method::GET | Method::HEAD | Method::DELETE) {
        return Ok(ApiResponse::ok(json!({"after": after, "if_match": precondition.is_some()})));
    }
    let draft: Draft = request.json()?;
    Ok(ApiResponse::ok(json!({"lines": draft.lines.len()})))
}

/// Runs `request` through `server` the way `HttpServer::serve` does.
fn serve(server: &HttpServer, request: Request) -> Response<Body> {
    let mut context = lambda_http::Context::default();
    context.request_id = "fuzz-request".into();
    HTTP.runtime.block_on(server.handle(request.with_lambda_context(context), &handler))
}

/// A response the layer may give: one of its documented statuses, the
/// security headers, and on errors the envelope.
fn check_response(response: &Response<Body>) -> Result<(), TestCaseError> {
    let status = response.status().as_u16();
    let text = match response.body() {
        Body::Text(text) => text.clone(),
        Body::Binary(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        _ => String::new(),
    };
    prop_assert!(LAYER_STATUSES.contains(&status), "status {}: {}", status, text);
    prop_assert_eq!(&response.headers()["x-content-type-options"], "nosniff");
    prop_assert_eq!(&response.headers()["x-request-id"], "fuzz-request");
    if status >= 400 {
        let envelope: Value = serde_json::from_str(&text).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
        prop_assert!(envelope["error"]["code"].is_string(), "{}", text);
        prop_assert_eq!(&envelope["error"]["request_id"], "fuzz-request");
    }
    Ok(())
}

/// A method API Gateway REST sends (any of them routes to a function through
/// `ANY`), or another token.
fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => proptest::sample::select(vec!["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
            .prop_map(String::from),
        1 => "[A-Z]{1,12}",
    ]
}

/// Header names: the ones the layer reads, in any case, and any other token.
fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(vec![
            "Content-Type",
            "content-type",
            "Authorization",
            "authorization",
            "X-Correlation-Id",
            "If-Match",
            "X-Forwarded-For",
            "Origin",
            "Access-Control-Request-Method",
            "Idempotency-Key",
            "Accept",
            "Content-Length",
            "Cookie",
        ])
        .prop_map(String::from),
        "[!#$%&'*+.^_`|~0-9A-Za-z-]{1,40}",
    ]
}

/// A character an API Gateway event's header value can hold: anything but
/// control characters (tab allowed), non-ASCII included.
fn header_char() -> impl Strategy<Value = char> {
    any::<char>().prop_map(|c| if (c.is_control() && c != '\t') || c == '\u{7f}' { '~' } else { c })
}

/// Header values: plausible ones for the names the layer reads, any text,
/// and huge ones (beyond API Gateway's 10 KB of headers: the layer must not care).
fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(vec![
            "application/json", "application/json; charset=utf-8", "APPLICATION/JSON", "application/jsonx",
            "text/plain", "multipart/form-data; boundary=x", "*", "\"1\"", "W/\"2\", \"3\"", "\"x\"",
            "203.0.113.9, 10.0.0.1", "::1", "https://shop.example", "POST", "Bearer", "Bearer ", "bearer x.y.z",
        ])
        .prop_map(String::from),
        4 => vec(header_char(), 0..64).prop_map(|chars| chars.into_iter().collect()),
        1 => (vec(header_char(), 1..8), 1_000_usize..20_000).prop_map(|(chars, len)| {
            chars.into_iter().cycle().take(len).collect()
        }),
    ]
}

/// The `Authorization` header: none, the real token, tokens signed with the
/// right key but saying anything, JWT-shaped garbage, or any text.
fn authorization() -> impl Strategy<Value = Option<String>> {
    let signed_claims = (
        prop_oneof![Just(json!(HTTP_USER_ID.as_str())), Just(json!("01J9Z3NDEKTSV4RRFFQ69G5FAW")), json_value()],
        prop_oneof![Just(json!("user")), Just(json!("admin")), json_value()],
        prop_oneof![3 => Just(json!("shop-api")), 1 => json_value()],
        prop_oneof![3 => Just(json!(4_102_444_800_i64)), 1 => Just(json!(0)), 1 => json_value()],
        prop_oneof![Just(None), Just(Some("k1".to_owned())), any::<String>().prop_map(Some)],
    )
        .prop_map(|(sub, role, issuer, exp, kid)| {
            let claims = json!({"sub": sub, "role": role, "iss": issuer, "aud": issuer, "iat": 0, "exp": exp});
            let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
            header.kid = kid;
            let key = jsonwebtoken::EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef");
            jsonwebtoken::encode(&header, &claims, &key).unwrap()
        });
    let shaped = (json_value(), json_value(), vec(any::<u8>(), 0..40)).prop_map(|(header, claims, signature)| {
        [header.to_string().into_bytes(), claims.to_string().into_bytes(), signature]
            .map(|part| URL_SAFE_NO_PAD.encode(part))
            .join(".")
    });
    prop_oneof![
        2 => Just(None),
        2 => Just(Some(format!("Bearer {}", HTTP.token))),
        3 => (prop_oneof![Just("Bearer "), Just("bearer "), Just("Bearer  ")], signed_claims)
            .prop_map(|(scheme, token)| Some(format!("{scheme}{token}"))),
        2 => shaped.prop_map(|token| Some(format!("Bearer {token}"))),
        1 => header_value().prop_map(Some),
    ]
}

static HTTP_USER_ID: LazyLock<String> = LazyLock::new(|| {
    let payload = HTTP.token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["sub"].as_str().unwrap().to_owned()
});

/// Query parameters: a page's (valid, out of range, junk, real and forged
/// cursors) and any others.
fn query() -> impl Strategy<Value = Vec<(String, String)>> {
    let limit = prop_oneof![
        (1_u32..=100).prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<String>(),
        Just(String::new()),
    ];
    let cursor = prop_oneof![
        Just(HTTP.cursor.clone()),
        (any::<usize>(), any::<char>()).prop_map(|(at, c)| tampered(&HTTP.cursor, &Tamper::Replace(at, c))),
        any::<String>(),
        Just(String::new()),
        long_url_text(2500),
    ];
    vec(
        prop_oneof![
            limit.prop_map(|value| ("limit".to_owned(), value)),
            cursor.prop_map(|value| ("cursor".to_owned(), value)),
            (any::<String>(), any::<String>()),
        ],
        0..4,
    )
}

/// A request body: text as is, or bytes base64-encoded (`isBase64Encoded`).
#[derive(Debug, Clone)]
enum BodyPart {
    Text(String),
    Binary(Vec<u8>),
}

impl BodyPart {
    fn len(&self) -> usize {
        match self {
            Self::Text(text) => text.len(),
            Self::Binary(bytes) => bytes.len(),
        }
    }
}

/// Bodies: the shape the handler wants, near misses, any JSON, any text,
/// any bytes, blank, and over the limit.
fn body() -> impl Strategy<Value = Option<BodyPart>> {
    let line =
        (any::<String>(), any::<u32>()).prop_map(|(id, quantity)| json!({"product_id": id, "quantity": quantity}));
    let draft = (any::<String>(), any::<i64>(), proptest::option::of(vec(any::<String>(), 0..3)), vec(line, 0..4))
        .prop_map(|(name, price, tags, lines)| json!({"name": name, "price": price, "tags": tags, "lines": lines}));
    let near_miss = (draft.clone(), any::<String>(), json_value()).prop_map(|(mut draft, field, value)| {
        draft[field] = value;
        draft
    });
    let text = prop_oneof![
        3 => draft.prop_map(|d| d.to_string()),
        2 => near_miss.prop_map(|d| d.to_string()),
        2 => json_value().prop_map(|v| v.to_string()),
        1 => (json_value(), any::<usize>()).prop_map(|(v, cut)| {
            let text = v.to_string();
            text.chars().take(cut % (text.chars().count() + 1)).collect()
        }),
        2 => any::<String>(),
        1 => "[ \t\r\n]{0,8}",
        1 => (MAX_BODY_BYTES + 1..MAX_BODY_BYTES * 3).prop_map(|len| format!("{{\"name\":\"{}\"}}", "x".repeat(len))),
    ];
    prop_oneof![
        1 => Just(None),
        6 => text.prop_map(|t| Some(BodyPart::Text(t))),
        2 => bytes().prop_map(|b| Some(BodyPart::Binary(b))),
    ]
}

/// The parts of an API Gateway REST proxy event a client controls.
#[derive(Debug, Clone)]
struct EventParts {
    method: String,
    path_id: String,
    headers: Vec<(String, String)>,
    content_type: Option<String>,
    authorization: Option<String>,
    query: Vec<(String, String)>,
    body: Option<BodyPart>,
    host: Option<String>,
}

/// The `Content-Type` header: mostly JSON, so that bodies reach the parser.
fn content_type() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        4 => Just(Some("application/json".to_owned())),
        1 => Just(Some("Application/JSON ; charset=utf-8".to_owned())),
        1 => Just(None),
        1 => header_value().prop_map(Some),
    ]
}

fn event_parts() -> impl Strategy<Value = EventParts> {
    (
        method(),
        prop_oneof!["[0-9A-Z]{26}", any::<String>(), long_url_text(5000)],
        vec((header_name(), header_value()), 0..6),
        content_type(),
        authorization(),
        query(),
        body(),
        proptest::option::of("[a-z0-9]{10}\\.execute-api\\.[a-z]{2}-[a-z]{4,9}-[1-3]\\.amazonaws\\.com"),
    )
        .prop_map(|(method, path_id, headers, content_type, authorization, query, body, host)| EventParts {
            method,
            path_id,
            headers,
            content_type,
            authorization,
            query,
            body,
            host,
        })
        .prop_filter("a URL API Gateway accepts", |parts| url_length(parts) <= MAX_URL_LENGTH)
}

/// The longest URL a regional REST API accepts, in characters (its quota).
/// Far longer ones never reach a function: lambda_http could not even build
/// the request (`http` refuses URIs over 64 KiB).
const MAX_URL_LENGTH: usize = 10_240;

/// How long `text` is in a URL, percent-encoded (at most).
fn url_encoded_length(text: &str) -> usize {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || "-._~".contains(c) { 1 } else { 3 * c.len_utf8() }).sum()
}

/// The length of the URL a client sent for `parts` (path and query).
fn url_length(parts: &EventParts) -> usize {
    let query: usize = parts.query.iter().map(|(k, v)| url_encoded_length(k) + url_encoded_length(v) + 2).sum();
    "https://abcdefghij.execute-api.eu-central-1.amazonaws.com/v1/api/v1/products/".len()
        + url_encoded_length(&parts.path_id)
        + query
}

/// Long text for a path or query, whose percent-encoded form fits `budget`.
fn long_url_text(budget: usize) -> impl Strategy<Value = String> {
    (vec(any::<char>(), 1..8), 1_usize..5000).prop_map(move |(word, times)| {
        let mut used = 0;
        word.iter()
            .cycle()
            .take(word.len() * times)
            .take_while(|c| {
                used += url_encoded_length(c.encode_utf8(&mut [0; 4]));
                used <= budget
            })
            .collect()
    })
}

/// The event API Gateway would send for `parts`, from the sample event of
/// `place-order` (its request context, stage and the headers API Gateway adds).
fn proxy_event(parts: &EventParts) -> Value {
    let mut event: Value = serde_json::from_str(include_str!("../../../events/place-order.json")).unwrap();
    let mut headers: Vec<(String, String)> = vec![("X-Forwarded-Proto".into(), "https".into())];
    if let Some(host) = &parts.host {
        headers.push(("Host".into(), host.clone()));
    }
    if let Some(content_type) = &parts.content_type {
        headers.push(("Content-Type".into(), content_type.clone()));
    }
    headers.extend(parts.headers.iter().filter(|(name, _)| !is_gateway_header(name)).cloned());
    if let Some(authorization) = &parts.authorization {
        headers.push(("Authorization".into(), authorization.clone()));
    }
    let (single, multi) = maps(&headers);
    event["headers"] = single;
    event["multiValueHeaders"] = multi;
    let (single, multi) = maps(&parts.query);
    event["queryStringParameters"] = if parts.query.is_empty() { Value::Null } else { single };
    event["multiValueQueryStringParameters"] = if parts.query.is_empty() { Value::Null } else { multi };
    event["httpMethod"] = json!(parts.method);
    event["requestContext"]["httpMethod"] = json!(parts.method);
    event["resource"] = json!("/api/v1/products/{id}");
    event["path"] = json!(format!("/api/v1/products/{}", parts.path_id));
    event["pathParameters"] = json!({"id": parts.path_id});
    match &parts.body {
        None => {
            event["body"] = Value::Null;
            event["isBase64Encoded"] = json!(false);
        }
        Some(BodyPart::Text(text)) => {
            event["body"] = json!(text);
            event["isBase64Encoded"] = json!(false);
        }
        Some(BodyPart::Binary(bytes)) => {
            event["body"] = json!(STANDARD.encode(bytes));
            event["isBase64Encoded"] = json!(true);
        }
    }
    event
}

/// Headers the event sets apart: the ones API Gateway writes itself, whatever
/// the client sent, and `Authorization` (see `authorization`).
fn is_gateway_header(name: &str) -> bool {
    ["host", "x-forwarded-proto", "x-forwarded-port", "authorization"].contains(&name.to_ascii_lowercase().as_str())
}

/// The single-value map (last value wins) and the multi-value map of `pairs`.
fn maps(pairs: &[(String, String)]) -> (Value, Value) {
    let mut single = serde_json::Map::new();
    let mut multi: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in pairs {
        single.insert(name.clone(), json!(value));
        multi.entry(name.clone()).or_default().push(value.clone());
    }
    (Value::Object(single), json!(multi))
}

/// The request lambda_http's runtime adapter makes of the event for `parts`,
/// before any of our code runs.
fn parse_event(parts: &EventParts) -> Result<Request, TestCaseError> {
    lambda_http::request::from_str(&proxy_event(parts).to_string())
        .map_err(|error| TestCaseError::fail(format!("lambda_http refused an event API Gateway can send: {error}")))
}

/// The answer to a request the route lets through, beyond `check_response`:
/// a preflight is 204, a body over the limit 413, and only such a body.
fn check_admitted(parts: &EventParts, response: &Response<Body>) -> Result<(), TestCaseError> {
    check_response(response)?;
    let status = response.status();
    if parts.method == "OPTIONS" {
        prop_assert_eq!(status, StatusCode::NO_CONTENT);
    } else if parts.body.as_ref().is_some_and(|body| body.len() > MAX_BODY_BYTES) {
        prop_assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    } else {
        prop_assert_ne!(status, StatusCode::PAYLOAD_TOO_LARGE);
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn any_api_gateway_event_gets_a_documented_answer(parts in event_parts()) {
        let response = serve(&HTTP.guest, parse_event(&parts)?);
        check_admitted(&parts, &response)?;
    }

    #[test]
    fn any_api_gateway_event_on_a_signed_in_route_gets_a_documented_answer(parts in event_parts()) {
        let response = serve(&HTTP.user, parse_event(&parts)?);
        if parts.authorization.as_deref() == Some(format!("Bearer {}", HTTP.token).as_str()) {
            check_admitted(&parts, &response)?;
        } else if parts.authorization.is_none() && parts.method != "OPTIONS" {
            check_response(&response)?;
            prop_assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        } else {
            // Another token may still be one: signed with our key for our
            // issuer. Its answer is documented either way.
            check_response(&response)?;
        }
    }

    #[test]
    fn any_raw_request_gets_a_documented_answer(
        method in "[!#$%&'*+.^_`|~0-9A-Za-z-]{1,16}",
        headers in vec(("[!#$%&'*+.^_`|~0-9A-Za-z-]{1,40}", vec(any::<u8>(), 0..300)), 0..8),
        query in vec((any::<String>(), vec(any::<String>(), 1..3)), 0..4),
        path in btree_map(any::<String>(), any::<String>(), 0..3),
        body in prop_oneof![
            Just(Body::Empty),
            any::<String>().prop_map(Body::Text),
            bytes().prop_map(Body::Binary),
        ],
        signed_in in any::<bool>(),
    ) {
        // Beyond what API Gateway sends: any method token, header bytes that
        // are not UTF-8, repeated query keys, any path parameters.
        let mut request = Request::new(body);
        *request.method_mut() = Method::from_bytes(method.as_bytes()).unwrap();
        for (name, value) in headers {
            if let Ok(value) = HeaderValue::from_bytes(&value) {
                request.headers_mut().append(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value);
            }
        }
        let query: HashMap<String, Vec<String>> = query.into_iter().collect();
        let path: HashMap<String, String> = path.into_iter().collect();
        let request = request.with_query_string_parameters(query).with_path_parameters(path);
        let response = serve(if signed_in { &HTTP.user } else { &HTTP.guest }, request);
        check_response(&response)?;
        if method == "OPTIONS" {
            prop_assert_eq!(response.status(), StatusCode::NO_CONTENT);
        }
    }
}

// ---------------------------------------------------------------------------
// The CloudEvents envelope: `CloudEvent` and the batch processor's validation.

/// The consumer's event type.
const EVENT_TYPE: &str = "user-created";

/// Any instant an RFC 3339 timestamp can write (years 0 to 9999), at any
/// offset in whole minutes.
fn event_time() -> impl Strategy<Value = OffsetDateTime> {
    (-62_167_132_800_i64..253_402_214_399, 0_u32..1_000_000_000, -1439_i32..=1439).prop_map(
        |(seconds, nanos, minutes)| {
            let utc = OffsetDateTime::from_unix_timestamp(seconds).unwrap() + time::Duration::nanoseconds(nanos.into());
            utc.to_offset(time::UtcOffset::from_whole_seconds(minutes * 60).unwrap())
        },
    )
}

/// An event id the processor accepts: 1 to 128 bytes (32 characters are at most 128).
fn event_id() -> impl Strategy<Value = String> {
    prop_oneof!["[0-9A-Z]{26}", "\\PC{1,32}"]
}

/// Any event of type `kind`, with any data.
fn cloud_event(kind: impl Strategy<Value = String>) -> impl Strategy<Value = CloudEvent> {
    (event_id(), any::<String>(), kind, event_time(), any::<String>(), any::<String>(), json_data()).prop_map(
        |(id, source, kind, time, content_type, correlation_id, data)| CloudEvent {
            specversion: "1.0".into(),
            id,
            source,
            kind,
            time,
            datacontenttype: content_type,
            correlationid: correlation_id,
            data,
        },
    )
}

/// How every dead-letter reason of the envelope's validation begins.
const KNOWN_REASONS: [&str; 4] =
    ["not a CloudEvents 1.0 JSON event", "unsupported specversion", "expected event type", "event id must be"];

/// The fields of the envelope as JSON names them.
const FIELDS: [&str; 8] = ["specversion", "id", "source", "type", "time", "datacontenttype", "correlationid", "data"];

/// One way to break a valid envelope, with the words its dead-letter reason must contain.
#[derive(Debug, Clone)]
enum Breakage {
    Drop(&'static str),
    Extra(String, Value),
    WrongType(&'static str, Value),
    SpecVersion(String),
    Kind(String),
    IdLength(usize),
    Time(String),
    NotAnObject(Value),
}

impl Breakage {
    fn apply(&self, event: &CloudEvent) -> String {
        let mut envelope = serde_json::to_value(event).unwrap();
        let fields = envelope.as_object_mut().unwrap();
        match self {
            Self::Drop(field) => {
                fields.remove(*field);
            }
            Self::Extra(name, value) => {
                fields.insert(name.clone(), value.clone());
            }
            Self::WrongType(field, value) => {
                fields.insert((*field).to_owned(), value.clone());
            }
            Self::SpecVersion(version) => {
                fields.insert("specversion".into(), json!(version));
            }
            Self::Kind(kind) => {
                fields.insert("type".into(), json!(kind));
            }
            Self::IdLength(len) => {
                fields.insert("id".into(), json!("x".repeat(*len)));
            }
            Self::Time(text) => {
                fields.insert("time".into(), json!(text));
            }
            Self::NotAnObject(value) => return value.to_string(),
        }
        envelope.to_string()
    }

    /// What the dead-letter reason must say.
    fn reason(&self) -> String {
        match self {
            Self::Drop(field) => format!("missing field `{field}`"),
            Self::Extra(..) => "unknown field".into(),
            Self::WrongType(..) => "invalid type".into(),
            Self::SpecVersion(_) => "unsupported specversion".into(),
            Self::Kind(_) => "expected event type".into(),
            Self::IdLength(_) => "event id must be 1 to 128 characters".into(),
            Self::Time(_) | Self::NotAnObject(_) => "not a CloudEvents 1.0 JSON event".into(),
        }
    }
}

/// Text a broken producer may put in a field: short, or long (words repeated
/// up to about 100 KB, the size of a large SQS message).
fn field_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<String>(),
        1 => (any::<String>(), 10_usize..5000).prop_map(|(word, times)| format!("{word} ").repeat(times)),
    ]
}

fn breakage() -> impl Strategy<Value = Breakage> {
    let string_field = proptest::sample::select(FIELDS[..7].to_vec());
    let not_a_string = json_value().prop_filter("not a string", |v| !v.is_string());
    prop_oneof![
        proptest::sample::select(FIELDS.to_vec()).prop_map(Breakage::Drop),
        (field_text().prop_filter("not a field", |name| !FIELDS.contains(&name.as_str())), json_value())
            .prop_map(|(name, value)| Breakage::Extra(name, value)),
        (string_field, not_a_string).prop_map(|(field, value)| Breakage::WrongType(field, value)),
        field_text().prop_filter("not 1.0", |v| v != "1.0").prop_map(Breakage::SpecVersion),
        field_text().prop_filter("another type", |v| v != EVENT_TYPE).prop_map(Breakage::Kind),
        prop_oneof![Just(0_usize), 129_usize..1000].prop_map(Breakage::IdLength),
        any::<String>()
            .prop_filter("not RFC 3339", |text| {
                OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).is_err()
            })
            .prop_map(Breakage::Time),
        json_value().prop_filter("not an object", |v| !v.is_object()).prop_map(Breakage::NotAnObject),
    ]
}

/// One SQS record of a generated batch, and what must become of it.
#[derive(Debug, Clone)]
enum Record {
    /// A valid envelope: handled, with exactly this event.
    Valid(CloudEvent),
    /// A broken envelope: parked, with the reason.
    Broken(CloudEvent, Breakage),
    /// Any body (bytes read as SQS reads them, UTF-8): handled if by chance
    /// it is a valid envelope, else parked.
    Arbitrary(Option<String>),
}

fn record() -> impl Strategy<Value = Record> {
    prop_oneof![
        3 => cloud_event(Just(EVENT_TYPE.to_owned())).prop_map(Record::Valid),
        4 => (cloud_event(Just(EVENT_TYPE.to_owned())), breakage()).prop_map(|(e, b)| Record::Broken(e, b)),
        2 => proptest::option::of(bytes().prop_map(|b| String::from_utf8_lossy(&b).into_owned()))
            .prop_map(Record::Arbitrary),
        1 => json_value().prop_map(|v| Record::Arbitrary(Some(v.to_string()))),
    ]
}

thread_local! {
    static RUNTIME: tokio::runtime::Runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
}

/// Runs one batch of `records` through a fresh consumer: the records
/// reported failed (to be delivered again), the events its handler saw, and
/// what the dead-letter queue received (body, reason).
fn consume(records: &[Record]) -> (Vec<String>, Vec<CloudEvent>, Vec<(String, String)>) {
    let memory = Memory::new();
    let budget = Budget::new(Duration::from_secs(10));
    let processor = BatchProcessor::new(
        "fuzz-consumer",
        EVENT_TYPE,
        budget,
        Arc::new(memory.dead_letters()),
        Arc::new(memory.message_claims(budget.claim_duration())),
    );
    let mut event = SqsEvent::default();
    event.records = records
        .iter()
        .enumerate()
        .map(|(index, record)| {
            let mut message = SqsMessage::default();
            message.message_id = Some(format!("message-{index}"));
            message.body = match record {
                Record::Valid(event) => Some(serde_json::to_string(event).unwrap()),
                Record::Broken(event, breakage) => Some(breakage.apply(event)),
                Record::Arbitrary(body) => body.clone(),
            };
            message
        })
        .collect();
    let seen = Mutex::new(Vec::new());
    let handler = |event: CloudEvent| {
        seen.lock().unwrap().push(event);
        async { Ok::<(), RecordError>(()) }
    };
    let response = RUNTIME
        .with(|runtime| runtime.block_on(processor.process(event, &handler, Instant::now() + Duration::from_secs(5))));
    let failed = response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
    (failed, seen.into_inner().unwrap(), memory.parked())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn valid_envelopes_round_trip(event in cloud_event(any::<String>())) {
        let text = serde_json::to_string(&event).unwrap();
        let parsed: CloudEvent = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(&parsed, &event);
        prop_assert_eq!(parsed.time.offset(), event.time.offset());
        prop_assert_eq!(serde_json::to_string(&parsed).unwrap(), text);
    }

    #[test]
    fn bad_event_data_is_poison_never_a_panic(data in json_value()) {
        let event = CloudEvent::new("urn:test", "e1".into(), "email-send", "c", OffsetDateTime::UNIX_EPOCH, data);
        match batch::data::<domain::EmailTask>(&event) {
            Ok(task) => {
                let again = CloudEvent { data: serde_json::to_value(&task).unwrap(), ..event };
                prop_assert_eq!(batch::data::<domain::EmailTask>(&again).unwrap(), task);
            }
            Err(RecordError::Poison(reason)) => prop_assert!(reason.starts_with("invalid event data"), "{}", reason),
            Err(other) => prop_assert!(false, "not poison: {}", other),
        }
    }
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn every_record_is_handled_or_parked_with_its_reason(records in vec(record(), 1..6)) {
        // Valid envelopes of one batch get distinct ids (a shared id is a
        // duplicate delivery, which has its own tests).
        let records: Vec<Record> = records
            .into_iter()
            .enumerate()
            .map(|(index, record)| match record {
                Record::Valid(mut event) => {
                    event.id = format!("{index}-{}", event.id.chars().take(30).collect::<String>());
                    Record::Valid(event)
                }
                other => other,
            })
            .collect();
        let (failed, seen, parked) = consume(&records);
        prop_assert!(failed.is_empty(), "retried instead of handled or parked: {:?}", failed);
        for (_, reason) in &parked {
            let length = reason.chars().count();
            prop_assert!(length <= MAX_REASON_CHARS, "a reason of {} characters", length);
        }
        let mut seen = seen;
        let mut parked = parked;
        for record in &records {
            match record {
                Record::Valid(event) => {
                    let at = seen.iter().position(|s| s == event);
                    prop_assert!(at.is_some(), "{:?} was not handled", event);
                    seen.remove(at.unwrap());
                }
                Record::Broken(event, breakage) => {
                    let body = breakage.apply(event);
                    let at = parked.iter().position(|(b, reason)| *b == body && reason.contains(&breakage.reason()));
                    prop_assert!(at.is_some(), "{:?} not parked with {:?}: {:?}", breakage, breakage.reason(), parked);
                    parked.remove(at.unwrap());
                }
                Record::Arbitrary(body) => {
                    let body = body.clone().unwrap_or_default();
                    if let Some(at) = parked.iter().position(|(b, _)| *b == body) {
                        let reason = &parked[at].1;
                        prop_assert!(
                            KNOWN_REASONS.iter().any(|known| reason.starts_with(known)),
                            "unclear reason {:?}", reason
                        );
                        parked.remove(at);
                    } else {
                        let event = serde_json::from_str::<CloudEvent>(&body).ok();
                        let at = seen.iter().position(|s| event.as_ref() == Some(s));
                        prop_assert!(at.is_some(), "{:?} neither handled nor parked", body);
                        seen.remove(at.unwrap());
                    }
                }
            }
        }
        prop_assert!(seen.is_empty() && parked.is_empty(), "unexplained: {:?} {:?}", seen, parked);
    }
}

/// Regression (found by `every_record_is_handled_or_parked_with_its_reason`
/// once its strings grew long): a reason quoted the offending value whole, so
/// a 200 KB `specversion` made a 200 KB reason, logged whole, and parked as a
/// message attribute beside the body. SQS counts both toward its message size
/// limit: a large poison message could not be parked at once, and went back
/// to the queue until the redrive policy moved it, without a reason.
#[test]
fn a_dead_letter_reason_stays_short_whatever_the_message_quotes() {
    let event = CloudEvent::new("urn:test", "e1".into(), EVENT_TYPE, "c", OffsetDateTime::UNIX_EPOCH, json!({}));
    // Words, not one long token (which redaction would hide anyway).
    let long = "not one ".repeat(25_000);
    let records = [
        Record::Broken(event.clone(), Breakage::SpecVersion(long.clone())),
        Record::Broken(event.clone(), Breakage::Kind(long.clone())),
        Record::Broken(event, Breakage::Extra(long, json!(1))),
    ];
    let (failed, _, parked) = consume(&records);
    assert!(failed.is_empty());
    assert_eq!(parked.len(), 3);
    for (_, reason) in parked {
        assert!(reason.chars().count() <= MAX_REASON_CHARS, "a reason of {} characters", reason.chars().count());
    }
}
