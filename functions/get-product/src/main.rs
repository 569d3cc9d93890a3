//! GET /api/v1/products/{id}: one product (inactive ones only for admins).

use adapters::Init;
use framework::forever;
use framework::http::{Access, CachePolicy, PublicCache};

fn main() -> Result<(), lambda_http::Error> {
    framework::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        // Most readers are guests: the keys are read when a token first comes.
        let keys = init.public_keys_on_first_use()?;
        let products = forever(init.product_store());
        let cache = forever(app::read_cache::ReadCache::from_env()?);
        init.http(Access::GuestWithOptionalToken(init.authenticator(&keys)))
            .cache(CachePolicy::Public(PublicCache::from_env()?))
            .serve(move |request| app::catalogue::get(request, products, cache))
            .await
    })
}
