//! `cargo xtask test`: `cargo xtask check` first (formatting, clippy, the
//! tests that need no cloud, the template checks), then the whole suite
//! against a local stack of its own and the checks that need every test to
//! have run (log redaction, least privilege).

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use local_cloud::cloud::{CloudConfig, Ports};
use local_cloud::procs::free_port;
use local_cloud::stack::{LocalStack, StackConfig};
use local_cloud::template::Template;
use local_cloud::{local_dir, project_root, tools};

use crate::shell::{cargo, run_checked, write_env_file};

/// Runs `cargo xtask check`, stopping at once if it fails, then the tests
/// that need the local cloud (contract, adapter, black-box, fault injection)
/// against a fresh local stack on free ports, a short fuzzing run, a short
/// load, the log scan and the IAM check. Non-zero on any failure.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only the tests whose names contain one of these, every crate's (an
    /// inner loop: `cargo xtask check` and the whole-suite checks are
    /// skipped), e.g. `cargo xtask test -- orders::`.
    #[arg(last = true)]
    pub filter: Vec<String>,
    /// Do not run `cargo xtask check` first: the pipeline's check job has
    /// (the `cargo test` of the crates other than `tests` is then skipped too).
    #[arg(long)]
    pub skip_check: bool,
}

/// The test stack's order hold time: short enough for a black-box test to
/// wait it out (`tests/tests/api/holdings.rs`), long enough that no other
/// test keeps an order open that long. Its scheduled expiry runs at start and
/// then hourly, so only that test's direct invocation expires anything.
pub const TEST_ORDER_HOLD: [&str; 2] = ["ORDER_HOLD_SECONDS", "40"];

/// The test stack's verification links expire after 30 s: a black-box test
/// waits one out (`tests/tests/api/verification.rs`); every other test that
/// follows a link does so within seconds of the email.
pub const TEST_VERIFICATION_TTL: [&str; 2] = ["EMAIL_VERIFICATION_TTL_SECONDS", "30"];

/// The test stack's refresh tokens expire 10 s after their last use: a
/// black-box test waits one out (`tests/tests/api/sessions.rs`); every
/// other test that refreshes does so right after signing in.
pub const TEST_REFRESH_TTL: [&str; 2] = ["REFRESH_TOKEN_TTL_SECONDS", "10"];

/// The test stack's password reset links expire after 20 s: a black-box
/// test waits one out (`tests/tests/api/passwords.rs`); every other test
/// follows its link within seconds of the email.
pub const TEST_RESET_TTL: [&str; 2] = ["PASSWORD_RESET_TTL_SECONDS", "20"];

/// The test stack's cache lifetimes: short, so a black-box test waits out
/// the catalogue's read cache (`tests/tests/api/caching.rs`), long enough
/// that a read right after a change still meets the old copy. The other
/// tests that need the table's current stock or listing read as an admin,
/// whom the read cache never serves.
pub const TEST_CACHE: [[&str; 2]; 3] = [
    ["CATALOGUE_CACHE_TTL_SECONDS", "3"],
    ["CACHE_MAX_AGE_SECONDS", "2"],
    ["CACHE_STALE_WHILE_REVALIDATE_SECONDS", "4"],
];

