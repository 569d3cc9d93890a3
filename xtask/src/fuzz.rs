//! `cargo xtask fuzz-api`: contract fuzzing of the API with schemathesis,
//! from docs/openapi.yaml, against a local stack: every operation, every
//! check (`--checks all`), every phase (examples, coverage, fuzzing, and
//! stateful runs along the document's links), with a real admin's and a real
//! customer's token (schemathesis auth providers in
//! xtask/checks/schemathesis_hooks.py) and a fresh client address per
//! request. Zero failures is the bar; the only exclusions are listed, each
//! with its reason, in xtask/checks/fuzz-exclusions.yaml.
//!
//! `cargo xtask test` runs a short version (a few examples per operation)
//! on its own stack; `cargo xtask fuzz-api` runs a long one on a stack of its
//! own and prints what it did; with `--write-docs` also into the fuzz-api
//! section of docs/reliability.md.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use local_cloud::cloud::{CloudConfig, Ports};
use local_cloud::procs::free_port;
use local_cloud::stack::{LocalStack, StackConfig};
use local_cloud::template::Template;
use local_cloud::{local_dir, project_root, tools};
use serde_json::Value;

use crate::shell::{cargo, run_checked};

/// Fuzzes the API with schemathesis against a local stack of its own, then
/// prints operations, cases, checks and failures. Non-zero on any failure.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Examples per operation in each phase.
    #[arg(long, default_value_t = 200)]
    pub max_examples: u32,
    /// Hypothesis seed, to replay a run (random when absent).
    #[arg(long)]
    pub seed: Option<u128>,
    /// The short run of `cargo xtask test` instead (its examples and seed).
    #[arg(long, conflicts_with_all = ["max_examples", "seed"])]
    pub short: bool,
    /// Also rewrite the fuzz-api section of docs/reliability.md with this run's figures.
    #[arg(long)]
    pub write_docs: bool,
}

/// How much one run does.
#[derive(Debug, Clone)]
struct Budget {
    name: &'static str,
    max_examples: u32,
    seed: Option<u128>,
}

/// The run of `cargo xtask test`: bounded, so it adds about two minutes.
const SHORT: Budget = Budget { name: "short", max_examples: 8, seed: Some(20_261_125) };

/// The accounts whose tokens the fuzzer uses: one admin, one customer.
pub struct Accounts {
    pub admin_email: String,
    pub user_email: String,
    pub password: String,
}

