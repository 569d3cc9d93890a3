//! Which certificate authorities the SDK's HTTPS client trusts.
//!
//! Every endpoint the functions call over HTTPS is an AWS service endpoint of
//! the `aws` partition (DynamoDB, SQS, SES, Secrets Manager; X-Ray is UDP, and
//! Lambda's credentials come from the environment), and AWS serves those with
//! certificates from Amazon Trust Services. So the client trusts the five ATS
//! roots (`amazon-trust-services.pem`: Amazon Root CA 1 to 4 and Starfield
//! Services Root CA G2, which cross-signs them) and nothing else, instead of
//! the SDK's default, the platform's whole store.
//!
//! Two gains. A certificate for an AWS hostname issued by any of the other
//! public CAs is refused. And the SDK, which builds a client's trust store
//! when the client is constructed (once per service client, and again for
//! each other pair of connect and read timeouts), parses five certificates
//! embedded in the binary instead of every certificate of the platform's
//! store, which it also reads from disk once per process: the largest single
//! CPU cost of a cold start in the bench's profile.
//!
//! `TLS_TRUSTED_ROOTS=system` (the template's `TlsTrustedRoots`) restores the
//! SDK's default, the platform's store, without a rebuild: for a TLS-inspecting
//! proxy, a partition whose endpoints chain elsewhere (China, the European
//! Sovereign Cloud, the isolated regions), or should AWS ever serve an
//! endpoint from another CA.

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
            Some(other) => bail!("TLS_TRUSTED_ROOTS must be amazon or system, not {other:?}"),
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
/// with `roots` as its trust store. One client serves every service client
/// built from the configuration, one connection pool per pair of timeouts.
///
/// A copy of `default_https_client` in aws-smithy-runtime (1.10,
/// `src/client/http.rs`, the settings of the latest behaviour version) but
/// for the TLS context: compare it again when the SDK is upgraded. The
/// public `build_https` would drop the proxy settings.
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
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    use sha2::{Digest, Sha256};

    use super::*;

    /// SHA-256 fingerprints of the certificates published at
    /// <https://www.amazontrust.com/repository/>.
    const PUBLISHED: [(&str, &str); 5] = [
        ("Amazon Root CA 1", "8ecde6884f3d87b1125ba31ac3fcb13d7016de7f57cc904fe1cb97c6ae98196e"),
        ("Amazon Root CA 2", "1ba5b2aa8c65401a82960118f80bec4f62304d83cec4713a19c39c011ea46db4"),
        ("Amazon Root CA 3", "18ce6cfe7bf14e60b2e347b8dfe868cb31d02ebb3ada271569f50343b46db3a4"),
        ("Amazon Root CA 4", "e35d28419ed02025cfa69038cd623962458da5c695fbdea3c22b0bfb25897092"),
        ("Starfield Services Root CA G2", "568d6905a2c88708a4b3025190edcfedb1974a606a13c6e5290fcb2ae63edab5"),
    ];

    /// Read with the parser the SDK uses, which panics on what it cannot read
    /// when a client is constructed.
    #[test]
    fn the_embedded_roots_are_exactly_the_published_amazon_trust_services_roots() {
        let found: Vec<String> = CertificateDer::pem_slice_iter(AMAZON_TRUST_SERVICES_ROOTS.as_bytes())
            .map(|der| hex(&Sha256::digest(der.expect("the SDK reads every certificate"))))
            .collect();
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
}
