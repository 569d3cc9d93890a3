//! Throughput, latency per route, errors by status, invariants and the
//! counter hot spot, as JSON and as markdown (the load section of
//! docs/reliability.md, with `--write-docs`).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use super::checks::Invariant;
use super::client::{Phase, Sample};
use super::probe;

/// Latency of one route during the load phase.
#[derive(Debug)]
pub struct RouteStats {
    pub route: &'static str,
    pub count: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub statuses: BTreeMap<u16, u64>,
}

/// Nearest-rank percentile of sorted microseconds, in milliseconds.
fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

pub fn route_stats(samples: &[Sample]) -> Vec<RouteStats> {
    let mut by_route: BTreeMap<&'static str, (Vec<u64>, BTreeMap<u16, u64>)> = BTreeMap::new();
    for sample in samples.iter().filter(|s| s.phase == Phase::Load) {
        let entry = by_route.entry(sample.route).or_default();
        if sample.status != 0 {
            entry.0.push(sample.micros);
        }
        *entry.1.entry(sample.status).or_default() += 1;
    }
    by_route
        .into_iter()
        .map(|(route, (mut micros, statuses))| {
            micros.sort_unstable();
            RouteStats {
                route,
                count: statuses.values().sum::<u64>() as usize,
                p50_ms: percentile(&micros, 0.50),
                p95_ms: percentile(&micros, 0.95),
                p99_ms: percentile(&micros, 0.99),
                max_ms: micros.last().copied().unwrap_or_default() as f64 / 1000.0,
                statuses,
            }
        })
        .collect()
}

/// Non-2xx answers of every phase: status -> route -> count (0 = no answer).
pub fn errors_by_status(samples: &[Sample]) -> BTreeMap<u16, BTreeMap<&'static str, u64>> {
    let mut errors: BTreeMap<u16, BTreeMap<&'static str, u64>> = BTreeMap::new();
    for sample in samples.iter().filter(|s| !(200..300).contains(&s.status)) {
        *errors.entry(sample.status).or_default().entry(sample.route).or_default() += 1;
    }
    errors
}

/// One function's own time per request (from its log), over the whole run.
#[derive(Debug)]
pub struct ServiceTime {
    pub function: String,
    pub requests: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub busy_seconds: f64,
    /// Busy time over the run's duration: near 1, its one instance is saturated.
    pub busy_share: f64,
}

