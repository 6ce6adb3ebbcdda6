//! The tickets read model: every ticket with its comments and status history, and the
//! indexes the queries use. Collections are persistent (`imbl` maps and vectors, and
//! [`TicketSet`]s of ticket numbers); tickets, comments and each ticket's sorted word list
//! sit behind `Arc`s. So a clone (a published snapshot) costs a few reference counts, and a
//! change after it copies only what it touches.

use std::fmt;
use std::sync::Arc;

use imbl::{HashMap, Vector};
use uuid::Uuid;
use writ_query::ApplyError;

use super::set::TicketSet;
use super::text::tokens;
use crate::Priority;

/// A set of ticket numbers (see [`Ticket::number`]), in creation order.
type NumberSet = TicketSet;

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
    /// Its comments, oldest first. Behind `Arc`s so that the vector's nodes stay small
    /// (`imbl` nodes hold 64 elements) and a ticket with a few comments keeps them inline.
    pub comments: Vector<Arc<Comment>>,
    /// Its status changes, oldest first, starting with the opening. Kept from projection
    /// version 2 on; empty under version 1.
    pub history: Vector<Arc<StatusChange>>,
    /// When it was opened.
    pub created: Stamp,
    /// When any of its events was last recorded.
    pub updated: Stamp,
    /// The tokens of its title and comments, sorted (see [`Ticket::words`]).
    words: Arc<Vec<Arc<str>>>,
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

    /// The tokens of its title and comments (see [`tokens`](super::tokens)), sorted: the
    /// words the text index lists it under. Kept with the ticket, in one small sorted
    /// array, so that indexing a comment probes the shared index only for words new to
    /// this ticket.
    pub fn words(&self) -> &[Arc<str>] {
        &self.words
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
    pub items: Vec<&'a Arc<Ticket>>,
    /// How many tickets match in all (all pages).
    pub total: usize,
    /// The number of the last item when more tickets match after it: the next page
    /// starts after it.
    pub next_after: Option<u64>,
}

