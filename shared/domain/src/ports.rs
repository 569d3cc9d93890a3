//! The narrow interfaces through which the domain reaches storage and the
//! outside world. Adapters (DynamoDB, SQS, ...) implement them in `adapters`.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::{
    DomainEvent, Email, IdempotencyRecord, Order, OrderId, OrderStatus, Page, PageRequest, Product, ProductId, User,
    UserId, UserProfile,
};

/// What a uniqueness rule found already taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// Another account has this email.
    Email,
    /// Another product has this SKU.
    Sku,
    /// A request with this Idempotency-Key was stored first.
    IdempotencyKey,
    /// The generated id itself (a ULID collision: practically never).
    Id,
}

impl std::fmt::Display for Taken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Email => "email",
            Self::Sku => "sku",
            Self::IdempotencyKey => "idempotency key",
            Self::Id => "id",
        })
    }
}

/// Why a store operation failed, in terms the application can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule refused the write.
    #[error("{0} already exists")]
    AlreadyExists(Taken),
    /// The item changed since it was read; nothing was written.
    #[error("the item was changed by someone else")]
    VersionMismatch,
    /// The item to change does not exist (any more).
    #[error("not found")]
    NotFound,
    /// A new order would take its owner beyond a [`crate::HoldLimits`] cap;
    /// nothing was written.
    #[error("{0}")]
    LimitReached(crate::HoldLimitExceeded),
    /// The admin a change relied on to keep the shop administered is no
    /// longer an active admin; nothing was written.
    #[error("the change would leave no active admin")]
    LastAdmin,
    /// A position marker that this store did not issue.
    #[error("invalid page position")]
    InvalidPosition,
    /// The store could not be reached or is throttling; safe to retry later.
    #[error("store unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Anything else: a bug or a misconfiguration, not worth retrying.
    #[error("store operation failed")]
    Failed(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Accounts, unique by email.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Stores a new user, its `user-created` event and, when the client sent
    /// an Idempotency-Key, the record that replays this response, in one
    /// transaction. `AlreadyExists(Taken::Email)` if the email is taken,
    /// `AlreadyExists(Taken::IdempotencyKey)` if the key was claimed first.
    /// Atomic: of two concurrent registrations of one email, exactly one wins.
    async fn create(
        &self,
        user: &User,
        event: Option<&DomainEvent>,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<(), StoreError>;
    /// [`UserStore::create`] without an idempotency record.
    async fn insert(&self, user: &User, event: Option<&DomainEvent>) -> Result<(), StoreError> {
        self.create(user, event, None).await
    }
    /// The user with `id`, if there is one.
    async fn get(&self, id: UserId) -> Result<Option<User>, StoreError>;
    /// The user registered with `email` (compared normalised), if any.
    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreError>;
    /// Newest first, without credentials.
    async fn list(&self, page: &PageRequest) -> Result<Page<UserProfile>, StoreError>;
    /// Writes `user` if the stored version is still `user.version - 1` and,
    /// when `admin_witness` is given, that account (never `user` itself) is
    /// still an active admin when the write commits, atomically:
    /// [`StoreError::LastAdmin`] otherwise. A change that takes an admin
    /// away passes the admin making it, so concurrent changes can never
    /// leave the shop without an active admin.
    async fn update(&self, user: &User, admin_witness: Option<UserId>) -> Result<(), StoreError>;
}

/// Erasing accounts on their owners' request (see `crate::erasure`): the
/// account and everything stored under it at once, then its orders' owner,
/// in steps that a repeat or the scheduled sweep finishes.
#[async_trait]
pub trait AccountErasure: Send + Sync {
    /// Erases `user` (as read) in one atomic write: the account, its email
    /// claim (the address can register again), everything else stored under
    /// the account (sessions, pending tokens, second factor; what one write
    /// cannot hold is removed right after, and by [`AccountErasure::finish`]),
    /// and a record that the erasure is unfinished. Only while the account is
    /// still at `user.version`, is not an admin and has no open order, each
    /// checked by the write itself: `Refused` otherwise; `NotFound` if it is
    /// gone, `VersionMismatch` if it changed. Nothing is written on an error.
    async fn erase(&self, user: &User) -> Result<(), crate::ErasureError>;
    /// Erased accounts whose erasure is unfinished, oldest first, at most `limit`.
    async fn unfinished(&self, limit: usize) -> Result<Vec<UserId>, StoreError>;
    /// Takes up to `limit` more orders of the erased account `id` off it
    /// ([`crate::Order::without_owner`]) and removes whatever else is left
    /// under it; `true` once nothing is left and the erasure is recorded as
    /// finished. Safe to repeat and to run concurrently: each step is
    /// conditional on what it changes still being there.
    async fn finish(&self, id: UserId, limit: usize) -> Result<bool, StoreError>;
    /// Whether `id` is an account that was erased, finished or not (its
    /// record is kept for a day after the erasure finishes, longer than any
    /// access token issued before it lives): `false` for an account that
    /// exists or never did.
    async fn erased(&self, id: UserId) -> Result<bool, StoreError>;
}

/// The catalogue, unique by SKU.
#[async_trait]
pub trait ProductStore: Send + Sync {
    /// Stores a new product and, with an Idempotency-Key, the record that
    /// replays this response, in one transaction. `AlreadyExists(Taken::Sku)`
    /// if another product has the SKU, `AlreadyExists(Taken::IdempotencyKey)`
    /// if the key was claimed first.
    async fn create(&self, product: &Product, idempotency: Option<&IdempotencyRecord>) -> Result<(), StoreError>;
    /// [`ProductStore::create`] without an idempotency record.
    async fn insert(&self, product: &Product) -> Result<(), StoreError> {
        self.create(product, None).await
    }
    /// The product with `id`, active or not, if there is one.
    async fn get(&self, id: ProductId) -> Result<Option<Product>, StoreError>;
    /// The products among `ids` that exist, in one round trip.
    async fn get_many(&self, ids: &[ProductId]) -> Result<Vec<Product>, StoreError>;
    /// Active or inactive products, newest first.
    async fn list(&self, active: bool, page: &PageRequest) -> Result<Page<Product>, StoreError>;
    /// Writes `next` if `previous` is still what is stored (same version).
    async fn replace(&self, previous: &Product, next: &Product) -> Result<(), StoreError>;
    /// Deletes `product` if it is still at its version.
    async fn delete(&self, product: &Product) -> Result<(), StoreError>;
}

/// Which orders a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderFilter {
    /// Only this customer's orders (always set for non-admins).
    pub owner: Option<UserId>,
    /// Only orders in this status.
    pub status: Option<OrderStatus>,
}

