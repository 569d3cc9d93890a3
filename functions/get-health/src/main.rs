//! GET /api/v1/health: liveness and dependency check.

use adapters::Init;
use framework::forever;
use framework::http::Access;

fn main() -> Result<(), lambda_http::Error> {
    framework::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let table = forever(init.table());
        init.http(Access::Guest).serve(move |request| app::health::check(request, table)).await
    })
}
