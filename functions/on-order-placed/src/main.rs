//! Queue consumer of order-placed: reserves stock, confirms or rejects, asks for the email.

use adapters::Init;
use framework::forever;

fn main() -> Result<(), lambda_runtime::Error> {
    framework::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let users = forever(init.user_store());
        let orders = forever(init.order_store());
        let publisher = forever(init.publisher_warmed_for("email-send"));
        init.batch("order-placed")?
            .serve(move |event| app::consumers::on_order_placed(event, users, orders, publisher))
            .await
    })
}
