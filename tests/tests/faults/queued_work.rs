//! What the fault tests of queued work share: an email queue of a test's
//! own drained by send-email, and the scheduled relay's run once a queue is
//! back (mail.rs, emailed_links.rs, queues.rs).

use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use local_cloud::eventsource::QueueMapping;
use local_cloud::faults::FaultProxy;
use serde_json::json;

use crate::harness::{TIMEOUT, start};

/// The template's redrive limit: a message received this many times is parked.
pub const REDRIVE_LIMIT: u8 = 5;

/// A queue of one test's own with its dead-letter queue: the template's
/// redrive limit and a one-second visibility timeout, so that retries take
/// seconds, not minutes.
pub struct OwnQueue {
    pub name: String,
    pub url: String,
    pub dead_letter_url: String,
}

impl OwnQueue {
    /// Creates the pair, named `prefix` and a fresh ULID.
    pub async fn create(sqs: &aws_sdk_sqs::Client, prefix: &str) -> Self {
        let name = format!("{prefix}-{}", ulid::Ulid::new());
        let dead_letter_url =
            sqs.create_queue().queue_name(format!("{name}-dlq")).send().await.unwrap().queue_url().unwrap().to_owned();
        let redrive =
            json!({"deadLetterTargetArn": arn(&format!("{name}-dlq")), "maxReceiveCount": REDRIVE_LIMIT}).to_string();
        let url = sqs
            .create_queue()
            .queue_name(&name)
            .attributes(QueueAttributeName::VisibilityTimeout, "1")
            .attributes(QueueAttributeName::RedrivePolicy, redrive)
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_owned();
        Self { name, url, dead_letter_url }
    }

    /// send-email's event source mapping on this queue, as the template's
    /// (batches of ten, partial batch failures reported).
    pub fn send_email_mapping(&self) -> QueueMapping {
        QueueMapping {
            function: "send-email".into(),
            queue_url: self.url.clone(),
            queue_arn: arn(&self.name),
            batch_size: 10,
            report_batch_item_failures: true,
            function_timeout: TIMEOUT,
        }
    }
}

/// The local cloud's ARN of the queue `name`.
fn arn(name: &str) -> String {
    format!("arn:aws:sqs:us-east-1:123456789012:{name}")
}

/// Publishes what the outbox holds once the queue is back, as the scheduled
/// relay does (its records must be five seconds old), through `queues`.
pub async fn relay_through(queues: &FaultProxy) {
    tokio::time::sleep(Duration::from_secs(6)).await;
    let mut relay = start("relay-outbox", &[("AWS_ENDPOINT_URL_SQS", queues.url())]).await;
    relay.ready(Duration::from_secs(30)).await.unwrap();
    let scheduled = json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
    let report = relay.invoke(&scheduled, TIMEOUT * 2).await.unwrap();
    assert!(!report.failed, "{}", report.payload);
}
