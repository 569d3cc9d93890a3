//! POST /api/v1/users/me/password: change the password, given the current one.

use adapters::Init;
use app::passwords::CHANGE_CHECKS_PER_ACCOUNT;
use framework::auth::PasswordHasher;
use framework::forever;
use framework::http::Access;
use time::OffsetDateTime;

fn main() -> Result<(), lambda_http::Error> {
    framework::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let keys = init.public_keys()?;
        let users = forever(init.user_store());
        let sessions = forever(init.session_store());
        let hasher = forever(PasswordHasher::new());
        let checks = forever(init.throttle(CHANGE_CHECKS_PER_ACCOUNT));
        init.http(Access::User(init.authenticator(&keys)))
            .serve(move |request| {
                app::passwords::change_password(request, users, sessions, hasher, checks, OffsetDateTime::now_utc())
            })
            .await
    })
}
