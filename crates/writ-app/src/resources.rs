//! The resource types of `--app`, as the server sees them ([`writ_server::Resources`]).

use serde_json::{Map, Value};
use writ_query::{QueryError, Snapshots};
use writ_resources::{Action, ResourceSet};
use writ_server::{ResourceCommands, Resources};

/// The loaded types, served.
#[derive(Debug)]
pub(crate) struct Served(pub(crate) ResourceSet);

impl Resources for Served {
    fn names(&self) -> Vec<String> {
        self.0.types().iter().map(|t| t.name().to_owned()).collect()
    }

    fn commands(&self, name: &str) -> Option<ResourceCommands> {
        let ty = self.0.resource_type(name)?;
        Some(ResourceCommands {
            create: ty.command(Action::Create),
            replace: ty.command(Action::Replace),
            patch: ty.command(Action::Patch),
            delete: ty.command(Action::Delete),
            custom: ty
                .custom_commands()
                .into_iter()
                .map(|verb| {
                    let name = format!("{verb}{}", ty.title());
                    (verb, name)
                })
                .collect(),
        })
    }

    fn get(
        &self,
        snapshots: &Snapshots,
        name: &str,
        id: &str,
    ) -> Result<Option<(Value, u64)>, QueryError> {
        Ok(self
            .0
            .get(snapshots, name, id)?
            .map(|found| (found.document, found.version)))
    }

    fn list(
        &self,
        snapshots: &Snapshots,
        name: &str,
        args: &Map<String, Value>,
    ) -> Result<Value, QueryError> {
        self.0.list(snapshots, name, args)
    }
}
