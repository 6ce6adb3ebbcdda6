//! Scheduling priorities of the server's own threads (Linux: a thread's nice value and
//! policy are its own; elsewhere nothing changes).
//!
//! The HTTP workers and the syncer run at the process's priority. Two engine threads run
//! below it, and the read side's threads yield on wake-up:
//!
//! - The `writ-checkpoint` thread at nice 19, the lowest there is: folding the journal a
//!   second time takes the CPU time the rest leaves, falls behind on a machine with every
//!   core busy, and catches up when the load drops.
//! - The `writ-writer` thread [`EngineOptions::writer_nice`](crate::EngineOptions) levels
//!   below the process (default 10). While a core is free it runs at once, so a lone
//!   command, or a few clients that each wait for their outcome, see no difference. When
//!   the HTTP workers have requests to read, they run first and the writer finds more
//!   commands queued each time it runs: fewer, larger batches, fewer wake-ups, and the
//!   workers are not preempted in the middle of a round of requests (the README's
//!   "Measuring" has the figures). Its cost: when threads at the process's priority
//!   keep every core busy for long (heavy query code, say), the writer gets a smaller
//!   share of the CPU than they do, about a tenth at 10, and commands take longer.
//! - The read side's threads (`writ-read`, `writ-apply` and a rebuild's, in `writ-query`)
//!   under `SCHED_BATCH` ([`batch_this_thread`]), when their options ask for it (the
//!   default): same nice value, same share of the CPU under load, but a wake-up of theirs
//!   never preempts the thread running on that core. After each sync the syncer (or the
//!   writer) wakes the read side; woken as a normal thread it took the core from the
//!   writer, which waited behind it to decide and sync the next batch while the commands
//!   that came in during the sync waited for it. Under `SCHED_BATCH` the read side runs
//!   when a core is idle or at the running thread's next switch, so a read model publishes
//!   up to a scheduler slice (milliseconds) later on a busy machine, and as soon as before
//!   on an idle one.

/// Levels that take any thread to nice 19, the lowest priority (nice values run from -20
/// to 19).
pub(crate) const TO_LOWEST: u8 = 39;

/// Lowers the calling thread's priority by `by` nice levels from where it is (at most to
/// 19, the lowest); `0` leaves it. Where the system refuses, the thread keeps its priority
/// and a warning names `thread`.
pub(crate) fn lower_this_thread(by: u8, thread: &str) {
    if by == 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid, getpriority and setpriority take and return plain integers, and
        // with PRIO_PROCESS and a thread id they read and change that thread alone.
        #[allow(unsafe_code)]
        let result = unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            // -1 is also a nice value: errno tells an error apart, and is cleared first.
            *libc::__errno_location() = 0;
            let now = libc::getpriority(libc::PRIO_PROCESS, tid);
            if now == -1 && *libc::__errno_location() != 0 {
                -1
            } else {
                libc::setpriority(libc::PRIO_PROCESS, tid, (now + i32::from(by)).min(19))
            }
        };
        if result != 0 {
            tracing::warn!(
                thread,
                error = %std::io::Error::last_os_error(),
                "the thread runs at the process's priority: lowering it failed"
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = thread;
}

/// Puts the calling thread under the `SCHED_BATCH` scheduling policy (Linux), keeping its
/// nice value: the kernel treats it as a thread that works in bulk, whose wake-ups do not
/// preempt the thread running on a core, with the same share of the CPU by its nice value
/// as before. A thread for which latency of a few milliseconds does not matter, woken
/// often, so that it does not take a core from a thread on the commands' way. Any thread
/// may take this policy without privileges; where the system refuses, the thread keeps its
/// policy and a warning names `thread`. Elsewhere than on Linux nothing changes.
pub fn batch_this_thread(thread: &str) {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 is the calling thread, and `param` is a valid sched_param for the
        // call's duration; SCHED_BATCH takes priority 0 and leaves the nice value as it is.
        #[allow(unsafe_code)]
        let result = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
        if result != 0 {
            tracing::warn!(
                thread,
                error = %std::io::Error::last_os_error(),
                "the thread's wake-ups preempt others: taking the batch scheduling policy failed"
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = thread;
}

/// Whether the calling thread runs under `SCHED_BATCH` (Linux only).
#[cfg(all(test, target_os = "linux"))]
pub(crate) fn this_thread_is_batch() -> bool {
    // SAFETY: pid 0 is the calling thread; the call reads its policy.
    #[allow(unsafe_code)]
    let policy = unsafe { libc::sched_getscheduler(0) };
    policy == libc::SCHED_BATCH
}

/// The calling thread's nice value, as the kernel keeps it (Linux only).
#[cfg(all(test, target_os = "linux"))]
pub(crate) fn this_thread_nice() -> i32 {
    // SAFETY: as above.
    #[allow(unsafe_code)]
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::getpriority(libc::PRIO_PROCESS, tid)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_thread_is_lowered_by_the_levels_asked_and_no_further_than_nice_19() {
        let seen = std::thread::spawn(|| {
            let start = this_thread_nice();
            lower_this_thread(3, "test");
            let lowered = this_thread_nice();
            lower_this_thread(40, "test");
            (start, lowered, this_thread_nice())
        })
        .join()
        .unwrap();
        assert_eq!(seen.1, (seen.0 + 3).min(19));
        assert_eq!(seen.2, 19);
        // The thread that spawned it keeps its own.
        assert_eq!(this_thread_nice(), seen.0);
    }

    #[test]
    fn a_batch_thread_keeps_its_nice_value_and_the_others_keep_their_policy() {
        let (nice_before, batch_before, nice_after, batch_after) = std::thread::spawn(|| {
            lower_this_thread(2, "test");
            let nice_before = this_thread_nice();
            let batch_before = this_thread_is_batch();
            batch_this_thread("test");
            (
                nice_before,
                batch_before,
                this_thread_nice(),
                this_thread_is_batch(),
            )
        })
        .join()
        .unwrap();
        assert!(!batch_before);
        assert!(batch_after);
        assert_eq!(nice_after, nice_before);
        assert!(!this_thread_is_batch());
    }

    #[test]
    fn zero_levels_leave_the_thread_as_it_is() {
        let (before, after) = std::thread::spawn(|| {
            let before = this_thread_nice();
            lower_this_thread(0, "test");
            (before, this_thread_nice())
        })
        .join()
        .unwrap();
        assert_eq!(before, after);
    }
}
