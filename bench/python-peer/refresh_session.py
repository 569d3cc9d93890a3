"""POST /api/v1/auth/refresh: trade a refresh token for new access and
refresh tokens. The session's conditional UpdateItem (rotate the stored
SHA-256 of the secret, as shared/adapters/src/dynamo/sessions.rs does) and
the account's GetItem, one after the other as a Python handler is usually
written, then an EdDSA token signed with the private key read during init
(Powertools Parameters, cached)."""

import base64
import hashlib
import json
import os
import re
import secrets
import time
from functools import lru_cache

import jwt
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities import parameters
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shop_peer.common import (
    AUDIENCE,
    ISSUER,
    KEY_CACHE_SECONDS,
    TABLE_NAME,
    ULID,
    ApiError,
    dynamodb,
    invalid,
    json_response,
    logger,
    metrics,
    resolver,
    warm_up,
)

SIGNING_KEY_SECRET_ID = os.environ["TOKEN_SIGNING_KEY_SECRET_ID"]
ACCESS_TTL = int(os.environ.get("TOKEN_TTL_SECONDS", "300"))
REFRESH_TTL = int(os.environ.get("REFRESH_TOKEN_TTL_SECONDS", str(14 * 24 * 3600)))
SECRET = re.compile(r"^[A-Za-z0-9_-]{43}$")

app = resolver()


def ed25519_from_pkcs8(der: bytes) -> Ed25519PrivateKey:
    """The project's keys are PKCS#8 v2 (RFC 5958, with the public key, as
    aws-lc-rs writes them), which cryptography does not read: take the seed,
    the inner OCTET STRING of the private key."""
    marker = bytes.fromhex("04220420")
    at = der.index(marker) + len(marker)
    return Ed25519PrivateKey.from_private_bytes(der[at : at + 32])


@lru_cache(maxsize=4)
def parse_signing_keys(secret_json: str):
    """`{"active_kid", "next_kid", "rotated_at", "keys": {"<kid>": "<base64 PKCS#8 Ed25519>"}}`."""
    raw = json.loads(secret_json)
    kid = raw["active_kid"]
    return kid, ed25519_from_pkcs8(base64.b64decode(raw["keys"][kid]))


def signing_key():
    return parse_signing_keys(parameters.get_secret(SIGNING_KEY_SECRET_ID, max_age=KEY_CACHE_SECONDS))


# Every request signs a token: read the key now, during init.
signing_key()
warm_up()


def invalid_token() -> ApiError:
    return ApiError(401, "invalid_token", "the refresh token is invalid, expired or already used")


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@app.post("/api/v1/auth/refresh")
def refresh():
    try:
        body = json.loads(app.current_event.body or "")
    except ValueError:
        raise ApiError(400, "malformed_json", "request body is not valid JSON") from None
    if not isinstance(body, dict) or set(body) != {"refresh_token"} or not isinstance(body["refresh_token"], str):
        raise invalid("body", "must be an object with a refresh_token")
    parts = body["refresh_token"].split(".")
    if len(parts) != 3 or not ULID.match(parts[0]) or not ULID.match(parts[1]) or not SECRET.match(parts[2]):
        raise invalid("refresh_token", "is not a valid refresh token")
    user_id, session_id, presented = parts
    next_secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    now = int(time.time())
    try:
        session = dynamodb.update_item(
            TableName=TABLE_NAME,
            Key={"pk": {"S": f"USER#{user_id}"}, "sk": {"S": f"SESSION#{session_id}"}},
            UpdateExpression="SET secret_hash = :next, expires_at = :expires",
            ConditionExpression="secret_hash = :presented AND expires_at > :now",
            ExpressionAttributeValues={
                ":next": {"S": secret_hash(next_secret)},
                ":expires": {"N": str(now + REFRESH_TTL)},
                ":presented": {"S": secret_hash(presented)},
                ":now": {"N": str(now)},
            },
            ReturnValues="ALL_NEW",
        )["Attributes"]
    except dynamodb.exceptions.ConditionalCheckFailedException:
        raise invalid_token() from None
    account = dynamodb.get_item(
        TableName=TABLE_NAME, Key={"pk": {"S": f"USER#{user_id}"}, "sk": {"S": "USER"}}, ConsistentRead=True
    ).get("Item")
    if account is None or account["disabled"]["BOOL"] or account["role"]["S"] != session["role"]["S"]:
        raise invalid_token()
    kid, key = signing_key()
    claims = {
        "sub": user_id,
        "role": account["role"]["S"],
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + ACCESS_TTL,
        "mfa": session.get("mfa", {}).get("BOOL", False),
    }
    token = jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid})
    logger.info("session refreshed", extra={"user_id": user_id, "session_id": session_id})
    metrics.add_metric(name="SessionsRefreshed", unit=MetricUnit.Count, value=1)
    return json_response(
        200,
        {
            "token": token,
            "token_type": "Bearer",
            "expires_in": ACCESS_TTL,
            "refresh_token": f"{user_id}.{session_id}.{next_secret}",
            "refresh_expires_in": REFRESH_TTL,
        },
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event, context):
    metrics.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
    return app.resolve(event, context)
