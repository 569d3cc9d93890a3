//! Least privilege, checked: every IAM action a function's role grants in
//! template.yaml must be used by its code, and every call its code makes must
//! be granted. The calls are recorded while the test suite drives every
//! function (see `adapters::recorder::CallRecorder`).
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

/// What each function's role grants its code, by package name.
pub fn granted(template: &Template) -> anyhow::Result<BTreeMap<String, BTreeSet<Grant>>> {
    let mut grants = BTreeMap::new();
    for function in template.functions()? {
        let resource = template
            .resources_of_kind("AWS::Serverless::Function")
            .into_iter()
            .find(|r| r.logical_id == function.logical_id)
            .expect("functions come from resources");
        let role = role_of(&resource)
            .with_context(|| format!("{}: `Role: !GetAtt <its role>.Arn` (a role of its own)", function.package))?;
        let mut set = BTreeSet::new();
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
                for value in resources {
                    let name = symbolic(template, resource.stack, value)
                        .with_context(|| format!("{}: a policy resource", function.package))?;
                    for action in &actions {
                        set.insert((action.clone(), name.clone()));
                    }
                }
            }
        }
        grants.insert(function.package, set);
    }
    Ok(grants)
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
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let mut calls: BTreeMap<String, BTreeSet<Grant>> = BTreeMap::new();
    let local = format!("{prefix}-");
    for line in text.lines() {
        let mut fields = line.split('\t');
        let (Some(function), Some(action), Some(resource)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        // Queue URLs end in the queue name; table, index and secret names start with the prefix.
        let name = resource.rsplit('/').next().filter(|_| resource.starts_with("http")).unwrap_or(resource);
        let logical = if resource == sender {
            "SenderIdentity".to_owned()
        } else {
            name.strip_prefix(&local).unwrap_or(name).to_owned()
        };
        calls.entry(function.to_owned()).or_default().insert((action.to_owned(), logical));
    }
    Ok(calls)
}

/// Every difference between the grants and the calls recorded in `calls` while the suite ran.
pub fn check(template: &Template, calls: &Path, prefix: &str, env: &[(String, String)]) -> anyhow::Result<Vec<String>> {
    let sender = env.iter().find(|(k, _)| k == "SENDER_EMAIL").map(|(_, v)| v.as_str()).unwrap_or_default();
    let granted = granted(template)?;
    let observed = observed(calls, prefix, sender)?;
    Ok(compare(&granted, &observed))
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
