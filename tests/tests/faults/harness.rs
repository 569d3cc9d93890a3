//! Starting one function with one endpoint behind a fault proxy, and the
//! events and tokens to drive it.

use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use local_cloud::faults::FaultProxy;
use local_cloud::lambda::FunctionProcess;
use serde_json::{Value, json};

/// The functions' timeout (the template's `Timeout`).
pub const TIMEOUT: Duration = Duration::from_secs(10);

pub use tests::helpers::env;

/// A proxy in front of the endpoint the functions reach through `variable`
/// (`AWS_ENDPOINT_URL_DYNAMODB`, `..._SQS`, ...), passing everything for now.
pub async fn proxy(variable: &str) -> FaultProxy {
    FaultProxy::start(env(variable)).await.expect("the fault proxy starts")
}

/// `name` (a function of this workspace) with the shared stack's environment,
/// but `overrides` applied: typically one endpoint pointed at a proxy.
pub async fn start(name: &str, overrides: &[(&str, String)]) -> FunctionProcess {
    start_logging(name, overrides, None).await
}

/// As [`start`], with the function's log lines written to `log`.
pub async fn start_logging(name: &str, overrides: &[(&str, String)], log: Option<PathBuf>) -> FunctionProcess {
    let mut command = FunctionProcess::binary(name);
    if let Some(log) = log {
        command.stdout(std::fs::File::create(log).unwrap());
    }
    let overrides: Vec<(String, String)> = overrides.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    let timeout = overrides
        .iter()
        .find(|(k, _)| k == "FUNCTION_TIMEOUT_SECONDS")
        .map_or(TIMEOUT, |(_, v)| Duration::from_secs(v.parse().unwrap()));
    FunctionProcess::start(name, command, &overrides, timeout).await.expect("the function starts")
}

/// The sample event of `function` (events/<function>.json).
pub fn sample_event(function: &str) -> Value {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    serde_json::from_str(&std::fs::read_to_string(root.join(format!("events/{function}.json"))).unwrap()).unwrap()
}

/// A token for `user_id` with `role`, signed (EdDSA) with the local
/// private key set's active key, as login signs it.
pub async fn token(user_id: &str, role: &str) -> String {
    let keys = tests::helpers::token_keys().await;
    let (kid, der) = keys.active().unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims =
        json!({"sub": user_id, "role": role, "iss": "shop-api", "aud": "shop-api", "iat": now, "exp": now + 600});
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(&der)).unwrap()
}

/// An API Gateway event carrying `token`.
pub fn with_token(mut event: Value, token: &str) -> Value {
    event["headers"]["Authorization"] = Value::String(format!("Bearer {token}"));
    if let Some(multi) = event.get_mut("multiValueHeaders").and_then(Value::as_object_mut) {
        multi.insert("Authorization".into(), json!([format!("Bearer {token}")]));
    }
    event
}

/// An API Gateway event for `method path` with a JSON `body`.
pub fn api_event(function: &str, body: &Value, token: &str) -> Value {
    let mut event = with_token(sample_event(function), token);
    event["body"] = Value::String(body.to_string());
    event
}

/// `event` with an `Idempotency-Key` no other request used: a new operation.
pub fn with_fresh_key(mut event: Value) -> Value {
    let key = ulid::Ulid::new().to_string();
    event["headers"]["Idempotency-Key"] = json!(key);
    if let Some(multi) = event.get_mut("multiValueHeaders").and_then(Value::as_object_mut) {
        multi.insert("Idempotency-Key".into(), json!([key]));
    }
    event
}

/// The status and (lower-cased) headers of an API function's proxy response.
pub fn status_and_headers(response: &Value) -> (u64, serde_json::Map<String, Value>) {
    let status = response["statusCode"].as_u64().unwrap_or_else(|| panic!("not a proxy response: {response}"));
    let mut headers = serde_json::Map::new();
    for source in ["headers", "multiValueHeaders"] {
        for (name, value) in response[source].as_object().into_iter().flatten() {
            let value = value.as_array().and_then(|v| v.first()).unwrap_or(value).clone();
            headers.insert(name.to_lowercase(), value);
        }
    }
    (status, headers)
}
