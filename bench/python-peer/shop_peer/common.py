"""What the three route modules share: configuration, the boto3 clients
(created once per process, at import, i.e. during Lambda's init), errors in
the API's `{"error": {...}}` envelope, HS256 tokens with a `kid`, HMAC
pagination cursors and the item <-> JSON views.

Same table layout as shared/adapters/src/dynamo (pk/sk, gsi1) and the same
secret format as shared/framework/src/auth/keys.rs:
`{"active_kid": "k1", "k1": "<secret>", ...}`.
"""

import base64
import hashlib
import hmac
import json
import os
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache

import boto3
from botocore.config import Config
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.utilities import parameters

TABLE_NAME = os.environ["TABLE_NAME"]
# The cursor key (HMAC) and the public token keys (Ed25519) are two secrets, as in the project.
CURSOR_SECRET_ID = os.environ.get("CURSOR_KEY_SECRET_ID", "")
PUBLIC_KEYS_SECRET_ID = os.environ.get("TOKEN_PUBLIC_KEYS_SECRET_ID", "")
KEY_CACHE_SECONDS = int(os.environ.get("SIGNING_KEY_CACHE_SECONDS", "300"))

ISSUER = AUDIENCE = "shop-api"
MIN_KEY_BYTES = 32
UNKNOWN_KID_REFRESH_SECONDS = 30
ULID = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")
SAFE_CORRELATION_ID = re.compile(r"^[A-Za-z0-9\-_.:]{1,128}$")

logger = Logger()
metrics = Metrics(namespace="Shop")
# Room for the listing's concurrent shard queries (17 and the counter read) on
# kept-alive connections: botocore's default pool keeps 10.
dynamodb = boto3.client("dynamodb", config=Config(max_pool_connections=32))


def warm_up() -> None:
    """One cheap read during init, so the first request finds an open connection."""
    try:
        dynamodb.get_item(TableName=TABLE_NAME, Key={"pk": {"S": "WARMUP"}, "sk": {"S": "WARMUP"}})
    except Exception:  # the first request retries and reports properly
        logger.warning("DynamoDB warm-up failed", exc_info=True)


# ------------------------------------------------------------------ errors


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []


def not_found() -> ApiError:
    return ApiError(404, "not_found", "not found")


def invalid(field: str, message: str) -> ApiError:
    return ApiError(422, "validation_failed", f"{field}: {message}", [{"field": field, "message": message}])


def json_response(status: int, body, headers=None) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, separators=(",", ":")),
        headers=headers or {},
    )


def resolver() -> APIGatewayRestResolver:
    """The event handler, with API errors mapped to their envelope."""
    app = APIGatewayRestResolver()

    @app.exception_handler(ApiError)
    def api_error(error: ApiError):
        if error.status >= 500:
            logger.error("request failed", extra={"code": error.code})
        envelope = {
            "error": {
                "code": error.code,
                "message": error.message,
                "details": error.details,
                "request_id": app.lambda_context.aws_request_id,
            }
        }
        return json_response(error.status, envelope)

    return app


def header(app: APIGatewayRestResolver, name: str):
    return app.current_event.get_header_value(name, case_sensitive=False)


def correlation_id(app: APIGatewayRestResolver) -> str:
    given = header(app, "x-correlation-id")
    if given and SAFE_CORRELATION_ID.match(given):
        return given
    return app.lambda_context.aws_request_id


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


# -------------------------------------------------------------- signing keys


@dataclass(frozen=True)
class KeySet:
    active_kid: str
    keys: dict

    def active(self) -> bytes:
        return self.keys[self.active_kid]

    def get(self, kid: str):
        key = self.keys.get(kid)
        return key if key is not None and len(key) >= MIN_KEY_BYTES else None


@lru_cache(maxsize=4)
def parse_keys(secret_json: str) -> KeySet:
    raw = json.loads(secret_json)
    active_kid = raw["active_kid"]
    keys = {kid: value.encode() for kid, value in raw.items() if kid != "active_kid"}
    if len(keys.get(active_kid, b"")) < MIN_KEY_BYTES:
        raise ValueError("the active signing key is missing or too short")
    return KeySet(active_kid, keys)


@dataclass(frozen=True)
class PublicKeySet:
    keys: dict

    def get(self, kid: str):
        return self.keys.get(kid)


@lru_cache(maxsize=4)
def parse_public_keys(secret_json: str) -> PublicKeySet:
    """`{"keys": {"<kid>": "<base64url raw Ed25519 public key>"}}`."""
    raw = json.loads(secret_json)["keys"]
    return PublicKeySet({kid: Ed25519PublicKey.from_public_bytes(_unb64(value)) for kid, value in raw.items()})


