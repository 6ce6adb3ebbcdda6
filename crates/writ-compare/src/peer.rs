//! The peer: the same tickets rules as a cqrs-es [`Aggregate`], its events stored in
//! PostgreSQL by postgres-es's [`PostgresEventRepository`].
//!
//! [`TicketAggregate`] implements `OpenTicket` (version 2, with priority) and `AddComment`
//! with the codes and the order of checks of `writ_tickets::Tickets`: `ticket_exists`, then
//! `title_required`; `ticket_not_found`, then `text_required`. Its events are the very
//! `TicketOpened` and `CommentAdded` structs Writ records.
//!
//! Each run creates a schema of its own (`writ_compare_<random>`) holding the `events` and
//! `snapshots` tables of postgres-es's README, and drops it afterwards, so repeated or
//! concurrent runs never collide. The framework is postgres-es's `postgres_cqrs`: an event
//! store that loads a ticket's events at each command and commits the new ones in one
//! transaction (`BEGIN`, `INSERT`, `COMMIT`); `CqrsFramework::execute` returns after the
//! commit, which with `synchronous_commit = on` waits for the WAL's flush.

pub mod endpoint;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateError, CqrsFramework, DomainEvent};
use postgres_es::{PostgresCqrs, PostgresEventRepository};
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Executor, Row};
use uuid::Uuid;
use writ_domain::Envelope;
use writ_tickets::{AddComment, CommentAdded, OpenTicket, Priority, TicketId, TicketOpened, codes};

use crate::workload::{Step, StepKind, Workload};
use crate::writ_side::{command_id, micros};
use crate::{CompareError, Side, SideRun, Tally};

/// A ticket as the peer's aggregate sees it: only what its rules need.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketAggregate {
    opened: bool,
    priority: Option<Priority>,
    comments: u64,
}

impl TicketAggregate {
    /// Whether the ticket was opened.
    pub fn exists(&self) -> bool {
        self.opened
    }

    /// Comments recorded on it.
    pub fn comment_count(&self) -> u64 {
        self.comments
    }
}

/// The peer's commands. `AddComment` carries the comment's id, which Writ derives from the
/// command id in the same way (`Envelope::derive_id(0)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketCommand {
    /// `OpenTicket` version 2.
    OpenTicket(OpenTicket),
    /// `AddComment` version 1.
    AddComment {
        /// The payload.
        comment: AddComment,
        /// The id the `CommentAdded` event records.
        comment_id: Uuid,
    },
}

/// The peer's events: the same structs as Writ's tickets domain, so both store the same
/// facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TicketEvent {
    /// A ticket was opened.
    TicketOpened(TicketOpened),
    /// Someone commented on a ticket.
    CommentAdded(CommentAdded),
}

/// The event types, the same names Writ records.
pub const TICKET_OPENED: &str = "TicketOpened";
/// See [`TICKET_OPENED`].
pub const COMMENT_ADDED: &str = "CommentAdded";