/// A cloud of its own, on free ports and in memory: a stack made from it
/// never touches a running dev stack.
fn private_cloud(prefix: &str, dir: &Path) -> anyhow::Result<CloudConfig> {
    Ok(CloudConfig {
        ports: Ports { dynamodb: free_port()?, moto: free_port()? },
        prefix: prefix.into(),
        dynamodb_data: None,
        logs_dir: dir.join("logs"),
    })
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let filter = args.filter;
    // Fail fast: what needs no cloud runs before anything is installed or
    // started, and has then already run the tests that need no cloud.
    let packages: &[&str] = if filter.is_empty() {
        if !args.skip_check && !crate::check::passes()? {
            eprintln!("xtask: test stopped after {:.0?}: `cargo xtask check` failed", started.elapsed());
            return Ok(ExitCode::FAILURE);
        }
        &["--package", "tests"]
    } else {
        &["--workspace"]
    };
    let tools = tools::ensure()?;
    // For the test that opens the reference page (`/docs`) headless, and the
    // test that generates clients from docs/openapi.yaml and drives them.
    let chromium = tools::ensure_chromium()?;
    let contract_tools = tools::ensure_contract_tools()?;
    let clients_python = tools::ensure_clients_python()?;
    let template = Template::load_project()?;
    eprintln!("\nxtask: building the workspace and its tests...");
    run_checked(cargo().args(["build", "--workspace", "--all-targets", "--quiet"]), "cargo build")?;
    let test_binaries = test_executables(packages)?;

    let dir = local_dir().join("test");
    let _ = std::fs::remove_dir_all(&dir);
    let calls_file = dir.join("aws-calls.tsv");
    let config = StackConfig {
        cloud: private_cloud("test", &dir)?,
        api_port: free_port()?,
        reload_on_change: false,
        functions_log: Some(dir.join("logs/functions.log")),
        extra_env: vec![
            ("SHOP_RECORD_AWS_CALLS".into(), calls_file.display().to_string()),
            // Every event logged (redacted) and a tenth of invocations at
            // DEBUG: the log scan below proves neither leaks a secret.
            ("LOG_EVENT".into(), "true".into()),
            ("LOG_DEBUG_SAMPLE_RATE".into(), "0.1".into()),
            TEST_ORDER_HOLD.map(str::to_owned).into(),
            TEST_REFRESH_TTL.map(str::to_owned).into(),
            TEST_RESET_TTL.map(str::to_owned).into(),
            TEST_VERIFICATION_TTL.map(str::to_owned).into(),
        ]
        .into_iter()
        .chain(TEST_CACHE.map(|setting| setting.map(str::to_owned).into()))
        .collect(),
    };
    let stack = LocalStack::start(&tools, &template, config).await?;
    let mut env = stack.client_env();
    env.push(("SHOP_CHROMIUM".into(), chromium.display().to_string()));
    env.push(("SHOP_CONTRACT_TOOLS".into(), contract_tools.dir.display().to_string()));
    env.push(("SHOP_CLIENTS_PYTHON".into(), clients_python.display().to_string()));
    let cloud_prefix = stack.cloud.names.prefix.clone();
    write_env_file(&dir.join("cloud.env"), &env)?;

    let mut failures = Vec::new();
    for binary in &test_binaries {
        let name = binary.file_name().and_then(|n| n.to_str()).unwrap_or("?").to_owned();
        eprintln!("\nxtask: running {name}");
        let status = Command::new(binary)
            .args(&filter)
            .current_dir(project_root())
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .status()
            .with_context(|| format!("running {name}"))?;
        if !status.success() {
            failures.push(name);
        }
    }
    if filter.is_empty() && !crate::fuzz::short_run(&stack).await {
        failures.push("schemathesis".into());
    }
    // The catalogue caches' measurement, briefly, with its invariants: in the
    // whole suite, and in a filtered run that names it.
    if (filter.is_empty() || filter.iter().any(|f| crate::bench::cache::SHORT_RUN.contains(f.as_str())))
        && !crate::bench::cache::short_run(&stack, &calls_file, &dir).await
    {
        failures.push(crate::bench::cache::SHORT_RUN.into());
    }
    if filter.is_empty() && !crate::load::short_run(&stack, &dir).await {
        failures.push("load".into());
    }
    // The pipeline's post-deploy journey, against this stack, so it cannot
    // rot: in the whole suite, and in a filtered run that names one of its steps.
    if (filter.is_empty() || filter.iter().any(|f| crate::smoke::JOURNEY.contains(f.as_str())))
        && !crate::smoke::against_local(&stack).await
    {
        failures.push("smoke".into());
    }
    drop(stack);
    if !filter.is_empty() {
        // The half of the IAM check some of the tests can prove: every call
        // they made is granted, its partition within the statement's keys.
        eprintln!("\nxtask: checking the calls these tests made against each function's IAM policy");
        if !iam_check(crate::policies::check_calls(&template, &calls_file, &cloud_prefix, &env)) {
            failures.push("IAM policies (the calls made)".into());
        }
        return Ok(if failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE });
    }

    eprintln!("\nxtask: scanning every function's log lines for secrets");
    match scan_for_secrets(&dir.join("logs/functions.log")) {
        Ok(leaks) if leaks.is_empty() => {
            println!("xtask: no email, password or token in the functions' logs: 1 passed, 0 failed");
        }
        Ok(leaks) => {
            for leak in leaks.iter().take(10) {
                eprintln!("  {leak}");
            }
            failures.push(format!("log redaction ({} lines)", leaks.len()));
        }
        Err(error) => {
            eprintln!("xtask: {error:#}");
            failures.push("log redaction".into());
        }
    }

    eprintln!("\nxtask: checking every function's IAM policy against the AWS calls it made");
    if !iam_check(crate::policies::check(&template, &calls_file, &cloud_prefix, &env)) {
        failures.push("IAM policies".into());
    }

    eprintln!("\nxtask: test finished in {:.0?}", started.elapsed());
    if failures.is_empty() {
        println!("xtask: all checks passed");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("xtask: FAILED: {}", failures.join(", "));
        eprintln!("xtask: logs of the local cloud and functions are in {}", dir.join("logs").display());
        Ok(ExitCode::FAILURE)
    }
}

