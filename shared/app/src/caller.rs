//! The framework's caller in the shop's terms: a token's subject is an
//! account's [`UserId`], its role the account's [`Role`] as access sees it.

use domain::{Role, UserId};
use framework::auth::{self as access, Principal, Subject};

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

/// What `role` may do, as the framework's access rules know it.
pub fn access_role(role: Role) -> access::Role {
    match role {
        Role::User => access::Role::User,
        Role::Admin => access::Role::Admin,
    }
}
