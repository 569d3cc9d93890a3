//! `cargo xtask coverage`: line coverage of the shared crates (domain,
//! framework, adapters, app) under the suite as `cargo xtask test` runs it, black-box
//! tests included, with per-crate and total figures, a summary file, lcov and
//! an HTML report in `.local/coverage/`; with `--write-docs` also the
//! coverage section of docs/reliability.md.
//!
//! How: the shared crates and every program that links them (test harnesses,
//! the functions) are built with `-C instrument-coverage` into a target
//! directory of their own (`target/coverage`, through a `RUSTC_WRAPPER`, so
//! dependencies build as usual and `target/` is not touched). Every process
//! writes its counters in LLVM's continuous mode (`%c`, counters mapped onto
//! the file), so functions that `cargo lambda watch` or a fault test kills
//! still leave their counts. The test binaries run against a local stack of
//! their own, as in `cargo xtask test`; then `llvm-profdata` merges every
//! profile and `llvm-cov` maps them onto the sources, over all the binaries.
//!
//! rustup's `llvm-tools` are used when installed; otherwise Debian's LLVM
//! (rustc 1.95's LLVM 22 writes raw profile version 10 and coverage mapping
//! version 7, which LLVM 19 reads; a format it cannot read fails loudly).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use local_cloud::cloud::{CloudConfig, Ports};
use local_cloud::procs::free_port;
use local_cloud::stack::{LocalStack, StackConfig};
use local_cloud::template::Template;
use local_cloud::{local_dir, project_root, tools};

use crate::shell::cargo;

mod llvm;

use llvm::Llvm;

/// The crates measured, by folder; `testing/in-memory` is test support (the
/// in-memory adapters the use-case tests run on) and is not measured.
const MEASURED: [(&str, &str); 4] = [
    ("domain", "shared/domain/src"),
    ("framework", "shared/framework/src"),
    ("adapters", "shared/adapters/src"),
    ("app", "shared/app/src"),
];

/// Packages whose tests make up the suite (the functions have no tests of
/// their own: their logic is in shared/app). xtask's own tests test the
/// developer tools, not the shared crates, and are left out.
const TEST_PACKAGES: [&str; 6] = ["domain", "framework", "adapters", "app", "in-memory", "tests"];

/// Debian's LLVM installed when no matching LLVM tools are found: the
/// oldest that reads rustc 1.95's profile formats, and the one bookworm has.
const DEBIAN_LLVM: &str = "llvm-19";
const OLDEST_LLVM: u32 = 19;

/// Measures line coverage of shared/domain, shared/framework, shared/adapters and shared/app
/// under the whole suite (unit, use-case, contract, store, black-box API and
/// fault tests, the short schemathesis run and the 60-second load), and
/// writes `.local/coverage/` (summary.json, lcov.info, html/).
#[derive(Debug, clap::Args)]
#[allow(clippy::struct_excessive_bools)] // Independent command-line flags, not a state.
pub struct Args {
    /// Only the tests that need no local cloud (unit tests, the use-case tests
    /// and the contract suite on the in-memory adapters): a quick figure.
    #[arg(long)]
    pub in_process: bool,
    /// Leave out the short schemathesis run.
    #[arg(long)]
    pub no_fuzz: bool,
    /// Leave out the 60-second load.
    #[arg(long)]
    pub no_load: bool,
    /// How many of the least-covered files of framework, adapters and app to list.
    #[arg(long, default_value_t = 12)]
    pub worst: usize,
    /// Also rewrite the coverage section of docs/reliability.md with this run's figures.
    #[arg(long)]
    pub write_docs: bool,
}

/// One test binary's run.
struct TestRun {
    name: String,
    package: String,
    passed: bool,
    seconds: f64,
}

/// Line counts of one file or a sum of them.
#[derive(Default, Clone, Copy)]
struct Lines {
    count: u64,
    covered: u64,
}

impl Lines {
    fn percent(self) -> f64 {
        if self.count == 0 { 100.0 } else { self.covered as f64 * 100.0 / self.count as f64 }
    }

    fn add(&mut self, other: Self) {
        self.count += other.count;
        self.covered += other.covered;
    }
}

