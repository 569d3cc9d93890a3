//! The time of every AWS call: an SDK interceptor that records service,
//! operation, outcome, attempts and duration of each call. Each call is
//! logged at DEBUG, summed for the invocation's log line (how many calls, how
//! long they took), counted as a throttle when an attempt was throttled, and
//! reported to the trace of the work in progress (see [`crate::trace`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

use crate::metrics::{self, names};

static CALLS: AtomicU64 = AtomicU64::new(0);
static MICROS: AtomicU64 = AtomicU64::new(0);

/// Starts the summary of a new invocation.
pub fn reset() {
    CALLS.store(0, Ordering::Relaxed);
    MICROS.store(0, Ordering::Relaxed);
}

/// This invocation's AWS calls so far: how many, and their total time in milliseconds.
pub fn summary() -> (u64, f64) {
    (CALLS.load(Ordering::Relaxed), MICROS.load(Ordering::Relaxed) as f64 / 1000.0)
}

/// When a call began (kept in the call's configuration bag).
#[derive(Debug, Clone)]
struct Started {
    at: Instant,
    wall: SystemTime,
}

impl Storable for Started {
    type Storer = StoreReplace<Self>;
}

/// The interceptor; add it to every SDK client (see `runtime::Init`).
#[derive(Debug, Clone, Default)]
pub struct CallTimer;

impl Intercept for CallTimer {
    fn name(&self) -> &'static str {
        "CallTimer"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(Started { at: Instant::now(), wall: SystemTime::now() });
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if context.response().is_some_and(|response| throttled(response.status().as_u16(), || response.body().bytes()))
        {
            metrics::count(names::THROTTLES, 1.0);
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(started) = cfg.load::<Started>().cloned() else { return Ok(()) };
        let took = started.at.elapsed();
        let (service, operation) = cfg
            .load::<Metadata>()
            .map_or(("?".to_owned(), "?".to_owned()), |m| (m.service().to_owned(), m.name().to_owned()));
        let attempts = cfg.load::<RequestAttempts>().map_or(1, RequestAttempts::attempts);
        let outcome = match context.output_or_error() {
            Some(Ok(_)) => "ok".to_owned(),
            Some(Err(error)) if error.is_timeout_error() => "timeout".to_owned(),
            Some(Err(error)) if error.is_connector_error() => "unreachable".to_owned(),
            Some(Err(_)) => {
                context.response().map_or_else(|| "error".to_owned(), |r| format!("http {}", r.status().as_u16()))
            }
            None => "unknown".to_owned(),
        };
        CALLS.fetch_add(1, Ordering::Relaxed);
        MICROS.fetch_add(u64::try_from(took.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
        tracing::debug!(service, operation, outcome, attempts, duration_ms = took.as_secs_f64() * 1000.0, "aws call");
        crate::trace::call(&crate::trace::Call {
            service: &service,
            operation: &operation,
            outcome: &outcome,
            attempts,
            started: started.wall,
            took,
        });
        Ok(())
    }
}

/// Whether an attempt's answer says "slow down": a 429, or a 400 whose
/// body names a throttling error. Only a 400's body is read (`body` is
/// called for nothing else): most answers are 200s, and their bodies are
/// the callers' data.
fn throttled<'a>(status: u16, body: impl FnOnce() -> Option<&'a [u8]>) -> bool {
    match status {
        429 => true,
        400 => body().is_some_and(|body| {
            let body = String::from_utf8_lossy(body);
            THROTTLING.iter().any(|code| body.contains(code))
        }),
        _ => false,
    }
}

/// Error codes that mean "slow down" in the JSON protocols.
const THROTTLING: [&str; 4] =
    ["ThrottlingException", "ProvisionedThroughputExceeded", "RequestLimitExceeded", "TooManyRequestsException"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttle_is_a_429_or_a_400_naming_one() {
        let body = |text: &'static str| move || Some(text.as_bytes());
        assert!(throttled(429, || None));
        assert!(throttled(400, body(r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException"}"#)));
        assert!(throttled(400, body(r#"{"__type":"ProvisionedThroughputExceededException"}"#)));
        assert!(!throttled(400, body(r#"{"__type":"ValidationException"}"#)));
        assert!(!throttled(400, || None));
        // Any other answer's body is never read, whatever it holds.
        assert!(!throttled(200, || panic!("a 200's body was read")));
        assert!(!throttled(500, || panic!("a 500's body was read")));
    }
}
