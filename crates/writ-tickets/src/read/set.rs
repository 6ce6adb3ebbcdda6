//! The read model's own persistent collections: [`TicketSet`], a set of ticket numbers
//! stored as 64-bit blocks, and [`Radix`], a vector for lookups by index.

use std::fmt;
use std::sync::Arc;

use imbl::OrdMap;

/// The most numbers a set keeps inline, before it moves to blocks.
const INLINE_MAX: usize = 3;

/// A set of ticket numbers in ascending order: up to three numbers inline, then 64-bit
/// words with one bit per ticket (word `w` holds numbers `64w` to `64w + 63`), and the
/// count. The words are either
///
/// - sparse: a persistent map from word index to the words that are not zero, or
/// - dense: every word from the first up to the last non-zero one, in a [`Radix`]
///   vector, once the set holds at least two numbers per word of that span (and as long
///   as it holds one per word when it grows).
///
/// Most words of a text index are rare (an id, a number, a typo: one or two tickets
/// each), so small sets sit inline and cost no allocation. The index sets that take the
/// inserts of a replay (every open ticket, every ticket with the word `comment`) are
/// dense: an insert is then a shift and a mask down a two-level trie of 64-word leaves,
/// with no keys to search, and takes 8 bytes per 64 tickets. A dense set that grows
/// keeps at most 8 bytes per number it holds; one that shrinks by removals stays dense
/// (as a sparse one stays sparse), so it takes at most a bit per ticket of its span.
/// A clone shares the words; a change after it copies one path of small nodes.
#[derive(Clone)]
pub(crate) struct TicketSet {
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

impl Default for TicketSet {
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
impl PartialEq for TicketSet {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter_after(None).eq(other.iter_after(None))
    }
}

impl Eq for TicketSet {}

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
        let mut numbers = [0; INLINE_MAX];
        numbers[0] = number;
        Self {
            repr: Repr::Inline { len: 1, numbers },
        }
    }

    /// How many numbers it holds (O(1)).
    pub(crate) fn len(&self) -> usize {
        match &self.repr {
            Repr::Inline { len, .. } => usize::from(*len),
            Repr::Blocks { len, .. } | Repr::Dense { len, .. } => *len,
        }
    }

    /// Whether it holds none.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether it holds `number`.
    pub(crate) fn contains(&self, number: u64) -> bool {
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

    /// Adds `number`; changes nothing (and copies nothing) when it is there.
    pub(crate) fn insert(&mut self, number: u64) {
        if !self.contains(number) {
            self.insert_new(number);
        }
    }

    /// Adds `number`, which the caller knows is not there: one walk down the tree instead
    /// of two.
    pub(crate) fn insert_new(&mut self, number: u64) {
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

    /// Removes `number` if it is there.
    pub(crate) fn remove(&mut self, number: u64) {
        if !self.contains(number) {
            return;
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
    }

    /// The numbers greater than `after` (all of them for `None`), ascending.
    pub(crate) fn iter_after(&self, after: Option<u64>) -> impl Iterator<Item = u64> + '_ {
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

/// Bits of an index each level of a [`Radix`] resolves.
const RADIX_BITS: u32 = 6;
/// Children of a [`Radix`] node.
const RADIX_FANOUT: usize = 1 << RADIX_BITS;

/// A persistent vector that grows at the end: a trie of 64-way nodes, every leaf full
/// but the last, so an index is found by shifts and masks, one node per level (three
/// levels for 262,144 items), with none of the size tables of a general vector. A clone
/// shares every node; a change after it copies the nodes on the path (up to 64 items or
/// pointers each).
#[derive(Clone)]
pub(crate) struct Radix<T> {
    root: Node<T>,
    len: usize,
    /// Branch levels above the leaves.
    depth: u32,
}

#[derive(Clone)]
enum Node<T> {
    Leaf(Arc<Vec<T>>),
    Branch(Arc<Vec<Node<T>>>),
}

impl<T> Default for Radix<T> {
    fn default() -> Self {
        Self {
            root: Node::Leaf(Arc::new(Vec::new())),
            len: 0,
            depth: 0,
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Radix<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: PartialEq> PartialEq for Radix<T> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<T: Eq> Eq for Radix<T> {}

impl<T> Radix<T> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn get(&self, index: usize) -> Option<&T> {
        if index >= self.len {
            return None;
        }
        let mut node = &self.root;
        let mut shift = self.depth * RADIX_BITS;
        loop {
            match node {
                Node::Branch(children) => {
                    node = &children[(index >> shift) & (RADIX_FANOUT - 1)];
                    shift -= RADIX_BITS;
                }
                Node::Leaf(items) => return Some(&items[index & (RADIX_FANOUT - 1)]),
            }
        }
    }

    /// The items in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        let mut stack = vec![&self.root];
        let mut leaf: std::slice::Iter<'_, T> = [].iter();
        std::iter::from_fn(move || {
            loop {
                if let Some(item) = leaf.next() {
                    return Some(item);
                }
                match stack.pop()? {
                    Node::Leaf(items) => leaf = items.iter(),
                    Node::Branch(children) => stack.extend(children.iter().rev()),
                }
            }
        })
    }
}

impl<T: Clone> Radix<T> {
    /// A vector of the items of `items`.
    pub(crate) fn from_vec(items: Vec<T>) -> Self {
        let mut radix = Self::default();
        for item in items {
            radix.push(item);
        }
        radix
    }

    /// The item at `index`, unique: the nodes on its path are copied first if a clone
    /// shares them.
    pub(crate) fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        if index >= self.len {
            return None;
        }
        let mut node = &mut self.root;
        let mut shift = self.depth * RADIX_BITS;
        loop {
            match node {
                Node::Branch(children) => {
                    node = &mut Arc::make_mut(children)[(index >> shift) & (RADIX_FANOUT - 1)];
                    shift -= RADIX_BITS;
                }
                Node::Leaf(items) => {
                    return Some(&mut Arc::make_mut(items)[index & (RADIX_FANOUT - 1)]);
                }
            }
        }
    }

    /// Appends `item`.
    pub(crate) fn push(&mut self, item: T) {
        let index = self.len;
        if index >> (RADIX_BITS * (self.depth + 1)) != 0 {
            // Full: the root becomes the first child of a new root.
            let old = std::mem::replace(&mut self.root, Node::Branch(Arc::new(Vec::new())));
            let Node::Branch(children) = &mut self.root else {
                unreachable!("just made")
            };
            Arc::make_mut(children).push(old);
            self.depth += 1;
        }
        let mut node = &mut self.root;
        let mut shift = self.depth * RADIX_BITS;
        loop {
            match node {
                Node::Branch(children) => {
                    let children = Arc::make_mut(children);
                    let at = (index >> shift) & (RADIX_FANOUT - 1);
                    if at == children.len() {
                        children.push(if shift == RADIX_BITS {
                            Node::Leaf(Arc::new(Vec::with_capacity(RADIX_FANOUT)))
                        } else {
                            Node::Branch(Arc::new(Vec::with_capacity(RADIX_FANOUT)))
                        });
                    }
                    node = &mut children[at];
                    shift -= RADIX_BITS;
                }
                Node::Leaf(items) => {
                    Arc::make_mut(items).push(item);
                    self.len += 1;
                    return;
                }
            }
        }
    }
}

impl<T> std::ops::Index<usize> for Radix<T> {
    type Output = T;

    fn index(&self, index: usize) -> &T {
        self.get(index).expect("index within the vector")
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
            // Mostly small numbers, which make dense sets, and some far ones, which
            // make them sparse again.
            ops in prop::collection::vec(
                (any::<bool>(), prop_oneof![9 => 0u64..300, 1 => 0u64..40_000]),
                0..200,
            ),
            after in prop::option::of(prop_oneof![0u64..320, 0u64..40_000]),
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
            let mut rebuilt = TicketSet::default();
            for n in model.iter().rev() {
                rebuilt.insert_new(*n);
            }
            prop_assert_eq!(&rebuilt, &set, "equal whether inline or in blocks");
        }
    }

    proptest! {
        #[test]
        fn a_radix_is_a_vector_and_its_clones_keep_their_items(
            len in 0usize..5000,
            changes in prop::collection::vec((any::<prop::sample::Index>(), any::<u32>()), 0..50),
            clone_at in any::<prop::sample::Index>(),
        ) {
            let mut radix = Radix::default();
            let mut model = Vec::new();
            let clone_at = clone_at.index(len + 1);
            let mut kept = None;
            for i in 0..len {
                if i == clone_at {
                    kept = Some((radix.clone(), model.clone()));
                }
                radix.push(i as u32);
                model.push(i as u32);
            }
            if clone_at == len {
                kept = Some((radix.clone(), model.clone()));
            }
            for (at, value) in changes {
                if len > 0 {
                    let at = at.index(len);
                    *radix.get_mut(at).unwrap() = value;
                    model[at] = value;
                }
            }
            prop_assert_eq!(radix.len(), model.len());
            prop_assert_eq!(radix.iter().copied().collect::<Vec<_>>(), model.clone());
            for (i, value) in model.iter().enumerate() {
                prop_assert_eq!(radix.get(i), Some(value));
            }
            prop_assert_eq!(radix.get(len), None);
            let (kept, kept_model) = kept.unwrap();
            prop_assert_eq!(kept.iter().copied().collect::<Vec<_>>(), kept_model);
            prop_assert_eq!(Radix::from_vec(model.clone()), radix);
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

    #[test]
    fn a_set_moves_from_inline_to_blocks_and_keeps_its_numbers() {
        let mut set = TicketSet::unit(500);
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
        assert_eq!(set, TicketSet::unit(70));
    }

    #[test]
    fn a_set_turns_dense_as_it_fills_and_sparse_when_it_spreads() {
        let mut set = TicketSet::default();
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