/// Prints the IAM check's outcome; whether it passed.
fn iam_check(outcome: anyhow::Result<Vec<String>>) -> bool {
    match outcome {
        Ok(problems) if problems.is_empty() => {
            println!("xtask: IAM policies match the calls, partitions included: 1 passed, 0 failed");
            true
        }
        Ok(problems) => {
            for problem in &problems {
                eprintln!("  {problem}");
            }
            eprintln!("xtask: IAM policies: {} problem(s): 0 passed, 1 failed", problems.len());
            false
        }
        Err(error) => {
            eprintln!("xtask: {error:#}");
            false
        }
    }
}

/// The compiled unit and integration test binaries of `packages` (cargo's
/// `--workspace` or `--package <name>`). They are run directly, not through
/// `cargo test`, so no cargo lock is held while `cargo lambda watch` starts
/// functions on demand.
fn test_executables(packages: &[&str]) -> anyhow::Result<Vec<PathBuf>> {
    let output = cargo()
        .arg("test")
        .args(packages)
        .args(["--no-run", "--message-format=json", "--quiet"])
        .stderr(Stdio::inherit())
        .output()
        .context("cargo test --no-run")?;
    if !output.status.success() {
        bail!("building the tests failed");
    }
    let mut binaries = Vec::new();
    for line in output.stdout.lines() {
        let message: serde_json::Value = serde_json::from_str(&line?).unwrap_or_default();
        if message["reason"] == "compiler-artifact"
            && message["profile"]["test"] == true
            && let Some(path) = message["executable"].as_str()
        {
            binaries.push(PathBuf::from(path));
        }
    }
    binaries.sort();
    binaries.dedup();
    Ok(binaries)
}

/// Lines of the functions' output that hold what must never be logged: an
/// email address of the suite (they all end in `@example.com`), its password,
/// or a bearer token (a JWT starts `eyJ`). The suite runs with `LOG_EVENT` on
/// and debug sampling, so every input passes the redaction helper.
fn scan_for_secrets(log: &Path) -> anyhow::Result<Vec<String>> {
    const SECRETS: [&str; 2] = ["@example.com", "correct horse battery"];
    let text = std::fs::read_to_string(log).with_context(|| format!("reading {}", log.display()))?;
    Ok(text
        .lines()
        .filter(|line| SECRETS.iter().any(|secret| line.contains(secret)) || holds_a_jwt(line))
        .map(|line| line.chars().take(300).collect())
        .collect())
}

/// A JWT is `eyJ<header>.eyJ<claims>.<signature>` (a pagination cursor, one
/// base64 JSON part and a MAC, is not a secret).
fn holds_a_jwt(line: &str) -> bool {
    line.match_indices("eyJ").any(|(start, _)| {
        let rest = &line[start..];
        rest.find('.').is_some_and(|dot| rest[dot + 1..].starts_with("eyJ"))
    })
}
