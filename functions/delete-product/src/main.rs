use platform::http::Access;
use platform::{Init, forever};

// One thread: Lambda sends one event at a time, and a single allocator arena
// and no worker threads keep init and peak memory small.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let init = Init::start(env!("CARGO_PKG_NAME")).await?;
    let products = forever(init.product_store());
    let tokens = init.tokens(&init.signing_keys().await?);
    init.http(Access::Admin).with_tokens(tokens).serve(move |request| app::catalogue::delete(request, products)).await
}
