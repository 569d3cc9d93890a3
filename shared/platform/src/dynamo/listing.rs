//! Newest-first pages over one index partition, with the total from a
//! counter: one Query and one GetItem, sent together.

use aws_sdk_dynamodb::types::AttributeValue;
use domain::PageRequest;
use domain::ports::StoreError;

use super::items::{Item, get_s, s};
use super::records::{counter_key, counter_total};
use super::{Table, classify};

/// One listable partition of an index.
pub(crate) struct Listing {
    pub index: &'static str,
    pub partition_attribute: &'static str,
    pub sort_attribute: &'static str,
    pub partition: String,
    pub counter: String,
    /// The base-table key (pk, sk) of the item whose sort value is `position`,
    /// or `None` when `position` is not one this listing could have issued.
    pub base_key: fn(&str) -> Option<(String, String)>,
}

pub(crate) struct RawPage {
    pub items: Vec<Item>,
    pub next: Option<String>,
    pub total: u64,
}

impl Table {
    pub(crate) async fn list_page(&self, listing: &Listing, page: &PageRequest) -> Result<RawPage, StoreError> {
        let start = match &page.after {
            None => None,
            Some(position) => {
                let (pk, sk) = (listing.base_key)(position).ok_or(StoreError::InvalidPosition)?;
                Some(Item::from([
                    ("pk".into(), s(pk)),
                    ("sk".into(), s(sk)),
                    (listing.partition_attribute.into(), s(listing.partition.clone())),
                    (listing.sort_attribute.into(), s(position.clone())),
                ]))
            }
        };
        let limit = usize::from(page.limit.get());
        // One more than asked tells whether another page exists, without an
        // empty round trip at the end.
        let query = self
            .client()
            .query()
            .table_name(self.name())
            .index_name(listing.index)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", listing.partition_attribute)
            .expression_attribute_values(":pk", AttributeValue::S(listing.partition.clone()))
            .scan_index_forward(false)
            .limit(limit as i32 + 1)
            .set_exclusive_start_key(start)
            .send();
        let total = self.client().get_item().table_name(self.name()).set_key(Some(counter_key(&listing.counter))).send();
        let (query, total) = tokio::join!(query, total);
        let query = query.map_err(classify)?;
        let total = counter_total(total.map_err(classify)?.item())?;

        let mut items = query.items;
        let items_len = items.as_ref().map_or(0, Vec::len);
        let next = if items_len > limit {
            let items = items.as_mut().expect("more than zero items");
            items.truncate(limit);
            Some(get_s(items.last().expect("limit is at least one"), listing.sort_attribute)?.to_owned())
        } else {
            None
        };
        Ok(RawPage { items: items.unwrap_or_default(), next, total })
    }
}
