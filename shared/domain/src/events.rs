//! What happened, as facts other parts of the system react to. Events are
//! recorded in the same transaction as the write that caused them (outbox)
//! and published afterwards; the envelope format is the platform's concern.

use serde::Serialize;
use time::OffsetDateTime;

use crate::{Email, OrderId, UserId};

/// The payload of an event, one variant per event type. Serialised without a
/// tag: the envelope's type ([`DomainEvent::kind`]) already says which it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum EventData {
    /// An account was registered; its consumer asks for the welcome email.
    UserCreated {
        /// The new account.
        user_id: String,
        /// Its normalised address, where the welcome email goes.
        email: String,
    },
    /// An order was stored as pending; its consumer reserves the stock.
    OrderPlaced {
        /// The pending order.
        order_id: String,
        /// The customer who placed it, whose address the outcome email goes to.
        owner_id: String,
    },
    /// An email should be sent; the email sender renders and sends it.
    EmailRequested(EmailTask),
}

/// Which email to send. Rendering is the email sender's job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EmailTemplate {
    /// Greets a new account, once.
    Welcome,
    /// Every line was reserved; names the order and its total.
    OrderConfirmed,
    /// Some line could not be served; names the order and the reason.
    OrderRejected,
}

/// A request to send one email, carrying everything its template shows.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailTask {
    /// The recipient; the sender parses it again and parks a task whose
    /// address is invalid.
    pub to: String,
    /// Which email this is, and so which of the optional fields it shows.
    pub template: EmailTemplate,
    /// Same task, same key: a duplicate is never sent twice.
    pub dedupe_key: String,
    /// The order an order email is about.
    #[serde(default)]
    pub order_id: Option<String>,
    /// The order's total, already formatted for reading (`19.99 EUR`).
    #[serde(default)]
    pub total: Option<String>,
    /// Why the order was rejected.
    #[serde(default)]
    pub reason: Option<String>,
}

/// One fact, committed with the write that caused it and published to the
/// queue named by [`DomainEvent::kind`].
#[derive(Debug, Clone, PartialEq)]
pub struct DomainEvent {
    /// Unique per event: consumers claim it, so a redelivery has no second effect.
    pub id: ulid::Ulid,
    /// What happened.
    pub data: EventData,
    /// Follows the request that caused the event into every event and email it leads to.
    pub correlation_id: String,
    /// When the write that caused it happened.
    pub occurred_at: OffsetDateTime,
}

impl DomainEvent {
    /// `user-created`, to be committed with the account it announces.
    pub fn user_created(user_id: UserId, email: &Email, correlation_id: &str, now: OffsetDateTime) -> Self {
        Self::new(
            EventData::UserCreated { user_id: user_id.to_string(), email: email.to_string() },
            correlation_id,
            now,
        )
    }

    /// `order-placed`, to be committed with the pending order it announces.
    pub fn order_placed(order_id: OrderId, owner: UserId, correlation_id: &str, now: OffsetDateTime) -> Self {
        Self::new(
            EventData::OrderPlaced { order_id: order_id.to_string(), owner_id: owner.to_string() },
            correlation_id,
            now,
        )
    }

    /// `email-send`: a request to send `task`.
    pub fn email_requested(task: EmailTask, correlation_id: &str, now: OffsetDateTime) -> Self {
        Self::new(EventData::EmailRequested(task), correlation_id, now)
    }

    fn new(data: EventData, correlation_id: &str, now: OffsetDateTime) -> Self {
        Self { id: ulid::Ulid::new(), data, correlation_id: correlation_id.to_owned(), occurred_at: now }
    }

    /// The event type, which is also the name of the queue it goes to.
    pub fn kind(&self) -> &'static str {
        match self.data {
            EventData::UserCreated { .. } => "user-created",
            EventData::OrderPlaced { .. } => "order-placed",
            EventData::EmailRequested(_) => "email-send",
        }
    }
}
