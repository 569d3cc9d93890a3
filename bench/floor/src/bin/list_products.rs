//! Floor of GET /api/v1/products, making the project's calls: one Query per
//! partition of the sharded catalogue listing on gsi1 (its 16 shards and the
//! partition from before the shards, newest first, limit+1 each) and one
//! GetItem of the counter, all sent together; the shards' items merged
//! newest first and the next position sealed in a cursor with the key read
//! from Secrets Manager during init (with the public token keys, as the
//! project reads both then).

use aws_sdk_dynamodb::types::AttributeValue;
use floor::{
    Error, Item, Keys, PRODUCT_SHARDS, PublicKeys, Request, Table, error, forever, get_n, get_s, product_json, respond,
    s, shard_name,
};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main(flavor = "current_thread")]
#[allow(clippy::large_futures)] // As the project's function runs it: no boxing in the floor either.
async fn main() -> Result<(), Error> {
    let config = floor::sdk_config().await;
    let table = forever(Table::open(&config).await?);
    let (public_keys, keys) = tokio::join!(PublicKeys::read(&config), Keys::read(&config));
    let (public_keys, keys) = (forever(public_keys?), forever(keys?));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Request>| handle(table, public_keys, keys, event.payload)))
        .await
}

/// The `limit` newest items of one partition (its sort value and the item).
async fn newest(table: &Table, partition: String, limit: i32) -> Result<Vec<(String, Item)>, Error> {
    let output = table
        .client
        .query()
        .table_name(&table.name)
        .index_name("gsi1")
        .key_condition_expression("#pk = :pk")
        .expression_attribute_names("#pk", "gsi1pk")
        .expression_attribute_values(":pk", AttributeValue::S(partition))
        .scan_index_forward(false)
        .limit(limit)
        .send()
        .await?;
    Ok(output.items.unwrap_or_default().into_iter().map(|item| (get_s(&item, "gsi1sk").to_owned(), item)).collect())
}

async fn handle(table: &Table, public_keys: &PublicKeys, keys: &Keys, request: Request) -> Result<Value, Error> {
    // A guest route: a token is checked only when one is sent.
    let authorization = request.header("authorization");
    if authorization.is_some() && public_keys.verify(authorization).is_none() {
        return Ok(error(401, "invalid_token"));
    }
    let limit = match request.query("limit").map(str::parse::<i32>) {
        None => 20,
        Some(Ok(limit)) if (1..=100).contains(&limit) => limit,
        Some(_) => return Ok(error(422, "validation_failed")),
    };
    // Every shard, then the partition from before the shards; one more than asked from each.
    let partitions = (0..PRODUCT_SHARDS).map(Some).chain([None]).map(|shard| shard_name("PRODUCTS#active", shard));
    let shards = floor::try_join_all(partitions.map(|partition| newest(table, partition, limit + 1)));
    let counter = Item::from([("pk".into(), s("COUNTER#products#active")), ("sk".into(), s("COUNTER"))]);
    let total = table.client.get_item().table_name(&table.name).set_key(Some(counter)).send();
    let (shards, total) = tokio::join!(shards, total);
    let total = total?.item.as_ref().map_or(0, |item| get_n(item, "total"));
    // Merged newest first: one more item than the page anywhere means another page.
    let mut items: Vec<(String, Item)> = shards?.into_iter().flatten().collect();
    items.sort_by(|a, b| b.0.cmp(&a.0));
    items.dedup_by(|a, b| a.0 == b.0);
    let limit_items = usize::try_from(limit)?;
    let next_cursor =
        (items.len() > limit_items).then(|| keys.seal_cursor("products:active", &items[limit_items - 1].0));
    items.truncate(limit_items);
    let data: Vec<Value> = items.iter().map(|(_, item)| product_json(item)).collect();
    let body = json!({"data": data, "pagination": {"limit": limit, "next_cursor": next_cursor, "total": total}});
    Ok(respond(200, &body, &[]))
}
