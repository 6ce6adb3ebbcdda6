//! What the handlers share: the engine, the read side, the limits and the shutdown signal.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use std::collections::HashMap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use uuid::Uuid;
use writ_engine::{
    CommandStatus, Engine, Pending, Submission, SubmitError, Submitted, Unavailable, WaitError,
    WaitFor,
};

use writ_query::ReadModels;
use writ_sandbox::Sandbox;

use crate::access::Tokens;
use crate::connections::ConnectionId;
use crate::options::ServerOptions;
use crate::problem::{ApiError, ProblemKind};
use crate::resources::Resources;
use crate::telemetry;

/// What the handlers share: the engine, the limits, and the shutdown signal. Cheap to
/// clone.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// The engine and read side requests are served by: swapped whole when an online
    /// replay switches the journal ([`AppState::switch`]).
    live: ArcSwap<Live>,
    /// Opens the engine and read side that serve after a switch; none: `apply` refused.
    switcher: Option<Arc<dyn Switcher>>,
    /// Counts the switches: requests that met a switched-off engine wait for it to move.
    switches: watch::Sender<u64>,
    resources: Option<Arc<dyn Resources>>,
    tokens: Option<Tokens>,
    options: ServerOptions,
    pub(crate) requests: Arc<Semaphore>,
    pub(crate) waits: Arc<Semaphore>,
    streams: Arc<Semaphore>,
    shutdown: watch::Sender<bool>,
    /// See [`AppState::alone`].
    lone: LoneRequests,
    /// The last online replay (`/admin/replay`).
    pub(crate) replay: Arc<crate::admin::ReplayJob>,
}

/// When a request last met others in progress, in milliseconds since `started`, and the
/// connection of the last request that asked.
struct LoneRequests {
    started: Instant,
    crowded_at_ms: AtomicU64,
    /// [`ConnectionId`] of the last request that asked (0 before the first).
    last_connection: AtomicU64,
}

