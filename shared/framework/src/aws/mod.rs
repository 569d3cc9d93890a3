//! One AWS SDK configuration per process, built in `main` during init, with
//! the HTTPS client and the roots it trusts ([`tls`]); the timer every SDK call
//! passes through ([`calls`]) and today's trace exporter, X-Ray subsegments over
//! the daemon's UDP protocol ([`xray`]). Nothing here knows a service: the
//! adapters build their clients on this configuration.

pub mod calls;
pub mod tls;
pub mod xray;

/// Loads region, credentials and endpoints the standard way, with every
/// call's time bounded by `budget` and the SDK's standard retries (3
/// attempts, exponential backoff with jitter; throttling errors retried).
/// Without this the SDK would wait on a hung endpoint until Lambda's timeout.
/// Local runs point the SDK at the local cloud with `AWS_ENDPOINT_URL_<SERVICE>`
/// variables, so no function has a local-only code path. HTTPS trusts the roots
/// `settings` names ([`tls`]).
pub async fn load_config(settings: &crate::config::Settings) -> anyhow::Result<aws_config::SdkConfig> {
    let budget = settings.budget();
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(budget.connect())
        .operation_attempt_timeout(budget.attempt())
        .operation_timeout(budget.operation())
        .build();
    Ok(aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(tls::https_client(settings.trusted_roots)?)
        .timeout_config(timeouts)
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(3))
        .load()
        .await)
}
