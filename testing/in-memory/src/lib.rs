//! In-memory adapters of every port in `domain::ports`, for use-case tests
//! that run in milliseconds without the local cloud.
//!
//! One [`Memory`] holds all state behind one lock, as the single DynamoDB
//! table does: every operation is atomic, transactions are all-or-nothing,
//! and conditional writes, version checks and uniqueness claims behave as
//! the DynamoDB adapters' do. [`contract`] is the suite both kinds of adapter
//! pass, so they cannot drift apart. Outages are injected per dependency
//! ([`Dependency`]) and time can be moved forward ([`Memory::advance`]) to
//! let claims and windows expire.

#![warn(missing_docs)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use domain::ports::StoreError;
use domain::{DomainEvent, IdempotencyRecord, Order, OrderId, Product, ProductId, User, UserId};
use time::OffsetDateTime;

pub mod contract;
mod erasure;
pub mod erasure_contract;
mod messaging;
mod orders;
mod paging;
mod password_resets;
mod products;
mod second_factor;
mod sessions;
mod throttle;
mod users;
mod verifications;

pub use erasure::MemoryAccountErasure;
pub use messaging::{MemoryDeadLetters, MemoryMailer, MemoryMessageClaims, MemoryPublisher, SentEmail};
pub use orders::{MemoryIdempotencyStore, MemoryOrderStore, replayable};
pub use password_resets::MemoryPasswordResets;
pub use products::MemoryProductStore;
pub use second_factor::MemorySecondFactorStore;
pub use sessions::MemorySessionStore;
pub use throttle::{MemorySignInHistory, MemoryThrottle};
pub use users::MemoryUserStore;
pub use verifications::MemoryVerifications;

/// A dependency that can be made unavailable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dependency {
    /// The table: every store, claims and throttles.
    Table,
    /// The queues: publishing and parking.
    Queues,
    /// The mail service.
    Mail,
}

/// All state of one in-memory "cloud", shared by the adapters made from it.
#[derive(Clone, Default)]
pub struct Memory {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
}

#[derive(Default)]
pub(crate) struct State {
    pub users: BTreeMap<UserId, User>,
    pub emails: HashMap<String, UserId>,
    pub products: BTreeMap<ProductId, Product>,
    pub skus: HashMap<String, ProductId>,
    pub orders: BTreeMap<OrderId, Order>,
    /// Erased accounts whose orders still name them (see `domain::ports::AccountErasure`).
    pub erasures: std::collections::BTreeSet<UserId>,
    /// Every erased account, finished or not (the erasure records the table keeps).
    pub erased: HashSet<UserId>,
    /// What each account's open orders hold (see `domain::Holdings`).
    pub holdings: HashMap<UserId, domain::Holdings>,
    pub idempotency: HashMap<String, IdempotencyRecord>,
    /// Events committed with their write, not yet sent to a queue.
    pub outbox: Vec<DomainEvent>,
    /// Events sent to queues, in order.
    pub published: Vec<DomainEvent>,
    /// Message claims: key -> (done?, expires at).
    pub claims: HashMap<String, (bool, OffsetDateTime)>,
    /// Throttle windows: (name, key, window start) -> attempts.
    pub windows: HashMap<(String, String, i64), i64>,
    /// Pending email verifications, one per account.
    pub verifications: HashMap<UserId, domain::PendingVerification>,
    /// Sign-in histories: (name, key) -> expires at.
    pub sign_ins: HashMap<(String, String), OffsetDateTime>,
    /// Second factors: each account's TOTP enrolment and recovery code hashes.
    pub second_factors: HashMap<UserId, second_factor::Stored>,
    /// Pending password resets by account.
    pub resets: HashMap<UserId, domain::PendingReset>,
    /// Sessions (refresh-token families) by account and id.
    pub sessions: BTreeMap<(UserId, domain::SessionId), domain::Session>,
    pub parked: Vec<(String, String)>,
    pub sent_emails: Vec<messaging::SentEmail>,
    pub refused_recipients: HashSet<String>,
    pub down: HashSet<Dependency>,
    /// How far the clock has been moved forward.
    pub clock_offset: Duration,
}

