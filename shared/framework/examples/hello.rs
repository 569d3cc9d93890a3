//! The smallest function on the framework: `POST /hello` with
//! `{"name": "Ada"}` answers `{"greeting": "Hello, Ada!"}`. Behind it, the
//! framework's HTTP layer does what every route gets: the security headers,
//! the body limit, strict JSON (a malformed body is a 400, a wrong shape a
//! 422, both in the one error envelope), the request's time budget, one log
//! line and its metrics.
//!
//! Build it with `cargo build -p framework --examples`; `cargo test -p
//! framework --example hello` runs its tests, which drive the handler through
//! the layer without a Lambda runtime.

use framework::Settings;
use framework::http::{Access, ApiError, ApiRequest, ApiResponse, HttpServer};
use serde::Deserialize;

/// The request body: only a name, anything else refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Greet {
    name: String,
}

/// The route's handler: a plain async function, which tests call directly.
async fn hello(request: ApiRequest) -> Result<ApiResponse, ApiError> {
    let Greet { name } = request.json()?;
    Ok(ApiResponse::ok(serde_json::json!({ "greeting": format!("Hello, {name}!") })))
}

/// The layer this function runs behind, configured from `lookup` (every
/// setting has a default: this function needs none).
fn server(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<HttpServer> {
    let settings = Settings::from_lookup(lookup)?;
    Ok(HttpServer::new("hello", Access::Guest, &settings))
}

fn main() -> Result<(), lambda_http::Error> {
    framework::run(async {
        framework::telemetry::init("hello");
        server(|name| std::env::var(name).ok())?.serve(hello).await
    })
}

#[cfg(test)]
mod tests {
    use lambda_http::{Body, Request};

    use super::*;

    fn post(body: &str) -> Request {
        let mut request = Request::new(Body::Text(body.to_owned()));
        *request.method_mut() = http::Method::POST;
        request.headers_mut().insert("content-type", http::HeaderValue::from_static("application/json"));
        request
    }

    fn json(body: &Body) -> serde_json::Value {
        match body {
            Body::Text(text) => serde_json::from_str(text).unwrap(),
            other => panic!("not a text body: {other:?}"),
        }
    }

    #[tokio::test]
    async fn greets_by_name_with_the_security_headers() {
        let server = server(|_| None).unwrap();
        let response = server.handle(post(r#"{"name":"Ada"}"#), &hello).await;
        assert_eq!(response.status(), 200);
        assert_eq!(json(response.body())["greeting"], "Hello, Ada!");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    }

    #[tokio::test]
    async fn a_bad_body_is_a_client_error_in_the_envelope_never_a_500() {
        let server = server(|_| None).unwrap();
        let malformed = server.handle(post("{"), &hello).await;
        assert_eq!(malformed.status(), 400);
        assert_eq!(json(malformed.body())["error"]["code"], "malformed_json");
        let wrong_shape = server.handle(post(r#"{"name":"Ada","admin":true}"#), &hello).await;
        assert_eq!(wrong_shape.status(), 422);
        assert_eq!(json(wrong_shape.body())["error"]["code"], "validation_failed");
    }
}
