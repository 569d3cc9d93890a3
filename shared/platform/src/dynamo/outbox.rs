//! The outbox's records on the table: written in the same transaction as
//! the write that caused their event, read oldest first by the relay, and
//! deleted once their event is on its queue.

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use domain::DomainEvent;
use domain::ports::StoreError;

use super::items::{get_s, n, s};
use super::layout::{Key, Partition};
use super::{Table, classify};
use crate::events::CloudEvent;

/// The outbox record of `event`: committed with the write that caused it,
/// listed on `gsi1` under `OUTBOX` until the relay (or the handler) has
/// published it.
pub(crate) fn record(table: &str, event: &DomainEvent) -> TransactWriteItem {
    let envelope = CloudEvent::from_domain(event);
    let body = serde_json::to_string(&envelope).expect("events serialise");
    let id = event.id.to_string();
    let mut item = Key::outbox(&id).item();
    item.extend(Partition::outbox().attributes(&id));
    if let Some(trace) = crate::telemetry::current_trace() {
        // The trace of the request that caused the event, for whoever publishes it.
        item.insert("trace".into(), s(trace));
    }
    item.extend([
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

/// An event waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEvent {
    /// The event's id (a ULID: oldest first is ascending).
    pub id: String,
    /// The queue it goes to (its type).
    pub queue: String,
    /// The CloudEvents envelope, as it will be sent.
    pub body: String,
    /// When its write committed (seconds since the epoch).
    pub created_at: i64,
    /// The X-Ray trace header of the request that caused it.
    pub trace: Option<String>,
}

/// The outbox's read and delete side, for the publisher and the relay.
#[derive(Clone, Debug)]
pub struct OutboxRecords {
    table: Table,
}

impl OutboxRecords {
    /// The outbox records in `table`.
    pub fn new(table: Table) -> Self {
        Self { table }
    }

    /// Up to `max` waiting events, oldest first.
    pub async fn oldest(&self, max: i32) -> Result<Vec<PendingEvent>, StoreError> {
        let listing = Partition::outbox();
        let output = self
            .table
            .client()
            .query()
            .table_name(self.table.name())
            .index_name(listing.index.name())
            .key_condition_expression("#pk = :outbox")
            .expression_attribute_names("#pk", listing.index.partition_attribute())
            .expression_attribute_values(":outbox", AttributeValue::S(listing.value.clone()))
            .scan_index_forward(true)
            .limit(max)
            .send()
            .await
            .map_err(classify)?;
        output
            .items()
            .iter()
            .map(|item| {
                Ok(PendingEvent {
                    id: get_s(item, listing.index.sort_attribute())?.to_owned(),
                    queue: get_s(item, "queue")?.to_owned(),
                    body: get_s(item, "body")?.to_owned(),
                    created_at: item
                        .get("created_at")
                        .and_then(|v| v.as_n().ok())
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0),
                    trace: item.get("trace").and_then(|v| v.as_s().ok()).cloned(),
                })
            })
            .collect()
    }

    /// Deletes the record of an event that is on its queue.
    pub async fn remove(&self, event_id: &str) -> Result<(), StoreError> {
        self.table
            .client()
            .delete_item()
            .table_name(self.table.name())
            .set_key(Some(Key::outbox(event_id).item()))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }
}
