use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use domain::ports::{ProcessedMessages, StoreError};
use time::OffsetDateTime;

use super::items::{n, s};
use super::{Table, classify};

/// How long a finished key is remembered: longer than SQS keeps a message
/// (4 days) plus its DLQ redrive window.
const REMEMBER: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Claims with leases on the shared table. An expired lease or record is
/// treated as absent on read: DynamoDB's TTL deletes lazily.
#[derive(Clone, Debug)]
pub struct DynamoProcessedMessages {
    table: Table,
}

impl DynamoProcessedMessages {
    pub fn new(table: Table) -> Self {
        Self { table }
    }

    fn key(key: &str) -> [(String, AttributeValue); 2] {
        [("pk".into(), s(format!("PROCESSED#{key}"))), ("sk".into(), s("PROCESSED"))]
    }
}

#[async_trait]
impl ProcessedMessages for DynamoProcessedMessages {
    async fn claim(&self, key: &str, lease: Duration) -> Result<bool, StoreError> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let result = self
            .table
            .client()
            .put_item()
            .table_name(self.table.name())
            .set_item(Some(
                Self::key(key)
                    .into_iter()
                    .chain([
                        ("state".to_owned(), s("claimed")),
                        ("expires_at".to_owned(), n(now + lease.as_secs() as i64)),
                    ])
                    .collect(),
            ))
            .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(error) => Err(classify(error)),
        }
    }

    async fn complete(&self, key: &str) -> Result<(), StoreError> {
        let until = OffsetDateTime::now_utc().unix_timestamp() + REMEMBER.as_secs() as i64;
        self.table
            .client()
            .put_item()
            .table_name(self.table.name())
            .set_item(Some(
                Self::key(key).into_iter().chain([("state".to_owned(), s("done")), ("expires_at".to_owned(), n(until))]).collect(),
            ))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn release(&self, key: &str) -> Result<(), StoreError> {
        self.table
            .client()
            .delete_item()
            .table_name(self.table.name())
            .set_key(Some(Self::key(key).into_iter().collect()))
            .condition_expression("#state = :claimed")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":claimed", s("claimed"))
            .send()
            .await
            .map(|_| ())
            .or_else(|error| {
                if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) {
                    Ok(())
                } else {
                    Err(classify(error))
                }
            })
    }
}
