//! Least privilege, checked: every IAM action a function's role grants in
//! template.yaml must be used by its code, and every call its code makes must
//! be granted, down to the partition: each DynamoDB item or query the code
//! touched must satisfy the `dynamodb:LeadingKeys` condition of a statement
//! granting it, and a DynamoDB statement without one must be an exception
//! with its reason (`unconditioned` in the function's metadata). The calls
//! are recorded while the test suite (and its load) drives every function
//! (see `adapters::recorder::CallRecorder`).
//!
//! How IAM sees the keys (what the recorder writes and this check assumes):
//! a single-item call is judged by its key's partition value; a transaction
//! item by item, each as its own single-item action (TransactWriteItems'
//! Put, Update, Delete and ConditionCheck as PutItem, UpdateItem, DeleteItem
//! and ConditionCheckItem) with its own key; BatchGetItem key by key; a
//! Query by the partition value of its key condition, which on an index is
//! the index's partition key, on the index's ARN. `ForAllValues` passes a
//! request that names no key (a Scan), so no statement grants one under a
//! key condition.
//!
//! Each function has a role of its own in the template (SAM's generated roles
//! carry AWS managed policies with `Resource: "*"`). Statements that Lambda
//! uses on the function's behalf rather than its code (its log group, its
//! queue) carry a `Sid` from [`LAMBDA_SERVICE_SIDS`] and are not compared
//! with calls; `xtask/checks/stack` checks those, and that no statement in
//! the expanded stack has a wildcard resource.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, bail};
use serde_yaml::Value;

use local_cloud::template::{Resource, Stack, Template, defaults};

/// (IAM action, resource by logical name: `Table`, `Table/index/gsi1`, `UserCreatedQueue`, ...)
pub type Grant = (String, String);

/// One action on one resource as one statement grants it, with the
/// `dynamodb:LeadingKeys` patterns it is limited to (`None`: every key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub grant: Grant,
    pub leading_keys: Option<Vec<String>>,
}

/// One recorded call: an action on a resource (logical name) and, for a
/// DynamoDB item or query, its partition key value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Call {
    pub grant: Grant,
    pub partition: Option<String>,
}

/// Grants used only when something fails, which the suite cannot provoke
/// without breaking the local cloud. Each names why it must stay.
pub const FAILURE_PATH_GRANTS: &[(&str, &str, &str, &str)] = &[
    ("on-user-created", "dynamodb:DeleteItem", "Table", "releases a message claim after a failed attempt"),
    ("send-email", "dynamodb:DeleteItem", "Table", "releases an email claim when SES is unavailable"),
    (
        "relay-outbox",
        "sqs:SendMessage",
        "OrderPlacedQueue",
        "relays order-placed events whose handler could not publish",
    ),
    ("relay-outbox", "sqs:SendMessage", "EmailSendQueue", "relays email tasks whose consumer could not publish"),
];

/// Grants the suite's recorded calls cannot show: KMS calls Secrets Manager
/// makes on the role's behalf (a read or write of the customer-key-encrypted
/// private token keys), and the rotation's writes, made only when a rotation
/// is due (the local stack creates its keys fresh; the black-box rotation test
/// drives the same code from the test process). Each names why it must stay.
pub const UNRECORDED_GRANTS: &[(&str, &str, &str, &str)] = &[
    ("login", "kms:Decrypt", "TokenSigningKmsKey", "Secrets Manager decrypts the private token keys login reads"),
    (
        "refresh-session",
        "kms:Decrypt",
        "TokenSigningKmsKey",
        "Secrets Manager decrypts the private token keys refresh-session reads",
    ),
    ("rotate-token-keys", "kms:Decrypt", "TokenSigningKmsKey", "Secrets Manager decrypts the private token keys"),
    ("rotate-token-keys", "kms:GenerateDataKey", "TokenSigningKmsKey", "Secrets Manager encrypts the rotated keys"),
    ("rotate-token-keys", "secretsmanager:PutSecretValue", "TokenSigningKeySecret", "stores a rotated private set"),
    ("rotate-token-keys", "secretsmanager:PutSecretValue", "TokenPublicKeysSecret", "publishes a rotated public set"),
];

