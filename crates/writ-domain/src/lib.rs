//! Writ's domain kit: how a domain declares its commands, events, rules and processes.
//!
//! A domain is a [`Domain`]: a *decider* in the functional sense. It names the stream a
//! command targets, rebuilds a stream's state from its events ([`Domain::evolve`]), and
//! decides from the states it reads and a command which events to record, on its target
//! stream or on several streams at once, or refuses with a stable code
//! ([`Domain::decide`], through a [`Decision`]). Handlers are deterministic: the only
//! facts they may use beyond state and payload come from the command's [`Envelope`] (its
//! id, the time it was recorded, its sequence in the command log, its correlation), never
//! from the clock or a random source. That is what lets Writ run a logged command again,
//! through new code, and get an outcome that depends only on the code.
//!
//! Commands are declared in a [`CommandCatalog`]: every accepted `(name, version)` pair with
//! its payload type (whose JSON Schema is derived from it) and the upcast that turns it into
//! the domain's newest command type. Events are an [`EventSet`], usually generated with
//! [`event_set!`]: each event type has a schema version (1 until it changes), and an
//! event recorded in an older version is upcast to the current shape wherever it is read.
//! A [`Process`] reacts to events by issuing commands, now or at a time.
//!
//! The [`model`] module is the seam the engine sees domains and processes through, with
//! their types erased, so that domains built at run time sit beside compiled ones. This
//! crate does no I/O. The [`testing`] module holds the given/when/then kit.
//!
//! ```
//! use std::borrow::Cow;
//! use serde::{Deserialize, Serialize};
//! use writ_domain::{CommandCatalog, Decision, Domain, Refusal, Rejection, event_set};
//!
//! #[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
//! #[serde(deny_unknown_fields)]
//! struct Deposit { account: String, amount: u64 }
//!
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
//! struct Deposited { amount: u64 }
//!
//! event_set! {
//!     #[derive(Debug, Clone, PartialEq)]
//!     enum BankEvent { Deposited(Deposited) }
//! }
//!
//! struct Bank;
//! impl Domain for Bank {
//!     const NAME: &'static str = "bank";
//!     const STREAM_PREFIXES: &'static [&'static str] = &["account-"];
//!     type Command = Deposit;
//!     type Event = BankEvent;
//!     type State = u64;
//!     fn commands() -> CommandCatalog<Deposit> {
//!         CommandCatalog::new().command("Deposit", 1, |d: Deposit| d)
//!     }
//!     fn stream(command: &Deposit) -> Cow<'_, str> {
//!         Cow::Owned(format!("account-{}", command.account))
//!     }
//!     fn evolve(balance: &mut u64, event: &BankEvent) {
//!         let BankEvent::Deposited(d) = event;
//!         *balance += d.amount;
//!     }
//!     fn decide(decision: &mut Decision<'_, Self>, c: &Deposit) -> Result<(), Refusal> {
//!         if c.amount == 0 {
//!             return Err(Rejection::new("amount_zero", "deposit something").into());
//!         }
//!         decision.record(BankEvent::Deposited(Deposited { amount: c.amount }));
//!         Ok(())
//!     }
//! }
//!
//! writ_domain::testing::given::<Bank>([])
//!     .when(Deposit { account: "a".into(), amount: 0 })
//!     .then_rejected("amount_zero");
//! writ_domain::testing::given::<Bank>([])
//!     .when(Deposit { account: "a".into(), amount: 5 })
//!     .then([BankEvent::Deposited(Deposited { amount: 5 })]);
//! ```

mod catalog;
mod decider;
mod envelope;
mod event;
pub mod model;
mod process;
mod recorded;
pub mod testing;

pub use catalog::{CommandCatalog, CommandError, CommandInfo, DecodedCommand, Violation};
pub use decider::{
    Decision, Domain, Failure, Refusal, Rejection, Streams, WRONG_EXPECTED_VERSION, owns_stream,
};
pub use envelope::{Envelope, derive_id};
pub use event::{EventDecodeError, EventSet};
pub use process::{EventView, Issued, Process, Reaction, Reactions, TimerOp, react_to};
pub use recorded::RecordedEvent;

/// Re-exported for [`event_set!`]; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::event::upcast_from;
    pub use serde_json;
}
