//! Named queries, by query API version.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::args::{self, Args};
use crate::library::{Budget, FunctionSpec, Library, LibraryError, QueryError, RootId};
use crate::projection::Snapshot;

/// A query's implementation: reads the state, answers JSON.
pub type QueryFn<S> = Arc<dyn Fn(&S, &Args<'_>) -> Result<Value, QueryError> + Send + Sync>;

/// How a query is implemented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuerySource {
    /// Directly over the state.
    Native,
    /// By transforming the answer of another query (usually the same query of the newest
    /// API version).
    Transform {
        /// The source query's API version.
        version: u32,
        /// The source query's name.
        name: String,
    },
}

/// A query as [`QueryCatalog::queries`] describes it (for OpenAPI and tools).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryInfo {
    /// The query API version.
    pub version: u32,
    /// The query's name.
    pub name: String,
    /// Its parameters, in positional order.
    pub params: Vec<String>,
    /// How it is implemented.
    pub source: QuerySource,
}

struct Query<S> {
    params: Vec<String>,
    run: QueryFn<S>,
    source: QuerySource,
}

// Not derived: `S` need not be `Clone`.
impl<S> Clone for Query<S> {
    fn clone(&self) -> Self {
        Self {
            params: self.params.clone(),
            run: Arc::clone(&self.run),
            source: self.source.clone(),
        }
    }
}

struct ApiVersion<S> {
    /// The oldest projection version whose state this version's queries can read.
    projection_version_min: u32,
    queries: BTreeMap<String, Query<S>>,
}

/// The named queries of a read model, per query API version (`v1`, `v2`, ...).
///
/// Every query API version stays answerable for as long as old clients use it, while the
/// read model has only one structure at a time (the newest). So only the newest version is
/// written against the state; an older version's queries are **transformers**: they run the
/// newest query and reshape its answer into the old shape.
///
/// # Adding a query API version
///
/// Say clients need a new answer shape, or the projection gained data (a projection version
/// bump; see [`Projection`](crate::Projection)):
/// 1. If the state changes, bump the projection's version: every start rebuilds, so the new
///    structure is built at the next start (or beside the live one, with
///    [`ReadModels::rebuild`](crate::ReadModels::rebuild); a
///    [`ReadModelSpec`](crate::ReadModelSpec) declares the versions it can build with
///    [`ReadModelSpec::with_versions`](crate::ReadModelSpec::with_versions), and the
///    server's `POST /projections/{name}/rebuild` or `writ rebuild --version N` starts one).
/// 2. Write the queries of version N+1 against the state, with
///    [`VersionBuilder::query`], and declare the projection version they need with
///    [`VersionBuilder::requires_projection_version`].
/// 3. Turn version N's native queries into transformers of version N+1's with
///    [`VersionBuilder::transform`]: same name and parameters, a function from the new
///    answer to the old shape. Older versions that were already transformers of N now
///    transform N's answer, unchanged.
/// 4. Keep version N's tests: the same data must give the same answers through the
///    transformers.
///
/// ```
/// use serde_json::{Value, json};
/// use writ_query::{QueryCatalog, QueryError, Root, Snapshot};
///
/// // State: a list of names. v2 answers objects; v1 answered bare strings.
/// let mut catalog = QueryCatalog::<Vec<String>>::new();
/// catalog
///     .version(2)
///     .query("names", &["prefix"], |names: &Vec<String>, args| {
///         let prefix = args.str("prefix")?.unwrap_or("");
///         Ok(names.iter().filter(|n| n.starts_with(prefix)).map(|n| json!({"name": n})).collect())
///     });
/// catalog.version(1).transform("names", &["prefix"], (2, "names"), |v2| {
///     Ok(v2.as_array().into_iter().flatten().map(|item| item["name"].clone()).collect())
/// });
///
/// let snapshot = Snapshot {
///     state: vec!["ada".to_owned(), "bob".to_owned()],
///     position: 7,
///     root: Root { name: "names", version: 1 },
/// };
/// let args = json!({"prefix": "a"}).as_object().unwrap().clone();
/// assert_eq!(catalog.call(2, "names", &snapshot, args.clone()).unwrap(), json!([{"name": "ada"}]));
/// assert_eq!(catalog.call(1, "names", &snapshot, args).unwrap(), json!(["ada"]));
/// assert!(matches!(
///     catalog.call(3, "names", &snapshot, Default::default()),
///     Err(QueryError::UnknownVersion { version: 3 })
/// ));
/// ```
pub struct QueryCatalog<S> {
    versions: BTreeMap<u32, ApiVersion<S>>,
}

