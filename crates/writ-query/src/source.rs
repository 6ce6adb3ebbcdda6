//! Where projections read events from.

use writ_engine::{Engine, Subscription};

/// A global log a projection can follow: the engine, or anything that offers the same
/// ordered, gap-free feed.
pub trait EventSource: Send + Sync + 'static {
    /// A live feed of the global log from `from_position` (the first event has position 1),
    /// in commit order, never skipping or reordering an event.
    fn subscribe(&self, from_position: u64) -> Subscription;

    /// The last durable position (0 before the first event).
    fn last_position(&self) -> u64;
}

impl EventSource for Engine {
    fn subscribe(&self, from_position: u64) -> Subscription {
        Engine::subscribe(self, from_position)
    }

    fn last_position(&self) -> u64 {
        Engine::last_position(self)
    }
}
