//! Pages of a listing: which way it runs ([`Order`]), where a page starts ([`Cursor`]),
//! what a query asks for ([`PageRequest`], read from its arguments by [`Paging`]) and what
//! it answers ([`Page`]).
//!
//! A listing is in a fixed order of positions that do not move: row numbers of a
//! [`Table`](crate::collections::Table) (insertion order), or a key and a row number in a
//! [`SortedIndex`](crate::collections::SortedIndex). A page is at most `limit` items after
//! a cursor, the position of the last item of the page before. So a cursor stays valid
//! across snapshots: rows added or removed meanwhile never shift the pages that follow,
//! and paging on never repeats or skips a row that stayed (unless its own key in a sorted
//! index changed).
//!
//! The name: these types are about pages, not about storage, and a query module reads
//! `paging::Page` as what it is.
//!
//! ```
//! use serde_json::json;
//! use writ_query::Args;
//! use writ_query::paging::{Cursor, Order, Page, Paging};
//!
//! const PAGING: Paging = Paging::new(50, 1000);
//!
//! let map = json!({"limit": "2", "cursor": "1f", "order": "desc"}).as_object().unwrap().clone();
//! let request = PAGING.request::<()>(&Args::new(&map)).unwrap();
//! assert_eq!(request.limit, 2);
//! assert_eq!(request.order, Order::NEWEST_FIRST);
//! assert_eq!(request.cursor, Some(Cursor::after(31)));
//!
//! let page = Page { items: vec!["b", "a"], total: 7, next: Some(Cursor::after(29)) };
//! assert_eq!(
//!     page.to_json(|item| json!(item)),
//!     json!({"items": ["b", "a"], "total": 7, "cursor": "1d"})
//! );
//! ```

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::{Args, QueryError};

/// Which way a listing runs.
///
/// For rows listed by number ([`Table`](crate::collections::Table) pages), numbers are
/// given in insertion order, so [`Order::Ascending`] is oldest first
/// ([`Order::OLDEST_FIRST`]) and [`Order::Descending`] newest first
/// ([`Order::NEWEST_FIRST`]). For a [`SortedIndex`](crate::collections::SortedIndex),
/// ascending is smallest key first, rows of one key oldest first.
///
/// ```
/// use writ_query::paging::Order;
/// assert_eq!(Order::parse("desc"), Some(Order::NEWEST_FIRST));
/// assert_eq!(Order::Ascending.as_str(), "asc");
/// assert_eq!(Order::parse("up"), None);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Order {
    /// Smallest first: oldest rows first.
    #[default]
    Ascending,
    /// Largest first: newest rows first.
    Descending,
}

impl Order {
    /// Rows in insertion order.
    pub const OLDEST_FIRST: Order = Order::Ascending;
    /// Rows in reverse insertion order.
    pub const NEWEST_FIRST: Order = Order::Descending;

    /// `asc` or `desc`: how an `order` argument spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ascending => "asc",
            Self::Descending => "desc",
        }
    }

    /// The order spelled `name` (`asc` or `desc`).
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Ascending, Self::Descending]
            .into_iter()
            .find(|order| order.as_str() == name)
    }
}

/// Where a page starts: just after the item at this position of the listing, in the
/// listing's order. `K` is the key of a sorted listing; `()` (the default) for rows
/// listed by number alone.
///
/// A cursor is opaque to clients: [`Cursor::encode`] spells it with the characters
/// `0-9a-f` (and, with a key, one `.`), which pass unescaped in a URL. A number cursor is
/// the number in hexadecimal; a keyed one is the key's spelling ([`CursorKey`]), a `.`,
/// and the number.
///
/// ```
/// use std::sync::Arc;
/// use writ_query::paging::Cursor;
///
/// assert_eq!(Cursor::after(255).encode(), "ff");
/// assert_eq!(Cursor::<()>::decode("ff").unwrap().number(), 255);
/// assert!(Cursor::<()>::decode("zz").is_err());
///
/// let keyed = Cursor::new(Arc::<str>::from("sku-7"), 3);
/// assert_eq!(keyed.encode(), "736b752d37.3");
/// assert_eq!(Cursor::decode(&keyed.encode()), Ok(keyed));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cursor<K = ()> {
    key: K,
    number: u64,
}

impl Cursor<()> {
    /// The cursor after row `number` of a listing by number.
    pub const fn after(number: u64) -> Self {
        Self { key: (), number }
    }
}

impl<K> Cursor<K> {
    /// The cursor after row `number` under `key` of a sorted listing.
    pub const fn new(key: K, number: u64) -> Self {
        Self { key, number }
    }

    /// The key of the last item listed.
    pub fn key(&self) -> &K {
        &self.key
    }

