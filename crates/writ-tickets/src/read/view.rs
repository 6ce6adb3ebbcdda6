//! The tickets read model: every ticket with its comments and status history, and the
//! indexes the queries use. Collections are persistent (`imbl` maps, [`Radix`] vectors
//! of tickets and id slots, [`TicketSet`]s of ticket numbers, and [`List`]s of comments
//! and status changes); tickets and each ticket's sorted word list sit behind `Arc`s. So
//! a clone (a published snapshot) costs a few reference counts, and a change after it
//! copies only what it touches.
//!
//! Replaying the log is mostly waiting for memory: a million events over 100k tickets
//! touch the tickets in turn, and a read model of a few hundred MiB does not fit in the
//! cache. So the structures keep each event's lookups few and small: an event finds its
//! ticket through a table of 64-bit slots (no strings) and a vector indexed by number,
//! a ticket's word list compares short words inline, small index sets are inline, and
//! [`TicketsView::warm`] runs the lookups of the next events side by side before they
//! are applied one by one.

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use imbl::{HashMap, Vector};
use uuid::Uuid;
use writ_query::ApplyError;

use super::set::{Radix, TicketSet};
use super::text::{each_token, tokens};
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

/// The most items a [`List`] chunk holds.
const LIST_CHUNK: usize = 8;

/// A persistent list that only grows at the end: a ticket's comments or status changes.
///
/// Items sit by value in chunks of up to 8: full chunks are shared, never changed again,
/// in a persistent vector; the last, growing chunk is a small `Vec` behind an `Arc`. So a
/// clone costs two reference counts, an append copies at most one chunk (the first append
/// after a snapshot, to leave the snapshot's chunk alone), and a ticket with a few
/// comments holds them in one small allocation, without a pointer and an allocation per
/// comment.
///
/// Read it with [`List::iter`] (or `for item in &list`), [`List::len`] and [`List::last`].
#[derive(Clone)]
pub struct List<T> {
    /// Full chunks of `LIST_CHUNK` items, oldest first.
    full: Vector<Arc<Vec<T>>>,
    /// The newest items, fewer than `LIST_CHUNK`; `None` when there are none.
    tail: Option<Arc<Vec<T>>>,
    len: usize,
}

impl<T> List<T> {
    /// An empty list (allocates nothing).
    pub fn new() -> Self {
        Self {
            full: Vector::new(),
            tail: None,
            len: 0,
        }
    }

    /// How many items it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The newest item.
    pub fn last(&self) -> Option<&T> {
        match &self.tail {
            Some(tail) => tail.last(),
            None => self.full.last().and_then(|chunk| chunk.last()),
        }
    }

    /// Reads the newest item with `read` (see [`TicketsView::warm`]).
    fn touch(&self, read: impl Fn(&T) -> usize) -> usize {
        self.tail
            .as_ref()
            .and_then(|tail| tail.last())
            .map_or(0, read)
    }

    /// The items, oldest first.
    pub fn iter(&self) -> ListIter<'_, T> {
        ListIter {
            chunks: self.full.iter(),
            tail: self.tail.as_deref(),
            current: [].iter(),
        }
    }
}

impl<T: Clone> List<T> {
    /// Appends `item`. Copies the last chunk (at most 7 items) first when a snapshot
    /// shares it.
    pub(crate) fn push(&mut self, item: T) {
        let tail = self
            .tail
            .get_or_insert_with(|| Arc::new(Vec::with_capacity(2)));
        let items = Arc::make_mut(tail);
        if items.len() == items.capacity() {
            // Double, up to the chunk: 2, 4, 8 items.
            items.reserve_exact(items.len().clamp(1, LIST_CHUNK - items.len()));
        }
        items.push(item);
        self.len += 1;
        if items.len() == LIST_CHUNK {
            let full = self.tail.take().expect("just pushed to it");
            self.full.push_back(full);
        }
    }
}

impl<T> Default for List<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: fmt::Debug> fmt::Debug for List<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: PartialEq> PartialEq for List<T> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<T: Eq> Eq for List<T> {}

impl<'a, T> IntoIterator for &'a List<T> {
    type Item = &'a T;
    type IntoIter = ListIter<'a, T>;

    fn into_iter(self) -> ListIter<'a, T> {
        self.iter()
    }
}