/// Statement ids of what Lambda itself does with a function's role: write
/// its log group, poll its queue. Its code never makes these calls.
pub const LAMBDA_SERVICE_SIDS: &[&str] = &["WritesItsOwnLogGroup", "ReadsItsQueue"];

/// Holds the calls recorded in a file (a `cargo xtask test` run's, or a
/// `cargo xtask load` run's) against each function's IAM policy in
/// template.yaml, key conditions included.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The recorded calls; the last `cargo xtask test` run's by default.
    #[arg(long)]
    pub calls: Option<std::path::PathBuf>,
    /// The name prefix of the local stack that recorded them (`test`, `load`).
    #[arg(long, default_value = "test")]
    pub prefix: String,
    /// The address emails were sent from (default: SENDER_EMAIL of the
    /// cloud.env beside the calls file, else shop@example.com).
    #[arg(long)]
    pub sender: Option<String>,
}

pub fn run(args: &Args) -> anyhow::Result<std::process::ExitCode> {
    let calls = args.calls.clone().unwrap_or_else(|| local_cloud::local_dir().join("test/aws-calls.tsv"));
    let from_env = std::fs::read_to_string(calls.with_file_name("cloud.env"))
        .ok()
        .and_then(|text| text.lines().find_map(|line| line.strip_prefix("SENDER_EMAIL=").map(str::to_owned)));
    let sender = args.sender.clone().or(from_env).unwrap_or_else(|| "shop@example.com".into());
    let template = Template::load_project()?;
    let problems = check_calls(&template, &calls, &args.prefix, &[("SENDER_EMAIL".into(), sender)])?;
    let recorded = std::fs::read_to_string(&calls).map_or(0, |text| text.lines().count());
    for problem in &problems {
        eprintln!("  {problem}");
    }
    if problems.is_empty() {
        println!(
            "xtask: iam: {recorded} recorded calls in {} allowed, partitions included: 1 passed, 0 failed",
            calls.display()
        );
        Ok(std::process::ExitCode::SUCCESS)
    } else {
        eprintln!("xtask: iam: {} problem(s) in {recorded} recorded calls: 0 passed, 1 failed", problems.len());
        Ok(std::process::ExitCode::FAILURE)
    }
}

/// What each function's role grants its code, by package name.
pub fn granted(template: &Template) -> anyhow::Result<BTreeMap<String, BTreeSet<Grant>>> {
    Ok(permissions(template)?
        .into_iter()
        .map(|(function, permissions)| (function, permissions.into_iter().map(|p| p.grant).collect()))
        .collect())
}

/// What each function's role grants its code, statement by statement with
/// their key conditions, by package name.
pub fn permissions(template: &Template) -> anyhow::Result<BTreeMap<String, Vec<Permission>>> {
    let mut grants = BTreeMap::new();
    for function in template.functions()? {
        let resource = template
            .resources_of_kind("AWS::Serverless::Function")
            .into_iter()
            .find(|r| r.logical_id == function.logical_id)
            .expect("functions come from resources");
        let role = role_of(&resource)
            .with_context(|| format!("{}: `Role: !GetAtt <its role>.Arn` (a role of its own)", function.package))?;
        let mut set = Vec::new();
        for policy in role["Properties"]["Policies"].as_sequence().into_iter().flatten() {
            for statement in policy["PolicyDocument"]["Statement"].as_sequence().into_iter().flatten() {
                if statement["Effect"].as_str() != Some("Allow") {
                    continue;
                }
                if statement["Sid"].as_str().is_some_and(|sid| LAMBDA_SERVICE_SIDS.contains(&sid)) {
                    continue;
                }
                let actions: Vec<String> = match &statement["Action"] {
                    Value::Sequence(list) => list.iter().filter_map(|a| a.as_str().map(str::to_owned)).collect(),
                    Value::String(one) => vec![one.clone()],
                    other => bail!("{}: unexpected Action {other:?}", function.package),
                };
                let resources: Vec<&Value> = match &statement["Resource"] {
                    Value::Sequence(list) => list.iter().collect(),
                    one => vec![one],
                };
                let leading_keys = leading_keys(statement).with_context(|| function.package.clone())?;
                for value in resources {
                    let name = symbolic(template, resource.stack, value)
                        .with_context(|| format!("{}: a policy resource", function.package))?;
                    for action in &actions {
                        set.push(Permission {
                            grant: (action.clone(), name.clone()),
                            leading_keys: leading_keys.clone(),
                        });
                    }
                }
            }
        }
        grants.insert(function.package, set);
    }
    Ok(grants)
}

