//! Deterministic scripts: a JavaScript file compiled once, whose top-level functions are
//! called with JSON arguments and answer JSON, the same way on every run.
//!
//! Resource types use it for their handlers (`handlers/T.js`, on the single writer's path)
//! and their projections (`projections/P.js`): an outcome recorded in the log must come out
//! the same when the log is replayed, on another machine, after other calls. So a call's
//! result depends only on the script, the function's name and its arguments:
//!
//! - **No clock, no randomness.** `Date.now()`, `Date()` and `new Date()` without a time throw
//!   (`new Date(ctx.now)` works); `Math.random()` throws. There is no I/O and no module
//!   loader.
//! - **No state that survives a call.** The script's top level runs afresh for each call (its
//!   `let`, `var` and functions are new every time: a function that counts calls in a
//!   top-level variable always sees its first value), in strict mode, in a realm whose every
//!   reachable object, the global object and the built-in prototypes included, was deeply
//!   frozen before the first call: writing a global or a built-in throws a `TypeError`
//!   (`x = 1` for an undeclared `x` a `ReferenceError`). Promise jobs a call queued run
//!   before it returns.
//! - **Limits counted, not timed.** Steps: QuickJS calls its interrupt handler every
//!   [`STEP_OPS`] interpreter checks (function calls and backward jumps), and each call counts
//!   those calls against [`ScriptLimits::steps_max`]. Memory: QuickJS's own count of the
//!   bytes it holds may grow by at most [`ScriptLimits::memory_bytes_max`] over what a fresh
//!   VM holds before its first call, with the automatic garbage collector off, so that
//!   nothing is ever collected in the middle of a call (what earlier calls left behind is
//!   collected between calls, every [`GC_EVERY_CALLS`] calls). Stack and result size are
//!   bounded too. A wall-clock bound ([`ScriptLimits::time_limit`]) is only a safety net,
//!   set well beyond what the step limit allows.
//!
//! # Counted as on a fresh VM
//!
//! The canonical count of a call is a fresh VM's, whose state is the same on every machine
//! and every run: the setup, then a loop to QuickJS's next check, so that its countdown to
//! the check after is full. A VM that answered earlier calls counts at least as much:
//!
//! - Steps: QuickJS's countdown carries over from one call to the next, so a used VM counts
//!   a call's steps from part-way through an interval, as `floor(checks / STEP_OPS)` or one
//!   more, and a fresh VM as `floor(checks / STEP_OPS)`.
//! - Memory: a used VM holds what a fresh one holds and what earlier calls left (garbage not
//!   collected yet, tables grown). What the call can reuse of that (a shape, an atom, room
//!   in a table) it does not allocate, but it is counted already: a call within the limit on
//!   a used VM is within it on a fresh one.
//!
//! So a call within the limits on a used VM is within them on a fresh one, and a call that
//! breaks the step or memory limit on a used VM runs again from its start on a fresh VM
//! (its host told to [`restart`](ScriptHost::restart)), which decides, and which the thread
//! keeps. Reading the count of live bytes is never on a call's path (it walks the heap).

//! What a call costs beyond its function: running the top level (under 1 µs for a few
//! functions) and the arguments and the answer crossing as JSON text (a few µs each for
//! small documents): 10 to 15 µs for a small handler on a loaded 2-core machine (the best
//! of 5 rounds in `cost_of_a_handler_call`, `tests/script.rs`, in release). A fresh context
//! per call would cost about 100 µs more. Making a VM costs a few milliseconds (compiling
//! the script makes two: one to list its functions, one kept; about 6 ms for both on that
//! machine), once per thread that calls the script and again after a call that broke a
//! limit.
//!
//! A [`Script`] is `Send + Sync`: each thread that calls it (the writer, a replay, a
//! projection's rebuild) gets its own VM, made on its first call and reused after. A call
//! that broke a limit discards the thread's VM; the next call makes a new one.
//!
//! ```
//! use serde_json::json;
//! use writ_sandbox::{Script, ScriptError, ScriptOptions};
//!
//! let source = "function Approve(state, payload, ctx) {\n\
//!     if (state.status !== 'pending') reject('not_pending', 'only a pending user is approved');\n\
//!     return {event: 'UserApproved', patch: [{op: 'replace', path: '/status', value: 'approved'}]};\n\
//! }\n";
//! let script = Script::compile("handlers/users.js", source, ScriptOptions::handler()).unwrap();
//! assert_eq!(script.functions(), ["Approve"]);
//! let ctx = json!({"now": "2026-01-01T00:00:00Z", "commandId": "c1"});
//! let answer = script.call("Approve", &[json!({"status": "pending"}), json!({}), ctx.clone()], None);
//! assert_eq!(answer.unwrap()["event"], "UserApproved");
//! let answer = script.call("Approve", &[json!({"status": "approved"}), json!({}), ctx], None);
//! assert!(matches!(answer, Err(ScriptError::Rejected { code, .. }) if code == "not_pending"));
//! ```

