//! Email verification: the token a verification email carries, the hash that
//! is all the store keeps of it, and how long it is good for.
//!
//! A token is `<user id>.<secret>`: the id lets the store find the account's
//! one pending verification without a scan, the secret (32 random bytes,
//! base64url, made by the application) proves the email was read. Only the
//! SHA-256 of the secret is stored: a fast hash suits a 256-bit random
//! secret, where argon2 is for passwords people choose.

use std::fmt;
use std::time::Duration;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::{DomainEvent, UserId, ValidationError};

/// The length of a secret in its text form: 32 bytes in base64url without padding.
const SECRET_CHARS: usize = 43;

/// A verification token as an email carries it. Its `Debug` hides the
/// secret, and it has no `Display`: the text form is asked for by name
/// ([`VerificationToken::expose`]) where an email is written.
#[derive(Clone, PartialEq, Eq)]
pub struct VerificationToken {
    user_id: UserId,
    secret: String,
}

impl VerificationToken {
    /// A token for `user_id` with `secret`, the base64url text of 32 random
    /// bytes (no padding).
    pub fn new(user_id: UserId, secret: String) -> Result<Self, ValidationError> {
        Self::check_secret(&secret)?;
        Ok(Self { user_id, secret })
    }

    /// Reads `<user id>.<secret>`; anything else is refused as one field,
    /// `token`, without saying which part was wrong.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let invalid = || ValidationError::field("token", "is not a valid verification token");
        let (user_id, secret) = raw.split_once('.').ok_or_else(invalid)?;
        let user_id = UserId::parse(user_id).map_err(|_| invalid())?;
        Self::new(user_id, secret.to_owned()).map_err(|_| invalid())
    }

    fn check_secret(secret: &str) -> Result<(), ValidationError> {
        let base64url = |byte: u8| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_';
        if secret.len() == SECRET_CHARS && secret.bytes().all(base64url) {
            Ok(())
        } else {
            Err(ValidationError::field("token", "is not a valid verification token"))
        }
    }

    /// The account the token verifies.
    pub fn user_id(&self) -> UserId {
        self.user_id
    }

    /// What the store keeps of the token.
    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.secret.as_bytes()).into())
    }

    /// The token's text, `<user id>.<secret>`, for the email that carries it.
    pub fn expose(&self) -> String {
        format!("{}.{}", self.user_id, self.secret)
    }
}

impl fmt::Debug for VerificationToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerificationToken({}.<redacted>)", self.user_id)
    }
}

/// The SHA-256 of a token's secret: what the store keeps, and what a
/// presented token must match.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// A hash as the store holds it (32 bytes); `None` for any other length.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// The 32 bytes, for the store.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether `other` is this hash, compared in constant time.
    pub fn matches(&self, other: &TokenHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    /// A short, stable name of the token for dedupe keys (16 hex digits of
    /// the hash; reveals nothing usable of the secret).
    pub fn short_name(&self) -> String {
        self.0.iter().take(8).map(|byte| format!("{byte:02x}")).collect()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({}..)", self.short_name())
    }
}

/// How long a verification link works: 24 hours unless configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerificationTtl(Duration);

impl VerificationTtl {
    /// A day: long enough for an email read the next morning.
    pub const DEFAULT: Self = Self(Duration::from_secs(24 * 60 * 60));

    /// A lifetime of `seconds`, at least one second and at most 30 days.
    pub fn new(seconds: u64) -> Result<Self, ValidationError> {
        if (1..=30 * 24 * 60 * 60).contains(&seconds) {
            Ok(Self(Duration::from_secs(seconds)))
        } else {
            Err(ValidationError::field("verification_ttl", "must be between 1 second and 30 days"))
        }
    }

    /// The lifetime.
    pub fn get(self) -> Duration {
        self.0
    }
}

/// An account's pending verification, at most one per account: a newer one
/// replaces it, so only the latest link works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingVerification {
    /// The account it verifies.
    pub user_id: UserId,
    /// The hash of the emailed token's secret.
    pub hash: TokenHash,
    /// From this moment on the token is refused (and the store may drop it).
    pub expires_at: OffsetDateTime,
}

impl PendingVerification {
    /// The pending verification of `token`, issued at `now`, good for `ttl`.
    pub fn of(token: &VerificationToken, now: OffsetDateTime, ttl: VerificationTtl) -> Self {
        Self { user_id: token.user_id(), hash: token.hash(), expires_at: now + ttl.get() }
    }

    /// Whether `presented` is this verification's token and it is still good at `now`.
    pub fn accepts(&self, presented: &TokenHash, now: OffsetDateTime) -> bool {
        // Both checked, so the comparison's time does not depend on the expiry.
        let same = self.hash.matches(presented);
        same && now < self.expires_at
    }
}

/// How a verification attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum VerifyOutcome {
    /// This attempt verified the account; the event (its welcome email) was
    /// committed with it, to be published.
    Verified(DomainEvent),
    /// The account was verified before (by this link or another): a second
    /// click is harmless and answered as a success.
    AlreadyVerified,
    /// No such account, no pending verification, another token, or an
    /// expired one: nothing changed.
    Refused,
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

    #[test]
    fn tokens_round_trip_and_hide_their_secret() {
        let user = UserId::generate();
        let token = VerificationToken::new(user, SECRET.into()).unwrap();
        let parsed = VerificationToken::parse(&token.expose()).unwrap();
        assert_eq!(parsed, token);
        assert_eq!(parsed.user_id(), user);
        assert!(!format!("{token:?}").contains(SECRET), "Debug shows no secret");
        assert!(parsed.hash().matches(&token.hash()));
    }

    #[test]
    fn malformed_tokens_are_refused_alike() {
        let user = UserId::generate();
        for raw in [
            String::new(),
            SECRET.to_owned(),
            format!("{user}"),
            format!("{user}."),
            format!("{user}.{}", &SECRET[1..]),
            format!("{user}.{SECRET}A"),
            format!("{user}.{}+", &SECRET[1..]),
            format!("not-an-id.{SECRET}"),
        ] {
            let error = VerificationToken::parse(&raw).unwrap_err();
            assert_eq!(error.fields()[0].field, "token", "{raw:?}");
        }
    }

    #[test]
    fn a_pending_verification_accepts_its_own_token_until_it_expires() {
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(1000);
        let token = VerificationToken::new(UserId::generate(), SECRET.into()).unwrap();
        let other = VerificationToken::new(token.user_id(), SECRET.replace('A', "B")).unwrap();
        let pending = PendingVerification::of(&token, now, VerificationTtl::DEFAULT);
        assert!(pending.accepts(&token.hash(), now));
        assert!(pending.accepts(&token.hash(), now + time::Duration::hours(23)));
        assert!(!pending.accepts(&token.hash(), now + time::Duration::hours(24)), "expired at the deadline");
        assert!(!pending.accepts(&other.hash(), now), "another token");
    }

    #[test]
    fn lifetimes_are_bounded() {
        assert_eq!(VerificationTtl::DEFAULT.get(), Duration::from_secs(86_400));
        assert!(VerificationTtl::new(0).is_err());
        assert!(VerificationTtl::new(31 * 86_400).is_err());
        assert_eq!(VerificationTtl::new(5).unwrap().get(), Duration::from_secs(5));
    }
}
