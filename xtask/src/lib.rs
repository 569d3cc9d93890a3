//! The developer commands behind `cargo xtask`, one module each; `main.rs`
//! only dispatches. The local cloud they run on is the `local-cloud` crate.

pub mod admin;
pub mod bench;
pub mod check;
pub mod codegen;
pub mod contract;
pub mod coverage;
pub mod dev;
pub mod dlq;
pub mod docs;
pub mod fuzz;
pub mod fuzz_parsers;
pub mod guard;
pub mod load;
pub mod logs;
pub mod mail;
pub mod package;
pub mod pipeline;
pub mod policies;
pub mod profiles;
pub mod scans;
mod shell;
pub mod smoke;
pub mod test;

pub use local_cloud::{local_dir, project_root};
