//! GET /api/v1/products/{id}: one product (inactive ones only for admins).

use adapters::Init;
use framework::forever;
use framework::http::Access;

fn main() -> Result<(), lambda_http::Error> {
    framework::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        // Most readers are guests: the keys are read when a token first comes.
        let keys = init.signing_keys_on_first_use()?;
        let products = forever(init.product_store());
        init.http(Access::GuestWithOptionalToken(init.authenticator(&keys)))
            .serve(move |request| app::catalogue::get(request, products))
            .await
    })
}
