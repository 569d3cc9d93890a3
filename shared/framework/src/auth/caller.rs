//! Who a token names and what the authenticator re-reads about them: the
//! framework's own subject id and roles, and the [`Accounts`] port an
//! application implements over its account store.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use ulid::Ulid;

use crate::lookup::LookupError;

/// Whom a token was issued to: a ULID, the token's `sub`, in its one
/// canonical spelling (26 upper-case Crockford characters).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subject(Ulid);

impl Subject {
    /// The subject `id` names.
    pub fn new(id: Ulid) -> Self {
        Self(id)
    }

    /// Its ULID.
    pub fn ulid(self) -> Ulid {
        self.0
    }

    /// Accepts only the canonical form, as the issuer writes it.
    pub fn parse(raw: &str) -> Option<Self> {
        Ulid::from_str(raw).ok().filter(|ulid| ulid.to_string() == raw).map(Self)
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Subject({})", self.0)
    }
}

/// What a token lets its bearer do, by the name in its `role` claim: the
/// access levels of [`crate::http::Access`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A customer: the routes open to users, their own data.
    User,
    /// Admin-only routes too, and every customer's data.
    Admin,
}

impl Role {
    /// The role the claim `name` names, if any.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "user" => Some(Self::User),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    /// Its name in the `role` claim.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A caller's account as it stands now, as far as access goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    /// The role it has now (a token may carry an older one).
    pub role: Role,
    /// Whether it may sign in (not disabled).
    pub active: bool,
}

/// The accounts the authenticator re-reads where a token alone is not
/// enough (writes, admins): implemented by the application over its store.
#[async_trait]
pub trait Accounts: Send + Sync {
    /// The account `subject` names, as it is now; `None` when it no longer
    /// exists (or never did).
    async fn account(&self, subject: Subject) -> Result<Option<Account>, LookupError>;
}
