//! HTTP caching from outside: validators (`ETag`, `If-None-Match` -> 304),
//! `Cache-Control` and `Vary` per kind of answer, and how soon a change to
//! a product shows through the catalogue's read cache (the test stack sets
//! its TTL short, `CATALOGUE_CACHE_TTL_SECONDS`).

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::catalogue::{create_product, product_body, unique_sku};
use crate::helpers::{PASSWORD, TestApp, app, env};

/// GET `path` as `token` (a guest with `None`), sending `If-None-Match: tag` when given.
async fn get(app: &TestApp, path: &str, token: Option<&str>, tag: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(tag) = tag {
        request = request.header("if-none-match", tag);
    }
    request.send().await.expect("the API answers")
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response.headers().get(name).map_or("", |value| value.to_str().unwrap())
}

/// Sends `path`'s ETag back: a 304 with no body and the first answer's
/// `ETag`, `Cache-Control` and `Vary`. A 200 with another tag means the
/// answer changed in between (other tests add products to the shared
/// catalogue): the pair is tried again, a few times.
async fn assert_revalidates(app: &TestApp, path: &str, token: Option<&str>) {
    for _ in 0..3 {
        let first = get(app, path, token, None).await;
        assert_eq!(first.status(), StatusCode::OK, "{path}");
        let tag = header(&first, "etag").to_owned();
        assert!(!tag.is_empty(), "{path}: no ETag");
        let again = get(app, path, token, Some(&tag)).await;
        if again.status() == StatusCode::OK && header(&again, "etag") != tag {
            continue;
        }
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
        for name in ["etag", "cache-control", "vary"] {
            assert_eq!(header(&again, name), header(&first, name), "{path}: {name}");
        }
        assert!(again.bytes().await.unwrap().is_empty(), "{path}: a 304 has no body");
        return;
    }
    panic!("{path} changed between every pair of requests");
}

#[tokio::test]
async fn the_public_catalogue_is_public_and_a_known_etag_is_a_304_with_no_body() {
    let app = app();
    let admin = app.new_admin("etags").await;
    let product = create_product(&app, &admin.token, product_body(&unique_sku("etag"), 1000, "EUR", 4)).await;
    let path = format!("/products/{}", product["id"].as_str().unwrap());

    let shown = get(&app, &path, None, None).await;
    assert_eq!(header(&shown, "etag"), "\"1\"", "an item's tag is its version");
    let max_age = env("CACHE_MAX_AGE_SECONDS");
    let stale = env("CACHE_STALE_WHILE_REVALIDATE_SECONDS");
    assert_eq!(header(&shown, "cache-control"), format!("public, max-age={max_age}, stale-while-revalidate={stale}"));
    assert_eq!(header(&shown, "vary"), "Origin, Accept-Encoding, Authorization");
    assert_revalidates(&app, &path, None).await;

    let listing = get(&app, "/products?limit=3", None, None).await;
    assert!(header(&listing, "cache-control").starts_with("public, "));
    let tag = header(&listing, "etag");
    assert!(tag.len() == 24 && tag.starts_with('"'), "a listing's tag is its body's hash: {tag}");
    assert_revalidates(&app, "/products?limit=3", None).await;

    // What a token produced is never shared.
    let as_admin = get(&app, &path, Some(&admin.token), None).await;
    assert_eq!((as_admin.status(), header(&as_admin, "cache-control")), (StatusCode::OK, "private, no-cache"));
    assert_revalidates(&app, &path, Some(&admin.token)).await;
}

