//! The transactional outbox, publishing side. Every event is committed as an
//! outbox record together with the write that caused it; this module sends
//! records to their SQS queue and deletes them once sent. The handler tries
//! right after its commit; the scheduled relay sends whatever is left (SQS
//! was down, the function crashed). A record may be sent twice (send
//! succeeded, delete failed); consumers are idempotent on the event id.
//!
//! The relay drains a backlog: it pages through every shard of the outbox,
//! sends ten events per `SendMessageBatch` (authorised by `sqs:SendMessage`),
//! a few batches at a time, parks a record that can never be sent instead of
//! stopping at it, and goes round again while the last round found work,
//! until its time budget is spent.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use aws_sdk_sqs::types::{
    MessageAttributeValue, MessageSystemAttributeNameForSends, MessageSystemAttributeValue,
    SendMessageBatchRequestEntry,
};
use domain::DomainEvent;
use domain::ports::{Publisher, Unreachable};
use futures::StreamExt;

use crate::dynamo::{OutboxEntry, OutboxRecords, PendingEvent, Table};
use framework::events::CloudEvent;

/// Sends committed events to their SQS queues and deletes their outbox
/// records: `sqs:SendMessage` on each queue, `dynamodb:DeleteItem` on the
/// table, and for the relay `dynamodb:Query` on `gsi1` and `dynamodb:UpdateItem`
/// (parking) on the table.
#[derive(Clone, Debug)]
pub struct OutboxPublisher {
    records: OutboxRecords,
    sqs: aws_sdk_sqs::Client,
    queue_urls: BTreeMap<String, String>,
}

/// What one relay run did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RelayReport {
    /// Events sent and their records deleted.
    pub published: usize,
    /// Events not sent, or sent with their record left behind; the next run retries them.
    pub failed: usize,
    /// Records younger than the minimum age, left to their own handler.
    pub skipped_fresh: usize,
    /// Records that can never be sent, parked with their reason.
    pub parked: usize,
    /// Rounds over the outbox's shards (another starts while the last found work).
    pub rounds: usize,
    /// Age of the oldest event waiting when the run began, in seconds (0 when none).
    pub oldest_age_seconds: i64,
}

/// How the relay drains. [`RelayTuning::default`] is what the function
/// runs; [`RelayTuning::one_at_a_time`] is the relay it replaced, kept so
/// that `cargo xtask bench-relay` measures both with the same code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelayTuning {
    /// Shards drained at once.
    pub shards_at_once: usize,
    /// `SendMessageBatch` calls in flight at once per shard.
    pub batches_at_once: usize,
    /// Most entries in one `SendMessageBatch` (1 to 10; 1 is one call per record).
    pub batch_entries: usize,
    /// Most records one run sends; `None`: as many as its budget allows.
    pub max_records: Option<usize>,
    /// Go round again while the last round moved something.
    pub rounds_while_busy: bool,
}

impl Default for RelayTuning {
    fn default() -> Self {
        Self {
            shards_at_once: SHARDS_AT_ONCE,
            batches_at_once: BATCHES_AT_ONCE,
            batch_entries: BATCH_ENTRIES,
            max_records: None,
            rounds_while_busy: true,
        }
    }
}

impl RelayTuning {
    /// The relay before it drained in batches: one record per SQS call, one
    /// call at a time, at most 100 records a run, one pass, the rest left
    /// for the next scheduled run (a minute later).
    pub fn one_at_a_time() -> Self {
        Self {
            shards_at_once: 1,
            batches_at_once: 1,
            batch_entries: 1,
            max_records: Some(100),
            rounds_while_busy: false,
        }
    }
}

impl OutboxPublisher {
    /// A publisher over the outbox in `table`, sending each event to the URL
    /// `queue_urls` gives its type; an event whose type has none stays in the outbox.
    pub fn new(table: Table, sqs: aws_sdk_sqs::Client, queue_urls: BTreeMap<String, String>) -> Self {
        Self { records: OutboxRecords::new(table), sqs, queue_urls }
    }

