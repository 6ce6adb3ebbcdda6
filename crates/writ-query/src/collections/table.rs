//! [`Table`]: rows numbered in insertion order, found by key, paged by [`Selection`]s of
//! numbers or by a [`SortedIndex`].

use std::fmt;
use std::sync::Arc;

use super::{KeyIndex, KeyTag, NumberSet, Radix, SortedIndex, TextIndex};
use crate::paging::{Cursor, Order, Page, PageRequest};
use crate::snapshot::{Codec, Reader, SnapshotError, Writer};
use crate::text::tokens;

/// A row of a [`Table`]: it knows its key, which never changes while the row is in the
/// table.
///
/// ```
/// use writ_query::collections::Row;
///
/// #[derive(Clone)]
/// struct Counter { id: String, owner: String }
///
/// impl Row for Counter {
///     fn key(&self) -> &str { &self.id }
/// }
/// ```
pub trait Row {
    /// The row's key: unique in its table.
    fn key(&self) -> &str;
}

/// A table of rows: each numbered in insertion order (0, 1, 2, ...), found by its key
/// (a string, the id) or by its number, and listed in pages, oldest or newest first.
///
/// The numbers are what indexes hold ([`Index`](super::Index), [`SortedIndex`],
/// [`TextIndex`], [`NumberSet`]s of one's own): small integers that compare and copy
/// without touching the rows, and whose order is the order rows came in. A removed row's
/// number is never given again; a key removed and inserted again gets a new number, as a
/// new row.
///
/// A clone (a published snapshot) costs a few reference counts: rows sit behind `Arc`s in
/// a [`Radix`] vector, keys in a [`KeyIndex`]. A change after a clone copies the row it
/// changes and one path of small nodes. Looking a row up by key reads one slot of the key
/// index and the row (whose own key confirms it); by number, one node per level of the
/// vector.
///
/// Pages ([`Table::page`]) list the rows of a [`Selection`] (all rows, or those in every
/// one of some sets) by number, so a cursor stays valid across snapshots: oldest first,
/// rows added meanwhile come on later pages; newest first, they are newer than the first
/// page and do not appear. [`Table::page_sorted`] lists by a [`SortedIndex`]'s keys.
///
/// ```
/// use writ_query::collections::{Index, Row, Selection, Table};
/// use writ_query::paging::{Order, PageRequest};
///
/// #[derive(Clone, Debug, PartialEq)]
/// struct Counter { id: String, status: &'static str }
/// impl Row for Counter {
///     fn key(&self) -> &str { &self.id }
/// }
///
/// let mut counters = Table::new();
/// let mut by_status = Index::new();
/// for id in ["c-1", "c-2", "c-3"] {
///     let number = counters.insert(Counter { id: id.into(), status: "open" }).unwrap();
///     by_status.insert("open", number);
/// }
/// // c-2 closes: the row changes, and the index with it.
/// let number = counters.number("c-2").unwrap();
/// counters.row_mut(number).unwrap().status = "closed";
/// by_status.update(number, Some(&"open"), Some("closed"));
///
/// let snapshot = counters.clone();
/// let first = snapshot.page(
///     Selection::all().and(by_status.get("open")),
///     &PageRequest::first(Order::NEWEST_FIRST, 1),
/// );
/// assert_eq!(first.items[0].id, "c-3");
/// assert_eq!(first.total, 2);
/// let rest = snapshot.page(
///     Selection::all().and(by_status.get("open")),
///     &PageRequest::first(Order::NEWEST_FIRST, 1).after(first.next.unwrap()),
/// );
/// assert_eq!((rest.items[0].id.as_str(), rest.next), ("c-1", None));
/// assert_eq!(counters.get("c-2").unwrap().status, "closed");
/// ```
#[derive(Clone)]
pub struct Table<V> {
    keys: KeyIndex,
    /// Row `n` at index `n`; `None` once removed.
    rows: Radix<Option<Arc<V>>>,
    /// Rows not removed.
    len: usize,
}

/// The most keys [`Table::warm`] reads ahead at once.
pub const WARM_KEYS_MAX: usize = 32;

impl<V> Default for Table<V> {
    fn default() -> Self {
        Self {
            keys: KeyIndex::new(),
            rows: Radix::new(),
            len: 0,
        }
    }
}

/// Tables are equal when they hold the same rows under the same numbers (the key index
/// follows from the rows).
impl<V: PartialEq> PartialEq for Table<V> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.rows == other.rows
    }
}

