//! Sessions (refresh-token families) held in memory, rotated and revoked
//! atomically under the one lock, as the DynamoDB adapter does with
//! conditional writes.

use async_trait::async_trait;
use domain::ports::{SessionStore, StoreError, Taken};
use domain::{Rotation, SecretHash, Session, SessionId, UserId};
use time::OffsetDateTime;

use crate::{Dependency, Memory};

/// The [`SessionStore`] over a [`Memory`].
#[derive(Clone)]
pub struct MemorySessionStore {
    memory: Memory,
}

impl MemorySessionStore {
    pub(crate) fn new(memory: Memory) -> Self {
        Self { memory }
    }
}

#[async_trait]
impl SessionStore for MemorySessionStore {
    async fn start(&self, session: &Session) -> Result<(), StoreError> {
        tokio::task::yield_now().await;
        let mut state = self.memory.lock();
        state.check(Dependency::Table)?;
        let key = (session.user_id, session.id);
        if state.sessions.contains_key(&key) {
            return Err(StoreError::AlreadyExists(Taken::Id));
        }
        state.sessions.insert(key, session.clone());
        Ok(())
    }

    async fn rotate(
        &self,
        user: UserId,
        session: SessionId,
        presented: &SecretHash,
        next: &SecretHash,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<Rotation, StoreError> {
        // Yield first, as a network round trip would: concurrent refreshes interleave here.
        tokio::task::yield_now().await;
        let mut state = self.memory.lock();
        state.check(Dependency::Table)?;
        let key = (user, session);
        let Some(stored) = state.sessions.get_mut(&key) else { return Ok(Rotation::Unknown) };
        if stored.secret_hash != *presented {
            state.sessions.remove(&key);
            return Ok(Rotation::Reused);
        }
        if !stored.is_live(now) {
            state.sessions.remove(&key);
            return Ok(Rotation::Expired);
        }
        stored.secret_hash = *next;
        stored.expires_at = domain::session::whole_seconds(expires_at);
        Ok(Rotation::Rotated(stored.clone()))
    }

    async fn end(&self, user: UserId, session: SessionId) -> Result<bool, StoreError> {
        tokio::task::yield_now().await;
        let mut state = self.memory.lock();
        state.check(Dependency::Table)?;
        Ok(state.sessions.remove(&(user, session)).is_some())
    }

    async fn end_all(&self, user: UserId, keep: Option<SessionId>) -> Result<usize, StoreError> {
        tokio::task::yield_now().await;
        let mut state = self.memory.lock();
        state.check(Dependency::Table)?;
        let before = state.sessions.len();
        state.sessions.retain(|(owner, id), _| *owner != user || Some(*id) == keep);
        Ok(before - state.sessions.len())
    }

    async fn list(&self, user: UserId, now: OffsetDateTime) -> Result<Vec<Session>, StoreError> {
        tokio::task::yield_now().await;
        let state = self.memory.lock();
        state.check(Dependency::Table)?;
        Ok(state.sessions.values().filter(|session| session.user_id == user && session.is_live(now)).cloned().collect())
    }
}