/// One measured source file.
struct FileCoverage {
    /// Relative to the repository root.
    path: String,
    krate: &'static str,
    lines: Lines,
    /// The lines no test reached.
    missed: Vec<u32>,
    /// Each counted line and its hits.
    hits: Vec<(u32, u64)>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let root = project_root();
    let out = local_dir().join("coverage");
    let profiles = out.join("profraw");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&profiles)?;
    let llvm = Llvm::find_or_install()?;
    eprintln!("xtask: coverage: llvm-profdata and llvm-cov of {}", llvm.describe());

    let build = Build::new()?;
    let template = Template::load_project()?;
    let function_packages: Vec<String> = template.functions()?.into_iter().map(|f| f.package).collect();
    eprintln!(
        "xtask: building the shared crates, their tests and every function, instrumented, into {}...",
        build.target_dir.strip_prefix(&root).unwrap_or(&build.target_dir).display()
    );
    // The functions only run on the stack.
    let Programs { tests, functions } = build.compile(if args.in_process { &[] } else { &function_packages })?;

    let mut runs = Vec::new();
    let mut extra_failures = Vec::new();
    if args.in_process {
        let in_process: Vec<_> = tests.iter().filter(|(package, _)| package != "tests").cloned().collect();
        let env = vec![("CARGO_TARGET_DIR".to_owned(), build.target_dir.display().to_string())];
        runs = run_tests(&in_process, &env, &profiles)?;
    } else {
        let tools = tools::ensure()?;
        let stack = start_stack(&tools, &template, &build, &out, &profiles).await?;
        runs.extend(run_tests(&tests, &stack.client_env(), &profiles)?);
        if !args.no_fuzz && !crate::fuzz::short_run(&stack).await {
            extra_failures.push("schemathesis".to_owned());
        }
        if !args.no_load && !crate::load::short_run(&stack, &out).await {
            extra_failures.push("load".to_owned());
        }
        // Stops every function; their counters are already in their files.
        drop(stack);
    }

    eprintln!("\nxtask: merging the profiles");
    let profdata = llvm.merge(&profiles, &out.join("coverage.profdata"))?;
    let mut objects: Vec<PathBuf> = tests.iter().map(|(_, path)| path.clone()).collect();
    objects.extend(functions.iter().filter(|path| path.exists()).cloned());
    let sources: Vec<PathBuf> = MEASURED.iter().map(|(_, dir)| root.join(dir)).collect();
    let files = llvm.report(&profdata, &objects, &sources, &out)?;

    let failures: Vec<String> = runs
        .iter()
        .filter(|run| !run.passed)
        .map(|run| run.name.clone())
        .chain(extra_failures.iter().cloned())
        .collect();
    let scope = Scope {
        in_process: args.in_process,
        fuzz: !args.in_process && !args.no_fuzz,
        load: !args.in_process && !args.no_load,
    };
    let summary = summarize(&files, &runs, &failures, &scope, &llvm, started.elapsed().as_secs_f64());
    std::fs::write(out.join("summary.json"), serde_json::to_string_pretty(&summary)? + "\n")?;
    print_report(&files, &scope, args.worst);
    let shown = |path: &Path| path.strip_prefix(&root).unwrap_or(path).display().to_string();
    println!(
        "\nxtask: coverage: {} (lcov: {}, HTML: {})",
        shown(&out.join("summary.json")),
        shown(&out.join("lcov.info")),
        shown(&out.join("html/index.html"))
    );
    eprintln!("xtask: coverage finished in {:.0?}", started.elapsed());
    if args.write_docs {
        let mut command_line = String::from("cargo xtask coverage");
        for (set, flag) in
            [(args.in_process, " --in-process"), (args.no_fuzz, " --no-fuzz"), (args.no_load, " --no-load")]
        {
            if set {
                command_line.push_str(flag);
            }
        }
        command_line.push_str(" --write-docs");
        let body = coverage_markdown(&files, &scope, &failures, started.elapsed().as_secs_f64());
        crate::docs::write_section(crate::docs::Doc::Reliability, "coverage", &command_line, &body)?;
    }
    if failures.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("xtask: coverage: these failed, so the figure is of a failing suite: {}", failures.join(", "));
        Ok(ExitCode::FAILURE)
    }
}