/// The items of a [`List`], oldest first.
pub struct ListIter<'a, T> {
    chunks: imbl::vector::Iter<'a, Arc<Vec<T>>, imbl::shared_ptr::DefaultSharedPtr>,
    tail: Option<&'a Vec<T>>,
    current: std::slice::Iter<'a, T>,
}

impl<T> fmt::Debug for ListIter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListIter").finish_non_exhaustive()
    }
}

impl<'a, T> Iterator for ListIter<'a, T> {
    type Item = &'a T;

    fn next(&mut self) -> Option<&'a T> {
        loop {
            if let Some(item) = self.current.next() {
                return Some(item);
            }
            self.current = match self.chunks.next() {
                Some(chunk) => chunk.iter(),
                None => self.tail.take()?.iter(),
            };
        }
    }
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
    words: Arc<Vec<Word>>,
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
        self.words.iter().map(Word::as_str)
    }
}

/// The most words of a ticket's word list [`TicketsView::warm`] reads: all of a list of up
/// to 16 words (24 bytes each, 6 cache lines), an even sample of a longer one.
const WARM_WORDS: usize = 16;

/// The longest word a ticket's word list keeps inline.
const WORD_INLINE_MAX: usize = 22;

/// A word of a ticket's word list: inline when short (most are), so that searching the
/// list compares bytes in the list itself; otherwise the text index's key, shared.
#[derive(Clone)]
enum Word {
    Inline {
        len: u8,
        bytes: [u8; WORD_INLINE_MAX],
    },
    Shared(Arc<str>),
}

impl Word {
    fn new(word: &str, key: &Arc<str>) -> Self {
        if word.len() <= WORD_INLINE_MAX {
            let mut bytes = [0; WORD_INLINE_MAX];
            bytes[..word.len()].copy_from_slice(word.as_bytes());
            Self::Inline {
                len: word.len() as u8,
                bytes,
            }
        } else {
            Self::Shared(Arc::clone(key))
        }
    }

    /// UTF-8 bytes, whose order is the order of the strings.
    fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Self::Shared(word) => word.as_bytes(),
        }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).expect("made from a str")
    }

    /// Orders this word against `token` (whose [`word_key`] is `key`) as strings are
    /// ordered, comparing two integers rather than calling `memcmp` for short words.
    fn cmp_token(&self, key: (u128, u64), token: &[u8]) -> std::cmp::Ordering {
        let own = match self {
            Self::Inline { bytes, .. } => inline_key(bytes),
            Self::Shared(word) => word_key(word.as_bytes()),
        };
        match own.cmp(&key) {
            // Equal keys: the same first 22 bytes. Tokens hold no NUL, so two words of
            // up to 22 bytes are then the same; longer ones are told apart by the rest.
            std::cmp::Ordering::Equal
                if matches!(self, Self::Shared(_)) || token.len() > WORD_INLINE_MAX =>
            {
                self.as_bytes().cmp(token)
            }
            order => order,
        }
    }
}

/// The first 22 bytes of a word as two big-endian integers, padded with zeros: for words
/// without NUL (tokens have none), their order is the order of the words' first 22 bytes.
fn word_key(word: &[u8]) -> (u128, u64) {
    let mut bytes = [0u8; WORD_INLINE_MAX];
    let len = word.len().min(WORD_INLINE_MAX);
    bytes[..len].copy_from_slice(&word[..len]);
    inline_key(&bytes)
}

/// [`word_key`] of an inline word, whose bytes past its length are zeros: a few moves,
/// no copy of a length known only at run time.
fn inline_key(bytes: &[u8; WORD_INLINE_MAX]) -> (u128, u64) {
    let (high, rest) = bytes.split_at(16);
    let mut low = [0u8; 8];
    low[..WORD_INLINE_MAX - 16].copy_from_slice(rest);
    (
        u128::from_be_bytes(high.try_into().expect("16 bytes")),
        u64::from_be_bytes(low),
    )
}

impl PartialEq for Word {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Word {}

impl fmt::Debug for Word {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
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
#[derive(Clone)]
pub struct TicketsView {
    keeps_history: bool,
    /// Ticket id → number. Changed only when a ticket is opened: other events only look
    /// it up, which copies nothing after a snapshot.
    numbers: IdIndex,
    /// Ticket number → ticket: creation order.
    tickets: Radix<Arc<Ticket>>,
    by_status: [NumberSet; 2],
    by_priority: [NumberSet; 4],
    by_assignee: HashMap<Arc<str>, NumberSet>,
    /// The text index: lowercased token → tickets whose title or comments hold it.
    words: HashMap<Arc<str>, NumberSet>,
}

/// Two views are equal when they hold the same tickets and indexes (the id index follows
/// from the tickets).
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
            numbers: IdIndex::default(),
            tickets: Radix::default(),
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
        let number = self.numbers.get(id, |n| &self.tickets[index(n)].id)?;
        Some(self.ticket_numbered(number))
    }

