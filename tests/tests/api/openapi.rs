//! docs/openapi.yaml against the system: it documents exactly the routed
//! operations, every status the code can answer, request schemas exactly as
//! strict as the code's parsers, and response schemas that real responses
//! match. Schemas are checked with the `jsonschema` crate (JSON Schema
//! 2020-12, the dialect of OpenAPI 3.1).

use std::collections::BTreeSet;

use jsonschema::{Registry, Validator};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::catalogue::{product_body, unique_sku};
use crate::helpers::{PASSWORD, TestUser, app, unique_email};

/// The document's URI in the schema registry: every `#/...` reference in it
/// resolves against this.
const DOCUMENT_URI: &str = "urn:shop:openapi";

struct Contract {
    document: Value,
    registry: Registry<'static>,
}

impl Contract {
    fn load() -> Self {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let text = std::fs::read_to_string(root.join("docs/openapi.yaml")).unwrap();
        Self::from_document(serde_yaml::from_str(&text).unwrap())
    }

    fn from_document(document: Value) -> Self {
        let registry = Registry::new().add(DOCUMENT_URI, document.clone()).unwrap().prepare().unwrap();
        Self { document, registry }
    }

    /// Follows a local `$ref` (`#/components/...`) to what it names.
    fn resolve<'a>(&'a self, value: &'a Value) -> &'a Value {
        match value["$ref"].as_str() {
            Some(reference) => {
                let pointer = reference.strip_prefix('#').expect("local references only");
                self.resolve(self.document.pointer(pointer).unwrap_or_else(|| panic!("{reference} is not defined")))
            }
            None => value,
        }
    }

    fn operation(&self, path: &str, method: &str) -> &Value {
        let operation = &self.document["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is not documented");
        operation
    }

    fn response(&self, path: &str, method: &str, status: StatusCode) -> Option<&Value> {
        let response = &self.operation(path, method)["responses"][status.as_str()];
        response.is_object().then(|| self.resolve(response))
    }

