//! Inspecting and redriving dead-letter queues: their depth, their messages
//! and reasons, moving them back by hand (what the local cloud can do) or
//! with SQS's own message-move task (what a deployed queue does best).

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};

/// A dead letter, with the reason a consumer parked it (if it did).
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub id: String,
    pub body: String,
    pub reason: Option<String>,
    /// When it was first sent (to its source queue), in milliseconds since the epoch.
    pub sent_at_ms: Option<i64>,
}

/// A queue's approximate depth, as SQS counts it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Depth {
    /// Waiting to be received.
    pub visible: u64,
    /// Received and not yet deleted (being handled, or about to be retried).
    pub in_flight: u64,
    /// Sent with a delay that has not passed yet.
    pub delayed: u64,
}

/// A message-move task's state, as `ListMessageMoveTasks` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoveTask {
    /// `RUNNING`, `COMPLETED`, `CANCELLING`, `CANCELLED` or `FAILED`.
    pub status: String,
    pub moved: i64,
    /// How many the task found to move when it started.
    pub to_move: Option<i64>,
    pub failure_reason: Option<String>,
    /// When it started, in milliseconds since the epoch (SQS's clock): tells tasks apart.
    pub started_ms: i64,
}

impl MoveTask {
    /// Still moving?
    pub fn running(&self) -> bool {
        matches!(self.status.as_str(), "RUNNING" | "CANCELLING")
    }
}

fn sqs_error<E: std::error::Error + Send + Sync + 'static>(error: aws_sdk_sqs::error::SdkError<E>) -> anyhow::Error
where
    aws_sdk_sqs::error::SdkError<E>: std::error::Error,
{
    anyhow::anyhow!("{}", aws_sdk_sqs::error::DisplayErrorContext(error))
}

/// Reads every message without consuming it (each becomes visible again at once).
pub async fn peek(sqs: &aws_sdk_sqs::Client, dlq_url: &str) -> anyhow::Result<Vec<DeadLetter>> {
    peek_at_most(sqs, dlq_url, usize::MAX, 0).await
}

/// Reads up to `max` messages without consuming them (each becomes visible
/// again at once), waiting up to `wait_seconds` for each batch: SQS's short
/// poll samples only some of its servers and may answer empty while a large
/// queue still holds messages, so a deployed queue is read with a wait.
pub async fn peek_at_most(
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
    max: usize,
    wait_seconds: i32,
) -> anyhow::Result<Vec<DeadLetter>> {
    let mut letters: Vec<DeadLetter> = Vec::new();
    let mut handles = Vec::new();
    while letters.len() < max {
        let received = sqs
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(i32::try_from(max - letters.len()).unwrap_or(10).min(10))
            .visibility_timeout(30)
            .wait_time_seconds(wait_seconds)
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
                sent_at_ms: message
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
                    .and_then(|t| t.parse().ok()),
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

/// The queue's approximate depth.
pub async fn depth(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<Depth> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .map_err(sqs_error)?;
    let count = |name: QueueAttributeName| {
        attributes.attributes().and_then(|a| a.get(&name)).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    Ok(Depth {
        visible: count(QueueAttributeName::ApproximateNumberOfMessages),
        in_flight: count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        delayed: count(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
    })
}

/// The queue's ARN (a message-move task names queues by ARN).
pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<String> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(sqs_error)?;
    attributes
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("SQS gave no QueueArn for {url}"))
}

/// Starts SQS's own move of every message in the dead-letter queue
/// `dlq_arn` to `destination_arn` (at most `per_second` a second, if given);
/// returns the task's handle. SQS keeps each message's attributes and moves
/// at its own pace; one task runs per dead-letter queue at a time.
pub async fn start_move_task(
    sqs: &aws_sdk_sqs::Client,
    dlq_arn: &str,
    destination_arn: &str,
    per_second: Option<i32>,
) -> anyhow::Result<String> {
    let started = sqs
        .start_message_move_task()
        .source_arn(dlq_arn)
        .destination_arn(destination_arn)
        .set_max_number_of_messages_per_second(per_second)
        .send()
        .await
        .map_err(sqs_error)?;
    Ok(started.task_handle().unwrap_or_default().to_owned())
}

/// The latest message-move task out of `dlq_arn`, if there has been one.
pub async fn latest_move_task(sqs: &aws_sdk_sqs::Client, dlq_arn: &str) -> anyhow::Result<Option<MoveTask>> {
    let listed = sqs.list_message_move_tasks().source_arn(dlq_arn).max_results(1).send().await.map_err(sqs_error)?;
    Ok(listed.results().first().map(|task| MoveTask {
        status: task.status().unwrap_or("UNKNOWN").to_owned(),
        moved: task.approximate_number_of_messages_moved(),
        to_move: task.approximate_number_of_messages_to_move(),
        failure_reason: task.failure_reason().map(str::to_owned),
        started_ms: task.started_timestamp(),
    }))
}
