//! The commands' payloads, one struct per command version, and [`CounterCommand`], the
//! newest form of every command that the rules decide on. Every payload refuses unknown
//! fields.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `CreateCounter` version 1: creates a counter at zero.
///
/// Upcast to [`CreateCounter`] with `start` 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateCounterV1 {
    /// The new counter's id; the command addresses stream `counter-{counterId}`.
    pub counter_id: String,
    /// What it counts; rejected with `title_required` when empty or only whitespace.
    pub title: String,
    /// Who owns it.
    pub owner: String,
}

/// `CreateCounter` version 2 (the newest): creates a counter at `start` (0 when absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateCounter {
    /// The new counter's id; the command addresses stream `counter-{counterId}`.
    pub counter_id: String,
    /// What it counts; rejected with `title_required` when empty or only whitespace.
    pub title: String,
    /// Who owns it.
    pub owner: String,
    /// Its first value; 0 when absent.
    #[serde(default)]
    pub start: u64,
}

impl From<CreateCounterV1> for CreateCounter {
    fn from(v1: CreateCounterV1) -> Self {
        Self {
            counter_id: v1.counter_id,
            title: v1.title,
            owner: v1.owner,
            start: 0,
        }
    }
}

/// `Add` version 1: adds `amount` to an open counter, with an optional note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Add {
    /// The counter.
    pub counter_id: String,
    /// How much to add.
    pub amount: u64,
    /// Why; absent and `null` both mean none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `Transfer` version 1: moves `amount` from counter `counterId` (the target stream) to
/// counter `to`, both open: one decision over two streams.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Transfer {
    /// The counter the amount leaves.
    pub counter_id: String,
    /// The counter the amount goes to.
    pub to: String,
    /// How much.
    pub amount: u64,
}

/// `CloseCounter` version 1: closes an open counter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CloseCounter {
    /// The counter.
    pub counter_id: String,
    /// Why; absent and `null` both mean none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `ReopenCounter` version 1: reopens a closed counter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReopenCounter {
    /// The counter.
    pub counter_id: String,
}

/// The newest form of every counters command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CounterCommand {
    /// `CreateCounter` (version 2; version 1 is upcast).
    CreateCounter(CreateCounter),
    /// `Add` version 1.
    Add(Add),
    /// `Transfer` version 1.
    Transfer(Transfer),
    /// `CloseCounter` version 1.
    CloseCounter(CloseCounter),
    /// `ReopenCounter` version 1.
    ReopenCounter(ReopenCounter),
}

impl CounterCommand {
    /// The counter the command addresses (for `Transfer`, the one the amount leaves).
    pub fn counter_id(&self) -> &str {
        match self {
            Self::CreateCounter(c) => &c.counter_id,
            Self::Add(c) => &c.counter_id,
            Self::Transfer(c) => &c.counter_id,
            Self::CloseCounter(c) => &c.counter_id,
            Self::ReopenCounter(c) => &c.counter_id,
        }
    }
}
