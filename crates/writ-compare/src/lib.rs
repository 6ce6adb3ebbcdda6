//! `writ-compare`: the tickets workload through Writ and through a conventional event-sourced
//! stack, cqrs-es + postgres-es on PostgreSQL, in one run, with the same rules, the same
//! concurrency and the same durability on both sides.
//!
//! Two modes:
//!
//! - **In-process** (the default, [`run`]): Writ's engine and cqrs-es called in this
//!   process, one side after the other, each client keeping `--in-flight` commands in
//!   flight. This page describes it.
//! - **Over HTTP** (`--over http`, [`http::run`]): the real `writ serve` and the peer behind
//!   a minimal HTTP endpoint, driven by the same HTTP/1.1 client, one command in flight per
//!   client, each waited for until its final outcome; alternating over `--rounds`, with two
//!   baselines measured in each round on the same machine and disk: the plain `pwrite` +
//!   `fdatasync` loop and PostgreSQL's own single-insert transactions (pgbench). The
//!   [`http`] module says what runs and why it is fair.
//!
//! Both modes refuse a data directory on a file system whose sync does nothing (tmpfs,
//! ramfs; see [`disk`]): nothing there would be durable.
//!
//! # What is compared
//!
//! The workload of `writ bench engine` ([`workload`]): `--tickets` `OpenTicket` commands
//! (version 2, with priority), then `AddComment` round-robin over the tickets up to
//! `--commands` in all (defaults 10,000 and 100,000).
//!
//! - **Writ** ([`writ_side`]): an in-process `writ_engine::Engine<writ_tickets::Tickets>`
//!   on a data directory. A lane (below) calls `Engine::submit` with the command's JSON payload
//!   and waits for the command's final outcome, which the engine delivers only after the
//!   journal's fdatasync covers the command and its outcome (one record, one sync).
//! - **The peer** ([`peer`]): the same rules written as a cqrs-es `Aggregate`
//!   ([`peer::TicketAggregate`]: `ticket_exists`, `title_required`, `ticket_not_found`,
//!   `text_required`, in Writ's order, recording Writ's own event structs), stored by
//!   postgres-es's `PostgresEventRepository`. A lane calls `CqrsFramework::execute`,
//!   which returns after PostgreSQL commits the events' transaction.
//!
//! # Why it is fair
//!
//! - **Durable on both sides.** A command counts only when a crash can no longer lose it.
//!   Writ's outcome follows its fdatasyncs; PostgreSQL's commit follows the WAL flush when
//!   `fsync = on` and `synchronous_commit = on`, which the run reads from the server and
//!   prints (and warns about when they are off).
//! - **Same concurrency.** `--clients C` clients on both sides, each keeping `--in-flight W`
//!   commands in flight (default [`DEFAULT_IN_FLIGHT`]), always on `W` different tickets:
//!   a client runs `W` lanes as tasks on one tokio runtime, and a lane sends its next
//!   command only once the previous one is durable ([`workload`]). So every ticket is
//!   opened before it is commented on, and two commands on one ticket are never in flight
//!   together, on both sides; the peer's optimistic concurrency never sees a conflict.
//!   Nothing is batched by the benchmark: any grouping of syncs is each system's own (Writ's
//!   group commit; PostgreSQL's WAL flush, which also covers other backends' commits).
//!   `--in-flight 1` gives the strictest form, one command at a time per client.
//! - **Why a window.** With one command in flight per client, Writ's rate is bound by the
//!   disk's sync latency: each command waits for the journal's fdatasync, so 8 clients can
//!   go no faster than 8 commands per sync. More in flight lets Writ's group commit put more
//!   commands in each sync (`--over http` measures the strict form, one in flight). The peer gets
//!   the same window and one PostgreSQL connection per lane; on a small machine its
//!   throughput stays where it is, since each command costs PostgreSQL CPU (a read of the
//!   ticket's events, an insert, a commit) that more connections do not reduce. The report
//!   prints both sides at the window given, so the two can be compared at any window.
//! - **Same disk and machine.** Writ's data directory defaults to a fresh directory under the
//!   system's temporary directory; the run prints whether it shares a device with
//!   PostgreSQL's data directory (when the server is local and says where that is).
//! - **The peer at its best honest setting.** One pooled connection per lane, all opened
//!   before the clock starts, without sqlx's ping before each checkout. The store is
//!   postgres-es's `postgres_cqrs` event store, as its README shows; it reads a ticket's
//!   events at each command, as Writ's engine would if its state cache were cold (Writ
//!   keeps states in memory, which is part of its design).
//! - **The outcome is checked.** After each side, the events are read back (Writ:
//!   `Engine::read_all` over the whole log; the peer: a count over its events table): as many
//!   distinct tickets opened as `--tickets`, and as many comments as `AddComment` commands.
//!   Any difference, or any command that did not succeed, fails the run.
//!
//! The sides run one after the other (Writ first), each timed from its first command to
//! its last outcome; setup (opening the engine, connecting, creating tables) is not timed.
//!
//! # Usage
//!
//! With PostgreSQL reachable (trust or password in the URL):
//!
//! ```text
//! cargo run --release -p writ-compare -- --clients 8
//! cargo run --release -p writ-compare -- --clients 1 --postgres-url postgres://postgres@127.0.0.1:5432/test
//! cargo build --release -p writ -p writ-compare
//! target/release/writ-compare --over http --clients 1 --rounds 5
//! target/release/writ-compare --over http --clients 8 --writ-binary target/release/writ --data-dir /var/tmp/wc
//! ```
//!
//! Flags: `--over` (`in-process`, the default, or `http`), `--clients` (default 8),
//! `--in-flight` (in-process only: commands in flight per client, default 8), `--tickets`
//! and `--commands` (10,000 and 100,000 in-process; 2,000 and 20,000 over HTTP, where each
//! side runs once per round), `--data-dir` (Writ's data directory, over HTTP the run's
//! directory that holds each round's; it must be empty or new, and not on tmpfs or ramfs;
//! default a fresh directory under the temporary directory, removed afterwards),
//! `--postgres-url` (default `WRIT_TEST_POSTGRES_URL`). Over HTTP only: `--rounds` (5),
//! `--writ-binary` (default `writ` next to this executable: `target/release/writ`),
//! `--baseline-secs` (5: how long the plain loop and pgbench each run per round). The peer
//! creates a schema `writ_compare_<random>` with the `events` and `snapshots` tables of
//! postgres-es's README and drops it afterwards (pgbench's table too, in a schema of its
//! own).
//!
//! The last line is machine-readable. In-process:
//!
//! ```text
//! writ_cmds_per_s=N peer_cmds_per_s=M ratio=R
//! ```
//!
//! where `ratio` is `N / M`. The lines before it give each side's elapsed time, p50 and p99
//! latencies, what was verified, and PostgreSQL's `fsync` and `synchronous_commit`.
//!
//! Over HTTP (medians over rounds; each ratio the median of the rounds' own ratios;
//! `skipped` for pgbench's figures when it is not on `PATH`):
//!
//! ```text
//! writ_outcomes_per_s=N peer_outcomes_per_s=M plain_fdatasync_per_s=P pgbench_tps=T
//!   writ_vs_plain=N/P writ_vs_peer=N/M writ_vs_pgbench=N/T clients=C rounds=R
//!   writ_durability=fdatasync_per_batch,fs=ext4
//!   peer_durability=fsync=on,synchronous_commit=on,wal_sync_method=fdatasync,full_page_writes=on,fs=ext4
//! ```
//!
//! (one line), after a line per round and each figure's median, minimum and maximum.
//!
//! # Example
//!
//! ```no_run
//! use writ_compare::{Options, Workload};
//!
//! let options = Options {
//!     workload: Workload::new(20, 100, 2).unwrap(),
//!     data_dir: None,
//!     postgres_url: "postgres://postgres@127.0.0.1:5432/test".into(),
//! };
//! let comparison = writ_compare::run(&options).unwrap(); // fails on any mismatch
//! assert_eq!(comparison.writ.tally.comments, 80);
//! println!("{}", comparison.summary_line());
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod baseline;
pub mod disk;
pub mod http;
pub mod peer;
pub mod workload;
pub mod writ_side;

