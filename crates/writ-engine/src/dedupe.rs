//! The dedupe index: which command ids were seen within the window, with what content, and
//! where they are in the journal.
//!
//! An entry is reserved when a command passes validation (before it is logged), marked with
//! its sequence number once the journal sync covers it, and evicted when the command's
//! `recorded_at` falls out of the window. The index is rebuilt at open from the journal,
//! so it survives restart without a file of its own. It is bounded: at
//! `dedupe_entries_max` entries intake refuses new commands (overload) rather than forget
//! an id early, which would break exactly-once. Memory is about 60 bytes per entry.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::oneshot;
use uuid::Uuid;

/// `Slot::seq` of a reservation whose command is not yet durable.
pub(crate) const PENDING: u64 = u64::MAX;

const SHARDS: usize = 16;

/// What the index knows of one id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    /// Fingerprint of name, version and canonical payload.
    pub fingerprint: u64,
    /// Sequence number in the command log, or [`PENDING`].
    pub seq: u64,
}

/// The answer to a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reserve {
    /// New id: the caller must log it, then `mark_durable` or `release`.
    Reserved,
    /// Same id and content already seen (its sequence, or [`PENDING`]).
    Duplicate,
    /// Same id, other content.
    Conflict,
    /// The index is at its bound.
    Full,
}

#[derive(Debug)]
pub(crate) struct DedupeIndex {
    shards: Box<[Mutex<HashMap<Uuid, Slot>>]>,
    len: AtomicUsize,
    max: usize,
}

