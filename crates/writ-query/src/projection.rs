//! Projections, the snapshots they publish, and [`Replay`], which feeds one with events.

use std::collections::VecDeque;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use writ_domain::RecordedEvent;

use crate::RootId;
use crate::snapshot::{Reader, SnapshotError, Writer};

/// A read model built by folding the global log, in commit order, into a state.
///
/// A projection declares its name, its version, the event types it handles and how an
/// event changes its state. The runtime gives it only the events of the types it handles;
/// the others still advance its position.
///
/// # The state
///
/// The runtime publishes a clone of the state after every batch, so `State::clone` must be
/// cheap: build it from this crate's [collections](crate::collections) ([`Table`],
/// [`Index`], [`List`] and the others; persistent, so a clone shares structure with the
/// original and copies only what changes afterwards) and `Arc`s. Never put a `std`
/// collection of unbounded size in the state.
///
/// [`Table`]: crate::collections::Table
/// [`Index`]: crate::collections::Index
/// [`List`]: crate::collections::List
///
/// # Decoding, then applying
///
/// An event reaches the state in two steps: [`Projection::decode`] turns it into the
/// projection's own form ([`Projection::Decoded`]: its body parsed, the strings the state
/// will keep already allocated), then [`Projection::apply`] changes the state with it.
/// [`ProjectionRuntime`](crate::ProjectionRuntime) decodes on its reader thread while
/// the applying thread applies the batch before, so whatever `decode` does costs the
/// applying thread (the one that sets the pace of a replay) nothing. A projection that
/// reads the event itself sets `type Decoded = ()` and decodes to `Ok(())`.
///
/// # Versions
///
/// Bump [`Projection::version`] whenever the state's structure or meaning changes (a new
/// field, a new index, a fix that changes results): the `(name, version)` pair is the read
/// model's [`Root`], and query API versions declare the oldest projection version they can
/// read (see [`QueryCatalog`](crate::QueryCatalog)).
pub trait Projection: Clone + Send + Sync + 'static {
    /// The read model: cheap to clone by structural sharing.
    type State: Clone + Send + Sync + 'static;

    /// The projection's name, for example `counters`.
    fn name(&self) -> &'static str;

    /// The version of the state's structure.
    fn version(&self) -> u32;

    /// The event types [`Projection::apply`] is given; other events only advance the
    /// position.
    fn event_types(&self) -> &[&'static str];

    /// An event of a handled type as [`Projection::decode`] prepares it for
    /// [`Projection::apply`]. It may refer to the event's bytes (by offsets, say): `apply`
    /// is given the event too.
    type Decoded: Send + 'static;

    /// The state before the first event.
    fn initial_state(&self) -> Self::State;

    /// Prepares one event of a handled type for [`Projection::apply`], without the state:
    /// the runtime runs it on another thread, ahead of applying. An error is recorded and
    /// the event skipped, as for `apply`; a panic parks the event (see [`Replay`]).
    fn decode(&self, event: &RecordedEvent) -> Result<Self::Decoded, ApplyError>;

    /// Applies one event of a handled type, decoded by [`Projection::decode`], to the
    /// state.
    ///
    /// On an error the runtime records it and skips the event (see
    /// [`ProjectionRuntime`](crate::ProjectionRuntime)), so the state must be unchanged by
    /// a failed apply: check everything before changing anything. A panic parks the event
    /// and the read model goes on (see [`Replay`]), keeping whatever the apply changed
    /// before it panicked: one more reason to check first.
    fn apply(
        &self,
        state: &mut Self::State,
        event: &RecordedEvent,
        decoded: Self::Decoded,
    ) -> Result<(), ApplyError>;

    /// Reads, without changing anything, the parts of the state that `events` (the next
    /// few to be applied, in order, of any type) will change, so that
    /// [`Projection::apply`] then finds them in the CPU cache. Optional: the default does
    /// nothing.
    ///
    /// Worth it for a state much larger than the cache, where each event's lookups
    /// (an id in a map, then the entry it names) wait for main memory in turn: a loop
    /// that does the same lookups for a few dozen events at once, stage by stage, keeps
    /// many of those reads in flight together. [`Replay`] calls it before applying each
    /// run of up to 32 events. It is only a hint: it must tolerate any event, including
    /// ones `apply` will refuse.
    fn warm(&self, state: &Self::State, events: &[RecordedEvent]) {
        let _ = (state, events);
    }

    /// The version of the bytes [`Projection::save`] writes, or `None` (the default) when
    /// the projection writes no snapshots: its read model is replayed from position 1 at
    /// every start.
    ///
    /// A snapshot is loaded only by code of the same projection name and version, the
    /// same snapshot format, the same build tag
    /// ([`SnapshotOptions::build`](crate::runtime::SnapshotOptions::build)) and the same
    /// code tag ([`Projection::code_tag`]): bump the format whenever `save` or `load`
    /// change, as the projection's version whenever what the state means changes.
    /// Anything else is ignored and the read model replayed.
    fn snapshot_format(&self) -> Option<u32> {
        None
    }

    /// What identifies this projection's code beyond its name, version and snapshot
    /// format, or `None` (the default) when the build tag says it all: compiled code.
    ///
    /// For a projection whose code is not compiled into the build (read from files at
    /// start, say), return a tag that changes whenever anything that determines its state
    /// changes, typically a digest of those files. The runtime appends it to the build tag
    /// it records in a snapshot file (`{build}+{tag}`) and compares both when it loads
    /// one: a snapshot written by other files is ignored (outcome `other_code`) and the
    /// read model replayed from position 1. Called once per start and once per snapshot
    /// written, so compute it ahead. The build tag, `+` and the code tag together must fit
    /// [`SNAPSHOT_NAME_BYTES_MAX`](crate::snapshot::SNAPSHOT_NAME_BYTES_MAX) bytes, or the
    /// read model writes and loads no snapshots.
    fn code_tag(&self) -> Option<String> {
        None
    }

    /// Writes `state` for [`Projection::load`] to read back (only called when
    /// [`Projection::snapshot_format`] is `Some`). Runs on the runtime's snapshot thread
    /// on a published state, so it may take its time; the [`Codec`] of the
    /// [collections](crate::collections) writes their blocks.
    ///
    /// [`Codec`]: crate::snapshot::Codec
    fn save(&self, state: &Self::State, out: &mut Writer) {
        let _ = (state, out);
    }

    /// Reads a state [`Projection::save`] wrote, equal to the one saved, from bytes that
    /// may be damaged: it must fail, never panic, on anything else (it is fuzzed), and
    /// check what the queries rely on (that an index only names rows the table has, say).
    /// The runtime checks that every byte was read.
    fn load(&self, input: &mut Reader<'_>) -> Result<Self::State, SnapshotError> {
        let _ = input;
        Err(SnapshotError::Unsupported)
    }

    /// The read model's root: the projection's name and version.
    fn root(&self) -> Root {
        Root {
            name: self.name(),
            version: self.version(),
        }
    }
}

