//! The keys behind tokens and cursors, held in Secrets Manager and cached in
//! memory with a TTL.
//!
//! Access tokens are signed with Ed25519 (`EdDSA`). Two secrets hold their keys:
//!
//! - the private key set, `{"active_kid": "...", "next_kid": "...",
//!   "rotated_at": <unix seconds>, "keys": {"<kid>": "<base64 PKCS#8>"}}`,
//!   readable only by the function that issues tokens (and the rotation);
//! - the public key set, `{"keys": {"<kid>": "<base64url raw public key>"}}`,
//!   which is not secret: every function that checks tokens reads it.
//!
//! A rotation makes the next key active and generates a new next key; the
//! public set then holds the retiring key (for tokens still in flight), the
//! active one and the next one. The next key is published one whole rotation
//! before anything signs with it, so no verifier meets an unknown key id.
//!
//! Pagination cursors are sealed with a separate HMAC key ([`KeySet`]), which
//! the listing functions read: a leaked cursor key forges cursors, never tokens.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::DecodingKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::RwLock;

/// Shortest cursor key accepted: HMAC-SHA256 wants at least 256 bits of key.
const MIN_KEY_BYTES: usize = 32;
/// A token with an unknown `kid` may mean the keys were rotated: re-read the
/// secret, but not more often than this (forged kids must not DoS the secret).
const UNKNOWN_KID_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// A rotation retires the active key from the public set at the next
/// rotation; two rotations closer than this would drop a key whose tokens
/// (15 minutes at most) and cached public sets (5 minutes) may still be live.
pub const MIN_ROTATION_INTERVAL: Duration = Duration::from_secs(60 * 60);

/// A secret's parsed JSON: what a [`SecretCache`] holds.
pub trait SecretValue: Sized + Send + Sync + 'static {
    /// Parses the secret string.
    fn parse(json: &str) -> anyhow::Result<Self>;
}

/// The cursor-sealing secret: `{"active_kid": "k1", "k1": "<secret>"}`.
/// Debug never shows key material.
#[derive(Clone)]
pub struct KeySet {
    active_kid: String,
    keys: HashMap<String, Vec<u8>>,
}

impl SecretValue for KeySet {
    /// Reads the secret's JSON; refuses it unless `active_kid` names a key of
    /// at least 32 bytes.
    fn parse(secret_json: &str) -> anyhow::Result<Self> {
        let map: HashMap<String, String> =
            serde_json::from_str(secret_json).context("cursor key secret is not a flat JSON object of strings")?;
        let active_kid = map.get("active_kid").context("cursor key secret has no active_kid")?.clone();
        let keys: HashMap<String, Vec<u8>> = map
            .into_iter()
            .filter(|(kid, _)| kid != "active_kid")
            .map(|(kid, secret)| (kid, secret.into_bytes()))
            .collect();
        let Some(active) = keys.get(&active_kid) else { bail!("active_kid names no key in the secret") };
        if active.len() < MIN_KEY_BYTES {
            bail!("the active cursor key is shorter than {MIN_KEY_BYTES} bytes");
        }
        Ok(Self { active_kid, keys })
    }
}

impl KeySet {
    /// Reads the secret's JSON (see [`SecretValue::parse`]).
    pub fn parse(secret_json: &str) -> anyhow::Result<Self> {
        <Self as SecretValue>::parse(secret_json)
    }

    /// The id and secret that new cursors are sealed with.
    pub fn active(&self) -> (&str, &[u8]) {
        (&self.active_kid, &self.keys[&self.active_kid])
    }

    /// The secret listed as `kid`; `None` for unknown ids and for keys
    /// shorter than 32 bytes, which are never trusted.
    pub fn get(&self, kid: &str) -> Option<&[u8]> {
        self.keys.get(kid).map(Vec::as_slice).filter(|key| key.len() >= MIN_KEY_BYTES)
    }
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kids: Vec<&String> = self.keys.keys().collect();
        kids.sort();
        f.debug_struct("KeySet").field("active_kid", &self.active_kid).field("kids", &kids).finish()
    }
}