/// How a stock reservation for a pending order ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// Stock was taken for every line; the order is confirmed.
    Confirmed,
    /// Some line had too little stock (or its product is gone or inactive);
    /// nothing was taken and the order is rejected.
    Rejected,
    /// The order was no longer pending (a duplicate delivery, or cancelled first).
    NotPending,
}

/// Orders, with the stock they take from products and the events and
/// idempotency records committed with them.
#[async_trait]
pub trait OrderStore: Send + Sync {
    /// Stores a new order with its `order-placed` event and, when the client
    /// sent an Idempotency-Key, the record that replays this response.
    /// `AlreadyExists(Taken::IdempotencyKey)` if the key was claimed first;
    /// `LimitReached` if the owner's open orders would break the store's
    /// [`crate::HoldLimits`] (checked and counted in the same atomic write,
    /// so two concurrent orders of one account cannot both slip under a cap);
    /// `NotFound` unless the owner's account is stored and its email
    /// verified, checked in that write too, so of a placement and the
    /// account's erasure ([`AccountErasure::erase`], refused while an order
    /// is open) at most one commits.
    async fn place(
        &self,
        order: &Order,
        event: &DomainEvent,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<(), StoreError>;
    /// The order with `id`, whoever owns it, if there is one.
    async fn get(&self, id: OrderId) -> Result<Option<Order>, StoreError>;
    /// The orders `filter` selects, newest first.
    async fn list(&self, filter: OrderFilter, page: &PageRequest) -> Result<Page<Order>, StoreError>;
    /// Writes `next` (a status change of `previous`) if `previous` is still
    /// stored; gives confirmed stock back when the order is cancelled, and
    /// takes the order off its owner's holdings when it stops being open.
    async fn transition(&self, previous: &Order, next: &Order) -> Result<(), StoreError> {
        self.transition_with_event(previous, next, None).await
    }
    /// [`OrderStore::transition`], committing `event` (the customer's email)
    /// in the same transaction: it exists if and only if the change does.
    async fn transition_with_event(
        &self,
        previous: &Order,
        next: &Order,
        event: Option<&DomainEvent>,
    ) -> Result<(), StoreError>;
    /// Open orders (pending or confirmed) placed before `cutoff`, oldest
    /// first, at most `limit` of each status. Read from an index: an order may
    /// have changed since, and only a conditional write can tell.
    async fn open_orders_placed_before(&self, cutoff: OffsetDateTime, limit: usize) -> Result<Vec<Order>, StoreError>;
    /// Atomically takes stock for every line and confirms the pending order,
    /// or rejects it when any line cannot be served. Never makes stock
    /// negative. The event `notify` makes of the decided order (the customer's
    /// email) is committed in the same transaction, so it cannot be lost.
    async fn reserve(
        &self,
        order_id: OrderId,
        notify: &(dyn for<'o> Fn(&'o Order) -> DomainEvent + Send + Sync),
    ) -> Result<(Reservation, Option<DomainEvent>), StoreError>;
}