/// Everything a run measured and concluded.
#[derive(Debug)]
pub struct Report {
    pub settings: Value,
    pub phases: Value,
    pub requests: usize,
    pub load_requests: usize,
    pub load_seconds: f64,
    pub routes: Vec<RouteStats>,
    pub errors: BTreeMap<u16, BTreeMap<&'static str, u64>>,
    pub activity: Value,
    pub surprises: BTreeMap<String, u64>,
    pub invariants: Vec<Invariant>,
    pub hot_spot: Value,
    pub probe: Vec<probe::Row>,
    pub hot_keys: Option<super::hotkeys::HotKeys>,
    pub flash: Option<super::flash::Flash>,
    pub service: Vec<ServiceTime>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.invariants.iter().all(|invariant| invariant.passed)
    }

    pub fn throughput(&self) -> f64 {
        self.load_requests as f64 / self.load_seconds.max(0.001)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "settings": self.settings,
            "phases": self.phases,
            "requests": {
                "total": self.requests,
                "load_phase": self.load_requests,
                "load_seconds": self.load_seconds,
                "throughput_per_second": self.throughput(),
            },
            "routes": self.routes.iter().map(|r| json!({
                "route": r.route, "requests": r.count,
                "p50_ms": r.p50_ms, "p95_ms": r.p95_ms, "p99_ms": r.p99_ms, "max_ms": r.max_ms,
                "statuses": r.statuses.iter().map(|(s, n)| (s.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
            })).collect::<Vec<_>>(),
            "errors_by_status": self.errors.iter().map(|(status, routes)| (status.to_string(), json!(routes))).collect::<serde_json::Map<_, _>>(),
            "activity": self.activity,
            "function_service_times": self.service.iter().map(|f| json!({
                "function": f.function, "requests": f.requests, "p50_ms": f.p50_ms, "p95_ms": f.p95_ms,
                "busy_seconds": f.busy_seconds, "busy_share": f.busy_share,
            })).collect::<Vec<_>>(),
            "unexpected_answers": self.surprises,
            "invariants": self.invariants.iter().map(Invariant::to_json).collect::<Vec<_>>(),
            "passed": self.passed(),
            "flash_sale": self.flash.as_ref().map(super::flash::Flash::to_json),
            "counter_hot_spot": {
                "in_the_run": self.hot_spot,
                "probe": self.probe.iter().map(probe::Row::to_json).collect::<Vec<_>>(),
                "hot_keys": self.hot_keys.as_ref().map(super::hotkeys::HotKeys::to_json),
            },
        })
    }

    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let settings = &self.settings;
        md += &format!(
            "`{}` ({})\n\n",
            settings["command"].as_str().unwrap_or_default(),
            settings["date"].as_str().unwrap_or_default()
        );
        md += &format!(
            "Load run: {} s, {} customers and {} admins (each its own client address, at most {} requests a minute), {} products; {}.\n\n",
            settings["seconds"],
            settings["customers"],
            settings["admins"],
            settings["per_minute"],
            settings["products"],
            settings["stack"].as_str().unwrap_or_default()
        );
        md += "| load phase | requests | throughput | drain | checks |\n|---:|---:|---:|---:|---:|\n";
        md += &format!(
            "| {:.1} s | {} | {:.1} requests/s | {:.1} s | {:.1} s |\n\n",
            self.load_seconds,
            self.load_requests,
            self.throughput(),
            self.phases["drain_seconds"].as_f64().unwrap_or_default(),
            self.phases["check_seconds"].as_f64().unwrap_or_default(),
        );
        md += "| route | requests | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) | answers |\n|---|---:|---:|---:|---:|---:|---|\n";
        for r in &self.routes {
            let answers = r.statuses.iter().map(|(s, n)| format!("{s}: {n}")).collect::<Vec<_>>().join(", ");
            md += &format!(
                "| `{}` | {} | {:.1} | {:.1} | {:.1} | {:.1} | {answers} |\n",
                r.route, r.count, r.p50_ms, r.p95_ms, r.p99_ms, r.max_ms
            );
        }
        if !self.service.is_empty() {
            md += "\nEach function's own time per request (its `request completed` log lines, every phase); the rest of a route's latency is queueing, as `cargo lambda watch` runs one instance per function:\n\n";
            md += "| function | requests | p50 (ms) | p95 (ms) | busy (s) | busy share of the run |\n|---|---:|---:|---:|---:|---:|\n";
            for f in &self.service {
                md += &format!(
                    "| {} | {} | {:.1} | {:.1} | {:.1} | {:.0} % |\n",
                    f.function,
                    f.requests,
                    f.p50_ms,
                    f.p95_ms,
                    f.busy_seconds,
                    100.0 * f.busy_share
                );
            }
        }
        md += "\nErrors by status (every phase; 0 = no answer): ";
        if self.errors.is_empty() {
            md += "none.\n";
        } else {
            let parts: Vec<String> = self
                .errors
                .iter()
                .map(|(status, routes)| {
                    let total: u64 = routes.values().sum();
                    let detail = routes.iter().map(|(r, n)| format!("{r} {n}")).collect::<Vec<_>>().join(", ");
                    format!("**{status}**: {total} ({detail})")
                })
                .collect();
            md += &format!("{}.\n", parts.join("; "));
        }
        md += "The clients provoke some on purpose: 422 for a used Idempotency-Key with another body, 409 for cancelling an order already shipped, rejected or cancelled, 412 for an If-Match that lost a race (the client reads again and retries). ";
        if self.surprises.is_empty() {
            md += "No answer was unexpected.\n";
        } else {
            let parts: Vec<String> = self.surprises.iter().map(|(what, n)| format!("{what} x{n}")).collect();
            md += &format!("Unexpected answers: {}.\n", parts.join("; "));
        }
        md += "\n| invariant | result | numbers |\n|---|---|---|\n";
        for invariant in &self.invariants {
            md += &format!(
                "| {} | {} | {} |\n",
                invariant.name,
                if invariant.passed { "passed" } else { "**FAILED**" },
                invariant.detail.replace('|', "\\|")
            );
        }
        if let Some(flash) = &self.flash {
            md += "\n";
            md += &flash.to_markdown();
        }
        md += &format!(
            "\nCounter hot spot in the run: {} answers 503; {} transaction conflicts counted by the functions (`TransactionConflicts` metric), {} other log lines naming one.\n",
            self.hot_spot["http_503"], self.hot_spot["conflicts_counted"], self.hot_spot["conflict_lines_logged"]
        );
        if let Some(hot_keys) = &self.hot_keys {
            md += "\n";
            md += &hot_keys.to_markdown();
        }
        if !self.probe.is_empty() {
            md += "\nProbe: concurrent writers committing `POST /orders`'s transaction (order, 4 counters, outbox) on DynamoDB Local, retried as `Table::transact` does (4 attempts).\n\n";
            md += "| layout | writers | commits/s | conflicts / attempts | out of retries (503) | p50 (ms) | p99 (ms) |\n|---|---:|---:|---:|---:|---:|---:|\n";
            for row in &self.probe {
                md += &format!(
                    "| {} | {} | {:.1} | {} / {} ({:.1} %) | {} | {:.1} | {:.1} |\n",
                    row.layout,
                    row.writers,
                    row.commits as f64 / row.seconds.max(0.001),
                    row.conflicts,
                    row.attempts,
                    100.0 * row.conflicts as f64 / row.attempts.max(1) as f64,
                    row.exhausted,
                    row.p50_ms,
                    row.p99_ms
                );
            }
            if self.probe.iter().all(|row| row.conflicts == 0) {
                md += "\nNo conflict at any level: DynamoDB Local runs transactions one at a time (commits/s stay flat as writers grow, and latency grows with them), so neither it nor the local stack (one instance per function) can show the hot spot. In DynamoDB, concurrent transactions on one item conflict (`TransactionConflict`), and every order touches the global counters `orders` and `orders#status#pending` when placed, two status counters at each change.\n";
            }
        }
        md
    }

    /// Writes `results.json` and `results.md` into `dir`.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("results.json"), serde_json::to_string_pretty(&self.to_json())? + "\n")?;
        std::fs::write(dir.join("results.md"), self.to_markdown())?;
        Ok(())
    }

    /// One line per invariant, and the headline figures.
    pub fn print(&self) {
        println!(
            "xtask: load: {} requests in {:.1} s ({:.1}/s) during the load phase, {} in all",
            self.load_requests,
            self.load_seconds,
            self.throughput(),
            self.requests
        );
        for r in &self.routes {
            println!(
                "xtask: load:   {:<22} {:>6} requests  p50 {:>7.1} ms  p95 {:>7.1} ms  p99 {:>7.1} ms",
                r.route, r.count, r.p50_ms, r.p95_ms, r.p99_ms
            );
        }
        for (status, routes) in &self.errors {
            println!("xtask: load:   status {status}: {}", routes.values().sum::<u64>());
        }
        for (surprise, count) in &self.surprises {
            println!("xtask: load:   unexpected: {surprise} x{count}");
        }
        println!(
            "xtask: load:   counter hot spot: {} answers 503, {} transaction conflicts counted by the functions, {} other log lines naming one",
            self.hot_spot["http_503"], self.hot_spot["conflicts_counted"], self.hot_spot["conflict_lines_logged"]
        );
        for invariant in &self.invariants {
            println!(
                "xtask: load: invariant {}: {} ({})",
                invariant.name,
                if invariant.passed { "passed" } else { "FAILED" },
                invariant.detail
            );
        }
        let passed = self.invariants.iter().filter(|i| i.passed).count();
        println!("xtask: load invariants: {passed} passed, {} failed", self.invariants.len() - passed);
    }
}
