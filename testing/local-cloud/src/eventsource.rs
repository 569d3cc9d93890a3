//! Lambda's event sources, emulated for the local cloud: SQS event source
//! mappings (batch size, partial batch responses, visibility timeout; moto
//! applies the redrive policy) and schedules, read from `template.yaml` and
//! delivered through `cargo lambda watch`'s invoke API.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use anyhow::{Context, bail};
use aws_sdk_sqs::types::MessageSystemAttributeName;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::cloud::{LocalCloud, REGION};
use crate::template::{LocalNames, Template};

/// One SQS event source mapping.
#[derive(Debug, Clone)]
pub struct QueueMapping {
    pub function: String,
    pub queue_url: String,
    pub queue_arn: String,
    pub batch_size: i32,
    pub report_batch_item_failures: bool,
    pub function_timeout: Duration,
}

/// One schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub function: String,
    pub every: Duration,
}

pub fn queue_mappings(template: &Template, names: &dyn LocalNames) -> anyhow::Result<Vec<QueueMapping>> {
    let mut mappings = Vec::new();
    for function in template.functions()? {
        for source in &function.queues {
            let (queue, stack) = &source.queue;
            mappings.push(QueueMapping {
                function: function.package.clone(),
                queue_url: names.reference(stack, queue, "AWS::SQS::Queue")?,
                queue_arn: names.attribute(stack, queue, "AWS::SQS::Queue", "Arn")?,
                batch_size: source.batch_size.clamp(1, 10) as i32,
                report_batch_item_failures: source.report_batch_item_failures,
                function_timeout: Duration::from_secs(function.timeout_seconds),
            });
        }
    }
    Ok(mappings)
}

pub fn schedules(template: &Template) -> anyhow::Result<Vec<Schedule>> {
    let mut schedules = Vec::new();
    for function in template.functions()? {
        for expression in &function.schedules {
            schedules.push(Schedule { function: function.package.clone(), every: parse_rate(expression)? });
        }
    }
    Ok(schedules)
}

/// `rate(1 minute)`, `rate(5 minutes)`, `rate(30 seconds)`, `rate(2 hours)`.
pub fn parse_rate(expression: &str) -> anyhow::Result<Duration> {
    let inner = expression
        .strip_prefix("rate(")
        .and_then(|rest| rest.strip_suffix(')'))
        .with_context(|| format!("only rate(...) schedules run locally, not {expression}"))?;
    let (count, unit) = inner.split_once(' ').context("rate(<number> <unit>)")?;
    let count: u64 = count.parse()?;
    let seconds = match unit.trim_end_matches('s') {
        "second" => 1,
        "minute" => 60,
        "hour" => 3600,
        "day" => 86400,
        other => bail!("unknown rate unit {other}"),
    };
    Ok(Duration::from_secs(count * seconds))
}

/// Something that runs a function with a payload, as Lambda's invoke API does.
pub trait Invoke {
    /// The function's result, or an error if it failed (as Lambda reports a function error).
    fn invoke(
        &self,
        function: &str,
        payload: &Value,
        timeout: Duration,
    ) -> impl Future<Output = anyhow::Result<Value>> + Send;
}

/// Invokes functions through `cargo lambda watch`.
#[derive(Clone)]
pub struct Invoker {
    base: String,
    http: reqwest::Client,
}

impl Invoker {
    pub fn new(base: String) -> Self {
        Self { base, http: reqwest::Client::new() }
    }
}

impl Invoke for Invoker {
    async fn invoke(&self, function: &str, payload: &Value, timeout: Duration) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}/2015-03-31/functions/{function}/invocations", self.base))
            .json(payload)
            .timeout(timeout)
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() || body.get("errorType").is_some() {
            bail!("{function} failed ({status}): {body}");
        }
        Ok(body)
    }
}

