//! One way into the running system for every black-box test: `TestApp`,
//! talking HTTP to the functions that `cargo xtask test` started, plus the
//! few direct doors a test needs (making an admin, reading the signing key).

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
}

/// A signed-in account created for one test.
pub struct TestUser {
    pub id: String,
    pub email: String,
    pub token: String,
}

/// The local stack's setting `name` (set by `cargo xtask test`). Without a
/// stack, as under a plain `cargo test`, the test binary cannot run: it says
/// so in one line and ends successfully, its tests skipped.
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        // With the local cloud up, a missing variable is a broken test, never
        // a skip: skipping ends the process with success and would hide every
        // failure of the binary's other tests.
        assert!(std::env::var_os("SHOP_API_URL").is_none(), "{name} is not set, though the local cloud is running");
        skip_without_the_local_cloud()
    })
}

/// Skips this test binary (see [`env`]) unless a local stack is running.
pub fn require_local_cloud() {
    let _ = env("SHOP_API_URL");
}

fn skip_without_the_local_cloud() -> ! {
    use std::io::Write;
    // The first test thread here says it and ends the process; the others wait.
    static SKIPPING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _once = SKIPPING.lock();
    let binary = std::env::args().next().unwrap_or_default();
    let name = std::path::Path::new(&binary).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let name = name.rsplit_once('-').map_or(name.as_str(), |(name, _hash)| name).to_owned();
    // Straight to stderr: the test harness captures `eprintln!` of passing tests.
    let _ = writeln!(std::io::stderr(), "{name}: skipped: these tests need the local cloud; run `cargo xtask test`");
    std::process::exit(0)
}

/// A client for one test. Not shared: each `#[tokio::test]` has its own
/// runtime, and a pooled connection must not outlive the runtime it was made on.
///
/// Each client also has its own address (sent as X-Forwarded-For, which the
/// local stack trusts), so the per-IP rate limit counts each test on its own,
/// as it would count separate customers.
pub fn app() -> TestApp {
    let bytes = ulid::Ulid::new().random().to_be_bytes();
    let address = std::net::Ipv4Addr::new(10, bytes[15], bytes[14], bytes[13]);
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", address.to_string().parse().unwrap());
    let client = reqwest::Client::builder().default_headers(headers).build().unwrap();
    TestApp { base: env("SHOP_API_URL"), client }
}

/// An email no other test (or earlier run) uses.
/// A SKU no other run uses: `tag` and the random tail of a ULID.
pub fn unique_sku(tag: &str) -> String {
    format!("{tag}-{}", &ulid::Ulid::new().to_string()[16..])
}

