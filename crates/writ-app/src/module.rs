//! A domain with its processes and read models: what `--domain NAME` switches on.

use std::fmt;
use std::sync::Arc;

use writ_domain::model::{DomainModel, ProcessModel, domain, process};
use writ_domain::{Domain, Process};
use writ_query::ReadModelSpec;

/// One domain and what belongs to it: the processes that follow its events and the read
/// models built from them. `writ serve --domain NAME` serves the module named `NAME`.
///
/// ```
/// use writ_app::Module;
/// let tickets = Module::new::<writ_tickets::Tickets>()
///     .read_model(writ_tickets::read::read_model());
/// assert_eq!(tickets.name(), "tickets");
/// ```
pub struct Module {
    pub(crate) domain: Arc<dyn DomainModel>,
    pub(crate) processes: Vec<Arc<dyn ProcessModel>>,
    pub(crate) read_models: Vec<ReadModelSpec>,
}

impl fmt::Debug for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Module")
            .field("domain", &self.domain.name())
            .field(
                "processes",
                &self.processes.iter().map(|p| p.name()).collect::<Vec<_>>(),
            )
            .field("read_models", &self.read_models.len())
            .finish()
    }
}

impl Module {
    /// The module of a domain written in Rust.
    pub fn new<D: Domain>() -> Self {
        Self::from_model(domain::<D>())
    }

    /// The module of a domain built at run time (for example from files): the engine sees
    /// it through the same seam as a compiled one.
    pub fn from_model(domain: Arc<dyn DomainModel>) -> Self {
        Self {
            domain,
            processes: Vec::new(),
            read_models: Vec::new(),
        }
    }

    /// Adds a process written in Rust. It reacts to the events of its type, whichever
    /// domain records them; it runs whenever this module is served.
    pub fn process<P: Process>(self) -> Self {
        self.process_model(process::<P>())
    }

    /// Adds a process built at run time.
    pub fn process_model(mut self, process: Arc<dyn ProcessModel>) -> Self {
        self.processes.push(process);
        self
    }

    /// Adds a read model: a projection with its named queries.
    pub fn read_model(mut self, read_model: ReadModelSpec) -> Self {
        self.read_models.push(read_model);
        self
    }

    /// The domain's name.
    pub fn name(&self) -> &str {
        self.domain.name()
    }
}