/// The most events [`Replay`] hands [`Projection::warm`] at once: enough to overlap many
/// reads, few enough that what they bring in stays in the cache until it is applied.
const WARM_EVENTS: usize = 32;

/// Why a projection could not apply an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The event's body does not decode as the projection expects for its type. The event
    /// is skipped; fix the projection (or upcast the old shape) and it is applied at the
    /// next start, which rebuilds.
    #[error("invalid data: {detail}")]
    InvalidData {
        /// What the decoder said.
        detail: String,
    },
    /// The event does not fit the state, for example an addition to a counter the read
    /// model never saw created. The event is skipped.
    #[error("inconsistent with the read model: {detail}")]
    Inconsistent {
        /// What does not fit.
        detail: String,
    },
}

/// The identity of a read model structure: a projection's name and version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Root {
    /// The projection's name.
    pub name: &'static str,
    /// The projection's version.
    pub version: u32,
}

impl Root {
    /// The root's stable id.
    pub fn id(&self) -> RootId {
        RootId::of(self.name, self.version)
    }
}

impl fmt::Display for Root {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}

/// An immutable read model as of one position. Published behind an `Arc`: a reader that
/// holds one sees the same state however far the projection goes on.
#[derive(Clone)]
pub struct Snapshot<S> {
    /// The read model.
    pub state: S,
    /// The last position applied (0 before the first event): every event up to it, and
    /// none after it, is reflected in `state`.
    pub position: u64,
    /// The structure `state` has.
    pub root: Root,
}

