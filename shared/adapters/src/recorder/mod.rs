//! The optional recorder of the AWS calls a function makes: the IAM actions
//! (and, for DynamoDB writes, the partitions) each call needs, which the
//! suite holds against each function's policy and the hot-key report reads.

mod writes;

use std::io::Write;
use std::path::PathBuf;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Appends one line per IAM action a call needs (`function action resource`)
/// to a file. Off unless `SHOP_RECORD_AWS_CALLS` names the file; the test
/// suite turns it on to prove each function's IAM policy is exactly what its
/// code uses.
#[derive(Debug, Clone)]
pub struct CallRecorder {
    function: &'static str,
    file: PathBuf,
}

impl CallRecorder {
    /// A recorder for `function` when `SHOP_RECORD_AWS_CALLS` is set, `None`
    /// (record nothing) otherwise.
    pub fn from_env(function: &'static str) -> Option<Self> {
        std::env::var_os("SHOP_RECORD_AWS_CALLS").map(|file| Self { function, file: file.into() })
    }

    /// Appends the partitions of each DynamoDB write to `aws-writes.tsv`
    /// beside the calls file (`ms function operation target partition units
    /// class`), for the load's hot-key report.
    fn write_partitions(&self, operation: &str, writes: &[writes::Write]) {
        if writes.is_empty() {
            return;
        }
        let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let text: String = writes
            .iter()
            .map(|w| {
                let (target, partition, units, class) = (w.target, &w.partition, w.units, w.class.as_str());
                format!("{ms}\t{}\t{operation}\t{target}\t{partition}\t{units}\t{class}\n", self.function)
            })
            .collect();
        let file = self.file.with_file_name("aws-writes.tsv");
        if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(file) {
            let _ = file.write_all(text.as_bytes());
        }
    }

    fn write(&self, lines: &[(String, String)]) {
        let text: String =
            lines.iter().map(|(action, resource)| format!("{}\t{action}\t{resource}\n", self.function)).collect();
        if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(&self.file) {
            let _ = file.write_all(text.as_bytes());
        }
    }
}