/// The private token keys: the active one signs, the next one waits for the
/// next rotation. Debug never shows key material.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivateKeySet {
    active_kid: String,
    next_kid: String,
    rotated_at: i64,
    keys: BTreeMap<String, String>,
}

impl SecretValue for PrivateKeySet {
    /// Reads the secret's JSON; refuses it unless the active and next ids
    /// both name Ed25519 key pairs whose ids match their public keys.
    fn parse(json: &str) -> anyhow::Result<Self> {
        let set: Self = serde_json::from_str(json).context("the token signing key secret is not a private key set")?;
        ensure!(set.active_kid != set.next_kid, "the active and next signing keys are the same key");
        ensure!(set.keys.len() == 2, "the token signing key secret holds other keys than the active and next one");
        for kid in [&set.active_kid, &set.next_kid] {
            let pair = set.key_pair(kid)?;
            ensure!(key_id(pair.public_key().as_ref()) == *kid, "signing key `{kid}` does not match its id");
        }
        Ok(set)
    }
}

impl PrivateKeySet {
    /// A first pair of keys, for a secret that holds none yet.
    pub fn generate(now: i64) -> anyhow::Result<Self> {
        let (active_kid, active) = generate_key()?;
        let (next_kid, next) = generate_key()?;
        let keys = BTreeMap::from([(active_kid.clone(), active), (next_kid.clone(), next)]);
        Ok(Self { active_kid, next_kid, rotated_at: now, keys })
    }

    /// The set after one rotation at `now`: the next key signs and a fresh
    /// key becomes the next one. Refused within [`MIN_ROTATION_INTERVAL`] of
    /// the last rotation.
    pub fn rotated(&self, now: i64) -> anyhow::Result<Self> {
        let since = now.saturating_sub(self.rotated_at);
        ensure!(
            u64::try_from(since).is_ok_and(|since| since >= MIN_ROTATION_INTERVAL.as_secs()),
            "the signing keys were rotated {since} s ago; a rotation needs {} s between two",
            MIN_ROTATION_INTERVAL.as_secs()
        );
        let (fresh_kid, fresh) = generate_key()?;
        let next = self.keys[&self.next_kid].clone();
        let keys = BTreeMap::from([(self.next_kid.clone(), next), (fresh_kid.clone(), fresh)]);
        Ok(Self { active_kid: self.next_kid.clone(), next_kid: fresh_kid, rotated_at: now, keys })
    }

    /// The id and PKCS#8 document that new tokens are signed with.
    pub fn active(&self) -> anyhow::Result<(&str, Vec<u8>)> {
        let der = STANDARD.decode(&self.keys[&self.active_kid]).context("the active signing key is not base64")?;
        Ok((&self.active_kid, der))
    }

    /// When the active key started signing, in Unix seconds.
    pub fn rotated_at(&self) -> i64 {
        self.rotated_at
    }

    /// The key id that signs now.
    pub fn active_kid(&self) -> &str {
        &self.active_kid
    }

    /// The key id that signs after the next rotation.
    pub fn next_kid(&self) -> &str {
        &self.next_kid
    }

    /// The secret's JSON, as the rotation stores it.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a key set serializes")
    }

    /// The public keys to publish while this set is (or becomes) current:
    /// its active and next key, and the key `retiring` signed with before
    /// (tokens it signed stay valid until they expire).
    pub fn public_keys(&self, retiring: Option<&Self>) -> anyhow::Result<PublicKeySet> {
        let mut keys = BTreeMap::new();
        for kid in [&self.active_kid, &self.next_kid] {
            keys.insert(kid.clone(), URL_SAFE_NO_PAD.encode(self.key_pair(kid)?.public_key().as_ref()));
        }
        if let Some(retiring) = retiring {
            let kid = &retiring.active_kid;
            keys.insert(kid.clone(), URL_SAFE_NO_PAD.encode(retiring.key_pair(kid)?.public_key().as_ref()));
        }
        PublicKeySet::from_keys(keys)
    }

    fn key_pair(&self, kid: &str) -> anyhow::Result<Ed25519KeyPair> {
        let encoded = self.keys.get(kid).with_context(|| format!("no signing key `{kid}` in the secret"))?;
        let der = STANDARD.decode(encoded).with_context(|| format!("signing key `{kid}` is not base64"))?;
        Ed25519KeyPair::from_pkcs8(&der).map_err(|_| anyhow::anyhow!("signing key `{kid}` is no Ed25519 PKCS#8 key"))
    }
}

