//! Processes: what reacts to events by issuing commands, now or at a time.
//!
//! A [`Process`] is given every event of the types it handles, right after the command
//! that recorded it was decided, and answers with [`Reaction`]s: commands to issue now
//! ([`Reaction::issue`]), commands to issue at a time ([`Reaction::schedule`], a durable
//! timer) and timers to forget ([`Reaction::cancel`]). The engine records what a process
//! did with the command that caused it, so a crash can never separate the two, and runs
//! the issued commands right after their cause, as ordinary commands in the command log.
//!
//! Issued commands get ids derived from the event that caused them (the command's id, the
//! event's index in it, the process's name and the reaction's number), so the same event
//! always issues the same ids: a command a process issued runs exactly once, and
//! `GET /update/{id}` answers for it like for any command.
//!
//! A process has no state of its own. What it needs to know travels in the events it
//! reacts to, or is read by the commands it issues, whose decisions see every stream of
//! their domain as of the moment they run. That keeps processes deterministic and lets a
//! replay of the command log run them again unchanged.

use serde::Serialize;
use uuid::Uuid;

use crate::envelope::{derive_id, name_hash};
use crate::event::{EventDecodeError, EventSet};

/// A process manager: reacts to events of the types in `Event` by issuing commands.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use writ_domain::{Process, Reaction, event_set};
///
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// #[serde(rename_all = "camelCase")]
/// struct LoanStarted { loan_id: String, due_at_ms: u64 }
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// #[serde(rename_all = "camelCase")]
/// struct LoanEnded { loan_id: String }
/// event_set! {
///     #[derive(Debug, Clone, PartialEq)]
///     enum LoanEvent { LoanStarted(LoanStarted), LoanEnded(LoanEnded) }
/// }
///
/// /// Marks a loan overdue when its due time passes; forgets it when it ends.
/// struct Reminders;
/// impl Process for Reminders {
///     const NAME: &'static str = "reminders";
///     type Event = LoanEvent;
///     fn react(event: &LoanEvent, reaction: &mut Reaction<'_>) {
///         match event {
///             LoanEvent::LoanStarted(e) => reaction.schedule(
///                 &e.loan_id,
///                 e.due_at_ms,
///                 "MarkOverdue",
///                 &serde_json::json!({"loanId": e.loan_id}),
///             ),
///             LoanEvent::LoanEnded(e) => reaction.cancel(&e.loan_id),
///         }
///     }
/// }
///
/// let reactions = writ_domain::testing::react::<Reminders>(
///     &LoanEvent::LoanStarted(LoanStarted { loan_id: "l-1".into(), due_at_ms: 5_000 }),
/// );
/// assert_eq!(reactions.timers().len(), 1);
/// ```
pub trait Process: Send + Sync + 'static {
    /// The process's name: unique in a server, and part of the ids it issues (renaming a
    /// process changes the ids its future reactions get).
    const NAME: &'static str;
    /// The events it reacts to. Only events of these types are given to it; they may be
    /// any domain's.
    type Event: EventSet;

    /// Reacts to one event. Must be deterministic: what it issues may depend only on the
    /// event and what [`Reaction`] tells of it, never on the clock or a random source.
    fn react(event: &Self::Event, reaction: &mut Reaction<'_>);
}

/// An event as a process sees it: its body and where it was recorded.
#[derive(Debug, Clone, Copy)]
pub struct EventView<'a> {
    /// The event type.
    pub event_type: &'a str,
    /// The JSON body.
    pub data: &'a [u8],
    /// The stream.
    pub stream: &'a str,
    /// Its version in the stream.
    pub version: u64,
    /// Its global position.
    pub position: u64,
    /// Its index among the events of the command that recorded it (from 0).
    pub index: u32,
    /// The command that recorded it.
    pub command_id: Uuid,
    /// The chain the command belongs to.
    pub correlation_id: Uuid,
    /// When that command was recorded (ms since the Unix epoch).
    pub recorded_at_ms: u64,
}

/// A command a process issues, now or when a timer fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// The command's id, derived from the event that caused it.
    pub id: Uuid,
    /// The command's name.
    pub command: String,
    /// Its payload version; the newest when `None`.
    pub version: Option<u32>,
    /// Its payload, JSON.
    pub payload: Vec<u8>,
    /// The version its target stream must be at, as `expectedVersion`.
    pub expected_version: Option<u64>,
}

/// A change to a process's durable timers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimerOp {
    /// Issue `command` at `at_ms` (ms since the Unix epoch), or at once if that has
    /// passed. Replaces a pending timer of the same process and key.
    Schedule {
        /// The process's name.
        process: String,
        /// The key, unique within the process.
        key: String,
        /// When.
        at_ms: u64,
        /// What.
        command: Issued,
    },
    /// Forgets the pending timer of the process and key, if there is one.
    Cancel {
        /// The process's name.
        process: String,
        /// The key.
        key: String,
    },
}

/// What processes did in reaction to the events of one command, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reactions {
    issued: Vec<Issued>,
    timers: Vec<TimerOp>,
}

