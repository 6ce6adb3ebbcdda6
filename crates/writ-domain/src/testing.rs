//! A given/when/then kit for domain and process tests.
//!
//! ```text
//! given::<Tickets>([opened("t1")])
//!     .when(close("t1"))
//!     .then([closed("t1")]);
//! given::<Tickets>([]).when(close("t1")).then_rejected("ticket_not_found");
//! // A decision over several streams: each stream's events, then every event with its stream.
//! given_streams::<Orders>([("order-1", submitted), ("product-a", stocked)])
//!     .when(reserve("1"))
//!     .then_on([("order-1", reserved), ("product-a", stock_reserved)]);
//! // A process: what it issues and schedules for one event.
//! let reactions = react::<Payments>(&awaiting_payment("1"));
//! ```
//!
//! (The crate documentation has a compiled example.)
//!
//! Beyond the expectation it states, every scenario checks what Writ relies on: the decision
//! is deterministic (deciding twice gives the same result), every recorded event survives
//! its JSON round trip, and the events apply to the states without panicking.

use std::collections::HashMap;

use uuid::Uuid;

use crate::decider::{Decision, Streams};
use crate::process::{EventView, Process, Reactions, react_to};
use crate::{CommandError, Domain, Envelope, EventSet, Refusal};

/// The envelope scenarios use unless told otherwise.
pub const DEFAULT_ENVELOPE: Envelope = Envelope {
    command_id: Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
    recorded_at_ms: 1_767_225_600_000, // 2026-01-01T00:00:00Z
    sequence: 42,
    correlation_id: Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
};

/// Starts a scenario: the stream the command addresses (its target) already holds these
/// events.
pub fn given<D: Domain>(events: impl IntoIterator<Item = D::Event>) -> Given<D> {
    Given {
        target: Some(events.into_iter().collect()),
        streams: HashMap::new(),
        envelope: DEFAULT_ENVELOPE,
    }
}

/// Starts a scenario over several streams: each named stream holds its events; every
/// other stream is empty. The command's target is among them or empty.
pub fn given_streams<D: Domain>(
    streams: impl IntoIterator<Item = (impl Into<String>, Vec<D::Event>)>,
) -> Given<D> {
    Given {
        target: None,
        streams: streams
            .into_iter()
            .map(|(name, events)| (name.into(), events))
            .collect(),
        envelope: DEFAULT_ENVELOPE,
    }
}

/// A scenario's starting streams.
pub struct Given<D: Domain> {
    /// The target's events, when given with [`given`].
    target: Option<Vec<D::Event>>,
    streams: HashMap<String, Vec<D::Event>>,
    envelope: Envelope,
}

impl<D: Domain> std::fmt::Debug for Given<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Given")
            .field("target", &self.target)
            .field("streams", &self.streams)
            .field("envelope", &self.envelope)
            .finish()
    }
}

/// A decision's events, each with its stream, or its refusal.
type Decided<D> = Result<Vec<(String, <D as Domain>::Event)>, Refusal>;

/// The given streams' states, folded once.
struct States<D: Domain> {
    states: HashMap<String, (D::State, u64)>,
    empty: D::State,
}

impl<D: Domain> Streams<D> for States<D> {
    fn load(&mut self, stream: &str) -> Result<(&D::State, u64), String> {
        Ok(self
            .states
            .get(stream)
            .map_or((&self.empty, 0), |(state, version)| (state, *version)))
    }
}

fn fold<D: Domain>(events: &[D::Event]) -> (D::State, u64) {
    let mut state = D::State::default();
    for event in events {
        D::evolve(&mut state, event);
    }
    (state, events.len() as u64)
}

