//! The scheduled order expiry: an order still open (pending or confirmed, not
//! shipped) a hold time after it was placed is cancelled with a reason, its
//! stock goes back and its owner is told, so no account can keep stock off
//! the shelf for good.

use domain::ports::{OrderStore, Publisher, StoreError, UserStore};
use domain::{DomainEvent, EmailTask, HoldTime, Order, OrderStatus};
use platform::metrics::{self, names};
use serde_json::{Value, json};
use time::OffsetDateTime;

/// Orders expired per run at most; a backlog drains over successive runs.
pub const BATCH: usize = 100;

/// What one run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// Orders cancelled as expired (each with its stock back and one email).
    pub expired: usize,
    /// Orders that changed first (shipped, cancelled, confirmed) and were left alone.
    pub lost_races: usize,
}

/// One run at the current time: see [`run_at`].
///
/// # Errors
/// When the store cannot be read or written (the next scheduled run retries).
pub async fn run(
    orders: &impl OrderStore,
    users: &impl UserStore,
    publisher: &impl Publisher,
    hold: HoldTime,
) -> anyhow::Result<Value> {
    let report = run_at(orders, users, publisher, hold, OffsetDateTime::now_utc()).await?;
    Ok(json!({"expired": report.expired, "lost_races": report.lost_races}))
}

/// Expires up to [`BATCH`] open orders placed more than `hold` before `now`,
/// oldest first. Each expiry is one conditional write of the order's
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
) -> Result<Report, StoreError> {
    let cutoff = now - hold.get();
    let due = orders.open_orders_placed_before(cutoff, BATCH).await?;
    let mut report = Report::default();
    for order in due {
        if !order.status.is_open() || order.created_at >= cutoff {
            continue; // A listing may lag the table; the write's condition is the judge.
        }
        let expired = order
            .transitioned(OrderStatus::Cancelled, Some(hold.expiry_reason()), now)
            .expect("open orders can be cancelled");
        let email = match users.get(order.owner).await? {
            Some(owner) => Some(expiry_email(&expired, owner.email.as_ref(), now)),
            None => None, // A deleted account has no one to tell.
        };
        match orders.transition_with_event(&order, &expired, email.as_ref()).await {
            Ok(()) => {
                tracing::info!(order_id = %order.id, from = %order.status, "order expired");
                report.expired += 1;
                if let Some(email) = &email {
                    publisher.publish_after_commit(email).await;
                }
            }
            Err(StoreError::VersionMismatch | StoreError::NotFound) => {
                tracing::info!(order_id = %order.id, "order changed before it could expire; left alone");
                report.lost_races += 1;
            }
            Err(error) => return Err(error),
        }
    }
    metrics::count(names::ORDERS_EXPIRED, report.expired as f64);
    Ok(report)
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
