//! The AWS CloudFormation Guard Rules Registry's rules on the expanded stack:
//! `cfn-guard validate` of the rule files vendored in
//! `xtask/checks/guard/rules/` (the Well-Architected Reliability and Security
//! pillar sets and the rules of every service the stack uses) on the templates
//! the stack check wrote to `target/expanded/`. Every failure must be listed
//! with its reason in `xtask/checks/guard/exceptions.toml`; an exception
//! without a reason, or one that matches nothing, fails the run too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use local_cloud::tools;
use serde_json::Value;

pub const RULES: &str = "xtask/checks/guard/rules";
pub const EXCEPTIONS: &str = "xtask/checks/guard/exceptions.toml";
const EXPANDED: &str = "target/expanded";

/// A rule that failed on one resource of one expanded template.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Failure {
    rule: String,
    /// The template's file stem: `template` or a nested stack's logical id.
    stack: String,
    /// The logical id of the resource, or `?` when the report names none.
    resource: String,
}

/// One accepted failure: the rule, the resource's logical id (in any
/// template) or `*` for every resource, and why.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Exception {
    rule: String,
    resource: String,
    #[serde(default)]
    reason: String,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ExceptionsFile {
    #[serde(default)]
    exception: Vec<Exception>,
}

impl Exception {
    fn covers(&self, failure: &Failure) -> bool {
        self.rule == failure.rule && (self.resource == "*" || self.resource == failure.resource)
    }
}

/// What cfn-guard said about every rule on every template.
#[derive(Debug, Default)]
struct Outcome {
    /// Every rule name cfn-guard evaluated, on any template.
    rules: BTreeSet<String>,
    /// Rules that passed on at least one template.
    passed: BTreeSet<String>,
    failures: BTreeSet<Failure>,
    /// How many templates were checked.
    templates: usize,
}

/// Runs cfn-guard (installing it once) and judges its failures against the
/// exceptions. `target/expanded/` must be fresh: the stack check writes it.
pub fn check(root: &Path) -> anyhow::Result<()> {
    let cfn_guard = tools::ensure_cfn_guard()?;
    let started = Instant::now();
    let report = run_cfn_guard(&cfn_guard, root)?;
    let outcome = outcome(&report)?;
    let text = std::fs::read_to_string(root.join(EXCEPTIONS)).with_context(|| format!("reading {EXCEPTIONS}"))?;
    let exceptions: ExceptionsFile = toml::from_str(&text).with_context(|| format!("parsing {EXCEPTIONS}"))?;
    let problems = judge(&outcome.failures, &exceptions.exception);
    let failed: BTreeSet<&str> = outcome.failures.iter().map(|f| f.rule.as_str()).collect();
    let passed = outcome.passed.iter().filter(|rule| !failed.contains(rule.as_str())).count();
    let skipped = outcome.rules.len() - passed - failed.len();
    if !problems.is_empty() {
        for problem in &problems {
            eprintln!("  {problem}");
        }
        bail!(
            "{} cfn-guard problems: fix the template (or the generator of its region: cargo xtask codegen), \
             or list the failure with its reason in {EXCEPTIONS}",
            problems.len()
        );
    }
    println!(
        "xtask: cfn-guard: {} rules, {passed} passed, {} failed (all excepted with a reason: {} resources), \
         {skipped} not applicable, on {} templates in {:.1?}",
        outcome.rules.len(),
        failed.len(),
        outcome.failures.len(),
        outcome.templates,
        started.elapsed()
    );
    Ok(())
}

