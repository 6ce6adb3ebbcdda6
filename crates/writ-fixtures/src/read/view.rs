//! [`CountersView`]: every counter, with its status history from projection version 2 on,
//! built of `writ_query`'s [collections](writ_query::collections): a [`Table`] of counters
//! keyed by id, a [`NumberSet`] per status, an [`Index`] by owner, and a [`List`] of
//! status changes per counter.

use std::sync::Arc;

use writ_query::ApplyError;
use writ_query::collections::{Index, List, NumberSet, Row, Selection, Table};
use writ_query::paging::{Page, PageRequest};

/// Where a counter stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Created or reopened, not closed since.
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

/// When something happened: the event's position and its `recordedAt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The event's position in the global log.
    pub position: u64,
    /// When its command was recorded (ms since the Unix epoch).
    pub recorded_at_ms: u64,
}

/// A change of a counter's status: created, closed, reopened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    /// The status from then on.
    pub status: Status,
    /// When.
    pub at: Stamp,
    /// The reason a close gave, if any.
    pub reason: Option<Arc<str>>,
}

/// One counter as the read model keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    /// Its place in creation order (0, 1, 2, ...): what the indexes hold.
    pub number: u64,
    /// Its id.
    pub id: Arc<str>,
    /// What it counts.
    pub title: Arc<str>,
    /// Who owns it.
    pub owner: Arc<str>,
    /// Where it stands.
    pub status: Status,
    /// Its value.
    pub value: u64,
    /// How many `Added` events it had.
    pub additions: u64,
    /// Its status changes, oldest first, starting with its creation. Kept from projection
    /// version 2 on; empty under version 1.
    pub history: List<StatusChange>,
    /// When it was created.
    pub created: Stamp,
    /// When any of its events was last recorded.
    pub updated: Stamp,
}

impl Row for Counter {
    fn key(&self) -> &str {
        &self.id
    }
}

/// A listing's filter: every given criterion must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CounterFilter {
    /// Only counters with this status.
    pub status: Option<Status>,
    /// Only counters of this owner (exact match).
    pub owner: Option<String>,
}

/// The counters read model. See the [module documentation](super) for the queries over
/// it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountersView {
    keeps_history: bool,
    counters: Table<Counter>,
    /// By status: an array indexed by the enum, no hashing.
    by_status: [NumberSet; 2],
    by_owner: Index<Arc<str>>,
}

impl CountersView {
    /// An empty read model; `keeps_history` is projection version 2's status history.
    pub fn new(keeps_history: bool) -> Self {
        Self {
            keeps_history,
            counters: Table::new(),
            by_status: Default::default(),
            by_owner: Index::new(),
        }
    }

    /// Whether status changes are kept (projection version 2 and later).
    pub fn keeps_history(&self) -> bool {
        self.keeps_history
    }

    /// The counter `id`.
    pub fn counter(&self, id: &str) -> Option<&Counter> {
        self.counters.get(id)
    }

    /// Every counter, in creation order.
    pub fn counters(&self) -> impl Iterator<Item = &Counter> {
        self.counters.rows()
    }

    /// How many counters there are.
    pub fn len(&self) -> usize {
        self.counters.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.counters.is_empty()
    }

    /// How many counters have this status.
    pub fn count(&self, status: Status) -> usize {
        self.by_status[status.index()].len()
    }

    /// How many owners have counters.
    pub fn owners(&self) -> usize {
        self.by_owner.len()
    }

    /// A page of the counters matching `filter`, in creation order (or its reverse, as
    /// `request` asks).
    pub fn list(&self, filter: &CounterFilter, request: &PageRequest) -> Page<&Counter> {
        let mut selection = Selection::all();
        if let Some(status) = filter.status {
            selection.and(&self.by_status[status.index()]);
        }
        if let Some(owner) = &filter.owner {
            selection.and(self.by_owner.get(owner.as_str()));
        }
        self.counters.page(&selection, request)
    }

    // ----- changes, one per event; each checks before it changes anything -----

    /// Counter `id` for a change: its number and a unique (copied if shared) counter.
    fn counter_mut(&mut self, id: &str, at: Stamp) -> Result<(u64, &mut Counter), ApplyError> {
        let number = self
            .counters
            .number(id)
            .ok_or_else(|| ApplyError::Inconsistent {
                detail: format!("no counter `{id}` was created"),
            })?;
        let counter = self
            .counters
            .row_mut(number)
            .expect("numbers are given to created counters");
        counter.updated = at;
        Ok((number, counter))
    }

    pub(crate) fn create(
        &mut self,
        id: &str,
        title: &str,
        owner: &str,
        start: u64,
        at: Stamp,
    ) -> Result<(), ApplyError> {
        if self.counters.contains_key(id) {
            return Err(ApplyError::Inconsistent {
                detail: format!("counter `{id}` was already created"),
            });
        }
        let number = self.counters.next_number();
        let mut history = List::new();
        if self.keeps_history {
            history.push(StatusChange {
                status: Status::Open,
                at,
                reason: None,
            });
        }
        let owner: Arc<str> = Arc::from(owner);
        let counter = Counter {
            number,
            id: Arc::from(id),
            title: Arc::from(title),
            owner: Arc::clone(&owner),
            status: Status::Open,
            value: start,
            additions: 0,
            history,
            created: at,
            updated: at,
        };
        self.by_status[Status::Open.index()].insert_new(number);
        self.by_owner.insert(owner, number);
        let inserted = self.counters.insert(counter);
        debug_assert_eq!(inserted.ok(), Some(number), "checked above");
        Ok(())
    }

    /// Adds `amount` (`Added` when `counted`, a transfer in otherwise).
    pub(crate) fn add(
        &mut self,
        id: &str,
        amount: u64,
        counted: bool,
        at: Stamp,
    ) -> Result<(), ApplyError> {
        let (_, counter) = self.counter_mut(id, at)?;
        counter.value = counter.value.saturating_add(amount);
        counter.additions += u64::from(counted);
        Ok(())
    }

    pub(crate) fn subtract(&mut self, id: &str, amount: u64, at: Stamp) -> Result<(), ApplyError> {
        let (_, counter) = self.counter_mut(id, at)?;
        counter.value = counter.value.saturating_sub(amount);
        Ok(())
    }

    /// Closes (with its reason) or reopens a counter. Like the domain's state, it trusts
    /// the log: closing a closed counter is recorded, not refused.
    pub(crate) fn set_status(
        &mut self,
        id: &str,
        status: Status,
        reason: Option<&str>,
        at: Stamp,
    ) -> Result<(), ApplyError> {
        let keeps_history = self.keeps_history;
        let (number, counter) = self.counter_mut(id, at)?;
        let previous = std::mem::replace(&mut counter.status, status);
        if keeps_history {
            counter.history.push(StatusChange {
                status,
                at,
                reason: reason.map(Arc::from),
            });
        }
        if previous != status {
            self.by_status[previous.index()].remove(number);
            self.by_status[status.index()].insert(number);
        }
        Ok(())
    }
}
