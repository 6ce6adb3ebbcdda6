//! The byte format of a run of the dedupe index (`dedupe/{first:020}-{last:020}.ids`): the
//! ids of journal records `first..=last`, sorted, each with its record's sequence number,
//! with a blocked Bloom filter and a fence index that a lookup keeps in memory. The layout
//! is in `docs/log-format.md` ("A dedupe run file"); the decoders here never panic on
//! arbitrary bytes (the fuzz target `dedupe_run` checks it) and what they accept encodes
//! back to the same bytes.
//!
//! ```
//! use writ_engine::dedupe_run::{RunEncoder, RunTail, decode_run, filter_blocks_for};
//!
//! let entries = [(7u128, 3u64), (9, 1), (40, 2)];
//! let mut encoder = RunEncoder::new(filter_blocks_for(entries.len() as u64));
//! for (id, seq) in entries {
//!     encoder.push(id, seq);
//! }
//! let file = encoder.finish_into_vec(1, 3, 1_000, 2_000);
//! let (footer, decoded) = decode_run(&file).unwrap();
//! assert_eq!(decoded, entries);
//! let tail = RunTail::decode(&file[footer.tail_offset() as usize..]).unwrap();
//! assert!(tail.may_contain(9));
//! assert_eq!(tail.block_of(9), Some(0));
//! ```

/// The first bytes of a run's footer.
pub const RUN_MAGIC: [u8; 8] = *b"WRITIDS\0";
/// The format this build writes and reads.
pub const RUN_VERSION: u32 = 1;
/// Bytes of an entry block: entries, zero padding, and the block's CRC in its last 4 bytes.
pub const BLOCK_BYTES: usize = 4096;
/// Bytes of one entry: the id (16, the UUID's bytes) and the record's sequence (u64 LE).
pub const ENTRY_BYTES: usize = 24;
/// Entries in a full block: `(4096 - 4) / 24`.
pub const ENTRIES_PER_BLOCK: usize = (BLOCK_BYTES - 4) / ENTRY_BYTES;
/// Bytes of one block of the Bloom filter: 512 bits, one cache line.
pub const FILTER_BLOCK_BYTES: usize = 64;
/// Filter bits per id the writer provisions.
pub const FILTER_BITS_PER_ID: u64 = 10;
/// Bits set per id, all in one filter block (about a 1% false hit rate at 10 bits per id).
pub const FILTER_PROBES: u32 = 7;
/// Bytes of one fence: the first id of an entry block.
pub const FENCE_BYTES: usize = 16;
/// Bytes of the footer, at the end of the file.
pub const FOOTER_BYTES: usize = 64;

/// Why bytes are not a run (or a part of one) that this build wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("dedupe run: {detail}")]
pub struct RunError {
    /// What does not hold.
    pub detail: &'static str,
}

const fn err<T>(detail: &'static str) -> Result<T, RunError> {
    Err(RunError { detail })
}

/// The footer: what a run holds, fixed at its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunFooter {
    /// Entry blocks, `ceil(entry_count / ENTRIES_PER_BLOCK)`.
    pub block_count: u32,
    /// Ids in the run.
    pub entry_count: u64,
    /// The first journal record the run covers.
    pub first_seq: u64,
    /// The last journal record the run covers.
    pub last_seq: u64,
    /// `recorded_at_ms` of the oldest record the run covers.
    pub oldest_recorded_at_ms: u64,
    /// `recorded_at_ms` of the newest record the run covers: the run expires once this
    /// leaves the dedupe window.
    pub newest_recorded_at_ms: u64,
    /// Blocks of the Bloom filter (at least 1).
    pub filter_blocks: u32,
}

impl RunFooter {
    /// Where the entry blocks end and the filter begins.
    pub fn tail_offset(&self) -> u64 {
        u64::from(self.block_count) * BLOCK_BYTES as u64
    }

    /// Bytes from [`RunFooter::tail_offset`] to the end: filter, fences, footer.
    pub fn tail_bytes(&self) -> u64 {
        u64::from(self.filter_blocks) * FILTER_BLOCK_BYTES as u64
            + u64::from(self.block_count) * FENCE_BYTES as u64
            + FOOTER_BYTES as u64
    }

