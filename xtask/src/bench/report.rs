//! Statistics over cold starts, the performance targets, and the three outputs:
//! the markdown table, the results JSON and the chart's input.

use std::time::Duration;

use serde_json::{Value, json};

use super::emulator::Run;
use super::syscalls::PerRequest;
use crate::profiles::Profile;

/// One implementation's cold starts summarised.
#[derive(Debug, Clone)]
pub struct Summary {
    pub cold_starts: usize,
    pub warm_samples: usize,
    /// Medians over cold starts.
    pub init_ms: f64,
    pub first_ms: f64,
    /// Median over cold starts of init + first request.
    pub cold_total_ms: f64,
    /// Over every warm request of every cold start.
    pub warm_p50_ms: f64,
    pub warm_p99_ms: f64,
    /// CPU time per warm request, in microseconds: the process's CPU over
    /// every cold start's warm requests, divided by their number (NaN when
    /// it could not be read).
    pub warm_cpu_us: f64,
    /// Highest over cold starts.
    pub peak_mb: f64,
    /// Every distinct response status, in order of first appearance.
    pub statuses: Vec<u16>,
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    if values.is_empty() { f64::NAN } else { values[values.len() / 2] }
}

/// Nearest-rank percentile.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Summary {
    pub fn of(runs: &[Run]) -> Self {
        let mut warm: Vec<f64> = runs.iter().flat_map(|r| r.warm.iter().copied().map(ms)).collect();
        warm.sort_by(f64::total_cmp);
        let mut statuses = Vec::new();
        for status in runs.iter().flat_map(|r| r.statuses.iter().flatten()) {
            if !statuses.contains(status) {
                statuses.push(*status);
            }
        }
        Self {
            cold_starts: runs.len(),
            warm_samples: warm.len(),
            init_ms: median(runs.iter().map(|r| ms(r.init)).collect()),
            first_ms: median(runs.iter().map(|r| ms(r.first)).collect()),
            cold_total_ms: median(runs.iter().map(|r| ms(r.init + r.first)).collect()),
            warm_p50_ms: percentile(&warm, 50.0),
            warm_p99_ms: percentile(&warm, 99.0),
            warm_cpu_us: warm_cpu_us(runs),
            peak_mb: runs.iter().map(|r| r.peak_kb).max().unwrap_or(0) as f64 / 1024.0,
            statuses,
        }
    }

    pub fn status_text(&self) -> String {
        if self.statuses.is_empty() {
            "-".into()
        } else {
            self.statuses.iter().map(u16::to_string).collect::<Vec<_>>().join("/")
        }
    }

    pub fn json(&self) -> Value {
        json!({
            "cold_starts": self.cold_starts,
            "warm_samples": self.warm_samples,
            "init_ms": round(self.init_ms),
            "first_ms": round(self.first_ms),
            "cold_total_ms": round(self.cold_total_ms),
            "warm_p50_ms": round(self.warm_p50_ms),
            "warm_p99_ms": round(self.warm_p99_ms),
            "warm_cpu_us": round(self.warm_cpu_us),
            "peak_rss_mb": round(self.peak_mb),
            "statuses": self.statuses,
        })
    }
}

/// The mean CPU time of a warm request over `runs`, in microseconds; NaN
/// when a run's could not be read or there were no warm requests.
fn warm_cpu_us(runs: &[Run]) -> f64 {
    let requests: usize = runs.iter().map(|r| r.warm.len()).sum();
    let cpu: Option<Duration> = runs.iter().map(|r| r.warm_cpu).sum();
    match cpu {
        Some(cpu) if requests > 0 => cpu.as_secs_f64() * 1e6 / requests as f64,
        _ => f64::NAN,
    }
}

fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// One route measured in the same run: the project under each profile (the
/// deployed one first), its floor and its Python peer.
pub struct RouteResult {
    pub function: String,
    pub method: &'static str,
    pub path: &'static str,
    pub write: bool,
    /// (profile, summary), the profile staging and prod deploy first.
    pub projects: Vec<(String, Summary)>,
    pub floor: Summary,
    pub python: Summary,
}

