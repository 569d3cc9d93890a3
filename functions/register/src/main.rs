//! POST /api/v1/auth/register: create an account (Idempotency-Key aware).

use adapters::Init;
use framework::auth::PasswordHasher;
use framework::forever;
use framework::http::Access;

fn main() -> Result<(), lambda_http::Error> {
    framework::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let users = forever(init.user_store());
        let hasher = forever(PasswordHasher::new());
        let idempotency = forever(init.idempotency_store());
        let publisher = forever(init.publisher());
        init.http(Access::Guest)
            .serve(move |request| app::auth::register(request, users, idempotency, hasher, publisher))
            .await
    })
}
