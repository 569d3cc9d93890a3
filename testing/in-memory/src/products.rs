//! The catalogue: a SKU claim makes SKUs unique; replace and delete are
//! conditional on the version read.

use async_trait::async_trait;
use domain::ports::{ProductStore, StoreError, Taken};
use domain::{IdempotencyRecord, Page, PageRequest, Product, ProductId};

use crate::{Dependency, Memory, paging};

/// The catalogue in the shared state, with a SKU claim per product.
#[derive(Clone)]
pub struct MemoryProductStore {
    memory: Memory,
}

impl MemoryProductStore {
    pub(crate) fn new(memory: Memory) -> Self {
        Self { memory }
    }
}

/// The stored product must still be at `expected`'s version.
fn check_version(stored: Option<&Product>, expected: &Product) -> Result<(), StoreError> {
    match stored {
        None => Err(StoreError::NotFound),
        Some(stored) if stored.version != expected.version => Err(StoreError::VersionMismatch),
        Some(_) => Ok(()),
    }
}

#[async_trait]
impl ProductStore for MemoryProductStore {
    async fn create(&self, product: &Product, idempotency: Option<&IdempotencyRecord>) -> Result<(), StoreError> {
        let mut state = self.memory.lock();
        state.check(Dependency::Table)?;
        state.check_key_free(idempotency)?;
        if state.skus.contains_key(product.sku.as_ref()) {
            return Err(StoreError::AlreadyExists(Taken::Sku));
        }
        if state.products.contains_key(&product.id) {
            return Err(StoreError::AlreadyExists(Taken::Id));
        }
        state.skus.insert(product.sku.to_string(), product.id);
        state.products.insert(product.id, product.clone());
        state.store_key(idempotency);
        Ok(())
    }

    async fn get(&self, id: ProductId) -> Result<Option<Product>, StoreError> {
        let state = self.memory.lock();
        state.check(Dependency::Table)?;
        Ok(state.products.get(&id).cloned())
    }

    async fn get_many(&self, ids: &[ProductId]) -> Result<Vec<Product>, StoreError> {
        let state = self.memory.lock();
        state.check(Dependency::Table)?;
        Ok(ids.iter().filter_map(|id| state.products.get(id).cloned()).collect())
    }

    async fn list(&self, active: bool, page: &PageRequest) -> Result<Page<Product>, StoreError> {
        let state = self.memory.lock();
        state.check(Dependency::Table)?;
        let items =
            state.products.values().filter(|p| p.active == active).map(|p| (p.id.to_string(), p.clone())).collect();
        paging::page(items, page, |position| ProductId::parse(position).is_ok())
    }

    async fn replace(&self, previous: &Product, next: &Product) -> Result<(), StoreError> {
        let mut state = self.memory.lock();
        state.check(Dependency::Table)?;
        check_version(state.products.get(&previous.id), previous)?;
        if previous.sku != next.sku {
            if state.skus.contains_key(next.sku.as_ref()) {
                return Err(StoreError::AlreadyExists(Taken::Sku));
            }
            state.skus.remove(previous.sku.as_ref());
            state.skus.insert(next.sku.to_string(), next.id);
        }
        state.products.insert(next.id, next.clone());
        Ok(())
    }

    async fn delete(&self, product: &Product) -> Result<(), StoreError> {
        let mut state = self.memory.lock();
        state.check(Dependency::Table)?;
        check_version(state.products.get(&product.id), product)?;
        state.products.remove(&product.id);
        state.skus.remove(product.sku.as_ref());
        Ok(())
    }
}
