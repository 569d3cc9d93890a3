//! The narrow interfaces through which the domain reaches storage and the
//! outside world. Adapters (DynamoDB, SQS, ...) implement them in `platform`.

use async_trait::async_trait;

use crate::{Email, Page, PageRequest, User, UserId};

/// Why a store operation failed, in terms the application can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule refused the write (the payload names what clashed).
    #[error("{0} already exists")]
    AlreadyExists(&'static str),
    /// The item changed since it was read; nothing was written.
    #[error("the item was changed by someone else")]
    VersionMismatch,
    /// The item to change does not exist (any more).
    #[error("not found")]
    NotFound,
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

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Stores a new user; `AlreadyExists("email")` if the email is taken.
    /// Atomic: of two concurrent registrations of one email, exactly one wins.
    async fn insert(&self, user: &User) -> Result<(), StoreError>;
    async fn get(&self, id: UserId) -> Result<Option<User>, StoreError>;
    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreError>;
    /// Newest first.
    async fn list(&self, page: &PageRequest) -> Result<Page<User>, StoreError>;
    /// Writes `user` if the stored version is still `user.version - 1`.
    async fn update(&self, user: &User) -> Result<(), StoreError>;
}
