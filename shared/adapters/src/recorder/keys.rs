//! The IAM actions one SDK call needs, each with the resource it is on and,
//! for DynamoDB, the partition key value IAM evaluates as
//! `dynamodb:LeadingKeys`.
//!
//! How IAM sees a call: a single-item call (GetItem, PutItem, UpdateItem,
//! DeleteItem) presents its key's partition value; a batch or transaction is
//! authorised item by item as the single-item action (TransactWriteItems as
//! PutItem, UpdateItem, DeleteItem or ConditionCheckItem, TransactGetItems
//! and BatchGetItem item by item), each with its own key; a Query presents
//! the partition value of its key condition, which on an index is the
//! index's partition key (`gsi1pk`, ...), authorised on the index's ARN. A
//! Scan presents no key at all (so `ForAllValues` conditions pass it: this
//! shop makes none).

use std::collections::HashMap;

use aws_sdk_dynamodb::operation as ddb;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::client::interceptors::context::Input;

use crate::dynamo::layout::Index;

/// One IAM action a call needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Call {
    pub action: String,
    /// The table, `table/index/<name>`, queue URL, secret or sender.
    pub resource: String,
    /// The partition key value of a DynamoDB item or query.
    pub partition: Option<String>,
}

impl Call {
    fn new(action: &str, resource: &str, partition: Option<String>) -> Self {
        Self { action: action.to_owned(), resource: resource.to_owned(), partition }
    }
}

/// The table's partition key attribute (the layout's `Key::item`).
const TABLE_PARTITION: &str = "pk";

fn partition(key: Option<&HashMap<String, AttributeValue>>) -> Option<String> {
    key?.get(TABLE_PARTITION).and_then(|value| value.as_s().ok()).cloned()
}

