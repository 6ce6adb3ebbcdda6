//! [`TicketSet`]: a persistent set of ticket numbers, stored as 64-bit blocks.

use std::fmt;

use imbl::OrdMap;

/// A set of ticket numbers in ascending order: a persistent map from block (`number / 64`)
/// to a 64-bit word with one bit per ticket, and the count.
///
/// Index sets are dense (every open ticket, every ticket with the word `printer`), so one
/// entry covers up to 64 tickets: inserting is usually a bit set in an entry already
/// there, a clone shares the blocks, a change after a clone copies a short path of small
/// nodes, and a set of n tickets takes about n/8 bytes instead of 8n.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct TicketSet {
    blocks: OrdMap<u64, u64>,
    len: usize,
}

impl fmt::Debug for TicketSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter_after(None)).finish()
    }
}

const fn split(number: u64) -> (u64, u64) {
    (number / 64, 1 << (number % 64))
}

impl TicketSet {
    /// A set of one number.
    pub(crate) fn unit(number: u64) -> Self {
        let mut set = Self::default();
        set.insert(number);
        set
    }

    /// How many numbers it holds (O(1)).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds none.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether it holds `number`.
    pub(crate) fn contains(&self, number: u64) -> bool {
        let (block, bit) = split(number);
        self.blocks.get(&block).is_some_and(|word| word & bit != 0)
    }

    /// Adds `number`; changes nothing (and copies nothing) when it is there.
    pub(crate) fn insert(&mut self, number: u64) {
        if self.contains(number) {
            return;
        }
        let (block, bit) = split(number);
        *self.blocks.entry(block).or_insert(0) |= bit;
        self.len += 1;
    }

    /// Removes `number` if it is there.
    pub(crate) fn remove(&mut self, number: u64) {
        if !self.contains(number) {
            return;
        }
        let (block, bit) = split(number);
        let word = self.blocks.get_mut(&block).expect("found above");
        *word &= !bit;
        if *word == 0 {
            self.blocks.remove(&block);
        }
        self.len -= 1;
    }

    /// The numbers greater than `after` (all of them for `None`), ascending.
    pub(crate) fn iter_after(&self, after: Option<u64>) -> impl Iterator<Item = u64> + '_ {
        let first = after.map_or(0, |n| n.saturating_add(1));
        let (first_block, _) = split(first);
        self.blocks
            .range(first_block..)
            .flat_map(move |(&block, &word)| {
                // Drop the bits below `first` in its block.
                let word = if block == first_block {
                    word & (u64::MAX << (first % 64))
                } else {
                    word
                };
                Bits(word).map(move |bit| block * 64 + bit)
            })
            .filter(move |n| after.is_none_or(|after| *n > after))
    }
}

/// The positions of the set bits of a word, lowest first.
struct Bits(u64);

impl Iterator for Bits {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        if self.0 == 0 {
            return None;
        }
        let bit = u64::from(self.0.trailing_zeros());
        self.0 &= self.0 - 1;
        Some(bit)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn behaves_like_a_btree_set(
            ops in prop::collection::vec((any::<bool>(), 0u64..300), 0..200),
            after in prop::option::of(0u64..320),
        ) {
            let mut set = TicketSet::default();
            let mut model = BTreeSet::new();
            for (insert, n) in ops {
                if insert {
                    set.insert(n);
                    model.insert(n);
                } else {
                    set.remove(n);
                    model.remove(&n);
                }
                prop_assert_eq!(set.len(), model.len());
                prop_assert_eq!(set.contains(n), model.contains(&n));
            }
            let expected: Vec<u64> = match after {
                Some(after) => model.range(after + 1..).copied().collect(),
                None => model.iter().copied().collect(),
            };
            prop_assert_eq!(set.iter_after(after).collect::<Vec<_>>(), expected);
            prop_assert_eq!(set.is_empty(), model.is_empty());
        }
    }

    #[test]
    fn the_edges_of_a_block() {
        let mut set = TicketSet::unit(63);
        set.insert(64);
        set.insert(u64::MAX);
        assert_eq!(
            set.iter_after(Some(62)).collect::<Vec<_>>(),
            [63, 64, u64::MAX]
        );
        assert_eq!(set.iter_after(Some(63)).collect::<Vec<_>>(), [64, u64::MAX]);
        assert_eq!(set.iter_after(Some(u64::MAX)).count(), 0);
    }
}
