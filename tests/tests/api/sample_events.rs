//! Every function answers its sample event from events/ (the file a developer
//! passes to `cargo lambda invoke --data-file`) with a well-formed response.

use serde_json::Value;

use crate::helpers::{app, env};

#[tokio::test]
async fn every_function_handles_its_sample_event() {
    let app = app();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut checked = 0;
    for entry in std::fs::read_dir(root.join("events")).unwrap() {
        let path = entry.unwrap().path();
        let function = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let response = app
            .client
            .post(format!("{}/2015-03-31/functions/{function}/invocations", env("SHOP_FUNCTIONS_URL")))
            .json(&event)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{function}: invoke failed with {}", response.status());
        let output: Value = response.json().await.unwrap();
        assert!(output.get("errorType").is_none(), "{function}: {output}");
        if event.get("Records").is_some() {
            // A queue consumer: a partial batch response. The sample's order
            // does not exist, so that message is parked rather than failed.
            assert_eq!(output["batchItemFailures"], serde_json::json!([]), "{function}: {output}");
            checked += 1;
            continue;
        }
        if event.get("httpMethod").is_none() {
            // A scheduled function: the relay's, the expiry's, the key rotation's or the erasure sweep's report.
            let rotation = output["outcome"].is_string() && output["active_kid"].is_string();
            let swept = output["finished"].is_u64();
            assert!(
                output["published"].is_u64() || output["expired"].is_u64() || rotation || swept,
                "{function}: {output}"
            );
            checked += 1;
            continue;
        }
        let status =
            output["statusCode"].as_u64().unwrap_or_else(|| panic!("{function}: not a proxy response: {output}"));
        assert!((200..500).contains(&status), "{function}: status {status}: {output}");
        let media_type =
            output["headers"]["content-type"].as_str().or(output["multiValueHeaders"]["content-type"][0].as_str());
        if let Some(media_type) = media_type.filter(|media_type| !media_type.starts_with("application/json")) {
            // The reference's files (the sample asks for the document): text of their own type.
            assert!(output["body"].as_str().is_some_and(|body| !body.is_empty()), "{function}: empty {media_type}");
            checked += 1;
            continue;
        }
        // A 204 (logout's sample, whose session is long gone) has no body at all.
        let body = output["body"].as_str().filter(|body| !body.is_empty()).unwrap_or("{}");
        let body: Value = serde_json::from_str(body).unwrap_or_else(|error| panic!("{function}: {error}: {output}"));
        assert!(body.is_object(), "{function}: body is a JSON object");
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} sample events found");
}
