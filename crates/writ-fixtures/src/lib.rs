//! A small, neutral example domain for the documentation and tests of Writ's core crates
//! (`writ-engine`, `writ-query`, `writ-sandbox`, `writ-server`): counters. Not published;
//! the core crates take it as a dev-dependency only, so they know no domain of their own.
//!
//! A counter is created (`CreateCounter`, versions 1 and 2: version 1 is upcast with a
//! start of 0), added to (`Add`), closed (`CloseCounter`) and reopened (`ReopenCounter`);
//! `Transfer` moves an amount from one counter to another, a decision that reads and
//! writes two streams. Each counter lives on its own stream, `counter-{counterId}`, and
//! records [`CounterEvent`]s. A command that decodes but breaks a rule is rejected with one
//! of the stable codes in [`codes`]; [`Counters`] gives the order in which rules are
//! checked. Ids are plain strings: an empty one names no stream of the domain, and the
//! engine fails such a command.
//!
//! The [`read`] module is the domain's read model: the `counters` projection (versions 1
//! and 2) and the named queries `getCounter`, `listCounters` and `counterStats` in query
//! API versions 1 and 2.
//!
//! The [`people`] module is a second, smaller domain in two builds, before and after its
//! event changed shape: what the tests of event schema versions and upcasts run.
//!
//! The [`tally`] module is a third, with a process, in two builds whose one handler
//! changed: what the tests of `writ replay` run.
//!
//! ```
//! use writ_domain::testing::{given, given_streams};
//! use writ_domain::Domain;
//! use writ_fixtures::{Added, CounterCreated, Counters, TransferredIn, TransferredOut};
//!
//! // A version 1 payload as a client sends it; it starts at 0.
//! let create = Counters::commands()
//!     .decode("CreateCounter", Some(1), br#"{"counterId":"c-1","title":"Visitors","owner":"ann"}"#)
//!     .unwrap()
//!     .command;
//! assert_eq!(Counters::stream(&create), "counter-c-1");
//! let created = |id: &str| CounterCreated {
//!     counter_id: id.into(),
//!     title: "Visitors".into(),
//!     owner: "ann".into(),
//!     start: 0,
//! };
//! given::<Counters>([]).when(create.clone()).then([created("c-1").into()]);
//! given::<Counters>([created("c-1").into()]).when(create).then_rejected("counter_exists");
//!
//! // A transfer decides over two streams and records on both.
//! let added = Added { counter_id: "c-1".into(), addition_id: Default::default(), amount: 5, note: None };
//! given_streams::<Counters>([
//!     ("counter-c-1", vec![created("c-1").into(), added.into()]),
//!     ("counter-c-2", vec![created("c-2").into()]),
//! ])
//! .when_json("Transfer", None, serde_json::json!({"counterId": "c-1", "to": "c-2", "amount": 3}))
//! .then_on([
//!     ("counter-c-1", TransferredOut { counter_id: "c-1".into(), to: "c-2".into(), amount: 3 }.into()),
//!     ("counter-c-2", TransferredIn { counter_id: "c-2".into(), from: "c-1".into(), amount: 3 }.into()),
//! ]);
//! ```

mod commands;
mod domain;
mod events;
pub mod people;
pub mod read;
pub mod tally;

pub use commands::{
    Add, CloseCounter, CounterCommand, CreateCounter, CreateCounterV1, ReopenCounter, Transfer,
};
pub use domain::{CounterState, CounterStatus, Counters, stream_name};
pub use events::{
    Added, CounterClosed, CounterCreated, CounterEvent, CounterReopened, TransferredIn,
    TransferredOut,
};

/// The stable rejection codes of the counters domain.
pub mod codes {
    /// `CreateCounter` on a stream that already holds a counter.
    pub const COUNTER_EXISTS: &str = "counter_exists";
    /// `CreateCounter` whose title is empty or only whitespace.
    pub const TITLE_REQUIRED: &str = "title_required";
    /// Any command but `CreateCounter` on a stream without a counter (for `Transfer`,
    /// either counter).
    pub const COUNTER_NOT_FOUND: &str = "counter_not_found";
    /// `Add`, `Transfer` (either counter) or `CloseCounter` on a closed counter.
    pub const COUNTER_CLOSED: &str = "counter_closed";
    /// `ReopenCounter` on an open counter.
    pub const COUNTER_OPEN: &str = "counter_open";
    /// `Transfer` of more than the source counter holds; the rejection's `value` detail
    /// is what it holds.
    pub const INSUFFICIENT: &str = "insufficient";
    /// `Add` or `Transfer` that would take a counter beyond `u64::MAX`.
    pub const OVERFLOW: &str = "overflow";
}

macro_rules! impl_from {
    ($set:ident: $($variant:ident),+) => {
        $(
            impl From<$variant> for $set {
                fn from(value: $variant) -> Self {
                    Self::$variant(value)
                }
            }
        )+
    };
}

impl_from!(CounterCommand: CreateCounter, Add, Transfer, CloseCounter, ReopenCounter);
impl_from!(
    CounterEvent: CounterCreated,
    Added,
    TransferredOut,
    TransferredIn,
    CounterClosed,
    CounterReopened
);
