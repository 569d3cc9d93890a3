//! Secrets Manager unreachable or slow at a cold start, and unreachable while keys refresh.

use std::time::Duration;

use local_cloud::faults::Fault;

use crate::harness::{TIMEOUT, proxy, sample_event, start, start_logging, status_and_headers, with_token};
use crate::helpers::app;

#[tokio::test]
async fn a_cold_start_without_the_secret_says_so_answers_503_and_recovers_without_a_restart() {
    let app = app();
    let user = app.new_user("no-secret").await;
    let secrets = proxy("AWS_ENDPOINT_URL_SECRETS_MANAGER").await;
    secrets.set(Fault::ServerError);
    let log = std::env::temp_dir().join(format!("no-secret-{}.log", ulid::Ulid::new()));
    let mut function =
        start_logging("get-current-user", &[("AWS_ENDPOINT_URL_SECRETS_MANAGER", secrets.url())], Some(log.clone()))
            .await;
    function.ready(Duration::from_secs(30)).await.unwrap();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("could not read public keys"), "a clear error at start: {logged}");

    let event = with_token(sample_event("get-current-user"), &user.token);
    let down = function.invoke(&event, TIMEOUT * 2).await.unwrap();
    let (status, headers) = status_and_headers(&down.payload);
    assert_eq!(status, 503, "{}", down.payload);
    assert!(headers.contains_key("retry-after"));

    secrets.set(Fault::Pass);
    let back = function.invoke(&event, TIMEOUT * 2).await.unwrap();
    assert_eq!(status_and_headers(&back.payload).0, 200, "recovered without a restart: {}", back.payload);
    let _ = std::fs::remove_file(log);
}

/// Init's reads run at once: with the table and Secrets Manager each
/// answering 3 s late, a function that reads both during init (the table's
/// warm-up read, the public keys) is ready after one delay, not two, and its
/// first request finds the keys already cached.
#[tokio::test]
async fn a_cold_start_waits_for_its_slowest_init_read_not_for_their_sum() {
    let app = app();
    let user = app.new_user("slow-init").await;
    let table = proxy("AWS_ENDPOINT_URL_DYNAMODB").await;
    let secrets = proxy("AWS_ENDPOINT_URL_SECRETS_MANAGER").await;
    table.set(Fault::Delay { millis: 3000 });
    secrets.set(Fault::Delay { millis: 3000 });
    let mut function = start(
        "get-current-user",
        &[
            ("AWS_ENDPOINT_URL_DYNAMODB", table.url()),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", secrets.url()),
            // Calls may take 9 s: no attempt times out and is sent again.
            ("FUNCTION_TIMEOUT_SECONDS", "30".to_owned()),
        ],
    )
    .await;
    let init = function.ready(Duration::from_secs(30)).await.unwrap();
    assert_eq!((table.requests(), secrets.requests()), (1, 1), "one read of each during init");
    assert!(init >= Duration::from_secs(3), "ready only once its reads were done: {init:?}");
    // One after the other they take 6 s; the rest of a debug build's start takes well under 2 s.
    assert!(init < Duration::from_secs(5), "the two 3 s reads ran at once: {init:?}");

    table.set(Fault::Pass);
    let event = with_token(sample_event("get-current-user"), &user.token);
    assert_eq!(status_and_headers(&function.invoke(&event, TIMEOUT).await.unwrap().payload).0, 200);
    assert_eq!(secrets.requests(), 1, "the first request found the keys cached");
}

/// list-products reads the catalogue's first page during init, and seals its
/// next cursor with the cursor key another warm-up reads at the same time.
/// With Secrets Manager not answering, init waits for that one read to time
/// out (3 s of a 10 s function), not for a second read by the prefetch; the
/// first request, with the secret back, reads the key and answers a cursor.
#[tokio::test]
async fn a_listing_whose_cursor_key_is_unreachable_waits_for_one_failed_read_during_init() {
    let app = app();
    let admin = app.new_admin("prefetch-admin").await;
    // More than a first page, so the page's next cursor needs the key.
    for n in 0..21 {
        app.new_product(&admin.token, &format!("prefetch-{n}"), 100, 1).await;
    }
    let secrets = proxy("AWS_ENDPOINT_URL_SECRETS_MANAGER").await;
    secrets.set(Fault::BlackHole);
    let mut function = start("list-products", &[("AWS_ENDPOINT_URL_SECRETS_MANAGER", secrets.url())]).await;
    let init = function.ready(Duration::from_secs(30)).await.unwrap();
    // Two reads one after the other would take 6 s.
    assert!(init < Duration::from_secs(5), "one failed read of the cursor key, not two: {init:?}");

    secrets.set(Fault::Pass);
    let answer = function.invoke(&sample_event("list-products"), TIMEOUT).await.unwrap();
    let (status, _) = status_and_headers(&answer.payload);
    assert_eq!(status, 200, "{}", answer.payload);
    let body: serde_json::Value = serde_json::from_str(answer.payload["body"].as_str().unwrap()).unwrap();
    assert!(body["pagination"]["next_cursor"].is_string(), "a sealed next cursor: {body}");
}

#[tokio::test]
async fn cached_keys_keep_serving_while_the_secret_is_unreachable() {
    let app = app();
    let user = app.new_user("cached-keys").await;
    let secrets = proxy("AWS_ENDPOINT_URL_SECRETS_MANAGER").await;
    let mut function = start(
        "get-current-user",
        &[("AWS_ENDPOINT_URL_SECRETS_MANAGER", secrets.url()), ("SIGNING_KEY_CACHE_SECONDS", "1".to_owned())],
    )
    .await;
    function.ready(Duration::from_secs(30)).await.unwrap();
    let event = with_token(sample_event("get-current-user"), &user.token);
    assert_eq!(status_and_headers(&function.invoke(&event, TIMEOUT).await.unwrap().payload).0, 200);

    secrets.set(Fault::ServerError);
    tokio::time::sleep(Duration::from_millis(1500)).await; // past the cache's lifetime: a refresh is due, and fails
    for _ in 0..3 {
        let answer = function.invoke(&event, TIMEOUT * 2).await.unwrap();
        assert_eq!(status_and_headers(&answer.payload).0, 200, "the cached keys still verify: {}", answer.payload);
    }
    assert!(secrets.requests() >= 1, "a refresh was attempted");
}
