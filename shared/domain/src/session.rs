//! Sessions: one family of rotating refresh tokens per sign-in. A refresh
//! token is `<user id>.<session id>.<secret>`; only the SHA-256 of the
//! secret is stored, and every refresh replaces it, so each token works
//! once. Presenting a secret the session no longer holds means a rotated
//! token was used again (by its thief or by its owner after a theft): the
//! whole session is revoked (RFC 6819 5.2.2.3, OAuth 2.0 Security BCP 4.14).

use std::fmt;
use std::time::Duration;

use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::{Role, SessionId, UserId, ValidationError};

/// The SHA-256 of a token's secret: what the table holds instead of the
/// secret. Compared in constant time.
#[derive(Clone, Copy)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    /// The hash as computed by the caller (SHA-256 of the secret's text).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The stored form: lower-case hex.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// Reads the stored form back; `None` for anything but 64 hex digits.
    pub fn from_hex(hex: &str) -> Option<Self> {
        if hex.len() != 64 || !hex.is_ascii() {
            return None;
        }
        let mut bytes = [0_u8; 32];
        for (index, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[index * 2..index * 2 + 2], 16).ok()?;
        }
        Some(Self(bytes))
    }
}

impl PartialEq for SecretHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for SecretHash {}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

/// The secret part of a token, as a client sent it: 43 base64url
/// characters (32 random bytes). Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret(String);

impl TokenSecret {
    /// Accepts exactly 43 base64url characters (no padding).
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let valid =
            raw.len() == 43 && raw.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
        if valid { Ok(Self(raw.to_owned())) } else { Err(ValidationError::field("token", "is not a valid token")) }
    }

    /// The text to hash.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret(..)")
    }
}

/// A refresh token as presented: whose, which session, and the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// The account, so the session is found without a scan.
    pub user_id: UserId,
    /// The session (token family) it belongs to.
    pub session_id: SessionId,
    /// The one-time secret.
    pub secret: TokenSecret,
}

impl RefreshToken {
    /// Parses `<user id>.<session id>.<secret>`; any other shape is refused.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let invalid = || ValidationError::field("refresh_token", "is not a valid refresh token");
        let mut parts = raw.split('.');
        let (Some(user), Some(session), Some(secret), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        Ok(Self {
            user_id: UserId::parse(user).map_err(|_| invalid())?,
            session_id: SessionId::parse(session).map_err(|_| invalid())?,
            secret: TokenSecret::parse(secret).map_err(|_| invalid())?,
        })
    }

    /// The text handed to the client.
    pub fn to_text(&self) -> String {
        format!("{}.{}.{}", self.user_id, self.session_id, self.secret.0)
    }
}

/// How long a refresh token stays valid unused: every refresh issues a new
/// one with a whole lifetime, so a session lasts while it is used at least
/// this often (and ends at once on logout, reuse or an account change).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshLifetime(Duration);

impl RefreshLifetime {
    /// 14 days.
    pub const DEFAULT: Self = Self(Duration::from_secs(14 * 24 * 60 * 60));

    /// At least one second.
    pub fn new(lifetime: Duration) -> Result<Self, ValidationError> {
        if lifetime.as_secs() == 0 {
            return Err(ValidationError::field("refresh_lifetime", "must be at least one second"));
        }
        Ok(Self(lifetime))
    }

    /// The lifetime itself.
    pub fn get(self) -> Duration {
        self.0
    }

    /// When a token issued at `now` expires, in whole seconds as stored.
    pub fn expiry(self, now: OffsetDateTime) -> OffsetDateTime {
        whole_seconds(now) + self.0
    }
}

/// One session: a family of refresh tokens, of which only the newest works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Its id (the family).
    pub id: SessionId,
    /// Whose it is.
    pub user_id: UserId,
    /// The account's role at sign-in: a session never outlives a role change.
    pub role: Role,
    /// Whether the sign-in passed a second factor: the access tokens its
    /// refreshes issue say so too.
    pub mfa: bool,
    /// The hash of the one secret that refreshes it now.
    pub secret_hash: SecretHash,
    /// When it was signed in.
    pub started_at: OffsetDateTime,
    /// When its current token stops working (stored in whole seconds).
    pub expires_at: OffsetDateTime,
}

impl Session {
    /// A session signed in at `now` (with a second factor when `mfa`) whose
    /// first token's secret hashes to `secret_hash`.
    pub fn start(
        user_id: UserId,
        role: Role,
        mfa: bool,
        secret_hash: SecretHash,
        now: OffsetDateTime,
        lifetime: RefreshLifetime,
    ) -> Self {
        Self {
            id: SessionId::generate(),
            user_id,
            role,
            mfa,
            secret_hash,
            started_at: whole_seconds(now),
            expires_at: lifetime.expiry(now),
        }
    }

    /// Whether its current token still works at `now`.
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        self.expires_at > now
    }
}

/// `moment` without its fraction of a second, as the table keeps times.
pub fn whole_seconds(moment: OffsetDateTime) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(moment.unix_timestamp()).unwrap_or(moment)
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The presented secret was the current one: the session now holds the
    /// next one (returned as stored).
    Rotated(Session),
    /// The presented secret was not the current one (a rotated token used
    /// again): the session was revoked.
    Reused,
    /// The secret was the current one but its token had expired; the session was ended.
    Expired,
    /// No such session: never started, logged out, revoked or expired away.
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

    #[test]
    fn refresh_tokens_round_trip_and_refuse_other_shapes() {
        let token = RefreshToken {
            user_id: UserId::generate(),
            session_id: SessionId::generate(),
            secret: TokenSecret::parse(SECRET).unwrap(),
        };
        assert_eq!(RefreshToken::parse(&token.to_text()).unwrap(), token);
        let (user, session) = (token.user_id, token.session_id);
        for bad in [
            String::new(),
            format!("{user}.{session}"),
            format!("{user}.{session}.{SECRET}.x"),
            format!("{user}.{session}.{}", &SECRET[1..]),
            format!("{user}.{session}.{}=", &SECRET[1..]),
            format!("{session}.nope.{SECRET}"),
            format!("{user}.{session}.{}+", &SECRET[1..]),
        ] {
            assert!(RefreshToken::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_and_hashes_never_print() {
        let secret = TokenSecret::parse(SECRET).unwrap();
        assert!(!format!("{secret:?}").contains(SECRET));
        let hash = SecretHash::from_bytes([7; 32]);
        assert!(!format!("{hash:?}").contains("07"));
        assert_eq!(SecretHash::from_hex(&hash.to_hex()), Some(hash));
        assert_eq!(SecretHash::from_hex("zz"), None);
    }

    #[test]
    fn a_token_expires_a_lifetime_after_it_was_issued() {
        let lifetime = RefreshLifetime::new(Duration::from_secs(10)).unwrap();
        assert!(RefreshLifetime::new(Duration::ZERO).is_err());
        let start = OffsetDateTime::from_unix_timestamp(1_000).unwrap() + Duration::from_millis(700);
        assert_eq!(lifetime.expiry(start).unix_timestamp(), 1_010);
        let session =
            Session::start(UserId::generate(), Role::User, false, SecretHash::from_bytes([1; 32]), start, lifetime);
        assert_eq!(session.started_at.unix_timestamp(), 1_000);
        assert!(session.is_live(start + Duration::from_secs(9)));
        assert!(!session.is_live(start + Duration::from_secs(10)));
    }
}
