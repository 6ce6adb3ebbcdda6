//! [`Counters`]: the rules, and [`CounterState`], what they read.

use std::borrow::Cow;

use writ_domain::{CommandCatalog, Decision, Domain, Envelope, Refusal, Rejection};

use crate::codes;
use crate::commands::{
    Add, CloseCounter, CounterCommand, CreateCounter, CreateCounterV1, ReopenCounter, Transfer,
};
use crate::events::{
    Added, CounterClosed, CounterCreated, CounterEvent, CounterReopened, TransferredIn,
    TransferredOut,
};

/// Where a counter is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum CounterStatus {
    /// No counter on this stream yet.
    #[default]
    Absent,
    /// Created or reopened, and not closed since.
    Open,
    /// Closed, and not reopened since.
    Closed,
}

/// What the rules need to know about one counter: its status and its value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterState {
    status: CounterStatus,
    value: u64,
}

impl CounterState {
    /// Where the counter is in its life.
    pub fn status(&self) -> CounterStatus {
        self.status
    }

    /// Whether the stream holds a counter.
    pub fn exists(&self) -> bool {
        self.status != CounterStatus::Absent
    }

    /// The counter's value (0 when there is none).
    pub fn value(&self) -> u64 {
        self.value
    }
}

/// The counters domain. Each counter lives on its own stream, `counter-{counterId}`.
///
/// When several rules apply to a command, the first that fails decides the code: the
/// counter must exist (`counter_not_found`), then be in the right state
/// (`counter_exists`, `counter_closed`, `counter_open`), then the fields must make sense
/// (`title_required`, `insufficient`, `overflow`). `Transfer` checks its source counter,
/// then its destination.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters;

/// The stream counter `id` lives on: `counter-{id}`.
pub fn stream_name(id: &str) -> String {
    format!("counter-{id}")
}

impl Domain for Counters {
    const NAME: &'static str = "counters";
    const STREAM_PREFIXES: &'static [&'static str] = &["counter-"];
    type Command = CounterCommand;
    type Event = CounterEvent;
    type State = CounterState;

    fn commands() -> CommandCatalog<CounterCommand> {
        CommandCatalog::new()
            .command("CreateCounter", 1, |v1: CreateCounterV1| {
                CounterCommand::CreateCounter(v1.into())
            })
            .command("CreateCounter", 2, CounterCommand::CreateCounter)
            .command("Add", 1, CounterCommand::Add)
            .command("Transfer", 1, CounterCommand::Transfer)
            .command("CloseCounter", 1, CounterCommand::CloseCounter)
            .command("ReopenCounter", 1, CounterCommand::ReopenCounter)
    }

    fn stream(command: &CounterCommand) -> Cow<'_, str> {
        Cow::Owned(stream_name(command.counter_id()))
    }

    /// Never panics, even on an event the rules would not have recorded in this state: the
    /// log is the truth.
    fn evolve(state: &mut CounterState, event: &CounterEvent) {
        match event {
            CounterEvent::CounterCreated(e) => {
                *state = CounterState {
                    status: CounterStatus::Open,
                    value: e.start,
                };
            }
            CounterEvent::Added(e) => state.value = state.value.saturating_add(e.amount),
            CounterEvent::TransferredOut(e) => state.value = state.value.saturating_sub(e.amount),
            CounterEvent::TransferredIn(e) => state.value = state.value.saturating_add(e.amount),
            CounterEvent::CounterClosed(_) => state.status = CounterStatus::Closed,
            CounterEvent::CounterReopened(_) => state.status = CounterStatus::Open,
        }
    }

    fn decide(decision: &mut Decision<'_, Self>, command: &CounterCommand) -> Result<(), Refusal> {
        let state = decision.state();
        match command {
            CounterCommand::CreateCounter(c) => decision.record(create(state, c)?),
            CounterCommand::Add(c) => decision.record(add(state, c, decision.envelope())?),
            CounterCommand::Transfer(c) => transfer(decision, c)?,
            CounterCommand::CloseCounter(c) => decision.record(close(state, c)?),
            CounterCommand::ReopenCounter(c) => decision.record(reopen(state, c)?),
        }
        Ok(())
    }
}

