//! `cargo xtask bench-tracing`: what a trace exporter costs one function.
//! The same small API function (`shared/otel-traces/examples/traced`:
//! `GET /products/{id}` on the framework's HTTP layer, one DynamoDB
//! `GetItem` through the framework's call timer) is built twice, with
//! today's exporter (X-Ray subsegments over the daemon's UDP protocol) and
//! with the OpenTelemetry one (`otel-traces`: OTLP/HTTP to the collector
//! extension, flushed at the end of every invocation), and run as a real
//! process under the bench's Runtime API emulator, cold start after cold
//! start, interleaved across the variants:
//!
//! - no tracing (`TRACING=off`);
//! - X-Ray daemon, sampled and unsampled invocations;
//! - OpenTelemetry, sampled and unsampled invocations.
//!
//! The function's dependencies are stand-ins served here, so only the
//! exporter differs: a DynamoDB that answers every call at once, a UDP
//! listener in the daemon's place and an HTTP listener in the collector
//! extension's. Every run is checked against what the stand-ins received
//! (one datagram per span; one OTLP request per sampled invocation, each
//! carrying the trace id and parent of the invocation's X-Ray header;
//! nothing for an unsampled one), so an exporter that stopped sending, or
//! lost the trace context, fails the command instead of looking cheap.
//! Writes `target/bench-tracing.md`; `--write-docs` also its section of
//! docs/performance.md.

use std::process::{Command, ExitCode};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use super::{Run, Target, measure_traced};
use crate::project_root;

/// The options of `cargo xtask bench-tracing`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Cold starts per variant.
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    /// Warm requests after each cold start.
    #[arg(long, default_value_t = 200)]
    pub warm: usize,
    /// Debug builds, 2 cold starts x 5 warm requests: checks the harness, not the numbers.
    #[arg(long)]
    pub quick: bool,
    /// Also rewrite the bench-tracing section of docs/performance.md (not with --quick).
    #[arg(long)]
    pub write_docs: bool,
}

/// The trace header of a sampled invocation, as Lambda passes it with active tracing.
const SAMPLED: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
/// The same trace, not sampled (X-Ray's default rule samples one request a second and 5% after it).
const UNSAMPLED: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0";
/// The trace id and parent span id of both headers, as OTLP's protobuf carries them (raw bytes).
const TRACE_ID_HEX: &str = "5759e988bd862e3fe1be46a994272793";
const PARENT_HEX: &str = "53995c3f42cd8ad8";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exporter {
    Off,
    Daemon,
    Otel,
}

struct Variant {
    label: &'static str,
    binary: &'static str,
    exporter: Exporter,
    sampled: bool,
}

const VARIANTS: [Variant; 5] = [
    Variant { label: "no tracing", binary: "traced-xray", exporter: Exporter::Off, sampled: true },
    Variant {
        label: "X-Ray daemon (UDP), today: sampled",
        binary: "traced-xray",
        exporter: Exporter::Daemon,
        sampled: true,
    },
    Variant {
        label: "X-Ray daemon (UDP), today: unsampled",
        binary: "traced-xray",
        exporter: Exporter::Daemon,
        sampled: false,
    },
    Variant {
        label: "OpenTelemetry (OTLP/HTTP, flush per invocation): sampled",
        binary: "traced-otel",
        exporter: Exporter::Otel,
        sampled: true,
    },
    Variant {
        label: "OpenTelemetry (OTLP/HTTP, flush per invocation): unsampled",
        binary: "traced-otel",
        exporter: Exporter::Otel,
        sampled: false,
    },
];

/// What the stand-ins received.
#[derive(Default)]
struct Received {
    datagrams: Mutex<Vec<Vec<u8>>>,
    otlp: Mutex<Vec<Vec<u8>>>,
}

impl Received {
    fn take(&self) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        (
            std::mem::take(&mut *self.datagrams.lock().expect("not poisoned")),
            std::mem::take(&mut *self.otlp.lock().expect("not poisoned")),
        )
    }
}

