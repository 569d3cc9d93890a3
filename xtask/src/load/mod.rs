//! `cargo xtask load`: many simulated customers and admins against a local
//! stack of its own for a bounded time, then the invariants that must hold
//! whatever the interleaving: stock is conserved, one order per
//! idempotency key, every order settled, listing totals match their items,
//! each email sent once, no dead letters, no 5xx; and for the share of
//! customers who live the account lifecycle (`lifecycle`: rotating refresh
//! tokens, a replayed token, a password reset through the emailed link,
//! logout), what each step promises. Then a flash sale (every
//! customer orders one product whose stock is far below demand; `flash`)
//! with its own invariants: no oversell, clean answers, one order per key.
//! Reports throughput and latency per route, and measures the counter hot spot.
//!
//! `run_on` runs the same against a stack someone else started (the test
//! command's), looking only at the data the run made.

mod actors;
mod checks;
mod client;
mod flash;
pub mod hotkeys;
mod lifecycle;
mod probe;
mod report;
mod world;

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use local_cloud::cloud::{CloudConfig, Ports};
use local_cloud::procs::free_port;
use local_cloud::stack::{LocalStack, StackConfig};
use local_cloud::template::Template;
use local_cloud::{local_dir, project_root, tools};
use serde_json::json;

pub use report::Report;

use crate::shell::{cargo, run_checked};
use client::Phase;
use world::{User, World};

/// Drives a private local stack with simulated customers and admins, then
/// checks the invariants; writes target/load/results.json and results.md.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// How long customers and admins keep going.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Simulated customers, each with its own client address.
    #[arg(long, default_value_t = 30)]
    pub customers: usize,
    /// Admins shipping and restocking (default: one per 15 customers, at least 2).
    #[arg(long)]
    pub admins: Option<usize>,
    /// Products the run creates (the first is scarce and never restocked).
    #[arg(long, default_value_t = 8)]
    pub products: usize,
    /// Requests a minute each simulated client stays under (the stack allows 100).
    #[arg(long, default_value_t = 80)]
    pub per_minute: u32,
    /// Seconds per level of the counter hot-spot probe; 0 skips the probe.
    #[arg(long, default_value_t = 4)]
    pub probe_seconds: u64,
    /// Concurrent writers at each level of the probe.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16,32")]
    pub probe_writers: Vec<usize>,
    /// Check only the data the run made, as on a shared stack (what `cargo xtask test` does).
    #[arg(long)]
    pub own_data_only: bool,
    /// Where results.json and results.md are written (relative to the repository).
    #[arg(long, default_value = "target/load")]
    pub output: PathBuf,
    /// Also rewrite the load section of docs/reliability.md with this run's report.
    #[arg(long)]
    pub write_docs: bool,
    /// The order rate the hot-key report scales the run's writes to.
    #[arg(long, default_value_t = 10_000.0)]
    pub target_orders_per_second: f64,
    /// Seconds of the flash sale after the load's checks (every customer orders one
    /// product whose stock is far below demand); 0 skips it.
    #[arg(long, default_value_t = 20)]
    pub flash_seconds: u64,
    /// Units of the flash-sale product.
    #[arg(long, default_value_t = 40)]
    pub flash_stock: i64,
    /// Share of the customers who live the account lifecycle: keep signed in
    /// with rotating refresh tokens, replay one rotated token, reset their
    /// password through the emailed link, log out at the end (0 to 1).
    #[arg(long, default_value_t = 0.25)]
    pub lifecycle_share: f64,
    /// NAME=VALUE for the private stack's functions (repeatable), such as
    /// `REFRESH_TOKEN_TTL_SECONDS=10` to run with the test stack's lifetimes.
    #[arg(long = "stack-env", value_name = "NAME=VALUE")]
    pub stack_env: Vec<String>,
}