    /// The size of the whole file.
    pub fn file_bytes(&self) -> u64 {
        self.tail_offset() + self.tail_bytes()
    }

    /// Entries in block `index`.
    pub fn entries_in_block(&self, index: u32) -> usize {
        let before = u64::from(index) * ENTRIES_PER_BLOCK as u64;
        self.entry_count
            .saturating_sub(before)
            .min(ENTRIES_PER_BLOCK as u64) as usize
    }

    /// The footer's bytes, its CRC over `covered` (filter and fences) and the footer.
    fn encode(&self, covered: &[u8]) -> [u8; FOOTER_BYTES] {
        let mut out = [0u8; FOOTER_BYTES];
        out[0..8].copy_from_slice(&RUN_MAGIC);
        out[8..12].copy_from_slice(&RUN_VERSION.to_le_bytes());
        out[12..16].copy_from_slice(&self.block_count.to_le_bytes());
        out[16..24].copy_from_slice(&self.entry_count.to_le_bytes());
        out[24..32].copy_from_slice(&self.first_seq.to_le_bytes());
        out[32..40].copy_from_slice(&self.last_seq.to_le_bytes());
        out[40..48].copy_from_slice(&self.oldest_recorded_at_ms.to_le_bytes());
        out[48..56].copy_from_slice(&self.newest_recorded_at_ms.to_le_bytes());
        out[56..60].copy_from_slice(&self.filter_blocks.to_le_bytes());
        let crc = crc32c::crc32c_append(crc32c::crc32c(covered), &out[..60]);
        out[60..64].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes the last [`FOOTER_BYTES`] of a file, checking everything but the CRC
    /// (which covers the filter and fences too: see [`RunTail::decode`]).
    pub fn decode(bytes: &[u8]) -> Result<RunFooter, RunError> {
        let Some(b) = bytes.get(..FOOTER_BYTES) else {
            return err("shorter than a footer");
        };
        let u32_at = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"));
        let u64_at = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        if b[0..8] != RUN_MAGIC {
            return err("bad magic");
        }
        if u32_at(8) != RUN_VERSION {
            return err("unknown version");
        }
        let footer = RunFooter {
            block_count: u32_at(12),
            entry_count: u64_at(16),
            first_seq: u64_at(24),
            last_seq: u64_at(32),
            oldest_recorded_at_ms: u64_at(40),
            newest_recorded_at_ms: u64_at(48),
            filter_blocks: u32_at(56),
        };
        if footer.first_seq > footer.last_seq {
            return err("first_seq after last_seq");
        }
        // The range may span every sequence number: its size saturates instead of wrapping.
        if footer.entry_count > (footer.last_seq - footer.first_seq).saturating_add(1) {
            return err("more entries than records in the range");
        }
        if footer.entry_count.div_ceil(ENTRIES_PER_BLOCK as u64) != u64::from(footer.block_count) {
            return err("block_count does not fit entry_count");
        }
        if footer.oldest_recorded_at_ms > footer.newest_recorded_at_ms {
            return err("oldest_recorded_at_ms after newest_recorded_at_ms");
        }
        if footer.filter_blocks == 0 {
            return err("no filter block");
        }
        Ok(footer)
    }
}

/// Filter blocks the writer provisions for `ids` ids: [`FILTER_BITS_PER_ID`] bits each,
/// at least one block.
pub fn filter_blocks_for(ids: u64) -> u32 {
    let bits = ids.saturating_mul(FILTER_BITS_PER_ID);
    u32::try_from(bits.div_ceil(8 * FILTER_BLOCK_BYTES as u64).max(1)).unwrap_or(u32::MAX)
}

/// SplitMix64's finalizer.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The filter block of `id` and its [`FILTER_PROBES`] bit positions (9 bits each) within
/// the block. Fixed forever: the filter is part of the format.
fn filter_probe(id: u128, filter_blocks: u32) -> (usize, u64) {
    let h = mix((id as u64) ^ mix(((id >> 64) as u64) ^ 0x5752_4954_4944_5331));
    let block = ((u128::from(h) * u128::from(filter_blocks)) >> 64) as usize;
    (block, mix(h ^ 0x9e37_79b9_7f4a_7c15))
}

fn filter_bits(bits: u64) -> impl Iterator<Item = (usize, u64)> {
    (0..FILTER_PROBES).map(move |i| {
        let bit = (bits >> (9 * i)) & 511;
        ((bit / 64) as usize, 1u64 << (bit % 64))
    })
}

/// A blocked Bloom filter block: 8 words of 64 bits.
pub type FilterBlock = [u64; 8];

fn filter_insert(filter: &mut [FilterBlock], id: u128) {
    let (block, bits) = filter_probe(id, filter.len() as u32);
    for (word, mask) in filter_bits(bits) {
        filter[block][word] |= mask;
    }
}

fn filter_may_contain(filter: &[FilterBlock], id: u128) -> bool {
    let (block, bits) = filter_probe(id, filter.len() as u32);
    let block = &filter[block];
    filter_bits(bits).all(|(word, mask)| block[word] & mask != 0)
}

/// What a lookup keeps in memory of a run: its footer, filter and fences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunTail {
    /// The footer.
    pub footer: RunFooter,
    /// The Bloom filter.
    pub filter: Vec<FilterBlock>,
    /// The first id of each entry block, strictly increasing.
    pub fences: Vec<u128>,
}

