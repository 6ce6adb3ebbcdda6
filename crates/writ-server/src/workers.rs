//! HTTP worker threads of their own (`ServerOptions::http_threads`, `--http-threads N`):
//! one tokio runtime of one worker thread each, a connection served on one of them from
//! its accept to its close. Without them (the default) the connections share the workers
//! of the runtime `serve` runs on.
//!
//! A runtime of several workers shares its tasks among them: a task woken while it runs
//! (hyper's connection wakes its own task as it hands a request's body to the handler)
//! is put back in the queue as a yield, and the runtime wakes an idle worker to look for
//! work. For a lone client on a small machine, each request paid for waking the other
//! worker (a futex or an `eventfd` write, and an interrupt to a sleeping core) and for
//! that worker's wake-up: about one per request.
//!
//! Here each connection's task stays on the worker it was given, and a runtime of one
//! worker has no other to wake: a task woken while it runs is simply polled again. A wake
//! from another thread (the syncer answering a command) wakes its worker only when it
//! sleeps. The costs: a busy worker's connections cannot move to an idle one (a new
//! connection goes to the worker with the fewest open); and a few busy clients' commands
//! were synced fewer at a time than on a shared runtime (README, "Worker threads,
//! measured").

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use metrics::{Gauge, gauge};
use tokio::runtime::{Handle, Runtime};

use crate::telemetry::WORKER_CONNECTIONS_OPEN;

/// The worker runtimes, and how many connections each serves now.
#[derive(Debug)]
pub(crate) struct Workers {
    runtimes: Vec<Runtime>,
    open: Arc<[AtomicUsize]>,
    /// `writ_http_worker_connections_open`, by worker.
    gauges: Vec<Gauge>,
}

impl Workers {
    /// Starts `threads` workers (at least one), each a runtime of one thread named
    /// `writ-http`.
    pub(crate) fn start(threads: usize) -> io::Result<Self> {
        let threads = threads.max(1);
        let runtimes = (0..threads)
            .map(|_| {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("writ-http")
                    .enable_all()
                    .build()
            })
            .collect::<io::Result<Vec<_>>>()?;
        let open = (0..threads).map(|_| AtomicUsize::new(0)).collect();
        let gauges = (0..threads)
            .map(|i| {
                let gauge = gauge!(WORKER_CONNECTIONS_OPEN, "worker" => i.to_string());
                gauge.increment(0.0); // shown from the start, at 0
                gauge
            })
            .collect();
        Ok(Self {
            runtimes,
            open,
            gauges,
        })
    }

    /// The number of workers.
    pub(crate) fn len(&self) -> usize {
        self.runtimes.len()
    }

    /// The worker with the fewest open connections (the first of those tied), and the
    /// place the new connection holds there until the returned guard drops.
    pub(crate) fn pick(&self) -> (&Handle, Placed) {
        let index = self
            .open
            .iter()
            .enumerate()
            .min_by_key(|(_, open)| open.load(Ordering::Relaxed))
            .map_or(0, |(i, _)| i);
        self.open[index].fetch_add(1, Ordering::Relaxed);
        let gauge = self.gauges[index].clone();
        gauge.increment(1.0);
        (
            self.runtimes[index].handle(),
            Placed {
                open: Arc::clone(&self.open),
                index,
                gauge,
            },
        )
    }
}

impl Drop for Workers {
    /// Stops the workers without waiting for their tasks, which are dropped (the
    /// connections are closed or given up on by then): the runtimes are shut down in the
    /// background, since dropping a runtime waits for its threads, which an async caller
    /// may not do.
    fn drop(&mut self) {
        for runtime in self.runtimes.drain(..) {
            runtime.shutdown_background();
        }
    }
}

/// A connection's place on its worker, given back when it drops.
#[derive(Debug)]
pub(crate) struct Placed {
    open: Arc<[AtomicUsize]>,
    index: usize,
    gauge: Gauge,
}

impl Drop for Placed {
    fn drop(&mut self) {
        self.open[self.index].fetch_sub(1, Ordering::Relaxed);
        self.gauge.decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_connection_goes_to_the_worker_with_the_fewest_open() {
        let workers = Workers::start(3).expect("runtimes");
        assert_eq!(workers.len(), 3);
        let names = |w: &Workers| -> Vec<usize> {
            w.open.iter().map(|o| o.load(Ordering::Relaxed)).collect()
        };
        let (_, a) = workers.pick();
        let (_, b) = workers.pick();
        let (_, c) = workers.pick();
        assert_eq!(names(&workers), vec![1, 1, 1]);
        assert_eq!((a.index, b.index, c.index), (0, 1, 2));
        drop(b);
        assert_eq!(names(&workers), vec![1, 0, 1]);
        let (_, d) = workers.pick();
        assert_eq!(d.index, 1, "the worker whose connection closed");
        let (_, e) = workers.pick();
        assert_eq!(e.index, 0);
        assert_eq!(names(&workers), vec![2, 1, 1]);
        drop((a, c, d, e));
        assert_eq!(names(&workers), vec![0, 0, 0]);
        drop(workers);
    }

    #[tokio::test]
    async fn workers_dropped_in_an_async_caller_stop_without_blocking_it() {
        // As when a `serve` future with workers of their own is dropped.
        let workers = Workers::start(2).expect("runtimes");
        let (handle, placed) = workers.pick();
        let (mut tx, rx) = tokio::sync::oneshot::channel::<()>();
        handle.spawn(async move {
            let _placed = placed;
            let _ = rx.await; // never sent: the task ends only with its runtime
        });
        drop(workers); // a runtime dropped the blocking way would panic here
        tokio::time::timeout(std::time::Duration::from_secs(30), tx.closed())
            .await
            .expect("the worker's task is dropped with its runtime");
    }

    #[test]
    fn each_worker_runs_its_tasks_on_one_thread_of_its_own() {
        let workers = Workers::start(2).expect("runtimes");
        let thread_of = |handle: &Handle| {
            let (tx, rx) = std::sync::mpsc::channel();
            handle.spawn(async move {
                let first = std::thread::current().id();
                tokio::task::yield_now().await;
                let name = std::thread::current().name().map(str::to_owned);
                tx.send((first, std::thread::current().id(), name))
                    .expect("send");
            });
            rx.recv().expect("the task ran")
        };
        let (h0, p0) = workers.pick();
        let (h1, p1) = workers.pick();
        let (a0, b0, name) = thread_of(h0);
        let (a1, b1, _) = thread_of(h1);
        assert_eq!(a0, b0, "a task stays on its worker's thread");
        assert_eq!(a1, b1);
        assert_ne!(a0, a1, "two workers, two threads");
        assert_eq!(name.as_deref(), Some("writ-http"));
        drop((p0, p1));
        drop(workers);
    }
}
