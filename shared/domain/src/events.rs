//! What happened, as facts other parts of the system react to. Events are
//! recorded in the same transaction as the write that caused them (outbox)
//! and published afterwards; the envelope format is the platform's concern.

use serde::Serialize;
use time::OffsetDateTime;

use crate::{Email, OrderId, UserId};

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum EventData {
    UserCreated { user_id: String, email: String },
    OrderPlaced { order_id: String, owner_id: String },
    EmailRequested(EmailTask),
}

/// Which email to send. Rendering is the email sender's job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EmailTemplate {
    Welcome,
    OrderConfirmed,
    OrderRejected,
}

/// A request to send one email, carrying everything its template shows.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailTask {
    pub to: String,
    pub template: EmailTemplate,
    /// Same task, same key: a duplicate is never sent twice.
    pub dedupe_key: String,
    #[serde(default)]
    pub order_id: Option<String>,
    #[serde(default)]
    pub total: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DomainEvent {
    pub id: ulid::Ulid,
    pub data: EventData,
    /// Follows the request that caused the event into every event and email it leads to.
    pub correlation_id: String,
    pub occurred_at: OffsetDateTime,
}

impl DomainEvent {
    pub fn user_created(user_id: UserId, email: &Email, correlation_id: &str, now: OffsetDateTime) -> Self {
        Self::new(
            EventData::UserCreated { user_id: user_id.to_string(), email: email.to_string() },
            correlation_id,
            now,
        )
    }

    pub fn order_placed(order_id: OrderId, owner: UserId, correlation_id: &str, now: OffsetDateTime) -> Self {
        Self::new(
            EventData::OrderPlaced { order_id: order_id.to_string(), owner_id: owner.to_string() },
            correlation_id,
            now,
        )
    }

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
