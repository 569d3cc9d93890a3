//! `Idempotency-Key` for any POST that creates something: a retry with the
//! same key and body gets the first response back and creates nothing; the
//! same key with another body is refused. Keys expire after a day.
//!
//! The record is written by the store in the *same transaction* as the
//! resource (see `OrderStore::place`), so there is no window in which one
//! exists without the other.

use std::fmt::Write as _;
use std::time::Duration;

use domain::IdempotencyRecord;
use domain::ports::IdempotencyStore;
use http::StatusCode;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::http::{ApiError, ApiRequest, ApiResponse};

/// The request header a client sets to make a create safe to retry.
pub const HEADER: &str = "idempotency-key";
/// How long a key is remembered.
pub const KEY_TTL: Duration = Duration::from_secs(24 * 60 * 60);

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
pub enum Begin {
    /// First time (or no key): go ahead, storing the record if there is a key.
    Proceed(Option<PendingKey>),
    /// Seen before with the same body: answer with the stored response.
    Replay(ApiResponse),
}

/// Reads the key and looks it up. `scope` names the route; the caller's id
/// is added, so one client's key can never replay another client's response.
pub async fn begin(request: &ApiRequest, scope: &str, store: &impl IdempotencyStore) -> Result<Begin, ApiError> {
    let Some(raw) = request.header(HEADER) else { return Ok(Begin::Proceed(None)) };
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > 255 || !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        ));
    }
    let caller = request.principal.as_ref().map_or_else(|| "guest".to_owned(), |p| p.user_id.to_string());
    let pending = PendingKey { key: format!("{scope}#{caller}#{raw}"), fingerprint: fingerprint(request) };
    match store.find(&pending.key).await? {
        None => Ok(Begin::Proceed(Some(pending))),
        Some(record) => replay(&pending, &record).map(Begin::Replay),
    }
}

/// After the store reported the key as claimed by a concurrent request:
/// answer like a retry of that request.
pub async fn resolve_race(pending: &PendingKey, store: &impl IdempotencyStore) -> Result<ApiResponse, ApiError> {
    match store.find(&pending.key).await? {
        Some(record) => replay(pending, &record),
        None => {
            Err(ApiError::conflict("request_in_progress", "a request with this Idempotency-Key is in progress; retry"))
        }
    }
}

fn replay(pending: &PendingKey, record: &IdempotencyRecord) -> Result<ApiResponse, ApiError> {
    if record.fingerprint != pending.fingerprint {
        return Err(ApiError::Validation(domain::ValidationError::field(
            "Idempotency-Key",
            "was already used with a different request body",
        )));
    }
    let body = serde_json::from_str(&record.body).ok();
    let status = StatusCode::from_u16(record.status).unwrap_or(StatusCode::OK);
    let mut response = ApiResponse { status, body, headers: Vec::new() };
    if let Some(etag) = &record.etag {
        response = response.header(http::header::ETAG, etag);
    }
    if let Some(location) = &record.location {
        response = response.header(http::header::LOCATION, location);
    }
    Ok(response.header(http::HeaderName::from_static("idempotent-replayed"), "true"))
}

/// The same request, byte for byte in its body, gets the same fingerprint.
fn fingerprint(request: &ApiRequest) -> String {
    let mut hasher = Sha256::new();
    hasher.update(request.method.as_str());
    hasher.update([0]);
    hasher.update(&request.body);
    hasher.finalize().iter().fold(String::new(), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    })
}
