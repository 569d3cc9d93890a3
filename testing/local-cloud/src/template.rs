//! Reads `template.yaml` (and the nested stacks under `infra/`) so the local
//! cloud, the watch router checks and the tests share one source of truth.
//!
//! Only the subset of CloudFormation the project uses is understood: `!Ref`,
//! `!GetAtt` (nested-stack outputs and queue attributes), `!If` on conditions
//! built from `!Equals`, `!Not`, `!And`, `!Or` and `!Condition` over
//! parameters, and plain values. Anything else is an error, so a template
//! change the local cloud cannot follow fails loudly instead of drifting.
//! Resources whose `Condition` is false (with parameter defaults) are left
//! out, as CloudFormation leaves them out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use serde_yaml::Value;
use serde_yaml::value::TaggedValue;

/// One stack: the root template or a nested one.
#[derive(Debug, Clone)]
pub struct Stack {
    pub logical_id: String,
    pub path: PathBuf,
    pub body: Value,
}

/// The root template with its nested stacks.
#[derive(Debug, Clone)]
pub struct Template {
    pub root: Stack,
    pub nested: Vec<Stack>,
}

/// A resource and the stack it belongs to.
#[derive(Debug, Clone)]
pub struct Resource<'a> {
    pub stack: &'a Stack,
    pub logical_id: &'a str,
    pub kind: &'a str,
    pub properties: &'a Value,
}

/// An API route declared on a function.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub method: String,
    pub path: String,
}

/// An SQS event source declared on a function.
#[derive(Debug, Clone)]
pub struct QueueSource {
    /// The queue's logical id (in its own stack) and that stack.
    pub queue: (String, String),
    pub batch_size: u32,
    pub report_batch_item_failures: bool,
}

/// A function as the template declares it.
#[derive(Debug, Clone)]
pub struct Function {
    pub logical_id: String,
    /// The cargo package, read from `CodeUri: target/lambda/<package>/`.
    pub package: String,
    pub routes: Vec<Route>,
    pub queues: Vec<QueueSource>,
    pub schedules: Vec<String>,
    pub timeout_seconds: u64,
}

impl Template {
    pub fn load(root: &Path) -> anyhow::Result<Self> {
        let root_stack = read_stack("Root", root)?;
        let dir = root.parent().unwrap_or(Path::new("."));
        let mut nested = Vec::new();
        for (id, resource) in resources_of(&root_stack.body) {
            let kind = resource.get("Type").and_then(Value::as_str).unwrap_or_default();
            let location = match kind {
                "AWS::Serverless::Application" => resource["Properties"]["Location"].as_str(),
                "AWS::CloudFormation::Stack" => resource["Properties"]["TemplateURL"].as_str(),
                _ => continue,
            };
            let location = location.with_context(|| format!("nested stack {id} has no local Location"))?;
            nested.push(read_stack(id, &dir.join(location))?);
        }
        Ok(Self { root: root_stack, nested })
    }

    /// The template at the root of the repository.
    pub fn load_project() -> anyhow::Result<Self> {
        Self::load(&crate::project_root().join("template.yaml"))
    }

    pub fn stacks(&self) -> impl Iterator<Item = &Stack> {
        std::iter::once(&self.root).chain(self.nested.iter())
    }

    pub fn stack(&self, logical_id: &str) -> anyhow::Result<&Stack> {
        self.stacks().find(|s| s.logical_id == logical_id).with_context(|| format!("no stack {logical_id}"))
    }

