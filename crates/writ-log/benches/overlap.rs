//! Whether a second `fdatasync` in flight pays on this disk: the question to answer before
//! a log lets a second frame be synced while the first one's sync is still running.
//!
//! The plain loop of `writ_log::reference` (one `pwrite` of 200 bytes and one `fdatasync`
//! at a time, into a file zero-filled beforehand) run by 1, 2 and 4 threads at once on one
//! file, each thread writing at the next offset as a log appends (one shared offset, so the
//! threads' writes lie one after the other and a sync also covers the writes before it).
//! For each, the syncs a second of all threads together and the median time of one write and
//! its sync, as a thread sees it.
//!
//! One thread is the plain loop itself. If two threads made nearly twice the syncs in about
//! the same time each, a second frame in flight would let a command that arrives during a
//! sync start its own at once instead of waiting for the next round; if each sync takes
//! about twice as long with two in flight, the disk serializes them and nothing is won.
//!
//! Each variant runs for about `WRIT_BENCH_SECS` seconds (default 2), 5 runs interleaved,
//! medians. Directory: a fresh one in `WRIT_BENCH_DIR` (the disk to measure), or else under
//! `std::env::temp_dir()`; it is removed afterwards.
//!
//! Run with `cargo bench -p writ-log --bench overlap`.

use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use writ_log::reference::PrezeroedFile;

mod common;

const RECORD_BYTES: usize = 200;
const THREADS: [usize; 3] = [1, 2, 4];
const RUNS: usize = 5;
/// Size of the zero-filled file; writes wrap around at its end.
const FILE_BYTES: u64 = 256 << 20;

/// One run: syncs of all threads, their wall time, and the median write + sync of one.
#[derive(Debug, Clone, Copy)]
struct Run {
    syncs: u64,
    elapsed: Duration,
    median_sync: Duration,
}

/// `threads` threads, each writing the next record and syncing, over and over, for
/// `budget`.
fn run(plain: &PrezeroedFile, next: &AtomicU64, threads: usize, budget: Duration) -> Run {
    let record = [0x5au8; RECORD_BYTES];
    let (file, wrap) = (plain.file(), plain.file_bytes() - RECORD_BYTES as u64);
    let started = Instant::now();
    let mut times: Vec<Duration> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut times = Vec::new();
                    while started.elapsed() < budget {
                        let at = next.fetch_add(RECORD_BYTES as u64, Ordering::Relaxed) % wrap;
                        let began = Instant::now();
                        file.write_all_at(&record, at).expect("pwrite");
                        file.sync_data().expect("fdatasync");
                        times.push(began.elapsed());
                    }
                    times
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().expect("a worker panicked"))
            .collect()
    });
    let elapsed = started.elapsed();
    times.sort();
    Run {
        syncs: times.len() as u64,
        elapsed,
        median_sync: times.get(times.len() / 2).copied().unwrap_or_default(),
    }
}

fn main() {
    let Some(budget) = common::budget("overlap") else {
        return;
    };
    let base = common::run_dir("overlap");
    println!(
        "writ-log overlap benchmark in {} ({RUNS} runs of {} s per variant, interleaved)",
        base.display(),
        budget.as_secs_f64()
    );
    let file = PrezeroedFile::create(&base.join("plain.dat"), FILE_BYTES)
        .expect("create the zero-filled file");
    let next = AtomicU64::new(0);
    let mut rates = vec![Vec::new(); THREADS.len()];
    let mut latencies = vec![Vec::new(); THREADS.len()];
    for _ in 0..RUNS {
        for (i, threads) in THREADS.into_iter().enumerate() {
            let run = run(&file, &next, threads, budget);
            rates[i].push(run.syncs as f64 / run.elapsed.as_secs_f64());
            latencies[i].push(run.median_sync.as_secs_f64() * 1e6);
        }
    }
    let rates: Vec<f64> = rates.into_iter().map(common::median).collect();
    let latencies: Vec<f64> = latencies.into_iter().map(common::median).collect();
    println!();
    println!(
        "{:>7} {:>10} {:>9} | {:>13} {:>9}",
        "threads", "syncs/s", "vs 1", "µs per sync", "vs 1"
    );
    for (i, threads) in THREADS.into_iter().enumerate() {
        let (rate, latency) = (rates[i], latencies[i]);
        println!(
            "{threads:>7} {rate:>10.0} {:>8.2}x | {latency:>13.0} {:>8.2}x",
            rate / rates[0],
            latency / latencies[0]
        );
    }
    drop(file);
    std::fs::remove_dir_all(&base).expect("remove bench dir");
}
