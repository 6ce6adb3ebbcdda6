//! The sandbox against a small counter library: results, limits, isolation, roots.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

use serde_json::{Map, Value, json};
use writ_sandbox::{
    Budget, FunctionSpec, Library, LibraryError, RootId, Sandbox, SandboxError, SandboxOptions,
    VMS_PER_WORKER_MAX,
};

/// Counters by id, at one position, for one root.
struct Counters {
    counters: HashMap<u64, Value>,
    position: u64,
    root: RootId,
    /// The model the root belongs to (the root itself unless made `with_model`).
    model: RootId,
    /// Every call, as `name(args)`.
    calls: Mutex<Vec<String>>,
}

impl Counters {
    fn new(position: u64, root: RootId) -> Arc<Self> {
        let counters = (1..=100)
            .map(|id| {
                let status = if id % 3 == 0 { "closed" } else { "open" };
                (
                    id,
                    json!({"id": id, "title": format!("counter {id}"), "status": status, "value": id % 5}),
                )
            })
            .collect();
        Arc::new(Self {
            counters,
            position,
            root,
            model: root,
            calls: Mutex::new(Vec::new()),
        })
    }

    /// The same functions as root `root` of model `model`.
    fn with_model(position: u64, root: RootId, model: RootId) -> Arc<Self> {
        let mut counters = Arc::into_inner(Self::new(position, root)).unwrap();
        counters.model = model;
        Arc::new(counters)
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl Library for Counters {
    fn functions(&self) -> Vec<FunctionSpec> {
        let spec = |name: &str, params: &[&str]| FunctionSpec {
            name: name.into(),
            params: params.iter().map(|param| param.to_string()).collect(),
        };
        vec![
            spec("getCounter", &["id"]),
            spec("listCounters", &["query"]),
            spec("counterStats", &[]),
            spec("echo", &["a", "b"]),
            spec("panics", &[]),
            spec("budget", &[]),
            spec("blob", &["bytes", "charged"]),
            spec("slowly", &[]),
        ]
    }

    fn call(
        &self,
        name: &str,
        args: Map<String, Value>,
        budget: &Budget,
    ) -> Result<Value, LibraryError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("{name}({})", Value::Object(args.clone())));
        match name {
            "getCounter" => {
                let id = args.get("id").and_then(Value::as_u64).ok_or(LibraryError {
                    status: 400,
                    message: "id must be a positive integer".into(),
                })?;
                self.counters.get(&id).cloned().ok_or(LibraryError {
                    status: 404,
                    message: format!("counter {id} not found"),
                })
            }
            "listCounters" => {
                let status = args.get("status").and_then(Value::as_str);
                let query = args.get("query").and_then(Value::as_str).unwrap_or("");
                let mut found: Vec<&Value> = self
                    .counters
                    .values()
                    .filter(|counter| status.is_none_or(|status| counter["status"] == status))
                    .filter(|counter| counter["title"].as_str().unwrap().contains(query))
                    .collect();
                found.sort_by_key(|counter| counter["id"].as_u64());
                Ok(json!(found))
            }
            "counterStats" => Ok(json!({"count": self.counters.len()})),
            "echo" => Ok(Value::Object(args)),
            "panics" => panic!("the library panicked"),
            "budget" => Ok(json!(budget.bytes_max())),
            // A string whose JSON is `bytes` long; `charged`, built a KiB at a time and
            // charged as it goes, as a library over data of unbounded size should be.
            "blob" => {
                let bytes = args["bytes"].as_u64().unwrap() as usize;
                let over = |error: writ_sandbox::BudgetExceeded| LibraryError {
                    status: 500,
                    message: error.to_string(),
                };
                if args.get("charged") == Some(&json!(true)) {
                    let mut text = String::new();
                    budget.charge(2).map_err(over)?;
                    while text.len() < bytes - 2 {
                        let piece = 1024.min(bytes - 2 - text.len());
                        budget.charge(piece).map_err(over)?;
                        text.extend(std::iter::repeat_n('x', piece));
                    }
                    Ok(Value::String(text))
                } else {
                    Ok(Value::String("x".repeat(bytes - 2)))
                }
            }
            // Builds an answer for ever, checking the deadline as it goes.
            "slowly" => loop {
                thread::sleep(Duration::from_millis(5));
                budget.check_time().map_err(|error| LibraryError {
                    status: 500,
                    message: error.to_string(),
                })?;
            },
            _ => Err(LibraryError {
                status: 500,
                message: format!("no function {name}"),
            }),
        }
    }

    fn position(&self) -> u64 {
        self.position
    }

    fn root(&self) -> RootId {
        self.root
    }

    fn model(&self) -> RootId {
        self.model
    }
}

/// The time limit of the tests: generous, since QuickJS is built without optimisation in
/// test builds and tests run side by side.
const TIME_LIMIT: Duration = Duration::from_secs(1);

fn options() -> SandboxOptions {
    SandboxOptions {
        time_limit: TIME_LIMIT,
        memory_bytes_max: 16 << 20,
        pool_size: 2,
        ..SandboxOptions::default()
    }
}

fn sandbox() -> Sandbox {
    Sandbox::new(options()).unwrap()
}

