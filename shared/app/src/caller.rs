//! The framework's caller in the shop's terms: a token's subject is an
//! account's [`UserId`], its role the account's role as access sees it
//! ([`access_role`], the adapters' one mapping).

pub use adapters::framework_terms::access_role;
use domain::UserId;
use framework::auth::{Principal, Subject};

/// The shop's view of a verified caller.
pub trait Caller {
    /// The account the caller's token names.
    fn user_id(&self) -> UserId;
}

impl Caller for Principal {
    fn user_id(&self) -> UserId {
        UserId::from_ulid(self.subject.ulid())
    }
}

/// The subject of `user`'s tokens.
pub fn subject(user: UserId) -> Subject {
    Subject::new(user.ulid())
}
