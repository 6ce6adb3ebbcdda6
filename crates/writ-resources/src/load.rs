//! Loading an app directory: `resources/T.json` files, each checked whole before anything
//! opens, every refusal naming the file and the place in it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::bundle::{AppFiles, BundleError};
use crate::kind::{Action, ResourceType, escape_pointer};

/// Names a type may not have: the server's own first path segments.
pub const RESERVED_NAMES: [&str; 10] = [
    "update",
    "query",
    "events",
    "streams",
    "ws",
    "health",
    "metrics",
    "projections",
    "domains",
    "admin",
];

/// Longest type name, in bytes.
pub const NAME_BYTES_MAX: usize = 64;

/// Longest name of a unique field (`x-writ-unique`), in bytes: it is part of a stream name.
pub const UNIQUE_FIELD_BYTES_MAX: usize = 128;

/// The highest `x-writ-version` a schema may declare: each version of the CRUD commands is
/// listed (`/domains`, `/openapi.json`), so versions are counted, not dated.
pub const SCHEMA_VERSION_MAX: u32 = 100;

/// The draft every schema is read as, and the only `$schema` a schema may name.
pub const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// Why an app directory was refused. Every variant names the file (or directory) at fault;
/// fix it and start again. Nothing was opened or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A file or directory could not be read.
    #[error("{}: cannot read it: {source}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The directory has no `resources/*.json`: it would serve nothing.
    #[error("{}: no resource types (resources/T.json files) in it", dir.display())]
    Empty {
        /// The app directory.
        dir: PathBuf,
    },
    /// A file in `resources/` that is not a resource type (`T.json`), or whose name is not
    /// a type name a server can serve.
    #[error("{}: {detail}", file.display())]
    Name {
        /// The file.
        file: PathBuf,
        /// What is wrong with its name.
        detail: String,
    },
    /// The file is not JSON.
    #[error("{}: line {line}, column {column}: not JSON: {detail}", file.display())]
    Json {
        /// The file.
        file: PathBuf,
        /// Where (1-based).
        line: usize,
        /// Where (1-based).
        column: usize,
        /// What the parser said.
        detail: String,
    },
    /// The schema is not one this server serves: not a valid draft 2020-12 schema, no
    /// `title`, an `x-writ-unique` that does not name top-level fields, a format it does not
    /// know...
    #[error("{}: at {}: {detail}", file.display(), if pointer.is_empty() { "the root" } else { pointer })]
    Schema {
        /// The file.
        file: PathBuf,
        /// The JSON pointer of the place in the file.
        pointer: String,
        /// What is wrong.
        detail: String,
    },
    /// A rule (`rules/T.json`) or a machine (`machines/T.json`) is not one this server
    /// serves: a bad shape, an unknown operator, a command the type does not have, a
    /// field the schema does not have, a bad duration...
    #[error("{}: at {}: {detail}", file.display(), if pointer.is_empty() { "the root" } else { pointer })]
    Definition {
        /// The file.
        file: PathBuf,
        /// The JSON pointer of the place in the file.
        pointer: String,
        /// What is wrong.
        detail: String,
    },
    /// A script (`handlers/T.js`, `projections/P.js`) does not compile, its top level
    /// throws or breaks a limit, or it declares what it may not (a handler named after a
    /// type's own command).
    #[error("{}{}: {detail}", file.display(), match (line, column) {
        (Some(line), Some(column)) => format!(":{line}:{column}"),
        (Some(line), None) => format!(":{line}"),
        _ => String::new(),
    })]
    Script {
        /// The file.
        file: PathBuf,
        /// The line of the place, from 1, when known.
        line: Option<u32>,
        /// The column of the place, from 1, when known.
        column: Option<u32>,
        /// What is wrong.
        detail: String,
    },
    /// The app's files could not be read into memory: a directory or bundle that cannot
    /// be read, a bundle that is malformed or tampered with, an app beyond the bounds.
    #[error(transparent)]
    Files(#[from] BundleError),
    /// The type clashes with another type or with a domain served beside it (a name, a
    /// title, a stream prefix, a command).
    #[error("{}: {detail}", file.display())]
    Clash {
        /// The file.
        file: PathBuf,
        /// With what.
        detail: String,
    },
}