/// A statement's `dynamodb:LeadingKeys` patterns (`ForAllValues:StringLike`),
/// `None` without a condition; any other condition is refused, since this
/// check could not say what it allows.
fn leading_keys(statement: &Value) -> anyhow::Result<Option<Vec<String>>> {
    let condition = &statement["Condition"];
    if condition.is_null() {
        return Ok(None);
    }
    let operators = condition.as_mapping().context("a Condition that is no mapping")?;
    let like = &condition["ForAllValues:StringLike"];
    let keys = like["dynamodb:LeadingKeys"].as_sequence();
    let understood = operators.len() == 1 && like.as_mapping().is_some_and(|m| m.len() == 1) && keys.is_some();
    if !understood {
        bail!("a Condition other than ForAllValues:StringLike dynamodb:LeadingKeys: {condition:?}");
    }
    let keys = keys
        .into_iter()
        .flatten()
        .map(|key| key.as_str().map(str::to_owned).context("a leading key that is no string"));
    Ok(Some(keys.collect::<anyhow::Result<_>>()?))
}

/// IAM's `StringLike`: `*` matches any run of characters, `?` any one.
pub fn string_like(pattern: &str, value: &str) -> bool {
    let (pattern, value): (Vec<char>, Vec<char>) = (pattern.chars().collect(), value.chars().collect());
    // The classic two-pointer match with backtracking to the last `*`.
    let (mut p, mut v, mut star, mut mark) = (0, 0, None, 0);
    while v < value.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == value[v]) {
            p += 1;
            v += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some(p);
            mark = v;
            p += 1;
        } else if let Some(at) = star {
            p = at + 1;
            mark += 1;
            v = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// The template resource of a function's `Role: !GetAtt <role>.Arn`.
fn role_of<'t>(function: &Resource<'t>) -> anyhow::Result<&'t Value> {
    let Value::Tagged(tagged) = &function.properties["Role"] else { bail!("no Role") };
    let target = tagged.value.as_str().filter(|_| tagged.tag == "GetAtt").context("Role must be !GetAtt")?;
    let role_id = target.strip_suffix(".Arn").context("Role must be !GetAtt <role>.Arn")?;
    let role = &function.stack.body["Resources"][role_id];
    if role["Type"].as_str() != Some("AWS::IAM::Role") {
        bail!("{role_id} is not an AWS::IAM::Role of this template");
    }
    Ok(role)
}

