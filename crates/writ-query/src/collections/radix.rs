//! [`Radix`]: a persistent vector that grows at the end, for lookups by index.

use std::fmt;
use std::sync::Arc;

use crate::snapshot::{Codec, Reader, SnapshotError, Writer};

/// Bits of an index each level of a [`Radix`] resolves.
const RADIX_BITS: u32 = 6;
/// Children of a [`Radix`] node.
const RADIX_FANOUT: usize = 1 << RADIX_BITS;

/// A persistent vector that grows at the end: a trie of 64-way nodes, every leaf full
/// but the last, so an index is found by shifts and masks, one node per level (three
/// levels for 262,144 items), with none of the size tables of a general vector. A clone
/// shares every node; a change after it copies the nodes on the path (up to 64 items or
/// pointers each).
///
/// Named after its structure, a radix trie, to tell it from `imbl::Vector` (a relaxed
/// radix balanced tree, which also inserts and splits anywhere, and pays for that on every
/// lookup): reach for this one when items are only appended and found by index, as the
/// rows of a [`Table`](super::Table) are.
///
/// ```
/// use writ_query::collections::Radix;
///
/// let mut radix: Radix<u32> = (0..1000).collect();
/// let snapshot = radix.clone();
/// *radix.get_mut(7).unwrap() = 70;
/// radix.push(1000);
/// assert_eq!((radix[7], radix.len()), (70, 1001));
/// assert_eq!((snapshot[7], snapshot.len()), (7, 1000));
/// ```
#[derive(Clone)]
pub struct Radix<T> {
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
        Self::new()
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
    /// An empty vector.
    pub fn new() -> Self {
        Self {
            root: Node::Leaf(Arc::new(Vec::new())),
            len: 0,
            depth: 0,
        }
    }

    /// How many items it holds.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds none.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The item at `index`: one node per level.
    #[inline]
    pub fn get(&self, index: usize) -> Option<&T> {
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

    /// The last item.
    pub fn last(&self) -> Option<&T> {
        self.get(self.len.checked_sub(1)?)
    }

    /// The items in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + '_ {
        // Leaves are full but the last, so item `i` is `i % 64` of leaf `i / 64`.
        let leaves = self.len.div_ceil(RADIX_FANOUT);
        (0..leaves).flat_map(move |leaf| self.leaf(leaf * RADIX_FANOUT).iter())
    }

    /// The leaf that holds `index`.
    fn leaf(&self, index: usize) -> &[T] {
        let mut node = &self.root;
        let mut shift = self.depth * RADIX_BITS;
        loop {
            match node {
                Node::Branch(children) => {
                    node = &children[(index >> shift) & (RADIX_FANOUT - 1)];
                    shift -= RADIX_BITS;
                }
                Node::Leaf(items) => return items,
            }
        }
    }
}

impl<T> Radix<T> {
    /// A vector of the items of `items`, built bottom up: full leaves of 64 items, then
    /// the branches over them.
    pub fn from_vec(items: Vec<T>) -> Self {
        let len = items.len();
        let mut items = items.into_iter();
        let mut level: Vec<Node<T>> = Vec::with_capacity(len.div_ceil(RADIX_FANOUT));
        loop {
            let leaf: Vec<T> = items.by_ref().take(RADIX_FANOUT).collect();
            if leaf.is_empty() {
                break;
            }
            level.push(Node::Leaf(Arc::new(leaf)));
        }
        let mut depth = 0;
        while level.len() > 1 {
            let mut nodes = level.into_iter();
            let mut branches = Vec::new();
            loop {
                let children: Vec<Node<T>> = nodes.by_ref().take(RADIX_FANOUT).collect();
                if children.is_empty() {
                    break;
                }
                branches.push(Node::Branch(Arc::new(children)));
            }
            level = branches;
            depth += 1;
        }
        match level.pop() {
            Some(root) => Self { root, len, depth },
            None => Self::new(),
        }
    }
}

impl<T: Clone> Radix<T> {
    /// The item at `index`, unique: the nodes on its path are copied first if a clone
    /// shares them.
    #[inline]
    pub fn get_mut(&mut self, index: usize) -> Option<&mut T> {
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
    pub fn push(&mut self, item: T) {
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

impl<T: Clone> FromIterator<T> for Radix<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
        let mut radix = Self::new();
        radix.extend(items);
        radix
    }
}

impl<T: Clone> Extend<T> for Radix<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, items: I) {
        for item in items {
            self.push(item);
        }
    }
}

impl<T> std::ops::Index<usize> for Radix<T> {
    type Output = T;

    #[inline]
    fn index(&self, index: usize) -> &T {
        self.get(index).expect("index within the vector")
    }
}

/// The count, then every item; loaded bottom up ([`Radix::from_vec`]).
impl<T: Codec> Codec for Radix<T> {
    fn save(&self, out: &mut Writer) {
        out.len_prefix(self.len);
        for item in self.iter() {
            item.save(out);
        }
    }

    fn load(input: &mut Reader<'_>) -> Result<Self, SnapshotError> {
        Vec::<T>::load(input).map(Self::from_vec)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

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
            prop_assert_eq!(radix.iter().rev().copied().collect::<Vec<_>>(), model.iter().rev().copied().collect::<Vec<_>>());
            for (i, value) in model.iter().enumerate() {
                prop_assert_eq!(radix.get(i), Some(value));
            }
            prop_assert_eq!(radix.get(len), None);
            prop_assert_eq!(radix.last(), model.last());
            let (kept, kept_model) = kept.unwrap();
            prop_assert_eq!(kept.iter().copied().collect::<Vec<_>>(), kept_model);
            // Built bottom up, it grows and changes like one built by pushes.
            let mut built = Radix::from_vec(model.clone());
            prop_assert_eq!(&built, &radix);
            for extra in 0..70u32 {
                built.push(extra);
                model.push(extra);
            }
            if let Some(first) = built.get_mut(0) {
                *first = 7;
                model[0] = 7;
            }
            prop_assert_eq!(built.iter().copied().collect::<Vec<_>>(), model.clone());
            prop_assert_eq!(built.get(model.len() - 1), model.last());
        }
    }
}
