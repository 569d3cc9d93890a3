//! Configuration, read once from the environment into typed values.
//! Secrets are never configured here: only the *id* of the secret that holds them.

use std::time::Duration;

use anyhow::{Context, bail};

/// Everything a function reads from its environment. Variables are set by
/// `template.yaml` in the cloud and by `cargo xtask dev|test` locally.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The one DynamoDB table (single-table design).
    pub table_name: String,
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
    /// How long a refresh token stays valid unused (`REFRESH_TOKEN_TTL_SECONDS`,
    /// default 14 days); each refresh issues a new one.
    pub refresh_ttl: domain::RefreshLifetime,
    /// How long a password reset link works (`PASSWORD_RESET_TTL_SECONDS`,
    /// default 30 minutes).
    pub reset_ttl: domain::ResetLifetime,
    /// Where links in emails point (`PUBLIC_BASE_URL`, the shop's website,
    /// no trailing slash): configured, never taken from a request's Host.
    pub public_base_url: String,
    /// How long an email verification link works
    /// (`EMAIL_VERIFICATION_TTL_SECONDS`, default 24 hours).
    pub verification_ttl: domain::VerificationTtl,
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
    /// Queue URL per queue name, from `<NAME>_QUEUE_URL` variables
    /// (`ORDER_PLACED_QUEUE_URL` is the `order-placed` queue).
    pub queue_urls: std::collections::BTreeMap<String, String>,
    /// Dead-letter queue URL per queue name, from `<NAME>_DLQ_URL`.
    pub dead_letter_urls: std::collections::BTreeMap<String, String>,
    /// The verified SES identity emails are sent from.
    pub sender_email: String,
    /// Caps on one account's open orders (`MAX_OPEN_ORDERS_PER_ACCOUNT`,
    /// default 10; `MAX_HELD_UNITS_PER_PRODUCT`, default 20).
    pub hold_limits: domain::HoldLimits,
    /// How long an order may stay open before it expires (`ORDER_HOLD_SECONDS`, default 48 hours).
    pub hold_time: domain::HoldTime,
}

impl Settings {
    /// The time budgets derived from the function's timeout.
    pub fn budget(&self) -> crate::budget::Budget {
        crate::budget::Budget::new(self.function_timeout)
    }

