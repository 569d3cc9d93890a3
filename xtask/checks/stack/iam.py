"""IAM: no wildcard outside exceptions.toml (the AWS managed policies SAM attaches
included), each function its own log group and queue, the token keys, login's writes."""

from __future__ import annotations

import json
import re
import tomllib

from .model import MANAGED_POLICIES, ROOT, as_list, ref


class IamChecks:
    # -- 3. IAM: no wildcard anywhere

    def iam_wildcards(self, problems: list[str]) -> None:
        for stack in self.stacks:
            for name, resource in stack.resources.items():
                for statement in policy_statements(resource):
                    self.judge(stack.name, name, statement, problems)
                for arn in as_list(resource.get("Properties", {}).get("ManagedPolicyArns")):
                    if ref(arn) and stack.resources.get(ref(arn), {}).get("Type") == "AWS::IAM::ManagedPolicy":
                        continue  # ours: judged above as a resource of its own
                    known = [n for n, p in MANAGED_POLICIES.items() if json.dumps(arn).find(p["arn"].split(":policy/")[1]) >= 0]
                    if not known:
                        problems.append(f"{stack.name}/{name} attaches {arn}: record its documented statements in MANAGED_POLICIES")
                        continue
                    for statement in MANAGED_POLICIES[known[0]]["statements"]:
                        self.judge(stack.name, name, statement, problems, via=known[0])
        for index, entry in enumerate(self.exceptions.get("iam_wildcard", [])):
            if not entry.get("reason", "").strip():
                problems.append(f"exceptions.toml: the iam_wildcard entry for {entry.get('resource')} has no reason")
            if index not in self.used_wildcards:
                problems.append(f"exceptions.toml: the iam_wildcard entry for {entry['stack']}/{entry['resource']} {entry['actions']} matches nothing (remove it)")

    def judge(self, stack: str, resource: str, statement: dict, problems: list[str], via: str | None = None) -> None:
        if statement.get("Effect") != "Allow":
            return
        actions = sorted(as_list(statement.get("Action")))
        wide = (
            "*" in as_list(statement.get("Resource"))
            or "NotResource" in statement
            or "NotAction" in statement
            or any(a == "*" or a.endswith(":*") for a in actions)
            or statement.get("Principal") == "*"
            or statement.get("Principal", {}) == {"AWS": "*"}
        )
        if not wide:
            return
        for index, entry in enumerate(self.exceptions.get("iam_wildcard", [])):
            if entry["stack"] == stack and entry["resource"] == resource and sorted(entry["actions"]) == actions:
                self.used_wildcards.add(index)
                return
        where = f"{stack}/{resource}" + (f" (through {via})" if via else "")
        problems.append(f"{where} allows {actions} on {statement.get('Resource', statement.get('NotResource'))!r}: scope it, or list it with a reason in exceptions.toml")

    # -- 4. IAM: each function its own log group, its own queue; the signing key

    def function_roles(self, problems: list[str]) -> None:
        mappings = self.root.of_type("AWS::Lambda::EventSourceMapping")
        for name, function in self.functions().items():
            found = self.role_of(function)
            if not found or found[1].get("Type") != "AWS::IAM::Role":
                problems.append(f"{name} has no role of its own in the template (SAM would generate one with AWS managed policies)")
                continue
            role_name, role = found
            principals = [p for s in role["Properties"]["AssumeRolePolicyDocument"]["Statement"] for p in as_list(s.get("Principal", {}).get("Service"))]
            if principals != ["lambda.amazonaws.com"]:
                problems.append(f"{role_name} may be assumed by {principals}, not only by Lambda")
            shared = [n for n, f in self.functions().items() if n != name and self.role_of(f) and self.role_of(f)[0] == role_name]
            if shared:
                problems.append(f"{name} shares its role with {shared}")
            statements = self.role_statements(role)
            log_group = ref(function["Properties"].get("LoggingConfig", {}).get("LogGroup"))
            logs = [s for s in statements if any(a.startswith("logs:") for a in as_list(s.get("Action")))]
            if not log_group:
                problems.append(f"{name} has no log group of its own")
            elif not logs or any(as_list(s.get("Resource")) != [{"Fn::GetAtt": [log_group, "Arn"]}] for s in logs):
                problems.append(f"{role_name} may write logs elsewhere than {log_group}")
            queues = [
                m["Properties"]["EventSourceArn"] for m in mappings.values()
                if self.mapped_function(m) == name
            ]
            reads = [s for s in statements if "sqs:ReceiveMessage" in as_list(s.get("Action"))]
            read_queues = [r for s in reads for r in as_list(s.get("Resource"))]
            if sorted(map(json.dumps, read_queues)) != sorted(map(json.dumps, queues)):
                problems.append(f"{role_name} reads queues {read_queues}, its event sources are {queues}")

    def mapped_function(self, mapping: dict) -> str | None:
        target = ref(mapping["Properties"]["FunctionName"])
        alias = self.root.resources.get(target, {})
        if alias.get("Type") == "AWS::Lambda::Alias":
            return ref(alias["Properties"]["FunctionName"])
        return target

    def readers_of(self, output: str, action: str = "secretsmanager:GetSecretValue") -> set[tuple[str, str]]:
        """(stack, resource) of every policy that allows `action` on the Security output `output` (or on "*")."""
        target = {"Fn::GetAtt": ["Security", f"Outputs.{output}"]}
        prefix = action.split(":")[0]
        readers = set()
        for stack in self.stacks:
            for name, resource in stack.resources.items():
                if resource.get("Type") == "AWS::KMS::Key":
                    continue  # a key policy's "*" is the key itself; its grants to roles are checked here
                for statement in policy_statements(resource):
                    if statement.get("Effect") != "Allow":
                        continue
                    actions = as_list(statement.get("Action"))
                    if not any(a in (action, f"{prefix}:*", "*") for a in actions):
                        continue
                    if target in as_list(statement.get("Resource")) or "*" in as_list(statement.get("Resource")):
                        readers.add((stack.name, name))
        return readers

    def signing_key(self, problems: list[str]) -> None:
        """Only the issuers (login, refresh-session) and the rotation can read the private token
        keys: no other role is granted them, the secret is encrypted with the
        customer-managed key only those two may use, and its resource policy
        denies every other principal. The functions that verify tokens (their
        main.rs calls init.public_keys...) read the public keys, and only they."""
        roles = {self.role_of(f)[0]: n for n, f in self.functions().items() if self.role_of(f)}
        by_function = roles_by_function(roles)
        issuers = {"LoginFunction", "RefreshSessionFunction", "RotateTokenKeysFunction"}
        if not issuers <= set(by_function):
            problems.append(f"cannot find the issuer and the rotation among the functions ({sorted(issuers)})")
            return
        allowed = {("Root", by_function[f]) for f in issuers}
        for output in ("TokenSigningKeySecretArn", "TokenSigningKmsKeyArn"):
            action = "kms:Decrypt" if "Kms" in output else "secretsmanager:GetSecretValue"
            readers = self.readers_of(output, action)
            for stack, name in sorted(readers - allowed):
                problems.append(f"{stack}/{name} may {action} on {output}: only login, refresh-session and the rotation may")
            for stack, name in sorted(allowed - readers):
                problems.append(f"{name} is not granted {action} on {output}")
        security = next((s for s in self.stacks if s.name == "Security"), None)
        secret = security.resources.get("TokenSigningKeySecret", {}) if security else {}
        if ref(secret.get("Properties", {}).get("KmsKeyId")) != "TokenSigningKmsKey":
            problems.append("the private token keys' secret is not encrypted with the customer-managed TokenSigningKmsKey")
        policies = [
            r["Properties"] for r in self.root.resources.values()
            if r.get("Type") == "AWS::SecretsManager::ResourcePolicy"
            and r["Properties"].get("SecretId") == {"Fn::GetAtt": ["Security", "Outputs.TokenSigningKeySecretArn"]}
        ]
        expected = sorted(json.dumps({"Fn::GetAtt": [by_function[f], "Arn"]}) for f in issuers)
        denies = [
            st for p in policies for st in as_list(p["ResourcePolicy"].get("Statement"))
            if st.get("Effect") == "Deny" and st.get("Principal") == "*"
            and "secretsmanager:GetSecretValue" in as_list(st.get("Action"))
            and sorted(json.dumps(a) for a in as_list(st.get("Condition", {}).get("ArnNotEquals", {}).get("aws:PrincipalArn"))) == expected
        ]
        if not denies:
            problems.append("no resource policy on the private token keys' secret denies GetSecretValue to all but login's, refresh-session's and the rotation's roles")
        # The public keys: read by exactly the functions that verify tokens.
        verifiers = {
            n for n in self.functions()
            if re.search(r"public_keys\w*\(", (ROOT / "functions" / self.function_package(n) / "src/main.rs").read_text())
        }
        if not verifiers:
            problems.append("cannot tell which functions verify tokens (no main.rs calls init.public_keys())")
        readers = self.readers_of("TokenPublicKeysSecretArn") - {("Root", by_function["RotateTokenKeysFunction"])}
        for stack, name in sorted(readers):
            function = roles.get(name) if stack == "Root" else None
            if function is None or function not in verifiers:
                problems.append(f"{stack}/{name} can read the public token keys but verifies no tokens")
        for function in sorted(verifiers):
            if ("Root", by_function.get(function)) not in readers:
                problems.append(f"{function} verifies tokens but its role cannot read the public keys")

    def login_writes(self, problems: list[str]) -> None:
        """Login may write only its throttle's items, whose key prefixes are the
        names of the limits and the sign-in history in the code, and put the
        session it starts into the account's partition
        (`Limit { name: "LOGIN", ... }`, `History { name: "LOGIN-KNOWN", ... }`)."""
        # The second factor's attempt limits (shared/app/src/mfa.rs) are login's throttles too.
        code = (ROOT / "shared/app/src/auth.rs").read_text() + (ROOT / "shared/app/src/mfa.rs").read_text()
        prefixes = {f"{name}#*" for name in re.findall(r'(?:Limit|History)\s*\{\s*name:\s*"([^"]+)"', code)}
        if not prefixes:
            problems.append("cannot find the login throttle's limits (Limit { name: ... }) in shared/app/src/auth.rs")
            return
        role = self.role_of(self.functions()["LoginFunction"])[1]
        for statement in self.role_statements(role):
            writes = {a for a in as_list(statement.get("Action")) if a in ("dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:DeleteItem")}
            if not writes:
                continue
            allowed = set(as_list(statement.get("Condition", {}).get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")))
            # The session a login starts: a PutItem (no update, no delete) into the account's own partition.
            if writes == {"dynamodb:PutItem"} and allowed == {"USER#*"}:
                continue
            # An admin's second factor: conditional UpdateItems of the TOTP step and the recovery codes in the account's partition.
            if writes == {"dynamodb:UpdateItem"} and allowed == {"USER#*"}:
                continue
            if allowed != prefixes:
                problems.append(f"login's {sorted(writes)} is limited to keys {sorted(allowed) or 'none (any item)'}, its throttle writes {sorted(prefixes)}")

    def table_keys(self, problems: list[str]) -> None:
        """Every DynamoDB statement of a function on the table or an index is
        limited to key prefixes (dynamodb:LeadingKeys), or is an exception
        whose reason stands in the function's metadata (`unconditioned`).
        A Scan under such a condition is refused: it names no key, and
        ForAllValues passes an empty set. (Which partitions the code touches
        is proven against its recorded calls by `cargo xtask test`.)"""
        for name, function in self.functions().items():
            found = self.role_of(function)
            if not found:
                continue
            package = self.function_package(name)
            manifest = tomllib.loads((ROOT / "functions" / package / "Cargo.toml").read_text())
            allow = manifest["package"].get("metadata", {}).get("deploy", {}).get("allow", [])
            reasoned = [sorted(s["actions"]) for s in allow if str(s.get("unconditioned", "")).strip()]
            for statement in self.role_statements(found[1]):
                actions = [a for a in as_list(statement.get("Action")) if a.startswith("dynamodb:")]
                on_table = any("TableArn" in json.dumps(r) for r in as_list(statement.get("Resource")))
                if not actions or not on_table:
                    continue
                keys = as_list(statement.get("Condition", {}).get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys"))
                if not keys:
                    if sorted(as_list(statement.get("Action"))) not in reasoned:
                        problems.append(f"{package}: {sorted(actions)} on the table reach every partition, with no leading keys and no `unconditioned` reason in functions/{package}/Cargo.toml")
                    continue
                if "dynamodb:Scan" in actions:
                    problems.append(f"{package}: dynamodb:Scan under leading keys {keys} is not limited (a Scan names no key)")
                for key in keys:
                    if key.rstrip("*") == "" or any(c in key.rstrip("*") for c in "*?"):
                        problems.append(f"{package}: leading key {key!r} is no prefix (one trailing * only)")


def roles_by_function(roles: dict[str, str]) -> dict[str, str]:
    return {function: role for role, function in roles.items()}


def policy_statements(resource: dict) -> list[dict]:
    """Every permission statement a resource defines (identity or resource policy)."""
    props = resource.get("Properties", {}) or {}
    kind = resource.get("Type")
    documents = []
    if kind == "AWS::IAM::Role" or kind in ("AWS::IAM::User", "AWS::IAM::Group"):
        documents += [p["PolicyDocument"] for p in props.get("Policies", []) or []]
    elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        documents.append(props["PolicyDocument"])
    elif kind == "AWS::KMS::Key":
        documents.append(props.get("KeyPolicy", {}))
    elif kind in ("AWS::SNS::TopicPolicy", "AWS::SQS::QueuePolicy"):
        documents.append(props["PolicyDocument"])
    elif kind in ("AWS::SecretsManager::ResourcePolicy",):
        documents.append(props["ResourcePolicy"])
    elif kind == "AWS::Backup::BackupVault" and props.get("AccessPolicy"):
        documents.append(props["AccessPolicy"])
    statements = []
    for document in documents:
        statements += [s for s in as_list(document.get("Statement")) if isinstance(s, dict)]
    return statements
