//! The admins' second factor: a TOTP secret (RFC 6238: HMAC-SHA1, 6 digits,
//! 30-second steps), the codes it produces, the enrolment that holds it, and
//! the one-time recovery codes given out when an enrolment is confirmed.
//!
//! Nothing here prints a secret: [`TotpSecret`] and [`RecoveryCode`] redact
//! their `Debug`, and the only way out of a secret is the `otpauth://` URI
//! shown once at enrolment.

use std::fmt;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use totp_rs::{Algorithm, TOTP};

use crate::{Email, UserId, ValidationError};

/// Seconds per time step (RFC 6238's recommended 30).
pub const STEP_SECONDS: u64 = 30;
/// Digits per code.
pub const DIGITS: usize = 6;
/// Bytes of a secret: 160 bits, RFC 4226's recommendation.
pub const SECRET_BYTES: usize = 20;
/// Steps either side of the current one a code may come from (clock drift
/// and typing time): RFC 6238 recommends at most one.
pub const SKEW_STEPS: u64 = 1;
/// How many recovery codes a confirmed enrolment hands out.
pub const RECOVERY_CODES: usize = 10;
/// Random bytes per recovery code: 80 bits, 16 base32 characters.
pub const RECOVERY_CODE_BYTES: usize = 10;

/// The label authenticator apps show for the shop's entries.
pub const ISSUER: &str = "Shop";

/// A TOTP shared secret. Never printed; read out only as the enrolment's
/// `otpauth://` URI and by the adapter that stores it.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret([u8; SECRET_BYTES]);

/// A stored secret that is not [`SECRET_BYTES`] long.
#[derive(Debug, thiserror::Error)]
#[error("a TOTP secret must be {SECRET_BYTES} bytes")]
pub struct InvalidSecret;

impl TotpSecret {
    /// A secret made of `bytes`, which must come from a CSPRNG.
    pub fn from_random(bytes: [u8; SECRET_BYTES]) -> Self {
        Self(bytes)
    }

    /// A secret as the store kept it.
    pub fn from_stored(bytes: &[u8]) -> Result<Self, InvalidSecret> {
        Ok(Self(bytes.try_into().map_err(|_| InvalidSecret)?))
    }

    /// The raw bytes, for the store only; never log them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The URI an authenticator app reads (Google Authenticator's Key Uri
    /// Format): `otpauth://totp/Shop:<email>?secret=<base32>&issuer=Shop&...`.
    pub fn otpauth_uri(&self, account: &Email) -> String {
        format!(
            "otpauth://totp/{ISSUER}:{}?secret={}&issuer={ISSUER}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
            percent_encode(account.as_ref()),
            self.totp().get_secret_base32(),
        )
    }

    /// The code of `step`.
    pub fn code_at(&self, step: TimeStep) -> String {
        self.totp().generate(step.0 * STEP_SECONDS)
    }

    /// The step, within [`SKEW_STEPS`] of `now`'s, whose code `code` is;
    /// `None` if it is none of them. Compared in constant time.
    pub fn matching_step(&self, code: &TotpCode, now: OffsetDateTime) -> Option<TimeStep> {
        let current = TimeStep::at(now).0;
        let totp = self.totp();
        // Every candidate is computed and compared, whichever matches, so the
        // time taken says nothing about which step (if any) it was.
        let mut found = None;
        for step in current.saturating_sub(SKEW_STEPS)..=current + SKEW_STEPS {
            let expected = totp.generate(step * STEP_SECONDS);
            if same_bytes(expected.as_bytes(), code.0.as_bytes()) {
                found = Some(TimeStep(step));
            }
        }
        found
    }

    fn totp(&self) -> TOTP {
        // The parameters are constants RFC 6238 allows and the secret is
        // 160 bits: `new` cannot refuse them.
        TOTP::new(Algorithm::SHA1, DIGITS, 0, STEP_SECONDS, self.0.to_vec()).expect("RFC 6238 parameters")
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

/// One RFC 6238 time step: the number of whole [`STEP_SECONDS`] since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeStep(u64);

impl TimeStep {
    /// The step `now` falls in (the epoch's step before it).
    pub fn at(now: OffsetDateTime) -> Self {
        Self(u64::try_from(now.unix_timestamp()).unwrap_or(0) / STEP_SECONDS)
    }

    /// A step as the store kept it.
    pub fn from_stored(step: u64) -> Self {
        Self(step)
    }

    /// The step's number, for the store.
    pub fn get(self) -> u64 {
        self.0
    }
}

/// A code as a client typed it: exactly [`DIGITS`] ASCII digits (spaces
/// between them are dropped, as apps show `123 456`).
#[derive(Clone, PartialEq, Eq)]
pub struct TotpCode(String);

impl TotpCode {
    /// The code in `raw`, refused under `field` unless it is six digits.
    pub fn parse(raw: &str, field: &str) -> Result<Self, ValidationError> {
        let digits: String = raw.chars().filter(|c| *c != ' ').collect();
        if digits.len() != DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ValidationError::field(field, "must be the 6-digit code of your authenticator app"));
        }
        Ok(Self(digits))
    }
}