use std::{
    cell::{Cell, RefCell},
    collections::HashSet,
    rc::Rc,
    sync::{
        Arc, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use rquickjs::{
    Context, Ctx, Exception, Function, Object, Persistent, Runtime, Value,
    context::{EvalOptions, intrinsic},
    function::{Args, Rest},
};

use crate::exception::{
    Caught, error_message, location, property, string_of, truncate, value_message,
};

/// Interpreter checks between two calls of QuickJS's interrupt handler: one step. Fixed by
/// QuickJS (`JS_INTERRUPT_COUNTER_INIT`); a check is a function call or a backward jump.
pub const STEP_OPS: u32 = 10_000;

/// Calls between two collections of what calls left behind (cycles; the rest is freed as
/// soon as it is unreachable). A collection costs about 20 µs and never runs during a call;
/// garbage only lowers what the next calls may hold on a used VM before they run again on a
/// fresh one (see the module's documentation), never what they are counted.
pub const GC_EVERY_CALLS: u64 = 1_024;

/// The automatic collector's threshold while a VM lives: never reached.
const GC_THRESHOLD_OFF: usize = usize::MAX >> 1;

/// The built-in objects a script gets: as the query sandbox's (see `vm.rs`), without the
/// clock and randomness, which the glue takes away.
type Intrinsics = (
    intrinsic::Date,
    intrinsic::Eval,
    intrinsic::RegExp,
    intrinsic::Json,
    intrinsic::MapSet,
    intrinsic::Promise,
);

/// The query sandbox's clockless `Date` (see `glue.js`).
const GLUE: &str = include_str!("glue.js");
/// Deep-freezes the realm (see `freeze.js`).
const FREEZE: &str = include_str!("freeze.js");

/// What a script's top level is wrapped in: a function run afresh for each call, whose
/// answer is the object of the script's exports. It starts on line 1 of the script, so
/// lines keep their numbers; columns on line 1 are shifted by its length.
const HEAD: &str = "(function () { 'use strict'; ";

/// The limits of one call. Every field has a default and bounds checked by
/// [`validate`](ScriptLimits::validate) when a script is compiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScriptLimits {
    /// Steps (of [`STEP_OPS`] interpreter checks) one call may take, its script's top level
    /// included. Default 1,000 (ten million checks, about 50 ms of a tight loop); between 1
    /// and 1,000,000.
    pub steps_max: u64,
    /// Bytes the values made by one call may hold at once. Default 16 MiB, between 64 KiB
    /// and 1 GiB.
    pub memory_bytes_max: usize,
    /// Native stack QuickJS may use; deeper recursion fails the call. Default 256 KiB,
    /// between 64 KiB and 8 MiB (the calling thread's own stack must have room for it).
    pub stack_bytes_max: usize,
    /// Largest answer as JSON text. Default 1 MiB, between 1 byte and 256 MiB.
    pub result_bytes_max: usize,
    /// Largest script source. Default 1 MiB, between 1 byte and 16 MiB.
    pub source_bytes_max: usize,
    /// Wall time one call may take: a safety net against a step costing far more than it
    /// should (a huge regular expression), far above what `steps_max` allows, so it never
    /// decides a run that would not be decided the same way on a slower machine. Default
    /// 5 s, between 1 ms and 60 s.
    pub time_limit: Duration,
}

impl Default for ScriptLimits {
    fn default() -> Self {
        Self {
            steps_max: 1_000,
            memory_bytes_max: 16 << 20,
            stack_bytes_max: 256 << 10,
            result_bytes_max: 1 << 20,
            source_bytes_max: 1 << 20,
            time_limit: Duration::from_secs(5),
        }
    }
}

impl ScriptLimits {
    /// Checks every field against its bounds; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        use crate::options::check;
        check("steps_max", self.steps_max, 1, 1_000_000)?;
        check("memory_bytes_max", self.memory_bytes_max, 64 << 10, 1 << 30)?;
        check("stack_bytes_max", self.stack_bytes_max, 64 << 10, 8 << 20)?;
        check("result_bytes_max", self.result_bytes_max, 1, 256 << 20)?;
        check("source_bytes_max", self.source_bytes_max, 1, 16 << 20)?;
        check(
            "time_limit",
            self.time_limit,
            Duration::from_millis(1),
            Duration::from_secs(60),
        )
    }
}

/// How a script is compiled and what its calls see besides their arguments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScriptOptions {
    /// The limits of each call.
    pub limits: ScriptLimits,
    /// Whether the script may call `reject(code, message)`, which ends the call with
    /// [`ScriptError::Rejected`] (handlers).
    pub reject: bool,
    /// Methods added to a call's last argument when it is an object, each calling the
    /// call's [`ScriptHost`] with its name: `["get", "put", "delete"]` makes a projection's
    /// `ctx.get(table, key)`.
    pub host_methods: Vec<String>,
    /// Top-level bindings besides functions that a script may declare as an object of
    /// functions (`const queries = {...}`), whose functions are called as `binding.name`
    /// (`queries.userProfile`).
    pub bindings: Vec<String>,
}

impl ScriptOptions {
    /// A handler's options: default limits and `reject`.
    pub fn handler() -> Self {
        Self {
            reject: true,
            ..Self::default()
        }
    }
}

/// What a host method called from a script does: a projection's tables, for instance.
pub trait ScriptHost {
    /// Runs method `method` (one of [`ScriptOptions::host_methods`]) with the call's
    /// arguments as JSON (`undefined` is `null`). An error is thrown into the script as an
    /// `Error` named `HostError` with the message.
    ///
    /// Strings, numbers, booleans and `null` cross as they are; objects and arrays cross as
    /// JSON text (`JSON.stringify`, then parsed), so a host sees exactly what
    /// `JSON.stringify` of the argument says.
    fn call(&self, method: &str, args: Vec<serde_json::Value>) -> Result<HostAnswer, String>;

    /// Undoes what the call did through the host: the call is about to run again from its
    /// start (a call that broke the step limit runs again on a fresh VM, see the module's
    /// documentation). The default does nothing, for hosts that only read.
    fn restart(&self) {}
}

/// What a host method answers a script.
#[derive(Clone, Debug, PartialEq)]
pub enum HostAnswer {
    /// A JSON value.
    Value(serde_json::Value),
    /// A JSON value already in its text form (a stored document, say), parsed in the script
    /// as `JSON.parse` would: saves the host making a [`serde_json::Value`] only to have it
    /// written out again. It must be valid JSON; text that is not throws an `Error` into
    /// the script.
    Json(String),
}

impl From<serde_json::Value> for HostAnswer {
    fn from(value: serde_json::Value) -> Self {
        HostAnswer::Value(value)
    }
}

