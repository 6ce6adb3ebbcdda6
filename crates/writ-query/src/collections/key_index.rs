//! [`KeyIndex`]: string keys to numbers, hashed, without the strings.

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use imbl::HashMap;

use super::Radix;

/// String keys → numbers (a [`Table`](super::Table)'s keys → its row numbers), kept
/// small for the lookup that nearly every event makes: a persistent hash table (open
/// addressing, linear probing) of 64-bit slots, each a 32-bit tag from a SipHash of the
/// key (with this index's random keys) and a number. The index holds no strings: the
/// caller's `key_of` gives the key of a number (the row's own key), which confirms a
/// matching tag. So a lookup reads one slot (one node of the vector, usually) and the row
/// it finds, and a table of a million keys takes 16 MiB at most. It doubles when half
/// full, rebuilt from the tags alone. Numbers past `u32::MAX` go to a map by key.
///
/// A clone shares the slots; a change after it copies the path to one slot. Removing a
/// key moves the keys after it in its run back (backward-shift deletion), so lookups
/// never wade through tombstones.
///
/// ```
/// use writ_query::collections::KeyIndex;
///
/// let keys = ["t-1", "t-2"];
/// let key_of = |number: u64| keys[number as usize];
/// let mut index = KeyIndex::new();
/// index.insert("t-1", 0, key_of).unwrap();
/// index.insert("t-2", 1, key_of).unwrap();
/// assert_eq!(index.insert("t-2", 7, key_of), Err(1), "t-2 is there");
/// assert_eq!(index.get("t-2", key_of), Some(1));
/// assert_eq!(index.get("t-3", key_of), None);
/// assert_eq!(index.remove("t-1", key_of), Some(0));
/// assert_eq!((index.get("t-1", key_of), index.len()), (None, 1));
/// ```
#[derive(Clone, Default)]
pub struct KeyIndex<S = RandomState> {
    hasher: S,
    /// `tag << 32 | number`; 0 is empty (a tag always has its top bit set). The length is
    /// 0 or a power of two.
    slots: Radix<u64>,
    /// Keys in `slots`.
    len: usize,
    large: HashMap<Arc<str>, u64>,
}

/// A key's tag in a [`KeyIndex`]: 32 bits of its hash, to find its slot before the key is
/// compared. See [`KeyIndex::tag`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyTag(u32);

/// The first size of the table.
const SLOTS_MIN: usize = 64;

