//! Email addresses: validated and normalised once, at the edge, so the rest
//! of the code can compare and key accounts by them.

use std::fmt;

use crate::ValidationError;

/// An email address, normalised (trimmed, lower-cased) so that one mailbox
/// maps to one account whatever the client typed.
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Email(String);

const MAX_LENGTH: usize = 254;
const MAX_LOCAL_LENGTH: usize = 64;

impl Email {
    /// Accepts a practical subset of RFC 5321 (a dot-atom local part of 1 to
    /// 64 characters, a domain of at least two DNS labels, 254 characters in
    /// all) after trimming and lower-casing; errors name the field `email`.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let invalid = |message: &str| Err(ValidationError::field("email", message));
        let normalised = raw.trim().to_lowercase();
        if normalised.is_empty() {
            return invalid("is required");
        }
        if normalised.len() > MAX_LENGTH {
            return invalid("must be at most 254 characters");
        }
        let Some((local, domain)) = normalised.split_once('@') else {
            return invalid("must contain '@'");
        };
        if local.is_empty() || local.len() > MAX_LOCAL_LENGTH {
            return invalid("must have 1 to 64 characters before '@'");
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return invalid("has a misplaced '.' before '@'");
        }
        let local_ok = local.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
        if !local_ok {
            return invalid("has a character not allowed before '@'");
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !domain_ok {
            return invalid("must end in a domain such as example.com");
        }
        Ok(Self(normalised))
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_whitespace() {
        let email = Email::parse("  Alice.Smith@Example.COM ").unwrap();
        assert_eq!(email.as_ref(), "alice.smith@example.com");
    }

    #[test]
    fn accepts_plus_addressing_and_subdomains() {
        assert!(Email::parse("a+shop@mail.example.co.uk").is_ok());
    }

    #[test]
    fn rejects_malformed_addresses() {
        for bad in [
            "",
            "   ",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a@@b.com",
            "a b@c.com",
            "a@exa mple.com",
            ".a@b.com",
            "a.@b.com",
            "a..b@c.com",
            "a@-b.com",
            "a@b..com",
            "a@b.com.",
            "<script>@x.com",
        ] {
            let error = Email::parse(bad).expect_err(bad);
            assert_eq!(error.fields()[0].field, "email", "{bad}");
        }
    }

    #[test]
    fn rejects_overlong_addresses() {
        let local = "a".repeat(65);
        assert!(Email::parse(&format!("{local}@example.com")).is_err());
        let domain = format!("{}.com", "b".repeat(250));
        assert!(Email::parse(&format!("a@{domain}")).is_err());
    }
}
