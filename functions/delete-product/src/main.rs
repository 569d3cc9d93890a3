//! DELETE /api/v1/products/{id} (admin): remove a product.

use adapters::Init;
use framework::forever;
use framework::http::Access;

fn main() -> Result<(), lambda_http::Error> {
    framework::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let keys = init.public_keys()?;
        let products = forever(init.product_store());
        init.http(Access::Admin(init.authenticator(&keys)))
            .serve(move |request| app::catalogue::delete(request, products))
            .await
    })
}