impl State {
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.clock_offset
    }

    /// `AlreadyExists(IdempotencyKey)` while an unexpired record holds the key.
    pub fn check_key_free(&self, record: Option<&IdempotencyRecord>) -> Result<(), StoreError> {
        let now = self.now();
        match record {
            Some(record) if self.idempotency.get(&record.key).is_some_and(|held| held.expires_at > now) => {
                Err(StoreError::AlreadyExists(domain::ports::Taken::IdempotencyKey))
            }
            _ => Ok(()),
        }
    }

    /// Stores `record`, if any (in the same step as the write it protects).
    pub fn store_key(&mut self, record: Option<&IdempotencyRecord>) {
        if let Some(record) = record {
            self.idempotency.insert(record.key.clone(), record.clone());
        }
    }

    /// `Unavailable` while `dependency` is down.
    pub fn check(&self, dependency: Dependency) -> Result<(), StoreError> {
        if self.down.contains(&dependency) {
            return Err(StoreError::Unavailable(format!("{dependency:?} is down").into()));
        }
        Ok(())
    }
}

impl Memory {
    /// An empty cloud: no data, every dependency up, the clock at real time.
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not poison every later assertion.
        self.shared.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The [`domain::ports::UserStore`] over this state.
    pub fn users(&self) -> MemoryUserStore {
        MemoryUserStore::new(self.clone())
    }

    /// The [`domain::ports::Verifications`] over this state.
    pub fn verifications(&self) -> MemoryVerifications {
        MemoryVerifications::new(self.clone())
    }

    /// The [`domain::ports::PasswordResets`] over this state.
    pub fn password_resets(&self) -> MemoryPasswordResets {
        MemoryPasswordResets::new(self.clone())
    }

    /// The [`domain::ports::SessionStore`] over this state.
    pub fn sessions(&self) -> MemorySessionStore {
        MemorySessionStore::new(self.clone())
    }

    /// The [`domain::ports::SecondFactorStore`] over this state.
    pub fn second_factors(&self) -> MemorySecondFactorStore {
        MemorySecondFactorStore::new(self.clone())
    }

    /// The [`domain::ports::AccountErasure`] over this state.
    pub fn erasures(&self) -> MemoryAccountErasure {
        MemoryAccountErasure::new(self.clone())
    }

    /// The [`domain::ports::ProductStore`] over this state.
    pub fn products(&self) -> MemoryProductStore {
        MemoryProductStore::new(self.clone())
    }

    /// The [`domain::ports::OrderStore`] over this state; it takes stock
    /// from the products the product store holds.
    pub fn orders(&self) -> MemoryOrderStore {
        MemoryOrderStore::new(self.clone(), domain::HoldLimits::default())
    }

    /// [`Memory::orders`] refusing orders beyond `limits` instead of the defaults.
    pub fn orders_with_limits(&self, limits: domain::HoldLimits) -> MemoryOrderStore {
        MemoryOrderStore::new(self.clone(), limits)
    }

    /// What `owner`'s open orders hold, as a test's direct look into the table.
    pub fn holdings(&self, owner: UserId) -> domain::Holdings {
        self.lock().holdings.get(&owner).cloned().unwrap_or_default()
    }

    /// The [`framework::idempotency::IdempotencyStore`]: the records the stores wrote.
    pub fn idempotency(&self) -> MemoryIdempotencyStore {
        MemoryIdempotencyStore::new(self.clone())
    }

    /// The [`domain::ports::Publisher`]: moves events to [`Memory::published`].
    pub fn publisher(&self) -> MemoryPublisher {
        MemoryPublisher::new(self.clone())
    }

