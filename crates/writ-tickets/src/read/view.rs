//! The tickets read model: every ticket with its comments and status history, and the
//! indexes the queries use, built of `writ_query`'s [collections](writ_query::collections):
//! a [`Table`] of tickets keyed by id, [`NumberSet`]s of tickets by status and priority,
//! an [`Index`] by assignee, a [`TextIndex`] of the words of titles and comments, and
//! [`List`]s of comments and status changes. So a clone (a published snapshot) costs a few
//! reference counts, and a change after it copies only what it touches.
//!
//! Replaying the log is mostly waiting for memory: a million events over 100k tickets
//! touch the tickets in turn, and a read model of a few hundred MiB does not fit in the
//! cache. So the structures keep each event's lookups few and small: an event finds its
//! ticket through the table's key index of 64-bit slots (no strings) and a vector indexed
//! by number, a ticket's word list compares short words inline, small index sets are
//! inline, and [`TicketsView::warm`] runs the lookups of the next events side by side
//! before they are applied one by one.

use std::fmt;
use std::sync::Arc;

use uuid::Uuid;
use writ_query::ApplyError;
use writ_query::collections::{Index, List, NumberSet, Row, Selection, Table, TextIndex, Words};
use writ_query::paging::{Cursor, Order, PageRequest};
use writ_query::snapshot::{Codec, Reader, SnapshotError, Writer};

use crate::Priority;

/// Where a ticket stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Opened or reopened, not closed since.
    Open,
    /// Closed, not reopened since.
    Closed,
}

impl Status {
    /// Both statuses.
    pub const ALL: [Status; 2] = [Status::Open, Status::Closed];

    /// `open` or `closed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }

    /// The status named `name` (`open` or `closed`).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    fn index(self) -> usize {
        match self {
            Self::Open => 0,
            Self::Closed => 1,
        }
    }
}

/// Every priority, lowest first.
pub const PRIORITIES: [Priority; 4] = [
    Priority::Low,
    Priority::Normal,
    Priority::High,
    Priority::Urgent,
];

/// A priority's name: `low`, `normal`, `high` or `urgent`.
pub fn priority_name(priority: Priority) -> &'static str {
    match priority {
        Priority::Low => "low",
        Priority::Normal => "normal",
        Priority::High => "high",
        Priority::Urgent => "urgent",
    }
}

/// The priority named `name`.
pub fn parse_priority(name: &str) -> Option<Priority> {
    PRIORITIES.into_iter().find(|p| priority_name(*p) == name)
}

fn priority_index(priority: Priority) -> usize {
    match priority {
        Priority::Low => 0,
        Priority::Normal => 1,
        Priority::High => 2,
        Priority::Urgent => 3,
    }
}

/// When something happened: the event's position and its `recordedAt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The event's position in the global log.
    pub position: u64,
    /// When its command was recorded (ms since the Unix epoch).
    pub recorded_at_ms: u64,
}

/// A comment on a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    /// The comment's id.
    pub id: Uuid,
    /// Who wrote it.
    pub author: Arc<str>,
    /// What they wrote.
    pub text: Arc<str>,
    /// When.
    pub at: Stamp,
}

/// A change of a ticket's status: opened, closed, reopened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    /// The status from then on.
    pub status: Status,
    /// When.
    pub at: Stamp,
    /// The resolution (closed) or the reason (reopened); `None` when opened.
    pub note: Option<Arc<str>>,
}

/// One ticket as the read model keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// Its place in creation order: 0 for the first ticket opened, then 1, 2, ... The
    /// indexes hold numbers rather than ids: small integers compare and copy without
    /// touching memory elsewhere, where `Arc<str>` ids cost a string comparison per probe
    /// and a reference count per copy.
    pub number: u64,
    /// Its id.
    pub id: Arc<str>,
    /// Its title.
    pub title: Arc<str>,
    /// Its description, if any.
    pub description: Option<Arc<str>>,
    /// Who reported it.
    pub reporter: Arc<str>,
    /// How urgent it is.
    pub priority: Priority,
    /// Where it stands.
    pub status: Status,
    /// Who holds it, if anyone.
    pub assignee: Option<Arc<str>>,
    /// Its comments, oldest first.
    pub comments: List<Comment>,
    /// Its status changes, oldest first, starting with the opening. Kept from projection
    /// version 2 on; empty under version 1.
    pub history: List<StatusChange>,
    /// When it was opened.
    pub created: Stamp,
    /// When any of its events was last recorded.
    pub updated: Stamp,
    /// The tokens of its title and comments, sorted (see [`Ticket::words`]).
    words: Words,
}

