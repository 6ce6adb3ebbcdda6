//! Payloads for benchmarks and load tests: the JSON bytes a client would send, built with
//! plain formatting (no `serde_json::Value`) because they sit on a hot path.
//!
//! Ticket `n` has id `t-{n}`. The payloads are already canonical: decoding them through
//! the catalog re-encodes them to the very same bytes.
//!
//! ```
//! use writ_domain::Domain;
//! use writ_tickets::{Tickets, workload};
//!
//! let payload = workload::open_ticket_payload(7);
//! assert_eq!(
//!     payload,
//!     br#"{"ticketId":"t-7","title":"Ticket 7","reporter":"bench","priority":"normal"}"#
//! );
//! let decoded = Tickets::commands()
//!     .decode(workload::OPEN_TICKET, Some(workload::OPEN_TICKET_VERSION), &payload)
//!     .unwrap();
//! assert_eq!(Tickets::stream(&decoded.command), "ticket-t-7");
//! ```

use std::io::Write;

/// The command name of [`open_ticket_payload`].
pub const OPEN_TICKET: &str = "OpenTicket";
/// The command version of [`open_ticket_payload`].
pub const OPEN_TICKET_VERSION: u32 = 2;
/// The command name of [`add_comment_payload`].
pub const ADD_COMMENT: &str = "AddComment";
/// The command version of [`add_comment_payload`].
pub const ADD_COMMENT_VERSION: u32 = 1;

/// The ticket id of ticket `n`: `t-{n}`.
pub fn ticket_id(n: u64) -> String {
    format!("t-{n}")
}

/// The stream of ticket `n`: `ticket-t-{n}`.
pub fn stream(n: u64) -> String {
    format!("ticket-t-{n}")
}

/// `OpenTicket` version 2 for ticket `n`: id `t-{n}`, title `Ticket {n}`, reporter
/// `bench`, priority `normal`.
pub fn open_ticket_payload(n: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(96);
    write_open_ticket_payload(&mut out, n);
    out
}

/// Appends [`open_ticket_payload`]`(n)` to `out`, to reuse a buffer.
pub fn write_open_ticket_payload(out: &mut Vec<u8>, n: u64) {
    write!(
        out,
        r#"{{"ticketId":"t-{n}","title":"Ticket {n}","reporter":"bench","priority":"normal"}}"#
    )
    .expect("writing to a Vec never fails");
}

/// `AddComment` version 1, comment `i` on ticket `n`: author `bench`, text
/// `Comment {i} on ticket {n}`.
pub fn add_comment_payload(n: u64, i: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(96);
    write_add_comment_payload(&mut out, n, i);
    out
}

/// Appends [`add_comment_payload`]`(n, i)` to `out`, to reuse a buffer.
pub fn write_add_comment_payload(out: &mut Vec<u8>, n: u64, i: u64) {
    write!(
        out,
        r#"{{"ticketId":"t-{n}","author":"bench","text":"Comment {i} on ticket {n}"}}"#
    )
    .expect("writing to a Vec never fails");
}

#[cfg(test)]
mod tests {
    use writ_domain::Domain;

    use super::*;
    use crate::{Priority, TicketCommand, TicketState, Tickets};

    #[test]
    fn payloads_decode_through_the_catalog_and_are_canonical() {
        let catalog = Tickets::commands();
        for n in [0, 1, 42, u64::MAX] {
            let open = open_ticket_payload(n);
            let decoded = catalog
                .decode(OPEN_TICKET, Some(OPEN_TICKET_VERSION), &open)
                .unwrap();
            assert_eq!(decoded.canonical_payload, open);
            assert_eq!(Tickets::stream(&decoded.command), stream(n));
            let TicketCommand::OpenTicket(c) = &decoded.command else {
                panic!("not OpenTicket: {:?}", decoded.command);
            };
            assert_eq!(c.ticket_id.as_str(), ticket_id(n));
            assert_eq!(c.title, format!("Ticket {n}"));
            assert_eq!(c.reporter, "bench");
            assert_eq!(c.priority, Priority::Normal);
            assert_eq!(c.description, None);

            for i in [0, 7, u64::MAX] {
                let comment = add_comment_payload(n, i);
                let decoded = catalog
                    .decode(ADD_COMMENT, Some(ADD_COMMENT_VERSION), &comment)
                    .unwrap();
                assert_eq!(decoded.canonical_payload, comment);
                let TicketCommand::AddComment(c) = &decoded.command else {
                    panic!("not AddComment: {:?}", decoded.command);
                };
                assert_eq!(c.ticket_id.as_str(), ticket_id(n));
                assert_eq!(c.author, "bench");
                assert_eq!(c.text, format!("Comment {i} on ticket {n}"));
            }
        }
    }

    #[test]
    fn payloads_decide_into_an_open_ticket_with_comments() {
        let catalog = Tickets::commands();
        let envelope = writ_domain::testing::DEFAULT_ENVELOPE;
        let mut state = TicketState::default();
        let mut buf = Vec::new();
        write_open_ticket_payload(&mut buf, 3);
        let open = catalog.decode(OPEN_TICKET, None, &buf).unwrap().command;
        for event in writ_domain::testing::decide::<Tickets>(&state, &open, &envelope).unwrap() {
            Tickets::evolve(&mut state, &event);
        }
        for i in 0..3 {
            buf.clear();
            write_add_comment_payload(&mut buf, 3, i);
            let comment = catalog.decode(ADD_COMMENT, None, &buf).unwrap().command;
            for event in
                writ_domain::testing::decide::<Tickets>(&state, &comment, &envelope).unwrap()
            {
                Tickets::evolve(&mut state, &event);
            }
        }
        assert!(state.is_open());
        assert_eq!(state.comment_count(), 3);
    }
}
