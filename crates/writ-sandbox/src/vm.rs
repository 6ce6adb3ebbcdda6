//! One VM: a QuickJS runtime with the limits set, bound to one root, and the fresh contexts
//! queries run in.
//!
//! Isolation rests on one rule: **every query runs in a context no other query has touched.**
//! A context is a realm (its own global object, `Object.prototype`, `Array.prototype`, ...),
//! so whatever code changes in its context dies with it. The runtime (heap, atoms, limits) is
//! shared by the queries of one VM, one after the other, never at once.
//!
//! Making a context costs about 100 µs (85 µs for QuickJS's built-ins, the rest for the glue
//! and the library functions), so the VM makes the next query's context after it answers a
//! query (the *spare*), off the query's path, and frees the used one then too. The library
//! functions reach the query's library through [`Host`], which holds it only while that query
//! runs.

use std::{
    cell::{Cell, RefCell},
    rc::Rc,
    sync::Arc,
    time::{Duration, Instant},
};

use rquickjs::{
    Context, Ctx, Exception, Function, Object, Runtime, Value,
    context::{EvalOptions, intrinsic},
    function::Rest,
};

use crate::exception::{Caught, error_message, location, property, truncate, value_message};
use crate::{
    Budget, BudgetExceeded, FunctionSpec, Library, LibraryError, Outcome, RootId, SandboxError,
};

/// The built-in objects a query context gets. Left out: `performance` (a clock), `WeakRef`
/// and `FinalizationRegistry` (they observe the garbage collector), typed arrays and `Proxy`
/// (not needed to read JSON-shaped data). `Date` is made clockless by the glue. `Eval` is
/// needed to compile code at all; `eval` and `Function` inside a query compile code in the
/// same context, with nothing more in reach than the query already has.
type Intrinsics = (
    intrinsic::Date,
    intrinsic::Eval,
    intrinsic::RegExp,
    intrinsic::Json,
    intrinsic::MapSet,
    intrinsic::Promise,
);

/// The script that makes every fresh context's `Date`; see `glue.js`.
const GLUE: &str = include_str!("glue.js");

/// The file name of query code in stack traces; errors report lines and columns in it.
const CODE_FILE: &str = "query";

/// The two ways code is compiled: as an expression, whose value is the result, or as a
/// function body, whose `return` is the result. Both start on line 1 of the code.
const EXPRESSION_HEAD: &str = "(function (args) { return (";
const EXPRESSION_TAIL: &str = "\n); })";
const BODY_HEAD: &str = "(function (args) { ";
const BODY_TAIL: &str = "\n})";

/// A VM answers at most this many queries and is then replaced, so that nothing a runtime
/// might accumulate across contexts (it should not) grows without bound.
const QUERIES_PER_VM_MAX: u64 = 100_000;

/// The limits a VM enforces.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub time_limit: Duration,
    pub memory_bytes_max: usize,
    pub stack_bytes_max: usize,
    pub result_bytes_max: usize,
}

/// The deadline QuickJS's interrupt handler checks.
#[derive(Default)]
struct Clock {
    deadline: Cell<Option<Instant>>,
    fired: Cell<bool>,
}

impl Clock {
    fn arm(&self, deadline: Instant) {
        self.deadline.set(Some(deadline));
        self.fired.set(false);
    }

    /// Between queries: nothing is interrupted (making the next context runs the glue).
    fn disarm(&self) {
        self.deadline.set(None);
        self.fired.set(false);
    }

    /// Has QuickJS interrupt the query at its next check, as if the deadline had passed.
    fn abort(&self) {
        self.fired.set(true);
    }

    fn deadline(&self) -> Option<Instant> {
        self.deadline.get()
    }

    /// Whether the deadline has passed; remembers it once it has.
    fn expired(&self) -> bool {
        if !self.fired.get()
            && self
                .deadline
                .get()
                .is_some_and(|deadline| Instant::now() >= deadline)
        {
            self.fired.set(true);
        }
        self.fired.get()
    }
}

/// What the host functions of a context reach: the library of the query that runs, and
/// the limits its answers count against.
struct Host {
    library: RefCell<Option<Arc<dyn Library>>>,
    /// Math.random's state (xorshift64*), seeded from the snapshot's position.
    random: Cell<u64>,
    /// The last library error thrown into the query, to recognise it if uncaught.
    last_error: RefCell<Option<LibraryError>>,
    /// The query's deadline, which library answers are built and written under.
    clock: Rc<Clock>,
    /// The most bytes of JSON one library answer may take (see [`Budget`]).
    answer_bytes_max: Cell<usize>,
    limits: Limits,
    /// A limit a library answer hit: the query's error, whatever the code does after.
    stop: RefCell<Option<SandboxError>>,
}

