"""The state every check reads (the stacks, samconfig.toml, the exceptions) and
the helpers they share; the checks themselves are mixins in the modules beside it."""

from __future__ import annotations

from typing import Any

from .model import Stack, as_list, getatt, ref, samconfig


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
