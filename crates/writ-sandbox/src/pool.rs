//! The sandbox: a bounded queue of queries and a pool of worker threads, each with a few
//! warm VMs, one per root (function set) of the current model.
//!
//! A QuickJS runtime is not `Send` (without rquickjs's `parallel` feature), and its stack
//! limit is measured on the thread that uses it, so each VM lives and dies on one worker
//! thread whose stack size the sandbox chooses. Callers get the answer through a callback
//! ([`Sandbox::submit`]) or block on a channel ([`Sandbox::run`]).
//!
//! Models and roots: a VM is made for one root (a function set, [`Library::root`]) and
//! runs only its queries. The model ([`Library::model`]) of the latest query that brought a
//! model not seen before is *current*; every root of the current model (say, query API
//! versions 1 and 2 over one projection version) keeps its VMs warm, up to
//! [`VMS_PER_WORKER_MAX`] per worker, the least recently used going first. When the current
//! model changes, idle workers are woken to drop VMs of other models; busy ones drop theirs
//! after the query they run. A query for an older model (one still in flight when the model
//! changed) runs in a VM made for it and dropped after it, never in a VM of another root,
//! and evicts no warm VM of the current model to make room.

use std::{
    collections::{HashMap, VecDeque},
    panic::{self, AssertUnwindSafe},
    sync::{Arc, Condvar, Mutex, MutexGuard, mpsc},
    thread,
};

use crate::{
    Library, RootId, SandboxError, SandboxOptions, StartError,
    vm::{Limits, Vm},
};

/// Models remembered as superseded, so that a late query for one does not make it current
/// again.
const RETIRED_MODELS_MAX: usize = 16;

/// Warm VMs one worker keeps at most (one per root of the current model), so that traffic
/// alternating between the query versions of one model never remakes VMs.
pub const VMS_PER_WORKER_MAX: usize = 4;

/// Runs client JavaScript against snapshots, within limits; see the crate documentation.
pub struct Sandbox {
    shared: Arc<Shared>,
    options: SandboxOptions,
    workers: Vec<thread::JoinHandle<()>>,
}

/// The result of a query.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// The JSON of the value the code returned (`null` for `undefined`).
    pub result: serde_json::Value,
    /// The position of the snapshot the query read.
    pub position: u64,
}

/// A view of the sandbox's pool, for metrics and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SandboxStats {
    /// VMs alive per root (at most one per worker).
    pub vms_by_root: HashMap<RootId, usize>,
    /// The current model (see the module documentation), once a query brought one.
    pub current_model: Option<RootId>,
    /// Queries waiting for a worker.
    pub queued: usize,
    /// Queries running now.
    pub running: usize,
    /// VMs made since the start.
    pub vms_created: u64,
    /// VMs dropped because their model was superseded, the per-worker bound evicted them,
    /// or they answered their share of queries.
    pub vms_retired: u64,
    /// VMs dropped because a query hit the time or memory limit, or something panicked.
    pub vms_discarded: u64,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when a job is queued, the current model changes, or the sandbox stops.
    work: Condvar,
    limits: Limits,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    /// Workers waiting for work.
    idle: usize,
    /// Workers running a query.
    running: usize,
    current_model: Option<RootId>,
    retired_models: VecDeque<RootId>,
    /// Counts changes of `current_model`.
    model_epoch: u64,
    shutdown: bool,
    stats: SandboxStats,
}

struct Job {
    library: Arc<dyn Library>,
    root: RootId,
    model: RootId,
    code: String,
    args_json: String,
    reply: Reply,
}

/// Where a job's answer goes: called once, on the worker thread.
type Reply = Box<dyn FnOnce(Result<Outcome, SandboxError>) + Send>;

enum Event {
    Job(Job),
    ModelChanged(Option<RootId>),
    Shutdown,
}

