//! Property test: random command sequences (fresh ids and re-sent ones) with random crash
//! points, some leaving a torn command log tail, checked against a reference model.
//!
//! The reference is the domain itself, run purely: the engine's command log order (from
//! each command's sequence number) fed through `Counters::decide`/`evolve` must give exactly
//! the engine's outcomes and its global log, event for event and byte for byte. That checks
//! at once that every acknowledged command survived, that nothing ran twice, that positions
//! and versions have no gaps, and that re-executed commands decided the same.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;
use uuid::Uuid;
use writ_domain::testing::given_streams;
use writ_domain::{Domain, Envelope, EventSet, Refusal};
use writ_engine::{CommandState, Engine, EngineOptions, Pending, Submitted, WaitFor};
use writ_fixtures::Counters;
use writ_log::LogOptions;
use writ_log::storage::SimStorage;

/// The registry of the counters domain alone.
fn counters() -> writ_engine::Registry {
    writ_engine::Registry::builder()
        .domain(writ_domain::model::domain::<Counters>())
        .build()
        .expect("one domain")
}

#[derive(Debug, Clone)]
enum Op {
    Create(u8),
    Add(u8),
    Close(u8),
    Reopen(u8),
    /// A decision over two streams (the same one when both numbers are equal).
    Transfer(u8, u8),
    /// Re-send the n-th command sent so far (modulo), same id and content.
    Resend(usize),
    /// Wait for every command in flight.
    Settle,
    /// Power cut; `torn` keeps half of the command log's unsynced bytes.
    Crash {
        torn: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let counter = 0u8..4;
    prop_oneof![
        3 => counter.clone().prop_map(Op::Create),
        4 => counter.clone().prop_map(Op::Add),
        2 => counter.clone().prop_map(Op::Close),
        2 => counter.clone().prop_map(Op::Reopen),
        1 => (counter.clone(), counter).prop_map(|(from, to)| Op::Transfer(from, to)),
        2 => (0usize..1000).prop_map(Op::Resend),
        1 => Just(Op::Settle),
        2 => any::<bool>().prop_map(|torn| Op::Crash { torn }),
    ]
}

fn options() -> EngineOptions {
    EngineOptions {
        command_bytes_max: 16 * 1024,
        timer_ops_bytes_max: 4 * 1024,
        log: LogOptions {
            segment_bytes: 64 * 1024,
            record_bytes_max: 32 * 1024,
            preallocate: false,
            ..LogOptions::default()
        },
        ..EngineOptions::default()
    }
}

fn open(storage: &SimStorage) -> Engine {
    Engine::open(Arc::new(storage.clone()), counters(), options())
        .expect("every crash leaves a store that opens")
        .0
}

fn command(op: &Op) -> (&'static str, String) {
    let c = |n: &u8| format!("c{n}");
    match op {
        Op::Create(n) => (
            "CreateCounter",
            format!(r#"{{"counterId":"{}","title":"C{n}","owner":"o"}}"#, c(n)),
        ),
        Op::Add(n) => (
            "Add",
            format!(r#"{{"counterId":"{}","amount":2,"note":"n"}}"#, c(n)),
        ),
        Op::Close(n) => (
            "CloseCounter",
            format!(r#"{{"counterId":"{}","reason":"done"}}"#, c(n)),
        ),
        Op::Reopen(n) => ("ReopenCounter", format!(r#"{{"counterId":"{}"}}"#, c(n))),
        Op::Transfer(from, to) => (
            "Transfer",
            format!(
                r#"{{"counterId":"{}","to":"{}","amount":1}}"#,
                c(from),
                c(to)
            ),
        ),
        _ => unreachable!("not a command"),
    }
}

struct Run {
    storage: SimStorage,
    engine: Engine,
    sent: Vec<(Uuid, &'static str, String)>,
    in_flight: Vec<(Uuid, Pending)>,
    /// Acknowledged before a crash or at the end: must survive.
    acknowledged: HashSet<Uuid>,
}

impl Run {
    fn submit(&mut self, id: Uuid, name: &'static str, payload: &str) {
        match self.engine.submit(id, name, None, payload.as_bytes()) {
            Ok(Submitted::New(pending)) => self.in_flight.push((id, pending)),
            Ok(Submitted::Duplicate) => {}
            Err(e) => panic!("submit {name} {id}: {e}"),
        }
    }

    fn settle(&mut self) {
        for (id, mut pending) in self.in_flight.drain(..) {
            pending.blocking_accepted().expect("accepted");
            self.acknowledged.insert(id);
            pending.blocking_outcome().expect("outcome");
        }
    }

    fn crash(&mut self, torn: bool) {
        // What was acknowledged before the power cut must survive it.
        for (id, pending) in &mut self.in_flight {
            if let Some(Ok(_)) = pending.try_accepted() {
                self.acknowledged.insert(*id);
            }
        }
        let mut crashed = self.storage.crash();
        if torn {
            let dir = Path::new("commands");
            if let Some(name) = self
                .storage
                .file_names(dir)
                .into_iter()
                .filter(|n| n.ends_with(".wlog"))
                .max()
            {
                let path = dir.join(name);
                if let Some(range) = self
                    .storage
                    .unsynced_ranges(&path)
                    .unwrap()
                    .first()
                    .cloned()
                {
                    let half = range.start..range.start + (range.end - range.start) / 2;
                    crashed = self.storage.crash_keeping(&path, half).unwrap();
                }
            }
        }
        self.in_flight.clear();
        self.storage = crashed;
        self.engine = open(&self.storage);
    }
}

fn check(ops: Vec<Op>) {
    let storage = SimStorage::new();
    let engine = open(&storage);
    let mut run = Run {
        storage,
        engine,
        sent: Vec::new(),
        in_flight: Vec::new(),
        acknowledged: HashSet::new(),
    };
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Resend(n) if !run.sent.is_empty() => {
                let (id, name, payload) = run.sent[n % run.sent.len()].clone();
                run.submit(id, name, &payload);
            }
            Op::Resend(_) => {}
            Op::Settle => run.settle(),
            Op::Crash { torn } => run.crash(*torn),
            _ => {
                let (name, payload) = command(op);
                let id = Uuid::from_u128(i as u128 + 1);
                run.sent.push((id, name, payload.clone()));
                run.submit(id, name, &payload);
            }
        }
    }
    run.settle();
    let engine = &run.engine;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // Every acknowledged command is known and final.
    for id in &run.acknowledged {
        let status = rt
            .block_on(async {
                tokio::time::timeout(
                    std::time::Duration::from_secs(20),
                    engine.wait(*id, WaitFor::Final),
                )
                .await
            })
            .expect("an acknowledged command reaches a final status")
            .unwrap();
        assert!(
            status.is_some_and(|s| s.state.is_final()),
            "acknowledged {id} lost"
        );
    }

    // The engine's command log order, from the sequence numbers.
    let payloads: HashMap<Uuid, (&str, &str)> = run
        .sent
        .iter()
        .map(|(id, n, p)| (*id, (*n, p.as_str())))
        .collect();
    let mut logged: Vec<_> = payloads
        .keys()
        .filter_map(|id| engine.status(*id).unwrap())
        .collect();
    logged.sort_by_key(|s| s.sequence);
    for (i, status) in logged.iter().enumerate() {
        assert_eq!(
            status.sequence, i as u64,
            "command sequences are gap-free and unique"
        );
    }

    // Replay the reference and compare outcomes and the global log: every stream's events
    // so far, given to the domain's pure decision (which may read and write several).
    let catalog = Counters::commands();
    let mut streams: HashMap<String, Vec<<Counters as Domain>::Event>> = HashMap::new();
    let mut expected_log = Vec::new();
    for status in &logged {
        let (name, payload) = payloads[&status.id];
        let command = catalog
            .decode(name, None, payload.as_bytes())
            .unwrap()
            .command;
        let envelope = Envelope {
            command_id: status.id,
            recorded_at_ms: 0,
            sequence: status.sequence,
            correlation_id: status.id,
        };
        let decided = given_streams::<Counters>(streams.clone())
            .with_envelope(envelope)
            .when(command)
            .result_on();
        match decided {
            Ok(events) => {
                assert_eq!(status.state, CommandState::Succeeded, "{name} {payload}");
                assert_eq!(status.events.len(), events.len());
                for (stream, event) in events {
                    let history = streams.entry(stream.clone()).or_default();
                    history.push(event.clone());
                    let mut data = Vec::new();
                    event.encode_data(&mut data).unwrap();
                    expected_log.push((
                        stream,
                        history.len() as u64,
                        event.event_type().to_owned(),
                        data,
                        status.id,
                    ));
                }
            }
            Err(Refusal::Rejected(r)) => {
                assert!(
                    matches!(&status.state, CommandState::Rejected { code, .. } if *code == r.code),
                    "{name} {payload}: expected {r:?}, got {:?}",
                    status.state
                );
            }
            Err(Refusal::Failed(f)) => panic!("the reference failed: {f:?}"),
        }
    }
    let actual = engine.read_all(1, usize::MAX).unwrap();
    assert_eq!(actual.len(), expected_log.len(), "event count");
    for (i, (event, (stream, version, event_type, data, id))) in
        actual.iter().zip(&expected_log).enumerate()
    {
        assert_eq!(event.position, i as u64 + 1, "positions are gap-free");
        assert_eq!(
            (&event.stream, event.version, &event.event_type),
            (stream, *version, event_type)
        );
        assert_eq!(&event.data, data);
        assert_eq!(event.command_id, *id);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_commands_with_random_crashes_match_the_reference(ops in prop::collection::vec(op(), 1..80)) {
        check(ops);
    }
}
