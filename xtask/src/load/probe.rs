//! The counter hot spot, measured on its own: concurrent writers issue the
//! transaction `POST /orders` commits (the order, its four counters, its
//! outbox record), against a table of their own in the stack's DynamoDB
//! Local, with `Table::transact`'s retry policy (4 attempts, backoff from
//! 20 ms doubling). The local stack cannot show this through the API:
//! `cargo lambda watch` runs one instance per function, where Lambda would
//! run as many as there are requests in flight.
//!
//! Three layouts are compared: the global counters as built, the same
//! sharded 16 ways, and no global counters at all (totals kept by a
//! consumer or estimated).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, Put, ScalarAttributeType,
    TransactWriteItem, Update,
};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    Global,
    Sharded(u32),
    NoGlobal,
}

impl Layout {
    pub fn name(self) -> String {
        match self {
            Self::Global => "global counters (as built)".to_owned(),
            Self::Sharded(shards) => format!("global counters sharded x{shards}"),
            Self::NoGlobal => "no global counters".to_owned(),
        }
    }
}

/// One layout at one concurrency.
#[derive(Clone, Debug, Default)]
pub struct Row {
    pub layout: String,
    pub writers: usize,
    pub seconds: f64,
    pub commits: u64,
    pub attempts: u64,
    pub conflicts: u64,
    /// Writes that failed all 4 attempts on conflicts: 503s in the API.
    pub exhausted: u64,
    /// Other errors by code.
    pub other_errors: BTreeMap<String, u64>,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Row {
    pub fn to_json(&self) -> Value {
        json!({
            "layout": self.layout, "writers": self.writers, "seconds": self.seconds,
            "commits": self.commits, "commits_per_second": self.commits as f64 / self.seconds.max(0.001),
            "attempts": self.attempts, "conflicts": self.conflicts,
            "conflicts_per_attempt": self.conflicts as f64 / (self.attempts.max(1)) as f64,
            "exhausted_retries": self.exhausted, "other_errors": self.other_errors,
            "p50_ms": self.p50_ms, "p99_ms": self.p99_ms,
        })
    }
}

fn s(text: impl Into<String>) -> AttributeValue {
    AttributeValue::S(text.into())
}

fn add(table: &str, counter: &str) -> TransactWriteItem {
    let update = Update::builder()
        .table_name(table)
        .key("pk", s(format!("COUNTER#{counter}")))
        .key("sk", s("COUNTER"))
        .update_expression("ADD #total :one")
        .expression_attribute_names("#total", "total")
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .build()
        .expect("table, key and expression are set");
    TransactWriteItem::builder().update(update).build()
}

fn put(table: &str, pk: String, body: &str) -> TransactWriteItem {
    let put = Put::builder()
        .table_name(table)
        .item("pk", s(pk))
        .item("sk", s("ITEM"))
        .item("body", s(body))
        .condition_expression("attribute_not_exists(pk)")
        .build()
        .expect("table and item are set");
    TransactWriteItem::builder().put(put).build()
}

/// The items of one order placement under `layout`.
fn placement(table: &str, layout: Layout, rng: &mut impl Rng) -> Vec<TransactWriteItem> {
    let order = ulid::Ulid::new().to_string();
    let owner = rng.random_range(0..1000);
    let body = "x".repeat(400);
    let mut items = vec![
        put(table, format!("ORDER#{order}"), &body),
        add(table, &format!("orders#owner#{owner}")),
        add(table, &format!("orders#owner#{owner}#status#pending")),
        put(table, format!("OUTBOX#{order}"), &body),
    ];
    match layout {
        Layout::Global => {
            items.push(add(table, "orders"));
            items.push(add(table, "orders#status#pending"));
        }
        Layout::Sharded(shards) => {
            let shard = rng.random_range(0..shards);
            items.push(add(table, &format!("orders#{shard}")));
            items.push(add(table, &format!("orders#status#pending#{shard}")));
        }
        Layout::NoGlobal => {}
    }
    items
}

enum Outcome {
    Committed,
    Conflict,
    Other(String),
}

async fn attempt(client: &aws_sdk_dynamodb::Client, items: &[TransactWriteItem]) -> Outcome {
    match client.transact_write_items().set_transact_items(Some(items.to_vec())).send().await {
        Ok(_) => Outcome::Committed,
        Err(SdkError::ServiceError(service)) => match service.err() {
            TransactWriteItemsError::TransactionCanceledException(cancelled)
                if cancelled.cancellation_reasons().iter().any(|r| r.code() == Some("TransactionConflict")) =>
            {
                Outcome::Conflict
            }
            TransactWriteItemsError::TransactionInProgressException(_) => Outcome::Conflict,
            other => Outcome::Other(
                aws_sdk_dynamodb::error::ProvideErrorMetadata::code(other).unwrap_or("unknown").to_owned(),
            ),
        },
        Err(error) => Outcome::Other(format!("{error}")),
    }
}

/// Creates the probe's own table (same keys as the shop's).
async fn create_table(client: &aws_sdk_dynamodb::Client, table: &str) -> anyhow::Result<()> {
    let _ = client.delete_table().table_name(table).send().await;
    let key = |name: &str, kind| KeySchemaElement::builder().attribute_name(name).key_type(kind).build();
    let attribute =
        |name: &str| AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build();
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .attribute_definitions(attribute("pk")?)
        .attribute_definitions(attribute("sk")?)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
    Ok(())
}

/// Runs every layout at every concurrency in `writers`, `seconds` each.
pub async fn run(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    writers: &[usize],
    seconds: u64,
) -> anyhow::Result<Vec<Row>> {
    create_table(client, table).await?;
    let mut rows = Vec::new();
    for layout in [Layout::Global, Layout::Sharded(16), Layout::NoGlobal] {
        for &count in writers {
            let row = level(client, table, layout, count, Duration::from_secs(seconds)).await;
            eprintln!(
                "xtask: load: probe {:<34} {count:>3} writers: {:>7.1} commits/s, {:>5.1} % of attempts conflicted, {} writes out of retries",
                row.layout,
                row.commits as f64 / row.seconds,
                100.0 * row.conflicts as f64 / row.attempts.max(1) as f64,
                row.exhausted
            );
            rows.push(row);
        }
    }
    let _ = client.delete_table().table_name(table).send().await;
    Ok(rows)
}

async fn level(client: &aws_sdk_dynamodb::Client, table: &str, layout: Layout, count: usize, span: Duration) -> Row {
    let end = Instant::now() + span;
    let table: Arc<str> = Arc::from(table);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for writer in 0..count {
        let (client, table) = (client.clone(), table.clone());
        tasks.spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(writer as u64);
            let mut row = Row::default();
            let mut latencies = Vec::new();
            while Instant::now() < end {
                let items = placement(&table, layout, &mut rng);
                let began = Instant::now();
                let mut backoff = Duration::from_millis(20);
                for attempt_number in 1..=4 {
                    row.attempts += 1;
                    match attempt(&client, &items).await {
                        Outcome::Committed => {
                            row.commits += 1;
                            latencies.push(began.elapsed().as_secs_f64() * 1000.0);
                            break;
                        }
                        Outcome::Conflict => {
                            row.conflicts += 1;
                            if attempt_number == 4 {
                                row.exhausted += 1;
                            } else {
                                tokio::time::sleep(backoff).await;
                                backoff *= 2;
                            }
                        }
                        Outcome::Other(code) => {
                            *row.other_errors.entry(code).or_default() += 1;
                            break;
                        }
                    }
                }
            }
            (row, latencies)
        });
    }
    let mut total = Row { layout: layout.name(), writers: count, ..Row::default() };
    let mut latencies = Vec::new();
    while let Some(Ok((row, mut times))) = tasks.join_next().await {
        total.commits += row.commits;
        total.attempts += row.attempts;
        total.conflicts += row.conflicts;
        total.exhausted += row.exhausted;
        for (code, n) in row.other_errors {
            *total.other_errors.entry(code).or_default() += n;
        }
        latencies.append(&mut times);
    }
    total.seconds = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        latencies.get(((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0.0)
    };
    total.p50_ms = pick(0.50);
    total.p99_ms = pick(0.99);
    total
}
