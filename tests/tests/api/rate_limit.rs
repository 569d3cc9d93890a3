use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::{app, error_code};

fn header_number(response: &reqwest::Response, name: &str) -> u64 {
    response.headers()[name].to_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn the_101st_request_in_a_minute_from_one_client_is_refused() {
    let client = app();
    let mut first = client.get("/health", None).await;
    // Start the burst with the window mostly ahead, so it cannot reset mid-test.
    if header_number(&first, "ratelimit-reset") < 20 {
        tokio::time::sleep(Duration::from_secs(header_number(&first, "ratelimit-reset") + 1)).await;
        first = client.get("/health", None).await;
    }
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(header_number(&first, "ratelimit-limit"), 100);
    assert_eq!(header_number(&first, "ratelimit-remaining"), 99);

    for sent in 2..=100 {
        let response = client.get("/health", None).await;
        assert_eq!(response.status(), StatusCode::OK, "request {sent} of 100");
        assert_eq!(header_number(&response, "ratelimit-remaining"), 100 - sent);
    }
    let refused = client.get("/health", None).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after = header_number(&refused, "retry-after");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(header_number(&refused, "ratelimit-remaining"), 0);
    assert_eq!(error_code(refused, StatusCode::TOO_MANY_REQUESTS).await, "rate_limited");

    // Another client is not affected.
    assert_eq!(app().get("/health", None).await.status(), StatusCode::OK);
}
