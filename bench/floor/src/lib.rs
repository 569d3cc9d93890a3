//! What the floor binaries share. A floor is the least a Rust function can do
//! for its route: read its configuration from the environment, build the SDK
//! clients once in `main`, open the DynamoDB connection with one read during
//! init (as the project's functions do), then make the route's own AWS calls
//! per request and nothing else: no rate limit, no logging, no metrics, a
//! plain serde view of the API Gateway event and a minimal JSON answer.
//! `cargo xtask bench` compares each project function with its floor.

use std::collections::HashMap;
use std::pin::Pin;
use std::task::Poll;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;

pub type Error = lambda_runtime::Error;
pub type Item = HashMap<String, AttributeValue>;

/// Keeps `value` for the life of the process.
pub fn forever<T>(value: T) -> &'static T {
    Box::leak(Box::new(value))
}

/// The parts of an API Gateway REST proxy event the routes read.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    #[serde(default)]
    headers: Option<HashMap<String, String>>,
    #[serde(default)]
    path_parameters: Option<HashMap<String, String>>,
    #[serde(default)]
    query_string_parameters: Option<HashMap<String, String>>,
    #[serde(default)]
    pub body: Option<String>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.as_ref()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn path_param(&self, name: &str) -> Option<&str> {
        self.path_parameters.as_ref()?.get(name).map(String::as_str)
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query_string_parameters.as_ref()?.get(name).map(String::as_str)
    }
}

/// An API Gateway proxy response with a JSON body.
pub fn respond(status: u16, body: &Value, headers: &[(&str, String)]) -> Value {
    let mut map = serde_json::Map::new();
    map.insert("content-type".into(), "application/json".into());
    for (name, value) in headers {
        map.insert((*name).into(), value.clone().into());
    }
    json!({"statusCode": status, "headers": map, "body": body.to_string(), "isBase64Encoded": false})
}

pub fn error(status: u16, code: &str) -> Value {
    respond(status, &json!({"error": {"code": code}}), &[])
}

/// Region, credentials and endpoints the standard way (`AWS_ENDPOINT_URL_<SERVICE>` locally).
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// The table and its client.
pub struct Table {
    pub client: aws_sdk_dynamodb::Client,
    pub name: String,
}

impl Table {
    /// The client for `TABLE_NAME`, its connection opened by one cheap read
    /// (the same warm-up read the project's functions make during init).
    pub async fn open(config: &aws_config::SdkConfig) -> Result<Self, Error> {
        let table = Self { client: aws_sdk_dynamodb::Client::new(config), name: std::env::var("TABLE_NAME")? };
        let _ =
            table.client.get_item().table_name(&table.name).key("pk", s("WARMUP")).key("sk", s("WARMUP")).send().await;
        Ok(table)
    }
}

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub fn get_s<'a>(item: &'a Item, name: &str) -> &'a str {
    item.get(name).and_then(|v| v.as_s().ok()).map_or("", String::as_str)
}

pub fn get_n(item: &Item, name: &str) -> u64 {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

pub fn get_bool(item: &Item, name: &str) -> bool {
    item.get(name).and_then(|v| v.as_bool().ok()).copied().unwrap_or(false)
}

/// A ULID in its one canonical spelling.
pub fn is_ulid(raw: &str) -> bool {
    ulid::Ulid::from_string(raw).is_ok_and(|id| id.to_string() == raw)
}

/// Runs `futures` concurrently within the calling task and collects their
/// values in order, the first error ending it: what the project's
/// `futures::future::try_join_all` does for a few futures (each not yet
/// done is polled on every wake-up), without the dependency.
pub async fn try_join_all<T, E, F>(futures: impl IntoIterator<Item = F>) -> Result<Vec<T>, E>
where
    F: Future<Output = Result<T, E>>,
{
    let mut pending: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<T>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all_done = true;
        for (future, slot) in pending.iter_mut().zip(done.iter_mut()) {
            if slot.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(Ok(value)) => *slot = Some(value),
                    Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                    Poll::Pending => all_done = false,
                }
            }
        }
        if all_done { Poll::Ready(Ok(done.iter_mut().filter_map(Option::take).collect())) } else { Poll::Pending }
    })
    .await
}

/// The partitions the catalogue listing is spread over, and those of what
/// every order writes (the listings across owners, their counters, the
/// outbox): shared/adapters/src/dynamo/layout.rs.
pub const PRODUCT_SHARDS: u8 = 16;
pub const SHARDS: u8 = 64;

