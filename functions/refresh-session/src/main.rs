//! POST /api/v1/auth/refresh: trade a refresh token for new access and refresh tokens.

use adapters::Init;
use app::sessions::Sessions;
use framework::forever;
use framework::http::Access;

fn main() -> Result<(), lambda_http::Error> {
    framework::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let users = forever(init.user_store());
        let sessions = forever(Sessions { store: init.session_store(), lifetime: init.shop.refresh_ttl });
        // Signs tokens like login, so it reads the private keys (during init).
        let tokens = forever(init.token_issuer()?);
        init.http(Access::Guest)
            .serve(move |request| {
                app::sessions::refresh(request, users, sessions, tokens, time::OffsetDateTime::now_utc())
            })
            .await
    })
}
