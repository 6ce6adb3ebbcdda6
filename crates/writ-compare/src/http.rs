//! `--over http`: both sides behind HTTP, driven by the same client, one command in flight
//! per client, each waited for until its final outcome; with two baselines measured in
//! the same run, over several rounds.
//!
//! # What runs
//!
//! - **Writ** ([`writ_process`]): the real `writ` binary, `writ serve --listen 127.0.0.1:0
//!   --data-dir DIR`, on a fresh data directory each round. Each command is `POST
//!   /update?wait=10` with the contract's JSON; Writ answers `200` with the final status in
//!   the same round trip, once the journal's `fdatasync` covers the command and its outcome.
//!   A `202` (not final within the wait) fails the run.
//! - **The peer** ([`crate::peer::endpoint`]): cqrs-es + postgres-es behind a minimal `POST
//!   /update` (axum, in this process, on a tokio runtime of its own), which answers after
//!   `CqrsFramework::execute` returned, that is after PostgreSQL committed; a fresh schema
//!   each round.
//! - **The client** ([`driver`]): `writ_tools::client`, the lean HTTP/1.1 client of `writ
//!   bench http` (one write per request, answers parsed with `httparse`), one keep-alive
//!   connection per client, on one thread. The same bytes go to both sides. It was chosen
//!   over hyper's client because the client shares the machine's cores with the side it
//!   measures: the less it spends per request, the less it takes from either side, and the
//!   figures stay comparable with `writ bench http --until outcome`.
//! - **The plain loop** ([`crate::baseline::PlainLoop`]): 200-byte `pwrite` + `fdatasync`
//!   one at a time into a pre-zeroed file on the file system of Writ's data directories,
//!   for `--baseline-secs`. Writ's one-client rate is held against it: a command's outcome
//!   over HTTP cannot come faster than one sync after another.
//! - **The loopback round trip** ([`crate::baseline::loopback`]): a byte to a thread and
//!   back over loopback TCP, one at a time, for a second right after the plain loop: the
//!   floor of a request and its answer on this machine. With the plain loop's sync it
//!   bounds what one client can reach against the plain loop (the report's `loopback`
//!   line): on a virtual machine whose idle CPUs are slow to wake it can be most of a
//!   sync.
//! - **pgbench** ([`crate::baseline::pgbench`]): PostgreSQL's own single-insert
//!   transactions at the same client count, on the peer's server, for `--baseline-secs`
//!   (skipped, with the reason printed, when `pgbench` is not on `PATH`).
//!
//! # Why it is fair
//!
//! - **The same HTTP cost on both sides.** Both are reached by the same client over
//!   loopback HTTP/1.1 with the same request bodies, and both answer with a small JSON
//!   status after the command is durable. What the endpoint adds to the peer is what any
//!   service in front of it would: a request parse, a JSON decode, a loopback round trip
//!   (tens of microseconds, next to a PostgreSQL transaction's round trips and WAL flush).
//!   It adds no work Writ's server skips; Writ's server does more: JSON Schema checks, a
//!   dedupe index, the events in the answer, a read model kept up to date, metrics. The
//!   peer's endpoint runs inside this process (no process boundary of its own) on a runtime
//!   apart from the client's, with PostgreSQL's backends in their own processes.
//! - **Durable on both sides**, as in the in-process mode; the last line prints both sides'
//!   settings: Writ's `fdatasync` per journal batch and its data directory's file system,
//!   PostgreSQL's `fsync`, `synchronous_commit`, `wal_sync_method`, `full_page_writes` (and
//!   its data directory's file system, when the server is local and says where that is).
//!   A data directory on a file system whose sync does nothing (tmpfs, ramfs) is refused.
//! - **Rounds, alternated.** Each round runs all four on fresh state; even rounds run the
//!   plain loop, Writ, the peer, pgbench; odd rounds the reverse, so that neither side
//!   always runs first or after the same neighbour, and each baseline runs next to the side
//!   it is held against. Rates are medians over rounds; each ratio is the median of the
//!   rounds' own ratios (each round's figures measured minutes apart at most), which a slow
//!   minute of the machine moves less than a ratio of medians.
//! - **Verified.** As in the in-process mode, each side's store is read back each round:
//!   Writ's journal by an engine opened on the directory after the server was killed with
//!   SIGKILL (so every counted outcome also survived a kill), the peer's events table by a
//!   count.
//!
//! Not timed: starting the server, connecting, creating schemas, reading back.