    /// Sends one record and deletes it.
    async fn send(
        &self,
        id: &str,
        queue: &str,
        correlation_id: &str,
        body: &str,
        trace: Option<&str>,
    ) -> anyhow::Result<()> {
        self.send_message(queue, correlation_id, body, trace).await?;
        self.records
            .remove(id)
            .await
            .map_err(anyhow::Error::from)
            .context("event sent but its outbox record was not deleted (the relay will send it again)")?;
        Ok(())
    }

    /// Sends `body` to `queue`, carrying `trace` (the trace of the request
    /// that caused it; by default the current one) into the consumer's trace.
    async fn send_message(
        &self,
        queue: &str,
        correlation_id: &str,
        body: &str,
        trace: Option<&str>,
    ) -> anyhow::Result<()> {
        let url = self.queue_urls.get(queue).with_context(|| format!("no URL configured for queue {queue}"))?;
        let mut message = self.sqs.send_message().queue_url(url).message_body(body).message_attributes(
            "correlation_id",
            MessageAttributeValue::builder().data_type("String").string_value(correlation_id).build()?,
        );
        // Carries the X-Ray trace across the queue.
        let trace = trace.map(str::to_owned).or_else(framework::invocation::current_trace);
        if let Some(trace) = trace {
            message = message.message_system_attributes(
                MessageSystemAttributeNameForSends::AwsTraceHeader,
                MessageSystemAttributeValue::builder().data_type("String").string_value(trace).build()?,
            );
        }
        message.send().await.map_err(|e| anyhow::anyhow!("{}", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        Ok(())
    }

    /// Opens the connection to `queue` with one cheap call. Failure is only
    /// logged: the first real publish retries and reports properly.
    pub async fn warm_up(&self, queue: &str) {
        let Some(url) = self.queue_urls.get(queue) else {
            tracing::warn!(queue, "no URL configured for the queue to warm up");
            return;
        };
        let outcome = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await;
        if let Err(error) = outcome {
            tracing::warn!(queue, error = %aws_sdk_sqs::error::DisplayErrorContext(error), "SQS warm-up failed");
        }
    }

    /// Publishes outbox records older than `min_age` (younger ones are
    /// probably being published by their own handler right now), oldest
    /// first in each shard, until none is left or `budget` is spent (a batch
    /// under way finishes; what is left waits for the next run).
    pub async fn relay(&self, min_age: Duration, budget: Duration) -> anyhow::Result<RelayReport> {
        self.relay_tuned(min_age, budget, RelayTuning::default()).await
    }

    /// [`OutboxPublisher::relay`] drained as `tuning` says.
    pub async fn relay_tuned(
        &self,
        min_age: Duration,
        budget: Duration,
        tuning: RelayTuning,
    ) -> anyhow::Result<RelayReport> {
        let deadline = Instant::now() + budget;
        let mut report = RelayReport::default();
        let allowance = AtomicUsize::new(tuning.max_records.unwrap_or(usize::MAX));
        loop {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let min_age = i64::try_from(min_age.as_secs()).unwrap_or(i64::MAX);
            let drain = Drain { now, min_age, deadline, tuning, allowance: &allowance };
            let shards = futures::stream::iter(0..OutboxRecords::partitions())
                .map(|partition| self.drain_shard(partition, &drain))
                .buffer_unordered(tuning.shards_at_once.max(1))
                .collect::<Vec<_>>()
                .await;
            let mut round = RelayReport::default();
            for shard in shards {
                let shard = shard?;
                round.published += shard.published;
                round.failed += shard.failed;
                round.parked += shard.parked;
                round.skipped_fresh += shard.skipped_fresh;
                round.oldest_age_seconds = round.oldest_age_seconds.max(shard.oldest_age_seconds);
            }
            if report.rounds == 0 {
                report.oldest_age_seconds = round.oldest_age_seconds;
            }
            report.rounds += 1;
            report.published += round.published;
            report.failed += round.failed;
            report.parked += round.parked;
            report.skipped_fresh = round.skipped_fresh;
            // Go round again while the last round moved something: records
            // that were fresh or written meanwhile may be due now.
            let moved = round.published + round.parked;
            if moved == 0
                || !tuning.rounds_while_busy
                || Instant::now() >= deadline
                || allowance.load(Ordering::Relaxed) == 0
            {
                return Ok(report);
            }
        }
    }

    /// Drains one shard of the outbox, page by page, until it holds only
    /// fresh records or the deadline passes (no page is started after it).
    async fn drain_shard(&self, partition: usize, drain: &Drain<'_>) -> anyhow::Result<RelayReport> {
        let Drain { now, min_age, deadline, tuning, allowance } = *drain;
        let mut report = RelayReport::default();
        let mut start = None;
        loop {
            // Checked before every page, the first included: a shard not yet
            // reached when the budget is spent waits for the next run.
            if allowance.load(Ordering::Relaxed) == 0 || Instant::now() >= deadline {
                return Ok(report);
            }
            let page = self.records.page(partition, start, PAGE).await?;
            let mut due = Vec::new();
            let mut fresh = false;
            for entry in page.entries {
                match entry {
                    OutboxEntry::Unreadable { id, reason } => {
                        self.park(&id, &reason, &mut report).await;
                    }
                    OutboxEntry::Pending(pending) if now - pending.created_at < min_age => {
                        // Oldest first: everything after it is younger still.
                        report.skipped_fresh += 1;
                        fresh = true;
                    }
                    OutboxEntry::Pending(pending) => {
                        if report.published + report.failed + due.len() == 0 {
                            report.oldest_age_seconds = (now - pending.created_at).max(0);
                        }
                        if fresh {
                            report.skipped_fresh += 1;
                        } else if take_one(allowance) {
                            due.push(pending);
                        }
                    }
                }
            }
            let batches = batches(due, tuning.batch_entries.clamp(1, BATCH_ENTRIES));
            let outcomes = futures::stream::iter(batches)
                .map(|batch| self.send_batch(batch))
                .buffer_unordered(tuning.batches_at_once.max(1))
                .collect::<Vec<_>>()
                .await;
            for outcome in outcomes {
                report.published += outcome.published;
                report.failed += outcome.failed;
                for (id, reason) in outcome.refused {
                    self.park(&id, &reason, &mut report).await;
                }
            }
            match page.more {
                Some(more) if !fresh => start = Some(more),
                _ => return Ok(report),
            }
        }
    }

    /// Parks one record that can never be sent; a failure to park is a failure to send.
    async fn park(&self, id: &str, reason: &str, report: &mut RelayReport) {
        tracing::error!(event_id = %id, reason, "outbox record can never be sent; parked");
        match self.records.park(id, reason).await {
            Ok(()) => report.parked += 1,
            Err(error) => {
                report.failed += 1;
                tracing::warn!(event_id = %id, error = framework::telemetry::chain(&error), "could not park");
            }
        }
    }

    /// Sends up to ten events of one queue in one `SendMessageBatch` and
    /// deletes the records of those SQS accepted.
    async fn send_batch(&self, batch: Vec<PendingEvent>) -> BatchOutcome {
        let mut outcome = BatchOutcome::default();
        let Some(queue) = batch.first().map(|pending| pending.queue.clone()) else { return outcome };
        let Some(url) = self.queue_urls.get(&queue) else {
            tracing::warn!(queue, records = batch.len(), "relay has no URL for the queue; the records stay");
            outcome.failed = batch.len();
            return outcome;
        };
        let mut entries = Vec::with_capacity(batch.len());
        for (index, pending) in batch.iter().enumerate() {
            match batch_entry(index, pending) {
                Ok(entry) => entries.push(entry),
                Err(error) => outcome.refused.push((pending.id.clone(), framework::telemetry::chain(error.as_ref()))),
            }
        }
        if entries.is_empty() {
            return outcome;
        }
        let answer = self.sqs.send_message_batch().queue_url(url).set_entries(Some(entries)).send().await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) => {
                let error = aws_sdk_sqs::error::DisplayErrorContext(error);
                tracing::warn!(queue, error = %error, "relay could not send a batch");
                outcome.failed += batch.len() - outcome.refused.len();
                return outcome;
            }
        };
        for failed in answer.failed() {
            let Some(pending) = failed.id().parse::<usize>().ok().and_then(|index| batch.get(index)) else { continue };
            let reason = format!("SQS refused it: {} {}", failed.code(), failed.message().unwrap_or_default());
            if failed.sender_fault() {
                outcome.refused.push((pending.id.clone(), reason));
            } else {
                tracing::warn!(event_id = %pending.id, reason, "relay could not publish an event");
                outcome.failed += 1;
            }
        }
        let sent: Vec<&PendingEvent> = answer
            .successful()
            .iter()
            .filter_map(|ok| ok.id().parse::<usize>().ok())
            .filter_map(|i| batch.get(i))
            .collect();
        let deletes = futures::future::join_all(sent.iter().map(|pending| self.records.remove(&pending.id))).await;
        for (deleted, pending) in deletes.into_iter().zip(sent) {
            match deleted {
                Ok(()) => outcome.published += 1,
                Err(error) => {
                    outcome.failed += 1;
                    tracing::warn!(
                        event_id = %pending.id,
                        error = framework::telemetry::chain(&error),
                        "event sent but its outbox record was not deleted (the relay will send it again)"
                    );
                }
            }
        }
        outcome
    }
}