impl<S> fmt::Debug for QueryCatalog<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueryCatalog")
            .field("queries", &self.queries())
            .finish()
    }
}

impl<S> Default for QueryCatalog<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> QueryCatalog<S> {
    /// An empty catalog.
    pub fn new() -> Self {
        Self {
            versions: BTreeMap::new(),
        }
    }

    /// Declares query API version `version` (or continues declaring it) and returns a
    /// builder for its queries.
    pub fn version(&mut self, version: u32) -> VersionBuilder<'_, S> {
        self.versions.entry(version).or_insert_with(|| ApiVersion {
            projection_version_min: 0,
            queries: BTreeMap::new(),
        });
        VersionBuilder {
            catalog: self,
            version,
        }
    }

    /// The declared query API versions, oldest first.
    pub fn versions(&self) -> Vec<u32> {
        self.versions.keys().copied().collect()
    }

    /// The newest query API version.
    pub fn newest(&self) -> Option<u32> {
        self.versions.keys().next_back().copied()
    }

    /// The functions of a query API version, by name; `None` for an unknown version.
    pub fn functions(&self, version: u32) -> Option<Vec<FunctionSpec>> {
        self.versions.get(&version).map(|v| {
            v.queries
                .iter()
                .map(|(name, query)| FunctionSpec {
                    name: name.clone(),
                    params: query.params.clone(),
                })
                .collect()
        })
    }

    /// Every query of every version.
    pub fn queries(&self) -> Vec<QueryInfo> {
        self.versions
            .iter()
            .flat_map(|(&version, v)| {
                v.queries.iter().map(move |(name, query)| QueryInfo {
                    version,
                    name: name.clone(),
                    params: query.params.clone(),
                    source: query.source.clone(),
                })
            })
            .collect()
    }

    /// Whether the snapshot's structure can answer `version`: the version exists and the
    /// snapshot's projection version is new enough for it.
    pub fn check(&self, version: u32, snapshot: &Snapshot<S>) -> Result<(), QueryError> {
        let v = self
            .versions
            .get(&version)
            .ok_or(QueryError::UnknownVersion { version })?;
        if snapshot.root.version < v.projection_version_min {
            return Err(QueryError::Unavailable {
                version,
                needs: v.projection_version_min,
                live: snapshot.root.to_string(),
            });
        }
        Ok(())
    }

    /// Runs query `name` of API version `version` against a snapshot. `args` are checked
    /// against the query's parameters first; see [`Library::call`] for the rules.
    pub fn call(
        &self,
        version: u32,
        name: &str,
        snapshot: &Snapshot<S>,
        args: Map<String, Value>,
    ) -> Result<Value, QueryError> {
        self.call_within(version, name, snapshot, args, None)
    }

    /// [`QueryCatalog::call`] with the answer built within `budget`, when there is one
    /// (see [`Args::array`]).
    pub fn call_within(
        &self,
        version: u32,
        name: &str,
        snapshot: &Snapshot<S>,
        args: Map<String, Value>,
        budget: Option<&Budget>,
    ) -> Result<Value, QueryError> {
        self.check(version, snapshot)?;
        let query =
            self.versions[&version]
                .queries
                .get(name)
                .ok_or_else(|| QueryError::UnknownQuery {
                    version,
                    name: name.to_owned(),
                })?;
        let args = args::normalize(&query.params, args)?;
        let args = match budget {
            Some(budget) => Args::with_budget(&args, budget),
            None => Args::new(&args),
        };
        (query.run)(&snapshot.state, &args)
    }
}

impl<S: Send + Sync + 'static> QueryCatalog<S> {
    /// The library of query API version `version` bound to `snapshot`: what the sandbox
    /// gives query code. Fails when the version is unknown or the snapshot's structure is
    /// too old for it.
    pub fn bind(
        self: &Arc<Self>,
        version: u32,
        snapshot: Arc<Snapshot<S>>,
    ) -> Result<Arc<dyn Library>, QueryError> {
        self.check(version, &snapshot)?;
        Ok(Arc::new(BoundLibrary {
            catalog: Arc::clone(self),
            version,
            snapshot,
        }))
    }
}