impl fmt::Debug for TotpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpCode(<redacted>)")
    }
}

/// Where an account's enrolment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrolmentState {
    /// The secret was shown; no code has confirmed it yet, so sign-in does
    /// not ask for one.
    Pending,
    /// A code confirmed it: every sign-in needs a code or a recovery code.
    Confirmed,
}

impl EnrolmentState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Confirmed => "confirmed",
        }
    }

    /// The state a stored name names.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "pending" => Some(Self::Pending),
            "confirmed" => Some(Self::Confirmed),
            _ => None,
        }
    }
}

/// An account's TOTP enrolment: its secret, whether a code confirmed it,
/// and the last step a code was accepted for (a later code must be of a
/// later step, so a code cannot be replayed within its window).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpEnrolment {
    /// Whose it is.
    pub user_id: UserId,
    /// The shared secret.
    pub secret: TotpSecret,
    /// Pending until a code confirms it.
    pub state: EnrolmentState,
    /// The latest step a code was accepted for (at confirmation or sign-in).
    pub last_step: Option<TimeStep>,
    /// When the secret was made.
    pub created_at: OffsetDateTime,
}

impl TotpEnrolment {
    /// A pending enrolment of `user_id` with `secret`, begun `now`.
    pub fn begin(user_id: UserId, secret: TotpSecret, now: OffsetDateTime) -> Self {
        Self { user_id, secret, state: EnrolmentState::Pending, last_step: None, created_at: now }
    }

    /// Whether sign-in needs a second factor.
    pub fn is_confirmed(&self) -> bool {
        self.state == EnrolmentState::Confirmed
    }
}

/// A one-time recovery code: 16 characters of RFC 4648 base32, shown as
/// `abcd-efgh-ijkl-mnop`. Never printed by `Debug`; stored only as its
/// [`RecoveryCodeHash`].
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryCode(String);

impl RecoveryCode {
    /// A code made of `bytes`, which must come from a CSPRNG.
    pub fn from_random(bytes: [u8; RECOVERY_CODE_BYTES]) -> Self {
        Self(base32_lower(&bytes))
    }

    /// A code as a client typed it: case, spaces and dashes do not matter.
    pub fn parse(raw: &str, field: &str) -> Result<Self, ValidationError> {
        let normalised: String =
            raw.chars().filter(|c| !matches!(c, '-' | ' ')).map(|c| c.to_ascii_lowercase()).collect();
        if normalised.len() != 16 || !normalised.bytes().all(|b| matches!(b, b'a'..=b'z' | b'2'..=b'7')) {
            return Err(ValidationError::field(field, "must be one of your recovery codes (16 letters and digits)"));
        }
        Ok(Self(normalised))
    }

    /// The code as handed out, in groups of four: show it once, never log it.
    pub fn expose(&self) -> String {
        self.0.as_bytes().chunks(4).map(|group| String::from_utf8_lossy(group)).collect::<Vec<_>>().join("-")
    }

    /// What the store keeps: SHA-256 of the account and the code. A fast
    /// hash suffices for 80 random bits; the account makes equal codes of
    /// two accounts differ.
    pub fn hash(&self, user_id: UserId) -> RecoveryCodeHash {
        let digest = Sha256::digest(format!("{user_id}:{}", self.0).as_bytes());
        RecoveryCodeHash(digest.iter().map(|byte| format!("{byte:02x}")).collect())
    }
}

impl fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryCode(<redacted>)")
    }
}

/// The stored form of a recovery code (hex SHA-256, see [`RecoveryCode::hash`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecoveryCodeHash(String);

impl RecoveryCodeHash {
    /// A hash as the store kept it.
    pub fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    /// The hex digest, for the store.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `a` and `b` are equal, looking at every byte whatever differs.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |differ, (x, y)| differ | (x ^ y)) == 0
}

