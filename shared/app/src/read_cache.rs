//! The catalogue's read cache: a bounded, in-memory cache per container
//! (`moka`) of what guests read most, products by id and the first pages of
//! the catalogue, each kept for a few seconds. A price or stock change shows
//! in the function's answers within that time ([`ReadCache::ttl`]); the HTTP
//! caches in front add their own `max-age` (docs/architecture.md, Caching
//! Strategy).
//!
//! Invariant: only the catalogue's guest reads use it. It is not a
//! `ProductStore` and cannot be handed to a write: placing an order, a
//! reservation and every admin edit read the table, strongly consistent.

use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use domain::ProductId;
use domain::ports::StoreError;
use framework::http::ApiResponse;
use tokio::time::Instant;

/// How many products one container keeps (about half a kilobyte each).
const PRODUCTS: u64 = 2_000;
/// How many first pages one container keeps: one per page size asked for
/// (up to 100 products, about 40 KB each).
const FIRST_PAGES: u64 = 16;

/// Products by id (a missing one too, so a deleted product's 404 is as
/// fresh as any answer) and the catalogue's first pages by page size, each
/// for [`ReadCache::ttl`] after it was read from the table.
pub struct ReadCache {
    ttl: Duration,
    products: Option<Entries<ProductId, Option<Arc<domain::Product>>>>,
    first_pages: Option<Entries<u16, ApiResponse>>,
}

impl ReadCache {
    /// Keeps what it reads for `ttl`; a zero `ttl` keeps nothing (every read
    /// goes to the table).
    pub fn new(ttl: Duration) -> Self {
        let enabled = !ttl.is_zero();
        Self {
            ttl,
            products: enabled.then(|| Entries::new(PRODUCTS, ttl)),
            first_pages: enabled.then(|| Entries::new(FIRST_PAGES, ttl)),
        }
    }

    /// Reads `CATALOGUE_CACHE_TTL_SECONDS` (whole seconds; 0 turns the cache
    /// off) through `lookup`; 5 seconds when it is not set.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let seconds = match lookup("CATALOGUE_CACHE_TTL_SECONDS") {
            None => Self::DEFAULT_TTL.as_secs(),
            Some(raw) => raw
                .parse()
                .map_err(|_| anyhow::anyhow!("CATALOGUE_CACHE_TTL_SECONDS must be a whole number of seconds"))?,
        };
        Ok(Self::new(Duration::from_secs(seconds)))
    }

    /// [`ReadCache::from_lookup`] on the process environment.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// How long an answer is kept by default.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(5);

    /// The longest the function answers with what it read before a change.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The product `id` as `read` gives it, or as it gave it less than
    /// [`ReadCache::ttl`] ago.
    pub(crate) async fn product<F>(&self, id: ProductId, read: F) -> Result<Option<Arc<domain::Product>>, StoreError>
    where
        F: Future<Output = Result<Option<domain::Product>, StoreError>>,
    {
        let Some(products) = &self.products else { return Ok(read.await?.map(Arc::new)) };
        if let Some(product) = products.get(&id) {
            return Ok(product);
        }
        let product = read.await?.map(Arc::new);
        products.insert(id, product.clone());
        Ok(product)
    }

    /// The catalogue's first page of `limit` products as `read` answers it,
    /// or as it answered less than [`ReadCache::ttl`] ago.
    pub(crate) async fn first_page<F, E>(&self, limit: u16, read: F) -> Result<ApiResponse, E>
    where
        F: Future<Output = Result<ApiResponse, E>>,
    {
        let Some(pages) = &self.first_pages else { return read.await };
        if let Some(page) = pages.get(&limit) {
            return Ok(page);
        }
        let page = read.await?;
        pages.insert(limit, page.clone());
        Ok(page)
    }
}

/// A bounded cache whose entries expire `ttl` after they were stored, by
/// tokio's clock (which tests can move); moka's own expiry, by the real
/// clock, only frees the memory.
struct Entries<K, V> {
    ttl: Duration,
    cache: moka::sync::Cache<K, (Instant, V)>,
}

impl<K, V> Entries<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn new(capacity: u64, ttl: Duration) -> Self {
        Self { ttl, cache: moka::sync::Cache::builder().max_capacity(capacity).time_to_live(ttl).build() }
    }

    fn get(&self, key: &K) -> Option<V> {
        let (stored, value) = self.cache.get(key)?;
        (stored.elapsed() < self.ttl).then_some(value)
    }

    fn insert(&self, key: K, value: V) {
        self.cache.insert(key, (Instant::now(), value));
    }
}
