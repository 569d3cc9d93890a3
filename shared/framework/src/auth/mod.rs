//! Who is calling: password hashing, signing keys and access tokens.

pub mod keys;
pub mod passwords;
pub mod tokens;

pub use keys::{KeySet, SigningKeys};
pub use passwords::PasswordHasher;
pub use tokens::{Claims, IssuedToken, Principal, TokenError, Tokens};
