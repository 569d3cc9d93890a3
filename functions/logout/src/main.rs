//! POST /api/v1/auth/logout: end the session of a refresh token.

use adapters::Init;
use framework::forever;
use framework::http::Access;

fn main() -> Result<(), lambda_http::Error> {
    framework::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let sessions = forever(init.session_store());
        init.http(Access::Guest).serve(move |request| app::sessions::logout(request, sessions)).await
    })
}
