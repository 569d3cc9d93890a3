//! What happened, as facts other parts of the system react to. Events are
//! recorded in the same transaction as the write that caused them (outbox)
//! and published afterwards; the envelope format is the framework's concern.

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

/// A request to send one email: one variant per template, each with exactly
/// the fields its template shows. On the wire the template is the
/// `template` field (`welcome`, `order-confirmed`, `order-rejected`,
/// `order-expired`, `verify-email`, `account-exists`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "template", rename_all = "kebab-case", deny_unknown_fields)]
pub enum EmailTask {
    /// Greets a new account, once.
    Welcome {
        /// The recipient; the sender parses it again and parks a task whose
        /// address is invalid.
        to: String,
        /// Same task, same key: a duplicate is never sent twice.
        dedupe_key: String,
    },
    /// Every line was reserved.
    OrderConfirmed {
        /// The recipient (see `Welcome::to`).
        to: String,
        /// Same task, same key.
        dedupe_key: String,
        /// The order the email is about.
        order_id: String,
        /// The order's total, formatted for reading (`19.99 EUR`).
        total: String,
    },
    /// Some line could not be served.
    OrderRejected {
        /// The recipient (see `Welcome::to`).
        to: String,
        /// Same task, same key.
        dedupe_key: String,
        /// The order the email is about.
        order_id: String,
        /// Why it was rejected, in the customer's terms.
        reason: String,
    },
    /// The order stayed open beyond the hold time and was cancelled; its
    /// stock went back.
    OrderExpired {
        /// The recipient (see `Welcome::to`).
        to: String,
        /// Same task, same key.
        dedupe_key: String,
        /// The order the email is about.
        order_id: String,
        /// Why it expired, in the customer's terms.
        reason: String,
    },
    /// Asks the owner of a new (or still unverified) account to confirm the
    /// address by following the link.
    VerifyEmail {
        /// The recipient (see `Welcome::to`).
        to: String,
        /// Same task, same key: one per link.
        dedupe_key: String,
        /// The link, carrying the verification token in its fragment.
        link: String,
    },
    /// Tells the owner of a verified account that someone tried to register
    /// their address (registration answers the same either way, so this is
    /// where the truth goes: to the address's owner only).
    AccountExists {
        /// The recipient (see `Welcome::to`).
        to: String,
        /// Same task, same key: at most one per account per hour.
        dedupe_key: String,
    },
    /// Carries a link to choose a new password (asked for by someone who
    /// knew the address: the owner, or not, who then needs the mailbox).
    PasswordReset {
        /// The recipient (see `Welcome::to`).
        to: String,
        /// Same task, same key: one per link.
        dedupe_key: String,
        /// The link, carrying the reset token in its fragment.
        link: String,
    },
    /// Tells the owner their password was just changed with a reset link,
    /// so an owner who did not ask learns of it.
    PasswordChanged {
        /// The recipient (see `Welcome::to`).
        to: String,
        /// Same task, same key: one per change.
        dedupe_key: String,
    },
}

impl EmailTask {
    /// Where the email goes, as the task says (not yet parsed).
    pub fn to(&self) -> &str {
        match self {
            Self::Welcome { to, .. }
            | Self::OrderConfirmed { to, .. }
            | Self::OrderRejected { to, .. }
            | Self::OrderExpired { to, .. }
            | Self::VerifyEmail { to, .. }
            | Self::AccountExists { to, .. }
            | Self::PasswordReset { to, .. }
            | Self::PasswordChanged { to, .. } => to,
        }
    }

    /// The key that makes a repeated task a duplicate.
    pub fn dedupe_key(&self) -> &str {
        match self {
            Self::Welcome { dedupe_key, .. }
            | Self::OrderConfirmed { dedupe_key, .. }
            | Self::OrderRejected { dedupe_key, .. }
            | Self::OrderExpired { dedupe_key, .. }
            | Self::VerifyEmail { dedupe_key, .. }
            | Self::AccountExists { dedupe_key, .. }
            | Self::PasswordReset { dedupe_key, .. }
            | Self::PasswordChanged { dedupe_key, .. } => dedupe_key,
        }
    }

    /// The template's name, for logs and metrics.
    pub fn template(&self) -> &'static str {
        match self {
            Self::Welcome { .. } => "welcome",
            Self::OrderConfirmed { .. } => "order-confirmed",
            Self::OrderRejected { .. } => "order-rejected",
            Self::OrderExpired { .. } => "order-expired",
            Self::VerifyEmail { .. } => "verify-email",
            Self::AccountExists { .. } => "account-exists",
            Self::PasswordReset { .. } => "password-reset",
            Self::PasswordChanged { .. } => "password-changed",
        }
    }
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
