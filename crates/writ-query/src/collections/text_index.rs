//! [`TextIndex`]: words to the rows whose text holds them, and [`Words`], the words a
//! row is listed under.

use std::fmt;
use std::sync::Arc;

use imbl::HashMap;

use super::NumberSet;
use crate::snapshot::{Codec, Reader, SnapshotError, Writer};
use crate::text::each_token;

/// A text index: each word (a token of [`text`](crate::text)) → the numbers of the rows
/// whose text holds it.
///
/// A row keeps its own [`Words`]: the words it is listed under, sorted. Indexing a text
/// for a row probes the shared index only for words new to the row, so a row that gets
/// its hundredth note mostly searches its own small list, and a row is never
/// listed twice under a word. Rows are added to a word's set as their texts arrive; a
/// search intersects the sets of its words (see
/// [`Selection::and_text`](super::Selection::and_text)).
///
/// Keys are `Arc<str>`s shared with the rows' word lists where those hold long words; a
/// clone shares the map and the sets, and a change after it copies one path of each.
///
/// ```
/// use writ_query::collections::{TextIndex, Words};
///
/// let mut index = TextIndex::new();
/// let mut words = Words::new();
/// index.insert(7, &mut words, "Printer on FIRE");
/// index.insert(7, &mut words, "the printer again");
/// assert_eq!(words.iter().collect::<Vec<_>>(), ["again", "fire", "on", "printer", "the"]);
/// assert_eq!(index.get("printer").map(|rows| rows.len()), Some(1));
/// assert!(index.get("Printer").is_none(), "words are tokens: lowercase");
///
/// index.remove(7, &mut words);
/// assert!(index.is_empty() && words.is_empty());
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TextIndex {
    words: HashMap<Arc<str>, NumberSet>,
}

impl fmt::Debug for TextIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TextIndex")
            .field("words", &self.words.len())
            .finish_non_exhaustive()
    }
}

impl TextIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many distinct words it holds.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The rows listed under `word`, a token (lowercase; see [`text`](crate::text)).
    pub fn get(&self, word: &str) -> Option<&NumberSet> {
        self.words.get(word)
    }

    /// The words with their rows, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &NumberSet)> {
        self.words.iter().map(|(word, set)| (&**word, set))
    }

    /// Indexes `text` for row `number`, whose words are `words`: each token the row does
    /// not have yet joins `words` and puts the row in the shared index under it. Long
    /// words in the row's list share the index's key, so they are stored once.
    pub fn insert(&mut self, number: u64, words: &mut Words, text: &str) {
        each_token(text, |token| {
            let key = word_key(token.as_bytes());
            let Err(at) = words.search(key, token.as_bytes()) else {
                return;
            };
            let word = match self.words.get_key_value_mut(token) {
                Some((key, set)) => {
                    set.insert_new(number);
                    Word::new(token, key)
                }
                None => {
                    let key: Arc<str> = Arc::from(token);
                    let word = Word::new(token, &key);
                    self.words.insert(key, NumberSet::single(number));
                    word
                }
            };
            words.insert_at(at, word);
        });
    }

    /// Takes row `number` out of every word of `words` (its word list), which it empties:
    /// for a row that is removed, or whose text is indexed anew.
    pub fn remove(&mut self, number: u64, words: &mut Words) {
        for word in words.iter() {
            if let Some(set) = self.words.get_mut(word) {
                set.remove(number);
                if set.is_empty() {
                    self.words.remove(word);
                }
            }
        }
        *words = Words::new();
    }
}

/// The words a row is listed under in a [`TextIndex`]: the tokens of its texts, sorted
/// and without duplicates, in one small array (short words inline) while there are few,
/// in a persistent ordered set beyond [`WORDS_SMALL_MAX`]. The row keeps it;
/// [`TextIndex::insert`] adds to it. A clone shares it.
///
/// A row's list is shared with the read model's published snapshots, so the first word
/// added after a publish copies what it changes: the whole array while it is small (at
/// most [`WORDS_SMALL_MAX`] words of 24 bytes), one path of the set's B-tree nodes once
/// it is large. A row that gathers words without end (a stream that gets a comment with a new
/// word every time) so costs the same per word at any size, not a copy of every word it
/// has.
///
/// ```
/// use writ_query::collections::{TextIndex, Words};
///
/// let mut index = TextIndex::new();
/// let mut words = Words::new();
/// index.insert(0, &mut words, "b a b");
/// assert_eq!((words.len(), words.contains("b")), (2, true));
/// ```
#[derive(Clone, Default)]
pub struct Words(Repr);

/// Most words a row's list keeps in one array; a list that grows beyond moves to a
/// persistent ordered set (and stays there, until the row's words are removed).
pub const WORDS_SMALL_MAX: usize = 256;