pub use workload::{Workload, WorkloadError};

/// Commands each client keeps in flight when `--in-flight` is not given.
///
/// A client of a command server (an application server, a message consumer) rarely waits
/// for one command before sending the next: it serves many users at once. Both sides get
/// the same window; the crate's documentation says what it changes for each.
pub const DEFAULT_IN_FLIGHT: usize = 8;

/// Which side of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Writ's engine.
    Writ,
    /// cqrs-es + postgres-es.
    Peer,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Writ => "writ",
            Side::Peer => "peer",
        })
    }
}

/// Why a comparison could not finish or did not hold.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompareError {
    /// `--data-dir` is not empty: give an empty or new directory.
    #[error("{} is not empty; give an empty or new directory", path.display())]
    DataDirNotEmpty {
        /// The directory.
        path: PathBuf,
    },
    /// The data directory is on a file system whose `fsync` does nothing (tmpfs, ramfs):
    /// nothing would be durable. Give a `--data-dir` on a disk.
    #[error(
        "{} is on {filesystem}, a file system in memory whose fsync does nothing: nothing would be durable, and a comparison with PostgreSQL on a disk would mean nothing; give a --data-dir on a disk",
        path.display()
    )]
    VolatileFilesystem {
        /// The directory.
        path: PathBuf,
        /// Its file system's type.
        filesystem: String,
    },
    /// `--over http`: there is no `writ` binary at the path. Build it (`cargo build
    /// --release -p writ`) or pass `--writ-binary`.
    #[error(
        "no writ binary at {}: build it with `cargo build --release -p writ`, or pass --writ-binary",
        path.display()
    )]
    WritBinary {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// A baseline (the plain loop or pgbench) failed: see the detail.
    #[error("baseline: {detail}")]
    Baseline {
        /// What failed.
        detail: String,
    },
    /// Writ's engine failed (open, submit, wait, read back): see the detail.
    #[error("writ: {detail}")]
    Writ {
        /// What failed.
        detail: String,
    },
    /// The peer failed (URL, connection, SQL): check that PostgreSQL runs at the URL.
    #[error("peer: {detail}")]
    Peer {
        /// What failed.
        detail: String,
    },
    /// A command did not succeed, which this workload never expects: a bug on that side.
    #[error("{side}: a command did not succeed: {detail}")]
    CommandFailed {
        /// Where.
        side: Side,
        /// Which command, and how it ended.
        detail: String,
    },
    /// What a side recorded differs from what the workload commanded.
    #[error(
        "{side}: recorded {found} but the workload commanded {expected}: the outcome does not match"
    )]
    Mismatch {
        /// Where.
        side: Side,
        /// What the workload commanded.
        expected: Tally,
        /// What the side's store holds.
        found: Tally,
    },
    /// The async runtime could not start.
    #[error("starting the tokio runtime: {0}")]
    Runtime(std::io::Error),
}

