//! Which roots the SDK's HTTPS client trusts, as `load_config` builds it from
//! the settings: against a local TLS server whose certificate chains to a
//! throwaway root that the platform's store trusts (`SSL_CERT_FILE` names it),
//! `TLS_TRUSTED_ROOTS=system` completes the handshake, and the default, the
//! Amazon Trust Services roots only, refuses it.
//!
//! Each case runs in a child process of this test binary: the SDK reads the
//! platform's store once per process, and a test may not change its own
//! environment.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls;

/// Set in the child: the folder holding the throwaway root and the server's certificate.
const CHILD_FOLDER: &str = "TRUSTED_ROOTS_TEST_FOLDER";

#[test]
fn amazon_roots_refuse_a_root_the_platform_store_trusts_and_system_accepts_it() {
    let folder = throwaway_pki();
    let handshake = |roots: Option<&str>| {
        let mut child = Command::new(std::env::current_exe().unwrap());
        child
            .args(["--exact", "handshake_in_a_child_process", "--ignored", "--nocapture"])
            .env(CHILD_FOLDER, &folder)
            .env("SSL_CERT_FILE", folder.join("root.pem"))
            .env_remove("SSL_CERT_DIR")
            .env("AWS_REGION", "eu-west-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .env_remove("TLS_TRUSTED_ROOTS");
        if let Some(roots) = roots {
            child.env("TLS_TRUSTED_ROOTS", roots);
        }
        let output = child.output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "the child failed: {stdout}{}", String::from_utf8_lossy(&output.stderr));
        stdout.lines().find_map(|line| line.strip_prefix("handshake: ")).map(str::to_owned).unwrap_or(stdout)
    };
    assert_eq!(handshake(Some("system")), "completed", "the platform's store trusts the throwaway root");
    let refused = handshake(None);
    assert!(refused.starts_with("refused"), "the default trusts Amazon's roots only: {refused}");
    assert!(refused.contains("UnknownCA"), "refused for the issuer, not for another reason: {refused}");
    assert!(handshake(Some("amazon")).starts_with("refused"));
    std::fs::remove_dir_all(folder).unwrap();
}

/// A root made for this run (no key is kept in the repository) and a
/// certificate for `localhost` it signs.
fn throwaway_pki() -> PathBuf {
    let folder = std::env::temp_dir().join(format!("trusted-roots-{}", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap();
    let root_key = rcgen::KeyPair::generate().unwrap();
    let mut root = rcgen::CertificateParams::new(Vec::new()).unwrap();
    root.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    root.distinguished_name.push(rcgen::DnType::CommonName, "throwaway test root");
    let root = root.self_signed(&root_key).unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&server_key, &root, &root_key)
        .unwrap();
    std::fs::write(folder.join("root.pem"), root.pem()).unwrap();
    std::fs::write(folder.join("server.pem"), server.pem()).unwrap();
    std::fs::write(folder.join("server.key"), server_key.serialize_pem()).unwrap();
    folder
}

/// The child: serves one TLS handshake with the throwaway certificate, makes
/// a call through `load_config`'s client and prints how the handshake ended.
#[tokio::test]
#[ignore = "run by the test above, in a child process with its own environment"]
async fn handshake_in_a_child_process() {
    let folder = PathBuf::from(std::env::var(CHILD_FOLDER).expect("run by the test above"));
    let acceptor = tokio_rustls::TlsAcceptor::from(server_config(&folder));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("https://localhost:{}", listener.local_addr().unwrap().port());
    let server = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        acceptor.accept(socket).await.map(drop)
    });

    let settings = framework::config::Settings::from_env().unwrap();
    let config = framework::aws::load_config(&settings).await.unwrap();
    let client = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::config::Builder::from(&config)
            .endpoint_url(endpoint)
            .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new("id", "secret", None, None, "test"))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build(),
    );
    // The server closes after the handshake, so the call fails either way.
    let call = client.get_secret_value().secret_id("any").send();
    let _ = tokio::time::timeout(Duration::from_secs(5), call).await;
    match tokio::time::timeout(Duration::from_secs(5), server).await {
        Ok(Ok(Ok(()))) => println!("handshake: completed"),
        Ok(Ok(Err(error))) => println!("handshake: refused: {error:?}"),
        other => println!("handshake: never happened: {other:?}"),
    }
}

fn server_config(folder: &Path) -> Arc<rustls::ServerConfig> {
    let chain = vec![CertificateDer::from_pem_file(folder.join("server.pem")).unwrap()];
    let key = PrivateKeyDer::from_pem_file(folder.join("server.key")).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    Arc::new(config)
}
