//! The two baselines `--over http` measures in each round, beside the two sides:
//!
//! - **The plain loop** ([`PlainLoop`]): one 200-byte `pwrite` + `fdatasync` at a time into
//!   a pre-zeroed file on the file system of Writ's data directory, the floor the disk
//!   sets for one durable write after another. It is `writ_log::reference`, the loop of
//!   `cargo bench -p writ-log --bench append` (variant (b), batch 1).
//! - **PostgreSQL's own single-insert transactions** ([`pgbench`]): `pgbench` with a
//!   one-`INSERT` script, `-c C -j C -T SECS -n`, against the peer's server, a table of its
//!   own in a fresh schema. This is PostgreSQL without cqrs-es: what the server itself does
//!   with one small durable transaction after another per client.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use writ_log::reference::{PrezeroedFile, SyncLoop};

use crate::CompareError;

/// Bytes of each write of the plain loop and of each row pgbench inserts: the size of a
/// small command record (the append benchmark's `RECORD_BYTES`).
pub const RECORD_BYTES: usize = 200;

/// The plain loop's file: far more than a baseline round writes (10,000 writes/s for 10 s
/// is 20 MB); writes wrap at its end.
const PLAIN_FILE_BYTES: u64 = 64 << 20;

/// The plain loop on one pre-zeroed file, zero-filled once (not timed) and written by each
/// round.
#[derive(Debug)]
pub struct PlainLoop {
    file: PrezeroedFile,
    path: PathBuf,
}

impl PlainLoop {
    /// Creates and zero-fills `path` (it must not exist).
    pub fn create(path: &Path) -> Result<Self, CompareError> {
        let file =
            PrezeroedFile::create(path, PLAIN_FILE_BYTES).map_err(|e| CompareError::Baseline {
                detail: format!("creating the plain loop's file {}: {e}", path.display()),
            })?;
        Ok(Self {
            file,
            path: path.to_owned(),
        })
    }

    /// `pwrite` + `fdatasync` of [`RECORD_BYTES`], one at a time, for `budget`.
    pub fn run(&mut self, budget: Duration) -> Result<SyncLoop, CompareError> {
        let record = [0x5au8; RECORD_BYTES];
        self.file
            .sync_loop(&record, budget)
            .map_err(|e| CompareError::Baseline {
                detail: format!("the plain loop on {}: {e}", self.path.display()),
            })
    }

    /// Closes and removes the file.
    pub fn remove(self) -> std::io::Result<()> {
        drop(self.file);
        std::fs::remove_file(&self.path)
    }
}

/// One-byte round trips over a loopback TCP connection, one at a time ([`loopback`]).
#[derive(Debug, Clone, Copy)]
pub struct RoundTrips {
    /// Round trips made.
    pub count: u64,
    /// Wall time of the loop.
    pub elapsed: Duration,
}

impl RoundTrips {
    /// The mean round trip, microseconds.
    pub fn mean_us(&self) -> f64 {
        self.elapsed.as_secs_f64() * 1e6 / self.count.max(1) as f64
    }
}

/// The third baseline: a byte sent over a loopback TCP connection (`TCP_NODELAY`, blocking
/// sockets) to a thread that sends it back, one at a time, for `budget`. It is the floor of
/// one request and its answer between two processes on this machine, before any HTTP,
/// parsing or disk: each side sleeps while the other works and is woken when the byte
/// arrives, and on a virtual machine waking a CPU that went idle can cost tens of
/// microseconds. A client that waits for each outcome pays the plain loop's sync and at
/// least this round trip, so `sync / (sync + round trip)` bounds what one client can reach
/// against the plain loop.
pub fn loopback(budget: Duration) -> Result<RoundTrips, CompareError> {
    use std::io::{Read, Write};
    use std::net::{Ipv4Addr, TcpListener, TcpStream};
    let failed = |what: &str, e: std::io::Error| CompareError::Baseline {
        detail: format!("the loopback round trip: {what}: {e}"),
    };
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| failed("binding", e))?;
    let address = listener
        .local_addr()
        .map_err(|e| failed("its address", e))?;
    // Connected before the echo thread starts (the listener's backlog completes the
    // handshake), so that no thread is left waiting for a connection that never comes.
    let mut stream = TcpStream::connect(address).map_err(|e| failed("connecting", e))?;
    let (mut echoing, _) = listener.accept().map_err(|e| failed("accepting", e))?;
    stream
        .set_nodelay(true)
        .map_err(|e| failed("TCP_NODELAY", e))?;
    echoing
        .set_nodelay(true)
        .map_err(|e| failed("TCP_NODELAY", e))?;
    let echo = std::thread::Builder::new()
        .name("loopback-echo".into())
        .spawn(move || -> std::io::Result<()> {
            let mut byte = [0u8; 1];
            // Until the other side closes (a read of 0 bytes).
            while echoing.read(&mut byte)? == 1 {
                echoing.write_all(&byte)?;
            }
            Ok(())
        })
        .map_err(|e| failed("starting the echo thread", e))?;
    let looped = (|| {
        let mut byte = [0x5au8; 1];
        let started = std::time::Instant::now();
        let mut count = 0u64;
        while started.elapsed() < budget {
            stream.write_all(&byte)?;
            stream.read_exact(&mut byte)?;
            count += 1;
        }
        Ok(RoundTrips {
            count,
            elapsed: started.elapsed(),
        })
    })();
    // Closing the connection ends the echo thread.
    drop(stream);
    let echoed = echo
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the echo thread panicked")));
    let trips = looped.map_err(|e| failed("sending", e))?;
    echoed.map_err(|e| failed("echoing", e))?;
    Ok(trips)
}