/// A sandbox with one worker, so that consecutive queries share one VM.
fn one_worker() -> Sandbox {
    Sandbox::new(SandboxOptions {
        pool_size: 1,
        ..options()
    })
    .unwrap()
}

fn run(sandbox: &Sandbox, code: &str) -> Result<Value, SandboxError> {
    run_with(sandbox, code, json!({}))
}

fn run_with(sandbox: &Sandbox, code: &str, args: Value) -> Result<Value, SandboxError> {
    sandbox
        .run(Counters::new(7, RootId(1)), code, args)
        .map(|outcome| outcome.result)
}

fn script_message(error: SandboxError) -> String {
    match error {
        SandboxError::Script { message, .. } => message,
        other => panic!("expected a script error, got {other:?}"),
    }
}

/// Waits until `condition` holds; the sandbox's workers act on their own threads.
fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_query_returns_its_result_and_the_snapshot_position() {
    let sandbox = sandbox();
    let library = Counters::new(1234, RootId(1));
    let outcome = sandbox
        .run(library, "getCounter(args.id).title", json!({"id": 42}))
        .unwrap();
    assert_eq!(outcome.result, json!("counter 42"));
    assert_eq!(outcome.position, 1234);
}

#[test]
fn code_is_an_expression_or_a_function_body() {
    let sandbox = sandbox();
    let cases = [
        ("1 + 1", json!(2)),
        ("1 + 1;  \n", json!(2)),
        ("{a: 1}", json!({"a": 1})),
        ("return listCounters({status: 'open'}).length", json!(67)),
        (
            "const open = listCounters({status: 'open'});\nreturn open.length;",
            json!(67),
        ),
        ("const x = 1", Value::Null),
        ("undefined", Value::Null),
        ("() => 1", Value::Null),
        ("Symbol('s')", Value::Null),
        ("[1, undefined, () => 1]", json!([1, null, null])),
        ("({a: 1, b: undefined, c: NaN})", json!({"a": 1, "c": null})),
        (
            "'line comment at the end' // comment",
            json!("line comment at the end"),
        ),
        (
            "return (async () => getCounter(1).title)()",
            json!("counter 1"),
        ),
        ("Promise.resolve(5)", json!(5)),
    ];
    for (code, expected) in cases {
        assert_eq!(run(&sandbox, code).unwrap(), expected, "{code}");
    }
}

#[test]
fn a_medium_query_filters_and_maps() {
    let sandbox = sandbox();
    let code =
        "listCounters({status: 'open'}).filter(t => t.value >= 3).map(t => t.id).slice(0, 5)";
    assert_eq!(run(&sandbox, code).unwrap(), json!([4, 8, 13, 14, 19]));
}

#[test]
fn args_are_in_scope_and_deeply_frozen() {
    let sandbox = sandbox();
    let args = json!({"id": 5, "nested": {"list": [1, 2]}});
    assert_eq!(
        run_with(&sandbox, "[args.id, args.nested.list[1]]", args.clone()).unwrap(),
        json!([5, 2])
    );
    for code in [
        "args.id = 6",
        "args.nested.x = 1",
        "args.nested.list.push(3)",
    ] {
        let message = script_message(run_with(&sandbox, code, args.clone()).unwrap_err());
        assert!(message.starts_with("TypeError"), "{code}: {message}");
    }
}

#[test]
fn library_arguments_are_named_from_one_plain_object_or_positional() {
    let sandbox = sandbox();
    let cases = [
        ("echo(1, 'x')", json!({"a": 1, "b": "x"})),
        ("echo(1)", json!({"a": 1})),
        ("echo(undefined, 2)", json!({"b": 2})),
        ("echo()", json!({})),
        ("echo({b: 3, c: 4})", json!({"b": 3, "c": 4})),
        (
            "echo(Object.assign(Object.create(null), {a: 1}))",
            json!({"a": 1}),
        ),
        ("echo([1, 2])", json!({"a": [1, 2]})),
        (
            "echo(new Date(0))",
            json!({"a": "1970-01-01T00:00:00.000Z"}),
        ),
        ("echo({a: 1}, 2)", json!({"a": {"a": 1}, "b": 2})),
        ("getCounter({id: 3}).id", json!(3)),
    ];
    for (code, expected) in cases {
        assert_eq!(run(&sandbox, code).unwrap(), expected, "{code}");
    }
    let message = script_message(run(&sandbox, "echo(1, 2, 3)").unwrap_err());
    assert_eq!(message, "TypeError: echo(a, b) takes 2 arguments, got 3");
    let message = script_message(run(&sandbox, "echo(1n)").unwrap_err());
    assert!(message.starts_with("TypeError"), "{message}");
}

#[test]
fn library_errors_surface_with_their_status_unless_caught() {
    let sandbox = sandbox();
    assert_eq!(
        run(&sandbox, "getCounter(999).title").unwrap_err(),
        SandboxError::Library {
            status: 404,
            message: "counter 999 not found".into()
        }
    );
    assert_eq!(
        run(&sandbox, "getCounter('x')").unwrap_err(),
        SandboxError::Library {
            status: 400,
            message: "id must be a positive integer".into()
        }
    );
    let caught = "try { getCounter(999) } catch (e) { return [e.name, e.status, e.message, e instanceof Error] }";
    assert_eq!(
        run(&sandbox, caught).unwrap(),
        json!(["LibraryError", 404, "counter 999 not found", true])
    );
    // Caught, then a different error thrown: that one is reported.
    let rethrown = "try { getCounter(999) } catch (e) { throw new TypeError('mine') }";
    assert_eq!(
        script_message(run(&sandbox, rethrown).unwrap_err()),
        "TypeError: mine"
    );
}

