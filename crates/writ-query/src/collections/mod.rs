//! The building blocks of a read model's state: persistent collections that a projection
//! changes event by event and the runtime clones after every batch (a published
//! snapshot). Every clone shares structure with the original, so it costs a few
//! reference counts, and a change after it copies only the small nodes it touches.
//!
//! | type | what it is |
//! |---|---|
//! | [`NumberSet`] | a set of row numbers (inline, sparse or dense words) |
//! | [`TextIndex`] + [`Words`] | word → [`NumberSet`] of rows whose text holds it |
//! | [`List<T>`] | a list that only grows at the end: a row's history |
//! | [`Radix<T>`] | a vector that grows at the end, for lookups by index |
//! | [`KeyIndex`] | string key → number, hashed, holding no strings |
//!
//! The name: these are collections in the sense of `std::collections`, persistent ones;
//! "storage" would suggest disks, which the query side does not touch.

mod key_index;
mod list;
mod number_set;
mod radix;
mod text_index;

pub use key_index::{KeyIndex, KeyTag};
pub use list::{List, ListIter};
pub use number_set::NumberSet;
pub use radix::Radix;
pub use text_index::{TextIndex, Words};
