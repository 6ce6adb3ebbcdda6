//! The dedupe index: which command ids were seen within the window, with what content, and
//! where they are in the journal.
//!
//! Two parts (`docs/log-format.md`, "The dedupe index at sustained peak"):
//! - **Hot:** an exact map of the ids not yet in a run: reserved when a command passes
//!   validation (before it is logged), marked with its sequence once the journal sync
//!   covers it. Bounded by `dedupe_entries_max`: at the bound intake refuses new commands
//!   (overload) rather than forget an id early; the bound is reached only when spilling
//!   falls behind or fails (a full disk).
//! - **Runs:** once the hot map holds `dedupe_spill_entries` ids, the `writ-dedupe`
//!   thread writes its durable ids, sorted, as a run file ([`runs`]) and only then drops
//!   them from the map; runs of similar size are merged, and a run is deleted once its
//!   newest record leaves the window. A run keeps its filter and fences in memory (about
//!   1.35 bytes per id); a lookup that passes a filter reads one block and confirms the
//!   id against the journal record it names, whose fingerprint tells a duplicate from a
//!   conflict. A filter hit alone never makes a command a duplicate.
//!
//! Both are rebuilt at open ([`crate::recovery`]): runs are hints, checked and kept, and
//! what no valid run covers within the window is rebuilt from the journal.

pub(crate) mod maintain;
pub(crate) mod runs;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use tokio::sync::oneshot;
use uuid::Uuid;
use writ_log::LogReader;

use crate::clock::Clock;
use crate::error::ReadError;
use crate::record::JournalRecord;
use runs::Run;

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
    /// The hot map is at its bound (spilling fell behind or failed).
    Full,
}

/// Bytes of one hot map entry in its table: key, value and a control byte.
pub(crate) const HOT_ENTRY_BYTES: usize = std::mem::size_of::<(Uuid, Slot)>() + 1;

/// The runs, oldest first; replaced whole when one is added, merged or expired.
pub(crate) type RunList = Arc<Vec<Arc<Run>>>;

pub(crate) struct DedupeIndex {
    shards: Box<[Mutex<HashMap<Uuid, Slot>>]>,
    len: AtomicUsize,
    max: usize,
    pub(crate) spill_entries: usize,
    window_ms: u64,
    clock: Arc<dyn Clock>,
    journal: LogReader,
    runs: RwLock<RunList>,
    /// Bumped after every change of `runs`, before ids leave the hot map: a lookup that
    /// misses both and sees it unchanged under its shard's lock missed nothing.
    generation: AtomicU64,
    /// Records before this one are marked durable in the hot map.
    marked_end: AtomicU64,
    /// Records before this one are in runs or out of the window: none of them is hot.
    pub(crate) spilled_end: AtomicU64,
    /// Wakes the `writ-dedupe` thread when the hot map is due to spill.
    wake: OnceLock<SyncSender<maintain::Msg>>,
}

impl std::fmt::Debug for DedupeIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DedupeIndex")
            .field("hot", &self.len())
            .field("runs", &self.runs().len())
            .finish_non_exhaustive()
    }
}