    /// The number of the last item listed.
    pub fn number(&self) -> u64 {
        self.number
    }
}

/// The most hexadecimal digits of a cursor's number.
const NUMBER_DIGITS_MAX: usize = 16;

impl<K: CursorKey> Cursor<K> {
    /// The cursor as clients see it.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if K::KEYED {
            self.key.write(&mut out);
            out.push('.');
        }
        out.push_str(&format!("{:x}", self.number));
        out
    }

    /// The cursor `text`, which [`Cursor::encode`] gave.
    pub fn decode(text: &str) -> Result<Self, CursorError> {
        let (key, number) = if K::KEYED {
            let (key, number) = text.rsplit_once('.').ok_or(CursorError)?;
            (K::read(key).ok_or(CursorError)?, number)
        } else {
            (K::read("").ok_or(CursorError)?, text)
        };
        if number.is_empty()
            || number.len() > NUMBER_DIGITS_MAX
            || !number.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(CursorError);
        }
        let number = u64::from_str_radix(number, 16).map_err(|_| CursorError)?;
        Ok(Self { key, number })
    }
}

impl<K: CursorKey> fmt::Display for Cursor<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

impl<K: CursorKey> FromStr for Cursor<K> {
    type Err = CursorError;

    fn from_str(text: &str) -> Result<Self, CursorError> {
        Self::decode(text)
    }
}

/// A text that is not a cursor: not one that [`Cursor::encode`] gives for this kind of
/// listing. A query answers it as a `bad_argument`; the client should start again from
/// the first page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CursorError;

impl fmt::Display for CursorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("is not a cursor from a previous page")
    }
}

impl std::error::Error for CursorError {}

/// A key that can be part of a [`Cursor`]: spelled with `0-9`, `a-f` and `-` only, and
/// read back the same.
///
/// ```
/// use writ_query::paging::CursorKey;
/// let mut out = String::new();
/// (-42i64).write(&mut out);
/// assert_eq!(i64::read(&out), Some(-42));
/// ```
pub trait CursorKey: Sized {
    /// Whether cursors hold a key at all: `false` only for `()`, whose cursors are bare
    /// numbers.
    const KEYED: bool = true;

    /// Appends the key's spelling.
    fn write(&self, out: &mut String);

    /// The key spelled `text`, if it is one's spelling.
    fn read(text: &str) -> Option<Self>;
}

impl CursorKey for () {
    const KEYED: bool = false;

    fn write(&self, _: &mut String) {}

    fn read(text: &str) -> Option<Self> {
        text.is_empty().then_some(())
    }
}

impl CursorKey for u64 {
    fn write(&self, out: &mut String) {
        out.push_str(&format!("{self:x}"));
    }

    fn read(text: &str) -> Option<Self> {
        if text.is_empty()
            || text.len() > NUMBER_DIGITS_MAX
            || !text.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return None;
        }
        u64::from_str_radix(text, 16).ok()
    }
}

/// Smaller unsigned integers are spelled as `u64`s.
macro_rules! unsigned_cursor_key {
    ($($type:ty),*) => {$(
        impl CursorKey for $type {
            fn write(&self, out: &mut String) {
                u64::from(*self).write(out);
            }

            fn read(text: &str) -> Option<Self> {
                Self::try_from(u64::read(text)?).ok()
            }
        }
    )*};
}

unsigned_cursor_key!(u8, u16, u32);

/// Signed integers are spelled as their magnitude, after a `-` when negative.
macro_rules! signed_cursor_key {
    ($($type:ty),*) => {$(
        impl CursorKey for $type {
            fn write(&self, out: &mut String) {
                if *self < 0 {
                    out.push('-');
                }
                u64::from(self.unsigned_abs()).write(out);
            }

            fn read(text: &str) -> Option<Self> {
                let (negative, magnitude) = match text.strip_prefix('-') {
                    Some(magnitude) => (true, magnitude),
                    None => (false, text),
                };
                let magnitude = i128::from(u64::read(magnitude)?);
                Self::try_from(if negative { -magnitude } else { magnitude }).ok()
            }
        }
    )*};
}

signed_cursor_key!(i32, i64);

/// Strings are spelled as their UTF-8 bytes in hexadecimal.
impl CursorKey for String {
    fn write(&self, out: &mut String) {
        write_hex(self.as_bytes(), out);
    }

    fn read(text: &str) -> Option<Self> {
        read_hex(text)
    }
}

/// As [`String`].
impl CursorKey for Arc<str> {
    fn write(&self, out: &mut String) {
        write_hex(self.as_bytes(), out);
    }

    fn read(text: &str) -> Option<Self> {
        read_hex(text).map(Arc::from)
    }
}

