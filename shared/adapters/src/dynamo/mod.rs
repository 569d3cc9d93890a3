//! DynamoDB adapters: the stores that implement the domain's ports on one
//! table. The layout (keys, index partitions, counters) is named in
//! `layout`; transactions with named slots are in `transaction`.

mod claims;
mod erasure;
mod idempotency;
pub(crate) mod items;
pub(crate) mod layout;
mod listing;
mod orders;
mod outbox;
mod password_resets;
mod products;
mod records;
mod second_factor;
mod sessions;
mod transaction;
mod users;
mod verifications;

use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
pub use claims::DynamoMessageClaims;
use domain::ports::StoreError;
pub use erasure::DynamoAccountErasure;
pub use idempotency::DynamoIdempotencyStore;
use layout::Key;
/// The table's partition key prefixes, for checking IAM key conditions against the layout.
pub use layout::{INDEX_PREFIXES, TABLE_PREFIXES};
pub use orders::DynamoOrderStore;
pub use outbox::{OutboxEntry, OutboxPage, OutboxPosition, OutboxRecords, PendingEvent};
pub use password_resets::DynamoPasswordResets;
pub use products::DynamoProductStore;
pub use second_factor::DynamoSecondFactorStore;
pub use sessions::DynamoSessionStore;
use transaction::{Cancelled, Transaction};
pub use users::DynamoUserStore;
pub use verifications::DynamoVerifications;

use framework::backoff::Backoff;

/// How many shards each family of keys written across owners has (the
/// listings across owners, their counters, the outbox), for the load's
/// hot-key report.
pub const ORDER_SHARDS: u8 = layout::SHARDS;

/// The `gsi1pk` values under which outbox records wait (every shard, and the
/// partition from before the shards), for tools that count what is left.
pub fn outbox_partitions() -> Vec<String> {
    layout::Partition::outbox_read().into_iter().map(|partition| partition.value).collect()
}

/// Retries of a transaction that lost a conflict: full jitter under 20, 40,
/// 80 ms, so racing writers spread out instead of colliding again in step.
const CONFLICT_BACKOFF: Backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(200));

/// Retries of a `BatchGetItem` that left keys unprocessed (throttled).
pub(crate) const UNPROCESSED_BACKOFF: Backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(400));

/// The table and its client, shared by every store of one process.
#[derive(Clone, Debug)]
pub struct Table {
    client: aws_sdk_dynamodb::Client,
    name: String,
}

impl Table {
    /// The table `name`, reached through `client` (with whatever interceptors it carries).
    pub fn new(client: aws_sdk_dynamodb::Client, name: impl Into<String>) -> Self {
        Self { client, name: name.into() }
    }

    /// The table `name` with a plain client; for tools and tests, whose calls
    /// the AWS call recorder does not see.
    pub fn from_config(config: &aws_config::SdkConfig, name: impl Into<String>) -> Self {
        Self::new(aws_sdk_dynamodb::Client::new(config), name)
    }

    /// The client, for the stores' own requests.
    pub fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }

    /// The table's name, as every request must give it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Opens the connection (DNS, TCP, TLS) during init, where Lambda gives
    /// full CPU, instead of on the first request. Failure is only logged: the
    /// first request will retry and report properly.
    pub async fn warm_up(&self) {
        if let Err(error) = self.ping().await {
            tracing::warn!(error = framework::telemetry::chain(&error), "DynamoDB warm-up failed");
        }
    }

    /// One cheap read (`dynamodb:GetItem`, eventually consistent) of a key
    /// nothing is stored under: proves the table is reachable and readable
    /// with this function's credentials.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.client
            .get_item()
            .table_name(&self.name)
            .set_key(Some(Key::warm_up().item()))
            .send()
            .await
            .map(|_| ())
            .map_err(classify)
    }

    /// One item by its full key, read strongly consistent.
    pub(crate) async fn get(&self, key: &Key) -> Result<Option<items::Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.name)
            .set_key(Some(key.item()))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        Ok(output.item)
    }

    /// Runs a transaction. A `TransactionConflict` (another transaction on the
    /// same items in flight) is retried briefly, so that the loser of a race
    /// sees the winner's write and fails its condition cleanly instead of
    /// surfacing a spurious 503.
    pub(crate) async fn transact(&self, transaction: Transaction) -> Result<Result<(), Cancelled>, StoreError> {
        for attempt in 1..=4 {
            let outcome =
                self.client.transact_write_items().set_transact_items(Some(transaction.items.clone())).send().await;
            let Err(error) = outcome else { return Ok(Ok(())) };
            if let SdkError::ServiceError(service) = &error
                && let TransactWriteItemsError::TransactionCanceledException(cancelled) = service.err()
            {
                let reasons = cancelled.cancellation_reasons().to_vec();
                let conflict = reasons.iter().any(|r| r.code() == Some("TransactionConflict"));
                if conflict {
                    framework::metrics::count(framework::metrics::names::TRANSACTION_CONFLICTS, 1.0);
                }
                if conflict && attempt < 4 {
                    CONFLICT_BACKOFF.sleep(attempt - 1).await;
                    continue;
                }
                if !conflict {
                    return Ok(Err(Cancelled(reasons)));
                }
            }
            return Err(classify(error));
        }
        unreachable!("the last attempt always returns")
    }
}

/// Sorts SDK failures into "retry later" (503) and "broken" (500).
/// The outcome of a conditional UpdateItem whose failed condition means
/// "nothing to do" (already gone, already zero): `Ok`, like a success.
pub(crate) fn unless_condition_failed<T, R>(
    outcome: Result<T, SdkError<aws_sdk_dynamodb::operation::update_item::UpdateItemError, R>>,
) -> Result<(), StoreError>
where
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match outcome {
        Ok(_) => Ok(()),
        Err(error)
            if error.as_service_error().is_some_and(
                aws_sdk_dynamodb::operation::update_item::UpdateItemError::is_conditional_check_failed_exception,
            ) =>
        {
            Ok(())
        }
        Err(error) => Err(classify(error)),
    }
}

pub(crate) fn classify<E, R>(error: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let transient = match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(service) => matches!(
            service.err().code(),
            Some(
                "ProvisionedThroughputExceededException"
                    | "ThrottlingException"
                    | "RequestLimitExceeded"
                    | "InternalServerError"
                    | "ServiceUnavailable"
                    | "TransactionCanceledException"
                    | "TransactionInProgressException"
            )
        ),
        _ => false,
    };
    let described = anyhow::anyhow!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(&error));
    if transient { StoreError::Unavailable(described.into()) } else { StoreError::Failed(described.into()) }
}
