//! The scheduled outbox relay.

use std::time::Duration;

use adapters::outbox::OutboxPublisher;
use framework::metrics::{self, names};
use serde_json::{Value, json};

/// Events younger than this are most likely being published by their own
/// handler right now; leave them to it.
const MIN_AGE: Duration = Duration::from_secs(5);

/// One run of the relay: publishes the outbox events older than five
/// seconds, round after round while a backlog remains, within `budget`
/// (half the function's timeout: a batch under way finishes before the
/// timeout, what is left waits for the next run); reports how many were
/// published, failed, parked or left for later.
pub async fn run(publisher: &OutboxPublisher, budget: Duration) -> anyhow::Result<Value> {
    let report = publisher.relay(MIN_AGE, budget).await?;
    tracing::info!(
        published = report.published,
        failed = report.failed,
        parked = report.parked,
        skipped = report.skipped_fresh,
        rounds = report.rounds,
        "outbox relayed"
    );
    metrics::count(names::EVENTS_RELAYED, report.published as f64);
    metrics::count(names::EVENTS_RELAY_FAILED, report.failed as f64);
    metrics::count(names::EVENTS_PARKED, report.parked as f64);
    metrics::count(names::RECORDS_FAILED, (report.failed + report.parked) as f64);
    metrics::add(names::OUTBOX_AGE, report.oldest_age_seconds as f64, metrics::Unit::Seconds);
    Ok(json!({
        "published": report.published,
        "failed": report.failed,
        "parked": report.parked,
        "skipped_fresh": report.skipped_fresh,
        "rounds": report.rounds,
    }))
}