/// A policy resource as the logical name of what it points at.
fn symbolic(template: &Template, stack: &Stack, value: &Value) -> anyhow::Result<String> {
    let Value::Tagged(tagged) = value else {
        bail!("policy resources must be !Ref, !GetAtt, !Sub or !If, not {value:?}")
    };
    let tag = tagged.tag.to_string();
    match (tag.trim_start_matches('!'), &tagged.value) {
        // Which branch applies is the template's business; locally (and so
        // for the calls the suite records) the defaults decide.
        ("If", arguments) => symbolic(template, stack, template.if_branch(stack, arguments, defaults())?),
        ("Ref", Value::String(target)) => Ok(target.clone()),
        ("GetAtt", Value::String(target)) => {
            let parts: Vec<&str> = target.split('.').collect();
            match parts.as_slice() {
                [nested, "Outputs", output] => {
                    let nested = template.stack(nested)?;
                    symbolic(template, nested, &nested.body["Outputs"][*output]["Value"])
                }
                [resource, _attribute] => Ok((*resource).to_owned()),
                _ => bail!("cannot follow !GetAtt {target}"),
            }
        }
        ("Sub", Value::String(text)) if text.contains(":identity/") => Ok("SenderIdentity".into()),
        ("Sub", Value::Sequence(parts)) => {
            let mut text = parts[0].as_str().context("!Sub text")?.to_owned();
            for (name, inner) in parts[1].as_mapping().context("!Sub variables")? {
                let name = name.as_str().context("variable name")?;
                text = text.replace(&format!("${{{name}}}"), &symbolic(template, stack, inner)?);
            }
            Ok(text)
        }
        _ => bail!("cannot name policy resource {value:?}"),
    }
}

/// What the functions were seen to call, by package name, with local
/// physical names mapped back to logical ones.
pub fn observed(file: &Path, prefix: &str, sender: &str) -> anyhow::Result<BTreeMap<String, BTreeSet<Grant>>> {
    Ok(observed_calls(file, prefix, sender)?
        .into_iter()
        .map(|(function, calls)| (function, calls.into_iter().map(|call| call.grant).collect()))
        .collect())
}

/// Every distinct call the functions were seen to make, with its partition, by package name.
pub fn observed_calls(file: &Path, prefix: &str, sender: &str) -> anyhow::Result<BTreeMap<String, BTreeSet<Call>>> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let mut calls: BTreeMap<String, BTreeSet<Call>> = BTreeMap::new();
    let local = format!("{prefix}-");
    for line in text.lines() {
        let mut fields = line.split('\t');
        let (Some(function), Some(action), Some(resource)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        let partition = fields.next().map(str::to_owned);
        // Queue URLs end in the queue name; table, index and secret names start with the prefix.
        let name = resource.rsplit('/').next().filter(|_| resource.starts_with("http")).unwrap_or(resource);
        let logical = if resource == sender {
            "SenderIdentity".to_owned()
        } else {
            name.strip_prefix(&local).unwrap_or(name).to_owned()
        };
        calls.entry(function.to_owned()).or_default().insert(Call { grant: (action.to_owned(), logical), partition });
    }
    Ok(calls)
}

/// Every difference between the grants and the calls recorded in `calls` while the suite ran.
pub fn check(template: &Template, calls: &Path, prefix: &str, env: &[(String, String)]) -> anyhow::Result<Vec<String>> {
    let sender = env.iter().find(|(k, _)| k == "SENDER_EMAIL").map(|(_, v)| v.as_str()).unwrap_or_default();
    let permissions = permissions(template)?;
    let observed = observed_calls(calls, prefix, sender)?;
    let mut problems = compare(&grant_sets(&permissions), &call_sets(&observed));
    problems.extend(partitions(&permissions, &observed));
    problems.extend(unconditioned(&permissions, &reasons()?));
    Ok(problems)
}

/// Whether every call recorded in `calls` is granted, key conditions
/// included, and every unconditioned DynamoDB statement has its reason: the
/// half of [`check`] a run of some of the tests can prove (it cannot show
/// that every grant is used).
pub fn check_calls(
    template: &Template,
    calls: &Path,
    prefix: &str,
    env: &[(String, String)],
) -> anyhow::Result<Vec<String>> {
    let sender = env.iter().find(|(k, _)| k == "SENDER_EMAIL").map(|(_, v)| v.as_str()).unwrap_or_default();
    let permissions = permissions(template)?;
    let observed = observed_calls(calls, prefix, sender)?;
    let granted = grant_sets(&permissions);
    let mut problems = Vec::new();
    for (function, calls) in &observed {
        let Some(grants) = granted.get(function) else {
            problems.push(format!("{function} made AWS calls but is not in template.yaml"));
            continue;
        };
        let missing: BTreeSet<&Grant> = calls.iter().map(|call| &call.grant).filter(|g| !grants.contains(*g)).collect();
        for (action, resource) in missing {
            problems.push(format!("{function} calls {action} on {resource}, which its policy does not grant"));
        }
    }
    problems.extend(partitions(&permissions, &observed));
    problems.extend(unconditioned(&permissions, &reasons()?));
    Ok(problems)
}

