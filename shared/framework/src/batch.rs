//! The one SQS batch processor every queue consumer runs on.
//!
//! - Partial batch responses (`ReportBatchItemFailures`): only the records
//!   that failed come back; the rest are deleted.
//! - Bounded concurrency within a batch, and a deadline before Lambda's own:
//!   a record still running then is reported failed (SQS delivers it again).
//! - A panic in one record fails that record only.
//! - A span per record, with message id, event id and correlation id.
//! - Every message is validated (CloudEvents 1.0, expected type). A message
//!   that can never succeed (malformed, wrong type, bad data) is parked in
//!   the dead-letter queue at once with the reason, not retried.
//! - Idempotent: each event id is claimed before handling and marked done
//!   after, so a duplicate delivery has no second effect. Only "done" is a
//!   duplicate: a message whose claim is still held (its handler is running,
//!   or crashed and its claim has not expired) goes back to the queue.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::{FutureExt, StreamExt};
use lambda_runtime::{LambdaEvent, service_fn};
use tracing::Instrument;

use crate::budget::{Budget, lambda_deadline};
use crate::events::CloudEvent;
use crate::metrics::{self, names};
use crate::redact;
use crate::runtime::WarmUps;

/// How one record failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Might work later (a dependency is down): SQS will deliver it again.
    #[error("retry later: {0:#}")]
    Retry(anyhow::Error),
    /// Can never work: parked in the dead-letter queue with this reason.
    #[error("poison message: {0}")]
    Poison(String),
}

impl RecordError {
    /// A failure that might go away (a store or queue is down): retry later.
    pub fn retry(error: impl Into<anyhow::Error>) -> Self {
        Self::Retry(error.into())
    }
}

impl From<Unavailable> for RecordError {
    fn from(error: Unavailable) -> Self {
        Self::Retry(anyhow::Error::from_boxed(error))
    }
}

/// Why a claim store or a dead-letter queue did not do what was asked (down,
/// throttling, refused): the record is tried again later.
pub type Unavailable = Box<dyn std::error::Error + Send + Sync>;

/// What claiming a message found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Ours now: handle it, then `complete` it (or `release` it on failure).
    Acquired,
    /// Handled before: a duplicate delivery, with nothing left to do.
    Done,
    /// Someone is handling it right now, or crashed or timed out doing so and
    /// their claim has not expired yet. Not a duplicate: it must be tried
    /// again later, never dropped.
    InProgress,
}

/// Claims on messages: which are being handled and which were handled, so a
/// duplicate delivery has no second effect. A claim holds at least as long as the
/// longest invocation that could still be working on it (the function's
/// timeout), so a crashed or timed-out attempt never blocks a message for good.
#[async_trait]
pub trait MessageClaims: Send + Sync {
    /// Claims `key` for one handling, unless it is done or held by a live claim.
    async fn claim(&self, key: &str) -> Result<Claim, Unavailable>;
    /// Marks `key` done for good (kept for days, then expired).
    async fn complete(&self, key: &str) -> Result<(), Unavailable>;
    /// Gives up a claim, so the next delivery handles the message again: after
    /// a failure, or after a message was parked (a redriven message must run).
    async fn release(&self, key: &str) -> Result<(), Unavailable>;
}

/// Where queue messages that can never succeed are parked, with the reason:
/// the queue's dead-letter queue.
#[async_trait]
pub trait DeadLetters: Send + Sync {
    /// Stores `body` (as received) with why it was parked.
    async fn park(&self, body: &str, reason: &str, source_message_id: &str) -> Result<(), Unavailable>;
}

/// The Lambda invocation a batch belongs to.
struct Invocation {
    request_id: String,
    /// Its X-Ray trace header.
    trace: String,
}

/// Runs one consumer's handler over each SQS batch with the guarantees in
/// this module's header; built once per process in `main`.
pub struct BatchProcessor {
    name: &'static str,
    event_type: &'static str,
    concurrency: usize,
    budget: Budget,
    dead_letters: Arc<dyn DeadLetters>,
    claims: Arc<dyn MessageClaims>,
    /// Init's I/O, finished before the first batch.
    warm_ups: Option<Arc<WarmUps>>,
}

