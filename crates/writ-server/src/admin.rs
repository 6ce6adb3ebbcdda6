//! Operations on the store beside live traffic (scope `admin`): `POST /admin/replay`
//! starts an online replay, `GET /admin/replay` follows it.
//!
//! The replay is [`Engine::replay_online`]: the live journal decided again by this
//! build's handlers into `replay-{n}/journal/` while the writer keeps appending, caught up
//! with it, compared, `REPLAYED` written; the report is the one `writ replay --report`
//! writes. It runs on a thread of its own (`writ-replay`), one at a time. With
//! `{"apply": true}` it then switches: the live writer paused for the last records, the
//! engine switched off and `CURRENT` renamed (`Engine::replay_online` with `apply`), the
//! next engine and its read models opened by the state's [`Switcher`](crate::Switcher)
//! and served from then on (`AppState::switch`); commands that met the pause are
//! submitted again to the new engine, queries wait for the rebuilt read models. A state
//! without a switcher refuses `apply` with `422` (`apply_offline`).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use writ_engine::Engine;
use writ_engine::replay::{Phase, Progress, ReplayError};

use crate::AppState;
use crate::params;
use crate::problem::{ApiError, Problem, ProblemKind};
use crate::wire::json_response;

/// Where `GET /admin/replay` answers.
pub const REPLAY_ROUTE: &str = "/admin/replay";

/// The body of `POST /admin/replay` (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// Make the replayed journal the live one once caught up: the writer is paused for
    /// the last records, then the server goes over to an engine on the new journal and
    /// read models rebuilt from it (queries wait for them). Commands sent meanwhile are
    /// held, not refused. Default `false`: replay and report only.
    #[serde(default)]
    pub apply: bool,
}

/// Where an online replay is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReplayPhase {
    /// None started since the server started.
    Idle,
    /// Deciding the live journal's records again.
    Replaying,
    /// Deciding the records the live writer appended meanwhile.
    CatchingUp,
    /// Comparing the two journals' outcomes.
    Comparing,
    /// Applying: the old engine switched off, the server opening the engine on the new
    /// journal and its read models (commands are held meanwhile).
    Switching,
    /// Written in full (`REPLAYED`) and compared: `report` holds the report.
    Done,
    /// Given up: `detail` says why. The live journal is as it was.
    Failed,
}

/// Where the last online replay stands: `GET /admin/replay`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplayStatus {
    /// The replay's number since the server started (0: none yet).
    pub id: u64,
    /// The phase.
    pub phase: ReplayPhase,
    /// Whether it switches once done (`POST /admin/replay` with `apply`). Once `done`,
    /// `report.applied` says whether it did: the journal went live.
    pub apply: bool,
    /// Records of the live journal replayed (or, comparing, compared) so far.
    pub replayed: u64,
    /// Records of the live journal the replay goes to: the live end it has seen, which
    /// moves while it catches up.
    pub live_end: u64,
    /// Commands that differ among those compared so far.
    pub differences: u64,
    /// Milliseconds since it started (until it ended, once it has).
    pub elapsed_ms: u64,
    /// Done: the whole report, the JSON `writ replay --report` writes (`commands`,
    /// `same`, `differing`, `byKind`, every difference with both outcomes, `source`,
    /// `journal`, `applied`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub report: Option<serde_json::Value>,
    /// Failed: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl ReplayStatus {
    fn idle() -> Self {
        Self {
            id: 0,
            phase: ReplayPhase::Idle,
            apply: false,
            replayed: 0,
            live_end: 0,
            differences: 0,
            elapsed_ms: 0,
            report: None,
            detail: None,
        }
    }

    fn is_running(&self) -> bool {
        !matches!(
            self.phase,
            ReplayPhase::Idle | ReplayPhase::Done | ReplayPhase::Failed
        )
    }
}

/// The last online replay, shared by the handlers and its thread.
#[derive(Debug)]
pub(crate) struct ReplayJob {
    status: Mutex<(ReplayStatus, Option<Instant>)>,
}

impl Default for ReplayJob {
    fn default() -> Self {
        Self {
            status: Mutex::new((ReplayStatus::idle(), None)),
        }
    }
}

impl ReplayJob {
    fn update(&self, f: impl FnOnce(&mut ReplayStatus)) {
        let mut guard = self.status.lock().unwrap_or_else(|e| e.into_inner());
        let (status, started) = &mut *guard;
        f(status);
        if let Some(at) = started {
            status.elapsed_ms = at.elapsed().as_millis() as u64;
            if !status.is_running() {
                // Ended: its time stays as it was at the end.
                *started = None;
            }
        }
    }

    fn snapshot(&self) -> ReplayStatus {
        let mut snapshot = None;
        self.update(|status| snapshot = Some(status.clone()));
        snapshot.expect("set above")
    }

