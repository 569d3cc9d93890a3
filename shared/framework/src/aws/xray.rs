//! Today's trace exporter: X-Ray subsegments sent over UDP to the X-Ray
//! daemon endpoint Lambda provides beside a traced function
//! (`AWS_XRAY_DAEMON_ADDRESS`), one datagram per span, never waited on.
//! Each AWS call becomes a subsegment of the invocation's segment (the
//! `Parent` of the trace header), so a slow p99 shows which call was slow;
//! each request or record becomes one more, named after the function, with
//! the annotations `cold_start`, `route` and `outcome`.
//! Off when there is no daemon (locally) or the trace is not sampled;
//! `TRACING=off` turns it off entirely. It implements
//! [`crate::trace::Exporter`], the seam an OpenTelemetry exporter would take.

use std::net::UdpSocket;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::trace::{Call, Exporter, Work};

/// The daemon's address and the socket to it.
pub struct Daemon {
    socket: UdpSocket,
    address: String,
}

/// Installs the daemon exporter, if there is a daemon and tracing is on.
pub fn init() {
    if let Some(daemon) = Daemon::from_env() {
        crate::trace::install(Box::new(daemon));
    }
}

impl Daemon {
    /// The exporter to `AWS_XRAY_DAEMON_ADDRESS`, unless `TRACING=off` or there is none.
    pub fn from_env() -> Option<Self> {
        if std::env::var("TRACING").is_ok_and(|value| value == "off") {
            return None;
        }
        let daemon = std::env::var("AWS_XRAY_DAEMON_ADDRESS").ok()?;
        // The variable may hold "udp:host:port tcp:host:port" or "host:port".
        let address =
            daemon.split_whitespace().find_map(|part| part.strip_prefix("udp:")).unwrap_or(&daemon).to_owned();
        let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
        socket.set_nonblocking(true).ok()?;
        Some(Self { socket, address })
    }

    fn send(&self, document: &str) {
        let _ =
            self.socket.send_to(format!("{{\"format\":\"json\",\"version\":1}}\n{document}").as_bytes(), &self.address);
    }
}

impl Exporter for Daemon {
    fn call(&self, trace: &str, call: &Call<'_>) {
        if let Some(document) = document(trace, call) {
            self.send(&document);
        }
    }

    fn work(&self, trace: &str, work: &Work<'_>) {
        if let Some(document) = work_document(trace, work) {
            self.send(&document);
        }
    }
}

/// The trace id and parent of a sampled trace header; `None` when it is not sampled.
fn sampled(header: &str) -> Option<(&str, &str)> {
    let field = |name: &str| header.split(';').find_map(|part| part.strip_prefix(name));
    if field("Sampled=") != Some("1") {
        return None;
    }
    Some((field("Root=")?, field("Parent=")?))
}

fn seconds(at: SystemTime) -> Option<f64> {
    Some(at.duration_since(UNIX_EPOCH).ok()?.as_secs_f64())
}

/// The subsegment document of an AWS call, or `None` for a trace that is not sampled.
pub fn document(header: &str, call: &Call<'_>) -> Option<String> {
    let (trace_id, parent_id) = sampled(header)?;
    let start = seconds(call.started)?;
    let mut subsegment = serde_json::json!({
        "name": call.service,
        "namespace": "aws",
        "id": format!("{:016x}", rand::random::<u64>()),
        "trace_id": trace_id,
        "parent_id": parent_id,
        "type": "subsegment",
        "start_time": start,
        "end_time": start + call.took.as_secs_f64(),
        "aws": {"operation": call.operation, "retries": call.attempts.saturating_sub(1)},
    });
    if call.is_fault() {
        subsegment["fault"] = true.into();
    } else if call.outcome != "ok" {
        subsegment["error"] = true.into();
    }
    Some(subsegment.to_string())
}

/// The subsegment document of a request or record, with its annotations,
/// or `None` for a trace that is not sampled.
pub fn work_document(header: &str, work: &Work<'_>) -> Option<String> {
    let (trace_id, parent_id) = sampled(header)?;
    let start = seconds(work.started)?;
    let mut subsegment = serde_json::json!({
        "name": work.function,
        "id": format!("{:016x}", rand::random::<u64>()),
        "trace_id": trace_id,
        "parent_id": parent_id,
        "type": "subsegment",
        "start_time": start,
        "end_time": start + work.took.as_secs_f64(),
        "annotations": {"cold_start": work.cold_start, "route": work.route, "outcome": work.outcome},
    });
    if work.fault {
        subsegment["fault"] = true.into();
    }
    Some(subsegment.to_string())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const SAMPLED: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

    fn get_item(outcome: &str) -> Call<'_> {
        Call {
            service: "DynamoDB",
            operation: "GetItem",
            outcome,
            attempts: 2,
            started: UNIX_EPOCH + Duration::from_secs(10),
            took: Duration::from_millis(5),
        }
    }

    #[test]
    fn a_sampled_call_is_a_subsegment_of_the_invocation() {
        let sent = document(SAMPLED, &get_item("ok")).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&sent).unwrap();
        assert_eq!(parsed["trace_id"], "1-5759e988-bd862e3fe1be46a994272793");
        assert_eq!(parsed["parent_id"], "53995c3f42cd8ad8");
        assert_eq!(parsed["aws"]["retries"], 1);
        assert!((parsed["end_time"].as_f64().unwrap() - 10.005).abs() < 1e-9);
        assert!(parsed.get("fault").is_none() && parsed.get("error").is_none());
        assert!(document("Root=1-a-b;Parent=c;Sampled=0", &get_item("ok")).is_none());
    }

    #[test]
    fn a_failed_call_is_a_fault_when_the_service_failed_and_an_error_when_it_refused() {
        let flags = |outcome| {
            let parsed: serde_json::Value =
                serde_json::from_str(&document(SAMPLED, &get_item(outcome)).unwrap()).unwrap();
            (parsed["fault"] == true, parsed["error"] == true)
        };
        assert_eq!(flags("timeout"), (true, false));
        assert_eq!(flags("http 500"), (true, false));
        assert_eq!(flags("http 400"), (false, true));
    }

    #[test]
    fn a_request_carries_the_annotations_a_reader_filters_on() {
        let work = Work {
            function: "get-product",
            route: "GET /products/{id}",
            outcome: "5xx",
            fault: true,
            cold_start: true,
            started: UNIX_EPOCH + Duration::from_secs(10),
            took: Duration::from_millis(20),
        };
        let parsed: serde_json::Value = serde_json::from_str(&work_document(SAMPLED, &work).unwrap()).unwrap();
        assert_eq!(parsed["name"], "get-product");
        assert_eq!(parsed["parent_id"], "53995c3f42cd8ad8");
        assert_eq!(parsed["annotations"]["cold_start"], true);
        assert_eq!(parsed["annotations"]["route"], "GET /products/{id}");
        assert_eq!(parsed["annotations"]["outcome"], "5xx");
        assert_eq!(parsed["fault"], true);
        assert!(work_document("Root=1-a-b;Parent=c;Sampled=0", &work).is_none());
    }
}
