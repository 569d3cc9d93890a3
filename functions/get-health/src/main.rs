//! GET /api/v1/health: liveness and dependency check.

use adapters::Init;
use framework::forever;
use framework::http::{Access, CachePolicy};

fn main() -> Result<(), lambda_http::Error> {
    framework::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let table = forever(init.table());
        // Its point is to be asked: nothing may keep its answer.
        init.http(Access::Guest)
            .cache(CachePolicy::NoStore)
            .serve(move |request| app::health::check(request, table))
            .await
    })
}
