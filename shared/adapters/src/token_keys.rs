//! The token keys' rotation, on the two Secrets Manager secrets that hold
//! them: the private key set (the issuer's) and the public key set.
//!
//! The public set is written first, then the private one: a verifier never
//! sees a key id the issuer signs with before it is published. A rotation
//! makes the key published as "next" a whole period ago the signing key, so a
//! verifier's cached public set (re-read every few minutes) already holds it.

use std::time::Duration;

use anyhow::Context;
use framework::auth::{PrivateKeySet, PublicKeySet, SecretValue};
use serde::Serialize;

/// How often the signing key changes.
pub const ROTATION_PERIOD: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// What a run did, for its log line and result (key ids only, never keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rotation {
    /// `created` (the secret held no keys), `rotated` or `not_due`.
    pub outcome: &'static str,
    /// The key id tokens are signed with after the run.
    pub active_kid: String,
    /// The key id published for the next rotation.
    pub next_kid: String,
    /// The key ids the public set holds after the run.
    pub published: Vec<String>,
}

/// The two secrets, by id.
pub struct TokenKeySecrets {
    client: aws_sdk_secretsmanager::Client,
    private_id: String,
    public_id: String,
}

impl TokenKeySecrets {
    /// The private key set at `private_id`, the public one at `public_id`.
    pub fn new(client: aws_sdk_secretsmanager::Client, private_id: String, public_id: String) -> Self {
        Self { client, private_id, public_id }
    }

    /// Creates the first keys if the private secret holds none, rotates when
    /// the active key is `period` old, else does nothing.
    pub async fn rotate_when_due(&self, now: i64, period: Duration) -> anyhow::Result<Rotation> {
        let current = self.private_keys().await?;
        let (outcome, pending) = match &current {
            None => ("created", PrivateKeySet::generate(now)?),
            Some(keys) if now.saturating_sub(keys.rotated_at()) >= i64::try_from(period.as_secs())? => {
                ("rotated", keys.rotated(now)?)
            }
            Some(keys) => {
                let published = self.public_keys().await?.kids().iter().map(|kid| (*kid).to_owned()).collect();
                return Ok(Rotation {
                    outcome: "not_due",
                    active_kid: keys.active_kid().to_owned(),
                    next_kid: keys.next_kid().to_owned(),
                    published,
                });
            }
        };
        let public = pending.public_keys(current.as_ref())?;
        // Publish first: from here on every verifier that re-reads the set
        // accepts the keys the private set is about to name.
        self.put(&self.public_id, public.to_json()).await.context("publishing the public keys")?;
        self.put(&self.private_id, pending.to_json()).await.context("storing the private keys")?;
        Ok(Rotation {
            outcome,
            active_kid: pending.active_kid().to_owned(),
            next_kid: pending.next_kid().to_owned(),
            published: public.kids().iter().map(|kid| (*kid).to_owned()).collect(),
        })
    }

    /// The private key set; `None` while the secret holds the placeholder
    /// (`{}`) a new stack creates it with.
    async fn private_keys(&self) -> anyhow::Result<Option<PrivateKeySet>> {
        let json = self.read(&self.private_id).await.context("reading the private keys")?;
        if serde_json::from_str::<serde_json::Value>(&json).is_ok_and(|value| value == serde_json::json!({})) {
            return Ok(None);
        }
        PrivateKeySet::parse(&json).map(Some)
    }

    async fn public_keys(&self) -> anyhow::Result<PublicKeySet> {
        PublicKeySet::parse(&self.read(&self.public_id).await.context("reading the public keys")?)
    }

    async fn read(&self, id: &str) -> anyhow::Result<String> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|error| anyhow::anyhow!("{}", aws_sdk_secretsmanager::error::DisplayErrorContext(error)))?;
        Ok(output.secret_string().context("the secret has no string value")?.to_owned())
    }

    async fn put(&self, id: &str, value: String) -> anyhow::Result<()> {
        self.client
            .put_secret_value()
            .secret_id(id)
            .secret_string(value)
            .send()
            .await
            .map_err(|error| anyhow::anyhow!("{}", aws_sdk_secretsmanager::error::DisplayErrorContext(error)))?;
        Ok(())
    }
}
