//! Users: an email claim makes emails unique; updates are conditional on the version.

use adapters::framework_terms;
use async_trait::async_trait;
use domain::ports::{StoreError, Taken, UserStore};
use domain::{DomainEvent, Email, IdempotencyRecord, Page, PageRequest, User, UserId, UserProfile};
use framework::auth::{Account, Accounts, Subject};
use framework::lookup::LookupError;

use crate::{Dependency, Memory, paging};

/// Accounts in the shared state, with an email claim per account.
#[derive(Clone)]
pub struct MemoryUserStore {
    memory: Memory,
}

impl MemoryUserStore {
    pub(crate) fn new(memory: Memory) -> Self {
        Self { memory }
    }
}

/// What the framework's authenticator re-reads: the account's role and
/// whether it may sign in.
#[async_trait]
impl Accounts for MemoryUserStore {
    async fn account(&self, subject: Subject) -> Result<Option<Account>, LookupError> {
        let user = self.get(UserId::from_ulid(subject.ulid())).await.map_err(framework_terms::lookup_error)?;
        Ok(user.as_ref().map(framework_terms::account))
    }
}

#[async_trait]
impl UserStore for MemoryUserStore {
    async fn create(
        &self,
        user: &User,
        event: Option<&DomainEvent>,
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
        state.outbox.extend(event.cloned());
        state.store_key(idempotency);
        Ok(())
    }

    async fn get(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let state = self.memory.lock();
        state.check(Dependency::Table)?;
        Ok(state.users.get(&id).cloned())
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        let state = self.memory.lock();
        state.check(Dependency::Table)?;
        Ok(state.emails.get(email.as_ref()).and_then(|id| state.users.get(id)).cloned())
    }

    async fn list(&self, page: &PageRequest) -> Result<Page<UserProfile>, StoreError> {
        let state = self.memory.lock();
        state.check(Dependency::Table)?;
        let items = state.users.values().map(|user| (user.id.to_string(), user.profile())).collect();
        paging::page(items, page, |position| UserId::parse(position).is_ok())
    }

    async fn update(&self, user: &User, admin_witness: Option<UserId>) -> Result<(), StoreError> {
        let mut state = self.memory.lock();
        state.check(Dependency::Table)?;
        let stored = state.users.get(&user.id).ok_or(StoreError::NotFound)?;
        if stored.version + 1 != user.version {
            return Err(StoreError::VersionMismatch);
        }
        if let Some(witness) = admin_witness {
            let witness = state.users.get(&witness).filter(|_| witness != user.id);
            if !witness.is_some_and(User::is_active_admin) {
                return Err(StoreError::LastAdmin);
            }
        }
        state.users.insert(user.id, user.clone());
        Ok(())
    }
}
