//! Scheduled: creates the token signing keys of a new stack and rotates them every 30 days.

use adapters::Init;
use adapters::token_keys::ROTATION_PERIOD;
use framework::forever;

fn main() -> Result<(), lambda_runtime::Error> {
    framework::run(async {
        let init = Init::start(env!("CARGO_PKG_NAME")).await?;
        let secrets = forever(init.token_key_secrets()?);
        init.serve_scheduled(move || async move {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let rotation = secrets.rotate_when_due(now, ROTATION_PERIOD).await?;
            Ok(serde_json::to_value(rotation)?)
        })
        .await
    })
}
