//! POST /api/v1/orders: place an order priced from the catalogue (Idempotency-Key aware).

use adapters::Init;
use framework::forever;
use framework::http::Access;

fn main() -> Result<(), lambda_http::Error> {
    framework::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let keys = init.public_keys()?;
        let users = forever(init.user_store());
        let products = forever(init.product_store());
        let orders = forever(init.order_store());
        let idempotency = forever(init.idempotency_store());
        let publisher = forever(init.publisher());
        init.http(Access::User(init.authenticator(&keys)))
            .serve(move |request| app::orders::place(request, users, products, orders, idempotency, publisher))
            .await
    })
}
