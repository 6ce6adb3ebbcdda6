//! What query code sees of the read models: a [`Library`] of named functions bound to one
//! snapshot, and the [`QueryError`] the query side fails with.
//!
//! [`Library`], [`FunctionSpec`], [`RootId`] and [`LibraryError`] are the sandbox's
//! (`writ-sandbox`, re-exported here): one vocabulary between the query side, which makes
//! libraries, and the sandbox, which runs client code against them and knows nothing else
//! of the query side. [`QueryCatalog::bind`](crate::QueryCatalog::bind) makes one for a
//! query API version and one snapshot; [`ReadModels::library`](crate::ReadModels::library)
//! one over every read model's functions of a version, all at one position.
//!
//! Queries fail with a [`QueryError`], which the server maps to HTTP. Through a library,
//! query code sees it as a [`LibraryError`] whose `status` is [`QueryError::status`].
//!
//! A library call from query code comes with a [`Budget`] (the sandbox's: what the
//! query's memory and time limits leave for the answer), which reaches the query as its
//! [`Args::budget`](crate::Args::budget); [`Args::array`](crate::Args::array) builds a list
//! within it.

pub use writ_sandbox::{Budget, BudgetExceeded, FunctionSpec, Library, LibraryError, RootId};

/// Why a query gave no answer. Each variant says what the caller should do; the server maps
/// them to HTTP statuses (each variant's documentation gives the status, which
/// [`QueryError::status`] answers too), and through a [`Library`] query code sees them as a
/// [`LibraryError`] with that status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// What the query looks up does not exist (`404`), for example `getCounter` of an id
    /// never created. It may exist at a later position.
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
    /// The read model that answers this query stopped (`503`): something panicked on its
    /// applying thread outside its projection's `decode` and `apply` (a panic there only
    /// parks the event), and its last snapshot is older than the other read models' position, so answering
    /// from it would mix positions. Retry once a rebuild of the model has switched (the
    /// model's status has the failure).
    #[error("the read model {model} stopped at position {position}; rebuild it")]
    Stopped {
        /// The read model's name.
        model: String,
        /// The position of its last snapshot.
        position: u64,
    },
    /// The answer did not fit the caller's [`Budget`] (`422`): it was larger than what the
    /// query code's memory limit leaves for one answer (or, for a named query, than the
    /// server's bound on an answer), or the code's time ran out while it was built. For
    /// query code the sandbox then fails the query with the limit whatever the code makes
    /// of this error. Ask for less (a page, a count).
    #[error("the answer does not fit its budget: {exceeded}")]
    OverBudget {
        /// Which part of the budget.
        exceeded: BudgetExceeded,
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
    /// `unknown_version`, `unavailable`, `stopped`, `over_budget` or `failed`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "not_found",
            Self::BadArgument { .. } => "bad_argument",
            Self::UnknownQuery { .. } => "unknown_query",
            Self::UnknownVersion { .. } => "unknown_version",
            Self::Unavailable { .. } => "unavailable",
            Self::Stopped { .. } => "stopped",
            Self::OverBudget { .. } => "over_budget",
            Self::Failed { .. } => "failed",
        }
    }

    /// The status query code sees as `e.status` when a library function fails with this
    /// error ([`LibraryError::status`]): 400 for a bad argument, 404 for something not
    /// found (a value, a query, a version), 503 for a read model that cannot answer now
    /// ([`QueryError::Unavailable`], [`QueryError::Stopped`]), 422 for an answer over its
    /// budget ([`QueryError::OverBudget`]), 500 for a failed query.
    ///
    /// The numbers are HTTP's and agree with the server's answers to a named query, so
    /// that code and a named query calling the same function see the same status; the
    /// server's own table from errors to HTTP stays the one place that speaks HTTP.
    ///
    /// ```
    /// use writ_query::{LibraryError, QueryError};
    /// let error = QueryError::not_found("no counter c-9");
    /// assert_eq!(error.status(), 404);
    /// let thrown = LibraryError::from(error);
    /// assert_eq!((thrown.status, thrown.message.as_str()), (404, "not found: no counter c-9"));
    /// ```
    pub fn status(&self) -> u16 {
        match self {
            Self::BadArgument { .. } => 400,
            Self::NotFound { .. } | Self::UnknownQuery { .. } | Self::UnknownVersion { .. } => 404,
            Self::Unavailable { .. } | Self::Stopped { .. } => 503,
            Self::OverBudget { .. } => 422,
            Self::Failed { .. } => 500,
        }
    }
}

impl From<BudgetExceeded> for QueryError {
    fn from(exceeded: BudgetExceeded) -> Self {
        Self::OverBudget { exceeded }
    }
}

impl From<QueryError> for LibraryError {
    /// The error as query code sees it: [`QueryError::status`] and the error's message.
    fn from(error: QueryError) -> Self {
        Self {
            status: error.status(),
            message: error.to_string(),
        }
    }
}