impl fmt::Debug for PrivateKeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKeySet")
            .field("active_kid", &self.active_kid)
            .field("next_kid", &self.next_kid)
            .field("rotated_at", &self.rotated_at)
            .finish_non_exhaustive()
    }
}

/// The public token keys by id, ready to verify with.
#[derive(Clone)]
pub struct PublicKeySet {
    keys: BTreeMap<String, String>,
    decoding: HashMap<String, DecodingKey>,
}

#[derive(Serialize, Deserialize)]
struct PublicKeysJson {
    keys: BTreeMap<String, String>,
}

impl SecretValue for PublicKeySet {
    /// Reads `{"keys": {"<kid>": "<base64url raw Ed25519 public key>"}}`.
    fn parse(json: &str) -> anyhow::Result<Self> {
        let parsed: PublicKeysJson = serde_json::from_str(json).context("the public key set is not valid JSON")?;
        Self::from_keys(parsed.keys)
    }
}

impl PublicKeySet {
    /// Reads the public key set's JSON (see [`SecretValue::parse`]).
    pub fn parse(json: &str) -> anyhow::Result<Self> {
        <Self as SecretValue>::parse(json)
    }

    fn from_keys(keys: BTreeMap<String, String>) -> anyhow::Result<Self> {
        ensure!(!keys.is_empty(), "the public key set holds no key");
        let mut decoding = HashMap::new();
        for (kid, x) in &keys {
            let raw = URL_SAFE_NO_PAD.decode(x).with_context(|| format!("public key `{kid}` is not base64url"))?;
            ensure!(raw.len() == 32, "public key `{kid}` is not a 32-byte Ed25519 key");
            ensure!(key_id(&raw) == *kid, "public key `{kid}` does not match its id");
            decoding.insert(kid.clone(), DecodingKey::from_ed_der(&raw));
        }
        Ok(Self { keys, decoding })
    }

    /// The key that verifies tokens naming `kid`.
    pub fn get(&self, kid: &str) -> Option<&DecodingKey> {
        self.decoding.get(kid)
    }

    /// The listed key ids, sorted.
    pub fn kids(&self) -> Vec<&str> {
        self.keys.keys().map(String::as_str).collect()
    }

    /// The set's JSON, as the rotation publishes it.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&PublicKeysJson { keys: self.keys.clone() }).expect("a key set serializes")
    }
}

impl fmt::Debug for PublicKeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKeySet").field("kids", &self.kids()).finish()
    }
}

/// A key's id: the first 12 bytes of the SHA-256 of its raw public key,
/// base64url (16 characters), so an id never names two keys.
fn key_id(public_key: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(&Sha256::digest(public_key)[..12])
}

fn generate_key() -> anyhow::Result<(String, String)> {
    let document = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map_err(|_| anyhow::anyhow!("could not generate an Ed25519 key"))?;
    let pair = Ed25519KeyPair::from_pkcs8(document.as_ref())
        .map_err(|_| anyhow::anyhow!("a generated Ed25519 key does not parse"))?;
    Ok((key_id(pair.public_key().as_ref()), STANDARD.encode(document.as_ref())))
}

enum Source {
    SecretsManager { client: aws_sdk_secretsmanager::Client, secret_id: String },
    Fixed,
}

struct Cached<K> {
    keys: Arc<K>,
    fetched_at: Instant,
}

/// A secret's parsed value, read on first use and again once the TTL has
/// passed. Cheap to share: clone the `Arc` around it.
pub struct SecretCache<K> {
    source: Source,
    ttl: Duration,
    cached: RwLock<Option<Cached<K>>>,
}

