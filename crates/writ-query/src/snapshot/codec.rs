//! The bytes of a read model's state: a [`Writer`] that appends, a [`Reader`] that checks
//! every length before it trusts it, and [`Codec`], how a type goes through them.

use std::sync::Arc;

/// Why a snapshot's bytes do not decode. The runtime ignores such a snapshot (saying
/// why) and replays the read model from position 1 instead; nothing else is needed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The bytes end before what they announce.
    #[error("the snapshot ends early, at byte {at}")]
    Truncated {
        /// Where the reader was.
        at: usize,
    },
    /// The bytes are not a state this code writes: a count larger than the bytes left, a
    /// string that is not UTF-8, sets out of order, a tag this code does not know...
    #[error("invalid snapshot at byte {at}: {what}")]
    Invalid {
        /// Where the reader was.
        at: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// The projection does not write snapshots (its
    /// [`Projection::snapshot_format`](crate::Projection::snapshot_format) is `None`).
    #[error("the projection has no snapshot format")]
    Unsupported,
}

/// Appends a state's bytes: little-endian fixed-size integers, LEB128 varints for counts
/// and most numbers, strings as a varint length and UTF-8.
#[derive(Debug, Default)]
pub struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// A writer that appends to `bytes`.
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        Self { bytes }
    }

    /// The bytes written.
    pub fn into_vec(self) -> Vec<u8> {
        self.bytes
    }

    /// The bytes written so far.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes
    }

    /// How many bytes it holds.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// One byte.
    pub fn u8(&mut self, value: u8) {
        self.bytes.push(value);
    }

    /// A `u32`, 4 bytes little-endian.
    pub fn u32(&mut self, value: u32) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    /// A `u64`, 8 bytes little-endian.
    pub fn u64(&mut self, value: u64) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    /// A `u64` as a LEB128 varint: 1 byte below 128, at most 10.
    pub fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.bytes.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.bytes.push(value as u8);
    }

    /// A count or a length (a varint).
    pub fn len_prefix(&mut self, len: usize) {
        self.varint(len as u64);
    }

    /// Raw bytes, without their length.
    pub fn raw(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    /// Bytes with their length.
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.len_prefix(bytes.len());
        self.raw(bytes);
    }

    /// A string with its length.
    pub fn str(&mut self, value: &str) {
        self.bytes(value.as_bytes());
    }
}

/// Reads what a [`Writer`] wrote, from untrusted bytes: every read checks what is left,
/// and [`Reader::count`] refuses a count that the bytes left cannot hold before anything
/// is allocated for it. Never panics.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    /// Where it is.
    pub fn position(&self) -> usize {
        self.at
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    /// An error at the current position.
    pub fn invalid(&self, what: &'static str) -> SnapshotError {
        SnapshotError::Invalid { at: self.at, what }
    }

    /// Fails unless every byte was read.
    pub fn finish(&self) -> Result<(), SnapshotError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(self.invalid("bytes after the end of the state"))
        }
    }

    /// The next `len` bytes.
    pub fn take(&mut self, len: usize) -> Result<&'a [u8], SnapshotError> {
        if len > self.remaining() {
            return Err(SnapshotError::Truncated { at: self.at });
        }
        let taken = &self.bytes[self.at..self.at + len];
        self.at += len;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, SnapshotError> {
        Ok(self.array::<1>()?[0])
    }

    /// A `u32`, 4 bytes little-endian.
    pub fn u32(&mut self) -> Result<u32, SnapshotError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A `u64`, 8 bytes little-endian.
    pub fn u64(&mut self) -> Result<u64, SnapshotError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A LEB128 varint of at most 10 bytes that fits a `u64`.
    pub fn varint(&mut self) -> Result<u64, SnapshotError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(self.invalid("a varint past 64 bits"));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.invalid("a varint past 10 bytes"))
    }

    /// A varint that fits a `usize`, for a size that is not a count of items to come
    /// (checked against what follows by the caller).
    pub fn usize(&mut self) -> Result<usize, SnapshotError> {
        let value = self.varint()?;
        usize::try_from(value).map_err(|_| self.invalid("a size past usize"))
    }

    /// A count of items that take at least `min_bytes` each (at least 1 is assumed):
    /// refused when the bytes left could not hold that many, so that a damaged count
    /// never makes the caller allocate more than the input's size.
    pub fn count(&mut self, min_bytes: usize) -> Result<usize, SnapshotError> {
        let count = self.varint()?;
        let count = usize::try_from(count).map_err(|_| self.invalid("a count past usize"))?;
        if count.saturating_mul(min_bytes.max(1)) > self.remaining() {
            return Err(self.invalid("a count larger than the bytes left"));
        }
        Ok(count)
    }

    /// Bytes with their length.
    pub fn bytes(&mut self) -> Result<&'a [u8], SnapshotError> {
        let len = self.count(1)?;
        self.take(len)
    }

    /// A string with its length.
    pub fn str(&mut self) -> Result<&'a str, SnapshotError> {
        let at = self.at;
        let bytes = self.bytes()?;
        std::str::from_utf8(bytes).map_err(|_| SnapshotError::Invalid {
            at,
            what: "a string that is not UTF-8",
        })
    }
}

