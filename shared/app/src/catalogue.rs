//! The catalogue: GET /products, GET /products/{id} (anyone), and POST,
//! PUT, DELETE /products (admins).

use crate::error::AppError;
use domain::ports::ProductStore;
use domain::{Page, PageLimit, PageRequest, ProductDraft, ProductId};
use framework::http::{ApiError, ApiRequest, ApiResponse, IfMatch};
use framework::idempotency::{Idempotency, IdempotencyStore};
use framework::pagination::Cursors;
use serde::Deserialize;
use time::OffsetDateTime;

use crate::current_version::on_the_current_version;
use crate::paging::Paging as _;
use crate::read_cache::ReadCache;
use crate::views::ProductView;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceBody {
    #[serde(deserialize_with = "crate::input::whole_number")]
    amount_minor: i64,
    currency: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductBody {
    sku: String,
    name: String,
    description: Option<String>,
    price: PriceBody,
    #[serde(deserialize_with = "crate::input::whole_number")]
    stock: i64,
    active: Option<bool>,
}

impl ProductBody {
    fn into_draft(self) -> Result<ProductDraft, AppError> {
        Ok(ProductDraft::parse(
            &self.sku,
            &self.name,
            self.description.as_deref(),
            self.price.amount_minor,
            &self.price.currency,
            self.stock,
            self.active,
        )?)
    }
}

fn is_admin(request: &ApiRequest) -> bool {
    request.principal.as_ref().is_some_and(framework::auth::Principal::is_admin)
}

/// A product id from the path; one that cannot exist is simply not found.
fn product_id(request: &ApiRequest) -> Result<ProductId, AppError> {
    ProductId::parse(request.path_param("id")?).map_err(|_| ApiError::NotFound.into())
}

fn sku_taken(error: domain::ports::StoreError) -> AppError {
    match error {
        domain::ports::StoreError::AlreadyExists(domain::ports::Taken::Sku) => AppError::SkuTaken,
        other => other.into(),
    }
}

/// GET /products: active products, newest first, in pages; `?active=false`
/// lists inactive ones, for admins only (403 for anyone else). Anyone but
/// an admin gets a first page of active products from `cache` when it has
/// one young enough.
pub async fn list(
    request: ApiRequest,
    products: &impl ProductStore,
    cursors: &Cursors,
    cache: &ReadCache,
) -> Result<ApiResponse, AppError> {
    let active = match request.query("active") {
        None | Some("true") => true,
        Some("false") if is_admin(&request) => false,
        Some("false") => return Err(ApiError::Forbidden.into()),
        Some(_) => return Err(domain::ValidationError::field("active", "must be true or false").into()),
    };
    let page_request = cursors.page_request(&request, scope(active)).await?;
    if active && page_request.after.is_none() && !is_admin(&request) {
        return cache.first_page(page_request.limit.get(), page(products, cursors, true, &page_request)).await;
    }
    page(products, cursors, active, &page_request).await
}

/// The cursor scope of the active (or inactive) listing: a cursor of one
/// never opens the other.
fn scope(active: bool) -> &'static str {
    if active { "products:active" } else { "products:inactive" }
}

/// One page of the active (or inactive) products, as the answer's body.
async fn page(
    products: &impl ProductStore,
    cursors: &Cursors,
    active: bool,
    request: &PageRequest,
) -> Result<ApiResponse, AppError> {
    let page = products.list(active, request).await?;
    answer(cursors, page, active, request.limit).await
}

/// The answer of a page read, its next position sealed into a cursor.
async fn answer(
    cursors: &Cursors,
    page: Page<domain::Product>,
    active: bool,
    limit: PageLimit,
) -> Result<ApiResponse, AppError> {
    let body = cursors.paginated(page, limit, scope(active), |p| ProductView::from(p)).await?;
    Ok(ApiResponse::ok(body))
}

/// Reads the catalogue's first page at the default size into `cache`: a
/// listing function's warm-up, run during init beside the other reads, so
/// the guest whose request started the container (most ask for the first
/// page) is answered from the cache. Nothing when the cache is off; a
/// failure is logged, and the first request reads the table itself.
///
/// The cursor key is read by its own warm-up at the same time: the page is
/// sealed only once that read has succeeded, and never reads the key again
/// (with Secrets Manager down, init waits for one failed read, not two).
pub async fn prefetch_first_page(products: &impl ProductStore, cursors: &Cursors, cache: &ReadCache) {
    if cache.ttl().is_zero() {
        return;
    }
    let request = PageRequest { limit: PageLimit::DEFAULT, after: None };
    let read = async {
        let page = products.list(true, &request).await?;
        if !cursors.key_has_been_read().await {
            return Err(AppError::from(ApiError::Unavailable(anyhow::anyhow!("the cursor key could not be read"))));
        }
        answer(cursors, page, true, request.limit).await
    };
    if let Err(error) = cache.first_page(request.limit.get(), read).await {
        tracing::warn!(
            error = framework::telemetry::chain(&error),
            "could not read the catalogue's first page during init"
        );
    }
}

