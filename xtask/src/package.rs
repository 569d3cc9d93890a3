//! `cargo xtask package`: every function for arm64 (release), in one cargo
//! invocation, into target/lambda/<function>/ where template.yaml's CodeUri points.
//! With `--write-docs` its build time and sizes become the package section of
//! docs/performance.md.

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::Context;
use local_cloud::template::Template;
use local_cloud::{project_root, tools};

use crate::shell::{cargo, run_checked};

/// Builds every function for arm64 (release) and prints their sizes.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also rewrite the package section of docs/performance.md (build time, sizes).
    #[arg(long)]
    pub write_docs: bool,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let tools = tools::ensure()?;
    let template = Template::load_project()?;
    let functions: Vec<String> = template.functions()?.into_iter().map(|f| f.package).collect();
    let started = Instant::now();
    let mut build = cargo();
    build.args(["lambda", "build", "--release", "--arm64"]).env("PATH", tools.path_env());
    for function in &functions {
        build.args(["--package", function]);
    }
    run_checked(&mut build, "cargo lambda build")?;
    let built_in = started.elapsed();

    let mut report = format!("arm64 release build of {} functions in {built_in:.0?}\n\n", functions.len());
    report.push_str("| function | bootstrap (bytes) | zip (bytes) |\n|---|---:|---:|\n");
    let mut largest_zip = 0;
    for function in &functions {
        let dir = project_root().join("target/lambda").join(function);
        let binary =
            std::fs::metadata(dir.join("bootstrap")).with_context(|| format!("{function} was not built"))?.len();
        let zip = zipped_size(&tools, &dir.join("bootstrap"))?;
        largest_zip = largest_zip.max(zip);
        report.push_str(&format!("| {function} | {binary} | {zip} |\n"));
    }
    std::fs::write(project_root().join("target/lambda/sizes.md"), &report)?;
    let largest = format!("largest zip: {:.2} MB", largest_zip as f64 / 1e6);
    println!("{report}\n{largest}; written to target/lambda/sizes.md");
    if args.write_docs {
        let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
        let body = format!(
            "Measured on this machine ({cores} cores), with whatever the target folder held before (an empty \
             `target/lambda` and `target/aarch64-unknown-linux-gnu` measure a build from nothing). Zip sizes as \
             SAM packages them (deflate).\n\n{report}\n{largest}.\n"
        );
        crate::docs::write_section(
            crate::docs::Doc::Performance,
            "package",
            "cargo xtask package --write-docs",
            &body,
        )?;
    }
    println!("deploy with: sam deploy --config-env dev   (CodeUri points at target/lambda/<function>/)");
    Ok(ExitCode::SUCCESS)
}

/// The size of `file` zipped as SAM packages it (deflate), via Python's zipfile.
fn zipped_size(tools: &tools::Tools, file: &Path) -> anyhow::Result<u64> {
    let script = "import io,sys,zipfile\nb=io.BytesIO()\nz=zipfile.ZipFile(b,'w',zipfile.ZIP_DEFLATED)\nz.write(sys.argv[1],'bootstrap')\nz.close()\nprint(len(b.getvalue()))";
    let output = Command::new(tools.venv_bin.join("python")).args(["-c", script]).arg(file).output()?;
    anyhow::ensure!(output.status.success(), "zipping {} failed", file.display());
    Ok(String::from_utf8(output.stdout)?.trim().parse()?)
}