#[derive(Clone)]
enum Repr {
    Small(Arc<Vec<Word>>),
    Large(imbl::OrdSet<Word>),
}

impl Default for Repr {
    fn default() -> Self {
        Self::Small(Arc::default())
    }
}

impl PartialEq for Words {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Words {}

impl fmt::Debug for Words {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The most words [`Words::warm`] reads: all of a list of up to 16 words (24 bytes each,
/// 6 cache lines), an even sample of a longer one.
const WARM_WORDS: usize = 16;

impl Words {
    /// No words (allocates nothing until the first).
    pub fn new() -> Self {
        Self::default()
    }

    /// How many words.
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Small(words) => words.len(),
            Repr::Large(words) => words.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The words, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let (small, large) = match &self.0 {
            Repr::Small(words) => (Some(words.iter()), None),
            Repr::Large(words) => (None, Some(words.iter())),
        };
        small
            .into_iter()
            .flatten()
            .chain(large.into_iter().flatten())
            .map(Word::as_str)
    }

    /// Whether `word` is one of them (a binary search).
    pub fn contains(&self, word: &str) -> bool {
        let key = word_key(word.as_bytes());
        self.search(key, word.as_bytes()).is_ok()
    }

    /// Whether `token` (whose [`word_key`] is `key`) is one of the words: `Ok` if it is,
    /// else `Err` with where it belongs, for [`Words::insert_at`] (in the small array; a
    /// large set finds its place itself).
    fn search(&self, key: (u128, u64), token: &[u8]) -> Result<usize, usize> {
        match &self.0 {
            Repr::Small(words) => words.binary_search_by(|word| word.cmp_token(key, token)),
            Repr::Large(words) => {
                if words.contains(token) {
                    Ok(0)
                } else {
                    Err(0)
                }
            }
        }
    }

    /// Puts `word` at `at`, where a search said it belongs.
    fn insert_at(&mut self, at: usize, word: Word) {
        match &mut self.0 {
            Repr::Small(words) if words.len() < WORDS_SMALL_MAX => {
                Arc::make_mut(words).insert(at, word);
            }
            Repr::Small(words) => {
                let mut large: imbl::OrdSet<Word> = words.iter().cloned().collect();
                large.insert(word);
                self.0 = Repr::Large(large);
            }
            Repr::Large(words) => {
                words.insert(word);
            }
        }
    }

    /// Where the list lives, without reading it: for a stage of warming that reads the
    /// row (which holds this pointer) before a later stage reads the list.
    #[inline]
    pub fn address(&self) -> usize {
        match &self.0 {
            Repr::Small(words) => Arc::as_ptr(words).addr(),
            Repr::Large(words) => std::ptr::from_ref(words).addr(),
        }
    }

    /// Reads all of a short list, an even sample of a long one (which brings in part of
    /// what a binary search of it will touch), and gives what it read: for warming a row
    /// before its text is indexed (see [`Table::warm`](super::Table::warm)).
    #[inline]
    pub fn warm(&self) -> usize {
        match &self.0 {
            Repr::Small(words) => {
                let step = words.len().div_ceil(WARM_WORDS).max(1);
                words
                    .iter()
                    .step_by(step)
                    .fold(0, |sink, word| sink ^ word.as_bytes().len())
            }
            // A tree: its search reads few chunks, which warming cannot tell in advance.
            Repr::Large(words) => words.len(),
        }
    }
}

/// The longest word a row's word list keeps inline.
const WORD_INLINE_MAX: usize = 22;

/// A word of a row's word list: inline when short (most are), so that searching the list
/// compares bytes in the list itself; otherwise the text index's key, shared.
#[derive(Clone)]
enum Word {
    Inline {
        len: u8,
        bytes: [u8; WORD_INLINE_MAX],
    },
    Shared(Arc<str>),
}

impl Word {
    fn new(word: &str, key: &Arc<str>) -> Self {
        if word.len() <= WORD_INLINE_MAX {
            let mut bytes = [0; WORD_INLINE_MAX];
            bytes[..word.len()].copy_from_slice(word.as_bytes());
            Self::Inline {
                len: word.len() as u8,
                bytes,
            }
        } else {
            Self::Shared(Arc::clone(key))
        }
    }

    /// UTF-8 bytes, whose order is the order of the strings.
    #[inline]
    fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Self::Shared(word) => word.as_bytes(),
        }
    }

    #[inline]
    fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).expect("made from a str")
    }

    /// Orders this word against `token` (whose [`word_key`] is `key`) as strings are
    /// ordered, comparing two integers rather than calling `memcmp` for short words.
    fn cmp_token(&self, key: (u128, u64), token: &[u8]) -> std::cmp::Ordering {
        let own = match self {
            Self::Inline { bytes, .. } => inline_key(bytes),
            Self::Shared(word) => word_key(word.as_bytes()),
        };
        match own.cmp(&key) {
            // Equal keys: the same first 22 bytes. Tokens hold no NUL, so two words of
            // up to 22 bytes are then the same; longer ones are told apart by the rest.
            std::cmp::Ordering::Equal
                if matches!(self, Self::Shared(_)) || token.len() > WORD_INLINE_MAX =>
            {
                self.as_bytes().cmp(token)
            }
            order => order,
        }
    }
}

