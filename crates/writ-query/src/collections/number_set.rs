//! [`NumberSet`]: a persistent set of row numbers, stored as 64-bit words.

use std::fmt;

use imbl::OrdMap;

use super::Radix;
use crate::snapshot::{Codec, Reader, SnapshotError, Writer};

/// The most numbers a set keeps inline, before it moves to blocks.
const INLINE_MAX: usize = 3;

/// A set of numbers (row numbers of a [`Table`](super::Table), most often) in ascending
/// order: up to three numbers inline, then 64-bit words with one bit per number (word
/// `w` holds numbers `64w` to `64w + 63`), and the count. The words are either
///
/// - sparse: a persistent map from word index to the words that are not zero, or
/// - dense: every word from the first up to the last non-zero one, in a [`Radix`]
///   vector, once the set holds at least two numbers per word of that span (and as long
///   as it holds one per word when it grows).
///
/// Most words of a text index are rare (an id, a number, a typo: one or two rows each),
/// so small sets sit inline and cost no allocation. The index sets that take the inserts
/// of a replay (every open row, every row with a common word) are dense: an
/// insert is then a shift and a mask down a two-level trie of 64-word leaves, with no
/// keys to search, and takes 8 bytes per 64 rows. A dense set that grows keeps at most 8
/// bytes per number it holds; one that shrinks by removals stays dense (as a sparse one
/// stays sparse), so it takes at most a bit per number of its span. A clone shares the
/// words; a change after it copies one path of small nodes.
///
/// Sets of row numbers are what [`Index`](super::Index)es map keys to and what pages of
/// a [`Table`](super::Table) are cut from: rows are numbered in insertion order, so a set
/// lists its rows oldest first ([`NumberSet::iter_after`]) or newest first
/// ([`NumberSet::iter_before`]).
///
/// ```
/// use writ_query::collections::NumberSet;
///
/// let mut set: NumberSet = [5, 1, 900].into_iter().collect();
/// assert!(set.insert(64));
/// assert!(!set.insert(64), "already there");
/// let snapshot = set.clone();
/// assert!(set.remove(1));
/// assert_eq!(set.iter().collect::<Vec<_>>(), [5, 64, 900]);
/// assert_eq!(set.iter_after(Some(5)).collect::<Vec<_>>(), [64, 900]);
/// assert_eq!(set.iter_before(Some(900)).collect::<Vec<_>>(), [64, 5]);
/// assert_eq!(snapshot.len(), 4);
/// ```
#[derive(Clone)]
pub struct NumberSet {
    repr: Repr,
}

#[derive(Clone)]
enum Repr {
    /// `numbers[..len]`, ascending.
    Inline { len: u8, numbers: [u64; INLINE_MAX] },
    /// Past `INLINE_MAX` numbers (it stays so if it shrinks again), sparse: the words
    /// that are not zero, by index.
    Blocks {
        blocks: OrdMap<u64, u64>,
        len: usize,
    },
    /// Dense: word `i` at index `i`, up to the last that was not zero.
    Dense { words: Radix<u64>, len: usize },
}

/// A sparse set becomes dense once it holds this many numbers per word of its span.
const DENSE_PER_WORD: usize = 2;

/// A dense set that grows past its span stays dense while it holds at least this many
/// numbers per word of the new span (so it never takes more than 8 bytes per number);
/// below, it becomes sparse.
const DENSE_PER_WORD_MIN: usize = 1;

impl Default for NumberSet {
    fn default() -> Self {
        Self {
            repr: Repr::Inline {
                len: 0,
                numbers: [0; INLINE_MAX],
            },
        }
    }
}

/// Sets are equal when they hold the same numbers, however they store them.
impl PartialEq for NumberSet {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for NumberSet {}

impl fmt::Debug for NumberSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

const fn split(number: u64) -> (u64, u64) {
    (number / 64, 1 << (number % 64))
}

impl NumberSet {
    /// An empty set (allocates nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// A set of one number (allocates nothing).
    pub fn single(number: u64) -> Self {
        let mut numbers = [0; INLINE_MAX];
        numbers[0] = number;
        Self {
            repr: Repr::Inline { len: 1, numbers },
        }
    }

