//! GET /api/v1/docs/{file}: the API's reference for people (Swagger UI over the contract).

use adapters::Init;
use app::reference::{Reference, assets_dir};
use framework::forever;
use framework::http::{Access, CachePolicy};

fn main() -> Result<(), lambda_http::Error> {
    framework::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let reference = forever(Reference::load(&assets_dir(), std::env::var("PUBLIC_API_URL").ok())?);
        // Revalidated on every use: a deploy changes the document at once.
        init.http(Access::Guest)
            .cache(CachePolicy::Private)
            .serve(move |request| async move { reference.answer(&request) })
            .await
    })
}
