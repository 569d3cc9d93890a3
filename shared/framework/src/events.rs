//! The CloudEvents 1.0 envelope (JSON format) every message on our queues uses.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

/// A CloudEvents 1.0 event with our `correlationid` extension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudEvent {
    /// Always `1.0`; consumers park anything else.
    pub specversion: String,
    /// The domain event's id: unique per event, so consumers deduplicate on it.
    pub id: String,
    /// Who emitted it: the application names itself (a URI) when it builds the event.
    pub source: String,
    /// The event type (`order-placed`, ...), which is also the queue's name.
    #[serde(rename = "type")]
    pub kind: String,
    /// When the domain event happened (not when it was sent), RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// Always `application/json`.
    pub datacontenttype: String,
    /// The correlation id of the request that caused the event.
    pub correlationid: String,
    /// The event's payload, whose shape the type decides.
    pub data: Value,
}

impl CloudEvent {
    /// An event of type `kind` from `source` with JSON `data`.
    pub fn new(source: &str, id: String, kind: &str, correlation_id: &str, time: OffsetDateTime, data: Value) -> Self {
        Self {
            specversion: "1.0".into(),
            id,
            source: source.into(),
            kind: kind.into(),
            time,
            datacontenttype: "application/json".into(),
            correlationid: correlation_id.into(),
            data,
        }
    }
}
