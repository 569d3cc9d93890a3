//! `cargo xtask dlq`: the queues' depths, their dead letters and the reasons
//! they were parked, and moving dead letters back to their queue. On the dev
//! stack (or the queues an env file names), or on a deployed stack
//! (`--stack`), whose queue URLs come from its CloudFormation outputs. A
//! deployed queue's dead letters move with SQS's own message-move task; the
//! local cloud (moto) has none, so there they are received, sent and deleted.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use local_cloud::dlq::{self, DeadLetter, Depth, MoveTask};
use local_cloud::local_dir;

use crate::shell::read_env_file;

/// The queues and dead-letter queues of the dev stack, of an env file, or of a deployed stack.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
    /// Queue URLs (`<NAME>_QUEUE_URL`, `<NAME>_DLQ_URL`) from this file
    /// instead of the running dev stack's.
    #[arg(long, global = true, conflicts_with = "stack")]
    pub env_file: Option<PathBuf>,
    /// A deployed stack (the name `sam deploy` gave it, e.g. shop-dev): queue
    /// URLs from its outputs, credentials from the usual AWS configuration
    /// (environment, profile, SSO).
    #[arg(long, global = true)]
    pub stack: Option<String>,
    /// The AWS region of a deployed stack (default: AWS_REGION or the profile's).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// The AWS profile to use (default: AWS_PROFILE, else `default`).
    #[arg(long, global = true)]
    pub profile: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Each queue's depth (waiting, in flight, delayed), each dead-letter
    /// queue's depth, its oldest dead letter and its messages' reasons.
    #[command(visible_alias = "depth")]
    List {
        /// Dead letters read per queue for their reasons and age (they stay
        /// in the queue, visible again at once).
        #[arg(long, default_value_t = 100, value_name = "N")]
        peek: usize,
        /// Every dead letter read, with its id, age and reason (without it,
        /// the reasons are counted).
        #[arg(long)]
        messages: bool,
    },
    /// Moves a queue's dead letters back to the queue: on a deployed stack
    /// with SQS's message-move task, locally by receiving, sending and deleting them.
    Redrive {
        /// A queue of template.yaml, such as `order-placed`.
        queue: String,
        /// Deployed stack: start SQS's message-move task and return at once
        /// (`dlq list` shows how far it got).
        #[arg(long)]
        no_wait: bool,
        /// Deployed stack: move at most this many messages a second (SQS's
        /// default: as fast as it can).
        #[arg(long, value_name = "PER_SECOND")]
        rate: Option<i32>,
    },
}

/// One queue of the template and its dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePair {
    /// The template's name for it, such as `order-placed`.
    pub name: String,
    pub queue_url: String,
    pub dlq_url: String,
}

