//! Errors of starting the sandbox and of running a query.

use std::time::Duration;

/// Why a query produced no result.
///
/// The server answers the limits ([`TimeLimit`](Self::TimeLimit),
/// [`MemoryLimit`](Self::MemoryLimit) and
/// [`LibraryAnswerTooLarge`](Self::LibraryAnswerTooLarge), [`StackLimit`](Self::StackLimit),
/// [`ResultTooLarge`](Self::ResultTooLarge), [`CodeTooLarge`](Self::CodeTooLarge)) and
/// [`Script`](Self::Script) with 422 naming the limit or the script's error. None of them
/// affects other queries: a VM that hit the time or memory limit is discarded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// The query ran longer than the time limit and was interrupted. The caller should
    /// report the limit; the client may retry with a cheaper query.
    #[error("the query exceeded the time limit of {} ms", limit.as_millis())]
    TimeLimit {
        /// The limit that was exceeded.
        limit: Duration,
    },
    /// The query's VM ran out of its memory budget and the allocation failed. The caller
    /// should report the limit; the client may retry with a query that holds less at once.
    /// (QuickJS throws `null` when it cannot even allocate the error, so code that throws
    /// `null` itself and does not catch it is told this too.)
    #[error("the query exceeded the memory limit of {limit_bytes} bytes")]
    MemoryLimit {
        /// The VM's memory limit.
        limit_bytes: usize,
    },
    /// A library function's answer is larger than a library answer may be within the
    /// query's memory limit: its JSON would take more than `budget_bytes`, half of what a
    /// fresh context leaves of `limit_bytes` (while an answer crosses into the VM, its JSON
    /// text on the host and its parsed value in the VM exist at once, and the value takes
    /// at least as many bytes as the text). The library stopped building it, or the
    /// sandbox stopped writing it into the VM, at the budget; the VM stays in use. The
    /// caller should report the memory limit; the client should ask for less (a page, a
    /// count).
    #[error(
        "the answer of {function} is more than {budget_bytes} bytes of JSON, the most a library answer may take within the query's memory limit of {limit_bytes} bytes"
    )]
    LibraryAnswerTooLarge {
        /// The library function, e.g. `getCounter`.
        function: String,
        /// The most bytes of JSON one answer may take.
        budget_bytes: usize,
        /// The VM's memory limit.
        limit_bytes: usize,
    },
    /// The query recursed deeper than the stack limit allows (an uncaught
    /// `RangeError: Maximum call stack size exceeded`). The caller should report the limit.
    #[error("the query exceeded the stack limit of {limit_bytes} bytes")]
    StackLimit {
        /// The stack limit.
        limit_bytes: usize,
    },
    /// The result's JSON is larger than allowed. The caller should report the limit; the
    /// client should return less (a page, a count, fewer fields).
    #[error("the result is {size} bytes of JSON, more than the limit of {max}")]
    ResultTooLarge {
        /// The size of the result's JSON text in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The code is larger than allowed; it was not run. The caller should report the limit.
    #[error("the code is {size} bytes, more than the limit of {max}")]
    CodeTooLarge {
        /// The size of the code in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The code did not compile, threw an exception that it did not catch, or returned
    /// something that has no JSON form (a `BigInt`, a cycle, a rejected or unsettled
    /// promise). The caller should pass the message on to the client: it is the client's bug.
    #[error("{message}")]
    Script {
        /// The JavaScript error, e.g. `TypeError: cannot read property 'title' of undefined`,
        /// at most 1 KiB.
        message: String,
        /// Line of the code where it was thrown, counted from 1, when known.
        line: Option<u32>,
        /// Column of the code where it was thrown, counted from 1, when known.
        column: Option<u32>,
    },
    /// A library function refused a call and the code did not catch the error, e.g. 404
    /// from `getCounter` for an id that does not exist. The caller should answer with this
    /// status and message, as a named query calling the same function would.
    #[error("{message} ({status})")]
    Library {
        /// The library's status: 400 bad argument, 404 not found, 500 other, 503 a read
        /// model that cannot answer now.
        status: u16,
        /// The library's message.
        message: String,
    },
    /// All workers are busy and the queue is full; the query was not run. The caller should
    /// answer 503 and the client retry later.
    #[error("the sandbox is overloaded: all workers are busy and the queue is full")]
    Overloaded,
    /// A library function or the sandbox panicked, or a VM could not be made (out of
    /// memory). The VM was discarded; the caller should answer 500. A retry may succeed.
    #[error("internal error in the sandbox: {message}")]
    Internal {
        /// What happened.
        message: String,
    },
}

/// Why the sandbox did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// An option is out of its bounds; the message names it. Fix the configuration.
    #[error("invalid sandbox options: {detail}")]
    InvalidOptions {
        /// Which option and its bounds.
        detail: String,
    },
    /// A worker thread could not be started (the system is out of threads or memory).
    #[error("could not start a sandbox worker thread")]
    Thread(#[source] std::io::Error),
}