/// An argument of [`Script::call_with`].
#[derive(Clone, Copy, Debug)]
pub enum ScriptArg<'a> {
    /// A JSON value.
    Value(&'a serde_json::Value),
    /// A JSON value in its text form (valid JSON, or the call fails), parsed in the script
    /// as `JSON.parse` would: for a caller that writes its argument's text itself.
    Json(&'a str),
}

/// Why a script did not compile: the file, the place in it and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", place(*line, *column))]
pub struct CompileError {
    /// The file name the script was compiled under, e.g. `handlers/users.js`.
    pub file: String,
    /// The line of the error, counted from 1, when known.
    pub line: Option<u32>,
    /// The column of the error, counted from 1, when known.
    pub column: Option<u32>,
    /// What is wrong, e.g. `SyntaxError: unexpected token in expression: '}'`.
    pub message: String,
}

impl CompileError {
    /// What `error`, met while compiling `file`, says: a thrown error with its place, any
    /// other error as its message.
    fn of(file: &str, error: ScriptError) -> Self {
        match error {
            ScriptError::Thrown {
                message,
                line,
                column,
            } => CompileError {
                file: file.to_owned(),
                line,
                column,
                message,
            },
            other => CompileError {
                file: file.to_owned(),
                line: None,
                column: None,
                message: other.to_string(),
            },
        }
    }
}

fn place(line: Option<u32>, column: Option<u32>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!(":{line}:{column}"),
        (Some(line), None) => format!(":{line}"),
        _ => String::new(),
    }
}

/// Why a call gave no answer. Every variant but [`Internal`](Self::Internal) comes out the
/// same on every run of the same call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScriptError {
    /// The script called `reject(code, message)`: the caller should reject its command with
    /// `code`.
    #[error("rejected with {code}: {message}")]
    Rejected {
        /// The first argument of `reject`, as a string.
        code: String,
        /// The second argument, as a string (empty if absent).
        message: String,
    },
    /// The call took more than `steps_max` steps: the script's bug (a loop without end).
    #[error("the script exceeded its step limit of {steps_max} steps of {STEP_OPS} operations")]
    StepLimit {
        /// The limit.
        steps_max: u64,
    },
    /// The call's values took more than the memory limit.
    #[error("the script exceeded its memory limit of {limit_bytes} bytes")]
    MemoryLimit {
        /// The limit.
        limit_bytes: usize,
    },
    /// The call recursed deeper than the stack limit.
    #[error("the script exceeded its stack limit of {limit_bytes} bytes")]
    StackLimit {
        /// The limit.
        limit_bytes: usize,
    },
    /// The call ran longer than the wall-clock safety net: unlike the other limits this one
    /// depends on the machine, and the caller should treat the call as not run (not record
    /// an outcome a replay would have to reproduce) where it can.
    #[error("the script exceeded its time limit of {} ms", limit.as_millis())]
    TimeLimit {
        /// The limit.
        limit: Duration,
    },
    /// The answer's JSON is larger than the limit.
    #[error("the script's answer is {size} bytes of JSON, more than the limit of {max}")]
    ResultTooLarge {
        /// Its size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The script threw an exception it did not catch, or answered something without a JSON
    /// form (a `BigInt`, a cycle, a promise that did not settle).
    #[error("{message}{}", place(*line, *column))]
    Thrown {
        /// The JavaScript error, e.g. `TypeError: cannot read property 'x' of undefined`, at
        /// most 1 KiB.
        message: String,
        /// Line of the script where it was thrown, counted from 1, when known.
        line: Option<u32>,
        /// Column, counted from 1, when known.
        column: Option<u32>,
    },
    /// The script has no function of that name.
    #[error("the script has no function {name}")]
    NoFunction {
        /// The name asked for.
        name: String,
    },
    /// The VM could not be made, or a call into it was made while it ran (a host method
    /// calling the same script). The caller should report it as its own failure.
    #[error("internal error in the script engine: {message}")]
    Internal {
        /// What happened.
        message: String,
    },
}

/// A compiled script; cheap to clone, `Send + Sync`.
#[derive(Clone, Debug)]
pub struct Script {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    id: u64,
    file: String,
    source: String,
    options: ScriptOptions,
    /// The script's top-level functions, in the order of their declarations.
    functions: Vec<String>,
    /// Per binding of [`ScriptOptions::bindings`] the script declares: its function names.
    members: Members,
}

/// Per binding a script declares, its functions.
type Members = Vec<(String, Vec<Member>)>;

/// A function of a binding (`queries.userProfile`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its name: `userProfile`.
    pub name: String,
    /// The names its first parameter destructures, in order (`userProfile({id, limit})`
    /// gives `id`, `limit`); empty when the first parameter is not an object pattern.
    pub params: Vec<String>,
}

