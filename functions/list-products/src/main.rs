//! GET /api/v1/products: the catalogue, paginated (admins may list inactive products).

use adapters::Init;
use framework::forever;
use framework::http::{Access, CachePolicy, PublicCache};

fn main() -> Result<(), lambda_http::Error> {
    framework::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let (keys, cursors) = init.public_keys_and_cursors()?;
        let products = forever(init.product_store());
        let cache = forever(app::read_cache::ReadCache::from_env()?);
        let cursors = forever(cursors);
        // The guest who started this container most likely asks for the first page.
        init.warm_up(app::catalogue::prefetch_first_page(products, cursors, cache));
        init.http(Access::GuestWithOptionalToken(init.authenticator(&keys)))
            .cache(CachePolicy::Public(PublicCache::from_env()?))
            .serve(move |request| app::catalogue::list(request, products, cursors, cache))
            .await
    })
}
