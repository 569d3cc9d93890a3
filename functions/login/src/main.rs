//! POST /api/v1/auth/login: exchange credentials for an access token.

use adapters::Init;
use app::auth::{KNOWN_ADDRESSES, LoginLimits, PER_ACCOUNT, PER_ACCOUNT_AND_CLIENT, PER_CLIENT};
use app::sessions::Sessions;
use framework::auth::PasswordHasher;
use framework::forever;
use framework::http::Access;

fn main() -> Result<(), lambda_http::Error> {
    framework::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let users = forever(init.user_store());
        let hasher = forever(PasswordHasher::new());
        // Signs tokens (as refresh-session does), so it reads the private keys.
        let tokens = forever(init.token_issuer()?);
        let limits = forever(LoginLimits {
            per_account_and_client: init.throttle(PER_ACCOUNT_AND_CLIENT),
            per_client: init.throttle(PER_CLIENT),
            per_account: init.throttle(PER_ACCOUNT),
            known_addresses: init.sign_in_history(KNOWN_ADDRESSES),
        });
        let sessions = forever(Sessions { store: init.session_store(), lifetime: init.shop.refresh_ttl });
        let second_factors = forever(app::mfa::SecondFactors::on_table(&init));
        init.http(Access::Guest)
            .serve(move |request| app::auth::login(request, users, hasher, tokens, limits, sessions, second_factors))
            .await
    })
}