impl<V: Eq> Eq for Table<V> {}

impl<V: fmt::Debug> fmt::Debug for Table<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows = self
            .rows
            .iter()
            .enumerate()
            .filter_map(|(number, row)| Some((number, row.as_deref()?)));
        f.debug_map().entries(rows).finish()
    }
}

fn at(number: u64) -> usize {
    usize::try_from(number).expect("row numbers index the rows")
}

impl<V> Table<V> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many rows it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The number the next row inserted will get: one more than the last given.
    pub fn next_number(&self) -> u64 {
        self.rows.len() as u64
    }

    /// Row `number`, unless there is none or it was removed.
    #[inline]
    pub fn row(&self, number: u64) -> Option<&V> {
        self.rows.get(usize::try_from(number).ok()?)?.as_deref()
    }

    /// Row `number` as the table shares it with its snapshots.
    #[inline]
    pub fn row_shared(&self, number: u64) -> Option<&Arc<V>> {
        self.rows.get(usize::try_from(number).ok()?)?.as_ref()
    }

    /// The rows with their numbers, oldest first (`.rev()` for newest first).
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (u64, &V)> + '_ {
        (0..self.next_number()).filter_map(|number| Some((number, self.row(number)?)))
    }

    /// The rows, oldest first.
    pub fn rows(&self) -> impl DoubleEndedIterator<Item = &V> + '_ {
        self.rows.iter().filter_map(Option::as_deref)
    }

    /// The numbers of the rows in `order`, after the cursor's.
    fn numbers(&self, order: Order, after: Option<u64>) -> Box<dyn Iterator<Item = u64> + '_> {
        let end = self.next_number();
        let live = move |number: &u64| self.row(*number).is_some();
        match order {
            Order::Ascending => {
                let first = after.map_or(0, |n| n.saturating_add(1));
                Box::new((first..end).filter(live))
            }
            Order::Descending => {
                let before = after.map_or(end, |n| n.min(end));
                Box::new((0..before).rev().filter(live))
            }
        }
    }
}

impl<V: Row> Table<V> {
    /// The key of row `number`, which the key index holds.
    #[inline]
    fn key_of(rows: &Radix<Option<Arc<V>>>, number: u64) -> &str {
        rows[at(number)]
            .as_deref()
            .expect("the key index holds rows not removed")
            .key()
    }

    /// The number of the row with `key`.
    #[inline]
    pub fn number(&self, key: &str) -> Option<u64> {
        self.keys.get(key, |n| Self::key_of(&self.rows, n))
    }

