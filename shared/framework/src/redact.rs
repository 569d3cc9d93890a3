//! The one redaction helper: everything an input could put into a log line,
//! an event log or a dead-letter reason goes through here first. Email
//! addresses, bearer tokens (JWTs) and the values of secret-looking fields
//! never leave the function. A message body fails closed: unless it is a
//! JSON object or array, whose fields can be told apart, only its length
//! and content type are shown.

use serde_json::Value;

/// What a removed value is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Field names whose values are never shown, whatever they hold (`link`:
/// an email's link carries a single-use token).
const SECRET_FIELDS: [&str; 10] =
    ["password", "token", "authorization", "cookie", "secret", "email", "to", "x-api-key", "idempotency-key", "link"];

/// The field that holds a message body in the events we log (an API
/// Gateway request's, an SQS record's): a text value there is shown as
/// [`body`] shows it.
const BODY_FIELD: &str = "body";

/// `value` with secret fields and secret-looking strings replaced, at any
/// depth, and every text `body` field shown as [`body`] shows it.
pub fn value(value: &Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(name, inner)| {
                    let secret = SECRET_FIELDS.iter().any(|field| name.eq_ignore_ascii_case(field))
                        || name.to_ascii_lowercase().contains("password");
                    let shown = match inner {
                        _ if secret => Value::String(REDACTED.into()),
                        Value::String(text) if name.eq_ignore_ascii_case(BODY_FIELD) => body(text.as_bytes(), None),
                        _ => self::value(inner),
                    };
                    (name.clone(), shown)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(self::value).collect()),
        Value::String(text) => Value::String(self::text(text)),
        other => other.clone(),
    }
}

/// What a log may show of a message body: a JSON object or array redacted
/// field by field, as [`value`] does; anything else (form data, plain text,
/// truncated JSON, JSON with trailing bytes, JSON double-encoded in a
/// string), where nothing tells a secret from the rest, only as its length
/// in bytes and its content type.
pub fn body(body: &[u8], content_type: Option<&str>) -> Value {
    match serde_json::from_slice::<Value>(body) {
        Ok(document @ (Value::Object(_) | Value::Array(_))) => value(&document),
        _ => serde_json::json!({
            "withheld": "not a JSON object or array",
            "bytes": body.len(),
            "content_type": content_type.map(text),
        }),
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

/// A JSON parser's complaint, without the input it quotes: serde names a
/// string value it did not expect in double quotes (`invalid type: string
/// "hunter2"`), and a key, a variant or a number in backticks after what it
/// is (`unknown field `x``); those are replaced. The names it expected
/// (`missing field `id``, `expected one of `id`, `type``) and the position stay.
pub fn json_error(error: &serde_json::Error) -> String {
    const QUOTED_INPUT: [&str; 6] =
        ["unknown field ", "unknown variant ", "integer ", "floating point ", "character ", "boolean "];
    let message = error.to_string();
    let mut out = String::with_capacity(message.len());
    let mut rest = message.as_str();
    while let Some(start) = rest.find(['"', '`']) {
        let (before, quoted) = rest.split_at(start);
        out.push_str(before);
        let end = if quoted.starts_with('"') {
            // A Rust string literal: ends at the first quote not escaped.
            let mut escaped = false;
            quoted.char_indices().skip(1).find_map(|(at, c)| {
                let end = c == '"' && !escaped;
                escaped = c == '\\' && !escaped;
                end.then_some(at)
            })
        } else {
            quoted[1..].find('`').map(|at| at + 1)
        };
        let Some(end) = end else {
            // Unterminated: nothing after it can be told apart.
            out.push_str(REDACTED);
            return out;
        };
        let input = quoted.starts_with('"') || QUOTED_INPUT.iter().any(|what| out.ends_with(what));
        out.push_str(if input { REDACTED } else { &quoted[..=end] });
        rest = &quoted[end + 1..];
    }
    out.push_str(rest);
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
    fn a_body_that_is_not_a_json_object_or_array_shows_only_its_length_and_content_type() {
        let form = "email=ada%40example.com&password=hunter2";
        assert_eq!(
            body(form.as_bytes(), Some("application/x-www-form-urlencoded")),
            json!({"withheld": "not a JSON object or array", "bytes": 40, "content_type": "application/x-www-form-urlencoded"})
        );
        let record = value(&json!({"Records": [{"messageId": "m-1", "body": "{\"password\":\"hunter2\"} and more"}]}));
        assert_eq!(
            record["Records"][0]["body"],
            json!({"withheld": "not a JSON object or array", "bytes": 31, "content_type": null})
        );
        assert_eq!(record["Records"][0]["messageId"], "m-1");
        assert_eq!(
            body(br#"{"email":"ada@example.com","password":"hunter2","sku":"A-1"}"#, None),
            json!({"email": REDACTED, "password": REDACTED, "sku": "A-1"})
        );
    }

    #[test]
    fn a_parsers_complaint_keeps_our_names_but_not_the_input() {
        let complaint = |body: &str| json_error(&serde_json::from_str::<crate::events::CloudEvent>(body).unwrap_err());
        let shown = complaint(r#""{\"password\":\"hunter2\"}""#);
        assert_eq!(shown, "invalid type: string [redacted], expected struct CloudEvent at line 1 column 28");
        let shown = complaint(r#"{"id":"1","hunter2":1}"#);
        assert!(shown.starts_with("unknown field [redacted], expected one of `"), "{shown}");
        assert!(!complaint(r#"{"id": 12345678}"#).contains("12345678"));
        assert!(complaint(r#"{"id":"1"}"#).starts_with("missing field `"), "{}", complaint(r#"{"id":"1"}"#));
        assert_eq!(complaint("{\"id\""), "EOF while parsing an object at line 1 column 5");
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
