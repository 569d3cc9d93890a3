//! Second factors on the table (`SecondFactorStore`): the TOTP enrolment
//! (`USER#<id>` / `TOTP`) and the recovery codes' hashes (`USER#<id>` /
//! `RECOVERY`, one string set), in the account's own partition. Every use of
//! a code is one conditional write on one item, so two concurrent uses of
//! the same code cannot both succeed. The secret is a binary attribute,
//! encrypted at rest by the table's encryption like everything else.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use domain::UserId;
use domain::ports::{EnrolmentStart, SecondFactorStore, StoreError};
use domain::totp::{EnrolmentState, RecoveryCodeHash, TimeStep, TotpEnrolment, TotpSecret};

use super::items::{Item, get_s, get_timestamp, n, s, timestamp};
use super::layout::Key;
use super::transaction::Transaction;
use super::{Table, classify};

/// Second factors on the shared table.
#[derive(Clone, Debug)]
pub struct DynamoSecondFactorStore {
    table: Table,
}

impl DynamoSecondFactorStore {
    /// The second factors in `table`.
    pub fn new(table: Table) -> Self {
        Self { table }
    }

    fn enrolment_item(enrolment: &TotpEnrolment) -> Item {
        let mut item = Key::totp(enrolment.user_id).item();
        item.extend([
            ("secret".into(), AttributeValue::B(enrolment.secret.expose().to_vec().into())),
            ("state".into(), s(enrolment.state.as_str())),
            ("created_at".into(), timestamp(enrolment.created_at)),
        ]);
        if let Some(step) = enrolment.last_step {
            item.insert("last_step".into(), n(step.get()));
        }
        item
    }

    fn from_item(user_id: UserId, item: &Item) -> Result<TotpEnrolment, StoreError> {
        let corrupt = |name: &str| StoreError::Failed(format!("stored TOTP item has a malformed `{name}`").into());
        let secret = item
            .get("secret")
            .and_then(|value| value.as_b().ok())
            .and_then(|bytes| TotpSecret::from_stored(bytes.as_ref()).ok())
            .ok_or_else(|| corrupt("secret"))?;
        let state = EnrolmentState::parse(get_s(item, "state")?).ok_or_else(|| corrupt("state"))?;
        let last_step = match item.get("last_step") {
            None => None,
            Some(value) => Some(TimeStep::from_stored(
                value.as_n().ok().and_then(|raw| raw.parse().ok()).ok_or_else(|| corrupt("last_step"))?,
            )),
        };
        Ok(TotpEnrolment { user_id, secret, state, last_step, created_at: get_timestamp(item, "created_at")? })
    }
}

/// Whether an SDK failure is a failed condition (an answer, not an error).
fn condition_failed<E, R>(error: &SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    error.as_service_error().and_then(aws_sdk_dynamodb::error::ProvideErrorMetadata::code)
        == Some("ConditionalCheckFailedException")
}

#[async_trait]
impl SecondFactorStore for DynamoSecondFactorStore {
    async fn enrolment(&self, user: UserId) -> Result<Option<TotpEnrolment>, StoreError> {
        self.table.get(&Key::totp(user)).await?.as_ref().map(|item| Self::from_item(user, item)).transpose()
    }

