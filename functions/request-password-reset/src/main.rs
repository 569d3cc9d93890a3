//! POST /api/v1/auth/password-reset: email a reset link; 202 whatever the address.

use adapters::Init;
use app::passwords::{RESETS_PER_ADDRESS, Resets};
use framework::forever;
use framework::http::Access;
use time::OffsetDateTime;

fn main() -> Result<(), lambda_http::Error> {
    framework::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let resets = forever(Resets {
            users: init.user_store(),
            resets: init.password_resets(),
            per_address: init.throttle(RESETS_PER_ADDRESS),
            base_url: init.shop.public_base_url.clone(),
            lifetime: init.shop.reset_ttl,
        });
        let publisher = forever(init.publisher());
        init.http(Access::Guest)
            .serve(move |request| app::passwords::request_reset(request, resets, publisher, OffsetDateTime::now_utc()))
            .await
    })
}
