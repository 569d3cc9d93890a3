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
mod tests {
    //! The deployed-stack paths against a fake AWS endpoint (CloudFormation's
    //! query protocol, SQS's JSON protocol): there is no account here, and the
    //! local cloud (moto) has no message-move tasks.

    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use serde_json::{Value, json};

    use super::*;

    const REGION: &str = "eu-west-1";
    const ACCOUNT: &str = "123456789012";

    /// What the fake answers, and what it was asked.
    #[derive(Default)]
    struct Fake {
        /// Every SQS operation with its request body, in order.
        sqs_calls: Mutex<Vec<(String, Value)>>,
        /// DescribeStacks's outputs (key, value).
        outputs: Vec<(String, String)>,
        /// Depths by queue URL: (visible, in flight, delayed).
        depths: BTreeMap<String, (u64, u64, u64)>,
        /// ReceiveMessage's answers, in turn (then empty).
        received: Mutex<VecDeque<Value>>,
        /// ListMessageMoveTasks's answers, in turn (the last one repeats; null: no task).
        move_tasks: Mutex<VecDeque<Value>>,
    }

    impl Fake {
        fn answer(&self, target: Option<&str>, body: &[u8]) -> (u16, &'static str, String) {
            let Some(operation) = target.and_then(|t| t.strip_prefix("AmazonSQS.")) else {
                return self.cloudformation(&String::from_utf8_lossy(body));
            };
            let request: Value = serde_json::from_slice(body).unwrap();
            self.sqs_calls.lock().unwrap().push((operation.to_owned(), request.clone()));
            let answer = match operation {
                "GetQueueAttributes" => {
                    let url = request["QueueUrl"].as_str().unwrap();
                    let name = url.rsplit('/').next().unwrap();
                    let (visible, in_flight, delayed) = self.depths.get(url).copied().unwrap_or_default();
                    json!({"Attributes": {
                        "QueueArn": format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"),
                        "ApproximateNumberOfMessages": visible.to_string(),
                        "ApproximateNumberOfMessagesNotVisible": in_flight.to_string(),
                        "ApproximateNumberOfMessagesDelayed": delayed.to_string(),
                    }})
                }
                "ReceiveMessage" => {
                    let messages = self.received.lock().unwrap().pop_front().unwrap_or_else(|| json!([]));
                    json!({ "Messages": messages })
                }
                "ChangeMessageVisibility" => json!({}),
                "StartMessageMoveTask" => json!({"TaskHandle": "handle-1"}),
                "ListMessageMoveTasks" => {
                    let mut tasks = self.move_tasks.lock().unwrap();
                    let task = if tasks.len() > 1 { tasks.pop_front() } else { tasks.front().cloned() };
                    json!({ "Results": task.into_iter().filter(|t| !t.is_null()).collect::<Vec<_>>() })
                }
                other => {
                    return (
                        400,
                        "application/x-amz-json-1.0",
                        format!(r#"{{"__type":"UnknownOperation","message":"{other}"}}"#),
                    );
                }
            };
            (200, "application/x-amz-json-1.0", answer.to_string())
        }

        fn cloudformation(&self, form: &str) -> (u16, &'static str, String) {
            assert!(form.contains("Action=DescribeStacks"), "{form}");
            if !form.contains("StackName=shop-dev") {
                let error = "<ErrorResponse><Error><Type>Sender</Type><Code>ValidationError</Code>\
                             <Message>Stack with id shop-nope does not exist</Message></Error>\
                             <RequestId>r</RequestId></ErrorResponse>";
                return (400, "text/xml", error.to_owned());
            }
            let outputs: String = self
                .outputs
                .iter()
                .map(|(key, value)| {
                    format!("<member><OutputKey>{key}</OutputKey><OutputValue>{value}</OutputValue></member>")
                })
                .collect();
            let xml = format!(
                "<DescribeStacksResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\"><DescribeStacksResult>\
                 <Stacks><member><StackName>shop-dev</StackName><StackId>arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/shop-dev/1</StackId>\
                 <CreationTime>2026-11-01T10:00:00Z</CreationTime><StackStatus>UPDATE_COMPLETE</StackStatus>\
                 <Outputs>{outputs}</Outputs></member></Stacks></DescribeStacksResult>\
                 <ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></DescribeStacksResponse>"
            );
            (200, "text/xml", xml)
        }

        fn calls(&self, operation: &str) -> Vec<Value> {
            let calls = self.sqs_calls.lock().unwrap();
            calls.iter().filter(|(op, _)| op == operation).map(|(_, body)| body.clone()).collect()
        }
    }