impl Host {
    fn new(clock: Rc<Clock>, limits: Limits) -> Self {
        Self {
            library: RefCell::default(),
            random: Cell::default(),
            last_error: RefCell::default(),
            clock,
            answer_bytes_max: Cell::new(limits.memory_bytes_max / 2),
            limits,
            stop: RefCell::default(),
        }
    }

    fn begin(&self, library: Arc<dyn Library>, position: u64) {
        *self.library.borrow_mut() = Some(library);
        self.random.set(splitmix64(position) | 1);
        *self.last_error.borrow_mut() = None;
        *self.stop.borrow_mut() = None;
    }

    /// Ends the query; returns the limit a library answer hit, if one did.
    fn end(&self) -> Option<SandboxError> {
        *self.library.borrow_mut() = None;
        *self.last_error.borrow_mut() = None;
        self.stop.borrow_mut().take()
    }

    /// Ends the query on a library answer that went over `exceeded`: the query fails with
    /// the limit, and QuickJS interrupts the code at its next check (the error thrown into
    /// the code now cannot help it: catching it only runs a few more steps). Returns what
    /// to throw.
    fn stop_on(&self, ctx: &Ctx<'_>, function: &str, exceeded: BudgetExceeded) -> rquickjs::Error {
        let error = match exceeded {
            BudgetExceeded::Time => SandboxError::TimeLimit {
                limit: self.limits.time_limit,
            },
            _ => SandboxError::LibraryAnswerTooLarge {
                function: function.to_owned(),
                budget_bytes: self.answer_bytes_max.get(),
                limit_bytes: self.limits.memory_bytes_max,
            },
        };
        let message = error.to_string();
        self.stop.borrow_mut().get_or_insert(error);
        self.clock.abort();
        Exception::throw_internal(ctx, &message)
    }

