//! Writ's domain kit: how a domain declares its commands, events and rules.
//!
//! A domain is a [`Domain`]: a *decider* in the functional sense. It names the stream a
//! command addresses, rebuilds a stream's state from its events ([`Domain::evolve`]), and
//! decides from that state and a command which events to record, or refuses with a stable
//! code ([`Domain::decide`]). Handlers are deterministic: the only facts they may use beyond
//! state and payload come from the command's [`Envelope`] (its id, the time it was recorded,
//! its sequence in the command log), never from the clock or a random source. That is what
//! lets Writ re-run a logged command after a crash and get the same outcome.
//!
//! Commands are declared in a [`CommandCatalog`]: every accepted `(name, version)` pair with
//! its payload type and the upcast that turns it into the domain's newest command type.
//! Events are an [`EventSet`], usually generated with [`event_set!`].
//!
//! This crate does no I/O. The [`testing`] module holds the given/when/then kit.
//!
//! ```
//! use std::borrow::Cow;
//! use serde::{Deserialize, Serialize};
//! use writ_domain::{CommandCatalog, Domain, Envelope, Refusal, Rejection, event_set};
//!
//! #[derive(Debug, Clone, Serialize, Deserialize)]
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
//!     fn decide(_: &u64, c: &Deposit, _: &Envelope) -> Result<Vec<BankEvent>, Refusal> {
//!         if c.amount == 0 {
//!             return Err(Rejection::new("amount_zero", "deposit something").into());
//!         }
//!         Ok(vec![BankEvent::Deposited(Deposited { amount: c.amount })])
//!     }
//! }
//!
//! writ_domain::testing::given::<Bank>([])
//!     .when(Deposit { account: "a".into(), amount: 0 })
//!     .then_rejected("amount_zero");
//! ```

mod catalog;
mod decider;
mod envelope;
mod event;
pub mod testing;

pub use catalog::{CommandCatalog, CommandError, CommandInfo, DecodedCommand};
pub use decider::{Domain, Failure, Refusal, Rejection};
pub use envelope::Envelope;
pub use event::{EventDecodeError, EventSet};

/// Re-exported for [`event_set!`]; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use serde_json;
}
