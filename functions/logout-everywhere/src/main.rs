//! POST /api/v1/auth/logout-all: end every session of the caller's account.

use adapters::Init;
use framework::forever;
use framework::http::Access;

fn main() -> Result<(), lambda_http::Error> {
    framework::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let keys = init.public_keys()?;
        let sessions = forever(init.session_store());
        init.http(Access::User(init.authenticator(&keys)))
            .serve(move |request| app::sessions::logout_all(request, sessions))
            .await
    })
}
