//! The catalogue on the table: products, their SKU claims and listings.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, TransactWriteItem};
use domain::ports::{ProductStore, StoreError, Taken};
use domain::{Currency, IdempotencyRecord, Money, Page, PageRequest, Product, ProductId, Sku};

use super::items::{Item, get_bool, get_s, get_timestamp, get_u64, n, parsed, s, timestamp};
use super::layout::{Counter, Key, Partition};
use super::listing::Listing;
use super::transaction::{Transaction, conditional_delete, conditional_put, count};
use super::{Table, classify, records};

/// The catalogue on the shared table: a product item plus a SKU claim item
/// that makes SKUs unique; active and inactive products list separately.
#[derive(Clone, Debug)]
pub struct DynamoProductStore {
    table: Table,
}

impl DynamoProductStore {
    /// The catalogue in `table`.
    pub fn new(table: Table) -> Self {
        Self { table }
    }

    fn item(product: &Product) -> Item {
        let mut item = Key::product(product.id).item();
        let id = product.id.to_string();
        item.extend(Partition::products(product.active, &id).attributes(&id));
        item.extend([
            ("id".into(), s(product.id.to_string())),
            ("sku".into(), s(product.sku.as_ref())),
            ("name".into(), s(&product.name)),
            ("description".into(), s(&product.description)),
            ("price_minor".into(), n(product.price.minor())),
            ("currency".into(), s(product.price.currency().as_str())),
            ("stock".into(), n(product.stock)),
            ("active".into(), AttributeValue::Bool(product.active)),
            ("created_at".into(), timestamp(product.created_at)),
            ("updated_at".into(), timestamp(product.updated_at)),
            ("version".into(), n(product.version)),
        ]);
        item
    }

    pub(crate) fn from_item(item: &Item) -> Result<Product, StoreError> {
        let currency = parsed(item, "currency", Currency::parse)?;
        let price = Money::new(get_u64(item, "price_minor")?, currency)
            .map_err(|_| StoreError::Failed("stored price out of range".into()))?;
        Ok(Product {
            id: parsed(item, "id", ProductId::parse)?,
            sku: parsed(item, "sku", Sku::parse)?,
            name: get_s(item, "name")?.to_owned(),
            description: get_s(item, "description")?.to_owned(),
            price,
            stock: u32::try_from(get_u64(item, "stock")?)
                .map_err(|_| StoreError::Failed("stored stock out of range".into()))?,
            active: get_bool(item, "active")?,
            created_at: get_timestamp(item, "created_at")?,
            updated_at: get_timestamp(item, "updated_at")?,
            version: get_u64(item, "version")?,
        })
    }

    fn claim_sku(&self, product: &Product) -> TransactWriteItem {
        let mut claim = Key::sku_claim(&product.sku).item();
        claim.insert("product_id".into(), s(product.id.to_string()));
        conditional_put(self.table.name(), claim, "attribute_not_exists(pk)", None)
    }

    /// Frees `product`'s SKU, if the claim is still its own.
    fn release_sku(&self, product: &Product) -> TransactWriteItem {
        let key = Key::sku_claim(&product.sku);
        conditional_delete(self.table.name(), &key, "product_id = :expected", s(product.id.to_string()))
    }
}

#[async_trait]
impl ProductStore for DynamoProductStore {
    async fn create(&self, product: &Product, idempotency: Option<&IdempotencyRecord>) -> Result<(), StoreError> {
        let table = self.table.name();
        let mut transaction = Transaction::new();
        transaction.add(conditional_put(table, Self::item(product), "attribute_not_exists(pk)", None));
        let sku = transaction.add(self.claim_sku(product));
        transaction.add(count(table, &Counter::Products { active: product.active }, 1));
        let key = idempotency.map(|record| transaction.add(records::idempotency(table, record)));
        match self.table.transact(transaction).await? {
            Ok(()) => Ok(()),
            Err(cancelled) if key.is_some_and(|key| cancelled.condition_failed(key)) => {
                Err(StoreError::AlreadyExists(Taken::IdempotencyKey))
            }
            Err(cancelled) if cancelled.condition_failed(sku) => Err(StoreError::AlreadyExists(Taken::Sku)),
            Err(_) => Err(StoreError::Failed("product insert cancelled for an unknown reason".into())),
        }
    }

