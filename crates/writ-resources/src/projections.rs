//! `projections/P.js`: read models without compiled code, each a [`ReadModelSpec`] named `P`
//! (version 1) whose state is named tables of JSON documents, changed event by event by the
//! file's functions and read by its named queries, in writ-sandbox's deterministic
//! [`Script`] engine. Snapshotted like every read model with a snapshot format: a start
//! loads the newest snapshot written by the same files (the file itself, and the types'
//! schemas and migrations, which upcast the events it is given) and replays the rest of
//! the log; a changed file replays it from position 1.
//!
//! # What the file declares
//!
//! - **Event functions.** Every top-level `function` whose name begins with an uppercase
//!   letter is applied to the events of that type, of any domain or resource type:
//!   `function UserCreated(event, ctx)`, `function OrderPaid(event, ctx)`. A name that is no
//!   event type of the domains served applies nothing, and the server warns of it at
//!   startup, naming the file and the line. Other functions (`function
//!   applyPatch(doc, ops)`) are helpers.
//! - **Queries.** `const queries = { userProfile({id}, ctx) {...} }`: each function of the
//!   top-level `queries` object is a named query of query API version 1
//!   (`/query/v1/userProfile?id=`, and `userProfile({id})` or `userProfile(id)` in query
//!   code). Its parameters are the names its first parameter destructures (`{id}`); it
//!   answers JSON, or `null` for `404`.
//!
//! `event` is `{type, stream, id, position, version, recordedAt, commandId, correlationId,
//! data}`: `id` is the stream's name after its first `-` (`users-u1` gives `u1`, the
//! document's id for a resource type's events), `recordedAt` RFC 3339 in UTC. `ctx` has
//! `ctx.get(table, key)` (the document, or `null`), `ctx.put(table, key, doc)` and
//! `ctx.delete(table, key)`; tables and keys are strings, documents JSON. Queries have
//! `ctx.get` only: `put` and `delete` throw there. What a function returns is ignored.
//!
//! An event function that throws or breaks a limit changes nothing (its puts are undone)
//! and the event is skipped, as a compiled projection's inconsistent event is: the read
//! model's status shows it. Each table holds at most [`TABLE_ROWS_MAX`] documents.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use imbl::OrdMap;
use serde_json::{Value, json};
use writ_query::snapshot::{Reader, SnapshotError, Writer};
use writ_query::{
    ApplyError, Args, Projection, QueryCatalog, QueryError, ReadModelSpec, RecordedEvent,
};
use writ_sandbox::{
    CompileError, HostAnswer, Script, ScriptArg, ScriptHost, ScriptLimits, ScriptOptions,
};

use crate::bundle::AppFiles;
use crate::load::LoadError;

/// The limits of one call of a projection's function: as a handler's.
pub const PROJECTION_LIMITS: ScriptLimits = crate::handlers::HANDLER_LIMITS;

/// Most documents one table of a projection holds; a `put` beyond throws.
pub const TABLE_ROWS_MAX: usize = 10_000_000;

/// Longest table name or key, in bytes.
pub const KEY_BYTES_MAX: usize = 1_024;

/// The query API version a projection's queries are.
pub const QUERY_VERSION: u32 = 1;

/// A projection's state: its tables, by name, each its documents by key, in key order.
/// Cheap to clone (persistent maps).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tables {
    tables: OrdMap<Arc<str>, OrdMap<Arc<str>, Arc<Value>>>,
}

impl Tables {
    /// The document `key` of table `table`.
    pub fn get(&self, table: &str, key: &str) -> Option<&Value> {
        self.tables
            .get(table)
            .and_then(|rows| rows.get(key))
            .map(|doc| &**doc)
    }

    /// How many documents table `table` holds.
    pub fn len(&self, table: &str) -> usize {
        self.tables.get(table).map_or(0, OrdMap::len)
    }

    /// The tables for a snapshot: their count, then each table's name, its count of
    /// documents and each document's key and JSON value (see the `snapshot` module), in
    /// name and key order.
    fn save(&self, out: &mut Writer) {
        out.len_prefix(self.tables.len());
        for (table, rows) in &self.tables {
            out.str(table);
            out.len_prefix(rows.len());
            for (key, document) in rows {
                out.str(key);
                crate::snapshot::save_json(document, out);
            }
        }
    }

