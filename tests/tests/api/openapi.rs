//! docs/openapi.yaml against the system: it documents exactly the routed
//! operations, and real responses match the schemas it promises.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::catalogue::{product_body, unique_sku};
use crate::helpers::{PASSWORD, app, unique_email};

fn document() -> Value {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let text = std::fs::read_to_string(root.join("docs/openapi.yaml")).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

/// Checks `value` against `schema`, for the JSON Schema subset the document
/// uses; returns every mismatch with its path.
fn check(document: &Value, schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/schemas/");
        return check(document, &document["components"]["schemas"][name], value, at, problems);
    }
    if let Some(expected) = schema.get("const")
        && value != expected
    {
        problems.push(format!("{at}: expected {expected}, got {value}"));
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        problems.push(format!("{at}: {value} is not one of {allowed:?}"));
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let matches = |kind: &str| match kind {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        _ => true,
    };
    if !types.is_empty() && !types.iter().any(|kind| matches(kind)) {
        problems.push(format!("{at}: expected {types:?}, got {value}"));
        return;
    }
    for required in schema["required"].as_array().into_iter().flatten() {
        let key = required.as_str().unwrap();
        if value.get(key).is_none() {
            problems.push(format!("{at}: missing required {key}"));
        }
    }
    if let (Some(properties), Some(object)) = (schema["properties"].as_object(), value.as_object()) {
        for (key, inner) in object {
            match properties.get(key) {
                Some(property) => check(document, property, inner, &format!("{at}.{key}"), problems),
                None => problems.push(format!("{at}: undocumented property {key}")),
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (index, item) in array.iter().enumerate() {
            check(document, items, item, &format!("{at}[{index}]"), problems);
        }
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
    let document = document();
    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((path.clone(), method.clone()));
        }
    }
    assert_eq!(documented, routed);
}

#[tokio::test]
async fn real_responses_match_the_documented_schemas() {
    let document = document();
    let app = app();
    let admin = app.new_admin("openapi").await;
    let email = unique_email("openapi");
    let mut problems = Vec::new();
    let mut record = |path: &str, method: &str, status: StatusCode, body: &Value| {
        let operation = &document["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is not documented");
        let response = &operation["responses"][status.as_str()];
        assert!(response.is_object(), "{method} {path}: status {status} is not documented");
        let schema = &response["content"]["application/json"]["schema"];
        if !schema.is_null() {
            check(&document, schema, body, &format!("{method} {path} {status}"), &mut problems);
        }
    };
    let call = async |method: Method, path: &str, token: Option<&str>, body: Option<Value>| {
        let response = app.request(method, path, token, body).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        (status, body)
    };

    let (status, body) = call(Method::GET, "/health", None, None).await;
    record("/api/v1/health", "get", status, &body);
    let credentials = json!({"email": email, "password": PASSWORD});
    let (status, user) = call(Method::POST, "/auth/register", None, Some(credentials.clone())).await;
    record("/api/v1/auth/register", "post", status, &user);
    let (status, body) = call(Method::POST, "/auth/register", None, Some(json!({"email": "x"}))).await;
    record("/api/v1/auth/register", "post", status, &body);
    let (status, token) = call(Method::POST, "/auth/login", None, Some(credentials)).await;
    record("/api/v1/auth/login", "post", status, &token);
    let token = token["token"].as_str().unwrap().to_owned();
    let (status, body) = call(Method::GET, "/users/me", Some(&token), None).await;
    record("/api/v1/users/me", "get", status, &body);
    let (status, body) = call(Method::GET, "/users/me", None, None).await;
    record("/api/v1/users/me", "get", status, &body);
    let (status, body) = call(Method::GET, "/users?limit=2", Some(&admin.token), None).await;
    record("/api/v1/users", "get", status, &body);
    let (status, product) =
        call(Method::POST, "/products", Some(&admin.token), Some(product_body(&unique_sku("doc"), 700, "EUR", 3)))
            .await;
    record("/api/v1/products", "post", status, &product);
    let product_path = format!("/products/{}", product["id"].as_str().unwrap());
    let (status, body) = call(Method::GET, &product_path, None, None).await;
    record("/api/v1/products/{id}", "get", status, &body);
    let (status, body) = call(Method::GET, "/products?limit=2", None, None).await;
    record("/api/v1/products", "get", status, &body);
    let order = json!({"lines": [{"product_id": product["id"], "quantity": 1}]});
    let (status, order) = call(Method::POST, "/orders", Some(&token), Some(order)).await;
    record("/api/v1/orders", "post", status, &order);
    let (status, body) =
        call(Method::GET, &format!("/orders/{}", order["id"].as_str().unwrap()), Some(&token), None).await;
    record("/api/v1/orders/{id}", "get", status, &body);
    let (status, body) = call(Method::GET, "/orders?limit=2", Some(&token), None).await;
    record("/api/v1/orders", "get", status, &body);
    let (status, body) = call(Method::GET, "/orders/01J9Z3NDEKTSV4RRFFQ69G5FAV", Some(&token), None).await;
    record("/api/v1/orders/{id}", "get", status, &body);

    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(user["email"], email);
}

#[test]
fn the_schema_check_catches_mismatches() {
    let document = document();
    let user = json!({"$ref": "#/components/schemas/User"});
    let mut problems = Vec::new();
    check(&document, &user, &json!({"id": "x", "email": 7, "role": "root", "extra": true}), "user", &mut problems);
    let text = problems.join("\n");
    for expected in
        ["missing required disabled", "user.email: expected", "is not one of", "undocumented property extra"]
    {
        assert!(text.contains(expected), "{expected} not reported in:\n{text}");
    }
}