    /// How many numbers it holds (O(1)).
    #[inline]
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Inline { len, .. } => usize::from(*len),
            Repr::Blocks { len, .. } | Repr::Dense { len, .. } => *len,
        }
    }

    /// Whether it holds none.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether it holds `number`.
    #[inline]
    pub fn contains(&self, number: u64) -> bool {
        match &self.repr {
            Repr::Inline { len, numbers } => numbers[..usize::from(*len)].contains(&number),
            Repr::Blocks { blocks, .. } => {
                let (block, bit) = split(number);
                blocks.get(&block).is_some_and(|word| word & bit != 0)
            }
            Repr::Dense { words, .. } => {
                let (block, bit) = split(number);
                word_at(words, block).is_some_and(|word| word & bit != 0)
            }
        }
    }

    /// Adds `number`; changes nothing (and copies nothing) when it is there. Whether it
    /// was not there.
    pub fn insert(&mut self, number: u64) -> bool {
        let new = !self.contains(number);
        if new {
            self.insert_new(number);
        }
        new
    }

    /// Adds `number`, which the caller knows is not there (checked in debug builds): one
    /// walk down the tree instead of two.
    pub fn insert_new(&mut self, number: u64) {
        match &mut self.repr {
            Repr::Inline { len, numbers } if usize::from(*len) < INLINE_MAX => {
                let used = &numbers[..usize::from(*len)];
                debug_assert!(!used.contains(&number), "{number} is not in the set yet");
                let at = used.partition_point(|n| *n < number);
                numbers.copy_within(at..usize::from(*len), at + 1);
                numbers[at] = number;
                *len += 1;
            }
            Repr::Inline { numbers, .. } => {
                let mut blocks = OrdMap::new();
                for n in *numbers {
                    let (block, bit) = split(n);
                    *blocks.entry(block).or_insert(0) |= bit;
                }
                self.repr = Repr::Blocks {
                    blocks,
                    len: INLINE_MAX,
                };
                self.insert_new(number);
            }
            Repr::Blocks { blocks, len } => {
                let (block, bit) = split(number);
                let mut new_word = false;
                let word = blocks.entry(block).or_insert_with(|| {
                    new_word = true;
                    0
                });
                debug_assert!(*word & bit == 0, "{number} is not in the set yet");
                *word |= bit;
                *len += 1;
                if new_word {
                    let span = blocks.get_max().map_or(0, |(last, _)| *last + 1);
                    if let Some(span) = dense_span(span)
                        && *len >= span * DENSE_PER_WORD
                    {
                        let mut dense = vec![0; span];
                        for (block, word) in blocks.iter() {
                            dense[index(*block)] = *word;
                        }
                        self.repr = Repr::Dense {
                            words: Radix::from_vec(dense),
                            len: *len,
                        };
                    }
                }
            }
            Repr::Dense { words, len } => {
                let (block, bit) = split(number);
                let at = dense_span(block).filter(|at| *at < words.len());
                let at = match at {
                    Some(at) => at,
                    None => {
                        let span = dense_span(block.saturating_add(1));
                        match span.filter(|span| *len + 1 >= span * DENSE_PER_WORD_MIN) {
                            Some(span) => {
                                while words.len() < span {
                                    words.push(0);
                                }
                                span - 1
                            }
                            None => {
                                // Too sparse for its new span: back to a map of words.
                                let blocks: OrdMap<u64, u64> = words
                                    .iter()
                                    .enumerate()
                                    .filter(|(_, word)| **word != 0)
                                    .map(|(block, word)| (block as u64, *word))
                                    .collect();
                                self.repr = Repr::Blocks { blocks, len: *len };
                                return self.insert_new(number);
                            }
                        }
                    }
                };
                let word = words.get_mut(at).expect("within the span");
                debug_assert!(*word & bit == 0, "{number} is not in the set yet");
                *word |= bit;
                *len += 1;
            }
        }
    }

    /// Removes `number` if it is there; whether it was.
    pub fn remove(&mut self, number: u64) -> bool {
        if !self.contains(number) {
            return false;
        }
        match &mut self.repr {
            Repr::Inline { len, numbers } => {
                let at = numbers[..usize::from(*len)]
                    .iter()
                    .position(|n| *n == number)
                    .expect("found above");
                numbers.copy_within(at + 1..usize::from(*len), at);
                *len -= 1;
            }
            Repr::Blocks { blocks, len } => {
                let (block, bit) = split(number);
                let word = blocks.get_mut(&block).expect("found above");
                *word &= !bit;
                if *word == 0 {
                    blocks.remove(&block);
                }
                *len -= 1;
            }
            Repr::Dense { words, len } => {
                let (block, bit) = split(number);
                *words.get_mut(index(block)).expect("found above") &= !bit;
                *len -= 1;
            }
        }
        true
    }

    /// The numbers, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.iter_after(None)
    }

    /// The smallest number.
    pub fn first(&self) -> Option<u64> {
        self.iter().next()
    }

    /// The largest number.
    pub fn last(&self) -> Option<u64> {
        self.iter_before(None).next()
    }

    /// The numbers greater than `after` (all of them for `None`), ascending.
    pub fn iter_after(&self, after: Option<u64>) -> impl Iterator<Item = u64> + '_ {
        let first = after.map_or(0, |n| n.saturating_add(1));
        let (first_block, _) = split(first);
        let (inline, blocks, dense): (&[u64], _, _) = match &self.repr {
            Repr::Inline { len, numbers } => (&numbers[..usize::from(*len)], None, None),
            Repr::Blocks { blocks, .. } => (&[], Some(blocks), None),
            Repr::Dense { words, .. } => (&[], None, Some(words)),
        };
        let inline = inline.iter().copied();
        let blocks = blocks
            .into_iter()
            .flat_map(move |blocks| blocks.range(first_block..).map(|(b, w)| (*b, *w)));
        let dense = dense.into_iter().flat_map(move |words| {
            let start = dense_span(first_block).unwrap_or(usize::MAX);
            (start..words.len()).map(|at| (at as u64, words[at]))
        });
        let bits = blocks.chain(dense).flat_map(move |(block, word)| {
            // Drop the bits below `first` in its block.
            let word = if block == first_block {
                word & (u64::MAX << (first % 64))
            } else {
                word
            };
            Bits(word).map(move |bit| block * 64 + bit)
        });
        inline
            .chain(bits)
            .filter(move |n| after.is_none_or(|after| *n > after))
    }

    /// The numbers smaller than `before` (all of them for `None`), descending.
    pub fn iter_before(&self, before: Option<u64>) -> impl Iterator<Item = u64> + '_ {
        // The largest number listed; `None` when none can be (before 0).
        let last = match before {
            None => Some(u64::MAX),
            Some(before) => before.checked_sub(1),
        };
        let top = last.unwrap_or(0);
        let (last_block, _) = split(top);
        let (inline, blocks, dense): (&[u64], _, _) = match &self.repr {
            Repr::Inline { len, numbers } => (&numbers[..usize::from(*len)], None, None),
            Repr::Blocks { blocks, .. } => (&[], Some(blocks), None),
            Repr::Dense { words, .. } => (&[], None, Some(words)),
        };
        let inline = inline.iter().rev().copied();
        let blocks = blocks
            .into_iter()
            .flat_map(move |blocks| blocks.range(..=last_block).rev().map(|(b, w)| (*b, *w)));
        let dense = dense.into_iter().flat_map(move |words| {
            let end = dense_span(last_block).map_or(words.len(), |at| words.len().min(at + 1));
            (0..end).rev().map(|at| (at as u64, words[at]))
        });
        let bits = blocks.chain(dense).flat_map(move |(block, word)| {
            // Drop the bits above `top` in its block.
            let word = if block == last_block {
                word & (u64::MAX >> (63 - top % 64))
            } else {
                word
            };
            BitsDown(word).map(move |bit| block * 64 + bit)
        });
        inline
            .chain(bits)
            .filter(move |n| last.is_some_and(|last| *n <= last))
    }
}

