//! Newest-first pages over a listing, with the DynamoDB adapters' position
//! semantics: the position is the last item's id, and a position that could
//! not have been issued for this listing is refused.

use domain::ports::StoreError;
use domain::{Page, PageRequest};

/// One page of `items` (each with its id, in any order) after `request.after`.
pub(crate) fn page<T>(
    mut items: Vec<(String, T)>,
    request: &PageRequest,
    is_position: impl Fn(&str) -> bool,
) -> Result<Page<T>, StoreError> {
    let total = items.len() as u64;
    // ULIDs sort by creation time: newest first is descending id order.
    items.sort_by(|a, b| b.0.cmp(&a.0));
    if let Some(after) = &request.after {
        if !is_position(after) {
            return Err(StoreError::InvalidPosition);
        }
        items.retain(|(id, _)| id.as_str() < after.as_str());
    }
    let limit = usize::from(request.limit.get());
    let next = (items.len() > limit).then(|| items[limit - 1].0.clone());
    items.truncate(limit);
    Ok(Page { items: items.into_iter().map(|(_, item)| item).collect(), next, total })
}