/// The names the first parameter of a function's source text destructures.
fn destructured(text: &str) -> Vec<String> {
    let Some(open) = text.find('(') else {
        return Vec::new();
    };
    let rest = text[open + 1..].trim_start();
    let Some(pattern) = rest.strip_prefix('{') else {
        return Vec::new();
    };
    let Some(close) = pattern.find('}') else {
        return Vec::new();
    };
    pattern[..close]
        .split(',')
        .filter_map(|part| {
            let name: String = part
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '$')
                .collect();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's VMs, one per live script it called.
    static VMS: RefCell<Vec<(Weak<Shared>, Rc<ScriptVm>)>> = const { RefCell::new(Vec::new()) };
}

impl Script {
    /// Compiles `source` (reported as `file` in errors) and runs its top level once, under
    /// the call limits, to list its functions. Fails on a syntax error, an exception or a
    /// limit hit by the top level, or invalid limits.
    pub fn compile(
        file: &str,
        source: &str,
        options: ScriptOptions,
    ) -> Result<Script, CompileError> {
        let error = |message: String| CompileError {
            file: file.to_owned(),
            line: None,
            column: None,
            message,
        };
        options
            .limits
            .validate()
            .map_err(|detail| error(format!("invalid script limits: {detail}")))?;
        if source.len() > options.limits.source_bytes_max {
            return Err(error(format!(
                "the script is {} bytes, more than the limit of {}",
                source.len(),
                options.limits.source_bytes_max
            )));
        }
        if source.contains('\0') {
            return Err(error("the script contains a NUL character".into()));
        }
        let (functions, members) = discover(file, source, &options)?;
        let shared = Arc::new(Shared {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            file: file.to_owned(),
            source: source.to_owned(),
            options,
            functions,
            members,
        });
        // The compiling thread's VM, checked now: a script that does not make one fails here.
        let vm = ScriptVm::new(&shared).map_err(|failure| CompileError::of(file, failure))?;
        remember(&shared, Rc::new(vm));
        Ok(Script { shared })
    }

    /// The file name the script was compiled under.
    pub fn file(&self) -> &str {
        &self.shared.file
    }

    /// The script's top-level functions (declared with `function`), in declaration order.
    pub fn functions(&self) -> &[String] {
        &self.shared.functions
    }

    /// The functions of binding `binding` (one of [`ScriptOptions::bindings`]), or None if
    /// the script does not declare it.
    pub fn members(&self, binding: &str) -> Option<&[Member]> {
        self.shared
            .members
            .iter()
            .find(|(name, _)| name == binding)
            .map(|(_, members)| members.as_slice())
    }

    /// Calls function `name` (a top-level function, or `binding.member`) with `args`,
    /// `host` answering the host methods; its answer as JSON (`undefined` is `null`).
    pub fn call(
        &self,
        name: &str,
        args: &[serde_json::Value],
        host: Option<Arc<dyn ScriptHost>>,
    ) -> Result<serde_json::Value, ScriptError> {
        let args: Vec<ScriptArg<'_>> = args.iter().map(ScriptArg::Value).collect();
        self.call_with(name, &args, host)
    }

    /// [`Script::call`] with arguments that may be JSON text already: the same call, the
    /// same answer, without the caller building a [`serde_json::Value`] for an argument it
    /// can write out itself (a projection's event).
    pub fn call_with(
        &self,
        name: &str,
        args: &[ScriptArg<'_>],
        host: Option<Arc<dyn ScriptHost>>,
    ) -> Result<serde_json::Value, ScriptError> {
        let known = match name.split_once('.') {
            None => self
                .shared
                .functions
                .iter()
                .any(|function| function == name),
            Some((binding, member)) => self
                .members(binding)
                .is_some_and(|members| members.iter().any(|known| known.name == member)),
        };
        if !known {
            return Err(ScriptError::NoFunction {
                name: name.to_owned(),
            });
        }
        let vm = match lookup(&self.shared) {
            Some(vm) => vm,
            None => {
                let vm = Rc::new(ScriptVm::new(&self.shared)?);
                remember(&self.shared, Rc::clone(&vm));
                vm
            }
        };
        let result = vm.call(name, args, host.clone());
        if !vm.healthy.get() {
            forget(&self.shared);
        }
        if matches!(
            result,
            Err(ScriptError::StepLimit { .. } | ScriptError::MemoryLimit { .. })
        ) && vm.calls.get() > 1
        {
            // This VM counted from where earlier calls left it, at least as much as a fresh
            // VM would: the fresh VM decides (see the module's documentation).
            if let Some(host) = &host {
                host.restart();
            }
            let fresh = Rc::new(ScriptVm::new(&self.shared)?);
            let result = fresh.call(name, args, host);
            if fresh.healthy.get() {
                remember(&self.shared, fresh);
            }
            return result;
        }
        result
    }
}

fn lookup(shared: &Arc<Shared>) -> Option<Rc<ScriptVm>> {
    VMS.with(|vms| {
        let mut vms = vms.borrow_mut();
        // Drops the VMs of scripts no one holds any more.
        vms.retain(|(script, _)| script.strong_count() > 0);
        vms.iter()
            .find(|(script, _)| script.upgrade().is_some_and(|live| live.id == shared.id))
            .map(|(_, vm)| Rc::clone(vm))
    })
}

fn remember(shared: &Arc<Shared>, vm: Rc<ScriptVm>) {
    VMS.with(|vms| vms.borrow_mut().push((Arc::downgrade(shared), vm)));
}

fn forget(shared: &Arc<Shared>) {
    VMS.with(|vms| {
        vms.borrow_mut()
            .retain(|(script, _)| script.upgrade().is_some_and(|live| live.id != shared.id));
    });
}

/// What a limit hit during a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trip {
    Steps,
    Time,
    /// `reject` was called: QuickJS stops the call at its next check, whatever it catches.
    Rejected,
}

/// The state of the call that runs, shared with the interrupt handler and the host
/// functions.
#[derive(Default)]
struct CallState {
    /// Set to stop the script at QuickJS's next check, whatever it is: see
    /// [`ScriptVm::align`].
    aligning: Cell<bool>,
    armed: Cell<bool>,
    steps: Cell<u64>,
    steps_max: Cell<u64>,
    deadline: Cell<Option<Instant>>,
    trip: Cell<Option<Trip>>,
    rejection: RefCell<Option<(String, String)>>,
    host: RefCell<Option<Arc<dyn ScriptHost>>>,
}

impl CallState {
    fn begin(&self, steps_max: u64, deadline: Instant, host: Option<Arc<dyn ScriptHost>>) {
        self.steps.set(0);
        self.steps_max.set(steps_max);
        self.deadline.set(Some(deadline));
        self.trip.set(None);
        *self.rejection.borrow_mut() = None;
        *self.host.borrow_mut() = host;
        self.armed.set(true);
    }

    fn end(&self) {
        self.armed.set(false);
        self.deadline.set(None);
        *self.host.borrow_mut() = None;
    }

    /// QuickJS's interrupt handler: true stops the script (uncatchably).
    fn interrupt(&self) -> bool {
        if self.aligning.replace(false) {
            // QuickJS reset its countdown before calling: it is now full.
            return true;
        }
        if !self.armed.get() {
            return false;
        }
        if self.trip.get().is_some() {
            return true;
        }
        let steps = self.steps.get() + 1;
        self.steps.set(steps);
        if steps > self.steps_max.get() {
            self.trip.set(Some(Trip::Steps));
        } else if self
            .deadline
            .get()
            .is_some_and(|deadline| Instant::now() >= deadline)
        {
            self.trip.set(Some(Trip::Time));
        }
        self.trip.get().is_some()
    }
}

/// One thread's VM of one script: a runtime, one deep-frozen context, and the compiled
/// wrapper of the script's top level.
struct ScriptVm {
    shared: Arc<Shared>,
    state: Rc<CallState>,
    /// Makes the exports object afresh: the script's top level, run once per call.
    factory: Persistent<Function<'static>>,
    /// The host methods, added to a call's last argument.
    methods: Vec<(String, Persistent<Function<'static>>)>,
    busy: Cell<bool>,
    /// Calls answered since the VM was made (and its countdown aligned).
    calls: Cell<u64>,
    /// False once a call broke a limit or failed inside the engine: the VM is then replaced.
    healthy: Cell<bool>,
    context: Context,
    /// Last, so that it is dropped after the context and persistent values.
    runtime: Runtime,
}

impl ScriptVm {
    fn new(shared: &Arc<Shared>) -> Result<Self, ScriptError> {
        let limits = shared.options.limits;
        let internal = |what: &str, error: rquickjs::Error| ScriptError::Internal {
            message: format!("{what}: {error}"),
        };
        let runtime = Runtime::new().map_err(|error| internal("no QuickJS runtime", error))?;
        runtime.set_max_stack_size(limits.stack_bytes_max);
        runtime.set_gc_threshold(GC_THRESHOLD_OFF);
        let state = Rc::new(CallState::default());
        let handler_state = Rc::clone(&state);
        runtime.set_interrupt_handler(Some(Box::new(move || handler_state.interrupt())));
        let context = Context::custom::<Intrinsics>(&runtime)
            .map_err(|error| internal("no QuickJS context", error))?;
        let (factory, methods) = context.with(|ctx| -> Result<_, ScriptError> {
            let setup = |error: rquickjs::Error| setup_error(&ctx, error);
            install_glue(&ctx, &state, shared.options.reject).map_err(setup)?;
            let mut methods = Vec::new();
            for method in &shared.options.host_methods {
                let function = host_method(&ctx, &state, method).map_err(setup)?;
                methods.push((method.clone(), Persistent::save(&ctx, function)));
            }
            ctx.eval::<Function<'_>, _>(FREEZE)
                .and_then(|freeze| freeze.call::<_, ()>(()))
                .map_err(setup)?;
            let mut options = EvalOptions::default();
            options.filename = Some(shared.file.clone());
            let factory: Function<'_> = ctx
                .eval_with_options(wrap(shared), options)
                .map_err(|error| thrown(&ctx, error, &shared.file, limits))?;
            Ok((Persistent::save(&ctx, factory), methods))
        })?;
        Ok(Self {
            shared: Arc::clone(shared),
            state,
            factory,
            methods,
            busy: Cell::new(false),
            calls: Cell::new(0),
            healthy: Cell::new(true),
            context,
            runtime,
        })
        .and_then(|vm| {
            vm.align()?;
            // What a fresh VM holds: every call may hold the limit beyond it.
            vm.runtime.run_gc();
            let fresh = usize::try_from(vm.runtime.memory_usage().malloc_size).unwrap_or(0);
            vm.runtime
                .set_memory_limit(fresh.saturating_add(limits.memory_bytes_max));
            Ok(vm)
        })
    }

    /// Runs a loop until QuickJS's next check, so that the countdown to the check after is
    /// full when the first call starts: a fresh VM counts a call's steps as
    /// `floor(checks / STEP_OPS)`, the fewest any VM counts for it.
    fn align(&self) -> Result<(), ScriptError> {
        self.state.aligning.set(true);
        self.context.with(|ctx| {
            let outcome = ctx.eval::<(), _>("for (;;) {}");
            self.state.aligning.set(false);
            match outcome {
                Err(rquickjs::Error::Exception) => {
                    ctx.catch();
                    Ok(())
                }
                other => Err(ScriptError::Internal {
                    message: format!("aligning the step countdown ended with {other:?}"),
                }),
            }
        })
    }

    fn call(
        &self,
        name: &str,
        args: &[ScriptArg<'_>],
        host: Option<Arc<dyn ScriptHost>>,
    ) -> Result<serde_json::Value, ScriptError> {
        if self.busy.replace(true) {
            return Err(ScriptError::Internal {
                message: format!("{name} was called while a call of the same script ran"),
            });
        }
        self.calls.set(self.calls.get() + 1);
        let limits = self.shared.options.limits;
        if self.calls.get().is_multiple_of(GC_EVERY_CALLS) {
            self.runtime.run_gc();
        }
        self.state
            .begin(limits.steps_max, Instant::now() + limits.time_limit, host);
        let result = self.context.with(|ctx| {
            let result = self.invoke(&ctx, name, args);
            // Jobs the call queued and left (it threw first) must not run in the next call.
            while self.state.trip.get().is_none() && ctx.execute_pending_job() {}
            result
        });
        let trip = self.state.trip.get();
        let rejection = self.state.rejection.borrow_mut().take();
        self.state.end();
        self.busy.set(false);
        let result = match (rejection, trip) {
            (Some((code, message)), _) => Err(ScriptError::Rejected { code, message }),
            (None, Some(Trip::Steps)) => Err(ScriptError::StepLimit {
                steps_max: limits.steps_max,
            }),
            (None, Some(Trip::Time)) => Err(ScriptError::TimeLimit {
                limit: limits.time_limit,
            }),
            (None, _) => result,
        };
        if matches!(
            result,
            Err(ScriptError::StepLimit { .. }
                | ScriptError::TimeLimit { .. }
                | ScriptError::MemoryLimit { .. }
                | ScriptError::StackLimit { .. }
                | ScriptError::Internal { .. })
        ) {
            self.healthy.set(false);
        }
        result
    }

    fn invoke<'js>(
        &self,
        ctx: &Ctx<'js>,
        name: &str,
        args: &[ScriptArg<'_>],
    ) -> Result<serde_json::Value, ScriptError> {
        let limits = self.shared.options.limits;
        let file = self.shared.file.as_str();
        let fail = |error: rquickjs::Error| thrown(ctx, error, file, limits);
        let exports: Object<'js> = self
            .factory
            .clone()
            .restore(ctx)
            .map_err(fail)?
            .call(())
            .map_err(fail)?;
        let (this, function): (Value<'js>, Value<'js>) = match name.split_once('.') {
            None => (
                Value::new_undefined(ctx.clone()),
                exports.get(name).map_err(fail)?,
            ),
            Some((binding, member)) => {
                let binding: Value<'js> = exports.get(binding).map_err(fail)?;
                let function = match binding.as_object() {
                    Some(object) => object.get(member).map_err(fail)?,
                    None => Value::new_undefined(ctx.clone()),
                };
                (binding, function)
            }
        };
        let Some(function) = function.into_function() else {
            // The top level, run again, did not define it this time.
            return Err(ScriptError::NoFunction {
                name: name.to_owned(),
            });
        };
        let mut call = Args::new(ctx.clone(), args.len());
        call.this(this).map_err(fail)?;
        for (index, arg) in args.iter().enumerate() {
            let value = match arg {
                ScriptArg::Value(value) => {
                    let text =
                        serde_json::to_string(value).map_err(|error| ScriptError::Internal {
                            message: error.to_string(),
                        })?;
                    ctx.json_parse(text).map_err(fail)?
                }
                ScriptArg::Json(text) => ctx.json_parse(*text).map_err(fail)?,
            };
            if index + 1 == args.len()
                && let Some(object) = value.as_object()
            {
                for (method, function) in &self.methods {
                    let function = function.clone().restore(ctx).map_err(fail)?;
                    object.set(method.as_str(), function).map_err(fail)?;
                }
            }
            call.push_arg(value).map_err(fail)?;
        }
        let value: Value<'js> = function.call_arg(call).map_err(fail)?;
        while self.state.trip.get().is_none() && ctx.execute_pending_job() {}
        let value = match value.as_promise() {
            None => value,
            Some(promise) => match promise.result::<Value<'js>>() {
                Some(Ok(value)) => value,
                Some(Err(error)) => return Err(fail(error)),
                None => {
                    return Err(ScriptError::Thrown {
                        message: "the function returned a promise that did not settle: a \
                                  script cannot wait for anything outside it"
                            .into(),
                        line: None,
                        column: None,
                    });
                }
            },
        };
        let Some(json) = ctx.json_stringify(value).map_err(fail)? else {
            return Ok(serde_json::Value::Null);
        };
        let json = json.to_string().map_err(fail)?;
        if json.len() > limits.result_bytes_max {
            return Err(ScriptError::ResultTooLarge {
                size: json.len(),
                max: limits.result_bytes_max,
            });
        }
        serde_json::from_str(&json).map_err(|error| ScriptError::Thrown {
            message: truncate(format!("the answer has no JSON form: {error}")),
            line: None,
            column: None,
        })
    }
}

/// The script wrapped in the function that makes its exports: its top-level functions and
/// the bindings asked for (`undefined` when not declared).
fn wrap(shared: &Shared) -> String {
    let mut source = String::with_capacity(HEAD.len() + shared.source.len() + 256);
    source.push_str(HEAD);
    source.push_str(&shared.source);
    source.push_str("\n;return {");
    for name in &shared.functions {
        source.push_str(&format!("{name}: {name}, "));
    }
    for binding in &shared.options.bindings {
        source.push_str(&format!(
            "{binding}: typeof {binding} === 'undefined' ? undefined : {binding}, "
        ));
    }
    source.push_str("}; })");
    source
}

/// Lists a script's top-level functions and the functions of its bindings by running its
/// top level once, as a strict script, in a context of its own under the call limits:
/// its `function` declarations become properties of the global object.
fn discover(
    file: &str,
    source: &str,
    options: &ScriptOptions,
) -> Result<(Vec<String>, Members), CompileError> {
    let limits = options.limits;
    let at = |error: ScriptError| CompileError::of(file, error);
    let runtime = Runtime::new().map_err(|error| {
        at(ScriptError::Internal {
            message: error.to_string(),
        })
    })?;
    runtime.set_max_stack_size(limits.stack_bytes_max);
    runtime.set_memory_limit(limits.memory_bytes_max.saturating_mul(2));
    let state = Rc::new(CallState::default());
    let handler_state = Rc::clone(&state);
    runtime.set_interrupt_handler(Some(Box::new(move || handler_state.interrupt())));
    let context = Context::custom::<Intrinsics>(&runtime).map_err(|error| {
        at(ScriptError::Internal {
            message: error.to_string(),
        })
    })?;
    let found = context.with(|ctx| -> Result<_, ScriptError> {
        install_glue(&ctx, &state, options.reject).map_err(|error| setup_error(&ctx, error))?;
        let before: HashSet<String> = ctx
            .globals()
            .keys::<String>()
            .collect::<rquickjs::Result<_>>()
            .map_err(|error| setup_error(&ctx, error))?;
        state.begin(limits.steps_max, Instant::now() + limits.time_limit, None);
        let eval = || {
            let mut eval = EvalOptions::default();
            eval.filename = Some(file.to_owned());
            eval
        };
        let mut text = String::with_capacity(HEAD.len() + source.len());
        text.push_str(HEAD);
        text.push_str(source);
        text.push_str("\n})");
        // First as the wrapper a call runs, for its syntax errors and their places...
        let checked = ctx
            .eval_with_options::<Function<'_>, _>(text, eval())
            .map(drop)
            .map_err(|error| thrown(&ctx, error, file, limits));
        let outcome = checked.and_then(|()| {
            // ... then as a script, whose function declarations become globals.
            // Padded to the wrapper's head, so that places on line 1 read the same.
            let mut script = format!("{:<width$}", "'use strict';", width = HEAD.len());
            script.push_str(source);
            ctx.eval_with_options::<(), _>(script, eval())
                .map_err(|error| thrown(&ctx, error, file, limits))
        });
        let trip = state.trip.get();
        state.end();
        match trip {
            Some(Trip::Steps) => {
                return Err(ScriptError::StepLimit {
                    steps_max: limits.steps_max,
                });
            }
            Some(Trip::Time) => {
                return Err(ScriptError::TimeLimit {
                    limit: limits.time_limit,
                });
            }
            _ => outcome?,
        }
        let globals = ctx.globals();
        let mut functions = Vec::new();
        for key in globals.keys::<String>() {
            let key = key.map_err(|error| setup_error(&ctx, error))?;
            if before.contains(&key) || !is_identifier(&key) {
                continue;
            }
            let value: Value<'_> = globals
                .get(&key)
                .map_err(|error| setup_error(&ctx, error))?;
            if value.is_function() {
                functions.push(key);
            }
        }
        let mut members = Vec::new();
        for binding in &options.bindings {
            let probe = format!(
                "(typeof {binding} === 'object' && {binding} !== null) ? \
                 Object.keys({binding}).filter((key) => typeof {binding}[key] === 'function') \
                 .map((key) => [key, String({binding}[key])]) : null"
            );
            let found: Option<Vec<Vec<String>>> = ctx
                .eval(probe)
                .map_err(|error| thrown(&ctx, error, file, limits))?;
            if let Some(found) = found {
                let functions = found
                    .into_iter()
                    .filter_map(|pair| match <[String; 2]>::try_from(pair) {
                        Ok([name, text]) => Some(Member {
                            params: destructured(&text),
                            name,
                        }),
                        Err(_) => None,
                    })
                    .collect();
                members.push((binding.clone(), functions));
            }
        }
        Ok((functions, members))
    });
    found.map_err(at)
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_' || first == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// Makes a context deterministic: a clockless `Date`, a throwing `Math.random`, and
/// `reject` if asked for.
fn install_glue<'js>(ctx: &Ctx<'js>, state: &Rc<CallState>, reject: bool) -> rquickjs::Result<()> {
    let globals = ctx.globals();
    let host_date: Function<'js> = globals.get("Date")?;
    let prototype: Object<'js> = host_date.get("prototype")?;
    let no_clock = Function::new(ctx.clone(), |ctx: Ctx<'js>| -> rquickjs::Result<()> {
        Err(Exception::throw_type(
            &ctx,
            "scripts have no clock: Date.now() and Date or new Date() without arguments are \
             not available; use ctx.now, e.g. new Date(ctx.now)",
        ))
    })?
    .with_name("now")?;
    let mut options = EvalOptions::default();
    options.filename = Some("writ-glue".into());
    let make_date: Function<'js> = ctx.eval_with_options(GLUE, options)?;
    let date: Function<'js> = make_date.call((host_date.clone(), no_clock.clone()))?;
    date.set("prototype", prototype.clone())?;
    date.set_length(7)?;
    date.set("now", no_clock)?;
    date.set("parse", host_date.get::<_, Value<'js>>("parse")?)?;
    date.set("UTC", host_date.get::<_, Value<'js>>("UTC")?)?;
    prototype.set("constructor", date.clone())?;
    globals.set("Date", date)?;
    let no_random = Function::new(ctx.clone(), |ctx: Ctx<'js>| -> rquickjs::Result<()> {
        Err(Exception::throw_type(
            &ctx,
            "scripts have no randomness: Math.random() is not available; derive what you \
             need from the arguments, e.g. ctx.commandId",
        ))
    })?
    .with_name("random")?;
    globals
        .get::<_, Object<'js>>("Math")?
        .set("random", no_random)?;
    if reject {
        let state = Rc::clone(state);
        let function = Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, args: Rest<Value<'js>>| -> rquickjs::Result<()> {
                let mut args = args.0.into_iter();
                let code = args
                    .next()
                    .and_then(|value| string_of(&ctx, value))
                    .unwrap_or_default();
                let message = args
                    .next()
                    .and_then(|value| string_of(&ctx, value))
                    .unwrap_or_default();
                if state.armed.get() && state.rejection.borrow().is_none() {
                    *state.rejection.borrow_mut() = Some((truncate(code), truncate(message)));
                    state.trip.set(Some(Trip::Rejected));
                }
                // Ends the call: QuickJS stops it at its next check, even if this is caught.
                Err(Exception::throw_internal(&ctx, "rejected"))
            },
        )?
        .with_name("reject")?;
        function.set_constructor(false);
        globals.set("reject", function)?;
    }
    Ok(())
}

