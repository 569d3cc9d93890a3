//! Handler overhead without I/O: one authenticated JSON request through the
//! whole HTTP layer (token check, account check on an in-memory store, strict JSON, envelope, headers, request
//! log line, EMF metrics) to a handler that does nothing. Run by
//! `cargo xtask bench`; prints microseconds per request on stderr.

use std::sync::Arc;
use std::time::{Duration, Instant};

use framework::Settings;
use framework::auth::{Account, Accounts, PrivateKeySet, Role, SecretCache, Subject, Tokens};
use framework::http::{Access, ApiError, ApiRequest, ApiResponse, Authenticator, HttpServer};
use lambda_http::{Body, Request, RequestExt};
use serde_json::json;

const ITERATIONS: usize = 20_000;

/// One active customer's account, answered at once: only the layer is measured.
struct OneCustomer(Subject);

#[async_trait::async_trait]
impl Accounts for OneCustomer {
    async fn account(&self, subject: Subject) -> Result<Option<Account>, framework::lookup::LookupError> {
        Ok((subject == self.0).then_some(Account { role: Role::User, active: true }))
    }
}

async fn handler(request: ApiRequest) -> Result<ApiResponse, ApiError> {
    let body: serde_json::Value = request.json()?;
    Ok(ApiResponse::ok(json!({"echo": body["lines"].as_array().map_or(0, Vec::len)})))
}

fn main() {
    framework::telemetry::init("bench");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let settings = Settings::from_lookup(|_| None).unwrap();
        let keys = PrivateKeySet::generate(0).unwrap();
        let tokens = Tokens::issuing(
            Arc::new(SecretCache::fixed(keys.clone())),
            Arc::new(SecretCache::fixed(keys.public_keys(None).unwrap())),
            Duration::from_secs(900),
        );
        // The layer reads the account on writes: one answered from memory, so only the layer is measured.
        let customer = Subject::new(ulid::Ulid::new());
        let token = tokens.issue(customer, Role::User).await.unwrap().token;
        // The token check alone, as every authenticated request pays it.
        for _ in 0..1_000 {
            tokens.verify(&token).await.unwrap();
        }
        let started = Instant::now();
        for _ in 0..ITERATIONS {
            tokens.verify(&token).await.unwrap();
        }
        let per_verification = started.elapsed().as_secs_f64() * 1e6 / ITERATIONS as f64;
        eprintln!("token_verification_us={per_verification:.1}");
        let auth = Authenticator::new(tokens, Arc::new(OneCustomer(customer)));
        let server = HttpServer::new("bench", Access::User(auth), &settings);
        let body = json!({"lines": [{"product_id": "01J9Z3NDEKTSV4RRFFQ69G5FAW", "quantity": 2}]}).to_string();
        let make = || {
            let mut request = Request::new(Body::Text(body.clone()));
            *request.method_mut() = http::Method::POST;
            request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
            request.headers_mut().insert("content-type", "application/json".parse().unwrap());
            request.with_lambda_context(lambda_http::Context::default())
        };
        for _ in 0..1_000 {
            server.handle(make(), &handler).await;
        }
        let requests: Vec<Request> = (0..ITERATIONS).map(|_| make()).collect();
        let started = Instant::now();
        for request in requests {
            let response = server.handle(request, &handler).await;
            assert_eq!(response.status(), 200);
        }
        let per_request = started.elapsed().as_secs_f64() * 1e6 / ITERATIONS as f64;
        eprintln!("handler_overhead_us={per_request:.1}");
    });
}
