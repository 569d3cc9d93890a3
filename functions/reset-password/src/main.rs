//! POST /api/v1/auth/password-reset/confirm: set a new password with an emailed token.

use adapters::Init;
use framework::auth::PasswordHasher;
use framework::forever;
use framework::http::Access;
use time::OffsetDateTime;

fn main() -> Result<(), lambda_http::Error> {
    framework::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let users = forever(init.user_store());
        let resets = forever(init.password_resets());
        let sessions = forever(init.session_store());
        let hasher = forever(PasswordHasher::new());
        let publisher = forever(init.publisher());
        init.http(Access::Guest)
            .serve(move |request| {
                app::passwords::confirm_reset(
                    request,
                    users,
                    resets,
                    sessions,
                    hasher,
                    publisher,
                    OffsetDateTime::now_utc(),
                )
            })
            .await
    })
}