/// The tickets read model. See the [module documentation](super) for the queries over it.
#[derive(Clone, PartialEq, Eq)]
pub struct TicketsView {
    keeps_history: bool,
    /// Ticket id → ticket: one hash probe per event.
    tickets: HashMap<Arc<str>, Arc<Ticket>>,
    /// Ticket number → id, in creation order.
    order: Vector<Arc<str>>,
    by_status: [NumberSet; 2],
    by_priority: [NumberSet; 4],
    by_assignee: HashMap<Arc<str>, NumberSet>,
    /// The text index: lowercased token → tickets whose title or comments hold it.
    words: HashMap<Arc<str>, NumberSet>,
}

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
            tickets: HashMap::new(),
            order: Vector::new(),
            by_status: Default::default(),
            by_priority: Default::default(),
            by_assignee: HashMap::new(),
            words: HashMap::new(),
        }
    }

    /// Whether status changes are kept (projection version 2 and later).
    pub fn keeps_history(&self) -> bool {
        self.keeps_history
    }

    /// The ticket `id`.
    pub fn ticket(&self, id: &str) -> Option<&Arc<Ticket>> {
        self.tickets.get(id)
    }

    /// Every ticket, in creation order.
    pub fn tickets(&self) -> impl Iterator<Item = &Arc<Ticket>> {
        self.order.iter().map(|id| &self.tickets[id])
    }

    fn ticket_numbered(&self, number: u64) -> &Arc<Ticket> {
        let id = &self.order[usize::try_from(number).expect("numbers index the order")];
        &self.tickets[id]
    }

    /// How many tickets there are.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
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
    /// order, at most `limit`, with the total count of matches.
    ///
    /// Each criterion is an index set (numbers in order); the smallest drives the walk and
    /// the others are probed (O(log n) each). A page costs O(limit · criteria · log n)
    /// plus, with two criteria or more, one walk of the smallest set for the total.
    pub fn search(
        &self,
        filter: &TicketFilter,
        after: Option<u64>,
        limit: usize,
    ) -> SearchPage<'_> {
        let empty = SearchPage {
            items: Vec::new(),
            total: 0,
            next_after: None,
        };
        let mut sets: Vec<&NumberSet> = Vec::new();
        if let Some(status) = filter.status {
            sets.push(&self.by_status[status.index()]);
        }
        if let Some(priority) = filter.priority {
            sets.push(&self.by_priority[priority_index(priority)]);
        }
        if let Some(assignee) = &filter.assignee {
            match self.by_assignee.get(assignee.as_str()) {
                Some(set) => sets.push(set),
                None => return empty,
            }
        }
        if let Some(text) = &filter.text {
            for token in tokens(text) {
                match self.words.get(token.as_ref()) {
                    Some(set) => sets.push(set),
                    None => return empty,
                }
            }
        }
        // A token given twice finds the same set: probe it once.
        let mut unique: Vec<&NumberSet> = Vec::with_capacity(sets.len());
        for set in sets {
            if !unique.iter().any(|seen| std::ptr::eq(*seen, set)) {
                unique.push(set);
            }
        }
        let mut sets = unique;
        sets.sort_by_key(|set| set.len());
        let (total, mut numbers): (usize, Box<dyn Iterator<Item = u64>>) = match sets.split_first()
        {
            None => {
                let first = after.map_or(0, |n| n.saturating_add(1));
                (self.order.len(), Box::new(first..self.order.len() as u64))
            }
            Some((driver, [])) => (driver.len(), Box::new(driver.iter_after(after))),
            Some((driver, rest)) => {
                let matches = move |n: &u64| rest.iter().all(|set| set.contains(*n));
                let total = driver.iter_after(None).filter(matches).count();
                (total, Box::new(driver.iter_after(after).filter(matches)))
            }
        };
        let items: Vec<&Arc<Ticket>> = numbers
            .by_ref()
            .take(limit)
            .map(|n| self.ticket_numbered(n))
            .collect();
        let next_after = match items.last() {
            Some(last) if numbers.next().is_some() => Some(last.number),
            _ => None,
        };
        SearchPage {
            items,
            total,
            next_after,
        }
    }

    // ----- changes, one per event; each checks before it changes anything -----

    /// The ticket `id` for a change: its number and a unique (copied if shared) ticket.
    fn ticket_mut(&mut self, id: &str) -> Result<(u64, &mut Ticket), ApplyError> {
        let ticket = self
            .tickets
            .get_mut(id)
            .ok_or_else(|| ApplyError::Inconsistent {
                detail: format!("no ticket `{id}` was opened"),
            })?;
        let ticket = Arc::make_mut(ticket);
        Ok((ticket.number, ticket))
    }

    pub(crate) fn open(
        &mut self,
        id: &str,
        title: &str,
        description: Option<&str>,
        reporter: &str,
        priority: Priority,
        at: Stamp,
    ) -> Result<(), ApplyError> {
        if self.tickets.contains_key(id) {
            return Err(ApplyError::Inconsistent {
                detail: format!("ticket `{id}` was already opened"),
            });
        }
        let number = self.order.len() as u64;
        let id: Arc<str> = Arc::from(id);
        let mut history = Vector::new();
        if self.keeps_history {
            history.push_back(Arc::new(StatusChange {
                status: Status::Open,
                at,
                note: None,
            }));
        }
        let mut words = Arc::new(Vec::new());
        index_text(&mut self.words, &mut words, number, title);
        let ticket = Ticket {
            number,
            id: Arc::clone(&id),
            title: Arc::from(title),
            description: description.map(Arc::from),
            reporter: Arc::from(reporter),
            priority,
            status: Status::Open,
            assignee: None,
            comments: Vector::new(),
            history,
            created: at,
            updated: at,
            words,
        };
        self.by_status[Status::Open.index()].insert(number);
        self.by_priority[priority_index(priority)].insert(number);
        self.order.push_back(Arc::clone(&id));
        self.tickets.insert(id, Arc::new(ticket));
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
        if let Some(old) = old
            && let Some(set) = self.by_assignee.get_mut(&old)
        {
            set.remove(number);
            if set.is_empty() {
                self.by_assignee.remove(&old);
            }
        }
        self.by_assignee.entry(new).or_default().insert(number);
        Ok(())
    }

    pub(crate) fn comment(
        &mut self,
        id: &str,
        comment_id: Uuid,
        author: &str,
        text: &str,
        at: Stamp,
    ) -> Result<(), ApplyError> {
        // Not `ticket_mut`: the ticket and the word index are borrowed side by side.
        let ticket = self
            .tickets
            .get_mut(id)
            .ok_or_else(|| ApplyError::Inconsistent {
                detail: format!("no ticket `{id}` was opened"),
            })?;
        let ticket = Arc::make_mut(ticket);
        ticket.updated = at;
        let author = ticket.known_name(author);
        ticket.comments.push_back(Arc::new(Comment {
            id: comment_id,
            author,
            text: Arc::from(text),
            at,
        }));
        index_text(&mut self.words, &mut ticket.words, ticket.number, text);
        Ok(())
    }

    /// Closes (`Status::Closed`, with the resolution) or reopens (`Status::Open`, with the
    /// reason) a ticket. Like the domain's state, it trusts the log: closing a closed
    /// ticket is recorded, not refused.
    pub(crate) fn set_status(
        &mut self,
        id: &str,
        status: Status,
        note: &str,
        at: Stamp,
    ) -> Result<(), ApplyError> {
        let keeps_history = self.keeps_history;
        let (number, ticket) = self.ticket_mut(id)?;
        ticket.updated = at;
        let previous = std::mem::replace(&mut ticket.status, status);
        if keeps_history {
            ticket.history.push_back(Arc::new(StatusChange {
                status,
                at,
                note: Some(Arc::from(note)),
            }));
        }
        if previous != status {
            self.by_status[previous.index()].remove(number);
            self.by_status[status.index()].insert(number);
        }
        Ok(())
    }
}

/// Indexes `text` for ticket `number`: each token the ticket does not have yet joins its
/// sorted `words` and puts the ticket in the shared index under it. The ticket's words
/// borrow the shared index's keys, so each distinct word is stored once.
fn index_text(
    index: &mut HashMap<Arc<str>, NumberSet>,
    words: &mut Arc<Vec<Arc<str>>>,
    number: u64,
    text: &str,
) {
    for token in tokens(text) {
        let Err(at) = words.binary_search_by(|word| word.as_ref().cmp(token.as_ref())) else {
            continue;
        };
        let word = match index.get_key_value_mut(token.as_ref()) {
            Some((key, set)) => {
                set.insert(number);
                Arc::clone(key)
            }
            None => {
                let key: Arc<str> = Arc::from(token.as_ref());
                index.insert(Arc::clone(&key), TicketSet::unit(number));
                key
            }
        };
        Arc::make_mut(words).insert(at, word);
    }
}