/// A host method: its arguments to the call's [`ScriptHost`] as JSON, its answer back.
fn host_method<'js>(
    ctx: &Ctx<'js>,
    state: &Rc<CallState>,
    method: &str,
) -> rquickjs::Result<Function<'js>> {
    let state = Rc::clone(state);
    let name = method.to_owned();
    let make_error: Function<'js> = ctx.eval(
        "(function () { class HostError extends Error {} \
         HostError.prototype.name = 'HostError'; \
         return (message) => new HostError(message); })()",
    )?;
    let make_error = Persistent::save(ctx, make_error);
    let function = Function::new(
        ctx.clone(),
        move |ctx: Ctx<'js>, args: Rest<Value<'js>>| -> rquickjs::Result<Value<'js>> {
            let host = state.host.borrow().clone();
            let Some(host) = host else {
                return Err(Exception::throw_internal(
                    &ctx,
                    &format!("{name}() is available only while a call runs"),
                ));
            };
            let mut json = Vec::with_capacity(args.0.len());
            for arg in args.0 {
                let value = match primitive_to_json(&arg) {
                    Some(value) => value,
                    None => match ctx.json_stringify(arg)? {
                        None => serde_json::Value::Null,
                        Some(text) => {
                            serde_json::from_str(&text.to_string()?).map_err(|error| {
                                Exception::throw_range(
                                    &ctx,
                                    &format!("{name}(): an argument has no JSON form: {error}"),
                                )
                            })?
                        }
                    },
                };
                json.push(value);
            }
            match host.call(&name, json) {
                Ok(HostAnswer::Value(answer)) => match primitive_to_js(&ctx, &answer)? {
                    Some(value) => Ok(value),
                    None => {
                        let text = serde_json::to_string(&answer)
                            .map_err(|error| Exception::throw_internal(&ctx, &error.to_string()))?;
                        ctx.json_parse(text)
                    }
                },
                Ok(HostAnswer::Json(text)) => ctx.json_parse(text),
                Err(message) => {
                    // Made by a function of the setup: in the frozen realm, `name` can no
                    // longer be set on a fresh Error.
                    let error: Value<'js> = make_error
                        .clone()
                        .restore(&ctx)?
                        .call((truncate(message),))?;
                    Err(ctx.throw(error))
                }
            }
        },
    )?
    .with_name(method)?;
    function.set_constructor(false);
    Ok(function)
}