    /// Reads what [`Tables::save`] wrote, checking what `ctx.get` and `ctx.put` rely on:
    /// names and keys of 1 to [`KEY_BYTES_MAX`] bytes in ascending order (so none twice),
    /// tables of 1 to [`TABLE_ROWS_MAX`] documents (a table's last delete removes it).
    fn load(input: &mut Reader<'_>) -> Result<Self, SnapshotError> {
        fn key(input: &mut Reader<'_>, after: Option<&str>) -> Result<Arc<str>, SnapshotError> {
            let key = input.str()?;
            if key.is_empty() || key.len() > KEY_BYTES_MAX {
                return Err(input.invalid("a table name or key out of bounds"));
            }
            if after.is_some_and(|after| after >= key) {
                return Err(input.invalid("table names or keys out of order"));
            }
            Ok(key.into())
        }
        // A table takes at least 3 bytes (a name, a count), a document 3 (a key, a null).
        let count = input.count(3)?;
        let mut tables = OrdMap::new();
        let mut last: Option<Arc<str>> = None;
        for _ in 0..count {
            let table = key(input, last.as_deref())?;
            let rows_count = input.count(3)?;
            if rows_count == 0 || rows_count > TABLE_ROWS_MAX {
                return Err(input.invalid("a table of no documents or too many"));
            }
            let mut rows = OrdMap::new();
            let mut last_key: Option<Arc<str>> = None;
            for _ in 0..rows_count {
                let row = key(input, last_key.as_deref())?;
                let document = crate::snapshot::load_json(input)?;
                rows.insert(Arc::clone(&row), Arc::new(document));
                last_key = Some(row);
            }
            tables.insert(Arc::clone(&table), rows);
            last = Some(table);
        }
        Ok(Self { tables })
    }
}

/// A compiled `projections/P.js`.
#[derive(Debug)]
pub struct ScriptProjection {
    name: &'static str,
    /// The file, for messages.
    file: std::path::PathBuf,
    script: Script,
    /// The event types it applies (its uppercase functions), leaked once per load.
    events: &'static [&'static str],
    /// Its source, for the places of its functions in messages.
    source: String,
    /// The code tag of its read model's snapshots (see the `snapshot` module): the digest
    /// of its source, and of the types' files when it was loaded with an app's.
    code_tag: String,
}

impl ScriptProjection {
    /// Compiles `body`, the file `file`, as projection `name` (shown in messages as
    /// `label`, e.g. `projections/profiles.js`).
    pub fn load(
        file: &Path,
        body: &[u8],
        label: &str,
        name: &'static str,
    ) -> Result<Self, LoadError> {
        let source = crate::load::script_source(file, body)?.to_owned();
        let script = compile(label, &source).map_err(|error| LoadError::Script {
            file: file.to_owned(),
            line: error.line,
            column: error.column,
            detail: error.message,
        })?;
        let events: Vec<&'static str> = script
            .functions()
            .iter()
            .filter(|f| f.bytes().next().is_some_and(|b| b.is_ascii_uppercase()))
            .map(|f| &*Box::leak(f.clone().into_boxed_str()))
            .collect();
        let code_tag = crate::snapshot::source_tag(label, body);
        Ok(Self {
            name,
            file: file.to_owned(),
            script,
            events: Box::leak(events.into_boxed_slice()),
            source,
            code_tag,
        })
    }

