//! `cargo xtask package`: every function for arm64, in one cargo invocation,
//! into target/lambda/<function>/ where template.yaml's CodeUri points. Built
//! with the `production` profile (staging and prod; what the pipeline ships)
//! unless `--profile release` asks for the fast one (dev deploys).
//! With `--write-docs` it measures the build from nothing and after a change
//! to shared code, and writes the profile's section of docs/performance.md.

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::Context;
use local_cloud::template::Template;
use local_cloud::{project_root, tools};

use crate::profiles::{self, Profile};
use crate::shell::{cargo, run_checked};

/// The largest zip the packaging target allows (bytes).
const ZIP_LIMIT: u64 = 6_000_000;
/// The longest production build after a change to shared code the target allows.
const AFTER_CHANGE_LIMIT: Duration = Duration::from_secs(600);
/// The file touched to measure a build after a change to shared code: every
/// workspace crate depends on it, so every crate and every link run again.
const SHARED_FILE: &str = "shared/domain/src/lib.rs";

/// Builds every function for arm64 and prints their sizes.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The build profile of root Cargo.toml: `production` (staging and prod) or
    /// `release` (dev deploys: a build in less time, slower requests).
    #[arg(long, default_value = profiles::PRODUCTION)]
    pub profile: String,
    /// Measure the build from nothing (removes target/aarch64-unknown-linux-gnu/<profile>
    /// first) and again after a change to shared code (touches shared/domain), then
    /// rewrite the profile's section of docs/performance.md (build times, sizes).
    #[arg(long)]
    pub write_docs: bool,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let tools = tools::ensure()?;
    let profile = profiles::load(&args.profile)?;
    let template = Template::load_project()?;
    let functions: Vec<String> = template.functions()?.into_iter().map(|f| f.package).collect();
    let build = || -> anyhow::Result<Duration> {
        let started = Instant::now();
        let mut build = cargo();
        build.args(["lambda", "build", "--arm64", "--profile", &profile.name]).env("PATH", tools.path_env());
        for function in &functions {
            build.args(["--package", function]);
        }
        run_checked(&mut build, "cargo lambda build")?;
        Ok(started.elapsed())
    };
    let timings = if args.write_docs {
        let dir = project_root().join("target/aarch64-unknown-linux-gnu").join(profile.dir());
        eprintln!("xtask: removing {} to measure a build from nothing...", dir.display());
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        let from_nothing = build()?;
        eprintln!("xtask: built from nothing in {from_nothing:.0?}; touching {SHARED_FILE} and building again...");
        let file = std::fs::File::options().append(true).open(project_root().join(SHARED_FILE))?;
        file.set_modified(std::time::SystemTime::now())?;
        let after_change = build()?;
        Timings::Measured { from_nothing, after_change }
    } else {
        Timings::AsFound(build()?)
    };
    package_reference_assets()?;

    let mut table = String::from("| function | bootstrap (bytes) | zip (bytes) |\n|---|---:|---:|\n");
    let mut largest_zip = 0;
    for function in &functions {
        let dir = project_root().join("target/lambda").join(function);
        let binary =
            std::fs::metadata(dir.join("bootstrap")).with_context(|| format!("{function} was not built"))?.len();
        let zip = zipped_size(&tools, &dir.join("bootstrap"))?;
        largest_zip = largest_zip.max(zip);
        table.push_str(&format!("| {function} | {binary} | {zip} |\n"));
    }
    let report = format!(
        "arm64 build of {} functions with {}\n\n{}\n\n{table}\n{}\n",
        functions.len(),
        profile.describe(),
        timings.describe(&profile),
        size_verdict(largest_zip),
    );
    std::fs::write(project_root().join("target/lambda/sizes.md"), &report)?;
    println!("{report}\nwritten to target/lambda/sizes.md");
    if args.write_docs {
        let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
        let body = format!(
            "Measured on this machine ({cores} cores, shared with whatever else was building). Zip sizes as SAM \
             packages them (deflate).\n\n{report}"
        );
        let (section, command_line) = section(&profile.name);
        crate::docs::write_section(crate::docs::Doc::Performance, &section, &command_line, &body)?;
    }
    let environments = if profile.name == profiles::PRODUCTION { "staging or prod" } else { "dev" };
    println!(
        "deploy with: sam deploy --config-env {}   (CodeUri points at target/lambda/<function>/; {} is built for {environments})",
        if profile.name == profiles::PRODUCTION { "staging" } else { "dev" },
        profile.name,
    );
    Ok(ExitCode::SUCCESS)
}

