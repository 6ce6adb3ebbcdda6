//! Reading back what the server holds, over the load tool's HTTP/1.1 client: command
//! statuses (long polls, many connections at once), pages of the global log and streams.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hyper::{Method, StatusCode};
use uuid::Uuid;
use writ_server::wire::{CommandStatusBody, Event, EventsPage, StatusName, StreamPage};
use writ_tickets::workload;

use crate::client::{Client, Target};

/// The long poll of one status request, in seconds (the contract's bound is 60).
const WAIT_S: u64 = 30;
/// Long polls per id before a status that stays `accepted` counts as never final.
const POLLS_MAX: u32 = 4;
/// The bound on one request; a status request gets its long poll on top.
const REQUEST_MAX: Duration = Duration::from_secs(60);
/// Events asked for per page (the server's default bound on a page).
const PAGE_EVENTS: u64 = 1_000;

/// Sends one request with a bound on the wait.
pub(super) async fn call(
    client: &mut Client,
    method: Method,
    path: &str,
    body: Option<hyper::body::Bytes>,
    bound: Duration,
) -> Result<(StatusCode, hyper::body::Bytes), String> {
    tokio::time::timeout(bound, client.send(method, path, body))
        .await
        .map_err(|_| format!("{path}: no answer within {bound:?}"))?
}

/// Opens `count` connections to the server at `url`.
pub(super) async fn connect(url: &str, count: usize) -> Result<Vec<Client>, String> {
    let target = Target::parse(url)?;
    let mut clients = Vec::with_capacity(count);
    for _ in 0..count {
        clients.push(
            tokio::time::timeout(REQUEST_MAX, Client::connect(&target))
                .await
                .map_err(|_| format!("cannot connect to {url} within {REQUEST_MAX:?}"))??,
        );
    }
    Ok(clients)
}

/// The status of every id, long-polling until it is final (at most [`POLLS_MAX`] polls of
/// [`WAIT_S`] seconds): `None` for `404` (never seen), else the last status read, final
/// unless it stayed `accepted` through every poll. Spreads the ids over the connections;
/// answers in the order of `ids`.
pub(super) async fn statuses(
    clients: Vec<Client>,
    ids: Vec<Uuid>,
) -> Result<(Vec<Option<CommandStatusBody>>, Vec<Client>), String> {
    let ids = Arc::new(ids);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for mut client in clients {
        let (ids, next) = (Arc::clone(&ids), Arc::clone(&next));
        tasks.spawn(async move {
            let mut found = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&id) = ids.get(i) else { break };
                found.push((i, status(&mut client, id).await?));
            }
            Ok::<_, String>((found, client))
        });
    }
    let mut answers = vec![None; ids.len()];
    let mut clients = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (found, client) = joined.map_err(|e| format!("a status task failed: {e}"))??;
        for (i, answer) in found {
            answers[i] = answer;
        }
        clients.push(client);
    }
    Ok((answers, clients))
}

/// One command's status, long-polled until final; see [`statuses`].
async fn status(client: &mut Client, id: Uuid) -> Result<Option<CommandStatusBody>, String> {
    let path = format!("/update/{}?wait={WAIT_S}", id.hyphenated());
    let bound = REQUEST_MAX + Duration::from_secs(WAIT_S);
    let mut polls = 0;
    loop {
        polls += 1;
        let (code, body) = call(client, Method::GET, &path, None, bound).await?;
        match code {
            StatusCode::NOT_FOUND => return Ok(None),
            StatusCode::OK => {
                let answer: CommandStatusBody = serde_json::from_slice(&body)
                    .map_err(|e| format!("GET {path}: not a status: {e}"))?;
                if answer.id != id {
                    return Err(format!("GET {path} answered the status of {}", answer.id));
                }
                if answer.status.is_final() || polls >= POLLS_MAX {
                    return Ok(Some(answer));
                }
            }
            _ => {
                return Err(format!(
                    "GET {path} answered {code}: {}",
                    String::from_utf8_lossy(&body)
                ));
            }
        }
    }
}

