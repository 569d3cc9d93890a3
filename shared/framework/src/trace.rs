//! What a trace records, and the one seam through which it leaves the
//! process. The layer reports two kinds of span: each AWS call
//! ([`Call`], from [`crate::aws::calls`]) and each piece of work as a whole
//! ([`Work`]: an API request, a queue record, a scheduled run) with the
//! annotations a reader filters on (cold start, route, outcome). Both belong
//! to the X-Ray trace header of the work in progress
//! ([`crate::invocation::current_trace`]), the header Lambda hands the
//! function and that travels on through the outbox and SQS's
//! `AWSTraceHeader`; the exporter only reads it.
//!
//! Which exporter runs is decided once, at init: today the X-Ray daemon's
//! UDP protocol ([`crate::aws::xray::Daemon`], installed by
//! [`crate::aws::xray::init`]). An OpenTelemetry exporter plugs in through
//! the same [`Exporter`] trait with [`install`]; docs/architecture.md
//! (Tracing) says why it is not the default yet, with the measurement.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

static EXPORTER: OnceLock<Box<dyn Exporter>> = OnceLock::new();

/// Where spans go. Called on the request's task: an implementation must not
/// block on I/O in [`Exporter::call`] or [`Exporter::work`] (buffer, or send
/// without waiting); [`Exporter::flush`] may wait, and runs once at the end
/// of each invocation, before Lambda may freeze the process.
pub trait Exporter: Send + Sync + 'static {
    /// One AWS call made for the work whose trace header is `trace`.
    fn call(&self, trace: &str, call: &Call<'_>);
    /// One piece of work finished.
    fn work(&self, trace: &str, work: &Work<'_>);
    /// The invocation is over: send whatever is buffered.
    fn flush(&self) {}
}

/// One AWS call, as the SDK interceptor saw it.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// The service (`DynamoDB`, `SQS`, ...).
    pub service: &'a str,
    /// The operation (`GetItem`, ...).
    pub operation: &'a str,
    /// `ok`, `timeout`, `unreachable`, `http <status>` or `error`.
    pub outcome: &'a str,
    /// Attempts made, the first included.
    pub attempts: u32,
    /// When the call began.
    pub started: SystemTime,
    /// How long it took, retries included.
    pub took: Duration,
}

impl Call<'_> {
    /// True when the call failed on the service's side or never got an
    /// answer (X-Ray's "fault"), as opposed to an error answer ("error").
    pub fn is_fault(&self) -> bool {
        matches!(self.outcome, "timeout" | "unreachable") || self.outcome.starts_with("http 5")
    }
}

/// One request, queue record or scheduled run, with its annotations.
#[derive(Debug, Clone, Copy)]
pub struct Work<'a> {
    /// The function (its cargo package name).
    pub function: &'a str,
    /// What was asked: `GET /products/{id}` for a request (the route's
    /// template, never the raw path), the event type for a queue record,
    /// `scheduled` for a scheduled run.
    pub route: &'a str,
    /// How it ended: the HTTP status class (`2xx`, `4xx`, `5xx`) or the
    /// record's outcome (`done`, `duplicate`, `parked`, `failed`).
    pub outcome: &'a str,
    /// Whether a failure was ours (a 5xx, a failed record): X-Ray's "fault".
    pub fault: bool,
    /// The first invocation of this process.
    pub cold_start: bool,
    /// When the work began.
    pub started: SystemTime,
    /// How long it took.
    pub took: Duration,
}

/// Installs the process's exporter; the first call wins (once, at init).
/// Returns false when one was already installed.
pub fn install(exporter: Box<dyn Exporter>) -> bool {
    EXPORTER.set(exporter).is_ok()
}

/// Whether an exporter is installed (tracing is on for this process).
pub fn is_on() -> bool {
    EXPORTER.get().is_some()
}

/// Reports an AWS call of the work in progress (nothing without an
/// exporter or outside a traced piece of work).
pub fn call(call: &Call<'_>) {
    let Some(exporter) = EXPORTER.get() else { return };
    let Some(trace) = crate::invocation::current_trace() else { return };
    exporter.call(&trace, call);
}

/// Reports a finished piece of work whose trace header is `trace`.
pub fn work(trace: &str, work: &Work<'_>) {
    if trace.is_empty() {
        return;
    }
    if let Some(exporter) = EXPORTER.get() {
        exporter.work(trace, work);
    }
}

/// Ends the invocation's tracing: the exporter sends what it buffered.
pub fn flush() {
    if let Some(exporter) = EXPORTER.get() {
        exporter.flush();
    }
}

/// The status class of an HTTP status, as [`Work::outcome`] names it.
pub fn status_class(status: u16) -> &'static str {
    match status {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_is_ours_or_the_networks_an_error_answer_is_not() {
        let call = |outcome| Call {
            service: "DynamoDB",
            operation: "GetItem",
            outcome,
            attempts: 1,
            started: SystemTime::UNIX_EPOCH,
            took: Duration::ZERO,
        };
        assert!(call("timeout").is_fault());
        assert!(call("unreachable").is_fault());
        assert!(call("http 503").is_fault());
        assert!(!call("http 400").is_fault());
        assert!(!call("ok").is_fault());
        assert_eq!((status_class(204), status_class(404), status_class(502)), ("2xx", "4xx", "5xx"));
    }
}
