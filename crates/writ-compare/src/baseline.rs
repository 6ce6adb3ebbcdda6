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
}
