use platform::http::Access;
use platform::{Init, forever};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let init = Init::start(env!("CARGO_PKG_NAME")).await?;
    let table = forever(init.table());
    init.http(Access::Guest).serve(move |request| app::health::check(request, table)).await
}
