//! Password resets on the table (`PasswordResets`): the pending reset is one
//! item in the account's partition (`USER#<id>`, `RESET`) holding SHA-256 of
//! the emailed secret, a fingerprint of the password hash it was asked for
//! against, and its expiry (also the table's TTL attribute). A newer request
//! overwrites it; completing deletes it with a condition on the hash and the
//! expiry in the transaction that writes the new password.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem};
use domain::ports::{PasswordResets, StoreError};
use domain::{DomainEvent, PendingReset, SecretHash, User, UserId};
use time::OffsetDateTime;

use super::items::{Item, get_s, get_u64, n, s};
use super::layout::Key;
use super::transaction::{Transaction, conditional_put};
use super::{DynamoUserStore, Table, outbox};

/// Pending password resets on the shared table.
#[derive(Clone, Debug)]
pub struct DynamoPasswordResets {
    table: Table,
}

impl DynamoPasswordResets {
    /// The password resets in `table`.
    pub fn new(table: Table) -> Self {
        Self { table }
    }

    fn item(pending: &PendingReset) -> Item {
        let mut item: Item = Key::password_reset(pending.user_id).item();
        item.extend([
            ("user_id".into(), s(pending.user_id.to_string())),
            ("secret_hash".into(), s(pending.secret_hash.to_hex())),
            ("password_fingerprint".into(), s(pending.password_fingerprint.to_hex())),
            // The table's TTL attribute, in Unix seconds.
            ("expires_at".into(), n(pending.expires_at.unix_timestamp())),
        ]);
        item
    }

    fn from_item(item: &Item) -> Result<PendingReset, StoreError> {
        let hash = |name: &str| {
            SecretHash::from_hex(get_s(item, name)?)
                .ok_or_else(|| StoreError::Failed(format!("stored reset has a bad `{name}`").into()))
        };
        let expires_at = OffsetDateTime::from_unix_timestamp(i64::try_from(get_u64(item, "expires_at")?).unwrap_or(0))
            .map_err(|_| StoreError::Failed("stored reset has a bad `expires_at`".into()))?;
        Ok(PendingReset {
            user_id: UserId::parse(get_s(item, "user_id")?)
                .map_err(|_| StoreError::Failed("stored reset has a bad `user_id`".into()))?,
            secret_hash: hash("secret_hash")?,
            password_fingerprint: hash("password_fingerprint")?,
            expires_at,
        })
    }
}

#[async_trait]
impl PasswordResets for DynamoPasswordResets {
    async fn request(&self, pending: &PendingReset, email: &DomainEvent) -> Result<(), StoreError> {
        let table = self.table.name();
        let put = Put::builder()
            .table_name(table)
            .set_item(Some(Self::item(pending)))
            .build()
            .expect("table and item are set");
        let mut transaction = Transaction::new();
        transaction.add(TransactWriteItem::builder().put(put).build());
        transaction.add(outbox::record(table, email));
        match self.table.transact(transaction).await? {
            Ok(()) => Ok(()),
            // The only condition is the outbox record's (a fresh event id).
            Err(_) => Err(StoreError::Failed("password reset request cancelled for an unknown reason".into())),
        }
    }

    async fn pending(&self, user: UserId) -> Result<Option<PendingReset>, StoreError> {
        self.table.get(&Key::password_reset(user)).await?.as_ref().map(Self::from_item).transpose()
    }

    async fn complete(
        &self,
        user: &User,
        presented: &SecretHash,
        now: OffsetDateTime,
        email: &DomainEvent,
    ) -> Result<(), StoreError> {
        let table = self.table.name();
        let consume = Delete::builder()
            .table_name(table)
            .set_key(Some(Key::password_reset(user.id).item()))
            .condition_expression("secret_hash = :presented AND expires_at > :now")
            .expression_attribute_values(":presented", s(presented.to_hex()))
            .expression_attribute_values(":now", n(now.unix_timestamp()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::None)
            .build()
            .expect("table, key and condition are set");
        let expected = Some(user.version - 1);
        let mut transaction = Transaction::new();
        let reset = transaction.add(TransactWriteItem::builder().delete(consume).build());
        let account =
            transaction.add(conditional_put(table, DynamoUserStore::user_item(user), "version = :expected", expected));
        let claim =
            transaction.add(conditional_put(table, DynamoUserStore::email_item(user), "version = :expected", expected));
        transaction.add(outbox::record(table, email));
        match self.table.transact(transaction).await? {
            Ok(()) => Ok(()),
            Err(cancelled) if cancelled.condition_failed(reset) => Err(StoreError::NotFound),
            Err(cancelled) if cancelled.condition_failed(account) || cancelled.condition_failed(claim) => {
                Err(StoreError::VersionMismatch)
            }
            Err(_) => Err(StoreError::Failed("password reset cancelled for an unknown reason".into())),
        }
    }
}