    /// Serves `fake` on a free local port; its URL.
    async fn serve(fake: Arc<Fake>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let fake = fake.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                        let fake = fake.clone();
                        async move {
                            let target =
                                request.headers().get("x-amz-target").and_then(|v| v.to_str().ok()).map(str::to_owned);
                            let body = request.into_body().collect().await?.to_bytes();
                            let (status, content_type, text) = fake.answer(target.as_deref(), &body);
                            Ok::<_, hyper::Error>(
                                http::Response::builder()
                                    .status(status)
                                    .header("content-type", content_type)
                                    .body(Full::new(Bytes::from(text)))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        url
    }

    fn sqs(url: &str) -> aws_sdk_sqs::Client {
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version_latest()
            .endpoint_url(url)
            .region(aws_sdk_sqs::config::Region::new(REGION))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new("AKIDTEST", "secret", None, None, "test"))
            .build();
        aws_sdk_sqs::Client::from_conf(config)
    }

    fn cloudformation(url: &str) -> aws_sdk_cloudformation::Client {
        let config = aws_sdk_cloudformation::Config::builder()
            .behavior_version_latest()
            .endpoint_url(url)
            .region(aws_sdk_cloudformation::config::Region::new(REGION))
            .credentials_provider(aws_sdk_cloudformation::config::Credentials::new(
                "AKIDTEST", "secret", None, None, "test",
            ))
            .build();
        aws_sdk_cloudformation::Client::from_conf(config)
    }

    fn queue_url(name: &str) -> String {
        format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/shop-dev-{name}")
    }

    /// Outputs as template.yaml declares them, for every queue it names.
    fn stack_outputs(names: &[String]) -> Vec<(String, String)> {
        let mut outputs =
            vec![("ApiUrl".to_owned(), "https://example.execute-api.eu-west-1.amazonaws.com/v1".to_owned())];
        for name in names {
            let pascal = pascal_case(name);
            outputs.push((format!("{pascal}QueueUrl"), queue_url(&format!("{pascal}Queue"))));
            outputs.push((format!("{pascal}DeadLetterQueueUrl"), queue_url(&format!("{pascal}DeadLetterQueue"))));
        }
        outputs
    }

    fn text(out: Vec<u8>) -> String {
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn queue_names_read_as_cloudformation_names_them() {
        assert_eq!(pascal_case("order-placed"), "OrderPlaced");
        assert_eq!(pascal_case("email-send"), "EmailSend");
        assert_eq!(age(41_000), "41s");
        assert_eq!(age(192_000), "3m 12s");
        assert_eq!(age(7_500_000), "2h 05m");
        assert_eq!(age(3 * 86_400_000 + 4 * 3_600_000), "3d 04h");
    }

    #[test]
    fn the_template_declares_the_outputs_dlq_stack_reads() {
        let template = local_cloud::template::Template::load_project().unwrap();
        let outputs = template.root.body["Outputs"].as_mapping().expect("template.yaml has Outputs");
        for name in queue_names().unwrap() {
            for suffix in ["QueueUrl", "DeadLetterQueueUrl"] {
                let key = format!("{}{suffix}", pascal_case(&name));
                assert!(outputs.contains_key(key.as_str()), "template.yaml's Outputs lack {key} (for `dlq --stack`)");
            }
        }
    }

    #[tokio::test]
    async fn a_deployed_stack_s_queues_come_from_its_outputs() {
        let names = queue_names().unwrap();
        assert!(names.contains(&"order-placed".to_owned()), "{names:?}");
        let fake = Arc::new(Fake { outputs: stack_outputs(&names), ..Fake::default() });
        let url = serve(fake).await;
        let queues = queues_from_stack(&cloudformation(&url), "shop-dev", &names).await.unwrap();
        let order_placed = queues.iter().find(|pair| pair.name == "order-placed").unwrap();
        assert_eq!(order_placed.queue_url, queue_url("OrderPlacedQueue"));
        assert_eq!(order_placed.dlq_url, queue_url("OrderPlacedDeadLetterQueue"));
        assert_eq!(queues.len(), names.len());

        let missing = queues_from_stack(&cloudformation(&url), "shop-nope", &names).await.unwrap_err().to_string();
        assert!(
            missing.contains("could not describe stack shop-nope") && missing.contains("does not exist"),
            "{missing}"
        );
    }

    #[tokio::test]
    async fn a_stack_without_the_queue_outputs_is_named_with_what_it_has() {
        let names = vec!["order-placed".to_owned()];
        let outputs = vec![("OrderPlacedQueueUrl".to_owned(), queue_url("OrderPlacedQueue"))];
        let url = serve(Arc::new(Fake { outputs, ..Fake::default() })).await;
        let error = queues_from_stack(&cloudformation(&url), "shop-dev", &names).await.unwrap_err().to_string();
        assert!(
            error.contains("no output OrderPlacedDeadLetterQueueUrl (its outputs: OrderPlacedQueueUrl)"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn list_shows_depths_reasons_and_a_running_move_task() {
        let names = ["order-placed".to_owned(), "email-send".to_owned()];
        let queues: Vec<QueuePair> = names
            .iter()
            .map(|name| {
                let pascal = pascal_case(name);
                QueuePair {
                    name: name.clone(),
                    queue_url: queue_url(&format!("{pascal}Queue")),
                    dlq_url: queue_url(&format!("{pascal}DeadLetterQueue")),
                }
            })
            .collect();
        let now_ms = 1_800_000_000_000;
        let letter = |id: &str, reason: Option<&str>, age_ms: i64| {
            let mut message = json!({
                "MessageId": id, "ReceiptHandle": format!("rh-{id}"), "Body": "{}",
                "Attributes": {"SentTimestamp": (now_ms - age_ms).to_string()},
            });
            if let Some(reason) = reason {
                message["MessageAttributes"] =
                    json!({"dead_letter_reason": {"DataType": "String", "StringValue": reason}});
            }
            message
        };
        let fake = Arc::new(Fake {
            depths: BTreeMap::from([
                (queues[0].queue_url.clone(), (12, 3, 0)),
                (queues[0].dlq_url.clone(), (3, 0, 0)),
                (queues[1].queue_url.clone(), (0, 0, 1)),
            ]),
            received: Mutex::new(VecDeque::from([json!([
                letter("m-1", Some("invalid event: missing field `data`"), 192_000),
                letter("m-2", Some("invalid event: missing field `data`"), 41_000),
                letter("m-3", None, 7_500_000),
            ])])),
            // order-placed's dead letters are on their way back; email-send never had a redrive.
            move_tasks: Mutex::new(VecDeque::from([
                json!({
                    "Status": "RUNNING", "TaskHandle": "handle-1", "SourceArn": "arn", "StartedTimestamp": 1,
                    "ApproximateNumberOfMessagesMoved": 1, "ApproximateNumberOfMessagesToMove": 3,
                }),
                Value::Null,
            ])),
            ..Fake::default()
        });
        let url = serve(fake.clone()).await;
        let target = Target { sqs: sqs(&url), queues, deployed: true };
        let mut out = Vec::new();
        list(&target, &ListOptions { peek: 100, messages: false, now_ms }, &mut out).await.unwrap();
        assert_eq!(
            text(out),
            "queue         waiting  in flight  delayed  dead letters  oldest dead letter\n\
             order-placed       12          3        0             3  2h 05m\n\
             email-send          0          0        1             0  -\n\
             \n\
             order-placed: redrive running (1 moved of 3)\n\
             \n\
             order-placed: 3 dead letter(s)\n      \
             2  invalid event: missing field `data`\n      \
             1  (no reason: SQS moved it after repeated failed receives)\n"
        );
        // Read with a long poll (a short one may miss messages), put back at once.
        let receives = fake.calls("ReceiveMessage");
        assert_eq!(receives.len(), 2, "one batch, then an empty answer");
        assert_eq!(receives[0]["WaitTimeSeconds"], 1);
        let returned: Vec<Value> = fake
            .calls("ChangeMessageVisibility")
            .into_iter()
            .filter(|c| c["VisibilityTimeout"] == 0)
            .map(|c| c["ReceiptHandle"].clone())
            .collect();
        assert_eq!(returned, ["rh-m-1", "rh-m-2", "rh-m-3"]);
        assert!(fake.calls("ReceiveMessage").iter().all(|c| c["QueueUrl"] == target.queues[0].dlq_url));

        let mut out = Vec::new();
        fake.received.lock().unwrap().push_back(json!([letter("m-9", Some("poison"), 5_000)]));
        list(&target, &ListOptions { peek: 100, messages: true, now_ms }, &mut out).await.unwrap();
        assert!(
            text(out).ends_with("order-placed: 3 dead letter(s) (reasons of the 1 read)\n  m-9       5s  poison\n")
        );
    }

    #[tokio::test]
    async fn redrive_starts_sqs_s_move_task_from_the_dlq_to_its_queue_and_reports_progress() {
        let task = |status: &str, started: i64, moved: i64| {
            json!({"Status": status, "SourceArn": "arn", "StartedTimestamp": started,
                   "ApproximateNumberOfMessagesMoved": moved, "ApproximateNumberOfMessagesToMove": 40})
        };
        let fake = Arc::new(Fake {
            move_tasks: Mutex::new(VecDeque::from([
                task("COMPLETED", 100, 7), // an earlier redrive, listed before ours starts
                task("COMPLETED", 100, 7), // ours not listed yet
                task("RUNNING", 200, 0),
                task("RUNNING", 200, 25),
                task("RUNNING", 200, 25),
                task("COMPLETED", 200, 40),
            ])),
            ..Fake::default()
        });
        let url = serve(fake.clone()).await;
        let pair = QueuePair {
            name: "order-placed".into(),
            queue_url: queue_url("OrderPlacedQueue"),
            dlq_url: queue_url("OrderPlacedDeadLetterQueue"),
        };
        let options = MoveOptions { wait: true, rate: Some(50), poll: Duration::from_millis(1) };
        let mut out = Vec::new();
        redrive_with_move_task(&sqs(&url), &pair, &options, &mut out).await.unwrap();
        let started = fake.calls("StartMessageMoveTask");
        assert_eq!(
            started,
            [json!({
                "SourceArn": format!("arn:aws:sqs:{REGION}:{ACCOUNT}:shop-dev-OrderPlacedDeadLetterQueue"),
                "DestinationArn": format!("arn:aws:sqs:{REGION}:{ACCOUNT}:shop-dev-OrderPlacedQueue"),
                "MaxNumberOfMessagesPerSecond": 50,
            })]
        );
        assert_eq!(
            text(out),
            format!(
                "order-placed: SQS is moving the dead letters of arn:aws:sqs:{REGION}:{ACCOUNT}:shop-dev-OrderPlacedDeadLetterQueue \
                 back to arn:aws:sqs:{REGION}:{ACCOUNT}:shop-dev-OrderPlacedQueue\n\
                 order-placed: running (0 moved of 40)\n\
                 order-placed: running (25 moved of 40)\n\
                 order-placed: completed (40 moved of 40)\n"
            )
        );
    }

    #[tokio::test]
    async fn a_failed_move_task_fails_the_command_with_its_reason() {
        let fake = Arc::new(Fake {
            move_tasks: Mutex::new(VecDeque::from([
                Value::Null, // no redrive before this one
                json!({
                    "Status": "FAILED", "SourceArn": "arn", "StartedTimestamp": 300,
                    "ApproximateNumberOfMessagesMoved": 2, "FailureReason": "AWS.SimpleQueueService.NonExistentQueue",
                }),
            ])),
            ..Fake::default()
        });
        let url = serve(fake).await;
        let pair = QueuePair { name: "email-send".into(), queue_url: queue_url("A"), dlq_url: queue_url("B") };
        let options = MoveOptions { wait: true, rate: None, poll: Duration::from_millis(1) };
        let error = redrive_with_move_task(&sqs(&url), &pair, &options, &mut Vec::new()).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "email-send: the move task ended failed (2 moved): AWS.SimpleQueueService.NonExistentQueue"
        );
    }
}
