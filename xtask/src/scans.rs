//! `cargo xtask scan`, and the scans `cargo xtask check` runs before clippy:
//! the workflows (actionlint), the dependencies (cargo-deny: licences, bans,
//! sources, and advisories where their database can be fetched) and the
//! repository's files (detect-secrets against `.secrets.baseline`, whose every
//! entry has a reason in `xtask/checks/secrets-allowed.yaml`).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use local_cloud::{project_root, tools};
use serde_json::Value;

use crate::shell::run_checked;

/// Files detect-secrets does not read: Cargo.lock's checksums are hashes of
/// published crates, the baseline holds hashes of what it allows, and the
/// reasons file quotes the placeholders it explains.
pub const SECRETS_EXCLUDED_FILES: &str = r"^(Cargo\.lock|\.secrets\.baseline|xtask/checks/secrets-allowed\.yaml)$";

/// The scans alone (what the pipeline's security job runs).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Fail when the RustSec advisory database cannot be fetched (the
    /// pipeline); without it that is one line and the other checks still run.
    #[arg(long)]
    pub require_advisories: bool,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let passed = passes(args.require_advisories)?;
    eprintln!("xtask: scans finished in {:.0?}", started.elapsed());
    Ok(if passed { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Every scan, in order; false (having said why) at the first failure.
pub fn passes(require_advisories: bool) -> anyhow::Result<bool> {
    let scanners = tools::ensure_scanners()?;
    let root = project_root();
    let scans: [(&str, &dyn Fn() -> anyhow::Result<()>); 3] = [
        ("actionlint", &|| lint_workflows(&scanners, &root)),
        ("cargo deny", &|| deny(&scanners, &root, require_advisories)),
        ("detect-secrets", &|| secrets(&scanners, &root)),
    ];
    for (what, scan) in scans {
        if let Err(error) = scan() {
            eprintln!("xtask: scan FAILED ({what}): {error:#}");
            return Ok(false);
        }
    }
    Ok(true)
}

fn lint_workflows(scanners: &tools::Scanners, root: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut workflows: Vec<_> = std::fs::read_dir(root.join(".github/workflows"))
        .context("reading .github/workflows")?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    workflows.sort();
    run_checked(Command::new(&scanners.actionlint).args(&workflows).current_dir(root), "actionlint")?;
    println!("xtask: actionlint: {} workflows clean in {:.1?}", workflows.len(), started.elapsed());
    Ok(())
}

fn deny(scanners: &tools::Scanners, root: &Path, require_advisories: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let fetched = Command::new(&scanners.cargo_deny)
        .args(["fetch", "db"])
        .current_dir(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    let mut check = Command::new(&scanners.cargo_deny);
    check.args(["--log-level", "error", "check", "--hide-inclusion-graph"]).current_dir(root);
    if fetched {
        check.args(["advisories", "bans", "licenses", "sources"]);
    } else if require_advisories {
        bail!("the RustSec advisory database could not be fetched, and this run requires advisories");
    } else {
        println!(
            "xtask: cargo deny: advisories skipped: the RustSec advisory database could not be fetched here (the pipeline's security job always checks them)"
        );
        check.args(["bans", "licenses", "sources"]);
    }
    run_checked(&mut check, "cargo deny check")?;
    println!("xtask: cargo deny: passed in {:.1?}", started.elapsed());
    Ok(())
}

/// One secret detect-secrets reports: where, of which kind, and the hash of
/// its value (line numbers move with every edit; these do not).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Finding {
    file: String,
    kind: String,
    hashed: String,
}

fn findings(report: &Value) -> BTreeSet<Finding> {
    let mut found = BTreeSet::new();
    for (file, results) in report["results"].as_object().into_iter().flatten() {
        for result in results.as_array().into_iter().flatten() {
            found.insert(Finding {
                file: file.clone(),
                kind: result["type"].as_str().unwrap_or_default().to_owned(),
                hashed: result["hashed_secret"].as_str().unwrap_or_default().to_owned(),
            });
        }
    }
    found
}

/// A file pattern (`*` is any run of characters but `/`), the kinds it may
/// hold and why what it holds is not a secret.
#[derive(Debug, serde::Deserialize)]
struct Allowed {
    files: String,
    kinds: Vec<String>,
    reason: String,
}

fn secrets(scanners: &tools::Scanners, root: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let output = Command::new(&scanners.detect_secrets)
        .args(["scan", "--no-verify", "--exclude-files", SECRETS_EXCLUDED_FILES])
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()
        .context("running detect-secrets")?;
    if !output.status.success() {
        bail!("detect-secrets scan failed ({})", output.status);
    }
    let scanned: Value = serde_json::from_slice(&output.stdout).context("reading detect-secrets' report")?;
    let baseline_text = std::fs::read_to_string(root.join(".secrets.baseline")).context("reading .secrets.baseline")?;
    let baseline: Value = serde_json::from_str(&baseline_text).context("parsing .secrets.baseline")?;
    let allowed_text = std::fs::read_to_string(root.join("xtask/checks/secrets-allowed.yaml"))
        .context("reading xtask/checks/secrets-allowed.yaml")?;
    let allowed: Vec<Allowed> = serde_yaml::from_str(&allowed_text).context("parsing secrets-allowed.yaml")?;
    let problems = judge(&findings(&scanned), &findings(&baseline), &allowed);
    if !problems.is_empty() {
        for problem in &problems {
            eprintln!("  {problem}");
        }
        bail!(
            "{} secrets problems: remove a real secret (and rotate it); for a known non-secret, regenerate the baseline \
             (.tools/scanners/bin/detect-secrets scan --no-verify --exclude-files '{SECRETS_EXCLUDED_FILES}' > .secrets.baseline) \
             and give it a reason in xtask/checks/secrets-allowed.yaml",
            problems.len()
        );
    }
    println!(
        "xtask: detect-secrets: no new secret ({} known non-secrets, each with a reason) in {:.1?}",
        findings(&scanned).len(),
        started.elapsed()
    );
    Ok(())
}

/// What is wrong: a finding not in the baseline (a new secret), or a
/// baseline entry no reason covers. Baseline entries no longer found are
/// fine (the next regeneration drops them).
fn judge(scanned: &BTreeSet<Finding>, baseline: &BTreeSet<Finding>, allowed: &[Allowed]) -> Vec<String> {
    let mut problems: Vec<String> =
        scanned.difference(baseline).map(|f| format!("new {} in {} (hash {})", f.kind, f.file, f.hashed)).collect();
    for finding in baseline {
        let covered = allowed.iter().any(|rule| {
            !rule.reason.trim().is_empty()
                && matches_pattern(&rule.files, &finding.file)
                && rule.kinds.contains(&finding.kind)
        });
        if !covered {
            problems.push(format!(
                "the baseline allows a {} in {} but secrets-allowed.yaml gives no reason",
                finding.kind, finding.file
            ));
        }
    }
    problems
}

/// `*` matches any run of characters other than `/`; everything else itself.
fn matches_pattern(pattern: &str, path: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == path,
        Some((head, tail)) => {
            let Some(rest) = path.strip_prefix(head) else { return false };
            rest.char_indices()
                .map(|(i, _)| i)
                .chain([rest.len()])
                .take_while(|&i| !rest[..i].contains('/'))
                .any(|i| matches_pattern(tail, &rest[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::{Allowed, Finding, judge, matches_pattern};

    fn finding(file: &str, kind: &str, hashed: &str) -> Finding {
        Finding { file: file.into(), kind: kind.into(), hashed: hashed.into() }
    }

    #[test]
    fn a_star_matches_within_one_folder_only() {
        assert!(matches_pattern("events/*.json", "events/login.json"));
        assert!(matches_pattern("functions/*/Cargo.toml", "functions/login/Cargo.toml"));
        assert!(!matches_pattern("events/*.json", "events/deep/login.json"));
        assert!(!matches_pattern("events/*.json", "events/login.yaml"));
        assert!(matches_pattern("README.md", "README.md"));
    }

    #[test]
    fn a_secret_outside_the_baseline_fails_and_a_baseline_entry_needs_a_reason() {
        let allowed = vec![Allowed {
            files: "events/*.json".into(),
            kinds: vec!["JSON Web Token".into()],
            reason: "signed with the test key".into(),
        }];
        let known = finding("events/login.json", "JSON Web Token", "aa");
        let baseline: BTreeSet<_> = [known.clone()].into();
        assert!(judge(&baseline, &baseline, &allowed).is_empty());

        let leaked = finding("shared/app/src/lib.rs", "AWS Access Key", "bb");
        let scanned: BTreeSet<_> = [known.clone(), leaked].into();
        let problems = judge(&scanned, &baseline, &allowed);
        assert_eq!(problems, ["new AWS Access Key in shared/app/src/lib.rs (hash bb)"]);

        let unexplained: BTreeSet<_> = [finding("template.yaml", "Secret Keyword", "cc")].into();
        let problems = judge(&unexplained, &unexplained, &allowed);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("gives no reason"));
    }
}
