//! Writ's side of `--over http`: the real `writ` binary, `writ serve --listen 127.0.0.1:0
//! --data-dir DIR` on a fresh directory, driven by the shared client; then killed, and its
//! journal read back by an engine opened on the directory.

use std::path::Path;

use writ_tools::client::{Client, Method, StatusCode, Target};
use writ_tools::server::ServerProcess;

use super::driver;
use crate::workload::Workload;
use crate::{CompareError, Side, SideRun, Tally, writ_side};

/// The journal's syncs, from `/metrics`: how many `fdatasync`s the commands took.
const SYNCS_METRIC: &str = "writ_journal_sync_seconds_count";

/// What a round of Writ over HTTP measured and recorded.
#[derive(Debug, Clone)]
pub struct WritHttpRun {
    /// Outcomes per second and latencies, as the client saw them.
    pub run: SideRun,
    /// What the journal holds, read back after the server was killed.
    pub tally: Tally,
    /// The journal's syncs (`writ_journal_sync_seconds_count` on `/metrics`), when the
    /// server reported them.
    pub journal_syncs: Option<u64>,
}

/// Runs the workload through `binary serve [serve_args]` on `dir` (which must not exist or
/// be empty), on `runtime` (the client's). The server is killed with SIGKILL afterwards,
/// not shut down: every outcome counted was durable, so a kill loses none of them, and the
/// tally read back after it checks that too.
pub fn run(
    binary: &Path,
    serve_args: &[String],
    dir: &Path,
    workload: &Workload,
    runtime: &tokio::runtime::Runtime,
) -> Result<WritHttpRun, CompareError> {
    crate::require_empty(dir)?;
    let server =
        ServerProcess::start(binary, dir, serve_args).map_err(|detail| CompareError::Writ {
            detail: format!("starting {} serve: {detail}", binary.display()),
        })?;
    let target = Target::parse(&server.url()).map_err(|detail| CompareError::Writ { detail })?;
    let measured = runtime.block_on(async {
        let run = driver::drive(Side::Writ, &target, workload).await?;
        Ok::<_, CompareError>((run, journal_syncs(&target).await))
    });
    let measured = measured.map_err(|e| match e {
        CompareError::CommandFailed { side, detail } => CompareError::CommandFailed {
            side,
            detail: format!("{detail}{}", server.log_tail()),
        },
        other => other,
    });
    server
        .kill()
        .map_err(|detail| CompareError::Writ { detail })?;
    let (run, journal_syncs) = measured?;
    let tally = writ_side::tally_dir(dir)?;
    Ok(WritHttpRun {
        run,
        tally,
        journal_syncs,
    })
}

/// The journal's sync count from the server's `/metrics`; `None` when it cannot be read.
async fn journal_syncs(target: &Target) -> Option<u64> {
    let mut client = Client::connect(target).await.ok()?;
    let (status, body) = client.send(Method::GET, "/metrics", None).await.ok()?;
    if status != StatusCode::OK {
        return None;
    }
    metric(&String::from_utf8_lossy(&body), SYNCS_METRIC)
}

/// The value of an unlabelled sample `name` in a Prometheus text exposition.
fn metric(exposition: &str, name: &str) -> Option<u64> {
    exposition.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let value = rest.strip_prefix(' ')?;
        value.trim().parse::<f64>().ok().map(|v| v as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_is_read_by_its_whole_name() {
        let text = "# TYPE writ_journal_sync_seconds histogram\n\
                    writ_journal_sync_seconds_bucket{le=\"0.001\"} 3\n\
                    writ_journal_sync_seconds_sum 0.25\n\
                    writ_journal_sync_seconds_count 1234\n\
                    writ_journal_sync_seconds_count_other 9\n";
        assert_eq!(metric(text, SYNCS_METRIC), Some(1234));
        assert_eq!(metric(text, "writ_journal_sync_seconds"), None);
        assert_eq!(metric("", SYNCS_METRIC), None);
    }
}
