//! The events counters record. Each carries its counter's id.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A counter was created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CounterCreated {
    /// The counter.
    pub counter_id: String,
    /// What it counts.
    pub title: String,
    /// Who owns it.
    pub owner: String,
    /// Its first value.
    pub start: u64,
}

/// An amount was added to a counter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Added {
    /// The counter.
    pub counter_id: String,
    /// The addition's id, derived from the command's id (`Envelope::derive_id(0)`), so a
    /// command decided again after a crash records the same id.
    pub addition_id: Uuid,
    /// How much.
    pub amount: u64,
    /// Why, if the command said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// An amount left a counter for another (recorded with [`TransferredIn`] on the other).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferredOut {
    /// The counter the amount left.
    pub counter_id: String,
    /// The counter it went to.
    pub to: String,
    /// How much.
    pub amount: u64,
}

/// An amount came to a counter from another (recorded with [`TransferredOut`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferredIn {
    /// The counter the amount came to.
    pub counter_id: String,
    /// The counter it left.
    pub from: String,
    /// How much.
    pub amount: u64,
}

/// A counter was closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CounterClosed {
    /// The counter.
    pub counter_id: String,
    /// Why, if the command said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A closed counter was reopened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CounterReopened {
    /// The counter.
    pub counter_id: String,
}

writ_domain::event_set! {
    /// Every event the counters domain records; the variant's name is the event type.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum CounterEvent {
        /// See [`CounterCreated`].
        CounterCreated(CounterCreated),
        /// See [`Added`].
        Added(Added),
        /// See [`TransferredOut`].
        TransferredOut(TransferredOut),
        /// See [`TransferredIn`].
        TransferredIn(TransferredIn),
        /// See [`CounterClosed`].
        CounterClosed(CounterClosed),
        /// See [`CounterReopened`].
        CounterReopened(CounterReopened),
    }
}

impl CounterEvent {
    /// The counter the event is about (the stream it is recorded on).
    pub fn counter_id(&self) -> &str {
        match self {
            Self::CounterCreated(e) => &e.counter_id,
            Self::Added(e) => &e.counter_id,
            Self::TransferredOut(e) => &e.counter_id,
            Self::TransferredIn(e) => &e.counter_id,
            Self::CounterClosed(e) => &e.counter_id,
            Self::CounterReopened(e) => &e.counter_id,
        }
    }
}
