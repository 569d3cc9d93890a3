//! Child processes that are stopped, with everything they started, when
//! their handle is dropped (on success, on error and on Ctrl-C).

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A running service in its own process group.
pub struct Service {
    pub name: String,
    pub log: Option<PathBuf>,
    child: Child,
}

impl Service {
    /// Starts `command` in a new process group, its output going to `log`
    /// (or to this terminal when `log` is `None`).
    pub fn start(name: &str, mut command: Command, log: Option<PathBuf>) -> anyhow::Result<Self> {
        command.process_group(0).stdin(Stdio::null());
        if let Some(path) = &log {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let file = File::create(path)?;
            command.stdout(file.try_clone()?).stderr(file);
        }
        let child = command.spawn().with_context(|| format!("could not start {name}"))?;
        Ok(Self { name: name.to_owned(), log, child })
    }

    /// Fails if the process has already exited.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited early ({status}){}", self.name, self.log_hint());
        }
        Ok(())
    }

    /// Waits until something accepts connections on `port`.
    pub fn wait_for_port(&mut self, port: u16, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        while Instant::now() < deadline {
            self.check_running()?;
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("{} did not listen on port {port} within {timeout:?}{}", self.name, self.log_hint())
    }

    pub fn log_hint(&self) -> String {
        match &self.log {
            Some(path) => format!("; see {}", path.display()),
            None => String::new(),
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).stderr(Stdio::null()).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Whatever ignored TERM (or was started by the leader) goes now.
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Is something already listening on `port`?
pub fn port_in_use(port: u16) -> bool {
    TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_millis(200)).is_ok()
}