/// What ran, for the report.
struct Scope {
    in_process: bool,
    fuzz: bool,
    load: bool,
}

impl Scope {
    fn describe(&self) -> String {
        if self.in_process {
            return "in-process tests only (unit, use cases and contract on the in-memory adapters)".to_owned();
        }
        let mut what = "the whole test suite (unit, use cases, contract on in-memory and DynamoDB Local, store, \
                        black-box API, faults, conformance)"
            .to_owned();
        if self.fuzz {
            what.push_str(", the short schemathesis run");
        }
        if self.load {
            what.push_str(", the 60-second load");
        }
        what
    }
}

/// What the instrumented build made.
struct Programs {
    /// (package, test binary)
    tests: Vec<(String, PathBuf)>,
    /// The functions' binaries.
    functions: Vec<PathBuf>,
}

/// The instrumented build: its own target directory and the wrapper that
/// instruments only the shared crates and the programs linking them.
struct Build {
    target_dir: PathBuf,
    wrapper: PathBuf,
}

/// `RUSTC_WRAPPER` for the instrumented build. Build scripts, proc macros,
/// dependencies and cargo's probes compile unchanged. Counter relocation is
/// what LLVM's continuous mode needs on Linux.
const WRAPPER: &str = r#"#!/bin/sh
# Written by `cargo xtask coverage` (xtask/src/coverage/mod.rs), its RUSTC_WRAPPER:
# instruments the shared crates and the programs that link them (test
# harnesses, the functions), and nothing else.
rustc="$1"; shift
name=; program=; previous=
for arg in "$@"; do
  case "$previous" in
    --crate-name) name="$arg" ;;
    --crate-type) [ "$arg" = bin ] && program=1 ;;
  esac
  [ "$arg" = --test ] && program=1
  previous="$arg"
done
case "$name" in
  domain|framework|adapters|app) ;;
  ""|___|build_script_*) exec "$rustc" "$@" ;;
  *) [ -n "$program" ] || exec "$rustc" "$@" ;;
esac
exec "$rustc" "$@" -C instrument-coverage -C llvm-args=-runtime-counter-relocation
"#;

impl Build {
    fn new() -> anyhow::Result<Self> {
        let base = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| project_root().join("target"), PathBuf::from);
        let target_dir = base.join("coverage");
        std::fs::create_dir_all(&target_dir)?;
        let wrapper = target_dir.join("rustc-wrapper");
        // Rewritten only when it changed, so cargo sees the same wrapper.
        if std::fs::read_to_string(&wrapper).ok().as_deref() != Some(WRAPPER) {
            std::fs::write(&wrapper, WRAPPER)?;
            std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))?;
        }
        Ok(Self { target_dir, wrapper })
    }

    /// What the build, `cargo lambda watch`'s `cargo run` and the fault
    /// tests' function processes need in their environment.
    fn env(&self) -> [(String, String); 2] {
        [
            ("CARGO_TARGET_DIR".to_owned(), self.target_dir.display().to_string()),
            ("RUSTC_WRAPPER".to_owned(), self.wrapper.display().to_string()),
        ]
    }

    /// Builds the test binaries of `TEST_PACKAGES`, then each function on
    /// its own, as `cargo lambda watch` builds it (`cargo run --bin <name>`:
    /// one package, so its own feature resolution), so the stack runs these
    /// very binaries and no other build of them replaces them meanwhile.
    fn compile(&self, functions: &[String]) -> anyhow::Result<Programs> {
        let mut command = cargo();
        command.args(["build", "--tests"]);
        for package in TEST_PACKAGES {
            command.args(["-p", package]);
        }
        let mut tests: Vec<(String, PathBuf)> = self
            .executables(&mut command)?
            .into_iter()
            .filter(|(_, test, _)| *test)
            .map(|(package, _, path)| (package, path))
            .collect();
        tests.sort();
        tests.dedup();
        let mut programs = Vec::new();
        for function in functions {
            let built = self.executables(cargo().args(["build", "--bin", function]))?;
            programs.extend(built.into_iter().filter(|(package, _, _)| package == function).map(|(_, _, path)| path));
        }
        if programs.len() != functions.len() {
            bail!("{} functions, but {} function binaries were built", functions.len(), programs.len());
        }
        Ok(Programs { tests, functions: programs })
    }

    /// Runs an instrumented cargo build; (package, is a test, path) of each executable it produced.
    fn executables(&self, command: &mut Command) -> anyhow::Result<Vec<(String, bool, PathBuf)>> {
        let output = command
            .args(["--message-format=json-diagnostic-rendered-ansi", "--quiet"])
            .envs(self.env())
            .stderr(Stdio::inherit())
            .output()
            .context("cargo build (instrumented)")?;
        let mut executables = Vec::new();
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let message: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
            if message["reason"] == "compiler-artifact"
                && let Some(path) = message["executable"].as_str()
            {
                executables.push((package_name(&message), message["profile"]["test"] == true, PathBuf::from(path)));
            } else if message["reason"] == "compiler-message"
                && message["message"]["level"] == "error"
                && let Some(rendered) = message["message"]["rendered"].as_str()
            {
                anstream::eprint!("{rendered}");
            }
        }
        if !output.status.success() {
            bail!("the instrumented build failed");
        }
        Ok(executables)
    }
}

