//! Platform code written once and shared by every function: the HTTP layer
//! (errors, security headers, auth, limits), tokens and password hashing,
//! telemetry and metrics, configuration, and the AWS adapters that implement
//! the domain's ports.
//!
//! Invariant: no business rule lives here. Rules are in `domain`; use cases
//! are in `app`. This crate knows AWS; `domain` must never have to.

#![warn(missing_docs)]

pub mod auth;
pub mod aws;
pub mod backoff;
pub mod batch;
pub mod budget;
pub mod config;
pub mod cursor;
pub mod dynamo;
pub mod events;
pub mod http;
pub mod idempotency;
pub mod invocation;
pub mod mail;
pub mod metrics;
pub mod outbox;
pub mod pagination;
pub mod redact;
pub mod runtime;
pub mod telemetry;
pub mod throttle;

pub use config::Settings;
pub use runtime::{Init, forever, run};
