//! The read side's threads and their scheduling policy (`RuntimeOptions::batch_scheduling`).
//! One test in a binary of its own: it reads every thread of the process, so no other test
//! may start read models beside it.

#![cfg(target_os = "linux")]

use writ_fixtures::read::CountersProjection;
use writ_query::{ProjectionRuntime, RuntimeOptions};

mod support;

use support::{WAIT, engine, populate};

/// The scheduling policy in a thread's `stat` (its 41st field; 0 is `SCHED_OTHER`, 3
/// `SCHED_BATCH`).
fn policy(stat: &str) -> u32 {
    // The name in parentheses may hold spaces; the fields after it start at the 3rd.
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    after_name.split(' ').nth(41 - 3).unwrap().parse().unwrap()
}

/// The threads of this process named `name`, each as whether it runs under `SCHED_BATCH`.
fn policies(name: &str) -> Vec<bool> {
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let path = task.unwrap().path();
        // A thread may end between the listing and the reads.
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(path.join("comm")),
            std::fs::read_to_string(path.join("stat")),
        ) else {
            continue;
        };
        if comm.trim_end() != name {
            continue;
        }
        found.push(policy(&stat) == 3);
    }
    found.sort();
    found
}

#[test]
fn the_read_sides_threads_run_under_the_batch_policy_unless_told_not_to() {
    let engine = engine();
    let last = populate(&engine, 10);
    let batch = ProjectionRuntime::start(
        engine.clone(),
        CountersProjection::current(),
        RuntimeOptions::default(),
    )
    .unwrap();
    let normal = ProjectionRuntime::start(
        engine.clone(),
        CountersProjection::current(),
        RuntimeOptions {
            batch_scheduling: false,
            ..RuntimeOptions::default()
        },
    )
    .unwrap();
    batch.blocking_wait_for(last, WAIT).unwrap();
    normal.blocking_wait_for(last, WAIT).unwrap();
    // Each thread sets its policy as its first step; both have applied events since.
    for name in ["writ-read", "writ-apply"] {
        assert_eq!(
            policies(name),
            [false, true],
            "{name}: one thread of each runtime, the default's under SCHED_BATCH"
        );
    }
    // The thread that started them keeps the process's policy.
    assert_eq!(
        policy(&std::fs::read_to_string("/proc/thread-self/stat").unwrap()),
        0
    );
    drop((batch, normal));
}
