//! Writ's query sandbox: client JavaScript run against one immutable snapshot, within limits.
//!
//! `POST /query/v{N}` carries `{"code", "args"}`; the server hands the code to
//! [`Sandbox::run`] with the query version's [`Library`] bound to one snapshot and answers
//! the [`Outcome`]'s `result` and `position`.
//!
//! - [`Library`] is what the query side offers: functions such as `getCounter(id)`, the
//!   snapshot's position, the [`RootId`] of the function set, and that of the read model
//!   structure (the model) they read.
//! - [`Sandbox`] is a pool of worker threads, each with warm QuickJS VMs, one per function
//!   set of the current model (at most [`VMS_PER_WORKER_MAX`]), and a bounded queue in
//!   front of them ([`SandboxError::Overloaded`] when full).
//! - [`SandboxOptions`] bounds time, memory, stack, code, result, pool and queue.
//! - [`Script`] is the other use of QuickJS: a file compiled once (resource handlers and
//!   projections) whose functions are called with JSON on the caller's thread,
//!   deterministically (no clock, no randomness, no state that survives a call, limits
//!   counted in steps and bytes); see the `script` module's documentation.
//!
//! # What code means
//!
//! The code is an expression, whose value is the result (`getCounter(args.id).title`), or
//! else the body of a function, whose `return` is the result
//! (`return listCounters({status: "open"}).length`; without a `return` the result is
//! `null`). It runs in strict mode with `args` (the request's args, deeply frozen) and the
//! library's functions in scope. An `async` body or a returned promise is settled first.
//! The result is the value's JSON as `JSON.stringify` makes it: `undefined`, functions and
//! symbols give `null`; a `BigInt` or a cycle is a [`SandboxError::Script`].
//!
//! A library function called with one plain object takes it as its named arguments
//! (`listCounters({status: "open"})`); otherwise positional arguments map to its parameters
//! in order (`getCounter(42)` is `{"id": 42}`); `undefined` arguments are absent; more
//! arguments than parameters throw a `TypeError`. Values cross as JSON. A library error is
//! thrown as an `Error` named `LibraryError` with a `status` (code may catch it); uncaught,
//! it ends the query with [`SandboxError::Library`] and that status.
//!
//! # Isolation
//!
//! Every query runs in a fresh QuickJS context (realm): nothing code does to globals or
//! built-in prototypes is seen by another query. There is no I/O, no module loader (`import`
//! fails), no `require` or `process`, no clock (`Date.now()` and `new Date()` without a time
//! throw; `new Date(someTime)` works) and `Math.random` is a generator seeded from the
//! snapshot's position: a query's result depends only on its code, its args and the
//! snapshot. A VM that hit the time or memory limit is discarded.
//!
//! # Library answers count against the limits
//!
//! A library function builds its answer on the host, where QuickJS's memory limit does not
//! reach, so each call gets a [`Budget`]: at most half of what a fresh context leaves of
//! the memory limit, in bytes of JSON (about 31 MiB of the default 64 MiB), and the
//! query's deadline. The library charges what it builds as it goes and stops at the
//! budget; the sandbox then writes the answer's JSON into the VM under the same budget and
//! deadline, reading the clock every 16 KiB. An answer over the budget fails the query with
//! [`SandboxError::LibraryAnswerTooLarge`] (the server's `memory_limit`), one still being
//! built at the deadline with [`SandboxError::TimeLimit`], whatever the code catches. So
//! the host holds at most one answer of about the budget per query at a time: its value
//! (a few times its JSON in memory) while the library builds it, then its JSON text while
//! the VM parses it, where QuickJS counts the parsed value against the limit as any other
//! allocation. The budget is per call: what the code already holds is the VM's to count.
//!
//! ```
//! use std::sync::Arc;
//! use serde_json::{Map, Value, json};
//! use writ_sandbox::{Budget, FunctionSpec, Library, LibraryError, RootId, Sandbox, SandboxOptions};
//!
//! struct Counters;
//!
//! impl Library for Counters {
//!     fn functions(&self) -> Vec<FunctionSpec> {
//!         vec![FunctionSpec { name: "getCounter".into(), params: vec!["id".into()] }]
//!     }
//!     fn call(&self, name: &str, args: Map<String, Value>, _: &Budget) -> Result<Value, LibraryError> {
//!         match (name, args.get("id")) {
//!             ("getCounter", Some(id)) if id == 7 => Ok(json!({"id": 7, "title": "Visitors"})),
//!             _ => Err(LibraryError { status: 404, message: "no such counter".into() }),
//!         }
//!     }
//!     fn position(&self) -> u64 { 1234 }
//!     fn root(&self) -> RootId { RootId(1) }
//! }
//!
//! let sandbox = Sandbox::new(SandboxOptions::default()).unwrap();
//! let outcome = sandbox
//!     .run(Arc::new(Counters), "getCounter(args.id).title.toUpperCase()", json!({"id": 7}))
//!     .unwrap();
//! assert_eq!(outcome.result, json!("VISITORS"));
//! assert_eq!(outcome.position, 1234);
//! ```

mod budget;
mod error;
mod exception;
mod library;
mod options;
mod pool;
mod script;
mod vm;

pub use budget::{Budget, BudgetExceeded};
pub use error::{SandboxError, StartError};
pub use library::{FunctionSpec, Library, LibraryError, RootId};
pub use options::SandboxOptions;
pub use pool::{Outcome, Sandbox, SandboxStats, VMS_PER_WORKER_MAX};
pub use script::{
    CompileError, GC_EVERY_CALLS, HostAnswer, Member, STEP_OPS, Script, ScriptArg, ScriptError,
    ScriptHost, ScriptLimits, ScriptOptions,
};
