//! `cargo xtask bench`: every function run as a real process against a
//! minimal Lambda Runtime API ([`emulator`]), on a private local cloud, with
//! its sample event from `events/`. For the catalogue, order and refresh
//! routes, the same seeded event (for refresh-session, the session's
//! newest refresh token: [`refresh`]) also goes, in the same run and
//! interleaved, to the route's Rust floor (`bench/floor`) and to its Python peer
//! (`bench/python-peer`, Powertools + boto3 under awslambdaric), and the
//! report gives the ratios the performance targets are stated in.
//!
//! Profiles (root Cargo.toml): the floor and the hello-world baseline are
//! built with `floor`, the most optimised profile, whatever the project's
//! are, so a ratio measures the code; the routes' functions are built
//! and measured both with `production` (what staging and prod deploy) and
//! with `release` (dev deploys), side by side in the same run; every other
//! function with `release`.
//!
//! Writes `target/bench.md` (tables), `target/bench/results.json` and
//! `target/bench/chart.png`; with `--write-docs` also its section of
//! docs/performance.md and docs/bench-chart.png.
//!
//! Options: `--quick` (dev builds of everything, 2 cold starts x 5 warm
//! requests, place-order three times the cold starts as in every run: checks
//! the harness, not the numbers), `--only f1,f2` (only these functions; the
//! peers run for those of the routes named), `--runs N`, `--warm N`,
//! `--syscalls` (also the system calls of a warm request, by strace:
//! [`syscalls`]), `--write-docs`.

pub mod cache;
mod emulator;
mod refresh;
pub mod relay;
mod report;
mod seed;
mod syscalls;
pub mod tracing;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use local_cloud::cloud::{CloudConfig, LocalCloud, Ports};
use local_cloud::procs::free_port;
use local_cloud::template::Template;
use local_cloud::tools;

pub use emulator::{Run, Target, measure, measure_chained, measure_traced};
use report::{FunctionResult, Report, RouteResult, Summary};

use crate::{local_dir, profiles, project_root};

const USAGE: &str = "\
usage: cargo xtask bench [--quick] [--only FUNCTION,...] [--runs N] [--warm N] [--write-docs] [--help-bench]

  Measures every function (release profile) against a Runtime API emulator on a private
  local cloud: init, first request, cold total, warm p50/p99, CPU per warm request
  (the route comparison), peak RSS; and, for
  get-product, list-products, place-order and refresh-session, the same seeded event against the
  project under the production, release and floor profiles, a Rust floor (floor profile)
  and a Python peer (Powertools + boto3 under awslambdaric), interleaved.
  Writes target/bench.md, target/bench/results.json and target/bench/chart.png.

  --quick        dev builds, 2 cold starts x 5 warm requests (checks the harness only)
  --only LIST    only these functions (comma-separated); no HTTP-overhead micro-benchmark
  --runs N       cold starts per implementation (default 15: the cold targets are medians of
                 them, and with 5 the same build's median init moved by a third between two
                 quiet runs); place-order gets three times as many (its first request is a
                 transaction, which DynamoDB Local serves in times that vary more)
  --warm N       warm requests per cold start (default 20: 300 warm requests per implementation,
                 900 for place-order)
  --syscalls     also count the system calls of one warm request of each Rust implementation
                 of the routes (strace -f; two more cold starts each)
  --write-docs   also rewrite the bench section of docs/performance.md and docs/bench-chart.png
                 (a full run only: not with --quick or --only)
";

/// A route measured against its floor and its Python peer.
struct Route {
    function: &'static str,
    method: &'static str,
    path: &'static str,
    write: bool,
    /// Each request places an order whose event must be on the order-placed
    /// queue, its outbox record gone, after each cold start.
    publishes: bool,
    /// What every implementation must answer to the seeded event.
    status: u16,
    python_module: &'static str,
    /// How many times `--runs` cold starts each implementation gets: more
    /// where the first request's time on the local cloud varies, cold start to
    /// cold start, by more than the gaps the cold targets judge.
    cold_starts_times: usize,
}

