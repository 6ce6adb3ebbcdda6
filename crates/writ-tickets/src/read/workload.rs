//! Synthetic events for benchmarks of the read model: the events the engine records for
//! [`crate::workload`]'s commands, without an engine.

use uuid::Uuid;
use writ_domain::EventSet;
use writ_query::RecordedEvent;

use crate::{CommentAdded, Priority, TicketEvent, TicketId, TicketOpened, stream_name};

/// `tickets` `TicketOpened` events (ticket `n` is `t-{n}`, title `Ticket {n}`), then
/// `comments` `CommentAdded` events round-robin over the tickets (comment `i` goes to
/// ticket `i % tickets`, text `Comment {i / tickets} on ticket {n}`), at positions from 1,
/// one millisecond apart.
///
/// ```
/// let events = writ_tickets::read::workload::events(2, 3);
/// assert_eq!(events.len(), 5);
/// assert_eq!(events[4].event_type, "CommentAdded");
/// assert_eq!(events[4].stream, "ticket-t-0");
/// ```
pub fn events(tickets: u64, comments: u64) -> Vec<RecordedEvent> {
    assert!(tickets > 0 || comments == 0, "comments need tickets");
    let mut out = Vec::with_capacity((tickets + comments) as usize);
    let mut versions = vec![0u64; tickets as usize];
    let mut push = |n: u64, event: TicketEvent| {
        let position = out.len() as u64 + 1;
        let mut data = Vec::with_capacity(128);
        event
            .encode_data(&mut data)
            .expect("ticket events always encode");
        versions[n as usize] += 1;
        out.push(RecordedEvent {
            position,
            stream: stream_name(&id(n)),
            version: versions[n as usize],
            event_type: event.event_type().to_owned(),
            data,
            command_id: Uuid::from_u128(u128::from(position)),
            correlation_id: Uuid::from_u128(u128::from(position)),
            recorded_at_ms: 1_800_000_000_000 + position,
            schema_version: 1,
            recorded_schema_version: 1,
        });
    };
    for n in 0..tickets {
        push(
            n,
            TicketEvent::TicketOpened(TicketOpened {
                ticket_id: id(n),
                title: format!("Ticket {n}"),
                description: None,
                reporter: "bench".to_owned(),
                priority: Priority::Normal,
            }),
        );
    }
    for i in 0..comments {
        let n = i % tickets;
        push(
            n,
            TicketEvent::CommentAdded(CommentAdded {
                ticket_id: id(n),
                comment_id: Uuid::from_u128(u128::from(i) | 1 << 64),
                author: "bench".to_owned(),
                text: format!("Comment {} on ticket {n}", i / tickets),
            }),
        );
    }
    out
}

fn id(n: u64) -> TicketId {
    TicketId::new(crate::workload::ticket_id(n)).expect("t-{n} is a valid id")
}