impl FromIterator<u64> for NumberSet {
    fn from_iter<I: IntoIterator<Item = u64>>(numbers: I) -> Self {
        let mut set = Self::new();
        set.extend(numbers);
        set
    }
}

impl Extend<u64> for NumberSet {
    fn extend<I: IntoIterator<Item = u64>>(&mut self, numbers: I) {
        for number in numbers {
            self.insert(number);
        }
    }
}

/// Word `block` of a dense set, if within its span.
fn word_at(words: &Radix<u64>, block: u64) -> Option<u64> {
    words.get(dense_span(block)?).copied()
}

/// `words` as an index of a dense set's words (or a span of them), if it can be one:
/// `None` past what a vector can hold, where a set stays sparse.
fn dense_span(words: u64) -> Option<usize> {
    usize::try_from(words).ok().filter(|w| *w < usize::MAX / 8)
}

fn index(block: u64) -> usize {
    dense_span(block).expect("a word within a dense set's span")
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

/// The positions of the set bits of a word, highest first.
struct BitsDown(u64);

impl Iterator for BitsDown {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        if self.0 == 0 {
            return None;
        }
        let bit = 63 - u64::from(self.0.leading_zeros());
        self.0 &= !(1 << bit);
        Some(bit)
    }
}

/// The set as it is stored: a tag (`0` inline, `1` sparse, `2` dense), then for inline
/// the count (a byte, at most 3) and the numbers ascending (varints); for sparse the
/// count of numbers, the count of words and each word's index (a varint: the first
/// index, then the gap to the one before minus one) with the word (u64); for dense the
/// count of numbers, the count of words and every word (u64). Loading builds the same
/// representation directly: a dense set's words go into its vector in one pass.
impl Codec for NumberSet {
    fn save(&self, out: &mut Writer) {
        match &self.repr {
            Repr::Inline { len, numbers } => {
                out.u8(0);
                out.u8(*len);
                for number in &numbers[..usize::from(*len)] {
                    out.varint(*number);
                }
            }
            Repr::Blocks { blocks, len } => {
                out.u8(1);
                out.len_prefix(*len);
                out.len_prefix(blocks.len());
                let mut next = 0;
                for (block, word) in blocks.iter() {
                    out.varint(block - next);
                    out.u64(*word);
                    next = block + 1;
                }
            }
            Repr::Dense { words, len } => {
                out.u8(2);
                out.len_prefix(*len);
                out.len_prefix(words.len());
                for word in words.iter() {
                    out.u64(*word);
                }
            }
        }
    }