/// The resource types of an app directory, loaded and checked: see [`load`].
#[derive(Debug, Clone)]
pub struct ResourceSet {
    pub(crate) types: Vec<Arc<ResourceType>>,
    /// `projections/P.js`, by name order.
    pub(crate) projections: Vec<Arc<crate::projections::ScriptProjection>>,
}

/// Loads and checks every `resources/T.json` of the app directory `dir` (or of the bundle
/// file `dir`, see [`crate::bundle`]: both are read whole into an [`AppFiles`] first, and
/// checked by [`load_files`]), by name order, with its `handlers/T.js`, `machines/T.json`
/// `migrations/T.js` and `rules/T.json` if any (see the `handlers`, `migrations`, `machine`
/// and `rules` modules), and the app's `projections/P.js` (see the `projections` module).
/// Refuses a file of `handlers/`, `migrations/`, `machines/` or `rules/` that is not `T.js`
/// or `T.json` for a type `T` of `resources/`, or of
/// `projections/` not named `P.js` with `P` a name as types have; a script that does not
/// compile or whose top level throws ([`LoadError::Script`], with the place); a machine or
/// rules that do not check ([`LoadError::Definition`], with the place); a file of
/// `resources/` not named `T.json` with `T` a type name (`[a-z][a-z0-9]*`, not one of
/// [`RESERVED_NAMES`]); and a schema that is not a valid draft 2020-12 schema with a `title`
/// naming commands (`[A-Z][A-Za-z0-9]*`), a root `"type": "object"`, known formats, an
/// `x-writ-unique` that lists top-level properties, and an `x-writ-version` that is an
/// integer from 1 to [`SCHEMA_VERSION_MAX`]; a `migrations/T.js` for a type at version 1,
/// or without its `document` and `patch` functions.
pub fn load(dir: &Path) -> Result<ResourceSet, LoadError> {
    load_files(&AppFiles::read(dir)?)
}

/// [`load`] of an app's files in memory: a directory's or a bundle's ([`AppFiles`]); every
/// refusal names the file as `files` names it (`DIR/resources/T.json`,
/// `FILE.bundle/resources/T.json`).
pub fn load_files(files: &AppFiles) -> Result<ResourceSet, LoadError> {
    let mut types: Vec<ResourceType> = Vec::new();
    for (name, body) in files.list("resources") {
        let file = files.path(&format!("resources/{name}"));
        let ty = load_type(&file, body)?;
        if let Some(first) = types.iter().find(|t| t.title == ty.title) {
            return Err(LoadError::Clash {
                file,
                detail: format!(
                    "its title {:?} is also the title of {}: titles name commands and events, so each type needs its own",
                    ty.title,
                    first.file.display()
                ),
            });
        }
        types.push(ty);
    }
    if types.is_empty() {
        return Err(LoadError::Empty {
            dir: files.origin().to_owned(),
        });
    }
    // Before rules, which may name the handlers' commands.
    crate::handlers::attach(files, &mut types)?;
    crate::migrations::attach(files, &mut types)?;
    for (sub, what) in [("machines", "machine"), ("rules", "rules")] {
        for TypedFile { file, body, index } in typed_files(files, sub, ".json", &types, what)? {
            let ty = &mut types[index];
            let value = read_json(&file, body)?;
            if sub == "machines" {
                ty.machine = Some(crate::machine::parse(&file, &value, ty)?);
            } else {
                let mut commands: Vec<String> =
                    Action::ALL.iter().map(|a| a.verb().to_owned()).collect();
                commands.extend(ty.custom_commands());
                ty.rules = crate::rules::parse(&file, &value, &commands)?;
            }
        }
    }
    for ty in &mut types {
        ty.code_tag = crate::snapshot::type_tag(files, ty.name);
    }
    let projections = crate::projections::load_all(files, &types)?;
    Ok(ResourceSet {
        types: types.into_iter().map(|ty| Arc::new(finish(ty))).collect(),
        projections,
    })
}