/// A host method's argument that is a string, a whole number of magnitude below 2^53, a
/// boolean, `null` or `undefined`, as the JSON `JSON.stringify` gives it, without the text
/// in between; `None` for anything else (an object, an array, a fraction, a larger number,
/// a string that is not valid Unicode), which crosses as JSON text, so that the host sees
/// what parsing that text gives (a fraction's digits, say) to the last bit.
fn primitive_to_json(value: &Value<'_>) -> Option<serde_json::Value> {
    /// 2^53: below it every whole `f64` is exact, and `JSON.stringify` writes it as an
    /// integer of those digits.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if value.is_null() || value.is_undefined() {
        return Some(serde_json::Value::Null);
    }
    if let Some(flag) = value.as_bool() {
        return Some(serde_json::Value::Bool(flag));
    }
    if let Some(int) = value.as_int() {
        return Some(serde_json::Value::from(int));
    }
    if let Some(float) = value.as_float() {
        if float.is_nan() || float.is_infinite() {
            return Some(serde_json::Value::Null);
        }
        if float.fract() == 0.0 && float.abs() < EXACT {
            // Exact: the float is a whole number below 2^53 (-0 is 0, as JSON writes it).
            #[allow(clippy::cast_possible_truncation)]
            return Some(serde_json::Value::from(float as i64));
        }
        return None;
    }
    if let Some(string) = value.as_string() {
        return string.to_string().ok().map(serde_json::Value::String);
    }
    None
}