    /// The projection's name: `P`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The file it was loaded from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The event types it applies.
    pub fn event_types(&self) -> &'static [&'static str] {
        self.events
    }

    /// Its queries' names, with their parameters.
    pub fn queries(&self) -> Vec<(String, Vec<String>)> {
        self.script
            .members("queries")
            .unwrap_or_default()
            .iter()
            .map(|member| (member.name.clone(), member.params.clone()))
            .collect()
    }

    /// Its event functions whose names are none of `known` (the event types of the domains
    /// and types served): each a message naming the file and the function's place. Such a
    /// function applies nothing until a domain that records the type is served beside it
    /// (`profiles.js` reads the orders domain's events, served or not), so the server warns
    /// of them rather than refusing them.
    pub fn unknown_events(&self, known: &[String]) -> Vec<String> {
        self.events
            .iter()
            .filter(|event| !known.iter().any(|k| k == *event))
            .map(|event| {
                let needle = format!("function {event}");
                let at = self.source.find(&needle).unwrap_or(0);
                let before = &self.source[..at];
                let line = before.matches('\n').count() + 1;
                let column = at - before.rfind('\n').map_or(0, |n| n + 1) + 1;
                format!(
                    "{}:{line}:{column}: function {event} names no event type of the domains and resource types served: it applies nothing (functions whose names begin with an uppercase letter apply the events of that type; name a helper in lowercase)",
                    self.file.display()
                )
            })
            .collect()
    }

    /// The read model's projection, to build or snapshot its state directly
    /// ([`writ_query::Replay`], [`Projection::save`], [`Projection::load`]): tests, fuzzing.
    pub fn projection(self: &Arc<Self>) -> impl Projection<State = Tables> {
        Applier {
            projection: Arc::clone(self),
            code_tag: self.code_tag.clone(),
        }
    }

    /// The read model: the projection, and its queries in query API version 1.
    pub fn read_model(self: &Arc<Self>) -> ReadModelSpec {
        self.read_model_beside(&[])
    }

    /// [`ScriptProjection::read_model`] served beside the compiled domains `domains` (their
    /// names): whether a domain is served decides whether its streams' events reach the
    /// projection upcast or as recorded, so the names are part of its snapshots' code tag.
    pub fn read_model_beside(self: &Arc<Self>, domains: &[String]) -> ReadModelSpec {
        let mut catalog = QueryCatalog::<Tables>::new();
        for (query, params) in self.queries() {
            let params: Vec<&str> = params.iter().map(String::as_str).collect();
            let projection = Arc::clone(self);
            let function = format!("queries.{query}");
            catalog.version(QUERY_VERSION).query(
                &query,
                &params,
                move |tables: &Tables, args: &Args<'_>| projection.answer(&function, tables, args),
            );
        }
        ReadModelSpec::new(
            Applier {
                projection: Arc::clone(self),
                code_tag: crate::snapshot::beside(&self.code_tag, domains),
            },
            catalog,
        )
    }

    fn answer(
        &self,
        function: &str,
        tables: &Tables,
        args: &Args<'_>,
    ) -> Result<Value, QueryError> {
        let host = Arc::new(Host::new(tables.clone(), false));
        let answer = self
            .script
            .call(
                function,
                &[Value::Object(args.map().clone()), json!({})],
                Some(host),
            )
            .map_err(|error| QueryError::Failed {
                detail: format!("{}: {function}: {error}", self.file.display()),
            })?;
        if answer.is_null() {
            return Err(QueryError::not_found(format!(
                "{} answered null",
                function.trim_start_matches("queries.")
            )));
        }
        args.charge(&answer)?;
        Ok(answer)
    }
}

fn compile(label: &str, source: &str) -> Result<Script, CompileError> {
    Script::compile(
        label,
        source,
        ScriptOptions {
            limits: PROJECTION_LIMITS,
            reject: false,
            host_methods: vec!["get".into(), "put".into(), "delete".into()],
            bindings: vec!["queries".into()],
        },
    )
}

/// What `ctx.get`, `ctx.put` and `ctx.delete` reach during one call: the tables, moved in
/// for the call and taken back after, and what the call changed, to undo it.
struct Host {
    call: Mutex<Call>,
    writable: bool,
}

/// A call's tables and its undo log.
#[derive(Default)]
struct Call {
    tables: Tables,
    /// Each change the call made, in order: the table, the key and the document before
    /// (`None`: there was none). Undone in reverse, it gives back the tables as they were
    /// before the call, without keeping a second copy of them: a change to a table the
    /// call alone holds is made in place.
    undo: Vec<Change>,
}

/// One change a call made: the table, the key and the document before (`None`: none).
type Change = (Arc<str>, Arc<str>, Option<Arc<Value>>);

