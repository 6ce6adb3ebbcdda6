//! A small domain with processes and timers for the engine's tests: `relay`.
//!
//! - `Ping {relay, hops, pad}` records `Pinged` on `relay-{relay}`; the `relay` process
//!   reacts to a `Pinged` with `hops > 0` by issuing `Ping {relay: relay + "+", hops - 1}`,
//!   so `hops = 2` makes a chain of three commands.
//! - `Remind {relay, atMs}` records `Reminded`; the `alarm` process schedules `Ping
//!   {relay: relay + "!", hops: 0}` for `atMs` under the key `relay`. `Forget {relay}`
//!   records `Forgotten`, and `alarm` cancels that key.
//! - `Spread {relay, also}` records `Pinged` on its own stream and on each of `also`'s:
//!   a decision over several streams.
//! - `Boom {relay}` records `Boomed`, whose `evolve` panics.
//! - `Inspect {relay, other}` succeeds with no events when `other`'s stream has events,
//!   and is rejected `empty` otherwise (with `other` and `pad` bytes of padding in the
//!   details): a decision that reads another stream.
#![allow(dead_code)]

use std::borrow::Cow;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use writ_domain::model::{domain, process};
use writ_domain::{
    CommandCatalog, Decision, Domain, Process, Reaction, Refusal, Rejection, event_set,
};
use writ_engine::{CommandStatus, Engine, EngineOptions, Pending, Registry, Submission, Submitted};

/// The defaults with small log segments and records (a test writes little, and opens
/// fast).
pub fn small_options() -> EngineOptions {
    EngineOptions {
        log: writ_log::LogOptions {
            segment_bytes: 8 << 20,
            record_bytes_max: 2 << 20,
            ..writ_log::LogOptions::default()
        },
        ..EngineOptions::default()
    }
}

/// Every record of the log in `dir` of `storage`, in order, as bytes: the log opened
/// with `options` (recovered as an engine would, a torn tail cut).
pub fn log_records(
    storage: &writ_log::storage::SimStorage,
    dir: &str,
    options: writ_log::LogOptions,
) -> Vec<Vec<u8>> {
    let (log, _) = writ_log::Log::open(
        std::sync::Arc::new(storage.clone()),
        std::path::Path::new(dir),
        options,
    )
    .expect("log opens");
    let mut out = Vec::new();
    let mut iter = log.reader().iter_from(0);
    while let Some(item) = iter.next_record() {
        out.push(item.expect("record").1.to_vec());
    }
    out
}

