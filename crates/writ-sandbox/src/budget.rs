//! What one library call may cost: the bytes of its answer and the query's deadline.
//!
//! A library function builds its answer on the host, outside the VM whose memory limit
//! QuickJS enforces, so the sandbox hands every call a [`Budget`] taken from the query's
//! limits and holds the answer to it twice: the library charges what it builds as it goes
//! (so that it stops early instead of building a huge value first), and the sandbox
//! measures the answer's JSON exactly as it writes it into the VM. See
//! [`Library::call`](crate::Library::call).

use std::cell::Cell;
use std::time::Instant;

use serde_json::Value;

/// Bytes charged between two readings of the clock: reading it costs about 25 ns, building
/// 16 KiB of JSON some microseconds, so the check costs nothing worth measuring and a
/// deadline is noticed within microseconds of passing.
const CLOCK_STEP_BYTES: usize = 16 << 10;

/// The bound of one library call: at most [`bytes_max`](Budget::bytes_max) bytes of JSON,
/// built before [`deadline`](Budget::deadline).
///
/// The sandbox makes one per call from the query's limits (see
/// [`Library::call`](crate::Library::call)); a library that builds an answer of unbounded
/// size (every entry of a list, every event of a history) [`charge`](Budget::charge)s
/// it as it goes and gives up at the first error. Once exceeded, a budget stays exceeded:
/// every later charge fails too, and the sandbox fails the query whatever the library
/// answers. [`Budget::unlimited`] is for callers without limits (named queries, tests).
///
/// ```
/// use serde_json::json;
/// use writ_sandbox::{Budget, BudgetExceeded};
///
/// let budget = Budget::new(100, None);
/// budget.charge_json(&json!({"title": "short"})).unwrap();
/// let long = json!("x".repeat(200));
/// assert_eq!(budget.charge_json(&long), Err(BudgetExceeded::Bytes { bytes_max: 100 }));
/// assert_eq!(budget.charge(0), Err(BudgetExceeded::Bytes { bytes_max: 100 }), "it stays exceeded");
/// assert!(budget.exceeded().is_some());
/// ```
#[derive(Debug)]
pub struct Budget {
    bytes_max: usize,
    deadline: Option<Instant>,
    spent: Cell<usize>,
    /// `spent` at which the clock is read next.
    clock_at: Cell<usize>,
    exceeded: Cell<Option<BudgetExceeded>>,
}

/// Why a [`Budget`] refused a charge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BudgetExceeded {
    /// The answer is larger than the budget's bytes. The library should stop building and
    /// return an error; the sandbox fails the query with
    /// [`SandboxError::LibraryAnswerTooLarge`](crate::SandboxError::LibraryAnswerTooLarge).
    #[error("the answer is larger than the {bytes_max} bytes of JSON a library answer may take")]
    Bytes {
        /// The budget's bytes.
        bytes_max: usize,
    },
    /// The query's deadline passed while the answer was being built. The library should
    /// stop and return an error; the sandbox fails the query with
    /// [`SandboxError::TimeLimit`](crate::SandboxError::TimeLimit).
    #[error("the query's time limit passed while the answer was being built")]
    Time,
}

impl Budget {
    /// A budget of `bytes_max` bytes of JSON, to be spent before `deadline` (none: no
    /// deadline).
    pub fn new(bytes_max: usize, deadline: Option<Instant>) -> Self {
        Self {
            bytes_max,
            deadline,
            spent: Cell::new(0),
            clock_at: Cell::new(0),
            exceeded: Cell::new(None),
        }
    }

    /// No bound: every charge succeeds.
    pub fn unlimited() -> Self {
        Self::new(usize::MAX, None)
    }

    /// The most bytes of JSON the answer may take.
    pub fn bytes_max(&self) -> usize {
        self.bytes_max
    }

    /// The bytes charged so far.
    pub fn spent(&self) -> usize {
        self.spent.get()
    }

    /// When the query's time runs out, if it has a limit.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Why the budget was exceeded, once it was.
    pub fn exceeded(&self) -> Option<BudgetExceeded> {
        self.exceeded.get()
    }

