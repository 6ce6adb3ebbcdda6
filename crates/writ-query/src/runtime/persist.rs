//! Snapshots in the runtime: what a start loads for a read model ([`load`]), and the
//! `writ-snapshot` thread that writes them ([`Snapshotter`]).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::runtime::erased::{AnyProjection, AnySnapshot, Instance};
use crate::runtime::group::Group;
use crate::runtime::options::{SnapshotOptions, SnapshotStatus};
use crate::runtime::reader::{lock, panic_message};
use crate::runtime::snapshots::Snapshots;
use crate::snapshot::{SNAPSHOT_NAME_BYTES_MAX, SnapshotHeader, Writer, is_model_name};
use crate::source::EventSource;

/// Counter by model and outcome: what a start did with a read model's snapshots.
pub(crate) const SNAPSHOT_LOADS: &str = "writ_projection_snapshot_loads_total";
/// Counter by model: snapshots written.
pub(crate) const SNAPSHOTS_WRITTEN: &str = "writ_projection_snapshots_written_total";
/// Counter by model: bytes of the snapshots written.
pub(crate) const SNAPSHOT_BYTES: &str = "writ_projection_snapshot_bytes_total";
/// Gauge by model: the position of the last snapshot written or loaded.
pub(crate) const SNAPSHOT_POSITION: &str = "writ_projection_snapshot_position";
/// Counter by model: snapshots that could not be written.
pub(crate) const SNAPSHOT_FAILURES: &str = "writ_projection_snapshot_failures_total";
/// Counter: snapshots due by their interval of events that were put off while a round
/// of writes ran or rested as the time share says (once per putting off).
pub(crate) const SNAPSHOTS_DEFERRED: &str = "writ_projection_snapshots_deferred_total";
/// Gauge: how long the last round of snapshot writes took, in seconds.
pub(crate) const SNAPSHOT_WRITE_SECONDS: &str = "writ_projection_snapshot_write_seconds";

/// A read model loaded from a snapshot.
pub(crate) struct Loaded {
    pub(crate) instance: Box<dyn Instance>,
    pub(crate) snapshot: AnySnapshot,
    pub(crate) position: u64,
}

/// Why a snapshot file was not loaded, as the metric's `outcome` says it.
#[derive(Debug, Clone, Copy)]
enum Ignored {
    /// It could not be read.
    Unreadable,
    /// Torn, damaged, or a state that does not decode.
    Damaged,
    /// Written by other code: another projection version, snapshot format or build.
    OtherCode,
    /// Of another journal (or past this one's end).
    OtherJournal,
}

impl Ignored {
    fn as_str(self) -> &'static str {
        match self {
            Self::Unreadable => "unreadable",
            Self::Damaged => "damaged",
            Self::OtherCode => "other_code",
            Self::OtherJournal => "other_journal",
        }
    }
}

/// The newest snapshot of `projection`'s read model that this code wrote of this journal,
/// loaded; `None` when there is none (each one passed over is in `status.ignored`, logged
/// and counted). Removes leftovers (`.tmp`), the snapshots of another journal, and all
/// but the newest kept.
pub(crate) fn load(
    source: &dyn EventSource,
    options: &SnapshotOptions,
    projection: &Arc<dyn AnyProjection>,
    status: &mut SnapshotStatus,
) -> Option<Loaded> {
    let root = projection.root();
    let model = root.name;
    let format = projection.snapshot_format()?;
    let build = build_tag(options, projection.as_ref());
    if !is_model_name(model) || build.len() > SNAPSHOT_NAME_BYTES_MAX {
        tracing::warn!(
            model,
            "the read model's name cannot name a snapshot directory (ASCII letters, digits, - and _, at most 64), or the build tag (with the projection's code tag) is longer than 255 bytes: no snapshots"
        );
        return None;
    }
    let store = &options.store;
    let listing = match store.list(model) {
        Ok(listing) => listing,
        Err(error) => {
            tracing::warn!(model, %error, "cannot list the read model's snapshots; replaying it from position 1");
            return None;
        }
    };
    let mut loaded = None;
    if options.load {
        for &position in &listing.positions {
            match try_load(source, options, projection, (format, &build), position) {
                Ok(found) => {
                    loaded = Some(found);
                    break;
                }
                Err((ignored, why)) => {
                    tracing::warn!(
                        model,
                        position,
                        reason = ignored.as_str(),
                        "snapshot ignored: {why}"
                    );
                    metrics::counter!(SNAPSHOT_LOADS, "model" => model, "outcome" => ignored.as_str())
                        .increment(1);
                    status.ignored.push(format!("{position}: {why}"));
                    if matches!(ignored, Ignored::OtherJournal) {
                        // It can never be loaded on this journal: it would only push the
                        // snapshots of this one out of those kept.
                        let _ = store.remove(model, position);
                    }
                }
            }
        }
    }
    if let Err(error) = store.prune(model) {
        tracing::warn!(model, %error, "cannot remove old snapshots");
    }
    match &loaded {
        Some(loaded) => {
            tracing::info!(
                model,
                position = loaded.position,
                "read model loaded from its snapshot"
            );
            metrics::counter!(SNAPSHOT_LOADS, "model" => model, "outcome" => "loaded").increment(1);
            metrics::gauge!(SNAPSHOT_POSITION, "model" => model).set(loaded.position as f64);
            status.loaded = Some(loaded.position);
        }
        None => {
            metrics::counter!(SNAPSHOT_LOADS, "model" => model, "outcome" => "none").increment(1);
        }
    }
    loaded
}