/// One performance target: a ratio and its bound.
pub struct Check {
    pub name: &'static str,
    pub ratio: f64,
    /// `Some(bound)`: the ratio must be at most this; `None`: reported only.
    pub at_most: Option<f64>,
    /// `Some(bound)`: the ratio must be at least this.
    pub at_least: Option<f64>,
}

impl Check {
    pub fn met(&self) -> Option<bool> {
        match (self.at_most, self.at_least) {
            (Some(max), _) => Some(self.ratio <= max),
            (_, Some(min)) => Some(self.ratio >= min),
            _ => None,
        }
    }

    fn cell(&self) -> String {
        let verdict = match self.met() {
            Some(true) => " (met)",
            Some(false) => " (**missed**)",
            None => "",
        };
        format!("{:.2}x{verdict}", self.ratio)
    }
}

/// The targets, held by the profile staging and prod deploy (the first one
/// measured); the other profiles' ratios are reported beside them.
pub const TARGETS: &str = "warm p50 <= 1.1x the floor; warm p50 <= 0.6x the Python peer's and cold total >= 20x \
    below it on read routes; cold total <= 1.0x the floor; first request <= 2x a warm one";

impl RouteResult {
    /// The ratios the performance targets are stated in, for the project
    /// built with `profile`; with bounds only if `held`.
    pub fn checks(&self, project: &Summary, held: bool) -> Vec<Check> {
        let (p, f, py) = (project, &self.floor, &self.python);
        let bound = |value: f64| held.then_some(value);
        let read_bound = |value: f64| (held && !self.write).then_some(value);
        vec![
            Check {
                name: "warm_p50_project_over_floor",
                ratio: p.warm_p50_ms / f.warm_p50_ms,
                at_most: bound(1.1),
                at_least: None,
            },
            Check {
                name: "warm_p50_project_over_python",
                ratio: p.warm_p50_ms / py.warm_p50_ms,
                // Stated for read routes only; a write route is held to its floor.
                at_most: read_bound(0.6),
                at_least: None,
            },
            Check {
                name: "cold_total_project_over_floor",
                ratio: p.cold_total_ms / f.cold_total_ms,
                at_most: bound(1.0),
                at_least: None,
            },
            Check {
                name: "cold_total_python_over_project",
                ratio: py.cold_total_ms / p.cold_total_ms,
                at_most: None,
                // Read routes: a write's first TransactWriteItems is slow on DynamoDB Local for everyone.
                at_least: read_bound(20.0),
            },
            Check {
                name: "first_over_warm_p50_project",
                ratio: p.first_ms / p.warm_p50_ms,
                at_most: bound(2.0),
                at_least: None,
            },
        ]
    }

    pub fn json(&self) -> Value {
        let ratios = |project: &Summary, held: bool| -> serde_json::Map<String, Value> {
            self.checks(project, held)
                .iter()
                .map(|c| {
                    let bound = match (c.at_most, c.at_least) {
                        (Some(max), _) => json!({"at_most": max}),
                        (_, Some(min)) => json!({"at_least": min}),
                        _ => json!(null),
                    };
                    (c.name.to_owned(), json!({"ratio": round(c.ratio), "target": bound, "met": c.met()}))
                })
                .collect()
        };
        let mut implementations = serde_json::Map::new();
        let mut by_profile = serde_json::Map::new();
        for (index, (profile, summary)) in self.projects.iter().enumerate() {
            implementations.insert(format!("project-{profile}"), summary.json());
            by_profile.insert(profile.clone(), Value::Object(ratios(summary, index == 0)));
        }
        implementations.insert("floor".into(), self.floor.json());
        implementations.insert("python".into(), self.python.json());
        json!({
            "route": format!("{} {}", self.method, self.path),
            "function": self.function,
            "kind": if self.write { "write" } else { "read" },
            "implementations": implementations,
            "ratios": by_profile,
        })
    }
}

/// One project function on its own (the full table).
pub struct FunctionResult {
    pub function: String,
    pub summary: Summary,
}

