//! `cargo xtask bench-relay`: the outbox relay draining a seeded backlog on
//! a private local cloud (DynamoDB Local and moto), measured twice in one
//! run on backlogs of the same size: as it drains now (pages, batches of
//! ten, several batches and shards at once, rounds while a backlog remains)
//! and as it drained before ([`RelayTuning::one_at_a_time`]: one record per
//! call, one call at a time, 100 records a run, one pass). Both are the
//! same code, `adapters::outbox`, tuned; the records are written as the
//! functions write them (a registration's transaction with its outbox
//! record); a consumer keeps the queue short (moto slows down with every
//! message a queue holds) and after each drain every event must have been
//! received once and the outbox must be empty.
//!
//! Writes `target/bench-relay.md`; with `--write-docs` also its section of
//! docs/performance.md, with the cloud arithmetic for a backlog of 100,000.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use adapters::dynamo::{DynamoUserStore, OutboxRecords, Table};
use adapters::outbox::{OutboxPublisher, RelayTuning};
use anyhow::{Context, bail};
use local_cloud::cloud::{CloudConfig, LocalCloud, Ports};
use local_cloud::procs::free_port;
use local_cloud::template::Template;
use local_cloud::tools;

use crate::{local_dir, project_root};

/// The relay function's package, whose timeout in template.yaml sets the
/// budget of a run in the cloud (half of it).
const RELAY: &str = "relay-outbox";
/// The relay's schedule in the cloud: one run a minute.
const CLOUD_RUNS_PER_MINUTE: f64 = 1.0;
/// The backlog the target is stated for, and the time it must drain in.
const TARGET_RECORDS: f64 = 100_000.0;
const TARGET_MINUTES: f64 = 5.0;

/// Seeds outbox records on a private local cloud and measures how fast the
/// relay drains them, now and as it was before the batches.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Outbox records seeded before each of the two drains.
    #[arg(long, default_value_t = 5_000)]
    pub records: usize,
    /// Each relay run's time budget, in seconds [default: the function's,
    /// half its timeout in template.yaml].
    #[arg(long)]
    pub budget_seconds: Option<u64>,
    /// Also rewrite the bench-relay section of docs/performance.md.
    #[arg(long)]
    pub write_docs: bool,
}

/// One drain of a seeded backlog.
struct Drained {
    label: &'static str,
    tuning: RelayTuning,
    records: usize,
    runs: usize,
    seconds: f64,
    /// Most records one run published.
    busiest_run: usize,
    /// Distinct events received from the queue (must equal `records`).
    queued: usize,
    /// Outbox records left afterwards (must be 0).
    left: usize,
}

impl Drained {
    fn per_second(&self) -> f64 {
        self.records as f64 / self.seconds.max(0.001)
    }

    /// Records one cloud run moves: the run's cap, or the local rate over the budget.
    fn per_cloud_run(&self, budget: u64) -> f64 {
        let by_rate = self.per_second() * budget as f64;
        match self.tuning.max_records {
            Some(cap) => by_rate.min(cap as f64),
            None => by_rate,
        }
    }

    /// Minutes the cloud takes for `records`, one run a minute.
    fn cloud_minutes(&self, records: f64, budget: u64) -> f64 {
        (records / self.per_cloud_run(budget).max(1.0)).ceil() / CLOUD_RUNS_PER_MINUTE
    }
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.records == 0 {
        bail!("--records must be at least 1");
    }
    let tools = tools::ensure()?;
    let template = Template::load_project()?;
    let logs = local_dir().join("bench-relay/logs");
    let _ = std::fs::remove_dir_all(&logs);
    std::fs::create_dir_all(&logs)?;
    eprintln!("xtask: bench-relay: starting a private local cloud");
    let cloud = LocalCloud::start(
        &tools,
        CloudConfig {
            ports: Ports { dynamodb: free_port()?, moto: free_port()? },
            prefix: "benchrelay".into(),
            dynamodb_data: None,
            logs_dir: logs,
        },
    )?;
    cloud.provision(&template).await?;
    let env: BTreeMap<String, String> = cloud.function_env(&template)?.into_iter().collect();
    let settings = adapters::config::ShopSettings::from_lookup(|name| env.get(name).cloned())?;
    let table = Table::new(cloud.dynamodb().await, settings.table_name.clone());
    let sqs = cloud.sqs().await;
    let timeout = template
        .functions()?
        .into_iter()
        .find(|function| function.package == RELAY)
        .with_context(|| format!("{RELAY} is not in template.yaml"))?
        .timeout_seconds;
    let budget_seconds = args.budget_seconds.unwrap_or(timeout / 2).max(1);
    let budget = Duration::from_secs(budget_seconds);

