//! The shop's values in the framework's terms, written once for every
//! adapter of a framework port (the DynamoDB ones here, the in-memory ones in
//! `testing/in-memory`) and for `app`'s caller: an account's role as access
//! sees it, the account the authenticator re-reads, and a store's failure as
//! the framework's ports report it.

use domain::ports::StoreError;
use domain::{Role, User};
use framework::auth::{self as access, Account};
use framework::lookup::LookupError;

/// What `role` may do, as the framework's access rules know it.
pub fn access_role(role: Role) -> access::Role {
    match role {
        Role::User => access::Role::User,
        Role::Admin => access::Role::Admin,
    }
}

/// What the framework's authenticator needs of `user`: its role and whether
/// it may sign in.
pub fn account(user: &User) -> Account {
    Account { role: access_role(user.role), active: user.can_sign_in() }
}

/// A store's failure as the framework's ports report it: an outage stays
/// one (503), anything else is a failure (500).
pub fn lookup_error(error: StoreError) -> LookupError {
    match error {
        StoreError::Unavailable(source) => LookupError::Unavailable(source),
        other => LookupError::Failed(Box::new(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_keep_their_level() {
        assert_eq!(access_role(Role::User), access::Role::User);
        assert_eq!(access_role(Role::Admin), access::Role::Admin);
    }

    #[test]
    fn only_an_outage_stays_one() {
        assert!(matches!(lookup_error(StoreError::Unavailable("throttled".into())), LookupError::Unavailable(_)));
        assert!(matches!(lookup_error(StoreError::VersionMismatch), LookupError::Failed(_)));
    }
}