/// A script's source: `body` as UTF-8, or a [`LoadError::Script`] naming `file`.
pub(crate) fn script_source<'a>(file: &Path, body: &'a [u8]) -> Result<&'a str, LoadError> {
    std::str::from_utf8(body).map_err(|error| LoadError::Script {
        file: file.to_owned(),
        line: None,
        column: None,
        detail: format!("not UTF-8 text: {error}"),
    })
}

/// A file of one type's: `sub/T{ext}` for a loaded type `T`.
pub(crate) struct TypedFile<'a> {
    /// Its path, as messages name it.
    pub(crate) file: PathBuf,
    /// Its bytes.
    pub(crate) body: &'a [u8],
    /// Its type's index in the loaded types.
    pub(crate) index: usize,
}

/// The files of `sub/` (`machines`, `rules`, `handlers`, `migrations`), each `T{ext}` for
/// a loaded type `T` (`ext` `.json` or `.js`); none when there is no such directory. Any
/// other file of `sub/` is refused, naming it and the types (`what` says what the files
/// hold).
pub(crate) fn typed_files<'a>(
    files: &'a AppFiles,
    sub: &str,
    ext: &str,
    types: &[ResourceType],
    what: &str,
) -> Result<Vec<TypedFile<'a>>, LoadError> {
    let mut found = Vec::new();
    for (name, body) in files.list(sub) {
        let file = files.path(&format!("{sub}/{name}"));
        let stem = name.strip_suffix(ext).filter(|_| body.is_some());
        let index = stem.and_then(|stem| types.iter().position(|t| t.name == stem));
        let (Some(body), Some(index)) = (body, index) else {
            return Err(LoadError::Name {
                file,
                detail: format!(
                    "{sub}/ holds the {what} of resource types, each a file T{ext} for a resources/T.json; the types are {}",
                    types.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
                ),
            });
        };
        found.push(TypedFile { file, body, index });
    }
    Ok(found)
}

/// A file's JSON.
fn read_json(file: &Path, text: &[u8]) -> Result<Value, LoadError> {
    serde_json::from_slice(text).map_err(|e| LoadError::Json {
        file: file.to_owned(),
        line: e.line(),
        column: e.column(),
        detail: e.to_string(),
    })
}

/// The type with the event types its read model applies: those of its documents' streams.
pub(crate) fn finish(mut ty: ResourceType) -> ResourceType {
    let mut events: Vec<String> = Action::ALL.iter().map(|a| ty.event(*a)).collect();
    for event in ty.custom_events() {
        if !events.contains(&event) {
            events.push(event);
        }
    }
    let events: Vec<&'static str> = events
        .into_iter()
        .map(|e| &*Box::leak(e.into_boxed_str()))
        .collect();
    ty.document_events = Box::leak(events.into_boxed_slice());
    ty
}

/// A type's name from its file's name: `users.json` is `users`.
fn type_name(file: &Path, is_file: bool) -> Result<String, LoadError> {
    let error = |detail: String| LoadError::Name {
        file: file.to_owned(),
        detail,
    };
    let file_name = file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let Some(name) = file_name.strip_suffix(".json").filter(|_| is_file) else {
        return Err(error(
            "resources/ holds resource types only, each a file T.json".to_owned(),
        ));
    };
    let mut bytes = name.bytes();
    let well_formed = bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name.len() <= NAME_BYTES_MAX;
    if !well_formed {
        return Err(error(format!(
            "{name:?} is not a type name: lowercase letters and digits, beginning with a letter, at most {NAME_BYTES_MAX} (no hyphen: streams are T-{{id}})"
        )));
    }
    if RESERVED_NAMES.contains(&name) {
        return Err(error(format!(
            "{name:?} is a path of the server's own (reserved: {}); name the type otherwise",
            RESERVED_NAMES.join(", ")
        )));
    }
    Ok(name.to_owned())
}

