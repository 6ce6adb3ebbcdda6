//! Where read models read events from: an [`EventSource`] hands out [`EventFeed`]s.
//!
//! The runtime needs only an ordered, gap-free feed of the global log and the log's last
//! position, so anything that can offer them can feed read models: the engine (adapted
//! here), a follower reading a leader over HTTP, another store. The feed's batch is the
//! caller's `Vec`, read into in place, so that a reader handing back the batches it is done
//! with reads without allocating.

use std::future::Future;
use std::pin::Pin;

use writ_domain::RecordedEvent;
use writ_engine::{Engine, Subscription, SubscriptionError};

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A global log that read models can follow.
pub trait EventSource: Send + Sync + 'static {
    /// A live feed of the global log from `from_position` (the first event has position 1),
    /// in commit order, never skipping or reordering an event.
    fn subscribe(&self, from_position: u64) -> Box<dyn EventFeed>;

    /// The last durable position (0 before the first event). The runtime compares it with
    /// what it applied to tell catching up from keeping up, and reports the difference as
    /// the lag.
    fn last_position(&self) -> u64;

    /// What identifies the journal at `position` (durable): the read models' snapshots
    /// record it, and one is loaded only when the source still gives the same mark at
    /// its position, so a snapshot of another journal (a restored backup, a journal
    /// replayed by another build) is never taken for this one's. `None` when the source
    /// cannot say (it does not know the position, or cannot read it): then no snapshot is
    /// written or loaded. The default is always `None`: snapshots are off.
    fn mark(&self, position: u64) -> Option<JournalMark> {
        let _ = position;
        None
    }
}

/// What identifies a journal at a position, as [`EventSource::mark`] gives it: 32 opaque
/// bytes, equal for the same journal, different (but for a chance of about 2^-32 at
/// worst) for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct JournalMark(pub [u8; JournalMark::BYTES]);

impl JournalMark {
    /// Its size.
    pub const BYTES: usize = 32;
}

/// The other positions whose events the engine's [`JournalMark`] covers besides the
/// position itself: spread evenly over the journal before it.
const MARK_SAMPLES: u64 = 8;

/// One reader's feed of the global log, from the position it was subscribed at.
///
/// The runtime drives it on a thread of its own, on a current-thread tokio runtime with
/// I/O and timers enabled, so a feed may await sockets and timers.
pub trait EventFeed: Send {
    /// Reads the next events, in order, into `events`, which ends up holding exactly them:
    /// at least one and at most `max` (`max` is at least 1), waiting until there are some.
    /// The events it held before are overwritten, and may be reused in place (their
    /// strings and buffers).
    ///
    /// Ends with [`FeedError::Closed`] once the source has shut down and every event
    /// durable by then was delivered. On an error `events` holds nothing of meaning.
    ///
    /// Must be cancel-safe: the runtime drops the future when it is told to stop or a
    /// rebuilt read model asks to join, and calls again later; a dropped call must lose no
    /// event and deliver none twice.
    fn next_batch_into<'a>(
        &'a mut self,
        max: usize,
        events: &'a mut Vec<RecordedEvent>,
    ) -> BoxFuture<'a, Result<(), FeedError>>;
}

/// Why a feed gave no events.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeedError {
    /// The source shut down; every durable event up to then was delivered. Nothing more
    /// will come: the read models stop (their snapshots stay readable).
    #[error("the event source shut down")]
    Closed,
    /// Reading failed. The read models stop, with this as their failure; a restart (or a
    /// rebuild, which subscribes again) retries.
    #[error("reading the event source failed: {source}")]
    Failed {
        /// What the source said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl EventSource for Engine {
    fn subscribe(&self, from_position: u64) -> Box<dyn EventFeed> {
        Box::new(EngineFeed(Engine::subscribe(self, from_position)))
    }

    fn last_position(&self) -> u64 {
        Engine::last_position(self)
    }

    /// The engine's mark of `position`: the id of the command that recorded the event at
    /// `position` (16 bytes) and its `recorded_at_ms` (8), a CRC32C of that event
    /// (position, stream, version, type, schema version, data, ids, time; 4) and a CRC32C
    /// of the live journal's directory and of the events at `position * i / 8` for `i`
    /// in 1..8 (4), so that a journal that differs at the position or at any of those is
    /// told apart, and so is another journal made live by `writ replay --apply` (whose
    /// events may differ anywhere else: its read models are rebuilt once).
    fn mark(&self, position: u64) -> Option<JournalMark> {
        if position == 0 || position > Engine::last_position(self) {
            return None;
        }
        let event = |position: u64| {
            Engine::read_all(self, position, 1)
                .ok()?
                .into_iter()
                .next()
                .filter(|event| event.position == position)
        };
        let last = event(position)?;
        let mut mark = [0; JournalMark::BYTES];
        mark[..16].copy_from_slice(last.command_id.as_bytes());
        mark[16..24].copy_from_slice(&last.recorded_at_ms.to_le_bytes());
        mark[24..28].copy_from_slice(&event_crc(0, &last).to_le_bytes());
        let journal = Engine::journal_dir(self).to_string_lossy();
        let mut samples = crc32c::crc32c(journal.as_bytes());
        let mut previous = 0;
        for i in 1..MARK_SAMPLES {
            let at = position / MARK_SAMPLES * i;
            if at == 0 || at == previous {
                continue;
            }
            previous = at;
            samples = event_crc(samples, &event(at)?);
        }
        mark[28..32].copy_from_slice(&samples.to_le_bytes());
        Some(JournalMark(mark))
    }
}

/// A CRC32C of an event's every field, continuing `crc`.
fn event_crc(crc: u32, event: &RecordedEvent) -> u32 {
    let mut crc = crc32c::crc32c_append(crc, &event.position.to_le_bytes());
    for field in [
        event.stream.as_bytes(),
        event.event_type.as_bytes(),
        &event.data,
    ] {
        crc = crc32c::crc32c_append(crc, &(field.len() as u64).to_le_bytes());
        crc = crc32c::crc32c_append(crc, field);
    }
    crc = crc32c::crc32c_append(crc, &event.version.to_le_bytes());
    crc = crc32c::crc32c_append(crc, &event.schema_version.to_le_bytes());
    crc = crc32c::crc32c_append(crc, &event.recorded_schema_version.to_le_bytes());
    crc = crc32c::crc32c_append(crc, event.command_id.as_bytes());
    crc = crc32c::crc32c_append(crc, event.correlation_id.as_bytes());
    crc32c::crc32c_append(crc, &event.recorded_at_ms.to_le_bytes())
}

/// An engine's [`Subscription`] as an [`EventFeed`].
#[derive(Debug)]
struct EngineFeed(Subscription);

impl EventFeed for EngineFeed {
    fn next_batch_into<'a>(
        &'a mut self,
        max: usize,
        events: &'a mut Vec<RecordedEvent>,
    ) -> BoxFuture<'a, Result<(), FeedError>> {
        // `Subscription::next_batch_into` is cancel-safe.
        Box::pin(async move {
            self.0
                .next_batch_into(max, events)
                .await
                .map_err(|error| match error {
                    SubscriptionError::Closed => FeedError::Closed,
                    error => FeedError::Failed {
                        source: Box::new(error),
                    },
                })
        })
    }
}