impl Call {
    /// Undoes every change the call made, the last first.
    fn undo(&mut self) {
        while let Some((table, key, before)) = self.undo.pop() {
            match before {
                Some(document) => {
                    self.tables
                        .tables
                        .entry(table)
                        .or_default()
                        .insert(key, document);
                }
                None => {
                    if let Some(rows) = self.tables.tables.get_mut(&table) {
                        rows.remove(&key);
                        // No table is ever empty: one emptied by undoing was made by the call.
                        if rows.is_empty() {
                            self.tables.tables.remove(&table);
                        }
                    }
                }
            }
        }
    }
}

impl Host {
    fn new(tables: Tables, writable: bool) -> Self {
        Self {
            call: Mutex::new(Call {
                tables,
                undo: Vec::new(),
            }),
            writable,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Call> {
        // A panic while it was held left whole tables and a whole undo log: each change is
        // recorded as it is made.
        self.call.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Gives `state` back its tables when an event function's call ends, however it ends: as
/// the call left them when it succeeded, as they were before it otherwise (it threw, broke
/// a limit, or panicked).
struct Restore<'a> {
    state: &'a mut Tables,
    host: Arc<Host>,
    keep: bool,
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        let mut call = self.host.lock();
        if !self.keep {
            call.undo();
        }
        *self.state = std::mem::take(&mut call.tables);
    }
}

fn key_of(args: &[Value], at: usize, what: &str) -> Result<Arc<str>, String> {
    match args.get(at) {
        Some(Value::String(key)) if !key.is_empty() && key.len() <= KEY_BYTES_MAX => {
            Ok(key.as_str().into())
        }
        other => Err(format!(
            "the {what} is a string of 1 to {KEY_BYTES_MAX} bytes, not {}",
            other.map_or("nothing".to_owned(), Value::to_string)
        )),
    }
}

impl ScriptHost for Host {
    fn call(&self, method: &str, args: Vec<Value>) -> Result<HostAnswer, String> {
        let table = key_of(&args, 0, "table")?;
        let key = key_of(&args, 1, "key")?;
        if method != "get" && !self.writable {
            return Err(format!("ctx.{method}: queries only read (ctx.get)"));
        }
        let mut call = self.lock();
        let call = &mut *call;
        match method {
            "get" => Ok(match call.tables.get(&table, &key) {
                // Written out from the stored document: no copy of it is made.
                Some(document) => HostAnswer::Json(document.to_string()),
                None => HostAnswer::Value(Value::Null),
            }),
            "put" => {
                let document = args.into_iter().nth(2).unwrap_or(Value::Null);
                let rows = call.tables.tables.entry(Arc::clone(&table)).or_default();
                if rows.len() >= TABLE_ROWS_MAX && !rows.contains_key(&key) {
                    return Err(format!(
                        "ctx.put: a table holds at most {TABLE_ROWS_MAX} documents"
                    ));
                }
                let before = rows.insert(Arc::clone(&key), Arc::new(document));
                call.undo.push((table, key, before));
                Ok(HostAnswer::Value(Value::Null))
            }
            "delete" => {
                if let Some(rows) = call.tables.tables.get_mut(&table)
                    && let Some(before) = rows.remove(&key)
                {
                    if rows.is_empty() {
                        call.tables.tables.remove(&table);
                    }
                    call.undo.push((table, key, Some(before)));
                }
                Ok(HostAnswer::Value(Value::Null))
            }
            other => Err(format!("ctx.{other} is not a method")),
        }
    }

    fn restart(&self) {
        self.lock().undo();
    }
}

/// The [`Projection`] of a [`ScriptProjection`].
#[derive(Debug, Clone)]
struct Applier {
    projection: Arc<ScriptProjection>,
    /// Its snapshots' code tag: the projection's, with the domains served beside it.
    code_tag: String,
}

impl Projection for Applier {
    type State = Tables;
    /// The event as the script's `event` argument, in JSON text.
    type Decoded = String;

    fn name(&self) -> &'static str {
        self.projection.name
    }

    fn version(&self) -> u32 {
        1
    }

    fn event_types(&self) -> &[&'static str] {
        self.projection.events
    }

    fn snapshot_format(&self) -> Option<u32> {
        Some(crate::snapshot::FORMAT)
    }

    /// The digest of its source and of the files that upcast the events it is given (see
    /// the `snapshot` module).
    fn code_tag(&self) -> Option<String> {
        Some(self.code_tag.clone())
    }

    fn save(&self, state: &Tables, out: &mut Writer) {
        state.save(out);
    }

    fn load(&self, input: &mut Reader<'_>) -> Result<Tables, SnapshotError> {
        Tables::load(input)
    }

    fn initial_state(&self) -> Tables {
        Tables::default()
    }

    /// Writes `event` as the JSON text of the script's `event` argument, its members in
    /// name order, `data` as recorded (checked to be JSON, not parsed into a value only
    /// to be written out again).
    fn decode(&self, event: &RecordedEvent) -> Result<String, ApplyError> {
        serde_json::from_slice::<serde::de::IgnoredAny>(&event.data).map_err(|e| {
            ApplyError::InvalidData {
                detail: format!("event {}: {e}", event.position),
            }
        })?;
        let id = event.stream.split_once('-').map(|(_, id)| id);
        fn value(text: &mut Vec<u8>, name: &[u8], value: &impl serde::Serialize) {
            text.extend_from_slice(name);
            // A string, a number or `null`: writing it to memory cannot fail.
            serde_json::to_writer(text, value).expect("a string or number is written as JSON");
        }
        let mut text = Vec::with_capacity(event.data.len() + 256);
        value(&mut text, b"{\"commandId\":", &event.command_id.to_string());
        value(
            &mut text,
            b",\"correlationId\":",
            &event.correlation_id.to_string(),
        );
        // As recorded: checked above to be one JSON value.
        text.extend_from_slice(b",\"data\":");
        text.extend_from_slice(&event.data);
        value(&mut text, b",\"id\":", &id);
        value(&mut text, b",\"position\":", &event.position);
        value(
            &mut text,
            b",\"recordedAt\":",
            &writ_query::rfc3339::format_millis(event.recorded_at_ms),
        );
        value(&mut text, b",\"stream\":", &event.stream);
        value(&mut text, b",\"type\":", &event.event_type);
        value(&mut text, b",\"version\":", &event.version);
        text.push(b'}');
        // Valid UTF-8: JSON written by serde_json around data that parsed as JSON.
        String::from_utf8(text).map_err(|e| ApplyError::InvalidData {
            detail: format!("event {}: {e}", event.position),
        })
    }

    fn apply(
        &self,
        state: &mut Tables,
        event: &RecordedEvent,
        decoded: String,
    ) -> Result<(), ApplyError> {
        // The tables move into the call and come back when it ends: changed in place
        // where nothing else shares them, the changes undone if the call fails.
        let host = Arc::new(Host::new(std::mem::take(state), true));
        let mut restore = Restore {
            state,
            host: Arc::clone(&host),
            keep: false,
        };
        let outcome = self.projection.script.call_with(
            &event.event_type,
            &[ScriptArg::Json(&decoded), ScriptArg::Json("{}")],
            Some(host as Arc<dyn ScriptHost>),
        );
        match outcome {
            Ok(_) => {
                restore.keep = true;
                Ok(())
            }
            // Nothing it put is kept: `restore` undoes it.
            Err(error) => Err(ApplyError::Inconsistent {
                detail: format!(
                    "{}: {}: {}",
                    self.projection.file.display(),
                    event.event_type,
                    error
                ),
            }),
        }
    }
}

/// Compiles `dir/projections/P.js` for each file there; refuses a file that is not
/// `P.js` with `P` a name as types have (`[a-z][a-z0-9]*`, not reserved), or one named
/// after a type.
pub(crate) fn load_all(
    files: &AppFiles,
    types: &[crate::kind::ResourceType],
) -> Result<Vec<Arc<ScriptProjection>>, LoadError> {
    let type_names: Vec<&str> = types.iter().map(|t| t.name).collect();
    let mut projections = Vec::new();
    for (entry, body) in files.list("projections") {
        let file = files.path(&format!("projections/{entry}"));
        let name_error = |detail: String| LoadError::Name {
            file: file.clone(),
            detail,
        };
        let (Some(name), Some(body)) = (entry.strip_suffix(".js"), body) else {
            return Err(name_error(
                "projections/ holds read models, each a file P.js".to_owned(),
            ));
        };
        let mut bytes = name.bytes();
        let well_formed = bytes.next().is_some_and(|b| b.is_ascii_lowercase())
            && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && name.len() <= crate::load::NAME_BYTES_MAX;
        if !well_formed || crate::load::RESERVED_NAMES.contains(&name) {
            return Err(name_error(format!(
                "{name:?} is not a read model name: lowercase letters and digits, beginning with a letter, at most {} bytes, not one of {}",
                crate::load::NAME_BYTES_MAX,
                crate::load::RESERVED_NAMES.join(", ")
            )));
        }
        if type_names.contains(&name) {
            return Err(name_error(format!(
                "{name:?} is the name of a resource type, whose read model has it; name the projection otherwise"
            )));
        }
        let name: &'static str = Box::leak(name.to_owned().into_boxed_str());
        let label = format!("projections/{name}.js");
        let mut projection = ScriptProjection::load(&file, body, &label, name)?;
        projection.code_tag = crate::snapshot::projection_tag(files, name, types);
        projections.push(Arc::new(projection));
    }
    Ok(projections)
}

impl crate::load::ResourceSet {
    /// The app directory's `projections/P.js`, by name order.
    pub fn projections(&self) -> &[Arc<ScriptProjection>] {
        &self.projections
    }

