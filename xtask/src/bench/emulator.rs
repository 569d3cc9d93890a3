//! A minimal Lambda Runtime API: starts a function (any program: a Rust
//! binary, or Python under awslambdaric) as a real process, measures its init
//! (process start to its first `GET /runtime/invocation/next`), then sends it
//! `1 + warm` events (one event each time, or each made from the answer
//! before it: [`Events`]) and measures each round trip, its peak RSS and
//! the CPU time its warm requests took.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, mpsc};

/// How to start one function: a program, its arguments and folder.
#[derive(Debug, Clone)]
pub struct Target {
    /// `AWS_LAMBDA_FUNCTION_NAME`, and the name in error messages.
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub dir: Option<PathBuf>,
    /// Extra environment on top of the shared one.
    pub env: Vec<(String, String)>,
    /// Where the process's stderr goes (stdout, its log lines, is discarded).
    pub stderr_log: Option<PathBuf>,
}

/// What one cold start of one function measured.
#[derive(Debug, Clone)]
pub struct Run {
    /// Process start to its first `GET /runtime/invocation/next`.
    pub init: Duration,
    /// The first event's round trip (the cold request).
    pub first: Duration,
    /// Round trips of the following events (warm), in order.
    pub warm: Vec<Duration>,
    /// Peak resident memory (VmHWM), in kB.
    pub peak_kb: u64,
    /// CPU time the process's threads spent on the warm requests, from the
    /// moment it asked for the first warm event to the moment it asked for
    /// the event after the last (whole cycles, the work after each answer
    /// included): what the code costs, apart from waiting on the cloud. None
    /// where the scheduler's accounts cannot be read or a thread ended.
    pub warm_cpu: Option<Duration>,
    /// The `statusCode` of each response (first, then warm), when it had one.
    pub statuses: Vec<Option<u16>>,
}

struct Channels {
    /// The `Lambda-Runtime-Trace-Id` header of every invocation.
    trace_header: String,
    next_arrived: mpsc::UnboundedSender<Instant>,
    events: Mutex<mpsc::Receiver<(String, Vec<u8>)>>,
    results: mpsc::UnboundedSender<Answer>,
}

/// A response (or error) the function posted.
struct Answer {
    id: String,
    at: Instant,
    failed: bool,
    status: Option<u16>,
    /// What the function posted.
    body: Vec<u8>,
}

/// Where an event holds [`REQUEST_KEY`], each request sends a value of its
/// own instead: a key no earlier request of any run used (an order's
/// `Idempotency-Key`, so every request places an order, as a client would).
pub const REQUEST_KEY: &str = "{{bench-request-key}}";

/// The trace header every invocation gets unless told otherwise: not sampled.
pub const UNSAMPLED_TRACE: &str = "Root=1-00000000-000000000000000000000000;Sampled=0";

/// Where the events of a cold start come from, request by request: the
/// same event each time ([`measure`]), or each made from the answer before
/// it (a refresh token rotates on every use, so the next request must carry
/// the one the last answer handed out).
pub trait Events {
    /// The event of the next request; `key` is unique to it (see [`REQUEST_KEY`]).
    fn next(&mut self, key: &str) -> anyhow::Result<Vec<u8>>;
    /// The response the function posted to it (its JSON, the proxy response
    /// for an API function). An error stops the cold start.
    fn answered(&mut self, response: &[u8]) -> anyhow::Result<()>;
}

/// One event sent every time, its [`REQUEST_KEY`] replaced per request.
struct Replay<'a>(&'a [u8]);

impl Events for Replay<'_> {
    fn next(&mut self, key: &str) -> anyhow::Result<Vec<u8>> {
        Ok(with_request_key(self.0, key))
    }

    fn answered(&mut self, _response: &[u8]) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Runs `target` once: waits for init, sends `event` `1 + warm` times.
pub async fn measure(target: &Target, env: &[(String, String)], event: &[u8], warm: usize) -> anyhow::Result<Run> {
    measure_traced(target, env, event, warm, UNSAMPLED_TRACE).await
}

/// [`measure`], with `trace_header` as every invocation's X-Ray trace header.
pub async fn measure_traced(
    target: &Target,
    env: &[(String, String)],
    event: &[u8],
    warm: usize,
    trace_header: &str,
) -> anyhow::Result<Run> {
    measure_events(target, env, &mut Replay(event), warm, trace_header).await
}

/// Runs `target` once: waits for init, sends `1 + warm` events taken from
/// `events`, each after the answer to the one before.
pub async fn measure_chained(
    target: &Target,
    env: &[(String, String)],
    events: &mut (dyn Events + Send),
    warm: usize,
) -> anyhow::Result<Run> {
    measure_events(target, env, events, warm, UNSAMPLED_TRACE).await
}