/// GET /products/{id}, with its ETag; an inactive product is 404 to all but
/// admins. Anyone but an admin may get it from `cache`; an admin, who edits
/// with the version read, always gets the table's.
pub async fn get(
    request: ApiRequest,
    products: &impl ProductStore,
    cache: &ReadCache,
) -> Result<ApiResponse, AppError> {
    let id = product_id(&request)?;
    let product = if is_admin(&request) {
        products.get(id).await?.map(std::sync::Arc::new)
    } else {
        cache.product(id, products.get(id)).await?
    };
    let product = product.ok_or(ApiError::NotFound)?;
    let product = product.as_ref();
    // Inactive products exist only for admins.
    if !product.active && !is_admin(&request) {
        return Err(ApiError::NotFound.into());
    }
    Ok(ApiResponse::ok(ProductView::from(product)).etag(product.version))
}

/// POST /products (admin): creates a product at version 1; 409 `sku_taken`
/// if another product has the SKU. With an `Idempotency-Key`, a retry after a
/// lost response gets its 201, not the 409.
pub async fn create(
    request: ApiRequest,
    products: &impl ProductStore,
    keys: &impl IdempotencyStore,
) -> Result<ApiResponse, AppError> {
    Idempotency::new("products:create", keys)
        .run(&request, async |key| -> Result<ApiResponse, AppError> {
            let draft = request.json::<ProductBody>()?.into_draft()?;
            let product = draft.into_product(OffsetDateTime::now_utc());
            let location = format!("/api/v1/products/{}", product.id);
            let response = ApiResponse::created(ProductView::from(&product), &location).etag(product.version);
            let record = key.map(|key| crate::idempotency::stored(key.record(&response)));
            request.commit(&response, products.create(&product, record.as_ref())).await.map_err(sku_taken)?;
            tracing::info!(product_id = %product.id, sku = %product.sku, "product created");
            Ok(response)
        })
        .await
        .map_err(AppError::from)
}

/// PUT /products/{id} (admin): replaces every field as the next version.
/// `If-Match` is required; a stale one (or a concurrent change to a pinned
/// version) is 412; `*` replaces whatever version is current, but may not
/// change the stock: orders move it between any read and write, so only an
/// edit pinned to the version it read (whose stock it saw) may set it, and
/// a reservation is never undone.
pub async fn replace(request: ApiRequest, products: &impl ProductStore) -> Result<ApiResponse, AppError> {
    let id = product_id(&request)?;
    let draft = request.json::<ProductBody>()?.into_draft()?;
    let precondition = &request.if_match()?;
    let draft = &draft;
    on_the_current_version(Some(precondition), || async move {
        let current = products.get(id).await?.ok_or(ApiError::NotFound)?;
        if !precondition.matches(current.version) {
            return Err(ApiError::PreconditionFailed.into());
        }
        if *precondition == IfMatch::Any && draft.stock != current.stock {
            return Err(AppError::StockNeedsVersion { stock: current.stock });
        }
        let next = current.replaced(draft.clone(), OffsetDateTime::now_utc());
        products.replace(&current, &next).await.map_err(sku_taken)?;
        tracing::info!(product_id = %id, version = next.version, "product replaced");
        Ok(ApiResponse::ok(ProductView::from(&next)).etag(next.version))
    })
    .await
}

/// DELETE /products/{id} (admin): removes the product; orders keep their
/// copy of it. `If-Match` is optional; when present it must match. Without
/// it (or with `*`), stock moved by orders meanwhile does not refuse it.
pub async fn delete(request: ApiRequest, products: &impl ProductStore) -> Result<ApiResponse, AppError> {
    let id = product_id(&request)?;
    let precondition = request.optional_if_match();
    let precondition = precondition.as_ref();
    on_the_current_version(precondition, || async move {
        let current = products.get(id).await?.ok_or(ApiError::NotFound)?;
        if precondition.is_some_and(|precondition| !precondition.matches(current.version)) {
            return Err(ApiError::PreconditionFailed.into());
        }
        products.delete(&current).await?;
        tracing::info!(product_id = %id, "product deleted");
        Ok(ApiResponse::no_content())
    })
    .await
}
