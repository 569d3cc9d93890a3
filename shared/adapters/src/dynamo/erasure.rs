//! Account erasure on the table (`AccountErasure`).
//!
//! The erasing write is one transaction: the user item (conditional on its
//! version and on being a plain user's), its email claim, the users counter,
//! a check that the account's holdings item counts no open order, a record
//! `ERASURE#<id>` listed under gsi1 `ERASURES`, and a delete of every other
//! item of the partition `USER#<id>` (sessions, pending tokens, second
//! factor: whatever the other stores keep there), as many as fit in
//! DynamoDB's 100 writes. What does not fit, and every order listed under
//! the owner, is removed by `finish`: each order is rewritten without its
//! owner attribute and its owner's listings (one conditional UpdateItem,
//! conditioned on the owner still being there, so a repeat is a no-op), and
//! once the owner's listing is empty the holdings item and the owner's
//! order counters are deleted and the erasure record is marked finished:
//! off the `ERASURES` listing, kept until its `expires_at` (the table's
//! TTL) a day later, so that a retried deletion can tell an erased account
//! from one that never was. A crash anywhere leaves the record unfinished,
//! so the scheduled sweep (or a repeat) finishes the job.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ConditionCheck, Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem};
use domain::ports::{AccountErasure, OrderFilter, StoreError};
use domain::{ErasureError, ErasureRefused, Role, User, UserId};
use time::OffsetDateTime;

use super::items::{Item, get_s, n, s, timestamp};
use super::layout::{Counter, Index, Key, Partition};
use super::transaction::{Transaction, count};
use super::{Table, classify};

/// How long a finished erasure's record is kept: longer than any access
/// token issued before the erasure lives (minutes), so a retry with one is
/// answered as the first request was.
const FINISHED_RECORD_KEPT: time::Duration = time::Duration::days(1);

/// The most writes one DynamoDB transaction holds.
const TRANSACTION_LIMIT: usize = 100;

/// The writes of the erasing transaction besides the partition's other
/// items: the user, its email claim, the counter, the holdings check and
/// the erasure record.
const FIXED_WRITES: usize = 5;

/// Account erasure on the shared table.
#[derive(Clone, Debug)]
pub struct DynamoAccountErasure {
    table: Table,
}

impl DynamoAccountErasure {
    /// Erasures in `table`.
    pub fn new(table: Table) -> Self {
        Self { table }
    }

