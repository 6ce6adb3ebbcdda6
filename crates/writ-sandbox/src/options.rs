//! Limits of the sandbox, each with a default and a bound.

use std::time::Duration;

/// The sandbox's limits. Every field has a default and bounds checked by
/// [`validate`](SandboxOptions::validate) when the sandbox starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxOptions {
    /// Wall time one query may run on its VM, from its start (not from when it was queued)
    /// to its result. Enforced by QuickJS's interrupt handler, which checks the deadline about
    /// every 10,000 interpreter steps and inside regular expressions. A library function
    /// cannot be interrupted: it gets the deadline in its [`Budget`](crate::Budget) to stop
    /// at, and the sandbox checks it while it writes the answer into the VM; the query stops
    /// when the function returns at the latest. Default 500 ms, between 1 ms and 60 s.
    pub time_limit: Duration,
    /// Memory one VM (QuickJS runtime) may allocate, including its context and the query's
    /// values. Library answers count against it on the host too: one answer may take at
    /// most half of what a fresh context leaves of it, in bytes of JSON (see
    /// [`Budget`](crate::Budget) and
    /// [`SandboxError::LibraryAnswerTooLarge`](crate::SandboxError::LibraryAnswerTooLarge)),
    /// so a query costs the host at most about this much beside its VM. Default 64 MiB,
    /// between 4 MiB and 4 GiB.
    pub memory_bytes_max: usize,
    /// Native stack QuickJS may use for JavaScript calls; deeper recursion throws a
    /// `RangeError`. Each worker thread gets this plus 8 MiB for library functions.
    /// Default 1 MiB, between 64 KiB and 64 MiB.
    pub stack_bytes_max: usize,
    /// Largest query code (UTF-8 bytes). Default 64 KiB, between 1 byte and 16 MiB.
    pub code_bytes_max: usize,
    /// Largest result as JSON text (bytes). Default 1 MiB, between 1 byte and 256 MiB.
    pub result_bytes_max: usize,
    /// Worker threads: the number of queries that run at once. Each keeps up to
    /// [`VMS_PER_WORKER_MAX`](crate::VMS_PER_WORKER_MAX) warm VMs (one per function set of
    /// the current model; idle, a VM holds only a fresh context), so VMs across roots are
    /// at most `pool_size × VMS_PER_WORKER_MAX`, plus one per worker while it answers a
    /// late query of a superseded model, and at most `pool_size` run a query, each within
    /// `memory_bytes_max`. Default the number of cores, between 1 and 256.
    pub pool_size: usize,
    /// Queries waiting for a worker. When full, [`Sandbox::run`](crate::Sandbox::run)
    /// answers [`SandboxError::Overloaded`](crate::SandboxError::Overloaded) at once.
    /// Default 64, between 0 and 65,536.
    pub queue_max: usize,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        Self {
            time_limit: Duration::from_millis(500),
            memory_bytes_max: 64 << 20,
            stack_bytes_max: 1 << 20,
            code_bytes_max: 64 << 10,
            result_bytes_max: 1 << 20,
            pool_size: std::thread::available_parallelism().map_or(1, |n| n.get()),
            queue_max: 64,
        }
    }
}

impl SandboxOptions {
    /// Checks every field against its bounds; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        check(
            "time_limit",
            self.time_limit,
            Duration::from_millis(1),
            Duration::from_secs(60),
        )?;
        let four_gib = usize::try_from(4u64 << 30).unwrap_or(usize::MAX);
        check("memory_bytes_max", self.memory_bytes_max, 4 << 20, four_gib)?;
        check("stack_bytes_max", self.stack_bytes_max, 64 << 10, 64 << 20)?;
        check("code_bytes_max", self.code_bytes_max, 1, 16 << 20)?;
        check("result_bytes_max", self.result_bytes_max, 1, 256 << 20)?;
        check("pool_size", self.pool_size, 1, 256)?;
        check("queue_max", self.queue_max, 0, 65_536)?;
        Ok(())
    }
}

/// `Err` naming `field` when `value` is not within `min..=max` (the options' and the
/// script limits' checks).
pub(crate) fn check<T: PartialOrd + std::fmt::Debug>(
    field: &str,
    value: T,
    min: T,
    max: T,
) -> Result<(), String> {
    if value < min || value > max {
        return Err(format!(
            "{field} is {value:?}, it must be between {min:?} and {max:?}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        SandboxOptions::default().validate().unwrap();
    }

    #[test]
    fn out_of_bounds_fields_are_named() {
        let options = SandboxOptions {
            pool_size: 0,
            ..SandboxOptions::default()
        };
        assert!(options.validate().unwrap_err().starts_with("pool_size"));
        let options = SandboxOptions {
            time_limit: Duration::ZERO,
            ..SandboxOptions::default()
        };
        assert!(options.validate().unwrap_err().starts_with("time_limit"));
    }
}
