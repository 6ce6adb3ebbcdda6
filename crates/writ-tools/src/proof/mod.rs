//! `writ proof`: runs the real `writ serve` binary as a child process and proves two
//! promises of the contract from the outside, printing a machine-readable last line and
//! returning an error on any violation (`writ` then exits non-zero).
//!
//! - `writ proof crash`: nothing acknowledged is lost and nothing runs twice, whatever the
//!   moment of a `SIGKILL` ([`CrashArgs`]; `crash.rs` says how).
//! - `writ proof overload`: beyond what it absorbs, the server answers a quick `503` and
//!   still loses nothing it acknowledged ([`OverloadArgs`]; `overload.rs` says how).
//! - `writ proof soak`: at a steady rate below what it absorbs, for as long as asked, the
//!   server refuses nothing and what it holds grows only as documented ([`SoakArgs`];
//!   `soak.rs` says how).
//! - `writ proof slow-clients`: half-open heads and trickled bodies by the thousand cost
//!   the server sockets for seconds, not the others' throughput ([`SlowClientsArgs`];
//!   `slow_clients.rs` says how).

use std::path::{Path, PathBuf};

use clap::Subcommand;
use uuid::Uuid;

mod check;
mod crash;
mod ledger;
mod overload;
mod slow_clients;
mod soak;

pub use crash::CrashArgs;
pub use overload::OverloadArgs;
pub use slow_clients::SlowClientsArgs;
pub use soak::SoakArgs;

/// `writ proof`'s subcommands.
#[derive(Debug, Subcommand)]
pub enum ProofCommand {
    /// Kill the server with SIGKILL at random moments under load, restart it on the same
    /// data directory, and check that every acknowledged command survived and that no
    /// command ran twice.
    Crash(CrashArgs),
    /// Measure what the server absorbs, offer a multiple of it open-loop, and check that
    /// the excess is refused quickly with `503` and that nothing acknowledged is lost.
    Overload(OverloadArgs),
    /// Offer a steady rate (by default 80% of what the server absorbs) for a long time,
    /// and print per interval the answers, latencies, the server's RSS, open files and
    /// dedupe index size; at the end, check a sample of the acknowledged commands.
    Soak(SoakArgs),
    /// Keep thousands of half-open heads and trickled bodies open while `writ bench http`
    /// runs, and check that the server cuts each within its deadline and that the
    /// benchmark's rate holds.
    SlowClients(SlowClientsArgs),
}

/// Runs one proof to its end, printing its figures on stdout (the last line
/// machine-readable) and progress on stderr. An error is a sentence for the user: the proof
/// could not run, or the server broke a promise (the data directory is then kept).
///
/// The server is started as `BINARY serve ...`: `--binary`, or else the current executable,
/// which must then be a `writ` binary.
pub fn run(command: ProofCommand) -> Result<(), String> {
    match command {
        ProofCommand::Crash(args) => crash::run(args),
        ProofCommand::Overload(args) => overload::run(args),
        ProofCommand::Soak(args) => soak::run(args),
        ProofCommand::SlowClients(args) => slow_clients::run(args),
    }
}

/// The binary to run as the server: `--binary`, or this very executable.
fn server_binary(binary: Option<PathBuf>) -> Result<PathBuf, String> {
    match binary {
        Some(path) => Ok(path),
        None => std::env::current_exe()
            .map_err(|e| format!("cannot find this executable (pass --binary): {e}")),
    }
}

/// A small seeded generator (splitmix64): the same seed makes the same choices, so a
/// failing run can be repeated with its printed seed (timing aside).
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`; `n` must not be zero.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `low..=high`.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }

    /// A random (version 4) UUID drawn from this generator.
    fn uuid(&mut self) -> Uuid {
        let bytes = (u128::from(self.next_u64()) << 64 | u128::from(self.next_u64())).to_le_bytes();
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
}

/// A seed when none is given: different on every run.
fn fresh_seed() -> u64 {
    let random = Uuid::new_v4().as_u128();
    (random >> 64) as u64 ^ random as u64
}

/// The value at fraction `p` of sorted `values` (nearest rank), in milliseconds from
/// microseconds; 0 when empty.
fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let i = ((sorted_us.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted_us[i]) / 1000.0
}

/// Microseconds, saturated to fit a `u32` (71 minutes).
fn micros(duration: std::time::Duration) -> u32 {
    duration.as_micros().min(u128::from(u32::MAX)) as u32
}

/// A data directory for the server: the one given (which must not hold anything yet, so
/// that every command in it is the proof's own), or a fresh one under the system's
/// temporary directory.
#[derive(Debug)]
struct DataDir {
    path: PathBuf,
    /// Made by the proof: removed when the proof passes.
    owned: bool,
}

impl DataDir {
    fn new(given: Option<PathBuf>, name: &str) -> Result<Self, String> {
        match given {
            Some(path) => {
                let empty = match std::fs::read_dir(&path) {
                    Ok(mut entries) => entries.next().is_none(),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
                    Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
                };
                if !empty {
                    return Err(format!(
                        "--data-dir {} is not empty: the proof needs a store that holds only its own commands",
                        path.display()
                    ));
                }
                Ok(Self { path, owned: false })
            }
            None => {
                let path = std::env::temp_dir().join(format!(
                    "writ-proof-{name}-{}-{}",
                    std::process::id(),
                    Uuid::new_v4().simple()
                ));
                std::fs::create_dir_all(&path)
                    .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
                Ok(Self { path, owned: true })
            }
        }
    }

    fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the directory if the proof made it. Called only when the proof passed: a
    /// failed proof keeps the evidence.
    fn remove(self) {
        if self.owned {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_repeats_with_its_seed_and_stays_in_range() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
            let x = a.between(3, 9);
            assert!((3..=9).contains(&x));
            b.between(3, 9);
        }
        let id = a.uuid();
        assert_eq!(id.get_version_num(), 4);
        assert_ne!(id, a.uuid());
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let values: Vec<u32> = (1..=100).map(|ms| ms * 1000).collect();
        assert_eq!(percentile_ms(&values, 0.5), 51.0);
        assert_eq!(percentile_ms(&values, 0.99), 99.0);
        assert_eq!(percentile_ms(&values, 1.0), 100.0);
        assert_eq!(percentile_ms(&[], 0.5), 0.0);
    }
}
