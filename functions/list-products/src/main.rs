//! GET /api/v1/products: the catalogue, paginated (admins may list inactive products).

use adapters::Init;
use framework::forever;
use framework::http::Access;

fn main() -> Result<(), lambda_http::Error> {
    framework::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let keys = init.signing_keys().await?;
        let products = forever(init.product_store());
        let cursors = forever(init.cursors(&keys));
        init.http(Access::GuestWithOptionalToken(init.authenticator(&keys)))
            .serve(move |request| app::catalogue::list(request, products, cursors))
            .await
    })
}
