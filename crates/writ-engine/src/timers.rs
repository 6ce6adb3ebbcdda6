//! Pending durable timers: commands processes scheduled for a time.
//!
//! Timers are not stored anywhere of their own. A schedule or cancel is part of the
//! journal record of the command whose event caused it, and a timer that fires becomes a
//! command in the journal (origin `timer`, its id the one scheduled). So the pending set is
//! a fold of the journal: open rebuilds it in the same scan that rebuilds the indexes,
//! and the writer keeps it up to date as it decides (ahead of durability, like its stream
//! states: nothing it does is visible before the sync, and a failed sync stops it).
//!
//! Memory: about 150 bytes per timer plus its command's name and payload; bounded by
//! `EngineOptions::timers_max`, at which the engine refuses new client commands (`503`)
//! until timers fire or are cancelled.

use std::collections::{BTreeSet, HashMap};

use uuid::Uuid;
use writ_domain::Issued;

/// A pending timer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Timer {
    /// The process that scheduled it.
    pub process: Box<str>,
    /// Its key within the process.
    pub key: Box<str>,
    /// When it fires (ms since the Unix epoch).
    pub at_ms: u64,
    /// The command it issues; `command.id` identifies the timer.
    pub command: Issued,
    /// The command whose event scheduled it.
    pub causation_id: Uuid,
    /// That command's chain.
    pub correlation_id: Uuid,
}

/// The pending timers, by key and by time.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    by_id: HashMap<Uuid, (Timer, u64)>,
    by_key: HashMap<(Box<str>, Box<str>), Uuid>,
    /// `(at_ms, order, id)`: the order of scheduling breaks ties, so timers due at the same
    /// time fire in the order they were scheduled, also after a restart.
    due: BTreeSet<(u64, u64, Uuid)>,
    order: u64,
}

impl Timers {
    /// Adds a timer, replacing the pending one of the same process and key.
    pub(crate) fn schedule(&mut self, timer: Timer) {
        self.cancel(&timer.process, &timer.key);
        // A timer's id is derived from the event that scheduled it and its key; the same
        // id pending twice means the same event scheduled it twice: keep the first.
        if self.by_id.contains_key(&timer.command.id) {
            return;
        }
        let order = self.order;
        self.order += 1;
        let id = timer.command.id;
        self.due.insert((timer.at_ms, order, id));
        self.by_key
            .insert((timer.process.clone(), timer.key.clone()), id);
        self.by_id.insert(id, (timer, order));
    }

    /// Forgets the pending timer of `process` and `key`, if any.
    pub(crate) fn cancel(&mut self, process: &str, key: &str) {
        let owned = (Box::<str>::from(process), Box::<str>::from(key));
        if let Some(id) = self.by_key.remove(&owned) {
            self.remove_id(id);
        }
    }

    /// Forgets the timer whose command is `id` (it fired).
    pub(crate) fn fired(&mut self, id: Uuid) {
        if let Some((timer, _)) = self.by_id.get(&id) {
            let key = (timer.process.clone(), timer.key.clone());
            if self.by_key.get(&key) == Some(&id) {
                self.by_key.remove(&key);
            }
            self.remove_id(id);
        }
    }

    fn remove_id(&mut self, id: Uuid) {
        if let Some((timer, order)) = self.by_id.remove(&id) {
            self.due.remove(&(timer.at_ms, order, id));
        }
    }

    /// When the next timer is due.
    pub(crate) fn next_due_ms(&self) -> Option<u64> {
        self.due.first().map(|(at, _, _)| *at)
    }

    /// Takes the first timer due at or before `now_ms`.
    pub(crate) fn pop_due(&mut self, now_ms: u64) -> Option<Timer> {
        let &(at, _, id) = self.due.first()?;
        if at > now_ms {
            return None;
        }
        let (timer, _) = self.by_id.get(&id)?;
        let timer = timer.clone();
        self.fired(id);
        Some(timer)
    }

    /// Takes the first timer due at or before `now_ms` that `take` lets through (a
    /// replay's, see `crate::replay`).
    pub(crate) fn pop_due_where(
        &mut self,
        now_ms: u64,
        take: &dyn Fn(&Timer) -> bool,
    ) -> Option<Timer> {
        let id = self
            .due
            .iter()
            .take_while(|(at, _, _)| *at <= now_ms)
            .map(|(_, _, id)| *id)
            .find(|id| self.by_id.get(id).is_some_and(|(timer, _)| take(timer)))?;
        let timer = self.by_id.get(&id)?.0.clone();
        self.fired(id);
        Some(timer)
    }

    /// Whether the timer of `id` is pending, due at `at_ms`.
    pub(crate) fn is_pending_at(&self, id: Uuid, at_ms: u64) -> bool {
        self.by_id
            .get(&id)
            .is_some_and(|(timer, _)| timer.at_ms == at_ms)
    }

    /// The pending timers in the order they fire: by time, then by order of scheduling.
    pub(crate) fn in_order(&self) -> impl ExactSizeIterator<Item = &Timer> {
        let timers: Vec<&Timer> = self
            .due
            .iter()
            .filter_map(|(_, _, id)| self.by_id.get(id).map(|(timer, _)| timer))
            .collect();
        timers.into_iter()
    }

    /// How many are pending.
    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timer(key: &str, at_ms: u64, id: u128) -> Timer {
        Timer {
            process: "p".into(),
            key: key.into(),
            at_ms,
            command: Issued {
                id: Uuid::from_u128(id),
                command: "C".into(),
                version: None,
                payload: b"{}".to_vec(),
                expected_version: None,
            },
            causation_id: Uuid::from_u128(1),
            correlation_id: Uuid::from_u128(1),
        }
    }

    #[test]
    fn timers_fire_in_time_order_and_keys_replace() {
        let mut timers = Timers::default();
        timers.schedule(timer("a", 20, 1));
        timers.schedule(timer("b", 10, 2));
        timers.schedule(timer("c", 10, 3));
        timers.schedule(timer("a", 30, 4)); // replaces a@20
        assert_eq!(timers.len(), 3);
        assert_eq!(timers.next_due_ms(), Some(10));
        assert_eq!(timers.pop_due(5), None);
        let fired: Vec<u128> = std::iter::from_fn(|| timers.pop_due(25))
            .map(|t| t.command.id.as_u128())
            .collect();
        assert_eq!(fired, [2, 3], "same time: order of scheduling");
        timers.cancel("p", "a");
        assert_eq!(timers.len(), 0);
        assert_eq!(timers.next_due_ms(), None);
    }

    #[test]
    fn a_fired_timer_leaves_a_rescheduled_key_alone() {
        let mut timers = Timers::default();
        timers.schedule(timer("a", 10, 1));
        timers.fired(Uuid::from_u128(7)); // unknown: nothing
        assert_eq!(timers.len(), 1);
        timers.fired(Uuid::from_u128(1));
        assert_eq!(timers.len(), 0);
        timers.schedule(timer("a", 10, 2));
        assert_eq!(timers.len(), 1);
    }
}
