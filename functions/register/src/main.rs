//! POST /api/v1/auth/register: start an account (Idempotency-Key aware),
//! answering alike whether or not the address has one.

use adapters::Init;
use app::registration::{EMAILS_PER_ADDRESS, Links, Registration};
use framework::auth::PasswordHasher;
use framework::forever;
use framework::http::Access;

fn main() -> Result<(), lambda_http::Error> {
    framework::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let registration = forever(Registration {
            users: init.user_store(),
            verifications: init.verifications(),
            emails_per_address: init.throttle(EMAILS_PER_ADDRESS),
            links: Links { base_url: init.shop.public_base_url.clone(), ttl: init.shop.verification_ttl },
        });
        let hasher = forever(PasswordHasher::new());
        let idempotency = forever(init.idempotency_store());
        let publisher = forever(init.publisher());
        init.http(Access::Guest)
            .serve(move |request| app::registration::register(request, registration, idempotency, hasher, publisher))
            .await
    })
}