    fn next_random(&self) -> f64 {
        let mut x = self.random.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.random.set(x);
        // 53 random bits make a double in [0, 1).
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A QuickJS runtime bound to one root, used by one worker thread.
pub(crate) struct Vm {
    root: RootId,
    functions: Rc<[FunctionSpec]>,
    limits: Limits,
    clock: Rc<Clock>,
    host: Rc<Host>,
    /// A fresh context, ready for the next query.
    spare: Option<Context>,
    /// The context of the last query, freed by [`Vm::idle`] after the answer was sent.
    used: Option<Context>,
    queries: u64,
    /// False once the VM hit the time or memory limit or could not finish a query cleanly:
    /// the worker then discards it.
    healthy: bool,
    /// Last, so that it is dropped after every context and persistent value.
    runtime: Runtime,
}

impl Vm {
    /// Makes a runtime with the limits set, for the functions of `root`.
    pub(crate) fn new(
        root: RootId,
        functions: Vec<FunctionSpec>,
        limits: Limits,
    ) -> Result<Self, SandboxError> {
        let runtime = Runtime::new().map_err(|error| SandboxError::Internal {
            message: format!("could not make a QuickJS runtime: {error}"),
        })?;
        runtime.set_memory_limit(limits.memory_bytes_max);
        runtime.set_max_stack_size(limits.stack_bytes_max);
        let clock = Rc::new(Clock::default());
        let handler_clock = Rc::clone(&clock);
        runtime.set_interrupt_handler(Some(Box::new(move || handler_clock.expired())));
        let mut vm = Self {
            root,
            functions: functions.into(),
            limits,
            host: Rc::new(Host::new(Rc::clone(&clock), limits)),
            clock,
            spare: None,
            used: None,
            queries: 0,
            healthy: true,
            runtime,
        };
        vm.spare = Some(vm.prepare()?);
        // What a query starts with: the runtime and one fresh context. Measured once (it
        // walks the heap), it is the same before every query: the used context is freed
        // before the next is made.
        let base = usize::try_from(vm.runtime.memory_usage().malloc_size).unwrap_or(0);
        vm.host
            .answer_bytes_max
            .set(limits.memory_bytes_max.saturating_sub(base) / 2);
        Ok(vm)
    }

    pub(crate) fn root(&self) -> RootId {
        self.root
    }

    /// False once the VM hit the time or memory limit or could not finish a query
    /// cleanly: it must not answer another query.
    pub(crate) fn healthy(&self) -> bool {
        self.healthy
    }

    /// Marks the VM as not to be used again (something panicked while it ran).
    pub(crate) fn poison(&mut self) {
        self.healthy = false;
    }

    /// Whether the VM answered its share of queries and should be replaced.
    pub(crate) fn worn_out(&self) -> bool {
        self.queries >= QUERIES_PER_VM_MAX
    }

    /// Work between queries, after the answer was sent: frees the last query's context,
    /// collects its garbage and makes the next query's context.
    pub(crate) fn idle(&mut self) -> Result<(), SandboxError> {
        self.used = None;
        self.runtime.run_gc();
        if self.spare.is_none() {
            self.spare = Some(self.prepare()?);
        }
        Ok(())
    }

    /// Runs one query in a fresh context.
    pub(crate) fn run(
        &mut self,
        library: Arc<dyn Library>,
        code: &str,
        args_json: &str,
    ) -> Result<Outcome, SandboxError> {
        let context = match self.spare.take() {
            Some(context) => context,
            None => self.prepare().inspect_err(|_| self.healthy = false)?,
        };
        self.queries += 1;
        let position = library.position();
        self.host.begin(library, position);
        self.clock.arm(Instant::now() + self.limits.time_limit);
        let result = context.with(|ctx| {
            let result = self.evaluate(&ctx, code, args_json);
            // Jobs left by a failed query (it queued microtasks, then threw) must not run in
            // the next one, where they would reach the next query's library.
            self.drain_jobs(&ctx).and(result)
        });
        self.clock.disarm();
        // A library answer over its budget fails the query whatever the code did next (it
        // may have caught the error, or been interrupted since).
        let result = match self.host.end() {
            Some(stop) => Err(stop),
            None => result,
        };
        // Nothing in the context can reach a library any more and no job is left: freeing
        // it can wait until the answer is sent.
        self.used = Some(context);
        if matches!(
            result,
            Err(SandboxError::TimeLimit { .. }
                | SandboxError::MemoryLimit { .. }
                | SandboxError::Internal { .. })
        ) {
            self.healthy = false;
        }
        result.map(|result| Outcome { result, position })
    }

    /// Makes a fresh context: glue installed, library functions bound to [`Host`].
    fn prepare(&self) -> Result<Context, SandboxError> {
        let context = Context::custom::<Intrinsics>(&self.runtime).map_err(|error| {
            SandboxError::Internal {
                message: format!("could not make a QuickJS context: {error}"),
            }
        })?;
        context.with(|ctx| self.install(&ctx))?;
        Ok(context)
    }

    fn install<'js>(&self, ctx: &Ctx<'js>) -> Result<(), SandboxError> {
        self.install_glue(ctx).map_err(|error| {
            let detail = if matches!(error, rquickjs::Error::Exception) {
                format!("{:?}", ctx.catch())
            } else {
                error.to_string()
            };
            SandboxError::Internal {
                message: format!("the sandbox glue failed: {detail}"),
            }
        })?;
        let globals = ctx.globals();
        for index in 0..self.functions.len() {
            let name = self.functions[index].name.as_str();
            let defined = (|| {
                if globals.contains_key(name)? {
                    return Ok(false);
                }
                let host = Rc::clone(&self.host);
                let functions = Rc::clone(&self.functions);
                let function =
                    Function::new(ctx.clone(), move |ctx: Ctx<'js>, args: Rest<Value<'js>>| {
                        call_library(&ctx, &host, &functions[index], args.0)
                    })?
                    .with_name(name)?;
                function.set_length(self.functions[index].params.len())?;
                function.set_constructor(false);
                globals.set(name, function)?;
                Ok(true)
            })()
            .map_err(|error: rquickjs::Error| SandboxError::Internal {
                message: format!("could not define the library function {name}: {error}"),
            })?;
            if !defined {
                return Err(SandboxError::Library {
                    status: 500,
                    message: format!(
                        "the library function {name} is defined twice or has the name of a \
                         JavaScript global"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Makes the context deterministic: a clockless `Date` (see `glue.js`) and a
    /// `Math.random` seeded per query.
    fn install_glue<'js>(&self, ctx: &Ctx<'js>) -> rquickjs::Result<()> {
        let globals = ctx.globals();
        let host_date: Function<'js> = globals.get("Date")?;
        let prototype: Object<'js> = host_date.get("prototype")?;
        let no_clock = Function::new(ctx.clone(), |ctx: Ctx<'js>| -> rquickjs::Result<()> {
            Err(Exception::throw_type(
                &ctx,
                "queries have no clock: Date.now() and Date or new Date() without arguments \
                 are not available; use a time from the data or from args, e.g. \
                 new Date(args.now)",
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
        // The only other way back to the host's Date.
        prototype.set("constructor", date.clone())?;
        globals.set("Date", date)?;

        let host = Rc::clone(&self.host);
        let random = Function::new(ctx.clone(), move || host.next_random())?.with_name("random")?;
        globals
            .get::<_, Object<'js>>("Math")?
            .set("random", random)?;
        Ok(())
    }

    /// The args as a deeply frozen value: code reads them, it does not change them. Runs
    /// before any query code, so `Object.freeze` is the context's own.
    fn parse_args<'js>(ctx: &Ctx<'js>, args_json: &str) -> rquickjs::Result<Value<'js>> {
        fn deep_freeze<'js>(freeze: &Function<'js>, value: &Value<'js>) -> rquickjs::Result<()> {
            if let Some(object) = value.as_object() {
                for child in object.values::<Value<'js>>() {
                    deep_freeze(freeze, &child?)?;
                }
                freeze.call::<_, Value<'js>>((value.clone(),))?;
            }
            Ok(())
        }
        let args = ctx.json_parse(args_json)?;
        let freeze: Function<'js> = ctx
            .globals()
            .get::<_, Object<'js>>("Object")?
            .get("freeze")?;
        deep_freeze(&freeze, &args)?;
        Ok(args)
    }

    /// Parses the args, compiles and calls the code, settles a returned promise and turns the
    /// value into JSON.
    fn evaluate<'js>(
        &self,
        ctx: &Ctx<'js>,
        code: &str,
        args_json: &str,
    ) -> Result<serde_json::Value, SandboxError> {
        let args = Self::parse_args(ctx, args_json).map_err(|error| self.failure(ctx, error, 0))?;
        let (function, head) = self.compile(ctx, code)?;
        let returned = function.call::<_, Value<'js>>((args,));
        // Settle promises: an `async` body or one that returns a promise gets its value.
        let returned = match returned {
            Ok(value) => Ok(value),
            Err(rquickjs::Error::Exception) => Err(ctx.catch()),
            Err(error) => return Err(self.failure(ctx, error, head)),
        };
        self.drain_jobs(ctx)?;
        let value = match returned {
            Ok(value) => value,
            Err(thrown) => return Err(self.thrown(ctx, thrown, head)),
        };
        let value = match value.as_promise() {
            None => value,
            Some(promise) => match promise.result::<Value<'js>>() {
                Some(Ok(value)) => value,
                Some(Err(error)) => return Err(self.failure(ctx, error, head)),
                None => {
                    return Err(SandboxError::Script {
                        message: "the promise the code returned did not settle: a query \
                                  cannot wait for anything outside it"
                            .into(),
                        line: None,
                        column: None,
                    });
                }
            },
        };
        let json = ctx
            .json_stringify(value)
            .map_err(|error| self.failure(ctx, error, head))?;
        let Some(json) = json else {
            // undefined, a function or a symbol: no JSON form, like JSON.stringify.
            return Ok(serde_json::Value::Null);
        };
        let json = json
            .to_string()
            .map_err(|error| self.failure(ctx, error, head))?;
        if json.len() > self.limits.result_bytes_max {
            return Err(SandboxError::ResultTooLarge {
                size: json.len(),
                max: self.limits.result_bytes_max,
            });
        }
        serde_json::from_str(&json).map_err(|error| SandboxError::Script {
            message: truncate(format!("the result has no JSON form: {error}")),
            line: None,
            column: None,
        })
    }

    /// Compiles the code as an expression or, if it is not one, as a function body.
    /// Returns the function and the length of the head before the code on line 1.
    fn compile<'js>(
        &self,
        ctx: &Ctx<'js>,
        code: &str,
    ) -> Result<(Function<'js>, usize), SandboxError> {
        if code.contains('\0') {
            return Err(SandboxError::Script {
                message: "SyntaxError: the code contains a NUL character".into(),
                line: None,
                column: None,
            });
        }
        let expression = code.trim_end().trim_end_matches(';');
        let forms = [
            (EXPRESSION_HEAD, expression, EXPRESSION_TAIL),
            (BODY_HEAD, code, BODY_TAIL),
        ];
        // Code with a `return` is most likely a body: try that first, saving a parse.
        let order = if code.contains("return") {
            [1, 0]
        } else {
            [0, 1]
        };
        let mut script_error = None;
        for index in order {
            let (head, code, tail) = forms[index];
            let mut options = EvalOptions::default();
            options.filename = Some(CODE_FILE.into());
            let mut source = String::with_capacity(head.len() + code.len() + tail.len());
            source.push_str(head);
            source.push_str(code);
            source.push_str(tail);
            match ctx.eval_with_options::<Function<'js>, _>(source, options) {
                Ok(function) => return Ok((function, head.len())),
                Err(error) => match self.failure(ctx, error, head.len()) {
                    // The body form's error is the one to report: it is the general form.
                    error @ SandboxError::Script { .. } => {
                        if index == 1 || script_error.is_none() {
                            script_error = Some(error);
                        }
                    }
                    limit => return Err(limit),
                },
            }
        }
        Err(script_error.expect("both forms were tried"))
    }

    /// Runs the jobs (promise reactions) the query queued, until none is left or the
    /// deadline passed.
    fn drain_jobs(&self, ctx: &Ctx<'_>) -> Result<(), SandboxError> {
        while !self.clock.expired() && ctx.execute_pending_job() {}
        if self.clock.expired() {
            return Err(SandboxError::TimeLimit {
                limit: self.limits.time_limit,
            });
        }
        Ok(())
    }

    /// Turns an error of a call into JavaScript into the query's error.
    fn failure(&self, ctx: &Ctx<'_>, error: rquickjs::Error, head: usize) -> SandboxError {
        if self.clock.expired() {
            return SandboxError::TimeLimit {
                limit: self.limits.time_limit,
            };
        }
        match error {
            rquickjs::Error::Exception => self.thrown(ctx, ctx.catch(), head),
            rquickjs::Error::Allocation => SandboxError::MemoryLimit {
                limit_bytes: self.limits.memory_bytes_max,
            },
            rquickjs::Error::FromJs { .. } => SandboxError::Script {
                message: "the code is neither an expression nor a function body".into(),
                line: None,
                column: None,
            },
            error => SandboxError::Internal {
                message: truncate(error.to_string()),
            },
        }
    }

    /// Turns a value the query threw (and did not catch) into the query's error.
    fn thrown<'js>(&self, ctx: &Ctx<'js>, thrown: Value<'js>, head: usize) -> SandboxError {
        let error = self.describe(ctx, thrown, head);
        // Reading the error's properties may run the query's getters; they run under the
        // deadline too.
        if self.clock.expired() {
            return SandboxError::TimeLimit {
                limit: self.limits.time_limit,
            };
        }
        error
    }

