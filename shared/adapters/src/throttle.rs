//! Attempt limits shared by every instance of every function, counted in
//! DynamoDB fixed windows (the failed-login throttle). Each attempt is
//! counted atomically (one UpdateItem that returns the new count) *before*
//! the work it guards, so parallel attempts cannot all slip through.
//!
//! The sign-in history beside them remembers which (account, address)
//! pairs signed in, so a limit can let an account's owner through where it
//! stops everyone else.
//!
//! The per-client request limit is not here: WAF enforces it at the edge in
//! the cloud, and the local API front does locally, so no request pays a
//! blocking write for it.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use domain::ports::{Decision, SignInHistory, StoreError, Throttle};
use time::OffsetDateTime;

use crate::dynamo::Table;
use crate::dynamo::layout::Key;

/// A limit: `attempts` per `window` per key, counted under `name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// The counter's name, the first part of its items' keys; unique per limit.
    pub name: &'static str,
    /// How many attempts a key may make in one window.
    pub attempts: u32,
    /// The window's length, whole seconds and at least one.
    pub window: Duration,
}

/// A fixed-window counter: `limit` attempts per `window` per key.
#[derive(Clone, Debug)]
pub struct FixedWindow {
    table: Table,
    prefix: &'static str,
    limit: u32,
    window: Duration,
}

impl FixedWindow {
    /// A counter in `table` (`dynamodb:UpdateItem`) whose items are named
    /// after `prefix`, allowing `limit` attempts per `window` per key.
    pub fn new(table: Table, prefix: &'static str, limit: u32, window: Duration) -> Self {
        Self { table, prefix, limit, window }
    }

    fn window_key(&self, key: &str, now: i64) -> (Key, i64) {
        let length = self.window.as_secs() as i64;
        let start = now - now.rem_euclid(length);
        (Key::window(self.prefix, key, start), start + length)
    }

    fn decision(&self, hits: u64, now: i64, end: i64) -> Decision {
        Decision {
            allowed: hits <= u64::from(self.limit),
            limit: self.limit,
            remaining: u32::try_from(u64::from(self.limit).saturating_sub(hits)).unwrap_or(0),
            reset_seconds: u64::try_from(end - now).unwrap_or(0).max(1),
        }
    }

    /// Adds `delta` to the current window of `key`; the count afterwards.
    async fn add(&self, key: &str, delta: i64, now: i64) -> Result<(u64, i64), StoreError> {
        let (pk, end) = self.window_key(key, now);
        let output = self
            .table
            .client()
            .update_item()
            .table_name(self.table.name())
            .set_key(Some(pk.item()))
            .update_expression("ADD hits :delta SET expires_at = :end")
            .expression_attribute_values(":delta", AttributeValue::N(delta.to_string()))
            // Kept a minute past its window's end, then TTL removes it; the
            // key names the window, so an old item is never counted again.
            .expression_attribute_values(":end", AttributeValue::N((end + 60).to_string()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(crate::dynamo::classify)?;
        // A missing count would be a DynamoDB bug; refuse rather than allow unlimited.
        let hits = output
            .attributes
            .as_ref()
            .and_then(|item| item.get("hits"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
            .map_or(u64::MAX, |hits| u64::try_from(hits).unwrap_or(0));
        Ok((hits, end))
    }
}

#[async_trait]
impl Throttle for FixedWindow {
    async fn hit(&self, key: &str) -> Result<Decision, StoreError> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let (hits, end) = self.add(key, 1, now).await?;
        Ok(self.decision(hits, now, end))
    }

    async fn refund(&self, key: &str) -> Result<(), StoreError> {
        // Only a window that counted something gives one back: a refund that
        // lands in the next window (the boundary passed meanwhile) is dropped
        // rather than allowing an extra attempt.
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let (key, _) = self.window_key(key, now);
        let outcome = self
            .table
            .client()
            .update_item()
            .table_name(self.table.name())
            .set_key(Some(key.item()))
            .update_expression("ADD hits :minus_one")
            .condition_expression("hits > :zero")
            .expression_attribute_values(":minus_one", AttributeValue::N("-1".into()))
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .send()
            .await;
        // Already at zero: nothing to refund.
        crate::dynamo::unless_condition_failed(outcome)
    }

    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        // SET rather than DeleteItem: the same single IAM action as counting.
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let (pk, end) = self.window_key(key, now);
        self.table
            .client()
            .update_item()
            .table_name(self.table.name())
            .set_key(Some(pk.item()))
            .update_expression("SET hits = :zero, expires_at = :end")
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .expression_attribute_values(":end", AttributeValue::N((end + 60).to_string()))
            .send()
            .await
            .map_err(crate::dynamo::classify)?;
        Ok(())
    }
}

/// A sign-in history: entries last `ttl`, stored under `name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct History {
    /// The history's name, the first part of its items' keys.
    pub name: &'static str,
    /// How long an entry lasts after its latest sign-in, whole seconds.
    pub ttl: Duration,
}

/// [`SignInHistory`] in the table: one item per key, whose `expires_at` each
/// sign-in moves forward (TTL removes it later; a read ignores it at once).
#[derive(Clone, Debug)]
pub struct DynamoSignInHistory {
    table: Table,
    prefix: &'static str,
    ttl: Duration,
}

impl DynamoSignInHistory {
    /// A history in `table` (`dynamodb:GetItem`, `dynamodb:UpdateItem`) whose
    /// items are named after `prefix` and last `ttl`.
    pub fn new(table: Table, prefix: &'static str, ttl: Duration) -> Self {
        Self { table, prefix, ttl }
    }
}

#[async_trait]
impl SignInHistory for DynamoSignInHistory {
    async fn knows(&self, key: &str) -> Result<bool, StoreError> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let item = self.table.get(&Key::sign_in(self.prefix, key)).await?;
        let expires_at = item
            .as_ref()
            .and_then(|item| item.get("expires_at"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok());
        Ok(expires_at.is_some_and(|expires_at| expires_at > now))
    }

    async fn remember(&self, key: &str) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        self.table
            .client()
            .update_item()
            .table_name(self.table.name())
            .set_key(Some(Key::sign_in(self.prefix, key).item()))
            .update_expression("SET expires_at = :until")
            .expression_attribute_values(":until", AttributeValue::N(now.saturating_add(ttl).to_string()))
            .send()
            .await
            .map_err(crate::dynamo::classify)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> FixedWindow {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .build();
        FixedWindow::new(
            Table::new(aws_sdk_dynamodb::Client::from_conf(config), "t"),
            "LOGIN",
            5,
            Duration::from_secs(60),
        )
    }

    #[test]
    fn windows_are_aligned_and_named_by_their_start() {
        let limiter = limiter();
        let (key, end) = limiter.window_key("1.2.3.4", 125);
        assert_eq!((key.pk.as_str(), end), ("LOGIN#1.2.3.4#120", 180));
        assert_eq!(limiter.window_key("1.2.3.4", 179).0.pk, "LOGIN#1.2.3.4#120");
        assert_eq!(limiter.window_key("1.2.3.4", 180).0.pk, "LOGIN#1.2.3.4#180");
    }

    #[test]
    fn the_attempt_after_the_limit_is_refused() {
        let limiter = limiter();
        let fifth = limiter.decision(5, 125, 180);
        assert_eq!((fifth.allowed, fifth.remaining, fifth.reset_seconds), (true, 0, 55));
        assert!(!limiter.decision(6, 125, 180).allowed);
    }
}
