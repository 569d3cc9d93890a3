"""POST /api/v1/orders, making the project's calls in its order (one after
another, as a Python handler is usually written): verify the token, read the
account (not disabled), look the Idempotency-Key up, price the lines from the
catalogue (one BatchGetItem) and read the account again (the verified check),
commit the order, its counters, its outbox record, the idempotency record,
the customer's holdings under the caps and a condition check on the account
in one TransactWriteItems, then publish the event to SQS and delete the
outbox record (the relay publishes whatever is left)."""

import hashlib
import json
import os
import time

import boto3
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from ulid import ULID as new_ulid

from shop_peer.common import (
    TABLE_NAME,
    ULID,
    ApiError,
    PublicKeys,
    authenticate,
    correlation_id,
    dynamodb,
    header,
    invalid,
    json_response,
    logger,
    metrics,
    now_rfc3339,
    product_key,
    resolver,
    warm_up,
)

QUEUE_URL = os.environ["ORDER_PLACED_QUEUE_URL"]
MAX_LINES = 50
MAX_QUANTITY = 1000
MAX_MINOR = 10_000_000_000
MAX_OPEN_ORDERS = int(os.environ.get("MAX_OPEN_ORDERS_PER_ACCOUNT", "10"))
MAX_HELD_UNITS = int(os.environ.get("MAX_HELD_UNITS_PER_PRODUCT", "20"))
KEY_TTL_SECONDS = 24 * 60 * 60
# What every order writes is spread over shards (shared/adapters/src/dynamo/layout.rs).
SHARDS = 64

app = resolver()
sqs = boto3.client("sqs")
keys = PublicKeys()
# Every request checks a token: read the keys now, during init.
keys.current()
warm_up()


def parse_lines(body) -> list:
    if not isinstance(body, dict) or set(body) != {"lines"} or not isinstance(body["lines"], list):
        raise invalid("body", "must be an object with a lines list")
    lines = body["lines"]
    if not 1 <= len(lines) <= MAX_LINES:
        raise invalid("lines", "must have 1 to 50 lines")
    parsed, seen, errors = [], set(), []
    for index, line in enumerate(lines):
        if not isinstance(line, dict) or set(line) != {"product_id", "quantity"}:
            errors.append({"field": f"lines[{index}]", "message": "must have product_id and quantity"})
            continue
        product_id, quantity = line["product_id"], line["quantity"]
        if not isinstance(product_id, str) or not ULID.match(product_id):
            errors.append({"field": f"lines[{index}].product_id", "message": "is not a valid id"})
        elif product_id in seen:
            errors.append({"field": f"lines[{index}].product_id", "message": "appears twice; put the whole quantity on one line"})
        if type(quantity) is not int or not 1 <= quantity <= MAX_QUANTITY:
            errors.append({"field": f"lines[{index}].quantity", "message": "must be a whole number from 1 to 1000"})
        seen.add(product_id)
        parsed.append((product_id, quantity))
    if errors:
        raise ApiError(422, "validation_failed", "the request is invalid", errors)
    return parsed


def get_products(ids: list) -> dict:
    request = {TABLE_NAME: {"Keys": [product_key(i) for i in ids], "ConsistentRead": True}}
    products = {}
    for attempt in range(5):
        output = dynamodb.batch_get_item(RequestItems=request)
        for item in output["Responses"].get(TABLE_NAME, []):
            products[item["id"]["S"]] = item
        request = output.get("UnprocessedKeys") or {}
        if not request.get(TABLE_NAME, {}).get("Keys"):
            return products
        time.sleep(0.02 * 2**attempt)
    raise ApiError(503, "service_unavailable", "a dependency is unavailable; retry later")


def shard_of(item_id: str) -> str:
    """The item's shard, as the project picks it: FNV-1a of the id."""
    value = 0xCBF29CE484222325
    for byte in item_id.encode():
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{value % SHARDS:02d}"


def get_consistent(pk: str, sk: str):
    return dynamodb.get_item(
        TableName=TABLE_NAME, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
    ).get("Item")


