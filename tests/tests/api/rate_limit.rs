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

/// Regression (issue 8.9): with a trusted client-IP header, the left-most
/// X-Forwarded-For entry (which the client writes) keyed the rate limit, so
/// a client could dodge it by forging that entry. The proxy's own entry
/// (right-most) is the client's address.
#[tokio::test]
async fn a_forged_left_most_forwarded_entry_does_not_dodge_the_limit() {
    let app = app();
    let real = format!("10.{}.{}.{}", rand_octet(), rand_octet(), rand_octet());
    let mut refused = None;
    // A window can turn over once mid-burst, so up to 200 may pass; never 201.
    for sent in 1..=201 {
        let forged = format!("192.0.2.{}, {real}", sent % 250);
        let response = app.client.get(app.url("/health")).header("x-forwarded-for", forged).send().await.unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(sent);
            break;
        }
    }
    assert!(refused.is_some(), "201 requests from one client in a minute were all accepted");
}

fn rand_octet() -> u8 {
    ulid::Ulid::new().random().to_be_bytes()[15]
}