fn load_type(file: &Path, body: Option<&[u8]>) -> Result<ResourceType, LoadError> {
    let name = type_name(file, body.is_some())?;
    let schema = read_json(file, body.unwrap_or_default())?;
    let at = |pointer: &str, detail: String| LoadError::Schema {
        file: file.to_owned(),
        pointer: pointer.to_owned(),
        detail,
    };
    let Value::Object(members) = &schema else {
        return Err(at("", "a resource type's schema is a JSON object".into()));
    };
    match members.get("$schema") {
        None => {}
        Some(Value::String(uri)) if uri.trim_end_matches('#') == DRAFT_2020_12 => {}
        Some(other) => {
            return Err(at(
                "/$schema",
                format!("schemas are read as draft 2020-12 ({DRAFT_2020_12}), not {other}"),
            ));
        }
    }
    if let Err(error) = jsonschema::draft202012::meta::validate(&schema) {
        return Err(at(
            error.instance_path().as_str(),
            format!("not a valid JSON Schema (draft 2020-12): {error}"),
        ));
    }
    let title = match members.get("title") {
        Some(Value::String(title)) if is_title(title) => title.clone(),
        Some(other) => {
            return Err(at(
                "/title",
                format!(
                    "the title names commands and events (CreateUser, UserCreated): letters and digits beginning with an uppercase letter, not {other}"
                ),
            ));
        }
        None => {
            return Err(at(
                "/title",
                "a `title` is required: it names the type's commands and events (\"title\": \"User\" gives CreateUser, UserCreated)".into(),
            ));
        }
    };
    if members.get("type") != Some(&Value::String("object".into())) {
        return Err(at(
            "/type",
            "a document is a JSON object: the schema's root needs \"type\": \"object\"".into(),
        ));
    }
    let properties = members.get("properties").and_then(Value::as_object);
    if properties.is_some_and(|p| p.contains_key("id")) {
        return Err(at(
            "/properties/id",
            "`id` is the document's id, carried apart from the document (GET answers it beside the members): leave it out of the schema".into(),
        ));
    }
    if let Some(Value::Array(required)) = members.get("required")
        && let Some(at_id) = required.iter().position(|r| r == "id")
    {
        return Err(at(
            &format!("/required/{at_id}"),
            "`id` is the document's id, carried apart from the document: it cannot be required"
                .into(),
        ));
    }
    for key in members.keys().filter(|k| k.starts_with("x-writ-")) {
        match key.as_str() {
            "x-writ-unique" => {}
            "x-writ-version" => {}
            other => {
                return Err(at(
                    &format!("/{}", escape_pointer(other)),
                    format!(
                        "unknown keyword {other:?}; Writ's are x-writ-unique and x-writ-version"
                    ),
                ));
            }
        }
    }
    let unique = match members.get("x-writ-unique") {
        None => Vec::new(),
        Some(Value::Array(fields)) => {
            let mut unique: Vec<String> = Vec::new();
            for (i, field) in fields.iter().enumerate() {
                let pointer = format!("/x-writ-unique/{i}");
                let Some(field) = field.as_str() else {
                    return Err(at(&pointer, "a field's name is a string".into()));
                };
                if !properties.is_some_and(|p| p.contains_key(field)) {
                    return Err(at(
                        &pointer,
                        format!(
                            "{field:?} is not a top-level property of the schema (`properties`)"
                        ),
                    ));
                }
                if field.len() > UNIQUE_FIELD_BYTES_MAX {
                    return Err(at(
                        &pointer,
                        format!("a unique field's name is at most {UNIQUE_FIELD_BYTES_MAX} bytes"),
                    ));
                }
                if unique.iter().any(|u| u == field) {
                    return Err(at(&pointer, format!("{field:?} is listed twice")));
                }
                unique.push(field.to_owned());
            }
            unique
        }
        Some(_) => {
            return Err(at(
                "/x-writ-unique",
                "a list of top-level property names, as in [\"email\"]".into(),
            ));
        }
    };
    let version = match members.get("x-writ-version") {
        None => 1,
        Some(value) => value
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .filter(|v| (1..=SCHEMA_VERSION_MAX).contains(v))
            .ok_or_else(|| {
                at(
                    "/x-writ-version",
                    format!(
                        "the schema's version is an integer from 1 to {SCHEMA_VERSION_MAX} (events and commands are recorded with it), not {value}"
                    ),
                )
            })?,
    };
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .should_ignore_unknown_formats(false)
        .build(&schema)
        .map_err(|error| {
            let pointer = error.schema_path().as_str().to_owned();
            at(&pointer, format!("the schema does not compile: {error}"))
        })?;
    let name: &'static str = Box::leak(name.into_boxed_str());
    Ok(ResourceType {
        name,
        title,
        file: file.to_owned(),
        schema,
        validator,
        unique,
        document_events: &[],
        machine: None,
        rules: crate::rules::Rules::default(),
        handlers: None,
        version,
        migrations: None,
        code_tag: String::new(),
    })
}

