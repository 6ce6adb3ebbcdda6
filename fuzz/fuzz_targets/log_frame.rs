//! Feeds arbitrary bytes to every public decoder of `writ_log::format`. The decoders must
//! return `Err` for anything they do not accept and never panic; what they accept must be
//! self-consistent.
//!
//! Run from `fuzz/`: `RUSTC_BOOTSTRAP=1 cargo fuzz run log_frame -- -max_total_time=60`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use writ_log::format::{
    FRAME_HEADER_BYTES, FrameHeader, SegmentHeader, SegmentIndexFile, decode_frame,
    decode_frame_body, decode_record,
};

fuzz_target!(|data: &[u8]| {
    // The first 8 bytes double as the sequence number a record is expected to have.
    let seq = data
        .get(..8)
        .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])));

    if let Ok(header) = SegmentHeader::decode(data) {
        // What decodes re-encodes to the same bytes.
        assert_eq!(&header.encode()[..], &data[..header.encode().len()]);
    }
    if let Ok(index) = SegmentIndexFile::decode(data) {
        assert_eq!(index.encode(), data);
    }
    if let Ok((payload, encoded)) = decode_record(data, seq) {
        assert!(payload.len() + 8 <= encoded && encoded <= data.len());
    }
    if let Ok(header) = FrameHeader::decode(data) {
        assert_eq!(&header.encode()[..], &data[..FRAME_HEADER_BYTES]);
        let _ = decode_frame_body(&header, &data[FRAME_HEADER_BYTES..]);
    }
    if let Ok((header, records)) = decode_frame(data) {
        let mut count = 0u64;
        for record in records {
            assert_eq!(record.seq, header.first_seq + count);
            count += 1;
        }
        assert_eq!(count, u64::from(header.record_count));
    }
});