    /// Reads the process environment; the error names the variable that is
    /// missing (only `TABLE_NAME` is required) or malformed.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests need not touch the process env.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let required =
            |name: &str| lookup(name).filter(|v| !v.is_empty()).with_context(|| format!("{name} is not set"));
        let seconds = |name: &str, default: u64| -> anyhow::Result<Duration> {
            match lookup(name) {
                None => Ok(Duration::from_secs(default)),
                Some(raw) => {
                    let value: u64 = raw.parse().with_context(|| format!("{name} must be a number of seconds"))?;
                    if value == 0 {
                        bail!("{name} must be positive");
                    }
                    Ok(Duration::from_secs(value))
                }
            }
        };
        let max_body_bytes = match lookup("MAX_BODY_BYTES") {
            None => 64 * 1024,
            Some(raw) => raw.parse().context("MAX_BODY_BYTES must be a number of bytes")?,
        };
        let urls = |suffix: &str| {
            ["USER_CREATED", "ORDER_PLACED", "EMAIL_SEND"]
                .into_iter()
                .filter_map(|name| {
                    let url = lookup(&format!("{name}_{suffix}")).filter(|url| !url.is_empty())?;
                    Some((name.to_lowercase().replace('_', "-"), url))
                })
                .collect()
        };
        let count = |name: &str, default: u32| -> anyhow::Result<u32> {
            lookup(name)
                .map_or(Ok(default), |raw| raw.parse().with_context(|| format!("{name} must be a whole number")))
        };
        let hold_limits = domain::HoldLimits::new(
            count("MAX_OPEN_ORDERS_PER_ACCOUNT", domain::HoldLimits::DEFAULT_OPEN_ORDERS)?,
            count("MAX_HELD_UNITS_PER_PRODUCT", domain::HoldLimits::DEFAULT_UNITS_PER_PRODUCT)?,
        )
        .map_err(|error| anyhow::anyhow!("hold limits: {error}"))?;
        let hold_time =
            domain::HoldTime::new(seconds("ORDER_HOLD_SECONDS", domain::HoldTime::DEFAULT.get().as_secs())?)
                .map_err(|error| anyhow::anyhow!("ORDER_HOLD_SECONDS: {error}"))?;
        let queue_urls = urls("QUEUE_URL");
        let dead_letter_urls = urls("DLQ_URL");
        Ok(Self {
            client_ip_header: lookup("CLIENT_IP_HEADER").filter(|h| !h.is_empty()).map(|h| h.to_lowercase()),
            client_ip_trusted_hops: match lookup("CLIENT_IP_TRUSTED_HOPS") {
                None => 1,
                Some(raw) => {
                    raw.parse().ok().filter(|hops| *hops >= 1).context("CLIENT_IP_TRUSTED_HOPS must be 1 or more")?
                }
            },
            function_timeout: seconds("FUNCTION_TIMEOUT_SECONDS", 10)?,
            queue_urls,
            dead_letter_urls,
            sender_email: lookup("SENDER_EMAIL").unwrap_or_default(),
            table_name: required("TABLE_NAME")?,
            token_signing_key_secret_id: lookup("TOKEN_SIGNING_KEY_SECRET_ID").unwrap_or_default(),
            token_public_keys_secret_id: lookup("TOKEN_PUBLIC_KEYS_SECRET_ID").unwrap_or_default(),
            cursor_key_secret_id: lookup("CURSOR_KEY_SECRET_ID").unwrap_or_default(),
            token_ttl: seconds("TOKEN_TTL_SECONDS", 5 * 60)?,
            refresh_ttl: domain::RefreshLifetime::new(seconds(
                "REFRESH_TOKEN_TTL_SECONDS",
                domain::RefreshLifetime::DEFAULT.get().as_secs(),
            )?)
            .map_err(|error| anyhow::anyhow!("REFRESH_TOKEN_TTL_SECONDS: {error}"))?,
            reset_ttl: domain::ResetLifetime::new(seconds(
                "PASSWORD_RESET_TTL_SECONDS",
                domain::ResetLifetime::DEFAULT.get().as_secs(),
            )?)
            .map_err(|error| anyhow::anyhow!("PASSWORD_RESET_TTL_SECONDS: {error}"))?,
            public_base_url: lookup("PUBLIC_BASE_URL")
                .unwrap_or_else(|| "http://localhost:3000".to_owned())
                .trim_end_matches('/')
                .to_owned(),
            verification_ttl: domain::VerificationTtl::new(
                seconds("EMAIL_VERIFICATION_TTL_SECONDS", domain::VerificationTtl::DEFAULT.get().as_secs())?.as_secs(),
            )
            .map_err(|error| anyhow::anyhow!("EMAIL_VERIFICATION_TTL_SECONDS: {error}"))?,
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
            hold_limits,
            hold_time,
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
    fn verification_links_last_a_day_unless_configured() {
        let defaults = settings(&[("TABLE_NAME", "t")]).unwrap();
        assert_eq!(defaults.verification_ttl, domain::VerificationTtl::DEFAULT);
        assert_eq!(defaults.public_base_url, "http://localhost:3000");
        let short = settings(&[
            ("TABLE_NAME", "t"),
            ("EMAIL_VERIFICATION_TTL_SECONDS", "5"),
            ("PUBLIC_BASE_URL", "https://shop.example.com/"),
        ])
        .unwrap();
        assert_eq!(short.verification_ttl.get(), Duration::from_secs(5));
        assert_eq!(short.public_base_url, "https://shop.example.com", "no trailing slash");
        assert!(settings(&[("TABLE_NAME", "t"), ("EMAIL_VERIFICATION_TTL_SECONDS", "0")]).is_err());
    }

    #[test]
    fn defaults_are_safe() {
        let settings = settings(&[("TABLE_NAME", "shop")]).unwrap();
        assert_eq!(settings.token_ttl, Duration::from_secs(300));
        assert_eq!(settings.refresh_ttl, domain::RefreshLifetime::DEFAULT);
        assert_eq!(settings.reset_ttl, domain::ResetLifetime::DEFAULT);
        assert!(settings.cors_allowed_origins.is_empty());
        assert_eq!(settings.max_body_bytes, 65536);
        assert_eq!(settings.function_timeout, Duration::from_secs(10));
        assert_eq!(settings.client_ip_trusted_hops, 1);
        assert_eq!(settings.hold_limits, domain::HoldLimits::default());
        assert_eq!(settings.hold_time, domain::HoldTime::DEFAULT);
    }

    #[test]
    fn hold_limits_and_time_are_read_and_checked() {
        let settings = settings(&[
            ("TABLE_NAME", "t"),
            ("MAX_OPEN_ORDERS_PER_ACCOUNT", "3"),
            ("MAX_HELD_UNITS_PER_PRODUCT", "7"),
            ("ORDER_HOLD_SECONDS", "30"),
        ])
        .unwrap();
        assert_eq!((settings.hold_limits.open_orders(), settings.hold_limits.units_per_product()), (3, 7));
        assert_eq!(settings.hold_time.get(), Duration::from_secs(30));
        assert!(settings_with("MAX_OPEN_ORDERS_PER_ACCOUNT", "0").is_err());
        assert!(settings_with("MAX_HELD_UNITS_PER_PRODUCT", "many").is_err());
        assert!(settings_with("ORDER_HOLD_SECONDS", "0").is_err());
    }

    fn settings_with(name: &str, value: &str) -> anyhow::Result<Settings> {
        settings(&[("TABLE_NAME", "t"), (name, value)])
    }

    #[test]
    fn table_is_required_and_numbers_are_checked() {
        assert!(settings(&[]).is_err());
        assert!(settings(&[("TABLE_NAME", "t"), ("TOKEN_TTL_SECONDS", "soon")]).is_err());
        assert!(settings(&[("TABLE_NAME", "t"), ("TOKEN_TTL_SECONDS", "0")]).is_err());
        assert!(!settings(&[("TABLE_NAME", "t")]).unwrap().admin_mfa_required, "off unless asked for");
        assert!(settings(&[("TABLE_NAME", "t"), ("ADMIN_MFA_REQUIRED", "true")]).unwrap().admin_mfa_required);
        assert!(settings(&[("TABLE_NAME", "t"), ("ADMIN_MFA_REQUIRED", "yes")]).is_err(), "a typo is no silent off");
        assert!(settings(&[("TABLE_NAME", "t"), ("REFRESH_TOKEN_TTL_SECONDS", "0")]).is_err());
        let short = settings(&[("TABLE_NAME", "t"), ("REFRESH_TOKEN_TTL_SECONDS", "7")]).unwrap();
        assert_eq!(short.refresh_ttl.get(), Duration::from_secs(7));
    }

    #[test]
    fn parses_origin_list() {
        let settings =
            settings(&[("TABLE_NAME", "t"), ("CORS_ALLOWED_ORIGINS", "https://a.example, https://b.example,")])
                .unwrap();
        assert_eq!(settings.cors_allowed_origins, ["https://a.example", "https://b.example"]);
    }
}