impl Reactions {
    /// Nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The commands to issue now, in order.
    pub fn issued(&self) -> &[Issued] {
        &self.issued
    }

    /// The timer changes, in order.
    pub fn timers(&self) -> &[TimerOp] {
        &self.timers
    }

    /// The timers scheduled ([`TimerOp::Schedule`]), in order, whichever process
    /// scheduled them: each one's key, when it fires (ms since the Unix epoch) and the
    /// command it issues then. A key scheduled twice is listed twice; the later replaces
    /// the earlier.
    ///
    /// ```
    /// # use writ_domain::{EventView, Reaction, Reactions};
    /// # let event = EventView { event_type: "LoanStarted", data: b"{}", stream: "loan-1",
    /// #     version: 1, position: 1, index: 0, command_id: uuid::Uuid::nil(),
    /// #     correlation_id: uuid::Uuid::nil(), recorded_at_ms: 0 };
    /// let mut reactions = Reactions::new();
    /// let mut reaction = Reaction::new("reminders", &event, &mut reactions);
    /// reaction.schedule("l-1", 5_000, "MarkOverdue", &serde_json::json!({"loanId": "l-1"}));
    /// reaction.cancel("l-0");
    /// reaction.finish().unwrap();
    ///
    /// let [(key, at_ms, command)] = reactions.scheduled().collect::<Vec<_>>()[..] else {
    ///     panic!("one timer");
    /// };
    /// assert_eq!((key, at_ms, command.command.as_str()), ("l-1", 5_000, "MarkOverdue"));
    /// assert!(reactions.cancelled().eq(["l-0"]));
    /// ```
    pub fn scheduled(&self) -> impl Iterator<Item = (&str, u64, &Issued)> + '_ {
        self.timers.iter().filter_map(|op| match op {
            TimerOp::Schedule {
                key,
                at_ms,
                command,
                ..
            } => Some((key.as_str(), *at_ms, command)),
            TimerOp::Cancel { .. } => None,
        })
    }

    /// The keys of the timers cancelled ([`TimerOp::Cancel`]), in order, whichever
    /// process cancelled them. See [`Reactions::scheduled`].
    pub fn cancelled(&self) -> impl Iterator<Item = &str> + '_ {
        self.timers.iter().filter_map(|op| match op {
            TimerOp::Cancel { key, .. } => Some(key.as_str()),
            TimerOp::Schedule { .. } => None,
        })
    }

    /// Whether no process did anything.
    pub fn is_empty(&self) -> bool {
        self.issued.is_empty() && self.timers.is_empty()
    }

    /// Forgets everything, keeping the allocations.
    pub fn clear(&mut self) {
        self.issued.clear();
        self.timers.clear();
    }

    /// Adds what `other` holds after what this holds.
    pub fn extend(&mut self, other: Reactions) {
        self.issued.extend(other.issued);
        self.timers.extend(other.timers);
    }

    /// Takes the commands to issue and the timer changes.
    pub fn take(&mut self) -> (Vec<Issued>, Vec<TimerOp>) {
        (
            std::mem::take(&mut self.issued),
            std::mem::take(&mut self.timers),
        )
    }
}

/// How one process reacts to one event: what it may read of the event, and what it may
/// do. See [`Process`].
#[derive(Debug)]
pub struct Reaction<'a> {
    process: &'a str,
    event: &'a EventView<'a>,
    out: &'a mut Reactions,
    /// Reactions of this process to this event so far: the last input of derived ids.
    n: u64,
    /// The first thing that went wrong (a payload that does not serialize).
    error: Option<String>,
}

impl<'a> Reaction<'a> {
    /// The reaction of process `process` to `event`, into `out`.
    pub fn new(process: &'a str, event: &'a EventView<'a>, out: &'a mut Reactions) -> Self {
        Self {
            process,
            event,
            out,
            n: 0,
            error: None,
        }
    }

