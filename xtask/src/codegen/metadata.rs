//! The deployment facts of one function, read from `[package.metadata.deploy]`
//! in its `functions/<name>/Cargo.toml` and parsed into types: a function has
//! exactly one trigger, every IAM statement names resources this stack has.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, bail, ensure};
use serde::Deserialize;

/// One function as template.yaml deploys it.
#[derive(Debug)]
pub struct Function {
    /// The cargo package and folder name, e.g. `place-order`.
    pub package: String,
    pub trigger: Trigger,
    pub description: String,
    pub memory: Option<u32>,
    pub timeout: Option<u32>,
    pub reserved_concurrency: Option<u32>,
    /// Environment variables beyond the Globals, each set from a template parameter.
    pub env_parameters: BTreeMap<String, String>,
    /// Whether it runs DynamoDB transactions (its conflicts count toward the conflicts alarm).
    pub transactions: bool,
    /// Whether it reports the records it failed or parked (RecordsFailed): every
    /// queue consumer, and a scheduled function that says so (the outbox relay).
    /// Its deployment alarm watches them on the new version.
    pub reports_records: bool,
    /// What its code calls, beyond what Lambda needs (its log group, its queue).
    pub allow: Vec<Statement>,
    /// What its sample event holds beyond its route (API functions only).
    pub sample: Option<Sample>,
}

/// The particulars of an API function's sample event (`events/<name>.json`,
/// written by codegen): all optional, a plain authenticated request to the
/// route's own path when none is given.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Sample {
    /// The concrete path, for a route with `{parameters}`.
    pub path: Option<String>,
    /// Query string parameters.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Headers beyond the usual ones (`Content-Type` comes with a body).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The JSON body, as a string.
    pub body: Option<String>,
    /// A request without the sample access token.
    #[serde(default)]
    pub guest: bool,
}

/// What invokes a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    Route(Route),
    Queue(QueueSource),
    /// A rate or cron expression, e.g. `rate(1 minute)`.
    Schedule(String),
}

/// The three kinds of function, in the order template.yaml lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Api,
    Consumer,
    Scheduled,
}

impl Trigger {
    pub fn kind(&self) -> Kind {
        match self {
            Self::Route(_) => Kind::Api,
            Self::Queue(_) => Kind::Consumer,
            Self::Schedule(_) => Kind::Scheduled,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub method: Method,
    pub path: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }
}

/// An SQS event source: the queue (by its name in infra/queues.yaml) and how
/// Lambda polls it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct QueueSource {
    pub name: String,
    pub batch_size: u32,
    pub batching_window_seconds: u32,
    pub max_concurrency: u32,
}

/// One `Allow` statement of the function's role.
#[derive(Debug)]
pub struct Statement {
    pub actions: Vec<String>,
    pub resources: Resources,
    /// `dynamodb:LeadingKeys` the statement is limited to (table and index
    /// statements): each a prefix of the table's layout (or a throttle's
    /// name) and `*`, or one whole key.
    pub leading_keys: Vec<String>,
    /// Why a DynamoDB statement may reach every partition (it has no
    /// `leading-keys`): an exception, written next to it, never a default.
    pub unconditioned: Option<String>,
}

/// The DynamoDB actions that name items by key, so IAM can hold them to
/// `dynamodb:LeadingKeys` (a Scan names none: a `ForAllValues` key condition
/// would pass it, so no statement may grant one under such a condition).
pub const KEYED_ACTIONS: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
];

/// The throttles' names (`Limit` and `History` of the app): the first part
/// of their windows' and entries' partition keys, which the table's layout
/// leaves to them. A new throttle joins this list before a statement may
/// name it.
pub fn throttle_names() -> Vec<&'static str> {
    use app::{auth, erasure, mfa, passwords, registration};
    vec![
        auth::PER_ACCOUNT_AND_CLIENT.name,
        auth::PER_CLIENT.name,
        auth::PER_ACCOUNT.name,
        auth::KNOWN_ADDRESSES.name,
        mfa::CODE_ATTEMPTS.name,
        mfa::CODE_ATTEMPTS_PER_DAY.name,
        registration::EMAILS_PER_ADDRESS.name,
        passwords::RESETS_PER_ADDRESS.name,
        passwords::CHANGE_CHECKS_PER_ACCOUNT.name,
        erasure::ERASE_ATTEMPTS.name,
    ]
}

