//! A small framework for Rust functions on AWS Lambda behind API Gateway and
//! SQS, written once and shared by every function: the HTTP layer (errors,
//! security headers, CORS, authentication, limits, budgets), the SQS batch
//! processor, idempotent requests, cursor pagination, telemetry, metrics,
//! X-Ray, redaction, configuration and the process runtime.
//!
//! Invariant: it knows Lambda, HTTP and the AWS SDK's plumbing, never a
//! store: no DynamoDB, SQS or SES adapter lives here (those are in
//! `adapters`, which depends on this crate, never the reverse), and no
//! business rule (those are in `domain`, whose vocabulary of errors, pages
//! and ports it speaks).

#![warn(missing_docs)]

pub mod auth;
pub mod aws;
pub mod backoff;
pub mod batch;
pub mod budget;
pub mod config;
pub mod cursor;
pub mod events;
pub mod http;
pub mod idempotency;
pub mod invocation;
pub mod lookup;
pub mod metrics;
pub mod pagination;
pub mod redact;
pub mod runtime;
pub mod telemetry;
pub mod trace;

pub use config::Settings;
pub use runtime::{forever, run};
