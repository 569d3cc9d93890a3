//! `cargo xtask bench`: cold start, first and warm request latency and peak
//! memory of every function, each run as a real process against a minimal
//! Lambda Runtime API served here, with its sample event from events/, on
//! the local cloud. Compared with a hello-world `lambda_runtime` binary.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, mpsc};

/// What one cold start of one function measured.
#[derive(Debug, Clone)]
pub struct Run {
    /// Process start to its first `GET /runtime/invocation/next`.
    pub init: Duration,
    /// The first event's round trip (the cold request).
    pub first: Duration,
    /// Median round trip of the following events (warm).
    pub warm: Duration,
    /// Peak resident memory (VmHWM), in kB.
    pub peak_kb: u64,
}

struct Channels {
    next_arrived: mpsc::UnboundedSender<Instant>,
    events: Mutex<mpsc::Receiver<(String, Vec<u8>)>>,
    results: mpsc::UnboundedSender<(String, Instant, bool)>,
}

/// Runs `binary` once: waits for init, sends `event` `1 + warm` times.
pub async fn measure(binary: &Path, env: &[(String, String)], event: &[u8], warm: usize) -> anyhow::Result<Run> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let (next_tx, mut next_rx) = mpsc::unbounded_channel();
    let (event_tx, event_rx) = mpsc::channel(1);
    let (result_tx, mut result_rx) = mpsc::unbounded_channel();
    let channels = Arc::new(Channels { next_arrived: next_tx, events: Mutex::new(event_rx), results: result_tx });
    let server = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let channels = channels.clone();
            tokio::spawn(async move {
                let _ = serve_connection(stream, channels).await;
            });
        }
    });

    let name = binary.file_name().and_then(|n| n.to_str()).unwrap_or("function").to_owned();
    let started = Instant::now();
    let mut child = Command::new(binary)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", &name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_LAMBDA_LOG_LEVEL", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let pid = child.id();

    let outcome = async {
        let timeout = Duration::from_secs(30);
        let ready = tokio::time::timeout(timeout, next_rx.recv()).await?.context("runtime API closed")?;
        let init = ready - started;
        let mut round_trips = Vec::new();
        for index in 0..=warm {
            if index > 0 {
                tokio::time::timeout(timeout, next_rx.recv()).await?.context("runtime API closed")?;
            }
            let id = format!("bench-{index}");
            let sent = Instant::now();
            event_tx.send((id.clone(), event.to_vec())).await?;
            let (answered, at, failed) = tokio::time::timeout(timeout, result_rx.recv()).await?.context("no result")?;
            if answered != id || failed {
                bail!("{name} failed on its sample event");
            }
            round_trips.push(at - sent);
        }
        let first = round_trips[0];
        let mut warm_trips = round_trips[1..].to_vec();
        warm_trips.sort();
        let warm = warm_trips.get(warm_trips.len() / 2).copied().unwrap_or(first);
        Ok::<_, anyhow::Error>((init, first, warm))
    }
    .await;
    let peak_kb = peak_memory_kb(pid);
    let _ = child.kill();
    let _ = child.wait();
    server.abort();
    let (init, first, warm) = outcome?;
    Ok(Run { init, first, warm, peak_kb })
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
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).await?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await?;

        if method == "GET" && path.ends_with("/runtime/invocation/next") {
            let _ = channels.next_arrived.send(Instant::now());
            let Some((id, event)) = channels.events.lock().await.recv().await else { return Ok(()) };
            let deadline = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) + 30_000;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 lambda-runtime-aws-request-id: {id}\r\nlambda-runtime-deadline-ms: {deadline}\r\n\
                 lambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:123456789012:function:bench\r\n\
                 lambda-runtime-trace-id: Root=1-00000000-000000000000000000000000;Sampled=0\r\n\r\n",
                event.len()
            );
            let mut response = head.into_bytes();
            response.extend_from_slice(&event);
            writer.write_all(&response).await?;
        } else if method == "POST" && path.contains("/runtime/invocation/") {
            let id = path.split('/').rev().nth(1).unwrap_or_default().to_owned();
            let _ = channels.results.send((id, Instant::now(), path.ends_with("/error")));
            writer.write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}").await?;
        } else {
            // init/error and anything unexpected.
            let _ = channels.results.send(("init".into(), Instant::now(), true));
            writer.write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}").await?;
        }
        writer.flush().await?;
    }
}