/// Records read per Query of one shard.
const PAGE: i32 = 100;
/// Shards drained at once.
const SHARDS_AT_ONCE: usize = 4;
/// `SendMessageBatch` calls in flight at once per shard.
const BATCHES_AT_ONCE: usize = 4;
/// Most entries in one `SendMessageBatch`, and most bytes (SQS allows 256 KiB in all).
const BATCH_ENTRIES: usize = 10;
const BATCH_BYTES: usize = 200 * 1024;

/// What every shard of one round shares.
#[derive(Clone, Copy)]
struct Drain<'a> {
    now: i64,
    min_age: i64,
    deadline: Instant,
    tuning: RelayTuning,
    /// Records the run may still send.
    allowance: &'a AtomicUsize,
}

/// Takes one record from the run's allowance; false when it is spent.
fn take_one(allowance: &AtomicUsize) -> bool {
    allowance.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| left.checked_sub(1)).is_ok()
}

/// What one `SendMessageBatch` did.
#[derive(Default)]
struct BatchOutcome {
    published: usize,
    failed: usize,
    /// Records that can never be sent, with why: to park.
    refused: Vec<(String, String)>,
}

/// `due` split into batches of one queue each, at most `entries` events
/// and [`BATCH_BYTES`] a batch, oldest first within a queue.
fn batches(due: Vec<PendingEvent>, entries: usize) -> Vec<Vec<PendingEvent>> {
    let mut by_queue: BTreeMap<String, Vec<PendingEvent>> = BTreeMap::new();
    for pending in due {
        by_queue.entry(pending.queue.clone()).or_default().push(pending);
    }
    let mut batches = Vec::new();
    for events in by_queue.into_values() {
        let mut batch: Vec<PendingEvent> = Vec::new();
        let mut bytes = 0;
        for pending in events {
            if batch.len() == entries || (!batch.is_empty() && bytes + pending.body.len() > BATCH_BYTES) {
                batches.push(std::mem::take(&mut batch));
                bytes = 0;
            }
            bytes += pending.body.len();
            batch.push(pending);
        }
        if !batch.is_empty() {
            batches.push(batch);
        }
    }
    batches
}