    /// The keys of every item of the account's partition but the user item
    /// itself, read strongly consistent, every page.
    async fn partition_leftovers(&self, id: UserId) -> Result<Vec<Item>, StoreError> {
        let user = Key::user(id);
        let mut keys = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .table
                .client()
                .query()
                .table_name(self.table.name())
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(&user.pk))
                .projection_expression("pk, sk")
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(classify)?;
            keys.extend(
                output
                    .items
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|item| item.get("sk").and_then(|sk| sk.as_s().ok()).is_none_or(|sk| sk != user.sk)),
            );
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok(keys);
            }
        }
    }

    async fn delete(&self, key: Item) -> Result<(), StoreError> {
        self.table
            .client()
            .delete_item()
            .table_name(self.table.name())
            .set_key(Some(key))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// Takes the order in `item` (a gsi1 entry of the owner's listing) off
    /// `owner`: removes the owner and its two owner listings, bumps the
    /// version. Conditional on the owner still being there: `false` when a
    /// stale index entry named an order already taken off.
    async fn take_off(&self, owner: UserId, item: &Item) -> Result<bool, StoreError> {
        let outcome = self
            .table
            .client()
            .update_item()
            .table_name(self.table.name())
            .key("pk", s(get_s(item, "pk")?))
            .key("sk", s(get_s(item, "sk")?))
            .update_expression("REMOVE #owner, #g1pk, #g1sk, #g3pk, #g3sk ADD version :one")
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#g1pk", Index::Gsi1.partition_attribute())
            .expression_attribute_names("#g1sk", Index::Gsi1.sort_attribute())
            .expression_attribute_names("#g3pk", Index::Gsi3.partition_attribute())
            .expression_attribute_names("#g3sk", Index::Gsi3.sort_attribute())
            .expression_attribute_values(":owner", s(owner.to_string()))
            .expression_attribute_values(":one", n(1))
            .send()
            .await;
        match outcome {
            Ok(_) => Ok(true),
            Err(error)
                if error.as_service_error().is_some_and(
                    aws_sdk_dynamodb::operation::update_item::UpdateItemError::is_conditional_check_failed_exception,
                ) =>
            {
                Ok(false)
            }
            Err(error) => Err(classify(error)),
        }
    }

    /// Marks the erasure record of `id` finished: its listing under
    /// `ERASURES` removed (the sweep no longer reads it), kept until
    /// [`FINISHED_RECORD_KEPT`] from now. Repeating it changes nothing that matters.
    async fn mark_finished(&self, id: UserId) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        self.table
            .client()
            .update_item()
            .table_name(self.table.name())
            .set_key(Some(Key::erasure(id).item()))
            .update_expression("REMOVE #g1pk, #g1sk SET finished_at = :now, expires_at = :expires")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#g1pk", Index::Gsi1.partition_attribute())
            .expression_attribute_names("#g1sk", Index::Gsi1.sort_attribute())
            .expression_attribute_values(":now", timestamp(now))
            .expression_attribute_values(":expires", n((now + FINISHED_RECORD_KEPT).unix_timestamp()))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// Up to `limit` entries of the owner's order listing (eventually
    /// consistent, as every index read).
    async fn owned_orders(&self, owner: UserId, limit: usize) -> Result<Vec<Item>, StoreError> {
        // An owner's listing is one partition.
        let filter = OrderFilter { owner: Some(owner), status: None };
        let partition = Partition::orders_read(filter).into_iter().next().expect("an owner's listing is one partition");
        let output = self
            .table
            .client()
            .query()
            .table_name(self.table.name())
            .index_name(partition.index.name())
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", partition.index.partition_attribute())
            .expression_attribute_values(":pk", s(&partition.value))
            .projection_expression("pk, sk")
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(classify)?;
        Ok(output.items.unwrap_or_default())
    }
}

fn delete_write(table: &str, key: Item) -> TransactWriteItem {
    let delete = Delete::builder().table_name(table).set_key(Some(key)).build().expect("table and key are set");
    TransactWriteItem::builder().delete(delete).build()
}

