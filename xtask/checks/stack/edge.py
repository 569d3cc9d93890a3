"""The API's stage and the edge: one stage with WAF, throttling, access logs and
X-Ray; WAF rules and logging; security and CORS headers on gateway and WAF responses."""

from __future__ import annotations

import json
import re
from typing import Any

from .model import ENVIRONMENTS, Stack, as_list, condition, getatt, ref, root_parameters, security_headers, web_acl
from .waf import Request, decide, function_body_limit, rate_counted


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
        acl = {**acl, "Properties": web_acl(waf, behind_edge=False)}
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

    # -- the edge's limits agree with the functions', and what reaches the logs

    def edge_limits(self, problems: list[str]) -> None:
        waf = self.by_name["Waf"]
        acl = web_acl(waf, behind_edge=False)
        limit = function_body_limit()
        # The boundary: a body the functions accept passes WAF; one byte more
        # is refused with the functions' own status (413), not a bare 403.
        for size, wanted in [(8 * 1024 + 1, None), (limit, None), (limit + 1, 413)]:
            for method, path in [("POST", "/v1/api/v1/orders"), ("PUT", "/v1/api/v1/products/p1")]:
                rule, status = decide(acl, Request(method=method, path=path, body_bytes=size))
                if status != wanted:
                    what = f"{method} {path} with a {size}-byte body"
                    problems.append(f"WAF answers {what} with {status} ({rule}); the functions accept up to {limit} bytes, so it should be {wanted or 'let through'}")
        blocked = [r for r in acl["Rules"] if "SizeConstraintStatement" in r["Statement"]]
        for rule in blocked:
            response = rule.get("Action", {}).get("Block", {}).get("CustomResponse", {})
            body = acl.get("CustomResponseBodies", {}).get(response.get("CustomResponseBodyKey", ""), {})
            try:
                assert json.loads(body.get("Content", ""))["error"]["code"] == "payload_too_large"
            except Exception:
                problems.append(f"{rule['Name']}: its 413 body is not the API's error envelope with code payload_too_large")
            self.carries_security_headers(f"the WAF {rule['Name']} response", waf_headers(response.get("ResponseHeaders", [])), problems)
        # The per-client budget: preflights and /health are not spent from it.
        for request, counted in [
            (Request("OPTIONS", "/v1/api/v1/orders"), False),
            (Request("OPTIONS", "/api/v1/products/p1"), False),
            (Request("GET", "/v1/api/v1/health"), False),
            (Request("GET", "/api/v1/health"), False),
            (Request("GET", "/v1/api/v1/products"), True),
            (Request("POST", "/v1/api/v1/auth/login"), True),
            (Request("GET", "/v1/api/v1/healthy-looking/x"), True),
        ]:
            if rate_counted(acl, request) != counted:
                problems.append(f"the rate rule {'does not count' if counted else 'counts'} {request.method} {request.path}" + ("" if counted else " (CORS preflights and /health stay out of the per-client budget)"))
        # Only what WAF blocked or counted is logged.
        for config in waf.of_type("AWS::WAFv2::LoggingConfiguration").values():
            log_filter = config["Properties"].get("LoggingFilter") or {}
            kept = {
                c.get("ActionCondition", {}).get("Action")
                for f in log_filter.get("Filters", []) if f.get("Behavior") == "KEEP" and f.get("Requirement") == "MEETS_ANY"
                for c in f.get("Conditions", [])
            }
            if log_filter.get("DefaultBehavior") != "DROP" or not {"BLOCK", "COUNT"} <= kept:
                problems.append(f"WAF logs every request it sees; keep only BLOCK and COUNT (LoggingFilter DefaultBehavior DROP), found {log_filter or 'no filter'}")

    def stage_settings(self, problems: list[str]) -> None:
        (name, stage), = self.root.of_type("AWS::ApiGateway::Stage").items()
        props = stage["Properties"]
        text = (props.get("AccessLogSetting") or {}).get("Format", "")
        for variable, what in [
            ("$context.error.responseType", "error type"),
            ("$context.integration.status", "integration status"),
            ("$context.resourcePath", "resource path"),
            ("$context.xrayTraceId", "trace id"),
            ("$context.tlsVersion", "TLS version"),
        ]:
            if variable not in text:
                problems.append(f"{name}: the access log has no {what} ({variable})")
        try:
            json.loads(re.sub(r"\$context\.[A-Za-z.]+", "x", text))
        except ValueError:
            problems.append(f"{name}: the access log format is not one JSON object per line")
        everything = [m for m in props.get("MethodSettings", []) if m.get("ResourcePath") == "/*" and m.get("HttpMethod") == "*"]
        settings = everything[0] if everything else {}
        if settings.get("LoggingLevel") != "ERROR":
            problems.append(f"{name}: execution logging is {settings.get('LoggingLevel', 'OFF')}, not ERROR")
        if settings.get("DataTraceEnabled") is not False:
            problems.append(f"{name}: execution logging must not log bodies (DataTraceEnabled false)")
        if settings.get("MetricsEnabled") is not False:
            problems.append(f"{name}: per-method detailed metrics must be off (MetricsEnabled false: about $39 a month nothing reads)")
        groups = [g for g in self.root.of_type("AWS::Logs::LogGroup").values() if "API-Gateway-Execution-Logs_" in json.dumps(g["Properties"].get("LogGroupName"))]
        if not groups or "RetentionInDays" not in groups[0]["Properties"]:
            problems.append("API Gateway's execution log group is not in the stack with a retention (it would keep logs forever)")

    def custom_domain(self, problems: list[str]) -> None:
        """Per environment: with a domain name, a regional custom domain with its
        ACM certificate and TLS 1.2, mapped to the v1 stage, and the
        execute-api endpoint off; without one, none of it."""
        conditions = self.root.source.get("Conditions", {})
        (api_name, api), = self.root.of_type("AWS::ApiGateway::RestApi").items()
        domains = self.root.of_type("AWS::ApiGateway::DomainName")
        mappings = self.root.of_type("AWS::ApiGateway::BasePathMapping")
        for env in ENVIRONMENTS:
            params = root_parameters(self.root, env, self.config)
            def exists(resource: dict) -> bool:
                return "Condition" not in resource or condition(resource["Condition"], params, conditions)
            wanted = bool(params.get("ApiDomainName"))
            present = {n: d for n, d in domains.items() if exists(d)}
            if env == "prod" and not wanted:
                problems.append("prod serves no custom domain (ApiDomainName)")
            if wanted != bool(present):
                problems.append(f"{env}: ApiDomainName {params.get('ApiDomainName')!r} but {len(present)} custom domains")
            for domain_name, domain in present.items():
                props = domain["Properties"]
                if props.get("SecurityPolicy") != "TLS_1_2":
                    problems.append(f"{env}: {domain_name} accepts {props.get('SecurityPolicy', 'TLS_1_0')}, not only TLS 1.2 and later")
                if ref(props.get("RegionalCertificateArn")) != "ApiCertificateArn" or props.get("EndpointConfiguration", {}).get("Types") != ["REGIONAL"]:
                    problems.append(f"{env}: {domain_name} is not a regional domain with the ApiCertificateArn certificate")
                mapped = [m for m in mappings.values() if exists(m) and ref(m["Properties"].get("DomainName")) == domain_name and ref(m["Properties"].get("RestApiId")) == api_name]
                if not mapped:
                    problems.append(f"{env}: {domain_name} is mapped to no stage of the API")
            # SAM moves it into the OpenAPI document (servers[], OpenAPI 3).
            servers = api["Properties"].get("Body", {}).get("servers", [])
            disabled = api["Properties"].get("DisableExecuteApiEndpoint") or next(
                (c.get("x-amazon-apigateway-endpoint-configuration", {}).get("disableExecuteApiEndpoint") for c in servers), False
            )
            try:
                disabled = evaluate_value(disabled, params, conditions)
            except (KeyError, ValueError):
                pass
            if str(disabled).lower() != str(wanted).lower():
                problems.append(f"{env}: the execute-api endpoint is {'off' if str(disabled).lower() == 'true' else 'on'} with{'' if wanted else 'out'} a custom domain (it must be off exactly where a domain serves the API)")

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


def evaluate_value(value: Any, params: dict[str, str], conditions: dict) -> Any:
    from .model import evaluate

    return evaluate(value, params, conditions)
