//! The `serve` command line: its flags, parsed with clap, and logging.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use tracing_subscriber::EnvFilter;
use writ_engine::RecoveryReport;

/// `serve`'s flags. Every flag also reads from an environment variable `WRIT_<FLAG>`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Data directory; created if missing.
    #[arg(long, env = "WRIT_DATA_DIR", default_value = "./writ-data")]
    pub data_dir: PathBuf,
    /// Address to listen on, HOST:PORT; port 0 picks a free port (the printed line shows it).
    #[arg(long, env = "WRIT_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// A domain to serve; repeat it for several (one journal, one writer, one global
    /// order). Without it, the binary's default domains.
    #[arg(long = "domain", env = "WRIT_DOMAIN", value_delimiter = ',')]
    pub domains: Vec<String>,
    /// An app directory of resource types without code (`resources/T.json`: a JSON Schema
    /// each; optional `machines/T.json` and `rules/T.json`), or a bundle of one that
    /// `writ app pack` made, served beside the `--domain`s; given alone, only its types
    /// are served. Its digest (SHA-256, the same for a directory and its bundle) is logged.
    #[arg(long, env = "WRIT_APP", value_name = "DIR|FILE")]
    pub app: Option<PathBuf>,
    /// How long a command id is remembered for dedupe and status lookups: a number with a
    /// unit, ms, s, m, h or d (90s, 15m, 24h, 1d).
    #[arg(long, env = "WRIT_DEDUPE_WINDOW", default_value = "24h", value_parser = parse_duration)]
    pub dedupe_window: Duration,
    /// The projection version a read model starts with (default: its newest), as
    /// `MODEL=N`, or `N` for every read model that has version N. An older one shows a
    /// structure change: `writ rebuild --version N` moves it on while it serves. A read
    /// model switched in the log (`SwitchReadModel`, which that rebuild submits) starts at
    /// its last switch's version instead.
    #[arg(
        long = "projection-version",
        env = "WRIT_PROJECTION_VERSION",
        value_delimiter = ','
    )]
    pub projection_versions: Vec<String>,
    /// Requests handled at once (those that wait apart); beyond it requests are answered
    /// 503 at once. Lower it to shed load sooner: under overload a 202 waits behind up to
    /// this many requests.
    #[arg(long, env = "WRIT_REQUESTS_MAX", default_value_t = 4_096,
        value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub requests_max: u64,
    /// Requests that wait, handled at once: long polls (`GET /update/{id}?wait=`) and
    /// queries with `?after=`, bounded apart so that they never take the places of
    /// commands; beyond it, 503 at once.
    #[arg(long, env = "WRIT_WAITS_MAX", default_value_t = 4_096,
        value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub waits_max: u64,
    /// Open connections; more wait in the listen backlog until one closes.
    #[arg(long, env = "WRIT_CONNECTIONS_MAX", default_value_t = 8_192,
        value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub connections_max: u64,
    /// Open connections from one client address; beyond it a new connection is closed at
    /// once. 0 (the default) for no bound: clients behind a proxy or NAT share an address.
    #[arg(long, env = "WRIT_CONNECTIONS_PER_ADDRESS_MAX", default_value_t = 0,
        value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub connections_per_address_max: u64,
    /// HTTP worker threads of their own, each serving the connections it is given from
    /// accept to close (a new connection goes to the one with the fewest open): fewer
    /// thread wake-ups per request for a lone client, smaller journal batches for a few
    /// busy ones (README, "Worker threads"). 0 (the default) for one runtime whose workers,
    /// one per core, share every connection.
    #[arg(long, env = "WRIT_HTTP_THREADS", default_value_t = 0,
        value_parser = clap::value_parser!(u64).range(0..=1_024))]
    pub http_threads: u64,
    /// How long a connection may take to send a whole request head (from its accept, or
    /// from the head's first byte on a kept-alive one); then it is closed. A slow or silent
    /// client costs one socket for this long, never a request place.
    #[arg(long, env = "WRIT_HEAD_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub head_timeout: Duration,
    /// How long a request body may take to arrive whole after its head; then 408 and the
    /// connection is closed. Bodies are read before a request takes a place under
    /// --requests-max.
    #[arg(long, env = "WRIT_BODY_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub body_timeout: Duration,
    /// Most bytes of request bodies being read at once, over all connections: a body
    /// reserves its Content-Length (or the body bound) before it is read, and a request
    /// whose reservation does not fit is answered 503 at once. The memory bodies on their
    /// way may take.
    #[arg(long, env = "WRIT_BODY_READING_BYTES_MAX", default_value_t = 256 << 20,
        value_parser = clap::value_parser!(u64).range((2 << 20)..=(1 << 40)))]
    pub body_reading_bytes_max: u64,
    /// How long a keep-alive connection may wait for its next request; then it is closed.
    #[arg(long, env = "WRIT_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Most pending durable timers; at the bound new commands are refused with 503 until
    /// timers fire (about 150 bytes each, plus their command).
    #[arg(long, env = "WRIT_TIMERS_MAX", default_value_t = 1_000_000,
        value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub timers_max: u64,
    /// Most command ids the dedupe index holds in memory, in its hot map (those not yet
    /// durable, and the durable ones not yet spilled to a run file in `dedupe/`), about
    /// 40-70 bytes each. The hot map spills at `--dedupe-spill-entries`, so this is
    /// reached only when spilling falls behind or fails (a full disk): then new commands
    /// are refused with 503, and nothing is forgotten. It does not bound the window: ids
    /// in runs cost about 1.35 bytes of memory and 25 bytes of disk each.
    #[arg(long, env = "WRIT_DEDUPE_ENTRIES_MAX", default_value_t = 10_000_000,
        value_parser = clap::value_parser!(u64).range(1..=10_000_000_000))]
    pub dedupe_entries_max: u64,
    /// Hot ids at which the dedupe index writes them, sorted, to a run file in `dedupe/`
    /// (taken as `--dedupe-entries-max` when above it).
    #[arg(long, env = "WRIT_DEDUPE_SPILL_ENTRIES", default_value_t = 4_000_000,
        value_parser = clap::value_parser!(u64).range(1..=10_000_000_000))]
    pub dedupe_spill_entries: u64,
    /// The archive directory of the journal's sealed segments (`writ archive --to`): read
    /// as part of the journal, never written. Needed once `writ archive` has moved
    /// segments there: without it such a journal is refused, saying which records are
    /// missing.
    #[arg(long, env = "WRIT_ARCHIVE_DIR", value_name = "DIR")]
    pub archive_dir: Option<PathBuf>,
    /// Most sealed journal segments whose file stays open for reads, one file descriptor
    /// each (the live segment and the preallocated spare hold two more). Beyond it the
    /// least recently read is closed; a lower bound costs an open and a close for each
    /// read that comes back to a closed segment (scattered reads of old streams).
    #[arg(long, env = "WRIT_OPEN_SEGMENTS_MAX", default_value_t = 64,
        value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub open_segments_max: u64,
    /// Write a snapshot of each read model that supports them (tickets, orders) once this many
    /// events were applied since the last one, and at a clean shutdown, into
    /// `DATA_DIR/snapshots/`; a start loads the newest valid one and replays only the
    /// events after it. Costs on disk two files per read model of about the state's size,
    /// and the time to encode the state, on a thread of its own. 0: none written
    /// (existing ones are still loaded).
    #[arg(long, env = "WRIT_SNAPSHOT_EVERY_EVENTS", default_value_t = 1_000_000)]
    pub snapshot_every_events: u64,
    /// The most of its time the snapshot thread spends writing, above 0 and at most 1:
    /// after a round of snapshots that took D, the next waits at least D × (1/share − 1),
    /// however many events come meanwhile, so that a read model that keeps growing never
    /// comes to spend a core on its snapshots. Costs a start that many more events to
    /// replay at most (about 19 times the last write's duration of events at 0.05). 1: no
    /// such bound
    #[arg(long, env = "WRIT_SNAPSHOT_TIME_SHARE", default_value_t = 0.05, value_parser = parse_share)]
    pub snapshot_time_share: f64,
    /// Write an engine checkpoint (the store's indexes, the pending timers, the last
    /// position and unit; `DATA_DIR/checkpoints/`, beside the live journal) once this many
    /// journal records were made durable since the last one, and at a clean shutdown.
    /// Costs about 6 bytes per single-event record on disk (two files kept), a second
    /// copy of the indexes and timers in memory (about 16 bytes per event and per record,
    /// plus each stream's name) and a second decode of every record, on a thread of its
    /// own that takes none of the writer's locks. 0: none written.
    #[arg(
        long,
        env = "WRIT_CHECKPOINT_EVERY_RECORDS",
        default_value_t = 1_000_000
    )]
    pub checkpoint_every_records: u64,
    /// Nice levels the writer thread runs below the rest of the server (Linux; at most to
    /// nice 19). Under load the HTTP workers then read the requests in hand before the
    /// writer decides, so it decides fewer, larger batches (more commands per second at 64
    /// connections, no change for a lone client; the README's "Measuring" has the
    /// figures). Costs the writer its share of the CPU while threads at the server's
    /// priority keep every core busy (heavy query code, say): about a tenth of theirs at
    /// 10. 0: the server's priority
    #[arg(long, env = "WRIT_WRITER_NICE", default_value_t = 10,
        value_parser = clap::value_parser!(u8).range(0..=19))]
    pub writer_nice: u8,
    /// How the read models' threads (reading, applying, rebuilding) are scheduled (Linux).
    /// `batch`: under `SCHED_BATCH`, whose wake-ups do not preempt the thread running on a
    /// core, so the read side, woken after every journal sync, does not put off the writer
    /// and the syncer before the next one (more commands per second when a few clients
    /// each wait for their outcome; the README's "Measuring" has the figures); same share
    /// of the CPU under load. Costs a read model up to a scheduler slice (milliseconds) of
    /// lag on a busy machine. `normal`: the server's policy
    #[arg(long, env = "WRIT_READ_SIDE_SCHED", value_enum, default_value_t = ReadSideSched::Batch)]
    pub read_side_sched: ReadSideSched,
    /// Neither load nor write read model snapshots: every start replays every read model
    /// from position 1 (files in `DATA_DIR/snapshots/` are left alone).
    #[arg(long, env = "WRIT_NO_SNAPSHOTS")]
    pub no_snapshots: bool,
    /// Longest a query with `?after=POSITION` waits for the read models to include the
    /// position (then 504); each such wait holds one of `--waits-max`'s places.
    #[arg(long, env = "WRIT_AFTER_WAIT_MAX", default_value = "10s", value_parser = parse_duration)]
    pub after_wait_max: Duration,
    /// Most bytes of JSON a named query (`GET /query/v{N}/{name}`) may build for its
    /// answer (at most this much memory per such request); beyond it the query stops and
    /// answers 422 (`memory_limit`). Ask for a page instead.
    #[arg(long, env = "WRIT_QUERY_ANSWER_BYTES_MAX", default_value_t = 32 << 20,
        value_parser = clap::value_parser!(u64).range(1_024..=(1 << 32)))]
    pub query_answer_bytes_max: u64,
    /// A JSON file of access tokens: a list of `{"token_sha256", "name", "scopes",
    /// "commands"?}` (scopes among commands, queries and admin; commands, the names the
    /// token may send). With it every route but /health needs `Authorization: Bearer
    /// TOKEN`. Without it the server is open, and listens on loopback addresses only unless
    /// --insecure-open.
    #[arg(long, env = "WRIT_TOKENS", value_name = "FILE")]
    pub tokens: Option<PathBuf>,
    /// Serve without --tokens on an address beyond loopback: anyone who can reach it may
    /// send commands and read everything.
    #[arg(long, env = "WRIT_INSECURE_OPEN")]
    pub insecure_open: bool,
    /// A PEM file with the server's certificate chain (its own certificate first): serve
    /// HTTPS and WSS on the same port. Needs --tls-key.
    #[arg(long, env = "WRIT_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// A PEM file with the private key of --tls-cert's certificate.
    #[arg(long, env = "WRIT_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// How the read side's threads are scheduled (`serve --read-side-sched`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReadSideSched {
    /// `SCHED_BATCH`: the read side's wake-ups do not preempt a running thread.
    Batch,
    /// The server's own policy.
    Normal,
}