/// How to run the load on a stack.
#[derive(Debug, Clone)]
pub struct Options {
    pub seconds: u64,
    pub customers: usize,
    pub admins: usize,
    pub products: usize,
    pub per_minute: u32,
    /// The stack serves this run alone: global totals, all dead letters and
    /// all queues must be clean too. Otherwise only the run's own data counts.
    pub private: bool,
    /// The functions' log, to count transaction conflicts in.
    pub functions_log: Option<PathBuf>,
    /// Where results.json and results.md go; nowhere if `None`.
    pub output: Option<PathBuf>,
    /// How long to wait for the system to settle after the load.
    pub drain_timeout: Duration,
    /// The command that ran it, for the report.
    pub command: String,
    /// Where the functions record the partitions they write (`aws-writes.tsv`
    /// beside `SHOP_RECORD_AWS_CALLS`), for the hot-key report.
    pub writes_file: Option<PathBuf>,
    /// The order rate the hot-key report scales to.
    pub target_orders_per_second: f64,
    /// Seconds of the flash sale after the checks (0: none), and its product's units.
    pub flash_seconds: u64,
    pub flash_stock: i64,
    /// Share of the customers who live the account lifecycle ([`lifecycle`]).
    pub lifecycle_share: f64,
}

impl Options {
    /// How many customers live the account lifecycle: the share, rounded up.
    fn lifecycle_customers(&self) -> usize {
        let share = self.lifecycle_share.clamp(0.0, 1.0);
        ((self.customers as f64 * share).ceil() as usize).min(self.customers)
    }

