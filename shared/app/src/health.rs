//! GET /health: liveness, a check of the one dependency every request needs,
//! and which build answers (the release version and the pipeline's commit).

use std::time::Instant;

use crate::error::AppError;
use adapters::dynamo::Table;
use framework::http::headers::{API_VERSION, BUILD_COMMIT};
use framework::http::{ApiRequest, ApiResponse};
use http::StatusCode;
use serde_json::json;

/// 200 with the table's round-trip time when DynamoDB answers; 503 with
/// `Retry-After: 1` when it does not. Both name the version and commit. The
/// signing keys need no check here: a function whose keys do not load
/// (those that issue or verify tokens) fails its cold start and its own
/// deployment alarm, and get-health reads no secret.
pub async fn check(_request: ApiRequest, table: &Table) -> Result<ApiResponse, AppError> {
    let started = Instant::now();
    let dynamodb = table.ping().await;
    let latency_ms = started.elapsed().as_millis() as u64;
    match dynamodb {
        Ok(()) => Ok(ApiResponse::ok(json!({
            "status": "ok",
            "version": API_VERSION,
            "commit": BUILD_COMMIT,
            "checks": {"dynamodb": {"status": "ok", "latency_ms": latency_ms}},
        }))),
        Err(error) => {
            tracing::error!(error = framework::telemetry::chain(&error), "health check: DynamoDB unreachable");
            let body = json!({
                "status": "unavailable",
                "version": API_VERSION,
                "commit": BUILD_COMMIT,
                "checks": {"dynamodb": {"status": "unavailable", "latency_ms": latency_ms}},
            });
            Ok(ApiResponse::with_status(StatusCode::SERVICE_UNAVAILABLE, body).header(http::header::RETRY_AFTER, "1"))
        }
    }
}