impl Row for Ticket {
    fn key(&self) -> &str {
        &self.id
    }
}

impl Ticket {
    /// `name` as an `Arc`, shared with the reporter, the assignee or the last comment's
    /// author when it is one of them (comments mostly come from the same few people), so
    /// that a comment usually costs no allocation for its author.
    fn known_name(&self, name: &str) -> Arc<str> {
        [
            Some(&self.reporter),
            self.assignee.as_ref(),
            self.comments.last().map(|c| &c.author),
        ]
        .into_iter()
        .flatten()
        .find(|known| known.as_ref() == name)
        .map_or_else(|| Arc::from(name), Arc::clone)
    }

    /// The tokens of its title and comments (see [`tokens`](super::tokens)), sorted and
    /// without duplicates: the words the text index lists it under. Kept with the ticket,
    /// in one small sorted array (short words inline), so that indexing a comment probes
    /// the shared index only for words new to this ticket.
    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.words.iter()
    }
}

/// A search filter: every given criterion must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketFilter {
    /// Only tickets with this status.
    pub status: Option<Status>,
    /// Only tickets held by this assignee (exact match).
    pub assignee: Option<String>,
    /// Only tickets of this priority.
    pub priority: Option<Priority>,
    /// Only tickets whose title and comments together contain every token of this text
    /// (see [`tokens`](super::tokens)). A text without tokens filters nothing.
    pub text: Option<String>,
}

/// One page of a search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPage<'a> {
    /// The matching tickets after the cursor, in creation order, at most the limit.
    pub items: Vec<&'a Ticket>,
    /// How many tickets match in all (all pages).
    pub total: usize,
    /// The number of the last item when more tickets match after it: the next page
    /// starts after it.
    pub next_after: Option<u64>,
}

/// The tickets read model. See the [module documentation](super) for the queries over it.
#[derive(Clone)]
pub struct TicketsView {
    keeps_history: bool,
    /// The tickets by id, numbered in creation order. Its key index changes only when a
    /// ticket is opened: other events only look it up, which copies nothing after a
    /// snapshot.
    tickets: Table<Ticket>,
    /// By status and by priority: arrays indexed by the enums, no hashing.
    by_status: [NumberSet; 2],
    by_priority: [NumberSet; 4],
    by_assignee: Index<Arc<str>>,
    /// The text index: lowercased token → tickets whose title or comments hold it.
    words: TextIndex,
}

/// Two views are equal when they hold the same tickets and indexes.
impl PartialEq for TicketsView {
    fn eq(&self, other: &Self) -> bool {
        self.keeps_history == other.keeps_history
            && self.tickets == other.tickets
            && self.by_status == other.by_status
            && self.by_priority == other.by_priority
            && self.by_assignee == other.by_assignee
            && self.words == other.words
    }
}

impl Eq for TicketsView {}

impl fmt::Debug for TicketsView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TicketsView")
            .field("keeps_history", &self.keeps_history)
            .field("tickets", &self.tickets.len())
            .field("open", &self.count(Status::Open))
            .field("words", &self.words.len())
            .finish_non_exhaustive()
    }
}

impl TicketsView {
    /// An empty read model; `keeps_history` is projection version 2's status history.
    pub fn new(keeps_history: bool) -> Self {
        Self {
            keeps_history,
            tickets: Table::new(),
            by_status: Default::default(),
            by_priority: Default::default(),
            by_assignee: Index::new(),
            words: TextIndex::new(),
        }
    }

    /// Whether status changes are kept (projection version 2 and later).
    pub fn keeps_history(&self) -> bool {
        self.keeps_history
    }

    /// The ticket `id`.
    pub fn ticket(&self, id: &str) -> Option<&Ticket> {
        self.tickets.get(id)
    }

    /// Every ticket, in creation order.
    pub fn tickets(&self) -> impl Iterator<Item = &Ticket> {
        self.tickets.rows()
    }

    /// How many tickets there are.
    pub fn len(&self) -> usize {
        self.tickets.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.tickets.is_empty()
    }

    /// How many tickets have this status (O(1): the index's size).
    pub fn count(&self, status: Status) -> usize {
        self.by_status[status.index()].len()
    }

    /// How many tickets have this priority (O(1)).
    pub fn count_priority(&self, priority: Priority) -> usize {
        self.by_priority[priority_index(priority)].len()
    }

