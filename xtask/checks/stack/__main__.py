"""The stack as `sam deploy` creates it, checked.

Transforms template.yaml and every nested stack under infra/ with
samtranslator (what CloudFormation's SAM transform does on deploy), writes
the expanded templates to target/expanded/, and asserts on what is really
deployed:

- the API has exactly one stage (v1), with WAF, throttling, access logs and
  X-Ray; gateway responses and WAF's 429 carry the security and CORS headers;
- no IAM statement anywhere (roles, managed policies AWS or ours, resource
  policies) has Resource "*" or a whole-service action, except those in
  xtask/checks/exceptions.toml with a reason; functions write only their own
  log group and read only their own queue; the signing-key secret is readable
  only by functions that verify or issue tokens;
- every function alias is deployed by CodeDeploy guarded by the function's
  own alarm (errors, throttles; 5xx for API functions) on the new version,
  able to fire within the canary window, and every alarm notifies the topic,
  whose key lets CloudWatch publish;
- stateful resources are retained on update and delete but not after a
  failed first create (RetainExceptOnCreate; plain Retain only for the
  deletion-protected, unnamed table); the table has PITR, deletion protection,
  a daily 35-day backup plan in prod and projections without the password
  hash; the relay drops rather than retries missed schedule events;
- the deploy jobs turn on termination protection and set infra/stack-policy.json
  (no replacing or deleting the table, vault and queues) on the stack and the
  nested stacks holding them, and the deploy role may;
- every function's Timeout equals its FUNCTION_TIMEOUT_SECONDS; each queue's
  visibility timeout is at least six times its consumer's timeout plus its
  batching window; each dead-letter queue accepts only its source queue;
- samconfig.toml gives each environment its region, profile, tags and
  parameters, and each environment's values pass the template's Rules;
- CORS preflights are answered by API Gateway (every path's OPTIONS a mock
  integration, no function event): its mapping template is run (a small VTL
  interpreter, vtl.py) against the cases the code's Cors handles, with each
  environment's allow-list, and must grant exactly what
  shared/framework/src/http/headers.rs grants, with its constants' values;
  the API compresses responses above a threshold;
- the edge cache (staging and prod, infra/edge.yaml) caches only the
  catalogue's GETs, keyed on exactly their query parameters in
  docs/openapi.yaml and on Origin, never forwarding Authorization outside
  the key, with MinTTL 0 so the origin's private answers are not stored;
  every behaviour compresses, is HTTPS only and adds the security headers;
  the regional WAF's rate rule reads the viewer's address the edge writes
  and refuses requests without the edge's secret origin header;
- every function keeps Lambda's REPORT lines (SystemLogLevel INFO);
- every alarm on the functions' own metrics reads them as they are emitted
  (namespace, Service, Environment, Function, Version), and there are alarms
  on what breaks (queue age, outbox age, relay, consumer failures, SES
  reputation, cold-start rate, DynamoDB throttles, transaction conflicts) and
  a dashboard with duration, concurrency, queue, DynamoDB, WAF and SES panels;
- service down is detected: a Synthetics canary calls /health and the
  catalogue every minute, its SuccessPercent alarm pages the alarm topic
  within two minutes, its artefact bucket is encrypted and forgets.

With --checkov PATH it then runs checkov on the expanded templates: every
failing checkov check must be skipped in exceptions.toml with a reason, and
every skip there must still be needed.

Run from the root: .tools/venv/bin/python -m xtask.checks.stack [--checkov .tools/checkov/bin/checkov]
(`cargo xtask check`, the first step of `cargo xtask test`, runs it after
cfn-lint and sam validate, then again from a copy of the checkout at a path
shaped like an AWS secret key.)
"""


from __future__ import annotations

import argparse
import sys
import tomllib

from .alarms import AlarmChecks, CanaryChecks
from .base import Checks
from .checkov import run_checkov
from .cors import CorsChecks
from .edge import EdgeChecks
from .edge_cache import EdgeCacheChecks
from .iam import IamChecks
from .protection import ProtectionChecks
from .routing import RoutingChecks
from .model import EXCEPTIONS, EXPANDED, ROOT, load_stacks, write_expanded
from .settings import SettingsChecks
from .stateful import StatefulChecks


