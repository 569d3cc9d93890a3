"""checkov on the expanded templates: every failing check skipped in
exceptions.toml with a reason, and every skip there still needed."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from .model import EXPANDED


def run_checkov(checkov: str, exceptions: dict) -> list[str]:
    skips = {entry["id"]: entry.get("reason", "") for entry in exceptions.get("checkov_skip", [])}
    problems = [f"exceptions.toml: checkov skip {id} has no reason" for id, reason in skips.items() if not reason.strip()]
    # Run from the folder, on relative names: checkov copies the scanned
    # file's path into every mapping it parses (Lambda environment variables
    # included), and a checkout's absolute path can look like a secret, e.g.
    # `$(mktemp -d)/repo`'s ten random characters plus
    # `/repo/target/expanded/template` are exactly 40 of [A-Za-z0-9/+=], the
    # AWS secret key pattern of CKV_AWS_45.
    files = [arg for path in sorted(EXPANDED.glob("*.json")) for arg in ("--file", path.name)]
    result = subprocess.run(
        [checkov, *files, "--framework", "cloudformation", "--output", "json", "--compact", "--skip-download"],
        cwd=EXPANDED,
        capture_output=True,
        text=True,
        env=dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false", LOG_LEVEL="ERROR"),
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        return problems + [f"checkov did not report (exit {result.returncode}): {result.stderr.strip()[-2000:]}"]
    reports = report if isinstance(report, list) else [report]
    failed: dict[str, list[str]] = {}
    passed = 0
    for part in reports:
        results = part.get("results", {})
        passed += len(results.get("passed_checks", []))
        for check in results.get("failed_checks", []):
            failed.setdefault(check["check_id"], []).append(f"{Path(check['file_path']).name}:{check['resource']} ({check['check_name']})")
    for check_id, where in sorted(failed.items()):
        if check_id not in skips:
            problems.append(f"checkov {check_id} fails on {', '.join(where)}: fix it, or skip it with a reason in exceptions.toml")
    for check_id in sorted(skips):
        if check_id not in failed:
            problems.append(f"exceptions.toml: checkov skip {check_id} is no longer needed (remove it)")
    print(f"stack check: checkov: {passed} passed, {sum(len(v) for v in failed.values())} failed ({len(failed)} checks, all skipped with a reason)" if not problems else "stack check: checkov found problems")
    return problems
