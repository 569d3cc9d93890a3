//! `Idempotency-Key` for any POST that creates something: a retry with the
//! same key and body gets the first response back and creates nothing; the
//! same key with another body is refused (422); of concurrent duplicates
//! exactly one has an effect and the others replay it. Keys expire after a day.
//!
//! A route declares itself idempotent with [`Idempotency`] and runs its write
//! inside [`Idempotency::run`]. The write stores the record (from
//! [`PendingKey::record`]) in the *same transaction* as the resource (see
//! `OrderStore::place`, `UserStore::create`, `ProductStore::create`), so there
//! is no window in which one exists without the other, and a crash between
//! the two cannot happen.

use std::fmt::Write as _;
use std::time::Duration;

use async_trait::async_trait;
use http::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::http::{ApiError, ApiRequest, ApiResponse};
pub use crate::lookup::LookupError;

/// The request header a client sets to make a create safe to retry.
pub const HEADER: &str = "idempotency-key";
/// How long a key is remembered.
pub const KEY_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// The 409 code of a key whose first request has not finished (or whose
/// record the store reports taken but cannot show): retrying is safe.
pub const KEY_IN_USE: &str = "idempotency_key_in_use";

/// The first response to a request made with an `Idempotency-Key`, kept so
/// that every retry with that key gets the same answer. A route's write
/// stores it (from [`PendingKey::record`]) in its own transaction, in
/// whatever form its store keeps; [`IdempotencyStore::find`] reads it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// The client's key, already scoped to the caller and route.
    pub key: String,
    /// Fingerprint of the request; the same key with another request is refused.
    pub fingerprint: String,
    /// The first response's HTTP status, replayed to every retry.
    pub status: u16,
    /// Its body, byte for byte.
    pub body: String,
    /// Its `Location` header, when it created something.
    pub location: Option<String>,
    /// The first response's `ETag`, replayed with it.
    pub etag: Option<String>,
    /// When the key is free again; an expired record is treated as absent.
    pub expires_at: OffsetDateTime,
}

/// Where the stored responses of requests made with an Idempotency-Key are
/// found again.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// The unexpired record under `key`, if any.
    async fn find(&self, key: &str) -> Result<Option<IdempotencyRecord>, LookupError>;
}

/// Whether a route insists on the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPolicy {
    /// Without the header the route runs unprotected: a client that retries
    /// a lost response may create twice (or, for a unique resource, get 409).
    Optional,
    /// Without the header the route answers 400 `idempotency_key_required`
    /// and does nothing: for creates a client must be able to retry blindly.
    Required,
}

/// A POST route's idempotency: its scope (the route; the caller's id is
/// added), its [`KeyPolicy`] and the store that finds earlier responses.
#[derive(Debug, Clone, Copy)]
pub struct Idempotency<'a, S> {
    scope: &'static str,
    policy: KeyPolicy,
    unhashed_fields: &'static [&'static str],
    store: &'a S,
}

impl<'a, S: IdempotencyStore> Idempotency<'a, S> {
    /// An idempotent route named `scope` (e.g. `"orders:place"`); the key is optional.
    pub fn new(scope: &'static str, store: &'a S) -> Self {
        Self { scope, policy: KeyPolicy::Optional, unhashed_fields: &[], store }
    }

    /// Sets whether the key is required.
    #[must_use]
    pub fn policy(self, policy: KeyPolicy) -> Self {
        Self { policy, ..self }
    }