class AllChecks(EdgeChecks, EdgeCacheChecks, IamChecks, RoutingChecks, AlarmChecks, StatefulChecks, ProtectionChecks, SettingsChecks, CorsChecks, Checks):
    """Every check, over the shared state of Checks."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkov", help="path of the checkov executable (runs checkov on the expanded templates)")
    args = parser.parse_args()

    exceptions = tomllib.loads(EXCEPTIONS.read_text())
    stacks = load_stacks()
    write_expanded(stacks)
    checks = AllChecks(stacks, exceptions)
    checks.run("one API stage, with WAF, throttling, access logs and X-Ray", checks.stages)
    checks.run("edge: WAF rules, rate limit, logging; security and CORS headers on gateway and WAF responses", checks.edge)
    checks.run("edge limits: WAF lets through the bodies the functions accept (413 beyond), rate budget without preflights and /health, logs only blocked and counted", checks.edge_limits)
    checks.run("the stage: access log fields, execution logging at ERROR without bodies, no per-method metrics", checks.stage_settings)
    checks.run("edge cache (staging, prod): only the catalogue GETs cached, keyed on their query parameters and never sharing a token's answer; compressed, HTTPS only, security headers; the WAF sees the client and admits only the edge", checks.edge_cache)
    checks.run("custom domain with TLS 1.2 where ApiDomainName is set (prod), execute-api endpoint off there", checks.custom_domain)
    checks.run("no IAM wildcard outside exceptions.toml (managed policies included)", checks.iam_wildcards)
    checks.run("each function's role: its own log group, its own queue", checks.function_roles)
    checks.run("only the issuer (and the rotation) can read the private token keys: grants, customer-managed key, resource policy; the public keys go to the token-checking functions", checks.signing_key)
    checks.run("login writes only its throttle's items (dynamodb:LeadingKeys)", checks.login_writes)
    checks.run("every function's table statements are limited to key prefixes (dynamodb:LeadingKeys), or excepted with a reason", checks.table_keys)
    checks.run("admins' second factor: mandatory in prod, optional in dev, read by every admin route", checks.admin_mfa)
    checks.run("every function alias deploys behind its own alarms on the new version", checks.deployments)
    checks.run("alarms notify someone (topic key, subscriber, Rules)", checks.alarms_notify)
    checks.run("alarm routing: SLO alarms page, the rest go to the low-urgency topic; failed deliveries alarmed; no placeholder address in staging or prod", checks.alarm_routing)
    checks.run("stateful resources retained except on a failed create; table PITR, protection, backups, projections", checks.stateful)
    checks.run("data protected on deploy: stack policy (no replacing or deleting the table, vault, queues) and termination protection, applied by every deploy job", checks.data_protected)
    checks.run("function timeouts, queue margins (visibility, dead-letter redrive by queue), the relay's invoke config", checks.functions_config)
    checks.run("samconfig.toml: region, profile, tags and parameters per environment", checks.environments)
    checks.run("CORS preflights answered by API Gateway (mock) as the code answers them; responses compressed", checks.preflights)
    checks.run("every function keeps Lambda's REPORT lines (SystemLogLevel INFO)", checks.logging)
    checks.run("alarms read the functions' metrics as emitted (namespace, service, environment, function, version)", checks.own_metric_alarms)
    checks.run("alarms on what breaks: queue age, outbox, relay, consumers, SES reputation, cold starts, throttles, conflicts", checks.alarms_on_what_breaks)
    checks.run("the dashboard: duration, concurrency, queues, DynamoDB, WAF and SES panels", checks.dashboard)
    checks.run("service down is detected: the health canary (every minute) and its alarm on the alarm topic within two minutes",
               lambda problems: CanaryChecks.health_canary(checks, problems))

    failed = 0
    for name, problems in checks.results:
        if problems:
            failed += 1
            print(f"FAIL {name}")
            for problem in problems:
                print(f"     - {problem}")
        else:
            print(f"ok   {name}")
    print(f"stack check: {len(checks.results) - failed} passed, {failed} failed (expanded templates in {EXPANDED.relative_to(ROOT)}/)")
    if args.checkov:
        problems = run_checkov(args.checkov, exceptions)
        for problem in problems:
            print(f"     - {problem}")
        if problems:
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