/// How long after a request met others in progress (or followed another connection's) no
/// request counts as alone: longer than the gaps between a loaded server's batches, short
/// against a person's pace.
const CROWDED_FOR: Duration = Duration::from_millis(100);

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("domains", &self.engine().registry().domain_names())
            .field("options", &self.inner.options)
            .field("tokens", &self.inner.tokens)
            .field("shutting_down", &*self.inner.shutdown.borrow())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// The state for an engine (of any domains).
    ///
    /// # Panics
    /// If a bound or a timeout in `options` is zero (`connections_per_address_max` aside).
    pub fn new(engine: Arc<Engine>, options: ServerOptions) -> Self {
        for (name, value) in [
            ("body_bytes_max", options.body_bytes_max),
            ("requests_max", options.requests_max),
            ("waits_max", options.waits_max),
            ("connections_max", options.connections_max),
            ("streams_max", options.streams_max),
            ("socket_in_flight_max", options.socket_in_flight_max),
            ("socket_outgoing_max", options.socket_outgoing_max),
            ("sse_batch_events_max", options.sse_batch_events_max),
            ("page_events_max", options.page_events_max),
        ] {
            assert!(value > 0, "ServerOptions::{name} must be at least 1");
        }
        for (name, value) in [
            ("head_timeout", options.head_timeout),
            ("body_timeout", options.body_timeout),
            ("idle_timeout", options.idle_timeout),
        ] {
            assert!(
                !value.is_zero(),
                "ServerOptions::{name} must be longer than zero"
            );
        }
        let u32_max = u32::MAX as usize; // waiting for all of a semaphore's permits takes a u32
        assert!(
            options.requests_max <= Semaphore::MAX_PERMITS
                && options.waits_max <= Semaphore::MAX_PERMITS
                && options.streams_max <= u32_max
                && options.socket_in_flight_max <= u32_max,
            "bounds must fit a semaphore"
        );
        // Record from now on, the engine's metrics included.
        telemetry::prometheus();
        Self {
            inner: Arc::new(Inner {
                live: ArcSwap::from_pointee(Live {
                    engine,
                    read: None,
                    floor: 0,
                }),
                switcher: None,
                switches: watch::channel(0).0,
                resources: None,
                tokens: None,
                requests: Arc::new(Semaphore::new(options.requests_max)),
                waits: Arc::new(Semaphore::new(options.waits_max)),
                streams: Arc::new(Semaphore::new(options.streams_max)),
                shutdown: watch::channel(false).0,
                lone: LoneRequests {
                    started: Instant::now(),
                    crowded_at_ms: AtomicU64::new(0),
                    last_connection: AtomicU64::new(0),
                },
                replay: Arc::default(),
                options,
            }),
        }
    }

    /// Serves queries from `read` too. Call it right after [`AppState::new`].
    ///
    /// # Panics
    /// If the state was cloned already (a router or server holds it).
    pub fn with_read_side(mut self, read: ReadSide) -> Self {
        let inner = Arc::get_mut(&mut self.inner)
            .expect("with_read_side is called before the state is shared");
        let engine = Arc::clone(&inner.live.load().engine);
        inner.live.store(Arc::new(Live {
            engine,
            read: Some(Arc::new(read)),
            floor: 0,
        }));
        self
    }

    /// Lets `POST /admin/replay` switch the journal (`{"apply": true}`): `switcher`
    /// opens what serves after the switch. Without one, `apply` is refused (`422`,
    /// `apply_offline`). Call it right after [`AppState::new`].
    ///
    /// # Panics
    /// If the state was cloned already (a router or server holds it).
    pub fn with_switcher(mut self, switcher: Arc<dyn Switcher>) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("with_switcher is called before the state is shared")
            .switcher = Some(switcher);
        self
    }

    /// Whether `POST /admin/replay` may switch the journal ([`AppState::with_switcher`]).
    pub(crate) fn switcher(&self) -> Option<&Arc<dyn Switcher>> {
        self.inner.switcher.as_ref()
    }

    /// Serves from `engine` and `read` from now on, once an online replay switched the
    /// journal: queries wait until the read models include `floor` (the new journal's
    /// last position when it opened), so none answers from a read model still being
    /// rebuilt; requests that met the engine switched off are told to submit again.
    pub(crate) fn switch(&self, engine: Arc<Engine>, read: Option<ReadSide>) {
        let floor = engine.last_position();
        self.inner.live.store(Arc::new(Live {
            engine,
            read: read.map(Arc::new),
            floor,
        }));
        self.inner.switches.send_modify(|n| *n += 1);
    }

    /// The engine served now once it is not one an online replay switched off, waiting
    /// at most [`SWITCH_WAIT_MAX`] for the switch to end; `None` when it did not end in
    /// time, or the server shuts down.
    pub(crate) async fn next_engine(&self) -> Option<Arc<Engine>> {
        let mut switches = self.inner.switches.subscribe();
        let changed = async {
            loop {
                let now = self.engine();
                if !now.is_switched() {
                    return Some(now);
                }
                if self.is_shutting_down() || switches.changed().await.is_err() {
                    return None;
                }
            }
        };
        tokio::time::timeout(SWITCH_WAIT_MAX, changed)
            .await
            .ok()
            .flatten()
    }

    /// Submits a client's command (decided on this thread when `now`: see
    /// [`Engine::submit_now`]) and waits for its acknowledgement. A command the engine
    /// refused because an online replay switched it off was never logged: it is submitted
    /// again, as it is, to the engine that serves next, so a switch holds commands up for
    /// its pause and refuses none (unless it outlasts [`SWITCH_WAIT_MAX`]: then `503`).
    pub(crate) async fn submit_acknowledged(
        &self,
        submission: &Submission<'_>,
        now: bool,
    ) -> Result<Acknowledged, ApiError> {
        let mut engine = self.engine();
        loop {
            let submitted = if now {
                engine.submit_now(submission)
            } else {
                engine.submit_command(submission)
            };
            // A switched-off engine logs nothing more, so whatever refused the command
            // there (its queue dropped at the shutdown that follows the switch reads
            // as "shutting down") left it unlogged.
            match submitted {
                Ok(Submitted::New(mut pending)) => match pending.accepted().await {
                    Ok(_) => return Ok(Acknowledged::New(pending)),
                    Err(_) if engine.is_switched() => {}
                    Err(error) => return Err(error.into()),
                },
                Ok(Submitted::Duplicate) => return Ok(Acknowledged::Duplicate),
                Err(SubmitError::Unavailable(_)) if engine.is_switched() => {}
                Err(error) => return Err(error.into()),
            }
            engine = self
                .next_engine()
                .await
                .ok_or_else(|| ApiError::from(Unavailable::Switched))?;
        }
    }

    /// Serves the resource types of `resources` at `/{resource}` (their reads need a read
    /// side with their read models too). Call it right after [`AppState::new`].
    ///
    /// # Panics
    /// If the state was cloned already (a router or server holds it).
    pub fn with_resources(mut self, resources: Arc<dyn Resources>) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("with_resources is called before the state is shared")
            .resources = Some(resources);
        self
    }

    /// The resource types served, when there are any.
    pub fn resources(&self) -> Option<&dyn Resources> {
        self.inner.resources.as_deref()
    }

    /// Requires a bearer token of `tokens` on every route but `/health` (see
    /// [`crate::access`]). Call it right after [`AppState::new`]; without it the server is
    /// open.
    ///
    /// # Panics
    /// If the state was cloned already (a router or server holds it).
    pub fn with_tokens(mut self, tokens: Tokens) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("with_tokens is called before the state is shared")
            .tokens = Some(tokens);
        self
    }

    /// The tokens requests must carry one of; `None` when the server is open.
    pub fn tokens(&self) -> Option<&Tokens> {
        self.inner.tokens.as_ref()
    }

    /// The read side, when the server has one (the one served now: an online replay's
    /// switch replaces it).
    pub fn read_side(&self) -> Option<Arc<ReadSide>> {
        self.inner.live.load().read.clone()
    }

    /// The read side served now, with the position its queries wait for at least.
    pub(crate) fn reading(&self) -> Option<Reading> {
        let live = self.inner.live.load();
        live.read.as_ref().map(|side| Reading {
            side: Arc::clone(side),
            floor: live.floor,
        })
    }

    /// The limits.
    pub fn options(&self) -> &ServerOptions {
        &self.inner.options
    }

    /// Tells streams and sockets to finish: live tails end, sockets stop reading and close
    /// once their commands are answered, long polls answer with the status as it is.
    pub fn begin_shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }

    /// Whether [`AppState::begin_shutdown`] was called.
    pub fn is_shutting_down(&self) -> bool {
        *self.inner.shutdown.borrow()
    }

    /// Whether this request, on `connection`, is alone in the server, and has been for a
    /// while: no other request (those that wait apart aside) is in progress now, none met
    /// another in the last [`CROWDED_FOR`], and the requests that asked in that window
    /// came on this connection. A loaded server's requests arrive in waves, so the first of
    /// a wave finds itself alone for a moment; the window keeps it from being taken for a
    /// lone client's.
    ///
    /// The connection matters where one HTTP worker serves several clients (one core, or
    /// `--http-threads`): while it decides and syncs one client's command, the others'
    /// requests wait unread, so each request it reads finds none other in progress. Taken
    /// for alone, every one of them would be synced by itself (measured with one worker
    /// and eight clients: a sync per command, a quarter of the rate of batches). Requests
    /// without a connection (a router called in-process) are judged by the rest alone.
    pub(crate) fn alone(&self, connection: Option<ConnectionId>) -> bool {
        let in_progress = self
            .inner
            .options
            .requests_max
            .saturating_sub(self.inner.requests.available_permits());
        let lone = &self.inner.lone;
        let now_ms = u64::try_from(lone.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        // Under load (others in progress) the window restarts anyway: the connection is
        // only recorded by requests that may be alone, so a busy server's every command
        // does not also write it. The first request after the load may then find another
        // connection's id there, which costs it one more window.
        let switched = |ConnectionId(id): ConnectionId| {
            let last = lone.last_connection.swap(id, Ordering::Relaxed);
            last != 0 && last != id
        };
        if in_progress > 1 || connection.is_some_and(switched) {
            lone.crowded_at_ms.store(now_ms.max(1), Ordering::Relaxed);
            return false;
        }
        let crowded_at_ms = lone.crowded_at_ms.load(Ordering::Relaxed);
        crowded_at_ms == 0 || now_ms.saturating_sub(crowded_at_ms) >= CROWDED_FOR.as_millis() as u64
    }

    /// The engine served now (an online replay's switch replaces it).
    pub fn engine(&self) -> Arc<Engine> {
        Arc::clone(&self.inner.live.load().engine)
    }

    /// Waits until the command reaches `until`; `None` for an unknown id. Answers from
    /// [`Engine::status`] when that already settles it (the common case for long polls and
    /// duplicates), which costs no waiter registration.
    pub(crate) async fn wait(
        &self,
        id: Uuid,
        until: WaitFor,
    ) -> Result<Option<CommandStatus>, WaitError> {
        if let Some(status) = self.engine().status(id)?
            && (until == WaitFor::Accepted || status.state.is_final())
        {
            return Ok(Some(status));
        }
        self.engine().wait(id, until).await
    }

    /// Resolves once shutdown begins.
    pub(crate) fn shutdown_begun(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.inner.shutdown.subscribe();
        async move {
            let _ = rx.wait_for(|down| *down).await;
        }
    }

    /// Sees `true` once shutdown begins.
    pub(crate) fn shutdown_receiver(&self) -> watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }

    /// A place for one server-sent event stream or WebSocket, or `503`.
    pub(crate) fn open_stream(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        if self.is_shutting_down() {
            return Err(ApiError::new(
                ProblemKind::Unavailable,
                "the server is shutting down",
            ));
        }
        Arc::clone(&self.inner.streams)
            .try_acquire_owned()
            .map_err(|_| {
                ApiError::overloaded(format!(
                    "{} streams and sockets are open",
                    self.options().streams_max
                ))
            })
    }

    /// Resolves once every stream and socket has closed.
    pub(crate) async fn streams_closed(&self) {
        let all = u32::try_from(self.options().streams_max).expect("checked in new");
        let _ = self.inner.streams.acquire_many(all).await;
    }
}