/// Where the queues live, and how to reach them.
pub struct Target {
    pub sqs: aws_sdk_sqs::Client,
    pub queues: Vec<QueuePair>,
    /// Real SQS (a deployed stack): message-move tasks, long polls.
    pub deployed: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let names = queue_names()?;
    let target = connect(&args, &names).await?;
    let mut out = std::io::stdout();
    match args.action {
        Action::List { peek, messages } => {
            let options = ListOptions { peek, messages, now_ms: now_ms() };
            list(&target, &options, &mut out).await?;
        }
        Action::Redrive { queue, no_wait, rate } => {
            let Some(pair) = target.queues.iter().find(|pair| pair.name == queue) else {
                bail!("no queue {queue} in template.yaml (its queues: {})", names.join(", "));
            };
            if target.deployed {
                let options = MoveOptions { wait: !no_wait, rate, poll: Duration::from_secs(2) };
                redrive_with_move_task(&target.sqs, pair, &options, &mut out).await?;
            } else {
                let moved = dlq::redrive(&target.sqs, &pair.dlq_url, &pair.queue_url).await?;
                writeln!(out, "moved {moved} message(s) from the {queue} dead-letter queue back to {queue}")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The SQS client and queue URLs `args` point at: a deployed stack's
/// outputs, or an env file (the dev stack's by default).
async fn connect(args: &Args, names: &[String]) -> anyhow::Result<Target> {
    let aws = || async {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(profile) = &args.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &args.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        let config = loader.load().await;
        if config.region().is_none() {
            bail!("no AWS region: pass --region, set AWS_REGION, or give the profile a region");
        }
        Ok(config)
    };
    if let Some(stack) = &args.stack {
        let config = aws().await?;
        let cloudformation = aws_sdk_cloudformation::Client::new(&config);
        let queues = queues_from_stack(&cloudformation, stack, names).await?;
        return Ok(Target { sqs: aws_sdk_sqs::Client::new(&config), queues, deployed: true });
    }
    let env_file = args.env_file.clone().unwrap_or_else(|| local_dir().join("dev/cloud.env"));
    let env: BTreeMap<String, String> = read_env_file(&env_file)
        .context("no queue settings: is `cargo xtask dev` running? Or pass --stack (a deployed stack) or --env-file")?
        .into_iter()
        .collect();
    let queues = queues_from_env(&env, names)?;
    match env.get("AWS_ENDPOINT_URL_SQS") {
        Some(endpoint) => {
            let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .endpoint_url(endpoint)
                .region(aws_config::Region::new(local_cloud::cloud::REGION))
                .credentials_provider(aws_sdk_sqs::config::Credentials::new("test", "test", None, None, "local-cloud"))
                .load()
                .await;
            Ok(Target { sqs: aws_sdk_sqs::Client::new(&config), queues, deployed: false })
        }
        // Queues of a deployed stack, written down by hand.
        None => Ok(Target { sqs: aws_sdk_sqs::Client::new(&aws().await?), queues, deployed: true }),
    }
}

/// The queue URLs an env file holds: `ORDER_PLACED_QUEUE_URL` and
/// `ORDER_PLACED_DLQ_URL` for `order-placed`, as the functions get them.
pub fn queues_from_env(env: &BTreeMap<String, String>, names: &[String]) -> anyhow::Result<Vec<QueuePair>> {
    let url = |queue: &str, suffix: &str| {
        let name = format!("{}_{suffix}", queue.to_uppercase().replace('-', "_"));
        env.get(&name).cloned().with_context(|| format!("{name} is not set"))
    };
    names
        .iter()
        .map(|name| {
            Ok(QueuePair { name: name.clone(), queue_url: url(name, "QUEUE_URL")?, dlq_url: url(name, "DLQ_URL")? })
        })
        .collect()
}

/// The queue URLs a deployed stack's outputs hold: `OrderPlacedQueueUrl`
/// and `OrderPlacedDeadLetterQueueUrl` for `order-placed` (template.yaml's Outputs).
pub async fn queues_from_stack(
    cloudformation: &aws_sdk_cloudformation::Client,
    stack: &str,
    names: &[String],
) -> anyhow::Result<Vec<QueuePair>> {
    let described = cloudformation.describe_stacks().stack_name(stack).send().await.map_err(|error| {
        anyhow::anyhow!(
            "could not describe stack {stack}: {}",
            aws_sdk_cloudformation::error::DisplayErrorContext(error)
        )
    })?;
    let Some(found) = described.stacks().first() else { bail!("no stack {stack}") };
    let outputs: BTreeMap<&str, &str> =
        found.outputs().iter().filter_map(|output| Some((output.output_key()?, output.output_value()?))).collect();
    let output = |key: String| {
        outputs.get(key.as_str()).map(|value| (*value).to_owned()).with_context(|| {
            format!(
                "stack {stack} has no output {key} (its outputs: {}); is it deployed from this template?",
                outputs.keys().copied().collect::<Vec<_>>().join(", ")
            )
        })
    };
    names
        .iter()
        .map(|name| {
            let pascal = pascal_case(name);
            Ok(QueuePair {
                name: name.clone(),
                queue_url: output(format!("{pascal}QueueUrl"))?,
                dlq_url: output(format!("{pascal}DeadLetterQueueUrl"))?,
            })
        })
        .collect()
}

/// `order-placed` as CloudFormation names it: `OrderPlaced`.
fn pascal_case(kebab: &str) -> String {
    kebab
        .split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map(|first| first.to_uppercase().chain(chars).collect::<String>()).unwrap_or_default()
        })
        .collect()
}

/// How `list` reads the dead letters.
#[derive(Debug, Clone)]
pub struct ListOptions {
    /// Dead letters read per queue.
    pub peek: usize,
    /// Each dead letter on a line of its own.
    pub messages: bool,
    /// Now, for ages.
    pub now_ms: i64,
}

/// Prints every queue's depth and its dead letters' reasons.
pub async fn list(target: &Target, options: &ListOptions, out: &mut impl Write) -> anyhow::Result<()> {
    let sqs = &target.sqs;
    // Depths first: reading the dead letters puts them in flight for a moment.
    let mut depths = Vec::new();
    for pair in &target.queues {
        depths.push((dlq::depth(sqs, &pair.queue_url).await?, dlq::depth(sqs, &pair.dlq_url).await?));
    }
    let wait_seconds = i32::from(target.deployed);
    let mut letters = Vec::new();
    for (pair, (_, dead)) in target.queues.iter().zip(&depths) {
        let read = if dead.visible + dead.in_flight + dead.delayed == 0 || options.peek == 0 {
            Vec::new()
        } else {
            dlq::peek_at_most(sqs, &pair.dlq_url, options.peek, wait_seconds).await?
        };
        let task = if target.deployed {
            dlq::latest_move_task(sqs, &dlq::queue_arn(sqs, &pair.dlq_url).await?).await?
        } else {
            None
        };
        letters.push((read, task));
    }

    let width = target.queues.iter().map(|pair| pair.name.len()).max().unwrap_or(5).max(5);
    writeln!(
        out,
        "{:<width$}  {:>7}  {:>9}  {:>7}  {:>12}  oldest dead letter",
        "queue", "waiting", "in flight", "delayed", "dead letters"
    )?;
    for ((pair, (depth, dead)), (read, _)) in target.queues.iter().zip(&depths).zip(&letters) {
        let oldest = read.iter().filter_map(|letter| letter.sent_at_ms).min();
        writeln!(
            out,
            "{:<width$}  {:>7}  {:>9}  {:>7}  {:>12}  {}",
            pair.name,
            depth.visible,
            depth.in_flight,
            depth.delayed,
            dead_count(*dead),
            oldest.map_or_else(|| "-".to_owned(), |sent| age(options.now_ms - sent)),
        )?;
    }
    for ((pair, (_, dead)), (read, task)) in target.queues.iter().zip(&depths).zip(&letters) {
        if let Some(task) = task.as_ref().filter(|task| task.running()) {
            writeln!(out, "\n{}: redrive {}", pair.name, progress(task))?;
        }
        if read.is_empty() {
            continue;
        }
        let total = dead_count(*dead);
        let sample =
            if (read.len() as u64) < total { format!(" (reasons of the {} read)", read.len()) } else { String::new() };
        writeln!(out, "\n{}: {total} dead letter(s){sample}", pair.name)?;
        if options.messages {
            for letter in read {
                let age = letter.sent_at_ms.map_or_else(|| "-".to_owned(), |sent| age(options.now_ms - sent));
                writeln!(out, "  {}  {age:>7}  {}", letter.id, reason(letter))?;
            }
        } else {
            let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
            for letter in read {
                *reasons.entry(reason(letter)).or_default() += 1;
            }
            let mut reasons: Vec<_> = reasons.into_iter().collect();
            reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            for (reason, count) in reasons {
                writeln!(out, "  {count:>5}  {reason}")?;
            }
        }
    }
    Ok(())
}

fn dead_count(depth: Depth) -> u64 {
    depth.visible + depth.in_flight + depth.delayed
}

fn reason(letter: &DeadLetter) -> &str {
    letter.reason.as_deref().unwrap_or("(no reason: SQS moved it after repeated failed receives)")
}

/// A duration for people: `41s`, `3m 12s`, `2h 05m`, `3d 04h`.
fn age(ms: i64) -> String {
    let seconds = ms.max(0) / 1000;
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m {:02}s", seconds / 60, seconds % 60),
        3600..86_400 => format!("{}h {:02}m", seconds / 3600, seconds % 3600 / 60),
        _ => format!("{}d {:02}h", seconds / 86_400, seconds % 86_400 / 3600),
    }
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// How a deployed redrive runs.
#[derive(Debug, Clone)]
pub struct MoveOptions {
    /// Report progress until the task ends (else return once it started).
    pub wait: bool,
    /// Messages a second at most.
    pub rate: Option<i32>,
    /// How often to ask for progress.
    pub poll: Duration,
}

/// Moves `pair`'s dead letters back with SQS's message-move task and
/// reports its progress (`ListMessageMoveTasks`) until it ends.
pub async fn redrive_with_move_task(
    sqs: &aws_sdk_sqs::Client,
    pair: &QueuePair,
    options: &MoveOptions,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let name = &pair.name;
    let dlq_arn = dlq::queue_arn(sqs, &pair.dlq_url).await?;
    let queue_arn = dlq::queue_arn(sqs, &pair.queue_url).await?;
    let before = dlq::latest_move_task(sqs, &dlq_arn).await?.map(|task| task.started_ms);
    dlq::start_move_task(sqs, &dlq_arn, &queue_arn, options.rate).await.with_context(|| {
        format!(
            "could not start moving {name}'s dead letters (one move task at a time: `dlq list` shows a running one)"
        )
    })?;
    writeln!(out, "{name}: SQS is moving the dead letters of {dlq_arn} back to {queue_arn}")?;
    if !options.wait {
        writeln!(out, "{name}: not waiting; `cargo xtask dlq list --stack ...` shows its progress")?;
        return Ok(());
    }
    let mut last: Option<MoveTask> = None;
    loop {
        tokio::time::sleep(options.poll).await;
        // Until ours is listed, the latest is an earlier task.
        let Some(task) = dlq::latest_move_task(sqs, &dlq_arn).await?.filter(|task| Some(task.started_ms) != before)
        else {
            continue;
        };
        if last.as_ref() != Some(&task) {
            writeln!(out, "{name}: {}", progress(&task))?;
            out.flush()?;
        }
        if !task.running() {
            if task.status != "COMPLETED" {
                bail!("{name}: the move task ended {}", progress(&task));
            }
            return Ok(());
        }
        last = Some(task);
    }
}

fn progress(task: &MoveTask) -> String {
    let of = task.to_move.map(|total| format!(" of {total}")).unwrap_or_default();
    let why = task.failure_reason.as_ref().map(|reason| format!(": {reason}")).unwrap_or_default();
    format!("{} ({} moved{of}){why}", task.status.to_lowercase(), task.moved)
}

/// The queues template.yaml gives the functions (`<NAME>_QUEUE_URL`), as
/// kebab-case names: `ORDER_PLACED_QUEUE_URL` is `order-placed`.
pub(crate) fn queue_names() -> anyhow::Result<Vec<String>> {
    let template = local_cloud::template::Template::load_project()?;
    Ok(template
        .environment_variable_names()?
        .into_iter()
        .filter_map(|name| name.strip_suffix("_QUEUE_URL").map(|queue| queue.to_lowercase().replace('_', "-")))
        .collect())
}

#[cfg(test)]
mod tests;