def hold(owner: str, lines: list) -> dict:
    """The order onto the owner's holdings, conditional on the caps."""
    names, values = {}, {":order": {"N": "1"}, ":max_orders": {"N": str(MAX_OPEN_ORDERS)}}
    adds, conditions = ["open_orders :order"], ["(attribute_not_exists(open_orders) OR open_orders < :max_orders)"]
    for index, (product_id, quantity) in enumerate(lines):
        names[f"#u{index}"] = f"units#{product_id}"
        values[f":u{index}"] = {"N": str(quantity)}
        values[f":room{index}"] = {"N": str(MAX_HELD_UNITS - quantity)}
        adds.append(f"#u{index} :u{index}")
        conditions.append(f"(attribute_not_exists(#u{index}) OR #u{index} <= :room{index})")
    return {
        "Update": {
            "TableName": TABLE_NAME,
            "Key": {"pk": {"S": f"HOLDINGS#{owner}"}, "sk": {"S": "HOLDINGS"}},
            "UpdateExpression": "ADD " + ", ".join(adds),
            "ConditionExpression": " AND ".join(conditions),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


def counter(name: str) -> dict:
    return {
        "Update": {
            "TableName": TABLE_NAME,
            "Key": {"pk": {"S": f"COUNTER#{name}"}, "sk": {"S": "COUNTER"}},
            "UpdateExpression": "ADD #total :delta",
            "ExpressionAttributeNames": {"#total": "total"},
            "ExpressionAttributeValues": {":delta": {"N": "1"}},
        }
    }


@app.post("/api/v1/orders")
def place_order():
    owner = authenticate(app, keys).user_id
    # A write: the account as it is now.
    account = get_consistent(f"USER#{owner}", "USER")
    if account is None:
        raise ApiError(401, "invalid_token", "token is invalid or expired")
    if account.get("disabled", {}).get("BOOL"):
        raise ApiError(403, "account_disabled", "this account is disabled")
    raw_key = (header(app, "idempotency-key") or "").strip()
    if not raw_key:
        raise ApiError(400, "idempotency_key_required", "this request needs an Idempotency-Key header")
    if len(raw_key) > 255 or not all(33 <= ord(c) <= 126 for c in raw_key):
        raise ApiError(400, "invalid_idempotency_key", "Idempotency-Key must be 1 to 255 visible ASCII characters")
    key = f"orders:place#{owner}#{raw_key}"
    raw_body = app.current_event.body or ""
    fingerprint = hashlib.sha256(b"POST\0" + raw_body.encode()).hexdigest()
    record = get_consistent(f"IDEMPOTENCY#{key}", "IDEMPOTENCY")
    if record is not None and int(record["expires_at"]["N"]) > time.time():
        if record["fingerprint"]["S"] != fingerprint:
            raise invalid("Idempotency-Key", "was already used with a different request body")
        return json_response(
            int(record["status"]["N"]), json.loads(record["body"]["S"]),
            {"Location": record["location"]["S"], "ETag": record["etag"]["S"], "Idempotent-Replayed": "true"},
        )
    media_type = (header(app, "content-type") or "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "request body must be JSON (Content-Type: application/json)")
    try:
        body = json.loads(raw_body)
    except ValueError:
        raise ApiError(400, "malformed_json", "request body is not valid JSON") from None
    lines = parse_lines(body)
    if any(quantity > MAX_HELD_UNITS for _, quantity in lines):
        raise ApiError(409, "hold_limit_reached", "this order alone holds more than an account may")
    catalogue = get_products([product_id for product_id, _ in lines])
    verified = get_consistent(f"USER#{owner}", "USER")
    if verified is None:
        raise ApiError(401, "invalid_token", "token is invalid or expired")
    # An account from before verification has no attribute, and may order.
    if not verified.get("email_verified", {"BOOL": True}).get("BOOL"):
        raise ApiError(403, "email_unverified", "verify your email address first")

    order_lines, total, currency = [], 0, None
    for product_id, quantity in lines:
        product = catalogue.get(product_id)
        if product is None:
            raise invalid("lines", f"product {product_id} does not exist")
        if not product["active"]["BOOL"]:
            raise invalid("lines", f"product {product_id} is not available")
        if currency not in (None, product["currency"]["S"]):
            raise invalid("lines", "all products of one order must share one currency")
        currency = product["currency"]["S"]
        unit = int(product["price_minor"]["N"])
        total += unit * quantity
        if total > MAX_MINOR:
            raise invalid("lines", "the order total is too large")
        order_lines.append(
            {"product_id": product_id, "sku": product["sku"]["S"], "name": product["name"]["S"],
             "quantity": quantity, "unit_price_minor": unit}
        )

    order_id, event_id, now = str(new_ulid()), str(new_ulid()), now_rfc3339()
    correlation = correlation_id(app)
    event = {
        "specversion": "1.0",
        "id": event_id,
        "source": "urn:shop:api",
        "type": "order-placed",
        "time": now,
        "datacontenttype": "application/json",
        "correlationid": correlation,
        "data": {"order_id": order_id, "owner_id": owner},
    }
    event_body = json.dumps(event, separators=(",", ":"))
    status = "pending"
    order_shard, outbox_shard = shard_of(order_id), shard_of(event_id)
    order_item = {
        "pk": {"S": f"ORDER#{order_id}"},
        "sk": {"S": "ORDER"},
        "gsi1pk": {"S": f"ORDERS#OWNER#{owner}"},
        "gsi1sk": {"S": order_id},
        "gsi2pk": {"S": f"ORDERS#STATUS#{status}#{order_shard}"},
        "gsi2sk": {"S": order_id},
        "gsi3pk": {"S": f"ORDERS#OWNER#{owner}#STATUS#{status}"},
        "gsi3sk": {"S": order_id},
        "gsi4pk": {"S": f"ORDERS#{order_shard}"},
        "gsi4sk": {"S": order_id},
        "id": {"S": order_id},
        "owner": {"S": owner},
        "lines": {"S": json.dumps(order_lines, separators=(",", ":"))},
        "total_minor": {"N": str(total)},
        "currency": {"S": currency},
        "status": {"S": status},
        "created_at": {"S": now},
        "updated_at": {"S": now},
        "version": {"N": "1"},
    }
    outbox_item = {
        "pk": {"S": f"OUTBOX#{event_id}"},
        "sk": {"S": "OUTBOX"},
        "gsi1pk": {"S": f"OUTBOX#{outbox_shard}"},
        "gsi1sk": {"S": event_id},
        "queue": {"S": "order-placed"},
        "created_at": {"N": str(int(time.time()))},
        "body": {"S": event_body},
    }
    # The trace of the request (awslambdaric sets it per invocation), for whoever publishes the event.
    trace = os.environ.get("_X_AMZN_TRACE_ID")
    if trace:
        outbox_item["trace"] = {"S": trace}
    view = {
        "id": order_id,
        "owner_id": owner,
        "lines": [
            {"product_id": line["product_id"], "sku": line["sku"], "name": line["name"], "quantity": line["quantity"],
             "unit_price": {"amount_minor": line["unit_price_minor"], "currency": currency}}
            for line in order_lines
        ],
        "total": {"amount_minor": total, "currency": currency},
        "status": status,
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }
    location = f"/api/v1/orders/{order_id}"
    now_seconds = int(time.time())
    record_item = {
        "pk": {"S": f"IDEMPOTENCY#{key}"},
        "sk": {"S": "IDEMPOTENCY"},
        "fingerprint": {"S": fingerprint},
        "status": {"N": "201"},
        "body": {"S": json.dumps(view, separators=(",", ":"))},
        "expires_at": {"N": str(now_seconds + KEY_TTL_SECONDS)},
        "etag": {"S": '"1"'},
        "location": {"S": location},
    }
    dynamodb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": TABLE_NAME, "Item": order_item, "ConditionExpression": "attribute_not_exists(pk)",
                     "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
            counter(f"orders#status#{status}#{order_shard}"),
            counter(f"orders#owner#{owner}#status#{status}"),
            counter(f"orders#{order_shard}"),
            counter(f"orders#owner#{owner}"),
            {"Put": {"TableName": TABLE_NAME, "Item": outbox_item, "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Put": {"TableName": TABLE_NAME, "Item": record_item,
                     "ConditionExpression": "attribute_not_exists(pk) OR expires_at <= :now",
                     "ExpressionAttributeValues": {":now": {"N": str(now_seconds)}}}},
            hold(owner, lines),
            {"ConditionCheck": {
                "TableName": TABLE_NAME,
                "Key": {"pk": {"S": f"USER#{owner}"}, "sk": {"S": "USER"}},
                "ConditionExpression": "attribute_exists(pk) AND (attribute_not_exists(#verified) OR #verified = :verified)",
                "ExpressionAttributeNames": {"#verified": "email_verified"},
                "ExpressionAttributeValues": {":verified": {"BOOL": True}},
            }},
        ]
    )
    logger.info("order placed", extra={"order_id": order_id, "lines": len(order_lines), "total": total})
    metrics.add_metric(name="OrdersPlaced", unit=MetricUnit.Count, value=1)
    message = {
        "QueueUrl": QUEUE_URL,
        "MessageBody": event_body,
        "MessageAttributes": {"correlation_id": {"DataType": "String", "StringValue": correlation}},
    }
    if trace:
        message["MessageSystemAttributes"] = {"AWSTraceHeader": {"DataType": "String", "StringValue": trace}}
    try:
        sqs.send_message(**message)
        dynamodb.delete_item(TableName=TABLE_NAME, Key={"pk": {"S": f"OUTBOX#{event_id}"}, "sk": {"S": "OUTBOX"}})
    except Exception:
        logger.warning("event not published now; the outbox relay will", extra={"event_id": event_id}, exc_info=True)

    return json_response(201, view, {"Location": location, "ETag": '"1"'})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event, context):
    metrics.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
    return app.resolve(event, context)