const ROUTES: [Route; 4] = [
    Route {
        function: "get-product",
        method: "GET",
        path: "/api/v1/products/{id}",
        write: false,
        publishes: false,
        status: 200,
        python_module: "get_product",
        cold_starts_times: 1,
    },
    Route {
        function: "list-products",
        method: "GET",
        path: "/api/v1/products",
        write: false,
        publishes: false,
        status: 200,
        python_module: "list_products",
        cold_starts_times: 1,
    },
    Route {
        function: "place-order",
        method: "POST",
        path: "/api/v1/orders",
        write: true,
        publishes: true,
        status: 201,
        python_module: "place_order",
        // Its first request is a TransactWriteItems of 9 items, which DynamoDB
        // Local serves in times that vary, cold start to cold start, by more
        // than the project's gap to the floor: three times the cold starts
        // narrow its medians.
        cold_starts_times: 3,
    },
    // Its events are chained: each request carries the refresh token the
    // answer before handed out ([`refresh`]), through every implementation.
    Route {
        function: refresh::FUNCTION,
        method: "POST",
        path: "/api/v1/auth/refresh",
        write: true,
        publishes: false,
        status: 200,
        python_module: "refresh_session",
        cold_starts_times: 1,
    },
];

struct Options {
    quick: bool,
    only: Option<Vec<String>>,
    runs: usize,
    warm: usize,
    write_docs: bool,
    syscalls: bool,
}

impl Options {
    fn parse(args: &[String]) -> anyhow::Result<Self> {
        let mut options = Options { quick: false, only: None, runs: 15, warm: 20, write_docs: false, syscalls: false };
        let (mut runs, mut warm) = (None, None);
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().cloned().with_context(|| format!("{name} needs a value"));
            match arg.as_str() {
                "--quick" => options.quick = true,
                "--write-docs" => options.write_docs = true,
                "--syscalls" => options.syscalls = true,
                "--only" => {
                    options.only = Some(
                        value("--only")?
                            .split(',')
                            .map(str::trim)
                            .filter(|f| !f.is_empty())
                            .map(str::to_owned)
                            .collect(),
                    );
                }
                "--runs" => runs = Some(value("--runs")?.parse().context("--runs must be a number")?),
                "--warm" => warm = Some(value("--warm")?.parse().context("--warm must be a number")?),
                other => bail!("unknown option {other}\n{USAGE}"),
            }
        }
        if options.write_docs && (options.quick || options.only.is_some()) {
            bail!("--write-docs records a full run: not with --quick or --only");
        }
        if options.quick {
            (options.runs, options.warm) = (2, 5);
        }
        options.runs = runs.unwrap_or(options.runs).max(1);
        options.warm = warm.unwrap_or(options.warm).max(1);
        Ok(options)
    }
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(project_root());
    command
}

