//! The CloudEvents 1.0 envelope (JSON format) every message on our queues uses.

use domain::DomainEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

pub const SOURCE: &str = "urn:shop:api";

/// A CloudEvents 1.0 event with our `correlationid` extension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudEvent {
    pub specversion: String,
    pub id: String,
    pub source: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    pub datacontenttype: String,
    pub correlationid: String,
    pub data: Value,
}

impl CloudEvent {
    pub fn new(id: String, kind: &str, correlation_id: &str, time: OffsetDateTime, data: Value) -> Self {
        Self {
            specversion: "1.0".into(),
            id,
            source: SOURCE.into(),
            kind: kind.into(),
            time,
            datacontenttype: "application/json".into(),
            correlationid: correlation_id.into(),
            data,
        }
    }

    pub fn from_domain(event: &DomainEvent) -> Self {
        let data = serde_json::to_value(&event.data).expect("event data is plain and serialises");
        Self::new(event.id.to_string(), event.kind(), &event.correlation_id, event.occurred_at, data)
    }
}
