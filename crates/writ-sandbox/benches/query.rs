//! Latency of sandboxed queries on warm VMs: a small query (one library call) and a medium
//! one (filter and map over ~100 search results), from one and from two client threads.
//!
//! `cargo bench -p writ-sandbox --bench query` prints, per case, the medians over 5 runs of
//! each run's p50, p99 and throughput.

use std::{
    collections::HashMap,
    sync::Arc,
    thread,
    time::{Duration, Instant},
};

use serde_json::{Map, Value, json};
use writ_sandbox::{Budget, FunctionSpec, Library, LibraryError, RootId, Sandbox, SandboxOptions};

const RUNS: usize = 5;
const QUERIES_PER_THREAD: usize = 2_000;
const WARM_UP: usize = 500;

/// 300 counters; a third of them open, so a search by status finds 100.
struct Counters {
    by_id: HashMap<u64, Value>,
    all: Vec<Value>,
}

impl Counters {
    fn new() -> Self {
        let all: Vec<Value> = (1..=300u64)
            .map(|id| {
                let status = ["open", "pending", "closed"][(id % 3) as usize];
                json!({
                    "id": id,
                    "title": format!("Counter number {id} of the office"),
                    "status": status,
                    "value": id % 5,
                    "owner": format!("owner-{}", id % 7),
                    "tags": ["hardware", "office"],
                })
            })
            .collect();
        let by_id = all
            .iter()
            .map(|counter| (counter["id"].as_u64().unwrap(), counter.clone()))
            .collect();
        Self { by_id, all }
    }
}

impl Library for Counters {
    fn functions(&self) -> Vec<FunctionSpec> {
        vec![
            FunctionSpec {
                name: "getCounter".into(),
                params: vec!["id".into()],
            },
            FunctionSpec {
                name: "listCounters".into(),
                params: vec!["query".into()],
            },
        ]
    }

    fn call(
        &self,
        name: &str,
        args: Map<String, Value>,
        _: &Budget,
    ) -> Result<Value, LibraryError> {
        let not_found = || LibraryError {
            status: 404,
            message: "not found".into(),
        };
        match name {
            "getCounter" => args
                .get("id")
                .and_then(Value::as_u64)
                .and_then(|id| self.by_id.get(&id))
                .cloned()
                .ok_or_else(not_found),
            "listCounters" => {
                let status = args.get("status").and_then(Value::as_str);
                Ok(Value::Array(
                    self.all
                        .iter()
                        .filter(|counter| status.is_none_or(|status| counter["status"] == status))
                        .cloned()
                        .collect(),
                ))
            }
            _ => Err(not_found()),
        }
    }

    fn position(&self) -> u64 {
        42
    }

    fn root(&self) -> RootId {
        RootId(1)
    }
}

struct Case {
    name: &'static str,
    code: &'static str,
    check: fn(&Value),
}

const CASES: [Case; 2] = [
    Case {
        name: "small",
        code: "return getCounter(args.id).title",
        check: |result| assert!(result.as_str().unwrap().starts_with("Counter number")),
    },
    Case {
        name: "medium",
        code: "return listCounters({status: 'open'})\
               .filter(t => t.value >= 2)\
               .map(t => ({id: t.id, title: t.title.toUpperCase(), owner: t.owner}))",
        check: |result| assert_eq!(result.as_array().unwrap().len(), 60),
    },
];

/// Latencies of `QUERIES_PER_THREAD` queries from each of `threads` threads, and the wall
/// time of the run.
fn run(
    sandbox: &Arc<Sandbox>,
    library: &Arc<Counters>,
    case: &Case,
    threads: usize,
) -> (Vec<Duration>, Duration) {
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|thread| {
            let sandbox = Arc::clone(sandbox);
            let library: Arc<dyn Library> = library.clone();
            let (code, check) = (case.code, case.check);
            thread::spawn(move || {
                let mut latencies = Vec::with_capacity(QUERIES_PER_THREAD);
                for i in 0..QUERIES_PER_THREAD {
                    let id = (i * 7 + thread * 13) % 300 + 1;
                    let start = Instant::now();
                    let outcome = sandbox
                        .run(Arc::clone(&library), code, json!({"id": id}))
                        .unwrap();
                    latencies.push(start.elapsed());
                    check(&outcome.result);
                }
                latencies
            })
        })
        .collect();
    let latencies = handles
        .into_iter()
        .flat_map(|handle| handle.join().unwrap())
        .collect();
    (latencies, start.elapsed())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let options = SandboxOptions {
        queue_max: 1_024,
        ..SandboxOptions::default()
    };
    let pool_size = options.pool_size;
    let sandbox = Arc::new(Sandbox::new(options).unwrap());
    let library = Arc::new(Counters::new());
    println!(
        "writ-sandbox query latency: pool of {pool_size} VMs, {QUERIES_PER_THREAD} queries per \
         thread per run, medians of {RUNS} runs"
    );
    println!(
        "{:<8} {:>7} {:>10} {:>10} {:>12}",
        "query", "threads", "p50 µs", "p99 µs", "queries/s"
    );
    for case in &CASES {
        for threads in [1, 2] {
            for i in 0..WARM_UP {
                let outcome = sandbox
                    .run(library.clone(), case.code, json!({"id": i % 300 + 1}))
                    .unwrap();
                (case.check)(&outcome.result);
            }
            let (mut p50s, mut p99s, mut rates) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..RUNS {
                let (mut latencies, wall) = run(&sandbox, &library, case, threads);
                latencies.sort();
                p50s.push(percentile(&latencies, 0.50).as_secs_f64() * 1e6);
                p99s.push(percentile(&latencies, 0.99).as_secs_f64() * 1e6);
                rates.push(latencies.len() as f64 / wall.as_secs_f64());
            }
            println!(
                "{:<8} {:>7} {:>10.0} {:>10.0} {:>12.0}",
                case.name,
                threads,
                median(p50s),
                median(p99s),
                median(rates)
            );
        }
    }
    let stats = sandbox.stats();
    assert_eq!(stats.vms_discarded, 0);
    println!("VMs made: {}", stats.vms_created);
}