impl RunTail {
    /// Decodes the tail of a run file (from [`RunFooter::tail_offset`] to the end): the
    /// footer, the CRC, the filter and the fences, which must increase strictly.
    pub fn decode(tail: &[u8]) -> Result<RunTail, RunError> {
        if tail.len() < FOOTER_BYTES {
            return err("shorter than a footer");
        }
        let footer_at = tail.len() - FOOTER_BYTES;
        let footer = RunFooter::decode(&tail[footer_at..])?;
        if footer.tail_bytes() != tail.len() as u64 {
            return err("tail length does not fit the footer");
        }
        let stored = u32::from_le_bytes(tail[tail.len() - 4..].try_into().expect("4 bytes"));
        if crc32c::crc32c(&tail[..tail.len() - 4]) != stored {
            return err("tail CRC mismatch");
        }
        let filter_len = footer.filter_blocks as usize * FILTER_BLOCK_BYTES;
        let filter = tail[..filter_len]
            .chunks_exact(FILTER_BLOCK_BYTES)
            .map(|block| {
                let mut words = [0u64; 8];
                for (word, bytes) in words.iter_mut().zip(block.chunks_exact(8)) {
                    *word = u64::from_le_bytes(bytes.try_into().expect("8 bytes"));
                }
                words
            })
            .collect();
        let fences: Vec<u128> = tail[filter_len..footer_at]
            .chunks_exact(FENCE_BYTES)
            .map(|b| u128::from_be_bytes(b.try_into().expect("16 bytes")))
            .collect();
        if fences.windows(2).any(|w| w[0] >= w[1]) {
            return err("fences do not increase");
        }
        Ok(RunTail {
            footer,
            filter,
            fences,
        })
    }

    /// Whether the filter lets `id` through (a false hit in about 100 for an id not in
    /// the run; never a miss for one that is).
    pub fn may_contain(&self, id: u128) -> bool {
        filter_may_contain(&self.filter, id)
    }

    /// The one entry block that can hold `id`, by the fences.
    pub fn block_of(&self, id: u128) -> Option<u32> {
        let after = self.fences.partition_point(|&fence| fence <= id);
        after.checked_sub(1).map(|b| b as u32)
    }

