//! Secondary indexes of a [`Table`](super::Table): [`Index`], key → rows by hash, and
//! [`SortedIndex`], key → rows in key order.

use std::borrow::Borrow;
use std::fmt;
use std::hash::Hash;

use imbl::{HashMap, OrdMap};

use super::NumberSet;
use crate::paging::{Cursor, Order};
use crate::snapshot::{Codec, Reader, SnapshotError, Writer};

/// A secondary index: each key → the numbers of the rows that have it, for lookups and
/// counts by key and pages of the rows of a key (a [`Selection`](super::Selection)).
/// Counters by status, by owner; accounts by branch.
///
/// The read model keeps it in step with its rows: [`Index::insert`] when a row gets a key,
/// [`Index::remove`] when it loses one, [`Index::update`] when it moves from one to
/// another. A key whose last row leaves is dropped. A clone shares the map and the sets.
///
/// For keys that are a small enum (two statuses, four priorities), an array of
/// [`NumberSet`]s indexed by it does the same without hashing.
///
/// ```
/// use writ_query::collections::Index;
///
/// let mut by_owner: Index<String> = Index::new();
/// by_owner.insert("ann".to_owned(), 0);
/// by_owner.insert("bob".to_owned(), 1);
/// by_owner.insert("ann".to_owned(), 2);
/// assert_eq!(by_owner.count("ann"), 2);
/// by_owner.update(2, Some("ann"), Some("bob".to_owned()));
/// assert_eq!(by_owner.get("bob").unwrap().iter().collect::<Vec<_>>(), [1, 2]);
/// by_owner.remove("ann", 0);
/// assert_eq!((by_owner.count("ann"), by_owner.len()), (0, 1));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Index<K: Hash + Eq> {
    sets: HashMap<K, NumberSet>,
}

impl<K: Hash + Eq> Default for Index<K> {
    fn default() -> Self {
        Self {
            sets: HashMap::new(),
        }
    }
}

impl<K: Hash + Eq + fmt::Debug> fmt::Debug for Index<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.sets.iter()).finish()
    }
}

impl<K: Hash + Eq + Clone> Index<K> {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many keys have rows.
    pub fn len(&self) -> usize {
        self.sets.len()
    }

    /// Whether no key has rows.
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    /// The rows of `key`; `None` when it has none.
    pub fn get<Q>(&self, key: &Q) -> Option<&NumberSet>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.sets.get(key)
    }

    /// How many rows have `key` (O(1)).
    pub fn count<Q>(&self, key: &Q) -> usize
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get(key).map_or(0, NumberSet::len)
    }

    /// The keys and their rows, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &NumberSet)> {
        self.sets.iter()
    }

    /// Lists row `number` under `key`; whether it was not there yet.
    pub fn insert(&mut self, key: K, number: u64) -> bool {
        self.sets.entry(key).or_default().insert(number)
    }

    /// Takes row `number` out of `key`; whether it was there.
    pub fn remove<Q>(&mut self, key: &Q, number: u64) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let Some(set) = self.sets.get_mut(key) else {
            return false;
        };
        let removed = set.remove(number);
        if set.is_empty() {
            self.sets.remove(key);
        }
        removed
    }

    /// Moves row `number` from key `old` to key `new` (`None`: not listed). Changes
    /// nothing when they are the same.
    pub fn update<Q>(&mut self, number: u64, old: Option<&Q>, new: Option<K>)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let (Some(old), Some(new)) = (old, &new)
            && old == new.borrow()
        {
            return;
        }
        if let Some(old) = old {
            self.remove(old, number);
        }
        if let Some(new) = new {
            self.insert(new, number);
        }
    }
}

/// A secondary index in key order: each key → the numbers of the rows that have it, for
/// listings by key ([`Table::page_sorted`](super::Table::page_sorted)): stock by sku,
/// counters by value. Rows of one key are listed by number (oldest first when ascending).
///
/// Kept in step with the rows like an [`Index`]. Besides the keys it counts the rows it
/// lists, the total of a page. A clone shares the map and the sets.
///
/// ```
/// use writ_query::collections::SortedIndex;
/// use writ_query::paging::{Cursor, Order};
///
/// let mut by_sku: SortedIndex<String> = SortedIndex::new();
/// for (number, sku) in ["b-2", "a-1", "c-3"].into_iter().enumerate() {
///     by_sku.insert(sku.to_owned(), number as u64);
/// }
/// let listed: Vec<(&str, u64)> = by_sku.iter(Order::Ascending, None).map(|(k, n)| (k.as_str(), n)).collect();
/// assert_eq!(listed, [("a-1", 1), ("b-2", 0), ("c-3", 2)]);
/// let after_b = Cursor::new("b-2".to_owned(), 0);
/// assert_eq!(by_sku.iter(Order::Descending, Some(&after_b)).count(), 1);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SortedIndex<K: Ord> {
    sets: OrdMap<K, NumberSet>,
    /// Rows listed, over all keys.
    rows: usize,
}

impl<K: Ord> Default for SortedIndex<K> {
    fn default() -> Self {
        Self {
            sets: OrdMap::new(),
            rows: 0,
        }
    }
}

impl<K: Ord + fmt::Debug> fmt::Debug for SortedIndex<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.sets.iter()).finish()
    }
}

