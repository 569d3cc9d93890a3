//! Opaque, tamper-proof pagination cursors.
//!
//! A cursor is `base64url(payload) "." base64url(HMAC-SHA256(payload))`. The
//! payload binds the store's position to a *scope*: the listing it belongs to,
//! including whose data it is. A cursor forged, edited, or taken from another
//! user's listing fails verification and never reaches the store.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Longest cursor accepted; anything longer is not one of ours.
const MAX_CURSOR_LENGTH: usize = 1024;

#[derive(Serialize, Deserialize)]
struct Payload {
    /// Scope: which listing, for whom, with which filters.
    s: String,
    /// Position: the store's own marker of the last item returned.
    p: String,
}

/// Signs and verifies cursors with a key derived from the signing secret.
#[derive(Clone)]
pub struct CursorCodec {
    key: Vec<u8>,
}

impl CursorCodec {
    /// Derives a cursor-only key, so a cursor MAC can never double as a token signature.
    pub fn new(secret: &[u8]) -> Self {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
        mac.update(b"shop pagination cursor v1");
        Self { key: mac.finalize().into_bytes().to_vec() }
    }

    /// A cursor that carries `position` and opens only for the same `scope`.
    pub fn seal(&self, scope: &str, position: &str) -> String {
        let payload = serde_json::to_vec(&Payload { s: scope.to_owned(), p: position.to_owned() })
            .expect("a payload of strings always serialises");
        let payload = URL_SAFE_NO_PAD.encode(payload);
        let signature = URL_SAFE_NO_PAD.encode(self.mac(payload.as_bytes()).finalize().into_bytes());
        format!("{payload}.{signature}")
    }

    /// The position inside `cursor`, if it is genuine and belongs to `scope`.
    pub fn open(&self, cursor: &str, scope: &str) -> Option<String> {
        if cursor.len() > MAX_CURSOR_LENGTH {
            return None;
        }
        let (payload, signature) = cursor.split_once('.')?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        // Constant-time comparison, so the MAC cannot be guessed byte by byte.
        self.mac(payload.as_bytes()).verify_slice(&signature).ok()?;
        let payload: Payload = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        (payload.s == scope).then_some(payload.p)
    }

    fn mac(&self, data: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC accepts keys of any length");
        mac.update(data);
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec() -> CursorCodec {
        CursorCodec::new(b"0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn round_trips_within_its_scope() {
        let cursor = codec().seal("orders:owner=A", "01J0000000000000000000000");
        assert_eq!(codec().open(&cursor, "orders:owner=A").as_deref(), Some("01J0000000000000000000000"));
    }

    #[test]
    fn is_opaque() {
        let cursor = codec().seal("users", "01J0000000000000000000000");
        assert!(!cursor.contains("users"));
        assert!(!cursor.contains("01J"));
    }

    #[test]
    fn refuses_other_scopes_forgeries_and_other_keys() {
        let cursor = codec().seal("orders:owner=A", "X");
        assert_eq!(codec().open(&cursor, "orders:owner=B"), None);

        let (payload, signature) = cursor.split_once('.').unwrap();
        let forged_payload = URL_SAFE_NO_PAD.encode(br#"{"s":"orders:owner=B","p":"X"}"#);
        assert_eq!(codec().open(&format!("{forged_payload}.{signature}"), "orders:owner=B"), None);
        assert_eq!(codec().open(&format!("{payload}.AAAA"), "orders:owner=A"), None);

        let other = CursorCodec::new(b"another key, another deployment!");
        assert_eq!(other.open(&cursor, "orders:owner=A"), None);

        for garbage in ["", ".", "abc", "a.b.c", &"x".repeat(5000)] {
            assert_eq!(codec().open(garbage, "users"), None);
        }
    }
}