    /// Bytes this tail holds in memory.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.filter.capacity() * FILTER_BLOCK_BYTES
            + self.fences.capacity() * FENCE_BYTES
    }

    /// Decodes entry block `index` of this run (its [`BLOCK_BYTES`] bytes): the CRC, the
    /// zero padding, ids increasing from the block's fence and below the next one, and
    /// sequences within the run's range.
    pub fn decode_block(&self, index: u32, block: &[u8]) -> Result<Vec<(u128, u64)>, RunError> {
        let footer = &self.footer;
        if index >= footer.block_count || block.len() != BLOCK_BYTES {
            return err("no such block");
        }
        let stored = u32::from_le_bytes(block[BLOCK_BYTES - 4..].try_into().expect("4 bytes"));
        if block_crc(index, &block[..BLOCK_BYTES - 4]) != stored {
            return err("block CRC mismatch");
        }
        let count = footer.entries_in_block(index);
        if block[count * ENTRY_BYTES..BLOCK_BYTES - 4]
            .iter()
            .any(|&b| b != 0)
        {
            return err("block padding is not zero");
        }
        let next_fence = self.fences.get(index as usize + 1).copied();
        let mut entries = Vec::with_capacity(count);
        for (i, bytes) in block[..count * ENTRY_BYTES]
            .chunks_exact(ENTRY_BYTES)
            .enumerate()
        {
            let id = u128::from_be_bytes(bytes[..16].try_into().expect("16 bytes"));
            let seq = u64::from_le_bytes(bytes[16..].try_into().expect("8 bytes"));
            let in_order = match entries.last() {
                None => id == self.fences[index as usize] && i == 0,
                Some(&(previous, _)) => id > previous,
            };
            if !in_order || next_fence.is_some_and(|next| id >= next) {
                return err("ids out of order");
            }
            if seq < footer.first_seq || seq > footer.last_seq {
                return err("sequence outside the run's range");
            }
            entries.push((id, seq));
        }
        Ok(entries)
    }
}

fn block_crc(index: u32, bytes: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&u64::from(index).to_le_bytes()), bytes)
}

/// Writes a run from entries pushed in increasing id order: entry blocks as they fill
/// (taken with [`RunEncoder::take_blocks`]), then the tail.
#[derive(Debug)]
pub struct RunEncoder {
    blocks: Vec<u8>,
    in_block: usize,
    block_count: u32,
    entry_count: u64,
    last_id: Option<u128>,
    filter: Vec<FilterBlock>,
    fences: Vec<u128>,
}

impl RunEncoder {
    /// An encoder whose filter has `filter_blocks` blocks (see [`filter_blocks_for`]).
    pub fn new(filter_blocks: u32) -> Self {
        Self {
            blocks: Vec::new(),
            in_block: 0,
            block_count: 0,
            entry_count: 0,
            last_id: None,
            filter: vec![[0; 8]; filter_blocks.max(1) as usize],
            fences: Vec::new(),
        }
    }

    /// Adds an entry. Ids must increase strictly.
    pub fn push(&mut self, id: u128, seq: u64) {
        assert!(
            self.last_id.is_none_or(|last| id > last),
            "run entries must be pushed in increasing id order"
        );
        self.last_id = Some(id);
        if self.in_block == 0 {
            self.fences.push(id);
        }
        self.blocks.extend_from_slice(&id.to_be_bytes());
        self.blocks.extend_from_slice(&seq.to_le_bytes());
        self.in_block += 1;
        self.entry_count += 1;
        filter_insert(&mut self.filter, id);
        if self.in_block == ENTRIES_PER_BLOCK {
            self.close_block();
        }
    }

    fn close_block(&mut self) {
        let start = self.blocks.len() - self.in_block * ENTRY_BYTES;
        self.blocks.resize(start + BLOCK_BYTES - 4, 0);
        let crc = block_crc(self.block_count, &self.blocks[start..]);
        self.blocks.extend_from_slice(&crc.to_le_bytes());
        self.block_count += 1;
        self.in_block = 0;
    }

    /// Ids pushed so far.
    pub fn entry_count(&self) -> u64 {
        self.entry_count
    }

    /// The whole blocks encoded so far, handed over (the block being filled stays).
    pub fn take_blocks(&mut self) -> Vec<u8> {
        let whole = self.blocks.len() - self.in_block * ENTRY_BYTES;
        let rest = self.blocks.split_off(whole);
        std::mem::replace(&mut self.blocks, rest)
    }

