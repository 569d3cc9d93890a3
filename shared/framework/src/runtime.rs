//! Process start-up and the Lambda loop shared by every function: the Tokio
//! runtime `main` runs on, values kept for the life of the process, and the
//! loop of a scheduled function. (An API function's loop is
//! [`crate::http::HttpServer::serve`], a consumer's [`crate::batch::BatchProcessor`].)

use std::sync::Arc;

/// Hands the process over to the Lambda runtime for a scheduled function
/// named `name`: each invocation runs `work` in an `invocation` span
/// (function, Lambda request id, trace id, cold start), with debug sampling,
/// and writes its metrics as one document.
pub async fn serve_scheduled<W, F>(name: &'static str, work: W) -> Result<(), lambda_runtime::Error>
where
    W: Fn() -> F + Send + Sync + 'static,
    F: std::future::Future<Output = anyhow::Result<serde_json::Value>> + Send,
{
    let work = Arc::new(work);
    Box::pin(lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<serde_json::Value>| {
            let work = work.clone();
            async move {
                crate::telemetry::begin_invocation();
                let cold_start = crate::invocation::take_cold_start();
                let trace = event.context.xray_trace_id.clone().unwrap_or_default();
                let span = tracing::info_span!(
                    "invocation",
                    function = name,
                    request_id = %event.context.request_id,
                    trace_id = %crate::invocation::trace_id(&trace),
                    cold_start,
                );
                crate::telemetry::log_event(&event.payload);
                let (started, wall) = (std::time::Instant::now(), std::time::SystemTime::now());
                let outcome =
                    crate::invocation::with_trace(trace.clone(), tracing::Instrument::instrument(work(), span)).await;
                crate::trace::work(
                    &trace,
                    &crate::trace::Work {
                        function: name,
                        route: "scheduled",
                        outcome: if outcome.is_ok() { "done" } else { "failed" },
                        fault: outcome.is_err(),
                        cold_start,
                        started: wall,
                        took: started.elapsed(),
                    },
                );
                crate::trace::flush();
                crate::metrics::count(crate::metrics::names::COLD_START, f64::from(u8::from(cold_start)));
                crate::metrics::flush(&[
                    ("RequestId", &event.context.request_id),
                    ("TraceId", crate::invocation::trace_id(&trace)),
                ]);
                outcome.map_err(lambda_runtime::Error::from)
            }
        },
    )))
    .await
}

/// Runs a function's `main` to completion on a current-thread runtime: Lambda
/// sends one event at a time, so worker threads would only add start-up time
/// and memory (each would keep argon2's 12 MiB in an allocator arena of its own).
pub fn run<F, E>(main: F) -> Result<(), E>
where
    F: std::future::Future<Output = Result<(), E>>,
{
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a Tokio runtime starts").block_on(main)
}

/// Keeps `value` for the life of the process, so handlers can borrow it
/// without reference counting. Meant for the few objects `main` builds once.
pub fn forever<T>(value: T) -> &'static T {
    Box::leak(Box::new(value))
}
