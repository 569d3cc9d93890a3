//! The one SQS batch processor every queue consumer runs on.
//!
//! - Partial batch responses (`ReportBatchItemFailures`): only the records
//!   that failed come back; the rest are deleted.
//! - Bounded concurrency within a batch.
//! - A panic in one record fails that record only.
//! - A span per record, with message id, event id and correlation id.
//! - Every message is validated (CloudEvents 1.0, expected type). A message
//!   that can never succeed (malformed, wrong type, bad data) is parked in
//!   the dead-letter queue at once with the reason, not retried.
//! - Idempotent: each event id is claimed before handling and marked done
//!   after, so a duplicate delivery has no second effect.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::MessageAttributeValue;
use domain::ports::ProcessedMessages;
use futures::{FutureExt, StreamExt};
use lambda_runtime::{LambdaEvent, service_fn};
use tracing::Instrument;

use crate::dynamo::DynamoProcessedMessages;
use crate::events::CloudEvent;
use crate::metrics::{MetricSet, Unit};

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

impl From<domain::ports::StoreError> for RecordError {
    fn from(error: domain::ports::StoreError) -> Self {
        Self::Retry(error.into())
    }
}

/// Where poison messages go.
#[derive(Clone, Debug)]
pub struct DeadLetters {
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
}

pub struct BatchProcessor {
    name: &'static str,
    event_type: &'static str,
    concurrency: usize,
    lease: Duration,
    dead_letters: DeadLetters,
    processed: DynamoProcessedMessages,
}

/// How one record ended, for the batch response and metrics.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    Duplicate,
    Parked,
    Failed,
}

impl BatchProcessor {
    pub fn new(
        name: &'static str,
        event_type: &'static str,
        dead_letters: DeadLetters,
        processed: DynamoProcessedMessages,
    ) -> Self {
        Self { name, event_type, concurrency: 4, lease: Duration::from_secs(60), dead_letters, processed }
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
        let processor = Arc::new(self);
        let handler = Arc::new(handler);
        lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
            let processor = processor.clone();
            let handler = handler.clone();
            async move { Ok::<_, std::convert::Infallible>(processor.process(event.payload, &*handler).await) }
        }))
        .await
    }

    /// Processes one batch; public so tests can drive it without a runtime.
    pub async fn process<H, F>(&self, event: SqsEvent, handler: &H) -> SqsBatchResponse
    where
        H: Fn(CloudEvent) -> F,
        F: Future<Output = Result<(), RecordError>>,
    {
        let cold_start = crate::telemetry::take_cold_start();
        let outcomes: Vec<(String, Outcome)> = futures::stream::iter(event.records)
            .map(|record| self.process_record(record, handler, cold_start))
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let count = |wanted: Outcome| outcomes.iter().filter(|(_, o)| *o == wanted).count() as f64;
        MetricSet::new()
            .dimension("Function", self.name)
            .value("MessagesProcessed", count(Outcome::Done), Unit::Count)
            .value("MessagesDuplicate", count(Outcome::Duplicate), Unit::Count)
            .value("MessagesParked", count(Outcome::Parked), Unit::Count)
            .value("MessagesFailed", count(Outcome::Failed), Unit::Count)
            .emit();
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

    async fn process_record<H, F>(&self, record: SqsMessage, handler: &H, cold_start: bool) -> (String, Outcome)
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
        let span = tracing::info_span!(
            "message",
            function = self.name,
            message_id = %message_id,
            event_id = %event_id,
            correlation_id = %correlation_id,
            receive_count = record.attributes.get("ApproximateReceiveCount").map(String::as_str).unwrap_or("?"),
            cold_start,
        );
        let outcome = async {
            let event = match envelope {
                Ok(event) => event,
                Err(reason) => return self.park(&record, &reason).await,
            };
            let key = format!("{}#{}", self.name, event.id);
            match self.processed.claim(&key, self.lease).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!("duplicate delivery: already handled");
                    return Outcome::Duplicate;
                }
                Err(error) => {
                    tracing::warn!(error = format!("{:#}", anyhow::Error::from(error)), "could not claim the message");
                    return Outcome::Failed;
                }
            }
            let result = match AssertUnwindSafe(handler(event)).catch_unwind().await {
                Ok(result) => result,
                Err(_) => Err(RecordError::Retry(anyhow::anyhow!("the handler panicked"))),
            };
            match result {
                Ok(()) => {
                    if let Err(error) = self.processed.complete(&key).await {
                        // The effect happened; a redelivery will find the claim or redo idempotently.
                        tracing::warn!(error = format!("{:#}", anyhow::Error::from(error)), "could not mark the message done");
                    }
                    tracing::info!("message handled");
                    Outcome::Done
                }
                Err(RecordError::Poison(reason)) => {
                    let _ = self.processed.complete(&key).await;
                    self.park(&record, &reason).await
                }
                Err(RecordError::Retry(error)) => {
                    tracing::warn!(error = format!("{error:#}"), "message failed; SQS will deliver it again");
                    let _ = self.processed.release(&key).await;
                    Outcome::Failed
                }
            }
        }
        .instrument(span)
        .await;
        (message_id, outcome)
    }

    /// Checks the envelope: CloudEvents 1.0, our event type, nothing extra.
    fn validate(&self, body: &str) -> Result<CloudEvent, String> {
        let event: CloudEvent =
            serde_json::from_str(body).map_err(|e| format!("not a CloudEvents 1.0 JSON event: {e}"))?;
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
    /// with the reason, instead of retrying it until redrive.
    async fn park(&self, record: &SqsMessage, reason: &str) -> Outcome {
        tracing::warn!(reason, "poison message parked in the dead-letter queue");
        let attribute = |value: &str| MessageAttributeValue::builder().data_type("String").string_value(value).build();
        let (Ok(reason_attribute), Ok(source_attribute)) =
            (attribute(reason), attribute(record.message_id.as_deref().unwrap_or("unknown")))
        else {
            return Outcome::Failed;
        };
        let sent = self
            .dead_letters
            .sqs
            .send_message()
            .queue_url(&self.dead_letters.queue_url)
            .message_body(record.body.clone().unwrap_or_default())
            .message_attributes("dead_letter_reason", reason_attribute)
            .message_attributes("source_message_id", source_attribute)
            .send()
            .await;
        match sent {
            Ok(_) => Outcome::Parked,
            Err(error) => {
                tracing::error!(error = %aws_sdk_sqs::error::DisplayErrorContext(error), "could not park the message; it will be retried");
                Outcome::Failed
            }
        }
    }
}

/// Parses an event's `data` into the consumer's type; bad data is poison.
pub fn data<T: serde::de::DeserializeOwned>(event: &CloudEvent) -> Result<T, RecordError> {
    serde_json::from_value(event.data.clone()).map_err(|e| RecordError::Poison(format!("invalid event data: {e}")))
}