/// The IAM actions (with their resource) that one SDK call needs.
fn required_actions(
    service: &str,
    operation: &str,
    input: &aws_smithy_runtime_api::client::interceptors::context::Input,
) -> Vec<(String, String)> {
    use aws_sdk_dynamodb::operation as ddb;
    let one = |action: &str, resource: &str| vec![(action.to_owned(), resource.to_owned())];
    match (service, operation) {
        ("DynamoDB", "TransactWriteItems") => input
            .downcast_ref::<ddb::transact_write_items::TransactWriteItemsInput>()
            .map(|input| {
                input
                    .transact_items()
                    .iter()
                    .filter_map(|item| {
                        // IAM authorises each item of a transaction as its single-item action.
                        if let Some(put) = item.put() {
                            Some(("dynamodb:PutItem".to_owned(), put.table_name().to_owned()))
                        } else if let Some(update) = item.update() {
                            Some(("dynamodb:UpdateItem".to_owned(), update.table_name().to_owned()))
                        } else if let Some(delete) = item.delete() {
                            Some(("dynamodb:DeleteItem".to_owned(), delete.table_name().to_owned()))
                        } else {
                            item.condition_check()
                                .map(|c| ("dynamodb:ConditionCheckItem".to_owned(), c.table_name().to_owned()))
                        }
                    })
                    .collect()
            })
            .unwrap_or_default(),
        ("DynamoDB", "Query") => input
            .downcast_ref::<ddb::query::QueryInput>()
            .map(|input| {
                let table = input.table_name().unwrap_or_default();
                let resource = match input.index_name() {
                    Some(index) => format!("{table}/index/{index}"),
                    None => table.to_owned(),
                };
                one("dynamodb:Query", &resource)
            })
            .unwrap_or_default(),
        ("DynamoDB", "BatchGetItem") => input
            .downcast_ref::<ddb::batch_get_item::BatchGetItemInput>()
            .map(|input| {
                input
                    .request_items()
                    .into_iter()
                    .flatten()
                    .map(|(table, _)| ("dynamodb:BatchGetItem".to_owned(), table.clone()))
                    .collect()
            })
            .unwrap_or_default(),
        ("DynamoDB", operation) => {
            let table = input
                .downcast_ref::<ddb::get_item::GetItemInput>()
                .and_then(|i| i.table_name())
                .or_else(|| input.downcast_ref::<ddb::put_item::PutItemInput>().and_then(|i| i.table_name()))
                .or_else(|| input.downcast_ref::<ddb::update_item::UpdateItemInput>().and_then(|i| i.table_name()))
                .or_else(|| input.downcast_ref::<ddb::delete_item::DeleteItemInput>().and_then(|i| i.table_name()))
                .unwrap_or("?");
            one(&format!("dynamodb:{operation}"), table)
        }
        // IAM authorises SendMessageBatch as sqs:SendMessage.
        ("SQS", "SendMessageBatch") => input
            .downcast_ref::<aws_sdk_sqs::operation::send_message_batch::SendMessageBatchInput>()
            .map(|i| one("sqs:SendMessage", i.queue_url().unwrap_or("?")))
            .unwrap_or_default(),
        ("SQS", operation) => {
            let queue = input
                .downcast_ref::<aws_sdk_sqs::operation::send_message::SendMessageInput>()
                .and_then(|i| i.queue_url())
                .or_else(|| {
                    input
                        .downcast_ref::<aws_sdk_sqs::operation::get_queue_attributes::GetQueueAttributesInput>()
                        .and_then(|i| i.queue_url())
                })
                .unwrap_or("?");
            one(&format!("sqs:{operation}"), queue)
        }
        ("Secrets Manager", operation) => {
            let secret = input
                .downcast_ref::<aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueInput>()
                .and_then(|i| i.secret_id())
                .unwrap_or("?");
            one(&format!("secretsmanager:{operation}"), secret)
        }
        ("SESv2", operation) => {
            let sender = input
                .downcast_ref::<aws_sdk_sesv2::operation::send_email::SendEmailInput>()
                .and_then(|i| i.from_email_address())
                .unwrap_or("?");
            one(&format!("ses:{operation}"), sender)
        }
        (service, operation) => one(&format!("{service}:{operation}"), "?"),
    }
}

impl Intercept for CallRecorder {
    fn name(&self) -> &'static str {
        "CallRecorder"
    }

    // Not `read_before_execution`: a client-level interceptor runs that before
    // the operation's own configuration (with its name) is in the bag.
    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(metadata) = cfg.load::<Metadata>() {
            self.write(&required_actions(metadata.service(), metadata.name(), context.input()));
            self.write_partitions(
                metadata.name(),
                &writes::writes(metadata.service(), metadata.name(), context.input()),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_the_actions_a_transaction_needs() {
        let file = std::env::temp_dir().join(format!("calls-{}.tsv", std::process::id()));
        let recorder = CallRecorder { function: "f", file: file.clone() };
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("a", "b", None, None, "test"))
            .endpoint_url("http://127.0.0.1:1")
            .interceptor(recorder)
            .build();
        let client = aws_sdk_dynamodb::Client::from_conf(config);
        let put = aws_sdk_dynamodb::types::Put::builder()
            .table_name("t")
            .item("pk", aws_sdk_dynamodb::types::AttributeValue::S("x".into()))
            .build()
            .unwrap();
        let _ = client
            .transact_write_items()
            .transact_items(aws_sdk_dynamodb::types::TransactWriteItem::builder().put(put).build())
            .send()
            .await;
        let _ = client.query().table_name("t").index_name("gsi1").send().await;
        let recorded = std::fs::read_to_string(&file).unwrap_or_default();
        let _ = std::fs::remove_file(&file);
        assert!(recorded.contains("f\tdynamodb:PutItem\tt\n"), "{recorded:?}");
        assert!(recorded.contains("f\tdynamodb:Query\tt/index/gsi1\n"), "{recorded:?}");
    }
}
