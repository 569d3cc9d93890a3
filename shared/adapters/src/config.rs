//! The shop's own settings, read once from the environment beside the
//! framework's [`framework::Settings`]: its table, queues and email sender,
//! what the shop's rules are tuned with (hold limits and time, the
//! lifetimes of sessions and emailed links) and where its emails point.

use std::collections::BTreeMap;

use anyhow::Context;

use domain::{HoldLimits, HoldTime, RefreshLifetime, ResetLifetime, ValidationError, VerificationTtl};
use framework::config::{seconds, whole_number};

/// What the environment configures of the shop. Variables are set by
/// `template.yaml` in the cloud and by `cargo xtask dev|test` locally; only
/// `TABLE_NAME` is required, every other has a default (or is needed only by
/// the functions that use it).
#[derive(Debug, Clone)]
pub struct ShopSettings {
    /// The one DynamoDB table (single-table design).
    pub table_name: String,
    /// Queue URL per queue name, from `<NAME>_QUEUE_URL` variables
    /// (`ORDER_PLACED_QUEUE_URL` is the `order-placed` queue).
    pub queue_urls: BTreeMap<String, String>,
    /// Dead-letter queue URL per queue name, from `<NAME>_DLQ_URL`.
    pub dead_letter_urls: BTreeMap<String, String>,
    /// The verified SES identity emails are sent from (`SENDER_EMAIL`).
    pub sender_email: String,
    /// How long a refresh token stays valid unused (`REFRESH_TOKEN_TTL_SECONDS`,
    /// default 14 days); each refresh issues a new one.
    pub refresh_ttl: RefreshLifetime,
    /// How long a password reset link works (`PASSWORD_RESET_TTL_SECONDS`,
    /// default 30 minutes).
    pub reset_ttl: ResetLifetime,
    /// Where links in emails point (`PUBLIC_BASE_URL`, the shop's website,
    /// no trailing slash): configured, never taken from a request's Host.
    pub public_base_url: String,
    /// How long an email verification link works
    /// (`EMAIL_VERIFICATION_TTL_SECONDS`, default 24 hours).
    pub verification_ttl: VerificationTtl,
    /// Caps on one account's open orders (`MAX_OPEN_ORDERS_PER_ACCOUNT`,
    /// default 10; `MAX_HELD_UNITS_PER_PRODUCT`, default 20).
    pub hold_limits: HoldLimits,
    /// How long an order may stay open before it expires (`ORDER_HOLD_SECONDS`, default 48 hours).
    pub hold_time: HoldTime,
}

