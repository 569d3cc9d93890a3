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
                crate::telemetry::log_event(|| event.payload.clone());
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
                    (crate::metrics::REQUEST_ID, &event.context.request_id),
                    (crate::metrics::TRACE_ID, crate::invocation::trace_id(&trace)),
                ]);
                outcome.map_err(lambda_runtime::Error::from)
            }
        },
    )))
    .await
}

/// The I/O a function does once during init (opening a connection, reading
/// a key into its cache), each registered where `main` asks for it, and all
/// running at once from `main`'s next wait (on the current-thread runtime a
/// spawned task runs only when `main` waits): a cold start waits for the
/// slowest, not for their sum.
/// The serving loops ([`crate::http::HttpServer::after_warm_ups`],
/// [`crate::batch::BatchProcessor::after_warm_ups`]) wait for them before
/// they take the first event, so its work finds the connections open and the
/// keys cached. A warm-up deals with its own failure (logs it; the first
/// request that needs what it read reads again).
#[derive(Debug, Default)]
pub struct WarmUps(std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>);

impl WarmUps {
    /// Spawns `work` on the function's runtime (so only from within [`run`]);
    /// it makes progress whenever `main` waits.
    pub fn start(&self, work: impl Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(work);
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(handle);
    }

    /// Waits until every warm-up started so far has finished. A warm-up that
    /// panicked panics here, as it would have in `main`.
    pub async fn finish(&self) {
        let started = std::mem::take(&mut *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        for handle in started {
            if let Err(error) = handle.await
                && error.is_panic()
            {
                std::panic::resume_unwind(error.into_panic());
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// A warm-up that waits `millis` and then counts itself done.
    fn wait_then_count(done: &Arc<AtomicUsize>, millis: u64) -> impl Future<Output = ()> + Send + 'static {
        let done = done.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(millis)).await;
            done.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn warm_ups_run_at_once_and_have_all_finished_when_finish_returns() {
        let (warm_ups, done) = (WarmUps::default(), Arc::new(AtomicUsize::new(0)));
        for millis in [30, 100, 60] {
            warm_ups.start(wait_then_count(&done, millis));
        }
        let started = tokio::time::Instant::now();
        warm_ups.finish().await;
        assert_eq!(done.load(Ordering::SeqCst), 3);
        // The slowest one's time, not the sum (190 ms) of one after the other.
        assert_eq!(started.elapsed(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn a_warm_up_runs_while_main_waits_before_anyone_asks_for_it() {
        let (warm_ups, done) = (WarmUps::default(), Arc::new(AtomicUsize::new(0)));
        warm_ups.start(wait_then_count(&done, 50));
        // Init's own waiting (loading the configuration, say) lets it run.
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(done.load(Ordering::SeqCst), 1);
        let started = tokio::time::Instant::now();
        warm_ups.finish().await;
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn finish_waits_only_for_what_was_started_since_the_last_finish() {
        let (warm_ups, done) = (WarmUps::default(), Arc::new(AtomicUsize::new(0)));
        warm_ups.finish().await;
        warm_ups.start(wait_then_count(&done, 10));
        warm_ups.finish().await;
        assert_eq!(done.load(Ordering::SeqCst), 1);
        let started = tokio::time::Instant::now();
        warm_ups.finish().await;
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test]
    #[should_panic(expected = "a warm-up's bug")]
    async fn a_warm_up_that_panics_panics_in_finish() {
        let warm_ups = WarmUps::default();
        warm_ups.start(async { panic!("a warm-up's bug") });
        warm_ups.finish().await;
    }
}
