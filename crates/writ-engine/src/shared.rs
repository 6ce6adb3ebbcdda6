//! What the engine handle and its threads share.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crate::dedupe::{DedupeIndex, Waiters};
use crate::error::Unavailable;
use crate::metrics::Metrics;
use crate::options::EngineOptions;
use crate::registry::Registry;
use crate::store::Store;

/// Counters of what the engine did since it opened.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub commands_accepted: AtomicU64,
    pub commands_issued: AtomicU64,
    pub timers_fired: AtomicU64,
    pub duplicates: AtomicU64,
    pub batches: AtomicU64,
    pub writer_syncs: AtomicU64,
    pub decided_on_submit: AtomicU64,
    pub succeeded: AtomicU64,
    pub rejected: AtomicU64,
    pub failed: AtomicU64,
    pub reactions_failed: AtomicU64,
    pub dedupe_spill_failures: AtomicU64,
}

/// State shared by the engine handle and its threads.
pub(crate) struct Shared {
    pub registry: Registry,
    pub options: EngineOptions,
    pub dedupe: DedupeIndex,
    pub waiters: Waiters,
    pub store: Store,
    pub stats: Stats,
    pub metrics: Metrics,
    /// Commands in the writer's queue (incremented before `try_send`, decremented by the
    /// writer).
    pub queued: AtomicUsize,
    /// Pending timers, as the writer last counted them (it owns the timers).
    pub timers_pending: AtomicUsize,
    /// When the first pending timer is due (ms), `u64::MAX` for none, as the writer last
    /// published it.
    pub next_timer_ms: AtomicU64,
    poisoned: AtomicBool,
    poison_detail: Mutex<Option<String>>,
    pub accepting: AtomicBool,
    /// Set, holding the writer, once an online replay's journal is to become the live one:
    /// from then on nothing is decided here (see [`Unavailable::Switched`]).
    pub switched: AtomicBool,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("registry", &self.registry)
            .field("options", &self.options)
            .field("poisoned", &self.is_poisoned())
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn new(registry: Registry, options: EngineOptions, store: Store) -> Self {
        Self {
            registry,
            dedupe: DedupeIndex::new(&options, store.journal.clone()),
            waiters: Waiters::new(options.waiters_max),
            store,
            stats: Stats::default(),
            metrics: Metrics::new(),
            queued: AtomicUsize::new(0),
            timers_pending: AtomicUsize::new(0),
            next_timer_ms: AtomicU64::new(u64::MAX),
            poisoned: AtomicBool::new(false),
            poison_detail: Mutex::new(None),
            accepting: AtomicBool::new(true),
            switched: AtomicBool::new(false),
            options,
        }
    }

    /// Refuses writes from now on, with `detail` as the reason, and wakes every waiter.
    pub(crate) fn poison(&self, detail: String) {
        let mut slot = self.poison_detail.lock().expect("poison lock");
        if slot.is_none() {
            *slot = Some(detail);
        }
        self.poisoned.store(true, Ordering::Release);
        self.metrics.store_poisoned.set(1.0);
        drop(slot);
        self.waiters.wake_all();
    }

    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    /// Why writes are refused: poisoned, or shutting down.
    pub(crate) fn unavailable(&self) -> Unavailable {
        let detail = self.poison_detail.lock().expect("poison lock").clone();
        match detail {
            Some(detail) => Unavailable::Poisoned { detail },
            None if self.switched.load(Ordering::Acquire) => Unavailable::Switched,
            None => Unavailable::ShuttingDown,
        }
    }
}

/// Marks the engine poisoned if a pipeline thread dies of a panic, so that callers get an
/// error instead of waiting forever.
pub(crate) struct PanicGuard<'a>(pub &'a Shared, pub &'static str);

impl Drop for PanicGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0
                .poison(format!("internal error: the {} thread panicked", self.1));
        }
    }
}