/// Log options with 64 KiB segments and no preallocation: a few hundred commands fill
/// several segments, for tests of what happens at and across segment boundaries.
pub fn tiny_segments() -> writ_log::LogOptions {
    writ_log::LogOptions {
        segment_bytes: 64 * 1024,
        record_bytes_max: 60 * 1024,
        preallocate: false,
        ..writ_log::LogOptions::default()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ping {
    pub relay: String,
    pub hops: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pad: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Remind {
    pub relay: String,
    pub at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Only {
    pub relay: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Spread {
    pub relay: String,
    pub also: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Inspect {
    pub relay: String,
    pub other: String,
    /// Bytes of padding in the rejection's details.
    #[serde(default)]
    pub pad: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RelayCommand {
    Ping(Ping),
    Remind(Remind),
    Forget(Only),
    Spread(Spread),
    Boom(Only),
    Inspect(Inspect),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pinged {
    pub relay: String,
    pub hops: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pad: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reminded {
    pub relay: String,
    pub at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Forgotten {
    pub relay: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Boomed {
    pub relay: String,
}

event_set! {
    #[derive(Debug, Clone, PartialEq)]
    pub enum RelayEvent {
        Pinged(Pinged),
        Reminded(Reminded),
        Forgotten(Forgotten),
        Boomed(Boomed),
    }
}

/// How many events a relay stream holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RelayState {
    pub events: u64,
}

pub struct Relay;

pub fn stream(relay: &str) -> String {
    format!("relay-{relay}")
}

impl Domain for Relay {
    const NAME: &'static str = "relay";
    const STREAM_PREFIXES: &'static [&'static str] = &["relay-"];
    type Command = RelayCommand;
    type Event = RelayEvent;
    type State = RelayState;

    fn commands() -> CommandCatalog<RelayCommand> {
        CommandCatalog::new()
            .command("Ping", 1, RelayCommand::Ping)
            .command("Remind", 1, RelayCommand::Remind)
            .command("Forget", 1, RelayCommand::Forget)
            .command("Spread", 1, RelayCommand::Spread)
            .command("Boom", 1, RelayCommand::Boom)
            .command("Inspect", 1, RelayCommand::Inspect)
            .internal("Echo", 1, RelayCommand::Ping)
    }

    fn stream(command: &RelayCommand) -> Cow<'_, str> {
        let relay = match command {
            RelayCommand::Ping(c) => &c.relay,
            RelayCommand::Remind(c) => &c.relay,
            RelayCommand::Forget(c) | RelayCommand::Boom(c) => &c.relay,
            RelayCommand::Spread(c) => &c.relay,
            RelayCommand::Inspect(c) => &c.relay,
        };
        Cow::Owned(stream(relay))
    }

    fn evolve(state: &mut RelayState, event: &RelayEvent) {
        if let RelayEvent::Boomed(b) = event {
            panic!("evolve cannot take Boomed on {}", b.relay);
        }
        state.events += 1;
    }

    fn decide(decision: &mut Decision<'_, Self>, command: &RelayCommand) -> Result<(), Refusal> {
        match command {
            RelayCommand::Ping(c) => decision.record(RelayEvent::Pinged(Pinged {
                relay: c.relay.clone(),
                hops: c.hops,
                pad: c.pad.clone(),
            })),
            RelayCommand::Remind(c) => decision.record(RelayEvent::Reminded(Reminded {
                relay: c.relay.clone(),
                at_ms: c.at_ms,
            })),
            RelayCommand::Forget(c) => decision.record(RelayEvent::Forgotten(Forgotten {
                relay: c.relay.clone(),
            })),
            RelayCommand::Boom(c) => decision.record(RelayEvent::Boomed(Boomed {
                relay: c.relay.clone(),
            })),
            RelayCommand::Spread(c) => {
                let pinged = |relay: &str| {
                    RelayEvent::Pinged(Pinged {
                        relay: relay.to_owned(),
                        hops: 0,
                        pad: String::new(),
                    })
                };
                decision.record(pinged(&c.relay));
                for other in &c.also {
                    decision.record_on(stream(other), pinged(other));
                }
            }
            RelayCommand::Inspect(c) => {
                if decision.state_of(&stream(&c.other))?.events == 0 {
                    return Err(Rejection::new("empty", "the other relay holds nothing")
                        .with_detail("other", c.other.as_str())
                        .with_detail("pad", "x".repeat(c.pad))
                        .into());
                }
            }
        }
        Ok(())
    }
}

/// Passes a ping on while it has hops left.
pub struct Relaying;

impl Process for Relaying {
    const NAME: &'static str = "relay";
    type Event = RelayEvent;

    fn react(event: &RelayEvent, reaction: &mut Reaction<'_>) {
        if let RelayEvent::Pinged(p) = event
            && p.hops > 0
        {
            reaction.issue(
                "Ping",
                &Ping {
                    relay: format!("{}+", p.relay),
                    hops: p.hops - 1,
                    pad: p.pad.clone(),
                },
            );
        }
    }
}

/// Pings `relay!` when a reminder is due; forgets it on `Forgotten`.
pub struct Alarm;

impl Process for Alarm {
    const NAME: &'static str = "alarm";
    type Event = RelayEvent;

    fn react(event: &RelayEvent, reaction: &mut Reaction<'_>) {
        match event {
            RelayEvent::Reminded(r) => reaction.schedule(
                &r.relay,
                r.at_ms,
                "Ping",
                &Ping {
                    relay: format!("{}!", r.relay),
                    hops: 0,
                    pad: String::new(),
                },
            ),
            RelayEvent::Forgotten(f) => reaction.cancel(&f.relay),
            _ => {}
        }
    }
}

/// The relay domain with both processes.
pub fn relay() -> Registry {
    Registry::builder()
        .domain(domain::<Relay>())
        .process(process::<Relaying>())
        .process(process::<Alarm>())
        .build()
        .expect("relay registers")
}

/// The relay domain beside counters.
pub fn relay_and_counters() -> Registry {
    Registry::builder()
        .domain(domain::<Relay>())
        .domain(domain::<writ_fixtures::Counters>())
        .process(process::<Relaying>())
        .process(process::<Alarm>())
        .build()
        .expect("relay and counters register")
}

pub fn ping(relay: &str, hops: u32) -> Vec<u8> {
    serde_json::to_vec(&Ping {
        relay: relay.to_owned(),
        hops,
        pad: String::new(),
    })
    .unwrap()
}

pub fn padded_ping(relay: &str, hops: u32, pad: usize) -> Vec<u8> {
    serde_json::to_vec(&Ping {
        relay: relay.to_owned(),
        hops,
        pad: "x".repeat(pad),
    })
    .unwrap()
}

pub fn remind(relay: &str, at_ms: u64) -> Vec<u8> {
    serde_json::to_vec(&Remind {
        relay: relay.to_owned(),
        at_ms,
    })
    .unwrap()
}

pub fn only(relay: &str) -> Vec<u8> {
    serde_json::to_vec(&Only {
        relay: relay.to_owned(),
    })
    .unwrap()
}

/// Now, in ms since the epoch (the engine's default clock).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Waits (at most 20 s) for what the engine does on its own.
pub fn wait_until(mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// [`Engine::submit_now`] of the latest version of `command`.
pub fn submit_now(engine: &Engine, id: u128, command: &str, payload: &[u8]) -> Pending {
    let submission = Submission {
        id: uuid::Uuid::from_u128(id),
        command,
        version: None,
        payload,
        expected_version: None,
    };
    match engine.submit_now(&submission).expect("submit_now") {
        Submitted::New(pending) => pending,
        Submitted::Duplicate => panic!("duplicate"),
    }
}

/// [`submit_now`] once the engine is idle (the writer thread has let go of its lock after
/// its last batch), so that the command is decided on this thread.
pub fn submit_now_when_idle(engine: &Engine, id: u128, command: &str, payload: &[u8]) -> Pending {
    wait_until(|| engine.is_idle());
    submit_now(engine, id, command, payload)
}

/// Submits `command` (at `version`, or its latest) with a JSON payload and waits for its
/// outcome.
pub fn run_json(
    engine: &Engine,
    id: u128,
    command: &str,
    version: Option<u32>,
    payload: serde_json::Value,
) -> CommandStatus {
    let payload = payload.to_string();
    let submission = Submission {
        id: uuid::Uuid::from_u128(id),
        command,
        version,
        payload: payload.as_bytes(),
        expected_version: None,
    };
    match engine.submit_command(&submission).expect("submitted") {
        Submitted::New(pending) => pending.blocking_outcome().expect("an outcome"),
        Submitted::Duplicate => panic!("command {id} is a duplicate"),
    }
}

/// The byte range in which two versions of a file differ.
pub fn changed_range(before: &[u8], after: &[u8]) -> std::ops::Range<u64> {
    let len = before.len().max(after.len());
    let at = |v: &[u8], i: usize| v.get(i).copied().unwrap_or(0);
    let start = (0..len)
        .find(|&i| at(before, i) != at(after, i))
        .expect("the files differ");
    let end = (0..len)
        .rev()
        .find(|&i| at(before, i) != at(after, i))
        .unwrap()
        + 1;
    start as u64..end as u64
}

/// The replay tests' `tally` domain with its process, in the build before its `Count`
/// handler changed.
pub fn tally_before() -> Registry {
    Registry::builder()
        .domain(domain::<writ_fixtures::tally::before::Tally>())
        .process(process::<writ_fixtures::tally::Milestone>())
        .build()
        .unwrap()
}

/// The same, in the build after.
pub fn tally_after() -> Registry {
    Registry::builder()
        .domain(domain::<writ_fixtures::tally::after::Tally>())
        .process(process::<writ_fixtures::tally::Milestone>())
        .build()
        .unwrap()
}