    /// The read model of each `projections/P.js`, by name order: register them beside the
    /// types' own.
    pub fn projection_read_models(&self) -> Vec<ReadModelSpec> {
        self.projection_read_models_beside(&[])
    }

    /// [`projection_read_models`](crate::ResourceSet::projection_read_models) served
    /// beside the compiled domains `domains` (see [`ScriptProjection::read_model_beside`]):
    /// what a server registers.
    pub fn projection_read_models_beside(&self, domains: &[String]) -> Vec<ReadModelSpec> {
        self.projections
            .iter()
            .map(|projection| projection.read_model_beside(domains))
            .collect()
    }

    /// The projections' event functions that name none of `known` (the event types of
    /// every domain and type served), each a message with the file and the place: see
    /// [`ScriptProjection::unknown_events`].
    pub fn unknown_projection_events(&self, known: &[String]) -> Vec<String> {
        self.projections
            .iter()
            .flat_map(|projection| projection.unknown_events(known))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every table, row by row: two `Tables` with the same rows give the same list.
    fn rows(tables: &Tables) -> Vec<(String, String, Value)> {
        tables
            .tables
            .iter()
            .flat_map(|(table, rows)| {
                rows.iter()
                    .map(|(key, doc)| (table.to_string(), key.to_string(), (**doc).clone()))
            })
            .collect()
    }

    /// Puts and deletes of every kind (a new row, an overwritten one, a deleted one, a row
    /// deleted and put again, a table emptied and made again), then undone: the tables as
    /// they were, with no empty table left behind.
    #[test]
    fn undoing_a_call_gives_back_the_tables_before_it() {
        let host = Host::new(Tables::default(), true);
        let op = |method: &str, table: &str, key: &str, doc: Option<Value>| {
            let mut args = vec![json!(table), json!(key)];
            args.extend(doc);
            host.call(method, args).unwrap();
        };
        op("put", "a", "1", Some(json!({"n": 1})));
        op("put", "a", "2", Some(json!({"n": 2})));
        op("put", "b", "1", Some(json!([1])));
        host.lock().undo.clear();
        let before = rows(&host.lock().tables);
        // A deterministic mix over few tables and keys, so that rows and tables come and go.
        let mut seed = 7u64;
        for step in 0..500 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let table = ["a", "b", "c"][(seed >> 33) as usize % 3];
            let key = ["1", "2", "3", "4"][(seed >> 40) as usize % 4];
            if (seed >> 50).is_multiple_of(3) {
                op("delete", table, key, None);
            } else {
                op("put", table, key, Some(json!({"step": step})));
            }
            if step % 97 == 0 {
                let mut call = host.lock();
                call.undo();
                assert_eq!(rows(&call.tables), before, "after step {step}");
            }
        }
        host.restart();
        let call = host.lock();
        assert_eq!(rows(&call.tables), before);
        assert!(call.tables.tables.values().all(|rows| !rows.is_empty()));
        assert!(call.undo.is_empty());
    }
}
