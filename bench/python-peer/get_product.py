"""GET /api/v1/products/{id}: one GetItem (strongly consistent)."""

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from shop_peer.common import (
    TABLE_NAME,
    ULID,
    PublicKeys,
    dynamodb,
    json_response,
    logger,
    metrics,
    not_found,
    optional_principal,
    product_key,
    product_view,
    resolver,
    warm_up,
)

app = resolver()
# Only a request that carries a token needs the keys: read them on first use.
keys = PublicKeys()
warm_up()


@app.get("/api/v1/products/<product_id>")
def get_product(product_id: str):
    principal = optional_principal(app, keys)
    if not ULID.match(product_id):
        raise not_found()
    item = dynamodb.get_item(TableName=TABLE_NAME, Key=product_key(product_id), ConsistentRead=True).get("Item")
    # Inactive products exist only for admins.
    if item is None or (not item["active"]["BOOL"] and not (principal and principal.is_admin)):
        raise not_found()
    return json_response(200, product_view(item), {"ETag": f'"{item["version"]["N"]}"'})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event, context):
    metrics.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
    return app.resolve(event, context)
