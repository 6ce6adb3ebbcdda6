//! The orders domain's payload decoding (`CommandCatalog::decode`), reached directly: the
//! first byte picks the command name (a known one, an internal one, or not), the second the
//! version (absent, or 0 to 3), the rest is the payload.
//!
//! Properties: see `writ_fuzz::check_command`.

#![no_main]

use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 12] = [
    "AddStock",
    "CreateOrder",
    "AddItem",
    "RemoveItem",
    "SubmitOrder",
    "RecordPayment",
    "ShipOrder",
    "CancelOrder",
    "ReserveOrder",
    "ExpireOrder",
    "addStock",
    "",
];

fuzz_target!(|data: &[u8]| {
    let [name, version, payload @ ..] = data else {
        return;
    };
    let name = NAMES[usize::from(*name) % NAMES.len()];
    let version = match version % 5 {
        4 => None,
        v => Some(u32::from(v)),
    };
    writ_fuzz::check_command::<writ_orders::Orders>(writ_fuzz::orders(), name, version, payload);
});