    /// Every ticket, in creation order.
    pub fn tickets(&self) -> impl Iterator<Item = &Arc<Ticket>> {
        self.tickets.iter()
    }

    fn ticket_numbered(&self, number: u64) -> &Arc<Ticket> {
        &self.tickets[index(number)]
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
                (self.len(), Box::new(first..self.len() as u64))
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

    /// Reads the parts of the view that events about tickets `ids` (in order, at most 32
    /// of them are used) will change, stage by stage for all of them: their slots in the
    /// id index, their places in the ticket vector, the tickets, then what the tickets
    /// point to (id, word list, last comments). The reads of one stage are independent,
    /// so the processor keeps many in flight; when the events are then applied one by
    /// one, their lookups hit the cache instead of waiting for memory in turn. Changes
    /// nothing; unknown ids are skipped. See [`Projection::warm`](writ_query::Projection::warm).
    pub(crate) fn warm<'a>(&self, ids: impl Iterator<Item = &'a str>) {
        const MAX: usize = 32;
        let mut tags = [0u32; MAX];
        let mut count = 0;
        // What was read, so that the reads are not optimized away.
        let mut sink = 0usize;
        for id in ids.take(MAX) {
            tags[count] = self.numbers.tag(id);
            sink ^= self.numbers.first_slot(tags[count]) as usize;
            count += 1;
        }
        let mut tickets: [Option<&Arc<Ticket>>; MAX] = [None; MAX];
        for (tag, ticket) in tags[..count].iter().zip(&mut tickets) {
            *ticket = self
                .numbers
                .number_tagged(*tag)
                .and_then(|number| self.tickets.get(index(number)));
            sink ^= ticket.map_or(0, |t| Arc::as_ptr(t) as usize);
        }
        for ticket in tickets[..count].iter().flatten() {
            sink ^= ticket.id.len() ^ ticket.updated.position as usize;
            sink ^= Arc::as_ptr(&ticket.words) as usize;
        }
        for ticket in tickets[..count].iter().flatten() {
            sink ^= usize::from(ticket.id.as_bytes().first().copied().unwrap_or(0));
            // All of a short list; an even sample of a long one, which brings in part of
            // what a binary search of it will touch.
            let words = &ticket.words;
            let step = words.len().div_ceil(WARM_WORDS).max(1);
            for word in words.iter().step_by(step) {
                sink ^= word.as_bytes().len();
            }
            sink ^= ticket
                .comments
                .touch(|comment| comment.at.position as usize);
        }
        std::hint::black_box(sink);
    }

    // ----- changes, one per event; each checks before it changes anything -----

