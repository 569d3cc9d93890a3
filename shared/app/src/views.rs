//! Response shapes. Each maps a domain type to exactly what clients may see.

use domain::User;
use serde::Serialize;
use time::OffsetDateTime;

/// A user as the API shows it: never the password hash.
#[derive(Debug, Serialize)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub role: &'static str,
    pub disabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub version: u64,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.to_string(),
            email: user.email.to_string(),
            role: user.role.as_str(),
            disabled: user.disabled,
            created_at: user.created_at,
            updated_at: user.updated_at,
            version: user.version,
        }
    }
}
