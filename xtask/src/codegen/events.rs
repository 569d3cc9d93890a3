//! The sample event of every API function, `events/<name>.json`: an API
//! Gateway REST (v1) proxy event, usable with `cargo lambda invoke
//! --data-file` and replayed by the black-box tests. Everything but what is
//! particular to a route is the same in every event, so only those particulars
//! are written by hand, in `[package.metadata.deploy.sample]` (the concrete
//! path, query, body, extra headers, `guest = true` for a request without a
//! token); the route comes from `route`. Queue and schedule events stay
//! hand-written: their payloads are the messages themselves.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::metadata::{Function, Route, Sample, Trigger};

/// The access token every non-guest sample carries: a well-formed JWT whose
/// signature is a placeholder (`sample-signature-not-valid`), so a deployed
/// function refuses it with a 401 and a local one with the test keys too.
const SAMPLE_TOKEN: &str = "Bearer eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0.eyJzdWIiOiIwMUo5WjNOREVLVFNWNFJSRkZRNjlHNUZBViIsInJvbGUiOiJ1c2VyIiwiaXNzIjoic2hvcC1hcGkiLCJhdWQiOiJzaG9wLWFwaSIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAwOTAwfQ.c2FtcGxlLXNpZ25hdHVyZS1ub3QtdmFsaWQ";

/// The headers every sample sends, in order.
const BASE_HEADERS: [(&str, &str); 6] = [
    ("Accept", "application/json"),
    ("Host", "abc123.execute-api.us-east-1.amazonaws.com"),
    ("User-Agent", "curl/8.5.0"),
    ("X-Forwarded-For", "203.0.113.7"),
    ("X-Forwarded-Port", "443"),
    ("X-Forwarded-Proto", "https"),
];

/// The events/ files codegen writes: `(path relative to the root, contents)`.
pub fn files(functions: &[Function]) -> Vec<(String, String)> {
    functions
        .iter()
        .filter_map(|function| match (&function.trigger, &function.sample) {
            (Trigger::Route(route), Some(sample)) => {
                Some((format!("events/{}.json", function.package), api_event(route, sample)))
            }
            _ => None,
        })
        .collect()
}

/// A JSON value whose objects keep the order they are written in (the
/// workspace's `serde_json` sorts keys, and API Gateway's order reads better).
enum Json {
    Object(Vec<(String, Json)>),
    Array(Vec<Json>),
    Text(String),
    Number(i64),
    Null,
    Bool(bool),
}

fn text(value: &str) -> Json {
    Json::Text(value.to_owned())
}

fn object<'a>(pairs: impl IntoIterator<Item = (&'a str, Json)>) -> Json {
    Json::Object(pairs.into_iter().map(|(key, value)| (key.to_owned(), value)).collect())
}

/// Pretty-printed with two spaces, as `serde_json::to_string_pretty` and
/// Python's `json.dumps(indent=2)` print it.
fn render(value: &Json, indent: usize, out: &mut String) {
    let pad = |depth: usize| "  ".repeat(depth);
    match value {
        Json::Object(pairs) if pairs.is_empty() => out.push_str("{}"),
        Json::Object(pairs) => {
            out.push_str("{\n");
            for (index, (key, value)) in pairs.iter().enumerate() {
                let _ = write!(out, "{}{}: ", pad(indent + 1), serde_json::to_string(key).expect("a string"));
                render(value, indent + 1, out);
                out.push_str(if index + 1 < pairs.len() { ",\n" } else { "\n" });
            }
            let _ = write!(out, "{}}}", pad(indent));
        }
        Json::Array(items) if items.is_empty() => out.push_str("[]"),
        Json::Array(items) => {
            out.push_str("[\n");
            for (index, item) in items.iter().enumerate() {
                out.push_str(&pad(indent + 1));
                render(item, indent + 1, out);
                out.push_str(if index + 1 < items.len() { ",\n" } else { "\n" });
            }
            let _ = write!(out, "{}]", pad(indent));
        }
        Json::Text(value) => out.push_str(&serde_json::to_string(value).expect("a string")),
        Json::Number(value) => {
            let _ = write!(out, "{value}");
        }
        Json::Null => out.push_str("null"),
        Json::Bool(value) => {
            let _ = write!(out, "{value}");
        }
    }
}

/// The path parameters `path` gives the route's template, e.g. `{id}`.
fn path_parameters(template: &str, path: &str) -> BTreeMap<String, String> {
    template
        .split('/')
        .zip(path.split('/'))
        .filter_map(|(pattern, value)| {
            let name = pattern.strip_prefix('{')?.strip_suffix('}')?;
            Some((name.to_owned(), value.to_owned()))
        })
        .collect()
}

/// Single values and their one-item lists, or `null` for none.
fn single_and_multi(pairs: &[(String, String)]) -> (Json, Json) {
    if pairs.is_empty() {
        return (Json::Null, Json::Null);
    }
    (
        Json::Object(pairs.iter().map(|(key, value)| (key.clone(), text(value))).collect()),
        Json::Object(pairs.iter().map(|(key, value)| (key.clone(), Json::Array(vec![text(value)]))).collect()),
    )
}

