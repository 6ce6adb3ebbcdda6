use std::sync::Arc;

use tokio::sync::watch;

use crate::error::SubscriptionError;
use crate::store::Store;
use crate::types::RecordedEvent;

/// Where a subscription reads from; implemented by the engine's shared state.
pub(crate) trait Source: Send + Sync + std::fmt::Debug {
    fn store(&self) -> &Store;
}

/// A live, ordered feed of the global log from a position.
///
/// It reads the durable log directly and waits on the published end when it has caught
/// up, so it never skips or reorders an event, and the writer never waits for it: the
/// writer only publishes a new end. Its buffer is the batch it returns, at most `max`
/// events; a slow subscriber simply reads further behind, from the log.
#[derive(Debug)]
pub struct Subscription {
    source: Arc<dyn Source>,
    next: u64,
    end: watch::Receiver<u64>,
    /// The journal read buffer, kept from one batch to the next.
    buf: Vec<u8>,
}

impl Subscription {
    pub(crate) fn new(source: Arc<dyn Source>, from_position: u64) -> Self {
        let end = source.store().watch_position();
        Self {
            source,
            next: from_position.max(1),
            end,
            buf: Vec::new(),
        }
    }

    /// The position of the next event this subscription will deliver.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// The next events in order, at least one and at most `max`, waiting until there are
    /// some. Ends with [`SubscriptionError::Closed`] when the engine shuts down, after every
    /// event durable by then was delivered. Cancel-safe.
    pub async fn next_batch(
        &mut self,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, SubscriptionError> {
        let mut events = Vec::new();
        self.next_batch_into(max, &mut events).await?;
        Ok(events)
    }

    /// [`Subscription::next_batch`] into `events`, which ends up holding exactly the next
    /// batch. The events it held are overwritten in place, keeping their strings and
    /// buffers: a reader that hands back the batches it is done with reads without
    /// allocating. On an error `events` holds nothing of meaning. Cancel-safe.
    pub async fn next_batch_into(
        &mut self,
        max: usize,
        events: &mut Vec<RecordedEvent>,
    ) -> Result<(), SubscriptionError> {
        let max = max.max(1);
        loop {
            let store = self.source.store();
            if store.last_position() >= self.next {
                store.read_all_reusing(self.next, max, events, &mut self.buf)?;
                if let Some(last) = events.last() {
                    debug_assert_eq!(events[0].position, self.next, "subscriptions never skip");
                    self.next = last.position + 1;
                    return Ok(());
                }
            }
            if store.is_closed() {
                return Err(SubscriptionError::Closed);
            }
            // Mark the current end as seen before checking again, so a publish between the
            // check above and this wait is not missed.
            self.end.borrow_and_update();
            if store.last_position() >= self.next || store.is_closed() {
                continue;
            }
            if self.end.changed().await.is_err() {
                return Err(SubscriptionError::Closed);
            }
        }
    }
}
