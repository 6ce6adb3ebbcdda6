//! A given/when/then kit for domain tests.
//!
//! ```text
//! given::<Tickets>([opened("t1")])
//!     .when(close("t1"))
//!     .then([closed("t1")]);
//! given::<Tickets>([]).when(close("t1")).then_rejected("ticket_not_found");
//! ```
//!
//! (The crate documentation has a compiled example.)
//!
//! Beyond the expectation it states, every scenario checks what Writ relies on: the decision
//! is deterministic (deciding twice gives the same result), every recorded event survives
//! its JSON round trip, and the events apply to the state without panicking.

use uuid::Uuid;

use crate::{CommandError, Domain, Envelope, EventSet, Refusal};

/// The envelope scenarios use unless told otherwise.
pub const DEFAULT_ENVELOPE: Envelope = Envelope {
    command_id: Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
    recorded_at_ms: 1_767_225_600_000, // 2026-01-01T00:00:00Z
    sequence: 42,
};

/// Starts a scenario: the stream the command addresses already holds these events.
pub fn given<D: Domain>(events: impl IntoIterator<Item = D::Event>) -> Given<D> {
    let mut state = D::State::default();
    for event in events {
        D::evolve(&mut state, &event);
    }
    Given {
        state,
        envelope: DEFAULT_ENVELOPE,
    }
}

/// A scenario's starting state.
pub struct Given<D: Domain> {
    state: D::State,
    envelope: Envelope,
}

impl<D: Domain> std::fmt::Debug for Given<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Given")
            .field("state", &self.state)
            .field("envelope", &self.envelope)
            .finish()
    }
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

    /// Decides a typed command.
    pub fn when(self, command: D::Command) -> Then<D> {
        let result = D::decide(&self.state, &command, &self.envelope);
        let again = D::decide(&self.state, &command, &self.envelope);
        assert!(
            result == again,
            "deciding the same command twice gave different results: the handler is not \
             deterministic\n first: {result:?}\nsecond: {again:?}"
        );
        if let Ok(events) = &result {
            let mut state = self.state.clone();
            for event in events {
                let mut data = Vec::new();
                event.encode_data(&mut data).expect("event encodes to JSON");
                let decoded = D::Event::decode(event.event_type(), &data)
                    .expect("recorded event decodes from its JSON");
                assert_eq!(&decoded, event, "event changed in its JSON round trip");
                D::evolve(&mut state, event);
            }
        }
        Then { result }
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
    result: Result<Vec<D::Event>, Refusal>,
}

impl<D: Domain> std::fmt::Debug for Then<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Then")
            .field("result", &self.result)
            .finish()
    }
}

impl<D: Domain> Then<D> {
    /// Asserts the command recorded exactly these events, in this order.
    pub fn then(self, expected: impl IntoIterator<Item = D::Event>)
    where
        D::Event: PartialEq,
    {
        let expected: Vec<D::Event> = expected.into_iter().collect();
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

    /// The raw decision, for checks the kit does not cover.
    pub fn result(self) -> Result<Vec<D::Event>, Refusal> {
        self.result
    }
}