    /// Top-level JSON fields left out of the request's fingerprint, for
    /// secrets: the record must not hold a fast hash of a password. The
    /// fingerprint alone can then no longer tell a retry from a request that
    /// differs in these fields, so the route must confirm every replay
    /// itself ([`Confirmed::run`]), e.g. by checking the password against
    /// the hash stored with what the first request created.
    #[must_use]
    pub fn unhashed(self, fields: &'static [&'static str]) -> Confirmed<'a, S> {
        Confirmed { route: Self { unhashed_fields: fields, ..self } }
    }

    /// Runs `write` once per key: a retry (same key, same body) gets the
    /// stored response and `write` is not called. `write` receives the
    /// pending key (if the client sent one) and must store
    /// [`PendingKey::record`] of its response with its write; when the store
    /// reports the key taken (`409 idempotency_key_in_use`), a concurrent
    /// duplicate won, and its response is returned instead.
    ///
    /// # Errors
    /// 400 for a malformed or (under [`KeyPolicy::Required`]) missing key,
    /// 422 for a key reused with another body, 409 [`KEY_IN_USE`] when the
    /// winner's record cannot be read yet, and whatever `write` returns.
    pub async fn run<E: Into<ApiError>>(
        &self,
        request: &ApiRequest,
        write: impl AsyncFnOnce(Option<&PendingKey>) -> Result<ApiResponse, E>,
    ) -> Result<ApiResponse, ApiError> {
        self.run_confirmed(request, async |_| Ok(true), write).await
    }

    /// [`Idempotency::run`], answering a replay only when `confirm` accepts it.
    /// Both closures are called at most once and by value: a future that
    /// borrows an `AsyncFn` closure is not provably `Send` to rustc, which
    /// `lambda_http` needs of a handler's future.
    async fn run_confirmed<E: Into<ApiError>>(
        &self,
        request: &ApiRequest,
        confirm: impl AsyncFnOnce(&ApiResponse) -> Result<bool, ApiError>,
        write: impl AsyncFnOnce(Option<&PendingKey>) -> Result<ApiResponse, E>,
    ) -> Result<ApiResponse, ApiError> {
        let pending = match self.begin(request).await? {
            Begin::Replay(response) => return confirmed(response, confirm).await,
            Begin::Proceed(pending) => pending,
        };
        match (write(pending.as_ref()).await.map_err(Into::into), &pending) {
            (Err(error), Some(pending)) if is_key_in_use(&error) => {
                confirmed(resolve_race(pending, self.store).await?, confirm).await
            }
            (outcome, _) => outcome,
        }
    }

    /// Reads the key and looks it up.
    async fn begin(&self, request: &ApiRequest) -> Result<Begin, ApiError> {
        let Some(value) = request.headers.get(HEADER) else {
            return match self.policy {
                KeyPolicy::Optional => Ok(Begin::Proceed(None)),
                KeyPolicy::Required => Err(ApiError::bad_request(
                    "idempotency_key_required",
                    "this request needs an Idempotency-Key header (a fresh UUID per operation)",
                )),
            };
        };
        // A value beyond ASCII is refused, never taken for a missing key (which would drop the protection).
        let raw = value.to_str().unwrap_or_default().trim();
        if raw.is_empty() || raw.len() > 255 || !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ApiError::bad_request(
                "invalid_idempotency_key",
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            ));
        }
        // The caller's id is part of the key: one client's key never replays another's response.
        let caller = request.principal.as_ref().map_or_else(|| "guest".to_owned(), |p| p.subject.to_string());
        let pending = PendingKey {
            key: format!("{}#{caller}#{raw}", self.scope),
            fingerprint: fingerprint(request, self.unhashed_fields),
        };
        match self.store.find(&pending.key).await.map_err(ApiError::from)? {
            None => Ok(Begin::Proceed(Some(pending))),
            Some(record) => replay(&pending, &record).map(Begin::Replay),
        }
    }
}

/// A route whose fingerprint leaves secret fields out
/// ([`Idempotency::unhashed`]): it cannot run without confirming replays.
#[derive(Debug, Clone, Copy)]
pub struct Confirmed<'a, S> {
    route: Idempotency<'a, S>,
}

