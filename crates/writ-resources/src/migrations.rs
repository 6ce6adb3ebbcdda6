//! `migrations/T.js`: how a document or a patch recorded under an earlier schema version of
//! type `T` (`"x-writ-version"` in `resources/T.json`) reads under the current one, run in
//! writ-sandbox's deterministic [`Script`] engine with a handler's limits.
//!
//! # What the file declares
//!
//! Two top-level functions, each one step forward from version `fromVersion` to
//! `fromVersion + 1`:
//!
//! - `function document(doc, fromVersion)` returns the document `doc` (without its `id`)
//!   in the shape of version `fromVersion + 1`;
//! - `function patch(ops, fromVersion)` returns RFC 6902 operations that do to a document
//!   of version `fromVersion + 1` what `ops` did to one of version `fromVersion`.
//!
//! An event recorded at version `v` below the current one `c` is read through the steps
//! `v`, `v + 1`, ..., `c - 1` ([`Migrations::document`], [`Migrations::patch`]): a
//! `{Title}Created` or `{Title}Replaced` event's document through `document`, a
//! `{Title}Patched` event's operations and a handler's event's `patch` through `patch`. A
//! `{Title}Deleted` event and a transition's own `{"command", "from", "to"}` carry no
//! document and read as recorded. A command logged at an older version (read again by
//! `writ replay`) is migrated the same way before it is checked against the schema.
//!
//! Both functions are required once the file exists, and the file exists only for a type at
//! version 2 or more: every gap between versions is crossed by these two. A migration that
//! throws, breaks a limit or answers something else than a document (a JSON object) or
//! RFC 6902 operations is an error that names the file, the function and the version; the
//! engine reports it with the event's position, and a start that meets one is refused.
//! Without the file, documents and patches of older versions read as recorded: a version
//! bump that only adds optional members needs no migration (the start checks every live
//! document against the current schema).

use std::path::{Path, PathBuf};

use json_patch::Patch;
use serde_json::Value;
use writ_sandbox::{Script, ScriptOptions};

use crate::handlers::HANDLER_LIMITS;
use crate::load::LoadError;

/// The functions a migrations file must declare.
pub const MIGRATION_FUNCTIONS: [&str; 2] = ["document", "patch"];

/// A type's `migrations/T.js`, compiled.
#[derive(Debug)]
pub struct Migrations {
    script: Script,
    /// `migrations/T.js`, as messages name it.
    label: String,
    /// The file it was loaded from.
    file: PathBuf,
}

impl Migrations {
    /// Compiles `body`, the file `file` (shown in messages as `label`), as the migrations of
    /// a type at schema version `version`; refuses a file that is not UTF-8, a syntax error,
    /// a top level that throws or breaks a limit, a type at version 1 (nothing to migrate)
    /// and a file without `document` or `patch`.
    pub fn load(file: &Path, body: &[u8], label: &str, version: u32) -> Result<Self, LoadError> {
        let error = |line, column, detail: String| LoadError::Script {
            file: file.to_owned(),
            line,
            column,
            detail,
        };
        let source = crate::load::script_source(file, body)?;
        if version < 2 {
            return Err(error(
                None,
                None,
                "the type's schema is at version 1 (no \"x-writ-version\" above 1): there is nothing to migrate; raise \"x-writ-version\" in its resources/T.json, or remove this file".to_owned(),
            ));
        }
        let options = ScriptOptions {
            limits: HANDLER_LIMITS,
            ..ScriptOptions::default()
        };
        let script = Script::compile(label, source, options)
            .map_err(|e| error(e.line, e.column, e.message))?;
        for function in MIGRATION_FUNCTIONS {
            if !script.functions().iter().any(|f| f == function) {
                return Err(error(
                    None,
                    None,
                    format!(
                        "no function {function}: a type at version {version} reads events of versions 1 to {} through `function document(doc, fromVersion)` and `function patch(ops, fromVersion)`, each one step to fromVersion + 1",
                        version - 1
                    ),
                ));
            }
        }
        Ok(Self {
            script,
            label: label.to_owned(),
            file: file.to_owned(),
        })
    }

    /// The file it was loaded from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// `document` recorded at version `from`, in the shape of version `to` (`from < to`):
    /// `document(doc, v)` for each `v` from `from` to `to - 1`.
    pub fn document(&self, document: Value, from: u32, to: u32) -> Result<Value, String> {
        let mut document = document;
        for version in from..to {
            document = self.step("document", document, version)?;
            if !document.is_object() {
                return Err(format!(
                    "{}: document(doc, {version}) returned {}, not a document (a JSON object)",
                    self.label,
                    short(&document)
                ));
            }
        }
        Ok(document)
    }

    /// RFC 6902 operations recorded at version `from`, as they apply to a document of
    /// version `to` (`from < to`): `patch(ops, v)` for each `v` from `from` to `to - 1`.
    pub fn patch(&self, ops: Value, from: u32, to: u32) -> Result<Value, String> {
        let mut ops = ops;
        for version in from..to {
            ops = self.step("patch", ops, version)?;
            if let Err(e) = serde_json::from_value::<Patch>(ops.clone()) {
                return Err(format!(
                    "{}: patch(ops, {version}) returned {}, not RFC 6902 operations: {e}",
                    self.label,
                    short(&ops)
                ));
            }
        }
        Ok(ops)
    }

    fn step(&self, function: &str, value: Value, version: u32) -> Result<Value, String> {
        self.script
            .call(function, &[value, Value::from(version)], None)
            .map_err(|e| {
                let what = if function == "document" { "doc" } else { "ops" };
                format!("{}: {function}({what}, {version}) failed: {e}", self.label)
            })
    }
}

/// A value for a message: its JSON, cut at 200 bytes.
fn short(value: &Value) -> String {
    let mut text = value.to_string();
    if text.len() > 200 {
        let mut end = 200;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...");
    }
    text
}

/// Compiles `migrations/T.js` for each type `T` that has one; refuses a file of
/// `migrations/` that is not `T.js` for a loaded type.
pub(crate) fn attach(
    files: &crate::bundle::AppFiles,
    types: &mut [crate::kind::ResourceType],
) -> Result<(), LoadError> {
    for crate::load::TypedFile { file, body, index } in
        crate::load::typed_files(files, "migrations", ".js", types, "migrations")?
    {
        let ty = &mut types[index];
        let label = format!("migrations/{}.js", ty.name);
        let migrations = Migrations::load(&file, body, &label, ty.version)?;
        ty.migrations = Some(std::sync::Arc::new(migrations));
    }
    Ok(())
}
