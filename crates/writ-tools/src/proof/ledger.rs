//! What the crash proof sent and what the server must therefore hold: every command with
//! what its answer proves, the tickets, and the command id of every log position checked
//! so far. Pure bookkeeping, no I/O: the checks feed it what they read and it names every
//! violation.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::Write;

use uuid::Uuid;
use writ_server::wire::{CommandStatusBody, Event, StatusName};
use writ_tickets::workload;

/// Violations described on stderr, at most.
const VIOLATIONS_SHOWN: usize = 20;
/// Added to a command's number for the conflicting body sent with its id.
const CONFLICT_OFFSET: u64 = 1 << 40;

/// The two commands of the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Open,
    Comment,
}

/// A command as the proof can send it again: its body is a function of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Spec {
    pub(super) id: Uuid,
    pub(super) kind: Kind,
    /// The ticket number: ticket `t-{ticket}`.
    pub(super) ticket: u64,
    /// Comments: the comment's number in its text. Opens: 0.
    pub(super) number: u64,
}

impl Spec {
    /// The JSON of `POST /update`.
    pub(super) fn body(&self) -> Vec<u8> {
        self.write(self.number)
    }

    /// The same id with another payload: must be answered `409`.
    pub(super) fn conflicting_body(&self) -> Vec<u8> {
        self.write(self.number + CONFLICT_OFFSET)
    }

    fn write(&self, number: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(192);
        let (name, version) = match self.kind {
            Kind::Open => (workload::OPEN_TICKET, workload::OPEN_TICKET_VERSION),
            Kind::Comment => (workload::ADD_COMMENT, workload::ADD_COMMENT_VERSION),
        };
        write!(
            out,
            r#"{{"id":"{}","command":"{name}","version":{version},"payload":"#,
            self.id.hyphenated()
        )
        .expect("writing to a Vec never fails");
        match self.kind {
            // The open's conflicting body names another ticket.
            Kind::Open => workload::write_open_ticket_payload(&mut out, self.ticket + number),
            Kind::Comment => workload::write_add_comment_payload(&mut out, self.ticket, number),
        }
        out.push(b'}');
        out
    }
}

/// How the server answered one `POST /update`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Answer {
    /// `202`: new, durable.
    Accepted,
    /// `200` with `duplicate: true`: known already.
    Duplicate,
    /// `409` to a conflicting body.
    Conflict,
    /// `503`: refused, not acknowledged.
    Refused,
    /// No answer (the server was killed): the command may or may not exist.
    Unanswered,
    /// Any other status code: a violation; the command may or may not exist.
    Unexpected(u16),
}

/// One `POST /update` of a round.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sent {
    pub(super) spec: Spec,
    /// The client that owns the command (it sends it again if it turns out absent).
    pub(super) client: usize,
    /// The conflicting body, not the command's own.
    pub(super) conflicting: bool,
    pub(super) answer: Answer,
}

/// What the last check found of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Found {
    /// Not checked since it was last sent.
    Unchecked,
    /// `404` after a restart: it never reached the command log (never acknowledged).
    Absent,
    /// Succeeded, its one event at this position.
    Succeeded { position: u64 },
}

#[derive(Debug)]
struct Entry {
    spec: Spec,
    client: usize,
    /// Answered `202` or as a duplicate at least once: the server must keep it.
    acknowledged: bool,
    found: Found,
    /// The position of its event in the log, once the log scan saw it.
    executed_at: Option<u64>,
    /// The round it was last sent in.
    round: u32,
}

#[derive(Debug, Default)]
struct Ticket {
    open: Option<Uuid>,
    comments: Vec<Uuid>,
}

/// Kinds of violation, counted apart for the last line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Breach {
    /// An acknowledged command is unknown, not final, or its effects are missing.
    Lost,
    /// A command ran more than once.
    ExecutedTwice,
    /// Anything else the contract rules out.
    Other,
}

