//! Request limits shared by every instance of every function, counted in
//! DynamoDB fixed windows: per client IP on every route, and per account on
//! failed logins. In the cloud a WAF rate rule stands in front as well.

use std::time::Duration;

use aws_sdk_dynamodb::types::ReturnValue;
use domain::ports::StoreError;
use time::OffsetDateTime;

use crate::dynamo::Table;

/// The outcome of counting one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the window resets.
    pub reset_seconds: u64,
}

/// A fixed-window counter: `limit` hits per `window` per key.
#[derive(Clone, Debug)]
pub struct FixedWindow {
    table: Table,
    prefix: &'static str,
    limit: u32,
    window: Duration,
}

impl FixedWindow {
    pub fn new(table: Table, prefix: &'static str, limit: u32, window: Duration) -> Self {
        Self { table, prefix, limit, window }
    }

    fn window_key(&self, key: &str, now: i64) -> (String, i64) {
        let length = self.window.as_secs() as i64;
        let start = now - now.rem_euclid(length);
        (format!("{}#{key}#{start}", self.prefix), start + length)
    }

    fn decision(&self, hits: u64, now: i64, end: i64) -> Decision {
        Decision {
            allowed: hits <= u64::from(self.limit),
            limit: self.limit,
            remaining: u32::try_from(u64::from(self.limit).saturating_sub(hits)).unwrap_or(0),
            reset_seconds: u64::try_from(end - now).unwrap_or(0).max(1),
        }
    }

    /// Counts one hit for `key` and says whether it is within the limit.
    pub async fn hit(&self, key: &str) -> Result<Decision, StoreError> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let (pk, end) = self.window_key(key, now);
        let output = self
            .table
            .client()
            .update_item()
            .table_name(self.table.name())
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(pk))
            .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("WINDOW".into()))
            .update_expression("ADD hits :one SET expires_at = :end")
            .expression_attribute_values(":one", aws_sdk_dynamodb::types::AttributeValue::N("1".into()))
            // Kept a window past its end; TTL removes it later, and the key
            // names the window, so an old item is never counted again.
            .expression_attribute_values(":end", aws_sdk_dynamodb::types::AttributeValue::N((end + 60).to_string()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(crate::dynamo::classify)?;
        // A missing count would be a DynamoDB bug; refuse rather than allow unlimited.
        let hits = output.attributes.as_ref().and_then(hits).unwrap_or(u64::MAX);
        Ok(self.decision(hits, now, end))
    }

    /// How `key` stands without counting a hit.
    pub async fn peek(&self, key: &str) -> Result<Decision, StoreError> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let (pk, end) = self.window_key(key, now);
        let item = self.table.get(pk, "WINDOW").await?;
        let hits = item.as_ref().and_then(hits).unwrap_or(0);
        // `peek` asks "may one more go through?", hence the +1.
        Ok(self.decision(hits + 1, now, end))
    }
}

/// The `hits` count of a window item.
fn hits(item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>) -> Option<u64> {
    item.get("hits").and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> FixedWindow {
        let config = aws_sdk_dynamodb::Config::builder().behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest()).build();
        FixedWindow::new(Table::new(aws_sdk_dynamodb::Client::from_conf(config), "t"), "RATE", 100, Duration::from_secs(60))
    }

    #[test]
    fn windows_are_aligned_and_named_by_their_start() {
        let limiter = limiter();
        assert_eq!(limiter.window_key("1.2.3.4", 125), ("RATE#1.2.3.4#120".to_owned(), 180));
        assert_eq!(limiter.window_key("1.2.3.4", 179).0, "RATE#1.2.3.4#120");
        assert_eq!(limiter.window_key("1.2.3.4", 180).0, "RATE#1.2.3.4#180");
    }

    #[test]
    fn the_hundred_and_first_hit_is_refused() {
        let limiter = limiter();
        let hundredth = limiter.decision(100, 125, 180);
        assert_eq!((hundredth.allowed, hundredth.remaining, hundredth.reset_seconds), (true, 0, 55));
        let over = limiter.decision(101, 125, 180);
        assert!(!over.allowed);
    }
}
