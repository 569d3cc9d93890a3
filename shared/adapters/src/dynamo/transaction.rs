//! Transactions with named slots: each write is added to a [`Transaction`]
//! and gets a [`Slot`], so a cancelled transaction answers "did the SKU
//! claim's condition fail?" instead of "did item 2 fail?" by index arithmetic.
//! Also the write items every store shares: conditional puts, counters and
//! deletes of claims.

use aws_sdk_dynamodb::types::{
    CancellationReason, Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};

use super::items::{Item, n};
use super::layout::{Counter, Key};

/// The writes of one transaction, in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Transaction {
    pub(super) items: Vec<TransactWriteItem>,
}

/// Where one write sits in its transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot(usize);

impl Transaction {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `item`; its slot tells its outcome if the transaction is cancelled.
    pub fn add(&mut self, item: TransactWriteItem) -> Slot {
        self.items.push(item);
        Slot(self.items.len() - 1)
    }

    /// Adds writes whose outcome nobody asks about (counters, outbox records).
    pub fn extend(&mut self, items: impl IntoIterator<Item = TransactWriteItem>) {
        self.items.extend(items);
    }
}

/// A transaction that was cancelled, with one reason per write, in order.
pub(crate) struct Cancelled(pub Vec<CancellationReason>);

impl Cancelled {
    /// Did the condition on the write in `slot` fail?
    pub fn condition_failed(&self, slot: Slot) -> bool {
        self.0.get(slot.0).and_then(CancellationReason::code) == Some("ConditionalCheckFailed")
    }

    /// Did the item in `slot` exist when its condition failed?
    pub fn item_existed(&self, slot: Slot) -> bool {
        self.old_item(slot).is_some()
    }

    /// The item in `slot` as it was when its condition failed (writes that
    /// ask for it with `ReturnValuesOnConditionCheckFailure`).
    pub fn old_item(&self, slot: Slot) -> Option<&super::items::Item> {
        self.0.get(slot.0).and_then(CancellationReason::item)
    }
}

/// Writes `item` if `condition` holds; for a versioned update the condition
/// is `version = :expected`. A failed condition returns the old item, so
/// callers can tell "changed" from "gone".
pub(crate) fn conditional_put(
    table: &str,
    item: Item,
    condition: &str,
    expected_version: Option<u64>,
) -> TransactWriteItem {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(condition)
        .set_expression_attribute_values(expected_version.map(|v| [(":expected".to_owned(), n(v))].into()))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()
        .expect("table, item and condition are set");
    TransactWriteItem::builder().put(put).build()
}

/// Deletes the item at `key` if `condition` holds (with `:expected` bound to `value`).
pub(crate) fn conditional_delete(
    table: &str,
    key: &Key,
    condition: &str,
    value: aws_sdk_dynamodb::types::AttributeValue,
) -> TransactWriteItem {
    let delete = Delete::builder()
        .table_name(table)
        .set_key(Some(key.item()))
        .condition_expression(condition)
        .expression_attribute_values(":expected", value)
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()
        .expect("table and key are set");
    TransactWriteItem::builder().delete(delete).build()
}

/// `ADD total :delta` on `counter`, creating it at zero if new.
pub(crate) fn count(table: &str, counter: &Counter, delta: i64) -> TransactWriteItem {
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(Key::counter(counter).item()))
        .update_expression("ADD #total :delta")
        .expression_attribute_names("#total", "total")
        .expression_attribute_values(":delta", n(delta))
        .build()
        .expect("table, key and expression are set");
    TransactWriteItem::builder().update(update).build()
}