/// One entry of a `SendMessageBatch`: the event's body, its correlation id
/// and the trace of the request that caused it. A body that is not a
/// CloudEvents envelope can never be consumed: an error, so it is parked.
fn batch_entry(index: usize, pending: &PendingEvent) -> anyhow::Result<SendMessageBatchRequestEntry> {
    let envelope = serde_json::from_str::<CloudEvent>(&pending.body).map_err(|e| {
        anyhow::anyhow!("the body is not a CloudEvents envelope: {}", framework::redact::json_error(&e))
    })?;
    let mut entry = SendMessageBatchRequestEntry::builder().id(index.to_string()).message_body(&pending.body);
    if !envelope.correlationid.is_empty() {
        entry = entry.message_attributes(
            "correlation_id",
            MessageAttributeValue::builder().data_type("String").string_value(envelope.correlationid).build()?,
        );
    }
    if let Some(trace) = &pending.trace {
        entry = entry.message_system_attributes(
            MessageSystemAttributeNameForSends::AwsTraceHeader,
            MessageSystemAttributeValue::builder().data_type("String").string_value(trace).build()?,
        );
    }
    Ok(entry.build()?)
}

/// The `source` of every event the shop emits.
pub const SOURCE: &str = "urn:shop:api";

/// The CloudEvents envelope of a domain event, keeping its id, type, time and
/// correlation id: what the outbox stores and the queues carry.
pub fn envelope(event: &DomainEvent) -> CloudEvent {
    let data = serde_json::to_value(&event.data).expect("event data is plain and serialises");
    CloudEvent::new(SOURCE, event.id.to_string(), event.kind(), &event.correlation_id, event.occurred_at, data)
}