/// Longest a request waits for an online replay's switch to end (the old engine switched
/// off, the next one opening) before it is answered `503`. A switch pauses commands for
/// the replay of its last records and the opening of the engine on the new journal.
pub(crate) const SWITCH_WAIT_MAX: Duration = Duration::from_secs(30);

/// A command submitted and acknowledged ([`AppState::submit_acknowledged`]).
pub(crate) enum Acknowledged {
    /// A new one, durable: its outcome is there too.
    New(Pending),
    /// A resend of one within the dedupe window.
    Duplicate,
}

/// What requests are served by: swapped whole by a switch.
pub(crate) struct Live {
    engine: Arc<Engine>,
    read: Option<Arc<ReadSide>>,
    /// Queries wait until the read models include it (0 but after a switch).
    floor: u64,
}

/// The read side as a request holds it: what it was when the request began.
pub(crate) struct Reading {
    side: Arc<ReadSide>,
    /// The position its queries wait for at least (see [`AppState::switch`]).
    pub(crate) floor: u64,
}

impl std::ops::Deref for Reading {
    type Target = ReadSide;

    fn deref(&self) -> &ReadSide {
        &self.side
    }
}

/// Opens what serves after an online replay switched the journal
/// ([`AppState::with_switcher`]); `writ-app` gives one that knows the read models.
pub trait Switcher: Send + Sync + 'static {
    /// `old` was switched off (see `Engine::replay_online` with `apply`) and is shut
    /// down; `old_read` is the read side served until now. Opens the engine that serves
    /// next (`Engine::reopen`: on the journal `CURRENT` names) and its read side,
    /// which may still be catching up (queries wait for it). On an error the server can
    /// take no more commands; the message says why.
    fn reopen(
        &self,
        old: &Engine,
        old_read: Option<&ReadSide>,
    ) -> Result<(Arc<Engine>, Option<ReadSide>), String>;
}