/// What a side's store holds after the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Distinct tickets with a `TicketOpened` event.
    pub tickets: u64,
    /// `TicketOpened` events.
    pub open_events: u64,
    /// `CommentAdded` events.
    pub comments: u64,
    /// Events of any other type.
    pub other_events: u64,
}

impl Tally {
    /// What the workload should leave: one `TicketOpened` per ticket and one
    /// `CommentAdded` per `AddComment` command.
    pub fn expected(workload: &Workload) -> Self {
        Self {
            tickets: workload.tickets(),
            open_events: workload.tickets(),
            comments: workload.comments(),
            other_events: 0,
        }
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "tickets={} open_events={} comments={} other_events={}",
            self.tickets, self.open_events, self.comments, self.other_events
        )
    }
}

/// Checks a side's tally against the workload.
pub fn verify(side: Side, workload: &Workload, found: Tally) -> Result<(), CompareError> {
    let expected = Tally::expected(workload);
    if found == expected {
        Ok(())
    } else {
        Err(CompareError::Mismatch {
            side,
            expected,
            found,
        })
    }
}

/// A side's timing: from its first command to its last durable outcome.
#[derive(Debug, Clone)]
pub struct SideRun {
    /// Wall time of the timed part.
    pub elapsed: Duration,
    /// Every command's latency in microseconds, sorted.
    pub latencies_us: Vec<u32>,
}

