"""Stateful resources: retained, the table's PITR, deletion protection, backups
and projections."""

from __future__ import annotations

import json
import re

from .model import ENVIRONMENTS, condition, getatt, nested_parameters, ref, root_parameters


STATEFUL_TYPES = {
    "AWS::DynamoDB::Table",
    "AWS::SecretsManager::Secret",
    "AWS::Logs::LogGroup",
    "AWS::Backup::BackupVault",
}


class StatefulChecks:
    # -- 7. stateful resources

    def stateful(self, problems: list[str]) -> None:
        for stack in self.stacks:
            dead_letter_targets = set()
            for queue in stack.of_type("AWS::SQS::Queue").values():
                target = getatt((queue["Properties"].get("RedrivePolicy") or {}).get("deadLetterTargetArn"))
                if target:
                    dead_letter_targets.add(target[0])
            for name, resource in stack.resources.items():
                stateful = resource["Type"] in STATEFUL_TYPES or name in dead_letter_targets
                self.retained(stack.name, name, resource, stateful, problems)
                if resource["Type"] == "AWS::Logs::LogGroup" and "RetentionInDays" not in resource["Properties"]:
                    problems.append(f"{stack.name}/{name} keeps logs forever")
            for name, table in stack.of_type("AWS::DynamoDB::Table").items():
                props = table["Properties"]
                if not props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"):
                    problems.append(f"{name}: point-in-time recovery is off")
                if props.get("DeletionProtectionEnabled") is not True:
                    problems.append(f"{name}: deletion protection is off")
                for index in props.get("GlobalSecondaryIndexes", []):
                    projection = index["Projection"]
                    if projection.get("ProjectionType") != "INCLUDE":
                        problems.append(f"{name}/{index['IndexName']} projects {projection.get('ProjectionType')}, not only what its queries read")
                    if "password_hash" in projection.get("NonKeyAttributes", []):
                        problems.append(f"{name}/{index['IndexName']} projects the password hash")
        self.backups(problems)

    def retained(self, stack: str, name: str, resource: dict, stateful: bool, problems: list[str]) -> None:
        """Retained on update and delete, but not after a failed first create:
        with plain Retain, a first deploy that rolls back leaves its named log
        groups and vault behind and the retry fails with "already exists".
        Plain Retain only where CloudFormation could not delete the resource
        anyway (a table under deletion protection) and nothing is named, so a
        retry creates its own."""
        deletion = resource.get("DeletionPolicy")
        if resource["Type"] == "AWS::Lambda::Version":
            return  # SAM's AutoPublishAlias keeps every version (unnamed: no retry collision)
        where = f"{stack}/{name} ({resource['Type']})"
        if deletion == "Retain":
            props = resource.get("Properties", {})
            protected = resource["Type"] == "AWS::DynamoDB::Table" and props.get("DeletionProtectionEnabled") is True
            if not protected:
                problems.append(f"{where}: DeletionPolicy Retain keeps it after a failed first create (a named one then makes the retry fail with \"already exists\"): use RetainExceptOnCreate")
            elif "TableName" in props:
                problems.append(f"{where}: a table kept after a failed first create must not be named, or the retry cannot create its own")
        if stateful and (deletion not in ("Retain", "RetainExceptOnCreate") or resource.get("UpdateReplacePolicy") != "Retain"):
            problems.append(f"{where} needs DeletionPolicy RetainExceptOnCreate and UpdateReplacePolicy Retain")

    def backups(self, problems: list[str]) -> None:
        data = self.by_name["Data"]
        if ref(self.root.resources["Data"]["Properties"]["Parameters"].get("RestoredTableName")) != "RestoredTableName":
            problems.append("the root stack cannot point the Data stack at a restored table (RestoredTableName)")
        outputs = json.dumps(data.expanded.get("Outputs", {}))
        if "RestoredTableName" not in outputs:
            problems.append("the Data stack's table outputs ignore RestoredTableName")
        for env in ENVIRONMENTS:
            params = nested_parameters(self.root, data, root_parameters(self.root, env, self.config))
            conditions = data.source.get("Conditions", {})
            def exists(resource: dict) -> bool:
                return "Condition" not in resource or condition(resource["Condition"], params, conditions)
            plans = [p for p in data.of_type("AWS::Backup::BackupPlan").values() if exists(p)]
            if env != "prod":
                continue
            daily = [
                rule for plan in plans for rule in plan["Properties"]["BackupPlan"]["BackupPlanRule"]
                if re.fullmatch(r"cron\(\d+ \d+ \* \* \? \*\)", rule.get("ScheduleExpression", ""))
                and rule.get("Lifecycle", {}).get("DeleteAfterDays") == 35
            ]
            if not daily:
                problems.append("prod has no daily AWS Backup rule kept 35 days")
            selections = [s for s in data.of_type("AWS::Backup::BackupSelection").values() if exists(s)]
            if not any("Table" in json.dumps(s["Properties"]["BackupSelection"].get("Resources")) for s in selections):
                problems.append("prod's backup plan does not select the table")
            watched = " ".join(json.dumps(a["Properties"]) for a in data.of_type("AWS::CloudWatch::Alarm").values() if exists(a))
            for metric in ["NumberOfBackupJobsFailed", "NumberOfBackupJobsCompleted"]:
                if metric not in watched:
                    problems.append(f"prod's backups are not watched: no alarm on AWS/Backup {metric}")