    async fn begin(&self, pending: &TotpEnrolment) -> Result<EnrolmentStart, StoreError> {
        let pending = TotpEnrolment { state: EnrolmentState::Pending, last_step: None, ..pending.clone() };
        let outcome = self
            .table
            .client()
            .put_item()
            .table_name(self.table.name())
            .set_item(Some(Self::enrolment_item(&pending)))
            .condition_expression("attribute_not_exists(pk) OR #state = :pending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":pending", s(EnrolmentState::Pending.as_str()))
            .send()
            .await;
        match outcome {
            Ok(_) => Ok(EnrolmentStart::Begun),
            Err(error) if condition_failed(&error) => Ok(EnrolmentStart::AlreadyConfirmed),
            Err(error) => Err(classify(error)),
        }
    }

    async fn confirm(
        &self,
        pending: &TotpEnrolment,
        step: TimeStep,
        recovery: &[RecoveryCodeHash],
    ) -> Result<bool, StoreError> {
        let table = self.table.name();
        let mut transaction = Transaction::new();
        let update = Update::builder()
            .table_name(table)
            .set_key(Some(Key::totp(pending.user_id).item()))
            .update_expression("SET #state = :confirmed, last_step = :step")
            // Its very secret: a newer enrolment begun meanwhile is not confirmed by this code.
            .condition_expression("#state = :pending AND secret = :secret")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":confirmed", s(EnrolmentState::Confirmed.as_str()))
            .expression_attribute_values(":pending", s(EnrolmentState::Pending.as_str()))
            .expression_attribute_values(":secret", AttributeValue::B(pending.secret.expose().to_vec().into()))
            .expression_attribute_values(":step", n(step.get()))
            .build()
            .expect("table, key and expression are set");
        let enrolment = transaction.add(TransactWriteItem::builder().update(update).build());
        let mut codes = Key::recovery_codes(pending.user_id).item();
        if !recovery.is_empty() {
            // DynamoDB has no empty sets: no codes is no attribute.
            codes.insert("codes".into(), AttributeValue::Ss(recovery.iter().map(|h| h.as_str().to_owned()).collect()));
        }
        let put = Put::builder().table_name(table).set_item(Some(codes)).build().expect("table and item are set");
        transaction.add(TransactWriteItem::builder().put(put).build());
        match self.table.transact(transaction).await? {
            Ok(()) => Ok(true),
            Err(cancelled) if cancelled.condition_failed(enrolment) => Ok(false),
            Err(_) => Err(StoreError::Failed("TOTP confirmation cancelled for an unknown reason".into())),
        }
    }

    async fn use_step(&self, user: UserId, step: TimeStep) -> Result<bool, StoreError> {
        let outcome = self
            .table
            .client()
            .update_item()
            .table_name(self.table.name())
            .set_key(Some(Key::totp(user).item()))
            .update_expression("SET last_step = :step")
            .condition_expression("#state = :confirmed AND (attribute_not_exists(last_step) OR last_step < :step)")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":confirmed", s(EnrolmentState::Confirmed.as_str()))
            .expression_attribute_values(":step", n(step.get()))
            .send()
            .await;
        match outcome {
            Ok(_) => Ok(true),
            Err(error) if condition_failed(&error) => Ok(false),
            Err(error) => Err(classify(error)),
        }
    }

    async fn use_recovery_code(&self, user: UserId, code: &RecoveryCodeHash) -> Result<bool, StoreError> {
        let outcome = self
            .table
            .client()
            .update_item()
            .table_name(self.table.name())
            .set_key(Some(Key::recovery_codes(user).item()))
            .update_expression("DELETE codes :used")
            .condition_expression("contains(codes, :code)")
            .expression_attribute_values(":used", AttributeValue::Ss(vec![code.as_str().to_owned()]))
            .expression_attribute_values(":code", s(code.as_str()))
            .send()
            .await;
        match outcome {
            Ok(_) => Ok(true),
            Err(error) if condition_failed(&error) => Ok(false),
            Err(error) => Err(classify(error)),
        }
    }

    async fn recovery_codes_left(&self, user: UserId) -> Result<usize, StoreError> {
        let item = self.table.get(&Key::recovery_codes(user)).await?;
        Ok(item.as_ref().and_then(|item| item.get("codes")).and_then(|codes| codes.as_ss().ok()).map_or(0, Vec::len))
    }

    async fn remove(&self, user: UserId) -> Result<bool, StoreError> {
        // Two deletes, each of one item and each a no-op when repeated.
        let delete = |key: Key| {
            self.table
                .client()
                .delete_item()
                .table_name(self.table.name())
                .set_key(Some(key.item()))
                .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
                .send()
        };
        let (enrolment, codes) = tokio::join!(delete(Key::totp(user)), delete(Key::recovery_codes(user)));
        let removed = [enrolment.map_err(classify)?.attributes, codes.map_err(classify)?.attributes];
        Ok(removed.iter().any(|old| old.as_ref().is_some_and(|item| !item.is_empty())))
    }
}
