//! Floor of POST /api/v1/auth/refresh: the private signing key read during
//! init; per request, the account's GetItem and the session's conditional
//! UpdateItem (rotate the secret's hash) at once, then an EdDSA token signed.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::Mutex;

use aws_sdk_dynamodb::types::ReturnValue;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use floor::{Error, Item, Request, Table, error, forever, get_bool, get_s, is_ulid, n, respond, s};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use lambda_runtime::{LambdaEvent, service_fn};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

struct Clients {
    table: Table,
    kid: String,
    key: EncodingKey,
    access_ttl: i64,
    refresh_ttl: i64,
    secrets: Secrets,
}

/// Fresh 32-byte secrets: SHA-256 of a 32-byte seed from the kernel (read
/// once, during init) and a counter, so a request makes no system call.
struct Secrets {
    seed: [u8; 32],
    counter: Mutex<u64>,
}

impl Secrets {
    fn new() -> Result<Self, Error> {
        let mut seed = [0; 32];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut seed)?;
        Ok(Self { seed, counter: Mutex::new(0) })
    }

    fn fresh(&self) -> String {
        let mut counter = self.counter.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *counter += 1;
        let mut hash = Sha256::new();
        hash.update(self.seed);
        hash.update(counter.to_le_bytes());
        URL_SAFE_NO_PAD.encode(hash.finalize())
    }
}

#[derive(Deserialize)]
struct Body {
    refresh_token: String,
}

#[derive(Deserialize)]
struct PrivateKeySet {
    active_kid: String,
    keys: HashMap<String, String>,
}

fn seconds(name: &str, default: i64) -> Result<i64, Error> {
    Ok(std::env::var(name).ok().map(|v| v.parse()).transpose()?.unwrap_or(default))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let config = floor::sdk_config().await;
    let secret = aws_sdk_secretsmanager::Client::new(&config)
        .get_secret_value()
        .secret_id(std::env::var("TOKEN_SIGNING_KEY_SECRET_ID")?)
        .send()
        .await?;
    let set: PrivateKeySet = serde_json::from_str(secret.secret_string().unwrap_or("{}"))?;
    let der = STANDARD.decode(set.keys.get(&set.active_kid).ok_or("no active signing key")?)?;
    let clients = forever(Clients {
        table: Table::open(&config).await?,
        kid: set.active_kid,
        key: EncodingKey::from_ed_der(&der),
        access_ttl: seconds("TOKEN_TTL_SECONDS", 5 * 60)?,
        refresh_ttl: seconds("REFRESH_TOKEN_TTL_SECONDS", 14 * 24 * 60 * 60)?,
        secrets: Secrets::new()?,
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Request>| handle(clients, event.payload))).await
}

fn hash_hex(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().fold(String::with_capacity(64), |mut hex, byte| {
        use std::fmt::Write;
        let _ = write!(hex, "{byte:02x}");
        hex
    })
}

async fn handle(clients: &Clients, request: Request) -> Result<Value, Error> {
    let Clients { table, kid, key, access_ttl, refresh_ttl, secrets } = clients;
    let Ok(body) = serde_json::from_str::<Body>(request.body.as_deref().unwrap_or("")) else {
        return Ok(error(400, "malformed_json"));
    };
    let parts: Vec<&str> = body.refresh_token.split('.').collect();
    let &[user, session, secret] = parts.as_slice() else { return Ok(error(422, "validation_failed")) };
    let well_formed = secret.len() == 43 && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !is_ulid(user) || !is_ulid(session) || !well_formed {
        return Ok(error(422, "validation_failed"));
    }
    let next = secrets.fresh();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let pk = format!("USER#{user}");
    let read = table
        .client
        .get_item()
        .table_name(&table.name)
        .key("pk", s(&pk))
        .key("sk", s("USER"))
        .consistent_read(true)
        .send();
    let rotate = table
        .client
        .update_item()
        .table_name(&table.name)
        .set_key(Some(Item::from([("pk".into(), s(&pk)), ("sk".into(), s(format!("SESSION#{session}")))])))
        .update_expression("SET secret_hash = :next, expires_at = :expires")
        .condition_expression("secret_hash = :presented AND expires_at > :now")
        .expression_attribute_values(":next", s(hash_hex(&next)))
        .expression_attribute_values(":expires", n(now + refresh_ttl))
        .expression_attribute_values(":presented", s(hash_hex(secret)))
        .expression_attribute_values(":now", n(now))
        .return_values(ReturnValue::AllNew)
        .send();
    // Boxed: the two SDK futures side by side would make every request's future 16 KB.
    let (account, rotated) = tokio::join!(Box::pin(read), Box::pin(rotate));
    let Ok(rotated) = rotated else { return Ok(error(401, "invalid_token")) };
    let (Some(account), Some(session_item)) = (account?.item, rotated.attributes) else {
        return Ok(error(401, "invalid_token"));
    };
    let role = get_s(&account, "role");
    if get_bool(&account, "disabled") || role != get_s(&session_item, "role") {
        return Ok(error(401, "invalid_token"));
    }
    let claims = BTreeMap::from([
        ("sub", json!(user)),
        ("role", json!(role)),
        ("iss", json!("shop-api")),
        ("aud", json!("shop-api")),
        ("iat", json!(now)),
        ("exp", json!(now + access_ttl)),
        ("mfa", json!(get_bool(&session_item, "mfa"))),
    ]);
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.clone());
    let token = jsonwebtoken::encode(&header, &claims, key)?;
    let body = json!({
        "token": token,
        "token_type": "Bearer",
        "expires_in": access_ttl,
        "refresh_token": format!("{user}.{session}.{next}"),
        "refresh_expires_in": refresh_ttl,
    });
    Ok(respond(200, &body, &[]))
}
