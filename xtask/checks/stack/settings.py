"""Function settings and environments: timeouts, queue visibility, the relay's
invoke config, samconfig.toml per environment, Lambda's REPORT lines kept."""

from __future__ import annotations

import json
import shlex

from .model import ENVIRONMENTS, ROOT, as_list, getatt, nested_parameters, overrides, ref

# What a function's main calls to read cache settings, and the variables each reads
# (shared/framework/src/http/caching.rs, shared/app/src/read_cache.rs).
CACHE_SETTINGS = {
    "PublicCache::from_env": ("CACHE_MAX_AGE_SECONDS", "CACHE_STALE_WHILE_REVALIDATE_SECONDS"),
    "ReadCache::from_env": ("CATALOGUE_CACHE_TTL_SECONDS",),
}


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
        self.queue_margins(problems)
        self.cache_settings(problems)
        invoke_configs = self.root.of_type("AWS::Lambda::EventInvokeConfig")
        for rule in self.root.of_type("AWS::Events::Rule").values():
            for target in rule["Properties"]["Targets"]:
                alias = self.root.resources.get(ref(target["Arn"]) or "", {})
                function = ref(alias.get("Properties", {}).get("FunctionName")) if alias else None
                configs = [c["Properties"] for c in invoke_configs.values() if ref(c["Properties"]["FunctionName"]) == function]
                if not configs or configs[0].get("MaximumRetryAttempts") != 0 or configs[0].get("MaximumEventAgeInSeconds", 21600) > 60:
                    problems.append(f"scheduled {function}: a missed event must be dropped (EventInvokeConfig: 0 retries, event age <= 60 s)")

    def admin_mfa(self, problems: list[str]) -> None:
        """The admins' second factor is mandatory in prod and optional
        elsewhere by default (AdminMfaRequired auto): every function that
        serves admin-only routes (its main serves Access::Admin) reads
        ADMIN_MFA_REQUIRED, which resolves to "true" with prod's parameters
        and "false" with dev's (shared/framework/src/config.rs)."""
        from .model import evaluate, root_parameters

        conditions = self.root.source.get("Conditions", {})
        shared = self.root.source.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
        for logical_id, resource in self.root.source["Resources"].items():
            if resource.get("Type") != "AWS::Serverless::Function":
                continue
            main = ROOT / "functions" / self.function_package(logical_id) / "src" / "main.rs"
            if not main.is_file() or "Access::Admin" not in main.read_text():
                continue
            variables = {**shared, **resource["Properties"].get("Environment", {}).get("Variables", {})}
            if "ADMIN_MFA_REQUIRED" not in variables:
                problems.append(f"{logical_id} serves admin routes but is not given ADMIN_MFA_REQUIRED")
                continue
            for env, expected in (("prod", "true"), ("dev", "false")):
                value = evaluate(variables["ADMIN_MFA_REQUIRED"], root_parameters(self.root, env, self.config), conditions)
                if value != expected:
                    problems.append(f"{env}: {logical_id}'s ADMIN_MFA_REQUIRED is {value!r}, not {expected!r}")

    def cache_settings(self, problems: list[str]) -> None:
        """A function whose main reads cache settings (CACHE_SETTINGS) is
        given each from a template parameter, a Number of seconds from 0, so
        each environment sets them (samconfig.toml's parameter_overrides) and
        the stack says what its caches keep; unset, the code's default would
        hold unseen."""
        parameters = self.root.source.get("Parameters", {})
        for logical_id, resource in self.root.source["Resources"].items():
            if resource.get("Type") != "AWS::Serverless::Function":
                continue
            main = ROOT / "functions" / self.function_package(logical_id) / "src" / "main.rs"
            if not main.is_file():
                continue
            code = main.read_text()
            variables = resource["Properties"].get("Environment", {}).get("Variables", {})
            for reader, names in CACHE_SETTINGS.items():
                if reader not in code:
                    continue
                for name in names:
                    parameter = ref(variables.get(name))
                    declared = parameters.get(parameter or "", {})
                    if parameter is None or declared.get("Type") != "Number" or declared.get("MinValue") != 0:
                        problems.append(f"{logical_id} reads {name} ({reader}) but the template does not set it from a Number parameter with MinValue 0 (got {variables.get(name)!r})")

    def queue_margins(self, problems: list[str]) -> None:
        """AWS's rule for an SQS event source: the queue's visibility timeout is
        at least six times the consumer's timeout plus its batching window (a
        message the window held, then six attempts' worth of a slow invocation,
        is not visible twice). And each dead-letter queue accepts only its own
        source queue (RedriveAllowPolicy byQueue), so no other queue can park
        messages where the redrive tools would send them back to the wrong consumer."""
        queues = self.by_name["Queues"]
        params = nested_parameters(self.root, queues, {})
        for mapping in self.root.of_type("AWS::Lambda::EventSourceMapping").values():
            function_name = self.mapped_function(mapping)
            props = mapping["Properties"]
            output = getatt(props["EventSourceArn"])
            if not output or output[0] != "Queues":
                problems.append(f"{function_name} reads a queue outside the Queues stack: {props['EventSourceArn']}")
                continue
            arn = getatt(queues.source["Outputs"][output[1].split(".", 1)[1]]["Value"])
            queue = queues.resources[arn[0]]["Properties"]
            visibility = queue.get("VisibilityTimeout", 30)
            visibility = int(params[ref(visibility)] if ref(visibility) else visibility)
            timeout = int(self.functions()[function_name]["Properties"].get("Timeout", 3))
            window = int(props.get("MaximumBatchingWindowInSeconds", 0))
            if visibility < 6 * timeout + window:
                problems.append(f"{arn[0]}: visibility timeout {visibility}s is under six times {function_name}'s {timeout}s timeout plus its {window}s batching window ({6 * timeout + window}s)")
        sources: dict[str, list[str]] = {}
        for name, queue in queues.of_type("AWS::SQS::Queue").items():
            target = getatt((queue["Properties"].get("RedrivePolicy") or {}).get("deadLetterTargetArn"))
            if target:
                sources.setdefault(target[0], []).append(name)
        for dead_letter, fed_by in sorted(sources.items()):
            policy = queues.resources[dead_letter]["Properties"].get("RedriveAllowPolicy") or {}
            if policy.get("redrivePermission") != "byQueue":
                problems.append(f"{dead_letter}: any queue may use it as a dead-letter queue (RedriveAllowPolicy redrivePermission {policy.get('redrivePermission')!r}, not byQueue)")
                continue
            named = sorted(self.queue_of_arn(queues, arn) or json.dumps(arn) for arn in as_list(policy.get("sourceQueueArns")))
            if named != sorted(fed_by):
                problems.append(f"{dead_letter}: RedriveAllowPolicy allows {named}, but its source queues are {sorted(fed_by)}")

    @staticmethod
    def queue_of_arn(queues, arn) -> str | None:
        """The queue of the Queues stack an ARN expression names: a GetAtt of
        its Arn, or the ARN built from its QueueName."""
        if getatt(arn) and getatt(arn)[1] == "Arn":
            return getatt(arn)[0]
        text = arn.get("Fn::Sub") if isinstance(arn, dict) else None
        for name, queue in queues.of_type("AWS::SQS::Queue").items():
            queue_name = queue["Properties"].get("QueueName")
            queue_name = queue_name.get("Fn::Sub") if isinstance(queue_name, dict) else queue_name
            if isinstance(text, str) and isinstance(queue_name, str) and text == "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:" + queue_name:
                return name
        return None

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