    /// Whether a row has `key`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.number(key).is_some()
    }

    /// The row with `key`.
    pub fn get(&self, key: &str) -> Option<&V> {
        self.row(self.number(key)?)
    }

    /// Lists rows of `selection` by number: at most `request.limit` after its cursor, in
    /// its order, with how many rows the selection holds and the cursor of the next page
    /// when more follow.
    ///
    /// The smallest set of the selection drives the walk, the others are probed for each
    /// of its numbers (O(log n) each, O(1) for dense sets). A page costs O(limit · sets)
    /// plus, with two sets or more, one walk of the smallest for the total.
    pub fn page<'t>(&'t self, selection: &Selection<'_>, request: &PageRequest) -> Page<&'t V> {
        let order = request.order;
        let after = request.cursor.as_ref().map(Cursor::number);
        if selection.nothing {
            return Page {
                items: Vec::new(),
                total: 0,
                next: None,
            };
        }
        // A set given twice (a word twice in a search) is probed once.
        let mut sets: Vec<&NumberSet> = Vec::with_capacity(selection.sets.len());
        for set in &selection.sets {
            if !sets.iter().any(|seen| std::ptr::eq(*seen, *set)) {
                sets.push(set);
            }
        }
        sets.sort_by_key(|set| set.len());
        let (total, mut numbers): (usize, Box<dyn Iterator<Item = u64> + '_>) =
            match sets.split_first() {
                None => (self.len, self.numbers(order, after)),
                Some((driver, [])) => (driver.len(), walk(driver, order, after)),
                Some((driver, rest)) => {
                    let matches = move |n: &u64| rest.iter().all(|set| set.contains(*n));
                    let total = driver.iter().filter(matches).count();
                    (total, Box::new(walk(driver, order, after).filter(matches)))
                }
            };
        let mut items = Vec::new();
        let mut last = None;
        while items.len() < request.limit {
            let Some(number) = numbers.next() else {
                break;
            };
            match self.row(number) {
                Some(row) => {
                    items.push(row);
                    last = Some(number);
                }
                None => debug_assert!(false, "row {number} of a selection was removed"),
            }
        }
        let next = match last {
            Some(number) if numbers.next().is_some() => Some(Cursor::after(number)),
            _ => None,
        };
        Page { items, total, next }
    }

    /// Lists the rows of `index` in the order of its keys (rows of one key by number): at
    /// most `request.limit` after its cursor, in its order, with how many rows the index
    /// lists and the cursor of the next page when more follow.
    pub fn page_sorted<'t, K: Ord + Clone>(
        &'t self,
        index: &'t SortedIndex<K>,
        request: &PageRequest<K>,
    ) -> Page<&'t V, K> {
        let mut pairs = index.iter(request.order, request.cursor.as_ref());
        let mut items = Vec::new();
        let mut last = None;
        while items.len() < request.limit {
            let Some((key, number)) = pairs.next() else {
                break;
            };
            match self.row(number) {
                Some(row) => {
                    items.push(row);
                    last = Some((key, number));
                }
                None => debug_assert!(false, "row {number} of a sorted index was removed"),
            }
        }
        let next = match last {
            Some((key, number)) if pairs.next().is_some() => Some(Cursor::new(key.clone(), number)),
            _ => None,
        };
        Page {
            items,
            total: index.rows(),
            next,
        }
    }

    /// Reads ahead the rows of `keys` (at most [`WARM_KEYS_MAX`] of them) before changes
    /// to them, stage by stage for all of them: their slots in the key index, then their
    /// places in the row vector. The reads of one stage are independent, so the processor
    /// keeps many in flight; when the changes then come one by one, their lookups hit the
    /// cache instead of waiting for memory in turn. See
    /// [`Projection::warm`](crate::Projection::warm).
    ///
    /// Gives the rows found, for the caller's own next stages (the rows themselves, then
    /// what they point to). A row found is most probably the key's, but unconfirmed: a
    /// key with the same tag may have come first. Changes nothing; unknown keys are
    /// skipped.
    pub fn warm<'k>(&self, keys: impl Iterator<Item = &'k str>) -> Warmed<'_, V> {
        let mut tags = [KeyTag::default(); WARM_KEYS_MAX];
        let mut count = 0;
        // What was read, so that the reads are not optimized away.
        let mut sink = 0usize;
        for key in keys.take(WARM_KEYS_MAX) {
            tags[count] = self.keys.tag(key);
            sink ^= self.keys.first_slot(tags[count]) as usize;
            count += 1;
        }
        let mut rows: [Option<&V>; WARM_KEYS_MAX] = [None; WARM_KEYS_MAX];
        for (tag, row) in tags[..count].iter().zip(&mut rows) {
            let shared = self
                .keys
                .number_tagged(*tag)
                .and_then(|number| self.row_shared(number));
            sink ^= shared.map_or(0, |row| Arc::as_ptr(row).addr());
            *row = shared.map(|row| &**row);
        }
        std::hint::black_box(sink);
        Warmed { rows, len: count }
    }
}

/// The numbers of `set` in `order`, after the cursor's.
fn walk(set: &NumberSet, order: Order, after: Option<u64>) -> Box<dyn Iterator<Item = u64> + '_> {
    match order {
        Order::Ascending => Box::new(set.iter_after(after)),
        Order::Descending => Box::new(set.iter_before(after)),
    }
}

impl<V: Row + Clone> Table<V> {
    /// Inserts `row` as number [`Table::next_number`], unless a row has its key: then the
    /// error gives it back with the number of the row that has the key.
    pub fn insert(&mut self, row: V) -> Result<u64, Duplicate<V>> {
        let number = self.next_number();
        let rows = &self.rows;
        if let Err(existing) = self
            .keys
            .insert(row.key(), number, |n| Self::key_of(rows, n))
        {
            return Err(Duplicate {
                row,
                number: existing,
            });
        }
        self.rows.push(Some(Arc::new(row)));
        self.len += 1;
        Ok(number)
    }

    /// Row `number` to change, unless there is none or it was removed. Copied first if a
    /// snapshot shares it (with the nodes on its path). Its key must not change.
    #[inline]
    pub fn row_mut(&mut self, number: u64) -> Option<&mut V> {
        let row = self.rows.get_mut(usize::try_from(number).ok()?)?.as_mut()?;
        Some(Arc::make_mut(row))
    }

