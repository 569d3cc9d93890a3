//! Scheduled: cancels orders still open beyond the hold time, returning their stock (against hoarding).

use adapters::Init;
use framework::forever;

fn main() -> Result<(), lambda_runtime::Error> {
    framework::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let orders = forever(init.order_store());
        let users = forever(init.user_store());
        let publisher = forever(init.publisher_warmed_for("email-send"));
        let (hold, budget) = (init.shop.hold_time, init.settings.function_timeout / 2);
        init.serve_scheduled(move || app::expiry::run(orders, users, publisher, hold, budget)).await
    })
}