fn run_checked(command: &mut Command, what: &str) -> anyhow::Result<()> {
    let status = command.status().with_context(|| format!("could not run {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// The whole command.
pub async fn run(args: &[String]) -> anyhow::Result<ExitCode> {
    if args.iter().any(|a| matches!(a.as_str(), "--help-bench" | "--help" | "-h")) {
        print!("{USAGE}");
        return Ok(ExitCode::SUCCESS);
    }
    let options = Options::parse(args)?;
    if options.syscalls && !syscalls::available() {
        bail!("--syscalls needs strace (apt-get install strace)");
    }
    let started = Instant::now();
    let tools = tools::ensure()?;
    let python_bin = tools::ensure_bench_python()?;
    let template = Template::load_project()?;
    let all: Vec<String> = template.functions()?.into_iter().map(|f| f.package).collect();
    let functions: Vec<String> = match &options.only {
        None => all.clone(),
        Some(only) => {
            if let Some(unknown) = only.iter().find(|f| !all.contains(f)) {
                bail!("--only: {unknown} is not a function of template.yaml");
            }
            all.iter().filter(|f| only.contains(f)).cloned().collect()
        }
    };
    let routes: Vec<&Route> = ROUTES.iter().filter(|r| functions.iter().any(|f| f == r.function)).collect();
    // The profile of every function, the project's profiles the routes are measured under
    // (the deployed one first), and the floor's.
    let (function_profile, route_profiles, floor_profile) = if options.quick {
        (profiles::load("dev")?, vec![profiles::load("dev")?], profiles::load("dev")?)
    } else {
        (
            profiles::load(profiles::RELEASE)?,
            // The floor's profile last: the same code under fat LTO and panic=abort, which
            // measures what cross-crate LTO and abort would add to production.
            vec![
                profiles::load(profiles::PRODUCTION)?,
                profiles::load(profiles::RELEASE)?,
                profiles::load(profiles::FLOOR)?,
            ],
            profiles::load(profiles::FLOOR)?,
        )
    };
    let mut builds: Vec<(&profiles::Profile, Vec<&str>)> = vec![(&floor_profile, vec!["hello-lambda"])];
    if !routes.is_empty() {
        builds[0].1.push("floor");
    }
    builds.push((&function_profile, functions.iter().map(String::as_str).collect()));
    for profile in &route_profiles {
        builds.push((profile, routes.iter().map(|r| r.function).collect()));
    }
    let mut build_times = Vec::new();
    for (profile, packages) in &builds {
        if packages.is_empty() {
            continue;
        }
        eprintln!("xtask: {} build of {}...", profile.name, packages.join(", "));
        let started = Instant::now();
        let mut build = cargo();
        build.args(["build", "--quiet", "--profile", &profile.name]);
        for package in packages {
            build.args(["--package", package]);
        }
        run_checked(&mut build, &format!("cargo build --profile {}", profile.name))?;
        build_times.push(format!("{}: {:.0?}", profile.name, started.elapsed()));
    }
    let overhead = if options.quick || options.only.is_some() { None } else { Some(http_overhead()?) };

    let dir = local_dir().join("bench");
    let logs = dir.join("logs");
    let _ = std::fs::remove_dir_all(&logs);
    std::fs::create_dir_all(&logs)?;
    let cloud = LocalCloud::start(
        &tools,
        CloudConfig {
            ports: Ports { dynamodb: free_port()?, moto: free_port()? },
            prefix: "bench".into(),
            dynamodb_data: None,
            logs_dir: logs.clone(),
        },
    )?;
    cloud.provision(&template).await?;
    let mut env = cloud.function_env(&template)?;
    // Every sample event comes from one client address; measure the work, not 429s.
    env.push(("RATE_LIMIT_PER_MINUTE".into(), "1000000".into()));
    // One seeded customer places every order of the run: lift the caps on what one
    // account may hold open (the route still does the holdings write of each order).
    env.push(("MAX_OPEN_ORDERS_PER_ACCOUNT".into(), "1000000".into()));
    env.push(("MAX_HELD_UNITS_PER_PRODUCT".into(), "1000000".into()));
    // get-docs serves Swagger UI's files: locally from the pinned swagger-ui-dist.
    env.push((
        "REFERENCE_ASSETS_DIR".into(),
        project_root().join(".tools/contract/node_modules/swagger-ui-dist").display().to_string(),
    ));
    eprintln!("xtask: seeding products, a user, an admin and their tokens...");
    let seeded = seed::seed(&cloud, &env).await.context("seeding the bench data")?;
    let peer_dir = project_root().join("bench/python-peer");
    // Ship compiled modules, as a deployment package would: the first cold start must not compile them.
    run_checked(
        Command::new(python_bin.join("python")).args(["-m", "compileall", "-q"]).arg(&peer_dir).stdout(Stdio::null()),
        "python -m compileall",
    )?;

    let rust = |name: &str, binary: &str, profile: &profiles::Profile| Target {
        name: name.to_owned(),
        program: project_root().join("target").join(profile.dir()).join(binary),
        args: Vec::new(),
        dir: None,
        env: Vec::new(),
        stderr_log: Some(logs.join(format!("{binary}.{}.stderr.log", profile.name))),
    };
    let python = |route: &Route| Target {
        name: route.function.to_owned(),
        program: python_bin.join("python"),
        args: vec!["-m".into(), "awslambdaric".into(), format!("{}.lambda_handler", route.python_module)],
        dir: Some(peer_dir.clone()),
        env: vec![
            ("POWERTOOLS_SERVICE_NAME".into(), route.function.into()),
            ("POWERTOOLS_METRICS_NAMESPACE".into(), "Shop".into()),
            ("LAMBDA_TASK_ROOT".into(), peer_dir.display().to_string()),
            ("AWS_EXECUTION_ENV".into(), "AWS_Lambda_python3.11".into()),
        ],
        stderr_log: Some(logs.join(format!("python-{}.stderr.log", route.python_module))),
    };
    let (runs, warm) = (options.runs, options.warm);

    eprintln!("xtask: measuring the hello-world baseline...");
    let hello_target = rust("hello-lambda", "hello-lambda", &floor_profile);
    let mut hello = Vec::new();
    for _ in 0..runs {
        hello.push(measure(&hello_target, &env, b"{}", warm).await?);
    }

    // DynamoDB Local is a JVM: its first requests of a kind are slow until
    // the JIT has compiled them. Serve each route's calls once, unmeasured.
    // refresh-session's one session, rotated by every request of every implementation in turn.
    let mut chain = seeded.refresh_chain()?;
    for route in &routes {
        let event = seeded.event(route.function)?;
        let floor = rust(route.function, &format!("floor-{}", route.function), &floor_profile);
        let events = (route.function == refresh::FUNCTION).then_some(&mut chain);
        measure_route(&floor, &env, &event, events, warm)
            .await
            .with_context(|| format!("warming up with floor-{}", route.function))?;
    }

    let mut route_results = Vec::new();
    // The warm-up's orders are on the queue already.
    // moto walks a queue's messages to answer for it (the publishers' warm-up
    // asks for its attributes): kept empty between cold starts, the queue
    // costs every cold start the same, however many came before.
    empty_queues(&cloud, &env).await?;
    for route in &routes {
        let event = seeded.event(route.function)?;
        // The project under each profile, then the floor, then the Python peer.
        let mut implementations: Vec<Target> =
            route_profiles.iter().map(|profile| rust(route.function, route.function, profile)).collect();
        let mut labels: Vec<String> =
            route_profiles.iter().map(|profile| format!("project, {} profile", profile.name)).collect();
        implementations.push(rust(route.function, &format!("floor-{}", route.function), &floor_profile));
        labels.push(format!("floor, {} profile", floor_profile.name));
        implementations.push(python(route));
        labels.push("Python peer".into());
        let count = implementations.len();
        let mut measured: Vec<Vec<Run>> = (0..count).map(|_| Vec::new()).collect();
        let route_runs = runs * route.cold_starts_times;
        for round in 0..route_runs {
            // Interleaved, starting with a different implementation each round,
            // so a slow spell of the machine or the local cloud hits all alike.
            for offset in 0..count {
                let index = (round + offset) % count;
                eprintln!(
                    "xtask: measuring {} ({}), cold start {}/{route_runs}...",
                    route.function,
                    labels[index],
                    round + 1
                );
                let events = (route.function == refresh::FUNCTION).then_some(&mut chain);
                let run = measure_route(&implementations[index], &env, &event, events, warm)
                    .await
                    .with_context(|| format!("measuring {} ({})", route.function, labels[index]))?;
                if let Some(wrong) = run.statuses.iter().find(|s| **s != Some(route.status)) {
                    bail!(
                        "{} ({}) answered {wrong:?} to the seeded event, not {}: it would not be doing the route's work; see {}",
                        route.function,
                        labels[index],
                        route.status,
                        logs.display()
                    );
                }
                if route.publishes {
                    let (left, now_queued) = outbox_state(&cloud, &env).await?;
                    let orders = warm as u64 + 1;
                    if left != 0 || now_queued != orders {
                        bail!(
                            "{} ({}): {left} order-placed outbox record(s) left and {now_queued} message(s) queued for \
                             {orders} orders: an event was not published or its outbox record not deleted",
                            route.function,
                            labels[index],
                        );
                    }
                    empty_queues(&cloud, &env).await?;
                }
                measured[index].push(run);
            }
        }
        let python = measured.pop().expect("the Python peer was measured");
        let floor = measured.pop().expect("the floor was measured");
        route_results.push(RouteResult {
            function: route.function.to_owned(),
            method: route.method,
            path: route.path,
            write: route.write,
            projects: route_profiles
                .iter()
                .map(|p| p.name.clone())
                .zip(measured.iter().map(|m| Summary::of(m)))
                .collect(),
            floor: Summary::of(&floor),
            python: Summary::of(&python),
        });
    }

    if let Some(route) = routes.iter().find(|route| route.function == refresh::FUNCTION) {
        // The warm-up's cold start and every implementation's: each answer a refresh that rotated the session.
        let answers = (1 + (route_profiles.len() + 2) * runs * route.cold_starts_times) * (warm + 1);
        if chain.refreshed() != answers {
            bail!(
                "{}: {} of {answers} answers were refreshes (200 with the session's next refresh token): \
                 the figures would not time a refresh's work",
                refresh::FUNCTION,
                chain.refreshed()
            );
        }
    }

    let mut syscall_rows = Vec::new();
    if options.syscalls {
        let dir = local_dir().join("bench/strace");
        std::fs::create_dir_all(&dir)?;
        // refresh-session's token works once: strace's replayed event would count refusals.
        for route in routes.iter().filter(|route| route.function != refresh::FUNCTION) {
            let event = seeded.event(route.function)?;
            let mut implementations: Vec<(String, Target)> = route_profiles
                .iter()
                .map(|p| (format!("project, `{}`", p.name), rust(route.function, route.function, p)))
                .collect();
            implementations.push((
                format!("Rust floor, `{}`", floor_profile.name),
                rust(route.function, &format!("floor-{}", route.function), &floor_profile),
            ));
            for (label, target) in implementations {
                eprintln!("xtask: counting the system calls of {} ({label})...", route.function);
                let counted = syscalls::per_request(&target, &env, &event, &dir).await?;
                syscall_rows.push((route.function.to_owned(), label, counted));
                if route.publishes {
                    empty_queues(&cloud, &env).await?;
                }
            }
        }
    }

    let mut function_results = Vec::new();
    for function in &functions {
        let measured_already = route_results
            .iter()
            .find(|r| &r.function == function)
            .and_then(|r| r.projects.iter().find(|(profile, _)| *profile == function_profile.name));
        let summary = if let Some((_, summary)) = measured_already {
            summary.clone()
        } else {
            // What earlier functions published stays on the queues (nothing
            // consumes them here); moto answers GetQueueAttributes, the
            // publishers' warm-up call, by walking a queue's messages, which
            // SQS does not. Each function starts with empty queues.
            empty_queues(&cloud, &env).await?;
            eprintln!("xtask: measuring {function}...");
            let event = seeded.event(function)?;
            let target = rust(function, function, &function_profile);
            let mut measured = Vec::new();
            for _ in 0..runs {
                measured
                    .push(measure(&target, &env, &event, warm).await.with_context(|| format!("measuring {function}"))?);
            }
            Summary::of(&measured)
        };
        function_results.push(FunctionResult { function: function.clone(), summary });
    }
    cloud.stop();

    let report = Report {
        function_profile: function_profile.clone(),
        route_profiles: route_profiles.clone(),
        floor_profile: floor_profile.clone(),
        build_times,
        syscalls: syscall_rows,
        runs,
        warm,
        overhead_us: overhead,
        hello: Summary::of(&hello),
        routes: route_results,
        functions: function_results,
        elapsed: started.elapsed(),
    };
    let out = project_root().join("target/bench");
    std::fs::create_dir_all(&out)?;
    let markdown = report.markdown();
    std::fs::write(project_root().join("target/bench.md"), &markdown)?;
    let results = out.join("results.json");
    std::fs::write(&results, serde_json::to_string_pretty(&report.json())?)?;
    let chart = out.join("chart.png");
    draw_chart(&python_bin, &results, &chart)?;
    println!("{markdown}\nwritten: target/bench.md, {}, {}", results.display(), chart.display());
    if options.write_docs {
        std::fs::copy(&chart, project_root().join("docs/bench-chart.png")).context("copying the chart to docs/")?;
        let body = format!(
            "![cargo xtask bench: warm p50/p99, cold total and peak RSS of project, Rust floor and Python peer](bench-chart.png)\n\n{markdown}"
        );
        let command_line = format!("cargo xtask bench {}", args.join(" "));
        crate::docs::write_section(crate::docs::Doc::Performance, "bench", command_line.trim(), &body)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// One cold start of `target` on a route's events: the seeded event, or
/// (refresh-session) the chain of refresh tokens.
async fn measure_route(
    target: &Target,
    env: &[(String, String)],
    event: &[u8],
    chain: Option<&mut refresh::RefreshChain>,
    warm: usize,
) -> anyhow::Result<Run> {
    match chain {
        Some(chain) => measure_chained(target, env, chain, warm).await,
        None => measure(target, env, event, warm).await,
    }
}

/// Empties every queue of the function environment (`*_QUEUE_URL`), by
/// receiving and deleting: PurgeQueue is allowed once a minute per queue.
async fn empty_queues(cloud: &LocalCloud, env: &[(String, String)]) -> anyhow::Result<()> {
    use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
    let sqs = cloud.sqs().await;
    let error = |e: &dyn std::fmt::Display| anyhow::anyhow!("emptying a queue: {e}");
    for (_, url) in env.iter().filter(|(name, _)| name.ends_with("_QUEUE_URL")) {
        loop {
            let received = sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .visibility_timeout(60)
                .wait_time_seconds(0)
                .send()
                .await
                .map_err(|e| error(&aws_sdk_sqs::error::DisplayErrorContext(e)))?;
            let entries: Vec<_> = received
                .messages()
                .iter()
                .enumerate()
                .filter_map(|(index, message)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(index.to_string())
                        .set_receipt_handle(message.receipt_handle().map(str::to_owned))
                        .build()
                        .ok()
                })
                .collect();
            if entries.is_empty() {
                break;
            }
            sqs.delete_message_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| error(&aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        }
    }
    Ok(())
}

/// Order-placed outbox records left in the table, and the order-placed
/// queue's depth. After a place-order cold start, each order must have put
/// its event on the queue and deleted its outbox record, or the
/// implementation skipped part of the route's work.
async fn outbox_state(cloud: &LocalCloud, env: &[(String, String)]) -> anyhow::Result<(i32, u64)> {
    use aws_sdk_dynamodb::types::{AttributeValue, Select};
    let var = |name: &str| {
        env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).with_context(|| format!("{name} is not set"))
    };
    // The outbox is spread over shards: count every one.
    let dynamodb = cloud.dynamodb().await;
    let mut left = 0;
    for partition in adapters::dynamo::outbox_partitions() {
        left += dynamodb
            .query()
            .table_name(var("TABLE_NAME")?)
            .index_name("gsi1")
            .key_condition_expression("gsi1pk = :outbox")
            .filter_expression("#queue = :queue")
            .expression_attribute_names("#queue", "queue")
            .expression_attribute_values(":outbox", AttributeValue::S(partition))
            .expression_attribute_values(":queue", AttributeValue::S("order-placed".into()))
            .select(Select::Count)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(e)))?
            .count;
    }
    let attributes = cloud
        .sqs()
        .await
        .get_queue_attributes()
        .queue_url(var("ORDER_PLACED_QUEUE_URL")?)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
    let queued: u64 = attributes
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Ok((left, queued))
}

/// The HTTP layer's own cost per request, without I/O (a release micro-benchmark).
fn http_overhead() -> anyhow::Result<String> {
    eprintln!("xtask: measuring the HTTP layer's overhead...");
    let output = cargo()
        .args(["bench", "--quiet", "-p", "framework", "--bench", "http_overhead"])
        .stdout(Stdio::null())
        .output()
        .context("cargo bench")?;
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .find_map(|l| l.strip_prefix("handler_overhead_us=").map(str::to_owned))
        .context("the overhead benchmark printed no result")
}

fn draw_chart(python_bin: &Path, results: &Path, chart: &Path) -> anyhow::Result<()> {
    let script: PathBuf = project_root().join("bench/chart.py");
    run_checked(
        Command::new(python_bin.join("python"))
            .arg(&script)
            .arg(results)
            .arg(chart)
            .env("MPLBACKEND", "Agg")
            .env("MPLCONFIGDIR", local_dir().join("bench/matplotlib")),
        "bench/chart.py",
    )
}
