//! The server under test: a `writ serve` child process on `127.0.0.1:0`, for the tools that
//! measure or prove the real binary from outside (`writ proof`, `writ-compare --over http`).
//!
//! [`ServerProcess::start`] runs `BINARY serve --listen 127.0.0.1:0 --data-dir DIR` and
//! returns once the server printed its `listening on http://HOST:PORT` line; its stderr is
//! read on a thread of its own (the last lines kept for error messages), and the process is
//! killed (SIGKILL) and reaped when the value is dropped.
//!
//! ```no_run
//! use writ_tools::server::ServerProcess;
//!
//! let server = ServerProcess::start("target/release/writ".as_ref(), "/var/tmp/d".as_ref(), &[])?;
//! println!("serving at {}", server.url());
//! server.kill()?; // or drop it
//! # Ok::<(), String>(())
//! ```

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a start may take, recovery included, before the proof gives up.
const START_MAX: Duration = Duration::from_secs(300);
/// Lines of the server's log kept to show when something goes wrong.
const LOG_LINES_KEPT: usize = 40;

/// A running `writ serve`, killed (SIGKILL) and reaped on drop.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    /// `HOST:PORT` as the server printed it.
    pub authority: String,
    /// From the spawn to the `listening on` line: process start, recovery, and everything
    /// else the server does before it accepts connections.
    ///
    /// Measured by the tool's clock, so it is an upper bound.
    pub recovery: Duration,
    log: Arc<Mutex<ServerLog>>,
}

/// What the server wrote to stderr, in brief.
#[derive(Debug, Default)]
pub struct ServerLog {
    /// The last lines.
    tail: VecDeque<String>,
    /// The `store open` line's `resumed=` count, once printed.
    pub resumed: Option<u64>,
    /// The `store open` line's `elapsed_ms=`: the engine's recovery alone.
    pub open_ms: Option<u64>,
    /// Torn or corrupt tails recovery cut off (never acknowledged).
    pub tails_cut: u64,
}

impl ServerLog {
    fn read(&mut self, line: String) {
        if line.contains("store open") {
            self.resumed = field(&line, "resumed=");
            self.open_ms = field(&line, "elapsed_ms=");
        }
        if line.contains("recovery cut") {
            self.tails_cut += 1;
        }
        if self.tail.len() == LOG_LINES_KEPT {
            self.tail.pop_front();
        }
        self.tail.push_back(line);
    }
}

/// The number after `name` in a log line (`key=value` fields).
fn field(line: &str, name: &str) -> Option<u64> {
    let start = line.find(name)? + name.len();
    let digits: String = line[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

impl ServerProcess {
    /// Starts `BINARY serve --listen 127.0.0.1:0 --data-dir DIR EXTRA...` and waits for its
    /// `listening on http://HOST:PORT` line. The server logs at `info` for its own start
    /// (to read the recovery figures) and `warn` for the rest.
    pub fn start(binary: &Path, dir: &Path, extra: &[String]) -> Result<Self, String> {
        let started = Instant::now();
        let mut child = Command::new(binary)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(extra)
            .env("RUST_LOG", "warn,writ=info")
            .env_remove("WRIT_LISTEN")
            .env_remove("WRIT_DATA_DIR")
            // The server of a proof is open on loopback and speaks plain HTTP, as its
            // client expects, whatever the environment says.
            .env_remove("WRIT_TOKENS")
            .env_remove("WRIT_TLS_CERT")
            .env_remove("WRIT_TLS_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let log = Arc::new(Mutex::new(ServerLog::default()));
        let stderr = child.stderr.take().expect("piped");
        let stderr_log = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                stderr_log.lock().expect("never poisoned").read(line);
            }
        });
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout);
            let mut line = String::new();
            while lines.read_line(&mut line).is_ok_and(|n| n > 0) {
                if tx.send(std::mem::take(&mut line)).is_err() {
                    break;
                }
            }
            // Nobody listens any more: keep draining so the server never blocks on a
            // full pipe.
            let _ = std::io::copy(&mut lines, &mut std::io::sink());
        });
        let mut server = Self {
            child,
            authority: String::new(),
            recovery: Duration::ZERO,
            log,
        };
        let deadline = started + START_MAX;
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    if let Some(address) = line.split("listening on http://").nth(1) {
                        server.recovery = started.elapsed();
                        server.authority = address.trim().to_owned();
                        drop(rx);
                        return Ok(server);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = server.child.wait().map_err(|e| e.to_string())?;
                    return Err(format!(
                        "the server exited ({status}) before it listened{}",
                        server.log_tail()
                    ));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "the server did not listen within {START_MAX:?}{}",
                        server.log_tail()
                    ));
                }
            }
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://HOST:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.authority)
    }

    /// Kills the server at once (SIGKILL on Unix: no drain, no sync) and reaps it.
    pub fn kill(mut self) -> Result<(), String> {
        self.child
            .kill()
            .map_err(|e| format!("cannot kill the server: {e}"))?;
        self.child
            .wait()
            .map_err(|e| format!("cannot reap the server: {e}"))?;
        Ok(())
    }

    /// Stops the server cleanly (SIGTERM, sent by `kill`: it drains, syncs and writes its
    /// shutdown snapshots and checkpoint) and reaps it; `Err` when it does not exit with
    /// success.
    pub fn terminate(mut self) -> Result<(), String> {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .map_err(|e| format!("cannot run kill: {e}"))?;
        if !sent.success() {
            return Err(format!("kill -TERM {} failed ({sent})", self.child.id()));
        }
        let status = self
            .child
            .wait()
            .map_err(|e| format!("cannot reap the server: {e}"))?;
        if !status.success() {
            return Err(format!(
                "the server exited with {status} after SIGTERM{}",
                self.log_tail()
            ));
        }
        Ok(())
    }

    /// Whether the server is still running; `Err` with its last log lines when it exited.
    pub fn alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "the server exited on its own ({status}){}",
                self.log_tail()
            )),
            Err(e) => Err(format!("cannot check the server: {e}")),
        }
    }

    /// What the server wrote to stderr at its start, in brief.
    pub fn log<T>(&self, read: impl FnOnce(&ServerLog) -> T) -> T {
        read(&self.log.lock().expect("never poisoned"))
    }

    /// The last lines of the server's log, to append to an error message.
    pub fn log_tail(&self) -> String {
        let log = self.log.lock().expect("never poisoned");
        if log.tail.is_empty() {
            return String::new();
        }
        let lines: Vec<&str> = log.tail.iter().map(String::as_str).collect();
        format!("; its last log lines:\n  {}", lines.join("\n  "))
    }
}

/// The peak resident set size so far (`VmHWM`) of process `pid`, in KiB; `None` where
/// `/proc` does not tell (not Linux, or the process is gone).
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The resident set size (`VmRSS`) of process `pid` in KiB, from `/proc` (Linux only).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// How many file descriptors process `pid` holds open, from `/proc` (Linux only).
pub fn open_files(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_open_line_gives_its_figures() {
        let mut log = ServerLog::default();
        log.read("2026-12-05T01:16:56Z  INFO writ: store open commands=12 resumed=2 events=10 dedupe_entries=12 elapsed_ms=401".to_owned());
        log.read(
            "WARN writ: recovery cut a torn or corrupt tail (never acknowledged) log=\"journal\""
                .to_owned(),
        );
        assert_eq!(
            (log.resumed, log.open_ms, log.tails_cut),
            (Some(2), Some(401), 1)
        );
        assert_eq!(field("a=1 b=x", "b="), None);
    }
}