impl SideRun {
    /// Sorts the latencies.
    pub fn new(elapsed: Duration, mut latencies_us: Vec<u32>) -> Self {
        latencies_us.sort_unstable();
        Self {
            elapsed,
            latencies_us,
        }
    }

    /// Commands per second.
    pub fn commands_per_s(&self) -> f64 {
        self.latencies_us.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `p`-quantile (0.0 to 1.0) of the latencies, in milliseconds.
    pub fn latency_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_us.len() as f64 - 1.0) * p.clamp(0.0, 1.0)).round() as usize;
        f64::from(self.latencies_us[i]) / 1000.0
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Tickets, commands, clients.
    pub workload: Workload,
    /// Writ's data directory; it must be empty or new, and not on a file system whose sync
    /// does nothing (tmpfs, ramfs). `None`: a fresh directory under the system's temporary
    /// directory, removed afterwards.
    pub data_dir: Option<PathBuf>,
    /// The PostgreSQL server of the peer, for example `postgres://postgres@127.0.0.1/test`.
    pub postgres_url: String,
}

/// Both sides' results, verified.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// What ran.
    pub workload: Workload,
    /// Writ's side.
    pub writ: writ_side::WritRun,
    /// The peer's side.
    pub peer: peer::PeerRun,
    /// Writ's data directory, and whether it is on the same device as PostgreSQL's data
    /// directory (`None` when that cannot be told).
    pub data_dir: PathBuf,
    /// See [`Comparison::data_dir`].
    pub same_device: Option<bool>,
}

impl Comparison {
    /// Writ's commands per second over the peer's.
    pub fn ratio(&self) -> f64 {
        self.writ.run.commands_per_s() / self.peer.run.commands_per_s().max(1e-9)
    }

    /// `writ_cmds_per_s=N peer_cmds_per_s=M ratio=R`.
    pub fn summary_line(&self) -> String {
        format!(
            "writ_cmds_per_s={:.0} peer_cmds_per_s={:.0} ratio={:.2}",
            self.writ.run.commands_per_s(),
            self.peer.run.commands_per_s(),
            self.ratio()
        )
    }

    /// The report: what ran, each side, PostgreSQL's durability settings, and last the
    /// [`summary_line`](Comparison::summary_line).
    pub fn report_lines(&self) -> Vec<String> {
        let w = &self.workload;
        let side = |name: &str, run: &SideRun, tally: &Tally| {
            format!(
                "{name}: elapsed_s={:.3} cmds_per_s={:.0} p50_ms={:.3} p99_ms={:.3} verified {tally}",
                run.elapsed.as_secs_f64(),
                run.commands_per_s(),
                run.latency_ms(0.50),
                run.latency_ms(0.99),
            )
        };
        let s = &self.peer.settings;
        let stats = &self.writ.stats;
        let mut lines = vec![
            format!(
                "workload: tickets={} commands={} clients={} in_flight={} (each client keeps in_flight commands on different tickets in flight, each waited for until durable; {} connections on the peer's side)",
                w.tickets(),
                w.commands(),
                w.clients(),
                w.in_flight(),
                w.lanes()
            ),
            side("writ", &self.writ.run, &self.writ.tally),
            format!(
                "writ: syncs={} commands_per_sync={:.1}",
                stats.batches,
                stats.commands_accepted as f64 / stats.batches.max(1) as f64
            ),
            side("peer", &self.peer.run, &self.peer.tally),
            format!(
                "disk: same_device_as_postgres={}",
                match self.same_device {
                    Some(true) => "yes",
                    Some(false) => "no",
                    None => "unknown",
                }
            ),
            postgres_line(s, &self.peer.host),
        ];
        if !s.durable() {
            lines.push(NOT_DURABLE_WARNING.into());
        }
        lines.push(self.summary_line());
        lines
    }
}

/// The report's line of PostgreSQL's settings.
pub(crate) fn postgres_line(s: &peer::PostgresSettings, host: &str) -> String {
    format!(
        "postgres: fsync={} synchronous_commit={} wal_sync_method={} full_page_writes={} commit_delay={} server_version={} host={host}",
        s.fsync,
        s.synchronous_commit,
        s.wal_sync_method,
        s.full_page_writes,
        s.commit_delay,
        s.server_version,
    )
}

