use platform::http::Access;
use platform::{Init, forever};

// One thread: Lambda sends one event at a time, and a single allocator arena
// and no worker threads keep init and peak memory small.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let init = Init::start(env!("CARGO_PKG_NAME")).await?;
    let products = forever(init.product_store());
    let keys = init.signing_keys().await?;
    let cursors = forever(init.cursors(&keys));
    init.http(Access::Guest)
        .with_tokens(init.tokens(&keys))
        .serve(move |request| app::catalogue::list(request, products, cursors))
        .await
}
