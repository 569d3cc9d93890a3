"""Who hears of which alarm: the paging topic only for what breaks the
service's objectives, a low-urgency topic for the rest, an alarm when either
topic fails to deliver, and no deploy to staging or prod that would send the
pages to a placeholder address."""

from __future__ import annotations

import json
import re

from .alarms import alarm_metrics
from .model import ENVIRONMENTS, Stack, as_list, evaluate, getatt, ref, root_parameters


PAGING = "paging"
LOW = "low-urgency"

# Addresses no person reads: the documentation domains (RFC 2606, RFC 6761)
# and what the samconfig.toml placeholders look like. Staging and prod must
# refuse each; a real address must pass.
PLACEHOLDERS = [
    "shop-oncall@example.com",
    "alerts+prod@example.org",
    "ops@example.net",
    "oncall@alerts.example.com",
    "oncall@shop.example",
    "oncall@shop.test",
    "oncall@shop.invalid",
    "oncall@localhost",
]
REAL = "oncall@shop-team.eu"

# An API 5xx rate alarm must not fire on a handful of requests (one 5xx of
# three is 33%): its expression yields 0 below this many requests.
MIN_REQUESTS = 10


class RoutingChecks:
    def topics(self) -> dict[str, str]:
        """The Monitoring stack's topics by urgency, from its outputs."""
        monitoring = self.by_name["Monitoring"]
        found = {}
        for output, urgency in (("AlarmTopicArn", PAGING), ("LowUrgencyTopicArn", LOW)):
            value = monitoring.source.get("Outputs", {}).get(output, {}).get("Value")
            if ref(value):
                found[ref(value)] = urgency
        return found

    def urgency_of(self, stack: Stack, action) -> str | None:
        """The urgency of the topic an alarm action names, followed through
        the root's parameters and the Monitoring stack's outputs."""
        topics = self.topics()
        if stack is self.by_name["Monitoring"]:
            return topics.get(ref(action) or "")
        # A nested stack's parameter as the root passes it, and a Monitoring
        # output followed to the topic it names.
        value = self.nested_value(stack, action)
        if ref(value) in topics and getatt(self.nested_value(self.root, value)) is None:
            followed = value != action or stack is self.root
            return topics[ref(value)] if followed else None
        return None

    def alarm_routing(self, problems: list[str]) -> None:
        topics = self.topics()
        if set(topics.values()) != {PAGING, LOW}:
            problems.append(f"the Monitoring stack needs a paging topic (AlarmTopicArn) and a low-urgency topic (LowUrgencyTopicArn); found {topics}")
        deployment_alarms = {
            ref(a) for g in self.root.of_type("AWS::CodeDeploy::DeploymentGroup").values()
            for a in (x["Name"] for x in g["Properties"].get("AlarmConfiguration", {}).get("Alarms", []))
        }
        dead_letter_queues = self.dead_letter_queue_names()
        for stack in self.stacks:
            for name, resource in stack.of_type("AWS::CloudWatch::Alarm").items():
                alarm = resource["Properties"]
                urgencies = {self.urgency_of(stack, a) for a in as_list(alarm.get("AlarmActions"))}
                where = f"{stack.name}/{name}"
                if None in urgencies or len(urgencies) != 1:
                    problems.append(f"{where}: notifies {alarm.get('AlarmActions')}, not exactly one of the two topics")
                    continue
                (urgency,) = urgencies
                ok = {self.urgency_of(stack, a) for a in as_list(alarm.get("OKActions"))}
                if ok and ok != {urgency}:
                    problems.append(f"{where}: its OK goes to another topic than its alarm")
                kind, problem = self.alarm_class(stack, name, alarm, deployment_alarms, dead_letter_queues)
                if problem:
                    problems.append(f"{where}: {problem}")
                wanted = PAGING if kind in SLO_CLASSES else LOW
                if kind != "failed deliveries" and urgency != wanted:
                    problems.append(f"{where} ({kind}) goes to the {urgency} topic; {kind} belongs on the {wanted} topic")
                if kind == "dead letters" and not alarm.get("OKActions"):
                    problems.append(f"{where}: a dead-letter alarm without OK actions never pages for the next dead letter")
        self.delivery_watched(problems)
        self.placeholders_refused(problems)

    def dead_letter_queue_names(self) -> set[str]:
        queues = self.by_name["Queues"]
        targets = set()
        for queue in queues.of_type("AWS::SQS::Queue").values():
            target = getatt((queue["Properties"].get("RedrivePolicy") or {}).get("deadLetterTargetArn"))
            if target:
                targets.add(target[0])
        return targets

    def alarm_class(self, stack: Stack, name: str, alarm: dict, deployment_alarms: set, dead_letters: set) -> tuple[str, str | None]:
        """What an alarm watches, and what is wrong with it for its class."""
        if stack is self.root and name in deployment_alarms:
            return "deployment rollback", None
        metrics = alarm_metrics(alarm)
        names = {(m["Namespace"] if isinstance(m["Namespace"], str) else "<own>", m["MetricName"]) for m in metrics}
        own = {m for n, m in names if n == "<own>"}
        if ("AWS/SNS", "NumberOfNotificationsFailed") in names:
            return "failed deliveries", None
        if ("AWS/ApiGateway", "5XXError") in names:
            expression = " ".join(m.get("Expression", "") for m in alarm.get("Metrics", []))
            guard = re.search(r"IF\(\s*(\w+)\s*>=?\s*(\d+)", expression)
            if not guard or int(guard.group(2)) < MIN_REQUESTS:
                return "5xx rate", f"the 5xx rate has no minimum-request guard (IF(requests >= {MIN_REQUESTS}, ...)): {expression!r}"
            return "5xx rate", None
        if ("AWS/ApiGateway", "Latency") in names:
            if alarm.get("ExtendedStatistic") and alarm.get("EvaluateLowSampleCountPercentile") != "ignore":
                return "latency", "a percentile over a few requests is noise: EvaluateLowSampleCountPercentile ignore"
            return "latency", None
        if ("AWS/SQS", "ApproximateAgeOfOldestMessage") in names:
            return "queue age", None
        if any(n == "AWS/SQS" for n, _ in names):
            dims = json.dumps([m.get("Dimensions") for m in metrics])
            if any(f'"{q}"' in json.dumps(self.nested_value(stack, d["Value"])) for m in metrics for d in m.get("Dimensions", []) for q in dead_letters):
                return "dead letters", None
            return f"SQS {sorted(names)}", None
        if "OutboxAge" in own:
            return "outbox age", None
        if ("CloudWatchSynthetics", "SuccessPercent") in names:
            return "service down (health canary)", None
        if "ColdStart" in own:
            return "cold starts", None
        return ", ".join(sorted(m for _, m in names)) or "metric math", None

    def delivery_watched(self, problems: list[str]) -> None:
        """An alarm on each topic's failed deliveries, sent to the other topic
        (a topic that cannot deliver cannot tell anyone so itself)."""
        monitoring = self.by_name["Monitoring"]
        topics = self.topics()
        for topic, urgency in topics.items():
            watchers = [
                (n, a["Properties"]) for n, a in monitoring.of_type("AWS::CloudWatch::Alarm").items()
                if a["Properties"].get("MetricName") == "NumberOfNotificationsFailed"
                and a["Properties"].get("Namespace") == "AWS/SNS"
                and any(getatt(d["Value"]) == (topic, "TopicName") for d in a["Properties"].get("Dimensions", []))
            ]
            if not watchers:
                problems.append(f"nothing alarms when the {urgency} topic {topic} fails to deliver (AWS/SNS NumberOfNotificationsFailed)")
            for name, alarm in watchers:
                if {ref(a) for a in as_list(alarm.get("AlarmActions"))} & {topic}:
                    problems.append(f"{name}: reports {topic}'s failed deliveries through {topic} itself")

    def placeholders_refused(self, problems: list[str]) -> None:
        """Staging and prod refuse every documentation address, through the
        parameter's AllowedPattern or the Rules, and accept a real one."""
        rules = self.root.source.get("Rules", {})
        for env in ("staging", "prod"):
            params = root_parameters(self.root, env, self.config)
            for parameter in ("AlarmEmail", "LowUrgencyAlarmEmail"):
                if parameter not in self.root.source["Parameters"]:
                    problems.append(f"template.yaml has no {parameter} parameter")
                    continue
                own = self.root.source["Parameters"][parameter].get("AllowedPattern")
                for address in PLACEHOLDERS + [REAL]:
                    values = dict(params, **{parameter: address})
                    refused = bool(own) and re.fullmatch(java_regex(own), address) is None
                    for rule_name, rule in rules.items():
                        if evaluate(rule.get("RuleCondition", True), values, {}) in (True, "true"):
                            refused |= not all(evaluate(a["Assert"], values, {}) for a in rule["Assertions"])
                    if address == REAL and refused:
                        problems.append(f"{env}: {parameter}={address} (a real address) is refused")
                    if address != REAL and not refused:
                        problems.append(f"{env}: {parameter}={address} (a placeholder) would deploy; refuse it with AllowedPattern or a Rules assertion")


SLO_CLASSES = {"5xx rate", "latency", "dead letters", "outbox age", "queue age", "service down (health canary)"}


def java_regex(pattern: str) -> str:
    """CloudFormation's AllowedPattern (Java syntax) as Python's re: the same
    for what these patterns use (classes, groups, lookahead, anchors)."""
    return pattern
