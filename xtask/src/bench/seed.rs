//! What the measured routes need in the bench's private local cloud, so that
//! every implementation does the route's full work on the sample event
//! instead of answering 401 or 404 early: 25 active products with stock (more
//! than one page of 20, so a listing also seals a next-page cursor), a user
//! and an admin (login signs in as the user), fresh tokens signed with
//! the local secret's active key, and a session of the user whose refresh
//! token starts refresh-session's chain ([`super::refresh`]).

use std::sync::Arc;
use std::time::Duration;

use adapters::dynamo::{DynamoProductStore, DynamoSessionStore, DynamoUserStore, Table};
use anyhow::Context;
use app::caller::{access_role, subject};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::ports::ProductStore;
use domain::{Email, Password, ProductDraft, ProductId, RefreshLifetime, Role};
use framework::auth::{PasswordHasher, PrivateKeys, PublicKeys, Tokens};
use local_cloud::cloud::LocalCloud;
use serde_json::Value;

use crate::project_root;

/// Products seeded: one more page than the sample listing's `limit=20`.
const PRODUCTS: usize = 25;
/// The seeded customer and admin, and their password.
const USER_EMAIL: &str = "bench-user@example.com";
const ADMIN_EMAIL: &str = "bench-admin@example.com";
const PASSWORD: &str = "bench-password-not-secret";
/// Long enough for any bench run; the functions do not cap a token's lifetime.
const TOKEN_TTL: Duration = Duration::from_secs(6 * 3600);

pub struct Seeded {
    /// The product the get-product and place-order events name.
    pub product_id: ProductId,
    user_token: String,
    admin_token: String,
    /// The first refresh token of the user's seeded session, used by no request yet.
    first_refresh_token: String,
}

fn env_value<'a>(env: &'a [(String, String)], name: &str) -> anyhow::Result<&'a str> {
    env.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .with_context(|| format!("{name} is not in the function environment"))
}

