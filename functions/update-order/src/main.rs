//! PATCH /api/v1/orders/{id}: owner cancels, admin ships (If-Match).

use adapters::Init;
use framework::forever;
use framework::http::Access;

fn main() -> Result<(), lambda_http::Error> {
    framework::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let keys = init.public_keys()?;
        let orders = forever(init.order_store());
        init.http(Access::User(init.authenticator(&keys)))
            .serve(move |request| app::orders::update(request, orders))
            .await
    })
}