    /// Charges `bytes` of the answer's JSON; fails once they add up to more than
    /// [`bytes_max`](Budget::bytes_max), or once the deadline has passed (the clock is
    /// read every 16 KiB charged).
    pub fn charge(&self, bytes: usize) -> Result<(), BudgetExceeded> {
        if let Some(exceeded) = self.exceeded.get() {
            return Err(exceeded);
        }
        let spent = self.spent.get().saturating_add(bytes);
        self.spent.set(spent);
        if spent > self.bytes_max {
            return Err(self.exceed(BudgetExceeded::Bytes {
                bytes_max: self.bytes_max,
            }));
        }
        if spent >= self.clock_at.get() {
            self.clock_at.set(spent.saturating_add(CLOCK_STEP_BYTES));
            self.check_time()?;
        }
        Ok(())
    }

    /// Charges the size of `value`'s JSON, estimated without writing it (escapes count as
    /// one byte, a floating-point number as 24), so that a library can charge each part of
    /// its answer (each comment, each page item) as it builds it.
    pub fn charge_json(&self, value: &Value) -> Result<(), BudgetExceeded> {
        self.charge(json_size(value))
    }

    /// Fails if the deadline has passed.
    pub fn check_time(&self) -> Result<(), BudgetExceeded> {
        if let Some(exceeded) = self.exceeded.get() {
            return Err(exceeded);
        }
        if self
            .deadline
            .is_some_and(|deadline| Instant::now() >= deadline)
        {
            return Err(self.exceed(BudgetExceeded::Time));
        }
        Ok(())
    }

    fn exceed(&self, why: BudgetExceeded) -> BudgetExceeded {
        self.exceeded.set(Some(why));
        why
    }
}

/// About the length of `value`'s JSON as `serde_json::to_string` writes it.
fn json_size(value: &Value) -> usize {
    match value {
        Value::Null => 4,
        Value::Bool(true) => 4,
        Value::Bool(false) => 5,
        Value::Number(number) => match (number.as_u64(), number.as_i64()) {
            (Some(n), _) => digits(n),
            (None, Some(n)) => 1 + digits(n.unsigned_abs()),
            _ => 24,
        },
        Value::String(text) => text.len() + 2,
        Value::Array(items) => {
            2 + items.len().saturating_sub(1) + items.iter().map(json_size).sum::<usize>()
        }
        Value::Object(map) => {
            2 + map.len().saturating_sub(1)
                + map
                    .iter()
                    .map(|(key, value)| key.len() + 3 + json_size(value))
                    .sum::<usize>()
        }
    }
}

fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |log| log as usize + 1)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    #[test]
    fn the_estimate_is_the_json_length_without_escapes() {
        for value in [
            json!(null),
            json!(true),
            json!(false),
            json!(0),
            json!(9),
            json!(10),
            json!(u64::MAX),
            json!(-1),
            json!(i64::MIN),
            json!("text"),
            json!([]),
            json!([1, "two", [3]]),
            json!({}),
            json!({"a": 1, "bc": {"d": [null, false]}}),
        ] {
            assert_eq!(json_size(&value), value.to_string().len(), "{value}");
        }
        assert!(json_size(&json!(0.1)) >= json!(0.1).to_string().len());
    }

    #[test]
    fn a_budget_refuses_past_its_bytes_and_stays_refusing() {
        let budget = Budget::new(10, None);
        budget.charge(10).unwrap();
        assert_eq!(
            budget.charge(1),
            Err(BudgetExceeded::Bytes { bytes_max: 10 })
        );
        assert_eq!(budget.check_time(), budget.charge(0));
        assert_eq!(budget.spent(), 11);
        Budget::unlimited().charge(usize::MAX).unwrap();
    }

    #[test]
    fn a_passed_deadline_refuses_the_next_charge() {
        let budget = Budget::new(usize::MAX, Some(Instant::now() - Duration::from_millis(1)));
        assert_eq!(budget.charge(1), Err(BudgetExceeded::Time));
        assert_eq!(budget.exceeded(), Some(BudgetExceeded::Time));
        // The clock is read on the first charge and then every 16 KiB.
        let later = Budget::new(usize::MAX, Some(Instant::now() + Duration::from_secs(3600)));
        for _ in 0..1000 {
            later.charge(100).unwrap();
        }
    }
}