    /// The row with `key`, to change (see [`Table::row_mut`]).
    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        let number = self.number(key)?;
        self.row_mut(number)
    }

    /// Removes the row with `key`: its number and the row, to take it out of the indexes.
    pub fn remove(&mut self, key: &str) -> Option<(u64, Arc<V>)> {
        let rows = &self.rows;
        let number = self.keys.remove(key, |n| Self::key_of(rows, n))?;
        let row = self
            .rows
            .get_mut(at(number))
            .and_then(Option::take)
            .expect("the key index holds rows not removed");
        self.len -= 1;
        Some((number, row))
    }
}

/// A row not inserted because its key is taken. Holds the row, given back, and the number
/// of the row that has the key. A projection usually answers it with
/// [`ApplyError::Inconsistent`](crate::ApplyError::Inconsistent): the log says a second
/// row has a key the domain made unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate<V> {
    /// The row that was not inserted.
    pub row: V,
    /// The number of the row that has its key.
    pub number: u64,
}

impl<V: Row> fmt::Display for Duplicate<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "row {} already has the key `{}`",
            self.number,
            self.row.key()
        )
    }
}

impl<V: Row + fmt::Debug> std::error::Error for Duplicate<V> {}

/// The rows [`Table::warm`] found, in the order of the keys, unknown keys left out.
pub struct Warmed<'a, V> {
    rows: [Option<&'a V>; WARM_KEYS_MAX],
    len: usize,
}

impl<V> fmt::Debug for Warmed<'_, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Warmed")
            .field("rows", &self.iter().count())
            .finish_non_exhaustive()
    }
}

impl<'a, V> Warmed<'a, V> {
    /// The rows found.
    pub fn iter(&self) -> impl Iterator<Item = &'a V> + '_ {
        self.rows[..self.len].iter().flatten().copied()
    }
}

/// Which rows of a [`Table`] a page lists: every row, or the rows in every one of some
/// [`NumberSet`]s (the sets of an [`Index`](super::Index) key, of the words of a
/// [`TextIndex`], of one's own). A criterion that finds no set (a key no row has) selects
/// nothing.
///
/// ```
/// use writ_query::collections::{NumberSet, Selection};
///
/// let open: NumberSet = [1, 2, 3].into_iter().collect();
/// let mut selection = Selection::all();
/// selection.and(&open);
/// let nobody: Option<&NumberSet> = None;
/// selection.and(nobody);
/// assert!(selection.is_nothing());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Selection<'a> {
    sets: Vec<&'a NumberSet>,
    /// A criterion found no set.
    nothing: bool,
}

impl<'a> Selection<'a> {
    /// Every row.
    pub fn all() -> Self {
        Self::default()
    }

    /// Narrows to the rows in `set`; `None` (a key without rows) selects nothing.
    pub fn and(&mut self, set: impl Into<Option<&'a NumberSet>>) -> &mut Self {
        match set.into() {
            Some(set) => self.sets.push(set),
            None => self.nothing = true,
        }
        self
    }

    /// Narrows to the rows listed in `index` under every token of `text` (see
    /// [`text`](crate::text)); a text without tokens narrows nothing.
    pub fn and_text(&mut self, index: &'a TextIndex, text: &str) -> &mut Self {
        for token in tokens(text) {
            self.and(index.get(&token));
            if self.nothing {
                break;
            }
        }
        self
    }

    /// Whether it is sure to select nothing (a criterion found no set).
    pub fn is_nothing(&self) -> bool {
        self.nothing
    }
}

impl<'a> From<&'a NumberSet> for Selection<'a> {
    fn from(set: &'a NumberSet) -> Self {
        Self {
            sets: vec![set],
            nothing: false,
        }
    }
}

impl<V: Row + Clone> Table<V> {
    /// Writes the next number, then each number's row with `save` (a byte `1` before it),
    /// or a byte `0` for a removed row.
    pub fn save_with(&self, out: &mut Writer, mut save: impl FnMut(&mut Writer, &V)) {
        out.len_prefix(self.rows.len());
        for row in self.rows.iter() {
            match row {
                Some(row) => {
                    out.u8(1);
                    save(out, row);
                }
                None => out.u8(0),
            }
        }
    }