/// Printed when PostgreSQL does not wait for the disk at commit.
pub(crate) const NOT_DURABLE_WARNING: &str = "warning: this PostgreSQL does not wait for the disk at commit (fsync or synchronous_commit is off): the peer was not durable and the comparison favours it";

/// Removes the directory on drop when the run made it.
pub(crate) struct TempDir(Option<PathBuf>);

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The run's directory: `given`, or a fresh one under the system's temporary directory
/// that the returned guard removes. Refused when it is on a file system whose sync does
/// nothing.
pub(crate) fn run_dir(given: Option<&Path>) -> Result<(PathBuf, TempDir), CompareError> {
    let (dir, cleanup) = match given {
        Some(dir) => (dir.to_owned(), TempDir(None)),
        None => {
            let dir = std::env::temp_dir().join(format!(
                "writ-compare-{}-{}",
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            ));
            (dir.clone(), TempDir(Some(dir)))
        }
    };
    disk::refuse_volatile(&dir)?;
    Ok((dir, cleanup))
}

/// Refuses a directory that exists and holds anything.
pub(crate) fn require_empty(dir: &Path) -> Result<(), CompareError> {
    let not_empty = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
    if not_empty {
        return Err(CompareError::DataDirNotEmpty {
            path: dir.to_owned(),
        });
    }
    Ok(())
}

/// Runs the workload through Writ, then through the peer, and verifies both outcomes.
/// Returns an error on any failed command or mismatch; the peer's schema is dropped and a
/// temporary data directory removed either way. A data directory on a file system whose
/// sync does nothing (tmpfs, ramfs) is refused before anything runs.
pub fn run(options: &Options) -> Result<Comparison, CompareError> {
    let workload = options.workload;
    let (data_dir, cleanup) = run_dir(options.data_dir.as_deref())?;
    require_empty(&data_dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CompareError::Runtime)?;

    let writ = writ_side::run(&workload, &data_dir, &runtime)?;
    verify(Side::Writ, &workload, writ.tally)?;

    let peer = runtime.block_on(peer::run(&workload, &options.postgres_url))?;
    verify(Side::Peer, &workload, peer.tally)?;

    let same_device = peer
        .settings
        .data_directory
        .as_deref()
        .filter(|_| is_local(&peer.host))
        .and_then(|pg_dir| disk::same_device(&data_dir, Path::new(pg_dir)));
    drop(cleanup);
    Ok(Comparison {
        workload,
        writ,
        peer,
        data_dir,
        same_device,
    })
}

pub(crate) fn is_local(host: &str) -> bool {
    host == "localhost" || host.starts_with("127.") || host == "::1" || host.starts_with('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mismatch_fails_with_both_tallies_in_the_message() {
        let workload = Workload::new(10, 100, 2).unwrap();
        assert!(verify(Side::Writ, &workload, Tally::expected(&workload)).is_ok());
        let found = Tally {
            comments: 89,
            ..Tally::expected(&workload)
        };
        let err = verify(Side::Peer, &workload, found).unwrap_err();
        assert!(matches!(
            err,
            CompareError::Mismatch {
                side: Side::Peer,
                ..
            }
        ));
        let message = err.to_string();
        assert!(
            message.contains("peer: recorded tickets=10 open_events=10 comments=89"),
            "{message}"
        );
        assert!(
            message.contains("commanded tickets=10 open_events=10 comments=90"),
            "{message}"
        );
    }

    #[test]
    fn tickets_opened_twice_do_not_pass_as_distinct() {
        let workload = Workload::new(10, 10, 1).unwrap();
        let found = Tally {
            tickets: 9,
            open_events: 10,
            comments: 0,
            other_events: 0,
        };
        assert!(verify(Side::Writ, &workload, found).is_err());
    }

    #[test]
    fn latencies_give_quantiles_in_ms() {
        let run = SideRun::new(Duration::from_secs(2), vec![3000, 1000, 2000, 4000]);
        assert_eq!(run.commands_per_s(), 2.0);
        assert_eq!(run.latency_ms(0.0), 1.0);
        assert_eq!(run.latency_ms(1.0), 4.0);
    }
}
