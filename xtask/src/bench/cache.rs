//! `cargo xtask bench-cache`: the measured effect of the catalogue's caches,
//! in one run on a local stack of its own (DynamoDB Local, moto, every
//! function under `cargo lambda watch`, the local API front).
//!
//! - **Revalidating clients**: simulated browsers read listing pages and
//!   product pages, each keeping what it read and asking again with
//!   `If-None-Match`; first while nothing changes, then while a writer
//!   changes products. Every `304` is checked by a full GET of the same
//!   page: the tag it confirmed must still be the current answer's, with the
//!   very bytes the client holds. Bytes are what the client received against
//!   what a client without validators would have received.
//! - **Staleness**: after each write, fresh clients poll the product's page
//!   and the first listing page until the change shows; the largest delay
//!   is set against the read cache's TTL.
//! - **DynamoDB reads per request**: the functions record their AWS calls
//!   (`SHOP_RECORD_AWS_CALLS`); calls of `get-product` and `list-products`
//!   over the catalogue requests of the run (cache on, as configured), and,
//!   on the same cloud, each function run under the bench's Runtime API
//!   emulator with the cache as configured and with
//!   `CATALOGUE_CACHE_TTL_SECONDS=0`.
//! - **Warm latency**: those emulator runs, interleaved with the route's Rust
//!   floor (`bench/floor`, which reads DynamoDB on every request): warm p50
//!   of a cache hit, of the same function with the cache off, and of the floor.
//!
//! Fails when an invariant breaks: a revalidation while nothing changed not
//! answered 304, a 304 the full GET contradicts, a cached request reading
//! DynamoDB as often as an uncached one, a change later than the TTL allows.
//! Writes `target/bench-cache.md`; with `--write-docs` also its section of
//! docs/performance.md. [`short_run`] is the same, briefer, inside `cargo
//! xtask test`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use adapters::dynamo::{DynamoProductStore, Table};
use anyhow::{Context, bail};
use domain::ports::ProductStore;
use domain::{Product, ProductDraft, ProductId};
use local_cloud::cloud::{CloudConfig, Ports};
use local_cloud::procs::free_port;
use local_cloud::stack::{LocalStack, StackConfig};
use local_cloud::template::Template;
use local_cloud::tools;
use rand::Rng;
use serde_json::Value;

use super::emulator::{Run, Target, measure};
use crate::shell::{cargo, run_checked};
use crate::{local_dir, project_root};

/// The name a test filter uses to run [`short_run`] alone.
pub const SHORT_RUN: &str = "bench_cache";

/// Measures the catalogue's caches on a local stack of its own.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds the clients browse while nothing changes.
    #[arg(long, default_value_t = 15)]
    pub quiet_seconds: u64,
    /// Seconds they browse while the writer changes products.
    #[arg(long, default_value_t = 45)]
    pub writing_seconds: u64,
    /// Browsing clients at once.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Seconds between two of the writer's changes.
    #[arg(long, default_value_t = 3)]
    pub write_every: u64,
    /// Cold starts per implementation in the emulator comparison.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Warm requests per cold start.
    #[arg(long, default_value_t = 40)]
    pub warm: usize,
    /// Also rewrite the bench-cache section of docs/performance.md.
    #[arg(long)]
    pub write_docs: bool,
}

/// How long and how hard one measurement runs.
#[derive(Debug, Clone)]
struct Plan {
    /// Products the run creates (the newest `LISTING_LIMIT` are the first page).
    products: usize,
    clients: usize,
    quiet: Duration,
    writing: Duration,
    write_every: Duration,
    runs: usize,
    warm: usize,
}

