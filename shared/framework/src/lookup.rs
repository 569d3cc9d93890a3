//! `LookupError`: why a port the framework reads through (idempotency
//! records, the caller's account) could not answer, in the two kinds the
//! HTTP layer answers differently.

/// Why a lookup failed.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The store could not be reached or is throttling: a 503, safe to retry.
    #[error("the store is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Anything else: a 500.
    #[error("the lookup failed")]
    Failed(#[source] Box<dyn std::error::Error + Send + Sync>),
}
