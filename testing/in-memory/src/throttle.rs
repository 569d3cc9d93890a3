//! Fixed-window attempt counters, counted atomically, and the sign-in
//! history that lets an owner past them.

use std::time::Duration;

use async_trait::async_trait;
use domain::ports::{Decision, SignInHistory, StoreError, Throttle};

use crate::{Dependency, Memory};

/// One named limit: `attempts` per fixed `window` per key, windows aligned to
/// the (movable) clock as the DynamoDB throttle aligns them to the epoch.
#[derive(Clone)]
pub struct MemoryThrottle {
    memory: Memory,
    name: String,
    attempts: u32,
    window: Duration,
}

impl MemoryThrottle {
    pub(crate) fn new(memory: Memory, name: &str, attempts: u32, window: Duration) -> Self {
        Self { memory, name: name.to_owned(), attempts, window }
    }

    /// Adds `delta` to `key`'s current window; the count after, and seconds to the window's end.
    fn add(&self, key: &str, delta: i64) -> Result<(i64, u64), StoreError> {
        self.update(key, |count| *count + delta)
    }

    /// Replaces `key`'s count in the current window with `next(count)`, atomically.
    fn update(&self, key: &str, next: impl Fn(&i64) -> i64) -> Result<(i64, u64), StoreError> {
        let mut state = self.memory.lock();
        state.check(Dependency::Table)?;
        let now = state.now().unix_timestamp();
        let length = self.window.as_secs() as i64;
        let start = now - now.rem_euclid(length);
        let count = state.windows.entry((self.name.clone(), key.to_owned(), start)).or_insert(0);
        *count = next(count);
        Ok((*count, u64::try_from(start + length - now).unwrap_or(0).max(1)))
    }
}

#[async_trait]
impl Throttle for MemoryThrottle {
    async fn hit(&self, key: &str) -> Result<Decision, StoreError> {
        // Yield first, as a network round trip would: concurrent callers interleave here.
        tokio::task::yield_now().await;
        let (count, reset_seconds) = self.add(key, 1)?;
        let used = u64::try_from(count).unwrap_or(0);
        Ok(Decision {
            allowed: used <= u64::from(self.attempts),
            limit: self.attempts,
            remaining: u32::try_from(u64::from(self.attempts).saturating_sub(used)).unwrap_or(0),
            reset_seconds,
        })
    }

    async fn refund(&self, key: &str) -> Result<(), StoreError> {
        // Only a window that counted something gives one back (as in DynamoDB).
        self.update(key, |count| (*count).max(1) - 1).map(|_| ())
    }

    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        self.update(key, |_| 0).map(|_| ())
    }
}

/// Entries that last `ttl` under one `name`, expiring on the (movable) clock.
#[derive(Clone)]
pub struct MemorySignInHistory {
    memory: Memory,
    name: String,
    ttl: Duration,
}

impl MemorySignInHistory {
    pub(crate) fn new(memory: Memory, name: &str, ttl: Duration) -> Self {
        Self { memory, name: name.to_owned(), ttl }
    }
}

#[async_trait]
impl SignInHistory for MemorySignInHistory {
    async fn knows(&self, key: &str) -> Result<bool, StoreError> {
        tokio::task::yield_now().await;
        let state = self.memory.lock();
        state.check(Dependency::Table)?;
        let now = state.now();
        Ok(state.sign_ins.get(&(self.name.clone(), key.to_owned())).is_some_and(|expires_at| *expires_at > now))
    }

    async fn remember(&self, key: &str) -> Result<(), StoreError> {
        let mut state = self.memory.lock();
        state.check(Dependency::Table)?;
        let expires_at = state.now() + self.ttl;
        state.sign_ins.insert((self.name.clone(), key.to_owned()), expires_at);
        Ok(())
    }
}