impl<D: Domain> Given<D>
where
    D::Event: PartialEq,
{
    /// Uses this envelope (command id, time, sequence) instead of [`DEFAULT_ENVELOPE`].
    pub fn with_envelope(mut self, envelope: Envelope) -> Self {
        self.envelope = envelope;
        self
    }

    /// The target's name and the decision, each event with its stream.
    fn decide(&self, command: &D::Command) -> (String, Decided<D>) {
        let target = D::stream(command).into_owned();
        let mut states = States::<D> {
            states: self
                .streams
                .iter()
                .map(|(name, events)| (name.clone(), fold::<D>(events)))
                .collect(),
            empty: D::State::default(),
        };
        let (state, version) = match &self.target {
            Some(events) => fold::<D>(events),
            None => states
                .states
                .get(&target)
                .cloned()
                .unwrap_or((D::State::default(), 0)),
        };
        let mut decision = Decision::new(&self.envelope, &target, &state, version, &mut states);
        let result = D::decide(&mut decision, command).map(|()| {
            decision
                .into_recorded()
                .into_iter()
                .map(|(stream, event)| (stream.unwrap_or_else(|| target.clone()), event))
                .collect()
        });
        (target, result)
    }

    /// Decides a typed command.
    pub fn when(self, command: D::Command) -> Then<D> {
        let (target, result) = self.decide(&command);
        let (_, again) = self.decide(&command);
        assert!(
            result == again,
            "deciding the same command twice gave different results: the handler is not \
             deterministic\n first: {result:?}\nsecond: {again:?}"
        );
        if let Ok(events) = &result {
            let mut states: HashMap<&str, D::State> = HashMap::new();
            for (stream, event) in events {
                let mut data = Vec::new();
                event.encode_data(&mut data).expect("event encodes to JSON");
                let decoded = D::Event::decode(event.event_type(), &data)
                    .expect("recorded event decodes from its JSON");
                assert_eq!(&decoded, event, "event changed in its JSON round trip");
                let state = states.entry(stream).or_insert_with(|| {
                    match (&self.target, self.streams.get(stream.as_str())) {
                        (Some(given), _) if *stream == target => fold::<D>(given).0,
                        (_, Some(given)) => fold::<D>(given).0,
                        _ => D::State::default(),
                    }
                });
                D::evolve(state, event);
            }
        }
        Then { target, result }
    }

    /// Decodes a command as a client would send it (name, optional version, JSON payload)
    /// through the domain's catalog, then decides it.
    ///
    /// # Panics
    /// If the payload does not decode; use [`decode_error`] to test refusals at decoding.
    pub fn when_json(
        self,
        name: &str,
        version: Option<u32>,
        payload: serde_json::Value,
    ) -> Then<D> {
        let bytes = serde_json::to_vec(&payload).expect("JSON value encodes");
        self.when_payload(name, version, &bytes)
    }

    /// Like [`Given::when_json`] with the payload's exact bytes (for whitespace, key order,
    /// duplicate keys).
    pub fn when_payload(self, name: &str, version: Option<u32>, payload: &[u8]) -> Then<D> {
        let decoded = D::commands()
            .decode(name, version, payload)
            .unwrap_or_else(|e| panic!("command does not decode: {e}"));
        self.when(decoded.command)
    }
}

/// Decides `command` against `state` as its target's state (at version 0; every other
/// stream empty) and returns the events, whatever their streams: for code that folds a
/// domain's states by hand, as benchmarks and examples do.
pub fn decide<D: Domain>(
    state: &D::State,
    command: &D::Command,
    envelope: &Envelope,
) -> Result<Vec<D::Event>, Refusal> {
    let target = D::stream(command);
    let mut others = States::<D> {
        states: HashMap::new(),
        empty: D::State::default(),
    };
    let mut decision = Decision::new(envelope, &target, state, 0, &mut others);
    D::decide(&mut decision, command)?;
    Ok(decision
        .into_recorded()
        .into_iter()
        .map(|(_, e)| e)
        .collect())
}

