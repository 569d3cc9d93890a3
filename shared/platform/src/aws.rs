//! One AWS SDK configuration per process, built in `main` during init.

/// Loads region, credentials and endpoints the standard way. Local runs point
/// the SDK at the local cloud with `AWS_ENDPOINT_URL_<SERVICE>` variables, so
/// no function has a local-only code path.
pub async fn load_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}