impl<S> fmt::Debug for Snapshot<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("position", &self.position)
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

/// An event a projection could not apply, as recorded by [`Replay`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionFailure {
    /// The event's position.
    pub position: u64,
    /// Its stream.
    pub stream: String,
    /// Its type.
    pub event_type: String,
    /// What went wrong.
    pub error: ApplyError,
}

/// The parked events a [`Replay`] keeps, the most recent: older ones are only counted
/// ([`ReplayStats::parked`]), so a projection that panics on every event holds a bounded
/// list.
pub const PARKED_EVENTS_KEPT: usize = 16;

/// The longest panic message a [`ParkedEvent`] keeps, in bytes.
const PARKED_MESSAGE_BYTES_MAX: usize = 1024;

/// An event a projection panicked on, in [`Projection::decode`] or [`Projection::apply`]:
/// parked for that read model, which went on with the next event.
///
/// The command that recorded the event succeeded long before; parking only means that
/// this read model does not reflect it. Fix the projection and rebuild the read model (or
/// restart, which rebuilds): the event is applied then.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParkedEvent {
    /// The event's position.
    pub position: u64,
    /// Its stream.
    pub stream: String,
    /// Its type.
    pub event_type: String,
    /// Where the projection panicked.
    pub stage: ParkStage,
    /// The panic's message, at most 1 KiB.
    pub message: String,
}

/// Where a projection panicked on a [`ParkedEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParkStage {
    /// In [`Projection::decode`]: the state was not touched.
    Decode,
    /// In [`Projection::apply`]: whatever it changed before it panicked stays.
    Apply,
}

impl ParkStage {
    /// `decode` or `apply`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Decode => "decode",
            Self::Apply => "apply",
        }
    }
}

/// Counters of a [`Replay`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplayStats {
    /// Events applied.
    pub events_applied: u64,
    /// Events of types the projection does not handle (they only advance the position).
    pub events_ignored: u64,
    /// Events skipped because applying them failed.
    pub errors: u64,
    /// The last of those.
    pub last_error: Option<ProjectionFailure>,
    /// Events parked because the projection panicked on them.
    pub parked: u64,
    /// The last [`PARKED_EVENTS_KEPT`] of those, oldest first.
    pub parked_recent: VecDeque<ParkedEvent>,
}

impl ReplayStats {
    /// The last event parked, if any.
    pub fn last_parked(&self) -> Option<&ParkedEvent> {
        self.parked_recent.back()
    }

