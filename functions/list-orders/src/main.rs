use platform::http::Access;
use platform::{Init, forever};

// One thread: Lambda sends one event at a time, and a single allocator arena
// and no worker threads keep init and peak memory small.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let init = Init::start(env!("CARGO_PKG_NAME")).await?;
    let orders = forever(init.order_store());
    let keys = init.signing_keys().await?;
    let cursors = forever(init.cursors(&keys));
    init.http(Access::User)
        .with_tokens(init.tokens(&keys))
        .serve(move |request| app::orders::list(request, orders, cursors))
        .await
}
