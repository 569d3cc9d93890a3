//! Users on the table (`UserStore`): the user item, its email claim and the
//! listing counter, each write one transaction.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem};
use domain::ports::{StoreError, Taken, UserStore};
use domain::{DomainEvent, Email, IdempotencyRecord, Page, PageRequest, PasswordHash, Role, User, UserId, UserProfile};
use framework::auth::{Account, Accounts, Subject};
use framework::lookup::LookupError;

use super::items::{Item, get_bool, get_s, get_timestamp, get_u64, n, parsed, s, timestamp};
use super::layout::{Counter, Key, Partition};
use super::listing::Listing;
use super::transaction::{Transaction, conditional_put, count};
use super::{Table, outbox, records};
use crate::framework_terms;

/// Users on the shared table. Reads are one operation each; every write is
/// one transaction over the user item and its email claim (and the counter).
#[derive(Clone, Debug)]
pub struct DynamoUserStore {
    table: Table,
}

impl DynamoUserStore {
    /// The accounts in `table`.
    pub fn new(table: Table) -> Self {
        Self { table }
    }

    fn user_attributes(user: &User) -> Item {
        Item::from([
            ("id".into(), s(user.id.to_string())),
            ("email".into(), s(user.email.as_ref())),
            ("password_hash".into(), s(user.password_hash.as_str())),
            ("role".into(), s(user.role.as_str())),
            ("disabled".into(), AttributeValue::Bool(user.disabled)),
            ("email_verified".into(), AttributeValue::Bool(user.email_verified)),
            ("created_at".into(), timestamp(user.created_at)),
            ("updated_at".into(), timestamp(user.updated_at)),
            ("version".into(), n(user.version)),
        ])
    }

    pub(crate) fn user_item(user: &User) -> Item {
        let mut item = Self::user_attributes(user);
        item.extend(Key::user(user.id).item());
        item.extend(Partition::users().attributes(&user.id.to_string()));
        item
    }

    pub(crate) fn email_item(user: &User) -> Item {
        let mut item = Self::user_attributes(user);
        item.extend(Key::email_claim(&user.email).item());
        item
    }

    pub(crate) fn from_item(item: &Item) -> Result<User, StoreError> {
        let password_hash = PasswordHash::from_phc(get_s(item, "password_hash")?.to_owned());
        Ok(Self::profile_from_item(item)?.with_password_hash(password_hash))
    }

    /// What the listing index holds: everything but the password hash.
    fn profile_from_item(item: &Item) -> Result<UserProfile, StoreError> {
        Ok(UserProfile {
            id: parsed(item, "id", UserId::parse)?,
            email: parsed(item, "email", Email::parse)?,
            role: parsed(item, "role", Role::parse)?,
            disabled: get_bool(item, "disabled")?,
            // Accounts stored before verification existed have no such
            // attribute: they count as verified.
            email_verified: item.get("email_verified").map_or(Ok(true), |_| get_bool(item, "email_verified"))?,
            created_at: get_timestamp(item, "created_at")?,
            updated_at: get_timestamp(item, "updated_at")?,
            version: get_u64(item, "version")?,
        })
    }

    async fn get_at(&self, key: &Key) -> Result<Option<User>, StoreError> {
        self.table.get(key).await?.as_ref().map(Self::from_item).transpose()
    }
}

/// What the framework's authenticator re-reads: the account's role and
/// whether it may sign in (one GetItem).
#[async_trait]
impl Accounts for DynamoUserStore {
    async fn account(&self, subject: Subject) -> Result<Option<Account>, LookupError> {
        let user = self.get(UserId::from_ulid(subject.ulid())).await.map_err(framework_terms::lookup_error)?;
        Ok(user.as_ref().map(framework_terms::account))
    }
}

#[async_trait]
impl UserStore for DynamoUserStore {
    async fn create(
        &self,
        user: &User,
        event: Option<&DomainEvent>,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<(), StoreError> {
        let table = self.table.name();
        let mut transaction = Transaction::new();
        let account = transaction.add(conditional_put(table, Self::user_item(user), "attribute_not_exists(pk)", None));
        let email = transaction.add(conditional_put(table, Self::email_item(user), "attribute_not_exists(pk)", None));
        transaction.add(count(table, &Counter::Users, 1));
        transaction.extend(event.map(|event| outbox::record(table, event)));
        let key = idempotency.map(|record| transaction.add(records::idempotency(table, record)));
        match self.table.transact(transaction).await? {
            Ok(()) => Ok(()),
            Err(cancelled) if key.is_some_and(|key| cancelled.condition_failed(key)) => {
                Err(StoreError::AlreadyExists(Taken::IdempotencyKey))
            }
            Err(cancelled) if cancelled.condition_failed(email) => Err(StoreError::AlreadyExists(Taken::Email)),
            Err(cancelled) if cancelled.condition_failed(account) => Err(StoreError::AlreadyExists(Taken::Id)),
            Err(_) => Err(StoreError::Failed("user insert cancelled for an unknown reason".into())),
        }
    }

    async fn get(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.get_at(&Key::user(id)).await
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        self.get_at(&Key::email_claim(email)).await
    }

    async fn list(&self, page: &PageRequest) -> Result<Page<UserProfile>, StoreError> {
        let listing = Listing {
            partitions: vec![Partition::users()],
            counters: vec![Counter::Users],
            base_key: |position| UserId::parse(position).ok().map(Key::user),
        };
        let raw = self.table.list_page(&listing, page).await?;
        Ok(raw.read(Self::profile_from_item))
    }

    async fn update(&self, user: &User, admin_witness: Option<UserId>) -> Result<(), StoreError> {
        if admin_witness == Some(user.id) {
            return Err(StoreError::LastAdmin);
        }
        let (table, expected) = (self.table.name(), Some(user.version - 1));
        let mut transaction = Transaction::new();
        let account = transaction.add(conditional_put(table, Self::user_item(user), "version = :expected", expected));
        let email = transaction.add(conditional_put(table, Self::email_item(user), "version = :expected", expected));
        let witness = admin_witness.map(|witness| transaction.add(active_admin_check(table, witness)));
        match self.table.transact(transaction).await? {
            Ok(()) => Ok(()),
            Err(cancelled) if witness.is_some_and(|witness| cancelled.condition_failed(witness)) => {
                Err(StoreError::LastAdmin)
            }
            Err(cancelled) if cancelled.condition_failed(account) && !cancelled.item_existed(account) => {
                Err(StoreError::NotFound)
            }
            Err(cancelled) if cancelled.condition_failed(account) || cancelled.condition_failed(email) => {
                Err(StoreError::VersionMismatch)
            }
            Err(_) => Err(StoreError::Failed("user update cancelled for an unknown reason".into())),
        }
    }
}

/// A condition that `witness` is an admin who can sign in, checked in the
/// transaction of the change it witnesses.
fn active_admin_check(table: &str, witness: UserId) -> TransactWriteItem {
    let check = ConditionCheck::builder()
        .table_name(table)
        .set_key(Some(Key::user(witness).item()))
        .condition_expression("#role = :admin AND disabled = :false")
        .expression_attribute_names("#role", "role")
        .expression_attribute_values(":admin", s(Role::Admin.as_str()))
        .expression_attribute_values(":false", AttributeValue::Bool(false))
        .build()
        .expect("table, key and condition are set");
    TransactWriteItem::builder().condition_check(check).build()
}
