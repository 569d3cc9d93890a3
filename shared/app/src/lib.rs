//! The use cases: one handler per API route, written as plain async
//! functions over ports, so function binaries only wire them up and tests can
//! call them directly.
//!
//! Invariant: handlers hold no AWS types. They parse input into domain types,
//! apply domain rules, call ports, and shape the response.

#![warn(missing_docs)]

pub mod auth;
pub mod caller;
pub mod catalogue;
pub mod consumers;
mod current_version;
pub mod email;
pub mod erasure;
pub mod error;
pub mod expiry;
pub mod health;
mod idempotency;
mod input;
pub mod mfa;
pub mod orders;
mod paging;
pub mod passwords;
pub mod read_cache;
pub mod reference;
pub mod registration;
pub mod relay;
pub mod sessions;
pub mod users;
mod views;

pub use views::{OrderView, ProductView, UserView};