    fn parameter(&self, path: &str, method: &str, name: &str) -> &Value {
        self.operation(path, method)["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|parameter| self.resolve(parameter))
            .find(|parameter| parameter["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
            .unwrap_or_else(|| panic!("{method} {path} has no parameter {name}"))
    }

    fn request_schema(&self, path: &str, method: &str) -> &Value {
        let body = self.resolve(&self.operation(path, method)["requestBody"]);
        &body["content"]["application/json"]["schema"]
    }

    /// A validator for `schema`, a part of the document whose references
    /// point into the whole document.
    fn validator(&self, schema: &Value) -> Validator {
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .with_registry(&self.registry)
            .build(&absolute_references(schema))
            .unwrap_or_else(|error| panic!("schema {schema} does not compile: {error}"))
    }

    /// Every mismatch between `body` and `schema`, with its location.
    fn mismatches(&self, schema: &Value, body: &Value) -> Vec<String> {
        self.validator(schema).iter_errors(body).map(|error| format!("{}: {error}", error.instance_path())).collect()
    }
}

/// `#/...` references made absolute, so a part of the document can be
/// compiled on its own.
fn absolute_references(schema: &Value) -> Value {
    match schema {
        Value::Object(object) => Value::Object(
            object
                .iter()
                .map(|(key, value)| match (key.as_str(), value.as_str()) {
                    ("$ref", Some(reference)) if reference.starts_with('#') => {
                        (key.clone(), Value::String(format!("{DOCUMENT_URI}{reference}")))
                    }
                    _ => (key.clone(), absolute_references(value)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(absolute_references).collect()),
        other => other.clone(),
    }
}

/// A query or header value as the schema sees it: a JSON number or boolean
/// when it reads as one, else a string.
fn wire_value(raw: &str) -> Value {
    match serde_json::from_str::<Value>(raw) {
        Ok(value @ (Value::Number(_) | Value::Bool(_))) => value,
        _ => Value::String(raw.to_owned()),
    }
}

#[test]
fn documents_exactly_the_routed_operations() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let manifest: toml::Value = toml::from_str(&std::fs::read_to_string(root.join("Cargo.toml")).unwrap()).unwrap();
    let mut routed = BTreeSet::new();
    for (path, targets) in manifest["workspace"]["metadata"]["lambda"]["watch"]["router"].as_table().unwrap() {
        for target in targets.as_array().unwrap() {
            let method = target["method"].as_str().unwrap().to_lowercase();
            if method != "options" {
                routed.insert((path.clone(), method));
            }
        }
    }
    let document = Contract::load().document;
    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((path.clone(), method.clone()));
        }
    }
    assert_eq!(documented, routed);
}

/// The statuses the shared layers give every operation of a kind, read off
/// the code: shared/framework/src/http (server.rs, auth.rs, request.rs,
/// error.rs) and the gateway in front (API Gateway + WAF, the local front).
fn statuses_the_layers_can_answer(contract: &Contract, operation: &Value) -> BTreeSet<u16> {
    // Every route: the gateway's rate limit, the body limit, a panic, the request's time budget.
    let mut statuses = BTreeSet::from([413, 429, 500, 503]);
    let secured = operation["security"].as_array().into_iter().flatten().any(|r| r.get("bearerAuth").is_some());
    if secured {
        // A missing or invalid token; a disabled account (every write, every admin request).
        statuses.extend([401, 403]);
    }
    if operation.get("requestBody").is_some() {
        // Strict JSON: media type, syntax, shape.
        statuses.extend([400, 415, 422]);
    }
    for parameter in operation["parameters"].as_array().into_iter().flatten() {
        let parameter = contract.resolve(parameter);
        match (parameter["in"].as_str(), parameter["name"].as_str(), parameter["required"].as_bool()) {
            // An id that names nothing (or nothing of the caller's).
            (Some("path"), _, _) => statuses.insert(404),
            (Some("header"), Some("If-Match"), Some(true)) => {
                statuses.extend([412, 428]);
                true
            }
            (Some("header"), Some("If-Match"), _) => statuses.insert(412),
            // The copy the client holds is current.
            (Some("header"), Some("If-None-Match"), _) => statuses.insert(304),
            (Some("query"), Some("cursor"), _) => statuses.insert(400),
            (Some("query"), Some("limit"), _) => statuses.insert(422),
            _ => false,
        };
    }
    statuses
}

#[test]
fn every_operation_documents_what_the_shared_layers_can_answer() {
    let contract = Contract::load();
    let mut problems = Vec::new();
    for (path, item) in contract.document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let documented: BTreeSet<u16> =
                operation["responses"].as_object().unwrap().keys().map(|status| status.parse().unwrap()).collect();
            for status in statuses_the_layers_can_answer(&contract, operation) {
                if !documented.contains(&status) {
                    problems.push(format!("{method} {path} does not document {status}"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// One request as the test sends it, and what came back.
struct Exchange {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

/// Sends one request from a client address of its own (the gateway limits
/// each address to 100 requests a minute, and this test sends more).
async fn send(
    method: Method,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Exchange {
    let app = app();
    let mut request = app.client.request(method, app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("the API answers");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    Exchange { status, headers, body }
}

/// Checks real responses against the document: the status is documented for
/// the operation, the body matches its schema, required headers are there
/// and match theirs.
struct ResponseCheck {
    contract: Contract,
    problems: Vec<String>,
    seen: BTreeSet<(String, String, u16)>,
}

impl ResponseCheck {
    fn record(&mut self, path: &str, method: &str, exchange: &Exchange) {
        let at = format!("{} {path} -> {}", method.to_uppercase(), exchange.status);
        self.seen.insert((path.to_owned(), method.to_owned(), exchange.status.as_u16()));
        let Some(response) = self.contract.response(path, method, exchange.status) else {
            self.problems.push(format!("{at}: status not documented (body {})", exchange.body));
            return;
        };
        let schema = &response["content"]["application/json"]["schema"];
        if schema.is_null() {
            if !exchange.body.is_null() {
                self.problems.push(format!("{at}: a body where none is documented"));
            }
        } else {
            for mismatch in self.contract.mismatches(schema, &exchange.body) {
                self.problems.push(format!("{at}: body {mismatch}"));
            }
        }
        for (name, header) in response["headers"].as_object().into_iter().flatten() {
            let header = self.contract.resolve(header);
            match exchange.headers.get(name).and_then(|value| value.to_str().ok()) {
                None if header["required"] == true => self.problems.push(format!("{at}: header {name} missing")),
                None => {}
                Some(value) => {
                    for mismatch in self.contract.mismatches(&header["schema"], &wire_value(value)) {
                        self.problems.push(format!("{at}: header {name}: {mismatch}"));
                    }
                }
            }
        }
    }

    async fn call(
        &mut self,
        (method, path, template): (Method, &str, &str),
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Exchange {
        let exchange = send(method.clone(), path, token, headers, body.as_ref()).await;
        self.record(&format!("/api/v1{template}"), &method.as_str().to_lowercase(), &exchange);
        exchange
    }
}

/// A request whose body is not JSON, or not declared as JSON.
async fn send_raw(method: Method, path: &str, token: Option<&str>, content_type: &str, body: Vec<u8>) -> Exchange {
    let app = app();
    let mut request = app.client.request(method, app.url(path)).header("content-type", content_type).body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    Exchange { status, headers, body }
}

#[tokio::test]
async fn real_responses_match_the_documented_schemas() {
    let mut check = ResponseCheck { contract: Contract::load(), problems: Vec::new(), seen: BTreeSet::new() };
    let app = app();
    let admin = app.new_admin("openapi").await;
    let customer = app.new_user("openapi").await;
    let other = app.new_user("openapi-other").await;

    // Health and accounts.
    check.call((Method::GET, "/health", "/health"), None, &[], None).await;
    let email = unique_email("openapi");
    let credentials = json!({"email": email, "password": PASSWORD});
    let register = (Method::POST, "/auth/register", "/auth/register");
    let accepted = check.call(register.clone(), None, &[], Some(credentials.clone())).await.body;
    assert_eq!(accepted["status"], "accepted");
    let verify = (Method::POST, "/auth/verify-email", "/auth/verify-email");
    check.call(verify.clone(), None, &[], Some(json!({"token": "not a token"}))).await;
    let token = crate::verification::emailed_token(&email, 1).await;
    check.call(verify.clone(), None, &[], Some(json!({"token": token}))).await;
    // Registered again once verified: the same 202 (its owner is told by email).
    check.call(register.clone(), None, &[], Some(credentials.clone())).await;
    let resend = (Method::POST, "/auth/verify-email/resend", "/auth/verify-email/resend");
    for _ in 0..3 {
        check.call(resend.clone(), None, &[], Some(json!({"email": unique_email("openapi-resend")}))).await;
    }
    let limited = unique_email("openapi-limited");
    for _ in 0..4 {
        check.call(resend.clone(), None, &[], Some(json!({"email": limited}))).await;
    }
    check.call(register.clone(), None, &[], Some(json!({"email": "x", "password": PASSWORD}))).await;
    for (content_type, body) in [("application/json", b"{\"email\":".to_vec()), ("text/plain", b"{}".to_vec())] {
        let exchange = send_raw(Method::POST, "/auth/register", None, content_type, body).await;
        check.record("/api/v1/auth/register", "post", &exchange);
    }
    let login = (Method::POST, "/auth/login", "/auth/login");
    let token = check.call(login.clone(), None, &[], Some(credentials.clone())).await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    check.call(login.clone(), None, &[], Some(json!({"email": email, "password": "wrong password"}))).await;
    check.call(login.clone(), None, &[], Some(json!({"email": email, "password": ""}))).await;
    // Sessions: a refresh, a malformed and a used refresh token, logout, logging out everywhere.
    let refresh = (Method::POST, "/auth/refresh", "/auth/refresh");
    let first = check.call(login.clone(), None, &[], Some(credentials.clone())).await.body["refresh_token"].clone();
    let next = check.call(refresh.clone(), None, &[], Some(json!({"refresh_token": first}))).await.body;
    check.call(refresh.clone(), None, &[], Some(json!({"refresh_token": "not a token"}))).await;
    check.call(refresh.clone(), None, &[], Some(json!({"refresh_token": first}))).await;
    let logout = (Method::POST, "/auth/logout", "/auth/logout");
    check.call(logout.clone(), None, &[], Some(json!({"refresh_token": next["refresh_token"]}))).await;
    check.call(logout.clone(), None, &[], Some(json!({"refresh_token": 7}))).await;
    let everywhere = (Method::POST, "/auth/logout-all", "/auth/logout-all");
    check.call(everywhere.clone(), Some(&token), &[], None).await;
    check.call(everywhere.clone(), None, &[], None).await;
    // Passwords: a reset request, a confirmation with a token that opens nothing, a change.
    let reset = (Method::POST, "/auth/password-reset", "/auth/password-reset");
    check.call(reset.clone(), None, &[], Some(json!({"email": unique_email("openapi-reset")}))).await;
    check.call(reset.clone(), None, &[], Some(json!({"email": "not an address"}))).await;
    let confirm = (Method::POST, "/auth/password-reset/confirm", "/auth/password-reset/confirm");
    let forged = format!("{}.{}", other.id, "A".repeat(43));
    check.call(confirm.clone(), None, &[], Some(json!({"token": forged, "password": "a brand new passphrase"}))).await;
    check.call(confirm.clone(), None, &[], Some(json!({"token": "x", "password": "short"}))).await;
    let change = (Method::POST, "/users/me/password", "/users/me/password");
    let wrong = json!({"current_password": "not the password", "new_password": "a brand new passphrase"});
    check.call(change.clone(), Some(&other.token), &[], Some(wrong)).await;
    let right = json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"});
    check.call(change.clone(), Some(&other.token), &[], Some(right)).await;
    let me = (Method::GET, "/users/me", "/users/me");
    let mine = check.call(me.clone(), Some(&token), &[], None).await;
    revalidate(&mut check, me.clone(), Some(&token), &mine).await;
    check.call(me.clone(), None, &[], None).await;
    check.call(me.clone(), Some("not-a-token"), &[], None).await;

    let users = (Method::GET, "/users?limit=1", "/users");
    let page = check.call(users.clone(), Some(&admin.token), &[], None).await.body;
    let cursor = page["pagination"]["next_cursor"].as_str().expect("more than one account").to_owned();
    check
        .call((Method::GET, &format!("/users?limit=1&cursor={cursor}"), "/users"), Some(&admin.token), &[], None)
        .await;
    check.call((Method::GET, "/users?cursor=forged.cursor", "/users"), Some(&admin.token), &[], None).await;
    check.call((Method::GET, "/users?limit=0", "/users"), Some(&admin.token), &[], None).await;
    check.call(users.clone(), Some(&token), &[], None).await;

    let user_path = format!("/users/{}", mine.body["id"].as_str().unwrap());
    let patch_user = (Method::PATCH, user_path.as_str(), "/users/{id}");
    let disable = json!({"disabled": true});
    check.call(patch_user.clone(), Some(&admin.token), &[], Some(disable.clone())).await;
    check.call(patch_user.clone(), Some(&admin.token), &[("if-match", "\"7\"")], Some(disable.clone())).await;
    check.call(patch_user.clone(), Some(&admin.token), &[("if-match", "*")], Some(json!({"role": "root"}))).await;
    check.call(patch_user.clone(), Some(&token), &[("if-match", "*")], Some(disable.clone())).await;
    // Version 2: following the verification link was the account's first change.
    check.call(patch_user.clone(), Some(&admin.token), &[("if-match", "\"2\"")], Some(disable.clone())).await;
    // Disabled: the account's token is refused on writes, and its login is 403 (with the right password).
    check.call(login.clone(), None, &[], Some(credentials.clone())).await;
    let unknown_user = (Method::PATCH, "/users/01J9Z3NDEKTSV4RRFFQ69G5FAV", "/users/{id}");
    check.call(unknown_user, Some(&admin.token), &[("if-match", "*")], Some(disable.clone())).await;
    let admin_path = format!("/users/{}", admin.id);
    let lockout = (Method::PATCH, admin_path.as_str(), "/users/{id}");
    check.call(lockout, Some(&admin.token), &[("if-match", "*")], Some(disable.clone())).await;

    // The catalogue.
    let products = (Method::POST, "/products", "/products");
    let body = product_body(&unique_sku("DOC"), 700, "EUR", 3);
    let product = check.call(products.clone(), Some(&admin.token), &[], Some(body.clone())).await.body;
    check.call(products.clone(), Some(&admin.token), &[], Some(body.clone())).await;
    check.call(products.clone(), Some(&admin.token), &[], Some(json!({"sku": "x"}))).await;
    check.call(products.clone(), Some(&customer.token), &[], Some(body.clone())).await;
    check.call(products.clone(), None, &[], Some(body.clone())).await;
    let large = json!({"sku": "LARGE", "name": "x".repeat(70 * 1024)});
    check.call(products.clone(), Some(&admin.token), &[], Some(large)).await;
    let product_path = format!("/products/{}", product["id"].as_str().unwrap());
    let get_product = (Method::GET, product_path.as_str(), "/products/{id}");
    let shown = check.call(get_product.clone(), None, &[], None).await;
    revalidate(&mut check, get_product.clone(), None, &shown).await;
    check.call(get_product.clone(), Some(&admin.token), &[], None).await;
    check.call(get_product.clone(), Some("not-a-token"), &[], None).await;
    check.call((Method::GET, "/products/01J9Z3NDEKTSV4RRFFQ69G5FAV", "/products/{id}"), None, &[], None).await;
    let listed = check.call((Method::GET, "/products?limit=2", "/products"), None, &[], None).await;
    revalidate(&mut check, (Method::GET, "/products?limit=2", "/products"), None, &listed).await;
    check.call((Method::GET, "/products?active=false", "/products"), Some(&admin.token), &[], None).await;
    check.call((Method::GET, "/products?active=false", "/products"), None, &[], None).await;
    check.call((Method::GET, "/products?active=maybe", "/products"), None, &[], None).await;
    let put_product = (Method::PUT, product_path.as_str(), "/products/{id}");
    let replaced = product_body(&unique_sku("DOC"), 800, "EUR", 5);
    check.call(put_product.clone(), Some(&admin.token), &[], Some(replaced.clone())).await;
    check.call(put_product.clone(), Some(&admin.token), &[("if-match", "\"9\"")], Some(replaced.clone())).await;
    check.call(put_product.clone(), Some(&admin.token), &[("if-match", "\"1\"")], Some(replaced.clone())).await;

    // Orders.
    let orders = (Method::POST, "/orders", "/orders");
    let lines = json!({"lines": [{"product_id": product["id"], "quantity": 1}]});
    let key = format!("openapi-{}", ulid::Ulid::new());
    let keyed = [("idempotency-key", key.as_str())];
    let order = check.call(orders.clone(), Some(&customer.token), &keyed, Some(lines.clone())).await.body;
    let replay = check.call(orders.clone(), Some(&customer.token), &keyed, Some(lines.clone())).await;
    assert_eq!(replay.status, StatusCode::CREATED, "{}", replay.body);
    let two = json!({"lines": [{"product_id": product["id"], "quantity": 2}]});
    check.call(orders.clone(), Some(&customer.token), &keyed, Some(two)).await;
    check.call(orders.clone(), Some(&customer.token), &[("idempotency-key", "a b")], Some(lines.clone())).await;
    let unknown = json!({"lines": [{"product_id": "01J9Z3NDEKTSV4RRFFQ69G5FAV", "quantity": 1}]});
    // Without a key: 400 idempotency_key_required, documented.
    check.call(orders.clone(), Some(&customer.token), &[], Some(lines.clone())).await;
    let fresh_key = format!("openapi-{}", ulid::Ulid::new());
    let fresh = [("idempotency-key", fresh_key.as_str())];
    check.call(orders.clone(), Some(&customer.token), &fresh, Some(unknown)).await;
    check.call(orders.clone(), None, &[], Some(lines.clone())).await;
    let own = check.call((Method::GET, "/orders?limit=2", "/orders"), Some(&customer.token), &[], None).await;
    revalidate(&mut check, (Method::GET, "/orders?limit=2", "/orders"), Some(&customer.token), &own).await;
    check.call((Method::GET, "/orders?status=pending", "/orders"), Some(&admin.token), &[], None).await;
    check.call((Method::GET, "/orders?status=lost", "/orders"), Some(&customer.token), &[], None).await;
    let order_path = format!("/orders/{}", order["id"].as_str().unwrap());
    let get_order = (Method::GET, order_path.as_str(), "/orders/{id}");
    check.call(get_order.clone(), Some(&customer.token), &[], None).await;
    check.call(get_order.clone(), Some(&other.token), &[], None).await;
    check.call(get_order.clone(), None, &[], None).await;
    let patch_order = (Method::PATCH, order_path.as_str(), "/orders/{id}");
    let ship = json!({"status": "shipped"});
    let cancel = json!({"status": "cancelled"});
    check.call(patch_order.clone(), Some(&customer.token), &[("if-match", "*")], Some(ship.clone())).await;
    check.call(patch_order.clone(), Some(&customer.token), &[], Some(cancel.clone())).await;
    check.call(patch_order.clone(), Some(&customer.token), &[("if-match", "*")], Some(json!({"status": "x"}))).await;
    check.call(patch_order.clone(), Some(&customer.token), &[("if-match", "\"99\"")], Some(cancel.clone())).await;
    check.call(patch_order.clone(), Some(&customer.token), &[("if-match", "*")], Some(cancel.clone())).await;
    // Cancelled already: any further change is an illegal transition.
    let cancel_order = (Method::DELETE, order_path.as_str(), "/orders/{id}");
    check.call(cancel_order.clone(), Some(&customer.token), &[], None).await;
    check.call(cancel_order.clone(), Some(&customer.token), &[("if-match", "\"99\"")], None).await;
    let second_key = format!("openapi-{}", ulid::Ulid::new());
    let second = check
        .call(orders.clone(), Some(&customer.token), &[("idempotency-key", &second_key)], Some(lines.clone()))
        .await
        .body;
    let second_path = format!("/orders/{}", second["id"].as_str().unwrap());
    check.call((Method::DELETE, second_path.as_str(), "/orders/{id}"), Some(&customer.token), &[], None).await;
    check
        .call((Method::DELETE, "/orders/01J9Z3NDEKTSV4RRFFQ69G5FAV", "/orders/{id}"), Some(&admin.token), &[], None)
        .await;

    // Removing the product last (the orders above refer to it).
    let delete_product = (Method::DELETE, product_path.as_str(), "/products/{id}");
    check.call(delete_product.clone(), Some(&admin.token), &[("if-match", "\"1\"")], None).await;
    check.call(delete_product.clone(), Some(&customer.token), &[], None).await;
    check.call(delete_product.clone(), Some(&admin.token), &[("if-match", "*")], None).await;
    check.call(delete_product.clone(), Some(&admin.token), &[], None).await;
    check.call(get_product.clone(), Some(&admin.token), &[], None).await;

    // Deleting an account: a wrong password, an admin's, a customer's, its repeat (204 again) and one
    // without a token (401).
    let leaving = app.new_user("openapi-leaving").await;
    let delete_me = (Method::DELETE, "/users/me", "/users/me");
    check.call(delete_me.clone(), Some(&leaving.token), &[], Some(json!({"password": "not the password"}))).await;
    check.call(delete_me.clone(), Some(&admin.token), &[], Some(json!({"password": PASSWORD}))).await;
    check.call(delete_me.clone(), Some(&leaving.token), &[], Some(json!({"password": PASSWORD}))).await;
    check.call(delete_me.clone(), Some(&leaving.token), &[], Some(json!({"password": PASSWORD}))).await;
    check.call(delete_me.clone(), None, &[], Some(json!({"password": PASSWORD}))).await;

    // The admins' second factor: a customer refused, an enrolment, a wrong and a right code, both
    // repeated, and the sign-ins it changes (no code, then the next step's code).
    let guarded = app.new_admin("openapi-mfa").await;
    let enrol = (Method::POST, "/users/me/mfa/totp", "/users/me/mfa/totp");
    let confirm = (Method::POST, "/users/me/mfa/totp/confirm", "/users/me/mfa/totp/confirm");
    check.call(enrol.clone(), Some(&customer.token), &[], None).await;
    let enrolled = check.call(enrol.clone(), Some(&guarded.token), &[], None).await.body;
    let authenticator = crate::mfa::authenticator(enrolled["otpauth_uri"].as_str().unwrap());
    let now = crate::mfa::code(&authenticator, 0);
    check.call(confirm.clone(), Some(&guarded.token), &[], Some(json!({"code": crate::mfa::wrong(&now)}))).await;
    check.call(confirm.clone(), Some(&guarded.token), &[], Some(json!({"code": now}))).await;
    check.call(confirm.clone(), Some(&guarded.token), &[], Some(json!({"code": now}))).await;
    check.call(enrol.clone(), Some(&guarded.token), &[], None).await;
    check.call(login.clone(), None, &[], Some(json!({"email": guarded.email, "password": PASSWORD}))).await;
    let next = crate::mfa::code(&authenticator, 30);
    let with_code = json!({"email": guarded.email, "password": PASSWORD, "totp_code": next});
    assert_eq!(check.call(login.clone(), None, &[], Some(with_code)).await.status, StatusCode::OK);

    assert!(check.problems.is_empty(), "{:#?}", check.problems);
    // Every operation was driven, and each of these answers was seen.
    let operations: BTreeSet<(String, String)> = check.seen.iter().map(|(p, m, _)| (p.clone(), m.clone())).collect();
    assert_eq!(operations.len(), 27, "{operations:#?}");
    for (path, method, status) in [
        ("/api/v1/auth/register", "post", 202),
        ("/api/v1/auth/verify-email", "post", 200),
        ("/api/v1/auth/verify-email", "post", 400),
        ("/api/v1/auth/verify-email/resend", "post", 202),
        ("/api/v1/auth/verify-email/resend", "post", 429),
        ("/api/v1/auth/register", "post", 415),
        ("/api/v1/auth/login", "post", 401),
        ("/api/v1/auth/login", "post", 403),
        ("/api/v1/auth/refresh", "post", 200),
        ("/api/v1/auth/refresh", "post", 401),
        ("/api/v1/auth/refresh", "post", 422),
        ("/api/v1/auth/logout", "post", 204),
        ("/api/v1/auth/logout-all", "post", 200),
        ("/api/v1/auth/password-reset", "post", 202),
        ("/api/v1/auth/password-reset/confirm", "post", 400),
        ("/api/v1/users/me/password", "post", 204),
        ("/api/v1/users", "get", 400),
        ("/api/v1/users/{id}", "patch", 409),
        ("/api/v1/users/{id}", "patch", 412),
        ("/api/v1/users/{id}", "patch", 428),
        ("/api/v1/products", "post", 413),
        ("/api/v1/products", "get", 403),
        ("/api/v1/products/{id}", "delete", 204),
        ("/api/v1/products/{id}", "delete", 412),
        ("/api/v1/orders", "post", 400),
        ("/api/v1/orders", "post", 422),
        ("/api/v1/orders/{id}", "patch", 403),
        ("/api/v1/orders/{id}", "delete", 409),
        ("/api/v1/orders/{id}", "delete", 412),
        ("/api/v1/users/me", "get", 304),
        ("/api/v1/users/me", "delete", 204),
        ("/api/v1/users/me/mfa/totp", "post", 201),
        ("/api/v1/users/me/mfa/totp", "post", 403),
        ("/api/v1/users/me/mfa/totp", "post", 409),
        ("/api/v1/users/me/mfa/totp/confirm", "post", 200),
        ("/api/v1/users/me/mfa/totp/confirm", "post", 409),
        ("/api/v1/users/me/mfa/totp/confirm", "post", 422),
        ("/api/v1/users/me", "delete", 401),
        ("/api/v1/users/me", "delete", 403),
        ("/api/v1/users/me", "delete", 409),
        ("/api/v1/products", "get", 304),
        ("/api/v1/products/{id}", "get", 304),
        ("/api/v1/orders", "get", 304),
    ] {
        assert!(
            check.seen.contains(&(path.to_owned(), method.to_owned(), status)),
            "{method} {path} {status} not seen"
        );
    }
}

/// Sends `route` again with the ETag of its first answer in `If-None-Match`:
/// a 304 (no body), whose headers the check holds to the document. A 200
/// means the answer changed meanwhile (other tests share the catalogue):
/// its new tag is sent back, a few times.
async fn revalidate(check: &mut ResponseCheck, route: (Method, &str, &str), token: Option<&str>, first: &Exchange) {
    let mut tag = first.headers["etag"].to_str().unwrap().to_owned();
    for _ in 0..3 {
        let again = check.call(route.clone(), token, &[("if-none-match", &tag)], None).await;
        if again.status == StatusCode::OK {
            again.headers["etag"].to_str().unwrap().clone_into(&mut tag);
            continue;
        }
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{tag}: {}", again.body);
        assert_eq!(again.headers["etag"], tag.as_str());
        return;
    }
    panic!("{} changed between every pair of requests", route.1);
}

/// The response headers the document gives any operation, lower-case.
fn documented_response_headers(contract: &Contract) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for item in contract.document["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            for response in operation["responses"].as_object().unwrap().values() {
                for name in
                    contract.resolve(response)["headers"].as_object().into_iter().flatten().map(|(name, _)| name)
                {
                    names.insert(name.to_lowercase());
                }
            }
        }
    }
    names
}

/// A browser script reads a response header only if CORS exposes it (the
/// safelisted ones aside), so every header the document gives a response is
/// exposed to an allowed origin. Before, `Idempotent-Replayed` (is this 201 a
/// replay?), `X-Api-Version` and the export's `Content-Disposition` were
/// documented but hidden from browser code. The preflight's copy in
/// template.yaml is held to the same constant by the stack check.
#[tokio::test]
async fn every_documented_response_header_is_exposed_to_browsers() {
    const SAFELISTED: [&str; 7] =
        ["cache-control", "content-language", "content-length", "content-type", "expires", "last-modified", "pragma"];
    let documented = documented_response_headers(&Contract::load());
    assert!(documented.contains("idempotent-replayed"), "{documented:?}");
    let app = app();
    let response = app.client.get(app.url("/health")).header("origin", "http://localhost:3000").send().await.unwrap();
    let exposed: BTreeSet<String> = response.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .split(',')
        .map(|name| name.trim().to_lowercase())
        .collect();
    let hidden: Vec<&String> =
        documented.iter().filter(|name| !exposed.contains(*name) && !SAFELISTED.contains(&name.as_str())).collect();
    assert!(hidden.is_empty(), "documented but hidden from browser code: {hidden:?} (exposed: {exposed:?})");
}

#[test]
fn the_response_check_catches_mismatches() {
    let contract = Contract::load();
    let user = json!({"$ref": "#/components/schemas/User"});
    let problems = contract.mismatches(&user, &json!({"id": "x", "email": 7, "role": "root", "extra": true}));
    let text = problems.join("\n");
    for expected in ["\"disabled\" is a required property", "7 is not of type \"string\"", "\"root\" is not one of"] {
        assert!(text.contains(expected), "{expected} not reported in:\n{text}");
    }
    assert!(text.contains("extra"), "an undocumented property is not reported in:\n{text}");
}

/// The server's verdict on a request's input: did its parsers take it? (A
/// 400 or 422 is a refusal of the input; anything else, 401, 404, 409
/// included, means the input got past them.)
fn accepted(status: StatusCode) -> bool {
    !matches!(status.as_u16(), 400 | 422)
}

/// Request inputs, each judged twice: by the document's schema and by the
/// running code. The two must agree, so a schema laxer or stricter than the
/// code's parsers fails here.
struct Agreement {
    contract: Contract,
    problems: Vec<String>,
    cases: usize,
}

impl Agreement {
    fn compare(&mut self, what: &str, schema_valid: bool, exchange: &Exchange) {
        self.cases += 1;
        if schema_valid != accepted(exchange.status) {
            let verdict = if schema_valid { "allows" } else { "refuses" };
            self.problems.push(format!(
                "{what}: the schema {verdict} it, the code answered {} {}",
                exchange.status, exchange.body
            ));
        }
    }

    /// A request body for `method path`, sent as `token`.
    async fn body(&mut self, (method, path, template): (Method, &str, &str), token: Option<&str>, body: Value) {
        let schema = self.contract.request_schema(&format!("/api/v1{template}"), &method.as_str().to_lowercase());
        let valid = self.contract.validator(schema).is_valid(&body);
        let key = ulid::Ulid::new().to_string();
        let headers: &[(&str, &str)] = match method {
            Method::PUT | Method::PATCH => &[("if-match", "*")],
            Method::POST => &[("idempotency-key", &key)],
            _ => &[],
        };
        let exchange = send(method.clone(), path, token, headers, Some(&body)).await;
        self.compare(&format!("{method} {template} {body}"), valid, &exchange);
    }

    /// A query parameter or header value for `method path`.
    async fn parameter(
        &mut self,
        (method, path, template): (Method, &str, &str),
        token: Option<&str>,
        (name, value): (&str, &str),
        body: Option<&Value>,
    ) -> Exchange {
        let parameter = self.contract.parameter(&format!("/api/v1{template}"), &method.as_str().to_lowercase(), name);
        let valid = self.contract.validator(&parameter["schema"]).is_valid(&wire_value(value));
        let exchange = if parameter["in"] == "query" {
            let separator = if path.contains('?') { '&' } else { '?' };
            let encoded: String = value
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            send(method.clone(), &format!("{path}{separator}{name}={encoded}"), token, &[], body).await
        } else {
            send(method.clone(), path, token, &[(name, value)], body).await
        };
        self.compare(&format!("{method} {template} {name}={value:?}"), valid, &exchange);
        exchange
    }
}

fn registration(email: &str, password: &str) -> Value {
    json!({"email": email, "password": password})
}

/// A unique address with `local` spelled as given around it.
fn email_with(prefix: &str, suffix: &str) -> String {
    let email = unique_email("agree");
    format!("{prefix}{email}{suffix}")
}

async fn fresh_order(customer: &TestUser, product_id: &Value) -> String {
    let body = json!({"lines": [{"product_id": product_id, "quantity": 1}]});
    let key = ulid::Ulid::new().to_string();
    let exchange =
        send(Method::POST, "/orders", Some(&customer.token), &[("idempotency-key", &key)], Some(&body)).await;
    assert_eq!(exchange.status, StatusCode::CREATED, "{}", exchange.body);
    exchange.body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn request_schemas_are_exactly_as_strict_as_the_code() {
    let mut agree = Agreement { contract: Contract::load(), problems: Vec::new(), cases: 0 };
    let app = app();
    let admin = app.new_admin("agree").await;
    let customer = app.new_user("agree").await;

    // Registration: the email is trimmed and lower-cased, then checked; the password is 8..128 characters, not
    // only white space.
    let register = (Method::POST, "/auth/register", "/auth/register");
    let ws = "\u{a0}\t\u{3000}";
    for (email, password) in [
        (email_with("  ", " "), PASSWORD.to_owned()),
        (email_with(ws, ws).to_uppercase(), PASSWORD.to_owned()),
        (email_with("\u{212a}", ""), PASSWORD.to_owned()),
        (email_with("a.b+c!#$%&'*/=?^_`{|}~-", ""), PASSWORD.to_owned()),
        (email_with("", ""), "12345678".to_owned()),
        (email_with("", ""), "x".repeat(128)),
        (email_with("", ""), "é".repeat(8)),
        (email_with("", ""), "   x    ".to_owned()),
        (email_with("", ""), "1234567".to_owned()),
        (email_with("", ""), "x".repeat(129)),
        (email_with("", ""), " ".repeat(8)),
        (email_with("", ""), "\u{a0}".repeat(8)),
        (email_with("\u{feff}", ""), PASSWORD.to_owned()),
        (email_with(".", ""), PASSWORD.to_owned()),
        (email_with("a..", ""), PASSWORD.to_owned()),
        (email_with("é", ""), PASSWORD.to_owned()),
        (format!("{}@example.com", "a".repeat(64)), PASSWORD.to_owned()),
        (format!("{}@example.com", "a".repeat(65)), PASSWORD.to_owned()),
        (format!("a{}@{}.example.com", ulid::Ulid::new(), "b".repeat(63)), PASSWORD.to_owned()),
        (format!("a@{}.example.com", "b".repeat(64)), PASSWORD.to_owned()),
        (
            format!("a@{}.com", ["b".repeat(60), "c".repeat(60), "d".repeat(60), "e".repeat(60)].join(".")),
            PASSWORD.to_owned(),
        ),
        (
            format!("a@{}.com", ["b".repeat(63), "c".repeat(63), "d".repeat(63), "e".repeat(59)].join(".")),
            PASSWORD.to_owned(),
        ),
        ("a@b".to_owned(), PASSWORD.to_owned()),
        ("a@-b.com".to_owned(), PASSWORD.to_owned()),
        ("a@b.com.".to_owned(), PASSWORD.to_owned()),
        ("plain".to_owned(), PASSWORD.to_owned()),
        (String::new(), PASSWORD.to_owned()),
    ] {
        agree.body(register.clone(), None, registration(&email, &password)).await;
    }
    agree
        .body(register.clone(), None, json!({"email": unique_email("agree"), "password": PASSWORD, "role": "admin"}))
        .await;
    agree.body(register.clone(), None, json!({"email": unique_email("agree")})).await;
    agree.body(register.clone(), None, json!({"email": 7, "password": PASSWORD})).await;

    // Login: the password is only bounded (1..128); an unknown account is a 401, past the parsers.
    let login = (Method::POST, "/auth/login", "/auth/login");
    for password in ["x", "", &"x".repeat(128), &"x".repeat(129)] {
        agree.body(login.clone(), None, registration(&unique_email("agree"), password)).await;
    }

    // Products: SKU, name, description, price, stock, active.
    let products = (Method::POST, "/products", "/products");
    let sku = || unique_sku("AGR");
    let product = |sku: &str, name: &str, description: Value, amount: i64, currency: &str, stock: i64| json!({"sku": sku, "name": name, "description": description, "price": {"amount_minor": amount, "currency": currency}, "stock": stock});
    let long_sku = format!("A{}", ulid::Ulid::new()).repeat(2)[..32].to_owned();
    for body in [
        product(&format!(" {} ", sku().to_lowercase()), "Tee", json!("Soft"), 1999, "EUR", 5),
        product(&format!("\u{3000}{}\t", sku()), "Tee", Value::Null, 0, " eur ", 0),
        product(&long_sku, " Tee\n", json!("  "), 10_000_000_000, "usd", 1_000_000),
        product(&format!("{}-", sku()), "Tee", Value::Null, 1, "EUR", 1),
        product(&format!("-{}", sku()), "Tee", Value::Null, 1, "EUR", 1),
        product("AB", "Tee", Value::Null, 1, "EUR", 1),
        product(&format!("{long_sku}X"), "Tee", Value::Null, 1, "EUR", 1),
        product(&format!("{}_X", sku()), "Tee", Value::Null, 1, "EUR", 1),
        product(&sku(), &format!(" {} ", "n".repeat(200)), Value::Null, 1, "EUR", 1),
        product(&sku(), &"n".repeat(201), Value::Null, 1, "EUR", 1),
        product(&sku(), "", Value::Null, 1, "EUR", 1),
        product(&sku(), " \t\n ", Value::Null, 1, "EUR", 1),
        product(&sku(), "two\nlines", Value::Null, 1, "EUR", 1),
        product(&sku(), "\ttrimmed tab\r", Value::Null, 1, "EUR", 1),
        product(&sku(), "inner\ttab", Value::Null, 1, "EUR", 1),
        product(&sku(), "inner\u{85}next line", Value::Null, 1, "EUR", 1),
        product(&sku(), "bell\u{7}", Value::Null, 1, "EUR", 1),
        product(&sku(), "nul\u{0}", Value::Null, 1, "EUR", 1),
        product(&sku(), "\u{a0}non-breaking\u{a0}space\u{a0}", Value::Null, 1, "EUR", 1),
        product(&sku(), "emoji 🦀", json!("d".repeat(2000)), 1, "EUR", 1),
        product(&sku(), "Tee", json!(format!("\n{}\n", "d".repeat(2000))), 1, "EUR", 1),
        product(&sku(), "Tee", json!("d".repeat(2001)), 1, "EUR", 1),
        product(&sku(), "Tee", json!("escape\u{1b}[0m"), 1, "EUR", 1),
        product(&sku(), "Tee", json!(5), 1, "EUR", 1),
        product(&sku(), "Tee", Value::Null, 10_000_000_001, "EUR", 1),
        product(&sku(), "Tee", Value::Null, -1, "EUR", 1),
        product(&sku(), "Tee", Value::Null, 1, "EU", 1),
        product(&sku(), "Tee", Value::Null, 1, "E1R", 1),
        product(&sku(), "Tee", Value::Null, 1, "ÉUR", 1),
        product(&sku(), "Tee", Value::Null, 1, "EUR", 1_000_001),
        product(&sku(), "Tee", Value::Null, 1, "EUR", -1),
        product(&sku(), "Whole numbers", Value::Null, 0, "EUR", 1),
    ] {
        agree.body(products.clone(), Some(&admin.token), body).await;
    }
    for extra in [
        json!({"active": null}),
        json!({"active": false}),
        json!({"active": "yes"}),
        json!({"colour": "red"}),
        json!({"price": {"amount_minor": 1, "currency": "EUR", "tax": 0}}),
        json!({"price": {"amount_minor": 1.5, "currency": "EUR"}}),
        json!({"price": {"currency": "EUR"}}),
        json!({"price": {"amount_minor": 250.0, "currency": "EUR"}, "stock": 1e3}),
        json!({"price": {"amount_minor": 2.5e1, "currency": "EUR"}, "stock": 2.5}),
    ] {
        let mut body = product(&sku(), "Tee", Value::Null, 1, "EUR", 1);
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        agree.body(products.clone(), Some(&admin.token), body).await;
    }
    let catalogue_item = send(
        Method::POST,
        "/products",
        Some(&admin.token),
        &[],
        Some(&product_body(&unique_sku("AGR"), 100, "EUR", 1_000_000)),
    )
    .await
    .body;
    let product_id = catalogue_item["id"].clone();
    let product_path = format!("/products/{}", product_id.as_str().unwrap());
    let put = (Method::PUT, product_path.as_str(), "/products/{id}");
    agree.body(put.clone(), Some(&admin.token), product_body(&unique_sku("agr"), 100, "eur", 1_000_000)).await;
    agree.body(put.clone(), Some(&admin.token), product_body("A", 100, "EUR", 1_000_000)).await;

    // Accounts: at least one of role and disabled, not null.
    let target = app.new_user("agree-target").await;
    let target_path = format!("/users/{}", target.id);
    let patch = (Method::PATCH, target_path.as_str(), "/users/{id}");
    for body in [
        json!({"role": "user"}),
        json!({"disabled": false}),
        json!({"role": null, "disabled": false}),
        json!({"role": "user", "disabled": null}),
        json!({}),
        json!({"role": null}),
        json!({"role": null, "disabled": null}),
        json!({"role": "root"}),
        json!({"role": "Admin"}),
        json!({"disabled": "no"}),
        json!({"disabled": false, "email": "x@example.com"}),
    ] {
        agree.body(patch.clone(), Some(&admin.token), body).await;
    }

    // Orders: 1..50 lines of distinct canonical ULIDs, quantities 1..1000.
    let orders = (Method::POST, "/orders", "/orders");
    let line = |id: &Value, quantity: i64| json!({"product_id": id, "quantity": quantity});
    let lowercase = json!(product_id.as_str().unwrap().to_lowercase());
    for body in [
        json!({"lines": [line(&product_id, 1)]}),
        json!({"lines": [line(&product_id, 1000)]}),
        json!({"lines": [{"product_id": product_id, "quantity": 2.0}]}),
        json!({"lines": [{"product_id": product_id, "quantity": 1.5}]}),
        json!({"lines": [line(&product_id, 0)]}),
        json!({"lines": [line(&product_id, 1001)]}),
        json!({"lines": [line(&product_id, -1)]}),
        json!({"lines": []}),
        json!({"lines": [line(&lowercase, 1)]}),
        json!({"lines": [line(&json!("8ZZZZZZZZZZZZZZZZZZZZZZZZZ"), 1)]}),
        json!({"lines": [line(&json!("01J9Z3NDEKTSV4RRFFQ69G5FA"), 1)]}),
        json!({"lines": [line(&product_id, 1), line(&product_id, 1)]}),
        json!({"lines": vec![line(&product_id, 1); 51]}),
        json!({"lines": [{"product_id": product_id, "quantity": 1, "price": 1}]}),
        json!({"lines": [line(&product_id, 1)], "coupon": "FREE"}),
    ] {
        agree.body(orders.clone(), Some(&customer.token), body).await;
    }
    let one_line = json!({"lines": [line(&product_id, 1)]});
    for key in [
        format!("key-{}", ulid::Ulid::new()),
        format!("{}", ulid::Ulid::new()).repeat(10)[..255].to_owned(),
        format!("{}", ulid::Ulid::new()).repeat(10)[..256].to_owned(),
        "with space".to_owned(),
        String::new(),
    ] {
        agree.parameter(orders.clone(), Some(&customer.token), ("Idempotency-Key", &key), Some(&one_line)).await;
    }

    // Order status changes: only cancelled or shipped (a customer shipping is a 403, past the parser).
    for status in ["cancelled", "shipped", "pending", "CANCELLED", "returned"] {
        let id = fresh_order(&customer, &product_id).await;
        let path = format!("/orders/{id}");
        agree.body((Method::PATCH, &path, "/orders/{id}"), Some(&customer.token), json!({"status": status})).await;
    }

    // Listings: limit, cursor, filters.
    let users = (Method::GET, "/users", "/users");
    for limit in ["1", "100", "0", "101", "-1", "ten", "1.5", ""] {
        agree.parameter(users.clone(), Some(&admin.token), ("limit", limit), None).await;
    }
    let page = send(Method::GET, "/users?limit=1", Some(&admin.token), &[], None).await.body;
    let cursor = page["pagination"]["next_cursor"].as_str().unwrap().to_owned();
    let (payload, _) = cursor.split_once('.').unwrap();
    for cursor in [cursor.as_str(), "", "abc", "a.b", &format!("{payload}.!"), &"a".repeat(1025)] {
        agree.parameter(users.clone(), Some(&admin.token), ("cursor", cursor), None).await;
    }
    // A cursor of the right shape that this listing did not issue: allowed by the schema (it can only describe
    // the shape), refused by the code (its MAC does not verify).
    let forged = format!("{payload}.{}", "A".repeat(43));
    let parameter = agree.contract.parameter("/api/v1/users", "get", "cursor");
    assert!(agree.contract.validator(&parameter["schema"]).is_valid(&json!(forged)));
    let exchange = send(Method::GET, &format!("/users?cursor={forged}"), Some(&admin.token), &[], None).await;
    assert_eq!(exchange.status, StatusCode::BAD_REQUEST, "{}", exchange.body);
    assert_eq!(exchange.body["error"]["code"], "invalid_cursor");

    let products = (Method::GET, "/products", "/products");
    for active in ["true", "false", "yes", "TRUE", "1", ""] {
        agree.parameter(products.clone(), Some(&admin.token), ("active", active), None).await;
    }
    let orders = (Method::GET, "/orders", "/orders");
    for status in ["pending", "confirmed", "rejected", "shipped", "cancelled", "Pending", "lost", ""] {
        agree.parameter(orders.clone(), Some(&customer.token), ("status", status), None).await;
    }

    assert!(
        agree.problems.is_empty(),
        "{} of {} cases disagree: {:#?}",
        agree.problems.len(),
        agree.cases,
        agree.problems
    );
    assert!(agree.cases >= 130, "only {} cases", agree.cases);
}