    /// The event being reacted to.
    pub fn event(&self) -> &EventView<'a> {
        self.event
    }

    /// When the command that recorded the event was recorded (ms since the Unix epoch):
    /// the process's only clock.
    pub fn recorded_at_ms(&self) -> u64 {
        self.event.recorded_at_ms
    }

    /// The id the next [`Reaction::issue`] will give its command.
    fn next_id(&mut self) -> Uuid {
        let n = self.n;
        self.n += 1;
        derive_id(
            self.event.command_id,
            mix3(u64::from(self.event.index), name_hash(self.process), n),
        )
    }

    fn issued(
        &mut self,
        id: Uuid,
        command: &str,
        payload: &impl Serialize,
        expected_version: Option<u64>,
    ) -> Option<Issued> {
        match serde_json::to_vec(payload) {
            Ok(payload) => Some(Issued {
                id,
                command: command.to_owned(),
                version: None,
                payload,
                expected_version,
            }),
            Err(e) => {
                self.error.get_or_insert_with(|| {
                    format!("the payload of {command} does not serialize: {e}")
                });
                None
            }
        }
    }

    /// Issues `command` (its newest version) with `payload` now: it runs right after the
    /// command whose event this is, with an id derived from the event.
    pub fn issue(&mut self, command: &str, payload: &impl Serialize) {
        let id = self.next_id();
        if let Some(issued) = self.issued(id, command, payload, None) {
            self.out.issued.push(issued);
        }
    }

    /// [`Reaction::issue`] with an `expectedVersion` for the command's target stream.
    pub fn issue_expecting(&mut self, command: &str, payload: &impl Serialize, version: u64) {
        let id = self.next_id();
        if let Some(issued) = self.issued(id, command, payload, Some(version)) {
            self.out.issued.push(issued);
        }
    }

    /// Issues `command` with `payload` at `at_ms` (ms since the Unix epoch), through a
    /// durable timer that survives restarts and fires once; at once if the time has passed
    /// (also when it passed while the server was down). A pending timer of this process
    /// with the same `key` is replaced. The command's id is derived from the event and
    /// the key.
    pub fn schedule(&mut self, key: &str, at_ms: u64, command: &str, payload: &impl Serialize) {
        let id = derive_id(
            self.event.command_id,
            mix3(
                u64::from(self.event.index),
                name_hash(self.process),
                name_hash(key) ^ 0x7469_6d65_7200_0000, // "timer": apart from issue's ids
            ),
        );
        if let Some(command) = self.issued(id, command, payload, None) {
            self.out.timers.push(TimerOp::Schedule {
                process: self.process.to_owned(),
                key: key.to_owned(),
                at_ms,
                command,
            });
        }
    }

    /// Forgets this process's pending timer with `key`, if any.
    pub fn cancel(&mut self, key: &str) {
        self.out.timers.push(TimerOp::Cancel {
            process: self.process.to_owned(),
            key: key.to_owned(),
        });
    }

    /// What went wrong, if a payload did not serialize; the engine then drops the
    /// reaction and counts it.
    pub fn finish(self) -> Result<(), String> {
        self.error.map_or(Ok(()), Err)
    }
}

fn mix3(a: u64, b: u64, c: u64) -> u64 {
    a.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .rotate_left(21)
        .wrapping_add(b)
        .wrapping_mul(0xbf58_476d_1ce4_e5b9)
        .rotate_left(17)
        ^ c
}

/// Decodes `event` as the process's event type and lets it react: what engines and the
/// test kit call for an event of one of the process's types.
pub fn react_to<P: Process>(event: &EventView<'_>, out: &mut Reactions) -> Result<(), String> {
    let decoded =
        P::Event::decode(event.event_type, event.data).map_err(|e: EventDecodeError| {
            format!("process {} cannot decode the event: {e}", P::NAME)
        })?;
    let mut reaction = Reaction::new(P::NAME, event, out);
    P::react(&decoded, &mut reaction);
    reaction.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(index: u32) -> EventView<'static> {
        EventView {
            event_type: "X",
            data: b"{}",
            stream: "s-1",
            version: 1,
            position: 1,
            index,
            command_id: Uuid::from_u128(1),
            correlation_id: Uuid::from_u128(1),
            recorded_at_ms: 0,
        }
    }

    #[test]
    fn scheduled_and_cancelled_list_the_timer_changes_of_each_kind_in_order() {
        let event = view(0);
        let mut out = Reactions::new();
        let mut r = Reaction::new("p", &event, &mut out);
        r.cancel("a");
        r.schedule("b", 20, "B", &serde_json::json!({"n": 1}));
        r.issue("I", &serde_json::json!({}));
        r.cancel("c");
        r.schedule("b", 30, "B", &serde_json::json!({"n": 2}));
        r.finish().unwrap();
        let scheduled: Vec<(&str, u64, &[u8])> = out
            .scheduled()
            .map(|(key, at_ms, command)| (key, at_ms, command.payload.as_slice()))
            .collect();
        assert_eq!(
            scheduled,
            [("b", 20, &br#"{"n":1}"#[..]), ("b", 30, &br#"{"n":2}"#[..])]
        );
        assert!(out.cancelled().eq(["a", "c"]));
        assert!(Reactions::new().scheduled().next().is_none());
        assert!(Reactions::new().cancelled().next().is_none());
    }

    #[test]
    fn issued_ids_are_derived_from_the_event_process_and_order() {
        let ids = |process: &str, index: u32| {
            let event = view(index);
            let mut out = Reactions::new();
            let mut r = Reaction::new(process, &event, &mut out);
            r.issue("A", &serde_json::json!({}));
            r.issue("A", &serde_json::json!({}));
            r.schedule("k", 5, "B", &serde_json::json!({}));
            r.finish().unwrap();
            let mut ids: Vec<Uuid> = out.issued().iter().map(|i| i.id).collect();
            if let TimerOp::Schedule { command, .. } = &out.timers()[0] {
                ids.push(command.id);
            }
            ids
        };
        let first = ids("p", 0);
        assert_eq!(first, ids("p", 0), "deterministic");
        let mut all = first.clone();
        all.extend(ids("q", 0));
        all.extend(ids("p", 1));
        let unique: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(
            unique.len(),
            all.len(),
            "distinct across order, process and event"
        );
    }
}