fn write_hex(bytes: &[u8], out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
}

fn read_hex(text: &str) -> Option<String> {
    let digit = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let bytes = text
        .as_bytes()
        .chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

/// What a query asks for: up to `limit` items after `cursor` (from the first item when
/// `None`) in `order`.
///
/// ```
/// use writ_query::paging::{Cursor, Order, PageRequest};
/// let first = PageRequest::first(Order::NEWEST_FIRST, 20);
/// assert_eq!(first.cursor, None);
/// let next = first.after(Cursor::after(7));
/// assert_eq!((next.limit, next.cursor.unwrap().number()), (20, 7));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest<K = ()> {
    /// Which way the listing runs.
    pub order: Order,
    /// Where the page starts: after this item; `None` for the first page.
    pub cursor: Option<Cursor<K>>,
    /// The most items the page holds (0 asks for the total only).
    pub limit: usize,
}

impl<K> PageRequest<K> {
    /// The first page in `order`, of at most `limit` items.
    pub fn first(order: Order, limit: usize) -> Self {
        Self {
            order,
            cursor: None,
            limit,
        }
    }

    /// The same request, from `cursor` on.
    pub fn after(self, cursor: Cursor<K>) -> Self {
        Self {
            cursor: Some(cursor),
            ..self
        }
    }
}

/// One page of a listing.
///
/// ```
/// use serde_json::json;
/// use writ_query::paging::Page;
///
/// let last: Page<u32> = Page { items: vec![1, 2], total: 2, next: None };
/// assert_eq!(last.to_json(|n| json!(n * 10)), json!({"items": [10, 20], "total": 2, "cursor": null}));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T, K = ()> {
    /// The items, in the listing's order.
    pub items: Vec<T>,
    /// How many items the whole listing holds (all pages).
    pub total: usize,
    /// Where the next page starts, when more items follow this page's last.
    pub next: Option<Cursor<K>>,
}

impl<T, K> Page<T, K> {
    /// The same page with each item changed by `f`.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U, K> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            total: self.total,
            next: self.next,
        }
    }
}

impl<T, K: CursorKey> Page<T, K> {
    /// The page as queries answer it: `{"items": [...], "total": n, "cursor": "..." | null}`,
    /// each item shaped by `item`. A client passes `cursor` back for the next page; `null`
    /// means this is the last.
    pub fn to_json(&self, item: impl FnMut(&T) -> Value) -> Value {
        json!({
            "items": self.items.iter().map(item).collect::<Vec<_>>(),
            "total": self.total,
            "cursor": self.next.as_ref().map(Cursor::encode),
        })
    }
}

/// A query's paging arguments, `limit`, `cursor` and `order` ([`Paging::PARAMS`]), with
/// the query's bounds. An empty `cursor` or `order` is the same as none (a form sends
/// `?cursor=`); a query that does not declare `order` never receives one and lists in
/// `order_default`.
///
/// ```
/// use serde_json::json;
/// use writ_query::Args;
/// use writ_query::paging::{Order, Paging};
///
/// let paging = Paging::new(50, 100);
/// let none = json!({"cursor": ""}).as_object().unwrap().clone();
/// let request = paging.request::<()>(&Args::new(&none)).unwrap();
/// assert_eq!((request.limit, request.order, request.cursor), (50, Order::Ascending, None));
///
/// let many = json!({"limit": 101}).as_object().unwrap().clone();
/// assert_eq!(paging.request::<()>(&Args::new(&many)).unwrap_err().code(), "bad_argument");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    /// The `limit` when none is given.
    pub limit_default: usize,
    /// The largest `limit` taken; more is a `bad_argument`.
    pub limit_max: usize,
    /// The order when no `order` is given.
    pub order_default: Order,
}

