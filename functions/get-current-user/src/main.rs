//! GET /api/v1/users/me: the caller's own profile.

use adapters::Init;
use framework::forever;
use framework::http::Access;

fn main() -> Result<(), lambda_http::Error> {
    framework::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let keys = init.public_keys()?;
        let users = forever(init.user_store());
        init.http(Access::User(init.authenticator(&keys))).serve(move |request| app::users::me(request, users)).await
    })
}