    // DynamoDB Local is a JVM: its first requests of a kind are slow until
    // compiled. A small backlog drained each way first, unmeasured.
    eprintln!("xtask: bench-relay: warming up the local cloud");
    for tuning in [RelayTuning::one_at_a_time(), RelayTuning::default()] {
        seed(&table, 200, "warm").await?;
        drain(&table, &sqs, "warm-up", tuning, 200, budget).await?;
    }

    let modes = [
        ("before: one record per call, one call at a time, 100 a run, one pass", RelayTuning::one_at_a_time()),
        (
            "now, one shard and one batch at a time: batches of 10, pages, rounds while a backlog remains",
            RelayTuning { shards_at_once: 1, batches_at_once: 1, ..RelayTuning::default() },
        ),
        (
            "now: batches of 10, pages, shards and batches at once, rounds while a backlog remains",
            RelayTuning::default(),
        ),
    ];
    let mut drained = Vec::new();
    for (index, (label, tuning)) in modes.into_iter().enumerate() {
        eprintln!("xtask: bench-relay: seeding {} outbox records", args.records);
        seed(&table, args.records, &format!("m{index}")).await?;
        eprintln!("xtask: bench-relay: draining them ({label})");
        let measured = drain(&table, &sqs, label, tuning, args.records, budget).await?;
        println!(
            "xtask: bench-relay: {label}: {} records in {:.1} s ({:.0} records/s) over {} runs",
            measured.records,
            measured.seconds,
            measured.per_second(),
            measured.runs
        );
        drained.push(measured);
    }
    drop(cloud);

    let command_line = format!(
        "cargo xtask bench-relay --records {}{}{}",
        args.records,
        args.budget_seconds.map_or_else(String::new, |seconds| format!(" --budget-seconds {seconds}")),
        if args.write_docs { " --write-docs" } else { "" }
    );
    let markdown = to_markdown(&drained, Cloud { budget: budget_seconds, timeout }, &command_line);
    let output = project_root().join("target/bench-relay.md");
    std::fs::create_dir_all(output.parent().expect("target/"))?;
    std::fs::write(&output, &markdown)?;
    println!("xtask: bench-relay: results in {}", output.display());
    if args.write_docs {
        crate::docs::write_section(crate::docs::Doc::Performance, "bench-relay", &command_line, &markdown)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `count` outbox records as registration writes them: each in its
/// transaction with its user.
async fn seed(table: &Table, count: usize, tag: &str) -> anyhow::Result<()> {
    let users = DynamoUserStore::new(table.clone());
    let run = format!("{}.{tag}", ulid::Ulid::new().to_string().to_lowercase());
    let next = Arc::new(AtomicUsize::new(0));
    let mut writers = tokio::task::JoinSet::new();
    // One writer: DynamoDB Local slows down with concurrent writers (8 wrote
    // about a third of what one writes).
    for _ in 0..1 {
        let (users, run, next) = (users.clone(), run.clone(), next.clone());
        writers.spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= count {
                    return Ok::<(), anyhow::Error>(());
                }
                let email = domain::Email::parse(&format!("relay.{run}.{index}@example.com"))
                    .map_err(|error| anyhow::anyhow!("{error}"))?;
                let user = domain::NewUser {
                    email,
                    password_hash: domain::PasswordHash::from_phc("$argon2id$bench".into()),
                    role: domain::Role::User,
                }
                .into_user(time::OffsetDateTime::now_utc());
                let event = domain::DomainEvent::user_created(user.id, &user.email, "bench-relay", user.created_at);
                domain::ports::UserStore::insert(&users, &user, Some(&event))
                    .await
                    .map_err(|error| anyhow::anyhow!("seeding an outbox record: {error}"))?;
            }
        });
    }
    while let Some(joined) = writers.join_next().await {
        joined.context("a seeding task panicked")??;
    }
    Ok(())
}