/// The shard of the item whose id is `id` among `count`: FNV-1a of the id, as the project picks it.
pub fn shard_of(id: &str, count: u8) -> u8 {
    let hash = id
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3));
    u8::try_from(hash % u64::from(count)).expect("below the count")
}

/// `base` in `shard`: `base#07`, or `base` itself for the partition from before the shards.
pub fn shard_name(base: &str, shard: Option<u8>) -> String {
    shard.map_or_else(|| base.to_owned(), |shard| format!("{base}#{shard:02}"))
}

pub fn product_key(id: &str) -> Item {
    Item::from([("pk".into(), s(format!("PRODUCT#{id}"))), ("sk".into(), s("PRODUCT"))])
}

/// The product as the API shows it.
pub fn product_json(item: &Item) -> Value {
    json!({
        "id": get_s(item, "id"),
        "sku": get_s(item, "sku"),
        "name": get_s(item, "name"),
        "description": get_s(item, "description"),
        "price": {"amount_minor": get_n(item, "price_minor"), "currency": get_s(item, "currency")},
        "stock": get_n(item, "stock"),
        "active": get_bool(item, "active"),
        "created_at": get_s(item, "created_at"),
        "updated_at": get_s(item, "updated_at"),
        "version": get_n(item, "version"),
    })
}

/// The cursor key (`{"active_kid": "k1", "k1": "<secret>", ...}`, the secret
/// `CURSOR_KEY_SECRET_ID` names), read once from Secrets Manager during init.
pub struct Keys {
    active_kid: String,
    keys: HashMap<String, String>,
}

/// The public token keys (`{"keys": {"<kid>": "<base64url raw Ed25519 key>"}}`,
/// the secret `TOKEN_PUBLIC_KEYS_SECRET_ID` names), read once during init.
pub struct PublicKeys {
    keys: HashMap<String, DecodingKey>,
}

impl PublicKeys {
    pub async fn read(config: &aws_config::SdkConfig) -> Result<Self, Error> {
        #[derive(Deserialize)]
        struct Set {
            keys: HashMap<String, String>,
        }
        let client = aws_sdk_secretsmanager::Client::new(config);
        let secret = client.get_secret_value().secret_id(std::env::var("TOKEN_PUBLIC_KEYS_SECRET_ID")?).send().await?;
        let set: Set = serde_json::from_str(secret.secret_string().unwrap_or("{}"))?;
        let mut keys = HashMap::new();
        for (kid, x) in set.keys {
            keys.insert(kid, DecodingKey::from_ed_der(&URL_SAFE_NO_PAD.decode(x)?));
        }
        Ok(Self { keys })
    }

    /// The user id of a valid `Authorization: Bearer <EdDSA JWT with kid>`.
    pub fn verify(&self, authorization: Option<&str>) -> Option<String> {
        #[derive(Deserialize)]
        struct Claims {
            sub: String,
        }
        let token = authorization?.strip_prefix("Bearer ")?;
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.alg != Algorithm::EdDSA {
            return None;
        }
        let key = self.keys.get(header.kid.as_deref()?)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&["shop-api"]);
        validation.set_audience(&["shop-api"]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        let claims = jsonwebtoken::decode::<Claims>(token, key, &validation).ok()?.claims;
        is_ulid(&claims.sub).then_some(claims.sub)
    }
}

impl Keys {
    pub async fn read(config: &aws_config::SdkConfig) -> Result<Self, Error> {
        let client = aws_sdk_secretsmanager::Client::new(config);
        let secret = client.get_secret_value().secret_id(std::env::var("CURSOR_KEY_SECRET_ID")?).send().await?;
        let mut keys: HashMap<String, String> = serde_json::from_str(secret.secret_string().unwrap_or("{}"))?;
        let active_kid = keys.remove("active_kid").ok_or("no active_kid")?;
        Ok(Self { active_kid, keys })
    }

    /// A pagination cursor in the project's format (shared/framework/src/cursor.rs).
    pub fn seal_cursor(&self, scope: &str, position: &str) -> String {
        let secret = self.keys.get(&self.active_kid).map_or(&[][..], String::as_bytes);
        let mut derive = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key");
        derive.update(b"shop pagination cursor v1");
        let key = derive.finalize().into_bytes();
        let payload = URL_SAFE_NO_PAD.encode(format!(r#"{{"s":{},"p":{}}}"#, json!(scope), json!(position)));
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key");
        mac.update(payload.as_bytes());
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }
}
