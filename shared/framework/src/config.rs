//! Configuration, read once from the environment into typed values.
//! Secrets are never configured here: only the *id* of the secret that holds them.

use std::time::Duration;

use anyhow::{Context, bail};

/// Everything a function reads from its environment. Variables are set by
/// `template.yaml` in the cloud and by `cargo xtask dev|test` locally.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Secrets Manager id of the private token keys (the issuer's only).
    pub token_signing_key_secret_id: String,
    /// Secrets Manager id of the public token keys (not secret).
    pub token_public_keys_secret_id: String,
    /// Secrets Manager id of the pagination cursor key.
    pub cursor_key_secret_id: String,
    /// How long an access token lives (`TOKEN_TTL_SECONDS`, default 5
    /// minutes): also how long a read may trust a role an account no longer
    /// has, or a session that has ended.
    pub token_ttl: Duration,
    /// How long fetched token and cursor keys are trusted before being re-read.
    pub key_cache_ttl: Duration,
    /// Whether admin-only routes need a token whose sign-in checked a second
    /// factor (`ADMIN_MFA_REQUIRED`, `true` or `false`, default `false`; the
    /// template's `AdminMfaRequired`, on in prod): an admin without a
    /// confirmed TOTP enrolment can still sign in and enrol, nothing more.
    pub admin_mfa_required: bool,
    /// Origins allowed by CORS; empty means no cross-origin access.
    pub cors_allowed_origins: Vec<String>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// The function's timeout (`FUNCTION_TIMEOUT_SECONDS`, the template's
    /// `Timeout`): every time budget inside the function is derived from it.
    pub function_timeout: Duration,
    /// A header naming the client's address, trusted only when set: for
    /// deployments behind a proxy that sets it, and for the local stack,
    /// where `cargo lambda watch` reports every caller as 127.0.0.1. Empty
    /// in the cloud, where API Gateway's own `sourceIp` is used.
    pub client_ip_header: Option<String>,
    /// How many trusted proxies append to that header: the client's address
    /// is this many entries from the right (`CLIENT_IP_TRUSTED_HOPS`, default
    /// 1). Entries further left are written by the client and never trusted.
    pub client_ip_trusted_hops: usize,
    /// The certificate authorities the SDK's HTTPS client trusts
    /// (`TLS_TRUSTED_ROOTS`, `amazon` by default or `system`; see [`crate::aws::tls`]).
    pub trusted_roots: crate::aws::tls::TrustedRoots,
}

/// Reads `name` as a positive number of seconds, `default` when unset; the
/// error names the variable.
pub fn seconds(lookup: impl Fn(&str) -> Option<String>, name: &str, default: Duration) -> anyhow::Result<Duration> {
    let Some(raw) = lookup(name) else { return Ok(default) };
    let value: u64 = raw.parse().with_context(|| format!("{name} must be a number of seconds"))?;
    if value == 0 {
        bail!("{name} must be positive");
    }
    Ok(Duration::from_secs(value))
}

/// Reads `name` as a whole number, `default` when unset; the error names the variable.
pub fn whole_number(lookup: impl Fn(&str) -> Option<String>, name: &str, default: u32) -> anyhow::Result<u32> {
    lookup(name).map_or(Ok(default), |raw| raw.parse().with_context(|| format!("{name} must be a whole number")))
}

impl Settings {
    /// The time budgets derived from the function's timeout.
    pub fn budget(&self) -> crate::budget::Budget {
        crate::budget::Budget::new(self.function_timeout)
    }

    /// Reads the process environment; every variable has a default, and the
    /// error names the one that is malformed.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests need not touch the process env.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let seconds = |name: &str, default: u64| seconds(&lookup, name, Duration::from_secs(default));
        let max_body_bytes = match lookup("MAX_BODY_BYTES") {
            None => 64 * 1024,
            Some(raw) => raw.parse().context("MAX_BODY_BYTES must be a number of bytes")?,
        };
        Ok(Self {
            client_ip_header: lookup("CLIENT_IP_HEADER").filter(|h| !h.is_empty()).map(|h| h.to_lowercase()),
            client_ip_trusted_hops: match lookup("CLIENT_IP_TRUSTED_HOPS") {
                None => 1,
                Some(raw) => {
                    raw.parse().ok().filter(|hops| *hops >= 1).context("CLIENT_IP_TRUSTED_HOPS must be 1 or more")?
                }
            },
            function_timeout: seconds("FUNCTION_TIMEOUT_SECONDS", 10)?,
            token_signing_key_secret_id: lookup("TOKEN_SIGNING_KEY_SECRET_ID").unwrap_or_default(),
            token_public_keys_secret_id: lookup("TOKEN_PUBLIC_KEYS_SECRET_ID").unwrap_or_default(),
            cursor_key_secret_id: lookup("CURSOR_KEY_SECRET_ID").unwrap_or_default(),
            token_ttl: seconds("TOKEN_TTL_SECONDS", 5 * 60)?,
            key_cache_ttl: seconds("SIGNING_KEY_CACHE_SECONDS", 5 * 60)?,
            admin_mfa_required: match lookup("ADMIN_MFA_REQUIRED").as_deref() {
                None | Some("" | "false") => false,
                Some("true") => true,
                Some(_) => bail!("ADMIN_MFA_REQUIRED must be true or false"),
            },
            cors_allowed_origins: lookup("CORS_ALLOWED_ORIGINS")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|origin| !origin.is_empty())
                .map(str::to_owned)
                .collect(),
            max_body_bytes,
            trusted_roots: crate::aws::tls::TrustedRoots::parse(lookup("TLS_TRUSTED_ROOTS").as_deref())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> anyhow::Result<Settings> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_are_safe() {
        let settings = settings(&[]).unwrap();
        assert_eq!(settings.token_ttl, Duration::from_secs(300));
        assert!(settings.cors_allowed_origins.is_empty());
        assert_eq!(settings.max_body_bytes, 65536);
        assert_eq!(settings.function_timeout, Duration::from_secs(10));
        assert_eq!(settings.client_ip_trusted_hops, 1);
    }

    #[test]
    fn numbers_and_switches_are_checked() {
        assert!(settings(&[("TABLE_NAME", "t"), ("TOKEN_TTL_SECONDS", "soon")]).is_err());
        assert!(settings(&[("TABLE_NAME", "t"), ("TOKEN_TTL_SECONDS", "0")]).is_err());
        assert!(!settings(&[("TABLE_NAME", "t")]).unwrap().admin_mfa_required, "off unless asked for");
        assert!(settings(&[("TABLE_NAME", "t"), ("ADMIN_MFA_REQUIRED", "true")]).unwrap().admin_mfa_required);
        assert!(settings(&[("TABLE_NAME", "t"), ("ADMIN_MFA_REQUIRED", "yes")]).is_err(), "a typo is no silent off");
    }

    #[test]
    fn parses_origin_list() {
        let settings =
            settings(&[("TABLE_NAME", "t"), ("CORS_ALLOWED_ORIGINS", "https://a.example, https://b.example,")])
                .unwrap();
        assert_eq!(settings.cors_allowed_origins, ["https://a.example", "https://b.example"]);
    }
}
