//! Queue consumer of email-send: renders and sends each email once through SES v2.

use adapters::Init;
use framework::forever;

fn main() -> Result<(), lambda_runtime::Error> {
    framework::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let mailer = forever(init.mailer()?);
        let sent = forever(init.message_claims());
        init.batch("email-send")?.serve(move |event| app::consumers::send_email(event, mailer, sent)).await
    })
}
