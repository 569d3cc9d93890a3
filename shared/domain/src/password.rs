//! Passwords: the plaintext a client typed (never printed) and the hash that
//! is stored instead.

use std::fmt;

use crate::ValidationError;

/// A plaintext password as typed at registration or login. It never prints
/// (Debug is redacted) and is never serialised.
#[derive(Clone)]
pub struct Password(String);

/// The fewest characters a new password may have. OWASP ASVS 2.1: at least
/// 8 characters (12 recommended), at least 64 allowed.
pub const MIN_LENGTH: usize = 8;
/// The fewest characters an admin's new password may have: an admin account
/// reaches every user and order, and has no second factor yet, so it gets
/// the length NIST SP 800-63B asks of a password that is the only factor.
pub const ADMIN_MIN_LENGTH: usize = 15;
/// The most characters any password may have (new or at login): the bound
/// stops a multi-megabyte password from becoming a hashing DoS.
pub const MAX_LENGTH: usize = 128;

impl Password {
    /// A new password, checked against the length policy.
    pub fn parse_new(raw: String) -> Result<Self, ValidationError> {
        let length = raw.chars().count();
        if length < MIN_LENGTH {
            return Err(ValidationError::field("password", "must be at least 8 characters"));
        }
        if length > MAX_LENGTH {
            return Err(ValidationError::field("password", "must be at most 128 characters"));
        }
        if raw.trim().is_empty() {
            return Err(ValidationError::field("password", "must not be only whitespace"));
        }
        Ok(Self(raw))
    }

    /// A new admin password (`cargo xtask create-admin`): the policy of
    /// [`Password::parse_new`] with at least [`ADMIN_MIN_LENGTH`] characters.
    pub fn parse_admin(raw: String) -> Result<Self, ValidationError> {
        let password = Self::parse_new(raw)?;
        if !password.is_long_enough_for_an_admin() {
            return Err(ValidationError::field("password", "must be at least 15 characters for an admin"));
        }
        Ok(password)
    }

    /// Whether this password meets the admin minimum (a user promoted to
    /// admin keeps the password they chose under the user minimum).
    pub fn is_long_enough_for_an_admin(&self) -> bool {
        self.0.chars().count() >= ADMIN_MIN_LENGTH
    }

    /// A password offered at login: only bounded, never policy-checked, so a
    /// policy change cannot lock out existing users.
    pub fn parse_attempt(raw: String) -> Result<Self, ValidationError> {
        if raw.is_empty() {
            return Err(ValidationError::field("password", "is required"));
        }
        if raw.chars().count() > MAX_LENGTH {
            return Err(ValidationError::field("password", "must be at most 128 characters"));
        }
        Ok(Self(raw))
    }

    /// The plaintext, for the hasher only; never log or store it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A password hash in PHC string format (`$argon2id$v=19$...`), as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a PHC string produced by a hasher or read back from storage.
    pub fn from_phc(phc: String) -> Self {
        Self(phc)
    }

    /// The PHC string, to store or to verify against.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enforces_length_policy_on_new_passwords() {
        assert!(Password::parse_new("short".into()).is_err());
        assert!(Password::parse_new("        ".into()).is_err());
        assert!(Password::parse_new("x".repeat(129)).is_err());
        assert!(Password::parse_new("correct horse".into()).is_ok());
        // Length counts characters, not bytes.
        assert!(Password::parse_new("ééééééé".into()).is_err());
        assert!(Password::parse_new("éééééééé".into()).is_ok());
    }

    #[test]
    fn admin_passwords_need_fifteen_characters() {
        assert!(Password::parse_admin("fourteen chars".into()).is_err());
        assert!(Password::parse_admin("fifteen chars!!".into()).is_ok());
        assert!(Password::parse_admin("x".repeat(129)).is_err(), "and the rest of the policy");
        assert!(!Password::parse_new("fourteen chars".into()).unwrap().is_long_enough_for_an_admin());
    }

    #[test]
    fn login_attempts_are_only_bounded() {
        assert!(Password::parse_attempt("short".into()).is_ok());
        assert!(Password::parse_attempt(String::new()).is_err());
        assert!(Password::parse_attempt("x".repeat(129)).is_err());
    }

    #[test]
    fn never_prints_the_secret() {
        let password = Password::parse_new("hunter2hunter2".into()).unwrap();
        assert!(!format!("{password:?}").contains("hunter2"));
        let hash = PasswordHash::from_phc("$argon2id$secret".into());
        assert!(!format!("{hash:?}").contains("secret"));
    }
}
