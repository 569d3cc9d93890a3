"""The API's stage and the edge: one stage with WAF, throttling, access logs and
X-Ray; WAF rules and logging; security and CORS headers on gateway and WAF responses."""

from __future__ import annotations

import json
from typing import Any

from .model import Stack, as_list, getatt, ref, security_headers


class EdgeChecks:
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