    async fn get(&self, id: ProductId) -> Result<Option<Product>, StoreError> {
        self.table.get(&Key::product(id)).await?.as_ref().map(Self::from_item).transpose()
    }

    async fn get_many(&self, ids: &[ProductId]) -> Result<Vec<Product>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<Item> = ids.iter().map(|id| Key::product(*id).item()).collect();
        let mut request = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .map_err(|e| StoreError::Failed(e.into()))?;
        let mut products = Vec::with_capacity(ids.len());
        // BatchGetItem may hand back keys it did not get to under load; ask again, briefly.
        for attempt in 0..5 {
            let output = self
                .table
                .client()
                .batch_get_item()
                .request_items(self.table.name(), request.clone())
                .send()
                .await
                .map_err(classify)?;
            for item in output.responses().and_then(|r| r.get(self.table.name())).into_iter().flatten() {
                products.push(Self::from_item(item)?);
            }
            match output.unprocessed_keys().and_then(|u| u.get(self.table.name())) {
                Some(rest) if !rest.keys().is_empty() => {
                    request = rest.clone();
                    super::UNPROCESSED_BACKOFF.sleep(attempt).await;
                }
                _ => return Ok(products),
            }
        }
        Err(StoreError::Unavailable("BatchGetItem left keys unprocessed".into()))
    }

    async fn list(&self, active: bool, page: &PageRequest) -> Result<Page<Product>, StoreError> {
        let listing = Listing {
            partitions: Partition::products_read(active),
            counters: vec![Counter::Products { active }],
            base_key: |position| ProductId::parse(position).ok().map(Key::product),
        };
        let raw = self.table.list_page(&listing, page).await?;
        Ok(raw.read(Self::from_item))
    }

    async fn replace(&self, previous: &Product, next: &Product) -> Result<(), StoreError> {
        let table = self.table.name();
        let mut transaction = Transaction::new();
        let product =
            transaction.add(conditional_put(table, Self::item(next), "version = :expected", Some(previous.version)));
        let new_sku = (previous.sku != next.sku).then(|| {
            transaction.add(self.release_sku(previous));
            transaction.add(self.claim_sku(next))
        });
        if previous.active != next.active {
            transaction.add(count(table, &Counter::Products { active: previous.active }, -1));
            transaction.add(count(table, &Counter::Products { active: next.active }, 1));
        }
        match self.table.transact(transaction).await? {
            Ok(()) => Ok(()),
            Err(cancelled) if cancelled.condition_failed(product) && !cancelled.item_existed(product) => {
                Err(StoreError::NotFound)
            }
            Err(cancelled) if cancelled.condition_failed(product) => Err(StoreError::VersionMismatch),
            Err(cancelled) if new_sku.is_some_and(|sku| cancelled.condition_failed(sku)) => {
                Err(StoreError::AlreadyExists(Taken::Sku))
            }
            Err(_) => Err(StoreError::VersionMismatch),
        }
    }

    async fn delete(&self, product: &Product) -> Result<(), StoreError> {
        let table = self.table.name();
        let mut transaction = Transaction::new();
        let item = transaction.add(conditional_delete(
            table,
            &Key::product(product.id),
            "version = :expected",
            n(product.version),
        ));
        transaction.add(self.release_sku(product));
        transaction.add(count(table, &Counter::Products { active: product.active }, -1));
        match self.table.transact(transaction).await? {
            Ok(()) => Ok(()),
            Err(cancelled) if cancelled.condition_failed(item) && !cancelled.item_existed(item) => {
                Err(StoreError::NotFound)
            }
            Err(_) => Err(StoreError::VersionMismatch),
        }
    }
}
