//! Sessions on the table (`SessionStore`): one item per refresh-token
//! family, `SESSION#<id>` in its account's partition, holding only the hash
//! of the current secret. A rotation is one conditional `UpdateItem` on that
//! hash, so two refreshes with one token can never both succeed.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use domain::ports::{SessionStore, StoreError, Taken};
use domain::{Role, Rotation, SecretHash, Session, SessionId, UserId};
use time::OffsetDateTime;

use super::items::{Item, get_bool, get_s, get_u64, n, parsed, s};
use super::layout::{Key, SESSION_PREFIX, session_key};
use super::{Table, classify};

/// Sessions in the shared table.
#[derive(Clone, Debug)]
pub struct DynamoSessionStore {
    table: Table,
}

impl DynamoSessionStore {
    /// The sessions in `table`.
    pub fn new(table: Table) -> Self {
        Self { table }
    }

    fn item(session: &Session) -> Item {
        let mut item = session_key(session.user_id, session.id);
        item.extend([
            ("user_id".into(), s(session.user_id.to_string())),
            ("session_id".into(), s(session.id.to_string())),
            ("role".into(), s(session.role.as_str())),
            ("mfa".into(), AttributeValue::Bool(session.mfa)),
            ("secret_hash".into(), s(session.secret_hash.to_hex())),
            ("started_at".into(), n(session.started_at.unix_timestamp())),
            // Also the table's TTL attribute: an idle session disappears by itself.
            ("expires_at".into(), n(session.expires_at.unix_timestamp())),
        ]);
        item
    }

    fn from_item(item: &Item) -> Result<Session, StoreError> {
        let moment = |name: &str| -> Result<OffsetDateTime, StoreError> {
            let seconds = i64::try_from(get_u64(item, name)?).unwrap_or(i64::MAX);
            OffsetDateTime::from_unix_timestamp(seconds)
                .map_err(|_| StoreError::Failed(format!("stored session has a bad `{name}`").into()))
        };
        Ok(Session {
            id: parsed(item, "session_id", SessionId::parse)?,
            user_id: parsed(item, "user_id", UserId::parse)?,
            role: parsed(item, "role", Role::parse)?,
            mfa: get_bool(item, "mfa")?,
            secret_hash: SecretHash::from_hex(get_s(item, "secret_hash")?)
                .ok_or_else(|| StoreError::Failed("stored session has a bad `secret_hash`".into()))?,
            started_at: moment("started_at")?,
            expires_at: moment("expires_at")?,
        })
    }

    /// Every session item of `user`, expired ones included, in one
    /// strongly consistent query (paged, though an account has few).
    async fn items_of(&self, user: UserId) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .table
                .client()
                .query()
                .table_name(self.table.name())
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(Key::user(user).pk))
                .expression_attribute_values(":prefix", s(SESSION_PREFIX))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(classify)?;
            items.extend(output.items.unwrap_or_default());
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }
}

#[async_trait]
impl SessionStore for DynamoSessionStore {
    async fn start(&self, session: &Session) -> Result<(), StoreError> {
        let outcome = self
            .table
            .client()
            .put_item()
            .table_name(self.table.name())
            .set_item(Some(Self::item(session)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match outcome {
            Ok(_) => Ok(()),
            Err(error)
                if error.as_service_error().is_some_and(
                    aws_sdk_dynamodb::operation::put_item::PutItemError::is_conditional_check_failed_exception,
                ) =>
            {
                Err(StoreError::AlreadyExists(Taken::Id))
            }
            Err(error) => Err(classify(error)),
        }
    }

    async fn rotate(
        &self,
        user: UserId,
        session: SessionId,
        presented: &SecretHash,
        next: &SecretHash,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<Rotation, StoreError> {
        let outcome = self
            .table
            .client()
            .update_item()
            .table_name(self.table.name())
            .set_key(Some(session_key(user, session)))
            .update_expression("SET secret_hash = :next, expires_at = :expires")
            .condition_expression("secret_hash = :presented AND expires_at > :now")
            .expression_attribute_values(":next", s(next.to_hex()))
            .expression_attribute_values(":expires", n(expires_at.unix_timestamp()))
            .expression_attribute_values(":presented", s(presented.to_hex()))
            .expression_attribute_values(":now", n(now.unix_timestamp()))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let error = match outcome {
            Ok(output) => {
                let item = output.attributes.unwrap_or_default();
                return Ok(Rotation::Rotated(Self::from_item(&item)?));
            }
            Err(error) => error,
        };
        let Some(UpdateItemError::ConditionalCheckFailedException(failed)) = error.as_service_error() else {
            return Err(classify(error));
        };
        // The condition failed: the item as it was tells why.
        let Some(stored) = failed.item() else { return Ok(Rotation::Unknown) };
        let held = get_s(stored, "secret_hash").ok().and_then(SecretHash::from_hex);
        let outcome = if held.as_ref() == Some(presented) { Rotation::Expired } else { Rotation::Reused };
        // Reused: the family is revoked; expired: ended. Either way the item goes.
        self.end(user, session).await?;
        Ok(outcome)
    }

    async fn end(&self, user: UserId, session: SessionId) -> Result<bool, StoreError> {
        let output = self
            .table
            .client()
            .delete_item()
            .table_name(self.table.name())
            .set_key(Some(session_key(user, session)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(classify)?;
        Ok(output.attributes.is_some_and(|item| !item.is_empty()))
    }

    async fn end_all(&self, user: UserId, keep: Option<SessionId>) -> Result<usize, StoreError> {
        let ids: Vec<SessionId> = self
            .items_of(user)
            .await?
            .iter()
            .filter_map(|item| parsed(item, "session_id", SessionId::parse).ok())
            .filter(|id| Some(*id) != keep)
            .collect();
        let ended = futures::future::try_join_all(ids.iter().map(|id| self.end(user, *id))).await?;
        Ok(ended.into_iter().filter(|ended| *ended).count())
    }

    async fn list(&self, user: UserId, now: OffsetDateTime) -> Result<Vec<Session>, StoreError> {
        let sessions: Result<Vec<Session>, StoreError> =
            self.items_of(user).await?.iter().map(Self::from_item).collect();
        let mut live: Vec<Session> = sessions?.into_iter().filter(|session| session.is_live(now)).collect();
        live.sort_by_key(|session| (session.started_at, session.id));
        Ok(live)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_reads_back_as_the_session() {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let session = Session::start(
            UserId::generate(),
            Role::Admin,
            true,
            SecretHash::from_bytes([3; 32]),
            now,
            domain::RefreshLifetime::DEFAULT,
        );
        let item = DynamoSessionStore::item(&session);
        assert_eq!(item["sk"], AttributeValue::S(format!("SESSION#{}", session.id)));
        assert_eq!(item["pk"], AttributeValue::S(format!("USER#{}", session.user_id)));
        assert_eq!(item["secret_hash"], AttributeValue::S("03".repeat(32)), "only the hash is stored");
        assert_eq!(DynamoSessionStore::from_item(&item).unwrap(), session);
    }
}
