"""CORS preflights: answered by API Gateway (a mock integration per path), its
mapping template run (vtl.py) against the cases the code's Cors handles, for
each environment's allow-list; responses compressed."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from .model import ENVIRONMENTS, ROOT, overrides
from .vtl import Vtl, VtlError


class CorsChecks:
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
        cors = rust_str_constants("shared/framework/src/http/headers.rs")
        missing = [k for k in ("ALLOWED_METHODS", "ALLOWED_HEADERS", "EXPOSED_HEADERS", "PREFLIGHT_MAX_AGE") if k not in cors]
        if missing:
            problems.append(f"cannot find {missing} in shared/framework/src/http/headers.rs")
            return
        unsendable = sorted(documented_request_headers() - {h.strip().lower() for h in cors["ALLOWED_HEADERS"].split(",")})
        if unsendable:
            problems.append(f"headers.rs ALLOWED_HEADERS lacks {unsendable}, request headers docs/openapi.yaml defines: a browser's preflight would refuse them (a shop front could not revalidate or send them)")
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
            allowed = [o.strip() for o in value.split(",") if o.strip()]  # as the functions read it (framework config)
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


def documented_request_headers() -> set[str]:
    """Every request header docs/openapi.yaml lets a client send (header
    parameters, and Authorization for its bearer scheme), lower case: what a
    browser must be allowed to send cross-origin."""
    document = yaml.safe_load((ROOT / "docs/openapi.yaml").read_text())
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("in") == "header" and isinstance(node.get("name"), str):
                names.add(node["name"].lower())
            if node.get("type") == "http" and node.get("scheme") == "bearer":
                names.add("authorization")
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(document)
    return names


def rust_str_constants(path: str) -> dict[str, str]:
    """`pub const NAME: &str = "value";` items of a Rust file, by name."""
    text = (ROOT / path).read_text()
    return dict(re.findall(r'pub const ([A-Z_]+): &str =\s*"((?:[^"\\]|\\.)*)";', text))


def expected_cors(allowed: list[str], headers: dict[str, str], cors: dict[str, str]) -> dict[str, str]:
    """What shared/framework/src/http/headers.rs (Cors::add_preflight_headers)
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
