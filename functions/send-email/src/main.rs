use platform::{Init, forever};

// One thread: Lambda sends one event at a time, and a single allocator arena
// and no worker threads keep init and peak memory small.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let init = Init::start(env!("CARGO_PKG_NAME")).await?;
    let mailer = forever(init.mailer()?);
    let sent = forever(init.processed_messages());
    init.batch("email-send")?.serve(move |event| app::consumers::send_email(event, mailer, sent)).await
}