/// The package of a compiler-artifact message: every package of this
/// workspace lives in a folder of its name.
fn package_name(message: &serde_json::Value) -> String {
    let manifest = Path::new(message["manifest_path"].as_str().unwrap_or_default());
    manifest.parent().and_then(Path::file_name).and_then(|name| name.to_str()).unwrap_or_default().to_owned()
}

/// The local stack of `cargo xtask test`, on free ports, its functions built
/// instrumented by `cargo lambda watch` into the coverage target directory
/// and writing their counters into `profiles`.
async fn start_stack(
    tools: &tools::Tools,
    template: &Template,
    build: &Build,
    out: &Path,
    profiles: &Path,
) -> anyhow::Result<LocalStack> {
    let mut extra_env: Vec<(String, String)> = build.env().into();
    extra_env.extend([
        ("LLVM_PROFILE_FILE".to_owned(), profiles.join("function-%p%c.profraw").display().to_string()),
        // As in `cargo xtask test`: the call recording, the event log and
        // debug sampling run too.
        ("SHOP_RECORD_AWS_CALLS".to_owned(), out.join("aws-calls.tsv").display().to_string()),
        ("LOG_EVENT".to_owned(), "true".to_owned()),
        ("LOG_DEBUG_SAMPLE_RATE".to_owned(), "0.1".to_owned()),
        crate::test::TEST_ORDER_HOLD.map(str::to_owned).into(),
    ]);
    extra_env.extend(crate::test::TEST_CACHE.map(|setting| setting.map(str::to_owned).into()));
    let config = StackConfig {
        cloud: CloudConfig {
            ports: Ports { dynamodb: free_port()?, moto: free_port()? },
            prefix: "coverage".into(),
            dynamodb_data: None,
            logs_dir: out.join("logs"),
        },
        api_port: free_port()?,
        reload_on_change: false,
        functions_log: Some(out.join("logs/functions.log")),
        extra_env,
    };
    LocalStack::start(tools, template, config).await
}

