//! Conventions that matter, checked rather than remembered: template.yaml,
//! the functions/ crates, the watch router and events/ agree, and the local
//! cloud holds exactly what the template declares. The function blocks and the
//! watch router are generated from each crate's `[package.metadata.deploy]`
//! (`cargo xtask codegen`, whose own tests refuse a route claimed twice, an
//! unversioned path or a stale region); these tests read the artefacts as SAM,
//! the local cloud and `cargo lambda watch` do.

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
            deployed.insert(route, function.package.clone());
        }
    }
    // Both are written from the same metadata: this proves the local cloud
    // reads the template's routes as the router has them.
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
        } else if path.extension().is_some_and(|extension| extension == "rs") {
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

/// The metric names `shared/framework/src/metrics/names.rs` lists in `ALL`
/// (every metric the functions emit), read from the source text.
fn emitted_metric_names() -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join("shared/framework/src/metrics/names.rs")).unwrap();
    let mut constants = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("pub const ") else { continue };
        let Some((name, value)) = rest.split_once(": &str = \"") else { continue };
        constants.insert(name.to_owned(), value.trim_end_matches("\";").to_owned());
    }
    let all = text.split("pub const ALL").nth(1).expect("names.rs has ALL");
    let listed: BTreeSet<String> = all
        .split('(')
        .skip(1)
        .filter_map(|entry| entry.split(',').next())
        .filter_map(|constant| constants.get(constant.trim()).cloned())
        .collect();
    assert!(listed.len() >= 10, "read ALL in names.rs: {listed:?}");
    listed
}

/// A YAML value's `!Ref` target.
fn yaml_ref(value: &serde_yaml::Value) -> Option<&str> {
    match value {
        serde_yaml::Value::Tagged(tagged) if tagged.tag == "Ref" => tagged.value.as_str(),
        _ => value.get("Ref").and_then(serde_yaml::Value::as_str),
    }
}

/// The metric names of namespace `namespace` in a dashboard body's text or
/// in a metric math expression: metric arrays (with their "." and "..."
/// shorthands) and `SEARCH('{namespace,...} MetricName="..."')`.
fn metric_names_in(text: &str, namespace: &str) -> Vec<String> {
    let mut names = Vec::new();
    let schema = format!("{{{namespace},");
    for search in text.split("SEARCH(").skip(1) {
        let search = search.split(')').next().unwrap_or_default();
        if !search.contains(&schema) {
            continue;
        }
        for part in search.split("MetricName=").skip(1) {
            let name = part.trim_start_matches(['\\', '"']).split(['\\', '"']).next().unwrap_or_default();
            names.push(name.to_owned());
        }
    }
    let Ok(document) = serde_json::from_str::<serde_json::Value>(text) else { return names };
    for widget in document["widgets"].as_array().into_iter().flatten() {
        let mut previous: Vec<serde_json::Value> = Vec::new();
        for row in widget["properties"]["metrics"].as_array().into_iter().flatten() {
            let plain: Vec<serde_json::Value> =
                row.as_array().unwrap().iter().filter(|x| !x.is_object()).cloned().collect();
            if plain.is_empty() {
                continue; // an expression (SEARCH, read above, or math)
            }
            let row: Vec<serde_json::Value> = if plain[0] == "..." {
                let kept = previous.len().saturating_sub(plain.len() - 1);
                previous[..kept].iter().chain(&plain[1..]).cloned().collect()
            } else {
                plain
                    .iter()
                    .enumerate()
                    .map(|(i, x)| if x == "." { previous.get(i).cloned().unwrap_or_default() } else { x.clone() })
                    .collect()
            };
            if row.first().and_then(serde_json::Value::as_str) == Some(namespace)
                && let Some(name) = row.get(1).and_then(serde_json::Value::as_str)
            {
                names.push(name.to_owned());
            }
            previous = row;
        }
    }
    names
}