/// What the server answers queries from: the read models (every domain's, kept at one
/// position) and the sandbox that runs query code.
#[derive(Clone)]
pub struct ReadSide {
    /// The read models.
    pub models: Arc<ReadModels>,
    /// Runs `POST /query/v{N}` code against the read models' snapshots.
    pub sandbox: Arc<Sandbox>,
    /// The domain each read model belongs to, by the read model's name (for `GET
    /// /domains`); a read model not listed belongs to none.
    pub domain_of_model: HashMap<String, String>,
}

impl fmt::Debug for ReadSide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadSide")
            .field("models", &self.models.names())
            .field("versions", &self.models.versions())
            .field("sandbox", &self.sandbox)
            .finish()
    }
}

/// Holds a place under `streams_max` and counts the stream or socket in its gauge.
#[derive(Debug)]
pub(crate) struct StreamGuard {
    _permit: OwnedSemaphorePermit,
    _gauge: telemetry::OpenGauge,
}

impl StreamGuard {
    pub(crate) fn sse(state: &AppState) -> Result<Self, ApiError> {
        Ok(Self {
            _permit: state.open_stream()?,
            _gauge: telemetry::OpenGauge::sse(),
        })
    }

    pub(crate) fn websocket(state: &AppState) -> Result<Self, ApiError> {
        Ok(Self {
            _permit: state.open_stream()?,
            _gauge: telemetry::OpenGauge::websocket(),
        })
    }
}