/// The first 22 bytes of a word as two big-endian integers, padded with zeros: for words
/// without NUL (tokens have none), their order is the order of the words' first 22 bytes.
fn word_key(word: &[u8]) -> (u128, u64) {
    let mut bytes = [0u8; WORD_INLINE_MAX];
    let len = word.len().min(WORD_INLINE_MAX);
    bytes[..len].copy_from_slice(&word[..len]);
    inline_key(&bytes)
}

/// [`word_key`] of an inline word, whose bytes past its length are zeros: a few moves,
/// no copy of a length known only at run time.
fn inline_key(bytes: &[u8; WORD_INLINE_MAX]) -> (u128, u64) {
    let (high, rest) = bytes.split_at(16);
    let mut low = [0u8; 8];
    low[..WORD_INLINE_MAX - 16].copy_from_slice(rest);
    (
        u128::from_be_bytes(high.try_into().expect("16 bytes")),
        u64::from_be_bytes(low),
    )
}

impl PartialEq for Word {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Word {}

/// The order of the words' strings, as [`Word::cmp_token`] orders them against a token.
impl Ord for Word {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl PartialOrd for Word {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A large list is searched by a token's bytes (equal and ordered as the word's).
impl std::borrow::Borrow<[u8]> for Word {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for Word {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// The count of words, then each word with its set, in no particular order. A word
/// without rows, twice, empty or holding a NUL (which no token holds) is refused.
impl Codec for TextIndex {
    fn save(&self, out: &mut Writer) {
        out.len_prefix(self.words.len());
        for (word, set) in self.words.iter() {
            out.str(word);
            set.save(out);
        }
    }

    fn load(input: &mut Reader<'_>) -> Result<Self, SnapshotError> {
        let count = input.count(4)?;
        let mut words = HashMap::new();
        for _ in 0..count {
            let word = input.str()?;
            if word.is_empty() || word.contains('\0') {
                return Err(input.invalid("an empty word or one with a NUL"));
            }
            let set = NumberSet::load(input)?;
            if set.is_empty() {
                return Err(input.invalid("a word without rows"));
            }
            if words.insert(Arc::from(word), set).is_some() {
                return Err(input.invalid("a word twice"));
            }
        }
        Ok(Self { words })
    }
}

impl Words {
    /// Writes the count, then the words, sorted.
    pub fn save(&self, out: &mut Writer) {
        out.len_prefix(self.len());
        for word in self.iter() {
            out.str(word);
        }
    }

