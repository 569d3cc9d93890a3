//! The catalogue's read cache on in-memory adapters: what it keeps, for how
//! long (tokio's paused clock moves time), and what never reads it.

mod support;

use std::time::Duration;

use app::read_cache::ReadCache;
use domain::{Product, Role, User};
use framework::http::{ApiError, ApiResponse};
use http::Method;
use in_memory::{Dependency, Memory};
use serde_json::json;
use support::{body, product, request, user, with_header, with_path, with_query};

const TTL: Duration = Duration::from_secs(5);

/// PUT /products/{id} as `admin`: the same product at `price_minor`.
async fn reprice(memory: &Memory, admin: &User, product: &Product, price_minor: i64) {
    let body = json!({"sku": product.sku.to_string(), "name": product.name, "price": {"amount_minor": price_minor, "currency": "EUR"}, "stock": product.stock, "active": true});
    let request = with_path(request(Method::PUT, Some(admin), Some(body)), product.id);
    app::catalogue::replace(with_header(request, "if-match", "*"), &memory.products()).await.unwrap();
}

/// GET /products/{id} as `caller` (a guest with `None`): the price shown.
async fn price_shown(memory: &Memory, cache: &ReadCache, caller: Option<&User>, product: &Product) -> u64 {
    let request = with_path(request(Method::GET, caller, None), product.id);
    let shown = app::catalogue::get(request, &memory.products(), cache).await.unwrap();
    body(&shown)["price"]["amount_minor"].as_u64().unwrap()
}

async fn first_page(memory: &Memory, cache: &ReadCache, caller: Option<&User>) -> Result<ApiResponse, ApiError> {
    app::catalogue::list(request(Method::GET, caller, None), &memory.products(), &support::cursors(), cache)
        .await
        .map_err(ApiError::from)
}

#[tokio::test(start_paused = true)]
async fn a_guest_sees_a_price_change_within_the_ttl_and_an_admin_at_once() {
    let memory = Memory::new();
    let admin = user(&memory, Role::Admin).await;
    let customer = user(&memory, Role::User).await;
    let mug = product(&memory, 900, 10).await;
    let cache = ReadCache::new(TTL);
    assert_eq!(price_shown(&memory, &cache, None, &mug).await, 900);

    reprice(&memory, &admin, &mug, 1200).await;
    assert_eq!(price_shown(&memory, &cache, None, &mug).await, 900, "a guest's read within the TTL is a hit");
    assert_eq!(price_shown(&memory, &cache, Some(&customer), &mug).await, 900, "so is a customer's");
    assert_eq!(price_shown(&memory, &cache, Some(&admin), &mug).await, 1200, "an admin reads the table");

    tokio::time::advance(TTL.saturating_sub(Duration::from_millis(1))).await;
    assert_eq!(price_shown(&memory, &cache, None, &mug).await, 900, "still within the TTL");
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(price_shown(&memory, &cache, None, &mug).await, 1200, "the TTL is the bound");
}

#[tokio::test(start_paused = true)]
async fn a_deleted_product_is_gone_within_the_ttl() {
    let memory = Memory::new();
    let admin = user(&memory, Role::Admin).await;
    let mug = product(&memory, 900, 10).await;
    let cache = ReadCache::new(TTL);
    let products = memory.products();
    let get = || app::catalogue::get(with_path(request(Method::GET, None, None), mug.id), &products, &cache);
    assert!(get().await.is_ok());
    let delete = with_path(request(Method::DELETE, Some(&admin), None), mug.id);
    app::catalogue::delete(delete, &memory.products()).await.unwrap();
    assert!(get().await.is_ok(), "a hit within the TTL");
    tokio::time::advance(TTL).await;
    assert_eq!(get().await.map_err(ApiError::from).unwrap_err().code(), "not_found");
}

#[tokio::test(start_paused = true)]
async fn the_first_page_is_kept_for_the_ttl_and_later_pages_and_admins_read_the_table() {
    let memory = Memory::new();
    let admin = user(&memory, Role::Admin).await;
    product(&memory, 900, 10).await;
    let cache = ReadCache::new(TTL);
    let total = |page: &ApiResponse| body(page)["pagination"]["total"].as_u64().unwrap();
    assert_eq!(total(&first_page(&memory, &cache, None).await.unwrap()), 1);

    product(&memory, 500, 3).await;
    assert_eq!(total(&first_page(&memory, &cache, None).await.unwrap()), 1, "a hit");
    assert_eq!(total(&first_page(&memory, &cache, Some(&admin)).await.unwrap()), 2, "an admin reads the table");
    let other_size = with_query(request(Method::GET, None, None), "limit", "1");
    let other_size = app::catalogue::list(other_size, &memory.products(), &support::cursors(), &cache).await.unwrap();
    assert_eq!(total(&other_size), 2, "each page size is its own entry");

    tokio::time::advance(TTL).await;
    assert_eq!(total(&first_page(&memory, &cache, None).await.unwrap()), 2);
}

