//! Inspecting and redriving dead-letter queues.

use aws_sdk_sqs::types::MessageSystemAttributeName;

/// A dead letter, with the reason a consumer parked it (if it did).
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub id: String,
    pub body: String,
    pub reason: Option<String>,
}

fn sqs_error<E: std::error::Error + Send + Sync + 'static>(error: aws_sdk_sqs::error::SdkError<E>) -> anyhow::Error
where
    aws_sdk_sqs::error::SdkError<E>: std::error::Error,
{
    anyhow::anyhow!("{}", aws_sdk_sqs::error::DisplayErrorContext(error))
}

/// Reads every message without consuming it (each becomes visible again at once).
pub async fn peek(sqs: &aws_sdk_sqs::Client, dlq_url: &str) -> anyhow::Result<Vec<DeadLetter>> {
    let mut letters: Vec<DeadLetter> = Vec::new();
    let mut handles = Vec::new();
    loop {
        let received = sqs
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(10)
            .visibility_timeout(30)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(sqs_error)?;
        if received.messages().is_empty() {
            break;
        }
        for message in received.messages() {
            let id = message.message_id().unwrap_or_default().to_owned();
            if letters.iter().any(|l| l.id == id) {
                continue;
            }
            letters.push(DeadLetter {
                id,
                body: message.body().unwrap_or_default().to_owned(),
                reason: message
                    .message_attributes()
                    .and_then(|a| a.get("dead_letter_reason"))
                    .and_then(|v| v.string_value())
                    .map(str::to_owned),
            });
            handles.extend(message.receipt_handle().map(str::to_owned));
        }
    }
    for handle in handles {
        sqs.change_message_visibility()
            .queue_url(dlq_url)
            .receipt_handle(handle)
            .visibility_timeout(0)
            .send()
            .await
            .map_err(sqs_error)?;
    }
    Ok(letters)
}

/// Moves every message from the dead-letter queue back to its source queue:
/// sent first, deleted after, so a failure halfway duplicates rather than
/// loses (consumers are idempotent).
pub async fn redrive(sqs: &aws_sdk_sqs::Client, dlq_url: &str, source_url: &str) -> anyhow::Result<usize> {
    let mut moved = 0;
    loop {
        let received = sqs
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(sqs_error)?;
        if received.messages().is_empty() {
            return Ok(moved);
        }
        for message in received.messages() {
            let mut send = sqs.send_message().queue_url(source_url).message_body(message.body().unwrap_or_default());
            for (name, value) in message.message_attributes().into_iter().flatten() {
                // The parking reason belongs to the dead letter, not to the retried message.
                if name != "dead_letter_reason" && name != "source_message_id" {
                    send = send.message_attributes(name, value.clone());
                }
            }
            send.send().await.map_err(sqs_error)?;
            if let Some(handle) = message.receipt_handle() {
                sqs.delete_message().queue_url(dlq_url).receipt_handle(handle).send().await.map_err(sqs_error)?;
            }
            moved += 1;
        }
    }
}
