//! Message claims on the table (`MessageClaims`): a claim is held while a
//! consumer handles the message, then remembered as done, which makes every
//! consumer idempotent.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
use framework::batch::{Claim, MessageClaims, Unavailable};
use time::OffsetDateTime;

use super::items::{n, s};
use super::layout::Key;
use super::{Table, classify};

/// How long a finished key is remembered: longer than SQS keeps a message
/// (4 days) plus its DLQ redrive window.
const REMEMBER: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Message claims on the shared table. An expired claim is treated as absent
/// on read: DynamoDB's TTL deletes lazily.
#[derive(Clone, Debug)]
pub struct DynamoMessageClaims {
    table: Table,
    /// How long a claim holds (see `Budget::claim_duration`).
    duration: Duration,
}

impl DynamoMessageClaims {
    /// Claims in `table` that lapse `duration` after they are taken; the
    /// duration must outlast any invocation that can hold one.
    pub fn new(table: Table, duration: Duration) -> Self {
        Self { table, duration }
    }

    fn key(key: &str) -> super::items::Item {
        Key::claim(key).item()
    }
}

#[async_trait]
impl MessageClaims for DynamoMessageClaims {
    async fn claim(&self, key: &str) -> Result<Claim, Unavailable> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        // Rounded up: a claim never holds for less than asked.
        let held_for = self.duration.as_secs() as i64 + i64::from(self.duration.subsec_nanos() > 0);
        let result = self
            .table
            .client()
            .put_item()
            .table_name(self.table.name())
            .set_item(Some(
                Self::key(key)
                    .into_iter()
                    .chain([("state".to_owned(), s("claimed")), ("expires_at".to_owned(), n(now + held_for))])
                    .collect(),
            ))
            .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
            .expression_attribute_values(":now", n(now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let Err(error) = result else { return Ok(Claim::Acquired) };
        match error.as_service_error() {
            Some(failed) if failed.is_conditional_check_failed_exception() => {
                let state = match failed {
                    aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(e) => {
                        e.item().and_then(|item| item.get("state")).and_then(|v| v.as_s().ok()).cloned()
                    }
                    _ => None,
                };
                Ok(if state.as_deref() == Some("done") { Claim::Done } else { Claim::InProgress })
            }
            _ => Err(classify(error).into()),
        }
    }

    async fn complete(&self, key: &str) -> Result<(), Unavailable> {
        let until = OffsetDateTime::now_utc().unix_timestamp() + REMEMBER.as_secs() as i64;
        self.table
            .client()
            .put_item()
            .table_name(self.table.name())
            .set_item(Some(
                Self::key(key)
                    .into_iter()
                    .chain([("state".to_owned(), s("done")), ("expires_at".to_owned(), n(until))])
                    .collect(),
            ))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn release(&self, key: &str) -> Result<(), Unavailable> {
        self.table
            .client()
            .delete_item()
            .table_name(self.table.name())
            .set_key(Some(Self::key(key)))
            .condition_expression("#state = :claimed")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":claimed", s("claimed"))
            .send()
            .await
            .map(|_| ())
            .or_else(|error| {
                if error.as_service_error().is_some_and(
                    aws_sdk_dynamodb::operation::delete_item::DeleteItemError::is_conditional_check_failed_exception,
                ) {
                    Ok(())
                } else {
                    Err(classify(error).into())
                }
            })
    }
}
