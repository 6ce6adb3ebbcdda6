//! The runtime of a server's read models ([`ReadModels`]): keeps them up to date with the
//! global log on threads of their own, publishes every read model's snapshot at one
//! position at once ([`Snapshots`]), routes named queries, and rebuilds one read model
//! beside the others and has it join them. [`ProjectionRuntime`] is the same runtime for
//! one projection, typed.
//!
//! # Threads, not tasks
//!
//! The live read models share two OS threads. A reader (`writ-read`) follows the source
//! ([`EventSource::subscribe`](crate::EventSource::subscribe)) and decodes each batch (at
//! most [`RuntimeOptions::batch_events_max`] events) for every read model in turn
//! ([`Projection::decode`](crate::Projection::decode): parsing bodies, allocating the
//! strings the states keep); an applying thread (`writ-apply`) applies the batch to every
//! read model in turn and publishes. They talk over a channel of two batches, so that
//! reading and decoding overlap with applying; applied batches go back to the reader,
//! which reads the next events into them ([`EventFeed::next_batch_into`]) and decodes into
//! their decoded vectors (one per read model, boxed once and refilled batch after batch),
//! so a replay allocates nothing per event to read the log and frees nothing of it on the
//! applying thread, the one that sets the pace. [`Replay`](crate::Replay) hands each
//! projection each run of 32 events to [`Projection::warm`](crate::Projection::warm)
//! before applying them.
//!
//! Applying events is CPU-bound, a catch-up replays millions of them in one go, and the
//! engine's feed reads the log with blocking file reads: on a tokio worker that would
//! stall every request task queued behind it (tokio cannot preempt), and on a 2-core
//! machine it would take half of the server. Threads also make the runtime independent of
//! the caller's runtime: tests, tools and the server start it the same way. The reader
//! drives the feed's futures on a current-thread tokio runtime of its own, so waiting for
//! new events costs no polling.
//!
//! Why one reader and one applier for all read models, rather than a pair per read model:
//! one read of the log instead of one per read model, and one publishing thread, so that
//! a published [`Snapshots`] holds every read model after the same batch without any
//! lock between publishers. Applying the read models one after the other costs what they
//! cost together; a server whose read models together outrun one core would give each
//! group of them a [`ReadModels`] of its own, at the price of one position per group.
//!
//! # Publishing
//!
//! After a batch that leaves the read models caught up with the source (the batch was not
//! full, or nothing more is durable), the applying thread publishes one `Arc<`[`Snapshots`]`>`
//! holding every read model's snapshot at the batch's end position, through an
//! [`ArcSwap`](arc_swap::ArcSwap): readers load it without locks and never see half a
//! batch, nor two read models at two positions; a reader holding one keeps it unchanged.
//! While catching up, it publishes at most every
//! [`RuntimeOptions::catch_up_publish_interval`], because every publish makes the next
//! change to each node of the states copy that node. The position then goes out on a watch
//! channel that [`ReadModels::wait_for`] awaits. Published positions never go back.
//!
//! # Errors
//!
//! An event a projection cannot apply (an [`ApplyError`](crate::ApplyError)) is recorded
//! (a counter and the last failure, in [`ModelStatus::stats`]) and skipped; the read model
//! goes on. One bad event must not stop all reads: the read model keeps serving everything
//! else, and the counter, which the server exports, makes the failure visible. The fix is
//! a corrected projection; it is applied at the next start, which rebuilds (see below), or
//! by a rebuild.
//!
//! A panic in a projection's `decode` or `apply` *parks* the event for that read model:
//! each event is decoded and applied inside its own `catch_unwind` (see
//! [`Replay`](crate::Replay)), so the panic costs that event alone; it is counted and
//! kept with the panic's message ([`ReplayStats::parked`](crate::ReplayStats::parked), the
//! last [`PARKED_EVENTS_KEPT`](crate::PARKED_EVENTS_KEPT) in
//! [`ReplayStats::parked_recent`](crate::ReplayStats::parked_recent)), and the read model
//! goes on with the next event. The command that recorded the event succeeded, and the
//! other read models applied it: a projection's bug must not stop a model's reads, nor
//! others'. A panic in `apply` leaves what the apply changed before it (the state is not
//! restored: `Replay` says why); a projection that checks before changing anything, as
//! it must for errors, is left untouched. The live read models count parked events in
//! the counter `writ_projection_events_parked_total` by model ([`METRICS`]), and the
//! server shows the count and the last parked event in `GET /projections`. The fix is a
//! corrected projection and a rebuild (or a restart), which applies the event.
//!
//! A panic anywhere else on the applying thread (in `warm`, or a broken invariant) stops
//! that read model alone: its instance is dropped, its last published snapshot stays in
//! every later [`Snapshots`] marked stopped, [`ModelStatus::stopped`] and
//! [`ModelStatus::failure`] say why, and its queries, named or from code, answer
//! [`QueryError::Stopped`](crate::QueryError::Stopped) (503) rather than an answer from an
//! older position beside the others. The other read models go on; a rebuild that joins
//! replaces the stopped one. A failure to read the source, or the source shutting down,
//! stops all of them: readers keep the last snapshots, and waits answer
//! [`WaitError::Stopped`] at once.
//!
//! # Snapshots: a start replays only what follows the newest
//!
//! Without [`RuntimeOptions::snapshots`] nothing is persisted: [`ReadModels::start`]
//! replays the log from position 1. On the project's 2-core machine a read model of 100k
//! rows with text indexes replays a million events (100k creations, 900k updates) from
//! the engine's log in 1.14 s (the median of 21 runs, with other work keeping the load
//! average near 4; the README's replay benchmark): its applying thread takes 0.74 s of
//! CPU and its reader thread 0.36 s, side by side; the first run of a process about twice
//! that. So a start costs 1 to 2 s per million events of the log and read model.
//!
//! With [`SnapshotOptions`], a read model whose projection has a snapshot format
//! ([`Projection::snapshot_format`](crate::Projection::snapshot_format), with
//! [`save`](crate::Projection::save) and [`load`](crate::Projection::load)) is written to
//! `snapshots/{model}/{position:020}.snap` of the data directory by one thread for all
//! read models (`writ-snapshot`), from a published [`Snapshots`]: the states are
//! persistent, so holding one costs the applying thread only the copies of the nodes it
//! changes meanwhile, as after any publish. One is written once
//! [`SnapshotOptions::every_events`] events were applied since the last (at the next
//! publish, when the thread is idle, and no sooner than [`SnapshotOptions::time_share`]
//! allows after the last round of writes) and at a clean shutdown; the newest
//! [`SNAPSHOTS_KEPT`](crate::snapshot::SNAPSHOTS_KEPT) of each read model are kept.
//!
//! At start each such read model loads its newest snapshot that
//!
//! - decodes, with its CRC, and names its read model and position;
//! - was written by this code: the same projection name and version, snapshot format and
//!   build tag ([`SnapshotOptions::build`], with the projection's
//!   [`code_tag`](crate::Projection::code_tag) after a `+` when it has one: the files a
//!   read model built at run time was loaded from);
//! - is of this journal: its position is durable, and the source's
//!   [`mark`](crate::EventSource::mark) of that position is the one it recorded;
//! - loads (the projection's `load` reads every byte of it);
//!
//! and the others are ignored, each with a log line saying why
//! ([`SnapshotStatus::ignored`], the `writ_projection_snapshot_loads_total` counter); one
//! of another journal is also removed. A read model without one replays from position 1.
//! The feed starts after the least position the read models were loaded at; a read model
//! loaded further on skips the events its state holds, and nothing is published until
//! the group has passed the furthest (when they are all at one position, as the snapshot
//! thread writes them, the loaded states are published at once). So every published
//! [`Snapshots`] still holds all read models at one position. A rebuild still replays
//! from position 1.
//!
//! The journal's mark is the source's: the engine's adapter reads the event at the
//! position and seven before it. What the engine could give for a sharper identity: the
//! sequence of the record holding the position with that record's CRC (one read, no
//! decoding), and an id of the journal itself that `writ replay --apply` changes, so that
//! a replayed journal whose events match at those positions is still told apart.
//!
//! # Rebuilding without downtime: joins
//!
//! [`ReadModels::rebuild`] builds a new instance of one read model (the same or another
//! projection version) from position 1 on threads of its own (`writ-rebuild-{name}`, fed
//! by a reader `writ-rbread-{name}`), while the live read models go on. When a batch
//! leaves it caught up (its batch was not full, or it is within a few batches of the end
//! of the last batch the live reader read), it *joins* the live group at a batch boundary,
//! so that every published [`Snapshots`] still holds all read models at one position:
//!
//! 1. It hands its instance to the live reader (a channel the reader awaits beside the
//!    feed) and waits for the answer.
//! 2. The live reader takes it between two batches: at the end `R` of the last batch it
//!    handed over, once `R` has reached the instance's position `J` (until then it keeps
//!    reading, so the wait is at most about a batch). It reads the events `J+1..=R` again
//!    (a few batches at most, since the rebuild asked within a few batches of `R`: had it
//!    to reach `R` itself, it could chase the live reader for ever under steady writes)
//!    from the source and decodes them with the joining projection, sends a `Join`
//!    message with them in the batch stream, right after the batch that ends at `R`, and
//!    decodes every later batch for the joining instance instead of the old one.
//! 3. The applying thread, having applied everything up to `R` to the others, applies the
//!    catch-up to the joining instance, swaps it in for the old one (a stopped one too),
//!    publishes at `R`, and reports [`RebuildStatus::Switched`]. The old instance goes
//!    back to the rebuild's thread, which frees its state off the applying thread.
//!
//! If the joining projection panics on the catch-up, the rebuild fails and the live
//! instance stays, decoded for again (batches decoded for the joining one meanwhile are
//! decoded on the applying thread instead). One rebuild per read model runs at a time;
//! shutting down cancels them.
//!
//! [`EventFeed::next_batch_into`]: crate::EventFeed::next_batch_into

