//! POST /api/v1/auth/verify-email: follow an emailed verification link.

use adapters::Init;
use framework::forever;
use framework::http::Access;
use time::OffsetDateTime;

fn main() -> Result<(), lambda_http::Error> {
    framework::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let verifications = forever(init.verifications());
        let publisher = forever(init.publisher());
        init.http(Access::Guest)
            .serve(move |request| {
                app::registration::verify_email(request, verifications, publisher, OffsetDateTime::now_utc())
            })
            .await
    })
}