impl<S: IdempotencyStore> Confirmed<'_, S> {
    /// [`Idempotency::run`], except that a replay (a stored response whose
    /// fingerprint matches) is answered only when `confirm(&response)` says
    /// the request's secret fields are those of the request that stored it;
    /// otherwise the answer is the 422 of a key reused with another body.
    ///
    /// # Errors
    /// Those of [`Idempotency::run`], and whatever `confirm` returns.
    pub async fn run<E: Into<ApiError>>(
        &self,
        request: &ApiRequest,
        confirm: impl AsyncFnOnce(&ApiResponse) -> Result<bool, ApiError>,
        write: impl AsyncFnOnce(Option<&PendingKey>) -> Result<ApiResponse, E>,
    ) -> Result<ApiResponse, ApiError> {
        self.route.run_confirmed(request, confirm, write).await
    }
}

/// `response`, if `confirm` accepts it as the answer to this request.
async fn confirmed(
    response: ApiResponse,
    confirm: impl AsyncFnOnce(&ApiResponse) -> Result<bool, ApiError>,
) -> Result<ApiResponse, ApiError> {
    if confirm(&response).await? { Ok(response) } else { Err(reused_key()) }
}

/// The 422 of a key sent again with another request.
fn reused_key() -> ApiError {
    ApiError::invalid_field("Idempotency-Key", "was already used with a different request body")
}

/// The retryable 409 [`KEY_IN_USE`]: what a write answers when its store
/// reports the key taken (a concurrent duplicate stored it first).
pub fn key_in_use() -> ApiError {
    ApiError::conflict(KEY_IN_USE, "a request with this Idempotency-Key is in progress; retry")
}

/// Whether `error` is the store's "this key was stored first".
fn is_key_in_use(error: &ApiError) -> bool {
    matches!(error, ApiError::Conflict { code, .. } if *code == KEY_IN_USE)
}

/// A key this request may claim, with its request fingerprint.
#[derive(Debug, Clone)]
pub struct PendingKey {
    key: String,
    fingerprint: String,
}

impl PendingKey {
    /// The record to store with the write: it replays `response`.
    pub fn record(&self, response: &ApiResponse) -> IdempotencyRecord {
        let header = |wanted: http::HeaderName| {
            response
                .headers
                .iter()
                .find(|(name, _)| *name == wanted)
                .and_then(|(_, value)| value.to_str().ok())
                .map(str::to_owned)
        };
        IdempotencyRecord {
            key: self.key.clone(),
            fingerprint: self.fingerprint.clone(),
            status: response.status.as_u16(),
            body: response.body.as_ref().map(ToString::to_string).unwrap_or_default(),
            location: header(http::header::LOCATION),
            etag: header(http::header::ETAG),
            expires_at: OffsetDateTime::now_utc() + KEY_TTL,
        }
    }
}

/// What to do with a request that may carry a key.
#[derive(Debug)]
enum Begin {
    /// First time (or no key): go ahead, storing the record if there is a key.
    Proceed(Option<PendingKey>),
    /// Seen before with the same body: answer with the stored response.
    Replay(ApiResponse),
}

/// After the store reported the key as claimed by a concurrent request:
/// answer like a retry of that request.
async fn resolve_race(pending: &PendingKey, store: &impl IdempotencyStore) -> Result<ApiResponse, ApiError> {
    match store.find(&pending.key).await.map_err(ApiError::from)? {
        Some(record) => replay(pending, &record),
        None => Err(key_in_use()),
    }
}

fn replay(pending: &PendingKey, record: &IdempotencyRecord) -> Result<ApiResponse, ApiError> {
    if record.fingerprint != pending.fingerprint {
        return Err(reused_key());
    }
    let body = serde_json::from_str(&record.body).ok();
    let status = StatusCode::from_u16(record.status).unwrap_or(StatusCode::OK);
    let mut response = ApiResponse { status, body, text: None, headers: Vec::new() };
    if let Some(etag) = &record.etag {
        response = response.header(http::header::ETAG, etag);
    }
    if let Some(location) = &record.location {
        response = response.header(http::header::LOCATION, location);
    }
    Ok(response.header(http::HeaderName::from_static("idempotent-replayed"), "true"))
}

