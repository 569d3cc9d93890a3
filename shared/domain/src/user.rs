//! Accounts: the stored user, the profile everyone else sees, registration
//! and an admin's changes.

use time::OffsetDateTime;

use crate::{Email, PasswordHash, Role, UserId, ValidationError};

/// A registered account.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// Assigned at registration, never changed.
    pub id: UserId,
    /// Unique across accounts; the login name.
    pub email: Email,
    /// What the login check verifies the password against.
    pub password_hash: PasswordHash,
    /// What the account may do.
    pub role: Role,
    /// A disabled account cannot sign in.
    pub disabled: bool,
    /// Whether the owner proved they read mail at `email` (followed the
    /// verification link). An unverified account may sign in and browse but
    /// not place orders. Accounts made by the operator, and accounts stored
    /// before verification existed, count as verified.
    pub email_verified: bool,
    /// When it registered.
    pub created_at: OffsetDateTime,
    /// When an admin last changed it.
    pub updated_at: OffsetDateTime,
    /// Bumped on every change; the basis of optimistic concurrency (ETag).
    pub version: u64,
}

/// An account as everyone but the login check sees it: the user without
/// credentials. Listings read only this, so the password hash never has to
/// leave the user's own item (the listing index does not hold it).
#[derive(Debug, Clone, PartialEq)]
pub struct UserProfile {
    /// As [`User::id`].
    pub id: UserId,
    /// As [`User::email`].
    pub email: Email,
    /// As [`User::role`].
    pub role: Role,
    /// As [`User::disabled`].
    pub disabled: bool,
    /// As [`User::email_verified`].
    pub email_verified: bool,
    /// As [`User::created_at`].
    pub created_at: OffsetDateTime,
    /// As [`User::updated_at`].
    pub updated_at: OffsetDateTime,
    /// As [`User::version`].
    pub version: u64,
}

impl UserProfile {
    /// The full user, given its stored password hash.
    pub fn with_password_hash(self, password_hash: PasswordHash) -> User {
        let Self { id, email, role, disabled, email_verified, created_at, updated_at, version } = self;
        User { id, email, password_hash, role, disabled, email_verified, created_at, updated_at, version }
    }
}

/// What registration needs; the id, timestamps and version are assigned here.
#[derive(Debug)]
pub struct NewUser {
    /// Must not be taken by another account.
    pub email: Email,
    /// The hash of the chosen password.
    pub password_hash: PasswordHash,
    /// `User` for registration; `Admin` only through the operator's command.
    pub role: Role,
}

impl NewUser {
    /// The account, enabled and not yet verified (registration), at
    /// version 1, with a fresh id, created at `now`.
    pub fn into_user(self, now: OffsetDateTime) -> User {
        User {
            id: UserId::generate(),
            email: self.email,
            password_hash: self.password_hash,
            role: self.role,
            disabled: false,
            email_verified: false,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }
}

/// An administrator's change to an account. Absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserPatch {
    /// The new role, if it changes.
    pub role: Option<Role>,
    /// Disables (`true`) or re-enables (`false`) the account, if given.
    pub disabled: Option<bool>,
}

impl UserPatch {
    /// A patch from the request body's fields; at least one must be given.
    pub fn parse(role: Option<&str>, disabled: Option<bool>) -> Result<Self, ValidationError> {
        let role = role.map(Role::parse).transpose()?;
        if role.is_none() && disabled.is_none() {
            return Err(ValidationError::field("body", "must change at least one of: role, disabled"));
        }
        Ok(Self { role, disabled })
    }
}

/// Why a patch is refused even though it is well-formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchRefused {
    /// An admin demoting or disabling themselves could leave the shop with no
    /// admin at all; another admin has to do it.
    #[error("administrators cannot demote or disable their own account")]
    SelfLockout,
}