/// Runs the relay as `tuning` says, run after run, until `records` are
/// published, to a queue of the drain's own; then checks the queue holds
/// them all once and the outbox is empty.
async fn drain(
    table: &Table,
    sqs: &aws_sdk_sqs::Client,
    label: &'static str,
    tuning: RelayTuning,
    records: usize,
    budget: Duration,
) -> anyhow::Result<Drained> {
    let queue = sqs
        .create_queue()
        .queue_name(format!("benchrelay-{}", ulid::Ulid::new().to_string().to_lowercase()))
        .send()
        .await
        .context("creating the drain's queue")?;
    let queue_url = queue.queue_url().context("a queue without a URL")?.to_owned();
    let publisher = OutboxPublisher::new(
        table.clone(),
        sqs.clone(),
        BTreeMap::from([("user-created".to_owned(), queue_url.clone())]),
    );
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let consumer = tokio::spawn(consume(sqs.clone(), queue_url.clone(), done.clone()));
    let started = Instant::now();
    let (mut published, mut runs, mut busiest_run) = (0, 0, 0);
    while published < records {
        let report = publisher.relay_tuned(Duration::ZERO, budget, tuning).await?;
        runs += 1;
        if report.failed > 0 || report.parked > 0 {
            bail!("{label}: run {runs} failed {} and parked {} records", report.failed, report.parked);
        }
        if report.published == 0 {
            bail!("{label}: run {runs} published nothing with {} of {records} records left", records - published);
        }
        published += report.published;
        busiest_run = busiest_run.max(report.published);
    }
    let seconds = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let (received, distinct) = consumer.await.context("the queue's consumer panicked")??;
    let queued = distinct;
    let left = outbox_left(table).await?;
    if published != records || received != records || distinct != records || left != 0 {
        bail!(
            "{label}: published {published}, {received} messages received ({distinct} distinct events) and {left} outbox records left for {records} records"
        );
    }
    sqs.delete_queue().queue_url(&queue_url).send().await.context("deleting the drain's queue")?;
    Ok(Drained { label, tuning, records, runs, seconds, busiest_run, queued, left })
}