pub async fn seed(cloud: &LocalCloud, env: &[(String, String)]) -> anyhow::Result<Seeded> {
    let config =
        local_cloud::cloud::base_sdk_config().await.into_builder().endpoint_url(cloud.dynamodb_endpoint()).build();
    let table = Table::from_config(&config, env_value(env, "TABLE_NAME")?);

    let users = DynamoUserStore::new(table.clone());
    let hasher = PasswordHasher::new();
    let password = Password::parse_new(PASSWORD.into()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut accounts = Vec::new();
    for (email, role) in [(USER_EMAIL, Role::User), (ADMIN_EMAIL, Role::Admin)] {
        let email = Email::parse(email).map_err(|e| anyhow::anyhow!("{e}"))?;
        let (user, _event) = app::auth::create_user(&users, &hasher, email, &password, role, "bench")
            .await
            .map_err(|e| anyhow::anyhow!("seeding a {role:?}: {e}"))?;
        accounts.push(user);
    }
    // One session of the user, as a login starts it; refresh-session's
    // requests rotate it, one after the other.
    let sessions = app::sessions::Sessions {
        store: DynamoSessionStore::new(table.clone()),
        lifetime: RefreshLifetime::new(TOKEN_TTL).map_err(|e| anyhow::anyhow!("{e}"))?,
    };
    let first_refresh_token = app::sessions::start(&sessions, &accounts[0], false, time::OffsetDateTime::now_utc())
        .await
        .map_err(|e| anyhow::anyhow!("seeding the user's session: {e}"))?
        .token;
    let accounts: Vec<_> = accounts.into_iter().map(|user| user.id).collect();

    let products = DynamoProductStore::new(table);
    let mut product_id = None;
    for index in 0..PRODUCTS {
        let draft = ProductDraft::parse(
            &format!("BENCH-{index:03}"),
            &format!("Bench product {index}"),
            Some("Seeded by cargo xtask bench"),
            1999 + index as i64,
            "EUR",
            1_000_000,
            Some(true),
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let product = draft.into_product(time::OffsetDateTime::now_utc());
        products.insert(&product).await.map_err(|e| anyhow::anyhow!("seeding a product: {e}"))?;
        product_id.get_or_insert(product.id);
    }

    let secrets = cloud.secrets_manager().await;
    // Locally the private key secret has no resource policy: the bench signs its own tokens.
    let private = PrivateKeys::from_secrets_manager(
        secrets.clone(),
        env_value(env, "TOKEN_SIGNING_KEY_SECRET_ID")?.to_owned(),
        TOKEN_TTL,
    );
    let public =
        PublicKeys::from_secrets_manager(secrets, env_value(env, "TOKEN_PUBLIC_KEYS_SECRET_ID")?.to_owned(), TOKEN_TTL);
    let tokens = Tokens::issuing(Arc::new(private), Arc::new(public), TOKEN_TTL);
    let (user, admin) = (subject(accounts[0]), subject(accounts[1]));
    let user_token = tokens.issue(user, access_role(Role::User)).await.context("signing the bench user's token")?.token;
    let admin_token =
        tokens.issue(admin, access_role(Role::Admin)).await.context("signing the bench admin's token")?.token;
    Ok(Seeded { product_id: product_id.context("no product seeded")?, user_token, admin_token, first_refresh_token })
}

impl Seeded {
    /// `events/<function>.json` made to work on the seeded data: a sample
    /// bearer token is replaced by a fresh one of the same role (the admin's
    /// for a function whose `main` serves `Access::Admin`); the
    /// get-product and place-order events name a seeded product, and the
    /// place-order event's fixed `Idempotency-Key` becomes one per request
    /// (with a fixed one, every request after the first would be a replay).
    pub fn event(&self, function: &str) -> anyhow::Result<Vec<u8>> {
        let path = project_root().join(format!("events/{function}.json"));
        let mut event: Value =
            serde_json::from_slice(&std::fs::read(&path)?).with_context(|| format!("reading {}", path.display()))?;
        let main = project_root().join(format!("functions/{function}/src/main.rs"));
        let admin_only = std::fs::read_to_string(main).is_ok_and(|source| source.contains("Access::Admin"));
        self.refresh_token(&mut event, admin_only);
        let id = self.product_id.to_string();
        match function {
            "get-product" => {
                let path = format!("/api/v1/products/{id}");
                event["path"] = path.clone().into();
                event["pathParameters"]["id"] = id.into();
                event["requestContext"]["path"] = format!("/v1{path}").into();
            }
            "place-order" => {
                event["body"] = serde_json::json!({"lines": [{"product_id": id, "quantity": 2}]}).to_string().into();
                let key = super::emulator::REQUEST_KEY;
                for headers in ["headers", "multiValueHeaders"] {
                    if let Some(headers) = event[headers].as_object_mut() {
                        headers.retain(|name, _| !name.eq_ignore_ascii_case("idempotency-key"));
                    }
                }
                event["headers"]["Idempotency-Key"] = key.into();
                event["multiValueHeaders"]["Idempotency-Key"] = serde_json::json!([key]);
            }
            // The seeded user's own credentials: every request checks the
            // password (argon2) and answers 200, as a real login does. The
            // sample's unknown account would be throttled after five
            // attempts, so the warm figure would time the 429 instead.
            "login" => {
                event["body"] = serde_json::json!({"email": USER_EMAIL, "password": PASSWORD}).to_string().into();
            }
            _ => {}
        }
        Ok(serde_json::to_vec(&event)?)
    }

    /// refresh-session's events: its sample, carrying the seeded session's
    /// refresh token first and then each one the answer before handed out.
    pub fn refresh_chain(&self) -> anyhow::Result<super::refresh::RefreshChain> {
        super::refresh::RefreshChain::new(&self.event(super::refresh::FUNCTION)?, &self.first_refresh_token)
    }

    fn refresh_token(&self, event: &mut Value, admin_only: bool) {
        let Some(headers) = event["headers"].as_object() else { return };
        let Some((name, sample)) = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("authorization")) else {
            return;
        };
        let name = name.clone();
        let role = sample
            .as_str()
            .and_then(|v| v.strip_prefix("Bearer "))
            .and_then(|token| token.split('.').nth(1))
            .and_then(|claims| URL_SAFE_NO_PAD.decode(claims).ok())
            .and_then(|claims| serde_json::from_slice::<Value>(&claims).ok())
            .and_then(|claims| claims["role"].as_str().map(str::to_owned));
        let token = if admin_only || role.as_deref() == Some("admin") { &self.admin_token } else { &self.user_token };
        let value = format!("Bearer {token}");
        event["headers"][&name] = value.clone().into();
        if let Some(multi) = event["multiValueHeaders"].as_object_mut()
            && let Some(key) = multi.keys().find(|k| k.eq_ignore_ascii_case("authorization")).cloned()
        {
            multi.insert(key, Value::Array(vec![value.into()]));
        }
    }
}