/// A listing function's warm-up reads the default first page into the
/// cache during init: the first guest gets exactly what a read would have
/// answered then (the next cursor included), from the cache, the cursor
/// leads on to the rest, and the entry ages from the warm-up.
#[tokio::test(start_paused = true)]
async fn the_prefetched_first_page_is_what_a_read_answers_and_ages_from_init() {
    let memory = Memory::new();
    for _ in 0..21 {
        product(&memory, 900, 10).await;
    }
    let cursors = support::cursors();
    let (warmed, unwarmed) = (ReadCache::new(TTL), ReadCache::new(TTL));
    app::catalogue::prefetch_first_page(&memory.products(), &cursors, &warmed).await;
    let read = first_page(&memory, &unwarmed, None).await.unwrap();

    // A later millisecond: the new product's id is the newest, so it belongs on the first page.
    std::thread::sleep(Duration::from_millis(2));
    product(&memory, 500, 3).await;
    let total = |page: &ApiResponse| body(page)["pagination"]["total"].as_u64().unwrap();
    let served = first_page(&memory, &warmed, None).await.unwrap();
    assert_eq!(total(&served), 21, "served from the cache: the product added since is not there yet");
    assert_eq!(body(&served), body(&read), "the same page, and next cursor, a guest's read got");
    let cursor = body(&served)["pagination"]["next_cursor"].as_str().unwrap().to_owned();
    let next = with_query(request(Method::GET, None, None), "cursor", &cursor);
    let next = app::catalogue::list(next, &memory.products(), &cursors, &warmed).await.unwrap();
    assert_eq!(body(&next)["data"].as_array().unwrap().len(), 1, "the cursor leads on to the oldest product");
    let other_size = with_query(request(Method::GET, None, None), "limit", "1");
    let other_size = app::catalogue::list(other_size, &memory.products(), &cursors, &warmed).await.unwrap();
    assert_eq!(total(&other_size), 22, "only the default page size is prefetched");

    tokio::time::advance(TTL).await;
    assert_eq!(total(&first_page(&memory, &warmed, None).await.unwrap()), 22, "the TTL counts from the warm-up");
}

/// The table down during init: the warm-up keeps nothing (and does not
/// stop the function), and the first guest's request reads the table.
#[tokio::test(start_paused = true)]
async fn a_failed_warm_up_leaves_the_first_request_to_read_the_table() {
    let memory = Memory::new();
    product(&memory, 900, 10).await;
    let cache = ReadCache::new(TTL);
    memory.set_down(Dependency::Table, true);
    app::catalogue::prefetch_first_page(&memory.products(), &support::cursors(), &cache).await;
    memory.set_down(Dependency::Table, false);
    product(&memory, 500, 3).await;
    let page = first_page(&memory, &cache, None).await.unwrap();
    assert_eq!(body(&page)["pagination"]["total"].as_u64(), Some(2), "read from the table");
}

#[tokio::test(start_paused = true)]
async fn a_zero_ttl_keeps_nothing() {
    let memory = Memory::new();
    let admin = user(&memory, Role::Admin).await;
    let mug = product(&memory, 900, 10).await;
    let cache = ReadCache::new(Duration::ZERO);
    assert_eq!(price_shown(&memory, &cache, None, &mug).await, 900);
    reprice(&memory, &admin, &mug, 1200).await;
    assert_eq!(price_shown(&memory, &cache, None, &mug).await, 1200);
}

/// What a guest saw from the cache never prices an order: placing one
/// reads the table (the cache is not a `ProductStore`; this holds it).
#[tokio::test(start_paused = true)]
async fn an_order_is_priced_from_the_table_while_guests_still_see_the_old_price() {
    let memory = Memory::new();
    let admin = user(&memory, Role::Admin).await;
    let buyer = user(&memory, Role::User).await;
    let mug = product(&memory, 900, 10).await;
    let cache = ReadCache::new(TTL);
    assert_eq!(price_shown(&memory, &cache, None, &mug).await, 900);
    reprice(&memory, &admin, &mug, 1200).await;
    assert_eq!(price_shown(&memory, &cache, Some(&buyer), &mug).await, 900);

    let order = json!({"lines": [{"product_id": mug.id.to_string(), "quantity": 2}]});
    let order = with_header(request(Method::POST, Some(&buyer), Some(order)), "idempotency-key", "two-mugs");
    let placed = app::orders::place(
        order,
        &memory.users(),
        &memory.products(),
        &memory.orders(),
        &memory.idempotency(),
        &memory.publisher(),
    )
    .await
    .unwrap();
    assert_eq!(body(&placed)["total"]["amount_minor"], 2400, "{}", body(&placed));
}

#[test]
fn the_ttl_is_read_from_the_environment() {
    let ttl = |value: Option<&str>| ReadCache::from_lookup(|_| value.map(str::to_owned)).map(|cache| cache.ttl());
    assert_eq!(ttl(None).unwrap(), ReadCache::DEFAULT_TTL);
    assert_eq!(ttl(Some("2")).unwrap(), Duration::from_secs(2));
    assert_eq!(ttl(Some("0")).unwrap(), Duration::ZERO);
    assert!(ttl(Some("soon")).is_err());
}
