//! POST /api/v1/auth/verify-email/resend: a fresh verification link, throttled per address.

use adapters::Init;
use app::registration::{EMAILS_PER_ADDRESS, Links, Registration};
use framework::forever;
use framework::http::Access;
use time::OffsetDateTime;

fn main() -> Result<(), lambda_http::Error> {
    framework::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let registration = forever(Registration {
            users: init.user_store(),
            verifications: init.verifications(),
            emails_per_address: init.throttle(EMAILS_PER_ADDRESS),
            links: Links { base_url: init.shop.public_base_url.clone(), ttl: init.shop.verification_ttl },
        });
        let publisher = forever(init.publisher());
        init.http(Access::Guest)
            .serve(move |request| {
                app::registration::resend(request, registration, publisher, OffsetDateTime::now_utc())
            })
            .await
    })
}