/// How one record ended, for the batch response, metrics and its trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Handled now; the message is deleted.
    Done,
    /// Already handled by an earlier delivery; deleted without running again.
    Duplicate,
    /// Can never succeed; moved to the dead-letter queue and deleted.
    Parked,
    /// Not finished; reported in the batch response so SQS delivers it again.
    Failed,
}

impl Outcome {
    /// The outcome as a trace annotates it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Duplicate => "duplicate",
            Self::Parked => "parked",
            Self::Failed => "failed",
        }
    }
}

impl BatchProcessor {
    /// A processor for the consumer `name` (its metric dimension and the prefix
    /// of its idempotency claims) that accepts only events of `event_type`,
    /// by default four records at a time.
    pub fn new(
        name: &'static str,
        event_type: &'static str,
        budget: Budget,
        dead_letters: Arc<dyn DeadLetters>,
        claims: Arc<dyn MessageClaims>,
    ) -> Self {
        Self { name, event_type, concurrency: 4, budget, dead_letters, claims, warm_ups: None }
    }

    /// Waits for `warm_ups` (init's connections and reads, running at once)
    /// before taking the first batch.
    pub fn after_warm_ups(mut self, warm_ups: Arc<WarmUps>) -> Self {
        self.warm_ups = Some(warm_ups);
        self
    }

