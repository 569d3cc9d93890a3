//! GET /api/v1/docs/{file}: the API's reference for people, served by the
//! API itself so it always describes the commit that answers. `index.html`
//! is Swagger UI over `openapi.yaml` (docs/openapi.yaml, compiled in, its
//! first server the URL the caller reached the API at, so "Try it out" calls
//! this stack). Swagger UI's own files come from the pinned swagger-ui-dist
//! (testing/local-cloud/tools/contract): `cargo xtask package` puts them
//! beside the function's binary, the local stack points at `.tools/contract`;
//! nothing is fetched from a CDN when the page runs.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use crate::error::AppError;
use anyhow::Context;
use framework::http::{ApiError, ApiRequest, ApiResponse};
use http::HeaderValue;

/// The contract, as the repository holds it.
pub const DOCUMENT: &str = include_str!("../../../docs/openapi.yaml");
const PAGE: &str = include_str!("reference/index.html");
const INIT: &str = include_str!("reference/init.js");

/// Swagger UI styles elements inline and draws icons from `data:` URLs;
/// everything else stays the API's own policy (same origin only, no framing).
pub const PAGE_POLICY: &str =
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'";

/// The swagger-ui-dist files the page loads. Only these are read and served.
pub const ASSETS: [&str; 2] = ["swagger-ui.css", "swagger-ui-bundle.js"];

/// Where the function finds Swagger UI's files: `REFERENCE_ASSETS_DIR` when
/// set (the local stack), else `swagger-ui` beside the binary in the
/// deployment package (`LAMBDA_TASK_ROOT`).
pub fn assets_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("REFERENCE_ASSETS_DIR") {
        return PathBuf::from(dir);
    }
    let root = std::env::var_os("LAMBDA_TASK_ROOT").map_or_else(|| PathBuf::from("."), PathBuf::from);
    root.join("swagger-ui")
}

/// The reference's files, read once at start-up.
#[derive(Debug, Clone)]
pub struct Reference {
    css: String,
    bundle: String,
    /// The API's public URL when the operator names one (`PUBLIC_API_URL`:
    /// the edge's or a custom domain's); otherwise each request's own.
    public_url: Option<String>,
}

impl Reference {
    /// Reads Swagger UI's files from `dir`; a missing file stops the start,
    /// so a package built without them never answers with a blank page.
    pub fn load(dir: &Path, public_url: Option<String>) -> anyhow::Result<Self> {
        let read = |name: &str| {
            let file = dir.join(name);
            std::fs::read_to_string(&file).with_context(|| {
                format!(
                    "reading {} (`cargo xtask package` puts Swagger UI beside the binary; locally \
                     REFERENCE_ASSETS_DIR names .tools/contract/node_modules/swagger-ui-dist)",
                    file.display()
                )
            })
        };
        let [css, bundle] = ASSETS;
        let public_url = public_url.map(|url| url.trim_end_matches('/').to_owned()).filter(|url| !url.is_empty());
        Ok(Self { css: read(css)?, bundle: read(bundle)?, public_url })
    }

    /// The answer to a GET of `{file}`; any other name is a 404.
    pub fn answer(&'static self, request: &ApiRequest) -> Result<ApiResponse, AppError> {
        let file = request.path_params.get("file").map(String::as_str).unwrap_or_default();
        let response = match file {
            "index.html" => ApiResponse::text("text/html; charset=utf-8", PAGE)
                .header(http::header::CONTENT_SECURITY_POLICY, PAGE_POLICY),
            "init.js" => ApiResponse::text("text/javascript; charset=utf-8", INIT),
            "swagger-ui.css" => ApiResponse::text("text/css; charset=utf-8", self.css.as_str()),
            "swagger-ui-bundle.js" => ApiResponse::text("text/javascript; charset=utf-8", self.bundle.as_str()),
            "openapi.yaml" => {
                let base = self.public_url.as_deref().or(request.base_url.as_deref());
                let document = match base {
                    Some(base) => Cow::Owned(with_first_server(DOCUMENT, base)),
                    None => Cow::Borrowed(DOCUMENT),
                };
                ApiResponse::text("application/yaml; charset=utf-8", document)
            }
            _ => return Err(ApiError::NotFound.into()),
        };
        Ok(response)
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

/// The page's policy as a header value, for a server that serves the page itself.
pub fn page_policy() -> HeaderValue {
    HeaderValue::from_static(PAGE_POLICY)
}

#[cfg(test)]
mod tests {
    use http::Method;

    use super::*;

    fn reference(public_url: Option<&str>) -> &'static Reference {
        // A folder per call: the tests run in parallel, and a write truncates the file
        // another test may be reading (that test then read an empty stylesheet).
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("reference-assets-{}-{call}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("swagger-ui.css"), "body{}").unwrap();
        std::fs::write(dir.join("swagger-ui-bundle.js"), "var SwaggerUIBundle;").unwrap();
        framework::forever(Reference::load(&dir, public_url.map(str::to_owned)).unwrap())
    }

    fn get(file: &str, base_url: Option<&str>) -> ApiRequest {
        let mut request = ApiRequest::new(Method::GET);
        request.path_params.insert("file".into(), file.into());
        request.base_url = base_url.map(str::to_owned);
        request
    }

    fn servers(response: &ApiResponse) -> Vec<String> {
        let value: serde_json::Value = serde_yaml::from_str(&response.text.as_ref().unwrap().text).unwrap();
        value["servers"].as_array().unwrap().iter().map(|s| s["url"].as_str().unwrap().to_owned()).collect()
    }

    #[test]
    fn the_document_names_the_url_it_was_reached_at_first_and_keeps_the_others() {
        let reference = reference(None);
        let served = reference.answer(&get("openapi.yaml", Some("https://abc.execute-api.eu-west-1.amazonaws.com/v1")));
        let urls = servers(&served.unwrap());
        let repository = servers(&ApiResponse::text("application/yaml", DOCUMENT));
        assert_eq!(urls[0], "https://abc.execute-api.eu-west-1.amazonaws.com/v1");
        assert_eq!(urls[1..], repository[..], "the repository's servers follow");
    }

    #[test]
    fn an_operators_public_url_wins_over_the_url_a_request_came_through() {
        let reference = reference(Some("https://shop.example.net/"));
        let served = reference.answer(&get("openapi.yaml", Some("https://origin.example/v1"))).unwrap();
        assert_eq!(servers(&served)[0], "https://shop.example.net");
    }

    #[test]
    fn only_the_page_its_script_the_document_and_listed_assets_are_served() {
        let reference = reference(None);
        for file in ["index.html", "init.js", "openapi.yaml", "swagger-ui.css", "swagger-ui-bundle.js"] {
            assert!(reference.answer(&get(file, None)).is_ok(), "{file}");
        }
        for file in ["package.json", "../Cargo.toml", "", "index.html/"] {
            assert!(matches!(reference.answer(&get(file, None)), Err(AppError::Http(ApiError::NotFound))), "{file}");
        }
        let page = reference.answer(&get("index.html", None)).unwrap();
        assert!(
            page.headers
                .iter()
                .any(|(name, value)| name == http::header::CONTENT_SECURITY_POLICY && value == PAGE_POLICY)
        );
        assert_eq!(reference.answer(&get("swagger-ui.css", None)).unwrap().text.unwrap().text, "body{}");
    }

    #[test]
    fn a_package_without_swagger_ui_does_not_start() {
        let error = Reference::load(Path::new("/nonexistent"), None).unwrap_err();
        assert!(format!("{error:#}").contains("swagger-ui.css"), "{error:#}");
    }
}