/// Sends events to their queues.
#[async_trait]
pub trait Publisher: Send + Sync {
    /// Sends an already-committed event on its way. Best effort by contract:
    /// the event is safe in the outbox, and the scheduled relay publishes
    /// whatever this could not (so a queue outage loses nothing).
    async fn publish_after_commit(&self, event: &DomainEvent);
    /// Sends an event that has no outbox record (a queue consumer's
    /// follow-up): an error means it was not sent, and the message that
    /// caused it must be retried.
    async fn publish(&self, event: &DomainEvent) -> Result<(), Unreachable>;
}

/// A queue could not be reached (or refused the message); try again later.
#[derive(Debug, thiserror::Error)]
#[error("queue unavailable")]
pub struct Unreachable(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Sends one email.
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends a plain-text email to `to`; `Ok` once the mail service accepted it.
    async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), MailError>;
}

/// Why an email was not sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The address or content can never be sent (e.g. SES rejects the recipient).
    #[error("rejected: {0}")]
    Rejected(String),
    /// Throttled or unreachable; try again later.
    #[error("temporarily unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The outcome of counting one attempt against a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether this attempt is within the limit; refused attempts still count.
    pub allowed: bool,
    /// Attempts allowed per window.
    pub limit: u32,
    /// Attempts left in this window after this one (0 once over the limit).
    pub remaining: u32,
    /// Seconds until the window resets.
    pub reset_seconds: u64,
}

/// Attempts counted in fixed windows shared by every instance. An attempt is
/// counted atomically *before* the work it guards, so parallel attempts
/// cannot all slip through a limit.
#[async_trait]
pub trait Throttle: Send + Sync {
    /// Counts one attempt under `key`; says whether it is within the limit.
    async fn hit(&self, key: &str) -> Result<Decision, StoreError>;
    /// Takes one counted attempt back (it turned out to be legitimate).
    async fn refund(&self, key: &str) -> Result<(), StoreError>;
    /// Forgets every attempt under `key` in the current window.
    async fn reset(&self, key: &str) -> Result<(), StoreError>;
}

/// Which (account, client address) pairs signed in successfully lately,
/// under opaque keys (hashes: the store holds neither email nor address).
/// Entries lapse after the store's time to live; an expired entry is
/// treated as absent on read.
#[async_trait]
pub trait SignInHistory: Send + Sync {
    /// Whether `key` signed in within the time to live.
    async fn knows(&self, key: &str) -> Result<bool, StoreError>;
    /// Records a sign-in under `key`, starting its time to live again.
    async fn remember(&self, key: &str) -> Result<(), StoreError>;
}

/// Sessions (refresh-token families), each in its account's own partition.
/// Every change is one conditional write: of two uses of one refresh token,
/// however concurrent, exactly one rotates it.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session; `AlreadyExists(Taken::Id)` if its id is taken.
    async fn start(&self, session: &crate::Session) -> Result<(), StoreError>;
    /// Replaces the session's secret hash with `next` and its expiry with
    /// `expires_at`, only while `presented` is the stored hash and the
    /// session is live at `now` (one conditional write). A session holding
    /// another hash is revoked ([`crate::Rotation::Reused`]); one whose
    /// token expired is ended ([`crate::Rotation::Expired`]).
    async fn rotate(
        &self,
        user: UserId,
        session: crate::SessionId,
        presented: &crate::SecretHash,
        next: &crate::SecretHash,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<crate::Rotation, StoreError>;
    /// Ends one session (logout); whether it was there.
    async fn end(&self, user: UserId, session: crate::SessionId) -> Result<bool, StoreError>;
    /// Ends every session of `user` but `keep`; how many it ended.
    async fn end_all(&self, user: UserId, keep: Option<crate::SessionId>) -> Result<usize, StoreError>;
    /// The sessions of `user` live at `now`, oldest first.
    async fn list(&self, user: UserId, now: OffsetDateTime) -> Result<Vec<crate::Session>, StoreError>;
}

/// What beginning a TOTP enrolment found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrolmentStart {
    /// The pending enrolment is stored (replacing an earlier pending one).
    Begun,
    /// The account already has a confirmed enrolment; nothing was written.
    AlreadyConfirmed,
}

