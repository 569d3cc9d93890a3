//! PATCH /api/v1/users/{id} (admin): change a user's role or disabled flag.

use platform::http::Access;
use platform::{Init, forever};

fn main() -> Result<(), lambda_http::Error> {
    platform::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let keys = init.signing_keys().await?;
        let users = forever(init.user_store());
        init.http(Access::Admin(init.authenticator(&keys)))
            .serve(move |request| app::users::update(request, users))
            .await
    })
}