impl DedupeIndex {
    pub(crate) fn new(options: &crate::options::EngineOptions, journal: LogReader) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            len: AtomicUsize::new(0),
            max: options.dedupe_entries_max,
            spill_entries: options.dedupe_spill_entries,
            window_ms: options.dedupe_window.as_millis() as u64,
            clock: Arc::clone(&options.clock),
            journal,
            runs: RwLock::new(Arc::new(Vec::new())),
            generation: AtomicU64::new(0),
            marked_end: AtomicU64::new(0),
            spilled_end: AtomicU64::new(0),
            wake: OnceLock::new(),
        }
    }

    fn shard(&self, id: &Uuid) -> std::sync::MutexGuard<'_, HashMap<Uuid, Slot>> {
        // Client-chosen ids may be skewed on purpose; that only costs lock contention, the
        // map itself hashes with a random key.
        let v = id.as_u128();
        let i = ((v ^ (v >> 64)) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 60;
        self.shards[i as usize].lock().expect("dedupe shard lock")
    }

    /// Ids in the hot map (reserved, or durable and not yet in a run).
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// The runs, oldest first.
    pub(crate) fn runs(&self) -> RunList {
        Arc::clone(&self.runs.read().expect("dedupe runs lock"))
    }

    /// Replaces the runs (the `writ-dedupe` thread and recovery only).
    pub(crate) fn set_runs(&self, runs: Vec<Arc<Run>>) {
        *self.runs.write().expect("dedupe runs lock") = Arc::new(runs);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The oldest `recorded_at_ms` still within the window.
    pub(crate) fn horizon_ms(&self) -> u64 {
        self.clock.now_ms().saturating_sub(self.window_ms)
    }

    /// Ids in the hot map and in the runs.
    pub(crate) fn entries(&self) -> u64 {
        self.len() as u64
            + self
                .runs()
                .iter()
                .map(|r| r.footer().entry_count)
                .sum::<u64>()
    }

    /// Bytes the index holds in memory: the hot map's tables (by their capacity) and
    /// every run's filter and fences.
    pub(crate) fn memory_bytes(&self) -> u64 {
        let hot: usize = self
            .shards
            .iter()
            .map(|s| s.lock().expect("dedupe shard lock").capacity() * HOT_ENTRY_BYTES)
            .sum();
        let runs: usize = self.runs().iter().map(|r| r.memory_bytes()).sum();
        (hot + runs) as u64
    }

    pub(crate) fn reserve(&self, id: Uuid, fingerprint: u64) -> Result<Reserve, ReadError> {
        self.reserve_within(id, fingerprint, true)
    }

    /// [`DedupeIndex::reserve`] for a command the server itself issues (a process's or a
    /// timer's), which cannot be refused: it goes past the bound. Those are bounded by
    /// the commands that cause them.
    ///
    /// Their ids are derived from the event that caused them, so they are new but for a
    /// unit resumed at open (whose ids are in the hot map): when the runs cannot be read,
    /// the id is taken as new (and the failure logged) rather than the command dropped.
    pub(crate) fn reserve_issued(&self, id: Uuid, fingerprint: u64) -> Reserve {
        match self.reserve_within(id, fingerprint, false) {
            Ok(reserve) => reserve,
            Err(error) => {
                tracing::error!(%id, %error, "the dedupe index could not be read for a command the server issued; it is taken as new");
                let mut shard = self.shard(&id);
                match shard.get(&id) {
                    Some(slot) if slot.fingerprint == fingerprint => Reserve::Duplicate,
                    Some(_) => Reserve::Conflict,
                    None => self.insert_pending(&mut shard, id, fingerprint),
                }
            }
        }
    }

    fn reserve_within(
        &self,
        id: Uuid,
        fingerprint: u64,
        bounded: bool,
    ) -> Result<Reserve, ReadError> {
        let found = self.look(id, |shard| {
            if bounded && self.len.load(Ordering::Relaxed) >= self.max {
                return Reserve::Full;
            }
            self.insert_pending(shard, id, fingerprint)
        })?;
        Ok(match found {
            Ok(slot) if slot.fingerprint == fingerprint => Reserve::Duplicate,
            Ok(_) => Reserve::Conflict,
            Err(reserve) => reserve,
        })
    }

    fn insert_pending(
        &self,
        shard: &mut HashMap<Uuid, Slot>,
        id: Uuid,
        fingerprint: u64,
    ) -> Reserve {
        let pending = Slot {
            fingerprint,
            seq: PENDING,
        };
        shard.insert(id, pending);
        self.len.fetch_add(1, Ordering::Relaxed);
        Reserve::Reserved
    }

    /// What the index holds for `id`: in the hot map, or in a run (confirmed against the
    /// journal, and only while its record is within the window).
    pub(crate) fn get(&self, id: &Uuid) -> Result<Option<Slot>, ReadError> {
        Ok(self.look(*id, |_| ())?.ok())
    }

    /// Looks `id` up in the hot map, then in the runs, newest first; when it is in neither,
    /// runs `absent` under its shard's lock (so that a reservation is atomic) and returns
    /// what it returns. The runs are probed under the lock only by their filters, in
    /// memory; a filter hit is read and confirmed outside it, then looked for again.
    fn look<T>(
        &self,
        id: Uuid,
        absent: impl FnOnce(&mut HashMap<Uuid, Slot>) -> T,
    ) -> Result<Result<Slot, T>, ReadError> {
        loop {
            let generation = self.generation.load(Ordering::Acquire);
            let runs = self.runs();
            {
                let mut shard = self.shard(&id);
                if let Some(slot) = shard.get(&id) {
                    return Ok(Ok(*slot));
                }
                if !runs.iter().any(|run| run.may_contain(id)) {
                    if self.generation.load(Ordering::Acquire) != generation {
                        continue;
                    }
                    return Ok(Err(absent(&mut shard)));
                }
            }
            if let Some(slot) = self.find_in_runs(&runs, id)? {
                return Ok(Ok(slot));
            }
            let mut shard = self.shard(&id);
            if let Some(slot) = shard.get(&id) {
                return Ok(Ok(*slot));
            }
            if self.generation.load(Ordering::Acquire) != generation {
                continue;
            }
            return Ok(Err(absent(&mut shard)));
        }
    }

    /// The newest run holding `id`, confirmed against the journal record it names.
    fn find_in_runs(&self, runs: &[Arc<Run>], id: Uuid) -> Result<Option<Slot>, ReadError> {
        let mut buf = Vec::new();
        for run in runs.iter().rev() {
            let seq = match run.find(id) {
                Ok(Some(seq)) => seq,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(run = %run.name, error = %e, "a dedupe run is damaged; it is rebuilt from the journal");
                    self.wake();
                    return Err(ReadError::DedupeRun {
                        run: run.name.clone(),
                        detail: e.to_string(),
                    });
                }
            };
            self.journal.read(seq, &mut buf)?;
            let record =
                JournalRecord::decode(&buf).map_err(|source| ReadError::Record { seq, source })?;
            if record.id != id {
                // The run is wrong about this id: it is not here.
                tracing::warn!(run = %run.name, %id, seq, "a dedupe run names a journal record of another id");
                continue;
            }
            if record.recorded_at_ms < self.horizon_ms() {
                // Out of the window (older runs only hold older records).
                return Ok(None);
            }
            return Ok(Some(Slot {
                fingerprint: fingerprint(
                    record.name,
                    record.version,
                    record.expected_version,
                    record.payload,
                ),
                seq,
            }));
        }
        Ok(None)
    }

    /// The command log sync covered the reserved command: it is now accepted at `seq`.
    pub(crate) fn mark_durable(&self, id: Uuid, seq: u64) {
        if let Some(slot) = self.shard(&id).get_mut(&id) {
            debug_assert_eq!(slot.seq, PENDING);
            slot.seq = seq;
        }
    }

    /// Every record before `end` is marked durable; wakes the spill when it is due.
    pub(crate) fn marked_through(&self, end: u64) {
        self.marked_end.store(end, Ordering::Release);
        if self.spill_due() {
            self.wake();
        }
    }

    /// Whether `dedupe_spill_entries` records were marked durable since the last spill.
    /// Counted in durable records rather than in the hot map's size, which also holds
    /// reservations not yet durable: a spill takes durable ids only, so a spill started by
    /// the size alone could take fewer than `dedupe_spill_entries` and leave the rest below
    /// the threshold until more commands come.
    pub(crate) fn spill_due(&self) -> bool {
        let spilled = self.spilled_end.load(Ordering::Acquire);
        self.marked_end().saturating_sub(spilled) >= self.spill_entries as u64
    }

    pub(crate) fn marked_end(&self) -> u64 {
        self.marked_end.load(Ordering::Acquire)
    }

    /// Lets the index wake the `writ-dedupe` thread.
    pub(crate) fn start_waking(&self, wake: SyncSender<maintain::Msg>) {
        let _ = self.wake.set(wake);
    }

    fn wake(&self) {
        if let Some(wake) = self.wake.get() {
            let _ = wake.try_send(maintain::Msg::Wake);
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

    /// The durable hot ids of records before `end`, sorted by id.
    pub(crate) fn durable_before(&self, end: u64) -> Vec<(u128, u64)> {
        let mut out = Vec::with_capacity(self.len());
        for shard in &self.shards {
            let shard = shard.lock().expect("dedupe shard lock");
            out.extend(
                shard
                    .iter()
                    .filter(|(_, slot)| slot.seq != PENDING && slot.seq < end)
                    .map(|(id, slot)| (id.as_u128(), slot.seq)),
            );
        }
        out.sort_unstable();
        out
    }

    /// Drops the durable hot ids of records before `end` (they are in a run now).
    pub(crate) fn drop_durable_before(&self, end: u64) {
        for shard in &self.shards {
            let mut shard = shard.lock().expect("dedupe shard lock");
            let before = shard.len();
            shard.retain(|_, slot| slot.seq == PENDING || slot.seq >= end);
            self.len.fetch_sub(before - shard.len(), Ordering::Relaxed);
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

    fn index(max: usize) -> DedupeIndex {
        let storage = std::sync::Arc::new(writ_log::storage::SimStorage::new());
        let (log, _) = writ_log::Log::open(storage, "j".as_ref(), Default::default()).unwrap();
        let options = crate::options::EngineOptions {
            dedupe_entries_max: max,
            dedupe_spill_entries: max,
            ..Default::default()
        };
        DedupeIndex::new(&options, log.reader())
    }

    #[test]
    fn reserve_then_duplicate_conflict_and_bound() {
        let index = index(2);
        let (a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        assert_eq!(index.reserve(a, 10).unwrap(), Reserve::Reserved);
        assert_eq!(index.reserve(a, 10).unwrap(), Reserve::Duplicate);
        assert_eq!(index.reserve(a, 11).unwrap(), Reserve::Conflict);
        assert_eq!(index.reserve(b, 10).unwrap(), Reserve::Reserved);
        assert_eq!(index.reserve(c, 10).unwrap(), Reserve::Full);
        index.release(b);
        assert_eq!(index.len(), 1);
        index.mark_durable(a, 7);
        assert_eq!(index.get(&a).unwrap().unwrap().seq, 7);
        // A durable entry is not released, only evicted at its own sequence.
        index.release(a);
        index.evict(a, 8);
        assert!(index.get(&a).unwrap().is_some());
        index.evict(a, 7);
        assert!(index.get(&a).unwrap().is_none());
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
