//! Queue consumers: one handler per queue, run by the shared batch processor.

use domain::ports::{MailError, Mailer, OrderStore, Publisher, Reservation, StoreError, UserStore};
use domain::{DomainEvent, Email, EmailTask, Order, OrderId, OrderStatus, UserId};
use framework::batch::{self, Claim, MessageClaims, RecordError};
use framework::events::CloudEvent;
use framework::metrics::{self, names};
use serde::Deserialize;
use time::OffsetDateTime;

fn poison(what: &str) -> impl Fn(domain::ValidationError) -> RecordError + '_ {
    move |error| RecordError::Poison(format!("{what}: {error}"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserCreated {
    user_id: String,
    email: String,
}

/// user-created: ask for a welcome email.
pub async fn on_user_created(event: CloudEvent, publisher: &impl Publisher) -> Result<(), RecordError> {
    let data: UserCreated = batch::data(&event)?;
    let user_id = UserId::parse(&data.user_id).map_err(poison("user_id"))?;
    let email = Email::parse(&data.email).map_err(poison("email"))?;
    // However often this runs for one user, one welcome email is sent.
    let task = EmailTask::Welcome { to: email.to_string(), dedupe_key: format!("welcome#{user_id}") };
    let follow_up = DomainEvent::email_requested(task, &event.correlationid, OffsetDateTime::now_utc());
    publisher.publish(&follow_up).await.map_err(|error| RecordError::Retry(error.into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderPlaced {
    order_id: String,
    owner_id: String,
}

fn order_email(order: &Order, to: &Email, correlation_id: &str) -> DomainEvent {
    let (to, order_id) = (to.to_string(), order.id.to_string());
    let task = match order.status {
        OrderStatus::Confirmed => EmailTask::OrderConfirmed {
            to,
            dedupe_key: format!("order-confirmed#{order_id}"),
            total: order.total.to_string(),
            order_id,
        },
        _ => EmailTask::OrderRejected {
            to,
            dedupe_key: format!("order-rejected#{order_id}"),
            reason: order.reason.clone().unwrap_or_else(|| "it could not be served".to_owned()),
            order_id,
        },
    };
    DomainEvent::email_requested(task, correlation_id, OffsetDateTime::now_utc())
}

/// order-placed: reserve stock for every line at once, confirm or reject the
/// order, and (in the same transaction) ask for the matching email.
pub async fn on_order_placed(
    event: CloudEvent,
    users: &impl UserStore,
    orders: &impl OrderStore,
    publisher: &impl Publisher,
) -> Result<(), RecordError> {
    let data: OrderPlaced = batch::data(&event)?;
    let order_id = OrderId::parse(&data.order_id).map_err(poison("order_id"))?;
    let owner_id = UserId::parse(&data.owner_id).map_err(poison("owner_id"))?;
    let owner = users
        .get(owner_id)
        .await
        .map_err(RecordError::retry)?
        .ok_or_else(|| RecordError::Poison(format!("order owner {owner_id} does not exist")))?;
    let correlation_id = event.correlationid.clone();
    let notify = move |order: &Order| order_email(order, &owner.email, &correlation_id);
    let (outcome, email) = match orders.reserve(order_id, &notify).await {
        Ok(result) => result,
        Err(StoreError::NotFound) => return Err(RecordError::Poison(format!("order {order_id} does not exist"))),
        Err(error) => return Err(RecordError::retry(error)),
    };
    let metric = match outcome {
        Reservation::Confirmed => names::ORDERS_CONFIRMED,
        Reservation::Rejected => names::ORDERS_REJECTED,
        Reservation::NotPending => {
            tracing::info!(order_id = %order_id, "order no longer pending; nothing to reserve");
            return Ok(());
        }
    };
    tracing::info!(order_id = %order_id, outcome = metric, "stock reservation decided");
    metrics::count(metric, 1.0);
    if let Some(email) = email {
        publisher.publish_after_commit(&email).await;
    }
    Ok(())
}

/// email-send: render and send through SES, once per dedupe key.
pub async fn send_email(event: CloudEvent, mailer: &impl Mailer, sent: &impl MessageClaims) -> Result<(), RecordError> {
    let task: EmailTask = batch::data(&event)?;
    let to = Email::parse(task.to()).map_err(poison("to"))?;
    if task.dedupe_key().is_empty() || task.dedupe_key().len() > 200 {
        return Err(RecordError::Poison("dedupe_key must be 1 to 200 characters".into()));
    }
    let key = format!("email#{}", task.dedupe_key());
    match sent.claim(&key).await? {
        Claim::Acquired => {}
        Claim::Done => {
            tracing::info!(dedupe_key = %task.dedupe_key(), "email already sent");
            return Ok(());
        }
        Claim::InProgress => {
            // Another attempt is sending it (or died doing so): try again
            // once its claim expires; never assume it was sent.
            return Err(RecordError::Retry(anyhow::anyhow!(
                "email {} is being sent by another attempt",
                task.dedupe_key()
            )));
        }
    }
    let (subject, body) = crate::email::render(&task);
    match mailer.send(to.as_ref(), &subject, &body).await {
        Ok(()) => {
            sent.complete(&key).await?;
            tracing::info!(template = task.template(), "email sent");
            metrics::count(names::EMAILS_SENT, 1.0);
            Ok(())
        }
        Err(MailError::Rejected(reason)) => {
            // Not marked sent: once the cause is fixed, a redrive sends it.
            sent.release(&key).await?;
            Err(RecordError::Poison(format!("SES refused the email: {reason}")))
        }
        Err(MailError::Unavailable(source)) => {
            sent.release(&key).await?;
            Err(RecordError::Retry(anyhow::Error::from_boxed(source)))
        }
    }
}
