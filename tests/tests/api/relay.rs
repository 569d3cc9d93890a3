//! The scheduled relay on the shared stack: what it cannot read it parks,
//! with a reason, and goes on.

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};

use crate::helpers::{app, env};

/// An outbox record with no body (written under the outbox key from before
/// the shards) is moved to `OUTBOX#PARKED` with its reason by the real
/// relay function, and the run reports it parked instead of failing.
#[tokio::test]
async fn the_relay_parks_an_unreadable_outbox_record_with_its_reason() {
    let app = app();
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let table = env("TABLE_NAME");
    let id = ulid::Ulid::new().to_string();
    crate::helpers::put_unreadable_outbox_record(&dynamodb, &table, &id).await;
    let text = |value: &str| AttributeValue::S(value.to_owned());

    let scheduled = json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
    let report: Value = app
        .client
        .post(format!("{}/2015-03-31/functions/relay-outbox/invocations", env("SHOP_FUNCTIONS_URL")))
        .json(&scheduled)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(report.get("errorType").is_none(), "{report}");
    // The stack's own scheduled relay may have parked it a moment before.
    assert!(report["parked"].is_u64(), "{report}");

    let parked = dynamodb
        .get_item()
        .table_name(&table)
        .key("pk", text(&format!("OUTBOX#{id}")))
        .key("sk", text("OUTBOX"))
        .send()
        .await
        .unwrap()
        .item
        .expect("a parked record is kept");
    assert_eq!(parked["gsi1pk"].as_s().unwrap(), "OUTBOX#PARKED");
    assert!(!parked["parked_reason"].as_s().unwrap().is_empty(), "{parked:?}");
}
