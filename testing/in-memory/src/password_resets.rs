//! Pending password resets held in memory: requested and completed under
//! the one lock, as the DynamoDB adapter does in one transaction.

use async_trait::async_trait;
use domain::ports::{PasswordResets, StoreError};
use domain::{DomainEvent, PendingReset, SecretHash, User, UserId};
use time::OffsetDateTime;

use crate::{Dependency, Memory};

/// The [`PasswordResets`] over a [`Memory`].
#[derive(Clone)]
pub struct MemoryPasswordResets {
    memory: Memory,
}

impl MemoryPasswordResets {
    pub(crate) fn new(memory: Memory) -> Self {
        Self { memory }
    }
}

#[async_trait]
impl PasswordResets for MemoryPasswordResets {
    async fn request(&self, pending: &PendingReset, email: &DomainEvent) -> Result<(), StoreError> {
        tokio::task::yield_now().await;
        let mut state = self.memory.lock();
        state.check(Dependency::Table)?;
        state.resets.insert(pending.user_id, pending.clone());
        state.outbox.push(email.clone());
        Ok(())
    }

    async fn pending(&self, user: UserId) -> Result<Option<PendingReset>, StoreError> {
        tokio::task::yield_now().await;
        let state = self.memory.lock();
        state.check(Dependency::Table)?;
        Ok(state.resets.get(&user).cloned())
    }

    async fn complete(
        &self,
        user: &User,
        presented: &SecretHash,
        now: OffsetDateTime,
        email: &DomainEvent,
    ) -> Result<(), StoreError> {
        // Yield first, as a network round trip would: concurrent uses interleave here.
        tokio::task::yield_now().await;
        let mut state = self.memory.lock();
        state.check(Dependency::Table)?;
        let usable =
            state.resets.get(&user.id).is_some_and(|reset| reset.secret_hash == *presented && reset.expires_at > now);
        if !usable {
            return Err(StoreError::NotFound);
        }
        if state.users.get(&user.id).is_none_or(|stored| stored.version + 1 != user.version) {
            return Err(StoreError::VersionMismatch);
        }
        state.resets.remove(&user.id);
        state.users.insert(user.id, user.clone());
        state.outbox.push(email.clone());
        Ok(())
    }
}