/// Whether `pattern` (a `dynamodb:LeadingKeys` value) names partitions the
/// layout has on `resource`: its text before an optional trailing `*` (the
/// only wildcard allowed) starts with one of the layout's prefixes for the
/// table (`adapters::dynamo::TABLE_PREFIXES`, or a throttle's name and `#`)
/// or for that index (`INDEX_PREFIXES`).
fn check_leading_key(pattern: &str, resource: &Resource) -> anyhow::Result<()> {
    let literal = pattern.strip_suffix('*').unwrap_or(pattern);
    ensure!(
        !literal.is_empty() && !literal.contains(['*', '?']),
        "leading key `{pattern}`: a prefix and one trailing `*`, or a whole key (no other wildcard)"
    );
    let known: Vec<String> = match resource {
        Resource::Table => adapters::dynamo::TABLE_PREFIXES
            .iter()
            .map(|prefix| (*prefix).to_owned())
            .chain(throttle_names().into_iter().map(|name| format!("{name}#")))
            .collect(),
        Resource::Index(index) => adapters::dynamo::INDEX_PREFIXES
            .iter()
            .filter(|(name, _)| name == index)
            .map(|(_, prefix)| (*prefix).to_owned())
            .collect(),
        _ => bail!("leading-keys limit a statement on the table or an index only"),
    };
    ensure!(
        known.iter().any(|prefix| literal.starts_with(prefix.as_str())),
        "leading key `{pattern}` starts with none of the layout's partition prefixes on {} ({})",
        resource_name(resource),
        known.join(", ")
    );
    Ok(())
}

fn resource_name(resource: &Resource) -> String {
    match resource {
        Resource::Index(name) => format!("index/{name}"),
        _ => "table".to_owned(),
    }
}

/// A statement's resources: one (a YAML scalar) or a list, as written.
#[derive(Debug)]
pub enum Resources {
    One(Resource),
    List(Vec<Resource>),
}

/// A resource a function's code may be granted, by kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// `table`: the shop's table.
    Table,
    /// `index/<name>`: one of its global secondary indexes.
    Index(String),
    /// `token-signing-key`: the private token keys' secret (the issuer and the rotation only).
    TokenSigningKey,
    /// `token-signing-kms-key`: the customer-managed KMS key that encrypts it.
    TokenSigningKmsKey,
    /// `token-public-keys`: the public token keys' secret (every token-checking function).
    TokenPublicKeys,
    /// `cursor-key`: the pagination cursor key's secret (the listing functions).
    CursorKey,
    /// `sender-identity`: the SES identity emails are sent from.
    SenderIdentity,
    /// `queue/<name>`: a queue of infra/queues.yaml, e.g. `queue/email-send`.
    Queue(String),
    /// `dead-letter-queue/<name>`: that queue's dead-letter queue.
    DeadLetterQueue(String),
}

impl Resource {
    fn parse(text: &str, queues: &BTreeSet<String>) -> anyhow::Result<Self> {
        let known_queue = |name: &str| -> anyhow::Result<String> {
            ensure!(
                queues.contains(name),
                "`{text}`: no queue `{name}` in infra/queues.yaml (there are {})",
                queues.iter().map(String::as_str).collect::<Vec<_>>().join(", ")
            );
            Ok(name.to_owned())
        };
        Ok(match text.split_once('/') {
            None if text == "table" => Self::Table,
            None if text == "token-signing-key" => Self::TokenSigningKey,
            None if text == "token-signing-kms-key" => Self::TokenSigningKmsKey,
            None if text == "token-public-keys" => Self::TokenPublicKeys,
            None if text == "cursor-key" => Self::CursorKey,
            None if text == "sender-identity" => Self::SenderIdentity,
            Some(("index", name)) if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()) => {
                Self::Index(name.to_owned())
            }
            Some(("queue", name)) => Self::Queue(known_queue(name)?),
            Some(("dead-letter-queue", name)) => Self::DeadLetterQueue(known_queue(name)?),
            _ => bail!(
                "`{text}` is no resource: table, index/<name>, token-signing-key, token-signing-kms-key, \
                 token-public-keys, cursor-key, sender-identity, queue/<name> or dead-letter-queue/<name>"
            ),
        })
    }
}