    /// Reads what [`Words::save`] wrote; long words share the key of `index` when it
    /// holds them, as [`TextIndex::insert`] makes them. Words out of order, empty or with
    /// a NUL are refused.
    pub fn load(input: &mut Reader<'_>, index: &TextIndex) -> Result<Self, SnapshotError> {
        let count = input.count(2)?;
        if count == 0 {
            return Ok(Self::new());
        }
        let mut words: Vec<Word> = Vec::with_capacity(count);
        for _ in 0..count {
            let word = input.str()?;
            if word.is_empty() || word.contains('\0') {
                return Err(input.invalid("an empty word or one with a NUL"));
            }
            if words
                .last()
                .is_some_and(|last| last.as_bytes() >= word.as_bytes())
            {
                return Err(input.invalid("words out of order"));
            }
            let word = match index.words.get_key_value(word) {
                Some((key, _)) => Word::new(word, key),
                None => Word::new(word, &Arc::from(word)),
            };
            words.push(word);
        }
        Ok(if words.len() > WORDS_SMALL_MAX {
            Self(Repr::Large(words.into_iter().collect()))
        } else {
            Self(Repr::Small(Arc::new(words)))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;

    use super::*;
    use crate::text::tokens;

    /// A row that gathers words without end moves to the persistent vector past
    /// [`WORDS_SMALL_MAX`] and stays sorted, searchable and saved as before; a clone taken
    /// at any size keeps its words; a row loaded from a snapshot is the same list.
    #[test]
    fn a_row_with_many_words_stays_sorted_and_clones_keep_theirs() {
        let mut index = TextIndex::new();
        let mut words = Words::new();
        let mut model: BTreeSet<String> = BTreeSet::new();
        let mut kept = Vec::new();
        // Descending and interleaved, so words go in at the front, the back and between.
        for i in (0..3 * WORDS_SMALL_MAX as u64).rev() {
            let word = if i % 2 == 0 {
                format!("w{i:05}")
            } else {
                format!("a-word-longer-than-twenty-two-bytes-{i:05}")
            };
            let text = format!("Comment {word} again");
            index.insert(7, &mut words, &text);
            model.extend(tokens(&text).map(|token| token.into_owned()));
            if i % 97 == 0 {
                kept.push((words.clone(), model.clone()));
            }
        }
        assert!(matches!(words.0, Repr::Large(_)));
        assert!(words.iter().eq(model.iter().map(String::as_str)));
        assert!(model.iter().all(|word| words.contains(word)));
        assert!(!words.contains("w00001") && !words.contains("zzz"));
        for (clone, then) in &kept {
            assert!(clone.iter().eq(then.iter().map(String::as_str)));
        }
        for word in &model {
            assert_eq!(
                index.get(word).map(|set| set.iter().collect::<Vec<_>>()),
                Some(vec![7])
            );
        }
        let mut out = Writer::new();
        words.save(&mut out);
        let bytes = out.into_vec();
        let mut input = Reader::new(&bytes);
        let loaded = Words::load(&mut input, &index).unwrap();
        assert_eq!(loaded, words);
        assert!(matches!(loaded.0, Repr::Large(_)));
        index.remove(7, &mut words);
        assert!(words.is_empty() && index.get("comment").is_none());
    }

    /// Short words, a long one (kept shared, not inline), and case and punctuation that
    /// the tokenizer folds.
    const VOCABULARY: [&str; 7] = [
        "printer",
        "Fire!",
        "fire",
        "café",
        "x-1",
        "a-word-longer-than-twenty-two-bytes",
        "a-word-longer-than-twenty-two-bytes-too",
    ];

    proptest! {
        /// Texts indexed and rows removed, against a map of word → rows; a clone taken
        /// midway keeps what it held.
        #[test]
        fn the_text_index_lists_each_row_under_the_words_of_its_texts(
            ops in prop::collection::vec(
                (0u64..6, prop::option::of(prop::collection::vec(0usize..7, 0..4))),
                0..40,
            ),
            clone_at in any::<prop::sample::Index>(),
        ) {
            let mut index = TextIndex::new();
            let mut rows: Vec<Words> = vec![Words::new(); 6];
            let mut model: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
            let clone_at = clone_at.index(ops.len() + 1);
            let mut kept = None;
            for (i, (row, text)) in ops.iter().enumerate() {
                if i == clone_at {
                    kept = Some((index.clone(), model.clone()));
                }
                let words = &mut rows[*row as usize];
                match text {
                    Some(text) => {
                        let text: Vec<&str> = text.iter().map(|w| VOCABULARY[*w]).collect();
                        let text = text.join(" ");
                        index.insert(*row, words, &text);
                        model.entry(*row).or_default().extend(tokens(&text).map(|t| t.into_owned()));
                    }
                    None => {
                        index.remove(*row, words);
                        model.remove(row);
                    }
                }
            }
            let check = |index: &TextIndex, model: &BTreeMap<u64, BTreeSet<String>>| -> Result<(), TestCaseError> {
                let mut by_word: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
                for (row, words) in model {
                    for word in words {
                        by_word.entry(word).or_default().push(*row);
                    }
                }
                prop_assert_eq!(index.len(), by_word.len());
                for (word, rows) in &by_word {
                    let listed: Vec<u64> = index.get(word).map(|set| set.iter().collect()).unwrap_or_default();
                    prop_assert_eq!(&listed, rows, "{}", word);
                }
                Ok(())
            };
            check(&index, &model)?;
            for (row, words) in rows.iter().enumerate() {
                let expected: Vec<&str> = model.get(&(row as u64)).map(|w| w.iter().map(String::as_str).collect()).unwrap_or_default();
                prop_assert_eq!(words.iter().collect::<Vec<_>>(), expected.clone());
                for word in expected {
                    prop_assert!(words.contains(word));
                }
                prop_assert!(!words.contains("printers"));
            }
            if let Some((kept, model)) = kept {
                check(&kept, &model)?;
            }
        }
    }

    proptest! {
        #[test]
        fn words_order_as_strings(
            a in "[a-z0-9é]{0,30}",
            b in "[a-z0-9é]{0,30}",
            shared in "[a-z]{21,24}",
        ) {
            for (x, y) in [(&a, &b), (&a, &shared), (&shared, &b), (&shared, &shared)] {
                let word = Word::new(x, &Arc::from(x.as_str()));
                prop_assert_eq!(
                    word.cmp_token(word_key(y.as_bytes()), y.as_bytes()),
                    x.as_str().cmp(y.as_str()),
                    "{} vs {}", x, y
                );
                prop_assert_eq!(word.as_str(), x.as_str());
            }
        }
    }
}
