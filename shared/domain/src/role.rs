//! Roles: what a signed-in principal may do.

use std::fmt;

use crate::ValidationError;

/// What a signed-in principal may do. Guests have no role: they have no token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A customer: the catalogue, their own account and their own orders.
    User,
    /// An operator: everything a user may do, plus managing the catalogue,
    /// every account and every order.
    Admin,
}

impl Role {
    /// Accepts exactly `user` or `admin`; errors name the field `role`.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        match raw {
            "user" => Ok(Self::User),
            "admin" => Ok(Self::Admin),
            _ => Err(ValidationError::field("role", "must be 'user' or 'admin'")),
        }
    }

    /// The wire name, as stored, put in tokens and shown to clients.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_known_roles() {
        assert_eq!(Role::parse("admin").unwrap(), Role::Admin);
        assert_eq!(Role::parse("user").unwrap(), Role::User);
        assert!(Role::parse("Admin").is_err());
        assert!(Role::parse("root").is_err());
    }
}