/// How a value goes into a snapshot and comes back: [`Codec::save`] writes it,
/// [`Codec::load`] reads it back equal, or fails (never panics) on bytes it did not
/// write. Implemented for the integers (varints), `bool`, strings, `Option`, pairs and
/// the [collections](crate::collections).
pub trait Codec: Sized {
    /// The fewest bytes a value takes: what [`Reader::count`] checks counts of them
    /// against.
    const MIN_BYTES: usize = 1;

    /// Writes the value.
    fn save(&self, out: &mut Writer);

    /// Reads a value [`Codec::save`] wrote.
    fn load(input: &mut Reader<'_>) -> Result<Self, SnapshotError>;
}

impl Codec for u8 {
    fn save(&self, out: &mut Writer) {
        out.u8(*self);
    }
    fn load(input: &mut Reader<'_>) -> Result<Self, SnapshotError> {
        input.u8()
    }
}

impl Codec for bool {
    fn save(&self, out: &mut Writer) {
        out.u8(u8::from(*self));
    }
    fn load(input: &mut Reader<'_>) -> Result<Self, SnapshotError> {
        match input.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(input.invalid("a bool other than 0 or 1")),
        }
    }
}

impl Codec for u32 {
    fn save(&self, out: &mut Writer) {
        out.varint(u64::from(*self));
    }
    fn load(input: &mut Reader<'_>) -> Result<Self, SnapshotError> {
        let value = input.varint()?;
        u32::try_from(value).map_err(|_| input.invalid("a u32 out of range"))
    }
}

impl Codec for u64 {
    fn save(&self, out: &mut Writer) {
        out.varint(*self);
    }
    fn load(input: &mut Reader<'_>) -> Result<Self, SnapshotError> {
        input.varint()
    }
}

impl Codec for i64 {
    fn save(&self, out: &mut Writer) {
        // Zigzag: small magnitudes take few bytes either side of zero.
        out.varint(((*self << 1) ^ (*self >> 63)) as u64);
    }
    fn load(input: &mut Reader<'_>) -> Result<Self, SnapshotError> {
        let value = input.varint()?;
        Ok(((value >> 1) as i64) ^ -((value & 1) as i64))
    }
}

impl Codec for [u8; 16] {
    const MIN_BYTES: usize = 16;
    fn save(&self, out: &mut Writer) {
        out.raw(self);
    }
    fn load(input: &mut Reader<'_>) -> Result<Self, SnapshotError> {
        input.array()
    }
}

impl Codec for String {
    fn save(&self, out: &mut Writer) {
        out.str(self);
    }
    fn load(input: &mut Reader<'_>) -> Result<Self, SnapshotError> {
        input.str().map(str::to_owned)
    }
}

