//! Orders on the table: placement, listings, status changes and stock
//! reservation, each one transaction; and idempotency records.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use domain::ports::{IdempotencyStore, OrderFilter, OrderStore, Reservation, StoreError, Taken};
use domain::{
    Currency, DomainEvent, IdempotencyRecord, Money, Order, OrderId, OrderLine, OrderStatus, Page, PageRequest,
    ProductId, Quantity, Sku, UserId,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::items::{Item, get_s, get_timestamp, get_u64, n, parsed, s, timestamp};
use super::listing::Listing;
use super::products::product_pk;
use super::{Table, records};

const ORDER_SK: &str = "ORDER";

fn order_pk(id: OrderId) -> String {
    format!("ORDER#{id}")
}

fn order_key(position: &str) -> Option<(String, String)> {
    OrderId::parse(position).ok().map(|id| (order_pk(id), ORDER_SK.to_owned()))
}

/// How a line is stored inside the order item.
#[derive(Serialize, Deserialize)]
struct StoredLine {
    product_id: String,
    sku: String,
    name: String,
    quantity: u32,
    unit_price_minor: u64,
}

/// Orders on the shared table. Each order is listed in four index partitions
/// (by owner, by status, by owner and status, all) so that every listing a
/// client can ask for is a single Query; counters beside them give totals.
#[derive(Clone, Debug)]
pub struct DynamoOrderStore {
    table: Table,
}

impl DynamoOrderStore {
    pub fn new(table: Table) -> Self {
        Self { table }
    }

    fn item(order: &Order) -> Item {
        let lines: Vec<StoredLine> = order
            .lines
            .iter()
            .map(|line| StoredLine {
                product_id: line.product_id.to_string(),
                sku: line.sku.to_string(),
                name: line.name.clone(),
                quantity: line.quantity.get(),
                unit_price_minor: line.unit_price.minor(),
            })
            .collect();
        let (owner, status, id) = (order.owner, order.status.as_str(), order.id.to_string());
        let mut item = Item::from([
            ("pk".into(), s(order_pk(order.id))),
            ("sk".into(), s(ORDER_SK)),
            ("gsi1pk".into(), s(format!("ORDERS#OWNER#{owner}"))),
            ("gsi1sk".into(), s(&id)),
            ("gsi2pk".into(), s(format!("ORDERS#STATUS#{status}"))),
            ("gsi2sk".into(), s(&id)),
            ("gsi3pk".into(), s(format!("ORDERS#OWNER#{owner}#STATUS#{status}"))),
            ("gsi3sk".into(), s(&id)),
            ("gsi4pk".into(), s("ORDERS")),
            ("gsi4sk".into(), s(&id)),
            ("id".into(), s(&id)),
            ("owner".into(), s(owner.to_string())),
            ("lines".into(), s(serde_json::to_string(&lines).expect("lines serialise"))),
            ("total_minor".into(), n(order.total.minor())),
            ("currency".into(), s(order.total.currency().as_str())),
            ("status".into(), s(status)),
            ("created_at".into(), timestamp(order.created_at)),
            ("updated_at".into(), timestamp(order.updated_at)),
            ("version".into(), n(order.version)),
        ]);
        if let Some(reason) = &order.reason {
            item.insert("reason".into(), s(reason));
        }
        item
    }

    fn from_item(item: &Item) -> Result<Order, StoreError> {
        let corrupt = |what: &str| StoreError::Failed(format!("stored order has a malformed {what}").into());
        let currency = parsed(item, "currency", Currency::parse)?;
        let money = |minor: u64| Money::new(minor, currency).map_err(|_| corrupt("amount"));
        let stored: Vec<StoredLine> = serde_json::from_str(get_s(item, "lines")?).map_err(|_| corrupt("lines"))?;
        let mut lines = Vec::with_capacity(stored.len());
        for line in stored {
            lines.push(OrderLine {
                product_id: ProductId::parse(&line.product_id).map_err(|_| corrupt("product id"))?,
                sku: Sku::parse(&line.sku).map_err(|_| corrupt("sku"))?,
                name: line.name,
                quantity: Quantity::parse(i64::from(line.quantity)).map_err(|_| corrupt("quantity"))?,
                unit_price: money(line.unit_price_minor)?,
            });
        }
        Ok(Order {
            id: parsed(item, "id", OrderId::parse)?,
            owner: parsed(item, "owner", UserId::parse)?,
            lines,
            total: money(get_u64(item, "total_minor")?)?,
            status: parsed(item, "status", OrderStatus::parse)?,
            reason: item.get("reason").and_then(|v| v.as_s().ok()).cloned(),
            created_at: get_timestamp(item, "created_at")?,
            updated_at: get_timestamp(item, "updated_at")?,
            version: get_u64(item, "version")?,
        })
    }

    /// The per-status counters of `order` moved by `delta`.
    fn status_counters(&self, owner: UserId, status: OrderStatus, delta: i64) -> [TransactWriteItem; 2] {
        [
            records::counter(self.table.name(), &format!("orders#status#{status}"), delta),
            records::counter(self.table.name(), &format!("orders#owner#{owner}#status#{status}"), delta),
        ]
    }

    /// A status change of `previous` into `next`, conditional on `previous`'s version.
    fn status_change(&self, previous: &Order, next: &Order) -> Vec<TransactWriteItem> {
        let mut items =
            vec![self.table.conditional_put(Self::item(next), "version = :expected", Some(previous.version))];
        if previous.status != next.status {
            items.extend(self.status_counters(previous.owner, previous.status, -1));
            items.extend(self.status_counters(next.owner, next.status, 1));
        }
        items
    }

    /// Adds `delta` units to a product's stock; `condition` guards decrements.
    fn stock_change(&self, product: ProductId, delta: i64, condition: &str) -> TransactWriteItem {
        let mut update = Update::builder()
            .table_name(self.table.name())
            .key("pk", s(product_pk(product)))
            .key("sk", s("PRODUCT"))
            .update_expression("SET stock = stock + :delta, version = version + :one, updated_at = :now")
            .condition_expression(condition)
            .expression_attribute_values(":delta", n(delta))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", timestamp(OffsetDateTime::now_utc()));
        if delta < 0 {
            update = update
                .expression_attribute_values(":needed", n(-delta))
                .expression_attribute_values(":true", aws_sdk_dynamodb::types::AttributeValue::Bool(true));
        }
        TransactWriteItem::builder().update(update.build().expect("table, key and expression are set")).build()
    }
}

#[async_trait]
impl OrderStore for DynamoOrderStore {
    async fn place(
        &self,
        order: &Order,
        event: &DomainEvent,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<(), StoreError> {
        let table = self.table.name();
        let mut items = vec![
            self.table.conditional_put(Self::item(order), "attribute_not_exists(pk)", None),
            records::counter(table, "orders", 1),
            records::counter(table, &format!("orders#owner#{}", order.owner), 1),
        ];
        items.extend(self.status_counters(order.owner, order.status, 1));
        items.push(records::outbox(table, event));
        if let Some(record) = idempotency {
            items.push(records::idempotency(table, record));
        }
        let claim_index = items.len() - 1;
        match self.table.transact(items).await? {
            Ok(()) => Ok(()),
            Err(cancelled) if idempotency.is_some() && cancelled.condition_failed(claim_index) => {
                Err(StoreError::AlreadyExists(Taken::IdempotencyKey))
            }
            Err(_) => Err(StoreError::Failed("order placement cancelled for an unknown reason".into())),
        }
    }

    async fn get(&self, id: OrderId) -> Result<Option<Order>, StoreError> {
        self.table.get(order_pk(id), ORDER_SK).await?.as_ref().map(Self::from_item).transpose()
    }

    async fn list(&self, filter: OrderFilter, page: &PageRequest) -> Result<Page<Order>, StoreError> {
        let (index, partition, counter) = match (filter.owner, filter.status) {
            (Some(owner), None) => ("gsi1", format!("ORDERS#OWNER#{owner}"), format!("orders#owner#{owner}")),
            (None, Some(status)) => ("gsi2", format!("ORDERS#STATUS#{status}"), format!("orders#status#{status}")),
            (Some(owner), Some(status)) => (
                "gsi3",
                format!("ORDERS#OWNER#{owner}#STATUS#{status}"),
                format!("orders#owner#{owner}#status#{status}"),
            ),
            (None, None) => ("gsi4", "ORDERS".to_owned(), "orders".to_owned()),
        };
        let (partition_attribute, sort_attribute) = match index {
            "gsi1" => ("gsi1pk", "gsi1sk"),
            "gsi2" => ("gsi2pk", "gsi2sk"),
            "gsi3" => ("gsi3pk", "gsi3sk"),
            _ => ("gsi4pk", "gsi4sk"),
        };
        let listing = Listing { index, partition_attribute, sort_attribute, partition, counter, base_key: order_key };
        let raw = self.table.list_page(&listing, page).await?;
        Ok(raw.read(Self::from_item))
    }

    async fn transition(&self, previous: &Order, next: &Order) -> Result<(), StoreError> {
        let restock = previous.status.holds_stock() && next.status == OrderStatus::Cancelled;
        let mut lines: Vec<&OrderLine> = if restock { next.lines.iter().collect() } else { Vec::new() };
        loop {
            let mut items = self.status_change(previous, next);
            let first_stock_index = items.len();
            for line in &lines {
                items.push(self.stock_change(line.product_id, i64::from(line.quantity.get()), "attribute_exists(pk)"));
            }
            match self.table.transact(items).await? {
                Ok(()) => return Ok(()),
                Err(cancelled) if cancelled.condition_failed(0) && !cancelled.item_existed(0) => {
                    return Err(StoreError::NotFound);
                }
                Err(cancelled) if cancelled.condition_failed(0) => return Err(StoreError::VersionMismatch),
                Err(cancelled) => {
                    // A product deleted since the order was confirmed cannot take its stock back.
                    let before = lines.len();
                    let mut index = first_stock_index;
                    lines.retain(|_| {
                        let keep = !cancelled.condition_failed(index);
                        index += 1;
                        keep
                    });
                    if lines.len() == before {
                        return Err(StoreError::Failed("order transition cancelled for an unknown reason".into()));
                    }
                }
            }
        }
    }

    async fn reserve(
        &self,
        order_id: OrderId,
        notify: &(dyn for<'o> Fn(&'o Order) -> DomainEvent + Send + Sync),
    ) -> Result<(Reservation, Option<DomainEvent>), StoreError> {
        for _ in 0..3 {
            let order = self.get(order_id).await?.ok_or(StoreError::NotFound)?;
            if order.status != OrderStatus::Pending {
                return Ok((Reservation::NotPending, None));
            }
            let now = OffsetDateTime::now_utc();
            let confirmed = order.transitioned(OrderStatus::Confirmed, None, now).expect("pending can be confirmed");
            let confirmed_event = notify(&confirmed);
            let mut items = self.status_change(&order, &confirmed);
            items.push(records::outbox(self.table.name(), &confirmed_event));
            let first_line_index = items.len();
            // The confirmed order's outbox record sits just before the lines.
            for line in &order.lines {
                items.push(self.stock_change(
                    line.product_id,
                    -i64::from(line.quantity.get()),
                    "attribute_exists(pk) AND active = :true AND stock >= :needed",
                ));
            }
            let cancelled = match self.table.transact(items).await? {
                Ok(()) => return Ok((Reservation::Confirmed, Some(confirmed_event))),
                Err(cancelled) => cancelled,
            };
            if cancelled.condition_failed(0) {
                continue; // The order changed under us: read it again.
            }
            let short: Vec<String> = order
                .lines
                .iter()
                .enumerate()
                .filter(|(index, _)| cancelled.condition_failed(first_line_index + index))
                .map(|(_, line)| line.sku.to_string())
                .collect();
            if short.is_empty() {
                return Err(StoreError::Failed("stock reservation cancelled for an unknown reason".into()));
            }
            let reason = format!("not enough stock for {}", short.join(", "));
            let rejected =
                order.transitioned(OrderStatus::Rejected, Some(reason), now).expect("pending can be rejected");
            let rejected_event = notify(&rejected);
            let mut items = self.status_change(&order, &rejected);
            items.push(records::outbox(self.table.name(), &rejected_event));
            if self.table.transact(items).await?.is_ok() {
                return Ok((Reservation::Rejected, Some(rejected_event)));
            }
        }
        Err(StoreError::Unavailable("the order kept changing during reservation".into()))
    }
}

/// Idempotency records on the shared table.
#[derive(Clone, Debug)]
pub struct DynamoIdempotencyStore {
    table: Table,
}

impl DynamoIdempotencyStore {
    pub fn new(table: Table) -> Self {
        Self { table }
    }
}

#[async_trait]
impl IdempotencyStore for DynamoIdempotencyStore {
    async fn find(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        let Some(item) = self.table.get(records::idempotency_pk(key), "IDEMPOTENCY").await? else { return Ok(None) };
        let record = records::idempotency_from_item(key, &item)?;
        // TTL deletion lags; an expired record counts as absent.
        Ok((record.expires_at > OffsetDateTime::now_utc()).then_some(record))
    }
}