    /// The [`framework::batch::DeadLetters`]: parks into [`Memory::parked`].
    pub fn dead_letters(&self) -> MemoryDeadLetters {
        MemoryDeadLetters::new(self.clone())
    }

    /// The [`domain::ports::Mailer`]: records into [`Memory::sent_emails`].
    pub fn mailer(&self) -> MemoryMailer {
        MemoryMailer::new(self.clone())
    }

    /// The [`framework::batch::MessageClaims`], holding for `duration` (see `Budget::claim_duration`).
    pub fn message_claims(&self, duration: Duration) -> MemoryMessageClaims {
        MemoryMessageClaims::new(self.clone(), duration)
    }

    /// A fixed-window throttle: `attempts` per `window` per key, under `name`.
    pub fn throttle(&self, name: &str, attempts: u32, window: Duration) -> MemoryThrottle {
        MemoryThrottle::new(self.clone(), name, attempts, window)
    }

    /// A sign-in history whose entries, under `name`, last `ttl`.
    pub fn sign_in_history(&self, name: &str, ttl: Duration) -> MemorySignInHistory {
        MemorySignInHistory::new(self.clone(), name, ttl)
    }

    /// Makes `dependency` unavailable (`down = true`) or available again.
    pub fn set_down(&self, dependency: Dependency, down: bool) {
        let mut state = self.lock();
        if down {
            state.down.insert(dependency);
        } else {
            state.down.remove(&dependency);
        }
    }

    /// Moves the clock forward: claims, windows and records expire as if
    /// `duration` had passed.
    pub fn advance(&self, duration: Duration) {
        self.lock().clock_offset += duration;
    }

    /// Events committed with a write and not yet sent to their queue.
    pub fn outbox(&self) -> Vec<DomainEvent> {
        self.lock().outbox.clone()
    }

    /// Events sent to queues, in order.
    pub fn published(&self) -> Vec<DomainEvent> {
        self.lock().published.clone()
    }

    /// Sends every outbox event to its queue, as the scheduled relay does; how many.
    pub fn relay(&self) -> usize {
        let mut state = self.lock();
        if state.down.contains(&Dependency::Queues) {
            return 0;
        }
        let pending = std::mem::take(&mut state.outbox);
        let count = pending.len();
        state.published.extend(pending);
        count
    }

    /// Messages parked in dead-letter queues: (body, reason).
    pub fn parked(&self) -> Vec<(String, String)> {
        self.lock().parked.clone()
    }

    /// Emails the mail service accepted, in order.
    pub fn sent_emails(&self) -> Vec<SentEmail> {
        self.lock().sent_emails.clone()
    }

    /// Makes the mail service refuse `address` (like SES rejecting a recipient).
    pub fn refuse_recipient(&self, address: &str) {
        self.lock().refused_recipients.insert(address.to_owned());
    }

    /// Lets the mail service accept `address` again (the cause was fixed).
    pub fn accept_recipient(&self, address: &str) {
        self.lock().refused_recipients.remove(address);
    }

    /// The stored user, product or order, as a test's direct look into the table.
    pub fn user(&self, id: UserId) -> Option<User> {
        self.lock().users.get(&id).cloned()
    }

    /// The stored product, as [`Memory::user`] does for users.
    pub fn product(&self, id: ProductId) -> Option<Product> {
        self.lock().products.get(&id).cloned()
    }

    /// The stored order, as [`Memory::user`] does for users.
    pub fn order(&self, id: OrderId) -> Option<Order> {
        self.lock().orders.get(&id).cloned()
    }

    /// The stored idempotency records (the responses kept for replays).
    pub fn idempotency_records(&self) -> Vec<IdempotencyRecord> {
        self.lock().idempotency.values().cloned().collect()
    }

    /// Stores `product` as it is, bypassing the port (test set-up).
    pub fn put_product(&self, product: Product) {
        let mut state = self.lock();
        state.skus.insert(product.sku.to_string(), product.id);
        state.products.insert(product.id, product);
    }
}