use std::path::{Path, PathBuf};
use std::time::Duration;

use writ_log::reference::SyncLoop;
use writ_tools::client::Target;

use crate::baseline::{self, PgbenchRun, PlainLoop, RoundTrips};
use crate::peer::endpoint::Endpoint;
use crate::peer::{self, PostgresSettings};
use crate::workload::Workload;
use crate::{CompareError, Side, SideRun, Tally, disk, verify};

pub mod driver;
pub mod writ_process;

pub use writ_process::WritHttpRun;

/// Rounds when `--rounds` is not given.
pub const DEFAULT_ROUNDS: usize = 5;
/// Most rounds.
pub const ROUNDS_MAX: usize = 100;
/// Seconds each baseline runs per round when `--baseline-secs` is not given.
pub const DEFAULT_BASELINE_SECS: u64 = 5;
/// Most seconds per baseline (pgbench's `-T` takes whole seconds, at least 1).
pub const BASELINE_SECS_MAX: u64 = 600;
/// Tickets when `--tickets` is not given: a fifth of the in-process default, so that five
/// rounds of the slower side at one client take minutes, not an hour.
pub const DEFAULT_TICKETS: u64 = 2_000;
/// Commands when `--commands` is not given (ten per ticket, as in-process).
pub const DEFAULT_COMMANDS: u64 = 20_000;

/// What to run.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Tickets, commands, clients; one command in flight per client.
    pub workload: Workload,
    /// Rounds, each on fresh state.
    pub rounds: usize,
    /// The run's directory: each round's Writ data directory is made in it (and removed
    /// after the round), with the plain loop's file. It must be empty or new. `None`: a
    /// fresh directory under the system's temporary directory, removed afterwards.
    pub data_dir: Option<PathBuf>,
    /// The peer's PostgreSQL (and pgbench's).
    pub postgres_url: String,
    /// The `writ` binary to serve with.
    pub writ_binary: PathBuf,
    /// More arguments for `writ serve`, after its `--listen` and `--data-dir`.
    pub serve_args: Vec<String>,
    /// How long the plain loop and pgbench run in each round.
    pub baseline: Duration,
}

/// `writ` next to the current executable: `target/release/writ` beside
/// `target/release/writ-compare`.
pub fn default_writ_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find this executable (pass --writ-binary): {e}"))?;
    Ok(exe.with_file_name("writ"))
}

/// What the peer did in one round.
#[derive(Debug, Clone)]
pub struct PeerHttpRun {
    /// Outcomes per second and latencies, as the client saw them.
    pub run: SideRun,
    /// What its events table holds afterwards.
    pub tally: Tally,
}

/// One round's four figures.
#[derive(Debug, Clone)]
pub struct Round {
    /// Whether Writ ran before the peer.
    pub writ_first: bool,
    /// Writ over HTTP.
    pub writ: WritHttpRun,
    /// The peer over HTTP.
    pub peer: PeerHttpRun,
    /// The plain `pwrite` + `fdatasync` loop.
    pub plain: SyncLoop,
    /// One-byte round trips over loopback TCP, run right after the plain loop.
    pub loopback: RoundTrips,
    /// pgbench's single inserts; `None` when skipped.
    pub pgbench: Option<PgbenchRun>,
}

