//! Scheduled: publishes outbox events their handlers could not (the outbox's safety net).

use lambda_runtime::{LambdaEvent, service_fn};
use platform::{Init, forever};

fn main() -> Result<(), lambda_runtime::Error> {
    platform::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let publisher = forever(init.publisher_warmed_for("order-placed").await);
        lambda_runtime::run(service_fn(move |_: LambdaEvent<serde_json::Value>| async move {
            app::relay::run(publisher).await.map_err(lambda_runtime::Error::from)
        }))
        .await
    })
}
