//! Resource types without code: `writ serve --app DIR` serves each `DIR/resources/T.json`
//! (a JSON Schema, draft 2020-12) as CRUD over JSON documents checked by it, with an
//! optional state machine (`machines/T.json`, see [`Machine`]) and rules in JSON Logic
//! (`rules/T.json`, see [`Rules`]).
//!
//! - [`load`] reads and checks an app directory (or a bundle packed from one, see
//!   [`bundle`]; [`load_files`] takes the files in memory) whole: names, schemas (compiled with
//!   formats asserted), `title`, `x-writ-unique`, machines, rules (compiled once); every
//!   refusal ([`LoadError`]) names the file and the place.
//! - `handlers/T.js` ([`ScriptHandlers`]): custom commands in JavaScript, compiled at load
//!   and run by the writer in writ-sandbox's deterministic script engine; see the
//!   `handlers` module.
//! - `migrations/T.js` ([`Migrations`]): how documents and patches recorded under an
//!   earlier schema version (`"x-writ-version"`, [`ResourceType::version`]) read under the
//!   current one, step by step, in the same script engine; the engine upcasts a type's
//!   events through them ([`writ_domain::model::DomainModel::upcast_event`]), and a start
//!   checks every live document against the current schema ([`ResourceSet::misfits`]). See
//!   the `migrations` module.
//! - `projections/P.js` ([`ScriptProjection`]): read models without compiled code, named
//!   tables of JSON documents changed by a function per event type and read by named
//!   queries ([`ResourceSet::projection_read_models`]); see the `projections` module.
//! - Each [`ResourceType`] is a domain built at run time ([`ResourceSet::domains`]), seen by
//!   the engine through the same seam as compiled domains
//!   ([`writ_domain::model::DomainModel`]): streams `T-{id}`, commands `Create{Title}`,
//!   `Replace{Title}`, `Patch{Title}`, `Delete{Title}` ([`Action`]), events
//!   `{Title}Created`, `{Title}Replaced`, `{Title}Patched` (the RFC 6902 operations
//!   applied), `{Title}Deleted`. A document is checked against the schema when its command
//!   is decoded (before anything is logged: [`writ_domain::CommandError::SchemaViolation`])
//!   and, for a patch or a custom command, in the writer ([`codes::SCHEMA_VIOLATION`]).
//! - Custom commands `{Command}{Title}` (`ActivateUser`, payload `{"id", ...}`) exist when
//!   a machine's transition or a handler ([`Handlers`], the seam for `handlers/T.js`)
//!   declares them. The writer decides every command in the contract's order:
//!   `wrong_expected_version`; `not_found` or `exists`; the handler's own code;
//!   [`codes::INVALID_TRANSITION`]; `schema_violation`; `not_unique`; the rules' codes in
//!   file order.
//! - A machine's `after` transitions fire through the engine's durable timers, by a process
//!   of the type ([`ResourceSet::timers`], [`ResourceSet::processes`]): register it beside
//!   the domain.
//! - Unique fields are claimed in streams of their own (`T~{field}~{sha256}`), in the same
//!   decision as the document's event: see the `domain` module's notes on uniqueness.
//! - Each type has a read model ([`ResourceSet::read_models`]): its live documents in a
//!   [`writ_query::collections::Table`], read by [`ResourceSet::get`] and paged by
//!   [`ResourceSet::list`].
//! - Both kinds of read model write snapshots (format 1), tagged with a digest of the app's
//!   files that determine them ([`writ_query::Projection::code_tag`]): a start loads one
//!   only when those files are the ones that wrote it, and replays the read model from
//!   position 1 otherwise. See the `snapshot` module for which files each covers.
//!
//! ```
//! use std::sync::Arc;
//! use writ_engine::{Engine, EngineOptions, Registry, Submitted};
//! use writ_log::storage::SimStorage;
//!
//! let dir = std::env::temp_dir().join(format!("writ-resources-doc-{}", std::process::id()));
//! std::fs::create_dir_all(dir.join("resources")).unwrap();
//! std::fs::write(dir.join("resources/users.json"), r#"{
//!     "title": "User", "type": "object", "required": ["email"],
//!     "properties": {"email": {"type": "string", "format": "email"}},
//!     "x-writ-unique": ["email"]
//! }"#).unwrap();
//! let app = writ_resources::load(&dir).unwrap();
//! std::fs::remove_dir_all(&dir).unwrap();
//!
//! let mut registry = Registry::builder();
//! for domain in app.domains() {
//!     registry = registry.domain(domain);
//! }
//! let storage = Arc::new(SimStorage::new());
//! let (engine, _) = Engine::open(storage, registry.build().unwrap(), EngineOptions::default()).unwrap();
//! let create = |id: u128, user: &str| {
//!     let payload = format!(r#"{{"id": "{user}", "document": {{"email": "ann@example.com"}}}}"#);
//!     let Submitted::New(pending) =
//!         engine.submit(uuid::Uuid::from_u128(id), "CreateUser", None, payload.as_bytes()).unwrap()
//!     else { unreachable!("a fresh id") };
//!     pending.blocking_outcome().unwrap()
//! };
//! assert_eq!(create(1, "ann").state, writ_engine::CommandState::Succeeded);
//! // The email is taken: a second user cannot have it.
//! let second = create(2, "bob");
//! assert!(matches!(second.state, writ_engine::CommandState::Rejected { ref code, .. } if code == "not_unique"));
//! ```