impl Round {
    /// Writ's outcomes per second over the plain loop's syncs per second.
    pub fn writ_vs_plain(&self) -> f64 {
        self.writ.run.commands_per_s() / self.plain.syncs_per_s().max(1e-9)
    }

    /// What one client that waits for each outcome could reach against the plain loop
    /// if everything but the sync and one loopback round trip cost nothing: `sync /
    /// (sync + round trip)`.
    pub fn one_client_ceiling(&self) -> f64 {
        let sync_us = 1e6 / self.plain.syncs_per_s().max(1e-9);
        sync_us / (sync_us + self.loopback.mean_us())
    }

    /// Writ's outcomes per second over the peer's.
    pub fn writ_vs_peer(&self) -> f64 {
        self.writ.run.commands_per_s() / self.peer.run.commands_per_s().max(1e-9)
    }

    /// Writ's outcomes per second over pgbench's transactions per second.
    pub fn writ_vs_pgbench(&self) -> Option<f64> {
        self.pgbench
            .map(|p| self.writ.run.commands_per_s() / p.tps.max(1e-9))
    }

    fn line(&self, number: usize) -> String {
        let per_sync = match self.writ.journal_syncs {
            Some(syncs) => format!(
                "{:.1}",
                self.writ.run.latencies_us.len() as f64 / syncs.max(1) as f64
            ),
            None => "unknown".into(),
        };
        format!(
            "round {number} ({} first): writ outcomes_per_s={:.0} p50_ms={:.3} p99_ms={:.3} commands_per_sync={per_sync}; peer outcomes_per_s={:.0} p50_ms={:.3} p99_ms={:.3}; plain_fdatasync_per_s={:.0}; loopback_round_trip_us={:.1}; pgbench_tps={}",
            if self.writ_first { "writ" } else { "peer" },
            self.writ.run.commands_per_s(),
            self.writ.run.latency_ms(0.50),
            self.writ.run.latency_ms(0.99),
            self.peer.run.commands_per_s(),
            self.peer.run.latency_ms(0.50),
            self.peer.run.latency_ms(0.99),
            self.plain.syncs_per_s(),
            self.loopback.mean_us(),
            self.pgbench
                .map_or("skipped".into(), |p| format!("{:.0}", p.tps)),
        )
    }
}

/// Every round, verified, with what the report needs about both sides' durability.
#[derive(Debug, Clone)]
pub struct HttpComparison {
    /// What ran.
    pub workload: Workload,
    /// The rounds, in order.
    pub rounds: Vec<Round>,
    /// Seconds each baseline ran per round.
    pub baseline: Duration,
    /// The arguments `writ serve` was given beyond its `--listen` and `--data-dir`.
    pub serve_args: Vec<String>,
    /// The run's directory.
    pub data_dir: PathBuf,
    /// Its file system's type, when it could be told.
    pub filesystem: Option<String>,
    /// PostgreSQL's durability settings.
    pub settings: PostgresSettings,
    /// PostgreSQL's host as the URL names it.
    pub postgres_host: String,
    /// The file system of PostgreSQL's data directory, when the server is local and tells
    /// where that is.
    pub postgres_filesystem: Option<String>,
    /// Whether Writ's data directories share a device with PostgreSQL's.
    pub same_device: Option<bool>,
    /// Why pgbench did not run, if it did not.
    pub pgbench_skipped: Option<String>,
}

/// The median of `values` (the mean of the middle two for an even count); 0 when empty.
pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

impl HttpComparison {
    fn median_of(&self, figure: impl Fn(&Round) -> f64) -> f64 {
        median(self.rounds.iter().map(figure).collect())
    }

    /// Writ's outcomes per second, the median over rounds.
    pub fn writ_outcomes_per_s(&self) -> f64 {
        self.median_of(|r| r.writ.run.commands_per_s())
    }

    /// The peer's outcomes per second, the median over rounds.
    pub fn peer_outcomes_per_s(&self) -> f64 {
        self.median_of(|r| r.peer.run.commands_per_s())
    }

