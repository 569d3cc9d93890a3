"""GET /api/v1/products: newest first from gsi1 (one Query), the total from
a counter item (one GetItem), the next page's position sealed in an HMAC cursor."""

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from shop_peer.common import (
    TABLE_NAME,
    ULID,
    ApiError,
    CursorKeys,
    Cursors,
    PublicKeys,
    dynamodb,
    invalid,
    json_response,
    logger,
    metrics,
    optional_principal,
    product_view,
    resolver,
    warm_up,
)

app = resolver()
keys = PublicKeys()
cursor_keys = CursorKeys()
cursors = Cursors(cursor_keys)
# Every full page seals a cursor: read the cursor key now, during init.
cursor_keys.current()
warm_up()


@app.get("/api/v1/products")
def list_products():
    principal = optional_principal(app, keys)
    query = app.current_event.query_string_parameters or {}
    active = query.get("active")
    if active in (None, "true"):
        active = True
    elif active == "false":
        if not (principal and principal.is_admin):
            raise ApiError(403, "forbidden", "you are not allowed to do this")
        active = False
    else:
        raise invalid("active", "must be true or false")
    raw_limit = query.get("limit")
    limit = 20
    if raw_limit is not None:
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 100:
            raise invalid("limit", "must be a whole number from 1 to 100")
        limit = int(raw_limit)
    scope = "products:active" if active else "products:inactive"
    partition = "PRODUCTS#active" if active else "PRODUCTS#inactive"

    request = {
        "TableName": TABLE_NAME,
        "IndexName": "gsi1",
        "KeyConditionExpression": "#pk = :pk",
        "ExpressionAttributeNames": {"#pk": "gsi1pk"},
        "ExpressionAttributeValues": {":pk": {"S": partition}},
        "ScanIndexForward": False,
        # One more than asked tells whether another page exists.
        "Limit": limit + 1,
    }
    cursor = query.get("cursor")
    if cursor:
        position = cursors.open(cursor, scope)
        if position is None or not ULID.match(position):
            raise ApiError(400, "invalid_cursor", "cursor is invalid, expired or belongs to another listing")
        request["ExclusiveStartKey"] = {
            "pk": {"S": f"PRODUCT#{position}"},
            "sk": {"S": "PRODUCT"},
            "gsi1pk": {"S": partition},
            "gsi1sk": {"S": position},
        }
    items = dynamodb.query(**request).get("Items", [])
    counter = dynamodb.get_item(
        TableName=TABLE_NAME,
        Key={"pk": {"S": f"COUNTER#products#{'active' if active else 'inactive'}"}, "sk": {"S": "COUNTER"}},
    ).get("Item")
    total = int(counter["total"]["N"]) if counter and "total" in counter else 0

    next_cursor = None
    if len(items) > limit:
        items = items[:limit]
        next_cursor = cursors.seal(scope, items[-1]["gsi1sk"]["S"])
    body = {
        "data": [product_view(item) for item in items],
        "pagination": {"limit": limit, "next_cursor": next_cursor, "total": total},
    }
    return json_response(200, body)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event, context):
    metrics.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
    return app.resolve(event, context)