#[test]
fn script_errors_carry_the_message_and_the_line() {
    let sandbox = sandbox();
    let cases = [
        (
            "const a = 1;\nconst b = ;\nreturn a",
            "SyntaxError",
            Some(2),
        ),
        (
            "const t = getCounter(1);\n\nreturn t.missing.title",
            "TypeError",
            Some(3),
        ),
        ("null.x", "TypeError", Some(1)),
        (
            "throw new RangeError('out of range')",
            "RangeError: out of range",
            Some(1),
        ),
        ("undefinedVariable + 1", "ReferenceError", Some(1)),
        ("throw 'a string'", "uncaught exception: a string", None),
        (
            "throw {toString() { return 'an object' }}",
            "uncaught exception: an object",
            None,
        ),
        (
            "Promise.reject(new Error('rejected'))",
            "Error: rejected",
            Some(1),
        ),
        (
            "new Promise(() => {})",
            "the promise the code returned did not settle",
            None,
        ),
        ("1n", "TypeError", None),
        ("1\0", "SyntaxError", None),
        ("const a = []; a.push(a); return a", "TypeError", None),
    ];
    for (code, prefix, expected_line) in cases {
        match run(&sandbox, code).unwrap_err() {
            SandboxError::Script { message, line, .. } => {
                assert!(message.starts_with(prefix), "{code}: {message}");
                if expected_line.is_some() {
                    assert_eq!(line, expected_line, "{code}: {message}");
                }
            }
            other => panic!("{code}: expected a script error, got {other:?}"),
        }
    }
    match run(&sandbox, "   null.x").unwrap_err() {
        SandboxError::Script { line, column, .. } => {
            assert_eq!(line, Some(1));
            assert!(column.is_some_and(|column| column <= 10), "{column:?}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_infinite_loop_hits_the_time_limit() {
    let sandbox = sandbox();
    for code in [
        "while (true) {}",
        "for (;;) { getCounter(1) }",
        "/(a+)+$/.test('a'.repeat(40) + 'b')",
    ] {
        assert_eq!(
            run(&sandbox, code).unwrap_err(),
            SandboxError::TimeLimit { limit: TIME_LIMIT },
            "{code}"
        );
    }
    // Even one that catches everything: the interrupt cannot be caught.
    let code = "while (true) { try { while (true) {} } catch (e) {} }";
    assert!(matches!(
        run(&sandbox, code),
        Err(SandboxError::TimeLimit { .. })
    ));
    // Microtasks that never end.
    let code = "const f = () => queueMicrotask(f); f(); return 1";
    assert!(matches!(
        run(&sandbox, code),
        Err(SandboxError::TimeLimit { .. })
    ));
    // A promise chain that never ends holds each link: it runs out of time or memory, and
    // the out-of-memory error only rejects a promise nobody waits for.
    let code = "const f = () => Promise.resolve().then(f); f(); return 1";
    let result = run(&sandbox, code);
    assert!(
        matches!(result, Ok(ref one) if *one == json!(1))
            || matches!(
                result,
                Err(SandboxError::TimeLimit { .. } | SandboxError::MemoryLimit { .. })
            ),
        "{result:?}"
    );
    assert_eq!(run(&sandbox, "getCounter(2).id").unwrap(), json!(2));
}

#[test]
fn a_memory_bomb_hits_the_memory_limit() {
    let sandbox = sandbox();
    let limit = SandboxError::MemoryLimit {
        limit_bytes: 16 << 20,
    };
    for code in [
        "let a = []; while (true) a.push(new Array(1e6).fill(0))",
        "const a = []; for (let i = 0; ; i++) a.push('x'.repeat(100) + i)",
        "'x'.repeat(1e9)",
    ] {
        assert_eq!(run(&sandbox, code).unwrap_err(), limit, "{code}");
    }
    // Many small objects: memory, or time first in an unoptimised build of QuickJS.
    let code = "const m = new Map(); for (let i = 0; ; i++) m.set(i, {i})";
    let result = run(&sandbox, code);
    assert!(
        matches!(
            result,
            Err(SandboxError::MemoryLimit { .. } | SandboxError::TimeLimit { .. })
        ),
        "{result:?}"
    );
    // Strings are ropes: doubling one reaches QuickJS's length bound before the memory limit.
    let message = script_message(run(&sandbox, "let s = 'x'; while (true) s += s").unwrap_err());
    assert_eq!(message, "InternalError: string too long");
    // The brief's version: sparse arrays cost little each, so it runs into time or memory.
    let code = "let a = []; while (true) a.push(new Array(1e6))";
    assert!(matches!(
        run(&sandbox, code),
        Err(SandboxError::MemoryLimit { .. } | SandboxError::TimeLimit { .. })
    ));
    assert_eq!(run(&sandbox, "getCounter(3).id").unwrap(), json!(3));
}

#[test]
fn deep_recursion_is_a_clean_error() {
    let sandbox = sandbox();
    let limit = SandboxError::StackLimit {
        limit_bytes: 1 << 20,
    };
    assert_eq!(
        run(
            &sandbox,
            "function f(n) { return f(n + 1) + 1 } return f(0)"
        )
        .unwrap_err(),
        limit
    );
    // Through host calls: the host's frames count too.
    assert_eq!(
        run(
            &sandbox,
            "function f(n) { return echo({n: f(n + 1)}) } return f(0)"
        )
        .unwrap_err(),
        limit
    );
    // Deeply nested data through JSON.
    let code =
        "let v = []; for (let i = 0; i < 100000; i++) v = [v]; return JSON.stringify(v).length";
    let result = run(&sandbox, code);
    assert!(
        matches!(
            result,
            Ok(_) | Err(SandboxError::StackLimit { .. } | SandboxError::Script { .. })
        ),
        "{result:?}"
    );
    // A result nested deeper than the host parses.
    let code = "let v = []; for (let i = 0; i < 1000; i++) v = [v]; return v";
    let message = script_message(run(&sandbox, code).unwrap_err());
    assert!(
        message.starts_with("the result has no JSON form"),
        "{message}"
    );
    // Code may catch it.
    let caught = "function f() { f() } try { f() } catch (e) { return e.name }";
    assert_eq!(run(&sandbox, caught).unwrap(), json!("RangeError"));
}

#[test]
fn a_large_result_and_large_code_are_refused() {
    let sandbox = sandbox();
    assert_eq!(
        run(&sandbox, "'x'.repeat(2 * 1024 * 1024)").unwrap_err(),
        SandboxError::ResultTooLarge {
            size: 2 * 1024 * 1024 + 2,
            max: 1 << 20
        }
    );
    let code = format!("1 + {}1", " ".repeat(64 << 10));
    assert_eq!(
        run(&sandbox, &code).unwrap_err(),
        SandboxError::CodeTooLarge {
            size: code.len(),
            max: 64 << 10
        }
    );
}

#[test]
fn limits_hit_by_some_queries_do_not_affect_others_running_at_once() {
    let sandbox = Arc::new(
        Sandbox::new(SandboxOptions {
            queue_max: 1_000,
            ..options()
        })
        .unwrap(),
    );
    let bad: Vec<_> = [
        "while (true) {}",
        "let a = []; while (true) a.push(new Array(1e6).fill(0))",
        "function f() { return f() + 1 } f()",
        "'y'.repeat(3 << 20)",
    ]
    .into_iter()
    .cycle()
    .take(8)
    .map(|code| {
        let sandbox = Arc::clone(&sandbox);
        thread::spawn(move || run(&sandbox, code).unwrap_err())
    })
    .collect();
    let good: Vec<_> = (0..4)
        .map(|thread| {
            let sandbox = Arc::clone(&sandbox);
            thread::spawn(move || {
                for id in 1..=25u64 {
                    let id = (id + thread * 25) % 100 + 1;
                    let result = run_with(&sandbox, "getCounter(args.id).title", json!({"id": id}));
                    assert_eq!(result.unwrap(), json!(format!("counter {id}")));
                }
            })
        })
        .collect();
    for handle in good {
        handle.join().unwrap();
    }
    for handle in bad {
        let error = handle.join().unwrap();
        assert!(
            matches!(
                error,
                SandboxError::TimeLimit { .. }
                    | SandboxError::MemoryLimit { .. }
                    | SandboxError::StackLimit { .. }
                    | SandboxError::ResultTooLarge { .. }
            ),
            "{error:?}"
        );
    }
    assert!(sandbox.stats().vms_discarded >= 4);
}

#[test]
fn a_vm_that_hit_a_limit_is_discarded_and_the_next_query_is_unaffected() {
    let sandbox = one_worker();
    assert_eq!(run(&sandbox, "1").unwrap(), json!(1));
    let before = sandbox.stats();
    assert!(matches!(
        run(&sandbox, "while (true) {}"),
        Err(SandboxError::TimeLimit { .. })
    ));
    assert_eq!(run(&sandbox, "getCounter(4).id").unwrap(), json!(4));
    let code = "let a = []; while (true) a.push(new Array(1e6).fill(0))";
    assert!(matches!(
        run(&sandbox, code),
        Err(SandboxError::MemoryLimit { .. })
    ));
    // The new VM has its whole memory budget: 8 MiB is fine.
    assert_eq!(
        run(&sandbox, "new Array(5e5).fill(1).length").unwrap(),
        json!(500_000)
    );
    let after = sandbox.stats();
    assert_eq!(after.vms_discarded, before.vms_discarded + 2);
    assert_eq!(after.vms_by_root, HashMap::from([(RootId(1), 1)]));
}

#[test]
fn a_panicking_library_function_is_an_internal_error() {
    let sandbox = one_worker();
    let error = run(&sandbox, "panics()").unwrap_err();
    assert!(matches!(error, SandboxError::Internal { .. }), "{error:?}");
    assert_eq!(sandbox.stats().vms_discarded, 1);
    assert_eq!(run(&sandbox, "getCounter(5).id").unwrap(), json!(5));
}

#[test]
fn import_require_and_process_are_not_there() {
    let sandbox = sandbox();
    assert!(matches!(
        run(&sandbox, "import('x')"),
        Err(SandboxError::Script { .. })
    ));
    let message = script_message(run(&sandbox, "import x from 'x'; return x").unwrap_err());
    assert!(message.starts_with("SyntaxError"), "{message}");
    let globals = "[typeof require, typeof process, typeof std, typeof os, typeof fetch, \
                   typeof performance, typeof WeakRef, typeof FinalizationRegistry, \
                   typeof setTimeout, typeof print, typeof console]";
    assert_eq!(
        run(&sandbox, globals).unwrap(),
        json!(vec!["undefined"; 11])
    );
}

#[test]
fn the_global_object_holds_only_the_standard_built_ins_and_the_library() {
    let sandbox = sandbox();
    let code = "const g = globalThis.constructor.constructor('return this')(); \
                return [g === globalThis, Reflect.ownKeys(g).map(String).sort()]";
    let result = run(&sandbox, code).unwrap();
    assert_eq!(result[0], json!(true));
    let expected = [
        "AggregateError",
        "Array",
        "BigInt",
        "Boolean",
        "Date",
        "DisposableStack",
        "Error",
        "EvalError",
        "Function",
        "Infinity",
        "InternalError",
        "Iterator",
        "JSON",
        "Map",
        "Math",
        "NaN",
        "Number",
        "Object",
        "Promise",
        "RangeError",
        "ReferenceError",
        "Reflect",
        "RegExp",
        "Set",
        "String",
        "Symbol",
        "Symbol(Symbol.toStringTag)",
        "SuppressedError",
        "SyntaxError",
        "TypeError",
        "URIError",
        "WeakMap",
        "WeakSet",
        "decodeURI",
        "decodeURIComponent",
        "echo",
        "encodeURI",
        "encodeURIComponent",
        "escape",
        "eval",
        "getCounter",
        "globalThis",
        "isFinite",
        "isNaN",
        "panics",
        "parseFloat",
        "parseInt",
        "queueMicrotask",
        "listCounters",
        "counterStats",
        "budget",
        "blob",
        "slowly",
        "undefined",
        "unescape",
    ];
    let mut actual: Vec<String> = serde_json::from_value(result[1].clone()).unwrap();
    actual.retain(|name| !name.starts_with("Async") && name != "AsyncDisposableStack");
    let mut expected: Vec<String> = expected.iter().map(|name| name.to_string()).collect();
    expected.sort();
    assert_eq!(actual, expected);
}

#[test]
fn library_functions_reveal_nothing_of_the_host() {
    let sandbox = sandbox();
    let code = "[
        Reflect.ownKeys(getCounter).map(String).sort(),
        getCounter.name,
        getCounter.length,
        Object.getPrototypeOf(getCounter) === Function.prototype,
        getCounter.toString().includes('[native code]'),
        getCounter.call({evil: true}, 6).id,
        Reflect.apply(getCounter, null, [7]).id,
        getCounter.prototype,
    ]";
    assert_eq!(
        run(&sandbox, code).unwrap(),
        json!([["length", "name"], "getCounter", 1, true, true, 6, 7, null])
    );
    let message = script_message(run(&sandbox, "new getCounter(1)").unwrap_err());
    assert!(message.starts_with("TypeError"), "{message}");
    // A replaced getter on the result cannot reach the host either: values are copies.
    let code = "const t = getCounter(8); t.title = 'changed'; return getCounter(8).title";
    assert_eq!(run(&sandbox, code).unwrap(), json!("counter 8"));
}

#[test]
fn tampering_in_one_query_is_invisible_in_the_next() {
    let sandbox = one_worker();
    let tamper = "Object.prototype.polluted = 1;
        Array.prototype.map = function () { return 'hacked' };
        JSON.stringify = () => 'hacked';
        globalThis.leak = 42;
        getCounter = () => 'hacked';
        Object.defineProperty(Object.prototype, 'title', {get() { return 'hacked' }});
        Math.random = () => 0.5;
        return 1";
    assert_eq!(run(&sandbox, tamper).unwrap(), json!(1));
    let check = "[typeof ({}).polluted, [1, 2].map(x => x * 2), typeof globalThis.leak, \
                 getCounter(9).title, JSON.stringify({a: 1}), Math.random() === 0.5]";
    assert_eq!(
        run(&sandbox, check).unwrap(),
        json!([
            "undefined",
            [2, 4],
            "undefined",
            "counter 9",
            "{\"a\":1}",
            false
        ])
    );
}

#[test]
fn there_is_no_clock_and_random_numbers_follow_the_snapshot() {
    let sandbox = sandbox();
    for code in [
        "Date.now()",
        "new Date()",
        "Date()",
        "new (new Date(0).constructor)()",
    ] {
        let message = script_message(run(&sandbox, code).unwrap_err());
        assert!(
            message.starts_with("TypeError: queries have no clock"),
            "{code}: {message}"
        );
    }
    let code = "[new Date(0).toISOString(), Date.UTC(2026, 0, 2), \
                 new Date('2026-01-02T03:04:05Z').getTime(), new Date(0) instanceof Date, \
                 new Date(0).constructor === Date, Date.parse('1970-01-01T00:00:01Z')]";
    assert_eq!(
        run(&sandbox, code).unwrap(),
        json!([
            "1970-01-01T00:00:00.000Z",
            1767312000000u64,
            1767323045000u64,
            true,
            true,
            1000
        ])
    );
    let random = "Array.from({length: 3}, () => Math.random())";
    let at = |position| {
        sandbox
            .run(Counters::new(position, RootId(1)), random, json!({}))
            .unwrap()
            .result
    };
    let first = at(10);
    assert_eq!(at(10), first);
    assert_ne!(at(11), first);
    for value in first.as_array().unwrap() {
        let value = value.as_f64().unwrap();
        assert!((0.0..1.0).contains(&value));
    }
}

#[test]
fn a_root_change_retires_the_old_roots_vms() {
    let sandbox = Arc::new(sandbox());
    let query = |root: u64, id: u64| {
        sandbox
            .run(
                Counters::new(1, RootId(root)),
                "getCounter(args.id).id",
                json!({"id": id}),
            )
            .unwrap()
            .result
    };
    // Two queries at once so that both workers make a VM for root 1.
    thread::scope(|scope| {
        let slow = "let i = 0; while (i < 2e5) i++; getCounter(args.id).id";
        let run = |id: u64| {
            let sandbox = Arc::clone(&sandbox);
            scope.spawn(move || {
                for _ in 0..10 {
                    sandbox
                        .run(Counters::new(1, RootId(1)), slow, json!({"id": id}))
                        .unwrap();
                }
            })
        };
        let (a, b) = (run(1), run(2));
        a.join().unwrap();
        b.join().unwrap();
    });
    assert_eq!(sandbox.stats().vms_by_root.get(&RootId(1)), Some(&2));

    assert_eq!(query(2, 10), json!(10));
    eventually("root 1's VMs are retired", || {
        sandbox.stats().vms_by_root == HashMap::from([(RootId(2), 1)])
    });
    assert_eq!(sandbox.stats().vms_retired, 2);

    // A late query for root 1 still answers, in a VM made for it and dropped after it.
    assert_eq!(query(1, 11), json!(11));
    eventually("the late VM is retired", || {
        !sandbox.stats().vms_by_root.contains_key(&RootId(1))
    });
    assert_eq!(query(2, 12), json!(12));
    let stats = sandbox.stats();
    assert_eq!(stats.vms_discarded, 0);
    assert!(stats.vms_by_root.values().sum::<usize>() <= 2);
}

#[test]
fn function_sets_of_one_model_stay_warm_together() {
    let sandbox = one_worker();
    let query = |root: u64, model: u64, id: u64| {
        sandbox
            .run(
                Counters::with_model(1, RootId(root), RootId(model)),
                "getCounter(args.id).id",
                json!({"id": id}),
            )
            .unwrap()
            .result
    };
    // Query API versions 1 and 2 over one projection version, alternating.
    for id in 1..=20 {
        assert_eq!(query(11 + id % 2, 10, id), json!(id));
    }
    let stats = sandbox.stats();
    assert_eq!(stats.vms_created, 2, "one VM per function set, kept warm");
    assert_eq!(stats.vms_retired, 0);
    assert_eq!(stats.current_model, Some(RootId(10)));
    assert_eq!(
        stats.vms_by_root,
        HashMap::from([(RootId(11), 1), (RootId(12), 1)])
    );

    // A new model retires every function set of the old one.
    assert_eq!(query(21, 20, 30), json!(30));
    let stats = sandbox.stats();
    assert_eq!(stats.current_model, Some(RootId(20)));
    assert_eq!(stats.vms_by_root, HashMap::from([(RootId(21), 1)]));
    assert_eq!(stats.vms_retired, 2);

    // A late query for the old model answers in a VM made for it and dropped after it.
    assert_eq!(query(11, 10, 31), json!(31));
    eventually("the late VM is retired", || {
        sandbox.stats().vms_retired == 3
    });
    let stats = sandbox.stats();
    assert_eq!(
        stats.current_model,
        Some(RootId(20)),
        "an old model stays retired"
    );
    assert_eq!(stats.vms_by_root, HashMap::from([(RootId(21), 1)]));
    assert_eq!(
        stats.vms_created, 4,
        "root 21's VM stayed warm through the late query"
    );
}

#[test]
fn a_worker_keeps_a_bounded_number_of_warm_vms() {
    let sandbox = one_worker();
    let roots = VMS_PER_WORKER_MAX as u64 + 2;
    for round in 0..3 {
        for root in 0..roots {
            let id = round * roots + root + 1;
            let result = sandbox
                .run(
                    Counters::with_model(1, RootId(100 + root), RootId(1)),
                    "getCounter(args.id).id",
                    json!({"id": id}),
                )
                .unwrap()
                .result;
            assert_eq!(result, json!(id));
            let warm: usize = sandbox.stats().vms_by_root.values().sum();
            assert!(warm <= VMS_PER_WORKER_MAX, "{warm} warm VMs on one worker");
        }
    }
    let stats = sandbox.stats();
    assert_eq!(
        stats.vms_by_root.values().sum::<usize>(),
        VMS_PER_WORKER_MAX
    );
    // Cycling through more function sets than the bound evicts the least recently used.
    assert_eq!(
        stats.vms_retired,
        stats.vms_created - VMS_PER_WORKER_MAX as u64
    );
    assert_eq!(stats.vms_discarded, 0);

    // Which one goes is the least recently used: the last four roots are warm; using the
    // oldest of them makes the next oldest go when a new root comes.
    let query = |root: u64| {
        sandbox
            .run(
                Counters::with_model(1, RootId(100 + root), RootId(1)),
                "getCounter(args.id).id",
                json!({"id": 1}),
            )
            .unwrap();
        sandbox.stats().vms_created
    };
    let oldest = roots - VMS_PER_WORKER_MAX as u64;
    let created = stats.vms_created;
    assert_eq!(query(oldest), created, "warm: no VM made");
    assert_eq!(query(99), created + 1, "a new root");
    assert_eq!(query(oldest), created + 1, "used lately, so kept");
    assert_eq!(
        query(oldest + 1),
        created + 2,
        "the least recently used went"
    );
}

#[test]
fn a_late_query_of_an_old_model_evicts_no_warm_vm() {
    let sandbox = one_worker();
    let query = |root: u64, model: u64| {
        sandbox
            .run(
                Counters::with_model(1, RootId(root), RootId(model)),
                "getCounter(args.id).id",
                json!({"id": 1}),
            )
            .unwrap();
        sandbox.stats().vms_created
    };
    query(100, 1);
    // The current model fills the worker's bound.
    for root in 0..VMS_PER_WORKER_MAX as u64 {
        query(200 + root, 2);
    }
    let created = sandbox.stats().vms_created;
    // A late query of model 1 runs in a VM of its own, dropped after it...
    assert_eq!(query(100, 1), created + 1);
    // ...and every VM of model 2 is still warm.
    for root in 0..VMS_PER_WORKER_MAX as u64 {
        assert_eq!(query(200 + root, 2), created + 1, "root {}", 200 + root);
    }
    assert_eq!(sandbox.stats().current_model, Some(RootId(2)));
}

#[test]
fn a_full_queue_answers_overloaded() {
    let sandbox = Arc::new(
        Sandbox::new(SandboxOptions {
            pool_size: 1,
            queue_max: 0,
            time_limit: Duration::from_secs(5),
            ..options()
        })
        .unwrap(),
    );
    let busy = {
        let sandbox = Arc::clone(&sandbox);
        // With no queue, a worker still getting ready (starting, or making its next
        // context) refuses too: retry until the loop is running.
        thread::spawn(move || {
            loop {
                match run(&sandbox, "while (true) {}") {
                    Err(SandboxError::Overloaded) => thread::sleep(Duration::from_millis(1)),
                    other => return other,
                }
            }
        })
    };
    eventually("the worker is busy", || sandbox.stats().running == 1);
    assert_eq!(run(&sandbox, "1").unwrap_err(), SandboxError::Overloaded);
    assert!(matches!(
        busy.join().unwrap(),
        Err(SandboxError::TimeLimit { .. })
    ));
    // Once the worker has made a new VM and waits again, queries are taken.
    eventually("a query is taken", || run(&sandbox, "1").is_ok());
}

#[test]
fn microtasks_of_a_failed_query_run_within_it() {
    let sandbox = one_worker();
    let library = Counters::new(1, RootId(1));
    let code = "Promise.resolve().then(() => getCounter(1)); throw new Error('failed')";
    let error = sandbox.run(library.clone(), code, json!({})).unwrap_err();
    assert_eq!(script_message(error), "Error: failed");
    assert_eq!(library.calls(), ["getCounter({\"id\":1})"]);
    let other = Counters::new(1, RootId(1));
    assert_eq!(
        sandbox.run(other.clone(), "2", json!({})).unwrap().result,
        json!(2)
    );
    assert!(other.calls().is_empty());
}

#[test]
fn a_library_function_named_like_a_global_is_refused() {
    struct Shadowing;
    impl Library for Shadowing {
        fn functions(&self) -> Vec<FunctionSpec> {
            vec![FunctionSpec {
                name: "JSON".into(),
                params: vec![],
            }]
        }
        fn call(&self, _: &str, _: Map<String, Value>, _: &Budget) -> Result<Value, LibraryError> {
            Ok(Value::Null)
        }
        fn position(&self) -> u64 {
            0
        }
        fn root(&self) -> RootId {
            RootId(9)
        }
    }
    let sandbox = sandbox();
    let error = sandbox
        .run(Arc::new(Shadowing), "1", json!({}))
        .unwrap_err();
    assert!(
        matches!(error, SandboxError::Library { status: 500, .. }),
        "{error:?}"
    );
}

#[test]
fn invalid_options_are_refused() {
    let error = Sandbox::new(SandboxOptions {
        queue_max: 1 << 20,
        ..SandboxOptions::default()
    })
    .unwrap_err();
    assert!(error.to_string().contains("queue_max"), "{error}");
}

#[test]
fn a_library_that_panics_listing_its_functions_leaves_the_worker_running() {
    struct Broken;
    impl Library for Broken {
        fn functions(&self) -> Vec<FunctionSpec> {
            panic!("no functions today")
        }
        fn call(&self, _: &str, _: Map<String, Value>, _: &Budget) -> Result<Value, LibraryError> {
            Ok(Value::Null)
        }
        fn position(&self) -> u64 {
            0
        }
        fn root(&self) -> RootId {
            RootId(5)
        }
    }
    let sandbox = one_worker();
    let error = sandbox.run(Arc::new(Broken), "1", json!({})).unwrap_err();
    assert!(matches!(error, SandboxError::Internal { .. }), "{error:?}");
    assert_eq!(run(&sandbox, "getCounter(6).id").unwrap(), json!(6));
    assert_eq!(sandbox.stats().running, 0);
}

#[test]
fn submit_answers_through_the_callback_and_refuses_at_once() {
    let sandbox = sandbox();
    let (tx, rx) = std::sync::mpsc::channel();
    let library = Counters::new(99, RootId(1));
    for n in 0..8 {
        let tx = tx.clone();
        sandbox
            .submit(
                library.clone(),
                "args.n * 2",
                json!({"n": n}),
                move |result| {
                    tx.send((n, result)).unwrap();
                },
            )
            .unwrap();
    }
    drop(tx);
    let mut answers: Vec<_> = rx.iter().collect();
    answers.sort_by_key(|(n, _)| *n);
    assert_eq!(answers.len(), 8, "every callback is called once");
    for (n, result) in answers {
        let outcome = result.unwrap();
        assert_eq!(outcome.result, json!(n * 2));
        assert_eq!(outcome.position, 99);
    }
    // Refused before queueing: the callback is dropped uncalled.
    let too_large = "1;".repeat(options().code_bytes_max);
    let called = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = Arc::clone(&called);
    let refused = sandbox.submit(library, &too_large, json!({}), move |_| {
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    assert!(matches!(refused, Err(SandboxError::CodeTooLarge { .. })));
    assert!(!called.load(std::sync::atomic::Ordering::SeqCst));
}

/// One worker with the smallest memory limit, so that answers at its budget stay small,
/// and a time limit that writing them into the VM never reaches in a loaded test build.
fn small_memory() -> Sandbox {
    Sandbox::new(SandboxOptions {
        memory_bytes_max: 4 << 20,
        time_limit: Duration::from_secs(60),
        ..one_worker().options().clone()
    })
    .unwrap()
}

#[test]
fn a_library_answer_over_the_budget_fails_the_query_with_the_memory_limit() {
    let sandbox = small_memory();
    let budget = run(&sandbox, "budget()").unwrap().as_u64().unwrap();
    let limit_bytes = sandbox.options().memory_bytes_max;
    // Half of what a fresh context leaves of the limit.
    assert!(
        (limit_bytes as u64 / 2 - (1 << 20)..limit_bytes as u64 / 2).contains(&budget),
        "{budget}"
    );
    let too_large = SandboxError::LibraryAnswerTooLarge {
        function: "blob".into(),
        budget_bytes: budget as usize,
        limit_bytes,
    };
    for (code, bytes) in [
        // Built whole and refused as it is written into the VM.
        ("blob(args.bytes).length", budget + 1),
        // Built a piece at a time and given up at the budget: a gigabyte never exists.
        ("blob(args.bytes, true).length", budget + 1),
        ("blob(args.bytes, true).length", 1 << 30),
        // Catching the error does not save the query, nor does calling on.
        (
            "try { blob(args.bytes, true) } catch (e) { return getCounter(1) }",
            budget + 1,
        ),
        (
            "try { blob(args.bytes) } catch (e) { while (true) {} }",
            budget + 1,
        ),
    ] {
        assert_eq!(
            run_with(&sandbox, code, json!({"bytes": bytes})).unwrap_err(),
            too_large,
            "{code} {bytes}"
        );
    }
    // The VM did not run out of memory: it stays, and the next query runs in it.
    assert_eq!(run(&sandbox, "getCounter(4).id").unwrap(), json!(4));
    let stats = sandbox.stats();
    assert_eq!((stats.vms_created, stats.vms_discarded), (1, 0));
    assert!(
        too_large.to_string().contains("memory limit"),
        "{too_large}"
    );
}

#[test]
fn a_library_answer_just_under_the_budget_is_answered() {
    let sandbox = small_memory();
    let budget = run(&sandbox, "budget()").unwrap().as_u64().unwrap();
    for charged in [false, true] {
        let code = "blob(args.bytes, args.charged).length";
        let args = json!({"bytes": budget, "charged": charged});
        assert_eq!(
            run_with(&sandbox, code, args).unwrap(),
            json!(budget - 2),
            "charged: {charged}"
        );
    }
    assert_eq!(sandbox.stats().vms_discarded, 0);
}

#[test]
fn a_library_answer_built_past_the_deadline_hits_the_time_limit() {
    let sandbox = one_worker();
    let started = Instant::now();
    assert_eq!(
        run(&sandbox, "try { slowly() } catch (e) { return 'caught' }").unwrap_err(),
        SandboxError::TimeLimit { limit: TIME_LIMIT }
    );
    // Stopped at the deadline, not whenever the library would have finished (never).
    assert!(started.elapsed() < TIME_LIMIT * 10);
    assert_eq!(run(&sandbox, "getCounter(5).id").unwrap(), json!(5));
}