    /// Ends the run: the remaining blocks and the tail (to write after everything taken
    /// before), and the tail as a lookup keeps it.
    pub fn finish(
        mut self,
        first_seq: u64,
        last_seq: u64,
        oldest_recorded_at_ms: u64,
        newest_recorded_at_ms: u64,
    ) -> (Vec<u8>, RunTail) {
        if self.in_block > 0 {
            self.close_block();
        }
        let footer = RunFooter {
            block_count: self.block_count,
            entry_count: self.entry_count,
            first_seq,
            last_seq,
            oldest_recorded_at_ms,
            newest_recorded_at_ms,
            filter_blocks: self.filter.len() as u32,
        };
        let mut out = self.blocks;
        let covered_from = out.len();
        for block in &self.filter {
            for word in block {
                out.extend_from_slice(&word.to_le_bytes());
            }
        }
        for fence in &self.fences {
            out.extend_from_slice(&fence.to_be_bytes());
        }
        let encoded = footer.encode(&out[covered_from..]);
        out.extend_from_slice(&encoded);
        let tail = RunTail {
            footer,
            filter: self.filter,
            fences: self.fences,
        };
        (out, tail)
    }

    /// [`RunEncoder::finish`] for an encoder nothing was taken from: the whole file.
    pub fn finish_into_vec(
        self,
        first_seq: u64,
        last_seq: u64,
        oldest_recorded_at_ms: u64,
        newest_recorded_at_ms: u64,
    ) -> Vec<u8> {
        self.finish(
            first_seq,
            last_seq,
            oldest_recorded_at_ms,
            newest_recorded_at_ms,
        )
        .0
    }
}

