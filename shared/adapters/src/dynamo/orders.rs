//! Orders on the table: placement, listings, status changes and stock
//! reservation, each one transaction (the idempotency records they write
//! are read back by [`super::idempotency`]).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use domain::holdings::ends_hold;
use domain::ports::{OrderFilter, OrderStore, Reservation, StoreError, Taken};
use domain::{
    Currency, DomainEvent, HoldLimits, Holdings, IdempotencyRecord, Money, Order, OrderId, OrderLine, OrderStatus,
    Page, PageRequest, ProductId, Quantity, Sku, UserId,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::items::{Item, get_s, get_timestamp, get_u64, n, parsed, s, timestamp};
use super::layout::{Counter, Key, Partition, order_listings};
use super::listing::Listing;
use super::transaction::{Slot, Transaction, conditional_put, count};
use super::{Table, outbox, records};

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
    limits: HoldLimits,
}

/// The attribute of a holdings item that counts the units held of `product`.
fn units_attribute(product: ProductId) -> String {
    format!("units#{product}")
}

impl DynamoOrderStore {
    /// The orders in `table`, placed within the default [`HoldLimits`].
    pub fn new(table: Table) -> Self {
        Self { table, limits: HoldLimits::default() }
    }

    /// The same store, refusing orders beyond `limits`.
    #[must_use]
    pub fn with_limits(self, limits: HoldLimits) -> Self {
        Self { limits, ..self }
    }

    /// Moves `order` onto (`sign` 1) or off (`sign` -1) its owner's holdings
    /// item. Onto it is conditional on every cap, so of two racing orders
    /// only one can take the last place; off it is unconditional (an order's
    /// hold ends once, with the status change that ends it).
    fn hold(&self, owner: UserId, order: &Order, sign: i64) -> TransactWriteItem {
        let mut update = Update::builder()
            .table_name(self.table.name())
            .set_key(Some(Key::holdings(owner).item()))
            .expression_attribute_values(":order", n(sign))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let mut adds = vec!["open_orders :order".to_owned()];
        let mut conditions = vec!["(attribute_not_exists(open_orders) OR open_orders < :max_orders)".to_owned()];
        for (index, line) in order.lines.iter().enumerate() {
            let units = i64::from(line.quantity.get());
            update = update
                .expression_attribute_names(format!("#u{index}"), units_attribute(line.product_id))
                .expression_attribute_values(format!(":u{index}"), n(sign * units));
            adds.push(format!("#u{index} :u{index}"));
            if sign > 0 {
                let room = i64::from(self.limits.units_per_product()) - units;
                update = update.expression_attribute_values(format!(":room{index}"), n(room));
                conditions.push(format!("(attribute_not_exists(#u{index}) OR #u{index} <= :room{index})"));
            }
        }
        update = update.update_expression(format!("ADD {}", adds.join(", ")));
        if sign > 0 {
            update = update
                .condition_expression(conditions.join(" AND "))
                .expression_attribute_values(":max_orders", n(self.limits.open_orders()));
        }
        TransactWriteItem::builder().update(update.build().expect("table, key and expression are set")).build()
    }

    /// That `owner`'s account is still stored and may order (its email
    /// verified; an item from before verification has no attribute and
    /// may): checked inside the placing transaction, so an erasure of the
    /// account (which deletes the item, conditioned on the holdings this
    /// transaction adds to) and a placement never both commit.
    fn account_may_order(&self, owner: UserId) -> TransactWriteItem {
        let check = ConditionCheck::builder()
            .table_name(self.table.name())
            .set_key(Some(Key::user(owner).item()))
            .condition_expression("attribute_exists(pk) AND (attribute_not_exists(#verified) OR #verified = :verified)")
            .expression_attribute_names("#verified", "email_verified")
            .expression_attribute_values(":verified", AttributeValue::Bool(true))
            .build()
            .expect("table, key and condition are set");
        TransactWriteItem::builder().condition_check(check).build()
    }

