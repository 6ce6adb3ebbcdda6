//! Read models of any projection type behind trait objects: what the runtime's threads and
//! the query routes hold.
//!
//! A projection's types (its state, its decoded events) never leave this module as such:
//! states travel as `Arc<dyn Any>` holding an `Arc`'d [`Snapshot`], a batch's decoded
//! events as one `Box<dyn Any>` per read model holding a `Vec<Step<_>>`, which the reader
//! thread refills batch after batch (so nothing is boxed per event, nor per batch once the
//! first batches went round).

use std::any::Any;
use std::sync::Arc;

use serde_json::{Map, Value};
use writ_domain::RecordedEvent;

use crate::catalog::{QueryCatalog, QueryInfo};
use crate::library::{Budget, FunctionSpec, QueryError};
use crate::projection::{Projection, Replay, ReplayStats, Root, Snapshot, Step};
use crate::snapshot::{Reader, SnapshotError, Writer};

/// A published snapshot, type-erased: an `Arc<Snapshot<P::State>>`.
pub(crate) type AnySnapshot = Arc<dyn Any + Send + Sync>;

/// Decoded events of one batch for one read model, type-erased: a `Vec<Step<P::Decoded>>`.
pub(crate) type AnySteps = Box<dyn Any + Send>;

/// A projection, whatever its type.
pub(crate) trait AnyProjection: Send + Sync {
    fn root(&self) -> Root;

    /// [`Projection::decode`]s `events` into `steps`, reusing the vector it holds when it
    /// is one of this projection's.
    fn decode(&self, events: &[RecordedEvent], steps: &mut Option<AnySteps>);

    /// A new instance at position 0.
    fn start(&self) -> Box<dyn Instance>;

    /// The snapshot at position 0: the initial state.
    fn initial(&self) -> AnySnapshot;

    /// [`Projection::snapshot_format`].
    fn snapshot_format(&self) -> Option<u32>;

    /// [`Projection::code_tag`].
    fn code_tag(&self) -> Option<String>;

    /// [`Projection::save`] of `snapshot`, an `Arc<Snapshot<P::State>>`; `false` when it
    /// is of another type.
    fn save(&self, snapshot: &AnySnapshot, out: &mut Writer) -> bool;

    /// [`Projection::load`] of `body` (all of it), as an instance at `position` and its
    /// snapshot.
    fn load(
        &self,
        body: &[u8],
        position: u64,
    ) -> Result<(Box<dyn Instance>, AnySnapshot), SnapshotError>;
}

/// A projection instance being fed events (a [`Replay`]), whatever its type.
pub(crate) trait Instance: Send {
    /// Applies `events`, decoded by the same projection type's [`AnyProjection::decode`]
    /// into `steps` (left empty). Steps of another type are ignored and the events
    /// decoded here instead.
    fn apply_decoded(&mut self, events: &[RecordedEvent], steps: &mut (dyn Any + Send));

    /// Applies `events`, decoding them here.
    fn apply(&mut self, events: &[RecordedEvent]);

    /// Applies the events of `events` after the instance's position (those up to it are
    /// in its state already: it was loaded from a snapshot ahead of the batch), with
    /// their steps when `steps` holds this projection's.
    fn apply_decoded_after(
        &mut self,
        events: &[RecordedEvent],
        steps: Option<&mut (dyn Any + Send)>,
    );

    fn position(&self) -> u64;

    fn stats(&self) -> &ReplayStats;

    fn root(&self) -> Root;

    /// A snapshot of the state now (a cheap clone), as an `Arc<Snapshot<P::State>>`.
    fn snapshot(&self) -> AnySnapshot;
}

/// A projection made a trait object.
pub(crate) struct Erased<P>(pub(crate) P);

impl<P: Projection> AnyProjection for Erased<P> {
    fn root(&self) -> Root {
        self.0.root()
    }

    fn decode(&self, events: &[RecordedEvent], steps: &mut Option<AnySteps>) {
        if !steps
            .as_ref()
            .is_some_and(|steps| steps.is::<Vec<Step<P::Decoded>>>())
        {
            *steps = Some(Box::new(Vec::<Step<P::Decoded>>::with_capacity(
                events.len(),
            )));
        }
        let steps = steps
            .as_mut()
            .and_then(|steps| steps.downcast_mut::<Vec<Step<P::Decoded>>>())
            .expect("made above");
        steps.clear();
        steps.extend(events.iter().map(|event| Step::of(&self.0, event)));
    }