/// `[package.metadata.deploy]` as written.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Written {
    route: Option<Route>,
    queue: Option<QueueSource>,
    schedule: Option<String>,
    description: Option<String>,
    memory: Option<u32>,
    timeout: Option<u32>,
    reserved_concurrency: Option<u32>,
    #[serde(default)]
    env_parameters: BTreeMap<String, String>,
    #[serde(default)]
    transactions: bool,
    #[serde(default)]
    reports_failed_records: bool,
    #[serde(default)]
    allow: Vec<WrittenStatement>,
    sample: Option<Sample>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct WrittenStatement {
    actions: Vec<String>,
    on: OneOrMany,
    #[serde(default)]
    leading_keys: Vec<String>,
    /// The reason a DynamoDB statement has no `leading-keys`.
    unconditioned: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct Manifest {
    package: Package,
}

#[derive(Deserialize)]
struct Package {
    name: String,
    #[serde(default)]
    metadata: PackageMetadata,
}

#[derive(Default, Deserialize)]
struct PackageMetadata {
    deploy: Option<Written>,
}

/// Every function under `functions/`, in the order of their folder names.
pub fn load(root: &Path) -> anyhow::Result<Vec<Function>> {
    let queues = queue_names(root)?;
    let mut folders: Vec<_> =
        std::fs::read_dir(root.join("functions"))?.map(|entry| entry.map(|e| e.path())).collect::<Result<_, _>>()?;
    folders.retain(|path| path.join("Cargo.toml").is_file());
    folders.sort();
    let mut functions = Vec::new();
    for folder in folders {
        let manifest_path = folder.join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest_path)?;
        let shown = manifest_path.strip_prefix(root).unwrap_or(&manifest_path).display().to_string();
        let function = parse(&text, &queues).context(shown)?;
        functions.push(function);
    }
    let mut routes = BTreeMap::new();
    for function in &functions {
        if let Trigger::Route(route) = &function.trigger
            && let Some(other) = routes.insert(route.clone(), &function.package)
        {
            bail!("{} {} is the route of both {other} and {}", route.method.as_str(), route.path, function.package);
        }
    }
    Ok(functions)
}

/// One function's manifest; `queues` are the queue names infra/queues.yaml declares.
pub fn parse(manifest: &str, queues: &BTreeSet<String>) -> anyhow::Result<Function> {
    let manifest: Manifest = toml::from_str(manifest)?;
    let package = manifest.package.name;
    let written = manifest.package.metadata.deploy.context("no [package.metadata.deploy] table")?;
    let trigger = match (written.route, written.queue, written.schedule) {
        (Some(route), None, None) => {
            ensure!(route.path.starts_with("/api/v1/"), "route {}: paths start with /api/v1/", route.path);
            Trigger::Route(route)
        }
        (None, Some(queue), None) => {
            ensure!(queues.contains(&queue.name), "queue `{}` is not in infra/queues.yaml", queue.name);
            Trigger::Queue(queue)
        }
        (None, None, Some(schedule)) => Trigger::Schedule(schedule),
        _ => bail!("exactly one of route, queue and schedule says what invokes the function"),
    };
    let description = match (&trigger, written.description) {
        (Trigger::Route(route), None) => format!("{} {}", route.method.as_str(), route.path),
        (Trigger::Route(_), Some(_)) => bail!("an API function's description is its route; leave it out"),
        (_, Some(description)) => description,
        (_, None) => bail!("a queue consumer or scheduled function needs a description"),
    };
    for (name, parameter) in &written.env_parameters {
        ensure!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
            "environment variable `{name}`: upper case, digits and _"
        );
        ensure!(parameter.chars().all(|c| c.is_ascii_alphanumeric()), "`{parameter}` is no template parameter name");
    }
    let allow =
        written.allow.into_iter().map(|statement| parse_statement(statement, queues)).collect::<anyhow::Result<_>>()?;
    let sample = match (&trigger, written.sample) {
        (Trigger::Route(route), sample) => Some(check_sample(route, sample.unwrap_or_default())?),
        (_, None) => None,
        (_, Some(_)) => bail!("a sample table is for API functions; a queue or schedule event is written by hand"),
    };
    let reports_records = written.reports_failed_records || matches!(trigger, Trigger::Queue(_));
    Ok(Function {
        package,
        trigger,
        description,
        memory: written.memory,
        timeout: written.timeout,
        reserved_concurrency: written.reserved_concurrency,
        env_parameters: written.env_parameters,
        transactions: written.transactions,
        reports_records,
        allow,
        sample,
    })
}

/// `sample` if its path fits the route's template and its body is JSON.
fn check_sample(route: &Route, sample: Sample) -> anyhow::Result<Sample> {
    let template: Vec<&str> = route.path.split('/').collect();
    match &sample.path {
        None => ensure!(!route.path.contains('{'), "route {} has parameters: give the sample a path", route.path),
        Some(path) => {
            let segments: Vec<&str> = path.split('/').collect();
            let fits = segments.len() == template.len()
                && template.iter().zip(&segments).all(|(pattern, segment)| {
                    if pattern.starts_with('{') { !segment.is_empty() } else { pattern == segment }
                });
            ensure!(fits, "sample path {path} does not fit the route {}", route.path);
        }
    }
    if let Some(body) = &sample.body {
        serde_json::from_str::<serde_json::Value>(body).context("the sample body is not JSON")?;
    }
    Ok(sample)
}

