//! Secrets Manager unreachable at a cold start and while keys refresh.

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
