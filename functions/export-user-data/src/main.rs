//! GET /api/v1/users/me/export: the caller's account and orders as one download.

use adapters::Init;
use framework::forever;
use framework::http::Access;

fn main() -> Result<(), lambda_http::Error> {
    framework::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let keys = init.public_keys()?;
        let users = forever(init.user_store());
        let orders = forever(init.order_store());
        let sessions = forever(init.session_store());
        let second_factors = forever(init.second_factors());
        init.http(Access::User(init.authenticator(&keys)))
            .serve(move |request| app::users::export(request, users, orders, sessions, second_factors))
            .await
    })
}
