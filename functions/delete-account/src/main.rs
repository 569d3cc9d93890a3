//! DELETE /api/v1/users/me: the caller erases their own account, given its password.

use adapters::Init;
use adapters::dynamo::DynamoAccountErasure;
use app::erasure::ERASE_ATTEMPTS;
use framework::auth::PasswordHasher;
use framework::forever;
use framework::http::Access;

fn main() -> Result<(), lambda_http::Error> {
    framework::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let keys = init.public_keys()?;
        let users = forever(init.user_store());
        let erasures = forever(DynamoAccountErasure::new(init.table()));
        let hasher = forever(PasswordHasher::new());
        let attempts = forever(init.throttle(ERASE_ATTEMPTS));
        // A retry after the erasure (a lost answer) still reaches the use case, which answers it.
        init.http(Access::UserOrErased(init.authenticator(&keys)))
            .serve(move |request| app::erasure::delete_me(request, users, erasures, hasher, attempts))
            .await
    })
}
