//! `cargo xtask bench --syscalls`: the system calls one warm request makes,
//! counted by `strace -f` around a Rust implementation, so the report shows
//! where the project does more than its floor (the EMF line, and the
//! `eventfd` wake-ups of a Lambda loop that is the future `block_on` polls).
//!
//! Each implementation runs two cold starts under strace, with `SHORT` and
//! `SHORT + EXTRA` warm requests; the difference of the counts divided by
//! `EXTRA` is what a warm request costs, with init and the first request
//! cancelled out.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

use super::emulator::{Target, measure};

const SHORT: usize = 20;
const EXTRA: usize = 200;

/// The calls one warm request makes, by kind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PerRequest {
    /// `write` to an `eventfd`: a wake-up of the runtime's I/O driver.
    pub eventfd_writes: f64,
    /// Every other `write` (log lines, the EMF document).
    pub other_writes: f64,
    pub writev: f64,
    pub sendto: f64,
    pub recvfrom: f64,
    pub epoll_wait: f64,
}

/// Calls counted in one strace output file.
#[derive(Debug, Default, PartialEq)]
struct Counts {
    eventfd_writes: u64,
    other_writes: u64,
    writev: u64,
    sendto: u64,
    recvfrom: u64,
    epoll_wait: u64,
}

/// Whether strace is on this machine (the option needs it).
pub fn available() -> bool {
    Command::new("strace").arg("-V").output().is_ok_and(|o| o.status.success())
}

/// Counts `target`'s calls per warm request (see the module's comment).
pub async fn per_request(
    target: &Target,
    env: &[(String, String)],
    event: &[u8],
    dir: &Path,
) -> anyhow::Result<PerRequest> {
    let mut counts = Vec::new();
    for warm in [SHORT, SHORT + EXTRA] {
        let output = dir.join(format!("{}.{}.strace", target.program.file_name().unwrap_or_default().display(), warm));
        let _ = std::fs::remove_file(&output);
        let mut args = vec![
            "-f".to_owned(),
            "-y".to_owned(),
            "-qq".to_owned(),
            "-e".to_owned(),
            "trace=write,writev,sendto,recvfrom,epoll_wait".to_owned(),
            "-o".to_owned(),
            output.display().to_string(),
            target.program.display().to_string(),
        ];
        args.extend(target.args.iter().cloned());
        let traced = Target {
            name: target.name.clone(),
            program: "strace".into(),
            args,
            dir: target.dir.clone(),
            env: target.env.clone(),
            stderr_log: target.stderr_log.clone(),
        };
        measure(&traced, env, event, warm).await.with_context(|| format!("strace of {}", target.name))?;
        let text = std::fs::read_to_string(&output).with_context(|| format!("reading {}", output.display()))?;
        counts.push(count(&text));
    }
    let [short, long] = &counts[..] else { bail!("two runs were counted") };
    let per = |a: u64, b: u64| (b as f64 - a as f64) / EXTRA as f64;
    Ok(PerRequest {
        eventfd_writes: per(short.eventfd_writes, long.eventfd_writes),
        other_writes: per(short.other_writes, long.other_writes),
        writev: per(short.writev, long.writev),
        sendto: per(short.sendto, long.sendto),
        recvfrom: per(short.recvfrom, long.recvfrom),
        epoll_wait: per(short.epoll_wait, long.epoll_wait),
    })
}

/// Counts the calls of `strace -f -y` output, one call per line (`-qq`
/// leaves no other lines; an interrupted call's "resumed" half is not counted twice).
fn count(text: &str) -> Counts {
    let mut counts = Counts::default();
    for line in text.lines() {
        // "1234 write(5<anon_inode:[eventfd]>, ..." (the pid only with -f).
        let call = line.trim_start_matches(|c: char| c.is_ascii_digit() || c == ' ');
        if call.starts_with("<...") {
            continue;
        }
        if call.starts_with("write(") {
            if call.split(',').next().is_some_and(|fd| fd.contains("eventfd")) {
                counts.eventfd_writes += 1;
            } else {
                counts.other_writes += 1;
            }
        } else if call.starts_with("writev(") {
            counts.writev += 1;
        } else if call.starts_with("sendto(") {
            counts.sendto += 1;
        } else if call.starts_with("recvfrom(") {
            counts.recvfrom += 1;
        } else if call.starts_with("epoll_wait(") {
            counts.epoll_wait += 1;
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_calls_by_kind_and_eventfd_writes_apart() {
        let text = "\
101 write(5<anon_inode:[eventfd]>, \"\\1\\0\\0\\0\\0\\0\\0\\0\", 8) = 8
101 write(1<pipe:[77]>, \"{\\\"_aws\\\":{}}\\n\", 12) = 12
101 writev(7<TCP:[127.0.0.1:4000->127.0.0.1:8000]>, [{iov_base=\"POST\", iov_len=4}], 1) = 4
102 epoll_wait(3<anon_inode:[eventpoll]>,  <unfinished ...>
101 recvfrom(7<TCP:[1]>, \"HTTP/1.1 200\", 8192, 0, NULL, NULL) = 12
102 <... epoll_wait resumed>[], 1024, 0) = 0
101 sendto(8<TCP:[2]>, \"x\", 1, MSG_NOSIGNAL, NULL, 0) = 1
";
        assert_eq!(
            count(text),
            Counts { eventfd_writes: 1, other_writes: 1, writev: 1, sendto: 1, recvfrom: 1, epoll_wait: 1 }
        );
    }
}
