//! The dead-letter queue of a consumer, on SQS: where the batch processor
//! parks a message that can never succeed.

use async_trait::async_trait;
use aws_sdk_sqs::types::MessageAttributeValue;
use domain::ports::Unreachable;
use framework::batch::{DeadLetters, Unavailable};

/// The dead-letter queue on SQS. Parking is one `sqs:SendMessage` with the
/// reason and the original message id as message attributes.
#[derive(Clone, Debug)]
pub struct SqsDeadLetters {
    /// The client parked messages are sent with.
    pub sqs: aws_sdk_sqs::Client,
    /// The URL of the consumer's dead-letter queue.
    pub queue_url: String,
}

#[async_trait]
impl DeadLetters for SqsDeadLetters {
    async fn park(&self, body: &str, reason: &str, source_message_id: &str) -> Result<(), Unavailable> {
        let attribute = |value: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|error| Unreachable(error.into()))
        };
        self.sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .message_attributes("dead_letter_reason", attribute(reason)?)
            .message_attributes("source_message_id", attribute(source_message_id)?)
            .send()
            .await
            .map_err(|error| {
                Unreachable(anyhow::anyhow!("{}", aws_sdk_sqs::error::DisplayErrorContext(error)).into())
            })?;
        Ok(())
    }
}
