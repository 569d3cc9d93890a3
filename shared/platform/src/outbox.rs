//! The transactional outbox, publishing side. Every event is committed as an
//! outbox record together with the write that caused it; this module sends
//! records to their SQS queue and deletes them once sent. The handler tries
//! right after its commit; the scheduled relay sends whatever is left (SQS
//! was down, the function crashed). A record may be sent twice (send
//! succeeded, delete failed); consumers are idempotent on the event id.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeNameForSends, MessageSystemAttributeValue};
use domain::DomainEvent;
use domain::ports::{Publisher, Unreachable};

use crate::dynamo::{OutboxRecords, Table};
use crate::events::CloudEvent;

/// Sends committed events to their SQS queues and deletes their outbox
/// records: `sqs:SendMessage` on each queue, `dynamodb:DeleteItem` on the
/// table, and for the relay `dynamodb:Query` on `gsi1`.
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
    /// Age of the oldest event waiting when the run began, in seconds (0 when none).
    pub oldest_age_seconds: i64,
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
        let trace = trace.map(str::to_owned).or_else(crate::telemetry::current_trace);
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
    /// first, up to `max` of them.
    pub async fn relay(&self, min_age: Duration, max: i32) -> anyhow::Result<RelayReport> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut report = RelayReport::default();
        let pending_events = self.records.oldest(max).await?;
        report.oldest_age_seconds = pending_events.first().map_or(0, |oldest| (now - oldest.created_at).max(0));
        for pending in pending_events {
            if now - pending.created_at < min_age.as_secs() as i64 {
                report.skipped_fresh += 1;
                continue;
            }
            let (id, body) = (&pending.id, &pending.body);
            let correlation_id = serde_json::from_str::<CloudEvent>(body).map(|e| e.correlationid).unwrap_or_default();
            match self.send(id, &pending.queue, &correlation_id, body, pending.trace.as_deref()).await {
                Ok(()) => report.published += 1,
                Err(error) => {
                    report.failed += 1;
                    tracing::warn!(event_id = %id, error = format!("{error:#}"), "relay could not publish an event");
                }
            }
        }
        Ok(report)
    }
}

#[async_trait]
impl Publisher for OutboxPublisher {
    async fn publish_after_commit(&self, event: &DomainEvent) {
        let envelope = CloudEvent::from_domain(event);
        let body = serde_json::to_string(&envelope).expect("events serialise");
        let id = event.id.to_string();
        match self.send(&id, event.kind(), &event.correlation_id, &body, None).await {
            Ok(()) => tracing::info!(event_id = %id, kind = event.kind(), "event published"),
            Err(error) => tracing::warn!(
                event_id = %id,
                kind = event.kind(),
                error = format!("{error:#}"),
                "event not published now; the outbox relay will"
            ),
        }
    }

    async fn publish(&self, event: &DomainEvent) -> Result<(), Unreachable> {
        let body = serde_json::to_string(&CloudEvent::from_domain(event)).expect("events serialise");
        self.send_message(event.kind(), &event.correlation_id, &body, None)
            .await
            .map_err(|error| Unreachable(error.into()))
    }
}