/// A title names commands: an uppercase letter, then letters and digits.
pub(crate) fn is_title(title: &str) -> bool {
    let mut bytes = title.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_uppercase())
        && bytes.all(|b| b.is_ascii_alphanumeric())
        && title.len() <= NAME_BYTES_MAX
}

/// What a type must not share with a domain served beside it.
#[derive(Debug, Clone, Default)]
pub struct Neighbours {
    /// Domain names (and read model names, which types share their names with).
    pub names: Vec<String>,
    /// Stream prefixes, with their domain.
    pub prefixes: Vec<(String, String)>,
    /// Command names, with their domain.
    pub commands: Vec<(String, String)>,
}

impl ResourceSet {
    /// The types, by name order.
    pub fn types(&self) -> &[Arc<ResourceType>] {
        &self.types
    }

    /// The type named `name`.
    pub fn resource_type(&self, name: &str) -> Option<&Arc<ResourceType>> {
        self.types.iter().find(|t| t.name == name)
    }

    /// Refuses a type that clashes with a domain served beside it: its name is a domain's
    /// or a read model's, one of its stream prefixes overlaps one of a domain's (a domain
    /// streaming into `T-`, or `T` being a prefix of a domain's like `ticket` for
    /// `ticket-`), or a domain has one of its commands. The message names the type's file.
    pub fn check_neighbours(&self, neighbours: &Neighbours) -> Result<(), LoadError> {
        for ty in &self.types {
            let clash = |detail: String| LoadError::Clash {
                file: ty.file.clone(),
                detail,
            };
            if neighbours.names.iter().any(|n| n == ty.name) {
                return Err(clash(format!(
                    "{:?} is also the name of a domain or read model served beside it; name the type otherwise",
                    ty.name
                )));
            }
            for own in [ty.document_prefix(), ty.claim_prefix()] {
                for (prefix, domain) in &neighbours.prefixes {
                    if own.starts_with(prefix.as_str()) || prefix.starts_with(own.as_str()) {
                        return Err(clash(format!(
                            "its streams {own}... overlap the stream prefix {prefix:?} of domain {domain:?}; name the type otherwise"
                        )));
                    }
                }
            }
            let commands = Action::ALL.iter().map(|action| ty.command(*action)).chain(
                ty.custom_commands()
                    .into_iter()
                    .map(|verb| format!("{verb}{}", ty.title)),
            );
            for command in commands {
                if let Some((_, domain)) = neighbours.commands.iter().find(|(c, _)| *c == command) {
                    return Err(clash(format!(
                        "its command {command} is also a command of domain {domain:?}; change the title"
                    )));
                }
            }
        }
        Ok(())
    }
}