/// An `--archive-dir` as the journal's options take it: absolute (a relative one is taken
/// from the current directory, not from the data directory the engine's files are
/// relative to).
pub fn archive_path(dir: &std::path::Path) -> PathBuf {
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned())
}

/// Refuses an open server (no tokens) on an address beyond loopback, unless
/// `insecure_open`: `listen` is resolved, and every address it gives must be a loopback
/// one. An address that does not resolve is left to the bind, which reports it.
pub fn check_open_listen(listen: &str, tokens: bool, insecure_open: bool) -> Result<(), String> {
    if tokens || insecure_open {
        return Ok(());
    }
    let Ok(addresses) = std::net::ToSocketAddrs::to_socket_addrs(listen) else {
        return Ok(());
    };
    let beyond: Vec<String> = addresses
        .filter(|a| !a.ip().is_loopback())
        .map(|a| a.ip().to_string())
        .collect();
    if beyond.is_empty() {
        return Ok(());
    }
    Err(format!(
        "refusing to listen on {listen} ({}) without --tokens: an open server answers anyone who can reach it. \
         Give --tokens FILE, listen on a loopback address (127.0.0.1), or pass --insecure-open",
        beyond.join(", ")
    ))
}

/// Logs to stderr. `RUST_LOG` (full filter directives) wins over `LOG_LEVEL` (one of
/// trace, debug, info, warn, error, fatal); the default is info. Call it once, first.
pub fn init_logging() -> Result<(), String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => {
            EnvFilter::try_new(&directives).map_err(|e| format!("RUST_LOG={directives:?}: {e}"))?
        }
        _ => {
            let level = std::env::var("LOG_LEVEL").unwrap_or_default();
            EnvFilter::new(log_level(&level)?)
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    Ok(())
}

