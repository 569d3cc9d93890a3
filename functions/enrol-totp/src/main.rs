//! POST /api/v1/users/me/mfa/totp: begin the caller's TOTP enrolment (admins); shows the secret once.

use adapters::Init;
use framework::forever;
use framework::http::Access;

fn main() -> Result<(), lambda_http::Error> {
    framework::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let keys = init.public_keys()?;
        let users = forever(init.user_store());
        let factors = forever(init.second_factors());
        // Access::User, not Admin: an admin whom the second factor's setting
        // keeps out of admin routes must still be able to enrol.
        init.http(Access::User(init.authenticator(&keys)))
            .serve(move |request| app::mfa::enrol(request, users, factors))
            .await
    })
}