/// Starts one poller per queue mapping and one timer per schedule. Abort the
/// handles to stop them.
pub async fn start(cloud: &LocalCloud, template: &Template, invoker: Invoker) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let sqs = cloud.sqs().await;
    let mut tasks = Vec::new();
    for mapping in queue_mappings(template, &cloud.names)? {
        let (sqs, invoker) = (sqs.clone(), invoker.clone());
        tasks.push(tokio::spawn(async move { poll_queue(mapping, sqs, invoker).await }));
    }
    for schedule in schedules(template)? {
        let invoker = invoker.clone();
        tasks.push(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(schedule.every);
            ticks.tick().await; // The first tick is immediate; Lambda's first run is not.
            loop {
                ticks.tick().await;
                let event = json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
                if let Err(error) = invoker.invoke(&schedule.function, &event, Duration::from_secs(60)).await {
                    eprintln!("xtask: scheduled {} failed: {error:#}", schedule.function);
                }
            }
        }));
    }
    Ok(tasks)
}

async fn poll_queue(mapping: QueueMapping, sqs: aws_sdk_sqs::Client, invoker: Invoker) {
    loop {
        if let Err(error) = deliver_one_batch(&mapping, &sqs, &invoker).await {
            eprintln!("xtask: delivery to {} failed: {error:#}", mapping.function);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Receives up to one batch and hands it to the function. Records the
/// function reports as failed (or all, if it fails outright) stay on the
/// queue and come back after the visibility timeout; the rest are deleted.
pub async fn deliver_one_batch(
    mapping: &QueueMapping,
    sqs: &aws_sdk_sqs::Client,
    invoker: &impl Invoke,
) -> anyhow::Result<usize> {
    let received = sqs
        .receive_message()
        .queue_url(&mapping.queue_url)
        .max_number_of_messages(mapping.batch_size)
        .wait_time_seconds(1)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
    let messages = received.messages();
    if messages.is_empty() {
        return Ok(0);
    }
    let records: Vec<Value> = messages.iter().map(|message| sqs_record(message, mapping)).collect();
    let event = json!({"Records": records});
    let timeout = mapping.function_timeout + Duration::from_secs(30);
    let failed: Vec<String> = match invoker.invoke(&mapping.function, &event, timeout).await {
        Ok(result) if mapping.report_batch_item_failures => match result.get("batchItemFailures") {
            Some(Value::Array(failures)) => failures
                .iter()
                .filter_map(|f| f.get("itemIdentifier").and_then(Value::as_str).map(str::to_owned))
                .collect(),
            // Lambda treats a malformed partial response as a failed batch.
            Some(_) => messages.iter().filter_map(|m| m.message_id().map(str::to_owned)).collect(),
            None => Vec::new(),
        },
        Ok(_) => Vec::new(),
        Err(error) => {
            eprintln!("xtask: {error:#}");
            messages.iter().filter_map(|m| m.message_id().map(str::to_owned)).collect()
        }
    };
    for message in messages {
        let id = message.message_id().unwrap_or_default();
        if failed.iter().any(|f| f == id) {
            continue;
        }
        if let Some(handle) = message.receipt_handle() {
            sqs.delete_message()
                .queue_url(&mapping.queue_url)
                .receipt_handle(handle)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("{}", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        }
    }
    Ok(messages.len())
}

/// One record of an SQS event, shaped as Lambda delivers it.
fn sqs_record(message: &aws_sdk_sqs::types::Message, mapping: &QueueMapping) -> Value {
    let attributes: HashMap<String, String> = message
        .attributes()
        .map(|a| a.iter().map(|(k, v)| (k.as_str().to_owned(), v.clone())).collect())
        .unwrap_or_default();
    let message_attributes: serde_json::Map<String, Value> = message
        .message_attributes()
        .map(|attributes| {
            attributes
                .iter()
                .map(|(name, value)| {
                    (
                        name.clone(),
                        json!({
                            "stringValue": value.string_value(),
                            "stringListValues": [],
                            "binaryListValues": [],
                            "dataType": value.data_type(),
                        }),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "messageId": message.message_id(),
        "receiptHandle": message.receipt_handle(),
        "body": message.body(),
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.md5_of_body(),
        "eventSource": "aws:sqs",
        "eventSourceARN": mapping.queue_arn,
        "awsRegion": REGION,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rate_expressions() {
        assert_eq!(parse_rate("rate(1 minute)").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_rate("rate(5 minutes)").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_rate("rate(2 hours)").unwrap(), Duration::from_secs(7200));
        assert!(parse_rate("cron(0 12 * * ? *)").is_err());
        assert!(parse_rate("rate(1 fortnight)").is_err());
    }
}
