//! Pending email verifications: one per account, consumed only while the
//! presented token's hash matches and it has not expired, in the same
//! atomic step that marks the account verified.

use async_trait::async_trait;
use domain::ports::{StoreError, Taken, Verifications};
use domain::{DomainEvent, IdempotencyRecord, PendingVerification, TokenHash, User, UserId, VerifyOutcome};
use time::OffsetDateTime;

use crate::{Dependency, Memory};

/// Pending verifications in the shared state.
#[derive(Clone)]
pub struct MemoryVerifications {
    memory: Memory,
}

impl MemoryVerifications {
    pub(crate) fn new(memory: Memory) -> Self {
        Self { memory }
    }
}

#[async_trait]
impl Verifications for MemoryVerifications {
    async fn register(
        &self,
        user: &User,
        pending: &PendingVerification,
        event: &DomainEvent,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<(), StoreError> {
        let mut state = self.memory.lock();
        state.check(Dependency::Table)?;
        state.check_key_free(idempotency)?;
        if state.emails.contains_key(user.email.as_ref()) {
            return Err(StoreError::AlreadyExists(Taken::Email));
        }
        if state.users.contains_key(&user.id) {
            return Err(StoreError::AlreadyExists(Taken::Id));
        }
        state.emails.insert(user.email.to_string(), user.id);
        state.users.insert(user.id, user.clone());
        state.verifications.insert(user.id, pending.clone());
        state.outbox.push(event.clone());
        state.store_key(idempotency);
        Ok(())
    }

    async fn renew(
        &self,
        pending: &PendingVerification,
        event: &DomainEvent,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<(), StoreError> {
        let mut state = self.memory.lock();
        state.check(Dependency::Table)?;
        state.check_key_free(idempotency)?;
        state.verifications.insert(pending.user_id, pending.clone());
        state.outbox.push(event.clone());
        state.store_key(idempotency);
        Ok(())
    }

    async fn notify(&self, event: &DomainEvent, idempotency: Option<&IdempotencyRecord>) -> Result<(), StoreError> {
        let mut state = self.memory.lock();
        state.check(Dependency::Table)?;
        state.check_key_free(idempotency)?;
        state.outbox.push(event.clone());
        state.store_key(idempotency);
        Ok(())
    }

    async fn verify(
        &self,
        user_id: UserId,
        presented: &TokenHash,
        now: OffsetDateTime,
        welcome: &(dyn for<'u> Fn(&'u User) -> DomainEvent + Send + Sync),
    ) -> Result<VerifyOutcome, StoreError> {
        let mut state = self.memory.lock();
        state.check(Dependency::Table)?;
        let Some(user) = state.users.get(&user_id).cloned() else { return Ok(VerifyOutcome::Refused) };
        if user.email_verified {
            return Ok(VerifyOutcome::AlreadyVerified);
        }
        if !state.verifications.get(&user_id).is_some_and(|pending| pending.accepts(presented, now)) {
            return Ok(VerifyOutcome::Refused);
        }
        state.verifications.remove(&user_id);
        let verified = user.verified(now);
        let event = welcome(&verified);
        state.users.insert(user_id, verified);
        state.outbox.push(event.clone());
        Ok(VerifyOutcome::Verified(event))
    }
}
