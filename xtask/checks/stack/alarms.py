"""Alarms: deployments guarded by each function's own alarms, alarms that reach
someone, alarms that read the metrics as emitted, alarms on what breaks, the
dashboard, and the health canary."""

from __future__ import annotations

import json
import re
from typing import Any

from .base import Checks
from .model import ENVIRONMENTS, ROOT, Stack, as_list, evaluate, getatt, ref, root_parameters, web_acl


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


class AlarmChecks:
    # -- 5. deployments guarded by each function's own alarm

    def deployments(self, problems: list[str]) -> None:
        api = self.api_functions()
        reporters = self.record_reporters()
        # Staging deploys as prod does, so the rollback path is rehearsed there first.
        for env in ("staging", "prod"):
            config = self.deployment_config(env)
            if CANARY_WINDOW_SECONDS.get(config, 0) is None:
                problems.append(f"{env} deploys {config}: no canary to roll back")
        prod_config = self.deployment_config("prod")
        window = CANARY_WINDOW_SECONDS.get(prod_config, 0) or 0
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
            # A consumer returns its failed records to SQS (or parks them) and
            # succeeds: only its own count of them shows a bad version.
            wanted |= {"RecordsFailed"} if function_name in reporters else set()
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
            elif m["Namespace"] == self.own_metrics()["namespace"] and m["MetricName"] in ("ServerErrors", "RecordsFailed"):
                own = self.own_metrics()
                wanted = {"Service": own["service"], "Environment": own["environment"], "Function": package, "Version": new_version}
                if dims == wanted:
                    seen.add(m["MetricName"])
        if alarm.get("TreatMissingData") != "notBreaching":
            problems.append(f"{function}: its alarm should treat missing data as not breaching (no traffic is no failure)")
        if alarm.get("Threshold", 1) != 0 or alarm.get("ComparisonOperator") != "GreaterThanThreshold":
            problems.append(f"{function}: its alarm should fire on the first failure (> 0)")
        return seen

    def record_reporters(self) -> set[str]:
        """The functions that report failed records instead of failing: every
        queue consumer, and the outbox relay (scheduled, with an OutboxAge alarm)."""
        found = {self.mapped_function(m) for m in self.root.of_type("AWS::Lambda::EventSourceMapping").values()}
        relays = {f for s in self.stacks for a in s.of_type("AWS::CloudWatch::Alarm").values() for m, f in self.own_metric_reads(s, a["Properties"]) if m == "OutboxAge"}
        packages = {self.function_package(n): n for n in self.functions()}
        return found | {packages[r] for r in relays if r in packages}

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
                if "AlarmTopic" not in actions and "LowUrgencyTopic" not in actions:
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
        # A scheduled function is a relay when its main runs the outbox relay
        # (app::relay); the others (expiry, key rotation, the erasure sweep)
        # relay nothing: their errors page through their deployment alarms,
        # like every function's.
        relays = {r for r in relays if "app::relay::" in (ROOT / "functions" / r / "src/main.rs").read_text()}
        if not relays:
            problems.append("no scheduled function runs the outbox relay (app::relay in its main.rs)")
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
        rate_rule = [r for r in web_acl(waf, behind_edge=False)["Rules"] if "RateBasedStatement" in r["Statement"]][0]["VisibilityConfig"]["MetricName"]
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
        acl_metric = web_acl(waf, behind_edge=False)["VisibilityConfig"]["MetricName"]
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


def metrics_filed_by_version() -> set[str]:
    """The metric names shared/framework/src/metrics/names.rs lists in BY_VERSION."""
    text = (ROOT / "shared/framework/src/metrics/names.rs").read_text()
    constants = dict(re.findall(r'pub const (\w+): &str = "([^"]+)";', text))
    listed = re.search(r"pub const BY_VERSION: &\[&str\] = &\[([^\]]*)\]", text)
    return {constants[name.strip()] for name in listed.group(1).split(",") if name.strip()} if listed else set()


def alarm_metrics(alarm: dict) -> list[dict]:
    """The metrics an alarm reads (Namespace, MetricName, Dimensions), whether
    it watches one metric or metric math over several."""
    if alarm.get("MetricName"):
        return [{k: alarm.get(k) for k in ("Namespace", "MetricName", "Dimensions") if alarm.get(k) is not None}]
    return [m["MetricStat"]["Metric"] for m in alarm.get("Metrics", []) if "MetricStat" in m]


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