fn create(state: &CounterState, c: &CreateCounter) -> Result<CounterEvent, Rejection> {
    if state.exists() {
        return Err(Rejection::new(
            codes::COUNTER_EXISTS,
            format!("counter {} already exists", c.counter_id),
        ));
    }
    if c.title.trim().is_empty() {
        return Err(Rejection::new(
            codes::TITLE_REQUIRED,
            "a counter needs a title that is not only whitespace",
        ));
    }
    Ok(CounterEvent::CounterCreated(CounterCreated {
        counter_id: c.counter_id.clone(),
        title: c.title.clone(),
        owner: c.owner.clone(),
        start: c.start,
    }))
}

/// `Ok` when the counter `id` is open.
fn open(state: &CounterState, id: &str) -> Result<(), Rejection> {
    match state.status {
        CounterStatus::Absent => Err(Rejection::new(
            codes::COUNTER_NOT_FOUND,
            format!("no counter {id}"),
        )),
        CounterStatus::Closed => Err(Rejection::new(
            codes::COUNTER_CLOSED,
            format!("counter {id} is closed"),
        )),
        CounterStatus::Open => Ok(()),
    }
}

/// `value + amount`, or `overflow`.
fn sum(value: u64, amount: u64, id: &str) -> Result<u64, Rejection> {
    value.checked_add(amount).ok_or_else(|| {
        Rejection::new(
            codes::OVERFLOW,
            format!("counter {id} cannot hold {value} + {amount}"),
        )
    })
}

fn add(state: &CounterState, c: &Add, envelope: &Envelope) -> Result<CounterEvent, Rejection> {
    open(state, &c.counter_id)?;
    sum(state.value, c.amount, &c.counter_id)?;
    Ok(CounterEvent::Added(Added {
        counter_id: c.counter_id.clone(),
        addition_id: envelope.derive_id(0),
        amount: c.amount,
        note: c.note.clone(),
    }))
}

/// Reads the destination's stream too, and records on both.
fn transfer(decision: &mut Decision<'_, Counters>, c: &Transfer) -> Result<(), Refusal> {
    let from = decision.state();
    open(from, &c.counter_id)?;
    let to = *decision.state_of(&stream_name(&c.to))?;
    open(&to, &c.to)?;
    if from.value < c.amount {
        return Err(Rejection::new(
            codes::INSUFFICIENT,
            format!(
                "counter {} holds {}, less than {}",
                c.counter_id, from.value, c.amount
            ),
        )
        .with_detail("value", from.value)
        .into());
    }
    if c.to != c.counter_id {
        sum(to.value, c.amount, &c.to)?;
    }
    decision.record(CounterEvent::TransferredOut(TransferredOut {
        counter_id: c.counter_id.clone(),
        to: c.to.clone(),
        amount: c.amount,
    }));
    decision.record_on(
        stream_name(&c.to),
        CounterEvent::TransferredIn(TransferredIn {
            counter_id: c.to.clone(),
            from: c.counter_id.clone(),
            amount: c.amount,
        }),
    );
    Ok(())
}

fn close(state: &CounterState, c: &CloseCounter) -> Result<CounterEvent, Rejection> {
    open(state, &c.counter_id)?;
    Ok(CounterEvent::CounterClosed(CounterClosed {
        counter_id: c.counter_id.clone(),
        reason: c.reason.clone(),
    }))
}

fn reopen(state: &CounterState, c: &ReopenCounter) -> Result<CounterEvent, Rejection> {
    match state.status {
        CounterStatus::Absent => Err(Rejection::new(
            codes::COUNTER_NOT_FOUND,
            format!("no counter {}", c.counter_id),
        )),
        CounterStatus::Open => Err(Rejection::new(
            codes::COUNTER_OPEN,
            format!("counter {} is open", c.counter_id),
        )),
        CounterStatus::Closed => Ok(CounterEvent::CounterReopened(CounterReopened {
            counter_id: c.counter_id.clone(),
        })),
    }
}