/// The event API Gateway sends for `sample` on `route`.
pub fn api_event(route: &Route, sample: &Sample) -> String {
    let path = sample.path.clone().unwrap_or_else(|| route.path.clone());
    let method = route.method.as_str();
    let mut headers: Vec<(String, String)> =
        BASE_HEADERS.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect();
    if sample.body.is_some() {
        headers.push(("Content-Type".into(), "application/json".into()));
    }
    if !sample.guest {
        headers.push(("Authorization".into(), SAMPLE_TOKEN.into()));
    }
    headers.extend(sample.headers.iter().map(|(name, value)| (name.clone(), value.clone())));
    let (headers, multi_headers) = single_and_multi(&headers);
    let query: Vec<(String, String)> = sample.query.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let (query, multi_query) = single_and_multi(&query);
    let parameters: Vec<(String, String)> = path_parameters(&route.path, &path).into_iter().collect();
    let parameters = single_and_multi(&parameters).0;
    let identity = object([
        ("cognitoIdentityPoolId", text("theCognitoIdentityPoolId")),
        ("accountId", text("theAccountId")),
        ("cognitoIdentityId", text("theCognitoIdentityId")),
        ("caller", text("theCaller")),
        ("apiKey", text("theApiKey")),
        ("apiKeyId", text("theApiKeyId")),
        ("accessKey", text("ANEXAMPLEOFACCESSKEY")),
        ("sourceIp", text("203.0.113.7")),
        ("cognitoAuthenticationType", text("theCognitoAuthenticationType")),
        ("cognitoAuthenticationProvider", text("theCognitoAuthenticationProvider")),
        ("userArn", text("theUserArn")),
        ("userAgent", text("PostmanRuntime/2.4.5")),
        ("user", text("theUser")),
    ]);
    let context = object([
        ("accountId", text("12345678912")),
        ("resourceId", text("roq9wj")),
        ("path", text(&format!("/v1{path}"))),
        ("stage", text("v1")),
        ("domainName", text("gy415nuibc.execute-api.us-east-2.amazonaws.com")),
        ("domainPrefix", text("y0ne18dixk")),
        ("requestId", text("deef4878-7910-11e6-8f14-25afc3e9ae33")),
        ("protocol", text("HTTP/1.1")),
        ("identity", identity),
        (
            "authorizer",
            object([("principalId", text("admin")), ("clientId", Json::Number(1)), ("clientName", text("Exata"))]),
        ),
        ("resourcePath", text(&route.path)),
        ("httpMethod", text(method)),
        ("requestTime", text("15/May/2020:06:01:09 +0000")),
        ("requestTimeEpoch", Json::Number(1_589_522_469_693)),
        ("apiId", text("gy415nuibc")),
    ]);
    let event = object([
        ("resource", text(&route.path)),
        ("path", text(&path)),
        ("httpMethod", text(method)),
        ("headers", headers),
        ("multiValueHeaders", multi_headers),
        ("queryStringParameters", query),
        ("multiValueQueryStringParameters", multi_query),
        ("pathParameters", parameters),
        ("stageVariables", Json::Null),
        ("requestContext", context),
        ("body", sample.body.as_deref().map_or(Json::Null, text)),
        ("isBase64Encoded", Json::Bool(false)),
    ]);
    let mut out = String::new();
    render(&event, 0, &mut out);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::super::metadata::Method;
    use super::*;

    fn route(method: Method, path: &str) -> Route {
        Route { method, path: path.to_owned() }
    }

    #[test]
    fn the_route_and_the_sample_make_the_whole_event() {
        let sample = Sample {
            path: Some("/api/v1/orders/01J9Z3NDEKTSV4RRFFQ69G5FAX".into()),
            body: Some(r#"{"status": "cancelled"}"#.into()),
            headers: BTreeMap::from([("If-Match".into(), "\"1\"".into())]),
            ..Sample::default()
        };
        let event: serde_json::Value =
            serde_json::from_str(&api_event(&route(Method::Patch, "/api/v1/orders/{id}"), &sample)).unwrap();
        assert_eq!(event["resource"], "/api/v1/orders/{id}");
        assert_eq!(event["path"], "/api/v1/orders/01J9Z3NDEKTSV4RRFFQ69G5FAX");
        assert_eq!(event["httpMethod"], "PATCH");
        assert_eq!(event["pathParameters"]["id"], "01J9Z3NDEKTSV4RRFFQ69G5FAX");
        assert_eq!(event["headers"]["Content-Type"], "application/json");
        assert_eq!(event["headers"]["If-Match"], "\"1\"");
        assert_eq!(event["multiValueHeaders"]["If-Match"][0], "\"1\"");
        assert!(event["headers"]["Authorization"].as_str().unwrap().starts_with("Bearer ey"));
        assert_eq!(event["requestContext"]["path"], "/v1/api/v1/orders/01J9Z3NDEKTSV4RRFFQ69G5FAX");
        assert_eq!(event["body"], r#"{"status": "cancelled"}"#);
    }

    #[test]
    fn a_guest_get_has_no_token_no_body_and_null_parameters() {
        let sample = Sample { guest: true, ..Sample::default() };
        let text = api_event(&route(Method::Get, "/api/v1/health"), &sample);
        let event: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(event["headers"].get("Authorization").is_none());
        assert!(event["headers"].get("Content-Type").is_none());
        assert_eq!(event["pathParameters"], serde_json::Value::Null);
        assert_eq!(event["queryStringParameters"], serde_json::Value::Null);
        assert_eq!(event["body"], serde_json::Value::Null);
        // Printed as serde_json prints it, keys in API Gateway's order.
        assert!(text.starts_with("{\n  \"resource\": \"/api/v1/health\",\n  \"path\""), "{text}");
    }
}