/// The listing's page size the clients read (its first page is cached).
const LISTING_LIMIT: usize = 10;
/// How often a freshness poller asks.
const POLL_EVERY: Duration = Duration::from_millis(100);
/// No request sent later than the TTL plus this after a write may get the
/// old version (the function's clock and ours, a request queued in it).
const STALENESS_SLACK: Duration = Duration::from_secs(1);

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.clients == 0 || args.runs == 0 || args.warm == 0 || args.write_every == 0 {
        bail!("--clients, --runs, --warm and --write-every must be at least 1");
    }
    let tools = tools::ensure()?;
    let template = Template::load_project()?;
    // What the run calls (`cargo lambda watch` builds a function when first
    // invoked; these are ready before the stack waits for /health).
    eprintln!("xtask: bench-cache: building the catalogue functions, /health and the floors...");
    run_checked(
        cargo().args([
            "build",
            "--quiet",
            "-p",
            "get-product",
            "-p",
            "list-products",
            "-p",
            "get-health",
            "-p",
            "floor",
        ]),
        "cargo build",
    )?;
    let dir = local_dir().join("bench-cache");
    let _ = std::fs::remove_dir_all(&dir);
    let calls = dir.join("aws-calls.tsv");
    let config = StackConfig {
        cloud: CloudConfig {
            ports: Ports { dynamodb: free_port()?, moto: free_port()? },
            prefix: "benchcache".into(),
            dynamodb_data: None,
            logs_dir: dir.join("logs"),
        },
        api_port: free_port()?,
        reload_on_change: false,
        functions_log: Some(dir.join("logs/functions.log")),
        extra_env: vec![("SHOP_RECORD_AWS_CALLS".into(), calls.display().to_string())],
    };
    eprintln!("xtask: bench-cache: starting a local stack of its own");
    let stack = LocalStack::start(&tools, &template, config).await?;
    let plan = Plan {
        products: 30,
        clients: args.clients,
        quiet: Duration::from_secs(args.quiet_seconds),
        writing: Duration::from_secs(args.writing_seconds),
        write_every: Duration::from_secs(args.write_every),
        runs: args.runs,
        warm: args.warm,
    };
    let report = measure_on(&stack, &plan, &calls, &dir).await;
    drop(stack);
    let report = report?;
    let command_line = format!(
        "cargo xtask bench-cache --quiet-seconds {} --writing-seconds {} --clients {} --write-every {} --runs {} --warm {}{}",
        args.quiet_seconds,
        args.writing_seconds,
        args.clients,
        args.write_every,
        args.runs,
        args.warm,
        if args.write_docs { " --write-docs" } else { "" }
    );
    let markdown = report.markdown(&command_line);
    let output = project_root().join("target/bench-cache.md");
    std::fs::create_dir_all(output.parent().expect("target/"))?;
    std::fs::write(&output, &markdown)?;
    println!("{markdown}\nxtask: bench-cache: results in {}", output.display());
    let broken = report.broken_invariants();
    if !broken.is_empty() {
        for problem in &broken {
            eprintln!("xtask: bench-cache: FAILED: {problem}");
        }
        return Ok(ExitCode::FAILURE);
    }
    if args.write_docs {
        crate::docs::write_section(crate::docs::Doc::Performance, "bench-cache", &command_line, &markdown)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The test command's version, on its stack (its short cache lifetimes):
/// 4 s quiet, 8 s of writes every 2 s, one cold start of 10 warm requests
/// per implementation. Prints the figures; false when an invariant broke.
pub async fn short_run(stack: &LocalStack, calls: &Path, dir: &Path) -> bool {
    eprintln!("\nxtask: {SHORT_RUN}: revalidating clients, a writer and the read cache on the test stack");
    let plan = Plan {
        products: 12,
        clients: 3,
        quiet: Duration::from_secs(4),
        writing: Duration::from_secs(8),
        write_every: Duration::from_secs(2),
        runs: 1,
        warm: 10,
    };
    match measure_on(stack, &plan, calls, &dir.join("bench-cache")).await {
        Ok(report) => {
            println!("{}", report.summary());
            let broken = report.broken_invariants();
            for problem in &broken {
                eprintln!("  {problem}");
            }
            println!(
                "xtask: {SHORT_RUN}: {} passed, {} failed",
                usize::from(broken.is_empty()),
                usize::from(!broken.is_empty())
            );
            broken.is_empty()
        }
        Err(error) => {
            eprintln!("xtask: {SHORT_RUN}: {error:#}");
            false
        }
    }
}

/// Everything one run measured.
struct Report {
    ttl: Duration,
    public_cache: (String, String),
    quiet: Tally,
    writing: Tally,
    checks: Checks,
    writes: usize,
    staleness: Staleness,
    /// DynamoDB calls and requests of the run, per function, cache on.
    stack_reads: Vec<(String, u64, u64)>,
    routes: Vec<RouteLatency>,
    /// Cold starts per implementation and warm requests each, under the emulator.
    runs: usize,
    warm: usize,
    elapsed: Duration,
}

/// What the revalidating clients sent and received in one phase.
#[derive(Debug, Default, Clone)]
struct Tally {
    requests: u64,
    conditional: u64,
    not_modified: u64,
    /// Conditional requests for product pages, and those answered 304.
    product_conditional: u64,
    product_not_modified: u64,
    /// Bytes received (status line, headers, body).
    bytes: u64,
    /// What a client without validators would have received for the same views.
    bytes_without_validators: u64,
    other_statuses: u64,
}

/// The full GET after each 304.
#[derive(Debug, Default, Clone)]
struct Checks {
    /// The current answer had the confirmed tag and the client's bytes.
    correct: u64,
    /// The tag had moved on, explained by a write shortly before.
    changed_since: u64,
    /// Contradicted: same tag with other bytes, or a new tag no write explains.
    incorrect: Vec<String>,
}

/// Delays between a write and the first answer showing it.
#[derive(Debug, Default, Clone)]
struct Staleness {
    product_pages: Vec<Duration>,
    first_pages: Vec<Duration>,
    /// The latest a request that still got the old version was sent.
    last_stale_asked: Duration,
    /// Writes whose change never showed within the poll's limit.
    never: Vec<String>,
}

/// One route under the emulator: the function with its cache, without it, and the floor.
struct RouteLatency {
    function: &'static str,
    on: Measured,
    off: Measured,
    floor: Measured,
}

struct Measured {
    warm_p50: Duration,
    /// DynamoDB calls per warm request (none for the floor, which does not record).
    calls_per_request: Option<f64>,
}

impl Tally {
    fn share(part: u64, whole: u64) -> f64 {
        if whole == 0 { 0.0 } else { part as f64 / whole as f64 }
    }

    fn add(&mut self, other: &Tally) {
        self.requests += other.requests;
        self.conditional += other.conditional;
        self.not_modified += other.not_modified;
        self.product_conditional += other.product_conditional;
        self.product_not_modified += other.product_not_modified;
        self.bytes += other.bytes;
        self.bytes_without_validators += other.bytes_without_validators;
        self.other_statuses += other.other_statuses;
    }
}

/// The run on `stack`: products, clients and a writer, pollers, then the
/// emulator comparison on the same cloud.
async fn measure_on(stack: &LocalStack, plan: &Plan, calls: &Path, dir: &Path) -> anyhow::Result<Report> {
    let started = Instant::now();
    std::fs::create_dir_all(dir)?;
    let env_value = |name: &str| stack.env.iter().rev().find(|(key, _)| key == name).map(|(_, value)| value.clone());
    let ttl = Duration::from_secs(
        env_value("CATALOGUE_CACHE_TTL_SECONDS")
            .context("CATALOGUE_CACHE_TTL_SECONDS is not in the functions' environment")?
            .parse()
            .context("the read cache's TTL")?,
    );
    let public_cache = (
        env_value("CACHE_MAX_AGE_SECONDS").context("CACHE_MAX_AGE_SECONDS is not in the functions' environment")?,
        env_value("CACHE_STALE_WHILE_REVALIDATE_SECONDS")
            .context("CACHE_STALE_WHILE_REVALIDATE_SECONDS is not in the functions' environment")?,
    );
    let table = Table::new(stack.cloud.dynamodb().await, env_value("TABLE_NAME").context("TABLE_NAME")?);
    let store = DynamoProductStore::new(table);
    let products = create_products(&store, plan.products).await?;
    let api = format!("{}/api/v1", stack.api_url);
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let shared = Arc::new(Shared {
        http,
        api,
        products: products.iter().map(|p| p.id).collect(),
        writes: Mutex::new(Vec::new()),
        checks: Mutex::new(Checks::default()),
        sent: Mutex::new(BTreeMap::new()),
        ttl,
        addresses: AtomicU64::new(0),
    });

    // Every page once, unmeasured: the functions start (`cargo lambda watch`
    // may build one first, waiting for cargo's lock) and the cursor key is read.
    for path in [first_page(), product_page(shared.products[0])] {
        shared
            .http
            .get(format!("{}{path}", shared.api))
            .timeout(Duration::from_secs(600))
            .send()
            .await
            .with_context(|| format!("starting the function of GET {path}"))?;
    }
    for path in shared.paths() {
        let _ = shared.get(&path, None).await?;
    }
    let calls_before = file_length(calls);
    let served_before = ["get-product", "list-products"].map(|function| shared.served(function));

    eprintln!(
        "xtask: bench-cache: {} clients browse, {:?} while nothing changes, then {:?} while a product changes every {:?}",
        plan.clients, plan.quiet, plan.writing, plan.write_every
    );
    let quiet_until = Instant::now() + plan.quiet;
    let deadline = quiet_until + plan.writing;
    let browsing = tokio::spawn({
        let shared = shared.clone();
        let clients = plan.clients;
        async move { browse(&shared, clients, quiet_until, deadline).await }
    });
    tokio::time::sleep_until(quiet_until.into()).await;
    let mut pollers = tokio::task::JoinSet::new();
    let mut current: HashMap<ProductId, Product> = products.iter().map(|p| (p.id, p.clone())).collect();
    let mut writes = 0;
    while Instant::now() + plan.write_every <= deadline {
        tokio::time::sleep(plan.write_every).await;
        // The hot products (newest, on the first page) change, where the clients look.
        let on_first_page = LISTING_LIMIT.min(shared.products.len());
        let id = shared.products[shared.products.len() - on_first_page + hot_index(on_first_page)];
        let previous = current.get(&id).context("a product the run made")?.clone();
        let next = changed(&previous)?;
        store.replace(&previous, &next).await.map_err(|error| anyhow::anyhow!("the writer's change: {error}"))?;
        let committed = Instant::now();
        shared.writes.lock().unwrap_or_else(PoisonError::into_inner).push((id, committed));
        pollers.spawn(poll_until_fresh(shared.clone(), next.clone(), committed));
        current.insert(id, next);
        writes += 1;
    }
    let (quiet, writing) = browsing.await.context("the browsing clients panicked")??;
    let mut staleness = Staleness::default();
    while let Some(polled) = pollers.join_next().await {
        match polled.context("a freshness poller panicked")? {
            Ok(polled) => {
                staleness.product_pages.push(polled.product_page);
                staleness.first_pages.push(polled.first_page);
                staleness.last_stale_asked = staleness.last_stale_asked.max(polled.last_stale_asked);
            }
            Err(never) => staleness.never.push(format!("{never:#}")),
        }
    }
    let stack_reads = dynamodb_calls(calls, calls_before, &["get-product", "list-products"])
        .into_iter()
        .zip(served_before)
        .map(|((function, calls), before)| {
            let served = shared.served(&function) - before;
            (function, calls, served)
        })
        .collect::<Vec<_>>();

    eprintln!("xtask: bench-cache: the functions under the Runtime API emulator, cache on and off, and the floors");
    let mut routes = Vec::new();
    for function in ["get-product", "list-products"] {
        routes.push(emulated(stack, function, &products[products.len() - 1], ttl, plan, dir).await?);
    }
    let checks = shared.checks.lock().unwrap_or_else(PoisonError::into_inner).clone();
    Ok(Report {
        ttl,
        public_cache,
        quiet,
        writing,
        checks,
        writes,
        staleness,
        stack_reads,
        routes,
        runs: plan.runs,
        warm: plan.warm,
        elapsed: started.elapsed(),
    })
}

/// What the clients, the writer and the pollers share.
struct Shared {
    http: reqwest::Client,
    api: String,
    /// Oldest first: the last `LISTING_LIMIT` are the first page.
    products: Vec<ProductId>,
    /// Each change's product and when it committed.
    writes: Mutex<Vec<(ProductId, Instant)>>,
    checks: Mutex<Checks>,
    /// Catalogue requests sent (clients, checks, polls), by the function serving them.
    sent: Mutex<BTreeMap<String, u64>>,
    ttl: Duration,
    addresses: AtomicU64,
}

/// One answer as a client sees it.
struct Answer {
    status: u16,
    etag: Option<String>,
    body: Vec<u8>,
    /// Status line, headers and body, as they came over the wire (uncompressed locally).
    bytes: u64,
}

/// A page a client keeps: its tag, body and the size of its full answer.
#[derive(Clone)]
struct Kept {
    etag: String,
    body: Vec<u8>,
    bytes: u64,
}

/// The first listing page the clients read.
fn first_page() -> String {
    format!("/products?limit={LISTING_LIMIT}")
}

fn product_page(id: ProductId) -> String {
    format!("/products/{id}")
}

impl Shared {
    /// Every page a client may read (the second listing page aside).
    fn paths(&self) -> Vec<String> {
        let mut paths = vec![first_page()];
        paths.extend(self.products.iter().map(|id| product_page(*id)));
        paths
    }

    /// Requests sent to `function` so far.
    fn served(&self, function: &str) -> u64 {
        let sent = self.sent.lock().unwrap_or_else(PoisonError::into_inner);
        sent.get(function).copied().unwrap_or(0)
    }

    /// GET `path`, with `If-None-Match: tag` when given, from an address of
    /// its own every 20 requests (the front allows 100 a minute per address).
    async fn get(&self, path: &str, tag: Option<&str>) -> anyhow::Result<Answer> {
        let n = self.addresses.fetch_add(1, Ordering::Relaxed) / 20;
        let address = format!("198.51.{}.{}", (n / 250) % 250, n % 250 + 1);
        let mut request = self.http.get(format!("{}{path}", self.api)).header("x-forwarded-for", address);
        if let Some(tag) = tag {
            request = request.header("if-none-match", tag);
        }
        let function = if path.starts_with("/products/") { "get-product" } else { "list-products" };
        *self.sent.lock().unwrap_or_else(PoisonError::into_inner).entry(function.to_owned()).or_default() += 1;
        let response = request.send().await.with_context(|| format!("GET {path}"))?;
        let status = response.status().as_u16();
        let head: usize = "HTTP/1.1 200 OK\r\n\r\n".len()
            + response.headers().iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum::<usize>();
        let etag = response.headers().get("etag").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = response.bytes().await.with_context(|| format!("reading GET {path}"))?.to_vec();
        Ok(Answer { status, etag, bytes: (head + body.len()) as u64, body })
    }

    /// Was any change to `id` (any product, for a listing) committed
    /// between the read cache's TTL before `from` and `until`?
    fn written_between(&self, id: Option<ProductId>, from: Instant, until: Instant) -> bool {
        let since = from.checked_sub(self.ttl + Duration::from_secs(1)).unwrap_or(from);
        self.writes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|(written, at)| id.is_none_or(|id| id == *written) && *at >= since && *at <= until)
    }
}

