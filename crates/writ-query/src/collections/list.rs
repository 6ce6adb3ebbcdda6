//! [`List`]: a persistent list that only grows at the end.

use std::fmt;
use std::sync::Arc;

use imbl::Vector;

use crate::snapshot::{Codec, Reader, SnapshotError, Writer};

/// The most items a [`List`] chunk holds.
const LIST_CHUNK: usize = 8;

/// A persistent list that only grows at the end: a row's history, such as its notes or
/// its events.
///
/// Items sit by value in chunks of up to 8: full chunks are shared, never changed again,
/// in a persistent vector; the last, growing chunk is a small `Vec` behind an `Arc`. So a
/// clone costs two reference counts, an append copies at most one chunk (the first append
/// after a snapshot, to leave the snapshot's chunk alone), and a row with a few notes
/// holds them in one small allocation, without a pointer and an allocation per note.
///
/// Read it with [`List::iter`] (or `for item in &list`), [`List::len`] and [`List::last`].
///
/// ```
/// use writ_query::collections::List;
///
/// let mut comments = List::new();
/// comments.push("On it");
/// let snapshot = comments.clone();
/// comments.push("Fixed");
/// assert_eq!(comments.iter().copied().collect::<Vec<_>>(), ["On it", "Fixed"]);
/// assert_eq!((snapshot.len(), snapshot.last()), (1, Some(&"On it")));
/// ```
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
    #[inline]
    pub fn last(&self) -> Option<&T> {
        match &self.tail {
            Some(tail) => tail.last(),
            None => self.full.last().and_then(|chunk| chunk.last()),
        }
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
    pub fn push(&mut self, item: T) {
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

impl<T> List<T> {
    /// Writes the count, then every item with `save`, oldest first.
    pub fn save_with(&self, out: &mut Writer, mut save: impl FnMut(&mut Writer, &T)) {
        out.len_prefix(self.len);
        for item in self {
            save(out, item);
        }
    }

    /// Reads what [`List::save_with`] wrote, each item with `load` (which takes at least
    /// `min_bytes`), into full chunks directly.
    pub fn load_with(
        input: &mut Reader<'_>,
        min_bytes: usize,
        mut load: impl FnMut(&mut Reader<'_>) -> Result<T, SnapshotError>,
    ) -> Result<Self, SnapshotError>
    where
        T: Clone,
    {
        let len = input.count(min_bytes)?;
        let mut full = Vector::new();
        let mut chunk = Vec::with_capacity(len.min(LIST_CHUNK));
        for _ in 0..len {
            chunk.push(load(input)?);
            if chunk.len() == LIST_CHUNK {
                let left = len - (full.len() + 1) * LIST_CHUNK;
                let next = Vec::with_capacity(left.min(LIST_CHUNK));
                full.push_back(Arc::new(std::mem::replace(&mut chunk, next)));
            }
        }
        let tail = (!chunk.is_empty()).then(|| Arc::new(chunk));
        Ok(Self { full, tail, len })
    }
}

/// The count, then every item, oldest first.
impl<T: Codec + Clone> Codec for List<T> {
    fn save(&self, out: &mut Writer) {
        self.save_with(out, |out, item| item.save(out));
    }

    fn load(input: &mut Reader<'_>) -> Result<Self, SnapshotError> {
        Self::load_with(input, T::MIN_BYTES, T::load)
    }
}

#[cfg(test)]
mod tests {
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
}