impl Paging {
    /// The argument names [`Paging::request`] reads, for a query's parameter list.
    pub const PARAMS: [&'static str; 3] = ["limit", "cursor", "order"];

    /// Pages of `limit_default` items unless asked otherwise, at most `limit_max`, in
    /// ascending order unless asked otherwise.
    pub const fn new(limit_default: usize, limit_max: usize) -> Self {
        Self {
            limit_default,
            limit_max,
            order_default: Order::Ascending,
        }
    }

    /// The same, listing in `order` by default.
    pub const fn in_order(self, order: Order) -> Self {
        Self {
            order_default: order,
            ..self
        }
    }

    /// The page `args` ask for. Fails with a `bad_argument` naming `limit` (not a
    /// non-negative integer, or above `limit_max`), `cursor` (not a cursor of this kind of
    /// listing) or `order` (not `asc` or `desc`).
    pub fn request<K: CursorKey>(&self, args: &Args<'_>) -> Result<PageRequest<K>, QueryError> {
        let limit = match args.u64("limit")? {
            None => self.limit_default,
            Some(limit) => usize::try_from(limit)
                .ok()
                .filter(|limit| *limit <= self.limit_max)
                .ok_or_else(|| {
                    QueryError::bad_argument("limit", format!("must be at most {}", self.limit_max))
                })?,
        };
        let cursor = args
            .str("cursor")?
            .filter(|cursor| !cursor.is_empty())
            .map(|cursor| {
                Cursor::decode(cursor)
                    .map_err(|error| QueryError::bad_argument("cursor", error.to_string()))
            })
            .transpose()?;
        let order = match args.str("order")?.filter(|order| !order.is_empty()) {
            None => self.order_default,
            Some(name) => Order::parse(name)
                .ok_or_else(|| QueryError::bad_argument("order", "must be asc or desc"))?,
        };
        Ok(PageRequest {
            order,
            cursor,
            limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Map, json};

    use super::*;

    fn args(value: Value) -> Map<String, Value> {
        value.as_object().expect("an object").clone()
    }

    #[test]
    fn number_cursors_are_hexadecimal_and_refuse_anything_else() {
        for (number, text) in [(0, "0"), (10, "a"), (u64::MAX, "ffffffffffffffff")] {
            assert_eq!(Cursor::after(number).encode(), text);
            assert_eq!(Cursor::<()>::decode(text), Ok(Cursor::after(number)));
        }
        assert_eq!(Cursor::<()>::decode("FF"), Ok(Cursor::after(255)));
        for bad in ["", "zz", "+7", "-1", "10000000000000000", "７", "a.1", " 1"] {
            assert_eq!(Cursor::<()>::decode(bad), Err(CursorError), "{bad}");
        }
    }

    #[test]
    fn keyed_cursors_refuse_what_no_key_spells() {
        for bad in ["", "1", "6.1", "6g.1", "61.", "61.x", "ff.1"] {
            assert!(Cursor::<String>::decode(bad).is_err(), "{bad}");
        }
        // The empty key is spelled as nothing.
        assert_eq!(
            Cursor::<String>::decode(".1"),
            Ok(Cursor::new(String::new(), 1))
        );
        assert_eq!(Cursor::<u64>::decode("-1.1"), Err(CursorError));
        assert_eq!(Cursor::<i64>::decode("-1.1"), Ok(Cursor::new(-1, 1)));
    }

    proptest! {
        #[test]
        fn cursors_read_back_what_they_wrote(
            text in ".{0,12}",
            unsigned in any::<u64>(),
            signed in any::<i64>(),
            number in any::<u64>(),
        ) {
            let keyed = Cursor::new(text.clone(), number);
            prop_assert_eq!(Cursor::decode(&keyed.encode()), Ok(keyed.clone()));
            prop_assert!(keyed.encode().bytes().all(|b| b.is_ascii_hexdigit() || b == b'.'));
            let shared = Cursor::new(Arc::<str>::from(text.as_str()), number);
            prop_assert_eq!(Cursor::decode(&shared.encode()), Ok(shared));
            let unsigned = Cursor::new(unsigned, number);
            prop_assert_eq!(Cursor::decode(&unsigned.encode()), Ok(unsigned));
            let signed = Cursor::new(signed, number);
            prop_assert_eq!(Cursor::decode(&signed.encode()), Ok(signed));
            prop_assert_eq!(Cursor::<()>::decode(&Cursor::after(number).encode()), Ok(Cursor::after(number)));
        }
    }

    #[test]
    fn paging_arguments_are_checked_by_name() {
        let paging = Paging::new(50, 1000).in_order(Order::NEWEST_FIRST);
        let request = paging.request::<()>(&Args::new(&args(json!({})))).unwrap();
        assert_eq!(request, PageRequest::first(Order::Descending, 50));
        let request = paging
            .request::<()>(&Args::new(&args(
                json!({"limit": 0, "cursor": "7", "order": "asc"}),
            )))
            .unwrap();
        assert_eq!(
            request,
            PageRequest::first(Order::Ascending, 0).after(Cursor::after(7))
        );
        for (bad, argument) in [
            (json!({"limit": 1001}), "limit"),
            (json!({"limit": "-1"}), "limit"),
            (json!({"cursor": "x"}), "cursor"),
            (json!({"cursor": 7}), "cursor"),
            (json!({"order": "up"}), "order"),
        ] {
            let error = paging
                .request::<()>(&Args::new(&args(bad.clone())))
                .unwrap_err();
            assert!(
                matches!(&error, QueryError::BadArgument { argument: name, .. } if name == argument),
                "{bad}: {error}"
            );
        }
    }
}
