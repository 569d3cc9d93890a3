//! Finding `llvm-profdata` and `llvm-cov` (rustup's llvm-tools or Debian's LLVM), merging the profiles and exporting lcov.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use local_cloud::project_root;

use super::{DEBIAN_LLVM, FileCoverage, OLDEST_LLVM, lcov, measured_files, parse_lcov, rustc_info};
use crate::shell::run_checked;

/// `llvm-profdata` and `llvm-cov`.
pub(super) struct Llvm {
    profdata: PathBuf,
    cov: PathBuf,
}

impl Llvm {
    /// `LLVM_PROFDATA` and `LLVM_COV` when both are set (as cargo-llvm-cov
    /// reads them), else rustup's llvm-tools, else the newest Debian LLVM from
    /// rustc's own down to the oldest that reads its formats; installs
    /// Debian's when none is there and this runs as root.
    pub(super) fn find_or_install() -> anyhow::Result<Self> {
        if let (Some(profdata), Some(cov)) = (std::env::var_os("LLVM_PROFDATA"), std::env::var_os("LLVM_COV")) {
            return Ok(Self { profdata: profdata.into(), cov: cov.into() });
        }
        let rustc = rustc_info()?;
        let rustup = rustc.sysroot.join("lib/rustlib").join(&rustc.host).join("bin");
        if let Some(found) = Self::in_folder(&rustup) {
            return Ok(found);
        }
        if let Some(found) = Self::debian(rustc.llvm_major) {
            return Ok(found);
        }
        let is_root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        if is_root && Path::new("/usr/bin/apt-get").exists() {
            eprintln!("xtask: installing {DEBIAN_LLVM} (llvm-profdata, llvm-cov) for coverage (apt-get)...");
            run_checked(Command::new("apt-get").args(["update", "-qq"]), "apt-get update")?;
            run_checked(
                Command::new("apt-get")
                    .args(["install", "-y", "-qq", "--no-install-recommends", DEBIAN_LLVM])
                    .env("DEBIAN_FRONTEND", "noninteractive"),
                "apt-get install",
            )?;
            if let Some(found) = Self::debian(rustc.llvm_major) {
                return Ok(found);
            }
        }
        bail!(
            "coverage needs llvm-profdata and llvm-cov of LLVM {OLDEST_LLVM} to {}: `rustup component add \
             llvm-tools`, or `apt-get install {DEBIAN_LLVM}`, or set LLVM_PROFDATA and LLVM_COV",
            rustc.llvm_major
        )
    }

    pub(super) fn debian(newest: u32) -> Option<Self> {
        (OLDEST_LLVM..=newest.max(OLDEST_LLVM))
            .rev()
            .find_map(|major| Self::in_folder(Path::new(&format!("/usr/lib/llvm-{major}/bin"))))
    }

    pub(super) fn in_folder(folder: &Path) -> Option<Self> {
        let profdata = folder.join("llvm-profdata");
        let cov = folder.join("llvm-cov");
        (profdata.is_file() && cov.is_file()).then_some(Self { profdata, cov })
    }

    pub(super) fn describe(&self) -> String {
        let version = Command::new(&self.cov)
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .find_map(|l| l.split_once("LLVM version ").map(|(_, version)| format!("LLVM {}", version.trim())))
            })
            .unwrap_or_else(|| "LLVM (version unknown)".to_owned());
        format!("{version} in {}", self.cov.parent().unwrap_or(&self.cov).display())
    }

    /// Merges every non-empty profile in `folder` into `output`. A profile
    /// left unreadable (a process killed before it wrote its header) is
    /// reported and skipped; a format this LLVM does not know fails.
    pub(super) fn merge(&self, folder: &Path, output: &Path) -> anyhow::Result<PathBuf> {
        let mut inputs = Vec::new();
        let mut empty = 0;
        for entry in std::fs::read_dir(folder)? {
            let path = entry?.path();
            if path.extension().is_some_and(|x| x == "profraw") {
                if std::fs::metadata(&path)?.len() == 0 {
                    empty += 1;
                } else {
                    inputs.push(path.display().to_string());
                }
            }
        }
        if inputs.is_empty() {
            bail!("no profile was written into {}", folder.display());
        }
        let list = folder.join("inputs.txt");
        std::fs::write(&list, inputs.join("\n") + "\n")?;
        let merged = Command::new(&self.profdata)
            .args(["merge", "-sparse", "--failure-mode=all", "-f"])
            .arg(&list)
            .arg("-o")
            .arg(output)
            .output()
            .context("running llvm-profdata")?;
        let warnings = String::from_utf8_lossy(&merged.stderr);
        if !merged.status.success() {
            bail!(
                "llvm-profdata could not merge the profiles: {}\n(a raw profile format newer than this LLVM reads: \
                 install rustup's llvm-tools or a newer LLVM, or set LLVM_PROFDATA and LLVM_COV)",
                warnings.trim()
            );
        }
        let unreadable = warnings.lines().filter(|l| l.contains("warning")).count();
        eprintln!(
            "xtask: {} profiles merged{}{}",
            inputs.len(),
            if empty > 0 { format!(", {empty} empty ones skipped") } else { String::new() },
            if unreadable > 0 { format!(", {unreadable} unreadable ones skipped") } else { String::new() },
        );
        Ok(output.to_owned())
    }

    /// Maps the merged profile onto `sources` over every program in
    /// `objects`: the HTML report and lcov.info into `out`, and each
    /// measured file's line figures and missed lines.
    pub(super) fn report(
        &self,
        profdata: &Path,
        objects: &[PathBuf],
        sources: &[PathBuf],
        out: &Path,
    ) -> anyhow::Result<Vec<FileCoverage>> {
        let (first, rest) = objects.split_first().context("no program to map the profile onto")?;
        let with_inputs = |command: &mut Command| {
            command.arg(format!("-instr-profile={}", profdata.display())).arg(first);
            for object in rest {
                command.arg(format!("-object={}", object.display()));
            }
            command.args(sources);
        };
        let mut export = Command::new(&self.cov);
        export.args(["export", "-format=lcov"]);
        with_inputs(&mut export);
        let exported = export.stderr(Stdio::inherit()).output().context("running llvm-cov export")?;
        if !exported.status.success() {
            bail!(
                "llvm-cov export failed ({}): a coverage mapping format newer than this LLVM reads?",
                exported.status
            );
        }
        let root = project_root();
        let files = measured_files(parse_lcov(&String::from_utf8_lossy(&exported.stdout), &root), &root);
        std::fs::write(out.join("lcov.info"), lcov(&files, &root))?;

        let mut html = Command::new(&self.cov);
        html.args(["show", "-format=html", "-show-instantiations=false", "-show-line-counts-or-regions"])
            .arg(format!("-output-dir={}", out.join("html").display()));
        with_inputs(&mut html);
        run_checked(&mut html, "llvm-cov show -format=html")?;
        Ok(files)
    }
}
