//! What the fuzz targets share: the properties a decoded command of any domain must have.
//!
//! Targets live in `fuzz_targets/`; run one from `fuzz/` with
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET corpus/TARGET seeds/TARGET -- -dict=json.dict`
//! (see `.ci/run` for the way CI runs them all).

use std::fmt::Debug;
use std::sync::LazyLock;

use writ_domain::{CommandCatalog, CommandError, Domain};
use writ_orders::{OrderCommand, Orders};
use writ_tickets::{TicketCommand, Tickets};

/// The tickets domain's catalog, built once (building one derives every payload schema).
pub fn tickets() -> &'static CommandCatalog<TicketCommand> {
    static CATALOG: LazyLock<CommandCatalog<TicketCommand>> = LazyLock::new(Tickets::commands);
    &CATALOG
}

/// The orders domain's catalog, built once.
pub fn orders() -> &'static CommandCatalog<OrderCommand> {
    static CATALOG: LazyLock<CommandCatalog<OrderCommand>> = LazyLock::new(Orders::commands);
    &CATALOG
}

/// Decodes a client's command of domain `D` as the engine does at intake, and checks what
/// must hold: an accepted payload has a canonical form that is a fixed point (it decodes to
/// the same command and encodes to the same bytes), reads back from the journal as the same
/// command, and addresses a well-formed stream of the domain; each refusal names the right
/// cause.
pub fn check_command<D: Domain>(
    catalog: &CommandCatalog<D::Command>,
    name: &str,
    version: Option<u32>,
    payload: &[u8],
) where
    D::Command: PartialEq + Debug,
{
    match catalog.decode(name, version, payload) {
        Ok(decoded) => {
            assert_eq!(decoded.name, name);
            let newest = catalog
                .newest_version(name)
                .expect("a decoded command exists");
            assert_eq!(decoded.version, version.unwrap_or(newest));
            let again = catalog
                .decode(name, Some(decoded.version), &decoded.canonical_payload)
                .expect("the canonical payload decodes");
            assert_eq!(again.command, decoded.command);
            assert_eq!(again.canonical_payload, decoded.canonical_payload);
            let logged = catalog
                .decode_logged(name, decoded.version, &decoded.canonical_payload)
                .expect("the logged payload decodes");
            assert_eq!(logged, decoded.command);
            let stream = D::stream(&decoded.command);
            let id = D::STREAM_PREFIXES
                .iter()
                .find_map(|prefix| stream.strip_prefix(prefix))
                .expect("a stream of the domain's");
            assert!(!id.is_empty() && !id.chars().any(char::is_control));
        }
        Err(CommandError::UnknownCommand { name: unknown }) => {
            assert_eq!(unknown, name);
            assert!(catalog.newest_version(name).is_none());
        }
        Err(CommandError::UnknownVersion {
            version: asked,
            known,
            ..
        }) => {
            assert_eq!(Some(asked), version);
            assert!(!known.is_empty() && !known.contains(&asked));
        }
        Err(CommandError::InvalidPayload { version: as_of, .. }) => {
            assert!(
                catalog
                    .infos()
                    .any(|i| i.name == name && i.version == as_of)
            );
        }
        Err(other) => panic!("a new kind of CommandError: {other}; teach the fuzz target"),
    }
}