    fn park(&mut self, event: &RecordedEvent, stage: ParkStage, mut message: String) {
        if message.len() > PARKED_MESSAGE_BYTES_MAX {
            let mut end = PARKED_MESSAGE_BYTES_MAX;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        self.parked += 1;
        if self.parked_recent.len() == PARKED_EVENTS_KEPT {
            self.parked_recent.pop_front();
        }
        self.parked_recent.push_back(ParkedEvent {
            position: event.position,
            stream: event.stream.clone(),
            event_type: event.event_type.clone(),
            stage,
            message,
        });
    }
}

/// A projection being fed events: its state, the last position applied, and what went
/// wrong. The runtime's threads use one each; tests and benchmarks use it to build a read
/// model directly.
///
/// # Errors and panics
///
/// An event the projection refuses (an [`ApplyError`]) is counted and skipped
/// ([`ReplayStats::errors`]). An event it panics on, in [`Projection::decode`] or
/// [`Projection::apply`], is *parked*: skipped for this read model, counted
/// ([`ReplayStats::parked`]) and kept among the last [`PARKED_EVENTS_KEPT`] with the panic's
/// message; the replay goes on with the next event. Each event is applied inside its own
/// `catch_unwind`, so a panic costs that event alone. A panic in `apply` leaves whatever
/// the apply changed before it: the state is not restored, because keeping a copy to
/// restore would cost a clone of the state per event, and a clone makes the next change
/// to every shared node copy that node (a clone per 4,096-event batch already costs about
/// 40% of a replay; see
/// [`RuntimeOptions::catch_up_publish_interval`](crate::RuntimeOptions::catch_up_publish_interval)).
/// A projection that checks before it changes anything, as it must for errors, leaves the
/// state untouched when it panics in a check.
///
/// ```
/// # use writ_query::{ApplyError, Projection, Replay};
/// # use writ_query::RecordedEvent;
/// #[derive(Clone)]
/// struct Count;
/// impl Projection for Count {
///     type State = u64;
///     type Decoded = ();
///     fn name(&self) -> &'static str { "count" }
///     fn version(&self) -> u32 { 1 }
///     fn event_types(&self) -> &[&'static str] { &["Tick"] }
///     fn initial_state(&self) -> u64 { 0 }
///     fn decode(&self, _: &RecordedEvent) -> Result<(), ApplyError> { Ok(()) }
///     fn apply(&self, n: &mut u64, _: &RecordedEvent, _: ()) -> Result<(), ApplyError> {
///         *n += 1;
///         Ok(())
///     }
/// }
/// let event = |position, event_type: &str| RecordedEvent {
///     position, stream: "s".into(), version: position, event_type: event_type.into(),
///     data: b"{}".to_vec(), ..RecordedEvent::default()
/// };
/// let mut replay = Replay::new(Count);
/// replay.apply(&[event(1, "Tick"), event(2, "Tock"), event(3, "Tick")]);
/// assert_eq!((*replay.state(), replay.position()), (2, 3));
/// assert_eq!(replay.stats().events_ignored, 1);
/// ```
#[derive(Debug)]
pub struct Replay<P: Projection> {
    projection: P,
    state: P::State,
    position: u64,
    stats: ReplayStats,
}

impl<P: Projection> Replay<P> {
    /// A projection at position 0, with its initial state.
    pub fn new(projection: P) -> Self {
        let state = projection.initial_state();
        Self {
            projection,
            state,
            position: 0,
            stats: ReplayStats::default(),
        }
    }

    /// A projection at `position` with `state`: one loaded from a snapshot, which then
    /// goes on with the event after `position`. Its counters start at zero.
    pub fn resume(projection: P, state: P::State, position: u64) -> Self {
        Self {
            projection,
            state,
            position,
            stats: ReplayStats::default(),
        }
    }

    /// Applies events that follow the last one applied, in order.
    ///
    /// # Panics
    ///
    /// When the events do not continue the positions without a gap: the log guarantees
    /// gap-free positions, so anything else is a bug upstream.
    pub fn apply(&mut self, events: &[RecordedEvent]) {
        for run in events.chunks(WARM_EVENTS) {
            self.projection.warm(&self.state, run);
            for event in run {
                let step = Step::of(&self.projection, event);
                self.apply_one(event, step);
            }
        }
    }

    /// [`Replay::apply`] of events already decoded (by [`Step::of`], on another thread):
    /// `steps` holds one step per event, in the same order, and is left empty.
    ///
    /// # Panics
    ///
    /// As [`Replay::apply`]; and when `steps` does not hold one step per event.
    pub(crate) fn apply_decoded(
        &mut self,
        events: &[RecordedEvent],
        steps: &mut Vec<Step<P::Decoded>>,
    ) {
        assert_eq!(events.len(), steps.len(), "one step per event");
        let mut steps = steps.drain(..);
        for run in events.chunks(WARM_EVENTS) {
            self.projection.warm(&self.state, run);
            for event in run {
                let step = steps.next().expect("one step per event");
                self.apply_one(event, step);
            }
        }
    }