    /// Claims the job for a new replay: its status, or `409` while one runs (this
    /// job's, or one the engine runs for another caller of
    /// [`Engine::replay_online`]).
    fn claim(&self, engine: &Engine, apply: bool) -> Result<ReplayStatus, ApiError> {
        let mut guard = self.status.lock().unwrap_or_else(|e| e.into_inner());
        let (status, started) = &mut *guard;
        if status.is_running() || engine.is_replaying() {
            return Err(running(status.id));
        }
        *status = ReplayStatus {
            id: status.id + 1,
            phase: ReplayPhase::Replaying,
            apply,
            ..ReplayStatus::idle()
        };
        *started = Some(Instant::now());
        Ok(status.clone())
    }
}

fn running(id: u64) -> ApiError {
    ApiError::new(
        ProblemKind::ReplayRunning,
        format!(
            "a replay is still running (the last one started here: {id}); follow it at GET {REPLAY_ROUTE}, and start the next once it is done"
        ),
    )
}

/// Replay the command log beside live traffic.
///
/// Starts a replay in the background: every client's command of the live journal is
/// decided again by this build's handlers, in order and at its logged time, into a new
/// journal (`replay-{n}/journal/` of the data directory) while the live writer keeps
/// appending; the replay catches up with it, compares the two journals, and marks its own
/// written in full. Live traffic is not held up: the journal is read as subscriptions read
/// it. At most one runs at a time. Follow it with `GET /admin/replay`; once `done`, its
/// `report` is what `writ replay --report` writes.
///
/// With `{"apply": true}` the replay's journal then becomes the live one without a
/// restart: once caught up, the writer is paused for the last records, the journals are
/// compared, the engine is switched over to the new journal (`CURRENT`) and the read
/// models are rebuilt from it. Commands sent during the pause are held and decided by the
/// new engine, not refused; queries wait until the rebuilt read models include the new
/// journal's end (at most `--after-wait-max`, as `?after=`); live event streams following
/// the old journal end. The old journal stays on disk.
#[utoipa::path(
    post,
    path = "/admin/replay",
    tag = "admin",
    request_body(content = Option<ReplayRequest>, content_type = "application/json",
        description = "Optional: `{\"apply\": true}` to switch once done"),
    responses(
        (status = 202, description = "The replay started.", body = ReplayStatus,
            headers(("Location" = String, description = "Where to follow it: `/admin/replay`"))),
        (status = 400, description = "Malformed body.",
            body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "The body did not arrive whole within the body deadline (`--body-timeout`); the connection is closed.",
            body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A replay is already running (`replay_running`), or an earlier one's journal, written in full and not applied, is on disk (`replay_unapplied`): delete its `replay-{n}/` first.",
            body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large.",
            body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "A body that is not declared JSON.",
            body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`apply` asked for of a server that cannot switch in process (`apply_offline`: one embedded without a switcher); switch offline with `writ replay --apply`.",
            body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The replay could not start.",
            body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Overloaded, the store refuses writes, or the server is shutting down.",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
    )
)]
pub(crate) async fn post_replay(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let json = params::is_json(request.headers());
    let body = Bytes::from_request(request, &state)
        .await
        .map_err(|rejection| crate::commands::body_error(&state, rejection))?;
    let body: ReplayRequest = if body.is_empty() {
        ReplayRequest::default()
    } else if !json {
        return Err(ApiError::new(
            ProblemKind::UnsupportedMediaType,
            "the body must be JSON: Content-Type application/json",
        ));
    } else {
        parse(&body)?
    };
    if body.apply && state.switcher().is_none() {
        return Err(ApiError::new(
            ProblemKind::ApplyOffline,
            "an online replay replays and reports only: it does not switch the running server onto the new journal. \
             Run it without \"apply\" to see the report; to switch, stop the server and run \
             `writ replay --data-dir DIR --apply` (the same replay, then CURRENT switched by one rename)",
        ));
    }
    let engine = state.engine();
    if state.is_shutting_down() {
        return Err(ApiError::new(
            ProblemKind::Unavailable,
            "the server is shutting down",
        ));
    }
    if let Some(reason) = engine.poisoned() {
        return Err(reason.into());
    }
    let job = Arc::clone(&state.inner.replay);
    if let Some(dir) = engine.unapplied_replay() {
        return Err(ApiError::new(
            ProblemKind::ReplayUnapplied,
            format!(
                "{} holds an earlier replay, written in full and not applied; an online replay writes a whole journal, so one at most is kept: delete that directory (or stop the server and apply a replay with `writ replay --data-dir DIR --apply`) before the next",
                dir.display()
            ),
        ));
    }
    let status = job.claim(&engine, body.apply)?;
    let thread = {
        let job = Arc::clone(&job);
        let state = state.clone();
        let apply = body.apply;
        std::thread::Builder::new()
            .name("writ-replay".to_owned())
            .spawn(move || run(&state, &engine, &job, apply))
    };
    if let Err(error) = thread {
        job.update(|status| {
            status.phase = ReplayPhase::Failed;
            status.detail = Some(format!("cannot start its thread: {error}"));
        });
        return Err(ApiError::new(
            ProblemKind::Internal,
            format!("the replay could not start: {error}"),
        ));
    }
    tracing::info!(replay = status.id, "online replay started");
    let mut response = json_response(StatusCode::ACCEPTED, &status);
    response
        .headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(REPLAY_ROUTE));
    Ok(response)
}

