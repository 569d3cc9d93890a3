use lambda_runtime::{LambdaEvent, service_fn};
use platform::{Init, forever};

// One thread: Lambda sends one event at a time, and a single allocator arena
// and no worker threads keep init and peak memory small.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let init = Init::start(env!("CARGO_PKG_NAME")).await?;
    let publisher = forever(init.publisher());
    lambda_runtime::run(service_fn(move |_: LambdaEvent<serde_json::Value>| async move {
        app::relay::run(publisher).await.map_err(lambda_runtime::Error::from)
    }))
    .await
}
