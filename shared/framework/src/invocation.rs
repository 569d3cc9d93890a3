//! What identifies the work in progress: this process's function, whether an
//! invocation is its first (a cold start), and the X-Ray trace of the request
//! or queue record being handled. Logs ([`crate::telemetry`]), metrics
//! ([`crate::metrics`]) and X-Ray subsegments ([`crate::aws::xray`]) all
//! read it; it reads none of them, so they depend on it and never on each
//! other for these facts.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

static COLD: AtomicBool = AtomicBool::new(true);
static FUNCTION: OnceLock<&'static str> = OnceLock::new();

tokio::task_local! {
    /// The X-Ray trace header of the work in progress (a request, or one
    /// queue record: records of one batch belong to different traces).
    static TRACE: String;
}

/// Names this process's function (once, at init; later calls change nothing).
pub fn name_function(function: &'static str) {
    let _ = FUNCTION.set(function);
}

/// This process's function (its cargo package name), as named in logs and metrics.
pub fn function_name() -> &'static str {
    FUNCTION.get().copied().unwrap_or("unknown")
}

/// True for the first invocation this process serves, false afterwards.
pub fn take_cold_start() -> bool {
    COLD.swap(false, Ordering::Relaxed)
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