/// The cursor key, read by the listing functions.
pub type CursorKeys = SecretCache<KeySet>;
/// The private token keys, read only by the issuer.
pub type PrivateKeys = SecretCache<PrivateKeySet>;
/// The public token keys, read by every function that checks tokens.
pub type PublicKeys = SecretCache<PublicKeySet>;

impl<K: SecretValue> SecretCache<K> {
    /// Keys read from the Secrets Manager secret `secret_id` (needs
    /// `secretsmanager:GetSecretValue`) on first use and again once `ttl` has passed.
    pub fn from_secrets_manager(client: aws_sdk_secretsmanager::Client, secret_id: String, ttl: Duration) -> Self {
        Self { source: Source::SecretsManager { client, secret_id }, ttl, cached: RwLock::new(None) }
    }

    /// Keys that never change; for tests and tools.
    pub fn fixed(keys: K) -> Self {
        let cached = Cached { keys: Arc::new(keys), fetched_at: Instant::now() };
        Self { source: Source::Fixed, ttl: Duration::MAX, cached: RwLock::new(Some(cached)) }
    }

    /// The current keys, re-read from the secret once the TTL has passed. If
    /// the re-read fails, the stale keys keep serving: an outage of Secrets
    /// Manager must not log everyone out.
    pub async fn current(&self) -> anyhow::Result<Arc<K>> {
        if let Some(cached) = self.cached.read().await.as_ref()
            && cached.fetched_at.elapsed() < self.ttl
        {
            return Ok(cached.keys.clone());
        }
        self.refresh(self.ttl).await
    }

    /// Whether the keys have been read (at any age), waiting for a read
    /// under way but never starting one: for work that may use the keys only
    /// if another task's read of them succeeded.
    pub async fn has_been_read(&self) -> bool {
        self.cached.read().await.is_some()
    }

    /// Re-reads the secret because a token named a kid we do not know.
    pub async fn refresh_for_unknown_kid(&self) -> anyhow::Result<Arc<K>> {
        self.refresh(UNKNOWN_KID_REFRESH_INTERVAL).await
    }

    async fn refresh(&self, if_older_than: Duration) -> anyhow::Result<Arc<K>> {
        let mut cached = self.cached.write().await;
        // Another task may have refreshed while we waited for the lock.
        if let Some(current) = cached.as_ref()
            && current.fetched_at.elapsed() < if_older_than
        {
            return Ok(current.keys.clone());
        }
        match self.fetch().await {
            Ok(keys) => {
                let keys = Arc::new(keys);
                *cached = Some(Cached { keys: keys.clone(), fetched_at: Instant::now() });
                Ok(keys)
            }
            Err(error) => match cached.as_mut() {
                Some(stale) => {
                    tracing::warn!(
                        error = crate::telemetry::chain(error.as_ref()),
                        "could not refresh keys; using cached ones"
                    );
                    // Back off before trying again instead of hammering an unhealthy service.
                    // (Keys that never expire, as fixed keys, are simply kept.)
                    let back_off = self.ttl.saturating_sub(UNKNOWN_KID_REFRESH_INTERVAL);
                    if let Some(earlier) = Instant::now().checked_sub(back_off) {
                        stale.fetched_at = earlier;
                    }
                    Ok(stale.keys.clone())
                }
                None => Err(error),
            },
        }
    }

