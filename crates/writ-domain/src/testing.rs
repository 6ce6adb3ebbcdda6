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
//! let [(_, at_ms, expire)] = reactions.scheduled().collect::<Vec<_>>()[..] else { panic!() };
//! // The timer's command, through the domain's rules, when it fires (and before).
//! given::<Orders>([submitted("1")]).when_issued(expire, at_ms).then([cancelled("1")]);
//! given::<Orders>([submitted("1")]).when_issued(expire, at_ms - 1).then_rejected("not_due");
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
use crate::process::{EventView, Issued, Process, Reactions, react_to};
use crate::{CommandError, Domain, Envelope, EventSet, Refusal, Rejection};

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

    /// The target's name and the decision, each event with its stream; refused with
    /// `wrong_expected_version` first when the target is not at `expected`.
    fn decide(&self, command: &D::Command, expected: Option<u64>) -> (String, Decided<D>) {
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
        if let Some(expected) = expected
            && expected != version
        {
            let refused = Rejection::wrong_expected_version(expected, version);
            return (target, Err(refused.into()));
        }
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
        self.when_expecting(&command, None)
    }

    /// Decides a command a process issued, now or through a timer (an [`Issued`], as
    /// [`Reactions::issued`] and [`Reactions::scheduled`] give it), as the engine does:
    /// decoded through the domain's catalog, internal commands included (see
    /// [`decode_issued`]), with the issued command's id and recorded at `at_ms`; its
    /// `expectedVersion`, if any, checked against the target's version first. The rest of
    /// the envelope (correlation, sequence) is the scenario's: [`DEFAULT_ENVELOPE`]'s
    /// correlation is that of the commands [`react`] and [`react_at`] react for.
    ///
    /// The engine records a timer's command at its time or later (later when the server
    /// was down or busy): decide it at `at_ms` from [`Reactions::scheduled`], and after.
    ///
    /// ```text
    /// let reactions = react::<Reminders>(&lent);
    /// let [(_, due, mark)] = reactions.scheduled().collect::<Vec<_>>()[..] else { panic!() };
    /// given::<Library>(book).when_issued(mark, due).then([overdue]);
    /// given::<Library>(book).when_issued(mark, due - 1).then_rejected("loan_not_due");
    /// ```
    ///
    /// # Panics
    /// If the command does not decode: the engine would record it as failed.
    pub fn when_issued(mut self, issued: &Issued, at_ms: u64) -> Then<D> {
        let command = decode_issued::<D>(issued);
        self.envelope = Envelope {
            command_id: issued.id,
            recorded_at_ms: at_ms,
            ..self.envelope
        };
        self.when_expecting(&command, issued.expected_version)
    }

    /// Decides `command` (twice, to check the decision is deterministic) and checks its
    /// events survive their JSON round trip and apply to the given states.
    fn when_expecting(self, command: &D::Command, expected: Option<u64>) -> Then<D> {
        let (target, result) = self.decide(command, expected);
        let (_, again) = self.decide(command, expected);
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

/// The command a process issued (now or through a timer), decoded through `D`'s catalog
/// as the engine decodes it: internal commands included, in the version it names (the
/// newest when none).
///
/// # Panics
/// If it does not decode, with the reason: the engine would record it as failed.
pub fn decode_issued<D: Domain>(issued: &Issued) -> D::Command {
    D::commands()
        .decode(&issued.command, issued.version, &issued.payload)
        .unwrap_or_else(|e| panic!("the issued command {} does not decode: {e}", issued.command))
        .command
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

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::{CommandCatalog, Reaction, WRONG_EXPECTED_VERSION};

    /// `Open`: a loan on `loan-{id}`, due at `dueAtMs`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Open {
        id: String,
        due_at_ms: u64,
    }

    /// `Expire` (internal): the loan's timer fired.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Expire {
        id: String,
    }

    #[derive(Debug, Clone, PartialEq)]
    enum Command {
        Open(Open),
        Expire(Expire),
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Opened {
        id: String,
        due_at_ms: u64,
    }

    /// What the envelope said when the loan expired.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Expired {
        by: Uuid,
        at_ms: u64,
        correlation: Uuid,
    }

    crate::event_set! {
        #[derive(Debug, Clone, PartialEq)]
        enum Event { Opened(Opened), Expired(Expired) }
    }

    struct Loans;

    impl Domain for Loans {
        const NAME: &'static str = "loans";
        const STREAM_PREFIXES: &'static [&'static str] = &["loan-"];
        type Command = Command;
        type Event = Event;
        /// The due time, while the loan runs.
        type State = Option<u64>;

        fn commands() -> CommandCatalog<Command> {
            CommandCatalog::new()
                .command("Open", 1, Command::Open)
                .internal("Expire", 1, Command::Expire)
        }

        fn stream(command: &Command) -> Cow<'_, str> {
            let (Command::Open(Open { id, .. }) | Command::Expire(Expire { id })) = command;
            Cow::Owned(format!("loan-{id}"))
        }

        fn evolve(state: &mut Option<u64>, event: &Event) {
            *state = match event {
                Event::Opened(e) => Some(e.due_at_ms),
                Event::Expired(_) => None,
            };
        }

        fn decide(decision: &mut Decision<'_, Self>, command: &Command) -> Result<(), Refusal> {
            let Command::Expire(_) = command else {
                return Err(Rejection::new("not_here", "only Expire is decided here").into());
            };
            let Some(due) = *decision.state() else {
                return Err(Rejection::new("no_loan", "no loan runs").into());
            };
            let envelope = *decision.envelope();
            if envelope.recorded_at_ms < due {
                return Err(Rejection::new("not_due", "not yet").into());
            }
            decision.record(Event::Expired(Expired {
                by: envelope.command_id,
                at_ms: envelope.recorded_at_ms,
                correlation: envelope.correlation_id,
            }));
            Ok(())
        }
    }

    /// Sets a timer that expires a loan at its due time.
    struct Expiry;

    impl Process for Expiry {
        const NAME: &'static str = "expiry";
        type Event = Event;

        fn react(event: &Event, reaction: &mut Reaction<'_>) {
            if let Event::Opened(e) = event {
                let expire = Expire { id: e.id.clone() };
                reaction.schedule(&e.id, e.due_at_ms, "Expire", &expire);
            }
        }
    }

    const DUE: u64 = 5_000;

    fn opened() -> Event {
        Event::Opened(Opened {
            id: "l-1".into(),
            due_at_ms: DUE,
        })
    }

    /// The one timer `Expiry` sets for [`opened`], and its time.
    fn timer() -> (Issued, u64) {
        let reactions = react::<Expiry>(&opened());
        let [(key, at_ms, issued)] = reactions.scheduled().collect::<Vec<_>>()[..] else {
            panic!("one timer: {reactions:?}");
        };
        assert_eq!(key, "l-1");
        (issued.clone(), at_ms)
    }

    #[test]
    fn a_timers_command_is_decided_with_its_id_at_the_time_given() {
        let (expire, at_ms) = timer();
        assert_eq!(at_ms, DUE);
        for at_ms in [DUE, DUE + 1] {
            given::<Loans>([opened()])
                .when_issued(&expire, at_ms)
                .then([Event::Expired(Expired {
                    by: expire.id,
                    at_ms,
                    correlation: DEFAULT_ENVELOPE.correlation_id,
                })]);
        }
        given::<Loans>([opened()])
            .when_issued(&expire, DUE - 1)
            .then_rejected("not_due");
    }

    #[test]
    fn an_issued_command_keeps_the_scenarios_correlation() {
        let (expire, _) = timer();
        let chain = Uuid::from_u128(99);
        let events = given::<Loans>([opened()])
            .with_envelope(Envelope {
                correlation_id: chain,
                ..DEFAULT_ENVELOPE
            })
            .when_issued(&expire, DUE)
            .result()
            .unwrap();
        let [Event::Expired(expired)] = &events[..] else {
            panic!("{events:?}");
        };
        assert_eq!((expired.by, expired.correlation), (expire.id, chain));
    }

    #[test]
    fn an_issued_commands_expected_version_is_checked_before_the_rules() {
        let (mut expire, _) = timer();
        expire.expected_version = Some(1);
        let then = given::<Loans>([opened()]).when_issued(&expire, DUE);
        assert_eq!(then.result().unwrap().len(), 1);
        expire.expected_version = Some(0);
        given::<Loans>([opened()])
            .when_issued(&expire, DUE)
            .then_rejected(WRONG_EXPECTED_VERSION);
        // Over several streams, the target's version is its given events'.
        expire.expected_version = Some(1);
        given_streams::<Loans>([("loan-l-1", vec![opened()])])
            .when_issued(&expire, DUE)
            .result()
            .unwrap();
    }

    #[test]
    fn an_internal_command_decodes_as_the_engine_decodes_it() {
        let (expire, _) = timer();
        assert_eq!(
            decode_issued::<Loans>(&expire),
            Command::Expire(Expire { id: "l-1".into() })
        );
        // A client could not send it; a process can.
        assert!(
            Loans::commands()
                .infos()
                .any(|i| i.name == "Expire" && i.internal)
        );
    }

    #[test]
    #[should_panic(expected = "the issued command Exipre does not decode")]
    fn an_issued_command_the_catalog_does_not_know_panics_with_the_reason() {
        let (mut expire, _) = timer();
        expire.command = "Exipre".into();
        let _ = given::<Loans>([opened()]).when_issued(&expire, DUE);
    }
}