/// Runs every test binary with `env`, each writing its counters (and those of
/// the function processes it starts) into `profiles`.
fn run_tests(tests: &[(String, PathBuf)], env: &[(String, String)], profiles: &Path) -> anyhow::Result<Vec<TestRun>> {
    let mut runs = Vec::new();
    for (package, binary) in tests {
        let name = binary.file_name().and_then(|n| n.to_str()).unwrap_or("?").to_owned();
        eprintln!("\nxtask: running {name} ({package})");
        let started = Instant::now();
        let status = Command::new(binary)
            .current_dir(project_root())
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("LLVM_PROFILE_FILE", profiles.join(format!("{name}-%p%c.profraw")))
            .status()
            .with_context(|| format!("running {name}"))?;
        runs.push(TestRun {
            name,
            package: package.clone(),
            passed: status.success(),
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    Ok(runs)
}

/// The line hits (`DA` records) of each measured file of an lcov export, by
/// path relative to the repository root.
fn parse_lcov(text: &str, root: &Path) -> BTreeMap<String, BTreeMap<u32, u64>> {
    let mut files: BTreeMap<String, BTreeMap<u32, u64>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(path) = line.strip_prefix("SF:") {
            let relative = Path::new(path).strip_prefix(root).unwrap_or(Path::new(path)).display().to_string();
            current = MEASURED.iter().any(|(_, dir)| relative.starts_with(dir)).then_some(relative);
        } else if let (Some(record), Some(path)) = (line.strip_prefix("DA:"), &current) {
            let mut fields = record.split(',');
            let (Some(number), Some(hits)) =
                (fields.next().and_then(|n| n.parse::<u32>().ok()), fields.next().and_then(|n| n.parse::<u64>().ok()))
            else {
                continue;
            };
            *files.entry(path.clone()).or_default().entry(number).or_default() += hits;
        } else if line == "end_of_record" {
            current = None;
        }
    }
    files
}

/// The measured files' figures with the tests left out: the inline
/// `#[cfg(test)] mod … { … }` blocks, and the files of modules declared
/// under a test cfg (`#[cfg(test)] mod properties;`, proptest strategies).
fn measured_files(hits: BTreeMap<String, BTreeMap<u32, u64>>, root: &Path) -> Vec<FileCoverage> {
    // Every source file of the measured crates, by relative path: a module
    // may be declared in a file with no code of its own (lib.rs).
    let mut sources = BTreeMap::new();
    let mut folders: Vec<PathBuf> = MEASURED.iter().map(|(_, dir)| root.join(dir)).collect();
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|x| x == "rs")
                && let (Ok(relative), Ok(source)) = (path.strip_prefix(root), std::fs::read_to_string(&path))
            {
                sources.insert(relative.display().to_string(), source);
            }
        }
    }
    let test_files: Vec<String> = sources
        .iter()
        .flat_map(|(path, source)| test_code(source).1.into_iter().flat_map(move |module| module_files(path, &module)))
        .collect();
    let mut files = Vec::new();
    for (path, lines) in &hits {
        let Some(krate) = MEASURED.iter().find(|(_, dir)| path.starts_with(dir)).map(|(krate, _)| *krate) else {
            continue;
        };
        if test_files.contains(path) {
            continue;
        }
        let blocks = sources.get(path).map(|source| test_code(source).0).unwrap_or_default();
        let mut file =
            FileCoverage { path: path.clone(), krate, lines: Lines::default(), missed: Vec::new(), hits: Vec::new() };
        for (&number, &count) in lines {
            if blocks.iter().any(|block| block.contains(&number)) {
                continue;
            }
            file.hits.push((number, count));
            file.lines.count += 1;
            if count > 0 {
                file.lines.covered += 1;
            } else {
                file.missed.push(number);
            }
        }
        files.push(file);
    }
    files
}

/// In one source file: the line ranges of inline test modules, and the
/// names of out-of-line modules declared under a test cfg.
fn test_code(source: &str) -> (Vec<std::ops::RangeInclusive<u32>>, Vec<String>) {
    let lines: Vec<&str> = source.lines().collect();
    let mut blocks = Vec::new();
    let mut modules = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let attribute = line.trim_start();
        if !(attribute.starts_with("#[cfg(test)]") || attribute.starts_with("#[cfg(any(test,")) {
            continue;
        }
        let Some(declaration) = lines.get(index + 1).map(|l| l.trim()) else { continue };
        let Some(rest) = ["pub(crate) mod ", "pub mod ", "mod "].iter().find_map(|p| declaration.strip_prefix(p))
        else {
            continue;
        };
        if let Some(name) = rest.strip_suffix(';') {
            modules.push(name.trim().to_owned());
        } else if rest.ends_with('{') {
            // To the brace that closes the module (or the end of the file).
            let mut depth = 0i64;
            let mut end = lines.len();
            for (offset, body) in lines[index + 1..].iter().enumerate() {
                depth += body.matches('{').count() as i64 - body.matches('}').count() as i64;
                if depth <= 0 {
                    end = index + 1 + offset + 1;
                    break;
                }
            }
            blocks.push(index as u32 + 1..=end as u32);
        }
    }
    (blocks, modules)
}

