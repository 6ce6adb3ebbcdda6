//! The public decoders of `writ_log::format` are total: arbitrary or damaged bytes give an
//! error, never a panic, and encoded frames decode back to what was encoded.

use proptest::prelude::*;
use writ_log::format::{
    FRAME_HEADER_BYTES, FrameHeader, SegmentHeader, SegmentIndexFile, decode_frame,
    decode_frame_body, decode_record, encode_record,
};

fn encode_frame(first_seq: u64, payloads: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![0u8; FRAME_HEADER_BYTES];
    for (i, p) in payloads.iter().enumerate() {
        encode_record(&mut out, first_seq + i as u64, p);
    }
    let header = FrameHeader {
        first_seq,
        record_count: payloads.len() as u32,
        body_len: (out.len() - FRAME_HEADER_BYTES) as u32,
        body_crc: crc32c::crc32c(&out[FRAME_HEADER_BYTES..]),
    };
    out[..FRAME_HEADER_BYTES].copy_from_slice(&header.encode());
    out
}

fn decode_everything(bytes: &[u8], seq: u64) {
    let _ = SegmentHeader::decode(bytes);
    let _ = SegmentIndexFile::decode(bytes);
    let _ = decode_record(bytes, seq);
    if let Ok((header, records)) = decode_frame(bytes) {
        assert_eq!(records.len(), header.record_count as usize);
        for (i, r) in records.enumerate() {
            assert_eq!(r.seq, header.first_seq + i as u64);
        }
    }
    if let Ok(header) = FrameHeader::decode(bytes) {
        let body = bytes.get(FRAME_HEADER_BYTES..).unwrap_or_default();
        let _ = decode_frame_body(&header, body);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        seq in any::<u64>(),
    ) {
        decode_everything(&bytes, seq);
    }

    #[test]
    fn decoders_never_panic_on_damaged_frames(
        first_seq in any::<u64>().prop_map(|s| s >> 1),
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..6),
        damage in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = encode_frame(first_seq, &payloads);
        for (at, value) in &damage {
            let i = at.index(bytes.len());
            bytes[i] = *value;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        decode_everything(&bytes, first_seq);
    }

    #[test]
    fn frames_round_trip(
        first_seq in any::<u64>().prop_map(|s| s >> 1),
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..100), 1..10),
    ) {
        let bytes = encode_frame(first_seq, &payloads);
        prop_assert_eq!(bytes.len() % 8, 0);
        let (header, records) = decode_frame(&bytes).unwrap();
        prop_assert_eq!(header.first_seq, first_seq);
        let got: Vec<Vec<u8>> = records.map(|r| r.payload.to_vec()).collect();
        prop_assert_eq!(got, payloads);
    }
}