impl<K: Ord + Clone> SortedIndex<K> {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many keys have rows.
    pub fn len(&self) -> usize {
        self.sets.len()
    }

    /// Whether no key has rows.
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    /// How many rows it lists, over all keys (O(1)).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The rows of `key`; `None` when it has none.
    pub fn get<Q>(&self, key: &Q) -> Option<&NumberSet>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.sets.get(key)
    }

    /// How many rows have `key`.
    pub fn count<Q>(&self, key: &Q) -> usize
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.get(key).map_or(0, NumberSet::len)
    }

    /// Lists row `number` under `key`; whether it was not there yet.
    pub fn insert(&mut self, key: K, number: u64) -> bool {
        let new = self.sets.entry(key).or_default().insert(number);
        self.rows += usize::from(new);
        new
    }

    /// Takes row `number` out of `key`; whether it was there.
    pub fn remove<Q>(&mut self, key: &Q, number: u64) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let Some(set) = self.sets.get_mut(key) else {
            return false;
        };
        let removed = set.remove(number);
        if set.is_empty() {
            self.sets.remove(key);
        }
        self.rows -= usize::from(removed);
        removed
    }

    /// Moves row `number` from key `old` to key `new` (`None`: not listed). Changes
    /// nothing when they are the same.
    pub fn update<Q>(&mut self, number: u64, old: Option<&Q>, new: Option<K>)
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        if let (Some(old), Some(new)) = (old, &new)
            && old == new.borrow()
        {
            return;
        }
        if let Some(old) = old {
            self.remove(old, number);
        }
        if let Some(new) = new {
            self.insert(new, number);
        }
    }

    /// The keys with their rows' numbers, one pair per row, in `order` of key then number,
    /// after `cursor` (from the first for `None`). A cursor whose key is gone still marks
    /// a place: the listing goes on from the next key.
    pub fn iter<'a>(
        &'a self,
        order: Order,
        cursor: Option<&'a Cursor<K>>,
    ) -> Box<dyn Iterator<Item = (&'a K, u64)> + 'a> {
        // Within the cursor's key, only the numbers past the cursor's.
        let within = move |key: &K, set: &'a NumberSet| -> Box<dyn Iterator<Item = u64> + 'a> {
            let from = cursor
                .filter(|cursor| cursor.key() == key)
                .map(Cursor::number);
            match (order, from) {
                (Order::Ascending, None) => Box::new(set.iter()),
                (Order::Ascending, Some(after)) => Box::new(set.iter_after(Some(after))),
                (Order::Descending, None) => Box::new(set.iter_before(None)),
                (Order::Descending, Some(before)) => Box::new(set.iter_before(Some(before))),
            }
        };
        let keys: Box<dyn Iterator<Item = (&'a K, &'a NumberSet)>> = match (order, cursor) {
            (Order::Ascending, None) => Box::new(self.sets.iter()),
            (Order::Ascending, Some(cursor)) => Box::new(self.sets.range::<_, K>(cursor.key()..)),
            (Order::Descending, None) => Box::new(self.sets.iter().rev()),
            (Order::Descending, Some(cursor)) => {
                Box::new(self.sets.range::<_, K>(..=cursor.key()).rev())
            }
        };
        Box::new(keys.flat_map(move |(key, set)| within(key, set).map(move |n| (key, n))))
    }
}

/// The count of keys, then each key with its set, in no particular order. A key without
/// rows or twice is refused.
impl<K: Codec + Hash + Eq + Clone> Codec for Index<K> {
    fn save(&self, out: &mut Writer) {
        out.len_prefix(self.sets.len());
        for (key, set) in self.sets.iter() {
            key.save(out);
            set.save(out);
        }
    }

    fn load(input: &mut Reader<'_>) -> Result<Self, SnapshotError> {
        let count = input.count(K::MIN_BYTES + 2)?;
        let mut sets = HashMap::new();
        for _ in 0..count {
            let key = K::load(input)?;
            let set = NumberSet::load(input)?;
            if set.is_empty() {
                return Err(input.invalid("an index key without rows"));
            }
            if sets.insert(key, set).is_some() {
                return Err(input.invalid("an index key twice"));
            }
        }
        Ok(Self { sets })
    }
}

/// The count of keys, then each key with its set, in key order (strictly ascending, or
/// refused; a key without rows too).
impl<K: Codec + Ord + Clone> Codec for SortedIndex<K> {
    fn save(&self, out: &mut Writer) {
        out.len_prefix(self.sets.len());
        for (key, set) in self.sets.iter() {
            key.save(out);
            set.save(out);
        }
    }

    fn load(input: &mut Reader<'_>) -> Result<Self, SnapshotError> {
        let count = input.count(K::MIN_BYTES + 2)?;
        let mut pairs: Vec<(K, NumberSet)> = Vec::with_capacity(count);
        let mut rows = 0usize;
        for _ in 0..count {
            let key = K::load(input)?;
            let set = NumberSet::load(input)?;
            if set.is_empty() {
                return Err(input.invalid("an index key without rows"));
            }
            if pairs.last().is_some_and(|(last, _)| *last >= key) {
                return Err(input.invalid("sorted index keys out of order"));
            }
            rows = rows.saturating_add(set.len());
            pairs.push((key, set));
        }
        Ok(Self {
            sets: pairs.into_iter().collect(),
            rows,
        })
    }
}