    /// The plain loop's syncs per second, the median over rounds.
    pub fn plain_fdatasync_per_s(&self) -> f64 {
        self.median_of(|r| r.plain.syncs_per_s())
    }

    /// pgbench's transactions per second, the median over rounds; `None` when skipped.
    pub fn pgbench_tps(&self) -> Option<f64> {
        let tps: Vec<f64> = self
            .rounds
            .iter()
            .filter_map(|r| r.pgbench.map(|p| p.tps))
            .collect();
        (!tps.is_empty()).then(|| median(tps))
    }

    /// The median of the rounds' Writ / plain loop ratios.
    pub fn writ_vs_plain(&self) -> f64 {
        self.median_of(Round::writ_vs_plain)
    }

    /// The median of the rounds' Writ / peer ratios.
    pub fn writ_vs_peer(&self) -> f64 {
        self.median_of(Round::writ_vs_peer)
    }

    /// The median of the rounds' Writ / pgbench ratios; `None` when skipped.
    pub fn writ_vs_pgbench(&self) -> Option<f64> {
        let ratios: Vec<f64> = self
            .rounds
            .iter()
            .filter_map(Round::writ_vs_pgbench)
            .collect();
        (!ratios.is_empty()).then(|| median(ratios))
    }

    /// Writ's durability: `fdatasync_per_batch,fs=TYPE`.
    pub fn writ_durability(&self) -> String {
        format!(
            "fdatasync_per_batch,fs={}",
            self.filesystem.as_deref().unwrap_or("unknown")
        )
    }

    /// PostgreSQL's: `fsync=..,synchronous_commit=..,wal_sync_method=..,full_page_writes=..,fs=TYPE`.
    pub fn peer_durability(&self) -> String {
        let s = &self.settings;
        format!(
            "fsync={},synchronous_commit={},wal_sync_method={},full_page_writes={},fs={}",
            s.fsync,
            s.synchronous_commit,
            s.wal_sync_method,
            s.full_page_writes,
            self.postgres_filesystem.as_deref().unwrap_or("unknown")
        )
    }

    /// The machine-readable last line: the four rates, the three ratios, clients and rounds,
    /// and both sides' durability settings.
    pub fn summary_line(&self) -> String {
        let or_skipped = |v: Option<f64>, precision: usize| {
            v.map_or("skipped".to_owned(), |v| format!("{v:.precision$}"))
        };
        format!(
            "writ_outcomes_per_s={:.0} peer_outcomes_per_s={:.0} plain_fdatasync_per_s={:.0} pgbench_tps={} writ_vs_plain={:.2} writ_vs_peer={:.2} writ_vs_pgbench={} clients={} rounds={} writ_durability={} peer_durability={}",
            self.writ_outcomes_per_s(),
            self.peer_outcomes_per_s(),
            self.plain_fdatasync_per_s(),
            or_skipped(self.pgbench_tps(), 0),
            self.writ_vs_plain(),
            self.writ_vs_peer(),
            or_skipped(self.writ_vs_pgbench(), 2),
            self.workload.clients(),
            self.rounds.len(),
            self.writ_durability(),
            self.peer_durability(),
        )
    }

