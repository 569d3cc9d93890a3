//! `cargo xtask fuzz-parsers`: the long run of the parsers' property tests.
//! The same properties run in every `cargo test` (and so in `cargo xtask
//! test`) with small case counts; here each runs `--cases` times
//! (`PROPTEST_CASES`): cursors, the HTTP boundary and the CloudEvents
//! envelope (`shared/framework/tests/properties.rs`), id parsing
//! (`shared/domain/tests/id_properties.rs`) and the domain's properties
//! (money, pricing, the status machine, emails, SKUs: `shared/domain/src/properties.rs`).
//! A failure prints its minimal input and is saved by proptest next to the
//! test file (`*.proptest-regressions`), so the next run tries it first.
//! With `--write-docs` the cases and times become the fuzz-parsers section of
//! docs/reliability.md.

use std::process::ExitCode;
use std::time::Instant;

use crate::shell::{cargo, run_checked};

/// Runs every parser property with many cases; non-zero when one fails.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Cases per property (the domain's properties take most of the time:
    /// their orders have up to 50 generated products per case).
    #[arg(long, default_value_t = 10_000)]
    pub cases: u32,
    /// Also rewrite the fuzz-parsers section of docs/reliability.md.
    #[arg(long)]
    pub write_docs: bool,
}

/// The test targets holding the properties: package, target, name filter.
const SUITES: [(&str, &[&str]); 3] = [
    ("framework", &["--test", "properties"]),
    ("domain", &["--test", "id_properties"]),
    ("domain", &["--lib", "--", "properties::"]),
];

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let mut table = String::from("| suite | cases per property | result | time |\n|---|---:|---|---:|\n");
    for (package, target) in SUITES {
        let what = format!("cargo test -p {package} {}", target.join(" "));
        println!("fuzz-parsers: {what} with PROPTEST_CASES={}", args.cases);
        let suite_started = Instant::now();
        run_checked(
            cargo().args(["test", "--quiet", "-p", package]).args(target).env("PROPTEST_CASES", args.cases.to_string()),
            &what,
        )?;
        println!("fuzz-parsers: {what}: passed in {:.0?}", suite_started.elapsed());
        table.push_str(&format!("| `{what}` | {} | held | {:.0?} |\n", args.cases, suite_started.elapsed()));
    }
    println!("fuzz-parsers: every property held for {} cases each, in {:.0?}", args.cases, started.elapsed());
    if args.write_docs {
        let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
        let body = format!("On this machine ({cores} cores), {:.0?} in all.\n\n{table}", started.elapsed());
        let command_line = format!("cargo xtask fuzz-parsers --cases {} --write-docs", args.cases);
        crate::docs::write_section(crate::docs::Doc::Reliability, "fuzz-parsers", &command_line, &body)?;
    }
    Ok(ExitCode::SUCCESS)
}