    pub fn resources(&self) -> Vec<Resource<'_>> {
        let mut all = Vec::new();
        for stack in self.stacks() {
            for (id, resource) in resources_of(&stack.body) {
                if let Some(condition) = resource.get("Condition").and_then(Value::as_str) {
                    // A condition the defaults cannot decide keeps the resource.
                    if self.condition(stack, condition, &Defaults).ok() == Some(false) {
                        continue;
                    }
                }
                all.push(Resource {
                    stack,
                    logical_id: id,
                    kind: resource.get("Type").and_then(Value::as_str).unwrap_or_default(),
                    properties: resource.get("Properties").unwrap_or(&Value::Null),
                });
            }
        }
        all
    }

    pub fn resources_of_kind(&self, kind: &str) -> Vec<Resource<'_>> {
        self.resources().into_iter().filter(|r| r.kind == kind).collect()
    }

    pub fn functions(&self) -> anyhow::Result<Vec<Function>> {
        let globals = &self.root.body["Globals"]["Function"];
        let mut functions = Vec::new();
        for resource in self.resources_of_kind("AWS::Serverless::Function") {
            let properties = resource.properties;
            let code_uri = properties["CodeUri"].as_str().context("function without CodeUri")?;
            let package = code_uri
                .trim_end_matches('/')
                .strip_prefix("target/lambda/")
                .with_context(|| format!("{}: CodeUri must be target/lambda/<package>/", resource.logical_id))?
                .to_owned();
            let timeout_seconds = properties["Timeout"].as_u64().or_else(|| globals["Timeout"].as_u64()).unwrap_or(3);
            let mut function = Function {
                logical_id: resource.logical_id.to_owned(),
                package,
                routes: Vec::new(),
                queues: Vec::new(),
                schedules: Vec::new(),
                timeout_seconds,
            };
            if let Some(events) = properties["Events"].as_mapping() {
                for (_, event) in events {
                    let event_properties = &event["Properties"];
                    match event["Type"].as_str() {
                        Some("Api") => function.routes.push(Route {
                            method: event_properties["Method"].as_str().unwrap_or_default().to_uppercase(),
                            path: event_properties["Path"].as_str().unwrap_or_default().to_owned(),
                        }),
                        Some("SQS") => {
                            let queue = self.queue_reference(resource.stack, &event_properties["Queue"])?;
                            let report = event_properties["FunctionResponseTypes"].as_sequence().is_some_and(|types| {
                                types.iter().any(|t| t.as_str() == Some("ReportBatchItemFailures"))
                            });
                            function.queues.push(QueueSource {
                                queue,
                                batch_size: event_properties["BatchSize"].as_u64().unwrap_or(10) as u32,
                                report_batch_item_failures: report,
                            });
                        }
                        Some("Schedule" | "ScheduleV2") => function.schedules.push(
                            event_properties["Schedule"]
                                .as_str()
                                .or_else(|| event_properties["ScheduleExpression"].as_str())
                                .unwrap_or_default()
                                .to_owned(),
                        ),
                        other => bail!("{}: unsupported event type {other:?}", resource.logical_id),
                    }
                }
            }
            functions.push(function);
        }
        functions.sort_by(|a, b| a.package.cmp(&b.package));
        Ok(functions)
    }

    /// Follows `!GetAtt Stack.Outputs.QueueArn` (or a `!GetAtt Queue.Arn` in
    /// the same stack) to the queue's logical id and stack.
    fn queue_reference(&self, stack: &Stack, value: &Value) -> anyhow::Result<(String, String)> {
        let Value::Tagged(tagged) = value else { bail!("SQS event Queue must be !GetAtt") };
        let target = tagged.value.as_str().context("!GetAtt must be a dotted string")?;
        let parts: Vec<&str> = target.split('.').collect();
        match parts.as_slice() {
            [nested, "Outputs", output] => {
                let nested_stack = self.stack(nested)?;
                let value = &nested_stack.body["Outputs"][*output]["Value"];
                self.queue_reference(nested_stack, value)
            }
            [queue, "Arn"] => Ok(((*queue).to_owned(), stack.logical_id.clone())),
            _ => bail!("cannot follow queue reference {target}"),
        }
    }

    /// The names of the environment variables the template gives functions
    /// (Globals and per function), sorted, each once.
    pub fn environment_variable_names(&self) -> anyhow::Result<Vec<String>> {
        let mut names = std::collections::BTreeSet::new();
        let mut sources = vec![&self.root.body["Globals"]["Function"]["Environment"]["Variables"]];
        for resource in self.resources_of_kind("AWS::Serverless::Function") {
            sources.push(&resource.properties["Environment"]["Variables"]);
        }
        for variables in sources.into_iter().filter_map(Value::as_mapping) {
            for name in variables.keys() {
                names.insert(name.as_str().context("variable names are strings")?.to_owned());
            }
        }
        Ok(names.into_iter().collect())
    }

    /// Environment variables of every function (Globals and per function),
    /// resolved against the local cloud's names. `cargo lambda watch` runs
    /// every function in one environment, so a variable must agree across
    /// functions, except the timeout: the shortest one is taken.
    pub fn function_environment(&self, names: &dyn LocalNames) -> anyhow::Result<BTreeMap<String, String>> {
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        let mut sources = vec![&self.root.body["Globals"]["Function"]["Environment"]["Variables"]];
        for resource in self.resources_of_kind("AWS::Serverless::Function") {
            sources.push(&resource.properties["Environment"]["Variables"]);
        }
        for variables in sources {
            let Some(variables) = variables.as_mapping() else { continue };
            for (name, value) in variables {
                let name = name.as_str().context("variable names are strings")?.to_owned();
                let value = self.resolve(&self.root, value, names)?;
                match env.get(&name) {
                    Some(previous) if previous == &value => {}
                    // The one variable a function may set apart: locally every
                    // function runs with the shortest timeout (the emulator
                    // enforces none; a budget cut to it is the cautious side).
                    Some(previous) if name == LOCAL_SHORTEST => {
                        let seconds = |text: &str| text.parse::<u64>().with_context(|| format!("{name}={text}"));
                        if seconds(&value)? < seconds(previous)? {
                            env.insert(name, value);
                        }
                    }
                    Some(previous) => {
                        bail!(
                            "{name} differs between functions ({previous} vs {value}); local runs share one environment"
                        )
                    }
                    None => {
                        env.insert(name, value);
                    }
                }
            }
        }
        Ok(env)
    }

    /// Resolves a property value to the string it has in the local cloud.
    pub fn resolve(&self, stack: &Stack, value: &Value, names: &dyn LocalNames) -> anyhow::Result<String> {
        match value {
            Value::String(text) => Ok(text.clone()),
            Value::Number(number) => Ok(number.to_string()),
            Value::Bool(flag) => Ok(flag.to_string()),
            Value::Tagged(tagged) => self.resolve_tagged(stack, tagged, names),
            Value::Mapping(map) if map.len() == 1 => {
                let (key, inner) = map.iter().next().expect("one entry");
                let tag = match key.as_str() {
                    Some("Ref") => "!Ref",
                    Some("Fn::GetAtt") => "!GetAtt",
                    Some("Fn::If") => {
                        let branch = self.if_branch(stack, inner, names)?;
                        return self.resolve(stack, branch, names);
                    }
                    _ => bail!("unsupported intrinsic {key:?}"),
                };
                let inner = match inner {
                    Value::Sequence(parts) => {
                        Value::String(parts.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("."))
                    }
                    other => other.clone(),
                };
                self.resolve_tagged(stack, &TaggedValue { tag: serde_yaml::value::Tag::new(tag), value: inner }, names)
            }
            other => bail!("cannot resolve {other:?} locally"),
        }
    }

    fn resolve_tagged(&self, stack: &Stack, tagged: &TaggedValue, names: &dyn LocalNames) -> anyhow::Result<String> {
        let tag = tagged.tag.to_string();
        let tag = tag.trim_start_matches('!');
        if tag == "If" {
            let branch = self.if_branch(stack, &tagged.value, names)?;
            return self.resolve(stack, branch, names);
        }
        let target = tagged.value.as_str().context("intrinsic argument must be a string")?;
        match tag {
            "Ref" => {
                if stack.body["Parameters"].get(target).is_some() {
                    return self.parameter(stack, target, names);
                }
                let resource = &stack.body["Resources"][target];
                let kind = resource["Type"].as_str().with_context(|| format!("!Ref {target}: no such resource"))?;
                names.reference(&stack.logical_id, target, kind)
            }
            "GetAtt" => {
                let parts: Vec<&str> = target.split('.').collect();
                match parts.as_slice() {
                    [nested, "Outputs", output] => {
                        let nested_stack = self.stack(nested)?;
                        let value = &nested_stack.body["Outputs"][*output]["Value"];
                        if value.is_null() {
                            bail!("stack {nested} has no output {output}");
                        }
                        self.resolve(nested_stack, value, names)
                    }
                    [resource, attribute] => {
                        let kind = stack.body["Resources"][*resource]["Type"]
                            .as_str()
                            .with_context(|| format!("!GetAtt {target}: no such resource"))?;
                        names.attribute(&stack.logical_id, resource, kind, attribute)
                    }
                    _ => bail!("cannot resolve !GetAtt {target}"),
                }
            }
            other => Err(anyhow!("intrinsic !{other} is not supported by the local cloud")),
        }
    }
}

