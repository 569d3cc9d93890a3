//! The API's reference for people, served by the local front beside the API:
//! `GET /openapi.yaml` (docs/openapi.yaml, its first server set to the URL
//! that served it, so "Try it out" calls this stack) and `GET /docs` (Swagger
//! UI, from the swagger-ui-dist pinned in
//! testing/local-cloud/tools/contract/package-lock.json and installed into
//! `.tools/contract`: nothing is fetched from a CDN when the page runs).

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;

/// The page's own files; the Swagger UI files it loads are listed in [`ASSETS`].
const PAGE: &str = include_str!("reference/index.html");
const INIT: &str = include_str!("reference/init.js");

/// The swagger-ui-dist files the page loads, and their media types. Only
/// these are served.
const ASSETS: [(&str, &str); 2] =
    [("swagger-ui.css", "text/css; charset=utf-8"), ("swagger-ui-bundle.js", "text/javascript; charset=utf-8")];

/// Swagger UI styles elements inline and draws icons from `data:` URLs;
/// everything else stays the API's own policy (same origin only, no framing).
const PAGE_POLICY: &str =
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'";

/// Where the reference's inputs are.
#[derive(Debug, Clone)]
pub struct Reference {
    /// docs/openapi.yaml.
    pub document: PathBuf,
    /// `.tools/contract/node_modules/swagger-ui-dist`.
    pub swagger_ui: PathBuf,
}

impl Reference {
    /// The answer to a GET of `path` if it is one of the reference's, with
    /// `base_url` the URL this front is called at.
    pub fn answer(&self, path: &str, base_url: &str) -> Option<Response<Full<Bytes>>> {
        match path {
            "/openapi.yaml" => Some(match std::fs::read_to_string(&self.document) {
                Ok(text) => ok(with_first_server(&text, base_url).into(), "application/yaml; charset=utf-8"),
                Err(error) => missing(&self.document, &error),
            }),
            "/docs" | "/docs/" => Some(ok(PAGE.into(), "text/html; charset=utf-8")),
            "/docs/init.js" => Some(ok(INIT.into(), "text/javascript; charset=utf-8")),
            _ => {
                let name = path.strip_prefix("/docs/")?;
                let (name, media_type) = ASSETS.into_iter().find(|(asset, _)| *asset == name)?;
                let file = self.swagger_ui.join(name);
                Some(match std::fs::read(&file) {
                    Ok(bytes) => ok(bytes.into(), media_type),
                    Err(error) => missing(&file, &error),
                })
            }
        }
    }
}

/// The document with `base_url` as its first server (described as the stack
/// that served it); the servers it lists follow unchanged.
pub fn with_first_server(document: &str, base_url: &str) -> String {
    let entry = format!(
        "servers:\n- url: {base_url}\n  description: This stack (the one that served this document)\n  x-internal: true\n"
    );
    document.replacen("servers:\n", &entry, 1)
}

fn ok(body: Bytes, media_type: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    headers.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn missing(file: &Path, error: &std::io::Error) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(format!(
        "{} is missing ({error}): `cargo xtask dev` installs the contract tools into .tools/contract",
        file.display()
    ))));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}

/// The reference's pages carry the API's security headers but a policy that
/// lets Swagger UI style itself.
pub fn page_policy() -> HeaderValue {
    HeaderValue::from_static(PAGE_POLICY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_served_document_names_its_own_stack_first_and_keeps_the_others() {
        let document = "openapi: 3.1.0\nservers:\n- url: http://127.0.0.1:9000\n  description: local\npaths: {}\n";
        let served = with_first_server(document, "http://127.0.0.1:4321");
        let value: serde_json::Value = serde_yaml::from_str(&served).unwrap();
        let urls: Vec<&str> = value["servers"].as_array().unwrap().iter().map(|s| s["url"].as_str().unwrap()).collect();
        assert_eq!(urls, ["http://127.0.0.1:4321", "http://127.0.0.1:9000"]);
    }

    #[test]
    fn only_the_pages_document_and_listed_assets_are_served() {
        let reference = Reference {
            document: PathBuf::from("/nonexistent/openapi.yaml"),
            swagger_ui: PathBuf::from("/nonexistent"),
        };
        assert!(reference.answer("/docs", "http://x").is_some_and(|r| r.status() == StatusCode::OK));
        assert!(reference.answer("/docs/init.js", "http://x").is_some());
        assert!(reference.answer("/docs/swagger-ui.css", "http://x").is_some());
        assert!(reference.answer("/docs/package.json", "http://x").is_none());
        assert!(reference.answer("/docs/../../etc/passwd", "http://x").is_none());
        assert!(reference.answer("/api/v1/health", "http://x").is_none());
    }
}