impl<S> fmt::Debug for KeyIndex<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyIndex")
            .field("len", &self.len())
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl KeyIndex {
    /// An empty index with random hash keys.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<S> KeyIndex<S> {
    /// How many keys it holds.
    pub fn len(&self) -> usize {
        self.len + self.large.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<S: BuildHasher> KeyIndex<S> {
    /// An empty index hashing with `hasher`.
    pub fn with_hasher(hasher: S) -> Self {
        Self {
            hasher,
            slots: Radix::new(),
            len: 0,
            large: HashMap::new(),
        }
    }

    /// The tag of `key`: what [`KeyIndex::first_slot`] and [`KeyIndex::number_tagged`]
    /// take, to look keys up in stages (see [`Table::warm`](super::Table::warm)).
    #[inline]
    pub fn tag(&self, key: &str) -> KeyTag {
        KeyTag((self.hasher.hash_one(key) >> 32) as u32 | 0x8000_0000)
    }

    /// Reads the first slot a lookup of `tag` reads and gives its bits (0 when the table is
    /// empty): a read ahead of the lookup, so that the lookup finds the slot in the cache.
    #[inline]
    pub fn first_slot(&self, tag: KeyTag) -> u64 {
        if self.slots.is_empty() {
            return 0;
        }
        self.slots[tag.0 as usize & (self.slots.len() - 1)]
    }

    /// The number in the first slot with `tag`: the number of a key with that tag, most
    /// probably the one looked for (another with the same tag may come first); unconfirmed,
    /// for reading ahead.
    #[inline]
    pub fn number_tagged(&self, tag: KeyTag) -> Option<u64> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut at = tag.0 as usize & mask;
        loop {
            let slot = self.slots[at];
            if slot == 0 {
                return None;
            }
            if (slot >> 32) as u32 == tag.0 {
                return Some(slot & u64::from(u32::MAX));
            }
            at = (at + 1) & mask;
        }
    }

    /// The slot that holds `key`, if any; `key_of` gives the key of a number.
    #[inline]
    fn find<'k>(&self, key: &str, key_of: impl Fn(u64) -> &'k str) -> Option<(usize, u64)> {
        if self.slots.is_empty() {
            return None;
        }
        let tag = self.tag(key).0;
        let mask = self.slots.len() - 1;
        let mut at = tag as usize & mask;
        loop {
            let slot = self.slots[at];
            if slot == 0 {
                return None;
            }
            let number = slot & u64::from(u32::MAX);
            if (slot >> 32) as u32 == tag && key_of(number) == key {
                return Some((at, number));
            }
            at = (at + 1) & mask;
        }
    }

    /// The number of `key`, if it is there; `key_of` gives the key of a number the index
    /// holds.
    #[inline]
    pub fn get<'k>(&self, key: &str, key_of: impl Fn(u64) -> &'k str) -> Option<u64> {
        if let Some((_, number)) = self.find(key, key_of) {
            return Some(number);
        }
        if self.large.is_empty() {
            None
        } else {
            self.large.get(key).copied()
        }
    }

    /// Records that `key` is `number`, unless `key` is there: then its number is the
    /// error. `key_of` gives the key of a number the index holds. One walk of the key's
    /// run finds either.
    pub fn insert<'k>(
        &mut self,
        key: &str,
        number: u64,
        key_of: impl Fn(u64) -> &'k str,
    ) -> Result<(), u64> {
        if !self.large.is_empty()
            && let Some(number) = self.large.get(key)
        {
            return Err(*number);
        }
        if number > u64::from(u32::MAX) {
            if let Some((_, number)) = self.find(key, key_of) {
                return Err(number);
            }
            self.large.insert(Arc::from(key), number);
            return Ok(());
        }
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let tag = self.tag(key).0;
        let mask = self.slots.len() - 1;
        let mut at = tag as usize & mask;
        loop {
            let slot = self.slots[at];
            if slot == 0 {
                break;
            }
            let existing = slot & u64::from(u32::MAX);
            if (slot >> 32) as u32 == tag && key_of(existing) == key {
                return Err(existing);
            }
            at = (at + 1) & mask;
        }
        *self.slots.get_mut(at).expect("a slot of the table") = u64::from(tag) << 32 | number;
        self.len += 1;
        Ok(())
    }

    /// Removes `key`; its number, if it was there. `key_of` gives the key of a number the
    /// index holds (`key`'s own included: call it before the key's row is gone).
    pub fn remove<'k>(&mut self, key: &str, key_of: impl Fn(u64) -> &'k str) -> Option<u64> {
        let Some((mut hole, number)) = self.find(key, key_of) else {
            return self.large.remove(key);
        };
        // Backward shift: each later slot of the run whose home is not between the hole
        // and itself moves into the hole, which moves to where it was.
        let mask = self.slots.len() - 1;
        let mut at = (hole + 1) & mask;
        loop {
            let slot = self.slots[at];
            if slot == 0 {
                break;
            }
            let home = (slot >> 32) as usize & mask;
            if at.wrapping_sub(home) & mask >= at.wrapping_sub(hole) & mask {
                *self.slots.get_mut(hole).expect("a slot of the table") = slot;
                hole = at;
            }
            at = (at + 1) & mask;
        }
        *self.slots.get_mut(hole).expect("a slot of the table") = 0;
        self.len -= 1;
        Some(number)
    }

    /// Doubles the table, placing each entry anew by its tag.
    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(SLOTS_MIN);
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap as StdHashMap;

    use proptest::prelude::*;

    use super::*;

    /// Every key gets the same tag: every lookup must tell keys apart by the keys.
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

    /// A few tags only, so that runs are long and cross each other.
    #[derive(Clone, Default)]
    struct FewTags;

    struct FirstByte(u64);

    impl std::hash::Hasher for FirstByte {
        fn finish(&self) -> u64 {
            self.0 << 32
        }
        fn write(&mut self, bytes: &[u8]) {
            if self.0 == 0 {
                self.0 = u64::from(bytes.first().copied().unwrap_or(0) % 5) * 61 + 1;
            }
        }
    }

    impl BuildHasher for FewTags {
        type Hasher = FirstByte;
        fn build_hasher(&self) -> FirstByte {
            FirstByte(0)
        }
    }

    #[test]
    fn the_key_index_tells_apart_keys_with_the_same_tag_and_grows() {
        let ids: Vec<Arc<str>> = (0..300).map(|n| Arc::from(format!("t-{n}"))).collect();
        let mut index = KeyIndex::<OneTag>::default();
        for (n, id) in ids.iter().enumerate() {
            let id_of = |n: u64| &*ids[n as usize];
            index.insert(id, n as u64, id_of).unwrap();
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
        let big = u64::from(u32::MAX) + 5;
        let id_or_big = |n: u64| if n == big { "t-big" } else { &*ids[n as usize] };
        assert_eq!(index.insert("t-big", big, id_or_big), Ok(()));
        assert_eq!(index.insert("t-big", 7, id_or_big), Err(big));
        assert_eq!(index.insert("t-7", big + 1, id_or_big), Err(7));
        assert_eq!(index.get("t-big", id_or_big), Some(big));
        assert_eq!(before.get("t-big", id_of), None);
        assert_eq!(before.get("t-299", id_of), Some(299));
        assert_eq!((index.len(), before.len()), (301, 300));
        assert_eq!(index.remove("t-big", id_of), Some(big));
        assert_eq!(index.get("t-big", id_of), None);
    }

    proptest! {
        /// Inserts and removals, with colliding tags, against a map; a clone taken midway
        /// keeps what it held.
        #[test]
        fn the_key_index_behaves_like_a_map(
            ops in prop::collection::vec((any::<bool>(), 0u8..60), 0..300),
            clone_at in any::<prop::sample::Index>(),
        ) {
            let keys: Vec<Arc<str>> = (0..60u8).map(|n| Arc::from(format!("{}-{n}", n % 7))).collect();
            let key_of = |n: u64| &*keys[n as usize % keys.len()];
            let mut index = KeyIndex::<FewTags>::default();
            let mut model: StdHashMap<u8, u64> = StdHashMap::new();
            let clone_at = clone_at.index(ops.len() + 1);
            let mut kept = None;
            // Numbers are key + 60 * generation, so a key that comes back gets a new one.
            let mut generation = 0u64;
            for (i, (insert, key)) in ops.iter().copied().enumerate() {
                if i == clone_at {
                    kept = Some((index.clone(), model.clone()));
                }
                let name = &keys[usize::from(key)];
                if insert {
                    generation += 1;
                    let number = u64::from(key) + 60 * generation;
                    let expected = match model.get(&key) {
                        Some(existing) => Err(*existing),
                        None => Ok(()),
                    };
                    prop_assert_eq!(index.insert(name, number, key_of), expected);
                    model.entry(key).or_insert(number);
                } else {
                    prop_assert_eq!(index.remove(name, key_of), model.remove(&key));
                }
                prop_assert_eq!(index.len(), model.len());
            }
            for (n, name) in keys.iter().enumerate() {
                prop_assert_eq!(index.get(name, key_of), model.get(&(n as u8)).copied());
            }
            if let Some((kept, model)) = kept {
                for (n, name) in keys.iter().enumerate() {
                    prop_assert_eq!(kept.get(name, key_of), model.get(&(n as u8)).copied());
                }
            }
        }
    }
}
