//! The named queries over the [`CountersView`] and their JSON shapes; the module
//! documentation of [`read`](super) describes them.

use serde_json::{Map, Value, json};
use writ_query::paging::Paging;
use writ_query::{Args, QueryCatalog, QueryError, rfc3339};

use super::view::{Counter, CounterFilter, CountersView, Status, StatusChange};

/// `getCounter`.
pub const GET_COUNTER: &str = "getCounter";
/// `listCounters`.
pub const LIST_COUNTERS: &str = "listCounters";
/// `counterStats`.
pub const COUNTER_STATS: &str = "counterStats";

/// `listCounters`' `limit` when none is given, and the largest it takes.
const LIST_PAGING: Paging = Paging::new(50, 1000);

const LIST_PARAMS_V1: [&str; 3] = ["status", "owner", "limit"];
const LIST_PARAMS_V2: [&str; 4] = ["status", "owner", "limit", "cursor"];

/// The counters queries: version 2 over the view, version 1 as transformers of version 2.
pub fn catalog() -> QueryCatalog<CountersView> {
    let mut catalog = QueryCatalog::new();
    let _ = catalog
        .version(2)
        .requires_projection_version(2)
        .query(GET_COUNTER, &["id"], get_counter)
        .query(LIST_COUNTERS, &LIST_PARAMS_V2, list_counters)
        .query(COUNTER_STATS, &[], counter_stats);
    let _ = catalog
        .version(1)
        .transform(GET_COUNTER, &["id"], (2, GET_COUNTER), |mut counter| {
            remove_field(&mut counter, "history")?;
            Ok(counter)
        })
        .transform(
            LIST_COUNTERS,
            &LIST_PARAMS_V1,
            (2, LIST_COUNTERS),
            |mut page| match page.get_mut("items") {
                Some(items @ Value::Array(_)) => Ok(items.take()),
                _ => Err(QueryError::failed("v2 listCounters answered no items")),
            },
        )
        .transform(COUNTER_STATS, &[], (2, COUNTER_STATS), |mut stats| {
            remove_field(&mut stats, "owners")?;
            Ok(stats)
        });
    catalog
}

fn get_counter(view: &CountersView, args: &Args<'_>) -> Result<Value, QueryError> {
    let id = args.required_str("id")?;
    let counter = view
        .counter(id)
        .ok_or_else(|| QueryError::not_found(format!("there is no counter `{id}`")))?;
    let mut out = summary(counter);
    out.insert(
        "history".into(),
        counter
            .history
            .iter()
            .map(change)
            .collect::<Vec<_>>()
            .into(),
    );
    Ok(Value::Object(out))
}

fn list_counters(view: &CountersView, args: &Args<'_>) -> Result<Value, QueryError> {
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
    let filter = CounterFilter {
        status,
        owner: given("owner")?.map(str::to_owned),
    };
    let request = LIST_PAGING.request::<()>(args)?;
    let page = view.list(&filter, &request);
    Ok(page.to_json(|counter| Value::Object(summary(counter))))
}

fn counter_stats(view: &CountersView, _: &Args<'_>) -> Result<Value, QueryError> {
    Ok(json!({
        "open": view.count(Status::Open),
        "closed": view.count(Status::Closed),
        "total": view.len(),
        "owners": view.owners(),
    }))
}

fn remove_field(value: &mut Value, field: &str) -> Result<(), QueryError> {
    value
        .as_object_mut()
        .ok_or_else(|| QueryError::failed("the v2 answer is not an object"))?
        .remove(field);
    Ok(())
}

fn time(ms: u64) -> Value {
    Value::String(rfc3339::format_millis(ms))
}

/// A counter without its history: what listings hold.
fn summary(c: &Counter) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("id".into(), c.id.as_ref().into());
    out.insert("title".into(), c.title.as_ref().into());
    out.insert("owner".into(), c.owner.as_ref().into());
    out.insert("status".into(), c.status.as_str().into());
    out.insert("value".into(), c.value.into());
    out.insert("additions".into(), c.additions.into());
    out.insert("createdAt".into(), time(c.created.recorded_at_ms));
    out.insert("createdPosition".into(), c.created.position.into());
    out.insert("updatedAt".into(), time(c.updated.recorded_at_ms));
    out.insert("updatedPosition".into(), c.updated.position.into());
    out
}

fn change(change: &StatusChange) -> Value {
    let mut out = Map::new();
    out.insert("status".into(), change.status.as_str().into());
    out.insert("at".into(), time(change.at.recorded_at_ms));
    out.insert("position".into(), change.at.position.into());
    if let Some(reason) = &change.reason {
        out.insert("reason".into(), reason.as_ref().into());
    }
    Value::Object(out)
}