/// The same request, byte for byte in its body, gets the same fingerprint;
/// with `unhashed` fields, a JSON object body is hashed without them.
fn fingerprint(request: &ApiRequest, unhashed: &[&str]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(request.method.as_str());
    hasher.update([0]);
    match serde_json::from_slice::<Value>(&request.body) {
        Ok(Value::Object(mut fields)) if !unhashed.is_empty() => {
            for field in unhashed {
                fields.remove(*field);
            }
            hasher.update(Value::Object(fields).to_string());
        }
        _ => hasher.update(&request.body),
    }
    hasher.finalize().iter().fold(String::new(), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use super::*;

    /// A store whose writes keep their record in the same step, as a
    /// route's transaction does; it counts the writes that took effect.
    #[derive(Default)]
    struct Memory {
        records: Mutex<HashMap<String, IdempotencyRecord>>,
        effects: AtomicUsize,
    }

    impl Memory {
        fn new() -> Self {
            Self::default()
        }

        fn idempotency(&self) -> &Self {
            self
        }

        fn idempotency_records(&self) -> Vec<IdempotencyRecord> {
            self.records.lock().unwrap().values().cloned().collect()
        }
    }

    #[async_trait]
    impl IdempotencyStore for Memory {
        async fn find(&self, key: &str) -> Result<Option<IdempotencyRecord>, LookupError> {
            Ok(self.records.lock().unwrap().get(key).cloned())
        }
    }

    #[async_trait]
    impl IdempotencyStore for &Memory {
        async fn find(&self, key: &str) -> Result<Option<IdempotencyRecord>, LookupError> {
            (*self).find(key).await
        }
    }

    fn keyed(body: &str, key: Option<&str>) -> ApiRequest {
        let mut request = ApiRequest::new(http::Method::POST);
        request.body = body.as_bytes().to_vec();
        if let Some(key) = key {
            request.headers.insert(HEADER, key.parse().unwrap());
        }
        request
    }

    /// Finds nothing the first time: the lookup of a request whose duplicate
    /// is about to commit.
    struct LookupBeforeTheWinnerCommits<'a> {
        inner: &'a Memory,
        looked: AtomicBool,
    }

    #[async_trait]
    impl IdempotencyStore for LookupBeforeTheWinnerCommits<'_> {
        async fn find(&self, key: &str) -> Result<Option<IdempotencyRecord>, LookupError> {
            if self.looked.swap(true, Ordering::SeqCst) { self.inner.find(key).await } else { Ok(None) }
        }
    }

    /// Has an effect and stores the record with it, as a route's write does;
    /// a key stored first refuses both.
    fn write(memory: &Memory, key: Option<&PendingKey>, response: ApiResponse) -> Result<ApiResponse, ApiError> {
        if let Some(key) = key {
            let record = key.record(&response);
            let mut records = memory.records.lock().unwrap();
            if records.contains_key(&record.key) {
                return Err(key_in_use());
            }
            records.insert(record.key.clone(), record);
        }
        memory.effects.fetch_add(1, Ordering::SeqCst);
        Ok(response)
    }

    #[tokio::test]
    async fn a_required_key_that_is_missing_is_400_and_nothing_runs() {
        let memory = Memory::new();
        let store = memory.idempotency();
        let route = Idempotency::new("test", &store).policy(KeyPolicy::Required);
        let mut ran = false;
        let error = route
            .run(&keyed("{}", None), async |_| -> Result<_, ApiError> {
                ran = true;
                Ok(ApiResponse::no_content())
            })
            .await
            .unwrap_err();
        assert_eq!((error.code(), ran), ("idempotency_key_required", false));
        let optional = Idempotency::new("test", &store);
        let request = keyed("{}", None);
        assert!(optional.run(&request, async |key| Ok::<_, ApiError>(ApiResponse::ok(key.is_none()))).await.is_ok());
    }

    #[tokio::test]
    async fn a_duplicate_that_loses_the_race_answers_with_the_winners_response() {
        let memory = Memory::new();
        let store = LookupBeforeTheWinnerCommits { inner: memory.idempotency(), looked: AtomicBool::new(false) };
        let route = Idempotency::new("test", &store);
        // The winner committed between this request's lookup and its write.
        let winner =
            PendingKey { key: "test#guest#k".into(), fingerprint: fingerprint(&keyed("{\"n\":1}", None), &[]) };
        write(&memory, Some(&winner), ApiResponse::created(serde_json::json!({"id": "first"}), "/x/first")).unwrap();

        let mut wrote = false;
        let response = route
            .run(&keyed("{\"n\":1}", Some("k")), async |key| {
                wrote = true;
                write(&memory, key, ApiResponse::created(serde_json::json!({"id": "second"}), "/x/second"))
            })
            .await
            .unwrap();
        assert!(wrote, "this request did try to write");
        assert_eq!(response.body, Some(serde_json::json!({"id": "first"})), "and answers with the winner's response");
        assert_eq!(memory.idempotency_records().len(), 1);
        assert_eq!(memory.effects.load(Ordering::SeqCst), 1, "one effect");
    }

    /// Regression (found by contract fuzzing): a key of bytes beyond ASCII
    /// read as no key at all, so the order was placed unprotected.
    #[tokio::test]
    async fn a_key_beyond_ascii_is_refused_not_ignored() {
        let memory = Memory::new();
        let store = memory.idempotency();
        let mut request = keyed("{}", None);
        request.headers.insert(HEADER, http::HeaderValue::from_bytes(b"caf\xe9").unwrap());
        let mut ran = false;
        let error = Idempotency::new("test", &store)
            .run(&request, async |_| -> Result<_, ApiError> {
                ran = true;
                Ok(ApiResponse::no_content())
            })
            .await
            .unwrap_err();
        assert_eq!((error.code(), ran), ("invalid_idempotency_key", false));
    }

    #[test]
    fn a_key_in_use_is_the_retryable_409() {
        let error = key_in_use();
        assert_eq!((error.status(), error.code()), (StatusCode::CONFLICT, KEY_IN_USE));
        assert!(is_key_in_use(&error));
    }

    #[tokio::test]
    async fn a_replay_the_route_does_not_confirm_is_refused_like_another_body() {
        let memory = Memory::new();
        let store = memory.idempotency();
        let route = Idempotency::new("test", &store).unhashed(&["password"]);
        let first = keyed(r#"{"email":"a@example.com","password":"one long password"}"#, Some("k"));
        let created = ApiResponse::created(serde_json::json!({"id": "first"}), "/x/first");
        route.run(&first, async |_| Ok(true), async |key| write(&memory, key, created)).await.unwrap();

        let retry = keyed(r#"{"email":"a@example.com","password":"another password"}"#, Some("k"));
        let mut wrote = false;
        let refused = route
            .run(
                &retry,
                async |replayed| Ok(replayed.body != Some(serde_json::json!({"id": "first"}))),
                async |_| -> Result<_, ApiError> {
                    wrote = true;
                    Ok(ApiResponse::no_content())
                },
            )
            .await
            .unwrap_err();
        assert_eq!((refused.status(), wrote), (StatusCode::UNPROCESSABLE_ENTITY, false));
        let same = route
            .run(&first, async |_| Ok(true), async |_| Ok::<_, ApiError>(ApiResponse::no_content()))
            .await
            .unwrap();
        assert_eq!(same.body, Some(serde_json::json!({"id": "first"})), "a confirmed replay answers as before");
    }

    #[test]
    fn unhashed_fields_leave_the_fingerprint_and_the_rest_still_counts() {
        let a = keyed(r#"{"email":"a@example.com","password":"one long password"}"#, None);
        let b = keyed(r#"{"email":"a@example.com","password":"another password"}"#, None);
        let c = keyed(r#"{"email":"b@example.com","password":"one long password"}"#, None);
        assert_eq!(fingerprint(&a, &["password"]), fingerprint(&b, &["password"]));
        assert_ne!(fingerprint(&a, &["password"]), fingerprint(&c, &["password"]));
        assert_ne!(fingerprint(&a, &[]), fingerprint(&b, &[]), "without the option every byte counts");
    }
}
