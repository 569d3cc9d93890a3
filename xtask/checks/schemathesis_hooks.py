"""schemathesis hooks of `cargo xtask fuzz-api` (and the short fuzzing run of `cargo xtask test`).

- Authentication through schemathesis' own mechanism (auth providers), never a fixed header, so the
  missing-auth and ignored-auth checks still see requests without credentials: each provider signs in
  through POST /auth/login, as the account `cargo xtask fuzz-api` made for it, and schemathesis caches
  the token and refreshes it every 5 minutes (tokens live 15). Admin operations (and the catalogue reads,
  where an admin may see inactive products) get the admin's token; a customer's operations the user's.
- Failures are dropped only as xtask/checks/fuzz-exclusions.yaml says (each entry with its reason), and
  each drop is counted per entry (written to SHOP_FUZZ_DROPPED at exit, for the run's summary).
- Every request comes from a client address of its own (X-Forwarded-For, whose right-most entry the
  local stack trusts as the API Gateway would its source address), so the gateway's 100 requests per
  minute per address never stands in the way.

Set by xtask/src/fuzz.rs: SHOP_FUZZ_API_URL, SHOP_FUZZ_ADMIN_EMAIL, SHOP_FUZZ_USER_EMAIL, SHOP_FUZZ_PASSWORD,
SHOP_FUZZ_EXCLUSIONS, SHOP_FUZZ_DROPPED.
"""

import atexit
import collections
import itertools
import json
import os
import re
import threading

import requests
import schemathesis
import yaml

API_URL = os.environ["SHOP_FUZZ_API_URL"].rstrip("/")
PASSWORD = os.environ["SHOP_FUZZ_PASSWORD"]

ADMIN_OPERATIONS = [
    "listUsers",
    "updateUser",
    "listProducts",
    "getProduct",
    "createProduct",
    "updateProduct",
    "deleteProduct",
]
USER_OPERATIONS = [
    "getCurrentUser",
    "placeOrder",
    "listOrders",
    "getOrder",
    "updateOrder",
    "cancelOrder",
]

_addresses = itertools.count(1)
_addresses_lock = threading.Lock()


def fresh_address() -> str:
    """A client address no recent request used: 198.18.0.0/15 (reserved for benchmarks), round robin."""
    with _addresses_lock:
        n = next(_addresses) % 131072
    return f"198.{18 + n // 65536}.{(n // 256) % 256}.{n % 256}"


def sign_in(email: str) -> str:
    response = requests.post(
        f"{API_URL}/api/v1/auth/login",
        json={"email": email, "password": PASSWORD},
        headers={"X-Forwarded-For": fresh_address()},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()["token"]


def bearer(case, token: str) -> None:
    if case.headers is None:
        case.headers = {}
    case.headers["Authorization"] = f"Bearer {token}"


@schemathesis.auth(refresh_interval=300).apply_to(operation_id=ADMIN_OPERATIONS)
class AdminToken:
    def get(self, case, ctx):
        return sign_in(os.environ["SHOP_FUZZ_ADMIN_EMAIL"])

    def set(self, case, data, ctx):
        bearer(case, data)


@schemathesis.auth(refresh_interval=300).apply_to(operation_id=USER_OPERATIONS)
class UserToken:
    def get(self, case, ctx):
        return sign_in(os.environ["SHOP_FUZZ_USER_EMAIL"])

    def set(self, case, data, ctx):
        bearer(case, data)


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.headers is None:
        case.headers = {}
    case.headers["X-Forwarded-For"] = fresh_address()


with open(os.environ["SHOP_FUZZ_EXCLUSIONS"], encoding="utf-8") as exclusions_file:
    EXCLUSIONS = yaml.safe_load(exclusions_file)["exclusions"]
CONDITIONS = {
    "failures",
    "operations",
    "statuses",
    "error_codes",
    "detail_fields",
    "request_body_not_utf8",
    "request_headers_not_ascii",
    "response_contains",
    "response_fields",
}
for _exclusion in EXCLUSIONS:
    _unknown = set(_exclusion) - CONDITIONS - {"id", "kind", "reason"}
    assert not _unknown, f"{_exclusion['id']}: unknown conditions {_unknown}"
    assert _exclusion.get("kind") in ("emulator", "contract") and _exclusion.get("reason"), _exclusion["id"]

_dropped = collections.Counter()
_dropped_lock = threading.Lock()


def _error(response):
    try:
        error = response.json().get("error")
    except Exception:
        return None
    return error if isinstance(error, dict) else None


def _body_not_utf8(response) -> bool:
    body = response.request.body
    if not isinstance(body, bytes):
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _headers_not_ascii(response) -> bool:
    return any(not value.isascii() for value in response.request.headers.values())


def _matches(exclusion, failure, case, response) -> bool:
    if "failures" in exclusion and failure.code not in exclusion["failures"]:
        return False
    if "operations" in exclusion:
        operation_id = case.operation.definition.raw.get("operationId")
        if operation_id not in exclusion["operations"]:
            return False
    if "statuses" in exclusion and response.status_code not in exclusion["statuses"]:
        return False
    if "request_body_not_utf8" in exclusion and _body_not_utf8(response) != exclusion["request_body_not_utf8"]:
        return False
    if (
        "request_headers_not_ascii" in exclusion
        and _headers_not_ascii(response) != exclusion["request_headers_not_ascii"]
    ):
        return False
    if "response_contains" in exclusion and exclusion["response_contains"].encode() not in response.content:
        return False
    if "response_fields" in exclusion:
        try:
            body = response.json()
        except Exception:
            return False
        if not isinstance(body, dict):
            return False
        if any(body.get(name) != value for name, value in exclusion["response_fields"].items()):
            return False
    if "error_codes" in exclusion or "detail_fields" in exclusion:
        error = _error(response)
        if error is None:
            return False
        if "error_codes" in exclusion and error.get("code") not in exclusion["error_codes"]:
            return False
        if "detail_fields" in exclusion:
            fields = [detail.get("field", "") for detail in error.get("details") or []]
            if not fields or not all(re.search(exclusion["detail_fields"], field) for field in fields):
                return False
    return True


@schemathesis.hook
def filter_failure(context, failure, case, response):
    for exclusion in EXCLUSIONS:
        if _matches(exclusion, failure, case, response):
            with _dropped_lock:
                _dropped[exclusion["id"]] += 1
            return False
    return True


@atexit.register
def _write_dropped():
    path = os.environ.get("SHOP_FUZZ_DROPPED")
    if path:
        with open(path, "w", encoding="utf-8") as dropped_file:
            json.dump(dict(_dropped), dropped_file)
