//! What a replay changed: the two journals' outcomes compared command by command.
//!
//! Both journals hold the clients' commands once each, in the same order, so they are
//! compared in *segments*: a client's command and every record after it up to the next
//! client's command (the commands its events made processes issue, and timers that fired
//! before the next one). Within a segment, records are paired by command id (a process's
//! command has an id derived from the event that caused it, a timer's the id it was
//! scheduled with, so the same command has the same id in both); a record without a pair
//! is a command one build issued and the other did not. Memory: one segment of each.

use std::collections::HashMap;
use std::fmt::Write as _;

use uuid::Uuid;
use writ_log::LogReader;

use crate::error::ReadError;
use crate::record::{CommitStatus, JournalRecord, Origin, RecordTimerOp};

/// How one command's outcome differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum DifferenceKind {
    /// Succeeded, rejected or failed: another of them.
    Status,
    /// Rejected both times, with other codes.
    Code,
    /// Other events: their count, or an event's stream, version, type, schema version or
    /// data.
    Events,
    /// Other timer changes.
    Timers,
    /// In the live journal only: this build's processes or timers no longer issue it.
    Missing,
    /// In the replay only: this build's processes or timers issue it, the old did not.
    Added,
}

impl DifferenceKind {
    /// Every kind, in the order reports list them.
    pub const ALL: [DifferenceKind; 6] = [
        DifferenceKind::Status,
        DifferenceKind::Code,
        DifferenceKind::Events,
        DifferenceKind::Timers,
        DifferenceKind::Missing,
        DifferenceKind::Added,
    ];

    /// `status`, `code`, `events`, `timers`, `missing` or `added`.
    pub fn name(self) -> &'static str {
        match self {
            DifferenceKind::Status => "status",
            DifferenceKind::Code => "code",
            DifferenceKind::Events => "events",
            DifferenceKind::Timers => "timers",
            DifferenceKind::Missing => "missing",
            DifferenceKind::Added => "added",
        }
    }
}

/// An event as a journal holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoggedEvent {
    /// Its stream.
    pub stream: String,
    /// Its version in the stream.
    pub version: u64,
    /// Its type.
    pub event_type: String,
    /// The schema version of its data.
    pub schema_version: u32,
    /// Its JSON data.
    pub data: Vec<u8>,
}

/// A command's outcome as a journal holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoggedOutcome {
    /// Its sequence number in that journal.
    pub seq: u64,
    /// Succeeded, rejected or failed.
    pub status: CommitStatus,
    /// The rejection code (empty unless rejected).
    pub code: String,
    /// The rejection or failure message (not compared).
    pub message: String,
    /// The events.
    pub events: Vec<LoggedEvent>,
    /// The timer changes, each in one line (`schedule alarm/key at 1700000000000: Ping
    /// {id} {payload}`, `cancel alarm/key`).
    pub timers: Vec<String>,
}

/// One command whose outcome differs, or that one journal holds and the other not.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Difference {
    /// The command's id.
    pub id: Uuid,
    /// Its name.
    pub command: String,
    /// Where it came from.
    pub origin: Origin,
    /// How it differs (`Missing` or `Added` alone, or some of the others).
    pub kinds: Vec<DifferenceKind>,
    /// Its outcome in the live journal, if there.
    pub live: Option<LoggedOutcome>,
    /// Its outcome in the replay, if there.
    pub replayed: Option<LoggedOutcome>,
}

/// The comparison of a replay with the journal it replayed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplayReport {
    /// Records of the live journal.
    pub live_records: u64,
    /// Records of the replay.
    pub replayed_records: u64,
    /// Commands compared: those in both, and those in one only.
    pub commands: u64,
    /// Commands whose outcome is the same in both.
    pub same: u64,
    /// Every command that differs, in journal order (segment by segment: the live
    /// journal's, then those only the replay holds).
    pub differences: Vec<Difference>,
}

impl ReplayReport {
    /// Commands that differ.
    pub fn differing(&self) -> u64 {
        self.differences.len() as u64
    }

    /// How many commands differ in `kind`.
    pub fn count(&self, kind: DifferenceKind) -> u64 {
        self.differences
            .iter()
            .filter(|d| d.kinds.contains(&kind))
            .count() as u64
    }