/// The docs section a profile's measurement writes, and its command line.
pub fn section(profile: &str) -> (String, String) {
    if profile == profiles::PRODUCTION {
        ("package".into(), "cargo xtask package --write-docs".into())
    } else {
        (format!("package --profile {profile}"), format!("cargo xtask package --profile {profile} --write-docs"))
    }
}

enum Timings {
    /// One build, with whatever the target folder held.
    AsFound(Duration),
    Measured {
        from_nothing: Duration,
        after_change: Duration,
    },
}

impl Timings {
    fn describe(&self, profile: &Profile) -> String {
        match self {
            Self::AsFound(took) => format!("Built in {}, with whatever the target folder held.", minutes(*took)),
            Self::Measured { from_nothing, after_change } => {
                let verdict = if profile.name != profiles::PRODUCTION {
                    String::new()
                } else if *after_change <= AFTER_CHANGE_LIMIT {
                    format!(" (target: at most {}; met)", minutes(AFTER_CHANGE_LIMIT))
                } else {
                    format!(" (target: at most {}; **missed**)", minutes(AFTER_CHANGE_LIMIT))
                };
                format!(
                    "| build | time |\n|---|---:|\n| from nothing (dependencies included) | {} |\n\
                     | after a change to shared code (`{SHARED_FILE}` touched: every workspace crate, every link) | {}{verdict} |",
                    minutes(*from_nothing),
                    minutes(*after_change),
                )
            }
        }
    }
}

fn minutes(duration: Duration) -> String {
    let seconds = duration.as_secs();
    format!("{}m{:02}s", seconds / 60, seconds % 60)
}

fn size_verdict(largest_zip: u64) -> String {
    format!(
        "Largest zip: {:.2} MB (target: at most {:.0} MB; {}).",
        largest_zip as f64 / 1e6,
        ZIP_LIMIT as f64 / 1e6,
        if largest_zip <= ZIP_LIMIT { "met" } else { "**missed**" }
    )
}

/// The size of `file` zipped as SAM packages it (deflate), via Python's zipfile.
fn zipped_size(tools: &tools::Tools, file: &Path) -> anyhow::Result<u64> {
    let script = "import io,sys,zipfile\nb=io.BytesIO()\nz=zipfile.ZipFile(b,'w',zipfile.ZIP_DEFLATED)\nz.write(sys.argv[1],'bootstrap')\nz.close()\nprint(len(b.getvalue()))";
    let output = Command::new(tools.venv_bin.join("python")).args(["-c", script]).arg(file).output()?;
    anyhow::ensure!(output.status.success(), "zipping {} failed", file.display());
    Ok(String::from_utf8(output.stdout)?.trim().parse()?)
}

/// Puts Swagger UI's files (the pinned swagger-ui-dist, with its licence)
/// beside the reference function's binary, where it reads them at start-up
/// (shared/app/src/reference.rs); the zip SAM makes of the folder carries them.
fn package_reference_assets() -> anyhow::Result<()> {
    let swagger_ui = tools::ensure_contract_tools()?.swagger_ui;
    let target = project_root().join("target/lambda/get-docs/swagger-ui");
    std::fs::create_dir_all(&target)?;
    for name in app::reference::ASSETS.iter().chain(&["LICENSE", "swagger-ui-bundle.js.LICENSE.txt"]) {
        std::fs::copy(swagger_ui.join(name), target.join(name))
            .with_context(|| format!("copying {name} from {}", swagger_ui.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_profile_writes_a_section_of_its_own() {
        assert_eq!(section("production"), ("package".into(), "cargo xtask package --write-docs".into()));
        let (release, command) = section("release");
        assert_eq!(release, "package --profile release");
        assert!(command.starts_with("cargo xtask package --profile release"));
        assert!(
            crate::docs::SECTIONS.iter().any(|(_, s)| *s == release),
            "docs::SECTIONS must list the release profile's section"
        );
    }

    #[test]
    fn states_the_targets() {
        assert!(size_verdict(5_999_999).ends_with("met)."));
        assert!(size_verdict(6_000_001).contains("missed"));
        let production = profiles::load(profiles::PRODUCTION).unwrap();
        let slow = Timings::Measured { from_nothing: Duration::from_secs(900), after_change: Duration::from_secs(601) };
        assert!(slow.describe(&production).contains("10m01s (target: at most 10m00s; **missed**)"));
        let release = profiles::load(profiles::RELEASE).unwrap();
        assert!(!slow.describe(&release).contains("target"), "only production is held to the build-time target");
    }
}
