//! The API contract as its callers' tools read it, in `cargo xtask check`:
//! docs/openapi.yaml linted by Spectral (`spectral:oas` and the OWASP API
//! Security ruleset, with the exceptions of `xtask/checks/openapi.spectral.yaml`)
//! and by Redocly CLI (`recommended`, no exception). Any error or warning of
//! either fails. The tools are pinned in
//! `testing/local-cloud/tools/contract/package-lock.json`.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use local_cloud::{project_root, tools};
use serde_json::Value;

use crate::shell::run_checked;

/// The ruleset, as committed; it is run from a copy in `.tools/contract`,
/// where Spectral finds the OWASP ruleset's package (its `files` pointers
/// name `../../docs/openapi.yaml` and so hold from either folder).
const RULESET: &str = "xtask/checks/openapi.spectral.yaml";

pub fn lint() -> anyhow::Result<()> {
    let tools = tools::ensure_contract_tools()?;
    let root = project_root();
    spectral(&tools, &root)?;
    redocly(&tools, &root)
}

fn spectral(tools: &tools::ContractTools, root: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let ruleset = tools.dir.join("openapi.spectral.yaml");
    std::fs::copy(root.join(RULESET), &ruleset).with_context(|| format!("copying {RULESET}"))?;
    // Any result fails (warnings and hints included): every rule that does
    // not fit is turned off or excepted, with its reason, in the ruleset.
    run_checked(
        Command::new(tools.bin.join("spectral"))
            .args(["lint", "--ruleset", "openapi.spectral.yaml", "--fail-severity", "hint", "--format", "stylish"])
            .arg(root.join("docs/openapi.yaml"))
            .current_dir(&tools.dir),
        "spectral lint docs/openapi.yaml",
    )?;
    println!(
        "xtask: spectral (spectral:oas, OWASP API Security): docs/openapi.yaml clean in {:.1?}",
        started.elapsed()
    );
    Ok(())
}

fn redocly(tools: &tools::ContractTools, root: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let output = Command::new(tools.bin.join("redocly"))
        .args(["lint", "--extends", "recommended", "--format", "json"])
        .arg(root.join("docs/openapi.yaml"))
        .env("REDOCLY_TELEMETRY", "off")
        .env("REDOCLY_SUPPRESS_UPDATE_NOTICE", "true")
        .current_dir(root)
        .output()
        .context("running redocly lint")?;
    let report: Value = serde_json::from_slice(&output.stdout).with_context(|| {
        format!("reading redocly's report ({}): {}", output.status, String::from_utf8_lossy(&output.stderr))
    })?;
    let problems = report["problems"].as_array().map_or(0, Vec::len);
    if problems > 0 || !output.status.success() {
        for problem in report["problems"].as_array().into_iter().flatten() {
            eprintln!(
                "  {} {}: {} at {}",
                problem["severity"].as_str().unwrap_or("?"),
                problem["ruleId"].as_str().unwrap_or("?"),
                problem["message"].as_str().unwrap_or("?"),
                problem["location"][0]["pointer"].as_str().unwrap_or("?"),
            );
        }
        bail!("redocly lint (recommended): {problems} problems in docs/openapi.yaml ({})", report["totals"]);
    }
    println!("xtask: redocly lint (recommended): docs/openapi.yaml clean in {:.1?}", started.elapsed());
    Ok(())
}