fn grant_sets(permissions: &BTreeMap<String, Vec<Permission>>) -> BTreeMap<String, BTreeSet<Grant>> {
    permissions
        .iter()
        .map(|(function, list)| (function.clone(), list.iter().map(|p| p.grant.clone()).collect()))
        .collect()
}

fn call_sets(observed: &BTreeMap<String, BTreeSet<Call>>) -> BTreeMap<String, BTreeSet<Grant>> {
    observed
        .iter()
        .map(|(function, calls)| (function.clone(), calls.iter().map(|c| c.grant.clone()).collect()))
        .collect()
}

/// Every recorded DynamoDB call whose partition no statement granting its
/// action on its resource allows (a statement without a key condition
/// allows every partition). One line per function, action and resource,
/// with one of the refused partitions and how many there were.
pub fn partitions(
    permissions: &BTreeMap<String, Vec<Permission>>,
    observed: &BTreeMap<String, BTreeSet<Call>>,
) -> Vec<String> {
    let mut refused: BTreeMap<(&str, &Grant), (usize, &str)> = BTreeMap::new();
    let mut problems = Vec::new();
    for (function, calls) in observed {
        let statements = permissions.get(function).map(Vec::as_slice).unwrap_or_default();
        for call in calls.iter().filter(|call| call.grant.0.starts_with("dynamodb:")) {
            let granting = statements.iter().filter(|p| p.grant == call.grant);
            let Some(partition) = &call.partition else {
                problems.push(format!(
                    "{function} called {} on {} with no partition recorded: the recorder cannot read its key",
                    call.grant.0, call.grant.1
                ));
                continue;
            };
            let allowed = granting.clone().any(|p| match &p.leading_keys {
                None => true,
                Some(patterns) => patterns.iter().any(|pattern| string_like(pattern, partition)),
            });
            if !allowed && granting.count() > 0 {
                let entry = refused.entry((function.as_str(), &call.grant)).or_insert((0, partition.as_str()));
                entry.0 += 1;
            }
        }
    }
    for ((function, (action, resource)), (count, example)) in refused {
        let statements = permissions.get(function).map(Vec::as_slice).unwrap_or_default();
        let patterns: Vec<String> = statements
            .iter()
            .filter(|p| p.grant.0 == *action && p.grant.1 == *resource)
            .flat_map(|p| p.leading_keys.clone().unwrap_or_default())
            .collect();
        problems.push(format!(
            "{function} calls {action} on {resource} for partition {example} ({count} partition(s) refused), \
             outside its leading keys {patterns:?}"
        ));
    }
    problems
}

/// The reasons of the metadata's unconditioned DynamoDB statements, by
/// function and action and resource (logical names, as in the template).
fn reasons() -> anyhow::Result<BTreeMap<String, BTreeSet<Grant>>> {
    use crate::codegen::metadata::{Resource, Resources};
    let mut reasons: BTreeMap<String, BTreeSet<Grant>> = BTreeMap::new();
    for function in crate::codegen::metadata::load(&local_cloud::project_root())? {
        for statement in function.allow.iter().filter(|s| s.unconditioned.is_some()) {
            let resources = match &statement.resources {
                Resources::One(one) => std::slice::from_ref(one),
                Resources::List(list) => list.as_slice(),
            };
            for resource in resources {
                let name = match resource {
                    Resource::Table => "Table".to_owned(),
                    Resource::Index(index) => format!("Table/index/{index}"),
                    _ => continue,
                };
                for action in &statement.actions {
                    reasons.entry(function.package.clone()).or_default().insert((action.clone(), name.clone()));
                }
            }
        }
    }
    Ok(reasons)
}

