//! Each type's read model: a [`Table`] of its live documents, keyed by id, in the order
//! they were created, with the version of each one's stream. Built from the log like every
//! read model (so it follows `?after=` and rebuilds), read by [`ResourceSet::get`] and
//! [`ResourceSet::list`].

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};
use writ_domain::Violation;
use writ_query::collections::{Row, Selection, Table};
use writ_query::paging::Paging;
use writ_query::snapshot::{Reader, SnapshotError, Writer};
use writ_query::{
    ApplyError, Args, Projection, QueryCatalog, QueryError, ReadModelSpec, RecordedEvent, Snapshots,
};

use crate::domain::fold_document;
use crate::kind::{Action, ResourceType};
use crate::load::ResourceSet;

/// `GET /T`: 50 documents a page unless asked, at most 1,000.
pub const PAGING: Paging = Paging::new(50, 1_000);

/// One live document.
#[derive(Debug, Clone, PartialEq)]
struct Document {
    id: Arc<str>,
    /// The document with its `id` among its members, as reads answer it.
    body: Arc<Value>,
    /// Its stream's version.
    version: u64,
    /// The oldest schema version among the events it was folded from since it was
    /// created or last replaced: below the type's version, it reads through migrations
    /// (or as recorded).
    recorded: u32,
}

impl Row for Document {
    fn key(&self) -> &str {
        &self.id
    }
}

impl Document {
    /// Its id, its body (see the `snapshot` module), its version and its schema version.
    fn save(&self, out: &mut Writer) {
        out.str(&self.id);
        crate::snapshot::save_json(&self.body, out);
        out.varint(self.version);
        out.varint(u64::from(self.recorded));
    }

    /// Reads what [`Document::save`] wrote, checking what reads rely on: an id as commands
    /// take them, and a body that is an object whose `id` is it.
    fn load(input: &mut Reader<'_>) -> Result<Self, SnapshotError> {
        let id = input.str()?;
        if ResourceType::check_id(id).is_err() {
            return Err(input.invalid("a document id out of bounds"));
        }
        let body = crate::snapshot::load_json(input)?;
        if body.get("id").and_then(Value::as_str) != Some(id) {
            return Err(input.invalid("a document that is not an object with its id"));
        }
        let version = input.varint()?;
        let recorded = u32::try_from(input.varint()?)
            .map_err(|_| input.invalid("a schema version out of range"))?;
        Ok(Self {
            id: id.into(),
            body: Arc::new(body),
            version,
            recorded,
        })
    }
}

/// The live documents of one type. Equal when they hold the same documents in the same
/// places (a snapshot loads back equal to the state saved).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Documents {
    table: Table<Document>,
}

/// The projection of one type's documents.
#[derive(Debug, Clone)]
pub(crate) struct DocumentsProjection {
    pub(crate) ty: Arc<ResourceType>,
}

/// A document's event, decoded ahead of applying: the document's id (its body is folded in
/// `apply`, which needs the current document for a patch).
#[derive(Debug)]
pub(crate) struct Decoded {
    id: String,
}

/// The document with `id` among its members (its own `id`, if it has one, replaced).
fn with_id(id: &str, document: Value) -> Value {
    let mut members = match document {
        Value::Object(members) => members,
        _ => Map::new(),
    };
    members.insert("id".to_owned(), Value::String(id.to_owned()));
    Value::Object(members)
}

/// The document of `body` (a read's), without its `id`.
fn without_id(body: &Value) -> Value {
    let mut document = body.clone();
    if let Value::Object(members) = &mut document {
        members.remove("id");
    }
    document
}

impl Projection for DocumentsProjection {
    type State = Documents;
    type Decoded = Decoded;

