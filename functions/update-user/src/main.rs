//! PATCH /api/v1/users/{id} (admin): change a user's role or disabled flag.

use adapters::Init;
use framework::forever;
use framework::http::Access;

fn main() -> Result<(), lambda_http::Error> {
    framework::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let keys = init.public_keys()?;
        let users = forever(init.user_store());
        let sessions = forever(init.session_store());
        init.http(Access::Admin(init.authenticator(&keys)))
            .serve(move |request| app::users::update(request, users, sessions))
            .await
    })
}