/// Receives and deletes what the relay sends while it drains (moto slows
/// down with every message a queue holds, which SQS does not), until `done`
/// and the queue is empty; the messages received and the distinct events.
async fn consume(
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    done: Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<(usize, usize)> {
    let mut events = std::collections::HashSet::new();
    let mut received = 0;
    loop {
        let finished = done.load(Ordering::Relaxed);
        let answer = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(i32::from(finished))
            .send()
            .await
            .context("receiving from the drain's queue")?;
        let messages = answer.messages();
        if messages.is_empty() {
            if finished {
                return Ok((received, events.len()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let mut deletes = Vec::new();
        for (index, message) in messages.iter().enumerate() {
            received += 1;
            let body: serde_json::Value = serde_json::from_str(message.body().unwrap_or_default()).unwrap_or_default();
            events.insert(body["id"].as_str().unwrap_or_default().to_owned());
            deletes.push(
                aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                    .id(index.to_string())
                    .receipt_handle(message.receipt_handle().unwrap_or_default())
                    .build()?,
            );
        }
        sqs.delete_message_batch()
            .queue_url(&queue_url)
            .set_entries(Some(deletes))
            .send()
            .await
            .context("deleting received messages")?;
    }
}

/// Outbox records left in every partition of the outbox.
async fn outbox_left(table: &Table) -> anyhow::Result<usize> {
    let records = OutboxRecords::new(table.clone());
    let mut left = 0;
    for partition in 0..OutboxRecords::partitions() {
        let mut start = None;
        loop {
            let page = records.page(partition, start, 1000).await?;
            left += page.entries.len();
            match page.more {
                Some(more) => start = Some(more),
                None => break,
            }
        }
    }
    Ok(left)
}

/// A relay run in the cloud: its budget and the function's timeout, seconds.
#[derive(Debug, Clone, Copy)]
struct Cloud {
    budget: u64,
    timeout: u64,
}

fn to_markdown(drained: &[Drained], cloud: Cloud, command_line: &str) -> String {
    let Cloud { budget, timeout } = cloud;
    let mut md = String::new();
    let date = time::OffsetDateTime::now_utc().date();
    let _ = writeln!(
        md,
        "`{command_line}` ({date}): a backlog of {} outbox records (registrations' `user-created` events) on a private local cloud (DynamoDB Local, moto; loopback, no TLS), drained by `adapters::outbox` as tuned below, run after run with a {budget} s budget each, until empty, while a consumer received and deleted the messages (moto slows down with every message a queue holds); after each drain every event had been received once and the outbox was empty.\n",
        drained.first().map_or(0, |d| d.records)
    );
    md += "| relay | SQS calls per record | records | runs | most in one run | drain time | records/s | at this rate, one run a minute: 100,000 records take |\n";
    md += "|---|---:|---:|---:|---:|---:|---:|---:|\n";
    for d in drained {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {:.1} s | {:.0} | {} |",
            d.label,
            if d.tuning.batch_entries <= 1 { "1".to_owned() } else { format!("1/{}", d.tuning.batch_entries) },
            d.records,
            d.runs,
            d.busiest_run,
            d.seconds,
            d.per_second(),
            minutes(d.cloud_minutes(TARGET_RECORDS, budget)),
        );
        debug_assert_eq!((d.queued, d.left), (d.records, 0));
    }
    let overran: Vec<String> = drained
        .iter()
        .filter(|d| d.seconds / d.runs.max(1) as f64 > budget as f64 * 1.2)
        .map(|d| format!("{} ({:.1} s a run)", d.label, d.seconds / d.runs.max(1) as f64))
        .collect();
    if !overran.is_empty() {
        let _ = writeln!(
            md,
            "\nRuns that overran their {budget} s budget: {}. A run starts no page once its budget is spent, but finishes the page and batches under way.",
            overran.join("; ")
        );
    }
    if let [before, .., now] = drained {
        let best = drained.iter().max_by(|a, b| a.per_second().total_cmp(&b.per_second())).unwrap_or(now);
        let _ = writeln!(
            md,
            "\nFastest here: {} at {:.0} records/s, {:.1}x the relay before.",
            best.label,
            best.per_second(),
            best.per_second() / before.per_second().max(0.001)
        );
        let needed = TARGET_RECORDS / (TARGET_MINUTES * CLOUD_RUNS_PER_MINUTE * budget as f64);
        let _ = writeln!(
            md,
            "\nSpeed-up while running: {:.1}x ({:.0} against {:.0} records/s); on the schedule, {:.0}x (a run then moved at most 100 records).\n",
            now.per_second() / before.per_second().max(0.001),
            now.per_second(),
            before.per_second(),
            before.cloud_minutes(TARGET_RECORDS, budget) / now.cloud_minutes(TARGET_RECORDS, budget).max(1.0),
        );
        let _ = writeln!(
            md,
            "Cloud arithmetic for 100,000 records in under {TARGET_MINUTES:.0} minutes: the relay runs once a minute (reserved concurrency 1) for at most {budget} s (half its {timeout}-second timeout), so {TARGET_MINUTES:.0} runs have {:.0} s between them and must move {needed:.0} records a second while they run. Before: 100 records a run, so 100,000 took 1,000 runs, about {:.0} hours. Now, at this run's local rate, a run moves about {:.0} records and 100,000 take {}; each record costs a tenth of a `SendMessageBatch`, one `DeleteItem` and a hundredth of a `Query` page, with {} shards and {} batches of 10 in flight (up to {} records on the wire at once). {}",
            TARGET_MINUTES * budget as f64,
            1000.0 / 60.0,
            now.per_cloud_run(budget),
            minutes(now.cloud_minutes(TARGET_RECORDS, budget)),
            now.tuning.shards_at_once,
            now.tuning.batches_at_once,
            now.tuning.shards_at_once * now.tuning.batches_at_once * now.tuning.batch_entries,
            if now.per_second() >= needed {
                "The local rate clears the target."
            } else {
                "The local rate is below what the target needs (the local cloud, a JVM and a Python server on the same 2 cores as the relay, is slower per call than DynamoDB and SQS in a region); docs/architecture.md's capacity plan gives the cloud's own estimate and what would widen the margin."
            }
        );
    }
    md
}

fn minutes(value: f64) -> String {
    if value >= 120.0 { format!("{:.1} hours", value / 60.0) } else { format!("{value:.0} min") }
}
