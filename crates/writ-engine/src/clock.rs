//! The engine's clock: what `recorded_at` says, when timers fall due and when ids leave the
//! dedupe window. The system clock by default; [`ManualClock`] lets a test move time on
//! (a timer days away fires when the test says the days have passed).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, as the engine reads them.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now, in milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;

    /// The longest the engine may sleep before it reads this clock again while a timer is
    /// pending. `None` for a clock that moves with real time (the engine sleeps until the
    /// timer is due); a clock moved by hand answers how soon a move must be noticed.
    fn recheck_within(&self) -> Option<Duration> {
        None
    }
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

/// A clock that moves only when told to, for tests. Clones share one time.
///
/// ```
/// use std::time::Duration;
/// use writ_engine::{Clock, ManualClock};
///
/// let clock = ManualClock::at_ms(1_000);
/// let seen_by_engine = clock.clone();
/// clock.advance(Duration::from_secs(86_400));
/// assert_eq!(seen_by_engine.now_ms(), 1_000 + 86_400_000);
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock that reads `ms` until moved.
    pub fn at_ms(ms: u64) -> Self {
        Self(Arc::new(AtomicU64::new(ms)))
    }

    /// A clock that starts at the system's time.
    pub fn starting_now() -> Self {
        Self::at_ms(SystemClock.now_ms())
    }

    /// Moves the clock on by `by`. An engine on it notices within about 5 ms for its
    /// timers (those due by then fire) and within about a second for the dedupe window
    /// (ids older than it are forgotten).
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }

    /// Sets the clock to `ms`. Handlers see time that never goes back along the journal,
    /// so setting it back only holds `recorded_at` where it was.
    pub fn set_ms(&self, ms: u64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    fn recheck_within(&self) -> Option<Duration> {
        Some(Duration::from_millis(5))
    }
}