fn parse_statement(written: WrittenStatement, queues: &BTreeSet<String>) -> anyhow::Result<Statement> {
    ensure!(!written.actions.is_empty(), "a statement without actions");
    for action in &written.actions {
        let valid = action.split_once(':').is_some_and(|(service, name)| {
            !service.is_empty()
                && service.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && name.chars().all(|c| c.is_ascii_alphanumeric())
        });
        ensure!(valid, "`{action}` is not an action such as dynamodb:GetItem (no wildcards)");
    }
    let resources = match written.on {
        OneOrMany::One(text) => Resources::One(Resource::parse(&text, queues)?),
        OneOrMany::Many(texts) => {
            ensure!(!texts.is_empty(), "`on` names no resource");
            Resources::List(texts.iter().map(|text| Resource::parse(text, queues)).collect::<anyhow::Result<_>>()?)
        }
    };
    let listed = match &resources {
        Resources::One(resource) => std::slice::from_ref(resource),
        Resources::List(list) => list.as_slice(),
    };
    let on_data = listed.iter().any(|resource| matches!(resource, Resource::Table | Resource::Index(_)));
    if !written.leading_keys.is_empty() {
        ensure!(
            listed.iter().all(|resource| matches!(resource, Resource::Table | Resource::Index(_))),
            "leading-keys limit a statement on the table or an index only"
        );
        for resource in listed {
            for pattern in &written.leading_keys {
                check_leading_key(pattern, resource)?;
            }
        }
        ensure!(
            !written.actions.iter().any(|action| action == "dynamodb:Scan"),
            "dynamodb:Scan names no key, so leading-keys would not limit it (ForAllValues passes an empty set)"
        );
    }
    let unconditioned = written.unconditioned.map(|reason| reason.trim().to_owned());
    let keyed = written.actions.iter().any(|action| KEYED_ACTIONS.contains(&action.as_str()));
    match (&unconditioned, written.leading_keys.is_empty()) {
        (Some(reason), _) if reason.is_empty() => bail!("`unconditioned` needs the reason as its text"),
        (Some(_), false) => bail!("a statement has leading-keys or is `unconditioned`, not both"),
        (Some(_), true) => ensure!(on_data, "`unconditioned` is for statements on the table or an index"),
        (None, true) if on_data && keyed => bail!(
            "{} on {} may reach every item: limit it with leading-keys (the partition prefixes it touches), \
             or say why it cannot be with unconditioned = \"<reason>\"",
            written.actions.join(", "),
            listed.iter().map(resource_name).collect::<Vec<_>>().join(", ")
        ),
        (None, _) => {}
    }
    Ok(Statement { actions: written.actions, resources, leading_keys: written.leading_keys, unconditioned })
}

/// The queues of infra/queues.yaml, by the names the functions use
/// (`user-created` for the output `UserCreatedQueueArn`).
pub fn queue_names(root: &Path) -> anyhow::Result<BTreeSet<String>> {
    let text = std::fs::read_to_string(root.join("infra/queues.yaml")).context("reading infra/queues.yaml")?;
    let queues: serde_yaml::Value = serde_yaml::from_str(&text).context("parsing infra/queues.yaml")?;
    let outputs = queues["Outputs"].as_mapping().context("infra/queues.yaml has no Outputs")?;
    Ok(outputs
        .keys()
        .filter_map(serde_yaml::Value::as_str)
        .filter(|key| !key.ends_with("DeadLetterQueueArn"))
        .filter_map(|key| key.strip_suffix("QueueArn"))
        .map(kebab)
        .collect())
}

