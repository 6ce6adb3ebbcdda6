//! What the fuzz targets share: the properties a decoded tickets command must have.
//!
//! Targets live in `fuzz_targets/`; run one from `fuzz/` with
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET corpus/TARGET seeds/TARGET -- -dict=json.dict`
//! (see `.ci/run` for the way CI runs them all).

use std::sync::LazyLock;

use writ_domain::{CommandCatalog, CommandError, Domain};
use writ_tickets::{TicketCommand, Tickets};

/// The tickets domain's catalog, built once.
pub fn catalog() -> &'static CommandCatalog<TicketCommand> {
    static CATALOG: LazyLock<CommandCatalog<TicketCommand>> = LazyLock::new(Tickets::commands);
    &CATALOG
}

/// Decodes a client's command as the engine does at intake, and checks what must hold:
/// an accepted payload has a canonical form that is a fixed point (it decodes to the same
/// command and encodes to the same bytes), reads back from the command log as the same
/// command, and addresses a well-formed stream; each refusal names the right cause.
pub fn check_command(name: &str, version: Option<u32>, payload: &[u8]) {
    let catalog = catalog();
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
            let stream = Tickets::stream(&decoded.command);
            let ticket = stream
                .strip_prefix("ticket-")
                .expect("streams are ticket-{id}");
            assert!(!ticket.is_empty() && !ticket.chars().any(char::is_control));
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
