//! The per-client request limit in front of the functions: the 101st request
//! in a minute is refused with Retry-After, and a forged X-Forwarded-For entry
//! does not dodge it.

use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::app;

/// Seconds left in the current minute: the limit counts per clock minute,
/// as the local front (and WAF's window) does.
fn seconds_left_in_minute() -> u64 {
    60 - std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() % 60
}

/// The limit is enforced in front of the functions (WAF in the cloud, the
/// local API front here): no function pays a write per request for it.
#[tokio::test]
async fn the_101st_request_in_a_minute_from_one_client_is_refused() {
    let client = app();
    // Start the burst with the window mostly ahead, so it cannot reset mid-test.
    if seconds_left_in_minute() < 20 {
        tokio::time::sleep(Duration::from_secs(seconds_left_in_minute() + 1)).await;
    }
    for sent in 1..=100 {
        let response = client.get("/health", None).await;
        assert_eq!(response.status(), StatusCode::OK, "request {sent} of 100");
    }
    let refused = client.get("/health", None).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(refused.headers()["x-content-type-options"], "nosniff");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");

    // Another client is not affected.
    assert_eq!(app().get("/health", None).await.status(), StatusCode::OK);
}

/// Regression: with a trusted client-IP header, the left-most
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
