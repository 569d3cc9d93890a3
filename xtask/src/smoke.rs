//! `cargo xtask smoke`: a short, safe, self-cleaning black-box journey
//! against a deployed (or local) API, with a one-line verdict: health (and
//! which build answers), a sign-up at an address of its own (answered 202;
//! its verification email goes to SES's mailbox simulator, so the account
//! stays unverified), sign-in, the catalogue, one product, the unverified
//! account's order refused (403 `email_unverified`), and with admin
//! credentials an order placed by the admin (verified: made by the operator)
//! with an Idempotency-Key and cancelled (its stock returns) and the user
//! list (the smoke account is then disabled). With `--stack`, the stack's
//! dead-letter queues must be empty. Run by the pipeline after each deploy
//! and by `cargo xtask test` against its local stack.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::distr::{Alphanumeric, SampleString};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The journey's steps; a filtered `cargo xtask test` run whose filter is
/// part of this runs the journey too.
pub const JOURNEY: &str = "smoke: health register login products product order cancel users dead-letters";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The API's base URL: the stack's ApiUrl output (`https://.../v1`), or
    /// a local stack's; `/api/v1` is appended unless it ends with it.
    #[arg(long)]
    pub url: String,
    /// An admin's email: the journey then reads /users and disables its own account.
    #[arg(long)]
    pub admin_email: Option<String>,
    /// The variable holding that admin's password (never a command-line value).
    #[arg(long, requires = "admin_email")]
    pub admin_password_env: Option<String>,
    /// The deployed stack's name: its dead-letter queues must be empty.
    #[arg(long)]
    pub stack: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let admin = match (&args.admin_email, &args.admin_password_env) {
        (Some(email), Some(variable)) => {
            let password = std::env::var(variable).with_context(|| format!("{variable} is not set"))?;
            Some((email.clone(), password))
        }
        (Some(_), None) => bail!("--admin-email needs --admin-password-env"),
        _ => None,
    };
    let dead_letters = args.stack.as_ref().map(|stack| DeadLetters::Stack(stack.clone()));
    let passed = journey(&args.url, admin, dead_letters).await;
    Ok(if passed { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The journey against a local stack of `cargo xtask test`, with an admin
/// made for it and the stack's own dead-letter queues left to the suite's
/// checks (its fault tests park messages on purpose).
pub async fn against_local(stack: &local_cloud::stack::LocalStack) -> bool {
    eprintln!("\nxtask: smoke: the post-deploy journey against the local stack");
    let admin = match local_admin(stack).await {
        Ok(admin) => admin,
        Err(error) => {
            eprintln!("xtask: smoke: could not make its admin: {error:#}");
            return false;
        }
    };
    journey(&stack.api_url, Some(admin), None).await
}

async fn local_admin(stack: &local_cloud::stack::LocalStack) -> anyhow::Result<(String, String)> {
    let env: std::collections::BTreeMap<String, String> = stack.env.iter().cloned().collect();
    let settings = adapters::config::ShopSettings::from_lookup(|name| env.get(name).cloned())?;
    let table = adapters::dynamo::Table::new(stack.cloud.dynamodb().await, settings.table_name.clone());
    let users = adapters::dynamo::DynamoUserStore::new(table.clone());
    // A product in stock, as a deployed shop has, so the order steps run.
    let sku = format!("SMOKE-{}", &ulid::Ulid::new().to_string()[16..]);
    let product = domain::ProductDraft::parse(&sku, "Smoke test mug", None, 100, "EUR", 1000, Some(true))
        .map_err(|error| anyhow::anyhow!("{error}"))?
        .into_product(time::OffsetDateTime::now_utc());
    domain::ports::ProductStore::insert(&adapters::dynamo::DynamoProductStore::new(table), &product).await?;
    let email = format!("smoke-admin-{}@example.com", ulid::Ulid::new().to_string().to_lowercase());
    let password = Alphanumeric.sample_string(&mut rand::rng(), 24);
    let parsed_email = domain::Email::parse(&email).map_err(|error| anyhow::anyhow!("{error}"))?;
    let parsed_password =
        domain::Password::parse_admin(password.clone()).map_err(|error| anyhow::anyhow!("{error}"))?;
    app::auth::create_user(
        &users,
        &framework::auth::PasswordHasher::new(),
        parsed_email,
        &parsed_password,
        domain::Role::Admin,
        "smoke",
    )
    .await
    .map_err(|error| anyhow::anyhow!("{error}"))?;
    Ok((email, password))
}

enum DeadLetters {
    Stack(String),
}

/// Runs every step, prints one line per step and the verdict; true if all passed.
async fn journey(url: &str, admin: Option<(String, String)>, dead_letters: Option<DeadLetters>) -> bool {
    let started = Instant::now();
    let base = api_base(url);
    let mut smoke = Smoke { client: Api::new(&base), steps: 0, build: String::new() };
    let outcome = smoke.steps(admin, dead_letters).await;
    let elapsed = started.elapsed();
    match outcome {
        Ok(()) => {
            println!("smoke: PASSED {} steps in {elapsed:.1?} against {base} ({})", smoke.steps, smoke.build);
            true
        }
        Err(error) => {
            println!("smoke: FAILED after {} steps in {elapsed:.1?} against {base}: {error:#}", smoke.steps);
            false
        }
    }
}

/// `…/v1` (the stack's ApiUrl) or a local front's root, as the API's root.
fn api_base(url: &str) -> String {
    let url = url.trim_end_matches('/');
    if url.ends_with("/api/v1") { url.to_owned() } else { format!("{url}/api/v1") }
}

struct Smoke {
    client: Api,
    steps: usize,
    /// "version 0.2.0, commit abc1234", from /health.
    build: String,
}

impl Smoke {
    fn passed(&mut self, step: &str, detail: &str) {
        self.steps += 1;
        eprintln!("  ok   {step}: {detail}");
    }

    async fn steps(
        &mut self,
        admin: Option<(String, String)>,
        dead_letters: Option<DeadLetters>,
    ) -> anyhow::Result<()> {
        let health = self.client.call(Method::GET, "/health", None, &[], None).await?;
        health.expect("health", StatusCode::OK)?;
        let version = health.body["version"].as_str().context("health: no version in the body")?.to_owned();
        let commit = health.body["commit"].as_str().unwrap_or("unknown").to_owned();
        let header = health.header("x-api-version").unwrap_or_default();
        if header != version {
            bail!("health: x-api-version is {header:?}, the body's version {version:?}");
        }
        if let Ok(expected) = std::env::var("GITHUB_SHA")
            && commit != "unknown"
            && commit != expected
        {
            bail!("health: commit {commit} answers, this pipeline built {expected}");
        }
        self.build = format!("version {version}, commit {commit}");
        let checks = health.body["checks"].to_string();
        self.passed("health", &format!("{} ({checks})", self.build));

        // SES's mailbox simulator: a deployed stack's verification email
        // neither bounces nor reaches anyone; `+label` keeps each address unique.
        let email =
            format!("success+shop-smoke-{}@simulator.amazonses.com", ulid::Ulid::new().to_string().to_lowercase());
        let password = Alphanumeric.sample_string(&mut rand::rng(), 20);
        let credentials = json!({"email": email, "password": password});
        let key = ulid::Ulid::new().to_string();
        let registered = self
            .client
            .call(Method::POST, "/auth/register", None, &[("idempotency-key", &key)], Some(&credentials))
            .await?;
        registered.expect("register", StatusCode::ACCEPTED)?;
        self.passed("register", "a new, unverified account at SES's mailbox simulator");

        let token = self.login("login", &credentials).await?;
        let me = self.client.call(Method::GET, "/users/me", Some(&token), &[], None).await?;
        me.expect("login", StatusCode::OK)?;
        let user_id = me.body["id"].as_str().context("login: /users/me without an id")?.to_owned();
        self.passed("login", "a token that reads its own account");
        let admin_token = match &admin {
            Some((email, password)) => {
                Some(self.login("admin login", &json!({"email": email, "password": password})).await?)
            }
            None => None,
        };

        let listed = self.client.call(Method::GET, "/products?limit=20", None, &[], None).await?;
        listed.expect("products", StatusCode::OK)?;
        let products = listed.body["data"].as_array().context("products: no data array")?;
        self.passed("products", &format!("{} on the first page", products.len()));
        let orderable = products.iter().find(|p| p["active"] != false && p["stock"].as_i64().unwrap_or(0) > 0);

        if let Some(product) = orderable {
            let id = product["id"].as_str().context("products: a product without an id")?;
            let read = self.client.call(Method::GET, &format!("/products/{id}"), None, &[], None).await?;
            read.expect("product", StatusCode::OK)?;
            self.passed("product", id);

            let key = ulid::Ulid::new().to_string();
            let order = json!({"lines": [{"product_id": id, "quantity": 1}]});
            let refused = self
                .client
                .call(Method::POST, "/orders", Some(&token), &[("idempotency-key", &key)], Some(&order))
                .await?;
            refused.expect("order", StatusCode::FORBIDDEN)?;
            if refused.body["error"]["code"] != "email_unverified" {
                bail!("order: an unverified account's order answered {}", refused.body);
            }
            let Some(token) = admin_token.as_deref() else {
                self.passed("order", "refused to the unverified account (email_unverified)");
                eprintln!("  skip the placed order and cancel: no --admin-email (only a verified account orders)");
                return self.finish(admin_token, &user_id, dead_letters).await;
            };
            let key = ulid::Ulid::new().to_string();
            let placed = self
                .client
                .call(Method::POST, "/orders", Some(token), &[("idempotency-key", &key)], Some(&order))
                .await?;
            placed.expect("order", StatusCode::CREATED)?;
            let order_id = placed.body["id"].as_str().context("order: no id")?.to_owned();
            self.passed(
                "order",
                &format!("refused to the unverified account; the admin's {order_id}, with an Idempotency-Key"),
            );

            let cancelled =
                self.client.call(Method::DELETE, &format!("/orders/{order_id}"), Some(token), &[], None).await?;
            if !cancelled.status.is_success() {
                bail!("cancel: {} {}", cancelled.status, cancelled.body);
            }
            let read = self.client.call(Method::GET, &format!("/orders/{order_id}"), Some(token), &[], None).await?;
            read.expect("cancel", StatusCode::OK)?;
            if read.body["status"] != "cancelled" {
                bail!("cancel: the order is {} after its cancellation", read.body["status"]);
            }
            self.passed("cancel", "cancelled, its stock returned");
        } else {
            eprintln!("  skip product, order, cancel: no active product in stock on the catalogue's first page");
        }

        self.finish(admin_token, &user_id, dead_letters).await
    }

    /// The steps after the catalogue's: the admin's user list and clean-up, and the dead letters.
    async fn finish(
        &mut self,
        admin_token: Option<String>,
        user_id: &str,
        dead_letters: Option<DeadLetters>,
    ) -> anyhow::Result<()> {
        if let Some(admin_token) = admin_token {
            let users = self.client.call(Method::GET, "/users?limit=1", Some(&admin_token), &[], None).await?;
            users.expect("users", StatusCode::OK)?;
            let total = users.body["pagination"]["total"].as_u64().unwrap_or_default();
            self.passed("users", &format!("the admin reads /users ({total} accounts)"));
            let disable = json!({"disabled": true});
            let disabled = self
                .client
                .call(
                    Method::PATCH,
                    &format!("/users/{user_id}"),
                    Some(&admin_token),
                    &[("if-match", "*")],
                    Some(&disable),
                )
                .await?;
            if !disabled.status.is_success() {
                bail!("cleaning up: disabling the smoke account answered {} {}", disabled.status, disabled.body);
            }
            eprintln!("  (the smoke account is disabled)");
        } else {
            eprintln!("  skip users: no --admin-email (the smoke account stays, enabled, with no order)");
        }

        match dead_letters {
            Some(DeadLetters::Stack(stack)) => {
                let parked = stack_dead_letters(&stack).await?;
                if parked.iter().any(|(_, depth)| *depth > 0) {
                    let listed: Vec<String> = parked.iter().map(|(name, depth)| format!("{name} {depth}")).collect();
                    bail!("dead letters on {stack}: {} (cargo xtask dlq list --stack {stack})", listed.join(", "));
                }
                self.passed("dead-letters", &format!("{} dead-letter queues of {stack} empty", parked.len()));
            }
            None => eprintln!("  skip dead-letters: no --stack"),
        }
        Ok(())
    }

    async fn login(&self, step: &str, credentials: &Value) -> anyhow::Result<String> {
        let answer = self.client.call(Method::POST, "/auth/login", None, &[], Some(credentials)).await?;
        answer.expect(step, StatusCode::OK)?;
        answer.body["token"].as_str().map(str::to_owned).with_context(|| format!("{step}: no token"))
    }
}

/// Each dead-letter queue of a deployed stack (from its outputs) and how many
/// messages it holds, visible or not.
async fn stack_dead_letters(stack: &str) -> anyhow::Result<Vec<(String, u64)>> {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let cloudformation = aws_sdk_cloudformation::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let names = crate::dlq::queue_names()?;
    let mut depths = Vec::new();
    for pair in crate::dlq::queues_from_stack(&cloudformation, stack, &names).await? {
        let depth = local_cloud::dlq::depth(&sqs, &pair.dlq_url).await?;
        depths.push((pair.name, (depth.visible + depth.in_flight + depth.delayed) as u64));
    }
    Ok(depths)
}

struct Api {
    http: reqwest::Client,
    base: String,
}

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    fn expect(&self, step: &str, status: StatusCode) -> anyhow::Result<()> {
        if self.status != status {
            bail!("{step}: expected {status}, got {} {}", self.status, self.body);
        }
        Ok(())
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

impl Api {
    fn new(base: &str) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("an HTTP client builds");
        Self { http, base: base.to_owned() }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> anyhow::Result<Answer> {
        let mut request = self.http.request(method.clone(), format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.with_context(|| format!("{method} {path}: no answer"))?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Answer { status, headers, body })
    }
}

#[cfg(test)]
mod tests {
    use super::{JOURNEY, api_base};

    #[test]
    fn the_stack_output_and_a_local_root_both_become_the_api_root() {
        assert_eq!(
            api_base("https://abc.execute-api.eu-west-1.amazonaws.com/v1"),
            "https://abc.execute-api.eu-west-1.amazonaws.com/v1/api/v1"
        );
        assert_eq!(api_base("http://127.0.0.1:9000/"), "http://127.0.0.1:9000/api/v1");
        assert_eq!(api_base("http://127.0.0.1:9000/api/v1"), "http://127.0.0.1:9000/api/v1");
    }

    #[test]
    fn a_filter_naming_a_step_selects_the_journey() {
        assert!(JOURNEY.contains("health") && JOURNEY.contains("smoke") && JOURNEY.contains("order"));
    }
}
