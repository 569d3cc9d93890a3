//! Second factors: one TOTP enrolment and one set of recovery code hashes
//! per account, every change made under the one lock, as DynamoDB's
//! conditional writes make it on one item.

use std::collections::BTreeSet;

use async_trait::async_trait;
use domain::UserId;
use domain::ports::{EnrolmentStart, SecondFactorStore, StoreError};
use domain::totp::{EnrolmentState, RecoveryCodeHash, TimeStep, TotpEnrolment};

use crate::{Dependency, Memory};

/// What the table holds of one account's second factor.
#[derive(Clone, Default)]
pub(crate) struct Stored {
    enrolment: Option<TotpEnrolment>,
    recovery: BTreeSet<RecoveryCodeHash>,
}

/// The [`SecondFactorStore`] over the shared state.
#[derive(Clone)]
pub struct MemorySecondFactorStore {
    memory: Memory,
}

impl MemorySecondFactorStore {
    pub(crate) fn new(memory: Memory) -> Self {
        Self { memory }
    }
}

#[async_trait]
impl SecondFactorStore for MemorySecondFactorStore {
    async fn enrolment(&self, user: UserId) -> Result<Option<TotpEnrolment>, StoreError> {
        let state = self.memory.lock();
        state.check(Dependency::Table)?;
        Ok(state.second_factors.get(&user).and_then(|stored| stored.enrolment.clone()))
    }

    async fn begin(&self, pending: &TotpEnrolment) -> Result<EnrolmentStart, StoreError> {
        // Yield first, as a network round trip would: concurrent callers interleave here.
        tokio::task::yield_now().await;
        let mut state = self.memory.lock();
        state.check(Dependency::Table)?;
        let stored = state.second_factors.entry(pending.user_id).or_default();
        if stored.enrolment.as_ref().is_some_and(TotpEnrolment::is_confirmed) {
            return Ok(EnrolmentStart::AlreadyConfirmed);
        }
        stored.enrolment = Some(TotpEnrolment { state: EnrolmentState::Pending, last_step: None, ..pending.clone() });
        Ok(EnrolmentStart::Begun)
    }

    async fn confirm(
        &self,
        pending: &TotpEnrolment,
        step: TimeStep,
        recovery: &[RecoveryCodeHash],
    ) -> Result<bool, StoreError> {
        tokio::task::yield_now().await;
        let mut state = self.memory.lock();
        state.check(Dependency::Table)?;
        let Some(stored) = state.second_factors.get_mut(&pending.user_id) else { return Ok(false) };
        let still_pending = stored
            .enrolment
            .as_ref()
            .is_some_and(|current| current.state == EnrolmentState::Pending && current.secret == pending.secret);
        if !still_pending {
            return Ok(false);
        }
        stored.enrolment =
            Some(TotpEnrolment { state: EnrolmentState::Confirmed, last_step: Some(step), ..pending.clone() });
        stored.recovery = recovery.iter().cloned().collect();
        Ok(true)
    }

    async fn use_step(&self, user: UserId, step: TimeStep) -> Result<bool, StoreError> {
        tokio::task::yield_now().await;
        let mut state = self.memory.lock();
        state.check(Dependency::Table)?;
        let Some(enrolment) = state.second_factors.get_mut(&user).and_then(|stored| stored.enrolment.as_mut()) else {
            return Ok(false);
        };
        if !enrolment.is_confirmed() || enrolment.last_step.is_some_and(|last| last >= step) {
            return Ok(false);
        }
        enrolment.last_step = Some(step);
        Ok(true)
    }

    async fn use_recovery_code(&self, user: UserId, code: &RecoveryCodeHash) -> Result<bool, StoreError> {
        tokio::task::yield_now().await;
        let mut state = self.memory.lock();
        state.check(Dependency::Table)?;
        Ok(state.second_factors.get_mut(&user).is_some_and(|stored| stored.recovery.remove(code)))
    }

    async fn recovery_codes_left(&self, user: UserId) -> Result<usize, StoreError> {
        let state = self.memory.lock();
        state.check(Dependency::Table)?;
        Ok(state.second_factors.get(&user).map_or(0, |stored| stored.recovery.len()))
    }

    async fn remove(&self, user: UserId) -> Result<bool, StoreError> {
        let mut state = self.memory.lock();
        state.check(Dependency::Table)?;
        Ok(state.second_factors.remove(&user).is_some())
    }
}