    fn describe<'js>(&self, ctx: &Ctx<'js>, thrown: Value<'js>, head: usize) -> SandboxError {
        let (name, message, exception) = match Caught::of(ctx, thrown) {
            Caught::OutOfMemory => {
                return SandboxError::MemoryLimit {
                    limit_bytes: self.limits.memory_bytes_max,
                };
            }
            Caught::StackOverflow => {
                return SandboxError::StackLimit {
                    limit_bytes: self.limits.stack_bytes_max,
                };
            }
            Caught::Value(text) => {
                return SandboxError::Script {
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
        if name == "LibraryError" {
            let status = exception.get::<_, Option<u16>>("status").ok().flatten();
            if ctx.has_exception() {
                ctx.catch();
            }
            let last = self.host.last_error.borrow();
            if let Some(last) = last.as_ref()
                && Some(last.status) == status
                && last.message == message
            {
                return SandboxError::Library {
                    status: last.status,
                    message: last.message.clone(),
                };
            }
        }
        let (line, column) = property(ctx, &exception, "stack")
            .and_then(|stack| location(&stack, "query", head))
            .unzip();
        SandboxError::Script {
            message: error_message(name, &message),
            line,
            column,
        }
    }
}

/// A library function as code sees it: named arguments from a single plain object,
/// positional arguments otherwise; values cross as JSON.
fn call_library<'js>(
    ctx: &Ctx<'js>,
    host: &Host,
    spec: &FunctionSpec,
    args: Vec<Value<'js>>,
) -> rquickjs::Result<Value<'js>> {
    let named = match args.as_slice() {
        [single] if is_plain_object(ctx, single)? => match to_json(ctx, single.clone())? {
            Some(serde_json::Value::Object(map)) => map,
            _ => {
                return Err(Exception::throw_type(
                    ctx,
                    &format!(
                        "{}(): the arguments object has no JSON object form",
                        spec.name
                    ),
                ));
            }
        },
        _ => {
            if args.len() > spec.params.len() {
                return Err(Exception::throw_type(
                    ctx,
                    &format!(
                        "{}({}) takes {} argument{}, got {}",
                        spec.name,
                        spec.params.join(", "),
                        spec.params.len(),
                        if spec.params.len() == 1 { "" } else { "s" },
                        args.len()
                    ),
                ));
            }
            let mut map = serde_json::Map::with_capacity(args.len());
            for (param, arg) in spec.params.iter().zip(args) {
                if let Some(value) = to_json(ctx, arg)? {
                    map.insert(param.clone(), value);
                }
            }
            map
        }
    };
    let library = host.library.borrow().clone();
    let Some(library) = library else {
        return Err(Exception::throw_internal(
            ctx,
            "library functions are available only while a query runs",
        ));
    };
    if let Some(stop) = host.stop.borrow().as_ref() {
        // A library answer hit a limit and the code caught the error: no more calls.
        return Err(Exception::throw_internal(ctx, &stop.to_string()));
    }
    let budget = Budget::new(host.answer_bytes_max.get(), host.clock.deadline());
    let answer = library.call(&spec.name, named, &budget);
    if let Some(exceeded) = budget.exceeded() {
        // Whatever the library made of it (an error, or an answer after all).
        return Err(host.stop_on(ctx, &spec.name, exceeded));
    }
    match answer {
        Ok(value) => {
            let json = match write_json(&value, &budget) {
                Ok(json) => json,
                Err(JsonError::Exceeded(exceeded)) => {
                    return Err(host.stop_on(ctx, &spec.name, exceeded));
                }
                Err(JsonError::Invalid(error)) => {
                    return Err(Exception::throw_internal(ctx, &error.to_string()));
                }
            };
            drop(value);
            ctx.json_parse(json)
        }
        Err(error) => {
            let exception = Exception::from_message(ctx.clone(), &error.message)?;
            exception.set("name", "LibraryError")?;
            exception.set("status", error.status)?;
            *host.last_error.borrow_mut() = Some(error);
            Err(ctx.throw(exception.into_value()))
        }
    }
}

