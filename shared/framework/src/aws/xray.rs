//! X-Ray subsegments for AWS calls, sent over UDP to the X-Ray daemon that
//! Lambda runs beside a traced function (`AWS_XRAY_DAEMON_ADDRESS`). Each
//! call becomes a subsegment of the invocation's segment (the `Parent` of
//! the current trace header), so a slow p99 shows which call was slow.
//! Off when there is no daemon (locally) or the trace is not sampled;
//! `TRACING=off` turns it off entirely.

use std::net::UdpSocket;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

static SOCKET: OnceLock<Option<(UdpSocket, String)>> = OnceLock::new();

/// Opens the socket to the daemon, if there is one and tracing is on.
pub fn init() {
    let _ = SOCKET.get_or_init(|| {
        if std::env::var("TRACING").is_ok_and(|value| value == "off") {
            return None;
        }
        let daemon = std::env::var("AWS_XRAY_DAEMON_ADDRESS").ok()?;
        // The variable may hold "udp:host:port tcp:host:port" or "host:port".
        let address =
            daemon.split_whitespace().find_map(|part| part.strip_prefix("udp:")).unwrap_or(&daemon).to_owned();
        let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
        socket.set_nonblocking(true).ok()?;
        Some((socket, address))
    });
}

/// Sends one call as a subsegment of the current trace (when sampled).
pub fn subsegment(service: &str, operation: &str, outcome: &str, attempts: u32, started: SystemTime, took: Duration) {
    let Some(Some((socket, address))) = SOCKET.get() else { return };
    let Some(header) = crate::invocation::current_trace() else { return };
    let Some(document) = document(&header, service, operation, outcome, attempts, started, took) else { return };
    let _ = socket.send_to(format!("{{\"format\":\"json\",\"version\":1}}\n{document}").as_bytes(), address);
}

/// The subsegment document, or `None` for a trace that is not sampled.
pub fn document(
    header: &str,
    service: &str,
    operation: &str,
    outcome: &str,
    attempts: u32,
    started: SystemTime,
    took: Duration,
) -> Option<String> {
    let field = |name: &str| header.split(';').find_map(|part| part.strip_prefix(name));
    if field("Sampled=") != Some("1") {
        return None;
    }
    let (trace_id, parent_id) = (field("Root=")?, field("Parent=")?);
    let start = started.duration_since(UNIX_EPOCH).ok()?.as_secs_f64();
    let mut subsegment = serde_json::json!({
        "name": service,
        "namespace": "aws",
        "id": format!("{:016x}", rand::random::<u64>()),
        "trace_id": trace_id,
        "parent_id": parent_id,
        "type": "subsegment",
        "start_time": start,
        "end_time": start + took.as_secs_f64(),
        "aws": {"operation": operation, "retries": attempts.saturating_sub(1)},
    });
    match outcome {
        "ok" => {}
        "timeout" | "unreachable" => subsegment["fault"] = true.into(),
        _ => subsegment["error"] = true.into(),
    }
    Some(subsegment.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sampled_call_is_a_subsegment_of_the_invocation() {
        let header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
        let document = document(
            header,
            "DynamoDB",
            "GetItem",
            "ok",
            2,
            UNIX_EPOCH + Duration::from_secs(10),
            Duration::from_millis(5),
        )
        .unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&document).unwrap();
        assert_eq!(parsed["trace_id"], "1-5759e988-bd862e3fe1be46a994272793");
        assert_eq!(parsed["parent_id"], "53995c3f42cd8ad8");
        assert_eq!(parsed["aws"]["retries"], 1);
        assert!((parsed["end_time"].as_f64().unwrap() - 10.005).abs() < 1e-9);
        assert!(document_for_unsampled().is_none());
    }

    fn document_for_unsampled() -> Option<String> {
        document("Root=1-a-b;Parent=c;Sampled=0", "SQS", "SendMessage", "ok", 1, SystemTime::now(), Duration::ZERO)
    }
}