    /// The number of ticket `id`, which must have been opened.
    fn number(&self, id: &str) -> Result<u64, ApplyError> {
        self.numbers
            .get(id, |n| &self.tickets[index(n)].id)
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
        if self
            .numbers
            .get(&id, |n| &self.tickets[index(n)].id)
            .is_some()
        {
            return Err(ApplyError::Inconsistent {
                detail: format!("ticket `{id}` was already opened"),
            });
        }
        let number = self.tickets.len() as u64;
        let mut history = List::new();
        if self.keeps_history {
            history.push(StatusChange {
                status: Status::Open,
                at,
                note: None,
            });
        }
        let mut words = Arc::new(Vec::new());
        index_text(&mut self.words, &mut words, number, &title);
        let ticket = Ticket {
            number,
            id: Arc::clone(&id),
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
        let tickets = &self.tickets;
        self.numbers.insert(&id, number, |n| &tickets[index(n)].id);
        self.tickets.push(Arc::new(ticket));
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
        text: Arc<str>,
        at: Stamp,
    ) -> Result<(), ApplyError> {
        // Not `ticket_mut`: the ticket and the word index are borrowed side by side.
        let number = self.number(id)?;
        let ticket = ticket_mut(&mut self.tickets, number);
        ticket.updated = at;
        let author = ticket.known_name(author);
        index_text(&mut self.words, &mut ticket.words, number, &text);
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

/// Ticket ids → numbers, kept small for the lookup every event makes: a persistent hash
/// table (open addressing, linear probing) of 64-bit slots, each a 32-bit tag from a
/// SipHash of the id (with this index's random keys) and a ticket number. The ticket's own
/// `id` confirms a matching tag, so the table holds no strings: a lookup reads one slot
/// (one node of the vector, usually) and the ticket it finds, and a table of a million
/// tickets takes 16 MiB at most. It doubles when half full, rebuilt from the tags alone.
/// Numbers past `u32::MAX` go to a map by id.
#[derive(Clone, Default)]
struct IdIndex<S = RandomState> {
    hasher: S,
    /// `tag << 32 | number`; 0 is empty (a tag always has its top bit set). The length is
    /// 0 or a power of two.
    slots: Radix<u64>,
    len: usize,
    large: HashMap<Arc<str>, u64>,
}

/// The first size of the table.
const ID_SLOTS_MIN: usize = 64;

impl<S: BuildHasher> IdIndex<S> {
    fn tag(&self, id: &str) -> u32 {
        (self.hasher.hash_one(id) >> 32) as u32 | 0x8000_0000
    }

    /// The first slot a lookup of `tag` reads (0 when the table is empty).
    fn first_slot(&self, tag: u32) -> u64 {
        if self.slots.is_empty() {
            return 0;
        }
        self.slots[tag as usize & (self.slots.len() - 1)]
    }

    /// The number in the first slot with `tag`: the ticket of an id with that tag, most
    /// probably (an id with the same tag may come first). For [`TicketsView::warm`].
    fn number_tagged(&self, tag: u32) -> Option<u64> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut at = tag as usize & mask;
        loop {
            let slot = self.slots[at];
            if slot == 0 {
                return None;
            }
            if (slot >> 32) as u32 == tag {
                return Some(slot & u64::from(u32::MAX));
            }
            at = (at + 1) & mask;
        }
    }

    /// The number of ticket `id`, if it was opened; `id_of` gives the id of a ticket.
    fn get<'t>(&self, id: &str, id_of: impl Fn(u64) -> &'t str) -> Option<u64> {
        if !self.slots.is_empty() {
            let tag = self.tag(id);
            let mask = self.slots.len() - 1;
            let mut at = tag as usize & mask;
            loop {
                let slot = self.slots[at];
                if slot == 0 {
                    break;
                }
                let number = slot & u64::from(u32::MAX);
                if (slot >> 32) as u32 == tag && id_of(number) == id {
                    return Some(number);
                }
                at = (at + 1) & mask;
            }
        }
        if self.large.is_empty() {
            None
        } else {
            self.large.get(id).copied()
        }
    }

    /// Records that ticket `id`, not there yet, is ticket `number`.
    fn insert<'t>(&mut self, id: &Arc<str>, number: u64, id_of: impl Fn(u64) -> &'t str) {
        debug_assert!(self.get(id, id_of).is_none(), "ticket {id} is new");
        if number > u64::from(u32::MAX) {
            self.large.insert(Arc::clone(id), number);
            return;
        }
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let tag = self.tag(id);
        let mask = self.slots.len() - 1;
        let mut at = tag as usize & mask;
        while self.slots[at] != 0 {
            at = (at + 1) & mask;
        }
        *self.slots.get_mut(at).expect("a slot of the table") = u64::from(tag) << 32 | number;
        self.len += 1;
    }

    /// Doubles the table, placing each entry anew by its tag.
    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(ID_SLOTS_MIN);
        let mask = size - 1;
        let mut slots = vec![0u64; size];
        for &slot in self.slots.iter().filter(|slot| **slot != 0) {
            let mut at = (slot >> 32) as usize & mask;
            while slots[at] != 0 {
                at = (at + 1) & mask;
            }
            slots[at] = slot;
        }
        self.slots = Radix::from_vec(slots);
    }
}

fn index(number: u64) -> usize {
    usize::try_from(number).expect("ticket numbers index the tickets")
}

/// Ticket `number` (which exists), unique: copied first if a snapshot shares it.
fn ticket_mut(tickets: &mut Radix<Arc<Ticket>>, number: u64) -> &mut Ticket {
    let ticket = tickets
        .get_mut(index(number))
        .expect("numbers are given to opened tickets");
    Arc::make_mut(ticket)
}