    fn load(input: &mut Reader<'_>) -> Result<Self, SnapshotError> {
        let repr = match input.u8()? {
            0 => {
                let len = input.u8()?;
                if usize::from(len) > INLINE_MAX {
                    return Err(input.invalid("an inline set of more than 3 numbers"));
                }
                let mut numbers = [0; INLINE_MAX];
                for at in 0..usize::from(len) {
                    numbers[at] = input.varint()?;
                    if at > 0 && numbers[at] <= numbers[at - 1] {
                        return Err(input.invalid("an inline set out of order"));
                    }
                }
                Repr::Inline { len, numbers }
            }
            1 => {
                let len = input.usize()?;
                let count = input.count(9)?;
                let mut next = 0u64;
                let mut bits = 0usize;
                let mut pairs = Vec::with_capacity(count);
                for _ in 0..count {
                    let block = next
                        .checked_add(input.varint()?)
                        .filter(|block| *block <= u64::MAX / 64)
                        .ok_or_else(|| input.invalid("a word index past the numbers"))?;
                    let word = input.u64()?;
                    if word == 0 {
                        return Err(input.invalid("a sparse set with an empty word"));
                    }
                    bits += word.count_ones() as usize;
                    pairs.push((block, word));
                    next = block + 1;
                }
                if bits != len {
                    return Err(input.invalid("a set whose count is not its numbers'"));
                }
                Repr::Blocks {
                    blocks: pairs.into_iter().collect(),
                    len,
                }
            }
            2 => {
                let len = input.usize()?;
                let count = input.count(8)?;
                let mut words = Vec::with_capacity(count);
                let mut bits = 0usize;
                for _ in 0..count {
                    let word = input.u64()?;
                    bits += word.count_ones() as usize;
                    words.push(word);
                }
                if bits != len {
                    return Err(input.invalid("a set whose count is not its numbers'"));
                }
                Repr::Dense {
                    words: Radix::from_vec(words),
                    len,
                }
            }
            _ => return Err(input.invalid("a set of an unknown kind")),
        };
        Ok(Self { repr })
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
            // Mostly small numbers, which make dense sets, and some far ones, which
            // make them sparse again.
            ops in prop::collection::vec(
                (any::<bool>(), prop_oneof![9 => 0u64..300, 1 => 0u64..40_000]),
                0..200,
            ),
            after in prop::option::of(prop_oneof![0u64..320, 0u64..40_000]),
            before in prop::option::of(prop_oneof![0u64..320, 0u64..40_000]),
            snapshot_at in any::<prop::sample::Index>(),
        ) {
            let mut set = NumberSet::default();
            let mut model = BTreeSet::new();
            let snapshot_at = snapshot_at.index(ops.len() + 1);
            let mut snapshot = None;
            for (i, (insert, n)) in ops.into_iter().enumerate() {
                if i == snapshot_at {
                    snapshot = Some((set.clone(), model.clone()));
                }
                if insert {
                    prop_assert_eq!(set.insert(n), model.insert(n));
                } else {
                    prop_assert_eq!(set.remove(n), model.remove(&n));
                }
                prop_assert_eq!(set.len(), model.len());
                prop_assert_eq!(set.contains(n), model.contains(&n));
            }
            let expected: Vec<u64> = match after {
                Some(after) => model.range(after + 1..).copied().collect(),
                None => model.iter().copied().collect(),
            };
            prop_assert_eq!(set.iter_after(after).collect::<Vec<_>>(), expected);
            let expected: Vec<u64> = match before {
                Some(before) => model.range(..before).rev().copied().collect(),
                None => model.iter().rev().copied().collect(),
            };
            prop_assert_eq!(set.iter_before(before).collect::<Vec<_>>(), expected);
            prop_assert_eq!((set.first(), set.last()), (model.first().copied(), model.last().copied()));
            prop_assert_eq!(set.is_empty(), model.is_empty());
            if let Some((snapshot, model)) = snapshot {
                prop_assert_eq!(snapshot.iter().collect::<Vec<_>>(), model.into_iter().collect::<Vec<_>>(), "a clone keeps its numbers");
            }
            let mut rebuilt = NumberSet::default();
            for n in model.iter().rev() {
                rebuilt.insert_new(*n);
            }
            prop_assert_eq!(&rebuilt, &set, "equal whether inline or in blocks");
        }
    }

    #[test]
    fn the_edges_of_a_block() {
        let mut set = NumberSet::single(63);
        set.insert(64);
        set.insert(u64::MAX);
        assert_eq!(
            set.iter_after(Some(62)).collect::<Vec<_>>(),
            [63, 64, u64::MAX]
        );
        assert_eq!(set.iter_after(Some(63)).collect::<Vec<_>>(), [64, u64::MAX]);
        assert_eq!(set.iter_after(Some(u64::MAX)).count(), 0);
        assert_eq!(
            set.iter_before(None).collect::<Vec<_>>(),
            [u64::MAX, 64, 63]
        );
        assert_eq!(
            set.iter_before(Some(u64::MAX)).collect::<Vec<_>>(),
            [64, 63]
        );
        assert_eq!(set.iter_before(Some(64)).collect::<Vec<_>>(), [63]);
        assert_eq!(set.iter_before(Some(0)).count(), 0);
        set.remove(u64::MAX);
        set.insert(0);
        assert_eq!(set.iter_before(Some(1)).collect::<Vec<_>>(), [0]);
        assert_eq!(set.iter_before(Some(0)).count(), 0);
        // In blocks, then dense.
        let mut set: NumberSet = [0, 63, 64, 127, 128, u64::MAX].into_iter().collect();
        assert!(matches!(set.repr, Repr::Blocks { .. }));
        assert_eq!(
            set.iter_before(Some(128)).collect::<Vec<_>>(),
            [127, 64, 63, 0]
        );
        assert_eq!(
            set.iter_before(Some(u64::MAX)).collect::<Vec<_>>(),
            [128, 127, 64, 63, 0]
        );
        assert_eq!(set.last(), Some(u64::MAX));
        set.remove(u64::MAX);
        assert_eq!(
            set.iter_before(None).take(2).collect::<Vec<_>>(),
            [128, 127]
        );
        let even: NumberSet = (0..100).map(|n| n * 2).collect();
        assert!(matches!(even.repr, Repr::Dense { .. }));
        assert_eq!(
            even.iter_before(Some(65)).take(2).collect::<Vec<_>>(),
            [64, 62]
        );
        assert_eq!(
            even.iter_before(Some(64)).take(2).collect::<Vec<_>>(),
            [62, 60]
        );
        assert_eq!(even.iter_before(Some(u64::MAX)).next(), Some(198));
        assert_eq!(even.iter_before(Some(1)).collect::<Vec<_>>(), [0]);
    }

    #[test]
    fn a_set_moves_from_inline_to_blocks_and_keeps_its_numbers() {
        let mut set = NumberSet::single(500);
        for n in [3, 70, 1, 64] {
            set.insert_new(n);
        }
        assert!(matches!(set.repr, Repr::Blocks { .. }));
        assert_eq!(
            set.iter_after(None).collect::<Vec<_>>(),
            [1, 3, 64, 70, 500]
        );
        assert_eq!(set.iter_after(Some(3)).collect::<Vec<_>>(), [64, 70, 500]);
        for n in [3, 500, 1, 64] {
            set.remove(n);
        }
        assert_eq!((set.len(), set.contains(70)), (1, true));
        assert_eq!(set, NumberSet::single(70));
    }

    #[test]
    fn a_set_turns_dense_as_it_fills_and_sparse_when_it_spreads() {
        let mut set = NumberSet::default();
        for n in 0..100 {
            set.insert_new(n * 3);
        }
        assert!(
            matches!(set.repr, Repr::Dense { .. }),
            "100 numbers in 5 words"
        );
        let kept = set.clone();
        // Within one number per word of the new span: stays dense.
        set.insert_new(6_000);
        assert!(matches!(set.repr, Repr::Dense { .. }));
        // Far beyond: sparse again, with every number.
        set.insert_new(1_000_000);
        assert!(matches!(set.repr, Repr::Blocks { .. }));
        let mut expected: Vec<u64> = (0..100).map(|n| n * 3).collect();
        expected.extend([6_000, 1_000_000]);
        assert_eq!(set.iter_after(None).collect::<Vec<_>>(), expected);
        assert_eq!(
            set.iter_after(Some(297)).collect::<Vec<_>>(),
            [6_000, 1_000_000]
        );
        set.remove(6_000);
        assert!(!set.contains(6_000) && set.contains(1_000_000) && set.len() == 101);
        // The clone taken while dense kept its numbers.
        assert_eq!(kept.len(), 100);
        assert!(!kept.contains(6_000) && kept.contains(297));
    }
}
