//! Which certificate authorities the SDK's HTTPS client trusts.
//!
//! Every endpoint a function calls (DynamoDB, SQS, SES, Secrets Manager, X-Ray
//! aside, which is UDP) is an AWS service endpoint, and AWS serves those with
//! certificates from Amazon Trust Services. So the client trusts the five ATS
//! roots (`amazon-trust-services.pem`: Amazon Root CA 1 to 4 and Starfield
//! Services Root CA G2, which cross-signs them) and nothing else, instead of the
//! SDK's default, the platform's whole store.
//!
//! Two gains. A certificate for an AWS hostname issued by any of the other
//! hundred-odd public CAs is refused. And a cold start no longer reads and parses
//! the platform's store (147 files and as many certificates on this machine, the
//! largest single CPU cost of a cold start in the bench's profile): five
//! certificates embedded in the binary are parsed instead.
//!
//! `TLS_TRUSTED_ROOTS=system` restores the SDK's default (the platform's store),
//! without a rebuild: for an endpoint behind a TLS-inspecting proxy, or should AWS
//! ever serve an endpoint from another CA.

use anyhow::bail;
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Builder, ConnectorBuilder, proxy::ProxyConfig};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// The Amazon Trust Services roots, as published at
/// <https://www.amazontrust.com/repository/>.
pub const AMAZON_TRUST_SERVICES_ROOTS: &str = include_str!("amazon-trust-services.pem");

/// The roots the SDK's HTTPS client trusts (`TLS_TRUSTED_ROOTS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrustedRoots {
    /// The Amazon Trust Services roots only (`amazon`, the default).
    #[default]
    Amazon,
    /// The platform's store, the SDK's default (`system`).
    System,
}

impl TrustedRoots {
    /// Parses `TLS_TRUSTED_ROOTS`: unset or empty is [`TrustedRoots::Amazon`].
    pub fn parse(raw: Option<&str>) -> anyhow::Result<Self> {
        match raw {
            None | Some("" | "amazon") => Ok(Self::Amazon),
            Some("system") => Ok(Self::System),
            Some(_) => bail!("TLS_TRUSTED_ROOTS must be amazon or system"),
        }
    }

    fn trust_store(self) -> TrustStore {
        match self {
            Self::Amazon => TrustStore::empty().with_pem_certificate(AMAZON_TRUST_SERVICES_ROOTS.as_bytes()),
            Self::System => TrustStore::default(),
        }
    }
}

/// The SDK's default HTTPS client (rustls on aws-lc, proxy settings from the
/// environment, the connect timeout and sleep of each client's configuration)
/// with `roots` as its trust store.
pub fn https_client(roots: TrustedRoots) -> anyhow::Result<SharedHttpClient> {
    let tls = TlsContext::builder().with_trust_store(roots.trust_store()).build()?;
    Ok(Builder::new().build_with_connector_fn(move |settings, components| {
        let mut connector = ConnectorBuilder::default().tls_provider(Provider::Rustls(CryptoMode::AwsLc));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.tls_context(tls.clone()).build()
    }))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use base64::Engine;
    use sha2::{Digest, Sha256};
    use tokio::io::AsyncReadExt;

    use super::*;

    /// SHA-256 fingerprints published at <https://www.amazontrust.com/repository/>.
    const PUBLISHED: [(&str, &str); 5] = [
        ("Amazon Root CA 1", "8ecde6884f3d87b1125ba31ac3fcb13d7016de7f57cc904fe1cb97c6ae98196e"),
        ("Amazon Root CA 2", "1ba5b2aa8c65401a82960118f80bec4f62304d83cec4713a19c39c011ea46db4"),
        ("Amazon Root CA 3", "18ce6cfe7bf14e60b2e347b8dfe868cb31d02ebb3ada271569f50343b46db3a4"),
        ("Amazon Root CA 4", "e35d28419ed02025cfa69038cd623962458da5c695fbdea3c22b0bfb25897092"),
        ("Starfield Services Root CA G2", "568d6905a2c88708a4b3025190edcfedb1974a606a13c6e5290fcb2ae63edab5"),
    ];

    fn ders(pem: &str) -> Vec<Vec<u8>> {
        pem.split("-----BEGIN CERTIFICATE-----")
            .skip(1)
            .map(|section| {
                let body = section.split("-----END CERTIFICATE-----").next().unwrap();
                let base64: String = body.split_whitespace().collect();
                base64::engine::general_purpose::STANDARD.decode(base64).unwrap()
            })
            .collect()
    }

    #[test]
    fn the_embedded_roots_are_exactly_the_published_amazon_trust_services_roots() {
        let found: Vec<String> =
            ders(AMAZON_TRUST_SERVICES_ROOTS).iter().map(|der| hex(&Sha256::digest(der))).collect();
        let published: Vec<String> = PUBLISHED.iter().map(|(_, fingerprint)| fingerprint.to_string()).collect();
        assert_eq!(found, published, "the bundle holds the five ATS roots in order, nothing else");
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    #[test]
    fn the_setting_defaults_to_amazon_and_refuses_a_typo() {
        assert_eq!(TrustedRoots::parse(None).unwrap(), TrustedRoots::Amazon);
        assert_eq!(TrustedRoots::parse(Some("")).unwrap(), TrustedRoots::Amazon);
        assert_eq!(TrustedRoots::parse(Some("amazon")).unwrap(), TrustedRoots::Amazon);
        assert_eq!(TrustedRoots::parse(Some("system")).unwrap(), TrustedRoots::System);
        assert!(TrustedRoots::parse(Some("all")).is_err(), "a typo is no silent default");
    }

    /// The SDK parses the trust store when a client opens its first connection,
    /// and panics on a certificate it cannot parse: a call over HTTPS through
    /// this client must reach the TLS handshake (the listener reads a
    /// ClientHello) and fail as a connection error, for each setting.
    #[tokio::test]
    async fn a_call_over_https_parses_the_trust_store_and_starts_a_handshake() {
        for roots in [TrustedRoots::Amazon, TrustedRoots::System] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let endpoint = format!("https://localhost:{}", listener.local_addr().unwrap().port());
            let first_byte = tokio::spawn(async move {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut byte = [0u8; 1];
                socket.read_exact(&mut byte).await.unwrap();
                byte[0]
            });
            let config = aws_sdk_secretsmanager::Config::builder()
                .behavior_version(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("eu-west-1"))
                .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
                    "id", "secret", None, None, "test",
                ))
                .endpoint_url(endpoint)
                .http_client(https_client(roots).unwrap())
                .retry_config(aws_config::retry::RetryConfig::disabled())
                .timeout_config(
                    aws_config::timeout::TimeoutConfig::builder().operation_timeout(Duration::from_secs(2)).build(),
                )
                .build();
            let client = aws_sdk_secretsmanager::Client::from_conf(config);
            let answer = client.get_secret_value().secret_id("any").send().await;
            assert!(answer.is_err(), "{roots:?}: the listener never answers the handshake");
            assert_eq!(first_byte.await.unwrap(), 0x16, "{roots:?}: a TLS handshake record reached the endpoint");
        }
    }
}
