//! Catalogue use cases on in-memory adapters.

mod support;

use std::time::Duration;

use app::read_cache::ReadCache;
use domain::{Role, User};
use framework::http::{ApiError, ApiResponse};
use http::{Method, StatusCode};
use in_memory::Memory;
use serde_json::json;
use support::{body, header, id, product, request, user, with_header, with_path, with_query};

fn draft(sku: &str, stock: i64, active: bool) -> serde_json::Value {
    json!({"sku": sku, "name": "Mug", "description": "Holds tea.", "price": {"amount_minor": 900, "currency": "eur"}, "stock": stock, "active": active})
}

/// POST /products of `body` as `admin`, without an Idempotency-Key.
async fn create(memory: &Memory, admin: &User, body: serde_json::Value) -> Result<ApiResponse, ApiError> {
    app::catalogue::create(request(Method::POST, Some(admin), Some(body)), &memory.products(), &memory.idempotency())
        .await
        .map_err(ApiError::from)
}

#[tokio::test]
async fn replacing_needs_the_current_version_and_moves_the_sku_and_the_listings() {
    let memory = Memory::new();
    let admin = user(&memory, Role::Admin).await;
    let created = create(&memory, &admin, draft("mug-1", 5, true)).await.unwrap();
    assert_eq!((created.status, header(&created, "etag")), (StatusCode::CREATED, Some("\"1\"")));
    let product_id = id(&created);
    let replace = |if_match: Option<&str>, body| {
        let request = with_path(request(Method::PUT, Some(&admin), Some(body)), &product_id);
        match if_match {
            Some(tag) => with_header(request, "if-match", tag),
            None => request,
        }
    };
    let missing = app::catalogue::replace(replace(None, draft("mug-2", 5, true)), &memory.products())
        .await
        .map_err(ApiError::from)
        .unwrap_err();
    assert_eq!(missing.status(), StatusCode::PRECONDITION_REQUIRED);
    let stale = app::catalogue::replace(replace(Some("\"7\""), draft("mug-2", 5, true)), &memory.products())
        .await
        .map_err(ApiError::from)
        .unwrap_err();
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    let retired =
        app::catalogue::replace(replace(Some("*"), draft("mug-2", 5, false)), &memory.products()).await.unwrap();
    assert_eq!((body(&retired)["sku"].as_str(), body(&retired)["version"].as_u64()), (Some("MUG-2"), Some(2)));

    // The old SKU is free again; the product left the active listing.
    create(&memory, &admin, draft("mug-1", 1, true)).await.unwrap();
    let taken = create(&memory, &admin, draft("mug-2", 1, true)).await.unwrap_err();
    assert_eq!(taken.code(), "sku_taken");
    let guest = app::catalogue::get(
        with_path(request(Method::GET, None, None), &product_id),
        &memory.products(),
        &ReadCache::new(Duration::ZERO),
    )
    .await
    .map_err(ApiError::from)
    .unwrap_err();
    assert_eq!(guest.status(), StatusCode::NOT_FOUND, "inactive products exist only for admins");
    let inactive = with_query(request(Method::GET, Some(&admin), None), "active", "false");
    let listed =
        app::catalogue::list(inactive, &memory.products(), &support::cursors(), &ReadCache::new(Duration::ZERO))
            .await
            .unwrap();
    assert_eq!(body(&listed)["pagination"]["total"], 1);
}