/// Marks a replay whose thread ended without saying how (it panicked) failed, so that
/// the next may start.
struct Ended<'a>(&'a ReplayJob);

impl Drop for Ended<'_> {
    fn drop(&mut self) {
        self.0.update(|status| {
            if status.is_running() {
                status.phase = ReplayPhase::Failed;
                status.detail = Some(
                    "internal error: the replay's thread panicked; see the server log".to_owned(),
                );
            }
        });
    }
}

/// The replay on its thread, its progress and its end kept in `job`; with `apply`, the
/// switch.
fn run(state: &AppState, engine: &Engine, job: &ReplayJob, apply: bool) {
    let _ended = Ended(job);
    let result = engine.replay_online(apply, &mut |p: Progress| {
        job.update(|status| {
            status.phase = match p.phase {
                Phase::Replaying => ReplayPhase::Replaying,
                Phase::CatchingUp => ReplayPhase::CatchingUp,
                _ => ReplayPhase::Comparing,
            };
            if status.phase == ReplayPhase::Comparing {
                status.differences = p.differences;
            }
            status.replayed = p.done;
            status.live_end = p.total;
        })
    });
    let applied = result.is_ok() && apply;
    if engine.is_switched() {
        job.update(|status| status.phase = ReplayPhase::Switching);
        if let Err(detail) = switch(state, engine) {
            tracing::error!(%detail, "online replay: the engine that serves next did not open; commands are refused until the server is restarted");
            job.update(|status| {
                status.phase = ReplayPhase::Failed;
                status.detail = Some(format!(
                    "the journal {} switched, but the engine that serves next did not open: {detail}; restart the server",
                    if applied { "was" } else { "was not" }
                ));
            });
            return;
        }
    }
    match result {
        Ok(replayed) => {
            let report = &replayed.report;
            tracing::info!(
                journal = %replayed.journal.display(),
                records = report.live_records,
                commands = report.commands,
                differing = report.differing(),
                "online replay done"
            );
            job.update(|status| {
                status.phase = ReplayPhase::Done;
                status.replayed = report.live_records;
                status.live_end = report.live_records;
                status.differences = report.differing();
                status.report = Some(replayed.report_json(applied));
            });
        }
        Err(error) => {
            tracing::warn!(%error, "online replay failed; the live journal is as it was");
            let detail = match &error {
                ReplayError::Running => "another replay is running".to_owned(),
                other => other.to_string(),
            };
            job.update(|status| {
                status.phase = ReplayPhase::Failed;
                status.detail = Some(detail);
            });
        }
    }
}

/// Opens what serves after `old` was switched off (through the state's switcher) and
/// serves it; the old read models are shut down once the new ones are served.
fn switch(state: &AppState, old: &Engine) -> Result<(), String> {
    let switcher = state
        .switcher()
        .ok_or("internal error: switched without a switcher")?;
    let old_read = state.read_side();
    let started = Instant::now();
    let (engine, read) = switcher.reopen(old, old_read.as_deref())?;
    tracing::info!(
        journal = %engine.journal_dir().display(),
        last_position = engine.last_position(),
        open_ms = started.elapsed().as_millis() as u64,
        "online replay: serving the engine on the new journal; the read models rebuild from it"
    );
    state.switch(engine, read);
    if let Some(old_read) = old_read {
        old_read.models.shutdown();
    }
    Ok(())
}

/// Where the online replay stands.
///
/// The last replay started with `POST /admin/replay` (phase `idle` before any): its
/// phase (`replaying`, `catching_up`, `comparing`, `switching`, `done`, `failed`), the live journal's
/// records replayed of those it goes to, the commands that differ so far, and once done
/// the whole report.
#[utoipa::path(
    get,
    path = "/admin/replay",
    tag = "admin",
    responses(
        (status = 200, description = "Where the last replay stands.", body = ReplayStatus),
    )
)]
pub(crate) async fn get_replay(State(state): State<AppState>) -> Response {
    json_response(StatusCode::OK, &state.inner.replay.snapshot())
}

/// A body that must be a JSON object.
fn parse(body: &[u8]) -> Result<ReplayRequest, ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ApiError::malformed(format!("the body: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::malformed("the body must be a JSON object"));
    }
    serde_json::from_value(value).map_err(|e| ApiError::malformed(format!("the body: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_thread_that_panics_leaves_the_job_failed_so_the_next_may_start() {
        let job = Arc::new(ReplayJob::default());
        job.update(|status| status.phase = ReplayPhase::Comparing);
        let thread = {
            let job = Arc::clone(&job);
            std::thread::spawn(move || {
                let _ended = Ended(&job);
                panic!("a bug");
            })
        };
        assert!(thread.join().is_err());
        let status = job.snapshot();
        assert_eq!(status.phase, ReplayPhase::Failed);
        assert!(status.detail.unwrap().contains("panicked"));
        assert!(!job.snapshot().is_running());
    }
}
