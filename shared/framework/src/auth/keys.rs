//! JWT signing keys, held in Secrets Manager and cached in memory with a TTL.
//!
//! The secret is a flat JSON object: `{"active_kid": "k1", "k1": "<secret>",
//! "k2": "<secret>"}`. Tokens are signed with the active key and carry its id
//! (`kid`); any listed key verifies. To rotate: add a key, make it active,
//! and remove the old one once the longest token lifetime has passed.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::sync::RwLock;

/// Shortest key length accepted: HS256 wants at least 256 bits of key.
const MIN_KEY_BYTES: usize = 32;
/// A token with an unknown `kid` may mean the keys were rotated: re-read the
/// secret, but not more often than this (forged kids must not DoS the secret).
const UNKNOWN_KID_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// The parsed secret. Debug never shows key material.
#[derive(Clone)]
pub struct KeySet {
    active_kid: String,
    keys: HashMap<String, Vec<u8>>,
}

impl KeySet {
    /// Reads the secret's JSON; refuses it unless `active_kid` names a key of
    /// at least 32 bytes.
    pub fn parse(secret_json: &str) -> anyhow::Result<Self> {
        let map: HashMap<String, String> =
            serde_json::from_str(secret_json).context("signing key secret is not a flat JSON object of strings")?;
        let active_kid = map.get("active_kid").context("signing key secret has no active_kid")?.clone();
        let keys: HashMap<String, Vec<u8>> = map
            .into_iter()
            .filter(|(kid, _)| kid != "active_kid")
            .map(|(kid, secret)| (kid, secret.into_bytes()))
            .collect();
        let Some(active) = keys.get(&active_kid) else { bail!("active_kid names no key in the secret") };
        if active.len() < MIN_KEY_BYTES {
            bail!("the active signing key is shorter than {MIN_KEY_BYTES} bytes");
        }
        Ok(Self { active_kid, keys })
    }

    /// The id and secret that new tokens are signed with.
    pub fn active(&self) -> (&str, &[u8]) {
        (&self.active_kid, &self.keys[&self.active_kid])
    }

    /// The secret that verifies tokens naming `kid`; `None` for unknown ids
    /// and for listed keys shorter than 32 bytes, which are never trusted.
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

enum Source {
    SecretsManager { client: aws_sdk_secretsmanager::Client, secret_id: String },
    Fixed,
}

struct Cached {
    keys: Arc<KeySet>,
    fetched_at: Instant,
}

/// The key cache. Cheap to share: clone the `Arc` around it.
pub struct SigningKeys {
    source: Source,
    ttl: Duration,
    cached: RwLock<Option<Cached>>,
}

impl SigningKeys {
    /// Keys read from the Secrets Manager secret `secret_id` (needs
    /// `secretsmanager:GetSecretValue`) on first use and again once `ttl` has passed.
    pub fn from_secrets_manager(client: aws_sdk_secretsmanager::Client, secret_id: String, ttl: Duration) -> Self {
        Self { source: Source::SecretsManager { client, secret_id }, ttl, cached: RwLock::new(None) }
    }

    /// Keys that never change; for tests and tools.
    pub fn fixed(keys: KeySet) -> Self {
        let cached = Cached { keys: Arc::new(keys), fetched_at: Instant::now() };
        Self { source: Source::Fixed, ttl: Duration::MAX, cached: RwLock::new(Some(cached)) }
    }

    /// The current keys, re-read from the secret once the TTL has passed. If
    /// the re-read fails, the stale keys keep serving: an outage of Secrets
    /// Manager must not log everyone out.
    pub async fn current(&self) -> anyhow::Result<Arc<KeySet>> {
        if let Some(cached) = self.cached.read().await.as_ref()
            && cached.fetched_at.elapsed() < self.ttl
        {
            return Ok(cached.keys.clone());
        }
        self.refresh(self.ttl).await
    }

    /// Re-reads the secret because a token named a kid we do not know.
    pub async fn refresh_for_unknown_kid(&self) -> anyhow::Result<Arc<KeySet>> {
        self.refresh(UNKNOWN_KID_REFRESH_INTERVAL).await
    }

    async fn refresh(&self, if_older_than: Duration) -> anyhow::Result<Arc<KeySet>> {
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
                        "could not refresh signing keys; using cached ones"
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

    async fn fetch(&self) -> anyhow::Result<KeySet> {
        let Source::SecretsManager { client, secret_id } = &self.source else {
            bail!("fixed keys cannot be refreshed");
        };
        let output = client
            .get_secret_value()
            .secret_id(secret_id)
            .send()
            .await
            .context("could not read the signing key secret")?;
        let json = output.secret_string().context("the signing key secret has no string value")?;
        KeySet::parse(json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn parses_the_flat_secret_format() {
        let keys = KeySet::parse(&format!(r#"{{"active_kid":"k2","k1":"{KEY}","k2":"{KEY}x"}}"#)).unwrap();
        assert_eq!(keys.active().0, "k2");
        assert!(keys.get("k1").is_some());
        assert!(keys.get("k3").is_none());
    }

    #[test]
    fn refuses_weak_or_inconsistent_secrets() {
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
    }
}