/// Every violation found, with the first few described.
#[derive(Debug, Default)]
pub(super) struct Violations {
    lost: HashSet<Uuid>,
    executed_twice: HashSet<Uuid>,
    other: u64,
    shown: Vec<String>,
}

impl Violations {
    pub(super) fn record(&mut self, breach: Breach, id: Option<Uuid>, what: String) {
        let new = match (breach, id) {
            (Breach::Lost, Some(id)) => self.lost.insert(id),
            (Breach::ExecutedTwice, Some(id)) => self.executed_twice.insert(id),
            _ => {
                self.other += 1;
                true
            }
        };
        if new && self.shown.len() < VIOLATIONS_SHOWN {
            eprintln!("VIOLATION ({breach:?}): {what}");
            self.shown.push(what);
        }
    }

    pub(super) fn lost(&self) -> usize {
        self.lost.len()
    }

    pub(super) fn executed_twice(&self) -> usize {
        self.executed_twice.len()
    }

    pub(super) fn total(&self) -> u64 {
        (self.lost.len() + self.executed_twice.len()) as u64 + self.other
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} violations: lost={} executed_twice={} other={}",
            self.total(),
            self.lost.len(),
            self.executed_twice.len(),
            self.other
        )?;
        for what in &self.shown {
            write!(f, "\n  {what}")?;
        }
        Ok(())
    }
}

/// The proof's model of the store.
#[derive(Debug, Default)]
pub(super) struct Ledger {
    entries: HashMap<Uuid, Entry>,
    tickets: HashMap<u64, Ticket>,
    /// The command id of each position checked so far, from position 1.
    positions: Vec<Uuid>,
    pub(super) violations: Violations,
}

impl Ledger {
    pub(super) fn acknowledged(&self) -> usize {
        self.entries.values().filter(|e| e.acknowledged).count()
    }

    /// The last position checked.
    pub(super) fn log_end(&self) -> u64 {
        self.positions.len() as u64
    }

    pub(super) fn position(&self, position: u64) -> Option<Uuid> {
        let i = usize::try_from(position.checked_sub(1)?).ok()?;
        self.positions.get(i).copied()
    }

    /// Takes in what a round sent. Answers that break the contract on their own (a fresh
    /// id answered as a duplicate, a conflicting body accepted) are violations here.
    pub(super) fn record_round(&mut self, round: u32, sent: &[Sent]) {
        for s in sent {
            let id = s.spec.id;
            let existed = self.entries.contains_key(&id);
            let entry = self.entries.entry(id).or_insert_with(|| Entry {
                spec: s.spec,
                client: s.client,
                acknowledged: false,
                found: Found::Unchecked,
                executed_at: None,
                round,
            });
            if !existed {
                let ticket = self.tickets.entry(s.spec.ticket).or_default();
                match s.spec.kind {
                    Kind::Open => ticket.open = Some(id),
                    Kind::Comment => ticket.comments.push(id),
                }
            }
            entry.round = round;
            let what = |verb: &str| {
                format!(
                    "round {round}: {verb} ({:?} on t-{}, {id})",
                    s.spec.kind, s.spec.ticket
                )
            };
            match (s.conflicting, s.answer) {
                (true, Answer::Conflict) => {}
                (true, Answer::Accepted | Answer::Duplicate) => self.violations.record(
                    Breach::Other,
                    Some(id),
                    what("an id sent again with another payload was not answered 409"),
                ),
                (false, Answer::Conflict) => self.violations.record(
                    Breach::Other,
                    Some(id),
                    what("a command sent with its own payload was answered 409"),
                ),
                (_, Answer::Unexpected(code)) => {
                    self.violations.record(
                        Breach::Other,
                        Some(id),
                        what(&format!("POST /update answered {code}")),
                    );
                    if !entry.acknowledged {
                        entry.found = Found::Unchecked;
                    }
                }
                (_, Answer::Refused | Answer::Unanswered) => {
                    if !entry.acknowledged {
                        entry.found = Found::Unchecked;
                    }
                }
                (false, Answer::Accepted) => {
                    if entry.acknowledged {
                        self.violations.record(
                            Breach::Other,
                            Some(id),
                            what("an acknowledged id sent again was accepted as new, not as a duplicate"),
                        );
                    }
                    if entry.found == Found::Absent {
                        entry.found = Found::Unchecked;
                    }
                    entry.acknowledged = true;
                }
                (false, Answer::Duplicate) => {
                    if !existed {
                        self.violations.record(
                            Breach::Other,
                            Some(id),
                            what("a fresh id was answered as a duplicate"),
                        );
                    }
                    if entry.found == Found::Absent {
                        // Absent after the restart, yet known now: only a resend could
                        // have brought it, and this is that resend's first answer.
                        self.violations.record(
                            Breach::Other,
                            Some(id),
                            what("an id absent after the restart was answered as a duplicate"),
                        );
                        entry.found = Found::Unchecked;
                    }
                    entry.acknowledged = true;
                }
            }
        }
    }

