//! Orders and their idempotency records. Placement, status changes and
//! stock reservation are each one atomic step over orders, products, the
//! outbox and idempotency records, as each is one transaction in DynamoDB.

use async_trait::async_trait;
use domain::ports::{OrderFilter, OrderStore, Reservation, StoreError};
use domain::{DomainEvent, HoldLimits, IdempotencyRecord, Order, OrderId, OrderStatus, Page, PageRequest};
use framework::idempotency::{IdempotencyStore, LookupError};
use time::OffsetDateTime;

use crate::{Dependency, Memory, paging};

/// Orders in the shared state; placement, transitions and reservations each
/// happen under one lock, as one DynamoDB transaction would.
#[derive(Clone)]
pub struct MemoryOrderStore {
    memory: Memory,
    limits: HoldLimits,
}

impl MemoryOrderStore {
    pub(crate) fn new(memory: Memory, limits: HoldLimits) -> Self {
        Self { memory, limits }
    }
}

/// Takes `order` off its owner's holdings when the change to `next` ends its hold.
fn release_hold(state: &mut crate::State, order: &Order, next: OrderStatus) {
    if let Some(owner) = order.owner.filter(|_| domain::holdings::ends_hold(order.status, next)) {
        state.holdings.entry(owner).or_default().apply(order, -1);
    }
}

#[async_trait]
impl OrderStore for MemoryOrderStore {
    async fn place(
        &self,
        order: &Order,
        event: &DomainEvent,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<(), StoreError> {
        let mut state = self.memory.lock();
        state.check(Dependency::Table)?;
        state.check_key_free(idempotency)?;
        if state.orders.contains_key(&order.id) {
            return Err(StoreError::Failed("order placement cancelled: the order id exists".into()));
        }
        let owner = order.owner.ok_or_else(|| StoreError::Failed("an order is placed by an account".into()))?;
        // In the same step as the write, as the DynamoDB transaction's check of the account item.
        if !state.users.get(&owner).is_some_and(|account| account.email_verified) {
            return Err(StoreError::NotFound);
        }
        let held = state.holdings.entry(owner).or_default();
        held.admit(order, self.limits).map_err(StoreError::LimitReached)?;
        held.apply(order, 1);
        state.orders.insert(order.id, order.clone());
        state.outbox.push(event.clone());
        state.store_key(idempotency);
        Ok(())
    }

    async fn get(&self, id: OrderId) -> Result<Option<Order>, StoreError> {
        let state = self.memory.lock();
        state.check(Dependency::Table)?;
        Ok(state.orders.get(&id).cloned())
    }

    async fn list(&self, filter: OrderFilter, page: &PageRequest) -> Result<Page<Order>, StoreError> {
        let state = self.memory.lock();
        state.check(Dependency::Table)?;
        let items = state
            .orders
            .values()
            .filter(|o| filter.owner.is_none_or(|owner| o.is_owned_by(owner)))
            .filter(|o| filter.status.is_none_or(|status| o.status == status))
            .map(|o| (o.id.to_string(), o.clone()))
            .collect();
        paging::page(items, page, |position| OrderId::parse(position).is_ok())
    }

    async fn transition_with_event(
        &self,
        previous: &Order,
        next: &Order,
        event: Option<&DomainEvent>,
    ) -> Result<(), StoreError> {
        let mut state = self.memory.lock();
        state.check(Dependency::Table)?;
        match state.orders.get(&previous.id) {
            None => return Err(StoreError::NotFound),
            Some(stored) if stored.version != previous.version => return Err(StoreError::VersionMismatch),
            Some(_) => {}
        }
        let now = state.now();
        if previous.status.holds_stock() && next.status == OrderStatus::Cancelled {
            // A product deleted since the order was confirmed cannot take its stock back.
            for line in &next.lines {
                if let Some(product) = state.products.get_mut(&line.product_id) {
                    product.stock += line.quantity.get();
                    product.version += 1;
                    product.updated_at = now;
                }
            }
        }
        release_hold(&mut state, previous, next.status);
        state.outbox.extend(event.cloned());
        state.orders.insert(next.id, next.clone());
        Ok(())
    }

    async fn open_orders_placed_before(&self, cutoff: OffsetDateTime, limit: usize) -> Result<Vec<Order>, StoreError> {
        let state = self.memory.lock();
        state.check(Dependency::Table)?;
        // Orders are keyed by id, a ULID: oldest first, as in the status index.
        let due = |status: OrderStatus| {
            state.orders.values().filter(move |o| o.status == status && o.created_at < cutoff).take(limit).cloned()
        };
        Ok(due(OrderStatus::Pending).chain(due(OrderStatus::Confirmed)).collect())
    }

    async fn reserve(
        &self,
        order_id: OrderId,
        notify: &(dyn for<'o> Fn(&'o Order) -> DomainEvent + Send + Sync),
    ) -> Result<(Reservation, Option<DomainEvent>), StoreError> {
        let mut state = self.memory.lock();
        state.check(Dependency::Table)?;
        let order = state.orders.get(&order_id).cloned().ok_or(StoreError::NotFound)?;
        if order.status != OrderStatus::Pending {
            return Ok((Reservation::NotPending, None));
        }
        let now = state.now();
        let short: Vec<String> = order
            .lines
            .iter()
            .filter(|line| {
                !state
                    .products
                    .get(&line.product_id)
                    .is_some_and(|product| product.active && product.stock >= line.quantity.get())
            })
            .map(|line| line.sku.to_string())
            .collect();
        let (decided, outcome) = if short.is_empty() {
            for line in &order.lines {
                let product = state.products.get_mut(&line.product_id).expect("checked above");
                product.stock -= line.quantity.get();
                product.version += 1;
                product.updated_at = now;
            }
            (
                order.transitioned(OrderStatus::Confirmed, None, now).expect("pending can be confirmed"),
                Reservation::Confirmed,
            )
        } else {
            let reason = format!("not enough stock for {}", short.join(", "));
            (
                order.transitioned(OrderStatus::Rejected, Some(reason), now).expect("pending can be rejected"),
                Reservation::Rejected,
            )
        };
        release_hold(&mut state, &order, decided.status);
        let event = notify(&decided);
        state.outbox.push(event.clone());
        state.orders.insert(order_id, decided);
        Ok((outcome, Some(event)))
    }
}

/// Reads the idempotency records that order placement stored; an expired
/// record is absent.
#[derive(Clone)]
pub struct MemoryIdempotencyStore {
    memory: Memory,
}

impl MemoryIdempotencyStore {
    pub(crate) fn new(memory: Memory) -> Self {
        Self { memory }
    }
}

#[async_trait]
impl IdempotencyStore for MemoryIdempotencyStore {
    async fn find(&self, key: &str) -> Result<Option<framework::idempotency::IdempotencyRecord>, LookupError> {
        let state = self.memory.lock();
        state.check(Dependency::Table).map_err(adapters::framework_terms::lookup_error)?;
        let now = state.now();
        Ok(state.idempotency.get(key).filter(|record| record.expires_at > now).map(replayable))
    }
}

/// A record as the stores keep it, in the form the HTTP layer replays.
pub fn replayable(record: &IdempotencyRecord) -> framework::idempotency::IdempotencyRecord {
    let IdempotencyRecord { key, fingerprint, status, body, location, etag, expires_at } = record.clone();
    framework::idempotency::IdempotencyRecord { key, fingerprint, status, body, location, etag, expires_at }
}
