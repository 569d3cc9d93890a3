"""What keeps the data when a deploy goes wrong: termination protection on the
stack and a stack policy that refuses to replace or delete the data resources
(the table, the backup vault, the queues), applied by every deploy job, which
the deploy role is allowed to do."""

from __future__ import annotations

import json
import re

from .model import ROOT, as_list, parse_yaml


STACK_POLICY = ROOT / "infra/stack-policy.json"
PIPELINE = ROOT / ".github/workflows/pipeline.yml"
BOOTSTRAP = ROOT / "infra/bootstrap/github-oidc.yaml"
DESTRUCTIVE = {"Update:Replace", "Update:Delete"}


class ProtectionChecks:
    def data_protected(self, problems: list[str]) -> None:
        if not STACK_POLICY.exists():
            problems.append(f"no stack policy ({STACK_POLICY.relative_to(ROOT)}): an update may replace or delete the table, the vault and the queues")
            return
        statements = as_list(json.loads(STACK_POLICY.read_text()).get("Statement"))
        if not any(s.get("Effect") == "Allow" and "Update:*" in as_list(s.get("Action")) for s in statements):
            problems.append("the stack policy allows no update at all (it needs Allow Update:* beside its denials)")
        denials = [s for s in statements if s.get("Effect") == "Deny" and DESTRUCTIVE <= set(as_list(s.get("Action")))]
        denied_ids = {r.split("/", 1)[1] for s in denials for r in as_list(s.get("Resource")) if r.startswith("LogicalResourceId/")}
        denied_types = {t for s in denials for t in as_list(s.get("Condition", {}).get("StringEquals", {}).get("ResourceType"))}
        # The nested stacks that hold data, and the data resources inside them.
        holders = set()
        for stack in self.stacks[1:]:
            kinds = {r["Type"] for r in stack.resources.values()}
            data = kinds & {"AWS::DynamoDB::Table", "AWS::Backup::BackupVault", "AWS::SQS::Queue"}
            if data:
                holders.add(stack.name)
                for kind in sorted(data - denied_types):
                    problems.append(f"the stack policy lets an update replace or delete {stack.name}'s {kind}")
        for name in sorted(holders - denied_ids):
            problems.append(f"the stack policy lets an update replace or delete the nested stack {name} (LogicalResourceId/{name})")
        self.deploys_protect(sorted(holders), problems)

    def deploys_protect(self, holders: list[str], problems: list[str]) -> None:
        workflow = parse_yaml(PIPELINE)
        deploying = {name: job for name, job in workflow["jobs"].items() if job.get("environment")}
        if not deploying:
            problems.append("the pipeline has no deploy job")
        for name, job in deploying.items():
            scripts = [step.get("run", "") for step in job.get("steps", [])]
            deploy = [i for i, text in enumerate(scripts) if re.search(r"\bsam deploy\b", text)]
            after = "\n".join(scripts[deploy[0]:]) if deploy else ""
            if not deploy:
                problems.append(f"{name}: no sam deploy")
                continue
            if "update-termination-protection --enable-termination-protection" not in after:
                problems.append(f"{name}: does not turn on the stack's termination protection after sam deploy")
            if "set-stack-policy" not in after or "infra/stack-policy.json" not in after:
                problems.append(f"{name}: does not set infra/stack-policy.json as the stack policy after sam deploy")
            for holder in holders:
                if not re.search(rf"\b{holder}\b", after):
                    problems.append(f"{name}: does not set the stack policy on the nested stack {holder}")
        bootstrap = parse_yaml(BOOTSTRAP)
        granted = set()
        for resource in bootstrap["Resources"].values():
            for policy in resource.get("Properties", {}).get("Policies", []) or []:
                for statement in as_list(policy["PolicyDocument"]["Statement"]):
                    if statement.get("Effect") == "Allow":
                        granted |= set(as_list(statement.get("Action")))
        for action in ("cloudformation:SetStackPolicy", "cloudformation:UpdateTerminationProtection"):
            if action not in granted:
                problems.append(f"the deploy role (infra/bootstrap/github-oidc.yaml) may not call {action}")