    /// The ids whose status a check must read: those sent in `round`, those not found
    /// final yet, and in a full check all of them.
    pub(super) fn ids_to_check(&self, round: u32, full: bool) -> Vec<Uuid> {
        let mut ids: Vec<Uuid> = self
            .entries
            .iter()
            .filter(|(_, e)| full || e.round == round || e.found == Found::Unchecked)
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// A sample of other ids, acknowledged, to read again.
    pub(super) fn sample_acknowledged(
        &self,
        rng: &mut super::Rng,
        count: usize,
        except: &HashSet<Uuid>,
    ) -> Vec<Uuid> {
        let mut ids: Vec<Uuid> = self
            .entries
            .iter()
            .filter(|(id, e)| e.acknowledged && !except.contains(id))
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        sample(rng, ids, count)
    }

    /// Takes in the status of `id` read after a restart. Returns the spec of a command
    /// found absent, to send again.
    pub(super) fn record_status(
        &mut self,
        id: Uuid,
        status: Option<&CommandStatusBody>,
    ) -> Option<(usize, Spec)> {
        let entry = self.entries.get_mut(&id).expect("checks read known ids");
        let what = format!("{:?} on t-{} ({id})", entry.spec.kind, entry.spec.ticket);
        let Some(status) = status else {
            if entry.acknowledged {
                self.violations.record(
                    Breach::Lost,
                    Some(id),
                    format!("acknowledged {what} is unknown (404) after a restart"),
                );
                return None;
            }
            if let Some(position) = entry.executed_at {
                self.violations.record(
                    Breach::Other,
                    Some(id),
                    format!("{what} is unknown (404) but its event is at position {position}"),
                );
            }
            entry.found = Found::Absent;
            return Some((entry.client, entry.spec));
        };
        // Known to the server: from now on it must stay so.
        entry.acknowledged = true;
        let expected_command = match entry.spec.kind {
            Kind::Open => workload::OPEN_TICKET,
            Kind::Comment => workload::ADD_COMMENT,
        };
        if status.command != expected_command {
            self.violations.record(
                Breach::Other,
                Some(id),
                format!("{what}: the status names command {}", status.command),
            );
        }
        match status.status {
            StatusName::Accepted => self.violations.record(
                Breach::Lost,
                Some(id),
                format!("{what} is still `accepted` after every long poll: never final"),
            ),
            StatusName::Succeeded => match (status.events.as_slice(), status.position) {
                ([event], Some(position)) if event.position == position => {
                    let now = Found::Succeeded { position };
                    if let Found::Succeeded { position: before } = entry.found
                        && before != position
                    {
                        self.violations.record(
                            Breach::Other,
                            Some(id),
                            format!("{what}: its position moved from {before} to {position}"),
                        );
                    }
                    entry.found = now;
                }
                _ => self.violations.record(
                    Breach::Other,
                    Some(id),
                    format!(
                        "{what}: succeeded with position {:?} and {} events; expected one event at that position",
                        status.position,
                        status.events.len()
                    ),
                ),
            },
            StatusName::Rejected | StatusName::Failed => self.violations.record(
                Breach::Other,
                Some(id),
                format!(
                    "{what} ended {:?} ({:?}); every command of the workload must succeed",
                    status.status, status.error
                ),
            ),
        }
        None
    }

    /// Takes in the events of the global log from `first` to its end; positions up to
    /// [`log_end`](Self::log_end) must be what they were, later ones are new. Returns the
    /// commands whose commit is new, for [`check_executions`](Self::check_executions).
    pub(super) fn record_events(&mut self, first: u64, events: &[Event]) -> Vec<Uuid> {
        let end_before = self.log_end();
        let mut executed = Vec::new();
        let mut expected = first.max(1);
        let mut previous: Option<Uuid> = self.position(expected - 1);
        for event in events {
            let id = event.metadata.command_id;
            if event.position != expected {
                self.violations.record(
                    Breach::Other,
                    None,
                    format!(
                        "the log holds position {} where {expected} was due: a gap or reorder",
                        event.position
                    ),
                );
                return executed;
            }
            expected += 1;
            if let Some(known) = self.position(event.position) {
                if known != id {
                    self.violations.record(
                        Breach::Lost,
                        Some(known),
                        format!(
                            "position {} held command {known} and now holds {id}: the log changed after a restart",
                            event.position
                        ),
                    );
                }
                previous = Some(id);
                continue;
            }
            // A new position.
            self.positions.push(id);
            let same_commit = previous == Some(id);
            previous = Some(id);
            let Some(entry) = self.entries.get_mut(&id) else {
                self.violations.record(
                    Breach::Other,
                    Some(id),
                    format!(
                        "position {} holds command {id}, which the proof never sent",
                        event.position
                    ),
                );
                continue;
            };
            if same_commit {
                continue;
            }
            if let Some(before) = entry.executed_at {
                self.violations.record(
                    Breach::ExecutedTwice,
                    Some(id),
                    format!(
                        "{:?} on t-{} ({id}) has commits at positions {before} and {}",
                        entry.spec.kind, entry.spec.ticket, event.position
                    ),
                );
                continue;
            }
            entry.executed_at = Some(event.position);
            executed.push(id);
            let (stream, event_type) = (
                workload::stream(entry.spec.ticket),
                match entry.spec.kind {
                    Kind::Open => "TicketOpened",
                    Kind::Comment => "CommentAdded",
                },
            );
            if event.stream != stream || event.event_type != event_type {
                self.violations.record(
                    Breach::Other,
                    Some(id),
                    format!(
                        "position {} holds {} on {} for command {id}; expected {event_type} on {stream}",
                        event.position, event.event_type, event.stream
                    ),
                );
            }
        }
        let end = expected - 1;
        if end < end_before {
            let lost = self.position(end + 1);
            self.violations.record(
                Breach::Lost,
                lost,
                format!("the log ends at position {end}; before the restart it held {end_before}"),
            );
        }
        executed
    }

    /// After the statuses and the log are read: every command found succeeded has its
    /// event where its status says, and every event's command is found succeeded.
    pub(super) fn check_executions(&mut self, ids: &[Uuid]) {
        for id in ids {
            let entry = &self.entries[id];
            let what = format!("{:?} on t-{} ({id})", entry.spec.kind, entry.spec.ticket);
            match (entry.found, entry.executed_at) {
                (Found::Succeeded { position }, Some(at)) if position == at => {}
                (Found::Succeeded { position }, None) => self.violations.record(
                    Breach::Lost,
                    Some(*id),
                    format!("{what} succeeded at position {position}, but the log does not hold its event"),
                ),
                (found, Some(at)) => self.violations.record(
                    Breach::Other,
                    Some(*id),
                    format!("{what}: its event is at position {at}, its status says {found:?}"),
                ),
                (Found::Absent | Found::Unchecked, None) => {}
            }
        }
    }

    /// The tickets the commands `ids` touch.
    pub(super) fn tickets_of(&self, ids: &[Uuid]) -> Vec<u64> {
        let mut tickets: Vec<u64> = ids.iter().map(|id| self.entries[id].spec.ticket).collect();
        tickets.sort_unstable();
        tickets.dedup();
        tickets
    }

    /// A sample of all tickets.
    pub(super) fn sample_tickets(&self, rng: &mut super::Rng, count: usize) -> Vec<u64> {
        let mut tickets: Vec<u64> = self.tickets.keys().copied().collect();
        tickets.sort_unstable();
        sample(rng, tickets, count)
    }

    /// Takes in the events of ticket `ticket`'s stream: exactly its open, then exactly one
    /// `CommentAdded` per comment found succeeded, versions from 1 without gaps. Returns
    /// the comments counted.
    pub(super) fn record_stream(&mut self, ticket: u64, events: &[Event]) -> u64 {
        let stream = workload::stream(ticket);
        let Some(expected) = self.tickets.get(&ticket) else {
            return 0;
        };
        let succeeded = |id: &Uuid| {
            matches!(
                self.entries.get(id).map(|e| e.found),
                Some(Found::Succeeded { .. })
            )
        };
        let open = expected.open.filter(succeeded);
        let comments: HashSet<Uuid> = expected
            .comments
            .iter()
            .copied()
            .filter(succeeded)
            .collect();
        let mut breaches: Vec<(Breach, Option<Uuid>, String)> = Vec::new();
        let mut seen: HashSet<Uuid> = HashSet::with_capacity(events.len());
        let mut comments_counted = 0u64;
        for (i, event) in events.iter().enumerate() {
            let id = event.metadata.command_id;
            if event.version != i as u64 + 1 || event.stream != stream {
                breaches.push((
                    Breach::Other,
                    None,
                    format!(
                        "{stream}: event {} is {} version {}",
                        i + 1,
                        event.stream,
                        event.version
                    ),
                ));
            }
            if !seen.insert(id) {
                breaches.push((
                    Breach::ExecutedTwice,
                    Some(id),
                    format!("{stream} holds two events of command {id}"),
                ));
                continue;
            }
            match event.event_type.as_str() {
                "TicketOpened" if i == 0 && Some(id) == open => {}
                "CommentAdded" if comments.contains(&id) => comments_counted += 1,
                other => breaches.push((
                    Breach::Other,
                    Some(id),
                    format!(
                        "{stream}: version {} is {other} of command {id}, which is not one the stream should hold",
                        event.version
                    ),
                )),
            }
        }
        for id in open.iter().chain(&comments) {
            if !seen.contains(id) {
                breaches.push((
                    Breach::Lost,
                    Some(*id),
                    format!("{stream} lacks the event of command {id}, which succeeded"),
                ));
            }
        }
        // Implied by the checks per id above; kept as the plain statement of the count.
        if breaches.is_empty() && comments_counted != comments.len() as u64 {
            breaches.push((
                Breach::Other,
                None,
                format!(
                    "{stream} counts {comments_counted} comments; {} AddComment ids succeeded for it",
                    comments.len()
                ),
            ));
        }
        for (breach, id, what) in breaches {
            self.violations.record(breach, id, what);
        }
        comments_counted
    }
}

/// `count` of `items` chosen at random (all when there are fewer).
fn sample<T>(rng: &mut super::Rng, mut items: Vec<T>, count: usize) -> Vec<T> {
    if items.len() <= count {
        return items;
    }
    // A partial Fisher-Yates shuffle.
    for i in 0..count {
        let j = i + rng.below((items.len() - i) as u64) as usize;
        items.swap(i, j);
    }
    items.truncate(count);
    items
}