    /// The test command's version: 45 seconds of load and a 15-second flash
    /// sale, on a shared stack.
    pub fn for_test(functions_log: PathBuf, output: PathBuf) -> Self {
        Self {
            seconds: 45,
            customers: 20,
            admins: 2,
            products: 6,
            per_minute: 80,
            private: false,
            functions_log: Some(functions_log),
            output: Some(output),
            drain_timeout: Duration::from_secs(240),
            command: "cargo xtask test".into(),
            writes_file: None,
            target_orders_per_second: 10_000.0,
            flash_seconds: 15,
            flash_stock: 30,
            lifecycle_share: 0.25,
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let tools = tools::ensure()?;
    let template = Template::load_project()?;
    eprintln!("xtask: building every function...");
    run_checked(cargo().args(["build", "--workspace", "--bins", "--quiet"]), "cargo build")?;
    let dir = local_dir().join("load");
    let _ = std::fs::remove_dir_all(&dir);
    let log = dir.join("logs/functions.log");
    let config = StackConfig {
        cloud: CloudConfig {
            ports: Ports { dynamodb: free_port()?, moto: free_port()? },
            prefix: "load".into(),
            dynamodb_data: None,
            logs_dir: dir.join("logs"),
        },
        api_port: free_port()?,
        reload_on_change: false,
        functions_log: Some(log.clone()),
        // The functions record their writes for the hot-key report.
        extra_env: std::iter::once(Ok((
            "SHOP_RECORD_AWS_CALLS".into(),
            dir.join("aws-calls.tsv").display().to_string(),
        )))
        .chain(args.stack_env.iter().map(|setting| {
            let (name, value) = setting.split_once('=').context("--stack-env takes NAME=VALUE")?;
            Ok((name.to_owned(), value.to_owned()))
        }))
        .collect::<anyhow::Result<_>>()?,
    };
    eprintln!("xtask: load: starting a local stack of its own");
    let stack = LocalStack::start(&tools, &template, config).await?;
    let options = Options {
        seconds: args.seconds,
        customers: args.customers,
        admins: args.admins.unwrap_or((args.customers / 15).max(2)),
        products: args.products,
        per_minute: args.per_minute,
        private: !args.own_data_only,
        functions_log: Some(log),
        output: None,
        drain_timeout: Duration::from_secs(300),
        writes_file: Some(dir.join("aws-writes.tsv")),
        target_orders_per_second: args.target_orders_per_second,
        flash_seconds: args.flash_seconds,
        flash_stock: args.flash_stock,
        lifecycle_share: args.lifecycle_share,
        command: format!(
            "cargo xtask load --seconds {} --customers {} --admins {} --products {} --per-minute {} --flash-seconds {} --flash-stock {} --lifecycle-share {}{}",
            args.seconds,
            args.customers,
            args.admins.unwrap_or((args.customers / 15).max(2)),
            args.products,
            args.per_minute,
            args.flash_seconds,
            args.flash_stock,
            args.lifecycle_share,
            args.stack_env.iter().map(|setting| format!(" --stack-env {setting}")).collect::<String>()
                + if args.own_data_only { " --own-data-only" } else { "" }
        ),
    };
    let command_line = format!("{}{}", options.command, if args.write_docs { " --write-docs" } else { "" });
    let mut report = run_on(&stack, options).await?;
    if args.probe_seconds > 0 {
        eprintln!("xtask: load: probing the counter hot spot ({} s per level)", args.probe_seconds);
        let table = format!("{}-LoadProbe", stack.cloud.names.prefix);
        report.probe =
            probe::run(&stack.cloud.dynamodb().await, &table, &args.probe_writers, args.probe_seconds).await?;
    }
    drop(stack);
    let output = project_root().join(&args.output);
    report.write(&output)?;
    println!("xtask: load: results in {}", output.display());
    if args.write_docs {
        crate::docs::write_section(crate::docs::Doc::Reliability, "load", &command_line, &report.to_markdown())?;
    }
    if report.passed() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("xtask: load: FAILED; logs in {}", dir.join("logs").display());
        Ok(ExitCode::FAILURE)
    }
}

/// Milliseconds since the epoch, as the functions stamp their recorded writes.
fn unix_ms() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

/// A name for this run's data, unlike any other run's.
fn run_name() -> (String, u64) {
    let bytes = ulid::Ulid::new().random().to_be_bytes();
    let name: String = ulid::Ulid::new().to_string().chars().rev().take(8).collect::<String>().to_lowercase();
    let seed = u64::from_be_bytes(bytes[8..16].try_into().expect("8 bytes"));
    (name, seed)
}

fn functions_log_size(options: &Options) -> u64 {
    options.functions_log.as_ref().and_then(|path| std::fs::metadata(path).ok()).map_or(0, |m| m.len())
}

/// The functions' log written since `offset`.
fn log_since(options: &Options, offset: u64) -> String {
    let Some(path) = &options.functions_log else { return String::new() };
    let Ok(mut file) = std::fs::File::open(path) else { return String::new() };
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(offset)).is_err() || file.read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Transaction conflicts in the functions' log: the sum of the
/// `TransactionConflicts` metric in their EMF documents (one per conflicted
/// attempt, retried or not), and other lines naming one (errors).
fn conflicts_logged(log: &str) -> (u64, usize) {
    let (mut counted, mut mentioned) = (0, 0);
    for line in log.lines().filter(|line| line.contains("TransactionConflict")) {
        match serde_json::from_str::<serde_json::Value>(line).ok().and_then(|doc| doc["TransactionConflicts"].as_f64())
        {
            Some(count) => counted += count as u64,
            None => mentioned += 1,
        }
    }
    (counted, mentioned)
}

/// Each API function's own time per request, from its `request completed`
/// log lines: what the client-side latency is made of (service time, and
/// the rest queueing, since `cargo lambda watch` runs one instance each).
fn service_times(log: &str, load_seconds: f64) -> Vec<report::ServiceTime> {
    let mut by_function: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for line in log.lines().filter(|line| line.contains("\"request completed\"")) {
        let Ok(doc) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let (Some(function), Some(latency)) = (doc["function"].as_str(), doc["latency_ms"].as_f64()) else { continue };
        by_function.entry(function.to_owned()).or_default().push(latency);
    }
    by_function
        .into_iter()
        .map(|(function, mut latencies)| {
            latencies.sort_by(f64::total_cmp);
            let busy = latencies.iter().sum::<f64>() / 1000.0;
            let pick = |q: f64| latencies[((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1];
            report::ServiceTime {
                function,
                requests: latencies.len(),
                p50_ms: pick(0.5),
                p95_ms: pick(0.95),
                busy_seconds: busy,
                busy_share: busy / load_seconds.max(0.001),
            }
        })
        .collect()
}

/// The one-minute version `cargo xtask test` (and `coverage`) runs on its
/// stack, whose functions log to `dir/logs/functions.log`; the report goes to
/// `dir/load`. Whether every invariant held.
pub async fn short_run(stack: &LocalStack, dir: &std::path::Path) -> bool {
    eprintln!(
        "\nxtask: load: 45 s of simulated customers and admins, the invariants on their data, then a 15 s flash sale"
    );
    let options = Options {
        writes_file: Some(dir.join("aws-writes.tsv")),
        ..Options::for_test(dir.join("logs/functions.log"), dir.join("load"))
    };
    match run_on(stack, options).await {
        Ok(report) => report.passed(),
        Err(error) => {
            eprintln!("xtask: load: {error:#}");
            false
        }
    }
}

/// Runs the load on `stack` and checks the invariants on the data it made.
pub async fn run_on(stack: &LocalStack, options: Options) -> anyhow::Result<Report> {
    let env: BTreeMap<String, String> = stack.env.iter().cloned().collect();
    let settings = adapters::config::ShopSettings::from_lookup(|name| env.get(name).cloned())?;
    let cloud = checks::Cloud {
        sqs: stack.cloud.sqs().await,
        dynamodb: stack.cloud.dynamodb().await,
        table: settings.table_name.clone(),
        queue_urls: settings.queue_urls.clone(),
        dead_letter_urls: settings.dead_letter_urls.clone(),
        moto_endpoint: stack.cloud.moto_endpoint(),
    };
    let (run, seed) = run_name();
    eprintln!(
        "xtask: load: run {run}: {} customers ({} living the account lifecycle), {} admins, {} products, {} s",
        options.customers,
        options.lifecycle_customers(),
        options.admins,
        options.products,
        options.seconds
    );
    let table = adapters::dynamo::Table::new(stack.cloud.dynamodb().await, settings.table_name.clone());
    let users = adapters::dynamo::DynamoUserStore::new(table);
    let mut world = World::new(run, seed, stack.api_url.clone(), options.per_minute, users)?;
    world.lifecycle_customers = options.lifecycle_customers();
    // Read here, not from the settings types, whose home may move; unset, the defaults.
    let seconds = |name: &str| env.get(name).and_then(|seconds| seconds.parse().ok()).map(Duration::from_secs);
    world.refresh_ttl = seconds("REFRESH_TOKEN_TTL_SECONDS").unwrap_or(domain::RefreshLifetime::DEFAULT.get());
    world.reset_ttl = seconds("PASSWORD_RESET_TTL_SECONDS").unwrap_or(Duration::from_secs(30 * 60));
    world.moto_endpoint = stack.cloud.moto_endpoint();
    world.ledger().lifecycle.customers = world.lifecycle_customers;
    let log_offset = functions_log_size(&options);
    let run_started = Instant::now();

    // Setup: admins (made as an operator makes them), products, and the
    // admin listings as they stand before the run.
    let setup_started = Instant::now();
    let mut admins = Vec::new();
    for index in 0..options.admins.max(1) {
        let email = world.admin_email(index);
        let id = actors::make_admin(stack, &settings, &email).await?;
        world.ledger().users.push(User { id, email: email.clone(), admin: true });
        admins.push(email);
    }
    let setup_client = world.client("198.19.9.1".to_owned());
    let admin_token = actors::login(&world, &setup_client, &admins[0]).await?;
    world.products = actors::make_products(&world, &setup_client, &admin_token, options.products).await?;
    {
        let mut ledger = world.ledger();
        ledger.restocked = vec![0; world.products.len()];
        ledger.uncertain_restock = vec![0; world.products.len()];
    }
    let (warm_email, warm_order) = actors::warm_up(&world, &admin_token).await?;
    wait_for_consumers(&world, &cloud, &warm_email, &warm_order).await?;
    let checker = world.checker(10);
    let admin_before = checks::admin_walks(&checker, &admin_token).await;
    let setup_seconds = setup_started.elapsed().as_secs_f64();

    // The load: customers start spread over the first seconds, so that
    // registrations (argon2) do not all queue at once.
    world.deadline = Instant::now() + Duration::from_secs(options.seconds);
    let world = Arc::new(world);
    world.recorder.set_phase(Phase::Load);
    let load_started = Instant::now();
    let load_started_ms = unix_ms();
    let mut tasks = tokio::task::JoinSet::new();
    for (index, email) in admins.iter().enumerate() {
        tasks.spawn(actors::admin(world.clone(), index, email.clone()));
    }
    let spread = Duration::from_secs(options.seconds.min(20)) / 4;
    for index in 0..options.customers {
        let world = world.clone();
        let delay = spread.mul_f64(index as f64 / options.customers.max(1) as f64);
        tasks.spawn(async move {
            tokio::time::sleep(delay).await;
            actors::customer(world, index).await
        });
    }
    let mut stopped = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(error)) => stopped.push(format!("{error:#}")),
            Err(error) => stopped.push(format!("a client panicked: {error}")),
        }
    }
    let load_seconds = load_started.elapsed().as_secs_f64();
    let load_ended_ms = unix_ms();
    world.recorder.set_phase(Phase::Check);
    eprintln!(
        "xtask: load: load phase over after {load_seconds:.1} s ({} orders placed); waiting for the system to settle",
        world.ledger().activity.orders_placed
    );