/// A host's answer that is `null`, a boolean, a number that fits an `i32` or a string, as
/// the script's value, made directly; `None` for the rest, which crosses as JSON text.
fn primitive_to_js<'js>(
    ctx: &Ctx<'js>,
    answer: &serde_json::Value,
) -> rquickjs::Result<Option<Value<'js>>> {
    Ok(match answer {
        serde_json::Value::Null => Some(Value::new_null(ctx.clone())),
        serde_json::Value::Bool(flag) => Some(Value::new_bool(ctx.clone(), *flag)),
        serde_json::Value::Number(number) => number
            .as_i64()
            .and_then(|int| i32::try_from(int).ok())
            .map(|int| Value::new_int(ctx.clone(), int)),
        serde_json::Value::String(text) => {
            Some(rquickjs::String::from_str(ctx.clone(), text)?.into_value())
        }
        serde_json::Value::Array(_) | serde_json::Value::Object(_) => None,
    })
}

fn setup_error(ctx: &Ctx<'_>, error: rquickjs::Error) -> ScriptError {
    let detail = if matches!(error, rquickjs::Error::Exception) {
        format!("{:?}", ctx.catch())
    } else {
        error.to_string()
    };
    ScriptError::Internal {
        message: truncate(format!("the script engine's setup failed: {detail}")),
    }
}

