#!/usr/bin/env python3
"""The stack as `sam deploy` creates it, checked.

Transforms template.yaml and every nested stack under infra/ with
samtranslator (what CloudFormation's SAM transform does on deploy), writes
the expanded templates to target/expanded/, and asserts on what is really
deployed:

- the API has exactly one stage (v1), with WAF, throttling, access logs and
  X-Ray; gateway responses and WAF's 429 carry the security and CORS headers;
- no IAM statement anywhere (roles, managed policies AWS or ours, resource
  policies) has Resource "*" or a whole-service action, except those in
  xtask/checks/exceptions.toml with a reason; functions write only their own
  log group and read only their own queue; the signing-key secret is readable
  only by functions that verify or issue tokens;
- every function alias is deployed by CodeDeploy guarded by the function's
  own alarm (errors, throttles; 5xx for API functions) on the new version,
  able to fire within the canary window, and every alarm notifies the topic,
  whose key lets CloudWatch publish;
- stateful resources are retained; the table has PITR, deletion protection,
  a daily 35-day backup plan in prod and projections without the password
  hash; the relay drops rather than retries missed schedule events;
- every function's Timeout equals its FUNCTION_TIMEOUT_SECONDS;
- samconfig.toml gives each environment its region, profile, tags and
  parameters, and each environment's values pass the template's Rules;
- CORS preflights are answered by API Gateway (every path's OPTIONS a mock
  integration, no function event): its mapping template is run (a small VTL
  interpreter below) against the cases the code's Cors handles, with each
  environment's allow-list, and must grant exactly what
  shared/platform/src/http/headers.rs grants, with its constants' values;
  the API compresses responses above a threshold;
- every function keeps Lambda's REPORT lines (SystemLogLevel INFO);
- every alarm on the functions' own metrics reads them as they are emitted
  (namespace, Service, Environment, Function, Version), and there are alarms
  on what breaks (queue age, outbox age, relay, consumer failures, SES
  reputation, cold-start rate, DynamoDB throttles, transaction conflicts) and
  a dashboard with duration, concurrency, queue, DynamoDB, WAF and SES panels;
- service down is detected: a Synthetics canary calls /health and the
  catalogue every minute, its SuccessPercent alarm pages the alarm topic
  within two minutes, its artefact bucket is encrypted and forgets.

With --checkov PATH it then runs checkov on the expanded templates: every
failing checkov check must be skipped in exceptions.toml with a reason, and
every skip there must still be needed.

Run: .tools/venv/bin/python xtask/checks/stack.py [--checkov .tools/checkov/bin/checkov]
(`cargo xtask check`, the first step of `cargo xtask test`, runs it after
cfn-lint and sam validate, then again from a copy of the checkout at a path
shaped like an AWS secret key.)
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EXCEPTIONS = ROOT / "xtask/checks/exceptions.toml"
EXPANDED = ROOT / "target/expanded"
ENVIRONMENTS = ["dev", "staging", "prod"]

# The AWS managed policies SAM may attach to roles it generates, with their
# ARNs (samtranslator's policy loader; no AWS call) and their documented
# statements (AWS managed policy reference), so that a wildcard inside one
# is caught like any other. An attached AWS managed policy missing here
# fails the check: record its statements first.
MANAGED_POLICIES: dict[str, dict[str, Any]] = {
    "AWSLambdaBasicExecutionRole": {
        "arn": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        "statements": [
            {"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], "Resource": "*"},
        ],
    },
    "AWSXrayWriteOnlyAccess": {
        "arn": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
        "statements": [
            {
                "Effect": "Allow",
                "Action": [
                    "xray:PutTraceSegments",
                    "xray:PutTelemetryRecords",
                    "xray:GetSamplingRules",
                    "xray:GetSamplingTargets",
                    "xray:GetSamplingStatisticSummaries",
                ],
                "Resource": "*",
            }
        ],
    },
    "AWSLambdaSQSQueueExecutionRole": {
        "arn": "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
        "statements": [
            {"Effect": "Allow", "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], "Resource": "*"},
        ],
    },
    "AWSCodeDeployRoleForLambda": {
        "arn": "arn:aws:iam::aws:policy/service-role/AWSCodeDeployRoleForLambda",
        "statements": [
            {"Effect": "Allow", "Action": ["cloudwatch:DescribeAlarms", "lambda:UpdateAlias", "lambda:GetAlias", "lambda:GetProvisionedConcurrencyConfig", "sns:Publish"], "Resource": "*"},
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"], "Resource": "arn:aws:s3:::*/CodeDeploy/*"},
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"], "Resource": "*", "Condition": {"StringEquals": {"s3:ExistingObjectTag/UseWithCodeDeploy": "true"}}},
            {"Effect": "Allow", "Action": ["lambda:InvokeFunction"], "Resource": "arn:aws:lambda:*:*:function:CodeDeployHook_*"},
        ],
    },
}

# Canary configurations and how long their first step lasts (seconds): an
# alarm must be able to fire within it to stop the deployment.
CANARY_WINDOW_SECONDS = {
    "Canary10Percent5Minutes": 300,
    "Canary10Percent10Minutes": 600,
    "Canary10Percent15Minutes": 900,
    "Canary10Percent30Minutes": 1800,
    "Linear10PercentEvery1Minute": 60,
    "Linear10PercentEvery2Minutes": 120,
    "Linear10PercentEvery3Minutes": 180,
    "Linear10PercentEvery10Minutes": 600,
    "AllAtOnce": None,
}

# Lambda metrics reach CloudWatch about a minute after the fact; an alarm's
# periods plus this delay must fit in the canary's first step.
METRIC_DELAY_SECONDS = 60

STATEFUL_TYPES = {
    "AWS::DynamoDB::Table",
    "AWS::SecretsManager::Secret",
    "AWS::Logs::LogGroup",
    "AWS::Backup::BackupVault",
}


# ----------------------------------------------------------------- loading


class Stack:
    def __init__(self, name: str, path: Path, source: dict, expanded: dict):
        self.name = name
        self.path = path
        self.source = source
        self.expanded = expanded

    @property
    def resources(self) -> dict[str, dict]:
        return self.expanded.get("Resources", {})

    def of_type(self, kind: str) -> dict[str, dict]:
        return {k: v for k, v in self.resources.items() if v.get("Type") == kind}


class StaticPolicyLoader:
    """samtranslator's managed policy loader, without an AWS call."""

    def load(self) -> dict[str, str]:
        return {name: policy["arn"] for name, policy in MANAGED_POLICIES.items()}


def parse_yaml(path: Path) -> dict:
    from samcli.yamlhelper import yaml_parse  # the parser sam itself uses (tags to Fn:: forms)

    return yaml_parse(path.read_text())


def transform(template: dict) -> dict:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    # Without a feature-toggle config samtranslator warns about every toggle it
    # consults; the defaults are what `sam deploy` uses.
    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    from samtranslator.translator.transform import transform as sam_transform

    return sam_transform(copy.deepcopy(template), {}, StaticPolicyLoader())


def as_packaged(template: dict) -> dict:
    """What `sam deploy` uploads: code and nested templates as S3 locations."""
    packaged = copy.deepcopy(template)
    for resource in packaged.get("Resources", {}).values():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            package = props["CodeUri"].strip("/").split("/")[-1]
            props["CodeUri"] = f"s3://artifacts/{package}.zip"
        if resource.get("Type") == "AWS::Serverless::Application" and isinstance(props.get("Location"), str):
            props["Location"] = f"https://s3.amazonaws.com/artifacts/{props['Location']}"
    return packaged


def load_stacks() -> list[Stack]:
    root_path = ROOT / "template.yaml"
    root_source = parse_yaml(root_path)
    stacks = [Stack("Root", root_path, root_source, transform(as_packaged(root_source)))]
    for name, resource in root_source["Resources"].items():
        if resource.get("Type") == "AWS::Serverless::Application":
            path = ROOT / resource["Properties"]["Location"]
            source = parse_yaml(path)
            expanded = transform(source) if "Transform" in source else copy.deepcopy(source)
            stacks.append(Stack(name, path, source, expanded))
    return stacks


def write_expanded(stacks: list[Stack]) -> None:
    EXPANDED.mkdir(parents=True, exist_ok=True)
    for old in EXPANDED.glob("*.json"):
        old.unlink()
    for stack in stacks:
        name = "template" if stack.name == "Root" else stack.name
        (EXPANDED / f"{name}.json").write_text(json.dumps(stack.expanded, indent=1, sort_keys=True))


# ------------------------------------------------------- intrinsic helpers


def ref(value: Any) -> str | None:
    return value.get("Ref") if isinstance(value, dict) and len(value) == 1 else None


def getatt(value: Any) -> tuple[str, str] | None:
    if isinstance(value, dict) and len(value) == 1 and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        if isinstance(target, str):
            target = target.split(".", 1)
        return target[0], target[1]
    return None


def as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def evaluate(expr: Any, params: dict[str, str], conditions: dict[str, Any]) -> Any:
    """Resolves the intrinsics conditions and Rules use, for known parameter values."""
    if isinstance(expr, (str, int, float, bool)):
        return str(expr).lower() if isinstance(expr, bool) else str(expr)
    if isinstance(expr, list):
        return [evaluate(e, params, conditions) for e in expr]
    if isinstance(expr, dict) and len(expr) == 1:
        (key, arg), = expr.items()
        if key == "Ref":
            if arg not in params:
                raise KeyError(f"no value for parameter {arg}")
            return params[arg]
        if key == "Condition":
            return condition(arg, params, conditions)
        if key == "Fn::Equals":
            a, b = (evaluate(x, params, conditions) for x in arg)
            return a == b
        if key == "Fn::Not":
            return not evaluate(arg[0], params, conditions)
        if key == "Fn::And":
            return all(evaluate(x, params, conditions) for x in arg)
        if key == "Fn::Or":
            return any(evaluate(x, params, conditions) for x in arg)
        if key == "Fn::If":
            name, yes, no = arg
            return evaluate(yes if condition(name, params, conditions) else no, params, conditions)
        if key == "Fn::Split":
            sep, text = arg
            return evaluate(text, params, conditions).split(sep)
        if key == "Fn::Select":
            index, items = arg
            return evaluate(items, params, conditions)[int(index)]
        if key == "Fn::Contains":
            items, item = arg
            return evaluate(item, params, conditions) in evaluate(items, params, conditions)
    raise ValueError(f"cannot evaluate {expr!r}")


def condition(name: str, params: dict[str, str], conditions: dict[str, Any]) -> bool:
    return bool(evaluate(conditions[name], params, conditions))


# ----------------------------------------------------------------- config


def samconfig() -> dict:
    return tomllib.loads((ROOT / "samconfig.toml").read_text())


def overrides(env_config: dict) -> dict[str, str]:
    text = env_config.get("deploy", {}).get("parameters", {}).get("parameter_overrides", "")
    if isinstance(text, list):
        items = text
    else:
        items = shlex.split(text)
    values = {}
    for item in items:
        key, _, value = item.partition("=")
        values[key] = value
    return values


def root_parameters(root: Stack, env: str, config: dict) -> dict[str, str]:
    params = {}
    for name, spec in root.source.get("Parameters", {}).items():
        if "Default" in spec:
            params[name] = str(spec["Default"])
    params.update(overrides(config[env]))
    return params