/// Counts, among acknowledged `ids` and their `answers` (from [`statuses`]), those lost
/// (unknown, or never final) and those not `succeeded`, printing the first of each as a
/// `VIOLATION` on stderr.
pub(super) fn acknowledged_outcomes(
    ids: &[Uuid],
    answers: &[Option<CommandStatusBody>],
) -> (u64, u64) {
    let (mut lost, mut not_succeeded) = (0u64, 0u64);
    for (id, answer) in ids.iter().zip(answers) {
        match answer.as_ref().map(|a| a.status) {
            Some(StatusName::Succeeded) => {}
            Some(StatusName::Rejected | StatusName::Failed) => {
                not_succeeded += 1;
                if not_succeeded == 1 {
                    eprintln!("VIOLATION: acknowledged {id} did not succeed: {answer:?}");
                }
            }
            None | Some(StatusName::Accepted) => {
                lost += 1;
                if lost <= 5 {
                    eprintln!("VIOLATION: acknowledged {id} is lost: {answer:?}");
                }
            }
        }
    }
    (lost, not_succeeded)
}

/// The global log from `from` to its end, page by page.
pub(super) async fn events_from(client: &mut Client, from: u64) -> Result<Vec<Event>, String> {
    let mut events = Vec::new();
    let mut from = from.max(1);
    loop {
        let page = events_page(client, from, PAGE_EVENTS).await?;
        if page.events.is_empty() {
            return Ok(events);
        }
        if page.next <= from {
            return Err(format!(
                "GET /events?from={from} answered next={}",
                page.next
            ));
        }
        from = page.next;
        events.extend(page.events);
    }
}

/// One page of the global log.
pub(super) async fn events_page(
    client: &mut Client,
    from: u64,
    limit: u64,
) -> Result<EventsPage, String> {
    let path = format!("/events?from={from}&limit={limit}");
    let (code, body) = call(client, Method::GET, &path, None, REQUEST_MAX).await?;
    if code != StatusCode::OK {
        return Err(format!(
            "GET {path} answered {code}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    serde_json::from_slice(&body).map_err(|e| format!("GET {path}: not a page of events: {e}"))
}

/// Every event of one stream, in version order.
pub(super) async fn stream(client: &mut Client, stream: &str) -> Result<Vec<Event>, String> {
    let mut events: Vec<Event> = Vec::new();
    loop {
        let path = format!(
            "/streams/{stream}?from={}&limit={PAGE_EVENTS}",
            events.len() + 1
        );
        let (code, body) = call(client, Method::GET, &path, None, REQUEST_MAX).await?;
        if code != StatusCode::OK {
            return Err(format!(
                "GET {path} answered {code}: {}",
                String::from_utf8_lossy(&body)
            ));
        }
        let page: StreamPage = serde_json::from_slice(&body)
            .map_err(|e| format!("GET {path}: not a stream page: {e}"))?;
        if page.events.is_empty() {
            return Ok(events);
        }
        events.extend(page.events);
    }
}

/// The events of each ticket's stream (`ticket-t-{n}`), read over all the connections;
/// answers in the order of `tickets`.
pub(super) async fn streams(
    clients: Vec<Client>,
    tickets: &[u64],
) -> Result<Vec<Vec<Event>>, String> {
    let tickets = Arc::new(tickets.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for mut client in clients {
        let (tickets, next) = (Arc::clone(&tickets), Arc::clone(&next));
        tasks.spawn(async move {
            let mut found = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&ticket) = tickets.get(i) else { break };
                found.push((i, stream(&mut client, &workload::stream(ticket)).await?));
            }
            Ok::<_, String>(found)
        });
    }
    let mut streams = vec![Vec::new(); tickets.len()];
    while let Some(joined) = tasks.join_next().await {
        for (i, events) in joined.map_err(|e| format!("a stream task failed: {e}"))?? {
            streams[i] = events;
        }
    }
    Ok(streams)
}