/// The build tag a snapshot of `projection` records and must record to be loaded:
/// [`SnapshotOptions::build`], then `+` and the projection's code tag when it has one
/// ([`Projection::code_tag`](crate::Projection::code_tag)).
fn build_tag(options: &SnapshotOptions, projection: &dyn AnyProjection) -> String {
    match projection.code_tag() {
        Some(tag) => format!("{}+{tag}", options.build),
        None => options.build.clone(),
    }
}

fn try_load(
    source: &dyn EventSource,
    options: &SnapshotOptions,
    projection: &Arc<dyn AnyProjection>,
    (format, build): (u32, &str),
    position: u64,
) -> Result<Loaded, (Ignored, String)> {
    let root = projection.root();
    let bytes = options
        .store
        .read(root.name, position)
        .map_err(|e| (Ignored::Unreadable, format!("cannot read it: {e}")))?;
    let (header, body) =
        SnapshotHeader::decode(&bytes).map_err(|e| (Ignored::Damaged, e.to_string()))?;
    if header.position != position || header.model != root.name {
        return Err((
            Ignored::Damaged,
            format!(
                "its header says {}@{} but its name says {}@{position}",
                header.model, header.position, root.name
            ),
        ));
    }
    if (
        header.projection_version,
        header.format,
        header.build.as_str(),
    ) != (root.version, format, build)
    {
        return Err((
            Ignored::OtherCode,
            format!(
                "written by projection version {}, snapshot format {}, build {:?}; this is version {}, format {format}, build {build:?}",
                header.projection_version, header.format, header.build, root.version
            ),
        ));
    }
    let last = source.last_position();
    if position > last {
        return Err((
            Ignored::OtherJournal,
            format!("its position is past the journal's end ({last})"),
        ));
    }
    match source.mark(position) {
        Some(mark) if mark == header.journal => {}
        Some(_) => {
            return Err((
                Ignored::OtherJournal,
                "it was written on another journal (the journal's mark at its position differs)"
                    .to_owned(),
            ));
        }
        None => {
            return Err((
                Ignored::Unreadable,
                "the source cannot identify the journal at its position".to_owned(),
            ));
        }
    }
    let (instance, snapshot) = catch_unwind(AssertUnwindSafe(|| projection.load(body, position)))
        .map_err(|panic| {
            (
                Ignored::Damaged,
                format!(
                    "the projection panicked loading it: {}",
                    panic_message(&*panic)
                ),
            )
        })?
        .map_err(|e| (Ignored::Damaged, format!("its state does not load: {e}")))?;
    Ok(Loaded {
        instance,
        snapshot,
        position,
    })
}

/// The applying thread's end of the snapshot thread: offers it a published [`Snapshots`]
/// once enough events were applied.
pub(crate) struct Snapshotter {
    offers: SyncSender<Arc<Snapshots>>,
    every_events: u64,
    /// Offer the next at or past this position.
    due: u64,
    /// And not before the time share allows.
    pace: Arc<Pace>,
    /// A due snapshot is being put off by `pace` (counted once).
    deferred: bool,
}

/// When the next snapshot may be offered, by the time the last writes took
/// ([`SnapshotOptions::time_share`](super::SnapshotOptions::time_share)); written by the
/// snapshot thread, read by the applying thread.
pub(crate) struct Pace {
    base: Instant,
    /// Nanoseconds after `base` before which no snapshot is offered.
    not_before_ns: AtomicU64,
    /// `1 / share − 1`: how many times a write's duration the thread then rests.
    rest_factor: f64,
}