/// Decodes a whole run file and checks all of it: the tail, every block, and that the
/// filter is exactly the one its entries make. Returns the footer and the entries.
pub fn decode_run(bytes: &[u8]) -> Result<(RunFooter, Vec<(u128, u64)>), RunError> {
    let Some(footer_at) = bytes.len().checked_sub(FOOTER_BYTES) else {
        return err("shorter than a footer");
    };
    let footer = RunFooter::decode(&bytes[footer_at..])?;
    if footer.file_bytes() != bytes.len() as u64 {
        return err("file length does not fit the footer");
    }
    let tail_at = footer.tail_offset() as usize;
    let tail = RunTail::decode(&bytes[tail_at..])?;
    let mut entries = Vec::new();
    let mut filter = vec![[0u64; 8]; footer.filter_blocks as usize];
    for (index, block) in bytes[..tail_at].chunks_exact(BLOCK_BYTES).enumerate() {
        for (id, seq) in tail.decode_block(index as u32, block)? {
            filter_insert(&mut filter, id);
            entries.push((id, seq));
        }
    }
    if filter != tail.filter {
        return err("filter does not match the entries");
    }
    Ok((footer, entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_of(ids: impl IntoIterator<Item = u128>) -> Vec<u8> {
        let ids: Vec<u128> = ids.into_iter().collect();
        let mut encoder = RunEncoder::new(filter_blocks_for(ids.len() as u64));
        for (i, id) in ids.iter().enumerate() {
            encoder.push(*id, 100 + i as u64);
        }
        let last = 100 + ids.len().max(1) as u64 - 1;
        encoder.finish_into_vec(100, last, 5, 9)
    }

    #[test]
    fn a_run_decodes_to_its_entries_and_every_block_answers_its_ids() {
        let ids: Vec<u128> = (0..1000u128).map(|i| i * 7919 + (i << 70)).collect();
        let file = run_of(ids.clone());
        let (footer, entries) = decode_run(&file).unwrap();
        assert_eq!(footer.entry_count, 1000);
        assert_eq!(footer.block_count, 6);
        assert_eq!(
            entries.iter().map(|e| e.0).collect::<Vec<_>>(),
            ids,
            "ids in order"
        );
        let tail = RunTail::decode(&file[footer.tail_offset() as usize..]).unwrap();
        for (i, id) in ids.iter().enumerate() {
            assert!(tail.may_contain(*id), "no false miss");
            let block = tail.block_of(*id).unwrap();
            let at = block as usize * BLOCK_BYTES;
            let found = tail
                .decode_block(block, &file[at..at + BLOCK_BYTES])
                .unwrap();
            assert_eq!(
                found.iter().find(|e| e.0 == *id).map(|e| e.1),
                Some(100 + i as u64)
            );
        }
        assert_eq!(tail.block_of(0u128.wrapping_sub(1)), Some(5));
    }

    #[test]
    fn the_filter_lets_about_one_in_a_hundred_strangers_through() {
        let file = run_of((0..10_000u128).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c)));
        let footer = RunFooter::decode(&file[file.len() - FOOTER_BYTES..]).unwrap();
        let tail = RunTail::decode(&file[footer.tail_offset() as usize..]).unwrap();
        let hits = (0..100_000u128)
            .filter(|i| tail.may_contain((i << 64) | 0xdead_beef))
            .count();
        assert!(hits < 2_500, "{hits} false hits in 100,000");
    }

    #[test]
    fn an_empty_run_is_a_footer_a_filter_block_and_nothing_else() {
        let file = run_of([]);
        assert_eq!(file.len(), FILTER_BLOCK_BYTES + FOOTER_BYTES);
        let (footer, entries) = decode_run(&file).unwrap();
        assert_eq!((footer.entry_count, entries.len()), (0, 0));
        let tail = RunTail::decode(&file).unwrap();
        assert_eq!(tail.block_of(5), None);
    }

    #[test]
    fn damage_anywhere_is_refused() {
        let file = run_of((0..400u128).map(|i| i * 3));
        for at in [
            0,
            100,
            BLOCK_BYTES - 1,
            BLOCK_BYTES * 2 + 5,
            file.len() - 70,
            file.len() - 1,
        ] {
            let mut bad = file.clone();
            bad[at] ^= 0x40;
            assert!(decode_run(&bad).is_err(), "a flipped bit at {at}");
        }
        assert!(decode_run(&file[..file.len() - 1]).is_err());
    }

    #[test]
    fn a_block_read_from_the_wrong_place_is_refused() {
        let file = run_of((0..400u128).map(|i| i * 3));
        let footer = RunFooter::decode(&file[file.len() - FOOTER_BYTES..]).unwrap();
        let tail = RunTail::decode(&file[footer.tail_offset() as usize..]).unwrap();
        assert!(tail.decode_block(1, &file[..BLOCK_BYTES]).is_err());
        assert!(tail.decode_block(0, &file[..BLOCK_BYTES]).is_ok());
    }

    #[test]
    fn memory_per_id_is_about_one_and_a_half_bytes() {
        let ids = 100_000u64;
        let file = run_of((0..u128::from(ids)).map(|i| i * 11));
        let footer = RunFooter::decode(&file[file.len() - FOOTER_BYTES..]).unwrap();
        let tail = RunTail::decode(&file[footer.tail_offset() as usize..]).unwrap();
        let per_id = tail.memory_bytes() as f64 / ids as f64;
        // 10 bits of filter and 16 bytes of fence per 170 ids: 1.25 + 0.094.
        assert!(
            (1.3..1.4).contains(&per_id),
            "{per_id} bytes per id in memory"
        );
        let on_disk = file.len() as f64 / ids as f64;
        assert!(
            (25.0..26.0).contains(&on_disk),
            "{on_disk} bytes per id on disk"
        );
    }

    /// An input the fuzz target `dedupe_run` found: a footer whose range spans every
    /// sequence number (its size overflowed a `u64`).
    #[test]
    fn a_footer_whose_range_spans_every_sequence_number_does_not_panic() {
        let data: &[u8] = &[
            87, 82, 73, 84, 73, 68, 83, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
            255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
            255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 0, 0, 0, 0, 0, 253, 255, 255,
            255, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let _ = RunFooter::decode(data);
        let _ = RunTail::decode(data);
        assert!(decode_run(data).is_err(), "104 bytes are no whole run");
    }
}
