//! The hot-key report: the write units each partition key took during the
//! load phase (from the functions' own record of their writes, see
//! `adapters::recorder::writes`), scaled to a target order rate and set against
//! DynamoDB's per-partition limit of 1,000 write units a second.
//!
//! Scaling: a partition shared by every order (a shard, a counter of all
//! orders) and a product's stock item (all orders may want one product)
//! take their units per order placed times the target rate; a partition of
//! one entity (an order, an account, a client) keeps the rate it had, since
//! more orders a second means more customers, not busier ones.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

/// DynamoDB's write limit of one partition, in write units a second.
pub const PARTITION_LIMIT: f64 = 1000.0;

/// The busiest partition key of one class on one target (the table or an index).
#[derive(Debug, Clone)]
pub struct Row {
    pub target: String,
    pub class: String,
    pub partition: String,
    pub units: u64,
    pub observed_per_second: f64,
    pub at_target_per_second: f64,
    /// Shared keys: the same writes on one unsharded key (what the layout
    /// before the shards wrote), at the target rate.
    pub unsharded_at_target: Option<f64>,
}

impl Row {
    /// Over the limit at the target, and not a product's stock (bounded and documented apart).
    pub fn over(&self) -> bool {
        self.class != "stock" && self.at_target_per_second > PARTITION_LIMIT
    }
}

/// The report of one run.
#[derive(Debug, Clone, Default)]
pub struct HotKeys {
    pub target_orders_per_second: f64,
    pub orders_placed: u64,
    pub writes: u64,
    pub rows: Vec<Row>,
}

impl HotKeys {
    /// Reads `file` (lines `ms function operation target partition units class`)
    /// for writes from `from_ms` to `to_ms`.
    pub fn read(
        file: &Path,
        from_ms: u128,
        to_ms: u128,
        load_seconds: f64,
        orders_placed: u64,
        target: f64,
    ) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let mut per_key: BTreeMap<(String, String, String), u64> = BTreeMap::new();
        let mut writes = 0;
        for line in text.lines() {
            let fields: Vec<&str> = line.split('\t').collect();
            let [ms, _function, _operation, target, partition, units, class] = fields[..] else { continue };
            let (Ok(ms), Ok(units)) = (ms.parse::<u128>(), units.parse::<u64>()) else { continue };
            if ms < from_ms || ms > to_ms {
                continue;
            }
            writes += 1;
            *per_key.entry((target.to_owned(), class.to_owned(), partition.to_owned())).or_default() += units;
        }
        Ok(Self::from_units(&per_key, writes, load_seconds, orders_placed, target))
    }

    fn from_units(
        per_key: &BTreeMap<(String, String, String), u64>,
        writes: u64,
        load_seconds: f64,
        orders_placed: u64,
        target: f64,
    ) -> Self {
        let per_order = |units: u64| units as f64 / orders_placed.max(1) as f64 * target;
        // Keys written per sign-up (the users' counter and listing) or per
        // catalogue change (the products' counters) grow with those, not
        // with orders: reported at the rate they had.
        let registration = |partition: &str| {
            matches!(partition, "COUNTER#users" | "USERS" | "COUNTER#products#active" | "COUNTER#products#inactive")
        };
        // The families of shards: a shard's name without its `#NN` suffix.
        let mut families: BTreeMap<(String, String), u64> = BTreeMap::new();
        for ((target, class, partition), units) in per_key {
            if class == "shared" {
                *families.entry((target.clone(), family(partition).to_owned())).or_default() += units;
            }
        }
        let mut busiest: BTreeMap<(String, String), Row> = BTreeMap::new();
        let shards = f64::from(adapters::dynamo::ORDER_SHARDS);
        for ((target, class, partition), units) in per_key {
            let class = &if registration(partition) { "registration".to_owned() } else { class.clone() };
            let family_units = families.get(&(target.clone(), family(partition).to_owned())).copied();
            // A shard's expected rate is its family's over the shard count:
            // a short run puts a handful of orders in each of 64 shards, so
            // the busiest shard observed says more about chance than layout.
            let at_target = match (class.as_str(), family_units) {
                ("entity" | "registration", _) => *units as f64 / load_seconds.max(0.001),
                ("shared", Some(family_units)) if family(partition) != partition => per_order(family_units) / shards,
                _ => per_order(*units),
            };
            let row = Row {
                target: target.clone(),
                class: class.clone(),
                partition: partition.clone(),
                units: *units,
                observed_per_second: *units as f64 / load_seconds.max(0.001),
                at_target_per_second: at_target,
                unsharded_at_target: if class == "shared" { family_units.map(per_order) } else { None },
            };
            let slot = busiest.entry((target.clone(), class.clone())).or_insert_with(|| row.clone());
            if row.at_target_per_second > slot.at_target_per_second {
                *slot = row;
            }
        }
        let mut rows: Vec<Row> = busiest.into_values().collect();
        rows.sort_by(|a, b| (target_order(&a.target), &a.class).cmp(&(target_order(&b.target), &b.class)));
        Self { target_orders_per_second: target, orders_placed, writes, rows }
    }

    /// Whether every key but a product's stock stays under the limit at the target.
    pub fn passed(&self) -> bool {
        self.writes > 0 && !self.rows.iter().any(Row::over)
    }

    /// What the invariant says.
    pub fn detail(&self) -> String {
        if self.writes == 0 {
            return "no writes recorded (SHOP_RECORD_AWS_CALLS unset?)".into();
        }
        let over: Vec<String> = self
            .rows
            .iter()
            .filter(|row| row.over())
            .map(|row| format!("{} {} at {:.0} WCU/s", row.target, row.partition, row.at_target_per_second))
            .collect();
        let busiest = self
            .rows
            .iter()
            .filter(|row| row.class != "stock")
            .max_by(|a, b| a.at_target_per_second.total_cmp(&b.at_target_per_second));
        match (over.is_empty(), busiest) {
            (true, Some(row)) => format!(
                "busiest {} {} at {:.0} WCU/s of {PARTITION_LIMIT:.0}",
                row.target, row.partition, row.at_target_per_second
            ),
            (true, None) => "no key".into(),
            (false, _) => over.join("; "),
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "target_orders_per_second": self.target_orders_per_second,
            "orders_placed": self.orders_placed,
            "writes": self.writes,
            "partition_limit_wcu_per_second": PARTITION_LIMIT,
            "busiest": self.rows.iter().map(|row| json!({
                "target": row.target, "class": row.class, "partition": row.partition, "units": row.units,
                "observed_wcu_per_second": row.observed_per_second,
                "at_target_wcu_per_second": row.at_target_per_second,
                "unsharded_at_target_wcu_per_second": row.unsharded_at_target,
            })).collect::<Vec<_>>(),
        })
    }

    pub fn to_markdown(&self) -> String {
        let mut md = format!(
            "Hot keys: the busiest partition key of the table and of each index, by class, from {} writes during \
             the load phase ({} orders placed), scaled to {:.0} orders a second (shared and stock keys: units per \
             order times the rate, a shard its family's over the shard count; an entity's keys and registration's \
             (the users' counter and listing, written per sign-up): the rate they had). DynamoDB's limit is {PARTITION_LIMIT:.0} \
             write units a second per partition; only a product's stock may pass it (its bound is in \
             docs/architecture.md). \"unsharded\": the same writes on one key, as before the shards.\n\n",
            self.writes, self.orders_placed, self.target_orders_per_second
        );
        md += "| target | class | busiest key | WCU in run | WCU/s in run | WCU/s at target | unsharded at target | under limit |\n";
        md += "|---|---|---|---:|---:|---:|---:|---|\n";
        for row in &self.rows {
            md += &format!(
                "| {} | {} | `{}` | {} | {:.1} | {:.0} | {} | {} |\n",
                row.target,
                row.class,
                row.partition,
                row.units,
                row.observed_per_second,
                row.at_target_per_second,
                row.unsharded_at_target.map_or_else(|| "-".to_owned(), |units| format!("{units:.0}")),
                if row.at_target_per_second <= PARTITION_LIMIT {
                    "yes"
                } else if row.class == "stock" {
                    "no (one product's stock)"
                } else {
                    "**no**"
                },
            );
        }
        md + "\n"
    }
}

