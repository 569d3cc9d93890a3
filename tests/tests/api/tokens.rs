//! Every kind of bad token is a 401, never access.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{app, error_code, signing_key};

fn sign(kid: &str, key: &[u8], claims: serde_json::Value) -> String {
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
    let (kid, key) = signing_key().await;

    let good = sign(&kid, &key, claims(&user.id, "user", 300));
    assert_eq!(app.get("/users/me", Some(&good)).await.status(), StatusCode::OK);

    let expired = sign(&kid, &key, claims(&user.id, "user", -120));
    let unknown_kid = sign("k-unknown", &key, claims(&user.id, "user", 300));
    let wrong_key = sign(&kid, b"an attacker's key, 32 bytes long!", claims(&user.id, "user", 300));
    let wrong_audience = sign(
        &kid,
        &key,
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
