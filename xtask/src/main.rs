//! `cargo xtask <command>`: every developer chore, in Rust. This file only
//! dispatches; each command lives in its own module of the xtask library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use xtask::{admin, check, codegen, coverage, dev, dlq, load, logs, package, test};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "The shop backend's developer commands",
    disable_help_subcommand = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole system locally: local cloud, every function, queue delivery.
    Dev(dev::Args),
    /// Formatting, clippy, the tests that need no local cloud, then the template checks; stops at the first failure.
    Check(check::Args),
    /// Write template.yaml's function blocks and preflights, the per-function alarms and the watch router from functions/*/Cargo.toml.
    Codegen(codegen::Args),
    /// `check` first, then every cloud test against a fresh local stack, then the log and IAM checks.
    Test(test::Args),
    /// Hold recorded AWS calls (a test or load run's) against each function's IAM policy, partitions included.
    Iam(xtask::policies::Args),
    /// Build every function for arm64 (production profile; --profile release for dev) into target/lambda/<function>/; prints sizes.
    Package(package::Args),
    /// Measure every function against a Rust floor (floor profile) and a Python peer; the benched routes under the production and release profiles.
    Bench {
        /// See `cargo xtask bench --help-bench`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The outbox relay draining a seeded backlog on a private local cloud, now and as it was before the batches.
    BenchRelay(xtask::bench::relay::Args),
    /// The catalogue's caches measured on a local stack of its own: 304 share and bytes of revalidating clients, DynamoDB reads per request with the read cache on and off, cache-hit warm p50 against the floor, staleness seen.
    BenchCache(xtask::bench::cache::Args),
    /// Trace exporters compared on one function: none, X-Ray daemon (today), OpenTelemetry (OTLP, flushed per invocation).
    BenchTracing(xtask::bench::tracing::Args),
    /// The latest emails the local stack sent (moto's SES), with each link's request: verify an address on `cargo xtask dev`.
    Mail(xtask::mail::Args),
    /// Queue depths, dead letters and their redrive, locally or on a deployed stack (--stack).
    Dlq(dlq::Args),
    /// The local stack's function logs, readable: one line per record, filtered by request, correlation, function or level.
    Logs(logs::Args),
    /// The scans alone: actionlint, cargo-deny, detect-secrets (the pipeline's security job).
    Scan(xtask::scans::Args),
    /// A short, self-cleaning black-box journey against a deployed (or local) API: one-line verdict.
    Smoke(xtask::smoke::Args),
    /// Create an admin account (password read from stdin).
    CreateAdmin(admin::Args),
    /// An operator's doors for an account: reset-second-factor (a lost authenticator and recovery codes).
    Admin(admin::AdminArgs),
    /// Fuzz the API with schemathesis from docs/openapi.yaml against a local stack of its own (every check, stateful).
    FuzzApi(xtask::fuzz::Args),
    /// Run the parsers' property tests (cursors, HTTP requests, CloudEvents, ids, domain) with many cases each.
    FuzzParsers(xtask::fuzz_parsers::Args),
    /// Simulated customers and admins against a local stack of its own, then the invariants; writes target/load/.
    Load(load::Args),
    /// Line coverage of shared/domain, framework, adapters and app under the whole suite; writes .local/coverage/.
    Coverage(coverage::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a Tokio runtime starts");
    let outcome = match cli.command {
        Command::Dev(args) => runtime.block_on(dev::run(args)),
        Command::Check(args) => check::run(&args),
        Command::Codegen(args) => codegen::run(&args),
        Command::Test(args) => runtime.block_on(test::run(args)),
        Command::Iam(args) => xtask::policies::run(&args),
        Command::Package(args) => package::run(&args),
        Command::Bench { args } => runtime.block_on(xtask::bench::run(&args)),
        Command::BenchRelay(args) => runtime.block_on(xtask::bench::relay::run(args)),
        Command::BenchCache(args) => runtime.block_on(xtask::bench::cache::run(args)),
        Command::BenchTracing(args) => runtime.block_on(xtask::bench::tracing::run(args)),
        Command::Mail(args) => runtime.block_on(xtask::mail::run(args)),
        Command::Dlq(args) => runtime.block_on(dlq::run(args)),
        Command::Logs(args) => logs::run(args),
        Command::Scan(args) => xtask::scans::run(&args),
        Command::Smoke(args) => runtime.block_on(xtask::smoke::run(args)),
        Command::CreateAdmin(args) => runtime.block_on(admin::run(args)),
        Command::Admin(args) => runtime.block_on(admin::run_admin(args)),
        Command::FuzzApi(args) => runtime.block_on(xtask::fuzz::run(args)),
        Command::FuzzParsers(args) => xtask::fuzz_parsers::run(&args),
        Command::Load(args) => runtime.block_on(load::run(args)),
        Command::Coverage(args) => runtime.block_on(coverage::run(args)),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("xtask: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