async fn measure_events(
    target: &Target,
    env: &[(String, String)],
    events: &mut (dyn Events + Send),
    warm: usize,
    trace_header: &str,
) -> anyhow::Result<Run> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let (next_tx, mut next_rx) = mpsc::unbounded_channel();
    let (event_tx, event_rx) = mpsc::channel(1);
    let (result_tx, mut result_rx) = mpsc::unbounded_channel();
    let channels = Arc::new(Channels {
        trace_header: trace_header.to_owned(),
        next_arrived: next_tx,
        events: Mutex::new(event_rx),
        results: result_tx,
    });
    let server = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let channels = channels.clone();
            tokio::spawn(async move {
                let _ = serve_connection(stream, channels).await;
            });
        }
    });

    let name = target.name.clone();
    let stderr = match &target.stderr_log {
        Some(path) => Stdio::from(std::fs::OpenOptions::new().create(true).append(true).open(path)?),
        None => Stdio::null(),
    };
    let mut command = Command::new(&target.program);
    command.args(&target.args);
    if let Some(dir) = &target.dir {
        command.current_dir(dir);
    }
    let started = Instant::now();
    let mut child = command
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .envs(target.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", &name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_LAMBDA_LOG_LEVEL", "error")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("starting {} ({})", name, target.program.display()))?;
    let pid = child.id();

    let run_key = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos();
    let outcome = async {
        let timeout = Duration::from_secs(30);
        let log =
            target.stderr_log.as_ref().map_or_else(String::new, |log| format!(" (its stderr: {})", log.display()));
        let ready = tokio::select! {
            ready = next_rx.recv() => ready.context("runtime API closed")?,
            _ = result_rx.recv() => bail!("{name} reported an init error{log}"),
            () = tokio::time::sleep(timeout) => bail!("{name} did not ask for an event within {timeout:?}{log}"),
        };
        let init = ready - started;
        let mut round_trips = Vec::new();
        let mut statuses = Vec::new();
        // CPU is read once the function asks for its first warm event, and
        // again once it asks for the event after the last: whole cycles.
        let mut cpu_before_warm = None;
        for index in 0..=warm {
            if index > 0 {
                tokio::time::timeout(timeout, next_rx.recv()).await?.context("runtime API closed")?;
                if index == 1 {
                    cpu_before_warm = threads_cpu_at_rest(pid).await;
                }
            }
            let id = format!("bench-{index}");
            let event = events.next(&format!("{run_key}-{index}"))?;
            let sent = Instant::now();
            event_tx.send((id.clone(), event)).await?;
            let answer = tokio::time::timeout(timeout, result_rx.recv())
                .await
                .with_context(|| format!("{name} did not answer event {index} within {timeout:?}"))?
                .context("no result")?;
            if answer.id != id || answer.failed {
                bail!("{name} failed on its sample event (request {index})");
            }
            round_trips.push(answer.at - sent);
            statuses.push(answer.status);
            events.answered(&answer.body).with_context(|| format!("{name}'s answer to event {index}"))?;
        }
        let warm_cpu = match cpu_before_warm {
            Some(before) if tokio::time::timeout(timeout, next_rx.recv()).await.is_ok_and(|next| next.is_some()) => {
                threads_cpu_at_rest(pid).await.and_then(|after| cpu_between(&before, &after))
            }
            _ => None,
        };
        Ok::<_, anyhow::Error>((init, round_trips, statuses, warm_cpu))
    }
    .await;
    let peak_kb = peak_memory_kb(pid);
    let _ = child.kill();
    let _ = child.wait();
    server.abort();
    let (init, round_trips, statuses, warm_cpu) = outcome?;
    Ok(Run { init, first: round_trips[0], warm: round_trips[1..].to_vec(), peak_kb, warm_cpu, statuses })
}

/// The CPU time each thread of `pid` has used so far, in nanoseconds, by
/// thread id: the scheduler's own account (`/proc/<pid>/task/<tid>/schedstat`),
/// not the clock ticks of `/proc/<pid>/stat`, which are too coarse for a
/// request of a millisecond. Read once every thread is off the CPU (a
/// running thread's account is brought up to date only when it stops or at
/// a tick), which happens when the function waits for its next event: polled
/// for up to 50 ms. None where the accounts cannot be read (or are all zero:
/// a kernel without scheduler statistics).
async fn threads_cpu_at_rest(pid: u32) -> Option<HashMap<u32, u64>> {
    for _ in 0..50 {
        if !any_thread_running(pid)? {
            let threads = threads_cpu(pid)?;
            return (threads.values().sum::<u64>() > 0).then_some(threads);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    None
}

/// The CPU used between two readings of [`threads_cpu_at_rest`]; None when a
/// thread of the first is gone by the second (its time would be lost).
fn cpu_between(before: &HashMap<u32, u64>, after: &HashMap<u32, u64>) -> Option<Duration> {
    let mut used = 0u64;
    for (tid, now) in after {
        used += now.checked_sub(before.get(tid).copied().unwrap_or(0))?;
    }
    before.keys().all(|tid| after.contains_key(tid)).then(|| Duration::from_nanos(used))
}

fn task_ids(pid: u32) -> Option<Vec<u32>> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    Some(tasks.filter_map(|task| task.ok()?.file_name().to_str()?.parse().ok()).collect())
}

/// Whether a thread of `pid` is on (or waiting for) a CPU: state `R`.
fn any_thread_running(pid: u32) -> Option<bool> {
    let mut running = false;
    for tid in task_ids(pid)? {
        // A thread that ended since the listing is not running.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")) else { continue };
        running |= stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('R'));
    }
    Some(running)
}