impl ShopSettings {
    /// Reads the process environment; the error names the variable that is
    /// missing (only `TABLE_NAME` is required) or malformed.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests need not touch the process env.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let table_name = lookup("TABLE_NAME").filter(|v| !v.is_empty()).context("TABLE_NAME is not set")?;
        let urls = |suffix: &str| {
            ["USER_CREATED", "ORDER_PLACED", "EMAIL_SEND"]
                .into_iter()
                .filter_map(|name| {
                    let url = lookup(&format!("{name}_{suffix}")).filter(|url| !url.is_empty())?;
                    Some((name.to_lowercase().replace('_', "-"), url))
                })
                .collect()
        };
        let (queue_urls, dead_letter_urls) = (urls("QUEUE_URL"), urls("DLQ_URL"));
        let sender_email = lookup("SENDER_EMAIL").unwrap_or_default();
        let named = |name: &'static str| move |error: ValidationError| anyhow::anyhow!("{name}: {error}");
        let hold_limits = HoldLimits::new(
            whole_number(&lookup, "MAX_OPEN_ORDERS_PER_ACCOUNT", HoldLimits::DEFAULT_OPEN_ORDERS)?,
            whole_number(&lookup, "MAX_HELD_UNITS_PER_PRODUCT", HoldLimits::DEFAULT_UNITS_PER_PRODUCT)?,
        )
        .map_err(named("hold limits"))?;
        let hold_time = HoldTime::new(seconds(&lookup, "ORDER_HOLD_SECONDS", HoldTime::DEFAULT.get())?)
            .map_err(named("ORDER_HOLD_SECONDS"))?;
        let refresh_ttl =
            RefreshLifetime::new(seconds(&lookup, "REFRESH_TOKEN_TTL_SECONDS", RefreshLifetime::DEFAULT.get())?)
                .map_err(named("REFRESH_TOKEN_TTL_SECONDS"))?;
        let reset_ttl =
            ResetLifetime::new(seconds(&lookup, "PASSWORD_RESET_TTL_SECONDS", ResetLifetime::DEFAULT.get())?)
                .map_err(named("PASSWORD_RESET_TTL_SECONDS"))?;
        let verification_ttl = VerificationTtl::new(
            seconds(&lookup, "EMAIL_VERIFICATION_TTL_SECONDS", VerificationTtl::DEFAULT.get())?.as_secs(),
        )
        .map_err(named("EMAIL_VERIFICATION_TTL_SECONDS"))?;
        let public_base_url = lookup("PUBLIC_BASE_URL")
            .unwrap_or_else(|| "http://localhost:3000".to_owned())
            .trim_end_matches('/')
            .to_owned();
        Ok(Self {
            table_name,
            queue_urls,
            dead_letter_urls,
            sender_email,
            refresh_ttl,
            reset_ttl,
            public_base_url,
            verification_ttl,
            hold_limits,
            hold_time,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;

    /// Settings from `vars`, with a table unless they name one.
    fn settings(vars: &[(&str, &str)]) -> anyhow::Result<ShopSettings> {
        let mut vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        vars.entry("TABLE_NAME".into()).or_insert_with(|| "shop".into());
        ShopSettings::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn the_table_is_required_and_queues_are_named_by_their_variables() {
        assert!(settings(&[("TABLE_NAME", "")]).is_err(), "an empty TABLE_NAME is none");
        let configured = settings(&[
            ("ORDER_PLACED_QUEUE_URL", "https://sqs/order-placed"),
            ("EMAIL_SEND_DLQ_URL", "https://sqs/email-send-dlq"),
            ("USER_CREATED_QUEUE_URL", ""),
            ("SENDER_EMAIL", "shop@example.com"),
        ])
        .unwrap();
        assert_eq!(configured.table_name, "shop");
        assert_eq!(configured.queue_urls.keys().collect::<Vec<_>>(), ["order-placed"]);
        assert_eq!(configured.dead_letter_urls["email-send"], "https://sqs/email-send-dlq");
        assert_eq!(configured.sender_email, "shop@example.com");
    }

    #[test]
    fn defaults_are_safe() {
        let defaults = settings(&[]).unwrap();
        assert_eq!(defaults.refresh_ttl, RefreshLifetime::DEFAULT);
        assert_eq!(defaults.reset_ttl, ResetLifetime::DEFAULT);
        assert_eq!(defaults.hold_limits, HoldLimits::default());
        assert_eq!(defaults.hold_time, HoldTime::DEFAULT);
    }

    #[test]
    fn verification_links_last_a_day_unless_configured() {
        let defaults = settings(&[]).unwrap();
        assert_eq!(defaults.verification_ttl, VerificationTtl::DEFAULT);
        assert_eq!(defaults.public_base_url, "http://localhost:3000");
        let short =
            settings(&[("EMAIL_VERIFICATION_TTL_SECONDS", "5"), ("PUBLIC_BASE_URL", "https://shop.example.com/")])
                .unwrap();
        assert_eq!(short.verification_ttl.get(), Duration::from_secs(5));
        assert_eq!(short.public_base_url, "https://shop.example.com", "no trailing slash");
        assert!(settings(&[("EMAIL_VERIFICATION_TTL_SECONDS", "0")]).is_err());
    }

    #[test]
    fn hold_limits_and_time_are_read_and_checked() {
        let configured = settings(&[
            ("MAX_OPEN_ORDERS_PER_ACCOUNT", "3"),
            ("MAX_HELD_UNITS_PER_PRODUCT", "7"),
            ("ORDER_HOLD_SECONDS", "30"),
        ])
        .unwrap();
        assert_eq!((configured.hold_limits.open_orders(), configured.hold_limits.units_per_product()), (3, 7));
        assert_eq!(configured.hold_time.get(), Duration::from_secs(30));
        for (name, value) in
            [("MAX_OPEN_ORDERS_PER_ACCOUNT", "0"), ("MAX_HELD_UNITS_PER_PRODUCT", "many"), ("ORDER_HOLD_SECONDS", "0")]
        {
            assert!(settings(&[(name, value)]).is_err(), "{name}={value}");
        }
    }

    #[test]
    fn session_lifetimes_are_read_and_checked() {
        assert!(settings(&[("REFRESH_TOKEN_TTL_SECONDS", "0")]).is_err());
        let short = settings(&[("REFRESH_TOKEN_TTL_SECONDS", "7"), ("PASSWORD_RESET_TTL_SECONDS", "9")]).unwrap();
        assert_eq!(short.refresh_ttl.get(), Duration::from_secs(7));
        assert_eq!(short.reset_ttl.get(), Duration::from_secs(9));
    }
}