#[tokio::test]
async fn personal_answers_are_private_and_errors_and_auth_are_never_stored() {
    let app = app();
    let customer = app.new_user("private").await;
    for path in ["/users/me", "/orders?limit=5", "/users/me/export"] {
        let mine = get(&app, path, Some(&customer.token), None).await;
        assert_eq!(header(&mine, "cache-control"), "private, no-cache", "{path}");
        assert!(header(&mine, "vary").contains("Authorization"), "{path}");
        assert!(!header(&mine, "etag").is_empty(), "{path}");
    }
    // The export names the moment it was made, so each is a new representation.
    assert_revalidates(&app, "/users/me", Some(&customer.token)).await;
    assert_revalidates(&app, "/orders?limit=5", Some(&customer.token)).await;

    let refused = get(&app, "/users/me", None, None).await;
    // A product id no product has.
    let unknown = format!("/products/{}", ulid::Ulid::new());
    let missing = get(&app, &unknown, None, None).await;
    let health = get(&app, "/health", None, None).await;
    let login = app.login(&customer.email, PASSWORD).await;
    for (what, response) in [("401", refused), ("404", missing), ("health", health), ("login", login)] {
        assert_eq!(header(&response, "cache-control"), "no-store", "{what}");
        assert!(header(&response, "etag").is_empty(), "{what}: nothing to revalidate");
    }
    let known_tag_of_nothing = get(&app, &unknown, None, Some("*")).await;
    assert_eq!(known_tag_of_nothing.status(), StatusCode::NOT_FOUND, "an error is never a 304");
}

/// A change shows to a guest within the read cache's TTL, whether the guest
/// revalidates (`If-None-Match` with the old tag: 304 until the new version,
/// then 200) or not. The HTTP caches' `max-age` adds to this bound for a
/// client that keeps answers; this one keeps none.
#[tokio::test]
async fn a_changed_price_shows_within_the_bound_with_and_without_validators() {
    let app = app();
    let admin = app.new_admin("fresh").await;
    let sku = unique_sku("fresh");
    let product = create_product(&app, &admin.token, product_body(&sku, 1000, "EUR", 4)).await;
    let path = format!("/products/{}", product["id"].as_str().unwrap());
    let ttl = Duration::from_secs(env("CATALOGUE_CACHE_TTL_SECONDS").parse().unwrap());
    let old = get(&app, &path, None, None).await;
    let cached_at = Instant::now();
    assert_eq!(header(&old, "etag"), "\"1\"");

    let changed = app
        .client
        .request(Method::PUT, app.url(&path))
        .bearer_auth(&admin.token)
        .header("if-match", "\"1\"")
        .json(&product_body(&sku, 1500, "EUR", 4))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    let changed_at = Instant::now();

    let (mut plain, mut validated, mut stale_seen) = (None, None, false);
    while plain.is_none() || validated.is_none() {
        assert!(changed_at.elapsed() < ttl + Duration::from_secs(5), "no new version after {:?}", changed_at.elapsed());
        if plain.is_none() {
            let shown: Value = get(&app, &path, None, None).await.json().await.unwrap();
            match shown["price"]["amount_minor"].as_u64() {
                Some(1500) => plain = Some(changed_at.elapsed()),
                Some(1000) => stale_seen = true,
                other => panic!("unexpected price {other:?}: {shown}"),
            }
        }
        if validated.is_none() {
            let answer = get(&app, &path, None, Some("\"1\"")).await;
            match answer.status() {
                StatusCode::NOT_MODIFIED => stale_seen = true,
                StatusCode::OK => {
                    assert_eq!(header(&answer, "etag"), "\"2\"");
                    let shown: Value = answer.json().await.unwrap();
                    assert_eq!(shown["price"], json!({"amount_minor": 1500, "currency": "EUR"}));
                    validated = Some(changed_at.elapsed());
                }
                other => panic!("unexpected {other}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let bound = ttl + Duration::from_secs(1);
    let (plain, validated) = (plain.unwrap(), validated.unwrap());
    assert!(plain <= bound && validated <= bound, "plain {plain:?}, validated {validated:?}, bound {bound:?}");
    // The guest's read just before the change was cached: the old version
    // is still answered for a moment (the read cache is on), unless the
    // change itself took most of the TTL (a loaded machine), when the first
    // read after it may already be past the cached entry's life.
    let change_took = changed_at.duration_since(cached_at);
    if change_took + Duration::from_millis(500) < ttl {
        assert!(stale_seen, "the read cache answered nothing from before the change (it took {change_took:?})");
    }
}