impl Sandbox {
    /// Starts the worker threads. VMs are made on first use of each root.
    pub fn new(options: SandboxOptions) -> Result<Self, StartError> {
        options
            .validate()
            .map_err(|detail| StartError::InvalidOptions { detail })?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            limits: Limits {
                time_limit: options.time_limit,
                memory_bytes_max: options.memory_bytes_max,
                stack_bytes_max: options.stack_bytes_max,
                result_bytes_max: options.result_bytes_max,
            },
        });
        let mut sandbox = Self {
            shared,
            options,
            workers: Vec::new(),
        };
        for index in 0..sandbox.options.pool_size {
            let shared = Arc::clone(&sandbox.shared);
            let worker = thread::Builder::new()
                .name(format!("writ-sandbox-{index}"))
                // QuickJS's stack limit plus room for library functions and the host.
                .stack_size(sandbox.options.stack_bytes_max + (8 << 20))
                .spawn(move || work(&shared))
                .map_err(StartError::Thread)?;
            sandbox.workers.push(worker);
        }
        Ok(sandbox)
    }

    /// Runs `code` against `library`'s snapshot with `args` in scope and returns the JSON of
    /// its result and the snapshot's position. Blocks until a worker has run it (from async
    /// code, use [`Sandbox::submit`]); refuses at once with [`SandboxError::Overloaded`] when
    /// all workers are busy and the queue is full.
    pub fn run(
        &self,
        library: Arc<dyn Library>,
        code: &str,
        args: serde_json::Value,
    ) -> Result<Outcome, SandboxError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.submit(library, code, args, move |result| {
            // The caller waits for this; if it is gone there is no one to tell.
            let _ = reply.send(result);
        })?;
        answer.recv().unwrap_or_else(|_| {
            Err(SandboxError::Internal {
                message: "the sandbox worker panicked before answering".into(),
            })
        })
    }

    /// Queues `code` like [`Sandbox::run`] without blocking: `done` is called once with the
    /// answer, on the worker thread that ran it (keep it short: send the answer on). When
    /// the query cannot be queued (the code is too large, or the sandbox is overloaded),
    /// `done` is dropped uncalled and the error is returned at once. `done` must not panic.
    /// If a worker panics before answering, `done` is dropped uncalled: a caller waiting on
    /// a channel it captured sees the channel close, which it should treat as
    /// [`SandboxError::Internal`].
    pub fn submit(
        &self,
        library: Arc<dyn Library>,
        code: &str,
        args: serde_json::Value,
        done: impl FnOnce(Result<Outcome, SandboxError>) + Send + 'static,
    ) -> Result<(), SandboxError> {
        if code.len() > self.options.code_bytes_max {
            return Err(SandboxError::CodeTooLarge {
                size: code.len(),
                max: self.options.code_bytes_max,
            });
        }
        let args_json = args.to_string();
        let root = library.root();
        let model = library.model();
        let model_changed = {
            let mut state = self.shared.lock();
            if state.jobs.len() >= state.idle + self.options.queue_max {
                return Err(SandboxError::Overloaded);
            }
            let model_changed = state.observe_model(model);
            state.jobs.push_back(Job {
                library,
                root,
                model,
                code: code.to_owned(),
                args_json,
                reply: Box::new(done),
            });
            model_changed
        };
        if model_changed {
            self.shared.work.notify_all();
        } else {
            self.shared.work.notify_one();
        }
        Ok(())
    }

    /// The pool's state now.
    pub fn stats(&self) -> SandboxStats {
        let state = self.shared.lock();
        let mut stats = state.stats.clone();
        stats.queued = state.jobs.len();
        stats.running = state.running;
        stats.current_model = state.current_model;
        stats
    }

    /// The options the sandbox runs with.
    pub fn options(&self) -> &SandboxOptions {
        &self.options
    }
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("options", &self.options)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.work.notify_all();
        for worker in self.workers.drain(..) {
            // A worker only ends by panicking outside a query, which is a bug already
            // reported by the panic hook; nothing more to do here.
            let _ = worker.join();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is updated in single statements that do not panic, so a poisoned lock
        // still guards consistent data.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits for the next thing this worker has to do.
    fn next_event(&self, model_epoch: &mut u64) -> Event {
        let mut state = self.lock();
        loop {
            if state.shutdown {
                return Event::Shutdown;
            }
            if state.model_epoch != *model_epoch {
                *model_epoch = state.model_epoch;
                return Event::ModelChanged(state.current_model);
            }
            if let Some(job) = state.jobs.pop_front() {
                state.running += 1;
                return Event::Job(job);
            }
            state.idle += 1;
            state = self
                .work
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            state.idle -= 1;
        }
    }
}

impl State {
    /// Notes the model of a new query; returns whether the current model changed.
    fn observe_model(&mut self, model: RootId) -> bool {
        if self.current_model == Some(model) || self.retired_models.contains(&model) {
            return false;
        }
        if let Some(old) = self.current_model.replace(model) {
            if self.retired_models.len() == RETIRED_MODELS_MAX {
                self.retired_models.pop_front();
            }
            self.retired_models.push_back(old);
        }
        self.model_epoch += 1;
        true
    }
}

/// Why a VM is dropped.
enum Removal {
    Retired,
    Discarded,
}

/// A VM and the model its root belongs to.
struct Warm {
    model: RootId,
    vm: Vm,
}