#[test]
fn every_shop_metric_an_alarm_or_dashboard_reads_is_one_the_code_emits() {
    let emitted = emitted_metric_names();
    let template = Template::load_project().unwrap();
    // The functions' namespace: the root's MetricsNamespace parameter (its
    // default is what the code calls NAMESPACE), and in a nested stack the
    // parameter the root passes it in.
    let root_namespace = template.root.body["Parameters"]["MetricsNamespace"]["Default"].as_str().unwrap().to_owned();
    let metrics_rs = std::fs::read_to_string(root().join("shared/framework/src/metrics/mod.rs")).unwrap();
    assert!(
        metrics_rs.contains(&format!("pub const NAMESPACE: &str = \"{root_namespace}\";")),
        "MetricsNamespace's default is the code's NAMESPACE"
    );
    let mut read: Vec<(String, String, String)> = Vec::new();
    for stack in template.stacks() {
        let passed = &template.root.body["Resources"][stack.logical_id.as_str()]["Properties"]["Parameters"];
        let namespace_params: BTreeSet<String> = if stack.logical_id == template.root.logical_id {
            BTreeSet::from(["MetricsNamespace".to_owned()])
        } else {
            passed
                .as_mapping()
                .into_iter()
                .flatten()
                .filter(|(_, value)| yaml_ref(value) == Some("MetricsNamespace"))
                .map(|(name, _)| name.as_str().unwrap().to_owned())
                .collect()
        };
        let is_ours = |namespace: &serde_yaml::Value| {
            namespace.as_str() == Some(root_namespace.as_str())
                || yaml_ref(namespace).is_some_and(|p| namespace_params.contains(p))
        };
        let file = stack.path.strip_prefix(root()).unwrap().display().to_string();
        for (id, resource) in stack.body["Resources"].as_mapping().unwrap() {
            let id = id.as_str().unwrap();
            let properties = &resource["Properties"];
            match resource["Type"].as_str() {
                Some("AWS::CloudWatch::Alarm") => {
                    let mut metrics = vec![properties];
                    for query in properties["Metrics"].as_sequence().into_iter().flatten() {
                        metrics.push(&query["MetricStat"]["Metric"]);
                        if let Some(expression) = query["Expression"].as_str() {
                            for name in metric_names_in(expression, &root_namespace) {
                                read.push((file.clone(), id.to_owned(), name));
                            }
                        }
                    }
                    for metric in metrics {
                        if is_ours(&metric["Namespace"]) {
                            let name = metric["MetricName"].as_str().unwrap_or("(not a plain name)");
                            read.push((file.clone(), id.to_owned(), name.to_owned()));
                        }
                    }
                }
                Some("AWS::CloudWatch::Dashboard") => {
                    let body = match &properties["DashboardBody"] {
                        serde_yaml::Value::Tagged(tagged) => tagged.value.clone(),
                        other => other.clone(),
                    };
                    let mut text = body.as_str().or_else(|| body[0].as_str()).unwrap().to_owned();
                    for param in &namespace_params {
                        text = text.replace(&format!("${{{param}}}"), &root_namespace);
                    }
                    for name in metric_names_in(&text, &root_namespace) {
                        read.push((file.clone(), id.to_owned(), name));
                    }
                }
                _ => {}
            }
        }
    }
    let files: BTreeSet<&str> = read.iter().map(|(file, _, _)| file.as_str()).collect();
    for file in ["template.yaml", "infra/monitoring.yaml", "infra/dashboard.yaml"] {
        assert!(files.contains(file), "found no {root_namespace} metric read in {file}: {read:?}");
    }
    let unknown: Vec<String> = read
        .iter()
        .filter(|(_, _, name)| !emitted.contains(name))
        .map(|(file, id, name)| format!("{file}: {id} reads {root_namespace}/{name}"))
        .collect();
    assert!(
        unknown.is_empty(),
        "alarms or dashboard panels read {root_namespace} metrics the code does not emit (names.rs, ALL):\n  {}",
        unknown.join("\n  ")
    );
}

/// References to a tracker ("issue 16", "Step 11"), case-insensitive: a
/// document describes the defect or the work in words instead.
fn tracker_references(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let mut found = Vec::new();
    for word in ["issue ", "issues ", "step "] {
        for (at, _) in lower.match_indices(word) {
            let rest = &lower[at + word.len()..];
            let starts_a_word = at == 0 || !lower[..at].ends_with(|c: char| c.is_alphanumeric());
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if starts_a_word && !digits.is_empty() {
                found.push(format!("{}{digits}", &text[at..at + word.len()]));
            }
        }
    }
    found
}

#[test]
fn the_readme_is_a_guide_and_no_document_cites_a_tracker() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines <= 200,
        "README.md has {lines} lines: it is a guide (at most 200); runbooks go to docs/operations.md"
    );
    let mut documents = vec![root().join("README.md")];
    for dir in ["docs", "bench", "xtask/checks"] {
        for entry in std::fs::read_dir(root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "md") {
                documents.push(path);
            }
        }
    }
    for path in documents {
        let found = tracker_references(&std::fs::read_to_string(&path).unwrap());
        assert!(found.is_empty(), "{} cites a tracker ({found:?}): describe it in words", path.display());
    }
    assert_eq!(tracker_references("see Issue 12, step 3 and a tissue 4"), ["Issue 12", "step 3"]);
}

/// The subcommands of `cargo xtask`, as clap names them (kebab-case).
fn xtask_commands() -> Vec<String> {
    let main = std::fs::read_to_string(root().join("xtask/src/main.rs")).unwrap();
    let body = main.split("enum Command {").nth(1).unwrap().split("\n}\n").next().unwrap();
    body.lines()
        .filter_map(|line| line.strip_prefix("    "))
        .filter(|line| line.starts_with(|c: char| c.is_ascii_uppercase()))
        .map(|line| {
            let name: String = line.chars().take_while(char::is_ascii_alphanumeric).collect();
            let mut kebab = String::new();
            for (index, c) in name.chars().enumerate() {
                if c.is_ascii_uppercase() && index > 0 {
                    kebab.push('-');
                }
                kebab.push(c.to_ascii_lowercase());
            }
            kebab
        })
        .collect()
}

#[test]
fn the_code_map_names_every_function_and_every_xtask_command() {
    let architecture = std::fs::read_to_string(root().join("docs/architecture.md")).unwrap();
    let code_map = architecture.split("## 🗺️ Code map").nth(1).unwrap().split("\n## ").next().unwrap();
    let commands = xtask_commands();
    assert!(commands.len() >= 10 && commands.contains(&"create-admin".to_owned()), "{commands:?}");
    let functions = dir_names("functions", "");
    let missing: Vec<&String> =
        commands.iter().chain(&functions).filter(|name| !code_map.contains(&format!("`{name}`"))).collect();
    assert!(missing.is_empty(), "docs/architecture.md's code map does not name {missing:?}");
}
