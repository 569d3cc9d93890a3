//! The scheduled order expiry: an order still open (pending or confirmed, not
//! shipped) a hold time after it was placed is cancelled with a reason, its
//! stock goes back and its owner is told, so no account can keep stock off
//! the shelf for good.

use std::time::{Duration, Instant};

use domain::ports::{OrderStore, Publisher, StoreError, UserStore};
use domain::{DomainEvent, EmailTask, HoldTime, Order, OrderStatus};
use framework::metrics::{self, names};
use serde_json::{Value, json};
use time::OffsetDateTime;

/// Orders listed per status at a time; a run lists again while the last
/// listing was full and its time lasts.
pub const BATCH: usize = 50;

/// What one run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// Orders cancelled as expired (each with its stock back and one email).
    pub expired: usize,
    /// Orders that changed first (shipped, cancelled, confirmed) and were left alone.
    pub lost_races: usize,
}

/// One run at the current time, stopping after `budget` (half the
/// function's timeout: what is left waits for the next run): see [`run_at`].
///
/// # Errors
/// When the store cannot be read or written (the next scheduled run retries).
pub async fn run(
    orders: &impl OrderStore,
    users: &impl UserStore,
    publisher: &impl Publisher,
    hold: HoldTime,
    budget: Duration,
) -> anyhow::Result<Value> {
    let report = run_at(orders, users, publisher, hold, OffsetDateTime::now_utc(), budget).await?;
    Ok(json!({"expired": report.expired, "lost_races": report.lost_races}))
}

/// Expires the open orders placed more than `hold` before `now`, oldest
/// first, [`BATCH`] per status at a time, until none is left or `budget` is
/// spent (a backlog drains over successive runs). Each expiry is one conditional write of the order's
/// cancellation, its stock's return, its owner's holdings and the email
/// event: a shipment or cancellation that commits first makes it fail its
/// version check and do nothing, and a run repeated after a crash finds the
/// order no longer open, so the email goes out once.
///
/// # Errors
/// When the store cannot be read or written (the next scheduled run retries).
pub async fn run_at(
    orders: &impl OrderStore,
    users: &impl UserStore,
    publisher: &impl Publisher,
    hold: HoldTime,
    now: OffsetDateTime,
    budget: Duration,
) -> Result<Report, StoreError> {
    let started = Instant::now();
    let run = Run { orders, users, publisher, reason: hold.expiry_reason(), now, cutoff: now - hold.get() };
    let mut report = Report::default();
    loop {
        let due = orders.open_orders_placed_before(run.cutoff, BATCH).await?;
        let (listed, expired_before) = (due.len(), report.expired);
        for order in due {
            if started.elapsed() >= budget {
                break;
            }
            match run.expire(order).await? {
                Some(Outcome::Expired) => report.expired += 1,
                Some(Outcome::LostRace) => report.lost_races += 1,
                None => {}
            }
        }
        // A short listing was the last one; a listing that expired nothing
        // is the index lagging behind the writes: the next run goes on.
        if listed < BATCH || report.expired == expired_before || started.elapsed() >= budget {
            break;
        }
    }
    metrics::count(names::ORDERS_EXPIRED, report.expired as f64);
    Ok(report)
}

/// What one run expires with.
struct Run<'a, O, U, P> {
    orders: &'a O,
    users: &'a U,
    publisher: &'a P,
    reason: String,
    now: OffsetDateTime,
    cutoff: OffsetDateTime,
}

enum Outcome {
    Expired,
    LostRace,
}

impl<O: OrderStore, U: UserStore, P: Publisher> Run<'_, O, U, P> {
    /// Expires `order` if it is still open and old enough; `None` when the
    /// listing was stale (the write's condition is the judge either way).
    async fn expire(&self, order: Order) -> Result<Option<Outcome>, StoreError> {
        if !order.status.is_open() || order.created_at >= self.cutoff {
            return Ok(None);
        }
        let expired = order
            .transitioned(OrderStatus::Cancelled, Some(self.reason.clone()), self.now)
            .expect("open orders can be cancelled");
        let owner = match order.owner {
            Some(owner) => self.users.get(owner).await?,
            None => None,
        };
        // A deleted account has no one to tell.
        let email = owner.map(|owner| expiry_email(&expired, owner.email.as_ref(), self.now));
        match self.orders.transition_with_event(&order, &expired, email.as_ref()).await {
            Ok(()) => {
                tracing::info!(order_id = %order.id, from = %order.status, "order expired");
                if let Some(email) = &email {
                    self.publisher.publish_after_commit(email).await;
                }
                Ok(Some(Outcome::Expired))
            }
            Err(StoreError::VersionMismatch | StoreError::NotFound) => {
                tracing::info!(order_id = %order.id, "order changed before it could expire; left alone");
                Ok(Some(Outcome::LostRace))
            }
            Err(error) => Err(error),
        }
    }
}

fn expiry_email(order: &Order, to: &str, now: OffsetDateTime) -> DomainEvent {
    let task = EmailTask::OrderExpired {
        to: to.to_owned(),
        dedupe_key: format!("order-expired#{}", order.id),
        order_id: order.id.to_string(),
        reason: order.reason.clone().unwrap_or_default(),
    };
    DomainEvent::email_requested(task, &format!("expire-orders#{}", order.id), now)
}