    fn apply_one(&mut self, event: &RecordedEvent, step: Step<P::Decoded>) {
        assert_eq!(
            event.position,
            self.position + 1,
            "a projection is fed every position once, in order"
        );
        self.position = event.position;
        let decoded = match step {
            Step::Ignored => {
                self.stats.events_ignored += 1;
                return;
            }
            Step::Panicked(message) => {
                self.stats.park(event, ParkStage::Decode, message);
                return;
            }
            Step::Failed(error) => Err(error),
            Step::Decoded(decoded) => Ok(decoded),
        };
        let applied = match decoded {
            Err(error) => Err(error),
            Ok(decoded) => {
                let (projection, state) = (&self.projection, &mut self.state);
                match catch_unwind(AssertUnwindSafe(|| projection.apply(state, event, decoded))) {
                    Ok(applied) => applied,
                    Err(panic) => {
                        self.stats
                            .park(event, ParkStage::Apply, panic_message(&*panic));
                        return;
                    }
                }
            }
        };
        match applied {
            Ok(()) => self.stats.events_applied += 1,
            Err(error) => {
                self.stats.errors += 1;
                self.stats.last_error = Some(ProjectionFailure {
                    position: event.position,
                    stream: event.stream.clone(),
                    event_type: event.event_type.clone(),
                    error,
                });
            }
        }
    }

    /// The last position applied (0 before the first event).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The state as of [`Replay::position`].
    pub fn state(&self) -> &P::State {
        &self.state
    }

    /// The projection.
    pub fn projection(&self) -> &P {
        &self.projection
    }

    /// Counters since the start.
    pub fn stats(&self) -> &ReplayStats {
        &self.stats
    }

    /// An immutable snapshot of the state now (a cheap clone).
    pub fn snapshot(&self) -> Snapshot<P::State> {
        Snapshot {
            state: self.state.clone(),
            position: self.position,
            root: self.projection.root(),
        }
    }

    /// The state, giving up the replay.
    pub fn into_state(self) -> P::State {
        self.state
    }
}

/// What decoding made of one event, for [`Replay`] to apply.
pub(crate) enum Step<D> {
    /// Of a type the projection does not handle: it only advances the position.
    Ignored,
    /// [`Projection::decode`] refused it: recorded and skipped.
    Failed(ApplyError),
    /// [`Projection::decode`] panicked on it, with this message: parked.
    Panicked(String),
    /// Ready for [`Projection::apply`].
    Decoded(D),
}

impl<D> Step<D> {
    /// Decodes `event` for `projection`, if it handles its type; a panic in the decoder
    /// is caught here, so that it parks this event alone.
    pub(crate) fn of<P: Projection<Decoded = D>>(projection: &P, event: &RecordedEvent) -> Self {
        if !projection
            .event_types()
            .contains(&event.event_type.as_str())
        {
            return Self::Ignored;
        }
        match catch_unwind(AssertUnwindSafe(|| projection.decode(event))) {
            Ok(Ok(decoded)) => Self::Decoded(decoded),
            Ok(Err(error)) => Self::Failed(error),
            Err(panic) => Self::Panicked(panic_message(&*panic)),
        }
    }
}

/// A panic's message, when it has one.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".to_owned())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Counts `A` events and records the positions of each run it is asked to warm.
    #[derive(Clone, Default)]
    struct Warmed(Arc<Mutex<Vec<Vec<u64>>>>);