    /// Reads what [`Table::save_with`] wrote, each row with `load`, given its number: the
    /// rows go into their vector bottom up and their keys into the key index. A key twice
    /// is refused.
    pub fn load_with(
        input: &mut Reader<'_>,
        mut load: impl FnMut(&mut Reader<'_>, u64) -> Result<V, SnapshotError>,
    ) -> Result<Self, SnapshotError> {
        let count = input.count(1)?;
        let mut rows: Vec<Option<Arc<V>>> = Vec::with_capacity(count);
        let mut keys = KeyIndex::new();
        let mut len = 0;
        for number in 0..count as u64 {
            let row = match input.u8()? {
                0 => None,
                1 => Some(Arc::new(load(input, number)?)),
                _ => return Err(input.invalid("a row tag other than 0 or 1")),
            };
            if let Some(row) = &row {
                let inserted = keys.insert(row.key(), number, |n| {
                    rows.get(at(n))
                        .and_then(|row| row.as_deref())
                        .map_or("", Row::key)
                });
                if inserted.is_err() {
                    return Err(input.invalid("a table key twice"));
                }
                len += 1;
            }
            rows.push(row);
        }
        Ok(Self {
            keys,
            rows: Radix::from_vec(rows),
            len,
        })
    }
}

/// [`Table::save_with`] and [`Table::load_with`] with the rows' own codec.
impl<V: Row + Clone + Codec> Codec for Table<V> {
    fn save(&self, out: &mut Writer) {
        self.save_with(out, |out, row| row.save(out));
    }

    fn load(input: &mut Reader<'_>) -> Result<Self, SnapshotError> {
        Self::load_with(input, |input, _| V::load(input))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::collections::Index;

    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Item {
        key: String,
        status: u8,
    }

    impl Row for Item {
        fn key(&self) -> &str {
            &self.key
        }
    }

    /// Items by key `k{n}`; `group` is `n % 2`, fixed by the key.
    fn group(key: &str) -> u8 {
        key.as_bytes()[key.len() - 1] % 2
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, u8),
        Remove(u8),
        SetStatus(u8, u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..24, 0u8..3).prop_map(|(k, s)| Op::Insert(k, s)),
            1 => (0u8..24).prop_map(Op::Remove),
            2 => (0u8..24, 0u8..3).prop_map(|(k, s)| Op::SetStatus(k, s)),
        ]
    }

    /// A table with its indexes, and the reference: the rows not removed, by number.
    #[derive(Debug, Clone, Default)]
    struct Model {
        table: Table<Item>,
        by_status: Index<u8>,
        by_group: Index<u8>,
        by_key: SortedIndex<String>,
        by_status_sorted: SortedIndex<u8>,
        rows: Vec<(u64, Item)>,
        next: u64,
    }

    impl Model {
        fn apply(&mut self, op: &Op) {
            match op {
                Op::Insert(k, status) => {
                    let key = format!("k{k}");
                    let item = Item {
                        key: key.clone(),
                        status: *status,
                    };
                    let existing = self.rows.iter().find(|(_, row)| row.key == key);
                    match self.table.insert(item.clone()) {
                        Ok(number) => {
                            assert!(existing.is_none(), "{key} inserted twice");
                            assert_eq!(number, self.next);
                            self.next += 1;
                            self.by_status.insert(*status, number);
                            self.by_group.insert(group(&key), number);
                            self.by_key.insert(key, number);
                            self.by_status_sorted.insert(*status, number);
                            self.rows.push((number, item));
                        }
                        Err(duplicate) => {
                            assert_eq!(Some(duplicate.number), existing.map(|(n, _)| *n));
                            assert_eq!(duplicate.row, item);
                        }
                    }
                }
                Op::Remove(k) => {
                    let key = format!("k{k}");
                    let at = self.rows.iter().position(|(_, row)| row.key == key);
                    match (self.table.remove(&key), at) {
                        (Some((number, row)), Some(at)) => {
                            let (expected, item) = self.rows.remove(at);
                            assert_eq!((number, &*row), (expected, &item));
                            assert!(self.by_status.remove(&row.status, number));
                            assert!(self.by_group.remove(&group(&key), number));
                            assert!(self.by_key.remove(&key, number));
                            assert!(self.by_status_sorted.remove(&row.status, number));
                        }
                        (None, None) => {}
                        other => panic!("removing {key}: {other:?}"),
                    }
                }
                Op::SetStatus(k, status) => {
                    let key = format!("k{k}");
                    let Some(number) = self.table.number(&key) else {
                        assert!(self.rows.iter().all(|(_, row)| row.key != key));
                        return;
                    };
                    let row = self.table.row_mut(number).expect("a row of the table");
                    let old = std::mem::replace(&mut row.status, *status);
                    self.by_status.update(number, Some(&old), Some(*status));
                    self.by_status_sorted
                        .update(number, Some(&old), Some(*status));
                    let (_, item) = self
                        .rows
                        .iter_mut()
                        .find(|(n, _)| *n == number)
                        .expect("in the model");
                    item.status = *status;
                }
            }
        }

