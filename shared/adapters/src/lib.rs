//! The shop's AWS adapters: the DynamoDB stores and the table's key layout,
//! the transactional outbox and its SQS publisher, dead-letter queues, the
//! SES mailer, throttles and sign-in history, the recorder of AWS calls, the
//! shop's settings, its values in the framework's terms, and [`Init`], the
//! wiring every function's `main` starts with.
//!
//! Invariant: each adapter implements a port of `domain` and holds no
//! business rule; the framework never depends on this crate.

#![warn(missing_docs)]

pub mod config;
pub mod dead_letters;
pub mod dynamo;
pub mod framework_terms;
pub mod init;
pub mod mail;
pub mod outbox;
pub mod recorder;
pub mod throttle;
pub mod token_keys;

pub use init::Init;