/// Where module `name`, declared in `path`, may live.
fn module_files(path: &str, name: &str) -> [String; 2] {
    let declaring = Path::new(path);
    let folder = declaring.parent().unwrap_or(Path::new(""));
    let stem = declaring.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    let folder = if matches!(stem, "lib" | "main" | "mod") { folder.to_path_buf() } else { folder.join(stem) };
    [folder.join(format!("{name}.rs")).display().to_string(), folder.join(name).join("mod.rs").display().to_string()]
}

/// lcov of what the figures count: the measured files, tests left out.
fn lcov(files: &[FileCoverage], root: &Path) -> String {
    let mut text = String::new();
    for file in files {
        let _ = writeln!(text, "SF:{}", root.join(&file.path).display());
        for (number, count) in &file.hits {
            let _ = writeln!(text, "DA:{number},{count}");
        }
        let _ = writeln!(text, "LF:{}\nLH:{}\nend_of_record", file.lines.count, file.lines.covered);
    }
    text
}

/// `1-3, 7, 9-12` for [1, 2, 3, 7, 9, 10, 11, 12].
fn ranges(lines: &[u32]) -> String {
    let mut text = String::new();
    let mut index = 0;
    while index < lines.len() {
        let start = lines[index];
        let mut end = start;
        while index + 1 < lines.len() && lines[index + 1] == end + 1 {
            index += 1;
            end = lines[index];
        }
        if !text.is_empty() {
            text.push_str(", ");
        }
        if start == end {
            let _ = write!(text, "{start}");
        } else {
            let _ = write!(text, "{start}-{end}");
        }
        index += 1;
    }
    text
}

/// Per crate and in total.
fn totals(files: &[FileCoverage]) -> (BTreeMap<&'static str, Lines>, Lines) {
    let mut crates: BTreeMap<&'static str, Lines> =
        MEASURED.iter().map(|(krate, _)| (*krate, Lines::default())).collect();
    let mut total = Lines::default();
    for file in files {
        crates.entry(file.krate).or_default().add(file.lines);
        total.add(file.lines);
    }
    (crates, total)
}

fn print_report(files: &[FileCoverage], scope: &Scope, worst: usize) {
    let (crates, total) = totals(files);
    println!("\nxtask: line coverage under {}", scope.describe());
    println!("  {:<10} {:>7} {:>8} {:>8}", "crate", "lines", "covered", "percent");
    for (krate, _) in MEASURED {
        let lines = crates[krate];
        println!("  {krate:<10} {:>7} {:>8} {:>7.1} %", lines.count, lines.covered, lines.percent());
    }
    println!("  {:<10} {:>7} {:>8} {:>7.1} %", "total", total.count, total.covered, total.percent());
    let mut candidates: Vec<&FileCoverage> =
        files.iter().filter(|f| f.krate != "domain" && f.lines.covered < f.lines.count).collect();
    candidates.sort_by_key(|f| std::cmp::Reverse(f.lines.count - f.lines.covered));
    if !candidates.is_empty() {
        println!(
            "\n  least covered in framework, adapters and app (most lines missed first; all files in summary.json):"
        );
    }
    for file in candidates.into_iter().take(worst) {
        let missed = ranges(&file.missed);
        let shown: String = missed.chars().take(110).collect();
        println!(
            "  {:<46} {:>4}/{:<4} {:>5.1} %  missed: {shown}{}",
            file.path,
            file.lines.covered,
            file.lines.count,
            file.lines.percent(),
            if shown.len() < missed.len() { " ..." } else { "" }
        );
    }
}

