//! Floor of GET /api/v1/products/{id}: one GetItem per request.

use floor::{Error, Request, Table, error, forever, get_bool, get_n, is_ulid, product_json, product_key, respond};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let config = floor::sdk_config().await;
    let table = forever(Table::open(&config).await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Request>| handle(table, event.payload))).await
}

async fn handle(table: &Table, request: Request) -> Result<Value, Error> {
    let Some(id) = request.path_param("id").filter(|id| is_ulid(id)) else { return Ok(error(404, "not_found")) };
    let output = table
        .client
        .get_item()
        .table_name(&table.name)
        .set_key(Some(product_key(id)))
        .consistent_read(true)
        .send()
        .await?;
    Ok(match output.item {
        Some(item) if get_bool(&item, "active") => {
            respond(200, &product_json(&item), &[("etag", format!("\"{}\"", get_n(&item, "version")))])
        }
        _ => error(404, "not_found"),
    })
}