/// The filter for a `LOG_LEVEL` value; `fatal` is `error`, the tracing crate's highest.
fn log_level(level: &str) -> Result<&'static str, String> {
    Ok(match level.trim().to_ascii_lowercase().as_str() {
        "" | "info" => "info",
        "trace" => "trace",
        "debug" => "debug",
        "warn" | "warning" => "warn",
        "error" | "fatal" => "error",
        _ => {
            return Err(format!(
                "LOG_LEVEL={level:?} is not a level; use trace, debug, info, warn, error or fatal"
            ));
        }
    })
}

/// A share of time: a number above 0 and at most 1.
pub fn parse_share(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(share) if share > 0.0 && share <= 1.0 => Ok(share),
        _ => Err(format!(
            "{text:?} is not a share of time: give a number above 0 and at most 1, for example 0.05"
        )),
    }
}

/// A duration as `--dedupe-window` takes it: digits and a unit (ms, s, m, h, d).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let usage = "use a number and a unit (ms, s, m, h or d), as in 90s, 15m, 24h or 1d";
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("{text:?} is not a duration; {usage}")),
    };
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration; {usage}"))?;
    let ms = number
        .checked_mul(unit_ms)
        .ok_or_else(|| format!("{text:?} is too long"))?;
    if ms == 0 {
        return Err("the duration must be longer than zero".to_owned());
    }
    Ok(Duration::from_millis(ms))
}

