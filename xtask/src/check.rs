//! `cargo xtask check`: the checks that need no local cloud, cheapest and
//! quickest to fail first, stopping at the first failure. `cargo xtask test`
//! runs it before it installs or starts anything.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use local_cloud::{project_root, tools};
use rand::distr::{Alphanumeric, SampleString};

use crate::shell::{cargo, run_checked};

/// Formatting, the freshness of the generated regions (`cargo xtask codegen
/// --check`), the API contract's linters (Spectral, Redocly CLI), the scans,
/// clippy (pedantic, warnings are errors), the tests that need no local cloud
/// (plain `cargo test`: the cloud tests skip themselves), then the
/// template checks (cfn-lint, `sam validate --lint`, the expanded-stack check
/// with checkov, cfn-guard with the Guard Rules Registry's rules). Stops at the
/// first failure. Offline once `.tools/` is installed.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only the template checks (cfn-lint, `sam validate --lint`, the
    /// expanded-stack check, cfn-guard): an inner loop for edits of the templates.
    #[arg(long)]
    pub templates_only: bool,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let passed = if args.templates_only { templates_pass()? } else { passes()? };
    eprintln!("\nxtask: check finished in {:.0?}", started.elapsed());
    if passed {
        println!("xtask: check passed");
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::FAILURE)
    }
}

/// Runs every check in order; false (having said why) at the first failure.
pub fn passes() -> anyhow::Result<bool> {
    eprintln!("xtask: formatting (rustfmt.toml)");
    if let Err(error) = run_checked(cargo().args(["fmt", "--all", "--check"]), "cargo fmt --check") {
        return Ok(failed(&error, "run `cargo fmt --all` to format the tree"));
    }
    eprintln!("\nxtask: generated regions fresh (cargo xtask codegen --check)");
    let stale = crate::codegen::generate(&project_root(), crate::codegen::Mode::Check)?;
    if !stale.is_empty() {
        let error = anyhow::anyhow!("generated regions are stale in {}", stale.join(", "));
        return Ok(failed(&error, "run `cargo xtask codegen`"));
    }
    eprintln!("\nxtask: the API contract (Spectral: spectral:oas and OWASP; Redocly CLI: recommended)");
    if let Err(error) = crate::contract::lint() {
        return Ok(failed(
            &error,
            "fix docs/openapi.yaml, or except the rule with its reason in xtask/checks/openapi.spectral.yaml",
        ));
    }
    eprintln!("\nxtask: scans: workflows (actionlint), dependencies (cargo deny), secrets (detect-secrets)");
    if !crate::scans::passes(false)? {
        return Ok(failed(&anyhow::anyhow!("a scan failed"), "see the scan's findings above"));
    }
    eprintln!("\nxtask: clippy (pedantic, warnings are errors)");
    if let Err(error) = run_checked(
        cargo().args(["clippy", "--workspace", "--all-targets", "--quiet", "--", "-D", "warnings"]),
        "clippy",
    ) {
        return Ok(failed(&error, "fix the warnings above"));
    }
    eprintln!("\nxtask: the tests that need no local cloud (cargo test; the cloud tests skip themselves)");
    if let Err(error) = run_checked(cargo().args(["test", "--workspace", "--quiet"]), "cargo test") {
        return Ok(failed(&error, "see the failing tests above"));
    }
    templates_pass()
}

fn templates_pass() -> anyhow::Result<bool> {
    eprintln!("\nxtask: linting template.yaml and checking the expanded stack");
    let tools = tools::ensure()?;
    if let Err(error) = lint(&tools) {
        return Ok(failed(&error, "see the template problems above"));
    }
    Ok(true)
}

/// Says which check failed and what to do; false.
fn failed(error: &anyhow::Error, hint: &str) -> bool {
    eprintln!("xtask: check FAILED: {error:#}; {hint}");
    false
}

