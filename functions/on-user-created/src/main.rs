use platform::{Init, forever};

// One thread: Lambda sends one event at a time, and a single allocator arena
// and no worker threads keep init and peak memory small.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let init = Init::start(env!("CARGO_PKG_NAME")).await?;
    let publisher = forever(init.publisher());
    init.batch("user-created")?.serve(move |event| app::consumers::on_user_created(event, publisher)).await
}
