//! The local cloud that `cargo xtask dev|test|bench` and the black-box tests share:
//! DynamoDB Local and moto provisioned from `template.yaml`, the template reader,
//! Lambda's event sources emulated, and the pinned tools they run on.

use std::path::{Path, PathBuf};

pub mod cloud;
pub mod dlq;
pub mod eventsource;
pub mod faults;
pub mod front;
pub mod lambda;
pub mod procs;
pub mod reference;
mod serve;
pub mod stack;
pub mod template;
pub mod tools;

/// The repository root (two levels above this crate).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("local-cloud lives two levels below the root")
        .to_owned()
}

/// Git-ignored state of local runs: data, logs, env files.
pub fn local_dir() -> PathBuf {
    project_root().join(".local")
}
