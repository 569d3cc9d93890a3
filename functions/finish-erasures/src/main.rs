//! Scheduled: finishes account erasures (the deleted accounts' remaining orders taken off them).

use adapters::Init;
use adapters::dynamo::DynamoAccountErasure;
use framework::forever;

fn main() -> Result<(), lambda_runtime::Error> {
    framework::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let erasures = forever(DynamoAccountErasure::new(init.table()));
        let budget = init.settings.function_timeout / 2;
        init.serve_scheduled(move || async move {
            let swept = app::erasure::sweep(erasures, budget).await?;
            Ok(serde_json::to_value(swept)?)
        })
        .await
    })
}
