//! Every metric the functions emit, named once. template.yaml and
//! infra/monitoring.yaml alarm on these names; a test keeps them in sync
//! (every `Shop` metric an alarm or dashboard reads must be listed here).
//!
//! Each is emitted in namespace [`super::NAMESPACE`] under `[Service,
//! Environment, Function]`; those in [`BY_VERSION`] also under `[Service,
//! Environment, Function, Version]` (the executed Lambda version, so a
//! canary's alarms see only the new version). Each dimension set is a
//! custom metric of its own (paid monthly), so only what a deployment
//! alarm reads is filed by version.

use super::Unit;

/// Requests an API function answered.
pub const REQUESTS: &str = "Requests";
/// Time from the request reaching the function to its answer.
pub const LATENCY: &str = "Latency";
/// Answers with a 4xx status.
pub const CLIENT_ERRORS: &str = "ClientErrors";
/// Answers with a 5xx status.
pub const SERVER_ERRORS: &str = "ServerErrors";
/// Invocations that were the first of their process (1) or not (0).
pub const COLD_START: &str = "ColdStart";
/// Queue messages handled, acknowledged as duplicates, parked, failed (retried).
pub const MESSAGES_PROCESSED: &str = "MessagesProcessed";
/// See [`MESSAGES_PROCESSED`].
pub const MESSAGES_DUPLICATE: &str = "MessagesDuplicate";
/// See [`MESSAGES_PROCESSED`].
pub const MESSAGES_PARKED: &str = "MessagesParked";
/// See [`MESSAGES_PROCESSED`].
pub const MESSAGES_FAILED: &str = "MessagesFailed";
/// Records a consumer could not complete: the queue messages it failed (left
/// for SQS to retry) or parked in the dead-letter queue, the outbox records
/// the relay failed to publish or parked. Lambda's Errors never sees them (a
/// batch reports them and succeeds), so this is what a consumer's deployment
/// alarm watches, by version.
pub const RECORDS_FAILED: &str = "RecordsFailed";
/// Login attempts refused: a wrong email or password, or too many attempts
/// (429). A surge is a guessing campaign (infra/monitoring.yaml alarms on it).
pub const LOGINS_FAILED: &str = "LoginsFailed";
/// Rotated refresh tokens presented again: each revoked its session. A
/// stolen token or a client that keeps an old one; more than a handful is
/// worth a look.
pub const REFRESH_TOKENS_REUSED: &str = "RefreshTokensReused";
/// Accounts registered.
pub const USERS_REGISTERED: &str = "UsersRegistered";
/// Orders placed, confirmed, rejected, cancelled, shipped.
pub const ORDERS_PLACED: &str = "OrdersPlaced";
/// See [`ORDERS_PLACED`].
pub const ORDERS_CONFIRMED: &str = "OrdersConfirmed";
/// See [`ORDERS_PLACED`].
pub const ORDERS_REJECTED: &str = "OrdersRejected";
/// See [`ORDERS_PLACED`].
pub const ORDERS_CANCELLED: &str = "OrdersCancelled";
/// See [`ORDERS_PLACED`].
pub const ORDERS_SHIPPED: &str = "OrdersShipped";
/// Orders cancelled by the scheduled expiry (open beyond the hold time).
pub const ORDERS_EXPIRED: &str = "OrdersExpired";
/// Emails SES accepted.
pub const EMAILS_SENT: &str = "EmailsSent";
/// Outbox events the relay published, and those it could not.
pub const EVENTS_RELAYED: &str = "EventsRelayed";
/// See [`EVENTS_RELAYED`].
pub const EVENTS_RELAY_FAILED: &str = "EventsRelayFailed";
/// Outbox records the relay can never send (unreadable, or refused by SQS
/// as malformed), parked under `OUTBOX#PARKED` with their reason.
pub const EVENTS_PARKED: &str = "EventsParked";
/// Age of the oldest event waiting in the outbox when the relay ran.
pub const OUTBOX_AGE: &str = "OutboxAge";
/// DynamoDB transactions retried because another one held the same items.
pub const TRANSACTION_CONFLICTS: &str = "TransactionConflicts";
/// AWS calls answered with a throttling error (before the SDK's retries).
pub const THROTTLES: &str = "Throttles";
/// Items left out of a listing because they could not be read.
pub const UNREADABLE_ITEMS: &str = "UnreadableItems";

/// The metrics also filed by executed version: what the deployment alarms read.
pub const BY_VERSION: &[&str] = &[SERVER_ERRORS, RECORDS_FAILED];

/// Every metric with its unit.
pub const ALL: &[(&str, Unit)] = &[
    (REQUESTS, Unit::Count),
    (LATENCY, Unit::Milliseconds),
    (CLIENT_ERRORS, Unit::Count),
    (SERVER_ERRORS, Unit::Count),
    (COLD_START, Unit::Count),
    (MESSAGES_PROCESSED, Unit::Count),
    (MESSAGES_DUPLICATE, Unit::Count),
    (MESSAGES_PARKED, Unit::Count),
    (MESSAGES_FAILED, Unit::Count),
    (RECORDS_FAILED, Unit::Count),
    (LOGINS_FAILED, Unit::Count),
    (REFRESH_TOKENS_REUSED, Unit::Count),
    (USERS_REGISTERED, Unit::Count),
    (ORDERS_PLACED, Unit::Count),
    (ORDERS_CONFIRMED, Unit::Count),
    (ORDERS_REJECTED, Unit::Count),
    (ORDERS_CANCELLED, Unit::Count),
    (ORDERS_SHIPPED, Unit::Count),
    (ORDERS_EXPIRED, Unit::Count),
    (EMAILS_SENT, Unit::Count),
    (EVENTS_RELAYED, Unit::Count),
    (EVENTS_RELAY_FAILED, Unit::Count),
    (EVENTS_PARKED, Unit::Count),
    (OUTBOX_AGE, Unit::Seconds),
    (TRANSACTION_CONFLICTS, Unit::Count),
    (THROTTLES, Unit::Count),
    (UNREADABLE_ITEMS, Unit::Count),
];