/// `pgbench` on `PATH`, or why not.
pub fn find_pgbench() -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("pgbench"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| "pgbench is not on PATH (it comes with PostgreSQL's client tools, for example Debian's postgresql-client)".to_owned())
}

/// The table pgbench inserts into, in `schema`.
pub fn pgbench_table_ddl(schema: &str) -> String {
    format!(
        "CREATE SCHEMA {schema};
         CREATE TABLE {schema}.inserts (id bigserial PRIMARY KEY, payload text NOT NULL);"
    )
}

/// The script: one `INSERT` of a [`RECORD_BYTES`]-byte row, its own transaction
/// (autocommit), so each is committed, and with `synchronous_commit = on` flushed, alone.
pub fn pgbench_script(schema: &str) -> String {
    format!(
        "INSERT INTO {schema}.inserts (payload) VALUES ('{}');\n",
        "x".repeat(RECORD_BYTES)
    )
}

/// What pgbench reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PgbenchRun {
    /// Transactions per second, without the initial connection time.
    pub tps: f64,
    /// Transactions committed.
    pub transactions: u64,
}

/// Runs `pgbench -n -c CLIENTS -j CLIENTS -T SECS -f SCRIPT URL`; the script (see
/// [`pgbench_script`]) is written to `script_path`. The table must exist.
pub fn pgbench(
    pgbench: &Path,
    url: &str,
    schema: &str,
    clients: usize,
    duration: Duration,
    script_path: &Path,
) -> Result<PgbenchRun, CompareError> {
    let fail = |detail: String| CompareError::Baseline {
        detail: format!("pgbench: {detail}"),
    };
    std::fs::write(script_path, pgbench_script(schema))
        .map_err(|e| fail(format!("writing {}: {e}", script_path.display())))?;
    let secs = duration.as_secs().max(1).to_string();
    let clients = clients.to_string();
    let output = Command::new(pgbench)
        .args(["-n", "-c", &clients, "-j", &clients, "-T", &secs, "-f"])
        .arg(script_path)
        .arg(url)
        .output()
        .map_err(|e| fail(format!("cannot start {}: {e}", pgbench.display())))?;
    let _ = std::fs::remove_file(script_path);
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(fail(format!(
            "exited {}: {}{}",
            output.status,
            stdout.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    parse_pgbench(&stdout).ok_or_else(|| fail(format!("no tps in its output: {stdout}")))
}

/// `tps = N (without initial connection time)` and `number of transactions actually
/// processed: N` from pgbench's report.
pub fn parse_pgbench(report: &str) -> Option<PgbenchRun> {
    let mut tps = None;
    let mut transactions = None;
    for line in report.lines() {
        if let Some(rest) = line.strip_prefix("tps = ") {
            tps = rest.split_whitespace().next().and_then(|n| n.parse().ok());
        } else if let Some(rest) = line.strip_prefix("number of transactions actually processed: ")
        {
            transactions = rest.split(['/', ' ']).next().and_then(|n| n.parse().ok());
        }
    }
    Some(PgbenchRun {
        tps: tps?,
        transactions: transactions?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgbench_s_report_gives_tps_and_transactions() {
        let report = "\
transaction type: /tmp/x.sql
scaling factor: 1
query mode: simple
number of clients: 8
number of threads: 8
maximum number of tries: 1
duration: 5 s
number of transactions actually processed: 60399
number of failed transactions: 0 (0.000%)
latency average = 0.662 ms
initial connection time = 20.818 ms
tps = 12079.922277 (without initial connection time)
";
        assert_eq!(
            parse_pgbench(report),
            Some(PgbenchRun {
                tps: 12079.922277,
                transactions: 60399
            })
        );
        assert_eq!(parse_pgbench("tps = x\n"), None);
    }

    #[test]
    fn the_script_inserts_one_row_of_record_size() {
        let script = pgbench_script("s");
        assert_eq!(script.lines().count(), 1);
        assert!(script.starts_with("INSERT INTO s.inserts (payload) VALUES ('xxx"));
        assert_eq!(script.matches('x').count(), RECORD_BYTES);
    }

    /// The loop makes round trips for its budget and ends (its echo thread with it).
    #[test]
    fn the_loopback_round_trip_runs_for_its_budget_and_ends() {
        let budget = Duration::from_millis(50);
        let trips = loopback(budget).unwrap();
        assert!(trips.count > 0, "{trips:?}");
        assert!(trips.elapsed >= budget, "{trips:?}");
        assert!(trips.mean_us() > 0.0 && trips.mean_us().is_finite());
    }
}
