//! Queue consumer of user-created: asks for the welcome email.

use adapters::Init;
use framework::forever;

fn main() -> Result<(), lambda_runtime::Error> {
    framework::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let publisher = forever(init.publisher_warmed_for("email-send"));
        init.batch("user-created")?.serve(move |event| app::consumers::on_user_created(event, publisher)).await
    })
}