/// Regression: an admin whose 201 was lost and who retried with its key got
/// 409 `sku_taken` instead of the 201; another body under the key is refused.
#[tokio::test]
async fn a_product_created_again_with_its_key_is_created_once() {
    let memory = Memory::new();
    let admin = user(&memory, Role::Admin).await;
    let (products, keys) = (memory.products(), memory.idempotency());
    let create = |body| {
        let request = with_header(request(Method::POST, Some(&admin), Some(body)), "idempotency-key", "new-mug");
        app::catalogue::create(request, &products, &keys)
    };
    let first = create(draft("mug-7", 3, true)).await.unwrap();
    let retry = create(draft("mug-7", 3, true)).await.unwrap();
    assert_eq!((retry.status, body(&retry)), (StatusCode::CREATED, body(&first)));
    assert_eq!(header(&retry, "location"), header(&first, "location"));
    assert_eq!(
        create(draft("mug-8", 3, true)).await.map_err(ApiError::from).unwrap_err().status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let listed = app::catalogue::list(
        request(Method::GET, None, None),
        &memory.products(),
        &support::cursors(),
        &ReadCache::new(Duration::ZERO),
    )
    .await
    .unwrap();
    assert_eq!(body(&listed)["pagination"]["total"], 1);
}

#[tokio::test]
async fn deleting_checks_an_if_match_when_given_and_frees_the_sku() {
    let memory = Memory::new();
    let admin = user(&memory, Role::Admin).await;
    let mug = product(&memory, 100, 1).await;
    let delete = |if_match: Option<&str>| {
        let request = with_path(request(Method::DELETE, Some(&admin), None), mug.id);
        match if_match {
            Some(tag) => with_header(request, "if-match", tag),
            None => request,
        }
    };
    assert_eq!(
        app::catalogue::delete(delete(Some("\"9\"")), &memory.products())
            .await
            .map_err(ApiError::from)
            .unwrap_err()
            .status(),
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(app::catalogue::delete(delete(None), &memory.products()).await.unwrap().status, StatusCode::NO_CONTENT);
    assert_eq!(
        app::catalogue::delete(delete(None), &memory.products()).await.map_err(ApiError::from).unwrap_err().status(),
        StatusCode::NOT_FOUND
    );
    assert!(memory.product(mug.id).is_none());
}

#[tokio::test]
async fn bad_drafts_name_every_bad_field_and_create_nothing() {
    let memory = Memory::new();
    let admin = user(&memory, Role::Admin).await;
    let bad = json!({"sku": "x", "name": "\u{7}", "price": {"amount_minor": 10_000_000_001_i64, "currency": "euro"}, "stock": 1_000_001});
    let error = create(&memory, &admin, bad).await.unwrap_err();
    assert_eq!(error.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<String> = error.envelope("r")["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fields, ["sku", "name", "currency", "stock"]);
    let listed = app::catalogue::list(
        request(Method::GET, None, None),
        &memory.products(),
        &support::cursors(),
        &ReadCache::new(Duration::ZERO),
    )
    .await
    .unwrap();
    assert_eq!(body(&listed)["pagination"]["total"], 0);
}

/// Orders reserve stock between the admin's read and write: the admin read
/// version 1 while the table is at version 2 with fewer units.
struct ReservedBehindTheAdmin {
    inner: in_memory::MemoryProductStore,
    memory: Memory,
    order: std::sync::Mutex<Option<domain::OrderId>>,
}

#[async_trait::async_trait]
impl domain::ports::ProductStore for ReservedBehindTheAdmin {
    async fn create(
        &self,
        product: &domain::Product,
        idempotency: Option<&domain::IdempotencyRecord>,
    ) -> Result<(), domain::ports::StoreError> {
        self.inner.create(product, idempotency).await
    }
    async fn get(&self, id: domain::ProductId) -> Result<Option<domain::Product>, domain::ports::StoreError> {
        let read = self.inner.get(id).await?;
        let pending = self.order.lock().unwrap().take();
        if let Some(order_id) = pending {
            let notify = |order: &domain::Order| {
                domain::DomainEvent::order_placed(
                    order.id,
                    order.owner.expect("placed by an account"),
                    "test",
                    order.updated_at,
                )
            };
            domain::ports::OrderStore::reserve(&self.memory.orders(), order_id, &notify).await?;
        }
        Ok(read)
    }
    async fn get_many(&self, ids: &[domain::ProductId]) -> Result<Vec<domain::Product>, domain::ports::StoreError> {
        self.inner.get_many(ids).await
    }
    async fn list(
        &self,
        active: bool,
        page: &domain::PageRequest,
    ) -> Result<domain::Page<domain::Product>, domain::ports::StoreError> {
        self.inner.list(active, page).await
    }
    async fn replace(
        &self,
        previous: &domain::Product,
        next: &domain::Product,
    ) -> Result<(), domain::ports::StoreError> {
        self.inner.replace(previous, next).await
    }
    async fn delete(&self, product: &domain::Product) -> Result<(), domain::ports::StoreError> {
        self.inner.delete(product).await
    }
}

/// Regression: `PUT` with `If-Match: *` wrote the body's absolute stock and,
/// when an order's reservation moved the version between its read and its
/// write, read again and wrote the same number on top: the reserved units
/// came back and the shop could confirm orders for stock it did not have.
/// Stock is a quantity orders move; an unpinned edit may keep it, never set it.
#[tokio::test]
async fn an_edit_with_if_match_star_never_undoes_a_reservation() {
    let memory = Memory::new();
    let (admin, buyer) = (user(&memory, Role::Admin).await, user(&memory, Role::User).await);
    let mug = product(&memory, 100, 5).await;
    let order = json!({"lines": [{"product_id": mug.id.to_string(), "quantity": 2}]});
    let placed = app::orders::place(
        with_header(request(Method::POST, Some(&buyer), Some(order)), "idempotency-key", "mug-order"),
        &memory.users(),
        &memory.products(),
        &memory.orders(),
        &memory.idempotency(),
        &memory.publisher(),
    )
    .await
    .unwrap();
    let products = ReservedBehindTheAdmin {
        inner: memory.products(),
        memory: memory.clone(),
        order: std::sync::Mutex::new(Some(domain::OrderId::parse(&id(&placed)).unwrap())),
    };
    let edit = |stock: i64, if_match: &str| {
        let mut body = draft("mug-9", stock, true);
        body["sku"] = json!(mug.sku.to_string());
        with_header(with_path(request(Method::PUT, Some(&admin), Some(body)), mug.id), "if-match", if_match)
    };

    let refused = app::catalogue::replace(edit(5, "*"), &products).await.map_err(ApiError::from).unwrap_err();
    assert_eq!((refused.status(), refused.code()), (StatusCode::CONFLICT, "stock_needs_version"));
    assert_eq!(memory.product(mug.id).unwrap().stock, 3, "the two reserved units stay reserved");

    // Keeping the current stock needs no version; setting it needs the one read.
    let renamed = app::catalogue::replace(edit(3, "*"), &memory.products()).await.unwrap();
    assert_eq!((body(&renamed)["stock"].as_u64(), body(&renamed)["name"].as_str()), (Some(3), Some("Mug")));
    let version = format!("\"{}\"", body(&renamed)["version"]);
    let restocked = app::catalogue::replace(edit(10, &version), &memory.products()).await.unwrap();
    assert_eq!(body(&restocked)["stock"].as_u64(), Some(10));
}