impl Pace {
    pub(crate) fn new(share: f64) -> Self {
        let share = if share.is_finite() && share > 0.0 {
            share.min(1.0)
        } else {
            1.0
        };
        Self {
            base: Instant::now(),
            not_before_ns: AtomicU64::new(0),
            rest_factor: 1.0 / share - 1.0,
        }
    }

    /// A snapshot was offered to the thread: none is offered again until its round of
    /// writes ends ([`Pace::wrote`]), so that one offered while it writes does not follow
    /// it at once.
    pub(crate) fn hold(&self) {
        self.not_before_ns.store(u64::MAX, Ordering::Relaxed);
    }

    /// A round of writes that took `took` ended now.
    pub(crate) fn wrote(&self, took: Duration) {
        // A share near 0 makes the rest longer than a `Duration` holds: no snapshot again.
        let rest = Duration::try_from_secs_f64(took.as_secs_f64() * self.rest_factor)
            .unwrap_or(Duration::MAX);
        let at = self.base.elapsed().saturating_add(rest);
        let ns = u64::try_from(at.as_nanos()).unwrap_or(u64::MAX);
        self.not_before_ns.store(ns, Ordering::Relaxed);
    }

    /// Whether a snapshot may be offered now.
    pub(crate) fn allows(&self) -> bool {
        let now = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        now >= self.not_before_ns.load(Ordering::Relaxed)
    }
}

impl Snapshotter {
    /// Starts the `writ-snapshot` thread for `group`, whose read models were loaded at
    /// `positions` (0: replayed); `None` when nothing is to be written (no read model has
    /// a snapshot format, or the interval is 0).
    pub(crate) fn start(
        group: &Arc<Group>,
        positions: &[u64],
    ) -> std::io::Result<Option<(Self, JoinHandle<()>)>> {
        let Some(options) = group.options.snapshots.as_ref() else {
            return Ok(None);
        };
        let formats = group
            .models
            .iter()
            .any(|model| model.spec.projection.snapshot_format().is_some());
        if options.every_events == 0 || !formats {
            return Ok(None);
        }
        let (offers, offered) = sync_channel(1);
        let written: Vec<u64> = positions.to_vec();
        let pace = Arc::new(Pace::new(options.time_share));
        let thread = {
            let (group, pace) = (Arc::clone(group), Arc::clone(&pace));
            std::thread::Builder::new()
                .name("writ-snapshot".to_owned())
                .spawn(move || run(&group, &offered, written, &pace))?
        };
        let start = positions.iter().copied().min().unwrap_or(0);
        Ok(Some((
            Self {
                offers,
                every_events: options.every_events,
                due: start.saturating_add(options.every_events),
                pace,
                deferred: false,
            },
            thread,
        )))
    }

