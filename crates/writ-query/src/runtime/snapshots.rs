//! [`Snapshots`]: every read model's snapshot as of one position, as the runtime publishes
//! them.

use std::fmt;

use crate::projection::{Root, Snapshot};
use crate::runtime::erased::AnySnapshot;

/// Every read model's snapshot as of one position of the global log, published at once
/// after a batch: a reader that holds one sees all read models at
/// [`Snapshots::position`], however far they go on, and never a mix of positions.
///
/// A read model that stopped (its projection panicked) keeps the last snapshot it
/// published, older than the others: [`Snapshots::is_stopped`] tells, and queries refuse
/// to read it ([`QueryError::Stopped`](crate::QueryError::Stopped)).
pub struct Snapshots {
    pub(crate) position: u64,
    pub(crate) models: Box<[Published]>,
}

/// One read model's entry in [`Snapshots`].
#[derive(Clone)]
pub(crate) struct Published {
    pub(crate) name: &'static str,
    pub(crate) root: Root,
    /// An `Arc<Snapshot<S>>`.
    pub(crate) snapshot: AnySnapshot,
    /// The snapshot's position: the group's, unless `stopped`.
    pub(crate) position: u64,
    pub(crate) stopped: bool,
}

impl Snapshots {
    /// The position every live read model's snapshot is at.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The snapshot of the read model `model`, whose state is an `S`; `None` when there is
    /// no such model or its state is of another type. For a stopped model it is the last
    /// snapshot it published (its `position` says where it stopped).
    pub fn get<S: Send + Sync + 'static>(
        &self,
        model: &str,
    ) -> Option<std::sync::Arc<Snapshot<S>>> {
        let published = self.models.iter().find(|m| m.name == model)?;
        published.snapshot.clone().downcast::<Snapshot<S>>().ok()
    }

    /// Whether the read model `model` stopped (`false` for an unknown name).
    pub fn is_stopped(&self, model: &str) -> bool {
        self.models.iter().any(|m| m.name == model && m.stopped)
    }

    /// The read models' roots (projection name and version), in the order they were
    /// started.
    pub fn roots(&self) -> Vec<Root> {
        self.models.iter().map(|m| m.root).collect()
    }
}

impl fmt::Debug for Snapshots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let models: Vec<String> = self
            .models
            .iter()
            .map(|m| {
                if m.stopped {
                    format!("{} (stopped at {})", m.root, m.position)
                } else {
                    m.root.to_string()
                }
            })
            .collect();
        f.debug_struct("Snapshots")
            .field("position", &self.position)
            .field("models", &models)
            .finish()
    }
}
