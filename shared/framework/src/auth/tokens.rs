//! Short-lived access tokens: HS256 JWTs whose header names the signing key (`kid`).

use std::sync::Arc;
use std::time::Duration;

use domain::{Role, UserId};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::SigningKeys;

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
}

/// The verified caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Whose token it was.
    pub user_id: UserId,
    /// The role the token granted, as of when it was issued.
    pub role: Role,
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
    /// Not a JWT, not HS256, without a `kid`, or its subject or role does not parse.
    #[error("token is malformed")]
    Malformed,
    /// Its `kid` is not among the keys, even after re-reading the secret.
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

/// Issues and verifies access tokens with the current signing keys. Cheap to clone.
#[derive(Clone)]
pub struct Tokens {
    keys: Arc<SigningKeys>,
    ttl: Duration,
}

impl Tokens {
    /// Tokens signed with `keys` that expire `ttl` after they are issued.
    pub fn new(keys: Arc<SigningKeys>, ttl: Duration) -> Self {
        Self { keys, ttl }
    }

    /// Reads the keys now, during init, so the first request does not pay
    /// for the Secrets Manager round trip (and its TLS handshake).
    pub async fn warm_up(&self) -> anyhow::Result<()> {
        self.keys.current().await.map(|_| ())
    }

    /// Signs a token for `user_id` with the active key; fails only when the
    /// keys cannot be read.
    pub async fn issue(&self, user_id: UserId, role: Role) -> anyhow::Result<IssuedToken> {
        let keys = self.keys.current().await?;
        let (kid, secret) = keys.active();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = Claims {
            sub: user_id.to_string(),
            role: role.as_str().to_owned(),
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            iat: now,
            exp: now + self.ttl.as_secs() as i64,
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid.to_owned());
        let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret))?;
        Ok(IssuedToken { token, expires_in: self.ttl.as_secs() })
    }

    /// The caller a token proves, if it is an unexpired HS256 token of this
    /// API signed by any listed key. An unknown `kid` re-reads the secret
    /// first (rate-limited), so tokens signed with a just-rotated key pass.
    pub async fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        // Only HS256 is ever accepted: this is what refuses `alg: none` and
        // algorithm-confusion tokens, whatever their header says.
        if header.alg != Algorithm::HS256 {
            return Err(TokenError::Malformed);
        }
        let kid = header.kid.ok_or(TokenError::Malformed)?;
        let mut keys = self.keys.current().await.map_err(TokenError::KeysUnavailable)?;
        if keys.get(&kid).is_none() {
            keys = self.keys.refresh_for_unknown_kid().await.map_err(TokenError::KeysUnavailable)?;
        }
        let secret = keys.get(&kid).ok_or(TokenError::UnknownKey)?;

        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        let data = jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(secret), &validation)
            .map_err(TokenError::Invalid)?;
        let user_id = UserId::parse(&data.claims.sub).map_err(|_| TokenError::Malformed)?;
        let role = Role::parse(&data.claims.role).map_err(|_| TokenError::Malformed)?;
        Ok(Principal { user_id, role })
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;
    use crate::auth::KeySet;

    const KEY_ONE: &str = "0123456789abcdef0123456789abcdef";
    const KEY_TWO: &str = "fedcba9876543210fedcba9876543210";

    fn tokens(secret_json: &str, ttl: Duration) -> Tokens {
        Tokens::new(Arc::new(SigningKeys::fixed(KeySet::parse(secret_json).unwrap())), ttl)
    }

    fn key_one() -> Tokens {
        tokens(&format!(r#"{{"active_kid":"k1","k1":"{KEY_ONE}"}}"#), Duration::from_secs(900))
    }

    #[tokio::test]
    async fn round_trips_identity_and_role() {
        let tokens = key_one();
        let user = UserId::generate();
        let issued = tokens.issue(user, Role::Admin).await.unwrap();
        assert_eq!(issued.expires_in, 900);
        let principal = tokens.verify(&issued.token).await.unwrap();
        assert_eq!(principal, Principal { user_id: user, role: Role::Admin });
    }

    #[tokio::test]
    async fn header_names_the_key() {
        let issued = key_one().issue(UserId::generate(), Role::User).await.unwrap();
        let header = jsonwebtoken::decode_header(&issued.token).unwrap();
        assert_eq!(header.kid.as_deref(), Some("k1"));
        assert_eq!(header.alg, Algorithm::HS256);
    }

    #[tokio::test]
    async fn rotated_keys_still_verify_old_tokens() {
        let old = key_one().issue(UserId::generate(), Role::User).await.unwrap();
        let rotated =
            tokens(&format!(r#"{{"active_kid":"k2","k1":"{KEY_ONE}","k2":"{KEY_TWO}"}}"#), Duration::from_secs(900));
        assert!(rotated.verify(&old.token).await.is_ok());
        let new = rotated.issue(UserId::generate(), Role::User).await.unwrap();
        assert!(matches!(key_one().verify(&new.token).await, Err(TokenError::UnknownKey)));
    }

    #[tokio::test]
    async fn refuses_tampered_payloads() {
        let tokens = key_one();
        let issued = tokens.issue(UserId::generate(), Role::User).await.unwrap();
        let parts: Vec<&str> = issued.token.split('.').collect();
        let mut claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        claims["role"] = "admin".into();
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
        let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        assert!(matches!(tokens.verify(&forged).await, Err(TokenError::Invalid(_))));
    }

    #[tokio::test]
    async fn refuses_alg_none() {
        let tokens = key_one();
        let issued = tokens.issue(UserId::generate(), Role::User).await.unwrap();
        let payload = issued.token.split('.').nth(1).unwrap();
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT","kid":"k1"}"#);
        assert!(tokens.verify(&format!("{header}.{payload}.")).await.is_err());
        assert!(tokens.verify(&format!("{header}.{payload}")).await.is_err());
    }

    #[tokio::test]
    async fn refuses_expired_tokens() {
        let tokens = key_one();
        let issued = tokens.issue(UserId::generate(), Role::User).await.unwrap();
        let mut claims: Claims = jsonwebtoken::dangerous::insecure_decode(&issued.token).unwrap().claims;
        claims.exp = claims.iat - 60;
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        let expired = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(KEY_ONE.as_bytes())).unwrap();
        assert!(matches!(tokens.verify(&expired).await, Err(TokenError::Invalid(_))));
    }

    #[tokio::test]
    async fn refuses_garbage_and_missing_kid() {
        let tokens = key_one();
        for garbage in ["", "abc", "a.b.c", "Bearer x"] {
            assert!(tokens.verify(garbage).await.is_err(), "{garbage}");
        }
        let claims = Claims {
            sub: UserId::generate().to_string(),
            role: "user".into(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: 0,
            exp: i64::MAX / 2,
        };
        let no_kid = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(KEY_ONE.as_bytes()),
        )
        .unwrap();
        assert!(matches!(tokens.verify(&no_kid).await, Err(TokenError::Malformed)));
    }
}