def nested_parameters(root: Stack, stack: Stack, root_params: dict[str, str]) -> dict[str, str]:
    params = {}
    for name, spec in stack.source.get("Parameters", {}).items():
        if "Default" in spec:
            params[name] = str(spec["Default"])
    passed = root.source["Resources"][stack.name]["Properties"].get("Parameters", {})
    for name, value in passed.items():
        try:
            params[name] = evaluate(value, root_params, root.source.get("Conditions", {}))
        except (KeyError, ValueError):
            pass  # a resource attribute: known only at deploy time
    return params


def security_headers() -> dict[str, str]:
    """The functions' security headers, read from the code that sends them."""
    text = (ROOT / "shared/platform/src/http/headers.rs").read_text()
    block = re.search(r"SECURITY_HEADERS[^=]*=\s*\[(.*?)\];", text, re.S)
    return {name.lower(): value for name, value in re.findall(r'\("([^"]+)",\s*"([^"]*)"\)', block.group(1))}


# ------------------------------------------------------------------ checks


class Checks:
    def __init__(self, stacks: list[Stack], exceptions: dict):
        self.stacks = stacks
        self.root = stacks[0]
        self.by_name = {s.name: s for s in stacks}
        self.exceptions = exceptions
        self.used_wildcards: set[int] = set()
        self.results: list[tuple[str, list[str]]] = []
        self.config = samconfig()

    def run(self, name: str, check) -> None:
        problems: list[str] = []
        try:
            check(problems)
        except Exception as error:  # a check that cannot even read the stack fails
            problems.append(f"{type(error).__name__}: {error}")
        self.results.append((name, problems))

    # -- helpers

    def functions(self) -> dict[str, dict]:
        return self.root.of_type("AWS::Lambda::Function")

    def function_package(self, logical_id: str) -> str:
        source = self.root.source["Resources"][logical_id]["Properties"]["CodeUri"]
        return source.strip("/").split("/")[-1]

    def api_functions(self) -> set[str]:
        """Functions API Gateway invokes (they answer HTTP, so 5xx apply)."""
        found = set()
        for permission in self.root.of_type("AWS::Lambda::Permission").values():
            props = permission["Properties"]
            if props.get("Principal") == "apigateway.amazonaws.com":
                target = ref(props["FunctionName"])
                alias = self.root.resources.get(target, {})
                if alias.get("Type") == "AWS::Lambda::Alias":
                    target = ref(alias["Properties"]["FunctionName"])
                found.add(target)
        return found

    def own_metrics(self) -> dict[str, Any]:
        """Where the functions file their EMF metrics, as the root template
        gives it to them (Globals): namespace, service and environment."""
        variables = self.root.source["Globals"]["Function"]["Environment"]["Variables"]
        return {
            "namespace": variables.get("METRICS_NAMESPACE"),
            "service": variables.get("SERVICE_NAME"),
            "environment": variables.get("ENVIRONMENT"),
        }

    def role_of(self, function: dict) -> tuple[str, dict] | None:
        target = getatt(function["Properties"].get("Role"))
        if not target or target[1] != "Arn":
            return None
        return target[0], self.root.resources[target[0]]

    def role_statements(self, role: dict) -> list[dict]:
        statements = []
        for policy in role["Properties"].get("Policies", []) or []:
            statements += as_list(policy["PolicyDocument"].get("Statement"))
        return statements

    # -- 1. the API's stages

    def stages(self, problems: list[str]) -> None:
        stages = [(s, k, v) for s in self.stacks for k, v in s.of_type("AWS::ApiGateway::Stage").items()]
        for stack in self.stacks:
            for name, deployment in stack.of_type("AWS::ApiGateway::Deployment").items():
                if "StageName" in deployment["Properties"]:
                    problems.append(f"{name} creates the stage {deployment['Properties']['StageName']!r} itself (set OpenApiVersion on the API)")
            for name, api in stack.of_type("AWS::ApiGatewayV2::Stage").items():
                stages.append((stack, name, api))
        if len(stages) != 1:
            problems.append(f"expected exactly one API stage, found {[n for _, n, _ in stages]}")
        for stack, name, stage in stages:
            props = stage["Properties"]
            if props.get("TracingEnabled") is not True:
                problems.append(f"{name}: X-Ray tracing is off")
            destination = getatt((props.get("AccessLogSetting") or {}).get("DestinationArn"))
            group = stack.resources.get(destination[0]) if destination else None
            if not group or group.get("Type") != "AWS::Logs::LogGroup" or "RetentionInDays" not in group["Properties"]:
                problems.append(f"{name}: no access log group with a retention")
            if not (props.get("AccessLogSetting") or {}).get("Format"):
                problems.append(f"{name}: access logs have no format")
            throttled = [
                m for m in props.get("MethodSettings", [])
                if m.get("ResourcePath") == "/*" and m.get("HttpMethod") == "*"
                and "ThrottlingRateLimit" in m and "ThrottlingBurstLimit" in m
            ]
            if not throttled:
                problems.append(f"{name}: no stage-wide throttling (MethodSettings /* *)")
            if not self.stage_has_waf(stack, props):
                problems.append(f"{name}: no WAF web ACL is associated with it")

    def stage_has_waf(self, stack: Stack, stage: dict) -> bool:
        api = ref(stage["RestApiId"])
        stage_name = stage["StageName"]
        for nested_name, nested in stack.of_type("AWS::CloudFormation::Stack").items():
            waf = self.by_name.get(nested_name)
            if not waf:
                continue
            for param, value in nested["Properties"].get("Parameters", {}).items():
                text = value.get("Fn::Sub") if isinstance(value, dict) else None
                if not isinstance(text, str) or f"${{{api}}}" not in text or not text.endswith(f"/stages/{stage_name}"):
                    continue
                associated = any(
                    ref(a["Properties"]["ResourceArn"]) == param
                    for a in waf.of_type("AWS::WAFv2::WebACLAssociation").values()
                )
                waits = stage_logical_ids(stack, api, stage_name) & set(as_list(nested.get("DependsOn")))
                if associated and waits:
                    return True
        return False

    # -- 2. the edge: WAF rules, logging, responses

    def edge(self, problems: list[str]) -> None:
        waf = self.by_name["Waf"]
        root_waf = self.root.resources["Waf"]["Properties"]["Parameters"]
        (acl_name, acl), = waf.of_type("AWS::WAFv2::WebACL").items()
        rules = {r["Name"]: r for r in acl["Properties"]["Rules"]}
        managed = {r["Statement"]["ManagedRuleGroupStatement"]["Name"]: r for r in rules.values() if "ManagedRuleGroupStatement" in r["Statement"]}
        for group in ["AWSManagedRulesAmazonIpReputationList", "AWSManagedRulesKnownBadInputsRuleSet", "AWSManagedRulesCommonRuleSet"]:
            rule = managed.get(group)
            if not rule:
                problems.append(f"the web ACL lacks the managed rule group {group}")
                continue
            action = rule.get("OverrideAction", {})
            switch = action.get("Fn::If") if isinstance(action, dict) else None
            if not switch or switch[1] != {"Count": {}} or switch[2] != {"None": {}}:
                problems.append(f"{group} cannot be switched to count mode per environment")
        rate = [r for r in rules.values() if "RateBasedStatement" in r["Statement"]]
        if len(rate) != 1:
            problems.append("the web ACL needs exactly one rate-based rule")
        else:
            statement = rate[0]["Statement"]["RateBasedStatement"]
            if ref(statement.get("Limit")) != "RateLimitPerMinute" or ref(root_waf.get("RateLimitPerMinute")) != "RateLimitPerMinute":
                problems.append("the WAF rate limit is not the root RateLimitPerMinute parameter")
            if statement.get("EvaluationWindowSec") != 60:
                problems.append("the WAF rate limit must count over 60 seconds (it is a per-minute limit)")
            response = rate[0].get("Action", {}).get("Block", {}).get("CustomResponse", {})
            if response.get("ResponseCode") != 429:
                problems.append("the WAF rate limit does not answer 429")
            headers = waf_headers(response.get("ResponseHeaders", []))
            if "retry-after" not in headers:
                problems.append("the WAF 429 has no Retry-After")
            self.carries_security_headers("the WAF 429", headers, problems)
            if "access-control-allow-origin" not in headers:
                problems.append("the WAF 429 has no CORS header")
            body = acl["Properties"].get("CustomResponseBodies", {}).get(response.get("CustomResponseBodyKey", ""), {})
            try:
                envelope = json.loads(body.get("Content", ""))["error"]
                assert envelope["code"] == "rate_limited" and {"message", "details", "request_id"} <= envelope.keys()
            except Exception:
                problems.append("the WAF 429 body is not the API's error envelope with code rate_limited")
        logging = waf.of_type("AWS::WAFv2::LoggingConfiguration")
        if not logging:
            problems.append("WAF does not log")
        for config in logging.values():
            props = config["Properties"]
            if getatt(props["ResourceArn"]) != (acl_name, "Arn"):
                problems.append("the WAF logging configuration is not the web ACL's")
            for destination in props["LogDestinationConfigs"]:
                text = json.dumps(destination)
                groups = [g for g in waf.of_type("AWS::Logs::LogGroup") if "${" + g + "}" in text]
                if not groups or "RetentionInDays" not in waf.resources[groups[0]]["Properties"]:
                    problems.append("WAF logs to something other than a log group with a retention")
            redacted = {f.get("SingleHeader", {}).get("Name", "").lower() for f in props.get("RedactedFields", [])}
            if "authorization" not in redacted:
                problems.append("WAF logs carry the Authorization header")
        (api_name, api), = self.root.of_type("AWS::ApiGateway::RestApi").items()
        responses = api["Properties"]["Body"].get("x-amazon-apigateway-gateway-responses", {})
        for kind in ["DEFAULT_4XX", "DEFAULT_5XX", "WAF_FILTERED", "THROTTLED"]:
            response = responses.get(kind)
            if not response:
                problems.append(f"no {kind} gateway response")
                continue
            headers = {
                k.split("gatewayresponse.header.", 1)[1].lower(): v
                for k, v in response.get("responseParameters", {}).items()
                if k.startswith("gatewayresponse.header.")
            }
            quoted = {k: (v[1:-1] if isinstance(v, str) and v.startswith("'") and v.endswith("'") else v) for k, v in headers.items()}
            self.carries_security_headers(f"the {kind} gateway response", quoted, problems)
            if "access-control-allow-origin" not in headers:
                problems.append(f"the {kind} gateway response has no CORS header")
            if "application/json" not in response.get("responseTemplates", {}):
                problems.append(f"the {kind} gateway response has no JSON error envelope")
        if "retry-after" not in {k.lower().split(".")[-1] for k in responses.get("THROTTLED", {}).get("responseParameters", {})}:
            problems.append("the THROTTLED gateway response has no Retry-After")

    def carries_security_headers(self, what: str, headers: dict[str, Any], problems: list[str]) -> None:
        for name, value in security_headers().items():
            if headers.get(name) != value:
                problems.append(f"{what}: {name} is {headers.get(name)!r}, the functions send {value!r}")

    # -- 3. IAM: no wildcard anywhere

    def iam_wildcards(self, problems: list[str]) -> None:
        for stack in self.stacks:
            for name, resource in stack.resources.items():
                for statement in policy_statements(resource):
                    self.judge(stack.name, name, statement, problems)
                for arn in as_list(resource.get("Properties", {}).get("ManagedPolicyArns")):
                    if ref(arn) and stack.resources.get(ref(arn), {}).get("Type") == "AWS::IAM::ManagedPolicy":
                        continue  # ours: judged above as a resource of its own
                    known = [n for n, p in MANAGED_POLICIES.items() if json.dumps(arn).find(p["arn"].split(":policy/")[1]) >= 0]
                    if not known:
                        problems.append(f"{stack.name}/{name} attaches {arn}: record its documented statements in MANAGED_POLICIES")
                        continue
                    for statement in MANAGED_POLICIES[known[0]]["statements"]:
                        self.judge(stack.name, name, statement, problems, via=known[0])
        for index, entry in enumerate(self.exceptions.get("iam_wildcard", [])):
            if not entry.get("reason", "").strip():
                problems.append(f"exceptions.toml: the iam_wildcard entry for {entry.get('resource')} has no reason")
            if index not in self.used_wildcards:
                problems.append(f"exceptions.toml: the iam_wildcard entry for {entry['stack']}/{entry['resource']} {entry['actions']} matches nothing (remove it)")

    def judge(self, stack: str, resource: str, statement: dict, problems: list[str], via: str | None = None) -> None:
        if statement.get("Effect") != "Allow":
            return
        actions = sorted(as_list(statement.get("Action")))
        wide = (
            "*" in as_list(statement.get("Resource"))
            or "NotResource" in statement
            or "NotAction" in statement
            or any(a == "*" or a.endswith(":*") for a in actions)
            or statement.get("Principal") == "*"
            or statement.get("Principal", {}) == {"AWS": "*"}
        )
        if not wide:
            return
        for index, entry in enumerate(self.exceptions.get("iam_wildcard", [])):
            if entry["stack"] == stack and entry["resource"] == resource and sorted(entry["actions"]) == actions:
                self.used_wildcards.add(index)
                return
        where = f"{stack}/{resource}" + (f" (through {via})" if via else "")
        problems.append(f"{where} allows {actions} on {statement.get('Resource', statement.get('NotResource'))!r}: scope it, or list it with a reason in exceptions.toml")

    # -- 4. IAM: each function its own log group, its own queue; the signing key

    def function_roles(self, problems: list[str]) -> None:
        mappings = self.root.of_type("AWS::Lambda::EventSourceMapping")
        for name, function in self.functions().items():
            found = self.role_of(function)
            if not found or found[1].get("Type") != "AWS::IAM::Role":
                problems.append(f"{name} has no role of its own in the template (SAM would generate one with AWS managed policies)")
                continue
            role_name, role = found
            principals = [p for s in role["Properties"]["AssumeRolePolicyDocument"]["Statement"] for p in as_list(s.get("Principal", {}).get("Service"))]
            if principals != ["lambda.amazonaws.com"]:
                problems.append(f"{role_name} may be assumed by {principals}, not only by Lambda")
            shared = [n for n, f in self.functions().items() if n != name and self.role_of(f) and self.role_of(f)[0] == role_name]
            if shared:
                problems.append(f"{name} shares its role with {shared}")
            statements = self.role_statements(role)
            log_group = ref(function["Properties"].get("LoggingConfig", {}).get("LogGroup"))
            logs = [s for s in statements if any(a.startswith("logs:") for a in as_list(s.get("Action")))]
            if not log_group:
                problems.append(f"{name} has no log group of its own")
            elif not logs or any(as_list(s.get("Resource")) != [{"Fn::GetAtt": [log_group, "Arn"]}] for s in logs):
                problems.append(f"{role_name} may write logs elsewhere than {log_group}")
            queues = [
                m["Properties"]["EventSourceArn"] for m in mappings.values()
                if self.mapped_function(m) == name
            ]
            reads = [s for s in statements if "sqs:ReceiveMessage" in as_list(s.get("Action"))]
            read_queues = [r for s in reads for r in as_list(s.get("Resource"))]
            if sorted(map(json.dumps, read_queues)) != sorted(map(json.dumps, queues)):
                problems.append(f"{role_name} reads queues {read_queues}, its event sources are {queues}")

    def mapped_function(self, mapping: dict) -> str | None:
        target = ref(mapping["Properties"]["FunctionName"])
        alias = self.root.resources.get(target, {})
        if alias.get("Type") == "AWS::Lambda::Alias":
            return ref(alias["Properties"]["FunctionName"])
        return target

    def signing_key(self, problems: list[str]) -> None:
        secret = {"Fn::GetAtt": ["Security", "Outputs.SigningKeySecretArn"]}
        readers = set()
        for stack in self.stacks:
            for name, resource in stack.resources.items():
                for statement in policy_statements(resource):
                    if statement.get("Effect") != "Allow":
                        continue
                    actions = as_list(statement.get("Action"))
                    if not any(a in ("secretsmanager:GetSecretValue", "secretsmanager:*", "*") for a in actions):
                        continue
                    if secret in as_list(statement.get("Resource")) or "*" in as_list(statement.get("Resource")):
                        readers.add((stack.name, name))
        roles = {
            self.role_of(f)[0]: n for n, f in self.functions().items() if self.role_of(f)
        }
        # Who verifies or issues tokens: the functions whose main.rs loads the
        # signing keys (init.signing_keys() or init.signing_keys_on_first_use()), read from the code itself.
        token_functions = {
            n for n in self.functions()
            if re.search(r"signing_keys\w*\(", (ROOT / "functions" / self.function_package(n) / "src/main.rs").read_text())
        }
        if "LoginFunction" not in token_functions:
            problems.append("cannot tell which functions use the signing key (login's main.rs no longer calls init.signing_keys())")
        for stack, name in sorted(readers):
            function = roles.get(name) if stack == "Root" else None
            if function is None:
                problems.append(f"{stack}/{name} can read the signing key but is no function's role")
            elif function not in token_functions:
                problems.append(f"{function} can read the signing key but neither verifies nor issues tokens")
        for function in sorted(token_functions):
            if ("Root", roles_by_function(roles).get(function)) not in readers:
                problems.append(f"{function} loads the signing keys but its role cannot read them")

    def login_writes(self, problems: list[str]) -> None:
        """Login may write only its throttle's items, whose key prefixes are the
        names of the limits and the sign-in history in the code
        (`Limit { name: "LOGIN", ... }`, `History { name: "LOGIN-KNOWN", ... }`)."""
        code = (ROOT / "shared/app/src/auth.rs").read_text()
        prefixes = {f"{name}#*" for name in re.findall(r'(?:Limit|History)\s*\{\s*name:\s*"([^"]+)"', code)}
        if not prefixes:
            problems.append("cannot find the login throttle's limits (Limit { name: ... }) in shared/app/src/auth.rs")
            return
        role = self.role_of(self.functions()["LoginFunction"])[1]
        for statement in self.role_statements(role):
            writes = {a for a in as_list(statement.get("Action")) if a in ("dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:DeleteItem")}
            if not writes:
                continue
            allowed = set(as_list(statement.get("Condition", {}).get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")))
            if allowed != prefixes:
                problems.append(f"login's {sorted(writes)} is limited to keys {sorted(allowed) or 'none (any item)'}, its throttle writes {sorted(prefixes)}")

    # -- 5. deployments guarded by each function's own alarm

    def deployments(self, problems: list[str]) -> None:
        api = self.api_functions()
        prod_config = self.deployment_config("prod")
        window = CANARY_WINDOW_SECONDS.get(prod_config, 0)
        if window is None:
            problems.append(f"prod deploys {prod_config}: no canary to roll back")
        aliases = self.root.of_type("AWS::Lambda::Alias")
        for function_name in self.functions():
            mine = {k: a for k, a in aliases.items() if ref(a["Properties"]["FunctionName"]) == function_name}
            if len(mine) != 1:
                problems.append(f"{function_name} has {len(mine)} aliases (AutoPublishAlias gives one)")
        for alias_name, alias in aliases.items():
            function_name = ref(alias["Properties"]["FunctionName"])
            version = getatt(alias["Properties"]["FunctionVersion"])[0]
            hook = alias.get("UpdatePolicy", {}).get("CodeDeployLambdaAliasUpdate")
            if not hook:
                problems.append(f"{alias_name} is not deployed through CodeDeploy")
                continue
            group = self.root.resources[ref(hook["DeploymentGroupName"])]["Properties"]
            alarms = [ref(a["Name"]) or json.dumps(a["Name"]) for a in group.get("AlarmConfiguration", {}).get("Alarms", [])]
            if not group.get("AlarmConfiguration", {}).get("Enabled") or not group.get("AutoRollbackConfiguration", {}).get("Enabled"):
                problems.append(f"{function_name}: its deployment neither watches alarms nor rolls back")
            package = self.function_package(function_name)
            seen = set()
            for alarm_name in alarms:
                alarm = self.root.resources.get(alarm_name)
                if not alarm:
                    problems.append(f"{function_name}: deployment alarm {alarm_name} is not an alarm beside it (cannot be checked to watch its new version)")
                    continue
                seen |= self.alarm_watches(alarm["Properties"], function_name, alias, version, package, window, problems)
            wanted = {"Errors", "Throttles"} | ({"ServerErrors"} if function_name in api else set())
            if not wanted <= seen:
                problems.append(f"{function_name}: its deployment alarms do not watch {sorted(wanted - seen)} of its new version")

    def alarm_watches(self, alarm: dict, function: str, alias: dict, version: str, package: str, window: int, problems: list[str]) -> set[str]:
        seen = set()
        alias_value = {"Fn::Sub": "${%s}:%s" % (function, alias["Properties"]["Name"])}
        new_version = {"Fn::GetAtt": [version, "Version"]}
        metrics = alarm.get("Metrics") or [{"MetricStat": {"Metric": {k: alarm.get(k) for k in ("Namespace", "MetricName", "Dimensions")}, "Period": alarm.get("Period")}}]
        for metric in metrics:
            stat = metric.get("MetricStat")
            if not stat:
                continue
            m = stat["Metric"]
            dims = {d["Name"]: d["Value"] for d in m.get("Dimensions", [])}
            needs = stat.get("Period", 0) * alarm.get("EvaluationPeriods", 99) + METRIC_DELAY_SECONDS
            if needs > (window or 10**9):
                problems.append(f"{function}: alarm on {m['MetricName']} needs {stat.get('Period')}s x {alarm.get('EvaluationPeriods')} periods + {METRIC_DELAY_SECONDS}s of metric delay, more than the {window}s canary")
            if m["Namespace"] == "AWS/Lambda" and m["MetricName"] == "Errors":
                if dims == {"FunctionName": {"Ref": function}, "Resource": alias_value, "ExecutedVersion": new_version}:
                    seen.add("Errors")
            elif m["Namespace"] == "AWS/Lambda" and m["MetricName"] == "Throttles":
                if dims.get("FunctionName") == {"Ref": function} and dims.get("Resource") == alias_value:
                    seen.add("Throttles")
            elif m["Namespace"] == self.own_metrics()["namespace"] and m["MetricName"] == "ServerErrors":
                own = self.own_metrics()
                wanted = {"Service": own["service"], "Environment": own["environment"], "Function": package, "Version": new_version}
                if dims == wanted:
                    seen.add("ServerErrors")
        if alarm.get("TreatMissingData") != "notBreaching":
            problems.append(f"{function}: its alarm should treat missing data as not breaching (no traffic is no failure)")
        if alarm.get("Threshold", 1) != 0 or alarm.get("ComparisonOperator") != "GreaterThanThreshold":
            problems.append(f"{function}: its alarm should fire on the first failure (> 0)")
        return seen

    def deployment_config(self, env: str) -> str:
        preference = self.root.source["Globals"]["Function"]["DeploymentPreference"]["Type"]
        params = root_parameters(self.root, env, self.config)
        return evaluate(preference, params, self.root.source.get("Conditions", {}))

    # -- 6. alarms reach someone

    def alarms_notify(self, problems: list[str]) -> None:
        monitoring = self.by_name["Monitoring"]
        topics = monitoring.of_type("AWS::SNS::Topic")
        for name, topic in topics.items():
            key = ref(topic["Properties"].get("KmsMasterKeyId"))
            key_resource = monitoring.resources.get(key or "", {})
            if key_resource.get("Type") != "AWS::KMS::Key":
                problems.append(f"topic {name} is not encrypted with a key of ours that CloudWatch may use ({topic['Properties'].get('KmsMasterKeyId')!r})")
            else:
                allowed = [
                    s for s in as_list(key_resource["Properties"]["KeyPolicy"]["Statement"])
                    if s.get("Effect") == "Allow" and s.get("Principal", {}).get("Service") == "cloudwatch.amazonaws.com"
                    and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(as_list(s.get("Action")))
                ]
                if not allowed:
                    problems.append(f"the key of topic {name} does not let CloudWatch publish")
                if key_resource["Properties"].get("EnableKeyRotation") is not True:
                    problems.append(f"the key of topic {name} does not rotate")
        subscriptions = monitoring.of_type("AWS::SNS::Subscription")
        if not subscriptions:
            problems.append("nobody subscribes to the alarm topic")
        for stack in self.stacks:
            for name, alarm in stack.of_type("AWS::CloudWatch::Alarm").items():
                actions = json.dumps(alarm["Properties"].get("AlarmActions", []))
                if "AlarmTopic" not in actions:
                    problems.append(f"{stack.name}/{name} notifies nobody")
        for env in ENVIRONMENTS:
            params = root_parameters(self.root, env, self.config)
            for rule_name, rule in self.root.source.get("Rules", {}).items():
                applies = True
                if "RuleCondition" in rule:
                    applies = evaluate(rule["RuleCondition"], params, {})
                if applies:
                    for assertion in rule["Assertions"]:
                        if not evaluate(assertion["Assert"], params, {}):
                            problems.append(f"{env}: samconfig.toml's values break rule {rule_name}: {assertion.get('AssertDescription', '').strip()}")
            if env == "prod":
                rules = self.root.source.get("Rules", {})
                empty = dict(params, AlarmEmail="")
                refused = any(
                    evaluate(r.get("RuleCondition", True), empty, {}) is True
                    and not all(evaluate(a["Assert"], empty, {}) for a in r["Assertions"])
                    for r in rules.values()
                )
                if not refused:
                    problems.append("prod would deploy with an empty AlarmEmail (add a Rules assertion)")

    # -- 7. stateful resources

    def stateful(self, problems: list[str]) -> None:
        for stack in self.stacks:
            dead_letter_targets = set()
            for queue in stack.of_type("AWS::SQS::Queue").values():
                target = getatt((queue["Properties"].get("RedrivePolicy") or {}).get("deadLetterTargetArn"))
                if target:
                    dead_letter_targets.add(target[0])
            for name, resource in stack.resources.items():
                stateful = resource["Type"] in STATEFUL_TYPES or name in dead_letter_targets
                if stateful and (resource.get("DeletionPolicy") != "Retain" or resource.get("UpdateReplacePolicy") != "Retain"):
                    problems.append(f"{stack.name}/{name} ({resource['Type']}) needs DeletionPolicy and UpdateReplacePolicy Retain")
                if resource["Type"] == "AWS::Logs::LogGroup" and "RetentionInDays" not in resource["Properties"]:
                    problems.append(f"{stack.name}/{name} keeps logs forever")
            for name, table in stack.of_type("AWS::DynamoDB::Table").items():
                props = table["Properties"]
                if not props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"):
                    problems.append(f"{name}: point-in-time recovery is off")
                if props.get("DeletionProtectionEnabled") is not True:
                    problems.append(f"{name}: deletion protection is off")
                for index in props.get("GlobalSecondaryIndexes", []):
                    projection = index["Projection"]
                    if projection.get("ProjectionType") != "INCLUDE":
                        problems.append(f"{name}/{index['IndexName']} projects {projection.get('ProjectionType')}, not only what its queries read")
                    if "password_hash" in projection.get("NonKeyAttributes", []):
                        problems.append(f"{name}/{index['IndexName']} projects the password hash")
        self.backups(problems)

    def backups(self, problems: list[str]) -> None:
        data = self.by_name["Data"]
        if ref(self.root.resources["Data"]["Properties"]["Parameters"].get("RestoredTableName")) != "RestoredTableName":
            problems.append("the root stack cannot point the Data stack at a restored table (RestoredTableName)")
        outputs = json.dumps(data.expanded.get("Outputs", {}))
        if "RestoredTableName" not in outputs:
            problems.append("the Data stack's table outputs ignore RestoredTableName")
        for env in ENVIRONMENTS:
            params = nested_parameters(self.root, data, root_parameters(self.root, env, self.config))
            conditions = data.source.get("Conditions", {})
            def exists(resource: dict) -> bool:
                return "Condition" not in resource or condition(resource["Condition"], params, conditions)
            plans = [p for p in data.of_type("AWS::Backup::BackupPlan").values() if exists(p)]
            if env != "prod":
                continue
            daily = [
                rule for plan in plans for rule in plan["Properties"]["BackupPlan"]["BackupPlanRule"]
                if re.fullmatch(r"cron\(\d+ \d+ \* \* \? \*\)", rule.get("ScheduleExpression", ""))
                and rule.get("Lifecycle", {}).get("DeleteAfterDays") == 35
            ]
            if not daily:
                problems.append("prod has no daily AWS Backup rule kept 35 days")
            selections = [s for s in data.of_type("AWS::Backup::BackupSelection").values() if exists(s)]
            if not any("Table" in json.dumps(s["Properties"]["BackupSelection"].get("Resources")) for s in selections):
                problems.append("prod's backup plan does not select the table")
            watched = " ".join(json.dumps(a["Properties"]) for a in data.of_type("AWS::CloudWatch::Alarm").values() if exists(a))
            for metric in ["NumberOfBackupJobsFailed", "NumberOfBackupJobsCompleted"]:
                if metric not in watched:
                    problems.append(f"prod's backups are not watched: no alarm on AWS/Backup {metric}")

    # -- 8. functions: timeouts, the relay's invoke config

    def functions_config(self, problems: list[str]) -> None:
        for name, function in self.functions().items():
            props = function["Properties"]
            variables = props.get("Environment", {}).get("Variables", {})
            declared = variables.get("FUNCTION_TIMEOUT_SECONDS")
            if declared is None or str(declared) != str(props.get("Timeout", 3)):
                problems.append(f"{name}: Timeout {props.get('Timeout', 3)} but FUNCTION_TIMEOUT_SECONDS {declared!r}")
            if props.get("TracingConfig", {}).get("Mode") != "Active":
                problems.append(f"{name}: X-Ray tracing is not active")
        queues = self.by_name["Queues"]
        visibility = int(queues.source["Parameters"]["VisibilityTimeoutSeconds"]["Default"])
        for mapping in self.root.of_type("AWS::Lambda::EventSourceMapping").values():
            function = self.functions()[self.mapped_function(mapping)]
            if visibility < 6 * int(function["Properties"].get("Timeout", 3)):
                problems.append(f"queue visibility {visibility}s is under six times {self.mapped_function(mapping)}'s timeout")
        invoke_configs = self.root.of_type("AWS::Lambda::EventInvokeConfig")
        for rule in self.root.of_type("AWS::Events::Rule").values():
            for target in rule["Properties"]["Targets"]:
                alias = self.root.resources.get(ref(target["Arn"]) or "", {})
                function = ref(alias.get("Properties", {}).get("FunctionName")) if alias else None
                configs = [c["Properties"] for c in invoke_configs.values() if ref(c["Properties"]["FunctionName"]) == function]
                if not configs or configs[0].get("MaximumRetryAttempts") != 0 or configs[0].get("MaximumEventAgeInSeconds", 21600) > 60:
                    problems.append(f"scheduled {function}: a missed event must be dropped (EventInvokeConfig: 0 retries, event age <= 60 s)")

    # -- 9. samconfig.toml

    def environments(self, problems: list[str]) -> None:
        declared = set(self.root.source.get("Parameters", {}))
        for env in ENVIRONMENTS:
            section = self.config.get(env)
            if not section:
                problems.append(f"samconfig.toml has no [{env}] environment")
                continue
            global_params = section.get("global", {}).get("parameters", {})
            for key in ["region", "profile"]:
                if not global_params.get(key):
                    problems.append(f"[{env}.global.parameters] sets no {key}")
            deploy = section.get("deploy", {}).get("parameters", {})
            tags = dict(t.partition("=")[::2] for t in shlex.split(deploy.get("tags", "")))
            if tags.get("environment") != env or not tags.get("service") or not tags.get("owner"):
                problems.append(f"[{env}] stack tags must name environment={env}, service and owner (got {tags})")
            values = overrides(section)
            if values.get("Environment") != env:
                problems.append(f"[{env}] deploys Environment={values.get('Environment')!r}")
            for key in ["SenderEmail", "AlarmEmail", "CorsAllowedOrigins", "LogRetentionDays"]:
                if key not in values:
                    problems.append(f"[{env}] does not set {key}")
            for key in values:
                if key not in declared:
                    problems.append(f"[{env}] sets {key}, which template.yaml does not declare")
            if not deploy.get("stack_name"):
                problems.append(f"[{env}] has no stack_name")


    # -- 10. CORS preflights: answered by API Gateway, as the code answers them

    def preflights(self, problems: list[str]) -> None:
        for name, resource in self.root.source["Resources"].items():
            if resource.get("Type") != "AWS::Serverless::Function":
                continue
            for event_name, event in (resource["Properties"].get("Events") or {}).items():
                method = str(event.get("Properties", {}).get("Method", "")).upper()
                if event.get("Type") == "Api" and method in ("OPTIONS", "ANY"):
                    problems.append(f"{name}: event {event_name} sends {method} to the function; API Gateway answers preflights itself (remove it)")
        (_, api), = self.root.of_type("AWS::ApiGateway::RestApi").items()
        props = api["Properties"]
        size = props.get("MinimumCompressionSize")
        if not isinstance(size, int) or not 0 <= size <= 10240:
            problems.append(f"the API compresses no responses (MinimumCompressionSize {size!r}; want a threshold up to 10 KB, such as 1024)")
        paths = props["Body"].get("paths", {})
        operations = {}
        for path, item in paths.items():
            methods = {m for m in item if m in ("get", "post", "put", "patch", "delete", "head")}
            options = item.get("options")
            if options is None:
                if methods:
                    problems.append(f"{path}: no OPTIONS, so a browser's preflight gets the 404 gateway response")
                continue
            operations[path] = options
            if options.get("x-amazon-apigateway-integration", {}).get("type", "").lower() != "mock":
                problems.append(f"OPTIONS {path} is not answered by API Gateway (integration {options.get('x-amazon-apigateway-integration', {}).get('type')!r}, not mock)")
        if len({json.dumps(o, sort_keys=True) for o in operations.values()}) > 1:
            problems.append(f"the paths' OPTIONS differ (every path must answer a preflight the same way): {sorted(operations)}")
        if not operations:
            problems.append("no path answers OPTIONS")
        for path, operation in sorted(operations.items())[:1] + sorted(operations.items())[1:]:
            before = len(problems)
            self.preflight_answer(path, operation, problems)
            if len(problems) > before:
                break  # the same problems on every path: once is enough

    def preflight_answer(self, path: str, operation: dict, problems: list[str]) -> None:
        integration = operation.get("x-amazon-apigateway-integration", {})
        try:
            status = json.loads(integration.get("requestTemplates", {}).get("application/json", ""))["statusCode"]
        except Exception:
            status = None
        if status != 200:
            problems.append(f"OPTIONS {path}: the mock's request template must select its 200 ({{\"statusCode\": 200}})")
        responses = integration.get("responses", {})
        if list(responses) != ["default"] or responses["default"].get("statusCode") != "204":
            problems.append(f"OPTIONS {path}: must answer every request 204 (one default integration response), not {responses!r}")
            return
        response = responses["default"]
        static = {}
        for key, value in response.get("responseParameters", {}).items():
            name = key.removeprefix("method.response.header.").lower()
            static[name] = value[1:-1] if isinstance(value, str) and value.startswith("'") and value.endswith("'") else value
        self.carries_security_headers(f"OPTIONS {path}", static, problems)
        if static.get("vary") != "Origin":
            problems.append(f"OPTIONS {path}: Vary is {static.get('vary')!r}, not Origin (caches must key the answer on Origin)")
        granted_statically = sorted(n for n in static if n.startswith("access-control-"))
        if granted_statically:
            problems.append(f"OPTIONS {path}: {granted_statically} are granted to every origin; only an allowed Origin may get them")
        declared = {h.lower() for h in operation.get("responses", {}).get("204", {}).get("headers", {})}
        cors = rust_str_constants("shared/platform/src/http/headers.rs")
        missing = [k for k in ("ALLOWED_METHODS", "ALLOWED_HEADERS", "EXPOSED_HEADERS", "PREFLIGHT_MAX_AGE") if k not in cors]
        if missing:
            problems.append(f"cannot find {missing} in shared/platform/src/http/headers.rs")
            return
        template = response.get("responseTemplates", {}).get("application/json")
        mappings = self.root.source.get("Mappings", {})
        parameter = self.root.source["Parameters"]["CorsAllowedOrigins"]
        pattern = parameter.get("AllowedPattern")
        values = {"default": str(parameter.get("Default", "")), "a list of two": "https://a.example,https://b.example:8443", "the local stack's": "http://localhost:3000"}
        for env in ENVIRONMENTS:
            values[env] = overrides(self.config.get(env, {})).get("CorsAllowedOrigins", values["default"])
        for where, value in values.items():
            if pattern is None or not re.fullmatch(pattern, value):
                problems.append(f"CorsAllowedOrigins {value!r} ({where}) does not match its AllowedPattern {pattern!r} (exact origins, comma-separated, no spaces)")
                continue
            try:
                vtl = Vtl(resolve_text(template, {"CorsAllowedOrigins": value}, mappings))
            except (VtlError, ValueError, KeyError, TypeError) as error:
                problems.append(f"OPTIONS {path}: cannot run its response template with CorsAllowedOrigins={value!r}: {error}")
                return
            allowed = [o.strip() for o in value.split(",") if o.strip()]  # as the functions read it (platform config)
            for request in preflight_cases(allowed):
                try:
                    body, answer = vtl.run(request)
                except VtlError as error:
                    problems.append(f"OPTIONS {path} with {request}: {error}")
                    return
                wanted = expected_cors(allowed, request, cors)
                if answer != wanted:
                    problems.append(f"OPTIONS {path}, CorsAllowedOrigins={value!r}, request headers {request}: API Gateway would grant {answer}, the code grants {wanted}")
                    return
                if body:
                    problems.append(f"OPTIONS {path}: its template prints {body!r}, but a 204 has no body")
                    return
                undeclared = sorted(set(answer) - declared)
                if undeclared:
                    problems.append(f"OPTIONS {path}: the method response does not declare {undeclared}")
                    return

    # -- 11. Lambda's own log lines kept

    def logging(self, problems: list[str]) -> None:
        for name, function in self.functions().items():
            config = function["Properties"].get("LoggingConfig") or {}
            if config.get("LogFormat") != "JSON":
                problems.append(f"{name}: LogFormat {config.get('LogFormat')!r}, not JSON")
            if config.get("SystemLogLevel") not in ("INFO", "DEBUG"):
                problems.append(f"{name}: SystemLogLevel {config.get('SystemLogLevel')!r} drops Lambda's REPORT lines (duration, memory used, init duration) and timeout lines: use INFO")

    # -- 12. the functions' own metrics: configured, and alarmed as emitted

    def identities(self, stack: Stack) -> dict[str, list]:
        """How `stack` names what the functions emit under: the root's own
        values, or the parameters the root passes them in."""
        own = self.own_metrics()
        if stack is self.root:
            return {k: [v] for k, v in own.items()}
        passed = self.root.source["Resources"][stack.name]["Properties"].get("Parameters", {})
        return {k: [{"Ref": p} for p, value in passed.items() if value == v] for k, v in own.items()}

    def own_metric_alarms(self, problems: list[str]) -> None:
        own = self.own_metrics()
        if ref(own["namespace"]) not in self.root.source.get("Parameters", {}):
            problems.append(f"METRICS_NAMESPACE is {own['namespace']!r}, not a parameter the alarms can share")
        if not isinstance(own["service"], str) or not own["service"]:
            problems.append(f"SERVICE_NAME is {own['service']!r}, not a name")
        if own["environment"] != {"Ref": "Environment"}:
            problems.append(f"ENVIRONMENT is {own['environment']!r}, not the Environment parameter")
        for name, function in self.functions().items():
            variables = function["Properties"].get("Environment", {}).get("Variables", {})
            for key, value in [("METRICS_NAMESPACE", own["namespace"]), ("SERVICE_NAME", own["service"]), ("ENVIRONMENT", own["environment"])]:
                if variables.get(key) != value:
                    problems.append(f"{name}: {key} is {variables.get(key)!r}, not {value!r}")
        packages = {self.function_package(n): n for n in self.functions()}
        versions = {}
        for alias in self.root.of_type("AWS::Lambda::Alias").values():
            versions[ref(alias["Properties"]["FunctionName"])] = {"Fn::GetAtt": [getatt(alias["Properties"]["FunctionVersion"])[0], "Version"]}
        default_namespace = str(self.root.source["Parameters"].get(ref(own["namespace"]) or "", {}).get("Default", ""))
        by_version = metrics_filed_by_version()
        found = 0
        for stack in self.stacks:
            identity = self.identities(stack)
            for alarm_name, alarm in stack.of_type("AWS::CloudWatch::Alarm").items():
                for metric in alarm_metrics(alarm["Properties"]):
                    where = f"{stack.name}/{alarm_name} ({metric['MetricName']})"
                    if metric["Namespace"] == default_namespace:
                        problems.append(f"{where}: the namespace is written out; use the MetricsNamespace parameter, as the functions do")
                        continue
                    if metric["Namespace"] not in identity["namespace"]:
                        continue
                    found += 1
                    dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
                    if set(dims) not in ({"Service", "Environment", "Function"}, {"Service", "Environment", "Function", "Version"}):
                        problems.append(f"{where}: dimensions {sorted(dims)}; the functions emit [Service, Environment, Function] and [Service, Environment, Function, Version]")
                        continue
                    if "Version" in dims and metric["MetricName"] not in by_version:
                        problems.append(f"{where}: read by Version, but only {sorted(by_version)} are filed by version (names.rs, BY_VERSION)")
                    if dims["Service"] not in identity["service"]:
                        problems.append(f"{where}: Service {dims['Service']!r}, the functions' SERVICE_NAME is {own['service']!r}")
                    if dims["Environment"] not in identity["environment"]:
                        problems.append(f"{where}: Environment {dims['Environment']!r} is not the stack's Environment")
                    if dims["Function"] not in packages:
                        problems.append(f"{where}: Function {dims['Function']!r} is no deployed function (cargo package names: {sorted(packages)})")
                    elif "Version" in dims and dims["Version"] != versions.get(packages[dims["Function"]]):
                        problems.append(f"{where}: Version {dims['Version']!r} is not {dims['Function']}'s published version")
        if not found:
            problems.append("no alarm reads the functions' own metrics (cannot tell whether their dimensions match)")

    # -- 13. alarms on what breaks, and the dashboard

    def all_alarms(self) -> list[tuple[Stack, str, dict]]:
        return [(s, n, a["Properties"]) for s in self.stacks for n, a in s.of_type("AWS::CloudWatch::Alarm").items()]

    def own_metric_reads(self, stack: Stack, alarm: dict) -> list[tuple[str, str]]:
        """(metric name, Function) of the functions' own metrics an alarm reads."""
        identity = self.identities(stack)
        reads = []
        for metric in alarm_metrics(alarm):
            if metric["Namespace"] in identity["namespace"]:
                dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
                reads.append((metric["MetricName"], dims.get("Function")))
        return reads

    def nested_value(self, stack: Stack, value: Any) -> Any:
        """A nested stack's parameter reference as the root passes it, with
        another stack's output followed to its value there."""
        if stack is not self.root and ref(value):
            value = self.root.source["Resources"][stack.name]["Properties"]["Parameters"].get(ref(value), value)
        target = getatt(value)
        if target and target[1].startswith("Outputs.") and target[0] in self.by_name:
            return self.by_name[target[0]].source["Outputs"][target[1].split(".", 1)[1]]["Value"]
        return value

    def alarms_on_what_breaks(self, problems: list[str]) -> None:
        alarms = self.all_alarms()
        # Every source queue: the age of its oldest message.
        mappings = self.root.of_type("AWS::Lambda::EventSourceMapping")
        consumers = {self.function_package(self.mapped_function(m)) for m in mappings.values()}
        queues = set()
        for mapping in mappings.values():
            arn = self.nested_value(self.root, mapping["Properties"]["EventSourceArn"])
            if getatt(arn):
                queues.add(getatt(arn)[0])
        aged = set()
        for stack, _, alarm in alarms:
            for metric in alarm_metrics(alarm):
                if (metric["Namespace"], metric["MetricName"]) == ("AWS/SQS", "ApproximateAgeOfOldestMessage"):
                    for dim in metric.get("Dimensions", []):
                        target = getatt(self.nested_value(stack, dim["Value"]))
                        if dim["Name"] == "QueueName" and target and target[1] == "QueueName":
                            aged.add(target[0])
        for queue in sorted(queues - aged):
            problems.append(f"no alarm on the age of the oldest message in {queue} (AWS/SQS ApproximateAgeOfOldestMessage)")
        if not queues:
            problems.append("cannot find the consumers' source queues")
        # The functions' own metrics, by (metric, function).
        reads = {(m, f) for stack, _, alarm in alarms for m, f in self.own_metric_reads(stack, alarm)}
        relays = set()
        for rule in self.root.of_type("AWS::Events::Rule").values():
            for target in rule["Properties"]["Targets"]:
                alias = self.root.resources.get(ref(target["Arn"]) or "", {})
                relays.add(self.function_package(ref(alias.get("Properties", {}).get("FunctionName"))))
        # expire-orders is scheduled too but relays nothing: its errors page
        # through its deployment alarm, like every function's.
        relays.discard("expire-orders")
        for relay in sorted(relays):
            for metric in ("OutboxAge", "EventsRelayFailed"):
                if (metric, relay) not in reads:
                    problems.append(f"no alarm on {relay}'s {metric}")
        for consumer in sorted(consumers):
            if ("MessagesFailed", consumer) not in reads:
                problems.append(f"no alarm on {consumer}'s MessagesFailed (messages it failed)")
        if ("LoginsFailed", "login") not in reads:
            problems.append("no alarm on login's LoginsFailed (a password-guessing campaign)")
        if not any(m == "TransactionConflicts" for m, _ in reads):
            problems.append("no alarm on TransactionConflicts")
        api = {self.function_package(f) for f in self.api_functions()}
        for function in sorted(api):
            rated = [
                alarm for stack, _, alarm in alarms
                if {("ColdStart", function), ("Requests", function)} <= set(self.own_metric_reads(stack, alarm))
                and any("/" in m.get("Expression", "") for m in alarm.get("Metrics", []))
            ]
            if not rated:
                problems.append(f"no alarm on {function}'s cold-start rate (ColdStart / Requests, metric math)")
        # SES reputation, where SES itself warns.
        for metric, limit in (("Reputation.BounceRate", 0.05), ("Reputation.ComplaintRate", 0.001)):
            fires = [
                a for _, _, a in alarms
                if a.get("Namespace") == "AWS/SES" and a.get("MetricName") == metric
                and ((a.get("ComparisonOperator") == "GreaterThanOrEqualToThreshold" and float(a.get("Threshold", 1)) <= limit)
                     or (a.get("ComparisonOperator") == "GreaterThanThreshold" and float(a.get("Threshold", 1)) < limit))
            ]
            if not fires:
                problems.append(f"no alarm on SES {metric} at or below {limit} (where SES puts the account under review)")
        # DynamoDB throttles of the table.
        data = self.by_name["Data"]
        (table, _), = data.of_type("AWS::DynamoDB::Table").items()
        throttles = set()
        for stack, _, alarm in alarms:
            for metric in alarm_metrics(alarm):
                dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
                if metric["Namespace"] == "AWS/DynamoDB" and stack is data and table in json.dumps(dims.get("TableName")):
                    throttles.add((metric["MetricName"], dims.get("GlobalSecondaryIndexName")))
        indexes = [None] + [i["IndexName"] for i in data.resources[table]["Properties"].get("GlobalSecondaryIndexes", [])]
        for index in indexes:
            for metric in ("ReadThrottleEvents", "WriteThrottleEvents"):
                if (metric, index) not in throttles:
                    problems.append(f"no alarm on DynamoDB {metric} of the table{f' index {index}' if index else ''}")

    def dashboard(self, problems: list[str]) -> None:
        boards = [(s, d) for s in self.stacks for d in s.of_type("AWS::CloudWatch::Dashboard").values()]
        if len(boards) != 1:
            problems.append(f"expected one dashboard, found {len(boards)}")
            return
        stack, board = boards[0]
        identity = self.identities(stack)
        params = {}
        for name in stack.source.get("Parameters", {}):
            if {"Ref": name} in identity["namespace"]:
                params[name] = "<own>"
            else:
                value = self.nested_value(stack, {"Ref": name})
                if isinstance(value, str):
                    params[name] = value
        try:
            metrics = dashboard_metrics(board["Properties"]["DashboardBody"], params)
        except Exception as error:
            problems.append(f"cannot read the dashboard body: {type(error).__name__}: {error}")
            return
        def has(namespace: str, name: str, stat: str | None = None, **dims: str) -> bool:
            return any(
                m["namespace"] == namespace and m["name"] == name and (stat is None or m["stat"] == stat)
                and (not dims or (isinstance(m["dimensions"], dict) and all(m["dimensions"].get(k) == v for k, v in dims.items())))
                for m in metrics
            )
        waf = self.by_name["Waf"]
        (_, acl), = waf.of_type("AWS::WAFv2::WebACL").items()
        rate_rule = [r for r in acl["Properties"]["Rules"] if "RateBasedStatement" in r["Statement"]][0]["VisibilityConfig"]["MetricName"]
        panels = {
            "function duration p50": has("AWS/Lambda", "Duration", "p50"),
            "function duration p99": has("AWS/Lambda", "Duration", "p99"),
            "concurrency": has("AWS/Lambda", "ConcurrentExecutions"),
            "queue depth": has("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
            "oldest message age": has("AWS/SQS", "ApproximateAgeOfOldestMessage"),
            "dead letters": sum(1 for m in metrics if m["name"] == "ApproximateNumberOfMessagesVisible" and "DeadLetter" in str(m["dimensions"])) >= 1,
            "DynamoDB consumed read capacity": has("AWS/DynamoDB", "ConsumedReadCapacityUnits"),
            "DynamoDB consumed write capacity": has("AWS/DynamoDB", "ConsumedWriteCapacityUnits"),
            "DynamoDB read throttles": has("AWS/DynamoDB", "ReadThrottleEvents"),
            "DynamoDB write throttles": has("AWS/DynamoDB", "WriteThrottleEvents"),
            "transaction conflicts": has("<own>", "TransactionConflicts"),
            "WAF allowed requests": has("AWS/WAFV2", "AllowedRequests"),
            "WAF blocked requests": has("AWS/WAFV2", "BlockedRequests", Rule="ALL"),
            "WAF rate-limited requests": has("AWS/WAFV2", "BlockedRequests", Rule=rate_rule),
            "SES sends": has("AWS/SES", "Send"),
            "SES bounces": has("AWS/SES", "Bounce"),
            "SES complaints": has("AWS/SES", "Complaint"),
        }
        for panel, present in panels.items():
            if not present:
                problems.append(f"the dashboard has no {panel} panel")
        acl_metric = acl["Properties"]["VisibilityConfig"]["MetricName"]
        for m in metrics:
            if m["namespace"] == "AWS/WAFV2" and isinstance(m["dimensions"], dict):
                read = m["dimensions"].get("WebACL", "")
                placeholder = re.fullmatch(r"\$\{([^}]+)\}", read)
                value = self.nested_value(stack, {"Ref": placeholder.group(1)}) if placeholder else read
                if value != acl_metric:
                    problems.append(f"the dashboard's WAF panel reads web ACL {value!r}; WAF files its metrics under {acl_metric!r}")
                    break

class CanaryChecks:
    """Service down, detected: the health canary (infra/canary.yaml)."""

    @staticmethod
    def health_canary(checks: "Checks", problems: list[str]) -> None:
        root = checks.root
        nested = [(name, r) for name, r in root.source["Resources"].items()
                  if r.get("Type") == "AWS::Serverless::Application" and r["Properties"]["Location"] == "infra/canary.yaml"]
        if len(nested) != 1:
            problems.append("template.yaml deploys no health canary (infra/canary.yaml)")
            return
        name, resource = nested[0]
        condition = resource.get("Condition")
        if condition:
            params = {k: str(v.get("Default", "")) for k, v in root.source.get("Parameters", {}).items()}
            if not evaluate(root.source["Conditions"][condition], params, root.source.get("Conditions", {})):
                problems.append(f"the health canary is off by default (condition {condition})")
        topic = json.dumps(resource["Properties"]["Parameters"].get("AlarmTopicArn"))
        if "Monitoring.Outputs.AlarmTopicArn" not in topic and "Monitoring" not in topic:
            problems.append(f"the canary's alarm topic is not the Monitoring stack's alarm topic ({topic})")
        stack = checks.by_name[name]
        canaries = stack.of_type("AWS::Synthetics::Canary")
        if len(canaries) != 1:
            problems.append(f"{name} has {len(canaries)} Synthetics canaries, not one")
            return
        canary_id, canary = next(iter(canaries.items()))
        props = canary["Properties"]
        if props.get("Schedule", {}).get("Expression") != "rate(1 minute)":
            problems.append(f"the canary runs on {props.get('Schedule')}, not every minute")
        script = props.get("Code", {}).get("Script", "")
        for path in ("/health", "/products"):
            if path not in script:
                problems.append(f"the canary's script never calls {path}")
        alarms = [
            (alarm_id, alarm["Properties"]) for alarm_id, alarm in stack.of_type("AWS::CloudWatch::Alarm").items()
            if alarm["Properties"].get("Namespace") == "CloudWatchSynthetics"
            and alarm["Properties"].get("MetricName") == "SuccessPercent"
            and any(ref(d.get("Value")) == canary_id for d in alarm["Properties"].get("Dimensions", []))
        ]
        if not alarms:
            problems.append("no alarm on the canary's SuccessPercent")
        for alarm_id, alarm in alarms:
            window = int(alarm.get("Period", 0)) * int(alarm.get("DatapointsToAlarm", alarm.get("EvaluationPeriods", 0)))
            if window == 0 or window > 120:
                problems.append(f"{alarm_id} fires after {window} s, not within two minutes")
            if ref(as_list(alarm.get("AlarmActions"))[0] if alarm.get("AlarmActions") else None) != "AlarmTopicArn":
                problems.append(f"{alarm_id} does not page the alarm topic")
            if alarm.get("TreatMissingData") != "breaching":
                problems.append(f"{alarm_id}: a canary that stopped reporting must count as down (TreatMissingData breaching)")
        for bucket_id, bucket in stack.of_type("AWS::S3::Bucket").items():
            bprops = bucket["Properties"]
            if not bprops.get("BucketEncryption"):
                problems.append(f"{bucket_id} is not encrypted")
            if not bprops.get("LifecycleConfiguration", {}).get("Rules"):
                problems.append(f"{bucket_id} keeps canary artefacts forever (no lifecycle rule)")


def waf_headers(headers: list) -> dict[str, Any]:
    found = {}
    for header in headers:
        if isinstance(header, dict) and "Fn::If" in header:
            header = header["Fn::If"][1]
        if isinstance(header, dict) and "Name" in header:
            found[header["Name"].lower()] = header["Value"]
    return found


def stage_logical_ids(stack: Stack, api: str, stage_name: str) -> set[str]:
    return {
        k for k, v in stack.of_type("AWS::ApiGateway::Stage").items()
        if ref(v["Properties"]["RestApiId"]) == api and v["Properties"]["StageName"] == stage_name
    }


def metrics_filed_by_version() -> set[str]:
    """The metric names shared/platform/src/metrics/names.rs lists in BY_VERSION."""
    text = (ROOT / "shared/platform/src/metrics/names.rs").read_text()
    constants = dict(re.findall(r'pub const (\w+): &str = "([^"]+)";', text))
    listed = re.search(r"pub const BY_VERSION: &\[&str\] = &\[([^\]]*)\]", text)
    return {constants[name.strip()] for name in listed.group(1).split(",") if name.strip()} if listed else set()


def alarm_metrics(alarm: dict) -> list[dict]:
    """The metrics an alarm reads (Namespace, MetricName, Dimensions), whether
    it watches one metric or metric math over several."""
    if alarm.get("MetricName"):
        return [{k: alarm.get(k) for k in ("Namespace", "MetricName", "Dimensions") if alarm.get(k) is not None}]
    return [m["MetricStat"]["Metric"] for m in alarm.get("Metrics", []) if "MetricStat" in m]


def roles_by_function(roles: dict[str, str]) -> dict[str, str]:
    return {function: role for role, function in roles.items()}


def policy_statements(resource: dict) -> list[dict]:
    """Every permission statement a resource defines (identity or resource policy)."""
    props = resource.get("Properties", {}) or {}
    kind = resource.get("Type")
    documents = []
    if kind == "AWS::IAM::Role" or kind in ("AWS::IAM::User", "AWS::IAM::Group"):
        documents += [p["PolicyDocument"] for p in props.get("Policies", []) or []]
    elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        documents.append(props["PolicyDocument"])
    elif kind == "AWS::KMS::Key":
        documents.append(props.get("KeyPolicy", {}))
    elif kind in ("AWS::SNS::TopicPolicy", "AWS::SQS::QueuePolicy"):
        documents.append(props["PolicyDocument"])
    elif kind in ("AWS::SecretsManager::ResourcePolicy",):
        documents.append(props["ResourcePolicy"])
    elif kind == "AWS::Backup::BackupVault" and props.get("AccessPolicy"):
        documents.append(props["AccessPolicy"])
    statements = []
    for document in documents:
        statements += [s for s in as_list(document.get("Statement")) if isinstance(s, dict)]
    return statements


# ------------------------------------------------- API Gateway mapping templates


class VtlError(Exception):
    pass


class Vtl:
    """Runs the subset of Velocity (VTL) an API Gateway mapping template of
    this project may use, as API Gateway runs it: `#set`, `#if`/`#elseif`/
    `#else`/`#end`, `#foreach`, `##` comments, references with properties and
    Java method calls (`keySet`, `get`, `toLowerCase`, `contains`), string,
    boolean and list literals, `==`, `!=`, `&&`, `||`, `!`. Anything else is
    an error, so the preflight template cannot grow a construct this check
    does not understand. `$input.params().header` is the request's headers;
    `#set($context.responseOverride.header.X = ...)` records a header of the
    answer (twice is an error: API Gateway answers 5XX)."""

    IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")

    def __init__(self, text: str):
        self.text = text
        self.pos = 0
        self.body, stop = self.block(())
        if stop is not None:
            raise VtlError(f"unexpected #{stop}")

    # -- parsing: a template is a list of nodes

    def block(self, stops: tuple[str, ...]) -> tuple[list, str | None]:
        nodes: list = []
        text = ""
        while self.pos < len(self.text):
            s = self.text
            if s.startswith("##", self.pos):
                end = s.find("\n", self.pos)
                self.pos = len(s) if end < 0 else end + 1
                continue
            directive = re.match(r"#\{?(set|if|elseif|else|end|foreach)\}?", s[self.pos:])
            if directive:
                if text:
                    nodes.append(("text", text))
                    text = ""
                name = directive.group(1)
                self.pos += directive.end()
                if name in ("end", "else", "elseif"):
                    if name not in stops:
                        raise VtlError(f"#{name} outside a block")
                    return nodes, name
                if name == "set":
                    inner = self.parens()
                    target, _, value = inner.partition("=")
                    nodes.append(("set", self.reference_path(target.strip()), Expr(value.strip())))
                elif name == "if":
                    branches = []
                    condition = Expr(self.parens())
                    while True:
                        body, stop = self.block(("elseif", "else", "end"))
                        branches.append((condition, body))
                        if stop == "end":
                            break
                        if stop == "else":
                            body, stop = self.block(("end",))
                            branches.append((None, body))
                            break
                        condition = Expr(self.parens())
                    nodes.append(("if", branches))
                elif name == "foreach":
                    inner = self.parens()
                    match = re.fullmatch(r"\s*\$([A-Za-z][A-Za-z0-9_]*)\s+in\s+(.+)", inner, re.S)
                    if not match:
                        raise VtlError(f"cannot read #foreach({inner})")
                    body, stop = self.block(("end",))
                    nodes.append(("foreach", match.group(1), Expr(match.group(2)), body))
                continue
            if s[self.pos] == "$" or s[self.pos] == "#":
                raise VtlError(f"unsupported text at {s[self.pos:self.pos + 30]!r}")
            text += s[self.pos]
            self.pos += 1
        if text:
            nodes.append(("text", text))
        if stops:
            raise VtlError(f"missing #end (expected one of {stops})")
        return nodes, None

    def parens(self) -> str:
        s = self.text
        if self.pos >= len(s) or s[self.pos] != "(":
            raise VtlError(f"expected ( at {s[self.pos:self.pos + 30]!r}")
        depth, i, quote = 0, self.pos, None
        while i < len(s):
            c = s[i]
            if quote:
                if c == quote:
                    quote = None
            elif c in "\"'":
                quote = c
            elif c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
                if depth == 0:
                    inner = s[self.pos + 1:i]
                    self.pos = i + 1
                    return inner
            i += 1
        raise VtlError("unbalanced parentheses")

    def reference_path(self, text: str) -> list[str]:
        if not text.startswith("$"):
            raise VtlError(f"#set needs a reference, not {text!r}")
        parts = text[1:].split(".")
        if not all(self.IDENT.fullmatch(p) for p in parts):
            raise VtlError(f"cannot set {text!r}")
        return parts

    # -- running

    def run(self, headers: dict[str, str], variables: dict[str, Any] | None = None) -> tuple[str, dict[str, str]]:
        scope: dict[str, Any] = dict(variables or {})
        scope["input"] = {"params": lambda: {"header": dict(headers), "path": {}, "querystring": {}}}
        overrides: dict[str, str] = {}
        out: list[str] = []
        self.execute(self.body, scope, overrides, out)
        return "".join(out), overrides

    def execute(self, nodes: list, scope: dict, overrides: dict, out: list) -> None:
        for node in nodes:
            kind = node[0]
            if kind == "text":
                out.append(node[1])
            elif kind == "set":
                path, value = node[1], node[2].evaluate(scope)
                if path[:3] == ["context", "responseOverride", "header"] and len(path) == 4:
                    if path[3].lower() in overrides:
                        raise VtlError(f"{path[3]} is overridden twice (API Gateway answers 5XX)")
                    overrides[path[3].lower()] = str(value)
                elif path == ["context", "responseOverride", "status"]:
                    overrides[":status"] = str(value)
                elif len(path) == 1:
                    if value is not None:  # Velocity leaves the variable as it was
                        scope[path[0]] = value
                else:
                    raise VtlError(f"cannot set ${'.'.join(path)}")
            elif kind == "if":
                for condition, body in node[1]:
                    if condition is None or truthy(condition.evaluate(scope)):
                        self.execute(body, scope, overrides, out)
                        break
            elif kind == "foreach":
                items = node[2].evaluate(scope)
                for item in list(items or []):
                    scope[node[1]] = item
                    self.execute(node[3], scope, overrides, out)


def truthy(value: Any) -> bool:
    return value is not None and value is not False


class Expr:
    """A VTL expression (see Vtl), parsed once and evaluated per request."""

    TOKEN = re.compile(r'\s*(?:(==|!=|&&|\|\||!|\(|\)|\[|\]|,|\.)|"([^"$]*)"|(true|false)\b|\$([A-Za-z][A-Za-z0-9_-]*)|([A-Za-z][A-Za-z0-9_-]*))')

    def __init__(self, text: str):
        self.tokens: list[tuple[str, Any]] = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            match = self.TOKEN.match(text, pos)
            if not match or match.end() == pos:
                raise VtlError(f"cannot read expression {text!r} at {text[pos:]!r}")
            op, string, boolean, ref, ident = match.groups()
            if op:
                self.tokens.append(("op", op))
            elif string is not None:
                self.tokens.append(("value", string))
            elif boolean:
                self.tokens.append(("value", boolean == "true"))
            elif ref:
                self.tokens.append(("ref", ref))
            else:
                self.tokens.append(("ident", ident))
            pos = match.end()
        self.i = 0
        self.tree = self.disjunction()
        if self.i != len(self.tokens):
            raise VtlError(f"cannot read expression {text!r}")

    def peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, op: str) -> bool:
        if self.peek() == ("op", op):
            self.i += 1
            return True
        return False

    def disjunction(self):
        node = self.conjunction()
        while self.take("||"):
            node = ("or", node, self.conjunction())
        return node

    def conjunction(self):
        node = self.comparison()
        while self.take("&&"):
            node = ("and", node, self.comparison())
        return node

    def comparison(self):
        node = self.unary()
        for op in ("==", "!="):
            if self.take(op):
                return (op, node, self.unary())
        return node

    def unary(self):
        if self.take("!"):
            return ("not", self.unary())
        if self.take("("):
            node = self.disjunction()
            if not self.take(")"):
                raise VtlError("missing )")
            return node
        if self.take("["):
            items = []
            while not self.take("]"):
                items.append(self.disjunction())
                if not self.take(","):
                    if not self.take("]"):
                        raise VtlError("missing ]")
                    break
            return ("list", items)
        token = self.peek()
        if token is None:
            raise VtlError("expression ends too soon")
        self.i += 1
        if token[0] == "value":
            return ("value", token[1])
        if token[0] != "ref":
            raise VtlError(f"unexpected {token[1]!r}")
        node = ("var", token[1])
        while self.take("."):
            name = self.peek()
            if not name or name[0] != "ident":
                raise VtlError("expected a name after .")
            self.i += 1
            if self.take("("):
                args = []
                while not self.take(")"):
                    args.append(self.disjunction())
                    self.take(",")
                node = ("call", node, name[1], args)
            else:
                node = ("property", node, name[1])
        return node

    def evaluate(self, scope: dict, node=None) -> Any:
        node = self.tree if node is None else node
        kind = node[0]
        if kind == "value":
            return node[1]
        if kind == "list":
            return [self.evaluate(scope, n) for n in node[1]]
        if kind == "var":
            return scope.get(node[1])
        if kind == "not":
            return not truthy(self.evaluate(scope, node[1]))
        if kind == "and":
            return truthy(self.evaluate(scope, node[1])) and truthy(self.evaluate(scope, node[2]))
        if kind == "or":
            return truthy(self.evaluate(scope, node[1])) or truthy(self.evaluate(scope, node[2]))
        if kind in ("==", "!="):
            equal = self.evaluate(scope, node[1]) == self.evaluate(scope, node[2])
            return equal if kind == "==" else not equal
        target = self.evaluate(scope, node[1])
        if kind == "property":
            if isinstance(target, dict):
                value = target.get(node[2])
                return value() if callable(value) else value
            return None
        name, args = node[2], [self.evaluate(scope, a) for a in node[3]]
        if isinstance(target, dict) and callable(target.get(name)) and not args:
            return target[name]()
        methods = {
            (dict, "keySet"): lambda: list(target.keys()),
            (dict, "get"): lambda: target.get(args[0]),
            (str, "toLowerCase"): lambda: target.lower(),
            (str, "contains"): lambda: args[0] in target,
            (str, "equals"): lambda: target == args[0],
            (list, "contains"): lambda: args[0] in target,
        }
        for (kind_of, method), call in methods.items():
            if isinstance(target, kind_of) and method == name:
                return call()
        raise VtlError(f"unsupported method {name}() on {type(target).__name__}")


def resolve_text(value: Any, params: dict[str, str], mappings: dict) -> str:
    """A string property built with Fn::Join, Fn::Sub (with a variable map),
    Fn::Split, Fn::FindInMap and Ref to parameters, for known parameter values."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        (key, arg), = value.items()
        if key == "Ref":
            return params[arg]
        if key == "Fn::FindInMap":
            return mappings[arg[0]][arg[1]][arg[2]]
        if key == "Fn::Join":
            sep, items = arg
            parts = resolve_list(items, params, mappings)
            return sep.join(parts)
        if key == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else arg
            values = {k: resolve_text(v, params, mappings) for k, v in variables.items()}
            return re.sub(r"\$\{([^}!]+)\}", lambda m: values[m.group(1)] if m.group(1) in values else params[m.group(1)], text)
    raise ValueError(f"cannot resolve {value!r}")


def resolve_list(value: Any, params: dict[str, str], mappings: dict) -> list[str]:
    if isinstance(value, dict) and list(value) == ["Fn::Split"]:
        sep, text = value["Fn::Split"]
        return resolve_text(text, params, mappings).split(sep)
    return [resolve_text(v, params, mappings) for v in value]


def rust_str_constants(path: str) -> dict[str, str]:
    """`pub const NAME: &str = "value";` items of a Rust file, by name."""
    text = (ROOT / path).read_text()
    return dict(re.findall(r'pub const ([A-Z_]+): &str = "((?:[^"\\]|\\.)*)";', text))


def expected_cors(allowed: list[str], headers: dict[str, str], cors: dict[str, str]) -> dict[str, str]:
    """What shared/platform/src/http/headers.rs (Cors::add_preflight_headers)
    grants: an allowed Origin gets its echo and the exposed headers; with
    Access-Control-Request-Method also the methods, headers and max age."""
    lower = {k.lower(): v for k, v in headers.items()}
    origin = lower.get("origin")
    if origin is None or origin not in allowed:
        return {}
    grants = {"access-control-allow-origin": origin, "access-control-expose-headers": cors["EXPOSED_HEADERS"]}
    if "access-control-request-method" in lower:
        grants |= {
            "access-control-allow-methods": cors["ALLOWED_METHODS"],
            "access-control-allow-headers": cors["ALLOWED_HEADERS"],
            "access-control-max-age": cors["PREFLIGHT_MAX_AGE"],
        }
    return grants


def preflight_cases(allowed: list[str]) -> list[dict[str, str]]:
    """Requests a preflight template must answer as the code does."""
    cases = [
        {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        {"Access-Control-Request-Method": "POST"},
        {"Origin": "", "Access-Control-Request-Method": "POST"},
        {},
    ]
    for origin in allowed:
        cases += [
            {"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"},
            {"origin": origin, "access-control-request-method": "PATCH"},  # HTTP/2 sends lower case
            {"Origin": origin},  # an OPTIONS that is not a preflight: no grants
            {"Origin": origin.upper(), "Access-Control-Request-Method": "GET"},
            {"Origin": origin + "/", "Access-Control-Request-Method": "GET"},
            {"Origin": origin + ".evil.example", "Access-Control-Request-Method": "GET"},
        ]
    if len(allowed) > 1:
        cases.append({"Origin": ",".join(allowed), "Access-Control-Request-Method": "GET"})
    return cases


def dashboard_metrics(body: Any, params: dict[str, str]) -> list[dict[str, Any]]:
    """Every metric a dashboard body reads: namespace, name, dimensions and
    stat, from metric arrays (with their "." and "..." shorthands) and from
    SEARCH expressions. `${X}` parameters are put in from `params` (a name
    without a value stays `${X}`)."""
    text = body.get("Fn::Sub") if isinstance(body, dict) else body
    if isinstance(text, list):
        text = text[0]
    substituted = re.sub(r"\$\{([^}!]+)\}", lambda m: params.get(m.group(1), "${%s}" % m.group(1)), text)
    document = json.loads(substituted)
    found = []
    for widget in document.get("widgets", []):
        properties = widget.get("properties", {})
        previous: list = []
        for row in properties.get("metrics", []):
            options = row[-1] if row and isinstance(row[-1], dict) else {}
            plain = [x for x in row if not isinstance(x, dict)]
            if "expression" in options:
                expression = options["expression"]
                for schema, terms, stat in re.findall(r"SEARCH\('\{([^}]*)\}([^']*)',\s*'([^']+)'", expression):
                    namespace, *dims = schema.split(",")
                    names = re.findall(r'MetricName="([^"]+)"', terms)
                    for name in names:
                        found.append({"namespace": namespace, "name": name, "dimensions": set(dims), "stat": stat, "search": terms, "widget": properties.get("title")})
                continue
            if plain and plain[0] == "...":
                plain = previous[: len(previous) - (len(plain) - 1)] + plain[1:]
            else:
                plain = [previous[i] if x == "." and i < len(previous) else x for i, x in enumerate(plain)]
            previous = plain
            stat = options.get("stat", properties.get("stat"))
            dims = dict(zip(plain[2::2], plain[3::2]))
            found.append({"namespace": plain[0], "name": plain[1], "dimensions": dims, "stat": stat, "widget": properties.get("title")})
    return found


# ---------------------------------------------------------------- checkov


def run_checkov(checkov: str, exceptions: dict) -> list[str]:
    skips = {entry["id"]: entry.get("reason", "") for entry in exceptions.get("checkov_skip", [])}
    problems = [f"exceptions.toml: checkov skip {id} has no reason" for id, reason in skips.items() if not reason.strip()]
    # Run from the folder, on relative names: checkov copies the scanned
    # file's path into every mapping it parses (Lambda environment variables
    # included), and a checkout's absolute path can look like a secret, e.g.
    # `$(mktemp -d)/repo`'s ten random characters plus
    # `/repo/target/expanded/template` are exactly 40 of [A-Za-z0-9/+=], the
    # AWS secret key pattern of CKV_AWS_45.
    files = [arg for path in sorted(EXPANDED.glob("*.json")) for arg in ("--file", path.name)]
    result = subprocess.run(
        [checkov, *files, "--framework", "cloudformation", "--output", "json", "--compact", "--skip-download"],
        cwd=EXPANDED,
        capture_output=True,
        text=True,
        env=dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false", LOG_LEVEL="ERROR"),
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        return problems + [f"checkov did not report (exit {result.returncode}): {result.stderr.strip()[-2000:]}"]
    reports = report if isinstance(report, list) else [report]
    failed: dict[str, list[str]] = {}
    passed = 0
    for part in reports:
        results = part.get("results", {})
        passed += len(results.get("passed_checks", []))
        for check in results.get("failed_checks", []):
            failed.setdefault(check["check_id"], []).append(f"{Path(check['file_path']).name}:{check['resource']} ({check['check_name']})")
    for check_id, where in sorted(failed.items()):
        if check_id not in skips:
            problems.append(f"checkov {check_id} fails on {', '.join(where)}: fix it, or skip it with a reason in exceptions.toml")
    for check_id in sorted(skips):
        if check_id not in failed:
            problems.append(f"exceptions.toml: checkov skip {check_id} is no longer needed (remove it)")
    print(f"stack check: checkov: {passed} passed, {sum(len(v) for v in failed.values())} failed ({len(failed)} checks, all skipped with a reason)" if not problems else "stack check: checkov found problems")
    return problems


# ------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkov", help="path of the checkov executable (runs checkov on the expanded templates)")
    args = parser.parse_args()

    exceptions = tomllib.loads(EXCEPTIONS.read_text())
    stacks = load_stacks()
    write_expanded(stacks)
    checks = Checks(stacks, exceptions)
    checks.run("one API stage, with WAF, throttling, access logs and X-Ray", checks.stages)
    checks.run("edge: WAF rules, rate limit, logging; security and CORS headers on gateway and WAF responses", checks.edge)
    checks.run("no IAM wildcard outside exceptions.toml (managed policies included)", checks.iam_wildcards)
    checks.run("each function's role: its own log group, its own queue", checks.function_roles)
    checks.run("the signing key is readable only by token-checking functions", checks.signing_key)
    checks.run("login writes only its throttle's items (dynamodb:LeadingKeys)", checks.login_writes)
    checks.run("every function alias deploys behind its own alarms on the new version", checks.deployments)
    checks.run("alarms notify someone (topic key, subscriber, Rules)", checks.alarms_notify)
    checks.run("stateful resources retained; table PITR, protection, backups, projections", checks.stateful)
    checks.run("function timeouts, queue visibility, the relay's invoke config", checks.functions_config)
    checks.run("samconfig.toml: region, profile, tags and parameters per environment", checks.environments)
    checks.run("CORS preflights answered by API Gateway (mock) as the code answers them; responses compressed", checks.preflights)
    checks.run("every function keeps Lambda's REPORT lines (SystemLogLevel INFO)", checks.logging)
    checks.run("alarms read the functions' metrics as emitted (namespace, service, environment, function, version)", checks.own_metric_alarms)
    checks.run("alarms on what breaks: queue age, outbox, relay, consumers, SES reputation, cold starts, throttles, conflicts", checks.alarms_on_what_breaks)
    checks.run("the dashboard: duration, concurrency, queues, DynamoDB, WAF and SES panels", checks.dashboard)
    checks.run("service down is detected: the health canary (every minute) and its alarm on the alarm topic within two minutes",
               lambda problems: CanaryChecks.health_canary(checks, problems))

    failed = 0
    for name, problems in checks.results:
        if problems:
            failed += 1
            print(f"FAIL {name}")
            for problem in problems:
                print(f"     - {problem}")
        else:
            print(f"ok   {name}")
    print(f"stack check: {len(checks.results) - failed} passed, {failed} failed (expanded templates in {EXPANDED.relative_to(ROOT)}/)")
    if args.checkov:
        problems = run_checkov(args.checkov, exceptions)
        for problem in problems:
            print(f"     - {problem}")
        if problems:
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
