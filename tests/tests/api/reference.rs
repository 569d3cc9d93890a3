//! The reference for people, as a person opens it: `GET /docs` in headless
//! Chromium (Debian's `chromium`, which `cargo xtask test` installs when
//! missing) renders every operation of docs/openapi.yaml, and the base URL
//! it offers is this stack's; `GET /openapi.yaml` is the document itself.
//! Both short addresses lead to the reference function the cloud deploys
//! (`GET /api/v1/docs/{file}`).

use std::process::Command;

use serde_json::Value;

use crate::helpers::{app, env};

/// The document as the repository holds it.
fn document() -> Value {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    serde_yaml::from_str(&std::fs::read_to_string(root.join("docs/openapi.yaml")).unwrap()).unwrap()
}

#[tokio::test]
async fn the_raw_document_is_served_with_this_stack_as_its_first_server() {
    let app = app();
    let response = app.client.get(format!("{}/openapi.yaml", app.base)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/yaml"));
    let served: Value = serde_yaml::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(served["servers"][0]["url"], app.base.as_str());
    let repository = document();
    assert_eq!(served["paths"], repository["paths"], "the served document's operations are the repository's");
    assert_eq!(
        served["servers"].as_array().unwrap()[1..],
        repository["servers"].as_array().unwrap()[..],
        "the other servers follow"
    );
}

#[tokio::test]
async fn the_page_and_swagger_ui_come_from_the_reference_function_with_the_pages_own_policy() {
    let app = app();
    let page = app.client.get(format!("{}/docs", app.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.url().path(), "/api/v1/docs/index.html", "the short address redirects to the function");
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let policy = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(policy.contains("style-src 'self' 'unsafe-inline'"), "{policy}");
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let bundle = app.client.get(format!("{}/api/v1/docs/swagger-ui-bundle.js", app.base)).send().await.unwrap();
    assert_eq!(bundle.status(), 200);
    assert!(bundle.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    assert!(bundle.text().await.unwrap().contains("SwaggerUIBundle"));
    let other = app.client.get(format!("{}/api/v1/docs/package.json", app.base)).send().await.unwrap();
    assert_eq!(other.status(), 404);
}

#[tokio::test]
async fn the_reference_page_renders_every_operation_and_offers_this_stacks_url() {
    let app = app();
    let chromium = env("SHOP_CHROMIUM");
    let profile = std::env::temp_dir().join(format!("shop-chromium-{}", ulid::Ulid::new()));
    let url = format!("{}/docs", app.base);
    let output = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // Runs the page's scripts (fetching and rendering the document)
            // before the DOM is dumped.
            "--virtual-time-budget=20000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--dump-dom", &url])
        .output()
        .expect("Chromium starts");
    let _ = std::fs::remove_dir_all(&profile);
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "chromium: {}\n{}", output.status, String::from_utf8_lossy(&output.stderr));

    let mut missing = Vec::new();
    let mut operations = 0;
    for item in document()["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            operations += 1;
            let tag = operation["tags"][0].as_str().unwrap();
            let id = operation["operationId"].as_str().unwrap();
            // Swagger UI's element for an operation: `operations-<tag>-<operationId>`.
            if !dom.contains(&format!("id=\"operations-{tag}-{id}\"")) {
                missing.push(format!("{tag}/{id}"));
            }
        }
    }
    assert!(operations > 0);
    assert!(missing.is_empty(), "not rendered: {missing:?}\n(dom: {} bytes)", dom.len());
    // The servers menu offers this stack first, so "Try it out" calls it.
    let servers = dom.split("id=\"servers\"").nth(1).expect("a servers menu");
    let first = servers.split("<option").nth(1).expect("a server in the menu");
    assert!(
        first.contains(&format!("value=\"{}\"", app.base)),
        "the first server offered is {first:?}, not {}",
        app.base
    );
}
