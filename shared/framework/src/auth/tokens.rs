//! Short-lived access tokens: Ed25519-signed JWTs (`EdDSA`) whose header
//! names the signing key (`kid`). Only the issuer holds a private key; every
//! other function verifies with the public key set.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::{PrivateKeys, PublicKeys, Role, Subject};

const ISSUER: &str = "shop-api";
const AUDIENCE: &str = "shop-api";

/// What a token says about its bearer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The bearer's user id.
    pub sub: String,
    /// The bearer's role when the token was issued (`user` or `admin`).
    pub role: String,
    /// Who issued the token; verification accepts only this API's own name.
    pub iss: String,
    /// Who the token is for; verification accepts only this API's own name.
    pub aud: String,
    /// When it was issued, in Unix seconds.
    pub iat: i64,
    /// When it stops being accepted, in Unix seconds (5 seconds of leeway).
    pub exp: i64,
    /// Whether the sign-in that issued it checked a second factor (a TOTP
    /// or recovery code) beside the password. Absent in older tokens: false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mfa: bool,
}

/// The verified caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Whose token it was.
    pub subject: Subject,
    /// The role the token granted, as of when it was issued.
    pub role: Role,
    /// Whether the sign-in behind the token checked a second factor.
    pub mfa: bool,
}

impl Principal {
    /// Whether the caller may use admin-only routes and see every customer's data.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// A freshly signed access token, as a login response hands it out.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedToken {
    /// The compact JWT, to be sent back as `Authorization: Bearer <token>`.
    pub token: String,
    /// Its lifetime in seconds from now.
    pub expires_in: u64,
}

/// Why a token was refused. Clients only ever learn "invalid or expired".
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT, not `EdDSA`, without a `kid`, or its subject or role does not parse.
    #[error("token is malformed")]
    Malformed,
    /// Its `kid` is not in the public key set, even after re-reading it.
    #[error("token names an unknown signing key")]
    UnknownKey,
    /// The signature, expiry, issuer or audience check failed.
    #[error("token is invalid: {0}")]
    Invalid(jsonwebtoken::errors::Error),
    /// The keys could not be read, so nothing was decided about the token;
    /// the caller should answer 503, not 401.
    #[error("signing keys unavailable")]
    KeysUnavailable(#[source] anyhow::Error),
}

/// Issues and verifies access tokens. Cheap to clone.
#[derive(Clone)]
pub struct Tokens {
    public: Arc<PublicKeys>,
    private: Option<Arc<PrivateKeys>>,
    ttl: Duration,
}

impl Tokens {
    /// Verifies tokens with the public keys `public`; issues none.
    pub fn new(public: Arc<PublicKeys>, ttl: Duration) -> Self {
        Self { public, private: None, ttl }
    }

    /// Issues tokens signed with the active key of `private`, expiring
    /// `ttl` after they are issued (the issuer's tokens also verify with
    /// `public`).
    pub fn issuing(private: Arc<PrivateKeys>, public: Arc<PublicKeys>, ttl: Duration) -> Self {
        Self { public, private: Some(private), ttl }
    }

    /// Signs a token for `subject` with the active key; fails when the
    /// keys cannot be read or this function holds no private keys.
    pub async fn issue(&self, subject: Subject, role: Role) -> anyhow::Result<IssuedToken> {
        self.issue_with_mfa(subject, role, false).await
    }

