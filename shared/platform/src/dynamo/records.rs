//! Items that ride along in other writes' transactions: counters, outbox
//! records and idempotency records.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use domain::{DomainEvent, IdempotencyRecord};
use time::OffsetDateTime;

use super::items::{Item, get_s, get_u64, n, s};
use crate::events::CloudEvent;

pub(crate) const COUNTER_SK: &str = "COUNTER";
pub(crate) const OUTBOX_PARTITION: &str = "OUTBOX";

/// `ADD total :delta` on a named counter, creating it at zero if new.
pub(crate) fn counter(table: &str, name: &str, delta: i64) -> TransactWriteItem {
    let update = Update::builder()
        .table_name(table)
        .key("pk", s(format!("COUNTER#{name}")))
        .key("sk", s(COUNTER_SK))
        .update_expression("ADD #total :delta")
        .expression_attribute_names("#total", "total")
        .expression_attribute_values(":delta", n(delta))
        .build()
        .expect("table, key and expression are set");
    TransactWriteItem::builder().update(update).build()
}

pub(crate) fn counter_key(name: &str) -> Item {
    Item::from([("pk".into(), s(format!("COUNTER#{name}"))), ("sk".into(), s(COUNTER_SK))])
}

pub(crate) fn counter_total(item: Option<&Item>) -> u64 {
    // A counter that went below zero would be a bug; clamp rather than fail a listing.
    item.map_or(0, |item| get_u64(item, "total").unwrap_or(0))
}

/// The outbox record of `event`: committed with the write that caused it,
/// listed on `gsi1` under `OUTBOX` until the relay (or the handler) has
/// published it.
pub(crate) fn outbox(table: &str, event: &DomainEvent) -> TransactWriteItem {
    let envelope = CloudEvent::from_domain(event);
    let body = serde_json::to_string(&envelope).expect("events serialise");
    let id = event.id.to_string();
    let item = Item::from([
        ("pk".into(), s(format!("OUTBOX#{id}"))),
        ("sk".into(), s("OUTBOX")),
        ("gsi1pk".into(), s(OUTBOX_PARTITION)),
        ("gsi1sk".into(), s(id)),
        ("queue".into(), s(event.kind())),
        ("created_at".into(), n(event.occurred_at.unix_timestamp())),
        ("body".into(), s(body)),
    ]);
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
        .build()
        .expect("table and item are set");
    TransactWriteItem::builder().put(put).build()
}

pub(crate) fn idempotency_pk(key: &str) -> String {
    format!("IDEMPOTENCY#{key}")
}

/// The idempotency record; claims the key unless an unexpired record holds
/// it (DynamoDB's TTL deletes lazily, so expiry is checked here, not trusted).
pub(crate) fn idempotency(table: &str, record: &IdempotencyRecord) -> TransactWriteItem {
    let mut item = Item::from([
        ("pk".into(), s(idempotency_pk(&record.key))),
        ("sk".into(), s("IDEMPOTENCY")),
        ("fingerprint".into(), s(&record.fingerprint)),
        ("status".into(), n(record.status)),
        ("body".into(), s(&record.body)),
        ("expires_at".into(), n(record.expires_at.unix_timestamp())),
    ]);
    if let Some(location) = &record.location {
        item.insert("location".into(), s(location));
    }
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
        .expression_attribute_values(":now", n(OffsetDateTime::now_utc().unix_timestamp()))
        .build()
        .expect("table and item are set");
    TransactWriteItem::builder().put(put).build()
}

pub(crate) fn idempotency_from_item(key: &str, item: &Item) -> Result<IdempotencyRecord, domain::ports::StoreError> {
    let expires_at = get_u64(item, "expires_at")? as i64;
    Ok(IdempotencyRecord {
        key: key.to_owned(),
        fingerprint: get_s(item, "fingerprint")?.to_owned(),
        status: get_u64(item, "status")? as u16,
        body: get_s(item, "body")?.to_owned(),
        location: item.get("location").and_then(|v| v.as_s().ok()).cloned(),
        expires_at: OffsetDateTime::from_unix_timestamp(expires_at).unwrap_or(OffsetDateTime::UNIX_EPOCH),
    })
}
