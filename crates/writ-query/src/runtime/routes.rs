//! Named queries routed to the read model that has them, and the library that offers every
//! read model's functions of one query API version over one [`Snapshots`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::catalog::QueryInfo;
use crate::library::{Budget, FunctionSpec, Library, LibraryError, QueryError, RootId};
use crate::runtime::erased::AnyCatalog;
use crate::runtime::options::StartError;
use crate::runtime::snapshots::Snapshots;

/// A query of [`ReadModels::queries`](crate::ReadModels::queries): which read model answers
/// it, and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelQuery {
    /// The read model's name.
    pub model: &'static str,
    /// The query.
    pub query: QueryInfo,
}

/// Where each query of each query API version goes. Fixed at start: catalogs do not change
/// when a read model is rebuilt, only the projection version under them.
pub(crate) struct Routes {
    names: Vec<&'static str>,
    catalogs: Vec<Arc<dyn AnyCatalog>>,
    versions: BTreeMap<u32, ApiVersion>,
}

/// One query API version over every read model that has it.
struct ApiVersion {
    /// Every read model's functions of the version, by name.
    functions: Vec<FunctionSpec>,
    /// Function name → the read model's index.
    models: HashMap<String, usize>,
}

impl Routes {
    /// The routes of the read models named `names`, in that order, whose catalogs are
    /// `catalogs`. Refuses a query name that two read models declare in one version.
    pub(crate) fn new(
        names: Vec<&'static str>,
        catalogs: Vec<Arc<dyn AnyCatalog>>,
    ) -> Result<Self, StartError> {
        let mut versions: BTreeMap<u32, ApiVersion> = BTreeMap::new();
        for (index, catalog) in catalogs.iter().enumerate() {
            for version in catalog.versions() {
                let api = versions.entry(version).or_insert_with(|| ApiVersion {
                    functions: Vec::new(),
                    models: HashMap::new(),
                });
                for function in catalog.functions(version).unwrap_or_default() {
                    if let Some(&first) = api.models.get(&function.name) {
                        return Err(StartError::QueryClash {
                            version,
                            name: function.name,
                            first: names[first].to_owned(),
                            second: names[index].to_owned(),
                        });
                    }
                    api.models.insert(function.name.clone(), index);
                    api.functions.push(function);
                }
            }
        }
        for api in versions.values_mut() {
            api.functions.sort_by(|a, b| a.name.cmp(&b.name));
        }
        Ok(Self {
            names,
            catalogs,
            versions,
        })
    }

    pub(crate) fn versions(&self) -> Vec<u32> {
        self.versions.keys().copied().collect()
    }

    pub(crate) fn queries(&self) -> Vec<ModelQuery> {
        let mut queries: Vec<ModelQuery> = self
            .catalogs
            .iter()
            .zip(&self.names)
            .flat_map(|(catalog, &model)| {
                catalog
                    .queries()
                    .into_iter()
                    .map(move |query| ModelQuery { model, query })
            })
            .collect();
        queries.sort_by(|a, b| {
            (a.query.version, &a.query.name).cmp(&(b.query.version, &b.query.name))
        });
        queries
    }

    /// Runs query `name` of API version `version` against the read model that has it, in
    /// `snapshots`, within `budget` if there is one.
    pub(crate) fn call(
        &self,
        snapshots: &Snapshots,
        version: u32,
        name: &str,
        args: Map<String, Value>,
        budget: Option<&Budget>,
    ) -> Result<Value, QueryError> {
        let api = self
            .versions
            .get(&version)
            .ok_or(QueryError::UnknownVersion { version })?;
        let &index = api
            .models
            .get(name)
            .ok_or_else(|| QueryError::UnknownQuery {
                version,
                name: name.to_owned(),
            })?;
        let published = &snapshots.models[index];
        if published.stopped {
            return Err(QueryError::Stopped {
                model: published.name.to_owned(),
                position: published.position,
            });
        }
        self.catalogs[index].call(version, name, &*published.snapshot, args, budget)
    }

    /// The library of query API version `version` over `snapshots`.
    pub(crate) fn library(
        self: &Arc<Self>,
        snapshots: Arc<Snapshots>,
        version: u32,
    ) -> Result<Arc<dyn Library>, QueryError> {
        if !self.versions.contains_key(&version) {
            return Err(QueryError::UnknownVersion { version });
        }
        let roots: Vec<(&str, u32)> = snapshots
            .models
            .iter()
            .map(|m| (m.root.name, m.root.version))
            .collect();
        Ok(Arc::new(ModelsLibrary {
            routes: Arc::clone(self),
            root: RootId::of_library_over(&roots, version),
            model: RootId::of_models(&roots),
            snapshots,
            version,
        }))
    }
}

/// Every read model's functions of one query API version, over one [`Snapshots`]: code
/// that calls several sees them all at one position.
struct ModelsLibrary {
    routes: Arc<Routes>,
    snapshots: Arc<Snapshots>,
    version: u32,
    /// Every read model's root and the API version: the function set.
    root: RootId,
    /// Every read model's root: a rebuild of any of them to another projection version
    /// changes it, so the sandbox retires VMs made for the old structures.
    model: RootId,
}

impl fmt::Debug for ModelsLibrary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelsLibrary")
            .field("version", &self.version)
            .field("snapshots", &self.snapshots)
            .finish_non_exhaustive()
    }
}

impl Library for ModelsLibrary {
    fn functions(&self) -> Vec<FunctionSpec> {
        self.routes.versions[&self.version].functions.clone()
    }

    fn call(
        &self,
        name: &str,
        args: Map<String, Value>,
        budget: &Budget,
    ) -> Result<Value, LibraryError> {
        self.routes
            .call(&self.snapshots, self.version, name, args, Some(budget))
            .map_err(LibraryError::from)
    }

    fn position(&self) -> u64 {
        self.snapshots.position
    }

    fn root(&self) -> RootId {
        self.root
    }

    fn model(&self) -> RootId {
        self.model
    }
}