    /// A readable summary: the counts, then the first `first` differences.
    pub fn summary(&self, first: usize) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "commands={} same={} differing={} (live journal: {} records, replay: {} records)",
            self.commands,
            self.same,
            self.differing(),
            self.live_records,
            self.replayed_records
        );
        let kinds: Vec<String> = DifferenceKind::ALL
            .iter()
            .map(|k| format!("{}={}", k.name(), self.count(*k)))
            .collect();
        let _ = writeln!(out, "by kind: {}", kinds.join(" "));
        for d in self.differences.iter().take(first) {
            let kinds: Vec<&str> = d.kinds.iter().map(|k| k.name()).collect();
            let _ = writeln!(
                out,
                "- {} {} ({}): {}",
                d.command,
                d.id,
                d.origin.name(),
                kinds.join(", ")
            );
            for (side, outcome) in [("live", &d.live), ("replay", &d.replayed)] {
                if let Some(o) = outcome {
                    let _ = writeln!(out, "    {side:6} #{}: {}", o.seq, brief(o));
                }
            }
        }
        if self.differences.len() > first {
            let _ = writeln!(
                out,
                "... and {} more (the JSON report lists every one)",
                self.differences.len() - first
            );
        }
        out
    }

    /// The report as JSON: the counts and every difference with both outcomes.
    pub fn to_json(&self) -> serde_json::Value {
        let by_kind: serde_json::Map<String, serde_json::Value> = DifferenceKind::ALL
            .iter()
            .map(|k| (k.name().to_owned(), self.count(*k).into()))
            .collect();
        let differences: Vec<serde_json::Value> = self
            .differences
            .iter()
            .map(|d| {
                serde_json::json!({
                    "id": d.id,
                    "command": d.command,
                    "origin": d.origin.name(),
                    "kinds": d.kinds.iter().map(|k| k.name()).collect::<Vec<_>>(),
                    "live": d.live.as_ref().map(outcome_json),
                    "replay": d.replayed.as_ref().map(outcome_json),
                })
            })
            .collect();
        serde_json::json!({
            "liveRecords": self.live_records,
            "replayedRecords": self.replayed_records,
            "commands": self.commands,
            "same": self.same,
            "differing": self.differing(),
            "byKind": by_kind,
            "differences": differences,
        })
    }
}

fn status_name(status: CommitStatus) -> &'static str {
    match status {
        CommitStatus::Succeeded => "succeeded",
        CommitStatus::Rejected => "rejected",
        CommitStatus::Failed => "failed",
    }
}

/// One line of an outcome: status, code, events' types and streams.
fn brief(o: &LoggedOutcome) -> String {
    let mut line = status_name(o.status).to_owned();
    if !o.code.is_empty() {
        let _ = write!(line, " {}", o.code);
    }
    for e in &o.events {
        let _ = write!(
            line,
            " {}@{}#{} {}",
            e.event_type,
            e.stream,
            e.version,
            String::from_utf8_lossy(&e.data)
        );
    }
    if !o.timers.is_empty() {
        let _ = write!(line, " timers: {}", o.timers.join("; "));
    }
    line
}

fn outcome_json(o: &LoggedOutcome) -> serde_json::Value {
    let events: Vec<serde_json::Value> = o
        .events
        .iter()
        .map(|e| {
            let data = serde_json::from_slice::<serde_json::Value>(&e.data)
                .unwrap_or_else(|_| String::from_utf8_lossy(&e.data).into_owned().into());
            serde_json::json!({
                "stream": e.stream,
                "version": e.version,
                "type": e.event_type,
                "schemaVersion": e.schema_version,
                "data": data,
            })
        })
        .collect();
    serde_json::json!({
        "seq": o.seq,
        "status": status_name(o.status),
        "code": (!o.code.is_empty()).then_some(&o.code),
        "message": (!o.message.is_empty()).then_some(&o.message),
        "events": events,
        "timers": o.timers,
    })
}

/// A record, owned, with what the comparison needs.
struct Logged {
    id: Uuid,
    command: String,
    origin: Origin,
    outcome: LoggedOutcome,
}

impl Logged {
    fn of(seq: u64, r: &JournalRecord<'_>) -> Self {
        let timers = r
            .timers
            .iter()
            .map(|op| match op {
                RecordTimerOp::Schedule {
                    process,
                    key,
                    at_ms,
                    command,
                } => format!(
                    "schedule {process}/{key} at {at_ms}: {} {} {}",
                    command.name,
                    command.id,
                    String::from_utf8_lossy(command.payload)
                ),
                RecordTimerOp::Cancel { process, key } => format!("cancel {process}/{key}"),
            })
            .collect();
        Logged {
            id: r.id,
            command: r.name.to_owned(),
            origin: r.origin,
            outcome: LoggedOutcome {
                seq,
                status: r.status,
                code: r.code.to_owned(),
                message: r.message.to_owned(),
                events: r
                    .events
                    .iter()
                    .map(|e| LoggedEvent {
                        stream: e.stream.to_owned(),
                        version: e.version,
                        event_type: e.event_type.to_owned(),
                        schema_version: e.schema_version,
                        data: e.data.to_vec(),
                    })
                    .collect(),
                timers,
            },
        }
    }
}

