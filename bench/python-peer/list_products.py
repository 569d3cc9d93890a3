"""GET /api/v1/products: newest first from gsi1, over the catalogue listing's
shards as the project stores it (one Query per shard and one for the partition
from before the shards, sent together from a thread pool, merged newest
first), the total from a counter item (one GetItem), the next page's position
sealed in an HMAC cursor."""

from concurrent.futures import ThreadPoolExecutor

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

# The catalogue listing's shards (shared/adapters/src/dynamo/layout.rs, PRODUCT_SHARDS).
PRODUCT_SHARDS = 16

app = resolver()
keys = PublicKeys()
cursor_keys = CursorKeys()
cursors = Cursors(cursor_keys)
# Every full page seals a cursor: read the cursor key now, during init, and
# the public token keys too, as the project does.
cursor_keys.current()
keys.current()
warm_up()
pool = ThreadPoolExecutor(max_workers=PRODUCT_SHARDS + 2)


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

    position = None
    cursor = query.get("cursor")
    if cursor:
        position = cursors.open(cursor, scope)
        if position is None or not ULID.match(position):
            raise ApiError(400, "invalid_cursor", "cursor is invalid, expired or belongs to another listing")

    def newest(shard_partition):
        request = {
            "TableName": TABLE_NAME,
            "IndexName": "gsi1",
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": "gsi1pk"},
            "ExpressionAttributeValues": {":pk": {"S": shard_partition}},
            "ScanIndexForward": False,
            # One more than asked tells whether another page exists.
            "Limit": limit + 1,
        }
        if position:
            # Ids are ULIDs, so one position is every shard's: each continues below it.
            request["KeyConditionExpression"] = "#pk = :pk AND #sk < :after"
            request["ExpressionAttributeNames"]["#sk"] = "gsi1sk"
            request["ExpressionAttributeValues"][":after"] = {"S": position}
        return dynamodb.query(**request).get("Items", [])

    def count_total():
        counter = dynamodb.get_item(
            TableName=TABLE_NAME,
            Key={"pk": {"S": f"COUNTER#products#{'active' if active else 'inactive'}"}, "sk": {"S": "COUNTER"}},
        ).get("Item")
        return int(counter["total"]["N"]) if counter and "total" in counter else 0

    partitions = [f"{partition}#{shard:02d}" for shard in range(PRODUCT_SHARDS)] + [partition]
    counted = pool.submit(count_total)
    shards = list(pool.map(newest, partitions))
    total = counted.result()
    items = sorted((item for shard in shards for item in shard), key=lambda item: item["gsi1sk"]["S"], reverse=True)

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