/// The admins' second factor: each account's TOTP enrolment and its
/// recovery codes (hashed), both in the account's own partition. Every use
/// of a code is one conditional write, so of two sign-ins with the same
/// code or recovery code, however concurrent, exactly one succeeds.
#[async_trait]
pub trait SecondFactorStore: Send + Sync {
    /// The enrolment of `user`, pending or confirmed, if any.
    async fn enrolment(&self, user: UserId) -> Result<Option<crate::totp::TotpEnrolment>, StoreError>;
    /// Stores `pending` unless the account's enrolment is confirmed.
    async fn begin(&self, pending: &crate::totp::TotpEnrolment) -> Result<EnrolmentStart, StoreError>;
    /// Confirms `pending` at `step` and stores `recovery` (replacing any
    /// earlier codes), atomically, only while `pending` (its very secret) is
    /// still the account's pending enrolment; `false` otherwise, nothing written.
    async fn confirm(
        &self,
        pending: &crate::totp::TotpEnrolment,
        step: crate::totp::TimeStep,
        recovery: &[crate::totp::RecoveryCodeHash],
    ) -> Result<bool, StoreError>;
    /// Records `step` as the last used one, only if the enrolment is
    /// confirmed and `step` is later than the last used step (one
    /// conditional write); `false`, nothing written, for a replay.
    async fn use_step(&self, user: UserId, step: crate::totp::TimeStep) -> Result<bool, StoreError>;
    /// Removes `code` from the account's recovery codes if it is one of
    /// them (one conditional write); `false` if it is not (or no longer).
    async fn use_recovery_code(&self, user: UserId, code: &crate::totp::RecoveryCodeHash) -> Result<bool, StoreError>;
    /// How many unused recovery codes `user` has.
    async fn recovery_codes_left(&self, user: UserId) -> Result<usize, StoreError>;
    /// Removes `user`'s enrolment (pending or confirmed) and recovery codes
    /// (an operator's reset of a lost second factor); whether there was
    /// anything to remove. Removing again is harmless.
    async fn remove(&self, user: UserId) -> Result<bool, StoreError>;
}

/// Email verification's writes: registration, a fresh link, a notice, and
/// consuming a link. Each is one atomic write; the pending verification is
/// one item per account (a newer one replaces the older), holding only the
/// token's hash.
#[async_trait]
pub trait Verifications: Send + Sync {
    /// Registration of a new address: `user` (unverified), its `pending`
    /// verification, `event` (the verification email) and, with an
    /// Idempotency-Key, the record that replays the answer, in one
    /// transaction. Errors as [`UserStore::create`].
    async fn register(
        &self,
        user: &User,
        pending: &crate::PendingVerification,
        event: &DomainEvent,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<(), StoreError>;
    /// A fresh link for an existing account: replaces its pending
    /// verification (the older link stops working) and commits `event` (the
    /// email carrying the new link) and the idempotency record, at once.
    async fn renew(
        &self,
        pending: &crate::PendingVerification,
        event: &DomainEvent,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<(), StoreError>;
    /// Commits `event` (an email that changes nothing stored) with the
    /// idempotency record, in one transaction.
    async fn notify(&self, event: &DomainEvent, idempotency: Option<&IdempotencyRecord>) -> Result<(), StoreError>;
    /// Consumes the pending verification of `user_id` if it holds `presented`
    /// and has not expired at `now`: deletes it, marks the account verified
    /// and commits `welcome(&verified account)`, in one write conditioned on
    /// the stored hash, so of concurrent attempts with one token exactly one
    /// verifies (the others find the account verified).
    async fn verify(
        &self,
        user_id: UserId,
        presented: &crate::TokenHash,
        now: OffsetDateTime,
        welcome: &(dyn for<'u> Fn(&'u User) -> DomainEvent + Send + Sync),
    ) -> Result<crate::VerifyOutcome, StoreError>;
}

/// Pending password resets, one per account in its own partition. Using
/// one is one conditional write: of two confirmations with one token,
/// however concurrent, exactly one sets a password.
#[async_trait]
pub trait PasswordResets: Send + Sync {
    /// Stores `pending`, replacing the account's earlier reset (whose link
    /// stops working), with `email` (the link) in one transaction.
    async fn request(&self, pending: &crate::PendingReset, email: &DomainEvent) -> Result<(), StoreError>;
    /// The account's pending reset, expired or not.
    async fn pending(&self, user: UserId) -> Result<Option<crate::PendingReset>, StoreError>;
    /// Writes `user` (its new password, one version on), deletes the pending
    /// reset and commits `email` in one transaction that lands only while
    /// the reset holds `presented` and is live at `now` (`NotFound`
    /// otherwise: used, replaced or expired) and the account is still at
    /// `user.version - 1` (`VersionMismatch` otherwise).
    async fn complete(
        &self,
        user: &User,
        presented: &crate::SecretHash,
        now: OffsetDateTime,
        email: &DomainEvent,
    ) -> Result<(), StoreError>;
}
