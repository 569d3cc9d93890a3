"""Stateful resources: retained, the table's PITR, deletion protection, backups
and projections."""

from __future__ import annotations

import json
import re

from .model import ENVIRONMENTS, ROOT, condition, getatt, nested_parameters, ref, root_parameters


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
        if ref(self.root.resources["Data"]["Properties"]["Parameters"].get("BackupCopyVaultArn")) != "BackupCopyVaultArn":
            problems.append("the root stack cannot give the Data stack a vault to copy backups to (BackupCopyVaultArn)")
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
            self.backup_plan(data, params, conditions, plans, problems)
            selections = [s for s in data.of_type("AWS::Backup::BackupSelection").values() if exists(s)]
            if not any("Table" in json.dumps(s["Properties"]["BackupSelection"].get("Resources")) for s in selections):
                problems.append("prod's backup plan does not select the table")
            watched = " ".join(json.dumps(a["Properties"]) for a in data.of_type("AWS::CloudWatch::Alarm").values() if exists(a))
            for metric in ["NumberOfBackupJobsFailed", "NumberOfBackupJobsCompleted"]:
                if metric not in watched:
                    problems.append(f"prod's backups are not watched: no alarm on AWS/Backup {metric}")

    def backup_plan(self, data, params: dict, conditions: dict, plans: list, problems: list[str]) -> None:
        """What the backups are for, beside PITR's 35 days in the same account
        and region: a copy in another vault (another account or region, under a
        vault lock) where BackupCopyVaultArn names one and none where it is
        empty, and monthly recovery points kept a year; no daily fulls kept 35
        days (35 times the table, for the window PITR already covers)."""
        rules = [rule for plan in plans for rule in plan["Properties"]["BackupPlan"]["BackupPlanRule"]]
        def days(rule: dict) -> int:
            return int(rule.get("Lifecycle", {}).get("DeleteAfterDays", 0))
        for rule in rules:
            if re.fullmatch(r"cron\(\d+ \d+ \* \* \? \*\)", rule.get("ScheduleExpression", "")) and days(rule) > 7:
                problems.append(f"prod: {rule['RuleName']} keeps daily full backups {days(rule)} days: the window PITR already covers, at one table's size a day")
        monthly = [r for r in rules if re.fullmatch(r"cron\(\d+ \d+ \d+ \* \? \*\)", r.get("ScheduleExpression", "")) and days(r) >= 365]
        if not monthly:
            problems.append("prod: no monthly backup kept a year (the history PITR's 35 days cannot give)")
        for destination, copied in [("", False), ("arn:aws:backup:eu-central-1:210987654321:backup-vault:shop-prod-copies", True)]:
            values = dict(params, BackupCopyVaultArn=destination)
            copies = []
            for rule in rules:
                actions = rule.get("CopyActions") or []
                if isinstance(actions, dict) and "Fn::If" in actions:
                    name, yes, no = actions["Fn::If"]
                    actions = yes if condition(name, values, conditions) else no
                if ref(actions) == "AWS::NoValue":
                    actions = []
                copies += [(rule, action) for action in actions]
            if copied and not copies:
                problems.append("prod: with BackupCopyVaultArn set, no rule copies the backups to that vault")
            if not copied and copies:
                problems.append("prod: with BackupCopyVaultArn empty, a rule still copies (the copy must be off where no destination is given)")
            if copied:
                watched = " ".join(
                    json.dumps(a["Properties"]) for a in data.of_type("AWS::CloudWatch::Alarm").values()
                    if "Condition" not in a or condition(a["Condition"], values, conditions)
                )
                if "NumberOfCopyJobsFailed" not in watched:
                    problems.append("prod: failed copies to BackupCopyVaultArn are not watched (no alarm on AWS/Backup NumberOfCopyJobsFailed)")
                for rule, action in copies:
                    if ref(action.get("DestinationBackupVaultArn")) != "BackupCopyVaultArn" or int(action.get("Lifecycle", {}).get("DeleteAfterDays", 0)) < 35:
                        problems.append(f"prod: {rule['RuleName']}'s copy goes elsewhere than BackupCopyVaultArn or is kept under 35 days")
        for name, vault in data.of_type("AWS::Backup::BackupVault").items():
            lock = vault["Properties"].get("LockConfiguration") or {}
            if int(lock.get("MinRetentionDays", 0)) < 7:
                problems.append(f"prod: {name} has no vault lock (its recovery points can be deleted before their time)")
        bootstrap = ROOT / "infra/bootstrap/backup-copy-vault.yaml"
        if not bootstrap.exists():
            problems.append("no template for the copy vault in the other account or region (infra/bootstrap/backup-copy-vault.yaml)")
        else:
            from .model import parse_yaml
            vaults = [r for r in parse_yaml(bootstrap)["Resources"].values() if r["Type"] == "AWS::Backup::BackupVault"]
            if not vaults or "ChangeableForDays" not in (vaults[0]["Properties"].get("LockConfiguration") or {}):
                problems.append("the copy vault has no compliance-mode vault lock (LockConfiguration with ChangeableForDays)")
            elif not vaults[0]["Properties"].get("AccessPolicy"):
                problems.append("the copy vault lets no source account copy into it (AccessPolicy)")
