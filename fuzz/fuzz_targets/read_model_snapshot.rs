//! Feeds arbitrary bytes to the read model snapshot file's decoder
//! (`writ_query::snapshot::SnapshotHeader::decode`) and to the state decoders of the
//! tickets projection (both versions), the orders projection, and an app's read models (a
//! resource type's documents, a `projections/P.js`'s tables), whole and as a file's
//! body. They must return
//! `Err` for anything they do not accept and never panic; a state they accept saves and
//! loads back equal.
//!
//! Run from `fuzz/`: `RUSTC_BOOTSTRAP=1 cargo fuzz run read_model_snapshot corpus/read_model_snapshot seeds/read_model_snapshot`.

#![no_main]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use writ_orders::read::OrdersProjection;
use writ_query::Projection;
use writ_query::snapshot::{Reader, SnapshotHeader, Writer};
use writ_resources::{AppFiles, ResourceSet, load_files};
use writ_tickets::read::TicketsProjection;

/// An app of one type and one projection, loaded once: their decoders do not depend on
/// the files (only their code tags do).
fn app() -> &'static ResourceSet {
    static APP: OnceLock<ResourceSet> = OnceLock::new();
    APP.get_or_init(|| {
        let mut files = BTreeMap::new();
        files.insert(
            "resources/notes.json".to_owned(),
            br#"{"title": "Note", "type": "object"}"#.to_vec(),
        );
        files.insert(
            "projections/stats.js".to_owned(),
            b"function NoteCreated(event, ctx) { ctx.put('notes', event.id, event.data); }"
                .to_vec(),
        );
        load_files(&AppFiles::new(PathBuf::from("fuzz"), files).expect("files"))
            .expect("the app loads")
    })
}

fn load_and_back(body: &[u8]) {
    for version in [1, 2] {
        let projection = TicketsProjection::with_version(version).expect("versions 1 and 2");
        round_trip(&projection, body);
    }
    round_trip(&OrdersProjection, body);
    let app = app();
    round_trip(&ResourceSet::documents_projection(&app.types()[0]), body);
    round_trip(&app.projections()[0].projection(), body);
}

/// A state `projection` accepts from `body` saves and loads back equal.
fn round_trip<P: Projection>(projection: &P, body: &[u8])
where
    P::State: PartialEq,
{
    let mut input = Reader::new(body);
    let Ok(view) = projection.load(&mut input) else {
        return;
    };
    if input.finish().is_err() {
        return;
    }
    let mut out = Writer::new();
    projection.save(&view, &mut out);
    let bytes = out.into_vec();
    let mut again = Reader::new(&bytes);
    let reloaded = projection
        .load(&mut again)
        .expect("a state this build saved loads");
    again.finish().expect("and is read whole");
    assert!(reloaded == view);
}

fuzz_target!(|data: &[u8]| {
    if let Ok((header, body)) = SnapshotHeader::decode(data) {
        assert!(header.model.len() <= 255 && header.build.len() <= 255);
        assert_eq!(
            header.encode(body),
            data,
            "a file decodes only as it was encoded"
        );
        load_and_back(body);
    }
    load_and_back(data);
});