    // Drain, then read the final state and check.
    let check_started = Instant::now();
    let admin_token = actors::login(&world, &setup_client, &admins[0]).await?;
    let markers: HashSet<String> = {
        let ledger = world.ledger();
        ledger
            .users
            .iter()
            .flat_map(|user| [user.id.clone(), user.email.clone()])
            .chain(ledger.orders.iter().map(|order| order.id.clone()))
            .collect()
    };
    let grace = if options.private { options.drain_timeout } else { Duration::from_secs(20) };
    let drain = checks::drain(&world, &checker, &admin_token, &cloud, &markers, options.drain_timeout, grace).await;
    let drain_seconds = drain.seconds;
    let mut finals = checks::read_final(&world, &checker, &admin_token, &cloud, &markers, admin_before)
        .await
        .context("reading the final state")?;
    checks::settle_emails(&world, &cloud, &mut finals, Duration::from_secs(60)).await?;
    let samples = world.recorder.samples();
    let mut invariants = checks::invariants(&world, &finals, &samples, options.private, &drain);
    invariants.extend(lifecycle::invariants(&world.ledger().lifecycle));
    invariants.push(checks::Invariant {
        name: "every simulated client ran to the end",
        passed: stopped.is_empty(),
        detail: if stopped.is_empty() {
            format!("{} customers and {} admins", options.customers, admins.len())
        } else {
            format!(
                "{} stopped early: {}",
                stopped.len(),
                stopped.iter().take(3).cloned().collect::<Vec<_>>().join("; ")
            )
        },
    });
    let check_seconds = check_started.elapsed().as_secs_f64() - drain_seconds;
    let hot_keys = match &options.writes_file {
        None => None,
        Some(file) => {
            let placed = world.ledger().activity.orders_placed;
            let keys = hotkeys::HotKeys::read(
                file,
                load_started_ms,
                load_ended_ms,
                load_seconds,
                placed,
                options.target_orders_per_second,
            )?;
            invariants.push(checks::Invariant {
                name: "no partition key but a product's stock over 1,000 WCU/s at the target order rate",
                passed: keys.passed(),
                detail: keys.detail(),
            });
            Some(keys)
        }
    };