/// Lower-case RFC 4648 base32 without padding.
fn base32_lower(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::new();
    let (mut buffer, mut bits) = (0_u32, 0_u32);
    for byte in bytes {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(byte).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    /// RFC 6238 Appendix B's SHA-1 secret ("12345678901234567890").
    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_random(*b"12345678901234567890")
    }

    #[test]
    fn codes_are_rfc_6238s() {
        // Appendix B, SHA-1, the last six of the eight digits given there.
        let secret = rfc_secret();
        assert_eq!(secret.code_at(TimeStep::at(datetime!(1970-01-01 00:00:59 UTC))), "287082");
        assert_eq!(secret.code_at(TimeStep::at(datetime!(2005-03-18 01:58:29 UTC))), "081804");
        assert_eq!(secret.code_at(TimeStep::at(datetime!(2009-02-13 23:31:30 UTC))), "005924");
    }

    #[test]
    fn a_code_matches_its_step_and_its_neighbours_only() {
        let secret = rfc_secret();
        let now = datetime!(2026-12-06 09:00:10 UTC);
        let step = TimeStep::at(now);
        let code = |step: TimeStep| TotpCode::parse(&secret.code_at(step), "code").unwrap();
        assert_eq!(secret.matching_step(&code(step), now), Some(step));
        let before = TimeStep(step.0 - 1);
        let after = TimeStep(step.0 + 1);
        assert_eq!(secret.matching_step(&code(before), now), Some(before), "one step of drift is accepted");
        assert_eq!(secret.matching_step(&code(after), now), Some(after));
        // Two steps away (a minute old): refused.
        assert_eq!(secret.matching_step(&code(TimeStep(step.0 - 2)), now), None);
        assert_eq!(secret.matching_step(&code(TimeStep(step.0 + 2)), now), None);
        // The clock moves on: the same code is refused 90 seconds later.
        assert_eq!(secret.matching_step(&code(step), now + time::Duration::seconds(90)), None);
    }

    #[test]
    fn codes_parse_as_six_digits() {
        assert!(TotpCode::parse("123456", "code").is_ok());
        assert!(TotpCode::parse("123 456", "code").is_ok());
        for bad in ["", "12345", "1234567", "12345a", "１２３４５６"] {
            let error = TotpCode::parse(bad, "totp_code").unwrap_err();
            assert_eq!(error.fields()[0].field, "totp_code", "{bad}");
        }
    }

    #[test]
    fn the_uri_carries_the_secret_in_base32_and_the_account_encoded() {
        let email = Email::parse("ada+admin@example.com").unwrap();
        let uri = rfc_secret().otpauth_uri(&email);
        assert_eq!(
            uri,
            "otpauth://totp/Shop:ada%2Badmin%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Shop\
             &algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn secrets_and_codes_never_print() {
        let secret = rfc_secret();
        let code = RecoveryCode::from_random([7; RECOVERY_CODE_BYTES]);
        assert_eq!(format!("{secret:?}"), "TotpSecret(<redacted>)");
        assert!(!format!("{code:?}").contains(&code.expose()));
        assert!(!format!("{:?}", TotpCode::parse("123456", "c").unwrap()).contains("123456"));
    }

    #[test]
    fn recovery_codes_round_trip_whatever_the_spelling() {
        let code = RecoveryCode::from_random([0xA5; RECOVERY_CODE_BYTES]);
        let shown = code.expose();
        assert_eq!(shown.len(), 19, "{shown}");
        assert_eq!(RecoveryCode::parse(&shown, "recovery_code").unwrap(), code);
        assert_eq!(RecoveryCode::parse(&shown.to_uppercase().replace('-', " "), "recovery_code").unwrap(), code);
        assert!(RecoveryCode::parse("not-a-code", "recovery_code").is_err());
        assert!(RecoveryCode::parse("abcd-efgh-ijkl-mno1", "recovery_code").is_err(), "1 is not base32");
    }

    #[test]
    fn recovery_hashes_depend_on_the_account() {
        let code = RecoveryCode::from_random([1; RECOVERY_CODE_BYTES]);
        let (one, two) = (UserId::generate(), UserId::generate());
        assert_eq!(code.hash(one), code.hash(one));
        assert_ne!(code.hash(one), code.hash(two));
        assert_eq!(code.hash(one).as_str().len(), 64);
        assert!(!code.hash(one).as_str().contains(&code.expose().replace('-', "")));
    }
}