    impl Projection for Warmed {
        type State = u64;
        type Decoded = ();
        fn name(&self) -> &'static str {
            "warmed"
        }
        fn version(&self) -> u32 {
            1
        }
        fn event_types(&self) -> &[&'static str] {
            &["A"]
        }
        fn initial_state(&self) -> u64 {
            0
        }
        fn decode(&self, _: &RecordedEvent) -> Result<(), ApplyError> {
            Ok(())
        }
        fn apply(&self, count: &mut u64, _: &RecordedEvent, _: ()) -> Result<(), ApplyError> {
            *count += 1;
            Ok(())
        }
        fn warm(&self, count: &u64, events: &[RecordedEvent]) {
            // Called before the run is applied: the state has every earlier event.
            assert_eq!(*count, events[0].position / 2);
            let positions = events.iter().map(|e| e.position).collect();
            self.0.lock().unwrap().push(positions);
        }
    }

    #[test]
    fn replay_warms_each_run_of_events_before_applying_it() {
        let events: Vec<RecordedEvent> = (1..=70)
            .map(|position| RecordedEvent {
                position,
                stream: "s".into(),
                version: position,
                event_type: if position % 2 == 0 { "A" } else { "B" }.into(),
                data: b"{}".to_vec(),
                command_id: Default::default(),
                correlation_id: Default::default(),
                recorded_at_ms: 0,
                schema_version: 1,
                recorded_schema_version: 1,
            })
            .collect();
        let projection = Warmed::default();
        let mut replay = Replay::new(projection.clone());
        replay.apply(&events[..40]);
        replay.apply(&events[40..]);
        assert_eq!(*replay.state(), 35);
        let runs = projection.0.lock().unwrap().clone();
        // Runs of at most 32, within each call.
        let expected: Vec<Vec<u64>> = [1..=32, 33..=40, 41..=70]
            .into_iter()
            .map(|run| run.collect())
            .collect();
        assert_eq!(runs, expected);
    }

    /// Counts events; panics in `decode` on a body `"decode"`, and in `apply` on a body
    /// `"apply"` after it has counted the event.
    #[derive(Clone)]
    struct Brittle;

    impl Projection for Brittle {
        type State = u64;
        type Decoded = ();
        fn name(&self) -> &'static str {
            "brittle"
        }
        fn version(&self) -> u32 {
            1
        }
        fn event_types(&self) -> &[&'static str] {
            &["A"]
        }
        fn initial_state(&self) -> u64 {
            0
        }
        fn decode(&self, event: &RecordedEvent) -> Result<(), ApplyError> {
            assert!(event.data != b"decode", "cannot decode {}", event.position);
            Ok(())
        }
        fn apply(&self, count: &mut u64, event: &RecordedEvent, _: ()) -> Result<(), ApplyError> {
            *count += 1;
            assert!(event.data != b"apply", "{}", "x".repeat(5000));
            Ok(())
        }
    }

    fn event(position: u64, data: &str) -> RecordedEvent {
        RecordedEvent {
            position,
            stream: format!("s-{position}"),
            version: 1,
            event_type: "A".into(),
            data: data.as_bytes().to_vec(),
            command_id: Default::default(),
            correlation_id: Default::default(),
            recorded_at_ms: 0,
            schema_version: 1,
            recorded_schema_version: 1,
        }
    }

    #[test]
    fn a_panic_parks_the_event_and_the_replay_goes_on() {
        let mut replay = Replay::new(Brittle);
        replay.apply(&[event(1, "{}"), event(2, "decode"), event(3, "{}")]);
        assert_eq!((*replay.state(), replay.position()), (2, 3));
        let stats = replay.stats();
        assert_eq!(
            (stats.events_applied, stats.parked, stats.errors),
            (2, 1, 0)
        );
        let parked = stats.last_parked().unwrap();
        assert_eq!((parked.position, parked.stream.as_str()), (2, "s-2"));
        assert_eq!(parked.stage, ParkStage::Decode);
        assert_eq!(parked.message, "cannot decode 2");

        // In apply: what it did before the panic stays (here, the count).
        replay.apply(&[event(4, "apply"), event(5, "{}")]);
        assert_eq!(*replay.state(), 4);
        let parked = replay.stats().last_parked().unwrap();
        assert_eq!((parked.position, parked.stage), (4, ParkStage::Apply));
        assert!(parked.message.len() <= PARKED_MESSAGE_BYTES_MAX + '…'.len_utf8());
    }

    #[test]
    fn the_parked_list_keeps_the_last_few_and_counts_all() {
        let mut replay = Replay::new(Brittle);
        let events: Vec<RecordedEvent> = (1..=100).map(|p| event(p, "decode")).collect();
        replay.apply(&events);
        let stats = replay.stats();
        assert_eq!(stats.parked, 100);
        let kept: Vec<u64> = stats.parked_recent.iter().map(|p| p.position).collect();
        assert_eq!(kept, (85..=100).collect::<Vec<_>>());
        assert_eq!(kept.len(), PARKED_EVENTS_KEPT);
    }
}