/// Declares the queries of one API version; see [`QueryCatalog::version`].
pub struct VersionBuilder<'a, S> {
    catalog: &'a mut QueryCatalog<S>,
    version: u32,
}

impl<S> fmt::Debug for VersionBuilder<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VersionBuilder")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl<S> VersionBuilder<'_, S> {
    fn api(&mut self) -> &mut ApiVersion<S> {
        self.catalog
            .versions
            .get_mut(&self.version)
            .expect("created by QueryCatalog::version")
    }

    /// The oldest projection version whose state this version's queries can read. Until the
    /// live read model has at least this version, calls answer
    /// [`QueryError::Unavailable`]. Default 0 (any).
    pub fn requires_projection_version(mut self, version: u32) -> Self {
        self.api().projection_version_min = version;
        self
    }

    /// Adds a query written against the state.
    ///
    /// # Panics
    ///
    /// When the version already has a query of this name.
    pub fn query<F>(mut self, name: &str, params: &[&str], run: F) -> Self
    where
        F: Fn(&S, &Args<'_>) -> Result<Value, QueryError> + Send + Sync + 'static,
    {
        self.insert(
            name,
            Query {
                params: params.iter().map(|p| (*p).to_owned()).collect(),
                run: Arc::new(run),
                source: QuerySource::Native,
            },
        );
        self
    }

    /// Adds a query whose answer is `transform` applied to the answer of query `from.1` of
    /// API version `from.0`, given the same arguments. `params` must be among the source's
    /// parameters (an old version usually takes fewer).
    ///
    /// # Panics
    ///
    /// When the source query is not declared yet, when `params` holds a name the source
    /// does not take, or when the version already has a query of this name.
    pub fn transform<F>(
        mut self,
        name: &str,
        params: &[&str],
        from: (u32, &str),
        transform: F,
    ) -> Self
    where
        S: 'static,
        F: Fn(Value) -> Result<Value, QueryError> + Send + Sync + 'static,
    {
        let (from_version, from_name) = from;
        let source = self
            .catalog
            .versions
            .get(&from_version)
            .and_then(|v| v.queries.get(from_name))
            .unwrap_or_else(|| {
                panic!("transform `{name}`: declare v{from_version} `{from_name}` first")
            })
            .clone();
        for param in params {
            assert!(
                source.params.iter().any(|p| p == param),
                "transform `{name}`: v{from_version} `{from_name}` takes no parameter `{param}`"
            );
        }
        let run = source.run;
        self.insert(
            name,
            Query {
                params: params.iter().map(|p| (*p).to_owned()).collect(),
                run: Arc::new(move |state: &S, args: &Args<'_>| transform(run(state, args)?)),
                source: QuerySource::Transform {
                    version: from_version,
                    name: from_name.to_owned(),
                },
            },
        );
        self
    }

    fn insert(&mut self, name: &str, query: Query<S>) {
        let version = self.version;
        let previous = self.api().queries.insert(name.to_owned(), query);
        assert!(previous.is_none(), "v{version} declares `{name}` twice");
    }
}

/// A [`Library`]: one API version's queries over one snapshot.
struct BoundLibrary<S> {
    catalog: Arc<QueryCatalog<S>>,
    version: u32,
    snapshot: Arc<Snapshot<S>>,
}

impl<S> fmt::Debug for BoundLibrary<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundLibrary")
            .field("version", &self.version)
            .field("snapshot", &self.snapshot)
            .finish_non_exhaustive()
    }
}

impl<S: Send + Sync + 'static> Library for BoundLibrary<S> {
    fn functions(&self) -> Vec<FunctionSpec> {
        self.catalog.functions(self.version).unwrap_or_default()
    }

    fn call(
        &self,
        name: &str,
        args: Map<String, Value>,
        budget: &Budget,
    ) -> Result<Value, LibraryError> {
        self.catalog
            .call_within(self.version, name, &self.snapshot, args, Some(budget))
            .map_err(LibraryError::from)
    }

    fn position(&self) -> u64 {
        self.snapshot.position
    }

    fn root(&self) -> RootId {
        let root = self.snapshot.root;
        RootId::of_library(root.name, root.version, self.version)
    }

    fn model(&self) -> RootId {
        self.snapshot.root.id()
    }
}
