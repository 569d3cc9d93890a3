//! GET /health answers 200 with its DynamoDB check.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::app;

#[tokio::test]
async fn health_reports_ok_with_its_dependency_check() {
    let response = app().get("/health", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["checks"]["dynamodb"]["status"], "ok");
}
