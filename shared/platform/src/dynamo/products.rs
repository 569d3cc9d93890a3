//! The catalogue on the table: products, their SKU claims and listings.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use domain::ports::{ProductStore, StoreError, Taken};
use domain::{Currency, Money, Page, PageRequest, Product, ProductId, Sku};

use super::items::{Item, get_bool, get_s, get_timestamp, get_u64, n, parsed, s, timestamp};
use super::listing::Listing;
use super::{Table, classify, records};

const PRODUCT_SK: &str = "PRODUCT";
const SKU_SK: &str = "SKU";

pub(crate) fn product_pk(id: ProductId) -> String {
    format!("PRODUCT#{id}")
}

fn sku_pk(sku: &Sku) -> String {
    format!("SKU#{sku}")
}

fn listing_partition(active: bool) -> &'static str {
    if active { "PRODUCTS#active" } else { "PRODUCTS#inactive" }
}

fn counter_name(active: bool) -> &'static str {
    if active { "products#active" } else { "products#inactive" }
}

/// The catalogue on the shared table: a product item plus a SKU claim item
/// that makes SKUs unique; active and inactive products list separately.
#[derive(Clone, Debug)]
pub struct DynamoProductStore {
    table: Table,
}

impl DynamoProductStore {
    pub fn new(table: Table) -> Self {
        Self { table }
    }

    fn item(product: &Product) -> Item {
        Item::from([
            ("pk".into(), s(product_pk(product.id))),
            ("sk".into(), s(PRODUCT_SK)),
            ("gsi1pk".into(), s(listing_partition(product.active))),
            ("gsi1sk".into(), s(product.id.to_string())),
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
        ])
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
        let put = Put::builder()
            .table_name(self.table.name())
            .set_item(Some(Item::from([
                ("pk".into(), s(sku_pk(&product.sku))),
                ("sk".into(), s(SKU_SK)),
                ("product_id".into(), s(product.id.to_string())),
            ])))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .expect("table and item are set");
        TransactWriteItem::builder().put(put).build()
    }

    fn release_sku(&self, product: &Product) -> TransactWriteItem {
        let delete = Delete::builder()
            .table_name(self.table.name())
            .key("pk", s(sku_pk(&product.sku)))
            .key("sk", s(SKU_SK))
            .condition_expression("product_id = :id")
            .expression_attribute_values(":id", s(product.id.to_string()))
            .build()
            .expect("table and key are set");
        TransactWriteItem::builder().delete(delete).build()
    }
}

#[async_trait]
impl ProductStore for DynamoProductStore {
    async fn insert(&self, product: &Product) -> Result<(), StoreError> {
        let items = vec![
            self.table.conditional_put(Self::item(product), "attribute_not_exists(pk)", None),
            self.claim_sku(product),
            records::counter(self.table.name(), counter_name(product.active), 1),
        ];
        match self.table.transact(items).await? {
            Ok(()) => Ok(()),
            Err(cancelled) if cancelled.condition_failed(1) => Err(StoreError::AlreadyExists(Taken::Sku)),
            Err(_) => Err(StoreError::Failed("product insert cancelled for an unknown reason".into())),
        }
    }

    async fn get(&self, id: ProductId) -> Result<Option<Product>, StoreError> {
        self.table.get(product_pk(id), PRODUCT_SK).await?.as_ref().map(Self::from_item).transpose()
    }

    async fn get_many(&self, ids: &[ProductId]) -> Result<Vec<Product>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<Item> = ids
            .iter()
            .map(|id| Item::from([("pk".into(), s(product_pk(*id))), ("sk".into(), s(PRODUCT_SK))]))
            .collect();
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
                    tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
                }
                _ => return Ok(products),
            }
        }
        Err(StoreError::Unavailable("BatchGetItem left keys unprocessed".into()))
    }

    async fn list(&self, active: bool, page: &PageRequest) -> Result<Page<Product>, StoreError> {
        let listing = Listing {
            index: "gsi1",
            partition_attribute: "gsi1pk",
            sort_attribute: "gsi1sk",
            partition: listing_partition(active).into(),
            counter: counter_name(active).into(),
            base_key: |position| ProductId::parse(position).ok().map(|id| (product_pk(id), PRODUCT_SK.to_owned())),
        };
        let raw = self.table.list_page(&listing, page).await?;
        Ok(raw.read(Self::from_item))
    }

    async fn replace(&self, previous: &Product, next: &Product) -> Result<(), StoreError> {
        let mut items =
            vec![self.table.conditional_put(Self::item(next), "version = :expected", Some(previous.version))];
        if previous.sku != next.sku {
            items.push(self.release_sku(previous));
            items.push(self.claim_sku(next));
        }
        if previous.active != next.active {
            items.push(records::counter(self.table.name(), counter_name(previous.active), -1));
            items.push(records::counter(self.table.name(), counter_name(next.active), 1));
        }
        match self.table.transact(items).await? {
            Ok(()) => Ok(()),
            Err(cancelled) if cancelled.condition_failed(0) && !cancelled.item_existed(0) => Err(StoreError::NotFound),
            Err(cancelled) if cancelled.condition_failed(0) => Err(StoreError::VersionMismatch),
            Err(cancelled) if cancelled.condition_failed(2) => Err(StoreError::AlreadyExists(Taken::Sku)),
            Err(_) => Err(StoreError::VersionMismatch),
        }
    }

    async fn delete(&self, product: &Product) -> Result<(), StoreError> {
        let delete = Delete::builder()
            .table_name(self.table.name())
            .key("pk", s(product_pk(product.id)))
            .key("sk", s(PRODUCT_SK))
            .condition_expression("version = :expected")
            .expression_attribute_values(":expected", n(product.version))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .expect("table and key are set");
        let items = vec![
            TransactWriteItem::builder().delete(delete).build(),
            self.release_sku(product),
            records::counter(self.table.name(), counter_name(product.active), -1),
        ];
        match self.table.transact(items).await? {
            Ok(()) => Ok(()),
            Err(cancelled) if cancelled.condition_failed(0) && !cancelled.item_existed(0) => Err(StoreError::NotFound),
            Err(_) => Err(StoreError::VersionMismatch),
        }
    }
}
