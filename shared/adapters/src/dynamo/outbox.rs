//! The outbox's records on the table: written in the same transaction as
//! the write that caused their event, read oldest first by the relay, and
//! deleted once their event is on its queue.

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use domain::DomainEvent;
use domain::ports::StoreError;

use super::items::{Item, get_s, n, s};
use super::layout::{Key, Partition};
use super::{Table, classify};

/// The outbox record of `event`: committed with the write that caused it,
/// listed on `gsi1` under its shard of `OUTBOX` until the relay (or the
/// handler) has published it.
pub(crate) fn record(table: &str, event: &DomainEvent) -> TransactWriteItem {
    let envelope = crate::outbox::envelope(event);
    let body = serde_json::to_string(&envelope).expect("events serialise");
    let id = event.id.to_string();
    let mut item = Key::outbox(&id).item();
    item.extend(Partition::outbox(&id).attributes(&id));
    if let Some(trace) = framework::invocation::current_trace() {
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

/// A record read from the outbox: an event to send, or a record that can
/// never be sent (written by a bug or a bad migration) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxEntry {
    /// A well-formed record.
    Pending(PendingEvent),
    /// A record missing what sending needs.
    Unreadable {
        /// Its event id (its sort value in the outbox listing).
        id: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Where the next page of one outbox partition starts (DynamoDB's own
/// marker, kept inside the adapter).
#[derive(Debug, Clone)]
pub struct OutboxPosition(Item);

/// One page of one outbox partition, oldest first.
#[derive(Debug)]
pub struct OutboxPage {
    /// The records, oldest first.
    pub entries: Vec<OutboxEntry>,
    /// Where the partition continues, when it may hold more.
    pub more: Option<OutboxPosition>,
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

    /// How many partitions the outbox is spread over (its shards and the
    /// partition from before them); [`OutboxRecords::page`] reads one.
    pub fn partitions() -> usize {
        Partition::outbox_read().len()
    }

    /// Up to `max` records of partition `partition` (below
    /// [`OutboxRecords::partitions`]), oldest first, from `start`.
    pub async fn page(
        &self,
        partition: usize,
        start: Option<OutboxPosition>,
        max: i32,
    ) -> Result<OutboxPage, StoreError> {
        let listing = Partition::outbox_read()
            .into_iter()
            .nth(partition)
            .ok_or_else(|| StoreError::Failed("no such outbox partition".into()))?;
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
            .set_exclusive_start_key(start.map(|position| position.0))
            .send()
            .await
            .map_err(classify)?;
        let sort = listing.index.sort_attribute();
        let entries = output.items().iter().map(|item| entry(item, sort)).collect();
        let more = output.last_evaluated_key.filter(|key| !key.is_empty()).map(OutboxPosition);
        Ok(OutboxPage { entries, more })
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

    /// Moves a record that can never be sent out of the relay's way, under
    /// `OUTBOX#PARKED` with `reason`, for someone to look at; it is kept,
    /// not deleted. Only an existing record is parked.
    pub async fn park(&self, event_id: &str, reason: &str) -> Result<(), StoreError> {
        let parked = Partition::outbox_parked();
        let outcome = self
            .table
            .client()
            .update_item()
            .table_name(self.table.name())
            .set_key(Some(Key::outbox(event_id).item()))
            .update_expression("SET #pk = :parked, parked_reason = :reason, parked_at = :now")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#pk", parked.index.partition_attribute())
            .expression_attribute_values(":parked", AttributeValue::S(parked.value.clone()))
            .expression_attribute_values(":reason", s(reason))
            .expression_attribute_values(":now", n(time::OffsetDateTime::now_utc().unix_timestamp()))
            .send()
            .await;
        // Gone already: nothing left to park.
        super::unless_condition_failed(outcome)
    }
}

/// Reads one outbox item; what sending needs missing makes it unreadable.
fn entry(item: &Item, sort: &str) -> OutboxEntry {
    let id = item.get(sort).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
    let read = || -> Result<PendingEvent, StoreError> {
        Ok(PendingEvent {
            id: get_s(item, sort)?.to_owned(),
            queue: get_s(item, "queue")?.to_owned(),
            body: get_s(item, "body")?.to_owned(),
            created_at: item.get("created_at").and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0),
            trace: item.get("trace").and_then(|v| v.as_s().ok()).cloned(),
        })
    };
    match read() {
        Ok(pending) => OutboxEntry::Pending(pending),
        Err(error) => OutboxEntry::Unreadable { id, reason: format!("{:#}", anyhow::Error::from(error)) },
    }
}
