//! The partitions each DynamoDB write touches, for the load's hot-key report:
//! the table's partition key and, for each index the write lands in, that
//! index's partition key, with the write units it costs there.
//!
//! Units are estimated from the request: a put costs one unit per started
//! KiB of its item (two in a transaction); an update or delete, whose item
//! the request does not show, one (two in a transaction); an index write one
//! unit per started KiB of the item. An update or delete does not name the
//! index partitions of its item either; the layout does (a product's stock
//! change rewrites its catalogue listing entry, which copies `stock`; an
//! outbox record's delete removes its listing entry). The removal of an
//! index entry an update moves away from is not counted.

use std::collections::HashSet;
use std::sync::LazyLock;

use aws_sdk_dynamodb::operation as ddb;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::client::interceptors::context::Input;

use crate::dynamo::items::Item;
use crate::dynamo::layout::{self, Index};

/// One write on one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Write {
    /// `table`, or the index's name.
    pub target: &'static str,
    pub partition: String,
    pub units: u32,
    pub class: Class,
}

/// How a partition's write rate grows with the shop's order rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Shared by every order (a shard, a counter of all orders): grows with the order rate.
    Shared,
    /// A product's stock item and its catalogue listing entry: grows with one product's sales.
    Stock,
    /// One entity's own (an order, an account, a client): grows with that entity's activity.
    Entity,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shared => "shared",
            Self::Stock => "stock",
            Self::Entity => "entity",
        }
    }
}

/// The writes one SDK call makes; none for a call that writes nothing.
pub(crate) fn writes(service: &str, operation: &str, input: &Input) -> Vec<Write> {
    if service != "DynamoDB" {
        return Vec::new();
    }
    let mut writes = Vec::new();
    match operation {
        "TransactWriteItems" => {
            let Some(input) = input.downcast_ref::<ddb::transact_write_items::TransactWriteItemsInput>() else {
                return writes;
            };
            for item in input.transact_items() {
                if let Some(put) = item.put() {
                    put_writes(put.item(), 2, &mut writes);
                } else if let Some(update) = item.update() {
                    key_writes(update.key(), false, 2, &mut writes);
                } else if let Some(delete) = item.delete() {
                    key_writes(delete.key(), true, 2, &mut writes);
                } else if let Some(check) = item.condition_check() {
                    key_writes(check.key(), false, 2, &mut writes);
                }
            }
        }
        "PutItem" => {
            if let Some(item) = input.downcast_ref::<ddb::put_item::PutItemInput>().and_then(|i| i.item()) {
                put_writes(item, 1, &mut writes);
            }
        }
        "UpdateItem" => {
            if let Some(key) = input.downcast_ref::<ddb::update_item::UpdateItemInput>().and_then(|i| i.key()) {
                key_writes(key, false, 1, &mut writes);
            }
        }
        "DeleteItem" => {
            if let Some(key) = input.downcast_ref::<ddb::delete_item::DeleteItemInput>().and_then(|i| i.key()) {
                key_writes(key, true, 1, &mut writes);
            }
        }
        _ => {}
    }
    writes
}

fn text(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

/// A put: the table partition, and every index the item is listed in.
fn put_writes(item: &Item, factor: u32, writes: &mut Vec<Write>) {
    let Some(pk) = text(item, "pk") else { return };
    let kib = size(item).div_ceil(1024).max(1);
    writes.push(Write { target: "table", units: kib * factor, class: class(&pk, true), partition: pk });
    for index in [Index::Gsi1, Index::Gsi2, Index::Gsi3, Index::Gsi4] {
        if let Some(partition) = text(item, index.partition_attribute()) {
            writes.push(Write { target: index.name(), units: kib, class: class(&partition, false), partition });
        }
    }
}

/// An update or delete: the table partition, and the index entries the layout says it rewrites.
fn key_writes(key: &Item, delete: bool, factor: u32, writes: &mut Vec<Write>) {
    let Some(pk) = text(key, "pk") else { return };
    for (index, partition) in layout::index_echo(&pk, delete) {
        writes.push(Write { target: index.name(), units: 1, class: class(&partition, false), partition });
    }
    writes.push(Write { target: "table", units: factor, class: class(&pk, true), partition: pk });
}

/// The partitions every order shares, named by the layout.
static SHARED: LazyLock<HashSet<String>> = LazyLock::new(layout::shared_partitions);

fn class(partition: &str, table: bool) -> Class {
    if (table && partition.starts_with(layout::prefix::PRODUCT)) || (!table && partition.starts_with("PRODUCTS#")) {
        Class::Stock
    } else if SHARED.contains(partition) {
        Class::Shared
    } else {
        Class::Entity
    }
}

/// DynamoDB's item size: attribute names plus values.
fn size(item: &Item) -> u32 {
    let bytes: usize = item.iter().map(|(name, value)| name.len() + value_size(value)).sum();
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(text) => text.len(),
        AttributeValue::N(number) => number.len().div_ceil(2) + 1,
        AttributeValue::B(blob) => blob.as_ref().len(),
        AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => 3 + map.iter().map(|(k, v)| 1 + k.len() + value_size(v)).sum::<usize>(),
        AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamo::items::s;

    #[test]
    fn a_put_writes_its_table_partition_and_each_index_it_is_listed_in() {
        let item: Item = [
            ("pk", "ORDER#1"),
            ("sk", "ORDER"),
            ("gsi1pk", "ORDERS#OWNER#u"),
            ("gsi4pk", "ORDERS#03"),
            ("lines", &"x".repeat(1500)),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), s(value)))
        .collect();
        let mut writes = Vec::new();
        put_writes(&item, 2, &mut writes);
        let seen: Vec<(&str, &str, u32, Class)> =
            writes.iter().map(|w| (w.target, w.partition.as_str(), w.units, w.class)).collect();
        assert_eq!(
            seen,
            [
                ("table", "ORDER#1", 4, Class::Entity),
                ("gsi1", "ORDERS#OWNER#u", 2, Class::Entity),
                ("gsi4", "ORDERS#03", 2, Class::Shared),
            ]
        );
    }

    #[test]
    fn a_stock_change_rewrites_the_products_listing_entry() {
        let key: Item = [("pk".to_owned(), s("PRODUCT#01J9Z3NDEKTSV4RRFFQ69G5FAV")), ("sk".to_owned(), s("PRODUCT"))]
            .into_iter()
            .collect();
        let mut writes = Vec::new();
        key_writes(&key, false, 2, &mut writes);
        assert_eq!(writes.len(), 2, "{writes:?}");
        assert!(writes.iter().all(|w| w.class == Class::Stock));
        assert!(writes.iter().any(|w| w.target == "gsi1" && w.partition.starts_with("PRODUCTS#active#")));
        let counter: Item = [("pk".to_owned(), s("COUNTER#orders#05")), ("sk".to_owned(), s("COUNTER"))].into();
        let mut writes = Vec::new();
        key_writes(&counter, false, 2, &mut writes);
        assert_eq!(writes[0].class, Class::Shared);
    }
}
