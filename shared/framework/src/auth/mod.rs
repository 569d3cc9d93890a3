//! Who is calling: password hashing, token and cursor keys, and access tokens.

pub mod caller;
pub mod keys;
pub mod passwords;
pub mod tokens;

pub use caller::{Account, Accounts, Role, Subject};
pub use keys::{CursorKeys, KeySet, PrivateKeySet, PrivateKeys, PublicKeySet, PublicKeys, SecretCache, SecretValue};
pub use passwords::PasswordHasher;
pub use tokens::{Claims, IssuedToken, Principal, TokenError, Tokens};