impl DedupeIndex {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            len: AtomicUsize::new(0),
            max,
        }
    }

    fn shard(&self, id: &Uuid) -> std::sync::MutexGuard<'_, HashMap<Uuid, Slot>> {
        // Client-chosen ids may be skewed on purpose; that only costs lock contention, the
        // map itself hashes with a random key.
        let v = id.as_u128();
        let i = ((v ^ (v >> 64)) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 60;
        self.shards[i as usize].lock().expect("dedupe shard lock")
    }

    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    pub(crate) fn reserve(&self, id: Uuid, fingerprint: u64) -> Reserve {
        self.reserve_within(id, fingerprint, true)
    }

    /// [`DedupeIndex::reserve`] for a command the server itself issues (a process's or a
    /// timer's), which cannot be refused: it goes past the bound. Those are bounded by
    /// the commands that cause them.
    pub(crate) fn reserve_issued(&self, id: Uuid, fingerprint: u64) -> Reserve {
        self.reserve_within(id, fingerprint, false)
    }

    fn reserve_within(&self, id: Uuid, fingerprint: u64, bounded: bool) -> Reserve {
        let mut shard = self.shard(&id);
        if let Some(slot) = shard.get(&id) {
            return if slot.fingerprint == fingerprint {
                Reserve::Duplicate
            } else {
                Reserve::Conflict
            };
        }
        if bounded && self.len.load(Ordering::Relaxed) >= self.max {
            return Reserve::Full;
        }
        shard.insert(
            id,
            Slot {
                fingerprint,
                seq: PENDING,
            },
        );
        self.len.fetch_add(1, Ordering::Relaxed);
        Reserve::Reserved
    }

    /// The command log sync covered the reserved command: it is now accepted at `seq`.
    pub(crate) fn mark_durable(&self, id: Uuid, seq: u64) {
        if let Some(slot) = self.shard(&id).get_mut(&id) {
            debug_assert_eq!(slot.seq, PENDING);
            slot.seq = seq;
        }
    }

    /// Drops a reservation whose command was never logged.
    pub(crate) fn release(&self, id: Uuid) {
        let mut shard = self.shard(&id);
        if shard.get(&id).is_some_and(|slot| slot.seq == PENDING) {
            shard.remove(&id);
            self.len.fetch_sub(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn get(&self, id: &Uuid) -> Option<Slot> {
        self.shard(id).get(id).copied()
    }

    /// Recovery: the command log holds `id` at `seq` within the window. A later record of
    /// the same id (possible only if the window was shorter when it was accepted) wins.
    pub(crate) fn insert_recovered(&self, id: Uuid, slot: Slot) {
        if self.shard(&id).insert(id, slot).is_none() {
            self.len.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Forgets `id` if it is still the entry logged at `seq`.
    pub(crate) fn evict(&self, id: Uuid, seq: u64) {
        let mut shard = self.shard(&id);
        if shard.get(&id).is_some_and(|slot| slot.seq == seq) {
            shard.remove(&id);
            self.len.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// The fingerprint two submissions of one id are compared by: 64 bits over name, version,
/// expected version and canonical payload. Only submissions that share an id are ever
/// compared, so a collision needs a client to reuse an id with other content *and* hit
/// 2^-64.
pub(crate) fn fingerprint(
    name: &str,
    version: u32,
    expected_version: Option<u64>,
    payload: &[u8],
) -> u64 {
    let mut h = Hasher64::new(0x5752_4954); // "WRIT"
    h.write(name.as_bytes());
    h.write(&version.to_le_bytes());
    if let Some(expected) = expected_version {
        h.write(b"expected");
        h.write(&expected.to_le_bytes());
    }
    h.write(payload);
    h.finish()
}

/// A small fixed-key 64-bit hash (8-byte lanes, multiply-xorshift mixing, SplitMix64
/// finalizer). Stable across builds, unlike `std`'s `DefaultHasher`.
struct Hasher64 {
    state: u64,
}

impl Hasher64 {
    fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let lane = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            self.mix(lane);
        }
        let mut tail = [0u8; 8];
        let rest = chunks.remainder();
        tail[..rest.len()].copy_from_slice(rest);
        // The length goes in so that "ab" + "c" and "a" + "bc" differ.
        self.mix(u64::from_le_bytes(tail) ^ ((bytes.len() as u64) << 56));
    }

    fn mix(&mut self, lane: u64) {
        self.state = (self.state ^ lane).wrapping_mul(0x9fb2_1c65_1e98_df25);
        self.state ^= self.state >> 29;
    }

    fn finish(&self) -> u64 {
        let mut z = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Callers waiting for the status of an id to change. Registered only by those who wait
/// (long polls, duplicates of a command still being synced); the pipeline threads wake an
/// id's waiters after each durable step. Bounded by `waiters_max`.
#[derive(Debug)]
pub(crate) struct Waiters {
    map: Mutex<HashMap<Uuid, Vec<oneshot::Sender<()>>>>,
    count: AtomicUsize,
    max: usize,
}

impl Waiters {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            count: AtomicUsize::new(0),
            max,
        }
    }

    /// Registers interest in `id`; `None` when the registry is full.
    pub(crate) fn register(&self, id: Uuid) -> Option<oneshot::Receiver<()>> {
        let mut map = self.map.lock().expect("waiters lock");
        if self.count.load(Ordering::Relaxed) >= self.max {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        map.entry(id).or_default().push(tx);
        self.count.fetch_add(1, Ordering::Relaxed);
        Some(rx)
    }

    /// Drops the registrations for `id` whose waiter went away.
    pub(crate) fn forget_closed(&self, id: Uuid) {
        let mut map = self.map.lock().expect("waiters lock");
        if let Some(list) = map.get_mut(&id) {
            let before = list.len();
            list.retain(|tx| !tx.is_closed());
            self.count.fetch_sub(before - list.len(), Ordering::Relaxed);
            if list.is_empty() {
                map.remove(&id);
            }
        }
    }

    /// Wakes everyone waiting on any of `ids`. Cheap when nobody waits.
    pub(crate) fn wake<'a>(&self, ids: impl Iterator<Item = &'a Uuid>) {
        if self.count.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut map = self.map.lock().expect("waiters lock");
        for id in ids {
            if let Some(list) = map.remove(id) {
                self.count.fetch_sub(list.len(), Ordering::Relaxed);
                for tx in list {
                    let _ = tx.send(());
                }
            }
        }
    }

    /// Wakes every waiter (shutdown, poisoning).
    pub(crate) fn wake_all(&self) {
        let mut map = self.map.lock().expect("waiters lock");
        for (_, list) in map.drain() {
            for tx in list {
                let _ = tx.send(());
            }
        }
        self.count.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_then_duplicate_conflict_and_bound() {
        let index = DedupeIndex::new(2);
        let (a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        assert_eq!(index.reserve(a, 10), Reserve::Reserved);
        assert_eq!(index.reserve(a, 10), Reserve::Duplicate);
        assert_eq!(index.reserve(a, 11), Reserve::Conflict);
        assert_eq!(index.reserve(b, 10), Reserve::Reserved);
        assert_eq!(index.reserve(c, 10), Reserve::Full);
        index.release(b);
        assert_eq!(index.len(), 1);
        index.mark_durable(a, 7);
        assert_eq!(index.get(&a).unwrap().seq, 7);
        // A durable entry is not released, only evicted at its own sequence.
        index.release(a);
        index.evict(a, 8);
        assert!(index.get(&a).is_some());
        index.evict(a, 7);
        assert!(index.get(&a).is_none());
        assert_eq!(index.len(), 0);
    }

    #[test]
    fn fingerprint_separates_fields() {
        assert_ne!(
            fingerprint("ab", 1, None, b"c"),
            fingerprint("a", 1, None, b"bc")
        );
        assert_ne!(
            fingerprint("a", 1, None, b"{}"),
            fingerprint("a", 2, None, b"{}")
        );
        assert_ne!(
            fingerprint("a", 1, None, b"{}"),
            fingerprint("a", 1, Some(0), b"{}")
        );
        assert_ne!(
            fingerprint("a", 1, Some(1), b"{}"),
            fingerprint("a", 1, Some(0), b"{}")
        );
        assert_eq!(
            fingerprint("a", 1, Some(3), b"{}"),
            fingerprint("a", 1, Some(3), b"{}")
        );
    }
}
