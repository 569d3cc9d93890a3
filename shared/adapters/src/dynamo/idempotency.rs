//! Idempotency records on the table: read back here; each is written in the
//! transaction of the create it belongs to (orders, products, users).

use async_trait::async_trait;
use framework::idempotency::{IdempotencyRecord, IdempotencyStore, LookupError};
use time::OffsetDateTime;

use super::layout::Key;
use super::{Table, records};

/// Idempotency records on the shared table.
#[derive(Clone, Debug)]
pub struct DynamoIdempotencyStore {
    table: Table,
}

impl DynamoIdempotencyStore {
    /// The idempotency records in `table`.
    pub fn new(table: Table) -> Self {
        Self { table }
    }
}

#[async_trait]
impl IdempotencyStore for DynamoIdempotencyStore {
    async fn find(&self, key: &str) -> Result<Option<IdempotencyRecord>, LookupError> {
        let lookup = async {
            let Some(item) = self.table.get(&Key::idempotency(key)).await? else { return Ok(None) };
            records::idempotency_from_item(key, &item).map(Some)
        };
        let Some(record) = lookup.await.map_err(crate::framework_terms::lookup_error)? else {
            return Ok(None);
        };
        // TTL deletion lags; an expired record counts as absent.
        Ok((record.expires_at > OffsetDateTime::now_utc()).then_some(record))
    }
}