#[async_trait]
impl AccountErasure for DynamoAccountErasure {
    async fn erase(&self, user: &User) -> Result<(), ErasureError> {
        let table = self.table.name();
        let mut leftovers = self.partition_leftovers(user.id).await?;
        let rest = leftovers.split_off(leftovers.len().min(TRANSACTION_LIMIT - FIXED_WRITES));

        let mut transaction = Transaction::new();
        let account = transaction.add(
            TransactWriteItem::builder()
                .delete(
                    Delete::builder()
                        .table_name(table)
                        .set_key(Some(Key::user(user.id).item()))
                        .condition_expression("version = :expected AND #role = :user")
                        .expression_attribute_names("#role", "role")
                        .expression_attribute_values(":expected", n(user.version))
                        .expression_attribute_values(":user", s(Role::User.as_str()))
                        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                        .build()
                        .expect("table, key and condition are set"),
                )
                .build(),
        );
        let email = transaction.add(
            TransactWriteItem::builder()
                .delete(
                    Delete::builder()
                        .table_name(table)
                        .set_key(Some(Key::email_claim(&user.email).item()))
                        .condition_expression("id = :id")
                        .expression_attribute_values(":id", s(user.id.to_string()))
                        .build()
                        .expect("table, key and condition are set"),
                )
                .build(),
        );
        transaction.add(count(table, &Counter::Users, -1));
        let holdings = transaction.add(
            TransactWriteItem::builder()
                .condition_check(
                    ConditionCheck::builder()
                        .table_name(table)
                        .set_key(Some(Key::holdings(user.id).item()))
                        .condition_expression("attribute_not_exists(open_orders) OR open_orders <= :zero")
                        .expression_attribute_values(":zero", n(0))
                        .build()
                        .expect("table, key and condition are set"),
                )
                .build(),
        );
        let id = user.id.to_string();
        let mut record = Key::erasure(user.id).item();
        record.extend(Partition::erasures().attributes(&id));
        record.extend([("erased_at".to_owned(), timestamp(OffsetDateTime::now_utc()))]);
        transaction.add(
            TransactWriteItem::builder()
                .put(Put::builder().table_name(table).set_item(Some(record)).build().expect("table and item are set"))
                .build(),
        );
        transaction.extend(leftovers.into_iter().map(|key| delete_write(table, key)));

        match self.table.transact(transaction).await? {
            Ok(()) => {}
            Err(cancelled) if cancelled.condition_failed(account) => {
                let role = cancelled.old_item(account).map(|item| get_s(item, "role").map(str::to_owned));
                return Err(match role {
                    None => ErasureError::Store(StoreError::NotFound),
                    Some(Ok(role)) if role == Role::Admin.as_str() => ErasureError::Refused(ErasureRefused::Admin),
                    Some(_) => ErasureError::Store(StoreError::VersionMismatch),
                });
            }
            Err(cancelled) if cancelled.condition_failed(holdings) => {
                return Err(ErasureError::Refused(ErasureRefused::OpenOrders));
            }
            Err(cancelled) if cancelled.condition_failed(email) => {
                return Err(ErasureError::Store(StoreError::Failed(
                    "the email claim does not name the account being erased".into(),
                )));
            }
            Err(_) => {
                return Err(ErasureError::Store(StoreError::Failed("erasure cancelled for an unknown reason".into())));
            }
        }
        // Committed: the account is gone. What did not fit goes now; if this
        // fails, `finish` (the sweep) removes it.
        for key in rest {
            if let Err(error) = self.delete(key).await {
                tracing::warn!(
                    error = framework::telemetry::chain(&error),
                    "an erased account's item is left for the sweep"
                );
                break;
            }
        }
        Ok(())
    }

    async fn unfinished(&self, limit: usize) -> Result<Vec<UserId>, StoreError> {
        let partition = Partition::erasures();
        let output = self
            .table
            .client()
            .query()
            .table_name(self.table.name())
            .index_name(partition.index.name())
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", partition.index.partition_attribute())
            .expression_attribute_values(":pk", s(&partition.value))
            .scan_index_forward(true)
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(classify)?;
        output
            .items
            .unwrap_or_default()
            .iter()
            // The index's sort key is the account's id (the index projects only some attributes).
            .map(|item| super::items::parsed(item, partition.index.sort_attribute(), UserId::parse))
            .collect()
    }

    async fn finish(&self, id: UserId, limit: usize) -> Result<bool, StoreError> {
        // Only an unfinished erasure is finished: without its record (never
        // erased) or with it marked finished there is nothing to do.
        let record = self.table.get(&Key::erasure(id)).await?;
        if record.is_none_or(|record| record.contains_key("finished_at")) {
            return Ok(true);
        }
        for key in self.partition_leftovers(id).await? {
            self.delete(key).await?;
        }
        let listed = self.owned_orders(id, limit).await?;
        if !listed.is_empty() {
            let taken = futures::future::try_join_all(listed.iter().map(|item| self.take_off(id, item))).await?;
            let changed = taken.iter().filter(|taken| **taken).count();
            tracing::info!(user_id = %id, orders = changed, "erased account's orders taken off it");
            return Ok(false);
        }
        // No order names the account any more: what counted them goes, and
        // the record is marked finished last, so a crash before it repeats only deletes.
        let counters = Counter::owner_counters(id).into_iter().map(|counter| Key::counter(&counter).item());
        let leftovers = counters.chain([Key::holdings(id).item()]);
        futures::future::try_join_all(leftovers.map(|key| self.delete(key))).await?;
        self.mark_finished(id).await?;
        tracing::info!(user_id = %id, "account erasure finished");
        Ok(true)
    }

    async fn erased(&self, id: UserId) -> Result<bool, StoreError> {
        // Finished or not; an expired record that TTL has not removed yet still names an erasure that happened.
        Ok(self.table.get(&Key::erasure(id)).await?.is_some())
    }
}
