//! Structured logs: one JSON object per line, the shape Lambda's JSON log
//! format expects. Every line carries its span: for an API request the
//! `request` span, for a queue record the `message` span, for the relay the
//! `invocation` span; each has the function, Lambda's request id (which
//! joins a line with Lambda's own START, REPORT and timeout lines), the
//! trace id, the correlation id and the cold-start flag.
//!
//! Debug logs are sampled: `LOG_DEBUG_SAMPLE_RATE` (0 to 1) of invocations
//! log at DEBUG whatever the level. `LOG_EVENT=true` logs each incoming
//! event, redacted (see [`crate::redact`]), for debugging in production.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tracing::Level;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

static COLD: AtomicBool = AtomicBool::new(true);
static FUNCTION: OnceLock<&'static str> = OnceLock::new();
/// Whether this invocation was sampled to log at DEBUG.
static DEBUG_NOW: AtomicBool = AtomicBool::new(false);
/// `LOG_DEBUG_SAMPLE_RATE`, in millionths.
static SAMPLE_PER_MILLION: AtomicU64 = AtomicU64::new(0);
static LOG_EVENTS: AtomicBool = AtomicBool::new(false);

tokio::task_local! {
    /// The X-Ray trace header of the work in progress (a request, or one
    /// queue record: records of one batch belong to different traces).
    static TRACE: String;
}

/// This process's function (its cargo package name), as named in logs and metrics.
pub fn function_name() -> &'static str {
    FUNCTION.get().copied().unwrap_or("unknown")
}

/// Installs the JSON subscriber and names the function. The level comes
/// from `AWS_LAMBDA_LOG_LEVEL` (set by Lambda's advanced logging controls)
/// or `RUST_LOG`, default INFO; the SDK's own lines only from WARN.
pub fn init(function: &'static str) {
    let _ = FUNCTION.set(function);
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|raw| raw.parse::<Level>().ok())
        .unwrap_or(Level::INFO);
    let rate = std::env::var("LOG_DEBUG_SAMPLE_RATE").ok().and_then(|raw| raw.parse::<f64>().ok()).unwrap_or(0.0);
    SAMPLE_PER_MILLION.store((rate.clamp(0.0, 1.0) * 1_000_000.0) as u64, Ordering::Relaxed);
    LOG_EVENTS.store(std::env::var("LOG_EVENT").is_ok_and(|raw| raw == "true" || raw == "1"), Ordering::Relaxed);
    let filter = filter_fn(move |metadata| {
        let target = metadata.target();
        if target.starts_with("aws_") || target.starts_with("hyper") || target.starts_with("rustls") {
            return *metadata.level() <= Level::WARN;
        }
        *metadata.level() <= level || (*metadata.level() <= Level::DEBUG && DEBUG_NOW.load(Ordering::Relaxed))
    });
    let format = fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .without_time()
        .with_ansi(false);
    let _ = tracing_subscriber::registry().with(format.with_filter(filter)).try_init();
}

/// True for the first invocation this process serves, false afterwards.
pub fn take_cold_start() -> bool {
    COLD.swap(false, Ordering::Relaxed)
}

/// Starts an invocation: decides whether it logs at DEBUG (the sample rate)
/// and resets its AWS call summary; true when it was sampled.
pub fn begin_invocation() -> bool {
    let rate = SAMPLE_PER_MILLION.load(Ordering::Relaxed);
    let sampled = rate > 0 && rand::random_range(0..1_000_000) < rate;
    DEBUG_NOW.store(sampled, Ordering::Relaxed);
    crate::aws::calls::reset();
    sampled
}

/// Logs `event` (redacted) when `LOG_EVENT` is on.
pub fn log_event(event: &serde_json::Value) {
    if LOG_EVENTS.load(Ordering::Relaxed) {
        tracing::info!(event = %crate::redact::value(event), "invocation event");
    }
}

/// Runs `work` with `trace_header` as the trace of everything it does
/// (events it publishes carry it on; AWS calls become its subsegments).
pub async fn with_trace<F: Future>(trace_header: String, work: F) -> F::Output {
    TRACE.scope(trace_header, work).await
}

/// The X-Ray trace header of the work in progress, if any.
pub fn current_trace() -> Option<String> {
    TRACE.try_with(Clone::clone).ok().filter(|header| !header.is_empty())
}

/// The `Root=...` trace id of an X-Ray trace header.
pub fn trace_id(trace_header: &str) -> &str {
    trace_header.split(';').find_map(|part| part.strip_prefix("Root=")).unwrap_or(trace_header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_id_is_the_root_of_the_header() {
        assert_eq!(
            trace_id("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"),
            "1-5759e988-bd862e3fe1be46a994272793"
        );
        assert_eq!(trace_id(""), "");
    }

    #[tokio::test]
    async fn each_piece_of_work_keeps_its_own_trace() {
        let (a, b) = tokio::join!(
            with_trace("Root=a".into(), async { current_trace() }),
            with_trace("Root=b".into(), async { current_trace() })
        );
        assert_eq!((a.as_deref(), b.as_deref()), (Some("Root=a"), Some("Root=b")));
        assert_eq!(current_trace(), None);
    }
}
