"""WAF's decisions on a request, simulated from the web ACL as deployed: which
rule blocks a body of a given size, and which requests the per-client rate
rule counts. Only the statements this stack uses are understood; anything
else raises, so the web ACL cannot outgrow the simulation unnoticed."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .model import ROOT


# What AWSManagedRulesCommonRuleSet's SizeRestrictions_BODY blocks (AWS's
# documentation of the rule group): a body over 8 KB.
COMMON_RULE_SET_BODY_LIMIT = 8 * 1024
# What WAF inspects of an API Gateway body without an AssociationConfig.
DEFAULT_INSPECTION_BYTES = 8 * 1024
INSPECTION_LIMITS = {"KB_16": 16 * 1024, "KB_32": 32 * 1024, "KB_48": 48 * 1024, "KB_64": 64 * 1024}


@dataclass
class Request:
    method: str = "POST"
    path: str = "/v1/api/v1/orders"
    body_bytes: int = 0


def function_body_limit() -> int:
    """The functions' MAX_BODY_BYTES default, read from the code that applies it."""
    for path in sorted(ROOT.glob("shared/*/src/config.rs")):
        found = re.search(r'lookup\("MAX_BODY_BYTES"\)\s*\{\s*None\s*=>\s*(\d+)\s*\*\s*(\d+)', path.read_text())
        if found:
            return int(found.group(1)) * int(found.group(2))
    raise ValueError("no MAX_BODY_BYTES default in shared/*/src/config.rs")


def inspection_limit(acl: dict) -> int:
    body = (acl.get("AssociationConfig") or {}).get("RequestBody", {}).get("API_GATEWAY", {})
    return INSPECTION_LIMITS.get(body.get("DefaultSizeInspectionLimit"), DEFAULT_INSPECTION_BYTES)


def matches(statement: dict, request: Request, inspected: int) -> bool:
    (kind, spec), = statement.items()
    if kind == "NotStatement":
        return not matches(spec["Statement"], request, inspected)
    if kind == "OrStatement":
        return any(matches(s, request, inspected) for s in spec["Statements"])
    if kind == "AndStatement":
        return all(matches(s, request, inspected) for s in spec["Statements"])
    if kind == "ByteMatchStatement":
        field = spec["FieldToMatch"]
        if "Method" in field:
            value = request.method
        elif "UriPath" in field:
            value = request.path
        else:
            raise ValueError(f"cannot simulate a byte match on {field}")
        needle = spec["SearchString"]
        transforms = [t["Type"] for t in spec.get("TextTransformations", [])]
        if "LOWERCASE" in transforms:
            value = value.lower()
        return {
            "EXACTLY": value == needle,
            "STARTS_WITH": value.startswith(needle),
            "ENDS_WITH": value.endswith(needle),
            "CONTAINS": needle in value,
        }[spec["PositionalConstraint"]]
    if kind == "SizeConstraintStatement":
        field = spec["FieldToMatch"]
        if "Body" not in field:
            raise ValueError(f"cannot simulate a size constraint on {field}")
        if request.body_bytes > inspected:
            handling = field["Body"].get("OversizeHandling", "CONTINUE")
            if handling == "MATCH":
                return True
            if handling == "NO_MATCH":
                return False
        size = min(request.body_bytes, inspected)
        limit = int(spec["Size"])
        return {"GT": size > limit, "GE": size >= limit, "LT": size < limit, "LE": size <= limit, "EQ": size == limit, "NE": size != limit}[spec["ComparisonOperator"]]
    raise ValueError(f"cannot simulate a {kind}")


def managed_blocks(rule: dict, request: Request, inspected: int) -> bool:
    """The common rule set's body size rule (the only managed rule that
    depends on the size), unless it is overridden to count."""
    group = rule["Statement"]["ManagedRuleGroupStatement"]
    if group["Name"] != "AWSManagedRulesCommonRuleSet":
        return False
    overrides = {o["Name"]: o["ActionToUse"] for o in group.get("RuleActionOverrides", [])}
    excluded = {e["Name"] for e in group.get("ExcludedRules", [])}
    if "SizeRestrictions_BODY" in excluded or "Count" in overrides.get("SizeRestrictions_BODY", {}):
        return False
    return min(request.body_bytes, inspected) > COMMON_RULE_SET_BODY_LIMIT or request.body_bytes > inspected


def decide(acl: dict, request: Request, block_mode: bool = True) -> tuple[str, int | None]:
    """(the rule that blocks, its status) or ("allow", None), rate rules aside."""
    inspected = inspection_limit(acl)
    for rule in sorted(acl["Rules"], key=lambda r: r["Priority"]):
        statement = rule["Statement"]
        if "RateBasedStatement" in statement:
            continue
        if "ManagedRuleGroupStatement" in statement:
            if block_mode and managed_blocks(rule, request, inspected):
                return rule["Name"], 403
            continue
        if matches(statement, request, inspected) and "Block" in rule.get("Action", {}):
            response = rule["Action"]["Block"].get("CustomResponse", {})
            return rule["Name"], int(response.get("ResponseCode", 403))
    return "allow", None


def rate_counted(acl: dict, request: Request) -> bool:
    """Whether the per-client rate rule counts the request against its budget."""
    inspected = inspection_limit(acl)
    (rule,) = [r for r in acl["Rules"] if "RateBasedStatement" in r["Statement"]]
    scope = rule["Statement"]["RateBasedStatement"].get("ScopeDownStatement")
    return scope is None or matches(scope, request, inspected)

