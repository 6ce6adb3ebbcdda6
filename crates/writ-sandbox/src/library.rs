//! The interface between the sandbox and the query side: the functions a query version
//! offers to code, bound to one snapshot.

use std::fmt;

use crate::Budget;

/// The functions a query version offers to code, bound to one snapshot.
///
/// The sandbox puts each function of [`functions`](Library::functions) in scope as a
/// global of the same name and calls [`call`](Library::call) when code calls it, on the
/// sandbox's worker thread, while the query runs. Values cross the boundary as JSON.
///
/// Every library with the same [`root`](Library::root) must offer the same functions: the
/// sandbox keeps warm VMs per root with the functions already bound, and asks a library for
/// its functions only when a worker makes a VM for a root it holds no warm VM of (the
/// first query of a root, after an eviction, or a late query of a superseded model). A root
/// belongs to one [`model`](Library::model).
pub trait Library: Send + Sync {
    /// The functions, each with the names of its parameters in order, e.g.
    /// `("getCounter", ["id"])`, `("listCounters", ["query"])`, `("counterStats", [])`.
    fn functions(&self) -> Vec<FunctionSpec>;

    /// Calls the function `name` with named arguments. Absent arguments are absent keys.
    ///
    /// Runs on a sandbox worker while the query's time limit runs, and its answer counts
    /// against the query's memory and time limits through `budget`: an answer whose size
    /// depends on the data (the entries of a list, a history) should be built piece by piece,
    /// each piece [charged](Budget::charge_json), giving up at the first error. Whatever the
    /// library returns then, the sandbox fails the query with
    /// [`SandboxError::LibraryAnswerTooLarge`](crate::SandboxError::LibraryAnswerTooLarge)
    /// or [`SandboxError::TimeLimit`](crate::SandboxError::TimeLimit). The sandbox also
    /// measures the JSON of every answer as it writes it into the VM, against the same
    /// bytes and deadline, so a library that charges nothing is still bounded there, but
    /// only after it has built its whole answer on the host.
    fn call(
        &self,
        name: &str,
        args: serde_json::Map<String, serde_json::Value>,
        budget: &Budget,
    ) -> Result<serde_json::Value, LibraryError>;

    /// The position of the snapshot the functions read.
    fn position(&self) -> u64;

    /// The function set: libraries with the same root offer the same functions over the
    /// same shapes, and the sandbox keeps warm VMs per root.
    fn root(&self) -> RootId;

    /// The read model structure the function set reads (by default, the function set's own
    /// root). Several function sets can read one model, for example two query API versions
    /// over one projection version: the sandbox keeps VMs of all of them warm while that
    /// model is current, and retires them together when a query brings a new model.
    fn model(&self) -> RootId {
        self.root()
    }
}

/// One function of a [`Library`]: its name, a JavaScript identifier, and the names of its
/// parameters in order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FunctionSpec {
    /// The global name code calls it by, e.g. `getCounter`.
    pub name: String,
    /// The parameter names positional arguments map to, in order, e.g. `["id"]`.
    pub params: Vec<String>,
}

/// Identifies a read model structure (a set of library functions and the shapes they read).
/// A new root means the structure changed: VMs bound to the old root are retired.
///
/// The query side makes them from the roots of its read models, a root being a
/// projection's name and version: [`RootId::of`] one model, [`RootId::of_models`]
/// several read together (what [`Library::model`] answers), and [`RootId::of_library`]
/// and [`RootId::of_library_over`] the function set of one query API version over them
/// (what [`Library::root`] answers: two API versions over the same models offer different
/// functions). They hash the names and numbers (64-bit FNV-1a), so they are stable across
/// processes and builds and may key caches and appear in logs.
///
/// ```
/// use writ_sandbox::RootId;
/// assert_eq!(RootId::of("counters", 2), RootId::of("counters", 2));
/// assert_ne!(RootId::of("counters", 2), RootId::of("counters", 1));
/// assert_ne!(RootId::of_library("counters", 2, 1), RootId::of_library("counters", 2, 2));
/// // One model is the one-model case of several.
/// assert_eq!(RootId::of_models(&[("counters", 2)]), RootId::of("counters", 2));
/// assert_eq!(RootId::of_library_over(&[("counters", 2)], 1), RootId::of_library("counters", 2, 1));
/// let both = RootId::of_models(&[("counters", 2), ("accounts", 1)]);
/// assert_ne!(both, RootId::of_models(&[("counters", 2), ("accounts", 2)]));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct RootId(pub u64);

impl RootId {
    /// The id of version `version` of the projection named `name`: one read model's root.
    pub fn of(name: &str, version: u32) -> Self {
        Self::of_models(&[(name, version)])
    }

    /// The id of several read models read together, each by projection name and version,
    /// in a fixed order.
    pub fn of_models(models: &[(&str, u32)]) -> Self {
        Self(hash_models(models).0)
    }

    /// The id of the function set of query API version `api_version` over version
    /// `version` of the projection named `name`.
    pub fn of_library(name: &str, version: u32, api_version: u32) -> Self {
        Self::of_library_over(&[(name, version)], api_version)
    }

    /// The id of the function set of query API version `api_version` over several read
    /// models ([`RootId::of_models`]).
    pub fn of_library_over(models: &[(&str, u32)], api_version: u32) -> Self {
        Self(hash_models(models).number(api_version).0)
    }
}

/// 64-bit FNV-1a, fed in pieces.
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn bytes(self, bytes: impl IntoIterator<Item = u8>) -> Self {
        Self(bytes.into_iter().fold(self.0, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(Self::PRIME)
        }))
    }

    fn number(self, number: u32) -> Self {
        self.bytes(number.to_le_bytes())
    }
}

/// Each model's name, a 0xff separator (it cannot occur in UTF-8, so no name runs into
/// what follows), and its version in little-endian order.
fn hash_models(models: &[(&str, u32)]) -> Fnv {
    models
        .iter()
        .fold(Fnv(Fnv::OFFSET), |hash, (name, version)| {
            hash.bytes(name.bytes()).bytes([0xff]).number(*version)
        })
}

impl fmt::Display for RootId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// A library function refused a call.
///
/// Code can catch it: it is thrown as an `Error` whose `name` is `"LibraryError"` and which
/// carries `status` and `message`. Uncaught, it ends the query with
/// [`SandboxError::Library`](crate::SandboxError::Library).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LibraryError {
    /// 400 bad argument, 404 not found, 500 a failed query, 503 a read model that cannot
    /// answer now (stopped, or its structure too old for the query API version). The
    /// numbers are HTTP's, so that code and a named query calling the same function agree.
    pub status: u16,
    /// A message for the client, e.g. `counter 42 not found`.
    pub message: String,
}

impl fmt::Display for LibraryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.status)
    }
}

impl std::error::Error for LibraryError {}
