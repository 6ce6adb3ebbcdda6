//! The named queries over the [`TicketsView`] and their JSON shapes; the module
//! documentation of [`read`](super) describes them for clients.

use serde_json::{Map, Value, json};
use writ_query::paging::{Cursor, Page, Paging};
use writ_query::{Args, QueryCatalog, QueryError, rfc3339};

use super::view::{
    Comment, PRIORITIES, Status, StatusChange, Ticket, TicketFilter, TicketsView, parse_priority,
    priority_name,
};

/// `getTicket`.
pub const GET_TICKET: &str = "getTicket";
/// `searchTickets`.
pub const SEARCH_TICKETS: &str = "searchTickets";
/// `ticketStats`.
pub const TICKET_STATS: &str = "ticketStats";

/// `searchTickets`' default `limit`.
pub const SEARCH_LIMIT_DEFAULT: u64 = 50;
/// `searchTickets`' largest `limit`.
pub const SEARCH_LIMIT_MAX: u64 = 1000;

/// `searchTickets`' `limit` and `cursor`. Its pages are in creation order; it takes no
/// `order`. Cursors are row numbers of the tickets table, so they stay valid across
/// snapshots: tickets are never removed and new ones come last (they only ever appear on
/// later pages).
const SEARCH_PAGING: Paging = Paging::new(SEARCH_LIMIT_DEFAULT as usize, SEARCH_LIMIT_MAX as usize);

const SEARCH_PARAMS_V1: [&str; 5] = ["status", "assignee", "priority", "text", "limit"];
const SEARCH_PARAMS_V2: [&str; 6] = ["status", "assignee", "priority", "text", "limit", "cursor"];

/// The tickets queries: version 2 over the view, version 1 as transformers of version 2.
pub fn catalog() -> QueryCatalog<TicketsView> {
    let mut catalog = QueryCatalog::new();
    let _ = catalog
        .version(2)
        .requires_projection_version(2)
        .query(GET_TICKET, &["id"], get_ticket)
        .query(SEARCH_TICKETS, &SEARCH_PARAMS_V2, search_tickets)
        .query(TICKET_STATS, &[], ticket_stats);
    let _ = catalog
        .version(1)
        .transform(GET_TICKET, &["id"], (2, GET_TICKET), ticket_v1)
        .transform(
            SEARCH_TICKETS,
            &SEARCH_PARAMS_V1,
            (2, SEARCH_TICKETS),
            search_v1,
        )
        .transform(TICKET_STATS, &[], (2, TICKET_STATS), stats_v1);
    catalog
}

// ----- version 2, over the view -----

fn get_ticket(view: &TicketsView, args: &Args<'_>) -> Result<Value, QueryError> {
    let id = args.required_str("id")?;
    let ticket = view
        .ticket(id)
        .ok_or_else(|| QueryError::not_found(format!("there is no ticket `{id}`")))?;
    ticket_detail(ticket, args).map(Value::Object)
}

fn search_tickets(view: &TicketsView, args: &Args<'_>) -> Result<Value, QueryError> {
    // An empty value means the same as leaving the argument out (`?status=` from a form).
    let given = |name: &str| -> Result<Option<&str>, QueryError> {
        Ok(args.str(name)?.filter(|value| !value.is_empty()))
    };
    let status = given("status")?
        .map(|name| {
            Status::parse(name)
                .ok_or_else(|| QueryError::bad_argument("status", "must be open or closed"))
        })
        .transpose()?;
    let priority = given("priority")?
        .map(|name| {
            parse_priority(name).ok_or_else(|| {
                QueryError::bad_argument("priority", "must be low, normal, high or urgent")
            })
        })
        .transpose()?;
    let request = SEARCH_PAGING.request::<()>(args)?;
    let filter = TicketFilter {
        status,
        assignee: given("assignee")?.map(str::to_owned),
        priority,
        text: given("text")?.map(str::to_owned),
    };
    let after = request.cursor.as_ref().map(Cursor::number);
    let page = view.search(&filter, after, request.limit);
    let page = Page {
        items: page.items,
        total: page.total,
        next: page.next_after.map(Cursor::after),
    };
    Ok(page.to_json(|ticket| Value::Object(ticket_summary(ticket))))
}

