//! The scheduled outbox relay.

use std::time::Duration;

use platform::metrics::{self, names};
use platform::outbox::OutboxPublisher;
use serde_json::{Value, json};

/// Events younger than this are most likely being published by their own
/// handler right now; leave them to it.
const MIN_AGE: Duration = Duration::from_secs(5);
/// Records per run; a backlog drains over successive runs.
const BATCH: i32 = 100;

/// One run of the relay: publishes up to 100 outbox events older than five
/// seconds and reports how many were published, failed or left for later.
pub async fn run(publisher: &OutboxPublisher) -> anyhow::Result<Value> {
    let report = publisher.relay(MIN_AGE, BATCH).await?;
    tracing::info!(
        published = report.published,
        failed = report.failed,
        skipped = report.skipped_fresh,
        "outbox relayed"
    );
    metrics::count(names::EVENTS_RELAYED, report.published as f64);
    metrics::count(names::EVENTS_RELAY_FAILED, report.failed as f64);
    metrics::add(names::OUTBOX_AGE, report.oldest_age_seconds as f64, metrics::Unit::Seconds);
    Ok(json!({"published": report.published, "failed": report.failed, "skipped_fresh": report.skipped_fresh}))
}
