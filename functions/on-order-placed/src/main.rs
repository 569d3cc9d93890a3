use platform::{Init, forever};

// One thread: Lambda sends one event at a time, and a single allocator arena
// and no worker threads keep init and peak memory small.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let init = Init::start(env!("CARGO_PKG_NAME")).await?;
    let users = forever(init.user_store());
    let orders = forever(init.order_store());
    let publisher = forever(init.publisher());
    init.batch("order-placed")?
        .serve(move |event| app::consumers::on_order_placed(event, users, orders, publisher))
        .await
}
