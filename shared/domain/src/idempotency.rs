//! The record that makes a retried request safe: stored in the same
//! transaction as the write it protects, so a crash can never leave a write
//! without its record (or a record without its write).

use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// The client's key, already scoped to the caller and route.
    pub key: String,
    /// Fingerprint of the request; the same key with another request is refused.
    pub fingerprint: String,
    /// The first response, replayed to every retry.
    pub status: u16,
    pub body: String,
    pub location: Option<String>,
    pub expires_at: OffsetDateTime,
}
