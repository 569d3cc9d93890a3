//! Clients generated from docs/openapi.yaml, as a caller makes them, driving a
//! customer's journey against this stack (register, verify with the emailed link read back from moto, sign in, browse, order
//! with an Idempotency-Key and its replay, read it back): TypeScript
//! (openapi-typescript types for openapi-fetch, compiled with strict `tsc`)
//! and Python (openapi-python-client, checked with `mypy --strict`). A broken
//! generation, a type error or a failed step fails the test. The journeys are
//! tests/clients/; the generated code goes to `.local/test/clients` and is
//! never committed. The tools are pinned (`.tools/contract`,
//! `.tools/clients-python`) and installed by `cargo xtask test`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::helpers::{app, env};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// Runs `command`, failing with its output when it fails.
fn run(command: &mut Command, what: &str) -> String {
    let output = command.output().unwrap_or_else(|error| panic!("{what}: could not start: {error}"));
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{what} failed ({}):\n{text}", output.status);
    text
}

/// A fresh folder for one client under `.local/test/clients`.
fn workspace(name: &str) -> PathBuf {
    let dir = root().join(".local/test/clients").join(format!("{name}-{}", ulid::Ulid::new()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A product a customer can order, made by an admin of this test.
async fn orderable_product() -> String {
    let app = app();
    let admin = app.new_admin("clients").await;
    let product = app.new_product(&admin.token, "clients", 1999, 50).await;
    product["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_generated_typescript_client_compiles_strictly_and_drives_a_journey() {
    let app = app();
    let tools = PathBuf::from(env("SHOP_CONTRACT_TOOLS"));
    let product = orderable_product().await;
    let dir = workspace("typescript");
    for file in ["journey.ts", "tsconfig.json"] {
        std::fs::copy(root().join("tests/clients").join(file), dir.join(file)).unwrap();
    }
    std::fs::write(dir.join("package.json"), "{\"type\": \"module\", \"private\": true}\n").unwrap();
    std::os::unix::fs::symlink(tools.join("node_modules"), dir.join("node_modules")).unwrap();
    let bin = tools.join("node_modules/.bin");
    run(
        Command::new(bin.join("openapi-typescript"))
            .arg(root().join("docs/openapi.yaml"))
            .args(["-o", "shop-api.d.ts"])
            .current_dir(&dir),
        "openapi-typescript",
    );
    run(Command::new(bin.join("tsc")).args(["-p", "tsconfig.json"]).current_dir(&dir), "tsc (strict)");
    let said = run(
        Command::new("node")
            .arg("out/journey.js")
            .env("SHOP_API_URL", &app.base)
            .env("SHOP_PRODUCT_ID", &product)
            .env("SHOP_MOTO_ENDPOINT", env("SHOP_MOTO_ENDPOINT"))
            .current_dir(&dir),
        "the TypeScript journey",
    );
    assert!(said.contains("typescript client: order"), "{said}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_generated_python_client_passes_mypy_strict_and_drives_a_journey() {
    let app = app();
    let bin = PathBuf::from(env("SHOP_CLIENTS_PYTHON"));
    let product = orderable_product().await;
    let dir = workspace("python");
    for file in ["journey.py", "mypy.ini"] {
        std::fs::copy(root().join("tests/clients").join(file), dir.join(file)).unwrap();
    }
    // The generator runs ruff from PATH on what it wrote (ruff comes with it).
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let generated = run(
        Command::new(bin.join("openapi-python-client"))
            .args(["generate", "--meta", "none", "--output-path", "shop_client", "--path"])
            .arg(root().join("docs/openapi.yaml"))
            .env("PATH", &path)
            .current_dir(&dir),
        "openapi-python-client",
    );
    assert!(!generated.contains("Warning"), "the generator warned:\n{generated}");
    run(
        Command::new(bin.join("mypy"))
            .args(["--config-file", "mypy.ini", "--cache-dir", ".mypy_cache", "shop_client", "journey.py"])
            .current_dir(&dir),
        "mypy --strict",
    );
    let said = run(
        Command::new(bin.join("python"))
            .arg("journey.py")
            .env("SHOP_API_URL", &app.base)
            .env("SHOP_PRODUCT_ID", &product)
            .env("SHOP_MOTO_ENDPOINT", env("SHOP_MOTO_ENDPOINT"))
            .current_dir(&dir),
        "the Python journey",
    );
    assert!(said.contains("python client: order"), "{said}");
    let _ = std::fs::remove_dir_all(&dir);
}