/// Turns an error of a call into JavaScript into the call's error.
fn thrown(ctx: &Ctx<'_>, error: rquickjs::Error, file: &str, limits: ScriptLimits) -> ScriptError {
    match error {
        rquickjs::Error::Exception => describe(ctx, ctx.catch(), file, limits),
        rquickjs::Error::Allocation => ScriptError::MemoryLimit {
            limit_bytes: limits.memory_bytes_max,
        },
        error => ScriptError::Internal {
            message: truncate(error.to_string()),
        },
    }
}

fn describe<'js>(
    ctx: &Ctx<'js>,
    thrown: Value<'js>,
    file: &str,
    limits: ScriptLimits,
) -> ScriptError {
    let (name, message, exception) = match Caught::of(ctx, thrown) {
        Caught::OutOfMemory => {
            return ScriptError::MemoryLimit {
                limit_bytes: limits.memory_bytes_max,
            };
        }
        Caught::StackOverflow => {
            return ScriptError::StackLimit {
                limit_bytes: limits.stack_bytes_max,
            };
        }
        Caught::Value(text) => {
            return ScriptError::Thrown {
                message: value_message(&text),
                line: None,
                column: None,
            };
        }
        Caught::Error {
            name,
            message,
            exception,
        } => (name, message, exception),
    };
    let (line, column) = property(ctx, &exception, "stack")
        .and_then(|stack| location(&stack, file, HEAD.len()))
        .unzip();
    ScriptError::Thrown {
        message: error_message(name, &message),
        line,
        column,
    }
}
