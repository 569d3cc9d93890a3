//! One function as Lambda runs it: a real process (any program: a Rust
//! binary, or Python under awslambdaric) behind a Lambda Runtime API served
//! here, invoked one event at a time. The fault-injection tests start
//! functions this way, each with its own environment (an endpoint behind a
//! fault proxy), so that a fault never touches the shared stack.

use std::convert::Infallible;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;

/// An invocation's outcome as the function posted it.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The response payload (or the error document).
    pub payload: serde_json::Value,
    /// Posted to `/error` rather than `/response`.
    pub failed: bool,
    /// Event handed out to response posted.
    pub took: Duration,
}

/// A running function. Dropping it kills the process.
pub struct FunctionProcess {
    name: String,
    child: Child,
    started: Instant,
    events: mpsc::Sender<(String, Vec<u8>)>,
    next: mpsc::UnboundedReceiver<Instant>,
    results: mpsc::UnboundedReceiver<(String, Instant, bool, Vec<u8>)>,
    server: JoinHandle<()>,
    invocations: u64,
    /// When Lambda would end an invocation, counted from its start.
    timeout: Duration,
}

impl Drop for FunctionProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.server.abort();
    }
}

struct Api {
    events: Mutex<mpsc::Receiver<(String, Vec<u8>)>>,
    next: mpsc::UnboundedSender<Instant>,
    results: mpsc::UnboundedSender<(String, Instant, bool, Vec<u8>)>,
    timeout: Duration,
}

impl FunctionProcess {
    /// Starts `command` as function `name` with `env`; Lambda would end each
    /// invocation after `timeout` (sent as the invocation's deadline).
    pub async fn start(
        name: &str,
        mut command: Command,
        env: &[(String, String)],
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (events_tx, events_rx) = mpsc::channel(1);
        let (next_tx, next_rx) = mpsc::unbounded_channel();
        let (results_tx, results_rx) = mpsc::unbounded_channel();
        let api = Arc::new(Api { events: Mutex::new(events_rx), next: next_tx, results: results_tx, timeout });
        let server = tokio::spawn(crate::serve::http(listener, move |request, _| {
            let api = api.clone();
            async move { Ok::<_, Infallible>(api.answer(request).await) }
        }));
        let started = Instant::now();
        let child = command
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "local")
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            started,
            events: events_tx,
            next: next_rx,
            results: results_rx,
            server,
            invocations: 0,
            timeout,
        })
    }

    /// A function binary of this workspace (`target/debug/<name>`), built by the test command.
    pub fn binary(name: &str) -> Command {
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| crate::project_root().join("target"), Into::into);
        let mut command = Command::new(Path::new(&target).join("debug").join(name));
        command.stdout(Stdio::null());
        command
    }

    /// Waits until the function asks for its first event; how long init took.
    pub async fn ready(&mut self, within: Duration) -> anyhow::Result<Duration> {
        let name = self.name.clone();
        tokio::select! {
            ready = self.next.recv() => Ok(ready.context("the runtime API stopped")? - self.started),
            failed = self.results.recv() => {
                let (_, _, _, payload) = failed.context("the runtime API stopped")?;
                bail!("{name} failed its init: {}", String::from_utf8_lossy(&payload))
            }
            () = tokio::time::sleep(within) => bail!("{name} did not finish its init within {within:?}"),
        }
    }

    /// Sends one event and waits (at most `within`) for the function's answer.
    pub async fn invoke(&mut self, event: &serde_json::Value, within: Duration) -> anyhow::Result<Invocation> {
        if self.invocations > 0 {
            tokio::time::timeout(within, self.next.recv())
                .await
                .context("the function did not ask for its next event")?;
        }
        self.invocations += 1;
        let id = format!("invocation-{}", self.invocations);
        let sent = Instant::now();
        self.events.send((id.clone(), serde_json::to_vec(event)?)).await?;
        let (answered, at, failed, payload) = tokio::time::timeout(within, self.results.recv())
            .await
            .with_context(|| format!("{} did not answer within {within:?}", self.name))?
            .context("the runtime API stopped")?;
        if answered != id {
            bail!("{} answered {answered} while {id} was expected", self.name);
        }
        Ok(Invocation {
            payload: serde_json::from_slice(&payload).unwrap_or(serde_json::Value::Null),
            failed,
            took: at - sent,
        })
    }

    /// Kills the process now, as Lambda does at a timeout or a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Peak resident memory so far (VmHWM), in kB.
    pub fn peak_rss_kb(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|status| {
                status.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0)
    }

    /// The invocation deadline Lambda would send, as the Runtime API does (ms since the epoch).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

impl Api {
    async fn answer(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let (method, path) = (request.method().clone(), request.uri().path().to_owned());
        let body = request.into_body().collect().await.map(http_body_util::Collected::to_bytes).unwrap_or_default();
        if method == Method::GET && path.ends_with("/runtime/invocation/next") {
            let _ = self.next.send(Instant::now());
            let Some((id, event)) = self.events.lock().await.recv().await else {
                return status(StatusCode::GONE);
            };
            let now_ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
            let deadline = now_ms + i128::try_from(self.timeout.as_millis()).unwrap_or(i128::MAX);
            let mut response = Response::new(Full::new(Bytes::from(event)));
            let headers = response.headers_mut();
            for (name, value) in [
                ("content-type", "application/json".to_owned()),
                ("lambda-runtime-aws-request-id", id),
                ("lambda-runtime-deadline-ms", deadline.to_string()),
                (
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:local".to_owned(),
                ),
                ("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000;Sampled=0".to_owned()),
            ] {
                if let Ok(value) = value.parse() {
                    headers.insert(name, value);
                }
            }
            return response;
        }
        if method == Method::POST && path.contains("/runtime/invocation/") {
            let id = path.split('/').rev().nth(1).unwrap_or_default().to_owned();
            let _ = self.results.send((id, Instant::now(), path.ends_with("/error"), body.to_vec()));
            return status(StatusCode::ACCEPTED);
        }
        // /runtime/init/error and anything else: the function could not start.
        let _ = self.results.send(("init".into(), Instant::now(), true, body.to_vec()));
        status(StatusCode::ACCEPTED)
    }
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(b"{}")));
    *response.status_mut() = code;
    response
}

/// A function process as an event source's target: one invocation at a time.
impl crate::eventsource::Invoke for Mutex<FunctionProcess> {
    async fn invoke(
        &self,
        _function: &str,
        payload: &serde_json::Value,
        timeout: Duration,
    ) -> anyhow::Result<serde_json::Value> {
        let invocation = self.lock().await.invoke(payload, timeout).await?;
        if invocation.failed {
            bail!("the function failed: {}", invocation.payload);
        }
        Ok(invocation.payload)
    }
}