    /// The tickets matching `filter` created after ticket number `after`, in creation
    /// order, at most `limit`, with the total count of matches: a page of the table over
    /// the criteria's sets ([`Table::page`] says what it costs).
    pub fn search(
        &self,
        filter: &TicketFilter,
        after: Option<u64>,
        limit: usize,
    ) -> SearchPage<'_> {
        let mut selection = Selection::all();
        if let Some(status) = filter.status {
            selection.and(&self.by_status[status.index()]);
        }
        if let Some(priority) = filter.priority {
            selection.and(&self.by_priority[priority_index(priority)]);
        }
        if let Some(assignee) = &filter.assignee {
            selection.and(self.by_assignee.get(assignee.as_str()));
        }
        if let Some(text) = &filter.text {
            selection.and_text(&self.words, text);
        }
        let mut request = PageRequest::first(Order::OLDEST_FIRST, limit);
        request.cursor = after.map(Cursor::after);
        let page = self.tickets.page(&selection, &request);
        SearchPage {
            items: page.items,
            total: page.total,
            next_after: page.next.as_ref().map(Cursor::number),
        }
    }

    /// Reads the parts of the view that events about tickets `ids` (in order, at most 32
    /// of them are used) will change, stage by stage for all of them: their slots in the
    /// id index and their places in the ticket vector ([`Table::warm`]), the tickets, then
    /// what the tickets point to (id, word list, last comments). The reads of one stage
    /// are independent, so the processor keeps many in flight; when the events are then
    /// applied one by one, their lookups hit the cache instead of waiting for memory in
    /// turn. Changes nothing; unknown ids are skipped. See
    /// [`Projection::warm`](writ_query::Projection::warm).
    pub(crate) fn warm<'a>(&self, ids: impl Iterator<Item = &'a str>) {
        let tickets = self.tickets.warm(ids);
        // What was read, so that the reads are not optimized away.
        let mut sink = 0usize;
        for ticket in tickets.iter() {
            sink ^= ticket.id.len() ^ ticket.updated.position as usize;
            sink ^= ticket.words.address();
        }
        for ticket in tickets.iter() {
            sink ^= usize::from(ticket.id.as_bytes().first().copied().unwrap_or(0));
            sink ^= ticket.words.warm();
            sink ^= ticket
                .comments
                .last()
                .map_or(0, |comment| comment.at.position as usize);
        }
        std::hint::black_box(sink);
    }

    // ----- changes, one per event; each checks before it changes anything -----

    /// The number of ticket `id`, which must have been opened.
    fn number(&self, id: &str) -> Result<u64, ApplyError> {
        self.tickets
            .number(id)
            .ok_or_else(|| ApplyError::Inconsistent {
                detail: format!("no ticket `{id}` was opened"),
            })
    }

    /// The ticket `id` for a change: its number and a unique (copied if shared) ticket.
    fn ticket_mut(&mut self, id: &str) -> Result<(u64, &mut Ticket), ApplyError> {
        let number = self.number(id)?;
        Ok((number, ticket_mut(&mut self.tickets, number)))
    }

    pub(crate) fn open(
        &mut self,
        id: Arc<str>,
        title: Arc<str>,
        description: Option<Arc<str>>,
        reporter: Arc<str>,
        priority: Priority,
        at: Stamp,
    ) -> Result<(), ApplyError> {
        if self.tickets.contains_key(&id) {
            return Err(ApplyError::Inconsistent {
                detail: format!("ticket `{id}` was already opened"),
            });
        }
        let number = self.tickets.next_number();
        let mut history = List::new();
        if self.keeps_history {
            history.push(StatusChange {
                status: Status::Open,
                at,
                note: None,
            });
        }
        let mut words = Words::new();
        self.words.insert(number, &mut words, &title);
        let ticket = Ticket {
            number,
            id,
            title,
            description,
            reporter,
            priority,
            status: Status::Open,
            assignee: None,
            comments: List::new(),
            history,
            created: at,
            updated: at,
            words,
        };
        self.by_status[Status::Open.index()].insert_new(number);
        self.by_priority[priority_index(priority)].insert_new(number);
        let inserted = self.tickets.insert(ticket);
        debug_assert_eq!(inserted.ok(), Some(number), "checked above");
        Ok(())
    }

    pub(crate) fn assign(&mut self, id: &str, assignee: &str, at: Stamp) -> Result<(), ApplyError> {
        let (number, ticket) = self.ticket_mut(id)?;
        ticket.updated = at;
        if ticket.assignee.as_deref() == Some(assignee) {
            return Ok(());
        }
        let new: Arc<str> = Arc::from(assignee);
        let old = ticket.assignee.replace(Arc::clone(&new));
        self.by_assignee.update(number, old.as_deref(), Some(new));
        Ok(())
    }

    pub(crate) fn comment(
        &mut self,
        id: &str,
        comment_id: Uuid,
        author: &str,
        text: Arc<str>,
        at: Stamp,
    ) -> Result<(), ApplyError> {
        // Not `ticket_mut`: the ticket and the word index are borrowed side by side.
        let number = self.number(id)?;
        let ticket = ticket_mut(&mut self.tickets, number);
        ticket.updated = at;
        let author = ticket.known_name(author);
        self.words.insert(number, &mut ticket.words, &text);
        ticket.comments.push(Comment {
            id: comment_id,
            author,
            text,
            at,
        });
        Ok(())
    }

    /// Closes (`Status::Closed`, with the resolution) or reopens (`Status::Open`, with the
    /// reason) a ticket. Like the domain's state, it trusts the log: closing a closed
    /// ticket is recorded, not refused. The note is kept in the history, if the view keeps
    /// one.
    pub(crate) fn set_status(
        &mut self,
        id: &str,
        status: Status,
        note: Option<Arc<str>>,
        at: Stamp,
    ) -> Result<(), ApplyError> {
        let keeps_history = self.keeps_history;
        let (number, ticket) = self.ticket_mut(id)?;
        ticket.updated = at;
        let previous = std::mem::replace(&mut ticket.status, status);
        if keeps_history {
            ticket.history.push(StatusChange { status, at, note });
        }
        if previous != status {
            self.by_status[previous.index()].remove(number);
            self.by_status[status.index()].insert(number);
        }
        Ok(())
    }
}

