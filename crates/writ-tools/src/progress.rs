//! Progress of a long local job (`writ backup`, `writ verify`) on stderr: a bar when stderr
//! is a terminal, otherwise a plain line every few seconds, so that a log of a run in a
//! script shows it is alive without filling with redraws.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar, ProgressStyle};

/// How often the plain line is printed.
const PLAIN_EVERY: Duration = Duration::from_secs(2);

/// Bytes done out of bytes to do; see the module documentation.
#[derive(Debug)]
pub(crate) struct Progress {
    label: &'static str,
    shown: Shown,
    total: u64,
    done: u64,
}

#[derive(Debug)]
enum Shown {
    Bar(ProgressBar),
    Plain { last: Instant },
    Hidden,
}

impl Progress {
    /// A progress of `total` bytes; `show` false draws nothing (a caller that is itself
    /// a step of a job with its own progress).
    pub(crate) fn new(label: &'static str, total: u64, show: bool) -> Self {
        let shown = if !show {
            Shown::Hidden
        } else if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total).with_style(
                ProgressStyle::with_template(
                    "{msg} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
                )
                .expect("a valid template"),
            );
            bar.set_message(label);
            Shown::Bar(bar)
        } else {
            Shown::Plain {
                last: Instant::now(),
            }
        };
        Self {
            label,
            shown,
            total,
            done: 0,
        }
    }

    /// The total grew (a segment appeared while it was being copied).
    pub(crate) fn set_total(&mut self, total: u64) {
        self.total = total;
        if let Shown::Bar(bar) = &self.shown {
            bar.set_length(total);
        }
    }

    /// `bytes` more are done.
    pub(crate) fn add(&mut self, bytes: u64) {
        self.set(self.done + bytes);
    }

    /// `done` bytes are done in all.
    pub(crate) fn set(&mut self, done: u64) {
        self.done = done;
        match &mut self.shown {
            Shown::Bar(bar) => bar.set_position(done),
            Shown::Plain { last } if last.elapsed() >= PLAIN_EVERY => {
                *last = Instant::now();
                let percent = if self.total == 0 {
                    100.0
                } else {
                    100.0 * done as f64 / self.total as f64
                };
                eprintln!(
                    "{}: {} of {} ({percent:.0}%)",
                    self.label,
                    HumanBytes(done),
                    HumanBytes(self.total)
                );
            }
            Shown::Plain { .. } | Shown::Hidden => {}
        }
    }

    /// Clears the bar.
    pub(crate) fn finish(&self) {
        if let Shown::Bar(bar) = &self.shown {
            bar.finish_and_clear();
        }
    }
}