/// Logs what opening the store found and did, in the lines the proofs read.
pub(crate) fn log_recovery(report: &RecoveryReport) {
    if let Some(cut) = &report.truncated {
        tracing::warn!(
            log = "journal",
            segment = %cut.path.display(),
            offset = cut.offset,
            discarded_bytes = cut.discarded_bytes,
            damage = ?cut.damage,
            "recovery cut a torn or corrupt tail (never acknowledged)"
        );
    }
    if report.resumed > 0 {
        tracing::info!(
            commands = report.resumed,
            "completing a unit a crash cut short: commands processes issued in reaction to durable events"
        );
    }
    tracing::info!(
        commands = report.commands,
        resumed = report.resumed,
        events = report.events,
        timers_pending = report.timers_pending,
        dedupe_entries = report.dedupe_entries,
        dedupe_runs = report.dedupe_runs,
        dedupe_runs_removed = report.dedupe_runs_removed,
        dedupe_runs_written = report.dedupe_runs_written,
        elapsed_ms = report.elapsed.as_millis() as u64,
        "store open"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_number_and_a_unit() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(15 * 60)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(24 * 3600)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        for bad in [
            "",
            "24",
            "h",
            "1.5h",
            "-1h",
            "1 h",
            "1H",
            "1w",
            "0s",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_open_server_listens_on_loopback_only_unless_told_otherwise() {
        for listen in ["127.0.0.1:0", "[::1]:0", "localhost:0", "127.9.9.9:8080"] {
            assert_eq!(check_open_listen(listen, false, false), Ok(()), "{listen}");
        }
        for listen in ["0.0.0.0:0", "[::]:0", "192.0.2.1:8080"] {
            let error = check_open_listen(listen, false, false).unwrap_err();
            assert!(error.contains("without --tokens"), "{error}");
            assert!(error.contains("--insecure-open"), "{error}");
            assert_eq!(check_open_listen(listen, true, false), Ok(()), "{listen}");
            assert_eq!(check_open_listen(listen, false, true), Ok(()), "{listen}");
        }
    }

    #[test]
    fn log_levels_include_fatal() {
        assert_eq!(log_level("fatal"), Ok("error"));
        assert_eq!(log_level("WARN"), Ok("warn"));
        assert_eq!(log_level(""), Ok("info"));
        assert!(log_level("verbose").is_err());
    }
}