    /// The report: what ran, each round, each side's medians, the disk and PostgreSQL's
    /// settings, and last the [`summary_line`](HttpComparison::summary_line).
    pub fn report_lines(&self) -> Vec<String> {
        let w = &self.workload;
        let serve_args = if self.serve_args.is_empty() {
            String::new()
        } else {
            format!(" writ_serve_args={}", self.serve_args.join(","))
        };
        let mut lines = vec![format!(
            "workload: over=http tickets={} commands={} clients={} in_flight=1 rounds={} baseline_s={}{serve_args} (each client: one keep-alive HTTP/1.1 connection, one command in flight, POST /update?wait=10, counted at its 200 final status; each round on a fresh data directory and schema)",
            w.tickets(),
            w.commands(),
            w.clients(),
            self.rounds.len(),
            self.baseline.as_secs()
        )];
        for (i, round) in self.rounds.iter().enumerate() {
            lines.push(round.line(i + 1));
        }
        let spread = |figure: &dyn Fn(&Round) -> f64| {
            let values: Vec<f64> = self.rounds.iter().map(figure).collect();
            let min = values.iter().copied().fold(f64::INFINITY, f64::min);
            let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            format!("median={:.0} min={min:.0} max={max:.0}", median(values))
        };
        let latency = |side: fn(&Round) -> &SideRun, p: f64| {
            median(self.rounds.iter().map(|r| side(r).latency_ms(p)).collect())
        };
        let writ: fn(&Round) -> &SideRun = |r| &r.writ.run;
        let peer: fn(&Round) -> &SideRun = |r| &r.peer.run;
        lines.push(format!(
            "writ: outcomes_per_s {} p50_ms={:.3} p99_ms={:.3} (latencies: medians over rounds) verified {} each round, also after SIGKILL",
            spread(&|r| r.writ.run.commands_per_s()),
            latency(writ, 0.50),
            latency(writ, 0.99),
            Tally::expected(w)
        ));
        lines.push(format!(
            "peer: outcomes_per_s {} p50_ms={:.3} p99_ms={:.3} verified {} each round",
            spread(&|r| r.peer.run.commands_per_s()),
            latency(peer, 0.50),
            latency(peer, 0.99),
            Tally::expected(w)
        ));
        lines.push(format!(
            "plain: fdatasync_per_s {} ({}-byte pwrite + fdatasync one at a time into a pre-zeroed file beside Writ's data directories)",
            spread(&|r| r.plain.syncs_per_s()),
            baseline::RECORD_BYTES
        ));
        lines.push(format!(
            "loopback: round_trip_us median={:.1} (a byte to a thread and back over loopback TCP, one at a time, {} s after the plain loop); one client pays the sync and at least this, so it reaches at most sync / (sync + round trip) = {:.2} of the plain loop",
            median(self.rounds.iter().map(|r| r.loopback.mean_us()).collect()),
            LOOPBACK_BUDGET.as_secs(),
            median(self.rounds.iter().map(Round::one_client_ceiling).collect()),
        ));
        lines.push(match &self.pgbench_skipped {
            Some(reason) => format!("pgbench: skipped: {reason}"),
            None => format!(
                "pgbench: tps {} (clients={}, one {}-byte INSERT per transaction)",
                spread(&|r| r.pgbench.map_or(0.0, |p| p.tps)),
                w.clients(),
                baseline::RECORD_BYTES
            ),
        });
        lines.push(format!(
            "ratios (medians of the rounds' own): writ_vs_plain={:.2} writ_vs_peer={:.2} writ_vs_pgbench={}",
            self.writ_vs_plain(),
            self.writ_vs_peer(),
            self.writ_vs_pgbench()
                .map_or("skipped".to_owned(), |r| format!("{r:.2}"))
        ));
        lines.push(format!(
            "disk: data_dir={} filesystem={} postgres_filesystem={} same_device_as_postgres={}",
            self.data_dir.display(),
            self.filesystem.as_deref().unwrap_or("unknown"),
            self.postgres_filesystem.as_deref().unwrap_or("unknown"),
            match self.same_device {
                Some(true) => "yes",
                Some(false) => "no",
                None => "unknown",
            }
        ));
        lines.push(crate::postgres_line(&self.settings, &self.postgres_host));
        if !self.settings.durable() {
            lines.push(crate::NOT_DURABLE_WARNING.into());
        }
        lines.push(self.summary_line());
        lines
    }
}

/// How long the loopback round trips run in each round.
const LOOPBACK_BUDGET: Duration = Duration::from_secs(1);