/// Every statement that grants a DynamoDB action on the table or an index
/// without a key condition and without a reason in the function's metadata.
pub fn unconditioned(
    permissions: &BTreeMap<String, Vec<Permission>>,
    reasons: &BTreeMap<String, BTreeSet<Grant>>,
) -> Vec<String> {
    let empty = BTreeSet::new();
    let mut problems = Vec::new();
    for (function, statements) in permissions {
        let excused = reasons.get(function).unwrap_or(&empty);
        for permission in statements {
            let (action, resource) = &permission.grant;
            let on_data = resource == "Table" || resource.starts_with("Table/index/");
            if on_data
                && action.starts_with("dynamodb:")
                && permission.leading_keys.is_none()
                && !excused.contains(&permission.grant)
            {
                problems.push(format!(
                    "{function} is granted {action} on {resource} for every partition, with no reason \
                     (`unconditioned` in its metadata) and no leading keys"
                ));
            }
        }
    }
    problems
}

/// Every difference between grants and calls, as readable lines.
pub fn compare(
    granted: &BTreeMap<String, BTreeSet<Grant>>,
    observed: &BTreeMap<String, BTreeSet<Grant>>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let empty = BTreeSet::new();
    for (function, grants) in granted {
        let calls = observed.get(function).unwrap_or(&empty);
        for (action, resource) in calls.difference(grants) {
            problems.push(format!("{function} calls {action} on {resource}, which its policy does not grant"));
        }
        for (action, resource) in grants.difference(calls) {
            let excused = FAILURE_PATH_GRANTS
                .iter()
                .chain(UNRECORDED_GRANTS)
                .any(|(f, a, r, _)| f == function && a == action && r == resource);
            if !excused {
                problems.push(format!("{function} is granted {action} on {resource} but never used it"));
            }
        }
    }
    for function in observed.keys().filter(|f| !granted.contains_key(*f)) {
        problems.push(format!("{function} made AWS calls but is not in template.yaml"));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[(&str, &str)]) -> BTreeSet<Grant> {
        items.iter().map(|(a, r)| (a.to_string(), r.to_string())).collect()
    }

    #[test]
    fn reports_both_directions_of_drift() {
        let granted =
            BTreeMap::from([("f".to_owned(), set(&[("dynamodb:GetItem", "Table"), ("dynamodb:PutItem", "Table")]))]);
        let observed =
            BTreeMap::from([("f".to_owned(), set(&[("dynamodb:GetItem", "Table"), ("sqs:SendMessage", "Q")]))]);
        let problems = compare(&granted, &observed);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("does not grant"));
        assert!(problems[1].contains("never used"));
    }

    fn permission(action: &str, resource: &str, keys: Option<&[&str]>) -> Permission {
        Permission {
            grant: (action.to_owned(), resource.to_owned()),
            leading_keys: keys.map(|keys| keys.iter().map(|k| (*k).to_owned()).collect()),
        }
    }

    fn call(action: &str, resource: &str, partition: &str) -> Call {
        Call { grant: (action.to_owned(), resource.to_owned()), partition: Some(partition.to_owned()) }
    }

    #[test]
    fn string_like_is_iams() {
        assert!(string_like("USER#*", "USER#01J"));
        assert!(string_like("WARMUP", "WARMUP"));
        assert!(!string_like("WARMUP", "WARMUPS"));
        assert!(!string_like("USER#*", "USERS"));
        assert!(string_like("ORDERS#*#STATUS#?ending", "ORDERS#OWNER#u#STATUS#pending"));
        assert!(string_like("*", ""));
    }

    #[test]
    fn a_partition_outside_every_granting_statement_is_refused() {
        let permissions = BTreeMap::from([(
            "f".to_owned(),
            vec![
                permission("dynamodb:GetItem", "Table", Some(&["USER#*"])),
                permission("dynamodb:GetItem", "Table", Some(&["PRODUCT#*"])),
                permission("dynamodb:Query", "Table/index/gsi1", Some(&["USERS"])),
            ],
        )]);
        let allowed = BTreeMap::from([(
            "f".to_owned(),
            BTreeSet::from([
                call("dynamodb:GetItem", "Table", "USER#1"),
                call("dynamodb:GetItem", "Table", "PRODUCT#1"),
                call("dynamodb:Query", "Table/index/gsi1", "USERS"),
            ]),
        )]);
        assert_eq!(partitions(&permissions, &allowed), Vec::<String>::new());
        let refused = BTreeMap::from([(
            "f".to_owned(),
            BTreeSet::from([
                call("dynamodb:GetItem", "Table", "EMAIL#a@b"),
                call("dynamodb:GetItem", "Table", "EMAIL#c@d"),
                // The table's key on an index statement is no index partition.
                call("dynamodb:Query", "Table/index/gsi1", "USER#1"),
            ]),
        )]);
        let problems = partitions(&permissions, &refused);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].contains("GetItem on Table for partition EMAIL#a@b (2 partition(s) refused)"),
            "{problems:?}"
        );
        assert!(problems[1].contains("Query on Table/index/gsi1 for partition USER#1"), "{problems:?}");
    }

    #[test]
    fn an_unconditioned_statement_needs_its_reason() {
        let permissions = BTreeMap::from([(
            "f".to_owned(),
            vec![
                permission("dynamodb:Query", "Table/index/gsi2", None),
                permission("dynamodb:GetItem", "Table", None),
                permission("sqs:SendMessage", "EmailSendQueue", None),
            ],
        )]);
        let reasons = BTreeMap::from([(
            "f".to_owned(),
            BTreeSet::from([("dynamodb:Query".to_owned(), "Table/index/gsi2".to_owned())]),
        )]);
        let problems = unconditioned(&permissions, &reasons);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("dynamodb:GetItem on Table for every partition"), "{problems:?}");
    }

    #[test]
    fn every_template_statement_on_the_table_is_conditioned_or_reasoned() {
        let template = Template::load_project().unwrap();
        let problems = unconditioned(&permissions(&template).unwrap(), &reasons().unwrap());
        assert_eq!(problems, Vec::<String>::new());
    }

    #[test]
    fn the_template_grants_are_readable() {
        let template = Template::load_project().unwrap();
        let grants = granted(&template).unwrap();
        assert!(grants["list-users"].contains(&("dynamodb:Query".to_owned(), "Table/index/gsi1".to_owned())));
        assert!(grants["place-order"].contains(&("sqs:SendMessage".to_owned(), "OrderPlacedQueue".to_owned())));
        assert!(
            grants["login"].contains(&("secretsmanager:GetSecretValue".to_owned(), "TokenSigningKeySecret".to_owned()))
        );
        assert!(
            grants["get-order"]
                .contains(&("secretsmanager:GetSecretValue".to_owned(), "TokenPublicKeysSecret".to_owned()))
        );
        assert!(grants["send-email"].contains(&("ses:SendEmail".to_owned(), "SenderIdentity".to_owned())));
        // The throttle's conditioned UpdateItem is still a grant on the table.
        assert!(grants["login"].contains(&("dynamodb:UpdateItem".to_owned(), "Table".to_owned())));
    }

    #[test]
    fn what_lambda_does_for_a_function_is_not_compared_with_its_calls() {
        let template = Template::load_project().unwrap();
        let grants = granted(&template).unwrap();
        for (function, set) in &grants {
            for (action, _) in set {
                assert!(!action.starts_with("logs:"), "{function}: {action} is Lambda's, not the code's");
                assert_ne!(action, "sqs:ReceiveMessage", "{function}: polling is the event source mapping's");
            }
        }
        assert_eq!(grants.len(), template.functions().unwrap().len(), "every function has a role");
    }
}