/// A journal read segment by segment, up to `end`.
struct Segments {
    iter: writ_log::LogIter,
    end: u64,
    /// The client's command that starts the next segment, read ahead.
    next: Option<Logged>,
    ended: bool,
}

impl Segments {
    fn new(reader: &LogReader, end: u64) -> Self {
        Self {
            iter: reader.iter_from(0),
            end,
            next: None,
            ended: false,
        }
    }

    /// The next segment; `None` at the end.
    fn segment(&mut self) -> Result<Option<Vec<Logged>>, ReadError> {
        let mut segment: Vec<Logged> = self.next.take().into_iter().collect();
        while !self.ended {
            let Some(item) = self.iter.next_record() else {
                self.ended = true;
                break;
            };
            let (seq, bytes) = item?;
            if seq >= self.end {
                self.ended = true;
                break;
            }
            let record =
                JournalRecord::decode(bytes).map_err(|source| ReadError::Record { seq, source })?;
            let logged = Logged::of(seq, &record);
            if logged.origin == Origin::Client && !segment.is_empty() {
                self.next = Some(logged);
                break;
            }
            segment.push(logged);
        }
        Ok((!segment.is_empty()).then_some(segment))
    }
}

/// How `live` and `replayed`, the same command, differ.
fn kinds(live: &LoggedOutcome, replayed: &LoggedOutcome) -> Vec<DifferenceKind> {
    let mut kinds = Vec::new();
    if live.status != replayed.status {
        kinds.push(DifferenceKind::Status);
    } else if live.code != replayed.code {
        kinds.push(DifferenceKind::Code);
    }
    if live.events != replayed.events {
        kinds.push(DifferenceKind::Events);
    }
    if live.timers != replayed.timers {
        kinds.push(DifferenceKind::Timers);
    }
    kinds
}

/// Compares the first `live_end` records of the journal `live` (all that was replayed:
/// a live journal may have grown since) with its replay `replayed`; `progress` is told
/// how many records of `live` are done, and how many commands differ so far.
pub(crate) fn compare(
    live: &LogReader,
    live_end: u64,
    replayed: &LogReader,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ReplayReport, ReadError> {
    let replayed_end = replayed.durable_seq();
    let mut report = ReplayReport {
        live_records: live_end,
        replayed_records: replayed_end,
        ..ReplayReport::default()
    };
    let (mut a, mut b) = (
        Segments::new(live, live_end),
        Segments::new(replayed, replayed_end),
    );
    let mut done = 0;
    let step = (live_end / 200).max(1);
    loop {
        let (sa, sb) = (a.segment()?, b.segment()?);
        if sa.is_none() && sb.is_none() {
            break;
        }
        let (sa, sb) = (sa.unwrap_or_default(), sb.unwrap_or_default());
        let before = done;
        done += sa.len() as u64;
        let mut others: Vec<Option<Logged>> = sb.into_iter().map(Some).collect();
        let by_id: HashMap<Uuid, usize> = others
            .iter()
            .enumerate()
            .map(|(i, l)| (l.as_ref().expect("all there").id, i))
            .collect();
        for l in sa {
            report.commands += 1;
            let Some(r) = by_id.get(&l.id).and_then(|&i| others[i].take()) else {
                report.differences.push(Difference {
                    id: l.id,
                    command: l.command,
                    origin: l.origin,
                    kinds: vec![DifferenceKind::Missing],
                    live: Some(l.outcome),
                    replayed: None,
                });
                continue;
            };
            let kinds = kinds(&l.outcome, &r.outcome);
            if kinds.is_empty() {
                report.same += 1;
            } else {
                report.differences.push(Difference {
                    id: l.id,
                    command: l.command,
                    origin: l.origin,
                    kinds,
                    live: Some(l.outcome),
                    replayed: Some(r.outcome),
                });
            }
        }
        for r in others.into_iter().flatten() {
            report.commands += 1;
            report.differences.push(Difference {
                id: r.id,
                command: r.command,
                origin: r.origin,
                kinds: vec![DifferenceKind::Added],
                live: None,
                replayed: Some(r.outcome),
            });
        }
        if done / step != before / step {
            progress(done, report.differing());
        }
    }
    progress(done, report.differing());
    Ok(report)
}
