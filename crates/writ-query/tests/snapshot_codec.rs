//! The blocks of a read model come back from their snapshot bytes equal, keep their
//! representation (so they write the same bytes again), and any bytes fail without a
//! panic.

use std::sync::Arc;

use proptest::prelude::*;
use writ_query::collections::{
    Index, List, NumberSet, Radix, Row, SortedIndex, Table, TextIndex, Words,
};
use writ_query::snapshot::{Codec, Reader, SnapshotError, Writer};

fn bytes_of<T: Codec>(value: &T) -> Vec<u8> {
    let mut out = Writer::new();
    value.save(&mut out);
    out.into_vec()
}

fn round_trip<T: Codec>(value: &T) -> Result<T, SnapshotError> {
    let bytes = bytes_of(value);
    let mut input = Reader::new(&bytes);
    let loaded = T::load(&mut input)?;
    input.finish()?;
    Ok(loaded)
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Item {
    key: String,
    value: u64,
}

impl Row for Item {
    fn key(&self) -> &str {
        &self.key
    }
}

impl Codec for Item {
    fn save(&self, out: &mut Writer) {
        self.key.save(out);
        self.value.save(out);
    }
    fn load(input: &mut Reader<'_>) -> Result<Self, SnapshotError> {
        Ok(Self {
            key: String::load(input)?,
            value: u64::load(input)?,
        })
    }
}

/// Inserts and removes that make sets of every representation: inline, sparse and
/// dense, grown and shrunk.
fn set_ops() -> impl Strategy<Value = Vec<(bool, u64)>> {
    prop::collection::vec(
        (
            prop::bool::weighted(0.8),
            prop_oneof![8 => 0u64..400, 1 => 0u64..100_000, 1 => any::<u64>()],
        ),
        0..300,
    )
}

fn set_of(ops: &[(bool, u64)]) -> NumberSet {
    let mut set = NumberSet::new();
    for (insert, number) in ops {
        if *insert {
            set.insert(*number);
        } else {
            set.remove(*number);
        }
    }
    set
}

proptest! {
    #[test]
    fn number_sets_come_back_equal_in_their_representation(ops in set_ops()) {
        let set = set_of(&ops);
        let loaded = round_trip(&set)?;
        prop_assert_eq!(&loaded, &set);
        prop_assert_eq!(loaded.len(), set.len());
        // The same representation: the same bytes again.
        prop_assert_eq!(bytes_of(&loaded), bytes_of(&set));
        // And it goes on behaving as a set.
        let mut grown = loaded;
        let mut reference = set;
        for n in [0, 63, 64, 5_000] {
            prop_assert_eq!(grown.insert(n), reference.insert(n));
        }
        prop_assert!(grown == reference);
    }

    #[test]
    fn tables_with_removed_rows_come_back_with_their_numbers_and_keys(
        ops in prop::collection::vec((any::<bool>(), 0u8..40, any::<u64>()), 0..120),
    ) {
        let mut table = Table::new();
        for (insert, key, value) in ops {
            let key = format!("k{key}");
            if insert {
                let _ = table.insert(Item { key, value });
            } else {
                table.remove(&key);
            }
        }
        let loaded = round_trip(&table)?;
        prop_assert_eq!(&loaded, &table);
        prop_assert_eq!(loaded.next_number(), table.next_number());
        for (number, item) in table.iter() {
            prop_assert_eq!(loaded.number(&item.key), Some(number));
        }
        // New rows get the numbers they would have got.
        let mut a = loaded;
        let mut b = table;
        prop_assert_eq!(
            a.insert(Item { key: "new".into(), value: 1 }).ok(),
            b.insert(Item { key: "new".into(), value: 1 }).ok()
        );
    }

    #[test]
    fn indexes_lists_and_radix_vectors_come_back_equal(
        pairs in prop::collection::vec((".{0,6}", 0u64..500), 0..100),
        items in prop::collection::vec(any::<u64>(), 0..200),
    ) {
        let mut index: Index<String> = Index::new();
        let mut sorted: SortedIndex<String> = SortedIndex::new();
        for (key, number) in &pairs {
            index.insert(key.clone(), *number);
            sorted.insert(key.clone(), *number);
        }
        prop_assert!(round_trip(&index)? == index);
        let loaded = round_trip(&sorted)?;
        prop_assert!(loaded == sorted);
        prop_assert_eq!(loaded.rows(), sorted.rows());

        let mut list = List::new();
        for item in &items {
            list.push(*item);
        }
        let loaded = round_trip(&list)?;
        prop_assert_eq!(&loaded, &list);
        prop_assert_eq!(loaded.last(), list.last());
        let mut grown = loaded;
        grown.push(7);
        list.push(7);
        prop_assert_eq!(grown, list);

        let radix: Radix<u64> = items.iter().copied().collect();
        prop_assert_eq!(round_trip(&radix)?, radix);
    }

    #[test]
    fn a_text_index_and_its_rows_words_come_back_equal(
        texts in prop::collection::vec("[a-z ]{0,60}|[A-Za-z0-9 éß]{0,40}", 0..30),
    ) {
        let mut index = TextIndex::new();
        let mut rows: Vec<Words> = Vec::new();
        for (number, text) in texts.iter().enumerate() {
            let mut words = Words::new();
            index.insert(number as u64, &mut words, text);
            index.insert(number as u64, &mut words, "a word of more than twenty-two letters: incomprehensibilities");
            rows.push(words);
        }
        let loaded = round_trip(&index)?;
        prop_assert!(loaded == index);
        for words in &rows {
            let mut out = Writer::new();
            words.save(&mut out);
            let bytes = out.into_vec();
            let mut input = Reader::new(&bytes);
            let back = Words::load(&mut input, &loaded)?;
            input.finish()?;
            prop_assert_eq!(&back, words);
        }
    }

    #[test]
    fn any_bytes_fail_or_load_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = NumberSet::load(&mut Reader::new(&bytes));
        let _ = Table::<Item>::load(&mut Reader::new(&bytes));
        let _ = Index::<String>::load(&mut Reader::new(&bytes));
        let _ = SortedIndex::<Arc<str>>::load(&mut Reader::new(&bytes));
        let _ = List::<Item>::load(&mut Reader::new(&bytes));
        let index = TextIndex::load(&mut Reader::new(&bytes)).unwrap_or_default();
        let _ = Words::load(&mut Reader::new(&bytes), &index);
    }
}

#[test]
fn a_damaged_set_is_refused() {
    let set: NumberSet = (0..500).collect();
    let bytes = bytes_of(&set);
    assert_eq!(bytes[0], 2, "dense");
    // A count that is not the words' bits.
    let mut wrong = bytes.clone();
    wrong[1] ^= 1;
    assert!(NumberSet::load(&mut Reader::new(&wrong)).is_err());
    // Cut short.
    assert!(NumberSet::load(&mut Reader::new(&bytes[..bytes.len() - 1])).is_err());
    // An unknown kind.
    assert!(NumberSet::load(&mut Reader::new(&[9])).is_err());
    // An inline set out of order.
    assert!(NumberSet::load(&mut Reader::new(&[0, 2, 5, 3])).is_err());
}
