//! Scheduling priorities of the engine's own threads (Linux: a thread's nice value is its
//! own; elsewhere nothing changes).
//!
//! The HTTP workers and the syncer run at the process's priority. Two engine threads run
//! below it:
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