fn lint(tools: &tools::Tools) -> anyhow::Result<()> {
    let root = project_root();
    let mut templates = vec![PathBuf::from("template.yaml")];
    let mut nested: Vec<PathBuf> = std::fs::read_dir(root.join("infra"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    nested.sort();
    templates.extend(nested);
    // Deployed by hand once per account, not by template.yaml.
    templates.push(PathBuf::from("infra/bootstrap/github-oidc.yaml"));
    templates.push(PathBuf::from("infra/bootstrap/backup-copy-vault.yaml"));
    run_checked(Command::new(tools.venv_bin.join("cfn-lint")).args(&templates).current_dir(&root), "cfn-lint")?;
    run_checked(
        Command::new(tools.venv_bin.join("sam"))
            .args(["validate", "--lint", "--template-file", "template.yaml", "--region", "us-east-1"])
            .env("SAM_CLI_TELEMETRY", "0")
            .env("PATH", tools.path_env())
            .current_dir(&root),
        "sam validate --lint",
    )?;
    // The stack as `sam deploy` creates it: expanded with samtranslator, then
    // checked (stages, IAM wildcards, deployment alarms, stateful resources,
    // samconfig) and scanned by checkov; exceptions in xtask/checks/exceptions.toml.
    let checkov = tools::ensure_checkov()?;
    run_checked(&mut stack_check(tools, &checkov, &root), "expanded stack check (xtask/checks/stack)")?;
    stack_check_from_a_key_shaped_path(tools, &checkov)?;
    // The Guard Rules Registry's rules on the same expanded templates;
    // exceptions in xtask/checks/guard/exceptions.toml.
    crate::guard::check(&root)
}

/// The package `xtask/checks/stack` of the checkout at `root` (run as a
/// module from the root, so its parts import each other), with checkov.
fn stack_check(tools: &tools::Tools, checkov: &Path, root: &Path) -> Command {
    let mut command = Command::new(tools.venv_bin.join("python"));
    command
        .args(["-m", "xtask.checks.stack"])
        .arg("--checkov")
        .arg(checkov)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .current_dir(root);
    command
}

/// The stack check must not depend on where the checkout lives. checkov
/// copies the path of the file it scans into every mapping it parses, a
/// Lambda function's environment variables included, and its AWS secret key
/// pattern (exactly 40 of `A-Za-z0-9/+=`) matched the path of a clone made
/// in `$(mktemp -d)/repo`: ten random characters after `tmp.`, then
/// `/repo/target/expanded/template`. Every function then failed CKV_AWS_45.
/// This runs the whole stack check again from a copy of the working tree at
/// such a path.
fn stack_check_from_a_key_shaped_path(tools: &tools::Tools, checkov: &Path) -> anyhow::Result<()> {
    let parent = std::env::temp_dir().join(format!("tmp.{}", Alphanumeric.sample_string(&mut rand::rng(), 10)));
    let copy = parent.join("repo");
    let scanned = copy.join("target/expanded/template");
    if !holds_a_secret_key_shaped_run(&scanned.to_string_lossy()) {
        bail!("{} holds no run of exactly 40 key characters: this check would prove nothing", scanned.display());
    }
    let outcome = copy_working_tree(&copy).and_then(|()| {
        let output = stack_check(tools, checkov, &copy)
            .stdin(Stdio::null())
            .output()
            .context("running the stack check from a copy")?;
        if !output.status.success() {
            eprint!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
            bail!("the stack check fails from a checkout at {} ({})", copy.display(), output.status);
        }
        Ok(())
    });
    let _ = std::fs::remove_dir_all(&parent);
    outcome?;
    println!(
        "xtask: the stack check passes from a checkout at a path shaped like an AWS secret key: 1 passed, 0 failed"
    );
    Ok(())
}

/// Whether `text` holds what checkov's AWS secret access key pattern
/// matches: exactly 40 of `A-Za-z0-9/+=`, with none of them either side.
fn holds_a_secret_key_shaped_run(text: &str) -> bool {
    let is_key_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '/' | '+' | '=');
    text.split(|c: char| !is_key_char(c)).any(|run| run.len() == 40)
}

/// The tracked and the untracked-but-not-ignored files of the checkout, as
/// they are in the working tree, copied under `to`.
fn copy_working_tree(to: &Path) -> anyhow::Result<()> {
    let root = project_root();
    let output = Command::new("git")
        .args(["ls-files", "-z", "--cached", "--others", "--exclude-standard"])
        .current_dir(&root)
        .stderr(Stdio::inherit())
        .output()
        .context("git ls-files")?;
    if !output.status.success() {
        bail!("git ls-files failed ({})", output.status);
    }
    for path in output.stdout.split(|&b| b == 0).filter(|p| !p.is_empty()) {
        let relative = Path::new(std::str::from_utf8(path).context("a file name that is not UTF-8")?);
        let source = root.join(relative);
        // A tracked file deleted in the working tree is not part of it.
        if !source.is_file() {
            continue;
        }
        let target = to.join(relative);
        std::fs::create_dir_all(target.parent().expect("a file lives in a folder"))?;
        std::fs::copy(&source, &target).with_context(|| format!("copying {}", relative.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::holds_a_secret_key_shaped_run;

    #[test]
    fn a_mktemp_clone_path_holds_a_key_shaped_run() {
        assert!(holds_a_secret_key_shaped_run("/tmp/tmp.HrYLLpc328/repo/target/expanded/template.json"));
    }

    #[test]
    fn a_run_of_other_lengths_or_broken_by_other_characters_is_not_key_shaped() {
        assert!(!holds_a_secret_key_shaped_run("/work/main/target/expanded/template.json"));
        assert!(!holds_a_secret_key_shaped_run("/tmp/tmp.HrYLLpc3281/repo/target/expanded/template.json"));
        assert!(!holds_a_secret_key_shaped_run("/tmp/tmp.HrYLL-pc32/repo/target/expanded/template.json"));
    }
}