/// A skewed pick among `count` items, the last ones (newest) most often.
fn hot_index(count: usize) -> usize {
    let u: f64 = rand::rng().random();
    let from_newest = ((u * u) * count as f64) as usize;
    count - 1 - from_newest.min(count - 1)
}

/// `clients` browsers until `deadline`, each keeping what it read and
/// revalidating; what they saw before `quiet_until` and after.
async fn browse(
    shared: &Arc<Shared>,
    clients: usize,
    quiet_until: Instant,
    deadline: Instant,
) -> anyhow::Result<(Tally, Tally)> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let shared = shared.clone();
        tasks.spawn(async move { browser(&shared, quiet_until, deadline).await });
    }
    let (mut quiet, mut writing) = (Tally::default(), Tally::default());
    while let Some(tallies) = tasks.join_next().await {
        let (before, after) = tallies.context("a browsing client panicked")??;
        quiet.add(&before);
        writing.add(&after);
    }
    Ok((quiet, writing))
}

/// One browser: 30% first listing page, 10% the second, 60% a product
/// page (the newest most often), a short pause between views.
async fn browser(shared: &Arc<Shared>, quiet_until: Instant, deadline: Instant) -> anyhow::Result<(Tally, Tally)> {
    let mut kept: HashMap<String, Kept> = HashMap::new();
    let mut next_page: Option<String> = None;
    let (mut quiet, mut writing) = (Tally::default(), Tally::default());
    while Instant::now() < deadline {
        let tally = if Instant::now() < quiet_until { &mut quiet } else { &mut writing };
        let pick: f64 = rand::rng().random();
        let (path, product) = if pick < 0.3 {
            (first_page(), None)
        } else if pick < 0.4 && next_page.is_some() {
            (next_page.clone().unwrap_or_default(), None)
        } else {
            let id = shared.products[hot_index(shared.products.len())];
            (product_page(id), Some(id))
        };
        let held = kept.get(&path).cloned();
        let asked = Instant::now();
        let answer = shared.get(&path, held.as_ref().map(|k| k.etag.as_str())).await?;
        tally.requests += 1;
        tally.bytes += answer.bytes;
        if held.is_some() {
            tally.conditional += 1;
            tally.product_conditional += u64::from(product.is_some());
        }
        match (answer.status, held) {
            (304, Some(held)) => {
                tally.not_modified += 1;
                tally.product_not_modified += u64::from(product.is_some());
                tally.bytes_without_validators += held.bytes;
                check_not_modified(shared, &path, product, &held, asked).await?;
            }
            (200, _) => {
                tally.bytes_without_validators += answer.bytes;
                if path == first_page() {
                    next_page = serde_json::from_slice::<Value>(&answer.body)
                        .ok()
                        .and_then(|page| page["pagination"]["next_cursor"].as_str().map(str::to_owned))
                        .map(|cursor| format!("/products?limit={LISTING_LIMIT}&cursor={cursor}"));
                }
                if let Some(etag) = answer.etag {
                    kept.insert(path, Kept { etag, body: answer.body, bytes: answer.bytes });
                }
            }
            _ => {
                tally.other_statuses += 1;
                tally.bytes_without_validators += answer.bytes;
            }
        }
        let pause = rand::rng().random_range(30..120);
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    Ok((quiet, writing))
}

/// The full GET after a 304: the current answer must carry the tag the 304
/// confirmed and the very bytes the client holds; a new tag is only right
/// when a write (to that product; to any, for a listing) could have shown
/// in between.
async fn check_not_modified(
    shared: &Shared,
    path: &str,
    product: Option<ProductId>,
    held: &Kept,
    asked: Instant,
) -> anyhow::Result<()> {
    let current = shared.get(path, None).await?;
    let done = Instant::now();
    let mut checks = shared.checks.lock().unwrap_or_else(PoisonError::into_inner);
    match current.etag {
        Some(tag) if current.status == 200 && tag == held.etag => {
            if current.body == held.body {
                checks.correct += 1;
            } else {
                checks
                    .incorrect
                    .push(format!("{path}: tag {tag} confirmed, but the current answer with that tag has other bytes"));
            }
        }
        Some(_) if current.status == 200 && shared.written_between(product, asked, done) => {
            checks.changed_since += 1;
        }
        other => checks.incorrect.push(format!(
            "{path}: 304 confirmed {}, the full GET answered {} with {other:?} and no change explains it",
            held.etag, current.status
        )),
    }
    Ok(())
}

/// Fresh clients (no validators) poll the product's page and the first
/// listing page until each shows `next` or a later version (the writer only
/// moves prices up); the delays since `committed`.
async fn poll_until_fresh(shared: Arc<Shared>, next: Product, committed: Instant) -> anyhow::Result<Polled> {
    let limit = shared.ttl + Duration::from_secs(10);
    let wanted_price = next.price.minor();
    let id = next.id.to_string();
    let (mut product_seen, mut listing_seen) = (None, None);
    let mut last_stale_asked = Duration::ZERO;
    while product_seen.is_none() || listing_seen.is_none() {
        if committed.elapsed() > limit {
            let unseen = match (product_seen, listing_seen) {
                (None, None) => "its page nor the first listing page",
                (None, Some(_)) => "its page",
                _ => "the first listing page",
            };
            bail!("the change of product {id} to version {} did not show on {unseen} within {limit:?}", next.version);
        }
        if product_seen.is_none() {
            let asked = committed.elapsed();
            let answer = shared.get(&product_page(next.id), None).await?;
            let version = answer.etag.as_deref().and_then(|tag| tag.trim_matches('"').parse::<u64>().ok());
            // This write or a later one (the writer may change the product again first).
            if version.is_some_and(|version| version >= next.version) {
                product_seen = Some(committed.elapsed());
            } else {
                last_stale_asked = last_stale_asked.max(asked);
            }
        }
        if listing_seen.is_none() {
            let asked = committed.elapsed();
            let answer = shared.get(&first_page(), None).await?;
            let page: Value = serde_json::from_slice(&answer.body).unwrap_or_default();
            let shows = page["data"].as_array().into_iter().flatten().any(|item| {
                item["id"].as_str() == Some(id.as_str())
                    && item["price"]["amount_minor"].as_u64().is_some_and(|price| price >= wanted_price)
            });
            if shows {
                listing_seen = Some(committed.elapsed());
            } else {
                last_stale_asked = last_stale_asked.max(asked);
            }
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
    Ok(Polled {
        product_page: product_seen.unwrap_or_default(),
        first_page: listing_seen.unwrap_or_default(),
        last_stale_asked,
    })
}

/// When one write showed, counted from its commit.
struct Polled {
    /// The first answer showing it arrived (product page, first listing page).
    product_page: Duration,
    first_page: Duration,
    /// The latest request that still got the old version was sent.
    last_stale_asked: Duration,
}

/// `count` active products of this run, oldest first, written as the
/// catalogue's create writes them.
async fn create_products(store: &DynamoProductStore, count: usize) -> anyhow::Result<Vec<Product>> {
    let run = ulid::Ulid::new().to_string();
    let run = &run[run.len() - 8..];
    let mut products = Vec::new();
    for index in 0..count {
        let draft = ProductDraft::parse(
            &format!("CACHE-{run}-{index:03}"),
            &format!("Cache bench product {index}"),
            Some("Made by cargo xtask bench-cache: a catalogue entry of ordinary size, with a description a shop would show on its product page."),
            1_000 + index as i64,
            "EUR",
            100,
            Some(true),
        )
        .map_err(|error| anyhow::anyhow!("{error}"))?;
        let product = draft.into_product(time::OffsetDateTime::now_utc());
        store.insert(&product).await.map_err(|error| anyhow::anyhow!("creating a product: {error}"))?;
        products.push(product);
        // Distinct creation times keep the listing's order the creation order.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(products)
}

/// `product` with its price one cent up, as the next version.
fn changed(product: &Product) -> anyhow::Result<Product> {
    let draft = ProductDraft::parse(
        product.sku.as_ref(),
        &product.name,
        Some(&product.description),
        product.price.minor() as i64 + 1,
        product.price.currency().as_str(),
        i64::from(product.stock),
        Some(product.active),
    )
    .map_err(|error| anyhow::anyhow!("{error}"))?;
    Ok(product.replaced(draft, time::OffsetDateTime::now_utc()))
}

fn file_length(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |metadata| metadata.len())
}

/// DynamoDB calls each of `functions` recorded in `calls` after byte `from`.
fn dynamodb_calls(calls: &Path, from: u64, functions: &[&str]) -> Vec<(String, u64)> {
    let text = std::fs::read(calls).unwrap_or_default();
    let text = String::from_utf8_lossy(text.get(from as usize..).unwrap_or_default());
    functions
        .iter()
        .map(|function| {
            let count = text
                .lines()
                .filter(|line| {
                    let mut fields = line.split('\t');
                    fields.next() == Some(*function)
                        && fields.next().is_some_and(|action| action.starts_with("dynamodb:"))
                })
                .count() as u64;
            ((*function).to_owned(), count)
        })
        .collect()
}

/// `function`'s sample event, on `product` for get-product.
fn event(function: &str, product: &Product) -> anyhow::Result<Vec<u8>> {
    let path = project_root().join(format!("events/{function}.json"));
    let mut event: Value =
        serde_json::from_slice(&std::fs::read(&path)?).with_context(|| format!("reading {}", path.display()))?;
    if function == "get-product" {
        let id = product.id.to_string();
        let path = format!("/api/v1/products/{id}");
        event["path"] = path.clone().into();
        event["pathParameters"]["id"] = id.into();
        event["requestContext"]["path"] = format!("/v1{path}").into();
    }
    Ok(serde_json::to_vec(&event)?)
}

/// `function` under the Runtime API emulator on the stack's cloud, with its
/// cache as configured, with it off, and its floor, interleaved.
async fn emulated(
    stack: &LocalStack,
    function: &'static str,
    product: &Product,
    ttl: Duration,
    plan: &Plan,
    dir: &Path,
) -> anyhow::Result<RouteLatency> {
    let bin = project_root().join("target/debug");
    let event = event(function, product)?;
    let target = |label: &str, program: PathBuf, ttl: Option<Duration>| {
        let mut env = vec![(
            "SHOP_RECORD_AWS_CALLS".to_owned(),
            dir.join(format!("{function}-{label}.tsv")).display().to_string(),
        )];
        if let Some(ttl) = ttl {
            env.push(("CATALOGUE_CACHE_TTL_SECONDS".to_owned(), ttl.as_secs().to_string()));
        }
        Target {
            name: function.to_owned(),
            program,
            args: Vec::new(),
            dir: None,
            env,
            stderr_log: Some(dir.join(format!("{function}-{label}.stderr.log"))),
        }
    };
    let targets = [
        target("on", bin.join(function), Some(ttl)),
        target("off", bin.join(function), Some(Duration::ZERO)),
        target("floor", bin.join(format!("floor-{function}")), None),
    ];
    // The calls of a start and its first request alone, to take off each run's count.
    let mut first_only = [0u64; 3];
    for (index, target) in targets.iter().enumerate() {
        let file = calls_file(target);
        let before = count_dynamodb(&file);
        expect_ok(function, measure(target, &stack.env, &event, 0).await?)?;
        first_only[index] = count_dynamodb(&file) - before;
    }
    let mut runs: [Vec<Run>; 3] = Default::default();
    let mut warm_calls = [0u64; 3];
    for round in 0..plan.runs {
        for offset in 0..3 {
            let index = (round + offset) % 3;
            let file = calls_file(&targets[index]);
            let before = count_dynamodb(&file);
            let run = expect_ok(function, measure(&targets[index], &stack.env, &event, plan.warm).await?)?;
            warm_calls[index] += (count_dynamodb(&file) - before).saturating_sub(first_only[index]);
            runs[index].push(run);
        }
    }
    let measured = |index: usize, records: bool| {
        let mut warm: Vec<Duration> = runs[index].iter().flat_map(|run| run.warm.iter().copied()).collect();
        warm.sort();
        Measured {
            warm_p50: warm.get(warm.len() / 2).copied().unwrap_or_default(),
            calls_per_request: records.then(|| warm_calls[index] as f64 / (plan.runs * plan.warm) as f64),
        }
    };
    Ok(RouteLatency { function, on: measured(0, true), off: measured(1, true), floor: measured(2, false) })
}

fn calls_file(target: &Target) -> PathBuf {
    target
        .env
        .iter()
        .find(|(name, _)| name == "SHOP_RECORD_AWS_CALLS")
        .map(|(_, file)| PathBuf::from(file))
        .unwrap_or_default()
}

fn count_dynamodb(file: &Path) -> u64 {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter(|line| line.split('\t').nth(1).is_some_and(|action| action.starts_with("dynamodb:")))
        .count() as u64
}

fn expect_ok(function: &str, run: Run) -> anyhow::Result<Run> {
    if let Some(wrong) = run.statuses.iter().find(|status| **status != Some(200)) {
        bail!("{function} answered {wrong:?} to its event under the emulator, not 200");
    }
    Ok(run)
}

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

fn percent(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

fn kilobytes(bytes: u64) -> String {
    format!("{:.1} KB", bytes as f64 / 1000.0)
}

impl Report {
    fn all(&self) -> Tally {
        let mut all = self.quiet.clone();
        all.add(&self.writing);
        all
    }

    fn max_staleness(&self) -> Option<Duration> {
        self.staleness.product_pages.iter().chain(&self.staleness.first_pages).max().copied()
    }

    /// What must hold; each broken one described.
    fn broken_invariants(&self) -> Vec<String> {
        let mut broken = Vec::new();
        if self.quiet.conditional == 0 || self.quiet.not_modified == 0 {
            broken.push(format!(
                "while nothing changed, {} revalidations and {} answered 304: the validators saved nothing",
                self.quiet.conditional, self.quiet.not_modified
            ));
        }
        if self.quiet.product_not_modified != self.quiet.product_conditional {
            broken.push(format!(
                "while nothing changed, {} of {} product-page revalidations were answered in full, not 304",
                self.quiet.product_conditional - self.quiet.product_not_modified,
                self.quiet.product_conditional
            ));
        }
        for incorrect in self.checks.incorrect.iter().take(5) {
            broken.push(format!("an incorrect 304: {incorrect}"));
        }
        for route in &self.routes {
            if let (Some(on), Some(off)) = (route.on.calls_per_request, route.off.calls_per_request)
                && on >= off
            {
                broken.push(format!(
                    "{}: {on:.2} DynamoDB calls per request with the cache, {off:.2} without: the cache saves no read",
                    route.function
                ));
            }
            if let Some((_, calls, served)) = self.stack_reads.iter().find(|(f, _, _)| f == route.function)
                && let Some(off) = route.off.calls_per_request
                && *served > 0
                && (*calls as f64 / *served as f64) >= off
            {
                broken.push(format!(
                    "{}: the run's requests read DynamoDB {:.2} times each, no fewer than without the cache ({off:.2})",
                    route.function,
                    *calls as f64 / *served as f64
                ));
            }
        }
        if self.writes == 0 {
            broken.push("the writer changed nothing: the run is too short for --write-every".into());
        }
        broken.extend(self.staleness.never.iter().cloned());
        if self.staleness.last_stale_asked > self.ttl + STALENESS_SLACK {
            broken.push(format!(
                "a request sent {} after a write still got the old version, later than the read cache's TTL ({} s) allows",
                ms(self.staleness.last_stale_asked),
                self.ttl.as_secs()
            ));
        }
        broken
    }

    /// A few lines for the test command's output.
    fn summary(&self) -> String {
        let all = self.all();
        let mut text = format!(
            "xtask: {SHORT_RUN}: {} requests, {} answered 304 ({} of all, {} of revalidations; {} while nothing changed), \
             {} received against {} without validators; 304s checked by a full GET: {} correct, {} changed since by a write, {} incorrect",
            all.requests,
            all.not_modified,
            percent(Tally::share(all.not_modified, all.requests)),
            percent(Tally::share(all.not_modified, all.conditional)),
            percent(Tally::share(self.quiet.not_modified, self.quiet.conditional)),
            kilobytes(all.bytes),
            kilobytes(all.bytes_without_validators),
            self.checks.correct,
            self.checks.changed_since,
            self.checks.incorrect.len()
        );
        for (function, calls, served) in &self.stack_reads {
            let off = self.routes.iter().find(|r| r.function == function).and_then(|r| r.off.calls_per_request);
            let _ = write!(
                text,
                "\nxtask: {SHORT_RUN}: {function}: {:.2} DynamoDB calls per request in the run ({calls} for {served}), {} with the cache off",
                Tally::share(*calls, *served),
                off.map_or_else(|| "?".into(), |off| format!("{off:.2}"))
            );
        }
        for route in &self.routes {
            let _ = write!(
                text,
                "\nxtask: {SHORT_RUN}: {} warm p50: cache hit {}, cache off {}, floor {}",
                route.function,
                ms(route.on.warm_p50),
                ms(route.off.warm_p50),
                ms(route.floor.warm_p50)
            );
        }
        let _ = write!(
            text,
            "\nxtask: {SHORT_RUN}: {} writes; the latest a change showed: {}, the last old answer was asked for {} after its write (TTL {} s)",
            self.writes,
            self.max_staleness().map_or_else(|| "-".into(), ms),
            ms(self.staleness.last_stale_asked),
            self.ttl.as_secs()
        );
        text
    }

    fn markdown(&self, command_line: &str) -> String {
        let date = time::OffsetDateTime::now_utc().date();
        let all = self.all();
        let mut md = String::new();
        let _ = writeln!(
            md,
            "`{command_line}` ({date}), {:.0} s on a local stack of its own (debug builds under `cargo lambda watch`, DynamoDB Local, the local API front; loopback, no TLS, no compression), \
             with the catalogue's settings as template.yaml gives them: read cache {} s, `max-age={}, stale-while-revalidate={}`.\n",
            self.elapsed.as_secs_f64(),
            self.ttl.as_secs(),
            self.public_cache.0,
            self.public_cache.1
        );
        md += "**Revalidating clients.** Each keeps every page it read and asks again with `If-None-Match` on every view (it never serves its copy unasked, so each view is a request); \
               30% of views the first listing page, 10% the second, 60% a product page (the newest products most often).\n\n";
        md += "| phase | requests | revalidations | answered 304 | 304 share of all | of revalidations | bytes received | without validators | saved |\n";
        md += "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
        for (label, tally) in [
            ("nothing changes", &self.quiet),
            ("a product changes every few seconds", &self.writing),
            ("whole run", &all),
        ] {
            let _ = writeln!(
                md,
                "| {label} | {} | {} | {} | {} | {} | {} | {} | {} |",
                tally.requests,
                tally.conditional,
                tally.not_modified,
                percent(Tally::share(tally.not_modified, tally.requests)),
                percent(Tally::share(tally.not_modified, tally.conditional)),
                kilobytes(tally.bytes),
                kilobytes(tally.bytes_without_validators),
                percent(1.0 - Tally::share(tally.bytes, tally.bytes_without_validators)),
            );
        }
        let _ = writeln!(
            md,
            "\nBytes are status line, headers and body as received; a 304 still carries the security and caching headers. \
             Every 304 was followed by a full GET of the same page: {} found the confirmed tag with byte-identical content, {} found a newer tag after a write the read cache could have hidden until then, {} contradicted the 304. \
             Other statuses: {}.\n",
            self.checks.correct,
            self.checks.changed_since,
            self.checks.incorrect.len(),
            all.other_statuses
        );
        md += "**DynamoDB reads per catalogue request** (the functions' recorded SDK calls).\n\n";
        md += "| function | in the run, cache on: calls / requests | calls per warm request, cache on (emulator) | cache off (emulator) |\n";
        md += "|---|---:|---:|---:|\n";
        for (function, calls, served) in &self.stack_reads {
            let route = self.routes.iter().find(|r| r.function == function);
            let per = |m: Option<&Measured>| {
                m.and_then(|m| m.calls_per_request).map_or_else(|| "-".into(), |v| format!("{v:.2}"))
            };
            let _ = writeln!(
                md,
                "| `{function}` | {:.2} ({calls} / {served}) | {} | {} |",
                Tally::share(*calls, *served),
                per(route.map(|r| &r.on)),
                per(route.map(|r| &r.off))
            );
        }
        md += "\nThe run's requests include the full GETs after each 304 and the freshness polls; a second listing page is never cached. \
               Under the emulator every warm request follows the first within the TTL, so cache on means every warm request is a hit.\n\n";
        let _ = writeln!(
            md,
            "**Warm latency against the floor**, same run: each function under the bench's Runtime API emulator on the stack's cloud, {} cold start(s) x {} warm requests per implementation, interleaved; debug builds, so the figures compare, they do not forecast Lambda.\n",
            self.runs, self.warm
        );
        md +=
            "| route | warm p50, cache hit | cache off | Rust floor (reads every time) | hit / floor | off / floor |\n";
        md += "|---|---:|---:|---:|---:|---:|\n";
        for route in &self.routes {
            let floor = route.floor.warm_p50.as_secs_f64().max(1e-9);
            let _ = writeln!(
                md,
                "| `{}` | {} | {} | {} | {:.2}x | {:.2}x |",
                route.function,
                ms(route.on.warm_p50),
                ms(route.off.warm_p50),
                ms(route.floor.warm_p50),
                route.on.warm_p50.as_secs_f64() / floor,
                route.off.warm_p50.as_secs_f64() / floor
            );
        }
        let max_product = self.staleness.product_pages.iter().max().copied();
        let max_first = self.staleness.first_pages.iter().max().copied();
        let _ = writeln!(
            md,
            "\n**Staleness observed.** {} writes, each a product's price in the table; fresh clients (no validators) polled its page and the first listing page every {} ms until the change showed. \
             Latest first sight after the write committed: product page {}, first page {}; the last request that still got the old version was sent {} after its write; the read cache's TTL is {} s (what the functions may answer late; a browser or the edge may add `max-age` + `stale-while-revalidate` = {} s more).",
            self.writes,
            POLL_EVERY.as_millis(),
            max_product.map_or_else(|| "-".into(), ms),
            max_first.map_or_else(|| "-".into(), ms),
            ms(self.staleness.last_stale_asked),
            self.ttl.as_secs(),
            self.public_cache.0.parse::<u64>().unwrap_or(0) + self.public_cache.1.parse::<u64>().unwrap_or(0)
        );
        md
    }
}
