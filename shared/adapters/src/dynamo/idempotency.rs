//! Idempotency records on the table: read back here; each is written in the
//! transaction of the create it belongs to (orders, products, users).

use async_trait::async_trait;
use domain::IdempotencyRecord;
use domain::ports::{IdempotencyStore, StoreError};
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
    async fn find(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        let Some(item) = self.table.get(&Key::idempotency(key)).await? else { return Ok(None) };
        let record = records::idempotency_from_item(key, &item)?;
        // TTL deletion lags; an expired record counts as absent.
        Ok((record.expires_at > OffsetDateTime::now_utc()).then_some(record))
    }
}