/// A worker thread: takes jobs, keeps up to [`VMS_PER_WORKER_MAX`] warm VMs, least
/// recently used first.
fn work(shared: &Shared) {
    let mut warm: Vec<Warm> = Vec::new();
    let mut model_epoch = 0;
    loop {
        match shared.next_event(&mut model_epoch) {
            Event::Shutdown => return,
            Event::ModelChanged(current) => {
                for old in warm.extract_if(.., |w| Some(w.model) != current) {
                    drop_vm(shared, old.vm, Removal::Retired);
                }
            }
            Event::Job(job) => {
                // The VM the job runs in is out of `warm` while it runs, so that a panic
                // (here, or outside the query itself, in a library's `functions`, which
                // drops the job and its reply channel: the caller learns that the worker
                // stopped) discards exactly that VM.
                let mut used: Option<Warm> = None;
                let answered = panic::catch_unwind(AssertUnwindSafe(|| {
                    answer(shared, &mut warm, &mut used, job);
                }));
                if answered.is_err() {
                    // It panicked before answering, so `running` still counts the job.
                    shared.lock().running -= 1;
                    if let Some(old) = used.take() {
                        drop_vm(shared, old.vm, Removal::Discarded);
                    }
                }
                after_query(shared, &mut warm, used);
            }
        }
    }
}

/// Runs a job in a VM of its root (taken out of `warm` into `used`, or made) and sends the
/// answer.
fn answer(shared: &Shared, warm: &mut Vec<Warm>, used: &mut Option<Warm>, job: Job) {
    let current = match warm.iter().position(|w| w.vm.root() == job.root) {
        Some(index) => used.insert(warm.remove(index)),
        None => {
            // Room first, so that a worker never keeps more than the bound warm. A late
            // query of a retired model evicts nothing: its VM is dropped after the answer,
            // so it only runs beside the bound for that long.
            let current_model = shared.lock().current_model;
            if warm.len() == VMS_PER_WORKER_MAX && current_model == Some(job.model) {
                let oldest = warm.remove(0);
                drop_vm(shared, oldest.vm, Removal::Retired);
            }
            match Vm::new(job.root, job.library.functions(), shared.limits) {
                Ok(new) => {
                    let mut state = shared.lock();
                    *state.stats.vms_by_root.entry(job.root).or_default() += 1;
                    state.stats.vms_created += 1;
                    drop(state);
                    used.insert(Warm {
                        model: job.model,
                        vm: new,
                    })
                }
                Err(error) => return reply(shared, job.reply, Err(error)),
            }
        }
    };
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        current.vm.run(job.library, &job.code, &job.args_json)
    }));
    let result = result.unwrap_or_else(|panic| {
        current.vm.poison();
        Err(SandboxError::Internal {
            message: format!("a panic while running the query: {}", panic_message(&panic)),
        })
    });
    // A VM that hit a limit goes before the answer, so that the next query (and the stats)
    // never see it.
    if let Some(old) = used.take_if(|w| !w.vm.healthy()) {
        drop_vm(shared, old.vm, Removal::Discarded);
    }
    reply(shared, job.reply, result);
}

/// Sends the answer; the job stops counting as running first, so that a caller who got its
/// answer sees the stats without it.
fn reply(shared: &Shared, reply: Reply, result: Result<Outcome, SandboxError>) {
    shared.lock().running -= 1;
    reply(result);
}

/// Keeps the VM that ran the query warm for the next query of its root (the most recently
/// used, last in `warm`), or retires it; retires the least recently used beyond the bound.
fn after_query(shared: &Shared, warm: &mut Vec<Warm>, used: Option<Warm>) {
    let Some(mut current) = used else {
        return;
    };
    if current.vm.worn_out() || shared.lock().current_model != Some(current.model) {
        drop_vm(shared, current.vm, Removal::Retired);
        return;
    }
    let idle = panic::catch_unwind(AssertUnwindSafe(|| current.vm.idle()));
    if !matches!(idle, Ok(Ok(()))) {
        drop_vm(shared, current.vm, Removal::Discarded);
        return;
    }
    // `answer` made room before it made a VM of the current model, and models never come
    // back once retired, so a VM kept here always fits.
    debug_assert!(warm.len() < VMS_PER_WORKER_MAX);
    warm.push(current);
}

fn drop_vm(shared: &Shared, vm: Vm, why: Removal) {
    let root = vm.root();
    drop(vm);
    let mut state = shared.lock();
    let stats = &mut state.stats;
    if let Some(count) = stats.vms_by_root.get_mut(&root) {
        *count -= 1;
        if *count == 0 {
            stats.vms_by_root.remove(&root);
        }
    }
    match why {
        Removal::Retired => stats.vms_retired += 1,
        Removal::Discarded => stats.vms_discarded += 1,
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> &str {
    if let Some(message) = panic.downcast_ref::<&str>() {
        message
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message
    } else {
        "(no message)"
    }
}
