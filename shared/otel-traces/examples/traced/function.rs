//! The function both builds share: `GET /products/{id}` on the framework's
//! HTTP layer, answering from one DynamoDB `GetItem` made through the
//! framework's call timer (so each request is one work span and one call
//! span), with a warm-up `GetItem` during init as the shop's functions make.
//! `cargo xtask bench-tracing` points the SDK at a stand-in DynamoDB, the
//! daemon address at a stand-in UDP listener and the OTLP endpoint at a
//! stand-in collector.

use aws_sdk_dynamodb::types::AttributeValue;
use framework::Settings;
use framework::aws::calls::CallTimer;
use framework::http::{Access, ApiError, ApiRequest, ApiResponse, HttpServer};

/// The function's name in logs, metrics and traces.
pub const NAME: &str = "traced-function";

/// Runs the function, after `install_exporter` has chosen how traces leave.
pub fn main(install_exporter: impl FnOnce() -> anyhow::Result<()>) -> Result<(), lambda_http::Error> {
    framework::run(async {
        framework::telemetry::init(NAME);
        install_exporter()?;
        let settings = Settings::from_env()?;
        let config = framework::aws::load_config(&settings).await?;
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&config).interceptor(CallTimer).build(),
        );
        // The example's own variable: the framework's settings name no table.
        let table = std::env::var("TABLE_NAME").map_err(|_| anyhow::anyhow!("TABLE_NAME is not set"))?;
        // Opens the connection during init, as the shop's functions do.
        let _ = get_item(&dynamodb, &table, "WARMUP").await;
        let dynamodb = framework::forever(dynamodb);
        let table = framework::forever(table);
        HttpServer::new(NAME, Access::Guest, &settings)
            .serve(move |request: ApiRequest| async move {
                let id = request.path_param("id").unwrap_or("none").to_owned();
                let name = get_item(dynamodb, table, &id).await.map_err(ApiError::internal)?;
                Ok::<_, ApiError>(ApiResponse::ok(serde_json::json!({ "id": id, "name": name })))
            })
            .await
    })
}

async fn get_item(dynamodb: &aws_sdk_dynamodb::Client, table: &str, id: &str) -> anyhow::Result<String> {
    let item = dynamodb
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(format!("PRODUCT#{id}")))
        .key("sk", AttributeValue::S("PRODUCT".into()))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
    Ok(item.item().and_then(|item| item.get("name")).and_then(|name| name.as_s().ok()).cloned().unwrap_or_default())
}
