//! GET /api/v1/orders: own orders (admins: all), filter by status, paginated.

use adapters::Init;
use framework::forever;
use framework::http::Access;

fn main() -> Result<(), lambda_http::Error> {
    framework::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let (keys, cursors) = init.public_keys_and_cursors()?;
        let orders = forever(init.order_store());
        let cursors = forever(cursors);
        init.http(Access::User(init.authenticator(&keys)))
            .serve(move |request| app::orders::list(request, orders, cursors))
            .await
    })
}
