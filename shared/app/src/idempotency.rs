//! The HTTP layer's idempotency record handed to the shop's stores: a
//! route's write stores `framework::idempotency`'s record in the domain's
//! form, in the same transaction as its change.

/// `record` as the shop's stores write it.
pub(crate) fn stored(record: framework::idempotency::IdempotencyRecord) -> domain::IdempotencyRecord {
    let framework::idempotency::IdempotencyRecord { key, fingerprint, status, body, location, etag, expires_at } =
        record;
    domain::IdempotencyRecord { key, fingerprint, status, body, location, etag, expires_at }
}