fn ticket_stats(view: &TicketsView, _: &Args<'_>) -> Result<Value, QueryError> {
    let by_priority: Map<String, Value> = PRIORITIES
        .into_iter()
        .map(|p| (priority_name(p).to_owned(), view.count_priority(p).into()))
        .collect();
    Ok(json!({
        "open": view.count(Status::Open),
        "closed": view.count(Status::Closed),
        "total": view.len(),
        "byPriority": by_priority,
    }))
}

// ----- version 1, transformers of version 2 -----

/// v1 `getTicket`: v2's ticket without `history`.
fn ticket_v1(mut ticket: Value) -> Result<Value, QueryError> {
    remove_field(&mut ticket, "history")?;
    Ok(ticket)
}

/// v1 `searchTickets`: v2's first page as a bare array (no `total`, no `cursor`).
fn search_v1(mut page: Value) -> Result<Value, QueryError> {
    match page.get_mut("items") {
        Some(items @ Value::Array(_)) => Ok(items.take()),
        _ => Err(QueryError::failed("v2 searchTickets answered no items")),
    }
}

/// v1 `ticketStats`: v2's counts without `byPriority`.
fn stats_v1(mut stats: Value) -> Result<Value, QueryError> {
    remove_field(&mut stats, "byPriority")?;
    Ok(stats)
}

fn remove_field(value: &mut Value, field: &str) -> Result<(), QueryError> {
    value
        .as_object_mut()
        .ok_or_else(|| QueryError::failed("the v2 answer is not an object"))?
        .remove(field);
    Ok(())
}

// ----- shapes -----

fn text(s: &str) -> Value {
    Value::String(s.to_owned())
}

fn time(ms: u64) -> Value {
    Value::String(rfc3339::format_millis(ms))
}

/// A ticket without its comments and history: what searches list.
fn ticket_summary(t: &Ticket) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("id".into(), text(&t.id));
    out.insert("title".into(), text(&t.title));
    out.insert(
        "description".into(),
        t.description.as_deref().map_or(Value::Null, text),
    );
    out.insert("reporter".into(), text(&t.reporter));
    out.insert("priority".into(), text(priority_name(t.priority)));
    out.insert("status".into(), text(t.status.as_str()));
    out.insert(
        "assignee".into(),
        t.assignee.as_deref().map_or(Value::Null, text),
    );
    out.insert("commentCount".into(), t.comments.len().into());
    out.insert("createdAt".into(), time(t.created.recorded_at_ms));
    out.insert("createdPosition".into(), t.created.position.into());
    out.insert("updatedAt".into(), time(t.updated.recorded_at_ms));
    out.insert("updatedPosition".into(), t.updated.position.into());
    out
}

/// A ticket with its comments and history: what `getTicket` answers. Both lists grow
/// without bound, so query code gets them within its budget (see [`Args::array`]).
fn ticket_detail(t: &Ticket, args: &Args<'_>) -> Result<Map<String, Value>, QueryError> {
    let mut out = ticket_summary(t);
    out.insert(
        "comments".into(),
        args.array(t.comments.iter().map(comment))?,
    );
    out.insert(
        "history".into(),
        args.array(t.history.iter().map(status_change))?,
    );
    Ok(out)
}

fn comment(c: &Comment) -> Value {
    json!({
        "id": c.id.to_string(),
        "author": &*c.author,
        "text": &*c.text,
        "position": c.at.position,
        "recordedAt": time(c.at.recorded_at_ms),
    })
}

fn status_change(change: &StatusChange) -> Value {
    let mut out = Map::new();
    out.insert("status".into(), text(change.status.as_str()));
    out.insert("at".into(), time(change.at.recorded_at_ms));
    out.insert("position".into(), change.at.position.into());
    if let Some(note) = &change.note {
        let key = match change.status {
            Status::Closed => "resolution",
            Status::Open => "reason",
        };
        out.insert(key.into(), text(note));
    }
    Value::Object(out)
}