    async fn fetch(&self) -> anyhow::Result<K> {
        let Source::SecretsManager { client, secret_id } = &self.source else {
            bail!("fixed keys cannot be refreshed");
        };
        let output =
            client.get_secret_value().secret_id(secret_id).send().await.context("could not read a key secret")?;
        let json = output.secret_string().context("the key secret has no string value")?;
        K::parse(json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef";
    const DAY: i64 = 24 * 60 * 60;

    #[test]
    fn parses_the_flat_cursor_secret_format() {
        let keys = KeySet::parse(&format!(r#"{{"active_kid":"k2","k1":"{KEY}","k2":"{KEY}x"}}"#)).unwrap();
        assert_eq!(keys.active().0, "k2");
        assert!(keys.get("k1").is_some());
        assert!(keys.get("k3").is_none());
    }

    #[test]
    fn refuses_weak_or_inconsistent_cursor_secrets() {
        assert!(KeySet::parse("not json").is_err());
        assert!(KeySet::parse(&format!(r#"{{"k1":"{KEY}"}}"#)).is_err());
        assert!(KeySet::parse(&format!(r#"{{"active_kid":"k9","k1":"{KEY}"}}"#)).is_err());
        assert!(KeySet::parse(r#"{"active_kid":"k1","k1":"short"}"#).is_err());
    }

    #[test]
    fn debug_output_holds_no_key_material() {
        let keys = KeySet::parse(&format!(r#"{{"active_kid":"k1","k1":"{KEY}"}}"#)).unwrap();
        let printed = format!("{keys:?}");
        assert!(printed.contains("k1"));
        assert!(!printed.contains(KEY));
        let private = PrivateKeySet::generate(0).unwrap();
        let printed = format!("{private:?}");
        for encoded in private.keys.values() {
            assert!(!printed.contains(encoded.as_str()), "{printed}");
        }
    }

    #[test]
    fn a_private_set_round_trips_and_its_ids_name_its_keys() {
        let set = PrivateKeySet::generate(1_000).unwrap();
        assert_ne!(set.active_kid(), set.next_kid());
        let parsed = PrivateKeySet::parse(&set.to_json()).unwrap();
        assert!(parsed == set);
        // An id that does not match its key is refused.
        let swapped = set.to_json().replace(set.active_kid(), "not-the-id");
        assert!(PrivateKeySet::parse(&swapped).is_err());
        // The public half carries no private key and names the same keys.
        let public = set.public_keys(None).unwrap();
        let json = public.to_json();
        for encoded in set.keys.values() {
            assert!(!json.contains(encoded.as_str()));
        }
        let mut expected = vec![set.active_kid(), set.next_kid()];
        expected.sort_unstable();
        assert_eq!(PublicKeySet::parse(&json).unwrap().kids(), expected);
    }

    #[test]
    fn a_rotation_signs_with_the_published_next_key_and_keeps_the_retiring_one() {
        let first = PrivateKeySet::generate(0).unwrap();
        let published_before = first.public_keys(None).unwrap();
        let second = first.rotated(30 * DAY).unwrap();
        // What signs after the rotation was already published before it.
        assert_eq!(second.active_kid(), first.next_kid());
        assert!(published_before.get(second.active_kid()).is_some());
        // During and after the rotation: retiring, active and next verify.
        let published_after = second.public_keys(Some(&first)).unwrap();
        let mut expected = vec![first.active_kid(), second.active_kid(), second.next_kid()];
        expected.sort_unstable();
        assert_eq!(published_after.kids(), expected);
        // One rotation later the first key is gone.
        let third = second.rotated(60 * DAY).unwrap();
        assert!(third.public_keys(Some(&second)).unwrap().get(first.active_kid()).is_none());
    }

    #[test]
    fn a_second_rotation_within_the_interval_is_refused() {
        let first = PrivateKeySet::generate(0).unwrap();
        assert!(first.rotated(60).is_err());
        assert!(first.rotated(-5).is_err());
        assert!(first.rotated(i64::try_from(MIN_ROTATION_INTERVAL.as_secs()).unwrap()).is_ok());
    }

    #[test]
    fn refuses_public_sets_that_do_not_hold_ed25519_keys() {
        assert!(PublicKeySet::parse("{}").is_err());
        assert!(PublicKeySet::parse(r#"{"keys":{}}"#).is_err());
        assert!(PublicKeySet::parse(r#"{"keys":{"k1":"c2hvcnQ"}}"#).is_err());
        let set = PrivateKeySet::generate(0).unwrap().public_keys(None).unwrap();
        let renamed = set.to_json().replacen(set.kids()[0], "k1", 1);
        assert!(PublicKeySet::parse(&renamed).is_err());
    }
}