/// Ticket `number` (which exists), unique: copied first if a snapshot shares it.
fn ticket_mut(tickets: &mut Table<Ticket>, number: u64) -> &mut Ticket {
    tickets
        .row_mut(number)
        .expect("numbers are given to opened tickets")
}

// ----- snapshots -----
//
// The view as `TicketsProjection::save` writes it (snapshot format 1): whether it keeps
// history, the text index, the tickets (each with its word list, which shares the text
// index's long words), the sets by status and by priority, the index by assignee. The
// indexes are written rather than derived from the tickets, so that loading builds each
// set directly from its words.

impl Stamp {
    fn save(&self, out: &mut Writer) {
        out.varint(self.position);
        out.varint(self.recorded_at_ms);
    }

    fn load(input: &mut Reader<'_>) -> Result<Self, SnapshotError> {
        Ok(Self {
            position: input.varint()?,
            recorded_at_ms: input.varint()?,
        })
    }
}

fn save_status(out: &mut Writer, status: Status) {
    out.u8(status.index() as u8);
}

fn load_status(input: &mut Reader<'_>) -> Result<Status, SnapshotError> {
    match input.u8()? {
        0 => Ok(Status::Open),
        1 => Ok(Status::Closed),
        _ => Err(input.invalid("a ticket status other than 0 or 1")),
    }
}

fn load_priority(input: &mut Reader<'_>) -> Result<Priority, SnapshotError> {
    let at = usize::from(input.u8()?);
    PRIORITIES
        .get(at)
        .copied()
        .ok_or_else(|| input.invalid("a priority other than 0 to 3"))
}

/// `name` as an `Arc`, shared with one of `known` that equals it (as
/// [`Ticket::known_name`] shares names while applying).
fn shared_name<'k>(
    input: &mut Reader<'_>,
    known: impl IntoIterator<Item = Option<&'k Arc<str>>>,
) -> Result<Arc<str>, SnapshotError> {
    let name = input.str()?;
    Ok(known
        .into_iter()
        .flatten()
        .find(|known| known.as_ref() == name)
        .map_or_else(|| Arc::from(name), Arc::clone))
}

impl Ticket {
    fn save(&self, out: &mut Writer) {
        out.str(&self.id);
        out.str(&self.title);
        self.description.save(out);
        out.str(&self.reporter);
        out.u8(priority_index(self.priority) as u8);
        save_status(out, self.status);
        self.assignee.save(out);
        self.comments.save_with(out, |out, comment| {
            out.raw(comment.id.as_bytes());
            out.str(&comment.author);
            out.str(&comment.text);
            comment.at.save(out);
        });
        self.history.save_with(out, |out, change| {
            save_status(out, change.status);
            change.at.save(out);
            change.note.save(out);
        });
        self.created.save(out);
        self.updated.save(out);
        self.words.save(out);
    }

