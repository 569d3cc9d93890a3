//! Structured logs: one JSON object per line, the shape Lambda's JSON log
//! format expects, each carrying the request id, trace id, correlation id and
//! cold-start flag of the span it was written in.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::EnvFilter;

static COLD: AtomicBool = AtomicBool::new(true);
static FUNCTION: OnceLock<&'static str> = OnceLock::new();

/// This process's function (its cargo package name), as named in logs and metrics.
pub fn function_name() -> &'static str {
    FUNCTION.get().copied().unwrap_or("unknown")
}

/// Installs the JSON subscriber and names the function. Level comes from
/// `AWS_LAMBDA_LOG_LEVEL` (set by Lambda's advanced logging controls) or
/// `RUST_LOG`, default INFO.
pub fn init(function: &'static str) {
    let _ = FUNCTION.set(function);
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_owned())
        .to_lowercase();
    // The SDK's own INFO lines are noise at our level of detail.
    let filter = EnvFilter::try_new(format!("{level},aws_config=warn,aws_smithy_runtime=warn,aws_runtime=warn"))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .without_time()
        .with_ansi(false)
        .try_init();
}

/// True for the first invocation this process serves, false afterwards.
pub fn take_cold_start() -> bool {
    COLD.swap(false, Ordering::Relaxed)
}
