use platform::{Init, forever};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let init = Init::start(env!("CARGO_PKG_NAME")).await?;
    let publisher = forever(init.publisher());
    init.batch("user-created")?.serve(move |event| app::consumers::on_user_created(event, publisher)).await
}
