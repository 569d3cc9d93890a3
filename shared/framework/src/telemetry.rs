//! Structured logs: one JSON object per line, the shape Lambda's JSON log
//! format expects. Every line carries its span: for an API request the
//! `request` span, for a queue record the `message` span, for the relay the
//! `invocation` span; each has the function, Lambda's request id (which
//! joins a line with Lambda's own START, REPORT and timeout lines), the
//! trace id, the correlation id and the cold-start flag (those facts live in
//! [`crate::invocation`]).
//!
//! Debug logs are sampled: `LOG_DEBUG_SAMPLE_RATE` (0 to 1) of invocations
//! log at DEBUG whatever the level. `LOG_EVENT=true` logs each incoming
//! event, redacted (see [`crate::redact`]), for debugging in production.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tracing::level_filters::LevelFilter;
use tracing::{Level, Metadata};
use tracing_subscriber::filter::{FilterFn, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

/// Whether this invocation was sampled to log at DEBUG.
static DEBUG_NOW: AtomicBool = AtomicBool::new(false);
/// `LOG_DEBUG_SAMPLE_RATE`, in millionths.
static SAMPLE_PER_MILLION: AtomicU64 = AtomicU64::new(0);
static LOG_EVENTS: AtomicBool = AtomicBool::new(false);

/// Installs the JSON subscriber and names the function. The level comes
/// from `AWS_LAMBDA_LOG_LEVEL` (set by Lambda's advanced logging controls)
/// or `RUST_LOG`, default INFO; the SDK's own lines only from WARN, and the
/// Lambda runtime's never at TRACE (see [`RAW_EVENT_CRATES`]).
pub fn init(function: &'static str) {
    crate::invocation::name_function(function);
    let level = level_from(|name| std::env::var(name).ok());
    let rate = std::env::var("LOG_DEBUG_SAMPLE_RATE").ok().and_then(|raw| raw.parse::<f64>().ok()).unwrap_or(0.0);
    SAMPLE_PER_MILLION.store((rate.clamp(0.0, 1.0) * 1_000_000.0) as u64, Ordering::Relaxed);
    set_event_log(std::env::var("LOG_EVENT").is_ok_and(|raw| raw == "true" || raw == "1"));
    let format = fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .without_time()
        .with_ansi(false);
    let most_verbose = most_verbose(level, SAMPLE_PER_MILLION.load(Ordering::Relaxed) > 0);
    let _ = tracing_subscriber::registry()
        .with(format.with_filter(filter(level, &DEBUG_NOW).with_max_level_hint(most_verbose)))
        .try_init();
}

/// The most verbose level any line can be logged at: `level`, or DEBUG
/// when some invocations are sampled to log at DEBUG. Given to `tracing`
/// as the filter's hint, so a callsite more verbose than that (the SDK's
/// and hyper's many DEBUG and TRACE lines and spans on every call, the
/// request's INFO span at level ERROR) is skipped where it stands, by one
/// comparison, instead of asking the filter each time.
fn most_verbose(level: Level, sampled_debug: bool) -> LevelFilter {
    let level = if sampled_debug { level.max(Level::DEBUG) } else { level };
    LevelFilter::from_level(level)
}

/// Crates that log each raw invocation event at TRACE (`lambda_runtime`
/// logs the whole payload, `Authorization` headers and passwords in request
/// bodies included, before any redaction can see it): their lines stop at
/// DEBUG whatever the level says.
const RAW_EVENT_CRATES: [&str; 3] = ["lambda_runtime", "lambda_runtime_api_client", "lambda_http"];

/// The level `AWS_LAMBDA_LOG_LEVEL` or else `RUST_LOG` names, INFO when
/// neither names one.
fn level_from(lookup: impl Fn(&str) -> Option<String>) -> Level {
    lookup("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|| lookup("RUST_LOG"))
        .and_then(|raw| raw.parse::<Level>().ok())
        .unwrap_or(Level::INFO)
}

/// What is logged at `level`: the SDK's and its HTTP stack's lines from
/// WARN, the Lambda runtime's never at TRACE, and DEBUG in an invocation
/// sampled for it (while `sampled` is set: [`DEBUG_NOW`], in a function).
fn filter(level: Level, sampled: &'static AtomicBool) -> FilterFn<impl Fn(&Metadata<'_>) -> bool> {
    filter_fn(move |metadata| {
        let target = metadata.target();
        let line = *metadata.level();
        if target.starts_with("aws_") || target.starts_with("hyper") || target.starts_with("rustls") {
            return line <= Level::WARN;
        }
        let of_crate =
            |name: &str| target.strip_prefix(name).is_some_and(|rest| rest.is_empty() || rest.starts_with("::"));
        if line > Level::DEBUG && RAW_EVENT_CRATES.into_iter().any(of_crate) {
            return false;
        }
        line <= level || (line <= Level::DEBUG && sampled.load(Ordering::Relaxed))
    })
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

/// Turns the event log ([`log_event`]) on or off; [`init`] sets it from `LOG_EVENT`.
pub fn set_event_log(on: bool) {
    LOG_EVENTS.store(on, Ordering::Relaxed);
}

/// Logs the event `event` makes (redacted) when `LOG_EVENT` is on. Off (as
/// it is unless someone is debugging), nothing is built: the view of an
/// event, its headers and redacted body, would cost every invocation.
pub fn log_event(event: impl FnOnce() -> serde_json::Value) {
    if LOG_EVENTS.load(Ordering::Relaxed) {
        tracing::info!(event = %crate::redact::value(&event()), "invocation event");
    }
}

/// An error and its causes on one line, outermost first, joined by ": "
/// (what `{:#}` prints for an `anyhow::Error`): the one way the layer logs
/// an error chain. Pass an `anyhow::Error` as `error.as_ref()`.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing::Subscriber;
    use tracing_subscriber::layer::Context;

    use super::*;

    #[test]
    fn an_error_chain_is_one_line_outermost_first_like_anyhow_alternate() {
        let error = anyhow::anyhow!("root cause").context("middle").context("outer");
        assert_eq!(chain(error.as_ref()), "outer: middle: root cause");
        assert_eq!(chain(error.as_ref()), format!("{error:#}"));
        let io = std::io::Error::other("disk full");
        assert_eq!(chain(&io), "disk full");
    }

    /// The targets and levels of the lines a subscriber let through.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<(String, Level)>>>);

    impl<S: Subscriber> Layer<S> for Lines {
        fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
            let line = (event.metadata().target().to_owned(), *event.metadata().level());
            self.0.lock().unwrap().push(line);
        }
    }

    #[test]
    fn with_the_event_log_off_no_view_of_the_event_is_built() {
        // No test of this binary turns the event log on (tests/event_log.rs does, in its own).
        log_event(|| panic!("the event's view was built with the event log off"));
    }

    #[test]
    fn the_hint_is_the_level_or_debug_when_invocations_are_sampled() {
        assert_eq!(most_verbose(Level::ERROR, false), LevelFilter::ERROR);
        assert_eq!(most_verbose(Level::INFO, false), LevelFilter::INFO);
        assert_eq!(most_verbose(Level::ERROR, true), LevelFilter::DEBUG);
        assert_eq!(most_verbose(Level::INFO, true), LevelFilter::DEBUG);
        // Sampling never makes a TRACE level less verbose.
        assert_eq!(most_verbose(Level::TRACE, true), LevelFilter::TRACE);
    }

    /// The hint holds back nothing the filter lets through: at INFO with
    /// sampling on, a sampled invocation's DEBUG lines are still logged,
    /// and the subscriber says DEBUG is the most verbose it may log.
    #[test]
    fn a_sampled_invocation_logs_at_debug_under_the_hint() {
        // The test's own flag: DEBUG_NOW is set by every invocation of any test.
        static SAMPLED: AtomicBool = AtomicBool::new(false);
        let lines = Lines::default();
        let hint = most_verbose(Level::INFO, true);
        let filtered = filter(Level::INFO, &SAMPLED).with_max_level_hint(hint);
        let subscriber = tracing_subscriber::registry().with(lines.clone().with_filter(filtered));
        assert_eq!(subscriber.max_level_hint(), Some(LevelFilter::DEBUG));
        tracing::subscriber::with_default(subscriber, || {
            SAMPLED.store(true, Ordering::Relaxed);
            tracing::debug!(target: "framework::http::server", "sampled");
            tracing::trace!(target: "framework::http::server", "never");
            SAMPLED.store(false, Ordering::Relaxed);
            tracing::debug!(target: "framework::http::server", "not sampled");
            tracing::info!(target: "framework::http::server", "always");
        });
        let lines = lines.0.lock().unwrap().clone();
        let expected = [("framework::http::server", Level::DEBUG), ("framework::http::server", Level::INFO)];
        assert_eq!(lines, expected.map(|(target, level)| (target.to_owned(), level)));
    }

    /// With `RUST_LOG=trace`, our own TRACE lines are logged, but not the
    /// Lambda runtime's: at TRACE it logs every raw event, tokens and
    /// passwords included.
    #[test]
    fn the_lambda_runtime_never_logs_at_trace_whatever_rust_log_says() {
        let level = level_from(|name| (name == "RUST_LOG").then(|| "trace".to_owned()));
        assert_eq!(level, Level::TRACE);
        let lines = Lines::default();
        let subscriber = tracing_subscriber::registry().with(lines.clone().with_filter(filter(level, &DEBUG_NOW)));
        tracing::subscriber::with_default(subscriber, || {
            tracing::trace!(target: "lambda_runtime::layers::api_response", body = "{}", "raw JSON event");
            tracing::trace!(target: "lambda_runtime", "raw JSON event");
            tracing::trace!(target: "lambda_runtime_api_client::body", "raw JSON event");
            tracing::trace!(target: "lambda_http::request", "raw JSON event");
            tracing::debug!(target: "lambda_runtime::runtime", "polling");
            tracing::trace!(target: "framework::http::server", "ours");
        });
        let lines = lines.0.lock().unwrap().clone();
        let expected = [("lambda_runtime::runtime", Level::DEBUG), ("framework::http::server", Level::TRACE)];
        assert_eq!(lines, expected.map(|(target, level)| (target.to_owned(), level)));
    }
}
