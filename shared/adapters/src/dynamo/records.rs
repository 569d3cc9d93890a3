//! Idempotency records, which ride along in the transaction of the write
//! they protect; and reading a counter's total.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use domain::IdempotencyRecord;
use time::OffsetDateTime;

use super::items::{Item, get_s, get_u64, n, s};
use super::layout::Key;

/// A counter's value, signed: one shard of a sharded total may be below
/// zero (an order counted before the shards and moved after); a counter
/// unreadable or absent counts zero rather than failing a listing.
pub(crate) fn counter_value(item: Option<&Item>) -> i64 {
    item.and_then(|item| item.get("total")).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// The idempotency record; claims the key unless an unexpired record holds
/// it (DynamoDB's TTL deletes lazily, so expiry is checked here, not trusted).
pub(crate) fn idempotency(table: &str, record: &IdempotencyRecord) -> TransactWriteItem {
    let mut item = Key::idempotency(&record.key).item();
    item.extend([
        ("fingerprint".into(), s(&record.fingerprint)),
        ("status".into(), n(record.status)),
        ("body".into(), s(&record.body)),
        ("expires_at".into(), n(record.expires_at.unix_timestamp())),
    ]);
    if let Some(etag) = &record.etag {
        item.insert("etag".into(), s(etag));
    }
    if let Some(location) = &record.location {
        item.insert("location".into(), s(location));
    }
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        // Held while it has not expired, exactly as `IdempotencyStore::find` reads it.
        .condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
        .expression_attribute_values(":now", n(OffsetDateTime::now_utc().unix_timestamp()))
        .build()
        .expect("table and item are set");
    TransactWriteItem::builder().put(put).build()
}

/// The stored record as the HTTP layer replays it.
pub(crate) fn idempotency_from_item(
    key: &str,
    item: &Item,
) -> Result<framework::idempotency::IdempotencyRecord, domain::ports::StoreError> {
    let expires_at = get_u64(item, "expires_at")? as i64;
    Ok(framework::idempotency::IdempotencyRecord {
        key: key.to_owned(),
        fingerprint: get_s(item, "fingerprint")?.to_owned(),
        status: get_u64(item, "status")? as u16,
        body: get_s(item, "body")?.to_owned(),
        location: item.get("location").and_then(|v| v.as_s().ok()).cloned(),
        etag: item.get("etag").and_then(|v| v.as_s().ok()).cloned(),
        expires_at: OffsetDateTime::from_unix_timestamp(expires_at).unwrap_or(OffsetDateTime::UNIX_EPOCH),
    })
}