    /// [`Tokens::issue`], saying whether the sign-in checked a second factor
    /// (the `mfa` claim, which admin routes may require).
    pub async fn issue_with_mfa(&self, subject: Subject, role: Role, mfa: bool) -> anyhow::Result<IssuedToken> {
        let Some(private) = &self.private else { anyhow::bail!("this function holds no token signing key") };
        let keys = private.current().await?;
        let (kid, pkcs8) = keys.active()?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = Claims {
            sub: subject.to_string(),
            role: role.as_str().to_owned(),
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            iat: now,
            exp: now + i64::try_from(self.ttl.as_secs())?,
            mfa,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.to_owned());
        let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(&pkcs8))?;
        Ok(IssuedToken { token, expires_in: self.ttl.as_secs() })
    }

    /// The caller a token proves, if it is an unexpired `EdDSA` token of
    /// this API signed by a key of the public set. An unknown `kid` re-reads
    /// the set first (rate-limited); a rotation publishes the next key a
    /// whole rotation before signing with it, so that is only ever a forgery
    /// or a set re-read right after it changed.
    pub async fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        // Only EdDSA is ever accepted: this is what refuses `alg: none`,
        // HS256 and algorithm-confusion tokens, whatever their header says.
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Malformed);
        }
        let kid = header.kid.ok_or(TokenError::Malformed)?;
        let mut keys = self.public.current().await.map_err(TokenError::KeysUnavailable)?;
        if keys.get(&kid).is_none() {
            keys = self.public.refresh_for_unknown_kid().await.map_err(TokenError::KeysUnavailable)?;
        }
        let key = keys.get(&kid).ok_or(TokenError::UnknownKey)?;

        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        let data = jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(TokenError::Invalid)?;
        let subject = Subject::parse(&data.claims.sub).ok_or(TokenError::Malformed)?;
        let role = Role::parse(&data.claims.role).ok_or(TokenError::Malformed)?;
        Ok(Principal { subject, role, mfa: data.claims.mfa })
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;
    use crate::auth::{PrivateKeySet, PublicKeySet, SecretCache};

    const DAY: i64 = 24 * 60 * 60;

    fn someone() -> Subject {
        Subject::new(ulid::Ulid::new())
    }

    fn issuer(private: &PrivateKeySet, retiring: Option<&PrivateKeySet>) -> Tokens {
        let public = private.public_keys(retiring).unwrap();
        Tokens::issuing(
            Arc::new(SecretCache::fixed(private.clone())),
            Arc::new(SecretCache::fixed(public)),
            Duration::from_secs(900),
        )
    }

    fn verifier(public: PublicKeySet) -> Tokens {
        Tokens::new(Arc::new(SecretCache::fixed(public)), Duration::from_secs(900))
    }

    fn signed(private: &PrivateKeySet, kid: &str, claims: &Claims) -> String {
        let (_, pkcs8) = private.active().unwrap();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(&pkcs8)).unwrap()
    }

    fn claims_for(user: Subject, exp_offset: i64) -> Claims {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        Claims {
            sub: user.to_string(),
            role: "user".into(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now,
            exp: now + exp_offset,
            mfa: false,
        }
    }

    #[tokio::test]
    async fn round_trips_identity_and_role_and_names_the_key() {
        let keys = PrivateKeySet::generate(0).unwrap();
        let tokens = issuer(&keys, None);
        let user = someone();
        let issued = tokens.issue(user, Role::Admin).await.unwrap();
        assert_eq!(issued.expires_in, 900);
        let header = jsonwebtoken::decode_header(&issued.token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(keys.active_kid()));
        assert_eq!(header.alg, Algorithm::EdDSA);
        // A function with the public keys alone verifies it.
        let principal = verifier(keys.public_keys(None).unwrap()).verify(&issued.token).await.unwrap();
        assert_eq!(principal, Principal { subject: user, role: Role::Admin, mfa: false });
        // The second factor rides along when the sign-in checked one.
        let checked = tokens.issue_with_mfa(user, Role::Admin, true).await.unwrap();
        assert!(tokens.verify(&checked.token).await.unwrap().mfa);
    }

    #[tokio::test]
    async fn a_verifier_cannot_issue() {
        let keys = PrivateKeySet::generate(0).unwrap();
        assert!(verifier(keys.public_keys(None).unwrap()).issue(someone(), Role::Admin).await.is_err());
    }

    #[tokio::test]
    async fn no_valid_token_is_refused_across_a_rotation() {
        let before = PrivateKeySet::generate(0).unwrap();
        let published_before = before.public_keys(None).unwrap();
        let after = before.rotated(30 * DAY).unwrap();
        let published_after = after.public_keys(Some(&before)).unwrap();
        let old_token = issuer(&before, None).issue(someone(), Role::User).await.unwrap().token;
        let new_token = issuer(&after, Some(&before)).issue(someone(), Role::User).await.unwrap().token;
        // A verifier still holding the set from before the rotation accepts
        // the new key's tokens: it was published as the next key.
        assert!(verifier(published_before).verify(&new_token).await.is_ok());
        // The set published by the rotation still accepts tokens in flight.
        assert!(verifier(published_after.clone()).verify(&old_token).await.is_ok());
        assert!(verifier(published_after).verify(&new_token).await.is_ok());
        // One more rotation and the first key is gone.
        let later = after.rotated(60 * DAY).unwrap();
        let published_later = later.public_keys(Some(&after)).unwrap();
        assert!(matches!(verifier(published_later).verify(&old_token).await, Err(TokenError::UnknownKey)));
    }

    #[tokio::test]
    async fn refuses_other_keys_unknown_kids_and_hs256() {
        let keys = PrivateKeySet::generate(0).unwrap();
        let tokens = verifier(keys.public_keys(None).unwrap());
        let user = someone();
        let attacker = PrivateKeySet::generate(0).unwrap();
        // The attacker's key under our key id: the signature fails.
        let forged = signed(&attacker, keys.active_kid(), &claims_for(user, 300));
        assert!(matches!(tokens.verify(&forged).await, Err(TokenError::Invalid(_))));
        // The attacker's own key id: unknown.
        let unknown = signed(&attacker, attacker.active_kid(), &claims_for(user, 300));
        assert!(matches!(tokens.verify(&unknown).await, Err(TokenError::UnknownKey)));
        // HS256 keyed with the public key (algorithm confusion): malformed.
        let public_x = keys.public_keys(None).unwrap().to_json();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(keys.active_kid().into());
        let confused =
            jsonwebtoken::encode(&header, &claims_for(user, 300), &EncodingKey::from_secret(public_x.as_bytes()))
                .unwrap();
        assert!(matches!(tokens.verify(&confused).await, Err(TokenError::Malformed)));
        // The genuine key verifies.
        assert!(tokens.verify(&signed(&keys, keys.active_kid(), &claims_for(user, 300))).await.is_ok());
    }

    #[tokio::test]
    async fn refuses_tampered_payloads() {
        let keys = PrivateKeySet::generate(0).unwrap();
        let tokens = issuer(&keys, None);
        let issued = tokens.issue(someone(), Role::User).await.unwrap();
        let parts: Vec<&str> = issued.token.split('.').collect();
        let mut claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        claims["role"] = "admin".into();
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
        let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        assert!(matches!(tokens.verify(&forged).await, Err(TokenError::Invalid(_))));
    }

    #[tokio::test]
    async fn refuses_alg_none() {
        let keys = PrivateKeySet::generate(0).unwrap();
        let tokens = issuer(&keys, None);
        let issued = tokens.issue(someone(), Role::User).await.unwrap();
        let payload = issued.token.split('.').nth(1).unwrap();
        let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","typ":"JWT","kid":"{}"}}"#, keys.active_kid()));
        assert!(tokens.verify(&format!("{header}.{payload}.")).await.is_err());
        assert!(tokens.verify(&format!("{header}.{payload}")).await.is_err());
    }

    #[tokio::test]
    async fn refuses_expired_tokens() {
        let keys = PrivateKeySet::generate(0).unwrap();
        let expired = signed(&keys, keys.active_kid(), &claims_for(someone(), -60));
        assert!(matches!(issuer(&keys, None).verify(&expired).await, Err(TokenError::Invalid(_))));
    }

    #[tokio::test]
    async fn refuses_garbage_and_missing_kid() {
        let keys = PrivateKeySet::generate(0).unwrap();
        let tokens = issuer(&keys, None);
        for garbage in ["", "abc", "a.b.c", "Bearer x"] {
            assert!(tokens.verify(garbage).await.is_err(), "{garbage}");
        }
        let (_, pkcs8) = keys.active().unwrap();
        let no_kid = jsonwebtoken::encode(
            &Header::new(Algorithm::EdDSA),
            &claims_for(someone(), 300),
            &EncodingKey::from_ed_der(&pkcs8),
        )
        .unwrap();
        assert!(matches!(tokens.verify(&no_kid).await, Err(TokenError::Malformed)));
    }
}