impl Template {
    /// A parameter's local value: the local cloud's own, else (in a nested
    /// stack) what the root passes it, else its default.
    pub fn parameter(&self, stack: &Stack, name: &str, names: &dyn LocalNames) -> anyhow::Result<String> {
        if let Some(value) = names.parameter(&stack.logical_id, name) {
            return Ok(value);
        }
        if stack.logical_id != self.root.logical_id {
            let passed = &self.root.body["Resources"][stack.logical_id.as_str()]["Properties"]["Parameters"][name];
            if !passed.is_null() {
                return self.resolve(&self.root, passed, names);
            }
        }
        match &stack.body["Parameters"][name]["Default"] {
            Value::String(text) => Ok(text.clone()),
            Value::Number(number) => Ok(number.to_string()),
            _ => bail!("parameter {name} of stack {} has no default and no local value", stack.logical_id),
        }
    }

    /// Whether the stack's condition `name` holds locally.
    pub fn condition(&self, stack: &Stack, name: &str, names: &dyn LocalNames) -> anyhow::Result<bool> {
        let definition = &stack.body["Conditions"][name];
        if definition.is_null() {
            bail!("stack {} has no condition {name}", stack.logical_id);
        }
        self.truth(stack, definition, names)
    }

    /// The branch of `[condition, then, else]` that applies locally.
    pub fn if_branch<'v>(
        &self,
        stack: &Stack,
        arguments: &'v Value,
        names: &dyn LocalNames,
    ) -> anyhow::Result<&'v Value> {
        let parts = arguments.as_sequence().filter(|p| p.len() == 3).context("!If takes [condition, then, else]")?;
        let name = parts[0].as_str().context("!If names a condition")?;
        Ok(if self.condition(stack, name, names)? { &parts[1] } else { &parts[2] })
    }

    fn truth(&self, stack: &Stack, value: &Value, names: &dyn LocalNames) -> anyhow::Result<bool> {
        let (function, arguments) = intrinsic(value).with_context(|| format!("cannot evaluate condition {value:?}"))?;
        let list = || arguments.as_sequence().with_context(|| format!("!{function} takes a list"));
        match function.as_str() {
            "Equals" => {
                let sides = list()?;
                if sides.len() != 2 {
                    bail!("!Equals takes two values");
                }
                Ok(self.resolve(stack, &sides[0], names)? == self.resolve(stack, &sides[1], names)?)
            }
            "Not" => Ok(!self.truth(stack, list()?.first().context("!Not takes one condition")?, names)?),
            "And" => {
                for part in list()? {
                    if !self.truth(stack, part, names)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            "Or" => {
                for part in list()? {
                    if self.truth(stack, part, names)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            "Condition" => self.condition(stack, arguments.as_str().context("!Condition names a condition")?, names),
            other => bail!("condition function !{other} is not supported locally"),
        }
    }
}

/// `!Name args` or `{"Fn::Name": args}` / `{"Condition": name}` as (Name, args).
fn intrinsic(value: &Value) -> Option<(String, &Value)> {
    match value {
        Value::Tagged(tagged) => Some((tagged.tag.to_string().trim_start_matches('!').to_owned(), &tagged.value)),
        Value::Mapping(map) if map.len() == 1 => {
            let (key, inner) = map.iter().next()?;
            let key = key.as_str()?;
            Some((key.strip_prefix("Fn::").unwrap_or(key).to_owned(), inner))
        }
        _ => None,
    }
}

/// Names for evaluating conditions with parameter defaults only.
struct Defaults;

impl LocalNames for Defaults {
    fn reference(&self, _stack: &str, logical_id: &str, _kind: &str) -> anyhow::Result<String> {
        bail!("{logical_id} has no local name here")
    }
    fn attribute(&self, _stack: &str, logical_id: &str, _kind: &str, attribute: &str) -> anyhow::Result<String> {
        bail!("{logical_id}.{attribute} has no local value here")
    }
    fn parameter(&self, _stack: &str, _name: &str) -> Option<String> {
        None
    }
}

/// Parameter defaults only: for readers that need no local cloud (policies).
/// The variable that may differ between functions: their timeout.
const LOCAL_SHORTEST: &str = "FUNCTION_TIMEOUT_SECONDS";

pub fn defaults() -> &'static dyn LocalNames {
    &Defaults
}

/// How template resources are named in a particular local cloud.
pub trait LocalNames {
    /// What `!Ref` of the resource gives (a table name, a queue URL, a secret id).
    fn reference(&self, stack: &str, logical_id: &str, kind: &str) -> anyhow::Result<String>;
    /// What `!GetAtt resource.attribute` gives.
    fn attribute(&self, stack: &str, logical_id: &str, kind: &str, attribute: &str) -> anyhow::Result<String>;
    /// A local value for a template parameter, overriding its default.
    fn parameter(&self, stack: &str, name: &str) -> Option<String>;
}

fn read_stack(logical_id: &str, path: &Path) -> anyhow::Result<Stack> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let body: Value = serde_yaml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(Stack { logical_id: logical_id.to_owned(), path: path.to_owned(), body })
}

fn resources_of(body: &Value) -> Vec<(&str, &Value)> {
    body["Resources"]
        .as_mapping()
        .map(|map| map.iter().filter_map(|(k, v)| Some((k.as_str()?, v))).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Local;

    impl LocalNames for Local {
        fn reference(&self, _stack: &str, logical_id: &str, _kind: &str) -> anyhow::Result<String> {
            Ok(format!("local-{logical_id}"))
        }
        fn attribute(&self, _stack: &str, logical_id: &str, _kind: &str, attribute: &str) -> anyhow::Result<String> {
            Ok(format!("local-{logical_id}.{attribute}"))
        }
        fn parameter(&self, _stack: &str, _name: &str) -> Option<String> {
            None
        }
    }

    #[test]
    fn if_follows_the_conditions_with_local_values() {
        let template = Template::load_project().unwrap();
        let env = template.function_environment(&Local).unwrap();
        // Data's outputs choose between its own table and a restored one.
        assert_eq!(env["TABLE_NAME"], "local-Table");
        // The relay's 60 s gives way to everyone else's 10 s locally.
        assert_eq!(env["FUNCTION_TIMEOUT_SECONDS"], "10");
        let data = template.stack("Data").unwrap();
        assert!(!template.condition(data, "UseRestoredTable", &Local).unwrap());
        // Nested stacks get what the root passes them.
        assert_eq!(template.parameter(data, "Environment", &Local).unwrap(), "dev");
        assert!(!template.condition(data, "IsProd", &Local).unwrap());
    }

    #[test]
    fn resources_whose_condition_is_false_are_left_out() {
        let template = Template::load_project().unwrap();
        let identities: Vec<&str> =
            template.resources_of_kind("AWS::SES::EmailIdentity").iter().map(|r| r.logical_id).collect();
        assert_eq!(identities, ["SenderIdentity"], "no SenderDomain by default: the address identity only");
        assert!(template.resources_of_kind("AWS::Backup::BackupPlan").is_empty(), "backups are prod's");
    }
}
