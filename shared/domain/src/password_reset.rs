//! Password reset: the token a reset email carries, what the store keeps of
//! it, and how long it works.
//!
//! A token is `<user id>.<secret>` (32 random bytes, base64url): the id lets
//! the store find the account's one pending reset without a scan. Only the
//! SHA-256 of the secret is stored, with a fingerprint (SHA-256) of the
//! password hash the account had when the reset was asked for: a password
//! changed since then (by any path) makes the reset unusable without any
//! write on that path.

use std::fmt;
use std::time::Duration;

use time::OffsetDateTime;

use crate::session::{SecretHash, TokenSecret, whole_seconds};
use crate::{UserId, ValidationError};

/// A reset token as the email carries it and the client posts it back.
#[derive(Clone, PartialEq, Eq)]
pub struct ResetToken {
    /// The account whose password it resets.
    pub user_id: UserId,
    /// The one-time secret.
    pub secret: TokenSecret,
}

impl ResetToken {
    /// Reads `<user id>.<secret>`; anything else is refused as one field,
    /// `token`, without saying which part was wrong.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let invalid = || ValidationError::field("token", "is not a valid password reset token");
        let (user_id, secret) = raw.split_once('.').ok_or_else(invalid)?;
        Ok(Self {
            user_id: UserId::parse(user_id).map_err(|_| invalid())?,
            secret: TokenSecret::parse(secret).map_err(|_| invalid())?,
        })
    }

    /// The text an email carries: never logged.
    pub fn to_text(&self) -> String {
        format!("{}.{}", self.user_id, self.secret.expose())
    }
}

impl fmt::Debug for ResetToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResetToken({}, ..)", self.user_id)
    }
}

/// How long a reset link works (`PASSWORD_RESET_TTL_SECONDS`, 30 minutes by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResetLifetime(Duration);

impl ResetLifetime {
    /// 30 minutes.
    pub const DEFAULT: Self = Self(Duration::from_secs(30 * 60));

    /// At least one second.
    pub fn new(lifetime: Duration) -> Result<Self, ValidationError> {
        if lifetime.as_secs() == 0 {
            return Err(ValidationError::field("password_reset_ttl", "must be at least one second"));
        }
        Ok(Self(lifetime))
    }

    /// The lifetime itself.
    pub fn get(self) -> Duration {
        self.0
    }
}

/// The one pending reset of an account: a newer request replaces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingReset {
    /// Whose password it resets.
    pub user_id: UserId,
    /// SHA-256 of the emailed secret.
    pub secret_hash: SecretHash,
    /// SHA-256 of the account's password hash when it was asked for.
    pub password_fingerprint: SecretHash,
    /// When it stops working (whole seconds; also the table's TTL attribute).
    pub expires_at: OffsetDateTime,
}

impl PendingReset {
    /// A reset asked for at `now`.
    pub fn new(
        user_id: UserId,
        secret_hash: SecretHash,
        password_fingerprint: SecretHash,
        now: OffsetDateTime,
        lifetime: ResetLifetime,
    ) -> Self {
        Self { user_id, secret_hash, password_fingerprint, expires_at: whole_seconds(now) + lifetime.0 }
    }

    /// Whether `presented` opens it at `now` for an account whose password
    /// hash fingerprints to `current`.
    pub fn opens(&self, presented: &SecretHash, current: &SecretHash, now: OffsetDateTime) -> bool {
        // Each comparison is constant-time (`SecretHash`'s equality).
        self.secret_hash == *presented && self.password_fingerprint == *current && self.expires_at > now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

    #[test]
    fn tokens_round_trip_and_hide_their_secret() {
        let token = ResetToken { user_id: UserId::generate(), secret: TokenSecret::parse(SECRET).unwrap() };
        assert_eq!(ResetToken::parse(&token.to_text()).unwrap(), token);
        assert!(!format!("{token:?}").contains(SECRET));
        for bad in ["", SECRET, &format!("{}.{}", token.user_id, &SECRET[1..]), &format!("x.{SECRET}")] {
            assert!(ResetToken::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_reset_opens_with_its_secret_before_it_expires_while_the_password_is_unchanged() {
        let now = OffsetDateTime::from_unix_timestamp(1_000).unwrap();
        let (secret, password) = (SecretHash::from_bytes([1; 32]), SecretHash::from_bytes([2; 32]));
        let lifetime = ResetLifetime::new(Duration::from_secs(60)).unwrap();
        let reset = PendingReset::new(UserId::generate(), secret, password, now, lifetime);
        assert!(reset.opens(&secret, &password, now + Duration::from_secs(59)));
        assert!(!reset.opens(&secret, &password, now + Duration::from_secs(60)), "expired");
        assert!(!reset.opens(&password, &password, now), "another secret");
        assert!(!reset.opens(&secret, &secret, now), "the password changed since");
        assert!(ResetLifetime::new(Duration::ZERO).is_err());
    }
}