    fn start(&self) -> Box<dyn Instance> {
        Box::new(Replay::new(self.0.clone()))
    }

    fn initial(&self) -> AnySnapshot {
        Arc::new(Snapshot {
            state: self.0.initial_state(),
            position: 0,
            root: self.0.root(),
        })
    }

    fn snapshot_format(&self) -> Option<u32> {
        self.0.snapshot_format()
    }

    fn code_tag(&self) -> Option<String> {
        self.0.code_tag()
    }

    fn save(&self, snapshot: &AnySnapshot, out: &mut Writer) -> bool {
        match snapshot.downcast_ref::<Snapshot<P::State>>() {
            Some(snapshot) => {
                self.0.save(&snapshot.state, out);
                true
            }
            None => false,
        }
    }

    fn load(
        &self,
        body: &[u8],
        position: u64,
    ) -> Result<(Box<dyn Instance>, AnySnapshot), SnapshotError> {
        let mut input = Reader::new(body);
        let state = self.0.load(&mut input)?;
        input.finish()?;
        let replay = Replay::resume(self.0.clone(), state, position);
        let snapshot = Arc::new(replay.snapshot());
        Ok((Box::new(replay), snapshot))
    }
}

impl<P: Projection> Instance for Replay<P> {
    fn apply_decoded(&mut self, events: &[RecordedEvent], steps: &mut (dyn Any + Send)) {
        match steps.downcast_mut::<Vec<Step<P::Decoded>>>() {
            Some(steps) => Replay::apply_decoded(self, events, steps),
            None => Replay::apply(self, events),
        }
    }

    fn apply(&mut self, events: &[RecordedEvent]) {
        Replay::apply(self, events);
    }

    fn apply_decoded_after(
        &mut self,
        events: &[RecordedEvent],
        steps: Option<&mut (dyn Any + Send)>,
    ) {
        let position = Replay::position(self);
        let skip = events.partition_point(|event| event.position <= position);
        let events = &events[skip..];
        if events.is_empty() {
            return;
        }
        match steps.and_then(|steps| steps.downcast_mut::<Vec<Step<P::Decoded>>>()) {
            Some(steps) if steps.len() == skip + events.len() => {
                steps.drain(..skip);
                Replay::apply_decoded(self, events, steps);
            }
            _ => Replay::apply(self, events),
        }
    }

    fn position(&self) -> u64 {
        Replay::position(self)
    }

    fn stats(&self) -> &ReplayStats {
        Replay::stats(self)
    }

    fn root(&self) -> Root {
        self.projection().root()
    }

    fn snapshot(&self) -> AnySnapshot {
        Arc::new(Replay::snapshot(self))
    }
}

/// A read model's query catalog, whatever its state type.
pub(crate) trait AnyCatalog: Send + Sync {
    fn versions(&self) -> Vec<u32>;

    fn functions(&self, version: u32) -> Option<Vec<FunctionSpec>>;

    fn queries(&self) -> Vec<QueryInfo>;

    /// [`QueryCatalog::call_within`] on `snapshot`, an `Arc<Snapshot<S>>` of this
    /// catalog's `S`.
    fn call(
        &self,
        version: u32,
        name: &str,
        snapshot: &(dyn Any + Send + Sync),
        args: Map<String, Value>,
        budget: Option<&Budget>,
    ) -> Result<Value, QueryError>;
}

impl<S: Send + Sync + 'static> AnyCatalog for QueryCatalog<S> {
    fn versions(&self) -> Vec<u32> {
        QueryCatalog::versions(self)
    }

    fn functions(&self, version: u32) -> Option<Vec<FunctionSpec>> {
        QueryCatalog::functions(self, version)
    }

    fn queries(&self) -> Vec<QueryInfo> {
        QueryCatalog::queries(self)
    }

    fn call(
        &self,
        version: u32,
        name: &str,
        snapshot: &(dyn Any + Send + Sync),
        args: Map<String, Value>,
        budget: Option<&Budget>,
    ) -> Result<Value, QueryError> {
        // The spec pairs each catalog with its projection, so the types always match.
        let snapshot = snapshot
            .downcast_ref::<Snapshot<S>>()
            .ok_or_else(|| QueryError::failed("the snapshot is not of the catalog's state"))?;
        QueryCatalog::call_within(self, version, name, snapshot, args, budget)
    }
}
