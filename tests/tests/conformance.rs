//! Conventions that matter, checked rather than remembered: template.yaml,
//! the functions/ crates, the watch router and events/ agree, and the local
//! cloud holds exactly what the template declares.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use local_cloud::template::{Route, Template};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

fn dir_names(dir: &str, suffix: &str) -> BTreeSet<String> {
    std::fs::read_dir(root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|name| name.strip_suffix(suffix).map(str::to_owned))
        .collect()
}

/// (route, function) pairs of `[workspace.metadata.lambda.watch.router]`.
fn router() -> BTreeMap<Route, String> {
    let manifest: toml::Value = toml::from_str(&std::fs::read_to_string(root().join("Cargo.toml")).unwrap()).unwrap();
    let table = manifest["workspace"]["metadata"]["lambda"]["watch"]["router"].as_table().expect("router table");
    let mut routes = BTreeMap::new();
    for (path, targets) in table {
        for target in targets.as_array().unwrap() {
            let route = Route { method: target["method"].as_str().unwrap().to_owned(), path: path.clone() };
            assert!(routes.insert(route, target["function"].as_str().unwrap().to_owned()).is_none());
        }
    }
    routes
}

#[test]
fn every_function_crate_is_deployed_and_every_deployed_function_exists() {
    let template = Template::load_project().unwrap();
    let deployed: BTreeSet<String> = template.functions().unwrap().into_iter().map(|f| f.package).collect();
    let crates: BTreeSet<String> = dir_names("functions", "");
    assert_eq!(deployed, crates);
    for name in &crates {
        let manifest = std::fs::read_to_string(root().join("functions").join(name).join("Cargo.toml")).unwrap();
        assert!(manifest.contains(&format!("name = \"{name}\"")), "{name}: package name = folder name");
    }
}

#[test]
fn every_api_route_is_routed_locally_to_the_same_function() {
    let template = Template::load_project().unwrap();
    let mut deployed = BTreeMap::new();
    for function in template.functions().unwrap() {
        for route in function.routes {
            assert!(route.path.starts_with("/api/v1/"), "{route:?} is versioned");
            assert!(deployed.insert(route, function.package.clone()).is_none(), "one function per route");
        }
    }
    assert_eq!(deployed, router());
}

#[test]
fn every_function_has_a_sample_event_and_every_event_a_function() {
    let crates = dir_names("functions", "");
    let events = dir_names("events", ".json");
    assert_eq!(events, crates);
    let routes = router();
    for (route, function) in routes.into_iter().filter(|(route, _)| route.method != "OPTIONS") {
        let event: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(root().join(format!("events/{function}.json"))).unwrap())
                .unwrap();
        assert_eq!(event["httpMethod"], route.method.as_str(), "{function}");
        assert_eq!(event["resource"], route.path.as_str(), "{function}");
    }
}

/// Every `*.rs` file under `dir`, as paths relative to the workspace root.
/// Build output (`target/`) and hidden folders (`.git/`, `.tools/`, `.local/`
/// and other tool state) are not source and are skipped.
fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(&path, found);
            }
        } else if name.ends_with(".rs") {
            found.push(path.strip_prefix(root()).unwrap().to_owned());
        }
    }
}

#[test]
fn every_rust_file_opens_with_a_line_saying_what_it_is_for() {
    let mut files = Vec::new();
    rust_files(&root(), &mut files);
    assert!(files.iter().any(|file| file.ends_with("tests/conformance.rs")), "the walk found the sources: {files:?}");
    let mut undocumented: Vec<String> = files
        .iter()
        .filter(|file| {
            let text = std::fs::read_to_string(root().join(file)).unwrap();
            !text.lines().next().is_some_and(|first| first.starts_with("//!"))
        })
        .map(|file| file.display().to_string())
        .collect();
    undocumented.sort();
    assert!(
        undocumented.is_empty(),
        "{} Rust files do not open with a `//!` line saying what the file is for:\n  {}",
        undocumented.len(),
        undocumented.join("\n  ")
    );
}