/// The IAM actions (with their resource and partition) that one SDK call needs.
pub(crate) fn required_actions(service: &str, operation: &str, input: &Input) -> Vec<Call> {
    let one = |action: &str, resource: &str| vec![Call::new(action, resource, None)];
    match (service, operation) {
        ("DynamoDB", operation) => dynamodb(operation, input),
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

fn dynamodb(operation: &str, input: &Input) -> Vec<Call> {
    match operation {
        "TransactWriteItems" => input
            .downcast_ref::<ddb::transact_write_items::TransactWriteItemsInput>()
            .map(|input| {
                input
                    .transact_items()
                    .iter()
                    .filter_map(|item| {
                        // IAM authorises each item of a transaction as its single-item action, on its own key.
                        if let Some(put) = item.put() {
                            let pk = put.item().get(TABLE_PARTITION).and_then(|v| v.as_s().ok()).cloned();
                            Some(Call::new("dynamodb:PutItem", put.table_name(), pk))
                        } else if let Some(update) = item.update() {
                            Some(Call::new("dynamodb:UpdateItem", update.table_name(), partition(Some(update.key()))))
                        } else if let Some(delete) = item.delete() {
                            Some(Call::new("dynamodb:DeleteItem", delete.table_name(), partition(Some(delete.key()))))
                        } else {
                            item.condition_check().map(|check| {
                                Call::new(
                                    "dynamodb:ConditionCheckItem",
                                    check.table_name(),
                                    partition(Some(check.key())),
                                )
                            })
                        }
                    })
                    .collect()
            })
            .unwrap_or_default(),
        "TransactGetItems" => input
            .downcast_ref::<ddb::transact_get_items::TransactGetItemsInput>()
            .map(|input| {
                input
                    .transact_items()
                    .iter()
                    .filter_map(|item| item.get())
                    .map(|get| Call::new("dynamodb:GetItem", get.table_name(), partition(Some(get.key()))))
                    .collect()
            })
            .unwrap_or_default(),
        "BatchGetItem" => input
            .downcast_ref::<ddb::batch_get_item::BatchGetItemInput>()
            .map(|input| {
                input
                    .request_items()
                    .into_iter()
                    .flatten()
                    .flat_map(|(table, keys)| {
                        keys.keys()
                            .iter()
                            .map(|key| Call::new("dynamodb:BatchGetItem", table, partition(Some(key))))
                            .collect::<Vec<_>>()
                    })
                    .collect()
            })
            .unwrap_or_default(),
        "Query" => input
            .downcast_ref::<ddb::query::QueryInput>()
            .map(|input| {
                let table = input.table_name().unwrap_or_default();
                let resource = match input.index_name() {
                    Some(index) => format!("{table}/index/{index}"),
                    None => table.to_owned(),
                };
                vec![Call::new("dynamodb:Query", &resource, query_partition(input))]
            })
            .unwrap_or_default(),
        operation => {
            let (table, key) = if let Some(i) = input.downcast_ref::<ddb::get_item::GetItemInput>() {
                (i.table_name(), partition(i.key()))
            } else if let Some(i) = input.downcast_ref::<ddb::put_item::PutItemInput>() {
                (i.table_name(), partition(i.item()))
            } else if let Some(i) = input.downcast_ref::<ddb::update_item::UpdateItemInput>() {
                (i.table_name(), partition(i.key()))
            } else if let Some(i) = input.downcast_ref::<ddb::delete_item::DeleteItemInput>() {
                (i.table_name(), partition(i.key()))
            } else {
                (None, None)
            };
            vec![Call::new(&format!("dynamodb:{operation}"), table.unwrap_or("?"), key)]
        }
    }
}

/// The partition key value a Query's key condition names: the value of its
/// `<partition attribute> = :value` clause, the attribute being the table's
/// `pk` or the queried index's partition key.
fn query_partition(input: &ddb::query::QueryInput) -> Option<String> {
    let attribute = match input.index_name() {
        None => TABLE_PARTITION,
        Some(name) => [Index::Gsi1, Index::Gsi2, Index::Gsi3, Index::Gsi4]
            .into_iter()
            .find(|index| index.name() == name)?
            .partition_attribute(),
    };
    let names = input.expression_attribute_names();
    let values = input.expression_attribute_values()?;
    let resolve = |name: &str| -> String {
        names.and_then(|names| names.get(name)).map_or_else(|| name.to_owned(), Clone::clone)
    };
    // Clauses are joined by AND (any case); a clause's tokens are glued so
    // `pk = :v` and `pk=:v` read alike. BETWEEN's own AND only splits a sort
    // key clause, which is never the partition's.
    let mut clauses = vec![String::new()];
    for token in input.key_condition_expression()?.split_whitespace() {
        if token.eq_ignore_ascii_case("and") {
            clauses.push(String::new());
        } else if let Some(clause) = clauses.last_mut() {
            clause.push_str(token);
        }
    }
    clauses.iter().find_map(|clause| {
        let (left, right) = clause.split_once('=')?;
        if left.ends_with(['<', '>']) || resolve(left) != attribute {
            return None;
        }
        values.get(right).and_then(|value| value.as_s().ok()).cloned()
    })
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::AttributeValue::S;

    use super::*;

    fn query_on(index: Option<&str>, condition: &str, name: Option<&str>) -> ddb::query::QueryInput {
        let mut query = ddb::query::QueryInput::builder()
            .table_name("t")
            .set_index_name(index.map(str::to_owned))
            .key_condition_expression(condition)
            .expression_attribute_values(":pk", S("ORDERS#OWNER#u".into()))
            .expression_attribute_values(":bound", S("01J".into()));
        if let Some(name) = name {
            query = query.expression_attribute_names("#pk", name).expression_attribute_names("#sk", "gsi1sk");
        }
        query.build().unwrap()
    }

    #[test]
    fn a_query_presents_the_partition_of_its_key_condition() {
        let on_index = query_on(Some("gsi1"), "#pk = :pk AND #sk < :bound", Some("gsi1pk"));
        assert_eq!(query_partition(&on_index).as_deref(), Some("ORDERS#OWNER#u"));
        let unglued = query_on(None, "pk=:pk and begins_with(sk, :bound)", None);
        assert_eq!(query_partition(&unglued).as_deref(), Some("ORDERS#OWNER#u"));
        // On an index, the table's `pk` is not the partition key IAM sees.
        let wrong_attribute = query_on(Some("gsi1"), "pk = :pk", None);
        assert_eq!(query_partition(&wrong_attribute), None);
        let sort_key_only = query_on(Some("gsi1"), "#sk <= :pk", Some("gsi1pk"));
        assert_eq!(query_partition(&sort_key_only), None);
    }
}
