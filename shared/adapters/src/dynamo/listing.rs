//! Newest-first pages over a listing's partitions, with the total from its
//! counters: one Query per partition and one read of the counters, sent
//! together. A listing written by every order is spread over shards; its
//! pages are the shards merged in id order.
//!
//! The position is the sort value (a ULID) of the last item returned. Ids
//! are unique and totally ordered, so one position is every shard's
//! position too: each shard continues below it. Hence every item is listed
//! exactly once across pages, an item inserted while a client pages (newer,
//! so above the position) never shifts what the next page holds, and the
//! cursor stays as small and as tamper-proof as with one partition.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use domain::ports::StoreError;
use domain::{Page, PageRequest};

use super::items::{Item, get_s};
use super::layout::{Counter, Key, Partition};
use super::records::counter_value;
use super::{Table, UNPROCESSED_BACKOFF, classify};

/// One listing: its partitions (one, or every shard), the counters whose
/// sum is its total, and how a position (the sort value of the last item
/// returned) maps back to a base-table key.
pub(crate) struct Listing {
    pub partitions: Vec<Partition>,
    pub counters: Vec<Counter>,
    /// The key of the item whose sort value is `position`, or `None` when
    /// `position` is not one this listing could have issued.
    pub base_key: fn(&str) -> Option<Key>,
}

pub(crate) struct RawPage {
    pub items: Vec<Item>,
    pub next: Option<String>,
    pub total: u64,
}

/// Merges the newest items of each shard into one page of at most `limit`
/// items, newest (greatest sort value) first, and the position of the next
/// page when there is one. Each shard's list must hold its items below the
/// page's start, newest first, and at least `limit + 1` of them unless the
/// shard has no more: then the page is exactly the `limit` newest of all
/// shards, and one more item anywhere says another page exists.
pub(crate) fn merge_newest_first<T>(shards: Vec<Vec<(String, T)>>, limit: usize) -> (Vec<(String, T)>, Option<String>) {
    let mut merged: Vec<(String, T)> = shards.into_iter().flatten().collect();
    merged.sort_by(|a, b| b.0.cmp(&a.0));
    merged.dedup_by(|a, b| a.0 == b.0);
    let next = (merged.len() > limit).then(|| merged[limit - 1].0.clone());
    merged.truncate(limit);
    (merged, next)
}

impl Table {
    pub(crate) async fn list_page(&self, listing: &Listing, page: &PageRequest) -> Result<RawPage, StoreError> {
        if let Some(position) = &page.after {
            (listing.base_key)(position).ok_or(StoreError::InvalidPosition)?;
        }
        let limit = usize::from(page.limit.get());
        // One more than asked tells whether another page exists, without an
        // empty round trip at the end.
        let wanted = limit + 1;
        let shards = listing.partitions.iter().map(|partition| self.newest(partition, page.after.as_deref(), wanted));
        let (shards, total) = tokio::join!(futures::future::try_join_all(shards), self.total(&listing.counters));
        let (shards, total) = (shards?, total?);
        let (items, next) = merge_newest_first(shards, limit);
        Ok(RawPage { items: items.into_iter().map(|(_, item)| item).collect(), next, total })
    }

    /// The `wanted` newest items of `partition` below `after`, each with its sort value.
    async fn newest(
        &self,
        partition: &Partition,
        after: Option<&str>,
        wanted: usize,
    ) -> Result<Vec<(String, Item)>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        // A Query returns at most 1 MB: large items can end a response early.
        // Continue until the shard's share is full or the partition is exhausted.
        loop {
            let (next, more) = self.query_once(partition, after, start, wanted - items.len()).await?;
            items.extend(next);
            match more {
                Some(last_evaluated) if items.len() < wanted => start = Some(last_evaluated),
                _ => break,
            }
        }
        let sort = partition.index.sort_attribute();
        items.into_iter().map(|item| Ok((get_s(&item, sort)?.to_owned(), item))).collect()
    }

    /// One Query of at most `limit` items (newest first) below `after`, from
    /// `start`; the items and where the next Query would continue.
    async fn query_once(
        &self,
        partition: &Partition,
        after: Option<&str>,
        start: Option<Item>,
        limit: usize,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let mut query = self
            .client()
            .query()
            .table_name(self.name())
            .index_name(partition.index.name())
            .expression_attribute_names("#pk", partition.index.partition_attribute())
            .expression_attribute_values(":pk", AttributeValue::S(partition.value.clone()))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start);
        query = match after {
            None => query.key_condition_expression("#pk = :pk"),
            Some(after) => query
                .key_condition_expression("#pk = :pk AND #sk < :after")
                .expression_attribute_names("#sk", partition.index.sort_attribute())
                .expression_attribute_values(":after", AttributeValue::S(after.to_owned())),
        };
        let output = query.send().await.map_err(classify)?;
        let more = output.last_evaluated_key.filter(|key| !key.is_empty());
        Ok((output.items.unwrap_or_default(), more))
    }

    /// The sum of `counters`: one `GetItem` for a single counter, one
    /// `BatchGetItem` for the shards of a total (eventually consistent, as
    /// a listing's total always was).
    pub(crate) async fn total(&self, counters: &[Counter]) -> Result<u64, StoreError> {
        if let [counter] = counters {
            let output = self
                .client()
                .get_item()
                .table_name(self.name())
                .set_key(Some(Key::counter(counter).item()))
                .send()
                .await
                .map_err(classify)?;
            return Ok(u64::try_from(counter_value(output.item())).unwrap_or(0));
        }
        let keys: Vec<Item> = counters.iter().map(|counter| Key::counter(counter).item()).collect();
        let mut request =
            KeysAndAttributes::builder().set_keys(Some(keys)).build().map_err(|e| StoreError::Failed(e.into()))?;
        let mut sum = 0_i64;
        // BatchGetItem may hand back keys it did not get to under load; ask again, briefly.
        for attempt in 0..5 {
            let output = self
                .client()
                .batch_get_item()
                .set_request_items(Some(HashMap::from([(self.name().to_owned(), request.clone())])))
                .send()
                .await
                .map_err(classify)?;
            for item in output.responses().and_then(|r| r.get(self.name())).into_iter().flatten() {
                sum += counter_value(Some(item));
            }
            match output.unprocessed_keys().and_then(|u| u.get(self.name())) {
                Some(rest) if !rest.keys().is_empty() => {
                    request = rest.clone();
                    UNPROCESSED_BACKOFF.sleep(attempt).await;
                }
                // A shard may be below zero (an order counted before the
                // shards, moved after); only the sum is a count.
                _ => return Ok(u64::try_from(sum).unwrap_or(0)),
            }
        }
        Err(StoreError::Unavailable("BatchGetItem left counters unprocessed".into()))
    }
}