impl User {
    /// The user after `patch`, applied by `actor`. A patch that changes
    /// nothing returns the user as it is (same version), so retries are free.
    pub fn patched(&self, patch: &UserPatch, actor: UserId, now: OffsetDateTime) -> Result<User, PatchRefused> {
        let role = patch.role.unwrap_or(self.role);
        let disabled = patch.disabled.unwrap_or(self.disabled);
        if role == self.role && disabled == self.disabled {
            return Ok(self.clone());
        }
        if actor == self.id && (role != Role::Admin || disabled) {
            return Err(PatchRefused::SelfLockout);
        }
        Ok(User { role, disabled, updated_at: now, version: self.version + 1, ..self.clone() })
    }

    /// An admin who can sign in: someone who can administer the shop.
    pub fn is_active_admin(&self) -> bool {
        self.role == Role::Admin && !self.disabled
    }

    /// Whether changing this account into `next` takes an active admin away,
    /// so the change must leave another one (see `UserStore::update`).
    pub fn loses_admin(&self, next: &User) -> bool {
        self.is_active_admin() && !next.is_active_admin()
    }

    /// The account as its owner's verification leaves it: verified, at the
    /// next version; as it is when it was verified before.
    pub fn verified(&self, now: OffsetDateTime) -> User {
        if self.email_verified {
            return self.clone();
        }
        User { email_verified: true, updated_at: now, version: self.version + 1, ..self.clone() }
    }

    /// Whether a correct password lets this account in.
    pub fn can_sign_in(&self) -> bool {
        !self.disabled
    }

    /// Everything but the credentials.
    pub fn profile(&self) -> UserProfile {
        UserProfile {
            id: self.id,
            email: self.email.clone(),
            role: self.role,
            disabled: self.disabled,
            email_verified: self.email_verified,
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role) -> User {
        NewUser {
            email: Email::parse("a@example.com").unwrap(),
            password_hash: PasswordHash::from_phc("$argon2id$x".into()),
            role,
        }
        .into_user(OffsetDateTime::UNIX_EPOCH)
    }

    #[test]
    fn new_users_start_enabled_at_version_one() {
        let user = user(Role::User);
        assert_eq!(user.version, 1);
        assert!(user.can_sign_in());
    }

    #[test]
    fn verifying_happens_once() {
        let user = user(Role::User);
        assert!(!user.email_verified, "a registration starts unverified");
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::hours(1);
        let verified = user.verified(now);
        assert!(verified.email_verified);
        assert_eq!((verified.version, verified.updated_at), (2, now));
        assert_eq!(verified.verified(now + time::Duration::hours(1)), verified, "a second time changes nothing");
    }

    #[test]
    fn patch_bumps_version_and_timestamp() {
        let user = user(Role::User);
        let admin = UserId::generate();
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::hours(1);
        let patch = UserPatch { role: Some(Role::Admin), disabled: None };
        let patched = user.patched(&patch, admin, now).unwrap();
        assert_eq!(patched.role, Role::Admin);
        assert_eq!(patched.version, 2);
        assert_eq!(patched.updated_at, now);
        assert_eq!(patched.created_at, user.created_at);
    }

    #[test]
    fn patch_that_changes_nothing_keeps_version() {
        let user = user(Role::User);
        let patch = UserPatch { role: Some(Role::User), disabled: Some(false) };
        let same = user.patched(&patch, UserId::generate(), OffsetDateTime::now_utc()).unwrap();
        assert_eq!(same, user);
    }

    #[test]
    fn admins_cannot_lock_themselves_out() {
        let admin = user(Role::Admin);
        let demote = UserPatch { role: Some(Role::User), disabled: None };
        let disable = UserPatch { role: None, disabled: Some(true) };
        let now = OffsetDateTime::now_utc();
        assert_eq!(admin.patched(&demote, admin.id, now), Err(PatchRefused::SelfLockout));
        assert_eq!(admin.patched(&disable, admin.id, now), Err(PatchRefused::SelfLockout));
        assert!(admin.patched(&disable, UserId::generate(), now).is_ok());
    }

    #[test]
    fn empty_patch_is_invalid() {
        assert!(UserPatch::parse(None, None).is_err());
        assert!(UserPatch::parse(Some("god"), None).is_err());
        assert_eq!(
            UserPatch::parse(Some("admin"), Some(true)).unwrap(),
            UserPatch { role: Some(Role::Admin), disabled: Some(true) }
        );
    }
}