/// `UserCreated` -> `user-created`.
fn kebab(pascal: &str) -> String {
    let mut out = String::new();
    for (i, c) in pascal.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// `user-created` -> `UserCreated`; `get-health` -> `GetHealth`.
pub fn pascal(kebab: &str) -> String {
    kebab
        .split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map(|first| first.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queues() -> BTreeSet<String> {
        ["user-created", "email-send"].into_iter().map(str::to_owned).collect()
    }

    fn manifest(deploy: &str) -> String {
        format!("[package]\nname = \"f\"\n\n[package.metadata.deploy]\n{deploy}")
    }

    #[test]
    fn an_api_function_is_described_by_its_route() {
        let function = parse(&manifest("route = { method = \"GET\", path = \"/api/v1/x\" }\n"), &queues()).unwrap();
        assert_eq!(function.description, "GET /api/v1/x");
        assert!(function.allow.is_empty());
    }

    #[test]
    fn a_function_has_exactly_one_trigger() {
        let two =
            "route = { method = \"GET\", path = \"/api/v1/x\" }\nschedule = \"rate(1 hour)\"\ndescription = \"d\"\n";
        let error = parse(&manifest(two), &queues()).unwrap_err();
        assert!(format!("{error:#}").contains("exactly one of route, queue and schedule"), "{error:#}");
        let error = parse(&manifest("description = \"d\"\n"), &queues()).unwrap_err();
        assert!(format!("{error:#}").contains("exactly one of"), "{error:#}");
    }

    #[test]
    fn statements_name_known_queues_and_whole_actions() {
        let unknown = "schedule = \"rate(1 hour)\"\ndescription = \"d\"\n[[package.metadata.deploy.allow]]\n\
                       actions = [\"sqs:SendMessage\"]\non = \"queue/order-paid\"\n";
        let error = parse(&manifest(unknown), &queues()).unwrap_err();
        assert!(format!("{error:#}").contains("no queue `order-paid`"), "{error:#}");
        let wildcard = "schedule = \"rate(1 hour)\"\ndescription = \"d\"\n[[package.metadata.deploy.allow]]\n\
                        actions = [\"dynamodb:*\"]\non = \"table\"\n";
        let error = parse(&manifest(wildcard), &queues()).unwrap_err();
        assert!(format!("{error:#}").contains("no wildcards"), "{error:#}");
    }

    #[test]
    fn leading_keys_limit_table_statements_only() {
        let on_queue = "schedule = \"rate(1 hour)\"\ndescription = \"d\"\n[[package.metadata.deploy.allow]]\n\
                        actions = [\"sqs:SendMessage\"]\non = \"queue/email-send\"\nleading-keys = [\"A#*\"]\n";
        let error = parse(&manifest(on_queue), &queues()).unwrap_err();
        assert!(format!("{error:#}").contains("on the table or an index only"), "{error:#}");
    }

    fn table_statement(on: &str, rest: &str) -> String {
        manifest(&format!(
            "schedule = \"rate(1 hour)\"\ndescription = \"d\"\n[[package.metadata.deploy.allow]]\n\
             actions = [\"dynamodb:GetItem\", \"dynamodb:Query\"]\non = \"{on}\"\n{rest}"
        ))
    }

    #[test]
    fn a_table_statement_names_its_partitions_or_the_reason_it_cannot() {
        let silent = parse(&table_statement("table", ""), &queues()).unwrap_err();
        assert!(format!("{silent:#}").contains("may reach every item"), "{silent:#}");
        let empty_reason = parse(&table_statement("table", "unconditioned = \" \"\n"), &queues()).unwrap_err();
        assert!(format!("{empty_reason:#}").contains("needs the reason"), "{empty_reason:#}");
        let reasoned = parse(&table_statement("index/gsi2", "unconditioned = \"every status\"\n"), &queues()).unwrap();
        assert_eq!(reasoned.allow[0].unconditioned.as_deref(), Some("every status"));
        let limited =
            parse(&table_statement("table", "leading-keys = [\"USER#*\", \"LOGIN#*\"]\n"), &queues()).unwrap();
        assert_eq!(limited.allow[0].leading_keys, ["USER#*", "LOGIN#*"]);
    }

    #[test]
    fn leading_keys_are_the_layouts_prefixes() {
        for (on, pattern, known) in [
            ("table", "USERS#*", false),
            ("table", "*", false),
            ("table", "U*R#*", false),
            ("table", "WARMUP", true),
            ("table", "ORDER#*", true),
            ("table", "ORDERS#OWNER#*", false),
            ("index/gsi1", "ORDERS#OWNER#*", true),
            ("index/gsi2", "ORDERS#OWNER#*", false),
            ("index/gsi4", "ORDERS#*", true),
            ("table", "PASSWORD-RESET#*", true),
        ] {
            let outcome = parse(&table_statement(on, &format!("leading-keys = [\"{pattern}\"]\n")), &queues());
            assert_eq!(outcome.is_ok(), known, "{pattern} on {on}: {outcome:?}");
        }
    }

    #[test]
    fn unknown_keys_are_refused_rather_than_ignored() {
        let typo = "route = { method = \"GET\", path = \"/api/v1/x\" }\nmemmory = 512\n";
        let error = parse(&manifest(typo), &queues()).unwrap_err();
        assert!(format!("{error:#}").contains("memmory"), "{error:#}");
    }

    #[test]
    fn names_convert_both_ways() {
        assert_eq!(pascal("on-user-created"), "OnUserCreated");
        assert_eq!(kebab("EmailSend"), "email-send");
    }
}
