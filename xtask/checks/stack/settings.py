"""Function settings and environments: timeouts, queue visibility, the relay's
invoke config, samconfig.toml per environment, Lambda's REPORT lines kept."""

from __future__ import annotations

import shlex

from .model import ENVIRONMENTS, overrides, ref


class SettingsChecks:
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

    # -- 11. Lambda's own log lines kept

    def logging(self, problems: list[str]) -> None:
        for name, function in self.functions().items():
            config = function["Properties"].get("LoggingConfig") or {}
            if config.get("LogFormat") != "JSON":
                problems.append(f"{name}: LogFormat {config.get('LogFormat')!r}, not JSON")
            if config.get("SystemLogLevel") not in ("INFO", "DEBUG"):
                problems.append(f"{name}: SystemLogLevel {config.get('SystemLogLevel')!r} drops Lambda's REPORT lines (duration, memory used, init duration) and timeout lines: use INFO")
