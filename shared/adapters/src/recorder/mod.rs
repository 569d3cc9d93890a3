//! The optional recorder of the AWS calls a function makes: the IAM actions
//! each call needs with, for every DynamoDB item or query, the partition key
//! IAM sees as `dynamodb:LeadingKeys` (reads and writes alike), which the
//! suite holds against each function's policy; and the partitions and units
//! of each DynamoDB write, which the hot-key report reads.

mod keys;
mod writes;

use std::io::Write;
use std::path::PathBuf;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Appends one line per IAM action a call needs (`function action resource`,
/// and for a DynamoDB item or query a fourth field: the partition key value
/// IAM holds against `dynamodb:LeadingKeys`, one line per item of a batch or
/// transaction) to a file. Off unless `SHOP_RECORD_AWS_CALLS` names the file;
/// the test suite turns it on to prove each function's IAM policy, its key
/// conditions included, is exactly what its code uses.
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

    fn write(&self, lines: &[keys::Call]) {
        let text: String = lines
            .iter()
            .map(|call| match &call.partition {
                Some(partition) => {
                    // A key is data: keep the file's fields and lines whole whatever it holds.
                    let partition = partition.replace(['\t', '\n', '\r'], " ");
                    format!("{}\t{}\t{}\t{partition}\n", self.function, call.action, call.resource)
                }
                None => format!("{}\t{}\t{}\n", self.function, call.action, call.resource),
            })
            .collect();
        if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(&self.file) {
            let _ = file.write_all(text.as_bytes());
        }
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
            self.write(&keys::required_actions(metadata.service(), metadata.name(), context.input()));
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
        let check = aws_sdk_dynamodb::types::ConditionCheck::builder()
            .table_name("t")
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("HOLDINGS#u".into()))
            .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("HOLDINGS".into()))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .unwrap();
        let _ = client
            .transact_write_items()
            .transact_items(aws_sdk_dynamodb::types::TransactWriteItem::builder().put(put).build())
            .transact_items(aws_sdk_dynamodb::types::TransactWriteItem::builder().condition_check(check).build())
            .send()
            .await;
        let _ = client
            .query()
            .table_name("t")
            .index_name("gsi1")
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", "gsi1pk")
            .expression_attribute_values(":pk", aws_sdk_dynamodb::types::AttributeValue::S("USERS".into()))
            .send()
            .await;
        let _ = client
            .get_item()
            .table_name("t")
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("USER#u".into()))
            .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("USER".into()))
            .send()
            .await;
        let recorded = std::fs::read_to_string(&file).unwrap_or_default();
        let _ = std::fs::remove_file(&file);
        // Reads carry their partition as writes do: each is a LeadingKeys value IAM checks.
        assert!(recorded.contains("f\tdynamodb:PutItem\tt\tx\n"), "{recorded:?}");
        assert!(recorded.contains("f\tdynamodb:ConditionCheckItem\tt\tHOLDINGS#u\n"), "{recorded:?}");
        assert!(recorded.contains("f\tdynamodb:Query\tt/index/gsi1\tUSERS\n"), "{recorded:?}");
        assert!(recorded.contains("f\tdynamodb:GetItem\tt\tUSER#u\n"), "{recorded:?}");
    }
}