/// Indexes `text` for ticket `number`: each token the ticket does not have yet joins its
/// sorted `words` and puts the ticket in the shared index under it. Long words in the
/// ticket's list share the index's key, so they are stored once.
fn index_text(
    index: &mut HashMap<Arc<str>, NumberSet>,
    words: &mut Arc<Vec<Word>>,
    number: u64,
    text: &str,
) {
    each_token(text, |token| {
        let key = word_key(token.as_bytes());
        let Err(at) = words.binary_search_by(|word| word.cmp_token(key, token.as_bytes())) else {
            return;
        };
        let word = match index.get_key_value_mut(token) {
            Some((key, set)) => {
                set.insert_new(number);
                Word::new(token, key)
            }
            None => {
                let key: Arc<str> = Arc::from(token);
                let word = Word::new(token, &key);
                index.insert(key, TicketSet::unit(number));
                word
            }
        };
        Arc::make_mut(words).insert(at, word);
    });
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_list_appends_across_chunks_and_its_clones_keep_their_items() {
        let mut list = List::new();
        let mut kept = Vec::new();
        for i in 0..40u32 {
            if i % 7 == 0 {
                kept.push(list.clone());
            }
            list.push(i);
            assert_eq!((list.len(), list.last()), (i as usize + 1, Some(&i)));
        }
        assert_eq!(
            list.iter().copied().collect::<Vec<_>>(),
            (0..40).collect::<Vec<_>>()
        );
        for (n, clone) in kept.iter().enumerate() {
            let len = n as u32 * 7;
            assert_eq!(
                clone.iter().copied().collect::<Vec<_>>(),
                (0..len).collect::<Vec<_>>()
            );
            assert_eq!(clone.len(), len as usize);
        }
        let mut other = List::new();
        for i in 0..40u32 {
            other.push(i);
        }
        assert_eq!(other, list);
        assert_eq!((&list).into_iter().count(), 40);
        assert!(List::<u32>::new().is_empty() && List::<u32>::new().last().is_none());
    }

    /// Every id gets the same tag: every lookup must tell tickets apart by their ids.
    #[derive(Clone, Default)]
    struct OneTag;

    struct Constant;

    impl std::hash::Hasher for Constant {
        fn finish(&self) -> u64 {
            7 << 40
        }
        fn write(&mut self, _: &[u8]) {}
    }

    impl BuildHasher for OneTag {
        type Hasher = Constant;
        fn build_hasher(&self) -> Constant {
            Constant
        }
    }

    #[test]
    fn the_id_index_tells_apart_ids_with_the_same_tag_and_grows() {
        let ids: Vec<Arc<str>> = (0..300).map(|n| Arc::from(format!("t-{n}"))).collect();
        let mut index = IdIndex::<OneTag>::default();
        for (n, id) in ids.iter().enumerate() {
            let id_of = |n: u64| &*ids[n as usize];
            index.insert(id, n as u64, id_of);
            assert_eq!(index.get(id, id_of), Some(n as u64));
        }
        let id_of = |n: u64| &*ids[n as usize];
        for (n, id) in ids.iter().enumerate() {
            assert_eq!(index.get(id, id_of), Some(n as u64));
        }
        assert_eq!(index.get("t-300", id_of), None);
        assert!(index.slots.len() >= 600 && index.slots.len().is_power_of_two());
        // A clone keeps its entries while the original grows.
        let before = index.clone();
        let more: Arc<str> = Arc::from("t-big");
        let big = u64::from(u32::MAX) + 5;
        index.insert(&more, big, |n| {
            if n == big { "t-big" } else { &*ids[n as usize] }
        });
        assert_eq!(
            index.get("t-big", |n| if n == big {
                "t-big"
            } else {
                &*ids[n as usize]
            }),
            Some(big)
        );
        assert_eq!(before.get("t-big", id_of), None);
        assert_eq!(before.get("t-299", id_of), Some(299));
    }

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

    proptest! {
        #[test]
        fn words_order_as_strings(
            a in "[a-z0-9é]{0,30}",
            b in "[a-z0-9é]{0,30}",
            shared in "[a-z]{21,24}",
        ) {
            for (x, y) in [(&a, &b), (&a, &shared), (&shared, &b), (&shared, &shared)] {
                let word = Word::new(x, &Arc::from(x.as_str()));
                prop_assert_eq!(
                    word.cmp_token(word_key(y.as_bytes()), y.as_bytes()),
                    x.as_str().cmp(y.as_str()),
                    "{} vs {}", x, y
                );
                prop_assert_eq!(word.as_str(), x.as_str());
            }
        }
    }
}
