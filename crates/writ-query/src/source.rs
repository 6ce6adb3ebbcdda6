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
}

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
