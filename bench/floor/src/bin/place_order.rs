//! Floor of POST /api/v1/orders, making the project's calls in its order:
//! verify the token (keys read during init); `GetItem` of the account
//! (consistent: not disabled); `GetItem` of the idempotency record
//! (consistent; the bench's fresh key always misses); `BatchGetItem` of the
//! products and `GetItem` of the account again (the verified check),
//! together; one `TransactWriteItems` (order, four counters, outbox record,
//! idempotency record, the customer's holdings under the caps, the
//! condition check on the account); then SQS `SendMessage` and `DeleteItem`
//! of the outbox record.

use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, KeysAndAttributes, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update,
};
use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeNameForSends, MessageSystemAttributeValue};
use floor::{
    Error, Item, PublicKeys, Request, SHARDS, Table, error, forever, get_bool, get_n, get_s, is_ulid, n, product_key,
    respond, s, shard_name, shard_of,
};
use lambda_runtime::{LambdaEvent, service_fn};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

struct Clients {
    table: Table,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    keys: PublicKeys,
    /// The caps on one account's open orders and held units of a product.
    max_orders: u64,
    max_units: u64,
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

/// How long an idempotency record replays its answer (a day).
const KEY_TTL_SECONDS: i64 = 24 * 60 * 60;

fn cap(name: &str, default: u64) -> Result<u64, Error> {
    Ok(std::env::var(name).ok().map(|raw| raw.parse()).transpose()?.unwrap_or(default))
}

#[tokio::main(flavor = "current_thread")]
#[allow(clippy::large_futures)] // As the project's function runs it: no boxing in the floor either.
async fn main() -> Result<(), Error> {
    let config = floor::sdk_config().await;
    let clients = forever(Clients {
        table: Table::open(&config).await?,
        sqs: aws_sdk_sqs::Client::new(&config),
        queue_url: std::env::var("ORDER_PLACED_QUEUE_URL")?,
        keys: PublicKeys::read(&config).await?,
        max_orders: cap("MAX_OPEN_ORDERS_PER_ACCOUNT", 10)?,
        max_units: cap("MAX_HELD_UNITS_PER_PRODUCT", 20)?,
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

fn put(table: &str, item: Item, all_old: bool) -> Result<TransactWriteItem, Error> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
        .set_return_values_on_condition_check_failure(all_old.then_some(ReturnValuesOnConditionCheckFailure::AllOld))
        .build()?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// The idempotency record: claims the key unless an unexpired record holds it.
fn idempotency(table: &str, mut item: Item, now: i64) -> Result<TransactWriteItem, Error> {
    item.insert("expires_at".into(), n(now + KEY_TTL_SECONDS));
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
        .expression_attribute_values(":now", n(now))
        .build()?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// The order onto its owner's holdings: one more open order and its units
/// of each product, conditional on the caps.
fn hold(clients: &Clients, owner: &str, lines: &[Line]) -> Result<TransactWriteItem, Error> {
    let mut update = Update::builder()
        .table_name(&clients.table.name)
        .key("pk", s(format!("HOLDINGS#{owner}")))
        .key("sk", s("HOLDINGS"))
        .expression_attribute_values(":order", n(1))
        .expression_attribute_values(":max_orders", n(clients.max_orders))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
    let mut adds = vec!["open_orders :order".to_owned()];
    let mut conditions = vec!["(attribute_not_exists(open_orders) OR open_orders < :max_orders)".to_owned()];
    for (index, line) in lines.iter().enumerate() {
        let room = i128::from(clients.max_units) - i128::from(line.quantity);
        update = update
            .expression_attribute_names(format!("#u{index}"), format!("units#{}", line.product_id))
            .expression_attribute_values(format!(":u{index}"), n(line.quantity))
            .expression_attribute_values(format!(":room{index}"), n(room));
        adds.push(format!("#u{index} :u{index}"));
        conditions.push(format!("(attribute_not_exists(#u{index}) OR #u{index} <= :room{index})"));
    }
    let update =
        update.update_expression(format!("ADD {}", adds.join(", "))).condition_expression(conditions.join(" AND "));
    Ok(TransactWriteItem::builder().update(update.build()?).build())
}

/// That the account still exists and may order, checked inside the transaction.
fn account_may_order(table: &str, owner: &str) -> Result<TransactWriteItem, Error> {
    let check = ConditionCheck::builder()
        .table_name(table)
        .key("pk", s(format!("USER#{owner}")))
        .key("sk", s("USER"))
        .condition_expression("attribute_exists(pk) AND (attribute_not_exists(#verified) OR #verified = :verified)")
        .expression_attribute_names("#verified", "email_verified")
        .expression_attribute_values(":verified", AttributeValue::Bool(true))
        .build()?;
    Ok(TransactWriteItem::builder().condition_check(check).build())
}

/// A strongly consistent read of one item.
async fn get(table: &Table, pk: String, sk: &str) -> Result<Option<Item>, Error> {
    let output = table
        .client
        .get_item()
        .table_name(&table.name)
        .key("pk", s(pk))
        .key("sk", s(sk))
        .consistent_read(true)
        .send()
        .await?;
    Ok(output.item)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[allow(clippy::too_many_lines)] // One route's calls in the order the project makes them.
async fn handle(clients: &Clients, event: LambdaEvent<Request>) -> Result<Value, Error> {
    let Clients { table, sqs, queue_url, keys, max_units, .. } = clients;
    let request = event.payload;
    let Some(owner) = keys.verify(request.header("authorization")) else { return Ok(error(401, "invalid_token")) };
    // A write: the account as it is now (it may have been disabled or deleted since the token).
    let Some(account) = get(table, format!("USER#{owner}"), "USER").await? else {
        return Ok(error(401, "invalid_token"));
    };
    if get_bool(&account, "disabled") {
        return Ok(error(403, "account_disabled"));
    }
    let Some(raw_key) = request.header("idempotency-key").map(str::trim) else {
        return Ok(error(400, "idempotency_key_required"));
    };
    if raw_key.is_empty() || raw_key.len() > 255 || !raw_key.bytes().all(|b| b.is_ascii_graphic()) {
        return Ok(error(400, "invalid_idempotency_key"));
    }
    let key = format!("orders:place#{owner}#{raw_key}");
    let raw_body = request.body.as_deref().unwrap_or("");
    let fingerprint = hex(&Sha256::new().chain_update("POST").chain_update([0]).chain_update(raw_body).finalize());
    let now = OffsetDateTime::now_utc();
    if let Some(record) = get(table, format!("IDEMPOTENCY#{key}"), "IDEMPOTENCY").await? {
        let unexpired = i64::try_from(get_n(&record, "expires_at")).unwrap_or(i64::MAX) > now.unix_timestamp();
        if unexpired {
            if get_s(&record, "fingerprint") != fingerprint {
                return Ok(error(422, "validation_failed"));
            }
            let body: Value = serde_json::from_str(get_s(&record, "body"))?;
            let status = u16::try_from(get_n(&record, "status"))?;
            return Ok(respond(status, &body, &[("location", get_s(&record, "location").to_owned())]));
        }
    }
    let Ok(body) = serde_json::from_str::<Body>(raw_body) else {
        return Ok(error(400, "malformed_json"));
    };
    if body.lines.is_empty()
        || body.lines.len() > 50
        || body.lines.iter().any(|l| !is_ulid(&l.product_id) || !(1..=1000).contains(&l.quantity))
    {
        return Ok(error(422, "validation_failed"));
    }
    // An order beyond a cap on its own is refused before any write.
    if body.lines.iter().any(|line| u64::from(line.quantity) > *max_units) {
        return Ok(error(409, "hold_limit_reached"));
    }
    let keys_and_attributes = KeysAndAttributes::builder()
        .set_keys(Some(body.lines.iter().map(|l| product_key(&l.product_id)).collect()))
        .consistent_read(true)
        .build()?;
    let products = table.client.batch_get_item().request_items(&table.name, keys_and_attributes).send();
    let verified = get(table, format!("USER#{owner}"), "USER");
    let (products, verified) = tokio::join!(products, verified);
    match verified? {
        // An account from before verification has no attribute, and may order.
        Some(account) if account.get("email_verified").is_none_or(|v| v.as_bool() == Ok(&true)) => {}
        Some(_) => return Ok(error(403, "email_unverified")),
        None => return Ok(error(401, "invalid_token")),
    }
    let products = products?.responses.and_then(|mut r| r.remove(&table.name)).unwrap_or_default();

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
    let (order_shard, outbox_shard) = (Some(shard_of(&order_id, SHARDS)), Some(shard_of(&event_id, SHARDS)));
    let timestamp = now.format(&Rfc3339)?;
    let message = json!({"specversion": "1.0", "id": event_id, "source": "urn:shop:api", "type": "order-placed",
        "time": timestamp, "datacontenttype": "application/json", "correlationid": event.context.request_id,
        "data": {"order_id": order_id, "owner_id": owner}})
    .to_string();
    let view_lines: Vec<Value> = lines
        .iter()
        .map(|line| {
            json!({"product_id": line["product_id"], "sku": line["sku"], "name": line["name"], "quantity": line["quantity"],
                "unit_price": {"amount_minor": line["unit_price_minor"], "currency": currency}})
        })
        .collect();
    let answer = json!({"id": order_id, "owner_id": owner, "lines": view_lines,
        "total": {"amount_minor": total, "currency": currency}, "status": "pending",
        "created_at": timestamp, "updated_at": timestamp, "version": 1});
    let location = format!("/api/v1/orders/{order_id}");
    let name = table.name.as_str();
    let order = Item::from([
        ("pk".into(), s(format!("ORDER#{order_id}"))),
        ("sk".into(), s("ORDER")),
        ("gsi1pk".into(), s(format!("ORDERS#OWNER#{owner}"))),
        ("gsi1sk".into(), s(&order_id)),
        ("gsi2pk".into(), s(shard_name("ORDERS#STATUS#pending", order_shard))),
        ("gsi2sk".into(), s(&order_id)),
        ("gsi3pk".into(), s(format!("ORDERS#OWNER#{owner}#STATUS#pending"))),
        ("gsi3sk".into(), s(&order_id)),
        ("gsi4pk".into(), s(shard_name("ORDERS", order_shard))),
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
    let trace = event.context.xray_trace_id.filter(|trace| !trace.is_empty());
    let mut outbox = Item::from([
        ("pk".into(), s(format!("OUTBOX#{event_id}"))),
        ("sk".into(), s("OUTBOX")),
        ("gsi1pk".into(), s(shard_name("OUTBOX", outbox_shard))),
        ("gsi1sk".into(), s(&event_id)),
        ("queue".into(), s("order-placed")),
        ("created_at".into(), n(now.unix_timestamp())),
        ("body".into(), s(&message)),
    ]);
    // The trace of the request, for whoever publishes the event.
    if let Some(trace) = &trace {
        outbox.insert("trace".into(), s(trace));
    }
    let record = Item::from([
        ("pk".into(), s(format!("IDEMPOTENCY#{key}"))),
        ("sk".into(), s("IDEMPOTENCY")),
        ("fingerprint".into(), s(fingerprint)),
        ("status".into(), n(201)),
        ("body".into(), s(answer.to_string())),
        ("etag".into(), s("\"1\"")),
        ("location".into(), s(&location)),
    ]);
    let items = vec![
        put(name, order, true)?,
        counter(name, &shard_name("orders#status#pending", order_shard)),
        counter(name, &format!("orders#owner#{owner}#status#pending")),
        counter(name, &shard_name("orders", order_shard)),
        counter(name, &format!("orders#owner#{owner}")),
        put(name, outbox, false)?,
        idempotency(name, record, now.unix_timestamp())?,
        hold(clients, &owner, &body.lines)?,
        account_may_order(name, &owner)?,
    ];
    table.client.transact_write_items().set_transact_items(Some(items)).send().await?;

    let attribute =
        MessageAttributeValue::builder().data_type("String").string_value(&event.context.request_id).build()?;
    let mut send =
        sqs.send_message().queue_url(queue_url).message_body(message).message_attributes("correlation_id", attribute);
    if let Some(trace) = trace {
        let trace = MessageSystemAttributeValue::builder().data_type("String").string_value(trace).build()?;
        send = send.message_system_attributes(MessageSystemAttributeNameForSends::AwsTraceHeader, trace);
    }
    if send.send().await.is_ok() {
        let _ = table
            .client
            .delete_item()
            .table_name(name)
            .key("pk", s(format!("OUTBOX#{event_id}")))
            .key("sk", s("OUTBOX"))
            .send()
            .await;
    }
    Ok(respond(201, &answer, &[("location", location), ("etag", "\"1\"".to_owned())]))
}
