//! Authentication: the bearer token, and, where it matters, the account as it
//! is now. A token says who the caller was when it was issued (role, enabled);
//! writes and admin rights must not trust that for the token's lifetime, so
//! they are checked against the stored account (one GetItem).

use std::sync::Arc;

use http::{HeaderMap, Method};

use super::ApiError;
use crate::auth::{Accounts, Principal, TokenError, Tokens};

/// Turns a request's bearer token into the caller, checking the stored
/// account where the token alone is not enough.
pub struct Authenticator {
    tokens: Tokens,
    accounts: Arc<dyn Accounts>,
}

impl Authenticator {
    /// Verifies tokens with `tokens` and reads accounts from `accounts`.
    pub fn new(tokens: Tokens, accounts: Arc<dyn Accounts>) -> Self {
        Self { tokens, accounts }
    }

    /// The principal the bearer token names; 401 when missing or not valid.
    pub async fn from_token(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        let value = headers.get(http::header::AUTHORIZATION).ok_or(ApiError::Unauthenticated)?;
        let value = value.to_str().map_err(|_| ApiError::InvalidToken)?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or(ApiError::InvalidToken)?
            .trim();
        self.tokens.verify(token).await.map_err(|error| match error {
            TokenError::KeysUnavailable(source) => ApiError::Unavailable(source),
            refused => {
                tracing::info!(reason = %refused, "token refused");
                ApiError::InvalidToken
            }
        })
    }

    /// The principal as the account stands now: its current role; refused if
    /// the account was disabled (403) or no longer exists (401).
    pub async fn current(&self, claimed: &Principal) -> Result<Principal, ApiError> {
        self.current_if_exists(claimed).await?.ok_or_else(|| {
            tracing::info!("token refused: the account no longer exists");
            ApiError::InvalidToken
        })
    }

    /// [`Authenticator::current`], with `None` where the account no longer
    /// exists (or never did) instead of refusing the token.
    pub async fn current_if_exists(&self, claimed: &Principal) -> Result<Option<Principal>, ApiError> {
        let Some(account) = self.accounts.account(claimed.subject).await? else {
            return Ok(None);
        };
        if !account.active {
            tracing::info!("request refused: the account is disabled");
            return Err(ApiError::AccountDisabled);
        }
        if account.role != claimed.role {
            tracing::info!(token_role = %claimed.role, role = %account.role, "role changed since the token was issued");
        }
        Ok(Some(Principal { subject: claimed.subject, role: account.role, mfa: claimed.mfa }))
    }
}

/// Does this request need the account as it is now? Every write (a disabled
/// user must not place orders) and everything an admin does (a demoted admin
/// must not promote anyone). Plain users' reads trust the token.
pub fn needs_current_account(method: &Method, claimed: &Principal) -> bool {
    claimed.is_admin() || !method.is_safe()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Role, Subject};

    #[test]
    fn writes_and_admins_are_checked_against_the_account() {
        let user = Principal { subject: Subject::new(ulid::Ulid::new()), role: Role::User, mfa: false };
        let admin = Principal { subject: Subject::new(ulid::Ulid::new()), role: Role::Admin, mfa: false };
        assert!(!needs_current_account(&Method::GET, &user));
        assert!(needs_current_account(&Method::GET, &admin));
        for write in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert!(needs_current_account(&write, &user), "{write}");
        }
    }
}