    fn name(&self) -> &'static str {
        self.ty.name
    }

    fn version(&self) -> u32 {
        1
    }

    fn event_types(&self) -> &[&'static str] {
        self.ty.document_events
    }

    fn snapshot_format(&self) -> Option<u32> {
        Some(crate::snapshot::FORMAT)
    }

    /// The digest of the type's files that determine its documents (see the `snapshot`
    /// module).
    fn code_tag(&self) -> Option<String> {
        Some(self.ty.code_tag.clone())
    }

    /// The table of documents: its next number, then each number's document (id, body,
    /// version, schema version) or a removed row.
    fn save(&self, state: &Documents, out: &mut Writer) {
        state
            .table
            .save_with(out, |out, document| document.save(out));
    }

    fn load(&self, input: &mut Reader<'_>) -> Result<Documents, SnapshotError> {
        let table =
            writ_query::collections::Table::load_with(input, |input, _| Document::load(input))?;
        Ok(Documents { table })
    }

    fn initial_state(&self) -> Documents {
        Documents::default()
    }

    fn decode(&self, event: &RecordedEvent) -> Result<Decoded, ApplyError> {
        let id = event
            .stream
            .strip_prefix(self.ty.document_prefix().as_str())
            .ok_or_else(|| ApplyError::Inconsistent {
                detail: format!(
                    "stream {} is not a {} document's",
                    event.stream, self.ty.name
                ),
            })?;
        Ok(Decoded { id: id.to_owned() })
    }

    fn apply(
        &self,
        state: &mut Documents,
        event: &RecordedEvent,
        decoded: Decoded,
    ) -> Result<(), ApplyError> {
        let Decoded { id, .. } = decoded;
        let mut document = state.table.get(&id).map(|d| without_id(&d.body));
        let existed = document.is_some();
        fold_document(&self.ty, &mut document, &event.event_type, &event.data)
            .map_err(|detail| ApplyError::InvalidData { detail })?;
        match (existed, document) {
            (false, Some(document)) => {
                let row = Document {
                    id: id.as_str().into(),
                    body: Arc::new(with_id(&id, document)),
                    version: event.version,
                    recorded: event.recorded_schema_version,
                };
                state
                    .table
                    .insert(row)
                    .map_err(|e| ApplyError::Inconsistent {
                        detail: e.to_string(),
                    })?;
            }
            (true, Some(document)) => {
                let row = state.table.get_mut(&id).expect("found above");
                row.body = Arc::new(with_id(&id, document));
                row.version = event.version;
                // A replace is the whole document again: only its version counts.
                let replaced = event.event_type.strip_prefix(self.ty.title.as_str())
                    == Some(Action::Replace.event_suffix());
                row.recorded = if replaced {
                    event.recorded_schema_version
                } else {
                    row.recorded.min(event.recorded_schema_version)
                };
            }
            (true, None) => {
                state.table.remove(&id);
            }
            (false, None) => {
                return Err(ApplyError::Inconsistent {
                    detail: format!("{} {id:?} was deleted without being created", self.ty.name),
                });
            }
        }
        Ok(())
    }
}

impl Documents {
    /// How many live documents it holds.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

/// The read model of `ty`: no named queries (its documents are read by `GET /T/{id}` and
/// `GET /T`, through [`ResourceSet::get`] and [`ResourceSet::list`]).
pub(crate) fn read_model(ty: &Arc<ResourceType>) -> ReadModelSpec {
    ReadModelSpec::new(
        DocumentsProjection { ty: Arc::clone(ty) },
        QueryCatalog::new(),
    )
}

/// A document as reads answer it.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The document with its `id` among its members.
    pub document: Value,
    /// Its stream's version (the `ETag`).
    pub version: u64,
}

impl ResourceSet {
    fn documents(
        &self,
        snapshots: &Snapshots,
        name: &str,
    ) -> Result<Arc<writ_query::Snapshot<Documents>>, QueryError> {
        if snapshots.is_stopped(name) {
            let position = snapshots
                .get::<Documents>(name)
                .map_or(0, |snapshot| snapshot.position);
            return Err(QueryError::Stopped {
                model: name.to_owned(),
                position,
            });
        }
        snapshots
            .get::<Documents>(name)
            .ok_or_else(|| QueryError::NotFound {
                detail: format!("no resource type {name:?}"),
            })
    }