    /// Why the holdings condition refused `order`, from the item as it was.
    fn refusal(&self, order: &Order, item: Option<&Item>) -> StoreError {
        let Some(item) = item else {
            return StoreError::Failed("the holdings condition failed on a missing item".into());
        };
        let number = |value: &AttributeValue| value.as_n().ok().and_then(|raw| raw.parse::<i64>().ok());
        let held = Holdings {
            open_orders: item.get("open_orders").and_then(number).unwrap_or(0),
            units: order
                .lines
                .iter()
                .filter_map(|line| {
                    item.get(&units_attribute(line.product_id)).and_then(number).map(|units| (line.product_id, units))
                })
                .collect(),
        };
        match held.admit(order, self.limits) {
            Err(exceeded) => StoreError::LimitReached(exceeded),
            Ok(()) => StoreError::Failed("the holdings condition failed on holdings within the caps".into()),
        }
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
        let id = order.id.to_string();
        let mut item = Key::order(order.id).item();
        for listing in order_listings(order.id, order.owner, order.status) {
            item.extend(listing.attributes(&id));
        }
        item.extend([
            ("id".into(), s(&id)),
            ("lines".into(), s(serde_json::to_string(&lines).expect("lines serialise"))),
            ("total_minor".into(), n(order.total.minor())),
            ("currency".into(), s(order.total.currency().as_str())),
            ("status".into(), s(order.status.as_str())),
            ("created_at".into(), timestamp(order.created_at)),
            ("updated_at".into(), timestamp(order.updated_at)),
            ("version".into(), n(order.version)),
        ]);
        if let Some(reason) = &order.reason {
            item.insert("reason".into(), s(reason));
        }
        // An order whose owner was erased has no owner attribute (and is in
        // no owner's listing).
        if let Some(owner) = order.owner {
            item.insert("owner".into(), s(owner.to_string()));
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
            owner: item.contains_key("owner").then(|| parsed(item, "owner", UserId::parse)).transpose()?,
            lines,
            total: money(get_u64(item, "total_minor")?)?,
            status: parsed(item, "status", OrderStatus::parse)?,
            reason: item.get("reason").and_then(|v| v.as_s().ok()).cloned(),
            created_at: get_timestamp(item, "created_at")?,
            updated_at: get_timestamp(item, "updated_at")?,
            version: get_u64(item, "version")?,
        })
    }

    /// The counters `order` moves by `delta`, totals included or not.
    fn counters(&self, order: &Order, delta: i64, with_totals: bool) -> Vec<TransactWriteItem> {
        let table = self.table.name();
        Counter::for_order(order.id, order.owner, order.status, with_totals)
            .iter()
            .map(|c| count(table, c, delta))
            .collect()
    }

    /// Adds a status change of `previous` into `next`, conditional on
    /// `previous`'s version; the slot of the order's write.
    fn status_change(&self, transaction: &mut Transaction, previous: &Order, next: &Order) -> Slot {
        let table = self.table.name();
        let order =
            transaction.add(conditional_put(table, Self::item(next), "version = :expected", Some(previous.version)));
        if previous.status != next.status {
            transaction.extend(self.counters(previous, -1, false));
            transaction.extend(self.counters(next, 1, false));
        }
        if let Some(owner) = previous.owner.filter(|_| ends_hold(previous.status, next.status)) {
            transaction.extend([self.hold(owner, previous, -1)]);
        }
        order
    }

    /// Up to `limit` items of `partition` whose sort value is below `bound`, oldest first.
    async fn oldest_before(&self, partition: &Partition, bound: &str, limit: usize) -> Result<Vec<Item>, StoreError> {
        let output = self
            .table
            .client()
            .query()
            .table_name(self.table.name())
            .index_name(partition.index.name())
            .key_condition_expression("#pk = :pk AND #sk < :bound")
            .expression_attribute_names("#pk", partition.index.partition_attribute())
            .expression_attribute_names("#sk", partition.index.sort_attribute())
            .expression_attribute_values(":pk", s(&partition.value))
            .expression_attribute_values(":bound", s(bound))
            .scan_index_forward(true)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(super::classify)?;
        Ok(output.items.unwrap_or_default())
    }

    /// Adds `delta` units to a product's stock; `condition` guards decrements.
    fn stock_change(&self, product: ProductId, delta: i64, condition: &str) -> TransactWriteItem {
        let mut update = Update::builder()
            .table_name(self.table.name())
            .set_key(Some(Key::product(product).item()))
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
        // An order beyond a cap on its own is refused before any write
        // (the holdings condition only sees units already held).
        Holdings::admit_alone(order, self.limits).map_err(StoreError::LimitReached)?;
        let owner = order.owner.ok_or_else(|| StoreError::Failed("an order is placed by an account".into()))?;
        let table = self.table.name();
        let mut transaction = Transaction::new();
        transaction.add(conditional_put(table, Self::item(order), "attribute_not_exists(pk)", None));
        transaction.extend(self.counters(order, 1, true));
        transaction.add(outbox::record(table, event));
        let key = idempotency.map(|record| transaction.add(records::idempotency(table, record)));
        let holdings = transaction.add(self.hold(owner, order, 1));
        let account = transaction.add(self.account_may_order(owner));
        match self.table.transact(transaction).await? {
            Ok(()) => Ok(()),
            Err(cancelled) if key.is_some_and(|key| cancelled.condition_failed(key)) => {
                Err(StoreError::AlreadyExists(Taken::IdempotencyKey))
            }
            Err(cancelled) if cancelled.condition_failed(account) => Err(StoreError::NotFound),
            Err(cancelled) if cancelled.condition_failed(holdings) => {
                Err(self.refusal(order, cancelled.old_item(holdings)))
            }
            Err(_) => Err(StoreError::Failed("order placement cancelled for an unknown reason".into())),
        }
    }

    async fn get(&self, id: OrderId) -> Result<Option<Order>, StoreError> {
        self.table.get(&Key::order(id)).await?.as_ref().map(Self::from_item).transpose()
    }

    async fn list(&self, filter: OrderFilter, page: &PageRequest) -> Result<Page<Order>, StoreError> {
        let listing = Listing {
            partitions: Partition::orders_read(filter),
            counters: Counter::orders_read(filter),
            base_key: |position| OrderId::parse(position).ok().map(Key::order),
        };
        let raw = self.table.list_page(&listing, page).await?;
        Ok(raw.read(Self::from_item))
    }

    async fn transition_with_event(
        &self,
        previous: &Order,
        next: &Order,
        event: Option<&DomainEvent>,
    ) -> Result<(), StoreError> {
        let restock = previous.status.holds_stock() && next.status == OrderStatus::Cancelled;
        let mut lines: Vec<&OrderLine> = if restock { next.lines.iter().collect() } else { Vec::new() };
        loop {
            let mut transaction = Transaction::new();
            let order = self.status_change(&mut transaction, previous, next);
            transaction.extend(event.map(|event| outbox::record(self.table.name(), event)));
            let restocks: Vec<Slot> = lines
                .iter()
                .map(|line| {
                    let units = i64::from(line.quantity.get());
                    transaction.add(self.stock_change(line.product_id, units, "attribute_exists(pk)"))
                })
                .collect();
            match self.table.transact(transaction).await? {
                Ok(()) => return Ok(()),
                Err(cancelled) if cancelled.condition_failed(order) && !cancelled.item_existed(order) => {
                    return Err(StoreError::NotFound);
                }
                Err(cancelled) if cancelled.condition_failed(order) => return Err(StoreError::VersionMismatch),
                Err(cancelled) => {
                    // A product deleted since the order was confirmed cannot take its stock back.
                    let before = lines.len();
                    let mut slots = restocks.iter();
                    lines.retain(|_| !slots.next().is_some_and(|slot| cancelled.condition_failed(*slot)));
                    if lines.len() == before {
                        return Err(StoreError::Failed("order transition cancelled for an unknown reason".into()));
                    }
                }
            }
        }
    }

    async fn open_orders_placed_before(&self, cutoff: OffsetDateTime, limit: usize) -> Result<Vec<Order>, StoreError> {
        // Ids are ULIDs: every id placed before `cutoff` sorts below the
        // smallest id of its millisecond.
        let bound = OrderId::first_at(cutoff).to_string();
        let mut due = Vec::new();
        for status in [OrderStatus::Pending, OrderStatus::Confirmed] {
            // The oldest of each shard, merged: the `limit` oldest of all.
            let shards = Partition::orders_read(OrderFilter { owner: None, status: Some(status) });
            let oldest = shards.iter().map(|partition| self.oldest_before(partition, &bound, limit));
            let mut listed: Vec<Item> = futures::future::try_join_all(oldest).await?.into_iter().flatten().collect();
            listed
                .sort_by(|a, b| a.get("id").and_then(|v| v.as_s().ok()).cmp(&b.get("id").and_then(|v| v.as_s().ok())));
            for item in listed.iter().take(limit) {
                due.push(Self::from_item(item)?);
            }
        }
        Ok(due)
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
            let mut transaction = Transaction::new();
            let order_slot = self.status_change(&mut transaction, &order, &confirmed);
            transaction.add(outbox::record(self.table.name(), &confirmed_event));
            let takes: Vec<Slot> = order
                .lines
                .iter()
                .map(|line| {
                    let units = -i64::from(line.quantity.get());
                    let condition = "attribute_exists(pk) AND active = :true AND stock >= :needed";
                    transaction.add(self.stock_change(line.product_id, units, condition))
                })
                .collect();
            let cancelled = match self.table.transact(transaction).await? {
                Ok(()) => return Ok((Reservation::Confirmed, Some(confirmed_event))),
                Err(cancelled) => cancelled,
            };
            if cancelled.condition_failed(order_slot) {
                continue; // The order changed under us: read it again.
            }
            let short: Vec<String> = order
                .lines
                .iter()
                .zip(&takes)
                .filter(|(_, slot)| cancelled.condition_failed(**slot))
                .map(|(line, _)| line.sku.to_string())
                .collect();
            if short.is_empty() {
                return Err(StoreError::Failed("stock reservation cancelled for an unknown reason".into()));
            }
            let reason = format!("not enough stock for {}", short.join(", "));
            let rejected =
                order.transitioned(OrderStatus::Rejected, Some(reason), now).expect("pending can be rejected");
            let rejected_event = notify(&rejected);
            let mut transaction = Transaction::new();
            self.status_change(&mut transaction, &order, &rejected);
            transaction.add(outbox::record(self.table.name(), &rejected_event));
            if self.table.transact(transaction).await?.is_ok() {
                return Ok((Reservation::Rejected, Some(rejected_event)));
            }
        }
        Err(StoreError::Unavailable("the order kept changing during reservation".into()))
    }
}
