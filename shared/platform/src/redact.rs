//! The one redaction helper: everything an input could put into a log line,
//! an event log or a dead-letter reason goes through here first. Email
//! addresses, bearer tokens (JWTs) and the values of secret-looking fields
//! never leave the function.

use serde_json::Value;

/// What a removed value is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Field names whose values are never shown, whatever they hold.
const SECRET_FIELDS: [&str; 9] =
    ["password", "token", "authorization", "cookie", "secret", "email", "to", "x-api-key", "idempotency-key"];

/// `value` with secret fields and secret-looking strings replaced, at any depth.
pub fn value(value: &Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(name, inner)| {
                    let secret = SECRET_FIELDS.iter().any(|field| name.eq_ignore_ascii_case(field))
                        || name.to_ascii_lowercase().contains("password");
                    (name.clone(), if secret { Value::String(REDACTED.into()) } else { self::value(inner) })
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(self::value).collect()),
        Value::String(text) => Value::String(self::text(text)),
        other => other.clone(),
    }
}

/// `text` with every email address and every JWT replaced. A JSON document
/// inside the text (an event body) is redacted field by field.
pub fn text(text: &str) -> String {
    if let Ok(document @ (Value::Object(_) | Value::Array(_))) = serde_json::from_str::<Value>(text) {
        return self::value(&document).to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    for character in text.chars() {
        if is_word(character) {
            word.push(character);
        } else {
            out.push_str(&scrub(&word));
            word.clear();
            out.push(character);
        }
    }
    out.push_str(&scrub(&word));
    out
}

/// Characters an email address or a token is made of.
fn is_word(character: char) -> bool {
    !character.is_whitespace()
        && !matches!(character, '"' | '\'' | ',' | ';' | '(' | ')' | '<' | '>' | '[' | ']' | '{' | '}' | '`')
}

fn scrub(word: &str) -> String {
    let bare = word.trim_end_matches(['.', ':']);
    let email = bare.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    let jwt = bare.starts_with("eyJ") && bare.matches('.').count() >= 1;
    let bearer_fragment = bare.len() > 40 && bare.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if email || jwt || bearer_fragment { REDACTED.to_owned() } else { word.to_owned() }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn emails_tokens_and_passwords_never_survive() {
        let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLW9mLWEtdG9rZW4";
        let event = json!({
            "headers": {"Authorization": format!("Bearer {token}"), "Content-Type": "application/json"},
            "body": "{\"email\":\"ada@example.com\",\"password\":\"correct horse battery\"}",
            "data": {"to": "grace@example.com", "user_id": "01J9Z3NDEKTSV4RRFFQ69G5FAV"},
        });
        let shown = value(&event).to_string();
        for secret in ["ada@example.com", "grace@example.com", "correct horse", token] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
        assert!(shown.contains("01J9Z3NDEKTSV4RRFFQ69G5FAV"), "ids stay: {shown}");
        assert!(shown.contains("application/json"));
    }

    #[test]
    fn free_text_keeps_everything_but_addresses_and_tokens() {
        let reason = "invalid event data: unknown field `total`, the address was 'x.y@shop.example.org'.";
        assert_eq!(text(reason), "invalid event data: unknown field `total`, the address was '[redacted]'.");
        assert_eq!(
            text("order 01J9Z3NDEKTSV4RRFFQ69G5FAV does not exist"),
            "order 01J9Z3NDEKTSV4RRFFQ69G5FAV does not exist"
        );
        assert!(!text("Bearer eyJhbGciOi.eyJzdWIi.sig and more").contains("eyJ"));
    }
}