class _CachedSecret:
    """A secret read through Powertools Parameters (cached for
    SIGNING_KEY_CACHE_SECONDS), re-read early when a token names an unknown kid."""

    def __init__(self, secret_id: str, parse):
        self._secret_id = secret_id
        self._parse = parse
        self._last_forced = 0.0

    def current(self):
        return self._parse(parameters.get_secret(self._secret_id, max_age=KEY_CACHE_SECONDS))

    def for_kid(self, kid: str):
        keys = self.current()
        if keys.get(kid) is None and time.monotonic() - self._last_forced > UNKNOWN_KID_REFRESH_SECONDS:
            self._last_forced = time.monotonic()
            keys = self._parse(parameters.get_secret(self._secret_id, max_age=KEY_CACHE_SECONDS, force_fetch=True))
        return keys.get(kid)


class CursorKeys(_CachedSecret):
    def __init__(self):
        super().__init__(CURSOR_SECRET_ID, parse_keys)


class PublicKeys(_CachedSecret):
    def __init__(self):
        super().__init__(PUBLIC_KEYS_SECRET_ID, parse_public_keys)


@dataclass(frozen=True)
class Principal:
    user_id: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _invalid_token() -> ApiError:
    return ApiError(401, "invalid_token", "token is invalid or expired")


def authenticate(app: APIGatewayRestResolver, keys: PublicKeys) -> Principal:
    value = header(app, "authorization")
    if not value:
        raise ApiError(401, "unauthenticated", "authentication required")
    if not (value.startswith("Bearer ") or value.startswith("bearer ")):
        raise _invalid_token()
    token = value[7:].strip()
    try:
        token_header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise _invalid_token() from None
    # Only EdDSA, whatever the header says: refuses `alg: none` and algorithm confusion.
    kid = token_header.get("kid")
    if token_header.get("alg") != "EdDSA" or not kid:
        raise _invalid_token()
    try:
        secret = keys.for_kid(kid)
    except Exception as error:
        raise ApiError(503, "service_unavailable", "a dependency is unavailable; retry later") from error
    if secret is None:
        raise _invalid_token()
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["EdDSA"],
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=5,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
    except jwt.PyJWTError:
        raise _invalid_token() from None
    if not ULID.match(str(claims.get("sub", ""))) or claims.get("role") not in ("user", "admin"):
        raise _invalid_token()
    return Principal(claims["sub"], claims["role"])


def optional_principal(app: APIGatewayRestResolver, keys: PublicKeys):
    """Guest routes verify a token only when one is sent (admins see more)."""
    return authenticate(app, keys) if header(app, "authorization") else None


# ------------------------------------------------------------------ cursors


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Cursors:
    """Same format as shared/framework/src/cursor.rs: base64url(payload) "."
    base64url(HMAC-SHA256(payload)), keyed by a key derived from the active
    cursor key, the payload binding the position to the listing's scope."""

    def __init__(self, keys: CursorKeys):
        self._keys = keys

    def _key(self) -> bytes:
        return _derive_cursor_key(self._keys.current().active())

    def seal(self, scope: str, position: str) -> str:
        payload = _b64(json.dumps({"s": scope, "p": position}, separators=(",", ":")).encode())
        signature = _b64(hmac.new(self._key(), payload.encode(), hashlib.sha256).digest())
        return f"{payload}.{signature}"

    def open(self, cursor: str, scope: str):
        if len(cursor) > 1024 or cursor.count(".") != 1:
            return None
        payload, signature = cursor.split(".")
        try:
            expected = hmac.new(self._key(), payload.encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(expected, _unb64(signature)):
                return None
            decoded = json.loads(_unb64(payload))
        except (ValueError, TypeError):
            return None
        return decoded.get("p") if decoded.get("s") == scope else None


@lru_cache(maxsize=4)
def _derive_cursor_key(secret: bytes) -> bytes:
    return hmac.new(secret, b"shop pagination cursor v1", hashlib.sha256).digest()


# -------------------------------------------------------------------- views


def product_key(product_id: str) -> dict:
    return {"pk": {"S": f"PRODUCT#{product_id}"}, "sk": {"S": "PRODUCT"}}


def product_view(item: dict) -> dict:
    return {
        "id": item["id"]["S"],
        "sku": item["sku"]["S"],
        "name": item["name"]["S"],
        "description": item["description"]["S"],
        "price": {"amount_minor": int(item["price_minor"]["N"]), "currency": item["currency"]["S"]},
        "stock": int(item["stock"]["N"]),
        "active": item["active"]["BOOL"],
        "created_at": item["created_at"]["S"],
        "updated_at": item["updated_at"]["S"],
        "version": int(item["version"]["N"]),
    }
