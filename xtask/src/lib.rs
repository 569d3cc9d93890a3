//! The developer commands behind `cargo xtask`, and the local-cloud library
//! the black-box tests share with them.

use std::path::{Path, PathBuf};

pub mod bench;
pub mod dlq;
pub mod eventsource;
pub mod localcloud;
pub mod policies;
pub mod procs;
pub mod template;
pub mod tools;

/// The repository root (the workspace this crate lives in).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives one level below the root").to_owned()
}

/// Git-ignored state of local runs: data, logs, env files.
pub fn local_dir() -> PathBuf {
    project_root().join(".local")
}
