//! Floor of GET /api/v1/products: one Query on gsi1 (newest first) and one
//! GetItem of the counter, sent together; the next position sealed in a
//! cursor with the key read from Secrets Manager during init.

use aws_sdk_dynamodb::types::AttributeValue;
use floor::{Error, Item, Keys, Request, Table, error, forever, get_n, get_s, product_json, respond, s};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main(flavor = "current_thread")]
#[allow(clippy::large_futures)] // As the project's function runs it: no boxing in the floor either.
async fn main() -> Result<(), Error> {
    let config = floor::sdk_config().await;
    let table = forever(Table::open(&config).await?);
    let keys = forever(Keys::read(&config).await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Request>| handle(table, keys, event.payload))).await
}

async fn handle(table: &Table, keys: &Keys, request: Request) -> Result<Value, Error> {
    let limit = match request.query("limit").map(str::parse::<i32>) {
        None => 20,
        Some(Ok(limit)) if (1..=100).contains(&limit) => limit,
        Some(_) => return Ok(error(422, "validation_failed")),
    };
    let query = table
        .client
        .query()
        .table_name(&table.name)
        .index_name("gsi1")
        .key_condition_expression("#pk = :pk")
        .expression_attribute_names("#pk", "gsi1pk")
        .expression_attribute_values(":pk", AttributeValue::S("PRODUCTS#active".into()))
        .scan_index_forward(false)
        .limit(limit + 1)
        .send();
    let counter = Item::from([("pk".into(), s("COUNTER#products#active")), ("sk".into(), s("COUNTER"))]);
    let total = table.client.get_item().table_name(&table.name).set_key(Some(counter)).send();
    let (query, total) = tokio::join!(query, total);
    let mut items = query?.items.unwrap_or_default();
    let total = total?.item.as_ref().map_or(0, |item| get_n(item, "total"));
    let mut next_cursor = None;
    if items.len() > limit as usize {
        items.truncate(limit as usize);
        next_cursor = items.last().map(|last| keys.seal_cursor("products:active", get_s(last, "gsi1sk")));
    }
    let data: Vec<Value> = items.iter().map(product_json).collect();
    let body = json!({"data": data, "pagination": {"limit": limit, "next_cursor": next_cursor, "total": total}});
    Ok(respond(200, &body, &[]))
}
