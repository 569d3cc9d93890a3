//! PATCH /api/v1/orders/{id}: owner cancels, admin ships (If-Match).

use platform::http::Access;
use platform::{Init, forever};

fn main() -> Result<(), lambda_http::Error> {
    platform::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let keys = init.signing_keys().await?;
        let orders = forever(init.order_store());
        init.http(Access::User(init.authenticator(&keys)))
            .serve(move |request| app::orders::update(request, orders))
            .await
    })
}