#[async_trait]
impl Publisher for OutboxPublisher {
    async fn publish_after_commit(&self, event: &DomainEvent) {
        let envelope = envelope(event);
        let body = serde_json::to_string(&envelope).expect("events serialise");
        let id = event.id.to_string();
        match self.send(&id, event.kind(), &event.correlation_id, &body, None).await {
            Ok(()) => tracing::info!(event_id = %id, kind = event.kind(), "event published"),
            Err(error) => tracing::warn!(
                event_id = %id,
                kind = event.kind(),
                error = framework::telemetry::chain(error.as_ref()),
                "event not published now; the outbox relay will"
            ),
        }
    }

    async fn publish(&self, event: &DomainEvent) -> Result<(), Unreachable> {
        let body = serde_json::to_string(&envelope(event)).expect("events serialise");
        self.send_message(event.kind(), &event.correlation_id, &body, None)
            .await
            .map_err(|error| Unreachable(error.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(index: usize, queue: &str) -> PendingEvent {
        PendingEvent {
            id: format!("{index:026}"),
            queue: queue.to_owned(),
            body: "{}".to_owned(),
            created_at: 0,
            trace: None,
        }
    }

    #[test]
    fn batches_hold_one_queue_and_at_most_their_entries() {
        let due: Vec<PendingEvent> =
            (0..23).map(|index| pending(index, if index % 2 == 0 { "a" } else { "b" })).collect();
        let tens = batches(due.clone(), BATCH_ENTRIES);
        assert_eq!(tens.iter().map(Vec::len).collect::<Vec<_>>(), [10, 2, 10, 1]);
        assert!(tens.iter().all(|batch| batch.iter().all(|p| p.queue == batch[0].queue)));
        let ones = batches(due, 1);
        assert_eq!(ones.len(), 23, "one record per call, as the relay before the batches sent them");
    }

    #[test]
    fn a_run_sends_no_more_than_its_allowance() {
        let allowance = AtomicUsize::new(2);
        assert!(take_one(&allowance));
        assert!(take_one(&allowance));
        assert!(!take_one(&allowance), "spent");
        assert_eq!(allowance.load(Ordering::Relaxed), 0);
        assert_eq!(RelayTuning::one_at_a_time().max_records, Some(100));
        assert!(RelayTuning::default().rounds_while_busy);
    }
}