    fn load(input: &mut Reader<'_>, number: u64, words: &TextIndex) -> Result<Self, SnapshotError> {
        let id = Arc::<str>::load(input)?;
        let title = Arc::<str>::load(input)?;
        let description = Option::<Arc<str>>::load(input)?;
        let reporter = Arc::<str>::load(input)?;
        let priority = load_priority(input)?;
        let status = load_status(input)?;
        let assignee = match input.u8()? {
            0 => None,
            1 => Some(shared_name(input, [Some(&reporter)])?),
            _ => return Err(input.invalid("an option tag other than 0 or 1")),
        };
        // Comment authors share the names before them, as applying shares them.
        let mut last_author: Option<Arc<str>> = None;
        let comments = List::load_with(input, 16 + 1 + 1 + 2, |input| {
            let id = Uuid::from_bytes(<[u8; 16]>::load(input)?);
            let author = shared_name(
                input,
                [Some(&reporter), assignee.as_ref(), last_author.as_ref()],
            )?;
            last_author = Some(Arc::clone(&author));
            Ok(Comment {
                id,
                author,
                text: Arc::<str>::load(input)?,
                at: Stamp::load(input)?,
            })
        })?;
        let history = List::load_with(input, 1 + 2 + 1, |input| {
            Ok(StatusChange {
                status: load_status(input)?,
                at: Stamp::load(input)?,
                note: Option::<Arc<str>>::load(input)?,
            })
        })?;
        Ok(Self {
            number,
            id,
            title,
            description,
            reporter,
            priority,
            status,
            assignee,
            comments,
            history,
            created: Stamp::load(input)?,
            updated: Stamp::load(input)?,
            words: Words::load(input, words)?,
        })
    }
}

impl TicketsView {
    /// Writes the view for [`TicketsView::load`] (snapshot format 1).
    pub(crate) fn save(&self, out: &mut Writer) {
        self.keeps_history.save(out);
        self.words.save(out);
        self.tickets.save_with(out, |out, ticket| ticket.save(out));
        for set in self.by_status.iter().chain(&self.by_priority) {
            set.save(out);
        }
        self.by_assignee.save(out);
    }

    /// Reads a view [`TicketsView::save`] wrote, checking what the queries rely on:
    /// tickets are never removed, so every ticket is there under its number, and every
    /// index set lists only tickets that are.
    pub(crate) fn load(input: &mut Reader<'_>) -> Result<Self, SnapshotError> {
        let keeps_history = bool::load(input)?;
        let words = TextIndex::load(input)?;
        let mut complete = true;
        let tickets = Table::load_with(input, |input, number| Ticket::load(input, number, &words))?;
        complete &= tickets.len() as u64 == tickets.next_number();
        let mut by_status: [NumberSet; 2] = Default::default();
        for set in &mut by_status {
            *set = NumberSet::load(input)?;
        }
        let mut by_priority: [NumberSet; 4] = Default::default();
        for set in &mut by_priority {
            *set = NumberSet::load(input)?;
        }
        let by_assignee = Index::<Arc<str>>::load(input)?;
        let end = tickets.next_number();
        let within = |set: &NumberSet| set.last().is_none_or(|last| last < end);
        complete &= by_status.iter().chain(&by_priority).all(within)
            && by_assignee.iter().all(|(_, set)| within(set));
        complete &= words.iter().all(|(_, set)| within(set));
        if !complete {
            return Err(input.invalid("an index names a ticket the table does not hold"));
        }
        Ok(Self {
            keeps_history,
            tickets,
            by_status,
            by_priority,
            by_assignee,
            words,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warming_changes_nothing_and_takes_any_id() {
        let mut view = TicketsView::new(true);
        let at = Stamp {
            position: 1,
            recorded_at_ms: 0,
        };
        for n in 0..100 {
            view.open(
                format!("t-{n}").into(),
                "Printer on fire".into(),
                None,
                "ann".into(),
                Priority::High,
                at,
            )
            .unwrap();
        }
        view.comment("t-3", Uuid::from_u128(1), "bob", "On it".into(), at)
            .unwrap();
        let before = view.clone();
        let ids: Vec<String> = (0..50).map(|n| format!("t-{}", n * 3)).collect();
        view.warm(
            ids.iter()
                .map(String::as_str)
                .chain(["", "t-999", "ticket-t-1"]),
        );
        TicketsView::new(false).warm(["t-1"].into_iter());
        assert!(view == before);
        assert_eq!(view.ticket("t-3").unwrap().comments.len(), 1);
    }
}