    /// How many records of one batch run at once.
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// Hands the process over to the Lambda runtime.
    pub async fn serve<H, F>(self, handler: H) -> Result<(), lambda_runtime::Error>
    where
        H: Fn(CloudEvent) -> F + Send + Sync + 'static,
        F: Future<Output = Result<(), RecordError>> + Send,
    {
        if let Some(warm_ups) = &self.warm_ups {
            warm_ups.finish().await;
        }
        let processor = Arc::new(self);
        let handler = Arc::new(handler);
        lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
            let processor = processor.clone();
            let handler = handler.clone();
            async move {
                let deadline = processor.deadline(lambda_deadline(event.context.deadline));
                let invocation = Invocation {
                    request_id: event.context.request_id.clone(),
                    trace: event.context.xray_trace_id.clone().unwrap_or_default(),
                };
                let response = processor.process_invocation(event.payload, &*handler, deadline, &invocation).await;
                Ok::<_, std::convert::Infallible>(response)
            }
        }))
        .await
    }

    /// When a batch starting now must be finished: before Lambda's deadline
    /// (when known) with a margin to report, and never after the function timeout.
    pub fn deadline(&self, lambda_deadline: Option<Instant>) -> Instant {
        self.budget.work_deadline(Instant::now(), lambda_deadline, self.budget.function_timeout())
    }

    /// Processes one batch; records unfinished at `deadline` are reported
    /// failed. Public so tests can drive it without a runtime.
    pub async fn process<H, F>(&self, event: SqsEvent, handler: &H, deadline: Instant) -> SqsBatchResponse
    where
        H: Fn(CloudEvent) -> F,
        F: Future<Output = Result<(), RecordError>>,
    {
        let invocation = Invocation { request_id: "local".into(), trace: String::new() };
        self.process_invocation(event, handler, deadline, &invocation).await
    }

    /// Processes the batch of one Lambda invocation.
    async fn process_invocation<H, F>(
        &self,
        event: SqsEvent,
        handler: &H,
        deadline: Instant,
        invocation: &Invocation,
    ) -> SqsBatchResponse
    where
        H: Fn(CloudEvent) -> F,
        F: Future<Output = Result<(), RecordError>>,
    {
        crate::telemetry::begin_invocation();
        crate::telemetry::log_event(|| serde_json::to_value(&event).unwrap_or_default());
        let cold_start = crate::invocation::take_cold_start();
        let outcomes: Vec<(String, Outcome)> = futures::stream::iter(event.records)
            .map(|record| self.process_record(record, handler, cold_start, deadline, invocation))
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        crate::trace::flush();
        let count = |wanted: Outcome| outcomes.iter().filter(|(_, o)| *o == wanted).count() as f64;
        metrics::count(names::COLD_START, f64::from(u8::from(cold_start)));
        metrics::count(names::MESSAGES_PROCESSED, count(Outcome::Done));
        metrics::count(names::MESSAGES_DUPLICATE, count(Outcome::Duplicate));
        metrics::count(names::MESSAGES_PARKED, count(Outcome::Parked));
        metrics::count(names::MESSAGES_FAILED, count(Outcome::Failed));
        metrics::count(names::RECORDS_FAILED, count(Outcome::Failed) + count(Outcome::Parked));
        metrics::flush(&[
            (metrics::REQUEST_ID, &invocation.request_id),
            (metrics::TRACE_ID, crate::invocation::trace_id(&invocation.trace)),
        ]);
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = outcomes
            .into_iter()
            .filter(|(_, outcome)| *outcome == Outcome::Failed)
            .map(|(id, _)| {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                failure
            })
            .collect();
        response
    }

    async fn process_record<H, F>(
        &self,
        record: SqsMessage,
        handler: &H,
        cold_start: bool,
        deadline: Instant,
        invocation: &Invocation,
    ) -> (String, Outcome)
    where
        H: Fn(CloudEvent) -> F,
        F: Future<Output = Result<(), RecordError>>,
    {
        let message_id = record.message_id.clone().unwrap_or_default();
        let body = record.body.clone().unwrap_or_default();
        let envelope = self.validate(&body);
        let (event_id, correlation_id) = match &envelope {
            Ok(event) => (event.id.clone(), event.correlationid.clone()),
            Err(_) => (String::new(), String::new()),
        };
        // The record's own trace, carried from the request that caused it
        // through the outbox and the queue; else the invocation's.
        let trace = record.attributes.get("AWSTraceHeader").cloned().unwrap_or_else(|| invocation.trace.clone());
        let span = tracing::info_span!(
            "message",
            function = self.name,
            request_id = %invocation.request_id,
            trace_id = %crate::invocation::trace_id(&trace),
            message_id = %message_id,
            event_id = %event_id,
            correlation_id = %correlation_id,
            receive_count = record.attributes.get("ApproximateReceiveCount").map_or("?", String::as_str),
            cold_start,
        );
        let work = async {
            match envelope {
                Ok(event) => self.handle(event, &body, &message_id, handler, deadline).await,
                Err(reason) => self.park(&body, &reason, &message_id).await,
            }
        };
        let (started, wall) = (Instant::now(), std::time::SystemTime::now());
        let outcome = crate::invocation::with_trace(trace.clone(), work.instrument(span)).await;
        crate::trace::work(
            &trace,
            &crate::trace::Work {
                function: self.name,
                route: self.event_type,
                outcome: outcome.as_str(),
                fault: outcome == Outcome::Failed,
                cold_start,
                started: wall,
                took: started.elapsed(),
            },
        );
        (message_id, outcome)
    }

    async fn handle<H, F>(
        &self,
        event: CloudEvent,
        body: &str,
        message_id: &str,
        handler: &H,
        deadline: Instant,
    ) -> Outcome
    where
        H: Fn(CloudEvent) -> F,
        F: Future<Output = Result<(), RecordError>>,
    {
        let key = format!("{}#{}", self.name, event.id);
        match self.claims.claim(&key).await {
            Ok(Claim::Acquired) => {}
            Ok(Claim::Done) => {
                tracing::info!("duplicate delivery: already handled");
                return Outcome::Duplicate;
            }
            Ok(Claim::InProgress) => {
                tracing::info!("another attempt holds this message; it goes back to the queue");
                return Outcome::Failed;
            }
            Err(error) => {
                tracing::warn!(error = crate::telemetry::chain(error.as_ref()), "could not claim the message");
                return Outcome::Failed;
            }
        }
        let attempt = AssertUnwindSafe(handler(event)).catch_unwind();
        let result = match tokio::time::timeout_at(deadline.into(), attempt).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(RecordError::Retry(anyhow::anyhow!("the handler panicked"))),
            Err(_) => {
                // Its effect may still land (a request in flight), so the claim
                // stays until it expires, which is before SQS redelivers.
                tracing::warn!("message not finished before the deadline; SQS will deliver it again");
                return Outcome::Failed;
            }
        };
        match result {
            Ok(()) => {
                if let Err(error) = self.claims.complete(&key).await {
                    // The effect happened; a redelivery after the claim expires redoes it idempotently.
                    tracing::warn!(error = crate::telemetry::chain(error.as_ref()), "could not mark the message done");
                }
                tracing::info!("message handled");
                Outcome::Done
            }
            Err(RecordError::Poison(reason)) => {
                // Parked first, released after: a message is never marked
                // handled without being handled, and a redriven one runs again.
                let outcome = self.park(body, &reason, message_id).await;
                self.release(&key).await;
                outcome
            }
            Err(RecordError::Retry(error)) => {
                tracing::warn!(
                    error = crate::telemetry::chain(error.as_ref()),
                    "message failed; SQS will deliver it again"
                );
                self.release(&key).await;
                Outcome::Failed
            }
        }
    }

    async fn release(&self, key: &str) {
        if let Err(error) = self.claims.release(key).await {
            tracing::warn!(
                error = crate::telemetry::chain(error.as_ref()),
                "could not release the claim; it expires on its own"
            );
        }
    }

    /// Checks the envelope: CloudEvents 1.0, our event type, nothing extra.
    fn validate(&self, body: &str) -> Result<CloudEvent, String> {
        let event: CloudEvent = serde_json::from_str(body)
            .map_err(|e| format!("not a CloudEvents 1.0 JSON event: {}", redact::json_error(&e)))?;
        if event.specversion != "1.0" {
            return Err(format!("unsupported specversion {:?}", event.specversion));
        }
        if event.kind != self.event_type {
            return Err(format!("expected event type {:?}, got {:?}", self.event_type, event.kind));
        }
        if event.id.is_empty() || event.id.len() > 128 {
            return Err("event id must be 1 to 128 characters".into());
        }
        Ok(event)
    }

    /// Moves a message that can never succeed to the dead-letter queue now,
    /// with the reason, instead of retrying it until redrive. If parking
    /// fails, the message is retried: it is never dropped.
    async fn park(&self, body: &str, reason: &str, message_id: &str) -> Outcome {
        // A reason may quote the message (a parser's complaint): never an
        // address or a token, and never the whole of a huge value, which
        // beside the body would push the parked message past SQS's size limit.
        let reason = &shorten(&redact::text(reason), MAX_REASON_CHARS);
        match self.dead_letters.park(body, reason, message_id).await {
            Ok(()) => {
                tracing::warn!(reason, "poison message parked in the dead-letter queue");
                Outcome::Parked
            }
            Err(error) => {
                tracing::error!(
                    reason,
                    error = crate::telemetry::chain(error.as_ref()),
                    "could not park the message; it will be retried"
                );
                Outcome::Failed
            }
        }
    }
}

/// The longest dead-letter reason, in characters; longer ones are cut.
pub const MAX_REASON_CHARS: usize = 512;

/// `text`, cut to at most `max` characters (the last one an ellipsis) when longer.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(max.saturating_sub(1)).collect();
    short.push('…');
    short
}

/// Parses an event's `data` into the consumer's type; bad data is poison.
pub fn data<T: serde::de::DeserializeOwned>(event: &CloudEvent) -> Result<T, RecordError> {
    serde_json::from_value(event.data.clone())
        .map_err(|e| RecordError::Poison(format!("invalid event data: {}", redact::json_error(&e))))
}
