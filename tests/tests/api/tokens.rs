//! Every kind of bad token is a 401, never access.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::json;

use adapters::token_keys::{ROTATION_PERIOD, TokenKeySecrets};
use framework::auth::PrivateKeySet;

use crate::helpers::{app, env, error_code, token_keys};

/// Signed with the active key of `keys`, under the key id `kid`.
fn sign(kid: &str, keys: &PrivateKeySet, claims: serde_json::Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(&keys.active().unwrap().1)).unwrap()
}

fn sign_hs256(kid: &str, key: &[u8], claims: serde_json::Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(key)).unwrap()
}

fn claims(sub: &str, role: &str, exp_offset: i64) -> serde_json::Value {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    json!({"sub": sub, "role": role, "iss": "shop-api", "aud": "shop-api", "iat": now, "exp": now + exp_offset})
}

async fn status_of(token: &str) -> (StatusCode, String) {
    let response = app().get("/users/me", Some(token)).await;
    let status = response.status();
    (status, error_code(response, status).await)
}

#[tokio::test]
async fn a_correctly_signed_token_works_and_bad_ones_get_401() {
    let app = app();
    let user = app.new_user("tokens").await;
    let keys = token_keys().await;
    let kid = keys.active_kid().to_owned();

    let good = sign(&kid, &keys, claims(&user.id, "user", 300));
    assert_eq!(app.get("/users/me", Some(&good)).await.status(), StatusCode::OK);

    // Another Ed25519 key: under our key id the signature fails; under its own id the key is unknown.
    let attacker = PrivateKeySet::generate(0).unwrap();
    let expired = sign(&kid, &keys, claims(&user.id, "user", -120));
    let unknown_kid = sign(attacker.active_kid(), &attacker, claims(&user.id, "user", 300));
    let wrong_key = sign(&kid, &attacker, claims(&user.id, "user", 300));
    // The old scheme: HS256 under our key id, keyed with the public key set (algorithm confusion).
    let hs256 = sign_hs256(&kid, keys.public_keys(None).unwrap().to_json().as_bytes(), claims(&user.id, "user", 300));
    let wrong_audience = sign(
        &kid,
        &keys,
        json!({"sub": user.id, "role": "user", "iss": "shop-api", "aud": "other", "exp": i64::MAX / 2}),
    );

    let parts: Vec<&str> = user.token.split('.').collect();
    let mut payload: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    payload["role"] = "admin".into();
    let tampered = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(payload.to_string()), parts[2]);
    let alg_none =
        format!("{}.{}.", URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","typ":"JWT","kid":"{kid}"}}"#)), parts[1]);

    for (name, token) in [
        ("expired", expired),
        ("unknown kid", unknown_kid),
        ("wrong key", wrong_key),
        ("hs256", hs256),
        ("wrong audience", wrong_audience),
        ("tampered", tampered),
        ("alg none", alg_none),
        ("garbage", "not.a.token".to_owned()),
    ] {
        assert_eq!(status_of(&token).await, (StatusCode::UNAUTHORIZED, "invalid_token".into()), "{name}");
    }
}

#[tokio::test]
async fn missing_or_non_bearer_credentials_get_401() {
    let app = app();
    assert_eq!(error_code(app.get("/users/me", None).await, StatusCode::UNAUTHORIZED).await, "unauthenticated");
    let basic = app.client.get(app.url("/users/me")).header("authorization", "Basic YTpi").send().await.unwrap();
    assert_eq!(basic.headers()["www-authenticate"], "Bearer");
    assert_eq!(error_code(basic, StatusCode::UNAUTHORIZED).await, "invalid_token");
}

/// The next key is published a whole rotation before it signs: a token
/// signed with it verifies before the rotation, and across the rotation
/// neither the tokens in flight nor those of the new signing key are refused.
#[tokio::test]
async fn no_valid_token_is_refused_across_a_token_key_rotation() {
    let app = app();
    let user = app.new_user("rotation").await;
    let before = token_keys().await;
    let in_flight = sign(before.active_kid(), &before, claims(&user.id, "user", 600));
    // The same key material the next rotation will sign with, under its id.
    let period = i64::try_from(ROTATION_PERIOD.as_secs()).unwrap();
    let next = before.rotated(before.rotated_at() + period).unwrap();
    let signed_with_next = sign(next.active_kid(), &next, claims(&user.id, "user", 600));
    assert_eq!(app.get("/users/me", Some(&signed_with_next)).await.status(), StatusCode::OK, "next key before");

    // The rotation, as the rotate-token-keys function runs it once the period has passed.
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let secrets = TokenKeySecrets::new(
        aws_sdk_secretsmanager::Client::new(&config),
        env("TOKEN_SIGNING_KEY_SECRET_ID"),
        env("TOKEN_PUBLIC_KEYS_SECRET_ID"),
    );
    let rotation = secrets.rotate_when_due(before.rotated_at() + period, ROTATION_PERIOD).await.unwrap();
    assert_eq!(rotation.outcome, "rotated");
    assert_eq!(rotation.active_kid, before.next_kid());
    assert!(rotation.published.contains(&before.active_kid().to_owned()), "{rotation:?}");

    // Login signs with the key that was "next" once its cached set expires
    // (minutes); whichever it signs with now, its token verifies, as do all others.
    let fresh = app.token_for(&user.email).await;
    let kid = jsonwebtoken::decode_header(&fresh).unwrap().kid.unwrap();
    assert!(kid == before.active_kid() || kid == before.next_kid(), "{kid}");
    for (name, token) in [("in flight", &in_flight), ("next key", &signed_with_next), ("fresh", &fresh)] {
        assert_eq!(app.get("/users/me", Some(token)).await.status(), StatusCode::OK, "{name} after");
    }
}