mod erased;
mod group;
mod models;
mod options;
mod persist;
mod reader;
mod routes;
mod snapshots;
mod spec;
mod typed;

pub use models::ReadModels;

/// The metrics the read models record through the `metrics` facade (names and meanings),
/// beside the engine's (`writ_engine::METRICS`).
pub const METRICS: &[(&str, &str)] = &[
    (
        group::PROJECTION_EVENTS_PARKED,
        "counter by model: events a live read model's projection panicked on (in decode or apply); the event is parked for that read model, which went on with the next, and the command that recorded it still succeeded",
    ),
    (
        persist::SNAPSHOT_LOADS,
        "counter by model and outcome: what a start did with the read model's snapshots: loaded, none (replayed from position 1), or one ignored as damaged, other_code (another projection version, snapshot format or build), other_journal or unreadable",
    ),
    (
        persist::SNAPSHOTS_WRITTEN,
        "counter by model: read model snapshots written",
    ),
    (
        persist::SNAPSHOT_BYTES,
        "counter by model: bytes of the read model snapshots written",
    ),
    (
        persist::SNAPSHOT_POSITION,
        "gauge by model: the position of the read model's last snapshot written or loaded",
    ),
    (
        persist::SNAPSHOT_FAILURES,
        "counter by model: read model snapshots that could not be written (logged)",
    ),
    (
        persist::SNAPSHOTS_DEFERRED,
        "counter: snapshots due by their interval of events that were put off while a round of writes ran or rested as the snapshot thread's time share says (--snapshot-time-share; once per putting off)",
    ),
    (
        persist::SNAPSHOT_WRITE_SECONDS,
        "gauge: how long the last round of read model snapshot writes took, in seconds",
    ),
];
pub use options::{
    ModelStatus, Rebuild, RebuildError, RebuildStatus, RuntimeOptions, SnapshotOptions,
    SnapshotStatus, StartError, WaitError,
};
pub use routes::ModelQuery;
pub use snapshots::Snapshots;
pub use spec::ReadModelSpec;
pub use typed::ProjectionRuntime;