/// What decoding a client's command gives, when it is refused before any rule runs.
///
/// # Panics
/// If the command decodes.
pub fn decode_error<D: Domain>(
    name: &str,
    version: Option<u32>,
    payload: serde_json::Value,
) -> CommandError {
    let bytes = serde_json::to_vec(&payload).expect("JSON value encodes");
    match D::commands().decode(name, version, &bytes) {
        Ok(decoded) => panic!("expected a decoding error, got {:?}", decoded.command),
        Err(e) => e,
    }
}

/// A scenario's decision, to check against expectations.
pub struct Then<D: Domain> {
    target: String,
    result: Decided<D>,
}

impl<D: Domain> std::fmt::Debug for Then<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Then")
            .field("target", &self.target)
            .field("result", &self.result)
            .finish()
    }
}

impl<D: Domain> Then<D> {
    /// Asserts the command recorded exactly these events, in this order, all on its
    /// target stream.
    pub fn then(self, expected: impl IntoIterator<Item = D::Event>)
    where
        D::Event: PartialEq,
    {
        let target = self.target.clone();
        self.then_on(expected.into_iter().map(|e| (target.clone(), e)));
    }

    /// Asserts the command recorded exactly these events on these streams, in this order.
    pub fn then_on(self, expected: impl IntoIterator<Item = (impl Into<String>, D::Event)>)
    where
        D::Event: PartialEq,
    {
        let expected: Vec<(String, D::Event)> =
            expected.into_iter().map(|(s, e)| (s.into(), e)).collect();
        match self.result {
            Ok(events) => assert_eq!(events, expected, "recorded events differ"),
            Err(refusal) => panic!("expected events {expected:?}, got {refusal:?}"),
        }
    }

    /// Asserts the command was rejected with this stable code.
    pub fn then_rejected(self, code: &str) {
        match self.result {
            Err(Refusal::Rejected(rejection)) => assert_eq!(rejection.code, code, "rejection code"),
            other => panic!("expected rejection `{code}`, got {other:?}"),
        }
    }

    /// Asserts the handler failed.
    pub fn then_failed(self) {
        match self.result {
            Err(Refusal::Failed(_)) => {}
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    /// The raw decision's events (whatever their streams), for checks the kit does not
    /// cover.
    pub fn result(self) -> Result<Vec<D::Event>, Refusal> {
        self.result
            .map(|events| events.into_iter().map(|(_, e)| e).collect())
    }

    /// The raw decision, each event with its stream.
    pub fn result_on(self) -> Result<Vec<(String, D::Event)>, Refusal> {
        self.result
    }
}

/// What process `P` does for one event: recorded by a command with
/// [`DEFAULT_ENVELOPE`]'s id and time, as its first event, on stream `test-1`. Checks
/// that reacting is deterministic and that the event survives its JSON round trip.
///
/// # Panics
/// If the event does not encode, the reaction fails, or reacting twice differs.
pub fn react<P: Process>(event: &P::Event) -> Reactions {
    react_at::<P>(event, "test-1", DEFAULT_ENVELOPE.recorded_at_ms)
}

/// [`react`] for an event on `stream` recorded at `recorded_at_ms`.
///
/// # Panics
/// As [`react`].
pub fn react_at<P: Process>(event: &P::Event, stream: &str, recorded_at_ms: u64) -> Reactions {
    let mut data = Vec::new();
    event.encode_data(&mut data).expect("event encodes to JSON");
    let view = EventView {
        event_type: event.event_type(),
        data: &data,
        stream,
        version: 1,
        position: 1,
        index: 0,
        command_id: DEFAULT_ENVELOPE.command_id,
        correlation_id: DEFAULT_ENVELOPE.correlation_id,
        recorded_at_ms,
    };
    let run = || {
        let mut out = Reactions::new();
        react_to::<P>(&view, &mut out).unwrap_or_else(|e| panic!("the reaction failed: {e}"));
        out
    };
    let first = run();
    assert_eq!(first, run(), "reacting twice to one event differed");
    first
}