pub mod bundle;
mod custom;
mod domain;
mod handlers;
mod kind;
mod load;
mod machine;
mod migrations;
mod projections;
mod read;
mod rules;
mod snapshot;

use std::sync::Arc;

use writ_domain::model::{DomainModel, ProcessModel};
use writ_query::{Projection, ReadModelSpec};

pub use crate::bundle::{AppFiles, BundleError};
pub use crate::custom::{Handled, HandlerError, Handlers};
pub use crate::domain::codes;
pub use crate::handlers::{HANDLER_LIMITS, ScriptHandlers};
pub use crate::kind::{Action, ID_BYTES_MAX, ID_PATTERN, ResourceType, VIOLATIONS_MAX};
pub use crate::load::{
    DRAFT_2020_12, LoadError, NAME_BYTES_MAX, Neighbours, RESERVED_NAMES, ResourceSet,
    SCHEMA_VERSION_MAX, UNIQUE_FIELD_BYTES_MAX, load, load_files,
};
pub use crate::machine::{
    AFTER_SECONDS_MAX, Machine, STATE_BYTES_MAX, TRANSITIONS_MAX, Transition, parse_duration,
};
pub use crate::migrations::{MIGRATION_FUNCTIONS, Migrations};
pub use crate::projections::{
    KEY_BYTES_MAX, PROJECTION_LIMITS, QUERY_VERSION, ScriptProjection, TABLE_ROWS_MAX, Tables,
};
pub use crate::read::{
    Documents, Found, MISFIT_VIOLATIONS_LISTED, MISFITS_LISTED, Misfit, Misfits, PAGING,
};
pub use crate::rules::{
    CODE_BYTES_MAX, MESSAGE_BYTES_MAX, REQUIRE_DEPTH_MAX, RESERVED_CODES, RULES_MAX, Rules,
};

impl ResourceSet {
    /// Each type as a domain for the engine's registry, by name order.
    pub fn domains(&self) -> Vec<Arc<dyn DomainModel>> {
        self.types
            .iter()
            .map(|ty| {
                Arc::new(domain::ResourceDomain { ty: Arc::clone(ty) }) as Arc<dyn DomainModel>
            })
            .collect()
    }

    /// Each type's read model, by name order (named after its type).
    pub fn read_models(&self) -> Vec<ReadModelSpec> {
        self.types.iter().map(read::read_model).collect()
    }

    /// The domain of type `ty`.
    pub fn domain(ty: &Arc<ResourceType>) -> Arc<dyn DomainModel> {
        Arc::new(domain::ResourceDomain { ty: Arc::clone(ty) })
    }

    /// The read model of type `ty`.
    pub fn read_model(ty: &Arc<ResourceType>) -> ReadModelSpec {
        read::read_model(ty)
    }

    /// The projection of type `ty`'s read model, to build or snapshot its state directly
    /// ([`writ_query::Replay`], [`Projection::save`], [`Projection::load`]): tests, fuzzing.
    pub fn documents_projection(ty: &Arc<ResourceType>) -> impl Projection<State = Documents> {
        read::DocumentsProjection { ty: Arc::clone(ty) }
    }

    /// The process that fires the `after` transitions of type `ty`'s machine
    /// (`machine:{T}`), if it has any: register it beside the type's domain, or those
    /// transitions never fire on their own.
    pub fn timers(ty: &Arc<ResourceType>) -> Option<Arc<dyn ProcessModel>> {
        ty.machine
            .as_ref()
            .filter(|m| m.has_timers())
            .map(|_| Arc::new(machine::MachineTimers::new(Arc::clone(ty))) as Arc<dyn ProcessModel>)
    }

    /// The timers' processes of every type that has `after` transitions, by name order.
    pub fn processes(&self) -> Vec<Arc<dyn ProcessModel>> {
        self.types.iter().filter_map(Self::timers).collect()
    }
}
