//! The shop's domain: types that cannot hold invalid values, the rules that
//! govern them, and the ports (traits) through which the outside world is reached.
//!
//! Invariant: this crate does no I/O and never imports an AWS crate. Everything
//! here is unit-testable in memory.

#![warn(missing_docs)]

pub mod email;
pub mod erasure;
pub mod error;
pub mod events;
pub mod holdings;
pub mod idempotency;
pub mod ids;
pub mod money;
pub mod order;
pub mod page;
pub mod password;
pub mod password_reset;
pub mod ports;
pub mod product;
pub mod role;
pub mod session;
#[cfg(any(test, feature = "proptest"))]
pub mod strategies;
pub mod totp;
pub mod user;
pub mod verification;

#[cfg(test)]
mod properties;

pub use email::Email;
pub use erasure::{ErasureError, ErasureRefused};
pub use error::{FieldError, ValidationError};
pub use events::{DomainEvent, EmailTask, EventData};
pub use holdings::{HoldLimitExceeded, HoldLimits, HoldTime, Holdings};
pub use idempotency::IdempotencyRecord;
pub use ids::{OrderId, ProductId, SessionId, UserId};
pub use money::{Currency, Money};
pub use order::{IllegalTransition, Order, OrderLine, OrderRequest, OrderStatus, PricingError, Quantity};
pub use page::{Page, PageLimit, PageRequest};
pub use password::{Password, PasswordHash};
pub use password_reset::{PendingReset, ResetLifetime, ResetToken};
pub use product::{Product, ProductDraft, Sku};
pub use role::Role;
pub use session::{RefreshLifetime, RefreshToken, Rotation, SecretHash, Session, TokenSecret};
pub use user::{NewUser, User, UserPatch, UserProfile};
pub use verification::{PendingVerification, TokenHash, VerificationToken, VerificationTtl, VerifyOutcome};