/// One of a round's four steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Plain,
    Writ,
    Peer,
    Pgbench,
}

/// The order of round `index` (from 0): even rounds Writ first, odd rounds the peer first,
/// each baseline next to the side it is held against.
fn order(index: usize) -> [Step; 4] {
    let order = [Step::Plain, Step::Writ, Step::Peer, Step::Pgbench];
    if index.is_multiple_of(2) {
        order
    } else {
        [order[3], order[2], order[1], order[0]]
    }
}

/// Runs the rounds and verifies every side of every round. `progress` gets a line per
/// round (and a line when pgbench is skipped). Returns an error on any failed command,
/// mismatch or refusal; PostgreSQL schemas are dropped, servers killed and a temporary
/// directory removed either way.
pub fn run(
    options: &HttpOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<HttpComparison, CompareError> {
    let workload = options.workload;
    assert_eq!(
        workload.in_flight(),
        1,
        "over HTTP a client has one command in flight"
    );
    assert!(
        (1..=ROUNDS_MAX).contains(&options.rounds),
        "rounds {}",
        options.rounds
    );
    if !options.writ_binary.is_file() {
        return Err(CompareError::WritBinary {
            path: options.writ_binary.clone(),
        });
    }
    let (root, cleanup) = crate::run_dir(options.data_dir.as_deref())?;
    let filesystem = disk::refuse_volatile(&root)?;
    crate::require_empty(&root)?;
    std::fs::create_dir_all(&root).map_err(|e| CompareError::Writ {
        detail: format!("creating {}: {e}", root.display()),
    })?;

    let pgbench = baseline::find_pgbench();
    if let Err(reason) = &pgbench {
        progress(&format!("pgbench skipped: {reason}"));
    }
    let client_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CompareError::Runtime)?;
    let peer_runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("peer-http")
        .build()
        .map_err(CompareError::Runtime)?;
    let (pool, host) =
        peer_runtime.block_on(peer::connect(&options.postgres_url, workload.lanes()))?;
    let result = (|| {
        let settings = peer_runtime.block_on(peer::read_settings(&pool))?;
        peer_runtime.block_on(peer::warm(&pool, workload.lanes()))?;
        let mut plain = PlainLoop::create(&root.join("plain.dat"))?;
        let mut rounds = Vec::with_capacity(options.rounds);
        for index in 0..options.rounds {
            let mut writ = None;
            let mut peer_run = None;
            let mut plain_run = None;
            let mut pgbench_run = None;
            for step in order(index) {
                match step {
                    Step::Plain => {
                        plain_run = Some((
                            plain.run(options.baseline)?,
                            baseline::loopback(LOOPBACK_BUDGET)?,
                        ));
                    }
                    Step::Writ => {
                        let dir = root.join(format!("round-{}-writ", index + 1));
                        let run = writ_process::run(
                            &options.writ_binary,
                            &options.serve_args,
                            &dir,
                            &workload,
                            &client_runtime,
                        );
                        let _ = std::fs::remove_dir_all(&dir);
                        let run = run?;
                        verify(Side::Writ, &workload, run.tally)?;
                        writ = Some(run);
                    }
                    Step::Peer => {
                        let run = peer_round(&workload, &pool, &peer_runtime, &client_runtime)?;
                        verify(Side::Peer, &workload, run.tally)?;
                        peer_run = Some(run);
                    }
                    Step::Pgbench => {
                        if let Ok(binary) = &pgbench {
                            pgbench_run =
                                Some(pgbench_round(binary, options, &pool, &peer_runtime, &root)?);
                        }
                    }
                }
            }
            let round = Round {
                writ_first: index.is_multiple_of(2),
                writ: writ.expect("every round runs Writ"),
                peer: peer_run.expect("every round runs the peer"),
                plain: plain_run.expect("every round runs the plain loop").0,
                loopback: plain_run.expect("every round runs the plain loop").1,
                pgbench: pgbench_run,
            };
            progress(&round.line(index + 1));
            rounds.push(round);
        }
        let _ = plain.remove();
        Ok::<_, CompareError>((settings, rounds))
    })();
    peer_runtime.block_on(pool.close());
    let (settings, rounds) = result?;

    let postgres_dir = settings
        .data_directory
        .as_deref()
        .filter(|_| crate::is_local(&host))
        .map(Path::new);
    let postgres_filesystem = postgres_dir.and_then(disk::filesystem_type);
    let same_device = postgres_dir.and_then(|pg| disk::same_device(&root, pg));
    drop(cleanup);
    Ok(HttpComparison {
        workload,
        rounds,
        baseline: options.baseline,
        serve_args: options.serve_args.clone(),
        data_dir: root,
        filesystem,
        settings,
        postgres_host: host,
        postgres_filesystem,
        same_device,
        pgbench_skipped: pgbench.err(),
    })
}