impl Codec for Arc<str> {
    fn save(&self, out: &mut Writer) {
        out.str(self);
    }
    fn load(input: &mut Reader<'_>) -> Result<Self, SnapshotError> {
        input.str().map(Arc::from)
    }
}

impl<T: Codec> Codec for Option<T> {
    fn save(&self, out: &mut Writer) {
        match self {
            None => out.u8(0),
            Some(value) => {
                out.u8(1);
                value.save(out);
            }
        }
    }
    fn load(input: &mut Reader<'_>) -> Result<Self, SnapshotError> {
        match input.u8()? {
            0 => Ok(None),
            1 => T::load(input).map(Some),
            _ => Err(input.invalid("an option tag other than 0 or 1")),
        }
    }
}

impl<A: Codec, B: Codec> Codec for (A, B) {
    const MIN_BYTES: usize = A::MIN_BYTES + B::MIN_BYTES;
    fn save(&self, out: &mut Writer) {
        self.0.save(out);
        self.1.save(out);
    }
    fn load(input: &mut Reader<'_>) -> Result<Self, SnapshotError> {
        Ok((A::load(input)?, B::load(input)?))
    }
}

impl<T: Codec> Codec for Vec<T> {
    fn save(&self, out: &mut Writer) {
        out.len_prefix(self.len());
        for item in self {
            item.save(out);
        }
    }
    fn load(input: &mut Reader<'_>) -> Result<Self, SnapshotError> {
        let count = input.count(T::MIN_BYTES)?;
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(T::load(input)?);
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn values_come_back_equal(
            numbers in prop::collection::vec(any::<u64>(), 0..20),
            signed in any::<i64>(),
            text in ".{0,40}",
            flag in any::<bool>(),
            maybe in prop::option::of(any::<u32>()),
        ) {
            let mut out = Writer::new();
            numbers.save(&mut out);
            signed.save(&mut out);
            text.save(&mut out);
            flag.save(&mut out);
            maybe.save(&mut out);
            out.u64(u64::MAX);
            out.u32(7);
            let bytes = out.into_vec();
            let mut input = Reader::new(&bytes);
            prop_assert_eq!(Vec::<u64>::load(&mut input)?, numbers);
            prop_assert_eq!(i64::load(&mut input)?, signed);
            prop_assert_eq!(String::load(&mut input)?, text);
            prop_assert_eq!(bool::load(&mut input)?, flag);
            prop_assert_eq!(Option::<u32>::load(&mut input)?, maybe);
            prop_assert_eq!(input.u64()?, u64::MAX);
            prop_assert_eq!(input.u32()?, 7);
            input.finish()?;
        }

        #[test]
        fn any_bytes_fail_or_decode_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let mut input = Reader::new(&bytes);
            let _ = Vec::<(u64, String)>::load(&mut input);
            let mut input = Reader::new(&bytes);
            let _ = Option::<Vec<Arc<str>>>::load(&mut input);
        }
    }

    #[test]
    fn a_count_the_bytes_cannot_hold_is_refused_before_allocating() {
        let mut out = Writer::new();
        out.varint(u64::MAX / 2);
        let bytes = out.into_vec();
        let error = Vec::<u64>::load(&mut Reader::new(&bytes)).unwrap_err();
        assert!(matches!(error, SnapshotError::Invalid { .. }), "{error}");
        // Eleven continuation bytes are not a varint.
        let error = Reader::new(&[0xff; 11]).varint().unwrap_err();
        assert!(matches!(error, SnapshotError::Invalid { .. }), "{error}");
        assert_eq!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).varint(),
            Ok(u64::MAX)
        );
        assert!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02])
                .varint()
                .is_err()
        );
        assert_eq!(
            Reader::new(&[5]).take(6),
            Err(SnapshotError::Truncated { at: 0 })
        );
    }
}