pub struct Report {
    /// Every function's table.
    pub function_profile: Profile,
    /// The project's profiles on the routes, the deployed one first.
    pub route_profiles: Vec<Profile>,
    /// The floor's and the hello-world baseline's.
    pub floor_profile: Profile,
    /// How long each profile's build took in this run (nothing when it was done).
    pub build_times: Vec<String>,
    /// With `--syscalls`: (route's function, implementation, calls per warm request).
    pub syscalls: Vec<(String, String, PerRequest)>,
    pub runs: usize,
    pub warm: usize,
    pub overhead_us: Option<String>,
    pub hello: Summary,
    pub routes: Vec<RouteResult>,
    pub functions: Vec<FunctionResult>,
    pub elapsed: Duration,
}

impl Report {
    pub fn json(&self) -> Value {
        json!({
            "generated_by": "cargo xtask bench",
            "unix_time": time::OffsetDateTime::now_utc().unix_timestamp(),
            "profiles": {
                "functions": self.function_profile.name,
                "routes": self.route_profiles.iter().map(|p| p.name.clone()).collect::<Vec<_>>(),
                "floor_and_hello_world": self.floor_profile.name,
            },
            // The chart's bars, in order: (key in each route's implementations, label).
            "implementations": self.route_profiles.iter()
                .map(|p| json!([format!("project-{}", p.name), format!("project ({})", p.name)]))
                .chain([json!(["floor", format!("Rust floor ({})", self.floor_profile.name)]), json!(["python", "Python peer"])])
                .collect::<Vec<_>>(),
            "cpus": std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
            "cold_starts_per_implementation": self.runs,
            "warm_requests_per_cold_start": self.warm,
            "elapsed_seconds": self.elapsed.as_secs(),
            "http_layer_overhead_us": self.overhead_us.as_deref().and_then(|v| v.parse::<f64>().ok()),
            "hello_world": self.hello.json(),
            "syscalls_per_warm_request": self.syscalls.iter().map(|(function, implementation, c)| json!({
                "function": function,
                "implementation": implementation,
                "eventfd_writes": round(c.eventfd_writes),
                "other_writes": round(c.other_writes),
                "writev": round(c.writev),
                "sendto": round(c.sendto),
                "recvfrom": round(c.recvfrom),
                "epoll_wait": round(c.epoll_wait),
            })).collect::<Vec<_>>(),
            "routes": self.routes.iter().map(RouteResult::json).collect::<Vec<_>>(),
            "functions": self.functions.iter().map(|f| {
                let mut value = f.summary.json();
                value["function"] = f.function.clone().into();
                value
            }).collect::<Vec<_>>(),
        })
    }

