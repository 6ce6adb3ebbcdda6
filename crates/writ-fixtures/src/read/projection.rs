//! [`CountersProjection`]: how the counters events change the [`CountersView`].

use writ_domain::EventSet;
use writ_query::{ApplyError, Projection, RecordedEvent};

use super::view::{CountersView, Stamp, Status};
use crate::CounterEvent;

/// The counters projection. Its versions are structures of the [`CountersView`]:
///
/// | version | structure |
/// |---|---|
/// | 1 | counters and indexes |
/// | 2 (current) | as 1, plus each counter's status history |
///
/// Query API version 2 needs projection version 2 (its `getCounter` answers the history);
/// version 1 reads either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountersProjection {
    version: u32,
}

impl CountersProjection {
    /// The projection's name, the first half of its root.
    pub const NAME: &'static str = "counters";
    /// The newest version.
    pub const CURRENT_VERSION: u32 = 2;

    /// The newest version.
    pub fn current() -> Self {
        Self {
            version: Self::CURRENT_VERSION,
        }
    }

    /// A given version (1 or 2); `None` for others.
    pub fn with_version(version: u32) -> Option<Self> {
        (1..=Self::CURRENT_VERSION)
            .contains(&version)
            .then_some(Self { version })
    }
}

impl Default for CountersProjection {
    fn default() -> Self {
        Self::current()
    }
}

impl Projection for CountersProjection {
    type State = CountersView;
    /// The event, parsed by the domain's own types.
    type Decoded = CounterEvent;

    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn version(&self) -> u32 {
        self.version
    }

    fn event_types(&self) -> &[&'static str] {
        CounterEvent::EVENT_TYPES
    }

    fn initial_state(&self) -> CountersView {
        CountersView::new(self.version >= 2)
    }

    fn decode(&self, event: &RecordedEvent) -> Result<CounterEvent, ApplyError> {
        CounterEvent::decode(&event.event_type, &event.data).map_err(|e| ApplyError::InvalidData {
            detail: e.to_string(),
        })
    }

    fn apply(
        &self,
        view: &mut CountersView,
        event: &RecordedEvent,
        decoded: CounterEvent,
    ) -> Result<(), ApplyError> {
        let at = Stamp {
            position: event.position,
            recorded_at_ms: event.recorded_at_ms,
        };
        match &decoded {
            CounterEvent::CounterCreated(e) => {
                view.create(&e.counter_id, &e.title, &e.owner, e.start, at)
            }
            CounterEvent::Added(e) => view.add(&e.counter_id, e.amount, true, at),
            CounterEvent::TransferredOut(e) => view.subtract(&e.counter_id, e.amount, at),
            CounterEvent::TransferredIn(e) => view.add(&e.counter_id, e.amount, false, at),
            CounterEvent::CounterClosed(e) => {
                view.set_status(&e.counter_id, Status::Closed, e.reason.as_deref(), at)
            }
            CounterEvent::CounterReopened(e) => {
                view.set_status(&e.counter_id, Status::Open, None, at)
            }
        }
    }
}
