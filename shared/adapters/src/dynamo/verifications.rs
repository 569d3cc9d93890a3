//! Email verification on the table (`Verifications`): the pending
//! verification is one item in the account's partition (`USER#<id>`,
//! `VERIFY`) holding the token's SHA-256 and its expiry (also the table's
//! TTL attribute, so an unused one disappears by itself); consuming it is a
//! delete conditioned on that hash and expiry, in the transaction that marks
//! the account verified.

use async_trait::async_trait;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem};
use domain::ports::{StoreError, Taken, Verifications};
use domain::{DomainEvent, IdempotencyRecord, PendingVerification, TokenHash, User, UserId, VerifyOutcome};
use time::OffsetDateTime;

use super::items::{Item, n};
use super::layout::{Counter, Key};
use super::transaction::{Transaction, conditional_put, count};
use super::{DynamoUserStore, Table, outbox, records};

/// How often a verification is tried again when the account changed between
/// its read and its write (an admin's change): then the write is refused by
/// the version condition and nothing happened.
const ATTEMPTS: usize = 3;

/// Pending verifications on the shared table.
#[derive(Clone, Debug)]
pub struct DynamoVerifications {
    table: Table,
}

impl DynamoVerifications {
    /// The verifications in `table`.
    pub fn new(table: Table) -> Self {
        Self { table }
    }

    fn pending_put(&self, pending: &PendingVerification) -> TransactWriteItem {
        let mut item: Item = Key::verification(pending.user_id).item();
        item.extend([
            ("token_hash".into(), AttributeValue::B(Blob::new(pending.hash.as_bytes().to_vec()))),
            // The table's TTL attribute, in Unix seconds.
            ("expires_at".into(), n(pending.expires_at.unix_timestamp())),
        ]);
        let put =
            Put::builder().table_name(self.table.name()).set_item(Some(item)).build().expect("table and item are set");
        TransactWriteItem::builder().put(put).build()
    }

    /// Deletes the pending verification if it holds `presented` and has not expired at `now`.
    fn consume(&self, user_id: UserId, presented: &TokenHash, now: OffsetDateTime) -> TransactWriteItem {
        let delete = Delete::builder()
            .table_name(self.table.name())
            .set_key(Some(Key::verification(user_id).item()))
            .condition_expression("token_hash = :presented AND expires_at > :now")
            .expression_attribute_values(":presented", AttributeValue::B(Blob::new(presented.as_bytes().to_vec())))
            .expression_attribute_values(":now", n(now.unix_timestamp()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::None)
            .build()
            .expect("table, key and condition are set");
        TransactWriteItem::builder().delete(delete).build()
    }

    async fn user(&self, user_id: UserId) -> Result<Option<User>, StoreError> {
        self.table.get(&Key::user(user_id)).await?.as_ref().map(DynamoUserStore::from_item).transpose()
    }

    async fn commit(&self, transaction: Transaction) -> Result<(), StoreError> {
        match self.table.transact(transaction).await? {
            Ok(()) => Ok(()),
            // The only conditions are the idempotency record's and the outbox record's (a fresh id).
            Err(_) => Err(StoreError::AlreadyExists(Taken::IdempotencyKey)),
        }
    }
}

#[async_trait]
impl Verifications for DynamoVerifications {
    async fn register(
        &self,
        user: &User,
        pending: &PendingVerification,
        event: &DomainEvent,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<(), StoreError> {
        let table = self.table.name();
        let mut transaction = Transaction::new();
        let account =
            transaction.add(conditional_put(table, DynamoUserStore::user_item(user), "attribute_not_exists(pk)", None));
        let email = transaction.add(conditional_put(
            table,
            DynamoUserStore::email_item(user),
            "attribute_not_exists(pk)",
            None,
        ));
        transaction.add(count(table, &Counter::Users, 1));
        transaction.add(self.pending_put(pending));
        transaction.add(outbox::record(table, event));
        let key = idempotency.map(|record| transaction.add(records::idempotency(table, record)));
        match self.table.transact(transaction).await? {
            Ok(()) => Ok(()),
            Err(cancelled) if key.is_some_and(|key| cancelled.condition_failed(key)) => {
                Err(StoreError::AlreadyExists(Taken::IdempotencyKey))
            }
            Err(cancelled) if cancelled.condition_failed(email) => Err(StoreError::AlreadyExists(Taken::Email)),
            Err(cancelled) if cancelled.condition_failed(account) => Err(StoreError::AlreadyExists(Taken::Id)),
            Err(_) => Err(StoreError::Failed("registration cancelled for an unknown reason".into())),
        }
    }

    async fn renew(
        &self,
        pending: &PendingVerification,
        event: &DomainEvent,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<(), StoreError> {
        let table = self.table.name();
        let mut transaction = Transaction::new();
        transaction.add(self.pending_put(pending));
        transaction.add(outbox::record(table, event));
        transaction.extend(idempotency.map(|record| records::idempotency(table, record)));
        self.commit(transaction).await
    }

    async fn notify(&self, event: &DomainEvent, idempotency: Option<&IdempotencyRecord>) -> Result<(), StoreError> {
        let table = self.table.name();
        let mut transaction = Transaction::new();
        transaction.add(outbox::record(table, event));
        transaction.extend(idempotency.map(|record| records::idempotency(table, record)));
        self.commit(transaction).await
    }

    async fn verify(
        &self,
        user_id: UserId,
        presented: &TokenHash,
        now: OffsetDateTime,
        welcome: &(dyn for<'u> Fn(&'u User) -> DomainEvent + Send + Sync),
    ) -> Result<VerifyOutcome, StoreError> {
        let table = self.table.name();
        for _ in 0..ATTEMPTS {
            let Some(user) = self.user(user_id).await? else { return Ok(VerifyOutcome::Refused) };
            if user.email_verified {
                return Ok(VerifyOutcome::AlreadyVerified);
            }
            let verified = user.verified(now);
            let event = welcome(&verified);
            let expected = Some(user.version);
            let mut transaction = Transaction::new();
            let consumed = transaction.add(self.consume(user_id, presented, now));
            transaction.add(conditional_put(
                table,
                DynamoUserStore::user_item(&verified),
                "version = :expected",
                expected,
            ));
            transaction.add(conditional_put(
                table,
                DynamoUserStore::email_item(&verified),
                "version = :expected",
                expected,
            ));
            transaction.add(outbox::record(table, &event));
            match self.table.transact(transaction).await? {
                Ok(()) => return Ok(VerifyOutcome::Verified(event)),
                // Another token, an expired one, or one a concurrent attempt
                // consumed first: which it was, the account now says.
                Err(cancelled) if cancelled.condition_failed(consumed) => {
                    let verified = self.user(user_id).await?.is_some_and(|user| user.email_verified);
                    return Ok(if verified { VerifyOutcome::AlreadyVerified } else { VerifyOutcome::Refused });
                }
                // The account changed between the read and the write: read it again.
                Err(_) => {}
            }
        }
        Err(StoreError::Unavailable("the account kept changing during its verification".into()))
    }
}