        fn selection(&self, status: Option<u8>, group: Option<u8>) -> Selection<'_> {
            let mut selection = Selection::all();
            if let Some(status) = status {
                selection.and(self.by_status.get(&status));
            }
            if let Some(group) = group {
                selection.and(self.by_group.get(&group));
            }
            selection
        }

        /// The reference: the rows matching, in `order`, as (number, key).
        fn expected(
            &self,
            status: Option<u8>,
            group_: Option<u8>,
            order: Order,
        ) -> Vec<(u64, String)> {
            let mut rows: Vec<(u64, String)> = self
                .rows
                .iter()
                .filter(|(_, row)| status.is_none_or(|s| row.status == s))
                .filter(|(_, row)| group_.is_none_or(|g| group(&row.key) == g))
                .map(|(n, row)| (*n, row.key.clone()))
                .collect();
            if order == Order::Descending {
                rows.reverse();
            }
            rows
        }
    }

    /// Pages through `selection` of `table` `limit` at a time; every page checked.
    fn page_all(
        table: &Table<Item>,
        selection: &Selection<'_>,
        order: Order,
        limit: usize,
        total: usize,
    ) -> Result<Vec<String>, TestCaseError> {
        let mut request = PageRequest::first(order, limit);
        let mut listed = Vec::new();
        loop {
            let page = table.page(selection, &request);
            prop_assert_eq!(page.total, total);
            prop_assert!(page.items.len() <= limit);
            listed.extend(page.items.iter().map(|item| item.key.clone()));
            match page.next {
                Some(next) => {
                    prop_assert_eq!(page.items.len(), limit, "only the last page is short");
                    // A cursor makes the round trip through its text.
                    request = request.after(next.encode().parse().expect("a cursor"));
                }
                None => return Ok(listed),
            }
        }
    }

    proptest! {
        #[test]
        fn pages_list_what_a_scan_of_the_rows_finds(
            ops in prop::collection::vec(op(), 0..80),
            more in prop::collection::vec(op(), 0..30),
            limit in 1usize..5,
            status in prop::option::of(0u8..3),
            group in prop::option::of(0u8..2),
        ) {
            let mut model = Model::default();
            for op in &ops {
                model.apply(op);
            }
            let snapshot = model.clone();
            prop_assert_eq!(model.table.len(), model.rows.len());
            for (number, item) in &model.rows {
                prop_assert_eq!(model.table.get(&item.key), Some(item));
                prop_assert_eq!(model.table.row(*number), Some(item));
            }
            let numbered: Vec<(u64, &Item)> = model.rows.iter().map(|(n, row)| (*n, row)).collect();
            prop_assert_eq!(model.table.iter().collect::<Vec<_>>(), numbered);

            for order in [Order::Ascending, Order::Descending] {
                let expected = model.expected(status, group, order);
                let selection = model.selection(status, group);
                let keys: Vec<String> = expected.iter().map(|(_, key)| key.clone()).collect();
                prop_assert_eq!(
                    page_all(&model.table, &selection, order, limit, expected.len())?,
                    keys.clone()
                );
                let whole = model.table.page(&selection, &PageRequest::first(order, usize::MAX));
                prop_assert_eq!(whole.next, None);
                prop_assert_eq!(whole.items.len(), keys.len());
                prop_assert_eq!(
                    model.table.page(&selection, &PageRequest::first(order, 0)),
                    Page { items: Vec::new(), total: keys.len(), next: None }
                );

                // A cursor from a snapshot goes on in a later state: the rows past it
                // there, in the same order, none repeated.
                let first = snapshot.table.page(&snapshot.selection(status, group), &PageRequest::first(order, limit));
                let mut later = model.clone();
                for op in &more {
                    later.apply(op);
                }
                if let Some(cursor) = first.next {
                    let past: Vec<String> = later
                        .expected(status, group, order)
                        .into_iter()
                        .filter(|(n, _)| match order {
                            Order::Ascending => *n > cursor.number(),
                            Order::Descending => *n < cursor.number(),
                        })
                        .map(|(_, key)| key)
                        .collect();
                    let rest = later.table.page(
                        &later.selection(status, group),
                        &PageRequest::first(order, usize::MAX).after(cursor),
                    );
                    prop_assert_eq!(rest.items.iter().map(|item| item.key.clone()).collect::<Vec<_>>(), past);
                }
            }
            // The snapshot kept its rows while the model went on.
            let kept: Vec<&Item> = snapshot.rows.iter().map(|(_, row)| row).collect();
            prop_assert_eq!(snapshot.table.rows().collect::<Vec<_>>(), kept);
        }

        #[test]
        fn sorted_pages_list_by_key_then_number(
            ops in prop::collection::vec(op(), 0..80),
            limit in 1usize..5,
        ) {
            let mut model = Model::default();
            for op in &ops {
                model.apply(op);
            }
            for order in [Order::Ascending, Order::Descending] {
                // Unique keys: `by_key`.
                let mut expected: Vec<(String, u64)> =
                    model.rows.iter().map(|(n, row)| (row.key.clone(), *n)).collect();
                expected.sort();
                // Shared keys: `by_status_sorted`, rows of one status by number.
                let mut by_status: Vec<(u8, u64)> =
                    model.rows.iter().map(|(n, row)| (row.status, *n)).collect();
                by_status.sort();
                if order == Order::Descending {
                    expected.reverse();
                    by_status.reverse();
                }
                let mut request = PageRequest::first(order, limit);
                let mut listed = Vec::new();
                loop {
                    let page = model.table.page_sorted(&model.by_key, &request);
                    prop_assert_eq!(page.total, expected.len());
                    listed.extend(page.items.iter().map(|item| item.key.clone()));
                    match page.next {
                        Some(next) => request = request.after(Cursor::decode(&next.encode()).unwrap()),
                        None => break,
                    }
                }
                prop_assert_eq!(listed, expected.into_iter().map(|(key, _)| key).collect::<Vec<_>>());

                let mut request = PageRequest::first(order, limit);
                let mut listed = Vec::new();
                loop {
                    let page = model.table.page_sorted(&model.by_status_sorted, &request);
                    listed.extend(page.items.iter().map(|item| (item.status, model.table.number(&item.key).unwrap())));
                    match page.next {
                        Some(next) => request = request.after(Cursor::decode(&next.encode()).unwrap()),
                        None => break,
                    }
                }
                prop_assert_eq!(listed, by_status);
            }
        }
    }

    #[test]
    fn a_selection_without_a_set_lists_nothing_and_a_set_twice_counts_once() {
        let mut table = Table::new();
        for key in ["a", "b", "c"] {
            table
                .insert(Item {
                    key: key.into(),
                    status: 0,
                })
                .unwrap();
        }
        let odd: NumberSet = [0, 2].into_iter().collect();
        let mut twice = Selection::from(&odd);
        twice.and(&odd);
        let page = table.page(&twice, &PageRequest::first(Order::Ascending, 10));
        assert_eq!((page.items.len(), page.total), (2, 2));
        let mut nothing = Selection::all();
        nothing.and(None).and(&odd);
        let page = table.page(&nothing, &PageRequest::first(Order::Ascending, 10));
        assert_eq!(
            page,
            Page {
                items: Vec::new(),
                total: 0,
                next: None
            }
        );
    }

    #[test]
    fn warming_finds_the_rows_of_known_keys() {
        let mut table = Table::new();
        for n in 0..200 {
            table
                .insert(Item {
                    key: format!("k{n}"),
                    status: 0,
                })
                .unwrap();
        }
        let keys: Vec<String> = (0..40).map(|n| format!("k{}", n * 5)).collect();
        let warmed = table.warm(keys.iter().map(String::as_str).chain(["nope"]));
        let found: Vec<&str> = warmed.iter().map(|item| item.key.as_str()).collect();
        // At most `WARM_KEYS_MAX` keys, unknown ones left out.
        let expected: Vec<&str> = keys[..WARM_KEYS_MAX].iter().map(String::as_str).collect();
        assert_eq!(found, expected);
    }
}