    pub fn markdown(&self) -> String {
        // Routes whose first request varies more on the local cloud get more cold starts.
        let more: Vec<String> = self
            .routes
            .iter()
            .filter(|route| route.floor.cold_starts != self.runs)
            .map(|route| format!("`{} {}`: {} cold starts", route.method, route.path, route.floor.cold_starts))
            .collect();
        let more = if more.is_empty() {
            String::new()
        } else {
            format!(
                " ({}: its first request's time on the local cloud varies, cold start to cold start, by more than \
                 the gaps the cold targets judge)",
                more.join(", ")
            )
        };
        let mut out = format!(
            "Measured by `cargo xtask bench` on this machine ({} cores; local cloud on loopback). \
             Each implementation: {} cold starts x {} warm requests{more}, interleaved; init, first and cold total \
             are medians over cold starts, warm p50/p99 over all warm requests; CPU per warm request is the process's \
             CPU time (its threads' scheduler accounts, read while it waits for an event) from its first warm \
             request's cycle to its last, divided by their number; peak RSS is the highest VmHWM.\n\n",
            std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
            self.runs,
            self.warm,
        );
        out.push_str("Profiles (root `Cargo.toml`), each binary built with the one named beside it:\n\n");
        let mut described: Vec<&Profile> = Vec::new();
        for profile in self.route_profiles.iter().chain([&self.floor_profile, &self.function_profile]) {
            if !described.iter().any(|p| p.name == profile.name) {
                described.push(profile);
            }
        }
        for profile in described {
            let mut uses = Vec::new();
            if self.route_profiles.first().is_some_and(|p| p.name == profile.name) && !self.routes.is_empty() {
                uses.push("the project on the routes below, held to the targets");
            } else if self.route_profiles.iter().any(|p| p.name == profile.name) && !self.routes.is_empty() {
                uses.push("the project on the routes below, for comparison");
            }
            if profile.name == self.floor_profile.name {
                uses.push("the Rust floor and the hello-world baseline");
            }
            if profile.name == self.function_profile.name {
                uses.push("every function's table");
            }
            out.push_str(&format!("- {}: {}.\n", profile.describe(), uses.join("; ")));
        }
        if !self.build_times.is_empty() {
            out.push_str(&format!(
                "\nBuilds in this run (with what the target folder held): {}.\n",
                self.build_times.join(", ")
            ));
        }
        out.push('\n');
        if let Some(overhead) = &self.overhead_us {
            out.push_str(&format!(
                "HTTP layer overhead without I/O (token check, strict JSON, envelope, headers, log line, EMF): **{overhead} µs** per request.\n\n"
            ));
        }
        if !self.routes.is_empty() {
            out.push_str(
                "### Project vs Rust floor vs Python peer (same run, same local cloud, same seeded event)\n\n\
                 | route | implementation | init (ms) | first (ms) | cold total (ms) | warm p50 (ms) | warm p99 (ms) | CPU per warm request (µs) | peak RSS (MB) | status |\n\
                 |---|---|---:|---:|---:|---:|---:|---:|---:|---|\n",
            );
            for route in &self.routes {
                let rows = route.projects.iter().map(|(profile, s)| (format!("project, `{profile}`"), s)).chain([
                    (format!("Rust floor, `{}`", self.floor_profile.name), &route.floor),
                    ("Python peer".to_owned(), &route.python),
                ]);
                for (name, s) in rows {
                    out.push_str(&format!(
                        "| `{} {}` | {name} | {:.1} | {:.2} | {:.1} | {:.2} | {:.2} | {:.0} | {:.1} | {} |\n",
                        route.method,
                        route.path,
                        s.init_ms,
                        s.first_ms,
                        s.cold_total_ms,
                        s.warm_p50_ms,
                        s.warm_p99_ms,
                        s.warm_cpu_us,
                        s.peak_mb,
                        s.status_text()
                    ));
                }
            }
            out.push_str(&format!(
                "\n### Ratios against the performance targets\n\n\
                 Held by the `{}` profile{}; the other profile's ratios are reported beside them. \
                 Targets: {TARGETS}.\n\n\
                 | route | project profile | warm p50 project / floor (<= 1.1x) | warm p50 project / Python (<= 0.6x, read routes) | \
                 cold total project / floor (<= 1.0x) | cold total Python / project (>= 20x, read routes) | first / warm p50, project (<= 2x) |\n\
                 |---|---|---:|---:|---:|---:|---:|\n",
                self.route_profiles.first().map_or("-", |p| p.name.as_str()),
                if self.route_profiles.first().is_some_and(|p| p.name == crate::profiles::PRODUCTION) {
                    " (what staging and prod deploy)"
                } else {
                    ""
                },
            ));
            for route in &self.routes {
                for (index, (profile, summary)) in route.projects.iter().enumerate() {
                    let cells: Vec<String> = route.checks(summary, index == 0).iter().map(Check::cell).collect();
                    out.push_str(&format!("| {} | `{profile}` | {} |\n", route.function, cells.join(" | ")));
                }
            }
            out.push_str(
                "\n### Warm time and CPU time above the floor\n\n\
                 Per warm request, the project's warm p50 minus the floor's, beside its CPU time per warm request \
                 minus the floor's (the process's own CPU over whole request cycles, the work after each answer \
                 included). A CPU difference close to the time difference points at work in the project's \
                 process rather than a longer wait on the local cloud; one much smaller, at waiting.\n\n\
                 | route | project profile | warm p50 above the floor (µs) | CPU per warm request above the floor (µs) |\n\
                 |---|---|---:|---:|\n",
            );
            for route in &self.routes {
                for (profile, summary) in &route.projects {
                    out.push_str(&format!(
                        "| {} | `{profile}` | {:+.0} | {:+.0} |\n",
                        route.function,
                        (summary.warm_p50_ms - route.floor.warm_p50_ms) * 1000.0,
                        summary.warm_cpu_us - route.floor.warm_cpu_us,
                    ));
                }
            }
            out.push('\n');
        }
        if !self.syscalls.is_empty() {
            out.push_str(
                "### System calls per warm request (`--syscalls`: strace -f, the difference between cold starts of \
                 20 and 220 warm requests, divided by 200)\n\n\
                 | route | implementation | write to an eventfd (wake-ups) | other write | writev | sendto | recvfrom | epoll_wait |\n\
                 |---|---|---:|---:|---:|---:|---:|---:|\n",
            );
            for (function, implementation, c) in &self.syscalls {
                out.push_str(&format!(
                    "| {function} | {implementation} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |\n",
                    c.eventfd_writes, c.other_writes, c.writev, c.sendto, c.recvfrom, c.epoll_wait
                ));
            }
            out.push('\n');
        }
        out.push_str(&format!(
            "### Every function (project, `{}` profile; hello-world `{}`)\n\n\
             | function | init (ms) | init vs hello-world | first request (ms) | warm p50 (ms) | warm p99 (ms) | first / warm p50 | peak memory (MB) | status |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---|\n\
             | hello-world (baseline) | {:.1} | 1.00x | {:.2} | {:.2} | {:.2} | - | {:.1} | - |\n",
            self.function_profile.name,
            self.floor_profile.name,
            self.hello.init_ms,
            self.hello.first_ms,
            self.hello.warm_p50_ms,
            self.hello.warm_p99_ms,
            self.hello.peak_mb,
        ));
        for f in &self.functions {
            let s = &f.summary;
            out.push_str(&format!(
                "| {} | {:.1} | {:.2}x | {:.2} | {:.2} | {:.2} | {:.1}x | {:.1} | {} |\n",
                f.function,
                s.init_ms,
                s.init_ms / self.hello.init_ms,
                s.first_ms,
                s.warm_p50_ms,
                s.warm_p99_ms,
                s.first_ms / s.warm_p50_ms.max(1e-9),
                s.peak_mb,
                s.status_text(),
            ));
        }
        out.push_str(&format!("\nThe whole run took {:.0?}.\n", self.elapsed));
        out
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // The summaries are exact medians of whole numbers.
mod tests {
    use super::*;

    fn run(init: u64, first: u64, warm: &[u64]) -> Run {
        Run {
            init: Duration::from_millis(init),
            first: Duration::from_millis(first),
            warm: warm.iter().map(|&w| Duration::from_millis(w)).collect(),
            peak_kb: 2048,
            warm_cpu: Some(Duration::from_micros(300 * warm.len() as u64)),
            statuses: vec![Some(200); warm.len() + 1],
        }
    }

    #[test]
    fn summarises_medians_and_pooled_percentiles() {
        let warm: Vec<u64> = (1..=100).collect();
        let summary = Summary::of(&[run(10, 5, &warm[..50]), run(30, 7, &warm[50..]), run(20, 6, &[])]);
        assert_eq!(summary.init_ms, 20.0);
        assert_eq!(summary.first_ms, 6.0);
        assert_eq!(summary.cold_total_ms, 26.0);
        assert_eq!(summary.warm_p50_ms, 50.0);
        assert_eq!(summary.warm_p99_ms, 99.0);
        assert_eq!(summary.peak_mb, 2.0);
        assert_eq!(summary.warm_cpu_us, 300.0);
        assert_eq!(summary.statuses, [200]);
    }

    #[test]
    fn cpu_per_warm_request_is_unknown_when_a_run_could_not_read_it() {
        let mut unread = run(10, 5, &[1, 2]);
        unread.warm_cpu = None;
        assert!(Summary::of(&[run(10, 5, &[1, 2]), unread]).warm_cpu_us.is_nan());
    }
}
