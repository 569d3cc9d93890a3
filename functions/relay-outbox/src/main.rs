//! Scheduled: publishes outbox events their handlers could not (the outbox's safety net).

use adapters::Init;
use framework::forever;

fn main() -> Result<(), lambda_runtime::Error> {
    framework::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let publisher = forever(init.publisher_warmed_for("order-placed"));
        let budget = init.settings.function_timeout / 2;
        init.serve_scheduled(move || app::relay::run(publisher, budget)).await
    })
}
