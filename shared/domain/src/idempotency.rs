//! The record that makes a retried request safe: stored in the same
//! transaction as the write it protects, so a crash can never leave a write
//! without its record (or a record without its write). This is the form the
//! shop's stores write; the HTTP layer's own record and its lookup port are
//! `framework::idempotency`'s, and `app` hands a route's record over in
//! this form (`app::idempotency::stored`), so the domain needs no HTTP crate.

use time::OffsetDateTime;

/// The first response to a request made with an `Idempotency-Key`, kept so
/// that every retry with that key gets the same answer.
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
    /// The first response\'s `ETag`, replayed with it.
    pub etag: Option<String>,
    /// When the key is free again; an expired record is treated as absent.
    pub expires_at: OffsetDateTime,
}