/// Why an answer has no JSON within its budget.
enum JsonError {
    Exceeded(BudgetExceeded),
    Invalid(serde_json::Error),
}

/// The JSON of a library answer, written under the budget's bytes (counted afresh: what
/// the library charged estimated its value) and deadline.
fn write_json(value: &serde_json::Value, budget: &Budget) -> Result<Vec<u8>, JsonError> {
    let mut out = Bounded {
        bytes: Vec::new(),
        budget: Budget::new(budget.bytes_max(), budget.deadline()),
    };
    match serde_json::to_writer(&mut out, value) {
        Ok(()) => Ok(out.bytes),
        Err(error) => match out.budget.exceeded() {
            Some(exceeded) => Err(JsonError::Exceeded(exceeded)),
            None => Err(JsonError::Invalid(error)),
        },
    }
}

/// A buffer that refuses to grow past its budget or after its deadline.
struct Bounded {
    bytes: Vec<u8>,
    budget: Budget,
}

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.budget
            .charge(buf.len())
            .map_err(std::io::Error::other)?;
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An object made by `{...}` or `Object.create(null)`: not an array, function, date or
/// other class instance.
fn is_plain_object<'js>(ctx: &Ctx<'js>, value: &Value<'js>) -> rquickjs::Result<bool> {
    let Some(object) = value.as_object() else {
        return Ok(false);
    };
    if value.is_array() || value.is_function() {
        return Ok(false);
    }
    match object.get_prototype() {
        None => Ok(true),
        // The context's own Object.prototype, whatever the code did to the global `Object`.
        Some(prototype) => Ok(Object::new(ctx.clone())?.get_prototype() == Some(prototype)),
    }
}

/// The JSON of a value as `JSON.stringify` makes it; None for undefined, functions, symbols.
fn to_json<'js>(ctx: &Ctx<'js>, value: Value<'js>) -> rquickjs::Result<Option<serde_json::Value>> {
    let Some(json) = ctx.json_stringify(value)? else {
        return Ok(None);
    };
    let json = json.to_string()?;
    serde_json::from_str(&json).map(Some).map_err(|error| {
        Exception::throw_range(ctx, &format!("an argument has no JSON form: {error}"))
    })
}