fn threads_cpu(pid: u32) -> Option<HashMap<u32, u64>> {
    let mut threads = HashMap::new();
    for tid in task_ids(pid)? {
        // A thread that ended since the listing is left out (and noticed by `cpu_between`).
        let Ok(schedstat) = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/schedstat")) else { continue };
        threads.insert(tid, schedstat.split_whitespace().next()?.parse().ok()?);
    }
    Some(threads)
}

/// `event` with every [`REQUEST_KEY`] replaced by `key`.
fn with_request_key(event: &[u8], key: &str) -> Vec<u8> {
    match std::str::from_utf8(event) {
        Ok(text) if text.contains(REQUEST_KEY) => text.replace(REQUEST_KEY, key).into_bytes(),
        _ => event.to_vec(),
    }
}

fn peak_memory_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The few Runtime API calls a runtime makes, over HTTP/1.1 with keep-alive.
async fn serve_connection(stream: TcpStream, channels: Arc<Channels>) -> anyhow::Result<()> {
    // Small responses must not wait for delayed ACKs (Nagle): that alone adds ~40 ms.
    stream.set_nodelay(true)?;
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await? == 0 {
            return Ok(());
        }
        let mut parts = request_line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned());
        let mut length = 0usize;
        let (mut chunked, mut expect_continue) = (false, false);
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).await?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse().unwrap_or(0);
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = value.eq_ignore_ascii_case("chunked");
                } else if name.eq_ignore_ascii_case("expect") {
                    expect_continue = value.eq_ignore_ascii_case("100-continue");
                }
            }
        }
        if expect_continue {
            // curl (awslambdaric's client) may wait for this before sending a body.
            writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
            writer.flush().await?;
        }
        let body = if chunked {
            read_chunked(&mut reader).await?
        } else {
            let mut body = vec![0; length];
            reader.read_exact(&mut body).await?;
            body
        };

        if method == "GET" && path.ends_with("/runtime/invocation/next") {
            let _ = channels.next_arrived.send(Instant::now());
            let Some((id, event)) = channels.events.lock().await.recv().await else { return Ok(()) };
            let deadline = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) + 30_000;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 lambda-runtime-aws-request-id: {id}\r\nlambda-runtime-deadline-ms: {deadline}\r\n\
                 lambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:123456789012:function:bench\r\n\
                 lambda-runtime-trace-id: {}\r\n\r\n",
                event.len(),
                channels.trace_header
            );
            let mut response = head.into_bytes();
            response.extend_from_slice(&event);
            writer.write_all(&response).await?;
        } else if method == "POST" && path.contains("/runtime/invocation/") {
            let at = Instant::now();
            let id = path.split('/').rev().nth(1).unwrap_or_default().to_owned();
            let status = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|response| response.get("statusCode")?.as_u64())
                .and_then(|code| u16::try_from(code).ok());
            let _ = channels.results.send(Answer { id, at, failed: path.ends_with("/error"), status, body });
            writer.write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}").await?;
        } else {
            // init/error and anything unexpected.
            let _ = channels.results.send(Answer {
                id: "init".into(),
                at: Instant::now(),
                failed: true,
                status: None,
                body: Vec::new(),
            });
            writer.write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}").await?;
        }
        writer.flush().await?;
    }
}

/// A `Transfer-Encoding: chunked` body.
async fn read_chunked(reader: &mut (impl AsyncBufReadExt + Unpin)) -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size).await?;
        let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)?;
        let mut chunk = vec![0; size + 2];
        if size == 0 {
            // Trailers (none expected) end with an empty line.
            let mut line = String::new();
            while reader.read_line(&mut line).await? > 2 {
                line.clear();
            }
            return Ok(body);
        }
        reader.read_exact(&mut chunk).await?;
        body.extend_from_slice(&chunk[..size]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_between_two_readings_counts_new_threads_and_refuses_a_lost_one() {
        let before = HashMap::from([(1, 1_000), (2, 500)]);
        let after = HashMap::from([(1, 4_000), (2, 500), (3, 250)]);
        assert_eq!(cpu_between(&before, &after), Some(Duration::from_nanos(3_250)));
        // Thread 2 ended: its time is no longer counted, so no figure.
        assert_eq!(cpu_between(&before, &HashMap::from([(1, 4_000)])), None);
        // An account never runs backwards; if it seems to, no figure either.
        assert_eq!(cpu_between(&before, &HashMap::from([(1, 10), (2, 500)])), None);
    }

    #[tokio::test]
    async fn a_waiting_process_has_its_cpu_read() {
        let mut child = Command::new("sleep").arg("5").spawn().unwrap();
        let threads = threads_cpu_at_rest(child.id()).await;
        let _ = child.kill();
        let _ = child.wait();
        let threads = threads.expect("the scheduler's accounts of a sleeping process");
        assert_eq!(threads.len(), 1);
        assert!(threads.values().all(|&nanos| nanos > 0), "{threads:?}");
    }
}