/// The whole command.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    ensure!(!(args.write_docs && args.quick), "--write-docs records a full run: not with --quick");
    let (runs, warm) = if args.quick { (2, 5) } else { (args.runs.max(1), args.warm.max(1)) };
    let profile = if args.quick { "debug" } else { "release" };
    eprintln!("xtask: {profile} build of the traced function, with today's exporter and with OpenTelemetry...");
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    build.current_dir(project_root()).args(["build", "--quiet", "-p", "otel-traces", "--examples"]);
    if !args.quick {
        build.arg("--release");
    }
    ensure!(build.status().context("running cargo build")?.success(), "cargo build failed");
    let bin_dir = project_root().join("target").join(profile).join("examples");

    let received = Arc::new(Received::default());
    let dynamodb = TcpListener::bind("127.0.0.1:0").await?;
    let dynamodb_url = format!("http://{}", dynamodb.local_addr()?);
    tokio::spawn(serve_http(dynamodb, None));
    let collector = TcpListener::bind("127.0.0.1:0").await?;
    let collector_url = format!("http://{}/v1/traces", collector.local_addr()?);
    tokio::spawn(serve_http(collector, Some(received.clone())));
    let daemon = UdpSocket::bind("127.0.0.1:0").await?;
    let daemon_address = daemon.local_addr()?.to_string();
    let listener = received.clone();
    tokio::spawn(async move {
        let mut buffer = vec![0; 65_536];
        while let Ok(length) = daemon.recv(&mut buffer).await {
            listener.datagrams.lock().expect("not poisoned").push(buffer[..length].to_vec());
        }
    });

    let env: Vec<(String, String)> = [
        ("TABLE_NAME", "bench"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "bench"),
        ("AWS_SECRET_ACCESS_KEY", "bench"),
        ("AWS_ENDPOINT_URL_DYNAMODB", &dynamodb_url),
        ("AWS_XRAY_DAEMON_ADDRESS", &daemon_address),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &collector_url),
        // Only the end of an invocation sends: no timer of the batch processor's in between.
        ("OTEL_BSP_SCHEDULE_DELAY", "600000"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect();
    let event =
        std::fs::read(project_root().join("events/get-product.json")).context("reading events/get-product.json")?;
    let logs = crate::local_dir().join("bench-tracing");
    std::fs::create_dir_all(&logs)?;

    let mut measured: Vec<Vec<Run>> = VARIANTS.iter().map(|_| Vec::new()).collect();
    let mut spans_sent = vec![0usize; VARIANTS.len()];
    for round in 0..runs {
        // Interleaved, starting with a different variant each round, so a
        // slow spell of the machine hits every variant alike.
        for offset in 0..VARIANTS.len() {
            let index = (round + offset) % VARIANTS.len();
            let variant = &VARIANTS[index];
            eprintln!("xtask: {}, cold start {}/{runs}...", variant.label, round + 1);
            let target = Target {
                name: "traced-function".into(),
                program: bin_dir.join(variant.binary),
                args: Vec::new(),
                dir: None,
                env: vec![("TRACING".into(), if variant.exporter == Exporter::Off { "off" } else { "on" }.into())],
                stderr_log: Some(logs.join(format!("{}.stderr.log", variant.binary))),
            };
            received.take();
            let header = if variant.sampled { SAMPLED } else { UNSAMPLED };
            let run = measure_traced(&target, &env, &event, warm, header)
                .await
                .with_context(|| format!("measuring {}", variant.label))?;
            if let Some(wrong) = run.statuses.iter().find(|status| **status != Some(200)) {
                bail!("{} answered {wrong:?}, not 200; see {}", variant.label, logs.display());
            }
            // Datagrams are sent before the answer; give the socket a moment to deliver them.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let (datagrams, otlp) = received.take();
            spans_sent[index] += check(variant, warm + 1, &datagrams, &otlp)?;
            measured[index].push(run);
        }
    }

    let sizes = [size_of(&bin_dir.join("traced-xray"))?, size_of(&bin_dir.join("traced-otel"))?];
    let markdown = report(profile, runs, warm, &measured, &spans_sent, sizes);
    std::fs::write(project_root().join("target/bench-tracing.md"), &markdown)?;
    println!("{markdown}\nwritten: target/bench-tracing.md");
    if args.write_docs {
        let command_line = format!("cargo xtask bench-tracing --runs {runs} --warm {warm} --write-docs");
        crate::docs::write_section(crate::docs::Doc::Performance, "bench-tracing", &command_line, &markdown)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Checks what one cold start of `variant` sent for its `invocations`;
/// returns how many spans (datagrams) or export requests it sent.
fn check(variant: &Variant, invocations: usize, datagrams: &[Vec<u8>], otlp: &[Vec<u8>]) -> anyhow::Result<usize> {
    let label = variant.label;
    let (expected_datagrams, expected_exports) = match (variant.exporter, variant.sampled) {
        // One subsegment per AWS call and one per request (the init's warm-up call has no trace).
        (Exporter::Daemon, true) => (2 * invocations, 0),
        (Exporter::Otel, true) => (0, invocations),
        _ => (0, 0),
    };
    ensure!(
        datagrams.len() == expected_datagrams,
        "{label}: the daemon received {} datagrams for {invocations} invocations, expected {expected_datagrams}",
        datagrams.len()
    );
    ensure!(
        otlp.len() == expected_exports,
        "{label}: the collector received {} export requests for {invocations} invocations, expected {expected_exports} \
         (one per sampled invocation: the flush at its end)",
        otlp.len()
    );
    for datagram in datagrams {
        let text = String::from_utf8_lossy(datagram);
        ensure!(
            text.contains("\"trace_id\":\"1-5759e988-bd862e3fe1be46a994272793\"")
                && text.contains(&format!("\"parent_id\":\"{PARENT_HEX}\"")),
            "{label}: a subsegment is not in the invocation's trace: {text}"
        );
    }
    let cold = datagrams.iter().filter(|d| String::from_utf8_lossy(d).contains("\"cold_start\":true")).count();
    ensure!(
        variant.exporter != Exporter::Daemon || !variant.sampled || cold == 1,
        "{label}: {cold} requests annotated as cold starts, expected 1"
    );
    let (trace_id, parent) = (bytes(TRACE_ID_HEX), bytes(PARENT_HEX));
    for body in otlp {
        ensure!(
            contains(body, &trace_id) && contains(body, &parent) && contains(body, b"cold_start"),
            "{label}: an OTLP export lacks the invocation's trace id, parent or annotations"
        );
    }
    Ok(datagrams.len() + otlp.len())
}

fn bytes(hex: &str) -> Vec<u8> {
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")).collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

/// A binary's size and its size zipped as SAM packages it (deflate).
fn size_of(binary: &std::path::Path) -> anyhow::Result<(u64, u64)> {
    let bytes = std::fs::metadata(binary).with_context(|| format!("{} was not built", binary.display()))?.len();
    let script = "import io,sys,zipfile\nb=io.BytesIO()\nz=zipfile.ZipFile(b,'w',zipfile.ZIP_DEFLATED)\nz.write(sys.argv[1],'bootstrap')\nz.close()\nprint(len(b.getvalue()))";
    let output = Command::new("python3").args(["-c", script]).arg(binary).output().context("running python3")?;
    ensure!(output.status.success(), "zipping {} failed", binary.display());
    Ok((bytes, String::from_utf8_lossy(&output.stdout).trim().parse()?))
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let rank = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The median of one figure over the cold starts.
fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

struct Row {
    init: Duration,
    first: Duration,
    p50: Duration,
    p99: Duration,
    peak_kb: u64,
}

impl Row {
    fn of(runs: &[Run]) -> Self {
        let mut warm: Vec<Duration> = runs.iter().flat_map(|run| run.warm.iter().copied()).collect();
        warm.sort();
        let mut peaks: Vec<u64> = runs.iter().map(|run| run.peak_kb).collect();
        peaks.sort_unstable();
        Self {
            init: median(runs.iter().map(|run| run.init).collect()),
            first: median(runs.iter().map(|run| run.first).collect()),
            p50: percentile(&warm, 0.5),
            p99: percentile(&warm, 0.99),
            peak_kb: peaks[peaks.len() / 2],
        }
    }
}

fn report(
    profile: &str,
    runs: usize,
    warm: usize,
    measured: &[Vec<Run>],
    spans_sent: &[usize],
    sizes: [(u64, u64); 2],
) -> String {
    let rows: Vec<Row> = measured.iter().map(|runs| Row::of(runs)).collect();
    let base = &rows[0];
    let mut out = format!(
        "{profile} build; {runs} cold starts per variant, {warm} warm requests after each, interleaved; \
         medians over the cold starts, warm percentiles over all warm requests. \
         Stand-ins: DynamoDB answers at once, the daemon and the collector extension are local listeners \
         (so a figure is the exporter's own cost in the function, not the network's or the extension's).\n\n\
         | variant | init (ms) | first request (ms) | warm p50 (ms) | warm p99 (ms) | warm p50 over no tracing (µs) | peak RSS (MB) | sent |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    for ((variant, row), sent) in VARIANTS.iter().zip(&rows).zip(spans_sent) {
        let delta = (row.p50.as_secs_f64() - base.p50.as_secs_f64()) * 1e6;
        let sent = match variant.exporter {
            Exporter::Off => "-".to_owned(),
            Exporter::Daemon => format!("{sent} datagrams"),
            Exporter::Otel => format!("{sent} OTLP requests"),
        };
        out.push_str(&format!(
            "| {} | {:.1} | {:.2} | {:.3} | {:.3} | {delta:+.0} | {:.1} | {sent} |\n",
            variant.label,
            millis(row.init),
            millis(row.first),
            millis(row.p50),
            millis(row.p99),
            row.peak_kb as f64 / 1024.0,
        ));
    }
    let [(xray_bytes, xray_zip), (otel_bytes, otel_zip)] = sizes;
    out.push_str(&format!(
        "\n| build | binary (bytes) | zip (bytes) |\n|---|---:|---:|\n\
         | today's exporter (`traced-xray`) | {xray_bytes} | {xray_zip} |\n\
         | OpenTelemetry (`traced-otel`) | {otel_bytes} | {otel_zip} |\n\
         | difference | {:+} | {:+} |\n",
        otel_bytes as i64 - xray_bytes as i64,
        otel_zip as i64 - xray_zip as i64,
    ));
    let (today, otel) = (&rows[1], &rows[3]);
    out.push_str(&format!(
        "\nOpenTelemetry against today's exporter, sampled invocations: init {:+.1} ms, first request {:+.2} ms, \
         warm p50 {:+.3} ms, warm p99 {:+.3} ms, peak RSS {:+.1} MB, zip {:+.0} kB.\n",
        millis(otel.init) - millis(today.init),
        millis(otel.first) - millis(today.first),
        millis(otel.p50) - millis(today.p50),
        millis(otel.p99) - millis(today.p99),
        (otel.peak_kb as f64 - today.peak_kb as f64) / 1024.0,
        (otel_zip as f64 - xray_zip as f64) / 1000.0,
    ));
    out
}

/// A minimal HTTP/1.1 server with keep-alive: the DynamoDB stand-in (every
/// call answered with one item) or, with `received`, the collector
/// extension's stand-in (every body kept, answered with an empty 200).
async fn serve_http(listener: TcpListener, received: Option<Arc<Received>>) {
    while let Ok((stream, _)) = listener.accept().await {
        let received = received.clone();
        tokio::spawn(async move {
            let _ = serve_connection(stream, received).await;
        });
    }
}

async fn serve_connection(stream: TcpStream, received: Option<Arc<Received>>) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await? == 0 {
            return Ok(());
        }
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
        let response = if let Some(received) = &received {
            received.otlp.lock().expect("not poisoned").push(body);
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n".to_owned()
        } else {
            let item = r#"{"Item":{"pk":{"S":"PRODUCT#bench"},"sk":{"S":"PRODUCT"},"name":{"S":"Bench product"}}}"#;
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\nx-amzn-requestid: bench\r\n\
                 content-length: {}\r\n\r\n{item}",
                item.len()
            )
        };
        writer.write_all(response.as_bytes()).await?;
        writer.flush().await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variant(exporter: Exporter, sampled: bool) -> Variant {
        Variant { label: "test", binary: "-", exporter, sampled }
    }

    #[test]
    fn an_exporter_that_sends_nothing_or_loses_the_trace_fails_the_bench() {
        let otel = variant(Exporter::Otel, true);
        assert!(check(&otel, 2, &[], &[]).is_err(), "nothing sent");
        let mut good = bytes(TRACE_ID_HEX);
        good.extend(bytes(PARENT_HEX));
        good.extend(b"cold_start");
        assert_eq!(check(&otel, 2, &[], &[good.clone(), good.clone()]).unwrap(), 2);
        let other_trace = b"cold_start".to_vec();
        assert!(check(&otel, 2, &[], &[good.clone(), other_trace]).is_err(), "trace context lost");
        assert!(check(&variant(Exporter::Otel, false), 2, &[], &[good]).is_err(), "unsampled but sent");
        let daemon = variant(Exporter::Daemon, true);
        let subsegment = |cold: bool| {
            format!(
                "{{\"trace_id\":\"1-5759e988-bd862e3fe1be46a994272793\",\"parent_id\":\"{PARENT_HEX}\",\"cold_start\":{cold}}}"
            )
            .into_bytes()
        };
        let sent = [subsegment(true), subsegment(false), subsegment(false), subsegment(false)];
        assert_eq!(check(&daemon, 2, &sent, &[]).unwrap(), 4);
        assert!(check(&daemon, 2, &sent[..3], &[]).is_err(), "a span missing");
    }

    #[test]
    fn percentiles_take_the_rank_that_covers_the_fraction() {
        let sorted: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&sorted, 0.5), Duration::from_millis(50));
        assert_eq!(percentile(&sorted, 0.99), Duration::from_millis(99));
    }
}