    let flash = if options.flash_seconds == 0 {
        None
    } else {
        eprintln!(
            "xtask: load: flash sale: {} s, one product of {} units, every customer who ran to the end",
            options.flash_seconds, options.flash_stock
        );
        match flash::run(
            &world,
            &checker,
            &admin_token,
            options.flash_seconds,
            options.flash_stock,
            options.drain_timeout,
        )
        .await
        {
            Ok(flash) => {
                invariants.extend(flash.invariants.iter().cloned());
                Some(flash)
            }
            Err(error) => {
                invariants.push(checks::Invariant {
                    name: "flash sale ran",
                    passed: false,
                    detail: format!("{error:#}"),
                });
                None
            }
        }
    };

    let http_503: BTreeMap<&str, usize> =
        samples.iter().filter(|s| s.status == 503).fold(BTreeMap::new(), |mut m, s| {
            *m.entry(s.route).or_default() += 1;
            m
        });
    let log = log_since(&options, log_offset);
    let conflicts = conflicts_logged(&log);
    let ledger = world.ledger();
    let report = Report {
        settings: json!({
            "seconds": options.seconds, "customers": options.customers, "admins": admins.len(),
            "products": world.products.len(), "per_minute": options.per_minute, "run": world.run,
            "command": options.command, "date": time::OffsetDateTime::now_utc().date().to_string(),
            "stack": if options.private {
                "a private local stack (debug builds under cargo lambda watch, one instance per function, DynamoDB Local, moto)"
            } else {
                "the test command's local stack, after its tests"
            },
        }),
        phases: json!({
            "setup_seconds": setup_seconds, "load_seconds": load_seconds,
            "drain_seconds": drain_seconds, "check_seconds": check_seconds,
        }),
        requests: samples.len(),
        load_requests: samples.iter().filter(|s| s.phase == Phase::Load).count(),
        load_seconds,
        routes: report::route_stats(&samples),
        errors: report::errors_by_status(&samples),
        activity: {
            let mut activity = activity_json(&ledger.activity);
            activity["lifecycle"] = ledger.lifecycle.to_json();
            activity
        },
        surprises: ledger.surprises.clone(),
        invariants,
        hot_spot: json!({
            "http_503": http_503.values().sum::<usize>(),
            "http_503_by_route": http_503,
            "conflicts_counted": conflicts.0,
            "conflict_lines_logged": conflicts.1,
        }),
        probe: Vec::new(),
        hot_keys,
        flash,
        service: service_times(&log, run_started.elapsed().as_secs_f64()),
    };
    drop(ledger);
    report.print();
    if let Some(output) = &options.output {
        report.write(output)?;
    }
    Ok(report)
}

