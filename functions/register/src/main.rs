//! POST /api/v1/auth/register: create an account.

use platform::auth::PasswordHasher;
use platform::http::Access;
use platform::{Init, forever};

fn main() -> Result<(), lambda_http::Error> {
    platform::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let users = forever(init.user_store());
        let hasher = forever(PasswordHasher::new());
        let publisher = forever(init.publisher());
        init.http(Access::Guest).serve(move |request| app::auth::register(request, users, hasher, publisher)).await
    })
}