/// cfn-guard's structured JSON report (one entry per template and process).
/// It is single-threaded and spends its time per rule file (each selects
/// from every resource), so the rule files are split over one process per
/// core and the reports joined; a template's entries then come once per
/// process, which [`outcome`] merges.
fn run_cfn_guard(cfn_guard: &Path, root: &Path) -> anyhow::Result<Value> {
    let mut rule_files = Vec::new();
    collect_rule_files(&root.join(RULES), &mut rule_files)?;
    rule_files.sort();
    if rule_files.is_empty() {
        bail!("no rule files under {RULES}");
    }
    let processes = std::thread::available_parallelism().map_or(2, std::num::NonZero::get).clamp(1, 4);
    let mut groups = vec![Vec::new(); processes.min(rule_files.len())];
    let count = groups.len();
    for (index, file) in rule_files.into_iter().enumerate() {
        groups[index % count].push(file);
    }
    let children = groups
        .iter()
        .map(|files| {
            let mut command = Command::new(cfn_guard);
            command.arg("validate");
            for file in files {
                command.arg("--rules").arg(file);
            }
            command
                .args(["--data", EXPANDED, "--output-format", "json", "--structured", "--show-summary", "none"])
                .current_dir(root)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .context("running cfn-guard")
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut joined = Vec::new();
    for child in children {
        let output = child.wait_with_output().context("waiting for cfn-guard")?;
        // 0: every rule passed or skipped; 19: a rule failed; anything else
        // (5: a rule file did not parse) is an error of the run itself.
        if !matches!(output.status.code(), Some(0 | 19)) {
            bail!("cfn-guard validate failed ({})", output.status);
        }
        let report: Value = serde_json::from_slice(&output.stdout).context("reading cfn-guard's JSON report")?;
        joined.extend(report.as_array().context("cfn-guard's report is not a list of files")?.iter().cloned());
    }
    Ok(Value::Array(joined))
}

fn collect_rule_files(folder: &Path, found: &mut Vec<std::path::PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(folder).with_context(|| format!("reading {}", folder.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_rule_files(&path, found)?;
        } else if path.extension().is_some_and(|x| x == "guard") {
            found.push(path);
        }
    }
    Ok(())
}

/// The rules, passes and failures of cfn-guard's structured JSON report (one
/// entry per data file).
fn outcome(report: &Value) -> anyhow::Result<Outcome> {
    let files = report.as_array().context("cfn-guard's report is not a list of files")?;
    let mut outcome = Outcome::default();
    let mut templates = BTreeSet::new();
    for file in files {
        let name = file["name"].as_str().context("a file report without a name")?;
        templates.insert(name);
        let stack = Path::new(name).file_stem().map_or_else(|| name.to_owned(), |s| s.to_string_lossy().into_owned());
        let names = |key: &str| -> Vec<String> {
            file[key].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect()
        };
        outcome.rules.extend(names("not_applicable"));
        for rule in names("compliant") {
            outcome.rules.insert(rule.clone());
            outcome.passed.insert(rule);
        }
        for entry in file["not_compliant"].as_array().into_iter().flatten() {
            let rule = entry["Rule"]["name"].as_str().context("a failure that names no rule")?.to_owned();
            outcome.rules.insert(rule.clone());
            let mut resources = BTreeSet::new();
            resources_in(entry, &mut resources);
            if resources.is_empty() {
                resources.insert("?".to_owned());
            }
            for resource in resources {
                outcome.failures.insert(Failure { rule: rule.clone(), stack: stack.clone(), resource });
            }
        }
    }
    outcome.templates = templates.len();
    Ok(outcome)
}

/// The logical ids of the resources a failure's checks point at: every
/// `path` under `/Resources/<id>`.
fn resources_in(value: &Value, found: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                if key == "path"
                    && let Some(id) = inner.as_str().and_then(|p| p.strip_prefix("/Resources/"))
                {
                    found.insert(id.split('/').next().unwrap_or(id).to_owned());
                } else {
                    resources_in(inner, found);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| resources_in(item, found)),
        _ => {}
    }
}

/// What is wrong: a failure no exception covers, an exception without a
/// reason, an exception that covers nothing.
fn judge(failures: &BTreeSet<Failure>, exceptions: &[Exception]) -> Vec<String> {
    let mut problems = Vec::new();
    for exception in exceptions.iter().filter(|e| e.reason.trim().is_empty()) {
        problems.push(format!(
            "{EXCEPTIONS}: the exception for {} on {} has no reason",
            exception.rule, exception.resource
        ));
    }
    let mut uncovered: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for failure in failures {
        if !exceptions.iter().any(|e| !e.reason.trim().is_empty() && e.covers(failure)) {
            uncovered.entry(&failure.rule).or_default().push(format!("{}/{}", failure.stack, failure.resource));
        }
    }
    for (rule, resources) in uncovered {
        problems.push(format!("{rule} fails on {}", resources.join(", ")));
    }
    for exception in exceptions.iter().filter(|e| !failures.iter().any(|f| e.covers(f))) {
        problems.push(format!(
            "{EXCEPTIONS}: the exception for {} on {} matches nothing (remove it)",
            exception.rule, exception.resource
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::json;

    use super::{Exception, Failure, judge, outcome};

    fn failure(rule: &str, resource: &str) -> Failure {
        Failure { rule: rule.into(), stack: "template".into(), resource: resource.into() }
    }

    fn exception(rule: &str, resource: &str, reason: &str) -> Exception {
        Exception { rule: rule.into(), resource: resource.into(), reason: reason.into() }
    }

    #[test]
    fn a_failure_is_attributed_to_the_resources_its_checks_point_at() {
        let report = json!([{
            "name": "target/expanded/Queues.json",
            "metadata": {},
            "status": "FAIL",
            "not_compliant": [{"Rule": {"name": "SQS_QUEUE_KMS_MASTER_KEY_ID_RULE", "metadata": {}, "messages": {},
                "checks": [{"Clause": {"Unary": {"context": "x", "messages": {},
                    "check": {"UnResolved": {"value": {"traversed_to": {"path": "/Resources/OrdersQueue/Properties", "value": {}},
                        "remaining_query": "KmsMasterKeyId"}}}}}},
                    {"Clause": {"Binary": {"check": {"Resolved": {"from": {"path": "/Resources/EventsDlq/Properties/SqsManagedSseEnabled", "value": true}}}}}}]}}],
            "not_applicable": ["LAMBDA_DLQ_CHECK"],
            "compliant": ["SQS_QUEUEPOLICY_NO_WILDCARD_ACTION"]
        }]);
        let outcome = outcome(&report).unwrap();
        assert_eq!(outcome.rules.len(), 3);
        assert_eq!(outcome.passed, BTreeSet::from(["SQS_QUEUEPOLICY_NO_WILDCARD_ACTION".to_owned()]));
        let stacks_and_resources: Vec<_> =
            outcome.failures.iter().map(|f| (f.stack.as_str(), f.resource.as_str())).collect();
        assert_eq!(stacks_and_resources, [("Queues", "EventsDlq"), ("Queues", "OrdersQueue")]);
    }

    #[test]
    fn every_failure_needs_an_exception_with_a_reason_and_every_exception_a_failure() {
        let failures: BTreeSet<_> = [failure("LAMBDA_INSIDE_VPC", "LoginFunction"), failure("X", "A")].into();
        let exceptions = [
            exception("LAMBDA_INSIDE_VPC", "*", "no VPC: the functions call only AWS APIs"),
            exception("X", "A", "why"),
        ];
        assert!(judge(&failures, &exceptions).is_empty());

        let problems = judge(&failures, &[exception("LAMBDA_INSIDE_VPC", "*", " "), exception("X", "A", "why")]);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("has no reason"), "{problems:?}");
        assert_eq!(problems[1], "LAMBDA_INSIDE_VPC fails on template/LoginFunction");

        let stale = [exception("X", "A", "why"), exception("X", "B", "why"), exception("LAMBDA_INSIDE_VPC", "*", "r")];
        let problems = judge(&failures, &stale);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("X on B matches nothing"), "{problems:?}");
    }
}