pub fn unique_email(tag: &str) -> String {
    format!("{tag}.{}@example.com", ulid::Ulid::new().to_string().to_lowercase())
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    pub async fn request(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Response {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("the API answers")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.request(Method::GET, path, token, None).await
    }

    /// POST `body` as a careful client does: with an `Idempotency-Key` of
    /// its own, so each call is a new operation (`POST /orders` requires one).
    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        let mut request = self.client.post(self.url(path)).header("idempotency-key", ulid::Ulid::new().to_string());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.json(&body).send().await.expect("the API answers")
    }

    pub async fn register(&self, email: &str, password: &str) -> Response {
        self.post("/auth/register", None, json!({"email": email, "password": password})).await
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post("/auth/login", None, json!({"email": email, "password": password})).await
    }

    pub async fn token_for(&self, email: &str) -> String {
        let response = self.login(email, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        body["token"].as_str().expect("token").to_owned()
    }

    /// A registered customer whose address is verified (through the
    /// operator's door, not the emailed link: `verification.rs` follows the
    /// link), signed in.
    pub async fn new_user(&self, tag: &str) -> TestUser {
        let user = self.new_unverified_user(tag).await;
        let email = domain::Email::parse(&user.email).unwrap();
        app::registration::mark_verified(&user_store().await, &email).await.expect("verified");
        user
    }

    /// A registered customer who has not followed the verification link, signed in.
    pub async fn new_unverified_user(&self, tag: &str) -> TestUser {
        let email = unique_email(tag);
        let response = self.register(&email, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let parsed = domain::Email::parse(&email).unwrap();
        let user =
            domain::ports::UserStore::find_by_email(&user_store().await, &parsed).await.unwrap().expect("registered");
        let token = self.token_for(&email).await;
        TestUser { id: user.id.to_string(), email, token }
    }

    /// An active product of a SKU unique to this run (`tag` and a random
    /// tail), priced in EUR, created as `admin_token`; returns its JSON.
    pub async fn new_product(&self, admin_token: &str, tag: &str, price_minor: i64, stock: i64) -> Value {
        let body = json!({"sku": unique_sku(tag), "name": format!("Product {tag}"),
            "price": {"amount_minor": price_minor, "currency": "EUR"}, "stock": stock});
        let response = self.post("/products", Some(admin_token), body).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }

    /// Admins cannot register; like an operator, the test makes one directly
    /// in the table (the same code path as `cargo xtask create-admin`).
    pub async fn new_admin(&self, tag: &str) -> TestUser {
        let email = unique_email(tag);
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let users =
            adapters::dynamo::DynamoUserStore::new(adapters::dynamo::Table::from_config(&config, env("TABLE_NAME")));
        let hasher = framework::auth::PasswordHasher::new();
        let parsed_email = domain::Email::parse(&email).unwrap();
        let password = domain::Password::parse_new(PASSWORD.into()).unwrap();
        let (user, _event) =
            app::auth::create_user(&users, &hasher, parsed_email, &password, domain::Role::Admin, "test")
                .await
                .expect("admin created");
        let token = self.token_for(&email).await;
        TestUser { id: user.id.to_string(), email, token }
    }
}

/// The accounts in the local stack's table, reached directly (the operator's door).
pub async fn user_store() -> adapters::dynamo::DynamoUserStore {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    adapters::dynamo::DynamoUserStore::new(adapters::dynamo::Table::from_config(&config, env("TABLE_NAME")))
}

/// The private token keys, read from the local Secrets Manager (locally the
/// secret has no resource policy; in the cloud only login and the rotation read it).
pub async fn token_keys() -> framework::auth::PrivateKeySet {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_secretsmanager::Client::new(&config);
    let secret = client.get_secret_value().secret_id(env("TOKEN_SIGNING_KEY_SECRET_ID")).send().await.unwrap();
    <framework::auth::PrivateKeySet as framework::auth::SecretValue>::parse(secret.secret_string().unwrap()).unwrap()
}

/// Asserts the error envelope and returns its code.
pub async fn error_code(response: Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status);
    let request_id = response.headers().get("x-request-id").map(|v| v.to_str().unwrap().to_owned());
    let body: Value = response.json().await.expect("errors are JSON");
    let error = &body["error"];
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(error["details"].is_array(), "{body}");
    assert_eq!(error["request_id"].as_str(), request_id.as_deref(), "{body}");
    error["code"].as_str().expect("code").to_owned()
}

/// Emails moto's SES has accepted for `to`, waiting until there are at
/// least `expected` (or `timeout` passes). Each is `{subject, body, ...}`.
pub async fn emails_to(to: &str, expected: usize, timeout: std::time::Duration) -> Vec<Value> {
    let deadline = std::time::Instant::now() + timeout;
    let client = reqwest::Client::new();
    loop {
        let data: Value = client
            .get(format!("{}/moto-api/data.json", env("SHOP_MOTO_ENDPOINT")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let emails: Vec<Value> = data["ses"]["Message"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["destinations"]["ToAddresses"].as_array().is_some_and(|a| a.iter().any(|d| d == to)))
            .cloned()
            .collect();
        if emails.len() >= expected || std::time::Instant::now() > deadline {
            return emails;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

pub async fn sqs() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)
}

/// A CloudEvent as our producers write it.
pub fn cloud_event(kind: &str, id: &str, data: Value) -> String {
    json!({
        "specversion": "1.0", "id": id, "source": "urn:test", "type": kind,
        "time": "2026-11-25T12:00:00Z", "datacontenttype": "application/json",
        "correlationid": format!("test-{id}"), "data": data,
    })
    .to_string()
}

/// Writes an outbox record the relay cannot read (no body), under the outbox
/// key from before the shards, with `id` as its event id: what the relay must
/// park with a reason instead of stopping.
pub async fn put_unreadable_outbox_record(dynamodb: &aws_sdk_dynamodb::Client, table: &str, id: &str) {
    let text = |value: &str| aws_sdk_dynamodb::types::AttributeValue::S(value.to_owned());
    dynamodb
        .put_item()
        .table_name(table)
        .item("pk", text(&format!("OUTBOX#{id}")))
        .item("sk", text("OUTBOX"))
        .item("gsi1pk", text("OUTBOX"))
        .item("gsi1sk", text(id))
        .item("queue", text("user-created"))
        .send()
        .await
        .expect("the table takes the record");
}