/// A shard's family: `ORDERS#STATUS#pending#07` -> `ORDERS#STATUS#pending`.
fn family(partition: &str) -> &str {
    match partition.rsplit_once('#') {
        Some((family, shard)) if shard.len() == 2 && shard.bytes().all(|b| b.is_ascii_digit()) => family,
        _ => partition,
    }
}

fn target_order(target: &str) -> (u8, &str) {
    (u8::from(target != "table"), target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_keys_scale_with_the_order_rate_and_entities_keep_theirs() {
        let units = BTreeMap::from([
            (("table".into(), "shared".into(), "COUNTER#orders".into()), 20),
            (("table".into(), "entity".into(), "HOLDINGS#u".into()), 60),
            (("table".into(), "stock".into(), "PRODUCT#p".into()), 400),
        ]);
        let report = HotKeys::from_units(&units, 100, 60.0, 200, 10_000.0);
        let row = |class: &str| report.rows.iter().find(|r| r.class == class).unwrap().clone();
        let near = |a: f64, b: f64| (a - b).abs() < 1e-6;
        assert!(near(row("shared").at_target_per_second, 1000.0), "20 units over 200 orders, times 10,000");
        assert_eq!(row("shared").unsharded_at_target, Some(1000.0));
        assert!(near(row("entity").at_target_per_second, 1.0), "60 units over 60 s");
        assert!(near(row("stock").at_target_per_second, 20_000.0));
        assert!(report.passed(), "the stock item is not held to the limit: {}", report.detail());
        let hot = BTreeMap::from([(("gsi4".into(), "shared".into(), "ORDERS".into()), 41)]);
        assert!(!HotKeys::from_units(&hot, 1, 60.0, 200, 10_000.0).passed());
        assert_eq!(family("ORDERS#STATUS#pending#07"), "ORDERS#STATUS#pending");
        assert_eq!(family("ORDERS#OWNER#01J9Z3NDEKTSV4RRFFQ69G5FAV"), "ORDERS#OWNER#01J9Z3NDEKTSV4RRFFQ69G5FAV");
    }
}