impl DomainEvent for TicketEvent {
    fn event_type(&self) -> String {
        match self {
            Self::TicketOpened(_) => TICKET_OPENED,
            Self::CommentAdded(_) => COMMENT_ADDED,
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

/// A business rule said no: the tickets domain's stable code and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct TicketRejection {
    /// One of `writ_tickets::codes`.
    pub code: &'static str,
    /// For people.
    pub message: String,
}

impl Aggregate for TicketAggregate {
    const TYPE: &'static str = "ticket";
    type Command = TicketCommand;
    type Event = TicketEvent;
    type Error = TicketRejection;
    type Services = ();

    async fn handle(
        &mut self,
        command: TicketCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), TicketRejection> {
        let event = match command {
            TicketCommand::OpenTicket(c) => {
                if self.opened {
                    return Err(TicketRejection {
                        code: codes::TICKET_EXISTS,
                        message: format!("ticket {} already exists", c.ticket_id),
                    });
                }
                if is_blank(&c.title) {
                    return Err(TicketRejection {
                        code: codes::TITLE_REQUIRED,
                        message: "a ticket needs a title that is not only whitespace".into(),
                    });
                }
                TicketEvent::TicketOpened(TicketOpened {
                    ticket_id: c.ticket_id,
                    title: c.title,
                    description: c.description,
                    reporter: c.reporter,
                    priority: c.priority,
                })
            }
            TicketCommand::AddComment {
                comment,
                comment_id,
            } => {
                if !self.opened {
                    return Err(TicketRejection {
                        code: codes::TICKET_NOT_FOUND,
                        message: format!("no ticket {}", comment.ticket_id),
                    });
                }
                if is_blank(&comment.text) {
                    return Err(TicketRejection {
                        code: codes::TEXT_REQUIRED,
                        message: "a comment needs text that is not only whitespace".into(),
                    });
                }
                TicketEvent::CommentAdded(CommentAdded {
                    ticket_id: comment.ticket_id,
                    comment_id,
                    author: comment.author,
                    text: comment.text,
                })
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: TicketEvent) {
        match event {
            // A ticket opened after stray events starts afresh, as in Writ.
            TicketEvent::TicketOpened(e) => {
                *self = Self {
                    opened: true,
                    priority: Some(e.priority),
                    comments: 0,
                };
            }
            TicketEvent::CommentAdded(_) => self.comments += 1,
        }
    }
}

/// Empty or only Unicode whitespace, as in Writ's tickets domain.
fn is_blank(s: &str) -> bool {
    s.trim().is_empty()
}

/// The command for a workload step, with the same fields as Writ's payloads
/// (`writ_tickets::workload`).
pub fn command_for(step: &Step, command_id: Uuid) -> Result<TicketCommand, CompareError> {
    let ticket_id =
        TicketId::new(format!("t-{}", step.ticket)).map_err(|e| CompareError::Peer {
            detail: format!("ticket id t-{}: {e}", step.ticket),
        })?;
    Ok(match step.kind {
        StepKind::Open => TicketCommand::OpenTicket(OpenTicket {
            ticket_id,
            title: format!("Ticket {}", step.ticket),
            description: None,
            reporter: "bench".into(),
            priority: Priority::Normal,
        }),
        StepKind::Comment { comment } => TicketCommand::AddComment {
            comment: AddComment {
                ticket_id,
                author: "bench".into(),
                text: format!("Comment {comment} on ticket {}", step.ticket),
            },
            comment_id: comment_id(command_id),
        },
    })
}

/// The id of the comment an `AddComment` command records: derived from the command id as
/// Writ derives it (`Envelope::derive_id(0)`).
pub fn comment_id(command_id: Uuid) -> Uuid {
    Envelope {
        command_id,
        recorded_at_ms: 0,
        sequence: 0,
        correlation_id: command_id,
    }
    .derive_id(0)
}

/// The server settings that decide whether a commit is durable when it returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresSettings {
    /// `fsync`: `on` means PostgreSQL flushes its WAL to the disk.
    pub fsync: String,
    /// `synchronous_commit`: `on` (or `remote_*`) means a commit returns only after its
    /// WAL is flushed; `off` or `local` with `fsync = off` would make the peer not durable.
    pub synchronous_commit: String,
    /// `wal_sync_method`, for example `fdatasync`.
    pub wal_sync_method: String,
    /// `full_page_writes`.
    pub full_page_writes: String,
    /// `commit_delay` (microseconds PostgreSQL waits to group commits; 0 = off).
    pub commit_delay: String,
    /// `server_version`.
    pub server_version: String,
    /// `data_directory`, when the role may read it.
    pub data_directory: Option<String>,
}

impl PostgresSettings {
    /// Whether a returned commit is on the disk: `fsync = on` and a `synchronous_commit`
    /// that waits for the local flush.
    pub fn durable(&self) -> bool {
        self.fsync == "on" && !matches!(self.synchronous_commit.as_str(), "off")
    }
}

/// What the peer's run measured and recorded.
#[derive(Debug, Clone)]
pub struct PeerRun {
    /// Throughput and latencies.
    pub run: SideRun,
    /// What the events table holds afterwards.
    pub tally: Tally,
    /// The server's durability settings.
    pub settings: PostgresSettings,
    /// The server's host as the URL names it.
    pub host: String,
}

/// Runs the workload through cqrs-es + postgres-es against the server at `url`, in a fresh
/// schema that is dropped afterwards (also when the run fails).
pub async fn run(workload: &Workload, url: &str) -> Result<PeerRun, CompareError> {
    let (pool, host) = connect(url, workload.lanes()).await?;
    let settings = read_settings(&pool).await?;
    let schema = fresh_schema_name();
    create_schema(&pool, &schema).await?;
    let result = run_in_schema(workload, &pool, &schema).await;
    let dropped = drop_schema(&pool, &schema).await;
    pool.close().await;
    let (run, tally) = result?;
    dropped?;
    Ok(PeerRun {
        run,
        tally,
        settings,
        host,
    })
}

/// A pool of at most `connections` connections to the server at `url` (none opened yet: see
/// [`warm`]), and the server's host as the URL names it.
pub(crate) async fn connect(
    url: &str,
    connections: usize,
) -> Result<(PgPool, String), CompareError> {
    let connect = PgConnectOptions::from_str(url).map_err(|e| CompareError::Peer {
        detail: format!("the PostgreSQL URL is not valid: {e}"),
    })?;
    let host = connect.get_host().to_owned();
    // One connection per lane, opened before the clock starts. sqlx's ping before each
    // checkout (`test_before_acquire`) is switched off: it costs a round trip per query
    // and guards only against connections dropped while idle, which a short local run
    // does not see. This helps the peer.
    let pool = PgPoolOptions::new()
        .max_connections(u32::try_from(connections).unwrap_or(u32::MAX))
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(30))
        .test_before_acquire(false)
        .connect_with(connect)
        .await
        .map_err(|e| CompareError::Peer {
            detail: format!("connecting to PostgreSQL: {e}"),
        })?;
    Ok((pool, host))
}

/// Opens `connections` connections of the pool now, so that no command pays for a
/// connect while timed.
pub(crate) async fn warm(pool: &PgPool, connections: usize) -> Result<(), CompareError> {
    let mut warm = Vec::with_capacity(connections);
    for _ in 0..connections {
        warm.push(pool.acquire().await.map_err(|e| CompareError::Peer {
            detail: format!(
                "opening {connections} connections (one per lane; PostgreSQL's max_connections must allow them): {e}"
            ),
        })?);
    }
    Ok(())
}

/// `writ_compare_<random>`: a schema name no other run uses.
pub(crate) fn fresh_schema_name() -> String {
    format!("writ_compare_{}", Uuid::new_v4().simple())
}

/// The peer's framework on the `events` and `snapshots` tables of `schema`: postgres-es's
/// `postgres_cqrs`, without queries.
pub(crate) fn framework(pool: &PgPool, schema: &str) -> Arc<PostgresCqrs<TicketAggregate>> {
    let repo = PostgresEventRepository::new(pool.clone())
        .with_tables(&format!("{schema}.events"), &format!("{schema}.snapshots"));
    Arc::new(CqrsFramework::new(
        PersistedEventStore::new_event_store(repo),
        vec![],
        (),
    ))
}

async fn run_in_schema(
    workload: &Workload,
    pool: &PgPool,
    schema: &str,
) -> Result<(SideRun, Tally), CompareError> {
    warm(pool, workload.lanes()).await?;
    let cqrs = framework(pool, schema);
    let base = Uuid::new_v4().as_u128();
    let plans = workload.deal();

    let started = Instant::now();
    let lanes: Vec<_> = plans
        .into_iter()
        .map(|plan| tokio::spawn(lane(Arc::clone(&cqrs), plan, base)))
        .collect();
    let mut results = Vec::with_capacity(lanes.len());
    for lane in lanes {
        results.push(lane.await);
    }
    let elapsed = started.elapsed();
    let mut latencies_us = Vec::with_capacity(workload.commands() as usize);
    for result in results {
        let lane = result.map_err(|e| CompareError::Peer {
            detail: format!("a lane's task failed: {e}"),
        })?;
        latencies_us.extend(lane?);
    }
    let tally = count_events(pool, schema).await?;
    Ok((SideRun::new(elapsed, latencies_us), tally))
}

/// One lane: its commands one at a time, each `execute`d until PostgreSQL committed it.
async fn lane(
    cqrs: Arc<PostgresCqrs<TicketAggregate>>,
    plan: Vec<Step>,
    base: u128,
) -> Result<Vec<u32>, CompareError> {
    let mut latencies_us = Vec::with_capacity(plan.len());
    for step in plan {
        let id = command_id(base, step.index);
        let command = command_for(&step, id)?;
        let aggregate_id = format!("t-{}", step.ticket);
        // Writ records each event's command id; so does the peer, as metadata.
        let metadata = HashMap::from([("command_id".to_owned(), id.to_string())]);
        let submitted = Instant::now();
        let result = cqrs
            .execute_with_metadata(&aggregate_id, command, metadata)
            .await;
        latencies_us.push(micros(submitted));
        match result {
            Ok(()) => {}
            Err(AggregateError::UserError(rejection)) => {
                return Err(CompareError::CommandFailed {
                    side: Side::Peer,
                    detail: format!("command on ticket {aggregate_id} was rejected: {rejection}"),
                });
            }
            Err(e) => {
                return Err(CompareError::Peer {
                    detail: format!("command on ticket {aggregate_id}: {e}"),
                });
            }
        }
    }
    Ok(latencies_us)
}

pub(crate) async fn read_settings(pool: &PgPool) -> Result<PostgresSettings, CompareError> {
    async fn show(pool: &PgPool, name: &str) -> Result<String, sqlx::Error> {
        let row = sqlx::query("SELECT current_setting($1, true)")
            .bind(name)
            .fetch_one(pool)
            .await?;
        Ok(row
            .try_get::<Option<String>, _>(0)?
            .unwrap_or_else(|| "unknown".into()))
    }
    let read = async {
        Ok::<_, sqlx::Error>(PostgresSettings {
            fsync: show(pool, "fsync").await?,
            synchronous_commit: show(pool, "synchronous_commit").await?,
            wal_sync_method: show(pool, "wal_sync_method").await?,
            full_page_writes: show(pool, "full_page_writes").await?,
            commit_delay: show(pool, "commit_delay").await?,
            server_version: show(pool, "server_version").await?,
            // Readable by superusers and members of pg_read_all_settings only: others get
            // an error, which means "cannot tell".
            data_directory: show(pool, "data_directory")
                .await
                .ok()
                .filter(|d| d != "unknown"),
        })
    };
    read.await.map_err(|e| CompareError::Peer {
        detail: format!("reading the server's settings: {e}"),
    })
}

/// The tables of postgres-es's README (`db/init.sql`), in a schema of their own.
pub(crate) async fn create_schema(pool: &PgPool, schema: &str) -> Result<(), CompareError> {
    let ddl = format!(
        "CREATE SCHEMA {schema};
         CREATE TABLE {schema}.events (
             aggregate_type text                         NOT NULL,
             aggregate_id   text                         NOT NULL,
             sequence       bigint CHECK (sequence >= 0) NOT NULL,
             event_type     text                         NOT NULL,
             event_version  text                         NOT NULL,
             payload        json                         NOT NULL,
             metadata       json                         NOT NULL,
             PRIMARY KEY (aggregate_type, aggregate_id, sequence)
         );
         CREATE TABLE {schema}.snapshots (
             aggregate_type   text                                 NOT NULL,
             aggregate_id     text                                 NOT NULL,
             last_sequence    bigint CHECK (last_sequence >= 0)    NOT NULL,
             current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
             payload          json                                 NOT NULL,
             PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
         );"
    );
    pool.execute(ddl.as_str())
        .await
        .map_err(|e| CompareError::Peer {
            detail: format!("creating schema {schema} and its tables: {e}"),
        })?;
    Ok(())
}

/// Drops `schema` with everything in it.
pub(crate) async fn drop_schema(pool: &PgPool, schema: &str) -> Result<(), CompareError> {
    pool.execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
        .await
        .map_err(|e| CompareError::Peer {
            detail: format!("dropping schema {schema}: {e}"),
        })?;
    Ok(())
}

pub(crate) async fn count_events(pool: &PgPool, schema: &str) -> Result<Tally, CompareError> {
    let query = format!(
        "SELECT
             count(*) FILTER (WHERE event_type = $2),
             count(DISTINCT aggregate_id) FILTER (WHERE event_type = $2),
             count(*) FILTER (WHERE event_type = $3),
             count(*) FILTER (WHERE event_type NOT IN ($2, $3))
         FROM {schema}.events WHERE aggregate_type = $1"
    );
    let row = sqlx::query(&query)
        .bind(TicketAggregate::TYPE)
        .bind(TICKET_OPENED)
        .bind(COMMENT_ADDED)
        .fetch_one(pool)
        .await
        .map_err(|e| CompareError::Peer {
            detail: format!("counting the recorded events: {e}"),
        })?;
    let get = |i: usize| -> Result<u64, CompareError> {
        row.try_get::<i64, _>(i)
            .map(|n| n as u64)
            .map_err(|e| CompareError::Peer {
                detail: format!("counting the recorded events: {e}"),
            })
    };
    Ok(Tally {
        open_events: get(0)?,
        tickets: get(1)?,
        comments: get(2)?,
        other_events: get(3)?,
    })
}

#[cfg(test)]
mod tests {
    use writ_domain::Domain;
    use writ_domain::testing::DEFAULT_ENVELOPE;
    use writ_tickets::{TicketState, Tickets};

    use super::*;

    fn id(s: &str) -> TicketId {
        TicketId::new(s).unwrap()
    }

    fn open(title: &str) -> OpenTicket {
        OpenTicket {
            ticket_id: id("t-1"),
            title: title.into(),
            description: None,
            reporter: "ann".into(),
            priority: Priority::High,
        }
    }

    fn comment(text: &str) -> AddComment {
        AddComment {
            ticket_id: id("t-1"),
            author: "bo".into(),
            text: text.into(),
        }
    }

    /// Decides `command` after `given` on both sides; returns the event types or the code.
    async fn both(
        given: &[writ_tickets::TicketCommand],
        command: writ_tickets::TicketCommand,
    ) -> (
        Result<Vec<writ_tickets::TicketEvent>, String>,
        Result<Vec<writ_tickets::TicketEvent>, String>,
    ) {
        let envelope = DEFAULT_ENVELOPE;
        let to_peer = |c: writ_tickets::TicketCommand| match c {
            writ_tickets::TicketCommand::OpenTicket(c) => TicketCommand::OpenTicket(c),
            writ_tickets::TicketCommand::AddComment(c) => TicketCommand::AddComment {
                comment: c,
                comment_id: envelope.derive_id(0),
            },
            other => panic!("the peer implements only OpenTicket and AddComment: {other:?}"),
        };
        let mut writ = TicketState::default();
        let mut peer = TicketAggregate::default();
        for c in given {
            for e in writ_domain::testing::decide::<Tickets>(&writ, c, &envelope).unwrap() {
                Tickets::evolve(&mut writ, &e);
            }
            let sink = EventSink::default();
            peer.handle(to_peer(c.clone()), &(), &sink).await.unwrap();
        }
        let writ_result = writ_domain::testing::decide::<Tickets>(&writ, &command, &envelope)
            .map_err(|refusal| match refusal {
                writ_domain::Refusal::Rejected(r) => r.code.to_string(),
                other => format!("{other:?}"),
            });
        let sink = EventSink::default();
        let peer_result = match peer.handle(to_peer(command), &(), &sink).await {
            Ok(()) => Ok(sink
                .collect()
                .await
                .into_iter()
                .map(|e| match e {
                    TicketEvent::TicketOpened(e) => writ_tickets::TicketEvent::from(e),
                    TicketEvent::CommentAdded(e) => writ_tickets::TicketEvent::from(e),
                })
                .collect()),
            Err(rejection) => Err(rejection.code.to_string()),
        };
        (writ_result, peer_result)
    }

    #[tokio::test]
    async fn the_peer_decides_like_writ() {
        use writ_tickets::TicketCommand as W;
        let opened = [W::OpenTicket(open("Printer on fire"))];
        /// Name, given commands, the command, and events expected or the code.
        type Case = (&'static str, Vec<W>, W, Result<usize, &'static str>);
        let cases: Vec<Case> = vec![
            ("open a new ticket", vec![], W::OpenTicket(open("x")), Ok(1)),
            (
                "open twice",
                opened.to_vec(),
                W::OpenTicket(open("x")),
                Err(codes::TICKET_EXISTS),
            ),
            (
                "exists is checked before the title",
                opened.to_vec(),
                W::OpenTicket(open(" ")),
                Err(codes::TICKET_EXISTS),
            ),
            (
                "blank title",
                vec![],
                W::OpenTicket(open(" \t")),
                Err(codes::TITLE_REQUIRED),
            ),
            (
                "comment on a missing ticket",
                vec![],
                W::AddComment(comment("hi")),
                Err(codes::TICKET_NOT_FOUND),
            ),
            (
                "found is checked before the text",
                vec![],
                W::AddComment(comment("")),
                Err(codes::TICKET_NOT_FOUND),
            ),
            (
                "blank comment",
                opened.to_vec(),
                W::AddComment(comment("\u{3000}")),
                Err(codes::TEXT_REQUIRED),
            ),
            (
                "comment",
                opened.to_vec(),
                W::AddComment(comment("hi")),
                Ok(1),
            ),
        ];
        for (name, given, command, expected) in cases {
            let (writ, peer) = both(&given, command).await;
            assert_eq!(writ, peer, "{name}: the two sides disagree");
            match expected {
                Ok(events) => assert_eq!(writ.map(|e| e.len()), Ok(events), "{name}"),
                Err(code) => assert_eq!(writ, Err(code.to_owned()), "{name}"),
            }
        }
    }

    #[tokio::test]
    async fn comments_count_on_the_aggregate() {
        let mut ticket = TicketAggregate::default();
        let sink = EventSink::default();
        ticket
            .handle(TicketCommand::OpenTicket(open("x")), &(), &sink)
            .await
            .unwrap();
        for n in 0..3 {
            let sink = EventSink::default();
            let command = TicketCommand::AddComment {
                comment: comment(&format!("c{n}")),
                comment_id: Uuid::nil(),
            };
            ticket.handle(command, &(), &sink).await.unwrap();
        }
        assert!(ticket.exists());
        assert_eq!(ticket.comment_count(), 3);
    }

    #[test]
    fn workload_commands_carry_writ_s_fields() {
        let w = Workload::new(2, 4, 1).unwrap();
        let TicketCommand::OpenTicket(open) = command_for(&w.step(1), Uuid::nil()).unwrap() else {
            panic!("step 1 opens")
        };
        let writ: OpenTicket =
            serde_json::from_slice(&writ_tickets::workload::open_ticket_payload(1)).unwrap();
        assert_eq!(open, writ);
        let TicketCommand::AddComment { comment, .. } =
            command_for(&w.step(3), Uuid::nil()).unwrap()
        else {
            panic!("step 3 comments")
        };
        let writ: AddComment =
            serde_json::from_slice(&writ_tickets::workload::add_comment_payload(1, 1)).unwrap();
        assert_eq!(comment, writ);
    }
}
