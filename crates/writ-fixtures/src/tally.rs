//! A domain whose one handler changed, in two builds: what the tests of `writ replay` run,
//! the before build on a data directory, then a replay of it through the after build.
//!
//! Tallies live on streams `tally-{tallyId}`. `OpenTally` records `TallyOpened` (rejected
//! `tally_exists` on an open tally); `Count {tallyId, amount}` records `Counted {tallyId,
//! amount, total}`, the total after it (rejected `tally_not_found` on a tally never
//! opened). The `milestone` process reacts to a `Counted` that takes a total from below
//! [`MILESTONE`] to it or beyond by issuing `Celebrate {tallyId}`, a command only processes
//! issue, which records `Celebrated {tallyId, total}`.
//!
//! The one change: in the [`after`] build `Count` of more than [`COUNT_MAX`] is rejected
//! with `amount_too_large`. The events, the commands and the process are the same in both.
//!
//! ```
//! use writ_domain::testing::given;
//! use writ_fixtures::tally::{after, before, Count, Counted, TallyOpened};
//!
//! let opened = TallyOpened { tally_id: "t".into() };
//! let count = Count { tally_id: "t".into(), amount: 500 };
//! let counted = Counted { tally_id: "t".into(), amount: 500, total: 500 };
//! given::<before::Tally>([opened.clone().into()]).when(count.clone().into()).then([counted.into()]);
//! given::<after::Tally>([opened.into()]).when(count.into()).then_rejected("amount_too_large");
//! ```

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use writ_domain::{
    CommandCatalog, Decision, Domain, Process, Reaction, Refusal, Rejection, event_set,
};

/// The domain's name in both builds.
pub const NAME: &str = "tally";
/// Its streams' prefix.
pub const STREAM_PREFIX: &str = "tally-";
/// The total whose crossing the `milestone` process celebrates.
pub const MILESTONE: u64 = 1000;
/// The largest `Count` the after build accepts.
pub const COUNT_MAX: u64 = 100;

/// `OpenTally` of a tally already open.
pub const TALLY_EXISTS: &str = "tally_exists";
/// Any command but `OpenTally` on a tally never opened.
pub const TALLY_NOT_FOUND: &str = "tally_not_found";
/// `Count` of more than [`COUNT_MAX`], in the after build.
pub const AMOUNT_TOO_LARGE: &str = "amount_too_large";

/// The stream of tally `tally_id`.
pub fn stream_name(tally_id: &str) -> String {
    format!("{STREAM_PREFIX}{tally_id}")
}

/// Opens a tally at 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpenTally {
    /// The tally.
    pub tally_id: String,
}

/// Adds an amount to a tally.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Count {
    /// The tally.
    pub tally_id: String,
    /// How much.
    pub amount: u64,
}

/// Celebrates a tally's milestone (issued by the `milestone` process only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Celebrate {
    /// The tally.
    pub tally_id: String,
}

/// The commands of both builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TallyCommand {
    /// See [`OpenTally`].
    OpenTally(OpenTally),
    /// See [`Count`].
    Count(Count),
    /// See [`Celebrate`].
    Celebrate(Celebrate),
}

impl From<OpenTally> for TallyCommand {
    fn from(c: OpenTally) -> Self {
        TallyCommand::OpenTally(c)
    }
}

impl From<Count> for TallyCommand {
    fn from(c: Count) -> Self {
        TallyCommand::Count(c)
    }
}

/// A tally was opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TallyOpened {
    /// The tally.
    pub tally_id: String,
}

/// An amount was counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counted {
    /// The tally.
    pub tally_id: String,
    /// How much.
    pub amount: u64,
    /// The tally's total after it.
    pub total: u64,
}

/// A tally's milestone was celebrated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Celebrated {
    /// The tally.
    pub tally_id: String,
    /// Its total then.
    pub total: u64,
}

event_set! {
    /// The events of both builds.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum TallyEvent {
        /// See [`TallyOpened`].
        TallyOpened(TallyOpened),
        /// See [`Counted`].
        Counted(Counted),
        /// See [`Celebrated`].
        Celebrated(Celebrated),
    }
}

impl From<TallyOpened> for TallyEvent {
    fn from(e: TallyOpened) -> Self {
        TallyEvent::TallyOpened(e)
    }
}

impl From<Counted> for TallyEvent {
    fn from(e: Counted) -> Self {
        TallyEvent::Counted(e)
    }
}