/// Waits until the warm-up user's verification email and its order's
/// confirmation have been sent: every consumer has then started.
async fn wait_for_consumers(world: &World, cloud: &checks::Cloud, email: &str, order: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let emails = cloud.emails(&world.http).await?;
        let to_warm_up: Vec<&str> =
            emails.iter().filter(|(to, _)| to == email).map(|(_, subject)| subject.as_str()).collect();
        let welcomed = to_warm_up.contains(&"Confirm your email address");
        let decided = to_warm_up.iter().any(|subject| subject.contains(order));
        if welcomed && decided {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "the consumers did not answer the warm-up within 5 minutes (verification email sent: {welcomed}, order decided: {decided})"
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn activity_json(activity: &world::Activity) -> serde_json::Value {
    json!({
        "registrations": activity.registrations,
        "logins": activity.logins,
        "catalogue_pages": activity.catalogue_pages,
        "orders_placed": activity.orders_placed,
        "retries_same_key": activity.retries_same_key,
        "retries_identical": activity.retries_identical,
        "concurrent_duplicates": activity.concurrent_duplicates,
        "concurrent_duplicates_identical": activity.concurrent_duplicates_identical,
        "replays_other_body": activity.replays_other_body,
        "replays_other_body_422": activity.replays_other_body_422,
        "placements_without_answer": activity.placements_without_answer,
        "placements_capped": activity.placements_capped,
        "cancels_ok": activity.cancels_ok,
        "cancels_refused_409": activity.cancels_refused_409,
        "cancels_refused_412": activity.cancels_refused_412,
        "ships_ok": activity.ships_ok,
        "ships_412_reread": activity.ships_412_reread,
        "ships_refused_409": activity.ships_refused_409,
        "restocks": activity.restocks,
        "restock_units": activity.restock_units,
        "restock_412_reread": activity.restock_412_reread,
        "unpinned_edits": activity.unpinned_edits,
        "unpinned_edits_refused_409": activity.unpinned_edits_refused_409,
    })
}