    /// The live document `id` of type `name` in `snapshots`; `None` when there is none
    /// (never created, or deleted).
    pub fn get(
        &self,
        snapshots: &Snapshots,
        name: &str,
        id: &str,
    ) -> Result<Option<Found>, QueryError> {
        let documents = self.documents(snapshots, name)?;
        Ok(documents.state.table.get(id).map(|d| Found {
            document: (*d.body).clone(),
            version: d.version,
        }))
    }

    /// A page of the live documents of type `name`, oldest first: `{"items", "total",
    /// "cursor"}`. `args` may hold `limit` (default 50, at most 1,000) and `cursor` (the
    /// previous page's).
    pub fn list(
        &self,
        snapshots: &Snapshots,
        name: &str,
        args: &Map<String, Value>,
    ) -> Result<Value, QueryError> {
        let documents = self.documents(snapshots, name)?;
        let request = PAGING.request::<()>(&Args::new(args))?;
        let page = documents.state.table.page(&Selection::all(), &request);
        Ok(page.to_json(|d| (*d.body).clone()))
    }
}

/// Most documents a [`Misfits`] report lists (the others are counted).
pub const MISFITS_LISTED: usize = 20;

/// Most violations listed for one document of a [`Misfits`] report.
pub const MISFIT_VIOLATIONS_LISTED: usize = 3;

/// A live document that does not fit its type's current schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Misfit {
    /// Its type's name.
    pub type_name: String,
    /// Its id.
    pub id: String,
    /// The oldest schema version among the events it was folded from since it was created
    /// or last replaced.
    pub recorded_version: u32,
    /// Its type's current schema version.
    pub version: u32,
    /// Where it does not fit: the first [`MISFIT_VIOLATIONS_LISTED`] places.
    pub violations: Vec<Violation>,
}

/// The live documents that do not fit their types' current schemas, read in their current
/// (migrated) shape: the start's check ([`ResourceSet::misfits`]). A server does not start
/// on a store that holds any.
#[derive(Debug, Clone, Default, PartialEq, thiserror::Error)]
pub struct Misfits {
    /// The first [`MISFITS_LISTED`], by type and then oldest first.
    pub listed: Vec<Misfit>,
    /// How many more there are.
    pub more: usize,
}

impl Misfits {
    /// Whether every live document fits.
    pub fn is_empty(&self) -> bool {
        self.listed.is_empty()
    }
}

impl fmt::Display for Misfits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} stored document(s) do not fit their type's current schema, read through its migrations (migrations/T.js) if any; add or fix the migration, or the schema, and start again:",
            self.listed.len() + self.more
        )?;
        for misfit in &self.listed {
            write!(
                f,
                "\n  {} {:?} (recorded at schema version {}, the type is at version {}):",
                misfit.type_name, misfit.id, misfit.recorded_version, misfit.version
            )?;
            for violation in &misfit.violations {
                let at = if violation.pointer.is_empty() {
                    "the root"
                } else {
                    &violation.pointer
                };
                write!(f, " at {at}: {};", violation.message)?;
            }
        }
        if self.more > 0 {
            write!(f, "\n  and {} more", self.more)?;
        }
        Ok(())
    }
}

impl ResourceSet {
    /// Every live document of every type, in its current shape (events of older schema
    /// versions read through `migrations/T.js`), checked against its type's schema; the
    /// read models must include the end of the log. The first [`MISFITS_LISTED`] that do
    /// not fit are listed, the rest counted.
    pub fn misfits(&self, snapshots: &Snapshots) -> Result<Misfits, QueryError> {
        let mut misfits = Misfits::default();
        for ty in &self.types {
            let documents = self.documents(snapshots, ty.name)?;
            for document in documents.state.table.rows() {
                let mut violations = ty.check(&without_id(&document.body));
                if violations.is_empty() {
                    continue;
                }
                if misfits.listed.len() >= MISFITS_LISTED {
                    misfits.more += 1;
                    continue;
                }
                violations.truncate(MISFIT_VIOLATIONS_LISTED);
                misfits.listed.push(Misfit {
                    type_name: ty.name.to_owned(),
                    id: document.id.to_string(),
                    recorded_version: document.recorded,
                    version: ty.version,
                    violations,
                });
            }
        }
        Ok(misfits)
    }
}
