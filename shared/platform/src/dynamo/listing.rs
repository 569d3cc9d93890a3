//! Newest-first pages over one index partition, with the total from a
//! counter: one Query and one GetItem, sent together.

use aws_sdk_dynamodb::types::AttributeValue;
use domain::ports::StoreError;
use domain::{Page, PageRequest};

use super::items::{Item, get_s};
use super::layout::{Counter, Key, Partition};
use super::records::counter_total;
use super::{Table, classify};

/// One listing: an index partition, its counter, and how a position (the
/// sort value of the last item returned) maps back to a base-table key.
pub(crate) struct Listing {
    pub partition: Partition,
    pub counter: Counter,
    /// The key of the item whose sort value is `position`, or `None` when
    /// `position` is not one this listing could have issued.
    pub base_key: fn(&str) -> Option<Key>,
}

pub(crate) struct RawPage {
    pub items: Vec<Item>,
    pub next: Option<String>,
    pub total: u64,
}

impl Table {
    pub(crate) async fn list_page(&self, listing: &Listing, page: &PageRequest) -> Result<RawPage, StoreError> {
        let mut start = match &page.after {
            None => None,
            Some(position) => {
                let mut start = (listing.base_key)(position).ok_or(StoreError::InvalidPosition)?.item();
                start.extend(listing.partition.attributes(position));
                Some(start)
            }
        };
        // One more than asked tells whether another page exists, without an
        // empty round trip at the end.
        let wanted = usize::from(page.limit.get()) + 1;
        let total = self
            .client()
            .get_item()
            .table_name(self.name())
            .set_key(Some(Key::counter(&listing.counter).item()))
            .send();
        let (first, total) = tokio::join!(self.query_once(listing, start.clone(), wanted), total);
        let total = counter_total(total.map_err(classify)?.item());
        let (mut items, mut more) = first?;
        // A Query returns at most 1 MB: large items can end a response early.
        // Continue until the page is full or the partition is exhausted.
        while items.len() < wanted
            && let Some(last_evaluated) = more
        {
            start = Some(last_evaluated);
            let (next, after) = self.query_once(listing, start.clone(), wanted - items.len()).await?;
            items.extend(next);
            more = after;
        }
        let next = if items.len() == wanted {
            items.truncate(wanted - 1);
            Some(
                get_s(items.last().expect("limit is at least one"), listing.partition.index.sort_attribute())?
                    .to_owned(),
            )
        } else {
            None
        };
        Ok(RawPage { items, next, total })
    }

    /// One Query of at most `limit` items (newest first) from `start`; the
    /// items and where the next Query would continue.
    async fn query_once(
        &self,
        listing: &Listing,
        start: Option<Item>,
        limit: usize,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let output = self
            .client()
            .query()
            .table_name(self.name())
            .index_name(listing.partition.index.name())
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", listing.partition.index.partition_attribute())
            .expression_attribute_values(":pk", AttributeValue::S(listing.partition.value.clone()))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(classify)?;
        let more = output.last_evaluated_key.filter(|key| !key.is_empty());
        Ok((output.items.unwrap_or_default(), more))
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
                        error = format!("{:#}", anyhow::Error::from(error)),
                        "unreadable item left out of a listing"
                    );
                    unreadable += 1;
                    None
                }
            })
            .collect();
        if unreadable > 0 {
            crate::metrics::count(crate::metrics::names::UNREADABLE_ITEMS, f64::from(unreadable));
        }
        Page { items, next: self.next, total: self.total }
    }
}
