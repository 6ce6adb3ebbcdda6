//! [`ReadModelSpec`]: what a domain hands the runtime to run one read model.

use std::any::TypeId;
use std::fmt;
use std::sync::Arc;

use crate::catalog::QueryCatalog;
use crate::projection::Projection;
use crate::runtime::erased::{AnyCatalog, AnyProjection, Erased};

/// Makes the projection of a given version, or `None` for a version the domain does not
/// have.
pub(crate) type Factory = Arc<dyn Fn(u32) -> Option<Arc<dyn AnyProjection>> + Send + Sync>;

/// One read model for [`ReadModels::start`](crate::ReadModels::start): a projection to
/// run, the [`QueryCatalog`] that reads its snapshots, and the other projection versions a
/// rebuild may build. Its name is the projection's.
///
/// ```
/// # use writ_query::{ApplyError, Projection, QueryCatalog, ReadModelSpec, RecordedEvent};
/// # use serde_json::json;
/// #[derive(Clone)]
/// struct Count(u32);
/// impl Projection for Count {
///     type State = u64;
///     type Decoded = ();
///     fn name(&self) -> &'static str { "count" }
///     fn version(&self) -> u32 { self.0 }
///     fn event_types(&self) -> &[&'static str] { &["Tick"] }
///     fn initial_state(&self) -> u64 { 0 }
///     fn decode(&self, _: &RecordedEvent) -> Result<(), ApplyError> { Ok(()) }
///     fn apply(&self, n: &mut u64, _: &RecordedEvent, _: ()) -> Result<(), ApplyError> {
///         *n += 1;
///         Ok(())
///     }
/// }
/// let mut catalog = QueryCatalog::new();
/// catalog.version(1).query("ticks", &[], |n: &u64, _| Ok(json!(n)));
/// // Starts at version 1; a rebuild may build 1 or 2.
/// let spec = ReadModelSpec::new(Count(1), catalog)
///     .with_versions([1, 2], |version| (1..=2).contains(&version).then_some(Count(version)));
/// assert_eq!(spec.name(), "count");
/// assert_eq!(spec.projection_versions(), [1, 2]);
/// ```
///
/// Cheap to clone (its parts are shared): an app keeps its specs to start the read models
/// again on another journal (an online replay's switch).
#[derive(Clone)]
pub struct ReadModelSpec {
    pub(crate) projection: Arc<dyn AnyProjection>,
    projection_type: TypeId,
    pub(crate) catalog: Arc<dyn AnyCatalog>,
    pub(crate) versions: Vec<u32>,
    pub(crate) factory: Option<Factory>,
    /// The position of the switch it starts at: the live read models follow only the
    /// switches after it (see [`crate::switch`]).
    pub(crate) switched_at: u64,
}

impl fmt::Debug for ReadModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadModelSpec")
            .field("root", &self.projection.root())
            .field("projection_versions", &self.versions)
            .field("query_versions", &self.catalog.versions())
            .finish_non_exhaustive()
    }
}

impl ReadModelSpec {
    /// `projection`, started from position 1, with the queries of `catalog`. A rebuild
    /// can build this projection version again; [`ReadModelSpec::with_versions`] adds
    /// others.
    pub fn new<P: Projection>(projection: P, catalog: QueryCatalog<P::State>) -> Self {
        let versions = vec![projection.version()];
        Self {
            projection: Arc::new(Erased(projection)),
            projection_type: TypeId::of::<P>(),
            catalog: Arc::new(catalog),
            versions,
            factory: None,
            switched_at: 0,
        }
    }

    /// Lets a rebuild build other versions of the projection: `versions` lists them,
    /// `make` makes the projection of one. This is how a domain declares that a new read
    /// model structure replaces the old: it bumps the projection's version, lists it here,
    /// and a rebuild to it joins the live read models once it has caught up, while the
    /// catalog's older query API versions keep answering through their transformers.
    ///
    /// # Panics
    ///
    /// When `make` makes another projection type than [`ReadModelSpec::new`] was given.
    pub fn with_versions<P: Projection>(
        mut self,
        versions: impl IntoIterator<Item = u32>,
        make: impl Fn(u32) -> Option<P> + Send + Sync + 'static,
    ) -> Self {
        assert!(
            self.projection_type == TypeId::of::<P>(),
            "read model {}: with_versions makes another projection type than it runs",
            self.name()
        );
        self.versions.extend(versions);
        self.versions.sort_unstable();
        self.versions.dedup();
        self.factory = Some(Arc::new(move |version| {
            make(version).map(|projection| Arc::new(Erased(projection)) as Arc<dyn AnyProjection>)
        }));
        self
    }

    /// The read model's name: its projection's.
    pub fn name(&self) -> &'static str {
        self.projection.root().name
    }

    /// The projection versions a rebuild can build, oldest first.
    pub fn projection_versions(&self) -> &[u32] {
        &self.versions
    }

    /// The projection version the read model starts with.
    pub fn version(&self) -> u32 {
        self.projection.root().version
    }

    /// Starts the read model at projection `version` (one of
    /// [`ReadModelSpec::projection_versions`]) instead of the one it was made with: an
    /// older structure, which a rebuild can move on while the server serves. `None` when
    /// the read model cannot build that version.
    pub fn starting_at(mut self, version: u32) -> Option<Self> {
        if version == self.version() {
            return Some(self);
        }
        if !self.versions.contains(&version) {
            return None;
        }
        let projection = (self.factory.as_ref()?)(version)?;
        self.projection = projection;
        Some(self)
    }

    /// Has the live read model follow only the [`ReadModelSwitched`] events after
    /// `position`: the switch it starts at (see [`crate::switch::start_versions`]), whose
    /// version [`ReadModelSpec::starting_at`] gave. Those at or before it are history the
    /// read model starts after.
    ///
    /// [`ReadModelSwitched`]: crate::switch::ReadModelSwitched
    pub fn switched_at(mut self, position: u64) -> Self {
        self.switched_at = position;
        self
    }

    /// The projection of `version`, when this read model can build it.
    pub(crate) fn projection_of(&self, version: u32) -> Option<Arc<dyn AnyProjection>> {
        if self.projection.root().version == version {
            return Some(Arc::clone(&self.projection));
        }
        if !self.versions.contains(&version) {
            return None;
        }
        (self.factory.as_ref()?)(version).filter(|projection| projection.root().name == self.name())
    }
}