impl RawPage {
    /// The page's items read as `T`. An item that cannot be read is logged
    /// with its key, counted, and left out: one bad item must never take a
    /// whole listing down (a direct read of it still fails, as a 500).
    pub(crate) fn read<T>(self, read: impl Fn(&Item) -> Result<T, StoreError>) -> Page<T> {
        let mut unreadable = 0;
        let items = self
            .items
            .iter()
            .filter_map(|item| match read(item) {
                Ok(value) => Some(value),
                Err(error) => {
                    let key = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                    tracing::error!(
                        pk = %key("pk"),
                        sk = %key("sk"),
                        error = framework::telemetry::chain(&error),
                        "unreadable item left out of a listing"
                    );
                    unreadable += 1;
                    None
                }
            })
            .collect();
        if unreadable > 0 {
            framework::metrics::count(framework::metrics::names::UNREADABLE_ITEMS, f64::from(unreadable));
        }
        Page { items, next: self.next, total: self.total }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::merge_newest_first;

    /// One page read as the store reads it: each shard's items below
    /// `after`, newest first, `limit + 1` of them, merged.
    fn read_page(shards: &[BTreeSet<u32>], after: Option<&str>, limit: usize) -> (Vec<String>, Option<String>) {
        let per_shard = shards
            .iter()
            .map(|shard| {
                shard
                    .iter()
                    .rev()
                    .map(|id| format!("{id:010}"))
                    .filter(|id| after.is_none_or(|after| id.as_str() < after))
                    .take(limit + 1)
                    .map(|id| (id.clone(), id))
                    .collect()
            })
            .collect();
        let (items, next) = merge_newest_first(per_shard, limit);
        (items.into_iter().map(|(_, id)| id).collect(), next)
    }

    proptest! {
        #[test]
        fn pages_of_merged_shards_list_every_item_once_in_order(
            mut shards in proptest::collection::vec(proptest::collection::btree_set(0u32..100_000, 0..40), 1..18),
            limit in 1usize..25,
            inserts in proptest::collection::vec((0usize..18, 0u32..200_000), 0..60),
        ) {
            // Each id lives in one shard, as an order lives in the shard of its id.
            let mut seen = BTreeSet::new();
            for shard in &mut shards {
                shard.retain(|id| seen.insert(*id));
            }
            let before: BTreeSet<String> = seen.iter().map(|id| format!("{id:010}")).collect();
            let mut listed: Vec<String> = Vec::new();
            let mut after = None;
            let mut inserts = inserts.into_iter();
            loop {
                let (items, next) = read_page(&shards, after.as_deref(), limit);
                prop_assert!(items.len() <= limit);
                prop_assert!(next.is_none() || items.len() == limit, "a short page is the last");
                listed.extend(items);
                // Others write between page reads: new ids anywhere, in any shard.
                for (shard, id) in inserts.by_ref().take(3) {
                    if seen.insert(id) {
                        let count = shards.len();
                        shards[shard % count].insert(id);
                    }
                }
                match next {
                    Some(position) => after = Some(position),
                    None => break,
                }
            }
            prop_assert!(listed.windows(2).all(|pair| pair[0] > pair[1]), "newest first, none twice: {listed:?}");
            let listed: BTreeSet<String> = listed.into_iter().collect();
            prop_assert!(before.is_subset(&listed), "every item there from the start is listed");
        }
    }
}