    /// Called after each publish: hands `snapshots` to the thread when its position is
    /// due, the time share allows it and the thread is idle (else the next publish tries
    /// again).
    pub(crate) fn published(&mut self, snapshots: &Arc<Snapshots>) {
        if snapshots.position < self.due {
            return;
        }
        if !self.pace.allows() {
            if !self.deferred {
                self.deferred = true;
                metrics::counter!(SNAPSHOTS_DEFERRED).increment(1);
            }
            return;
        }
        match self.offers.try_send(Arc::clone(snapshots)) {
            Ok(()) => {
                self.pace.hold();
                self.due = snapshots.position.saturating_add(self.every_events);
                self.deferred = false;
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {}
        }
    }
}

/// The `writ-snapshot` thread: writes what it is offered, and at the end (the applying
/// thread dropped its sender: shutdown, or the source closed) the last published
/// snapshots when anything was applied since (whatever the time share: a clean
/// shutdown's snapshot spares the next start a replay).
fn run(group: &Group, offered: &Receiver<Arc<Snapshots>>, mut written: Vec<u64>, pace: &Pace) {
    while let Ok(snapshots) = offered.recv() {
        let started = Instant::now();
        write(group, &snapshots, &mut written);
        let took = started.elapsed();
        metrics::gauge!(SNAPSHOT_WRITE_SECONDS).set(took.as_secs_f64());
        pace.wrote(took);
    }
    write(group, &group.current.load_full(), &mut written);
}

/// Writes the snapshot of every read model of `snapshots` that has a snapshot format,
/// is not stopped, and has none at that position or later yet.
fn write(group: &Group, snapshots: &Snapshots, written: &mut [u64]) {
    let Some(options) = group.options.snapshots.as_ref() else {
        return;
    };
    let position = snapshots.position;
    if position == 0 || written.iter().all(|w| *w >= position) {
        return;
    }
    let Some(journal) = group.source.mark(position) else {
        tracing::warn!(
            position,
            "cannot identify the journal at the read models' position: no snapshot written"
        );
        return;
    };
    for (index, published) in snapshots.models.iter().enumerate() {
        let model = &group.models[index];
        if published.stopped || written[index] >= position || published.position != position {
            continue;
        }
        let projection = Arc::clone(&lock(&model.live).projection);
        let Some(format) = projection.snapshot_format() else {
            continue;
        };
        let build = build_tag(options, projection.as_ref());
        if projection.root() != published.root
            || !is_model_name(model.name)
            || build.len() > SNAPSHOT_NAME_BYTES_MAX
        {
            continue;
        }
        let encoded = catch_unwind(AssertUnwindSafe(|| {
            let mut out = Writer::new();
            projection
                .save(&published.snapshot, &mut out)
                .then(|| out.into_vec())
        }));
        let result = match encoded {
            Ok(Some(body)) => {
                let file = SnapshotHeader {
                    model: model.name.to_owned(),
                    projection_version: published.root.version,
                    format,
                    build,
                    position,
                    journal,
                }
                .encode(&body);
                options
                    .store
                    .write(model.name, position, &file)
                    .map(|()| file.len())
                    .map_err(|e| e.to_string())
            }
            Ok(None) => Err("the snapshot is not of the projection's state".to_owned()),
            Err(panic) => Err(format!(
                "the projection panicked saving it: {}",
                panic_message(&*panic)
            )),
        };
        let mut status = lock(&model.snapshots);
        match result {
            Ok(bytes) => {
                written[index] = position;
                status.written += 1;
                status.last_written = Some(position);
                status.last_bytes = bytes as u64;
                metrics::counter!(SNAPSHOTS_WRITTEN, "model" => model.name).increment(1);
                metrics::counter!(SNAPSHOT_BYTES, "model" => model.name).increment(bytes as u64);
                metrics::gauge!(SNAPSHOT_POSITION, "model" => model.name).set(position as f64);
                tracing::debug!(model = model.name, position, bytes, "snapshot written");
                drop(status);
                if let Err(error) = options.store.prune(model.name) {
                    tracing::warn!(model = model.name, %error, "cannot remove old snapshots");
                }
            }
            Err(error) => {
                status.failures += 1;
                metrics::counter!(SNAPSHOT_FAILURES, "model" => model.name).increment(1);
                tracing::warn!(model = model.name, position, %error, "cannot write the read model's snapshot");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pace_rests_the_share_of_the_last_writes_duration() {
        // Nothing written yet: a snapshot may be offered at once.
        let pace = Pace::new(0.05);
        assert!(pace.allows());
        // A write of 10 s at a share of 5% rests 190 s: none may be offered now.
        pace.wrote(Duration::from_secs(10));
        assert!(!pace.allows());
        // A write that took no time rests none.
        pace.wrote(Duration::ZERO);
        assert!(pace.allows());
        // From an offer to the end of its writes, none is offered.
        pace.hold();
        assert!(!pace.allows());
        pace.wrote(Duration::ZERO);
        assert!(pace.allows());
        // A rest longer than a `Duration` holds never ends, and does not panic.
        let pace = Pace::new(f64::MIN_POSITIVE);
        pace.wrote(Duration::from_secs(1));
        assert!(!pace.allows());

        // A share of 1 never rests, however long the write took.
        let pace = Pace::new(1.0);
        pace.wrote(Duration::from_secs(3_600));
        assert!(pace.allows());

        // A rest ends: 20 ms at a share of one half rests 20 ms.
        let pace = Pace::new(0.5);
        pace.wrote(Duration::from_millis(20));
        std::thread::sleep(Duration::from_millis(40));
        assert!(pace.allows());
    }

    #[test]
    fn a_share_out_of_range_means_no_bound() {
        for share in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let pace = Pace::new(share);
            pace.wrote(Duration::from_secs(60));
            assert!(pace.allows(), "share {share}");
        }
        // Above 1 is taken as 1.
        let pace = Pace::new(4.0);
        pace.wrote(Duration::from_secs(60));
        assert!(pace.allows());
    }
}
