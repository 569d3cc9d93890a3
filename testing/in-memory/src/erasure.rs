//! Account erasure: the erasing step is one atomic step under the lock, as
//! it is one transaction in DynamoDB; the orders are taken off the account
//! afterwards, `limit` at a time, as the DynamoDB adapter does.

use async_trait::async_trait;
use domain::ports::{AccountErasure, StoreError};
use domain::{ErasureError, ErasureRefused, Role, User, UserId};

use crate::{Dependency, Memory, State};

/// Erasures over the shared state.
#[derive(Clone)]
pub struct MemoryAccountErasure {
    memory: Memory,
}

impl MemoryAccountErasure {
    pub(crate) fn new(memory: Memory) -> Self {
        Self { memory }
    }
}

impl State {
    /// Removes everything kept under account `id` but the account itself
    /// (what the table keeps in the partition `USER#<id>`): every store
    /// that keeps something about an account adds its line here.
    fn erase_account_data(&mut self, id: UserId) {
        self.sessions.retain(|(owner, _), _| *owner != id);
        self.verifications.remove(&id);
        self.second_factors.remove(&id);
        self.resets.remove(&id);
    }
}

#[async_trait]
impl AccountErasure for MemoryAccountErasure {
    async fn erase(&self, user: &User) -> Result<(), ErasureError> {
        let mut state = self.memory.lock();
        state.check(Dependency::Table)?;
        let stored = state.users.get(&user.id).ok_or(StoreError::NotFound)?;
        if stored.version != user.version {
            return Err(StoreError::VersionMismatch.into());
        }
        if stored.role == Role::Admin {
            return Err(ErasureError::Refused(ErasureRefused::Admin));
        }
        if state.holdings.get(&user.id).is_some_and(|held| held.open_orders > 0) {
            return Err(ErasureError::Refused(ErasureRefused::OpenOrders));
        }
        let email = stored.email.to_string();
        state.emails.remove(&email);
        state.users.remove(&user.id);
        state.erase_account_data(user.id);
        state.erasures.insert(user.id);
        state.erased.insert(user.id);
        Ok(())
    }

    async fn unfinished(&self, limit: usize) -> Result<Vec<UserId>, StoreError> {
        let state = self.memory.lock();
        state.check(Dependency::Table)?;
        Ok(state.erasures.iter().take(limit).copied().collect())
    }

    async fn finish(&self, id: UserId, limit: usize) -> Result<bool, StoreError> {
        let mut state = self.memory.lock();
        state.check(Dependency::Table)?;
        if !state.erasures.contains(&id) {
            return Ok(true);
        }
        state.erase_account_data(id);
        let owned: Vec<_> = state.orders.values().filter(|order| order.is_owned_by(id)).take(limit).cloned().collect();
        if !owned.is_empty() {
            for order in owned {
                state.orders.insert(order.id, order.without_owner());
            }
            return Ok(false);
        }
        state.holdings.remove(&id);
        state.erasures.remove(&id);
        Ok(true)
    }

    async fn erased(&self, id: UserId) -> Result<bool, StoreError> {
        let state = self.memory.lock();
        state.check(Dependency::Table)?;
        Ok(state.erased.contains(&id))
    }
}

impl Memory {
    /// Erased accounts whose orders are not all taken off them yet, as a
    /// test's direct look into the table.
    pub fn erasures_unfinished(&self) -> Vec<UserId> {
        self.lock().erasures.iter().copied().collect()
    }

    /// Every stored order, as a test's direct look into the table.
    pub fn orders_all(&self) -> Vec<domain::Order> {
        self.lock().orders.values().cloned().collect()
    }
}