impl Accounts {
    /// Makes an admin the way an operator does (`create-admin`: straight into
    /// the stack's table) and a customer through the API.
    pub async fn create(stack: &LocalStack) -> anyhow::Result<Self> {
        let tag = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos();
        let accounts = Self {
            admin_email: format!("fuzz-admin.{tag}@example.com"),
            user_email: format!("fuzz-user.{tag}@example.com"),
            password: format!("fuzz password {tag}"),
        };
        let env: BTreeMap<&str, &str> = stack.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let endpoint = env.get("AWS_ENDPOINT_URL_DYNAMODB").context("the stack has no DynamoDB endpoint")?;
        let table = env.get("TABLE_NAME").context("the stack has no TABLE_NAME")?;
        let config = local_cloud::cloud::base_sdk_config().await.into_builder().endpoint_url(*endpoint).build();
        let users = adapters::dynamo::DynamoUserStore::new(adapters::dynamo::Table::from_config(&config, *table));
        let hasher = framework::auth::PasswordHasher::new();
        let email = domain::Email::parse(&accounts.admin_email).map_err(|e| anyhow::anyhow!("{e}"))?;
        let password = domain::Password::parse_new(accounts.password.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
        app::auth::create_user(&users, &hasher, email, &password, domain::Role::Admin, "fuzz-api")
            .await
            .map_err(|error| anyhow::anyhow!("could not create the fuzzer's admin: {error}"))?;
        let response = reqwest::Client::new()
            .post(format!("{}/api/v1/auth/register", stack.api_url))
            .header("x-forwarded-for", "198.19.255.254")
            .json(&serde_json::json!({"email": accounts.user_email, "password": accounts.password}))
            .send()
            .await?;
        if response.status() != reqwest::StatusCode::ACCEPTED {
            bail!("could not register the fuzzer's customer: {} {}", response.status(), response.text().await?);
        }
        // Verified through the operator's door (the table), as the load's
        // customers are: the fuzzer's orders need a verified address.
        let email = domain::Email::parse(&accounts.user_email).map_err(|e| anyhow::anyhow!("{e}"))?;
        app::registration::mark_verified(&users, &email)
            .await
            .map_err(|error| anyhow::anyhow!("could not verify the fuzzer's customer: {error}"))?;
        Ok(accounts)
    }
}

/// What a run did, read from schemathesis' event stream and its summary.
#[derive(Debug, Default)]
struct Summary {
    operations: Option<u64>,
    cases: BTreeSet<String>,
    checks: u64,
    failed_checks: u64,
    generated: Option<u64>,
    dropped: BTreeMap<String, u64>,
}

/// The short run of `cargo xtask test`, on its stack: true when it passed.
/// It prints its own summary and, on failure, what failed.
pub async fn short_run(stack: &LocalStack) -> bool {
    eprintln!("\nxtask: contract fuzzing (schemathesis, short run)");
    let outcome = async {
        let accounts = Accounts::create(stack).await?;
        schemathesis(stack, &accounts, &SHORT).await
    };
    match outcome.await {
        Ok((passed, _)) => passed,
        Err(error) => {
            eprintln!("xtask: schemathesis could not run: {error:#}");
            false
        }
    }
}

/// `cargo xtask fuzz-api`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let tools = tools::ensure()?;
    let template = Template::load_project()?;
    eprintln!("xtask: building every function...");
    run_checked(cargo().args(["build", "--workspace", "--bins", "--quiet"]), "cargo build")?;
    let dir = local_dir().join("fuzz");
    let _ = std::fs::remove_dir_all(&dir);
    let config = StackConfig {
        cloud: CloudConfig {
            ports: Ports { dynamodb: free_port()?, moto: free_port()? },
            prefix: "fuzz".into(),
            dynamodb_data: None,
            logs_dir: dir.join("logs"),
        },
        api_port: free_port()?,
        reload_on_change: false,
        functions_log: Some(dir.join("logs/functions.log")),
        extra_env: Vec::new(),
    };
    let stack = LocalStack::start(&tools, &template, config).await?;
    let accounts = Accounts::create(&stack).await?;
    let budget =
        if args.short { SHORT } else { Budget { name: "long", max_examples: args.max_examples, seed: args.seed } };
    let (passed, markdown) = schemathesis(&stack, &accounts, &budget).await?;
    drop(stack);
    if args.write_docs {
        let command_line = if args.short {
            "cargo xtask fuzz-api --short --write-docs".to_owned()
        } else {
            let seed = args.seed.map_or_else(String::new, |seed| format!(" --seed {seed}"));
            format!("cargo xtask fuzz-api --max-examples {}{seed} --write-docs", args.max_examples)
        };
        crate::docs::write_section(crate::docs::Doc::Reliability, "fuzz-api", &command_line, &markdown)?;
    }
    Ok(if passed { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Runs schemathesis against `stack` as `accounts`: whether nothing failed,
/// and what it did as markdown.
async fn schemathesis(stack: &LocalStack, accounts: &Accounts, budget: &Budget) -> anyhow::Result<(bool, String)> {
    let executable = tools::ensure_schemathesis()?;
    let root = project_root();
    // A folder per run: another checkout's run (or another command's) may be under way beside this one.
    let dir = local_dir().join("schemathesis").join(format!("{}-{}", budget.name, std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let log = dir.join("schemathesis.log");
    let events = dir.join("events.ndjson");
    let dropped = dir.join("dropped.json");

    let mut command = Command::new(&executable);
    command
        .arg("--config-file")
        .arg(root.join("xtask/checks/schemathesis.toml"))
        .arg("run")
        .arg(root.join("docs/openapi.yaml"))
        // One worker: with two, hypothesis' ast.parse calls race in CPython 3.11 ("AST constructor
        // recursion depth mismatch") and the run errors out.
        .args(["--url", &stack.api_url, "--checks", "all", "--no-color", "--workers", "1"])
        .args(["--request-timeout", "30"])
        .args(["--max-examples", &budget.max_examples.to_string()])
        .args(["--report", "junit,ndjson", "--report-dir"])
        .arg(&dir)
        .arg("--report-ndjson-path")
        .arg(&events)
        .env("SCHEMATHESIS_HOOKS", root.join("xtask/checks/schemathesis_hooks.py"))
        .env("SHOP_FUZZ_API_URL", &stack.api_url)
        .env("SHOP_FUZZ_ADMIN_EMAIL", &accounts.admin_email)
        .env("SHOP_FUZZ_USER_EMAIL", &accounts.user_email)
        .env("SHOP_FUZZ_PASSWORD", &accounts.password)
        .env("SHOP_FUZZ_EXCLUSIONS", root.join("xtask/checks/fuzz-exclusions.yaml"))
        .env("SHOP_FUZZ_DROPPED", &dropped)
        // Its cache and anything else it writes stay out of the work tree.
        .current_dir(&dir)
        .stdout(std::fs::File::create(&log)?)
        .stderr(Stdio::inherit());
    if let Some(seed) = budget.seed {
        command.args(["--seed", &seed.to_string()]);
    }
    warm_up(stack).await?;
    eprintln!(
        "xtask: schemathesis ({} run, {} examples per operation and phase) against {}; output in {}",
        budget.name,
        budget.max_examples,
        stack.api_url,
        log.display()
    );
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || command.status())
        .await?
        .with_context(|| format!("running {}", executable.display()))?;
    let elapsed = started.elapsed();
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    let summary = summarise(&events, &output, &dropped);
    print_summary(budget, &summary, elapsed, status.success());
    let markdown = summary_markdown(budget, &summary, elapsed, status.success());
    if !status.success() {
        // Everything from the first failure or error on: what failed, and how to reproduce it.
        let start = ["=== ERRORS ===", "=== FAILURES ===", "=== WARNINGS ===", "=== SUMMARY ==="]
            .iter()
            .filter_map(|marker| output.find(marker))
            .min()
            .unwrap_or(0);
        let start = output[..start].rfind('\n').map_or(0, |i| i + 1);
        eprintln!("{}", &output[start..]);
        eprintln!("xtask: schemathesis FAILED ({status}); full output in {}", log.display());
    }
    Ok((status.success(), markdown))
}

/// One request to every documented operation, so each function has started
/// (and `cargo lambda watch` has built it, if the tree changed) before the
/// fuzzer's requests, which time out after 30 s, begin.
async fn warm_up(stack: &LocalStack) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(project_root().join("docs/openapi.yaml"))?;
    let document: serde_yaml::Value = serde_yaml::from_str(&text)?;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(300)).build()?;
    let paths = document["paths"].as_mapping().context("docs/openapi.yaml has no paths")?;
    for (index, (path, item)) in paths.iter().enumerate() {
        let path = path.as_str().context("a path is not a string")?.replace("{id}", "00000000000000000000000000");
        for (method_index, method) in
            item.as_mapping().into_iter().flatten().filter_map(|(m, _)| m.as_str()).enumerate()
        {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes())?;
            client
                .request(method.clone(), format!("{}{path}", stack.api_url))
                .header("x-forwarded-for", format!("198.19.254.{}", index * 4 + method_index))
                .send()
                .await
                .with_context(|| format!("warming up {method} {path}"))?;
        }
    }
    Ok(())
}

fn summarise(events: &Path, output: &str, dropped: &Path) -> Summary {
    let mut summary = Summary::default();
    if let Ok(file) = std::fs::File::open(events) {
        for line in std::io::BufReader::new(file).lines().map_while(Result::ok) {
            let Ok(event) = serde_json::from_str::<Value>(&line) else { continue };
            let finished = &event["ScenarioFinished"];
            if !finished.is_object() {
                continue;
            }
            let recorder = &finished["recorder"];
            for case in recorder["cases"].as_object().into_iter().flatten().map(|(_, case)| &case["value"]) {
                if let Some(id) = case["id"].as_str() {
                    summary.cases.insert(id.to_owned());
                }
            }
            for results in recorder["checks"].as_object().into_iter().flatten().filter_map(|(_, r)| r.as_array()) {
                summary.checks += results.len() as u64;
                summary.failed_checks += results.iter().filter(|r| r["status"] == "failure").count() as u64;
            }
        }
    }
    // "Test cases:\n  821 generated, ..."
    summary.generated = output
        .lines()
        .skip_while(|line| line.trim() != "Test cases:")
        .nth(1)
        .and_then(|line| line.split_whitespace().next())
        .and_then(|number| number.parse().ok());
    // "API Operations:\n  Selected: 16/16\n  Tested: 16"
    summary.operations = output
        .lines()
        .find_map(|line| line.trim().strip_prefix("Tested: "))
        .and_then(|number| number.trim().parse().ok());
    if let Ok(text) = std::fs::read_to_string(dropped)
        && let Ok(counts) = serde_json::from_str::<BTreeMap<String, u64>>(&text)
    {
        summary.dropped = counts;
    }
    summary
}

/// The run as the fuzz-api section of docs/reliability.md shows it.
fn summary_markdown(budget: &Budget, summary: &Summary, elapsed: Duration, passed: bool) -> String {
    let number = |n: Option<u64>| n.map_or_else(|| "?".to_owned(), |n| n.to_string());
    let seed = budget.seed.map_or_else(|| "random".to_owned(), |seed| seed.to_string());
    let mut markdown = format!(
        "schemathesis, {} run ({} examples per operation and phase, seed {seed}, every check, stateful links, \
         an admin's and a customer's token):\n\n\
         | operations | cases generated | cases recorded | checks run | failed checks | result | time |\n\
         |---:|---:|---:|---:|---:|---|---:|\n\
         | {} | {} | {} | {} | {} | {} | {:.0?} |\n",
        budget.name,
        budget.max_examples,
        number(summary.operations),
        number(summary.generated),
        summary.cases.len(),
        summary.checks,
        summary.failed_checks,
        if passed { "passed" } else { "**FAILED**" },
        elapsed,
    );
    if !summary.dropped.is_empty() {
        let dropped: Vec<String> = summary.dropped.iter().map(|(id, n)| format!("`{id}` {n}")).collect();
        markdown.push_str(&format!(
            "\nFailures dropped by `xtask/checks/fuzz-exclusions.yaml` (each with its reason there): {}.\n",
            dropped.join(", ")
        ));
    }
    markdown
}

fn print_summary(budget: &Budget, summary: &Summary, elapsed: Duration, passed: bool) {
    let generated = summary.generated.map_or_else(|| "?".to_owned(), |n| n.to_string());
    let operations = summary.operations.map_or_else(|| "?".to_owned(), |n| n.to_string());
    println!(
        "xtask: schemathesis {} run: {} operations, {} cases generated ({} recorded), {} checks run, {} failed checks, {} in {:.0?}",
        budget.name,
        operations,
        generated,
        summary.cases.len(),
        summary.checks,
        summary.failed_checks,
        if passed { "passed" } else { "FAILED" },
        elapsed,
    );
    if !summary.dropped.is_empty() {
        let dropped: Vec<String> = summary.dropped.iter().map(|(id, n)| format!("{id} {n}")).collect();
        println!("xtask: failures dropped by xtask/checks/fuzz-exclusions.yaml: {}", dropped.join(", "));
    }
}
