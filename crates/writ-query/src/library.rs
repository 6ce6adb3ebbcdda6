//! What query code sees of a read model: a [`Library`] of named functions bound to one
//! snapshot, and the [`QueryError`] they fail with.
//!
//! The sandbox (`writ-sandbox`) runs client code against a `dyn Library` and knows nothing
//! else of the query side; [`QueryCatalog::bind`](crate::QueryCatalog::bind) makes one for a
//! query API version and a snapshot.

use serde_json::{Map, Value};

/// The functions a query version offers to code, bound to one snapshot.
///
/// Every call reads the same immutable snapshot, so code that calls several functions sees
/// one consistent read model at [`Library::position`], whatever the projection does
/// meanwhile.
pub trait Library: Send + Sync {
    /// Name and positional parameter names of every function, e.g. `("getTicket", ["id"])`.
    fn functions(&self) -> Vec<FunctionSpec>;

    /// Calls a function with its arguments as a JSON object.
    ///
    /// Positional arguments map to the parameter names of [`FunctionSpec::params`] in order.
    /// A `null` argument counts as absent. When the only argument is an object given for
    /// the first parameter (`searchTickets({status: "open"})`), its fields are the named
    /// arguments: parameters take scalars and arrays, never objects, so this is unambiguous.
    /// An argument that is not a parameter of the function is a
    /// [`QueryError::BadArgument`].
    fn call(&self, name: &str, args: Map<String, Value>) -> Result<Value, QueryError>;

    /// The position of the snapshot the library reads.
    fn position(&self) -> u64;

    /// Identifies the read model structure (root) the function set belongs to.
    ///
    /// Libraries with the same id offer the same functions over the same shapes, so a
    /// sandbox may keep prepared code per id. For libraries made by
    /// [`QueryCatalog::bind`](crate::QueryCatalog::bind) it is
    /// [`RootId::of_library`]: the read model root (projection name and version) and the
    /// query API version, since two API versions over one root offer different functions.
    fn root(&self) -> RootId;

    /// The read model root the function set reads ([`RootId::of`] the projection's name
    /// and version for libraries the catalog binds): function sets of one model are current
    /// together, and a sandbox keeps them all warm until a query brings another model.
    fn model(&self) -> RootId {
        self.root()
    }
}

/// A function of a [`Library`]: its name and its positional parameters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FunctionSpec {
    /// The function's name, for example `getTicket`.
    pub name: String,
    /// Its parameter names in positional order, for example `["id"]`.
    pub params: Vec<String>,
}

/// The identity of a read model structure: a hash of the projection's name and version
/// (see [`Root`](crate::Root)), or, for a [`Library`], of those and the query API version
/// (see [`RootId::of_library`]). Stable across processes and builds, so it may key caches
/// and appear in logs.
///
/// ```
/// use writ_query::RootId;
/// assert_eq!(RootId::of("tickets", 2), RootId::of("tickets", 2));
/// assert_ne!(RootId::of("tickets", 2), RootId::of("tickets", 1));
/// assert_ne!(RootId::of_library("tickets", 2, 1), RootId::of_library("tickets", 2, 2));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct RootId(pub u64);

impl RootId {
    /// The id of version `version` of the projection named `name`: the read model root.
    pub fn of(name: &str, version: u32) -> Self {
        Self(fnv1a(name, &[version]))
    }

    /// The id of the function set of query API version `api_version` over version
    /// `version` of the projection named `name`: what [`Library::root`] answers for
    /// libraries the catalog binds.
    pub fn of_library(name: &str, version: u32, api_version: u32) -> Self {
        Self(fnv1a(name, &[version, api_version]))
    }
}

/// FNV-1a (64 bits) of `name`, a 0xff separator (it cannot occur in UTF-8, so no two
/// inputs run together), and the numbers in little-endian order.
fn fnv1a(name: &str, numbers: &[u32]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let numbers = numbers.iter().flat_map(|n| n.to_le_bytes());
    name.bytes()
        .chain([0xff])
        .chain(numbers)
        .fold(OFFSET, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(PRIME)
        })
}

impl std::fmt::Display for RootId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Why a query gave no answer. Each variant says what the caller should do; the server maps
/// them to HTTP statuses (suggested in each variant's documentation), the sandbox to
/// exceptions carrying [`QueryError::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// What the query looks up does not exist (`404`), for example `getTicket` of an id
    /// never opened. It may exist at a later position.
    #[error("not found: {detail}")]
    NotFound {
        /// What was not found, for people.
        detail: String,
    },
    /// An argument is missing, unknown, of the wrong type or out of range (`400`). Do not
    /// retry unchanged.
    #[error("bad argument `{argument}`: {detail}")]
    BadArgument {
        /// The argument's name.
        argument: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The query API version has no query of this name (`404`).
    #[error("query API version {version} has no query `{name}`")]
    UnknownQuery {
        /// The query API version asked for.
        version: u32,
        /// The name asked for.
        name: String,
    },
    /// There is no such query API version (`404`).
    #[error("there is no query API version {version}")]
    UnknownVersion {
        /// The version asked for.
        version: u32,
    },
    /// The live read model cannot answer this query API version yet: its structure is
    /// older than the version needs (`503`). Retry once the rebuild to a newer projection
    /// version has switched.
    #[error(
        "query API version {version} needs projection version {needs} or newer; the live read model is {live}"
    )]
    Unavailable {
        /// The query API version asked for.
        version: u32,
        /// The oldest projection version it can read.
        needs: u32,
        /// The live root, as `name@version`.
        live: String,
    },
    /// The query itself failed (`500`): a bug in the query or transformer.
    #[error("query failed: {detail}")]
    Failed {
        /// What went wrong.
        detail: String,
    },
}

impl QueryError {
    /// [`QueryError::NotFound`].
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::NotFound {
            detail: detail.into(),
        }
    }

    /// [`QueryError::BadArgument`].
    pub fn bad_argument(argument: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::BadArgument {
            argument: argument.into(),
            detail: detail.into(),
        }
    }

    /// [`QueryError::Failed`].
    pub fn failed(detail: impl Into<String>) -> Self {
        Self::Failed {
            detail: detail.into(),
        }
    }

    /// A stable code for the kind of error: `not_found`, `bad_argument`, `unknown_query`,
    /// `unknown_version`, `unavailable` or `failed`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "not_found",
            Self::BadArgument { .. } => "bad_argument",
            Self::UnknownQuery { .. } => "unknown_query",
            Self::UnknownVersion { .. } => "unknown_version",
            Self::Unavailable { .. } => "unavailable",
            Self::Failed { .. } => "failed",
        }
    }
}
