//! What every use-case test needs: in-memory adapters, requests as the HTTP
//! layer hands them over, signed-in principals, and stored fixtures.

#![allow(dead_code)] // Each test file uses its own part.

use std::sync::Arc;
use std::time::Duration;

use domain::ports::{ProductStore, UserStore};
use domain::{Product, Role, User, UserId};
use std::sync::LazyLock;

use app::caller::{access_role, subject};
use framework::auth::{CursorKeys, KeySet, Principal, PrivateKeySet, SecretCache, Tokens};
use framework::http::{ApiError, ApiRequest, ApiResponse};
use framework::pagination::Cursors;
use http::Method;
use in_memory::{Memory, contract};
use serde_json::Value;

pub fn cursor_keys() -> Arc<CursorKeys> {
    Arc::new(SecretCache::fixed(
        KeySet::parse(r#"{"active_kid":"k1","k1":"0123456789abcdef0123456789abcdef"}"#).unwrap(),
    ))
}

/// One token key pair for the whole test binary (generating is cheap, but
/// tokens issued by one call must verify in another).
static TOKEN_KEYS: LazyLock<PrivateKeySet> = LazyLock::new(|| PrivateKeySet::generate(0).unwrap());

pub fn tokens() -> Tokens {
    Tokens::issuing(
        Arc::new(SecretCache::fixed(TOKEN_KEYS.clone())),
        Arc::new(SecretCache::fixed(TOKEN_KEYS.public_keys(None).unwrap())),
        Duration::from_secs(900),
    )
}

pub fn cursors() -> Cursors {
    Cursors::new(cursor_keys())
}

/// A request with a JSON body, from `principal` (a guest when `None`).
pub fn request(method: Method, principal: Option<&User>, body: Option<Value>) -> ApiRequest {
    let mut request = ApiRequest::new(method);
    request.principal =
        principal.map(|user| Principal { subject: subject(user.id), role: access_role(user.role), mfa: false });
    request.client_ip = "198.51.100.7".into();
    if let Some(body) = body {
        request.headers.insert("content-type", "application/json".parse().unwrap());
        request.body = body.to_string().into_bytes();
    }
    request
}

pub fn with_path(mut request: ApiRequest, id: impl ToString) -> ApiRequest {
    request.path_params.insert("id".into(), id.to_string());
    request
}

pub fn with_header(mut request: ApiRequest, name: &'static str, value: &str) -> ApiRequest {
    request.headers.insert(name, value.parse().unwrap());
    request
}

pub fn with_query(mut request: ApiRequest, name: &str, value: &str) -> ApiRequest {
    request.query.insert(name.into(), value.into());
    request
}

/// A stored user with `role`, its email verified.
pub async fn user(memory: &Memory, role: Role) -> User {
    let mut user = contract::new_user("usecase");
    user.role = role;
    user.email_verified = true;
    memory.users().insert(&user, None).await.unwrap();
    user
}

/// A stored active product.
pub async fn product(memory: &Memory, price_minor: i64, stock: i64) -> Product {
    let product = contract::new_product(price_minor, stock);
    memory.products().insert(&product).await.unwrap();
    product
}

pub fn body(response: &ApiResponse) -> Value {
    response.body.clone().unwrap_or(Value::Null)
}

pub fn header<'a>(response: &'a ApiResponse, name: &str) -> Option<&'a str> {
    response.headers.iter().find(|(n, _)| n == name).and_then(|(_, v)| v.to_str().ok())
}

pub fn id(response: &ApiResponse) -> String {
    body(response)["id"].as_str().unwrap().to_owned()
}

pub fn user_id(response: &ApiResponse) -> UserId {
    UserId::parse(&id(response)).unwrap()
}

/// Registration on `memory`, as the register function wires it, with links
/// to `https://shop.example.com` that work for an hour.
pub fn registration(
    memory: &Memory,
) -> app::registration::Registration<
    in_memory::MemoryUserStore,
    in_memory::MemoryVerifications,
    in_memory::MemoryThrottle,
> {
    let limit = app::registration::EMAILS_PER_ADDRESS;
    app::registration::Registration {
        users: memory.users(),
        verifications: memory.verifications(),
        emails_per_address: memory.throttle(limit.name, limit.attempts, limit.window),
        links: app::registration::Links {
            base_url: "https://shop.example.com".into(),
            ttl: domain::VerificationTtl::new(3600).unwrap(),
        },
    }
}

/// POST /auth/register of `email` and `password`, with `key` as its Idempotency-Key if given.
pub async fn register(
    memory: &Memory,
    email: &str,
    password: &str,
    key: Option<&str>,
) -> Result<ApiResponse, ApiError> {
    let mut request = request(Method::POST, None, Some(serde_json::json!({"email": email, "password": password})));
    if let Some(key) = key {
        request = with_header(request, "idempotency-key", key);
    }
    let hasher = framework::auth::PasswordHasher::new();
    app::registration::register(request, &registration(memory), &memory.idempotency(), &hasher, &memory.publisher())
        .await
        .map_err(ApiError::from)
}

/// The second factor's store and attempt limits (as login and the TOTP routes wire them), on `memory`.
pub fn second_factors(
    memory: &Memory,
) -> app::mfa::SecondFactors<in_memory::MemorySecondFactorStore, in_memory::MemoryThrottle> {
    let throttle = |limit: adapters::throttle::Limit| memory.throttle(limit.name, limit.attempts, limit.window);
    app::mfa::SecondFactors {
        store: memory.second_factors(),
        attempts: throttle(app::mfa::CODE_ATTEMPTS),
        daily_attempts: throttle(app::mfa::CODE_ATTEMPTS_PER_DAY),
    }
}
