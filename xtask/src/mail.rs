//! `cargo xtask mail`: the emails the local stack sent, as moto's SES
//! recorded them (`/moto-api/data.json`), the latest last, each link shown
//! with the request that follows it: how a developer on `cargo xtask dev`
//! verifies an address without a mailbox.

use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;

use crate::shell::read_env_file;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only emails to this address.
    #[arg(long)]
    pub to: Option<String>,
    /// How many of the latest to show.
    #[arg(long, default_value_t = 5)]
    pub last: usize,
    /// moto's address; default: the running dev stack's (.local/dev/cloud.env), else http://127.0.0.1:5000.
    #[arg(long)]
    pub moto: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let dev_env = read_env_file(&local_cloud::local_dir().join("dev/cloud.env")).unwrap_or_default();
    let setting = |name: &str| dev_env.iter().find(|(key, _)| key == name).map(|(_, value)| value.clone());
    let moto = args.moto.or_else(|| setting("SHOP_MOTO_ENDPOINT")).unwrap_or_else(|| "http://127.0.0.1:5000".into());
    let api = setting("SHOP_API_URL").unwrap_or_else(|| "http://127.0.0.1:9000".into());
    let url = format!("{}/moto-api/data.json", moto.trim_end_matches('/'));
    let data: Value = reqwest::get(&url)
        .await
        .and_then(reqwest::Response::error_for_status)
        .with_context(|| format!("reading {url}: is `cargo xtask dev` running?"))?
        .json()
        .await
        .with_context(|| format!("{url} is not moto's JSON"))?;
    print!("{}", render(&data, args.to.as_deref(), args.last, &api));
    Ok(ExitCode::SUCCESS)
}

/// The latest `last` emails in moto's `data` (to `to` only, if given), each
/// with its recipient, subject and body, and for a verification link the
/// request that follows it against the API at `api`.
fn render(data: &Value, to: Option<&str>, last: usize, api: &str) -> String {
    let messages: Vec<&Value> = data["ses"]["Message"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|message| to.is_none_or(|to| recipients(message).iter().any(|address| address == to)))
        .collect();
    if messages.is_empty() {
        return format!("no emails{} yet\n", to.map(|to| format!(" to {to}")).unwrap_or_default());
    }
    let mut out = String::new();
    for message in &messages[messages.len().saturating_sub(last)..] {
        let body = message["body"].as_str().unwrap_or_default();
        out.push_str(&format!(
            "── to {}: {}\n",
            recipients(message).join(", "),
            message["subject"].as_str().unwrap_or_default()
        ));
        for line in body.lines() {
            out.push_str(&format!("   {line}\n"));
        }
        if let Some(token) = body.split_once("#token=").and_then(|(_, rest)| rest.split_whitespace().next()) {
            out.push_str(&format!(
                "   follow the link: curl -s -X POST {api}/api/v1/auth/verify-email -H 'content-type: application/json' -d '{{\"token\":\"{token}\"}}'\n"
            ));
        }
    }
    out
}

fn recipients(message: &Value) -> Vec<String> {
    message["destinations"]["ToAddresses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|address| address.as_str().map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn message(to: &str, subject: &str, body: &str) -> Value {
        json!({"destinations": {"ToAddresses": [to]}, "subject": subject, "body": body, "source": "shop@example.com"})
    }

    #[test]
    fn shows_the_latest_emails_and_how_to_follow_a_link() {
        let data = json!({"ses": {"Message": [
            message("old@example.com", "Welcome to the shop", "Hello"),
            message("ada@example.com", "Confirm your email address", "Open:\n\nhttp://localhost:3000/verify-email#token=01ABC.s3cr3t\n\nThe shop"),
            message("bob@example.com", "Order 1 confirmed", "Hello Bob"),
        ]}});
        let shown = render(&data, None, 2, "http://127.0.0.1:9000");
        assert!(!shown.contains("old@example.com"), "only the latest two: {shown}");
        assert!(shown.contains("── to ada@example.com: Confirm your email address"), "{shown}");
        assert!(shown.contains(r#"-d '{"token":"01ABC.s3cr3t"}'"#), "{shown}");
        assert!(shown.contains("http://127.0.0.1:9000/api/v1/auth/verify-email"), "{shown}");
        let only_bob = render(&data, Some("bob@example.com"), 5, "http://api");
        assert!(only_bob.contains("Hello Bob") && !only_bob.contains("ada@"), "{only_bob}");
        assert_eq!(render(&json!({}), Some("x@example.com"), 5, "http://api"), "no emails to x@example.com yet\n");
    }
}
