//! The building blocks of a read model's state: persistent collections that a projection
//! changes event by event and the runtime clones after every batch (a published
//! snapshot). Every clone shares structure with the original, so it costs a few
//! reference counts, and a change after it copies only the small nodes it touches.
//!
//! A domain's read side reads like what it keeps: "a table of counters keyed by id, indexed
//! by status and owner, paged by cursor".
//!
//! | type | what it is | reach for it for |
//! |---|---|---|
//! | [`Table<V>`] | rows numbered in insertion order, found by key ([`Row::key`]) or number | the entities: counters, accounts, stock items |
//! | [`Index<K>`] | key → [`NumberSet`] of rows, hashed | lookups, counts and pages by a field: counters by status, by owner |
//! | [`SortedIndex<K>`] | key → [`NumberSet`] of rows, in key order | listings by a field: stock by sku |
//! | [`TextIndex`] + [`Words`] | word → [`NumberSet`] of rows whose text holds it | searches by words in titles and notes |
//! | [`Selection`] | every row, or those in every one of some sets | what a page lists ([`Table::page`]) |
//! | [`List<T>`] | a list that only grows at the end | a row's history: notes, events |
//! | [`NumberSet`] | a set of row numbers (inline, sparse or dense words) | what the indexes hold; sets of one's own |
//! | [`Radix<T>`] | a vector that grows at the end, by index | what tables are made of |
//! | [`KeyIndex`] | string key → number, hashed, holding no strings | what tables find keys with |
//!
//! Rows are numbered because numbers are cheap to keep in many places: an index holds
//! small integers, not ids, and the numbers' order is the order rows came in, which makes
//! cursors stable ([`paging`](crate::paging)). Indexes do not follow rows by themselves:
//! the projection that changes a row changes its index entries in the same `apply`, as
//! the example does. That keeps every index a plain value with no callbacks, and a
//! snapshot never sees a row and its indexes disagree, since it is taken between batches.
//!
//! The name: these are collections in the sense of `std::collections`, persistent ones;
//! "storage" would suggest disks, which the query side does not touch.
//!
//! # Example: a counters read model
//!
//! ```
//! use std::sync::Arc;
//! use writ_query::collections::{Index, List, Row, Selection, SortedIndex, Table};
//! use writ_query::paging::{Order, Page, PageRequest};
//!
//! #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
//! enum Status { Open, Closed }
//!
//! #[derive(Clone, Debug)]
//! struct Counter {
//!     id: Arc<str>,
//!     owner: Arc<str>,
//!     status: Status,
//!     /// The counter's events, oldest first: (position, type).
//!     history: List<(u64, &'static str)>,
//! }
//!
//! impl Row for Counter {
//!     fn key(&self) -> &str { &self.id }
//! }
//!
//! #[derive(Clone, Debug)]
//! struct Stock { sku: Arc<str>, quantity: u64 }
//!
//! impl Row for Stock {
//!     fn key(&self) -> &str { &self.sku }
//! }
//!
//! #[derive(Clone, Debug, Default)]
//! struct Counters {
//!     counters: Table<Counter>,
//!     by_status: Index<Status>,
//!     by_owner: Index<Arc<str>>,
//!     stock: Table<Stock>,
//!     by_sku: SortedIndex<Arc<str>>,
//! }
//!
//! impl Counters {
//!     fn created(&mut self, position: u64, id: &str, owner: &str) {
//!         let counter = Counter {
//!             id: id.into(),
//!             owner: owner.into(),
//!             status: Status::Open,
//!             history: List::new(),
//!         };
//!         let number = self.counters.insert(counter).expect("counter ids are unique");
//!         self.counters.row_mut(number).unwrap().history.push((position, "CounterCreated"));
//!         self.by_status.insert(Status::Open, number);
//!         self.by_owner.insert(owner.into(), number);
//!     }
//!
//!     fn closed(&mut self, position: u64, id: &str) {
//!         let number = self.counters.number(id).expect("created before");
//!         let counter = self.counters.row_mut(number).unwrap();
//!         let old = std::mem::replace(&mut counter.status, Status::Closed);
//!         counter.history.push((position, "CounterClosed"));
//!         self.by_status.update(number, Some(&old), Some(Status::Closed));
//!     }
//!
//!     fn restocked(&mut self, sku: &str, quantity: u64) {
//!         match self.stock.get_mut(sku) {
//!             Some(stock) => stock.quantity += quantity,
//!             None => {
//!                 let number = self.stock.insert(Stock { sku: sku.into(), quantity }).unwrap();
//!                 self.by_sku.insert(sku.into(), number);
//!             }
//!         }
//!     }
//!
//!     /// Counters of an owner with a status, newest first.
//!     fn counters(&self, owner: &str, status: Status, request: &PageRequest) -> Page<&Counter> {
//!         let mut selection = Selection::all();
//!         selection.and(self.by_owner.get(owner)).and(self.by_status.get(&status));
//!         self.counters.page(&selection, request)
//!     }
//! }
//!
//! let mut model = Counters::default();
//! model.created(1, "c-1", "ann");
//! model.created(2, "c-2", "bob");
//! model.created(3, "c-3", "ann");
//! model.created(4, "c-4", "ann");
//! model.closed(5, "c-3");
//! for (sku, quantity) in [("sku-b", 5), ("sku-a", 2), ("sku-c", 1), ("sku-a", 1)] {
//!     model.restocked(sku, quantity);
//! }
//! let snapshot = model.clone();
//!
//! let first = snapshot.counters("ann", Status::Open, &PageRequest::first(Order::NEWEST_FIRST, 1));
//! assert_eq!(first.items.iter().map(|c| &*c.id).collect::<Vec<_>>(), ["c-4"]);
//! assert_eq!(first.total, 2);
//! let request = PageRequest::first(Order::NEWEST_FIRST, 1).after(first.next.unwrap());
//! let second = snapshot.counters("ann", Status::Open, &request);
//! assert_eq!((&*second.items[0].id, second.next), ("c-1", None));
//!
//! let stock = snapshot.stock.page_sorted(&snapshot.by_sku, &PageRequest::first(Order::Ascending, 2));
//! let listed: Vec<(&str, u64)> = stock.items.iter().map(|s| (&*s.sku, s.quantity)).collect();
//! assert_eq!(listed, [("sku-a", 3), ("sku-b", 5)]);
//! let cursor = stock.next.unwrap().encode();
//! let rest = snapshot.stock.page_sorted(
//!     &snapshot.by_sku,
//!     &PageRequest::first(Order::Ascending, 2).after(cursor.parse().unwrap()),
//! );
//! assert_eq!(rest.items[0].sku.as_ref(), "sku-c");
//!
//! let history = &snapshot.counters.get("c-3").unwrap().history;
//! assert_eq!(history.iter().map(|(_, kind)| *kind).collect::<Vec<_>>(), ["CounterCreated", "CounterClosed"]);
//! ```

mod index;
mod key_index;
mod list;
mod number_set;
mod radix;
mod table;
mod text_index;

pub use index::{Index, SortedIndex};
pub use key_index::{KeyIndex, KeyTag};
pub use list::{List, ListIter};
pub use number_set::NumberSet;
pub use radix::Radix;
pub use table::{Duplicate, Row, Selection, Table, WARM_KEYS_MAX, Warmed};
pub use text_index::{TextIndex, WORDS_SMALL_MAX, Words};