/// One round of the peer: a fresh schema, the endpoint started on the peer's runtime, the
/// workload driven from the client's, the events counted, the schema dropped.
fn peer_round(
    workload: &Workload,
    pool: &sqlx::PgPool,
    peer_runtime: &tokio::runtime::Runtime,
    client_runtime: &tokio::runtime::Runtime,
) -> Result<PeerHttpRun, CompareError> {
    let schema = peer::fresh_schema_name();
    peer_runtime.block_on(peer::create_schema(pool, &schema))?;
    let result = (|| {
        let endpoint = peer_runtime
            .block_on(Endpoint::start(peer::framework(pool, &schema)))
            .map_err(|e| CompareError::Peer {
                detail: format!("starting the HTTP endpoint: {e}"),
            })?;
        let target =
            Target::parse(&endpoint.url()).map_err(|detail| CompareError::Peer { detail })?;
        let run = client_runtime.block_on(driver::drive(Side::Peer, &target, workload));
        peer_runtime
            .block_on(endpoint.stop())
            .map_err(|e| CompareError::Peer {
                detail: format!("stopping the HTTP endpoint: {e}"),
            })?;
        let run = run?;
        let tally = peer_runtime.block_on(peer::count_events(pool, &schema))?;
        Ok(PeerHttpRun { run, tally })
    })();
    let dropped = peer_runtime.block_on(peer::drop_schema(pool, &schema));
    let run = result?;
    dropped?;
    Ok(run)
}

/// One round of pgbench: a fresh schema with its table, pgbench, the schema dropped.
fn pgbench_round(
    binary: &Path,
    options: &HttpOptions,
    pool: &sqlx::PgPool,
    peer_runtime: &tokio::runtime::Runtime,
    root: &Path,
) -> Result<PgbenchRun, CompareError> {
    use sqlx::Executor as _;
    let schema = peer::fresh_schema_name();
    peer_runtime
        .block_on(pool.execute(baseline::pgbench_table_ddl(&schema).as_str()))
        .map_err(|e| CompareError::Baseline {
            detail: format!("creating pgbench's table in {schema}: {e}"),
        })?;
    let result = baseline::pgbench(
        binary,
        &options.postgres_url,
        &schema,
        options.workload.clients(),
        options.baseline,
        &root.join("pgbench-insert.sql"),
    );
    let dropped = peer_runtime.block_on(peer::drop_schema(pool, &schema));
    let run = result?;
    dropped?;
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(vec![]), 0.0);
    }

    #[test]
    fn rounds_alternate_which_side_goes_first() {
        assert_eq!(
            order(0),
            [Step::Plain, Step::Writ, Step::Peer, Step::Pgbench]
        );
        assert_eq!(
            order(1),
            [Step::Pgbench, Step::Peer, Step::Writ, Step::Plain]
        );
        assert_eq!(order(2), order(0));
    }
}