/// A tally: whether it is open, and its total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TallyState {
    /// Opened.
    pub open: bool,
    /// The total.
    pub total: u64,
}

fn commands() -> CommandCatalog<TallyCommand> {
    CommandCatalog::new()
        .command("OpenTally", 1, TallyCommand::OpenTally)
        .command("Count", 1, TallyCommand::Count)
        .internal("Celebrate", 1, TallyCommand::Celebrate)
}

fn target(command: &TallyCommand) -> Cow<'_, str> {
    let id = match command {
        TallyCommand::OpenTally(c) => &c.tally_id,
        TallyCommand::Count(c) => &c.tally_id,
        TallyCommand::Celebrate(c) => &c.tally_id,
    };
    Cow::Owned(stream_name(id))
}

fn evolve(state: &mut TallyState, event: &TallyEvent) {
    match event {
        TallyEvent::TallyOpened(_) => state.open = true,
        TallyEvent::Counted(e) => state.total = e.total,
        TallyEvent::Celebrated(_) => {}
    }
}

/// Both builds' rules, `count_max` the largest `Count` accepted.
fn decide(
    decision: &mut Decision<
        '_,
        impl Domain<Command = TallyCommand, Event = TallyEvent, State = TallyState>,
    >,
    command: &TallyCommand,
    count_max: u64,
) -> Result<(), Refusal> {
    let state = *decision.state();
    match command {
        TallyCommand::OpenTally(c) => {
            if state.open {
                return Err(Rejection::new(TALLY_EXISTS, "the tally is open").into());
            }
            decision.record(TallyEvent::TallyOpened(TallyOpened {
                tally_id: c.tally_id.clone(),
            }));
        }
        TallyCommand::Count(c) => {
            if !state.open {
                return Err(Rejection::new(TALLY_NOT_FOUND, "no such tally").into());
            }
            if c.amount > count_max {
                return Err(Rejection::new(
                    AMOUNT_TOO_LARGE,
                    format!("at most {count_max} at once"),
                )
                .into());
            }
            decision.record(TallyEvent::Counted(Counted {
                tally_id: c.tally_id.clone(),
                amount: c.amount,
                total: state.total.saturating_add(c.amount),
            }));
        }
        TallyCommand::Celebrate(c) => decision.record(TallyEvent::Celebrated(Celebrated {
            tally_id: c.tally_id.clone(),
            total: state.total,
        })),
    }
    Ok(())
}

/// The domain of a build whose `Count` records at most `LIMIT`: the two builds differ in
/// this constant alone.
#[derive(Debug)]
pub struct Build<const LIMIT: u64>;

impl<const LIMIT: u64> Domain for Build<LIMIT> {
    const NAME: &'static str = NAME;
    const STREAM_PREFIXES: &'static [&'static str] = &[STREAM_PREFIX];
    type Command = TallyCommand;
    type Event = TallyEvent;
    type State = TallyState;

    fn commands() -> CommandCatalog<TallyCommand> {
        commands()
    }

    fn stream(command: &TallyCommand) -> Cow<'_, str> {
        target(command)
    }

    fn evolve(state: &mut TallyState, event: &TallyEvent) {
        evolve(state, event)
    }

    fn decide(decision: &mut Decision<'_, Self>, c: &TallyCommand) -> Result<(), Refusal> {
        decide(decision, c, LIMIT)
    }
}

/// The build before `Count` was bounded.
pub mod before {
    /// The before build's domain: any amount counts.
    pub type Tally = super::Build<{ u64::MAX }>;
}

/// The build after `Count` was bounded to [`COUNT_MAX`].
pub mod after {
    /// The after build's domain: `Count` of more than [`COUNT_MAX`](super::COUNT_MAX) is
    /// rejected.
    pub type Tally = super::Build<{ super::COUNT_MAX }>;
}

/// Issues `Celebrate` when a `Counted` reaches [`MILESTONE`] from below (both builds).
#[derive(Debug)]
pub struct Milestone;

impl Process for Milestone {
    const NAME: &'static str = "milestone";
    type Event = TallyEvent;

    fn react(event: &TallyEvent, reaction: &mut Reaction<'_>) {
        if let TallyEvent::Counted(c) = event
            && c.total >= MILESTONE
            && c.total - c.amount < MILESTONE
        {
            reaction.issue(
                "Celebrate",
                &Celebrate {
                    tally_id: c.tally_id.clone(),
                },
            );
        }
    }
}
