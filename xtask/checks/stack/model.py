"""The stack as loaded: the templates expanded with samtranslator, the
intrinsics this check evaluates, samconfig.toml's parameters, and the
constants every check shares."""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any


ROOT = Path(__file__).resolve().parents[3]
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


def choose(expr: Any, known: dict[str, bool]) -> Any:
    """`expr` with each `Fn::If` on a condition in `known` replaced by its
    branch (an `AWS::NoValue` list item or property dropped); every other
    intrinsic is left as it is."""
    no_value = {"Ref": "AWS::NoValue"}
    if isinstance(expr, list):
        items = [choose(e, known) for e in expr]
        return [e for e in items if e != no_value]
    if isinstance(expr, dict):
        if len(expr) == 1 and "Fn::If" in expr and expr["Fn::If"][0] in known:
            name, yes, no = expr["Fn::If"]
            return choose(yes if known[name] else no, known)
        items = {k: choose(v, known) for k, v in expr.items()}
        return {k: v for k, v in items.items() if v != no_value}
    return expr


def web_acl(waf: Stack, behind_edge: bool) -> dict:
    """The regional web ACL's properties as deployed with the edge cache in
    front (staging and prod) or without it (dev, or EdgeCache disabled)."""
    (_, acl), = waf.of_type("AWS::WAFv2::WebACL").items()
    return choose(acl["Properties"], {"BehindEdge": behind_edge})


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
    text = (ROOT / "shared/framework/src/http/headers.rs").read_text()
    block = re.search(r"SECURITY_HEADERS[^=]*=\s*\[(.*?)\];", text, re.S)
    return {name.lower(): value for name, value in re.findall(r'\("([^"]+)",\s*"([^"]*)"\)', block.group(1))}
