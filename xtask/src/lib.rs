//! The developer commands behind `cargo xtask` that are more than wiring:
//! the benchmark harness and the least-privilege check.

pub mod bench;
pub mod policies;

pub use local_cloud::{local_dir, project_root};
