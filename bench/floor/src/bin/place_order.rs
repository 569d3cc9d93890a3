//! Floor of POST /api/v1/orders: verify the token (key read during init),
//! one BatchGetItem of the products, one TransactWriteItems (order, four
//! counters, outbox record), then SQS SendMessage and DeleteItem of the
//! outbox record.

use aws_sdk_dynamodb::types::{KeysAndAttributes, Put, TransactWriteItem, Update};
use aws_sdk_sqs::types::MessageAttributeValue;
use floor::{
    Error, Item, PublicKeys, Request, Table, error, forever, get_bool, get_n, get_s, is_ulid, n, product_key, respond,
    s,
};
use lambda_runtime::{LambdaEvent, service_fn};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

struct Clients {
    table: Table,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    keys: PublicKeys,
}

#[derive(Deserialize)]
struct Line {
    product_id: String,
    quantity: u32,
}

#[derive(Deserialize)]
struct Body {
    lines: Vec<Line>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let config = floor::sdk_config().await;
    let clients = forever(Clients {
        table: Table::open(&config).await?,
        sqs: aws_sdk_sqs::Client::new(&config),
        queue_url: std::env::var("ORDER_PLACED_QUEUE_URL")?,
        keys: PublicKeys::read(&config).await?,
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Request>| handle(clients, event))).await
}

fn counter(table: &str, name: &str) -> TransactWriteItem {
    let update = Update::builder()
        .table_name(table)
        .key("pk", s(format!("COUNTER#{name}")))
        .key("sk", s("COUNTER"))
        .update_expression("ADD #total :delta")
        .expression_attribute_names("#total", "total")
        .expression_attribute_values(":delta", n(1))
        .build()
        .expect("complete");
    TransactWriteItem::builder().update(update).build()
}

fn put(table: &str, item: Item) -> Result<TransactWriteItem, Error> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
        .build()?;
    Ok(TransactWriteItem::builder().put(put).build())
}

async fn handle(clients: &Clients, event: LambdaEvent<Request>) -> Result<Value, Error> {
    let Clients { table, sqs, queue_url, keys } = clients;
    let request = event.payload;
    let Some(owner) = keys.verify(request.header("authorization")) else { return Ok(error(401, "invalid_token")) };
    let Ok(body) = serde_json::from_str::<Body>(request.body.as_deref().unwrap_or("")) else {
        return Ok(error(400, "malformed_json"));
    };
    if body.lines.is_empty()
        || body.lines.len() > 50
        || body.lines.iter().any(|l| !is_ulid(&l.product_id) || !(1..=1000).contains(&l.quantity))
    {
        return Ok(error(422, "validation_failed"));
    }
    let keys_and_attributes = KeysAndAttributes::builder()
        .set_keys(Some(body.lines.iter().map(|l| product_key(&l.product_id)).collect()))
        .consistent_read(true)
        .build()?;
    let output = table.client.batch_get_item().request_items(&table.name, keys_and_attributes).send().await?;
    let products = output.responses.and_then(|mut r| r.remove(&table.name)).unwrap_or_default();

    let (mut total, mut currency, mut lines) = (0u64, String::new(), Vec::new());
    for line in &body.lines {
        let Some(product) = products.iter().find(|p| get_s(p, "id") == line.product_id && get_bool(p, "active")) else {
            return Ok(error(422, "validation_failed"));
        };
        currency = get_s(product, "currency").to_owned();
        total += get_n(product, "price_minor") * u64::from(line.quantity);
        lines.push(json!({"product_id": line.product_id, "sku": get_s(product, "sku"), "name": get_s(product, "name"),
            "quantity": line.quantity, "unit_price_minor": get_n(product, "price_minor")}));
    }

    let (order_id, event_id) = (ulid::Ulid::new().to_string(), ulid::Ulid::new().to_string());
    let now = OffsetDateTime::now_utc();
    let timestamp = now.format(&Rfc3339)?;
    let message = json!({"specversion": "1.0", "id": event_id, "source": "urn:shop:api", "type": "order-placed",
        "time": timestamp, "datacontenttype": "application/json", "correlationid": event.context.request_id,
        "data": {"order_id": order_id, "owner_id": owner}})
    .to_string();
    let name = table.name.as_str();
    let order = Item::from([
        ("pk".into(), s(format!("ORDER#{order_id}"))),
        ("sk".into(), s("ORDER")),
        ("gsi1pk".into(), s(format!("ORDERS#OWNER#{owner}"))),
        ("gsi1sk".into(), s(&order_id)),
        ("gsi2pk".into(), s("ORDERS#STATUS#pending")),
        ("gsi2sk".into(), s(&order_id)),
        ("gsi3pk".into(), s(format!("ORDERS#OWNER#{owner}#STATUS#pending"))),
        ("gsi3sk".into(), s(&order_id)),
        ("gsi4pk".into(), s("ORDERS")),
        ("gsi4sk".into(), s(&order_id)),
        ("id".into(), s(&order_id)),
        ("owner".into(), s(&owner)),
        ("lines".into(), s(Value::from(lines).to_string())),
        ("total_minor".into(), n(total)),
        ("currency".into(), s(&currency)),
        ("status".into(), s("pending")),
        ("created_at".into(), s(&timestamp)),
        ("updated_at".into(), s(&timestamp)),
        ("version".into(), n(1)),
    ]);
    let outbox = Item::from([
        ("pk".into(), s(format!("OUTBOX#{event_id}"))),
        ("sk".into(), s("OUTBOX")),
        ("gsi1pk".into(), s("OUTBOX")),
        ("gsi1sk".into(), s(&event_id)),
        ("queue".into(), s("order-placed")),
        ("created_at".into(), n(now.unix_timestamp())),
        ("body".into(), s(&message)),
    ]);
    let items = vec![
        put(name, order)?,
        counter(name, "orders"),
        counter(name, &format!("orders#owner#{owner}")),
        counter(name, "orders#status#pending"),
        counter(name, &format!("orders#owner#{owner}#status#pending")),
        put(name, outbox)?,
    ];
    table.client.transact_write_items().set_transact_items(Some(items)).send().await?;

    let attribute =
        MessageAttributeValue::builder().data_type("String").string_value(&event.context.request_id).build()?;
    if sqs
        .send_message()
        .queue_url(queue_url)
        .message_body(message)
        .message_attributes("correlation_id", attribute)
        .send()
        .await
        .is_ok()
    {
        let _ = table
            .client
            .delete_item()
            .table_name(name)
            .key("pk", s(format!("OUTBOX#{event_id}")))
            .key("sk", s("OUTBOX"))
            .send()
            .await;
    }
    let body = json!({"id": order_id, "owner_id": owner, "status": "pending", "total": {"amount_minor": total, "currency": currency}});
    Ok(respond(201, &body, &[("location", format!("/api/v1/orders/{order_id}"))]))
}
