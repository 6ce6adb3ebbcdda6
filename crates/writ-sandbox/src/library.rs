//! The interface between the sandbox and the query side: the functions a query version
//! offers to code, bound to one snapshot.

use std::fmt;

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
    /// `("getTicket", ["id"])`, `("searchTickets", ["query"])`, `("ticketStats", [])`.
    fn functions(&self) -> Vec<FunctionSpec>;

    /// Calls the function `name` with named arguments. Absent arguments are absent keys.
    ///
    /// Runs on a sandbox worker while the query's time limit runs: it should be quick, and it
    /// cannot be interrupted.
    fn call(
        &self,
        name: &str,
        args: serde_json::Map<String, serde_json::Value>,
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionSpec {
    /// The global name code calls it by, e.g. `getTicket`.
    pub name: String,
    /// The parameter names positional arguments map to, in order, e.g. `["id"]`.
    pub params: Vec<String>,
}

/// Identifies a read model structure (a set of library functions and the shapes they read).
/// A new root means the structure changed: VMs bound to the old root are retired.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct RootId(pub u64);

/// A library function refused a call.
///
/// Code can catch it: it is thrown as an `Error` whose `name` is `"LibraryError"` and which
/// carries `status` and `message`. Uncaught, it ends the query with
/// [`SandboxError::Library`](crate::SandboxError::Library).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LibraryError {
    /// 400 bad argument, 404 not found, 500 other.
    pub status: u16,
    /// A message for the client, e.g. `ticket 42 not found`.
    pub message: String,
}

impl fmt::Display for LibraryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.status)
    }
}

impl std::error::Error for LibraryError {}
