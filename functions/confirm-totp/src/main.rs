//! POST /api/v1/users/me/mfa/totp/confirm: confirm the caller's TOTP enrolment with a code; shows the recovery codes once.

use adapters::Init;
use framework::forever;
use framework::http::Access;

fn main() -> Result<(), lambda_http::Error> {
    framework::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let keys = init.public_keys()?;
        let users = forever(init.user_store());
        let factors = forever(app::mfa::SecondFactors::on_table(&init));
        // Access::User, not Admin: see enrol-totp.
        init.http(Access::User(init.authenticator(&keys)))
            .serve(move |request| app::mfa::confirm(request, users, factors))
            .await
    })
}