/// The coverage section of docs/reliability.md: per crate and in total.
fn coverage_markdown(files: &[FileCoverage], scope: &Scope, failures: &[String], seconds: f64) -> String {
    let (crates, total) = totals(files);
    let mut markdown = format!(
        "Line coverage under {} ({seconds:.0} s, instrumented build included when it had to be built).\n\n\
         | crate | lines | covered | percent |\n|---|---:|---:|---:|\n",
        scope.describe()
    );
    for (krate, _) in MEASURED {
        let lines = crates[krate];
        let _ = writeln!(markdown, "| `{krate}` | {} | {} | {:.1} % |", lines.count, lines.covered, lines.percent());
    }
    let _ = writeln!(markdown, "| total | {} | {} | {:.1} % |", total.count, total.covered, total.percent());
    if failures.is_empty() {
        markdown.push_str("\nEvery part of the suite passed.\n");
    } else {
        let _ = writeln!(markdown, "\n**These failed, so the figure is of a failing suite**: {}.", failures.join(", "));
    }
    markdown
}

fn summarize(
    files: &[FileCoverage],
    runs: &[TestRun],
    failures: &[String],
    scope: &Scope,
    llvm: &Llvm,
    seconds: f64,
) -> serde_json::Value {
    let (crates, total) = totals(files);
    let figure = |lines: Lines| {
        serde_json::json!({
            "lines": lines.count,
            "covered": lines.covered,
            "percent": (lines.percent() * 10.0).round() / 10.0,
        })
    };
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(project_root())
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let commit = git(&["rev-parse", "--short", "HEAD"]);
    // Changes to tracked files (others' work in progress included) are measured too.
    let uncommitted_changes = !git(&["status", "--porcelain", "--untracked-files=no"]).is_empty();
    let now = time::OffsetDateTime::now_utc();
    serde_json::json!({
        "generated": now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "commit": commit,
        "uncommitted_changes": uncommitted_changes,
        "rustc": rustc_info().map(|r| r.version).unwrap_or_default(),
        "llvm_tools": llvm.describe(),
        "measure": "lines as llvm-cov counts them (a line is covered when a region that starts on it, or that \
                    spans it, ran); generic code counted once over all its instantiations",
        "measured": MEASURED.iter().map(|(_, dir)| *dir).collect::<Vec<_>>(),
        "not_measured": [
            "testing/in-memory (test support: the in-memory adapters)",
            "functions/* (each main.rs only wires dependencies)",
            "tests/, xtask/ (test and developer code)",
            "test code inside the measured crates: inline #[cfg(test)] modules and files of modules declared \
             under a test cfg (domain's properties.rs and strategies.rs); the HTML report still shows them",
        ],
        "suite": scope.describe(),
        "test_binaries": runs.iter().map(|run| serde_json::json!({
            "binary": run.name,
            "package": run.package,
            "passed": run.passed,
            "seconds": (run.seconds * 10.0).round() / 10.0,
        })).collect::<Vec<_>>(),
        "failed": failures,
        "crates": crates.iter().map(|(krate, lines)| ((*krate).to_owned(), figure(*lines))).collect::<serde_json::Map<_, _>>(),
        "total": figure(total),
        "files": files.iter().map(|file| serde_json::json!({
            "path": file.path,
            "crate": file.krate,
            "lines": file.lines.count,
            "covered": file.lines.covered,
            "percent": (file.lines.percent() * 10.0).round() / 10.0,
            "missed_lines": ranges(&file.missed),
        })).collect::<Vec<_>>(),
        "seconds": seconds.round(),
    })
}

/// What `rustc -vV` says.
struct RustcInfo {
    version: String,
    host: String,
    llvm_major: u32,
    sysroot: PathBuf,
}

fn rustc_info() -> anyhow::Result<RustcInfo> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let verbose = Command::new(&rustc).arg("-vV").output().context("running rustc -vV")?;
    let text = String::from_utf8_lossy(&verbose.stdout).into_owned();
    let field = |name: &str| text.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_owned());
    let sysroot =
        Command::new(&rustc).args(["--print", "sysroot"]).output().context("running rustc --print sysroot")?;
    Ok(RustcInfo {
        version: text.lines().next().unwrap_or_default().to_owned(),
        host: field("host:").context("rustc -vV names no host")?,
        llvm_major: field("LLVM version:")
            .and_then(|v| v.split('.').next().and_then(|major| major.parse().ok()))
            .unwrap_or(OLDEST_LLVM),
        sysroot: PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim()),
    })
}

#[cfg(test)]
mod tests;
