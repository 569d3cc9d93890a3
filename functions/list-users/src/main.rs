//! GET /api/v1/users (admin): paginated list of accounts.

use adapters::Init;
use framework::forever;
use framework::http::Access;

fn main() -> Result<(), lambda_http::Error> {
    framework::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let (keys, cursors) = init.public_keys_and_cursors()?;
        let users = forever(init.user_store());
        let cursors = forever(cursors);
        init.http(Access::Admin(init.authenticator(&keys)))
            .serve(move |request| app::users::list(request, users, cursors))
            .await
    })
}
