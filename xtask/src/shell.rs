//! Running programs and reading the env files the local stacks write.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};
use local_cloud::project_root;

/// `cargo`, run from the repository root.
pub fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(project_root());
    command
}

/// Runs `command`; an error naming `what` if it could not start or failed.
pub fn run_checked(command: &mut Command, what: &str) -> anyhow::Result<()> {
    let status = command.status().with_context(|| format!("could not run {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

pub fn write_env_file(path: &Path, env: &[(String, String)]) -> anyhow::Result<()> {
    let text: String = env.iter().map(|(key, value)| format!("{key}={value}\n")).collect();
    std::fs::create_dir_all(path.parent().expect("env files live in a folder"))?;
    std::fs::write(path, text)?;
    Ok(())
}

pub fn read_env_file(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
}
