//! A frame, footer or segment header decoded from arbitrary bytes
//! (`mdslog::log::format`), plus segment file names.
//!
//! Input: `[mode, salt, bytes...]`. Mode bit 0: recompute the frame/footer CRC at the
//! start of `bytes` first (so mutations reach the checks behind it); bit 2: fix the
//! header CRC before decoding `bytes` as a segment header. `salt % 4` is the segment id.
//! Every input is also decoded without the CRC (`decode_slot_with(.., false)`, the
//! trusted replay path) and compared.
//!
//! Properties: no panic; an accepted frame or footer re-encodes to exactly the bytes it
//! was decoded from; the trusted path accepts everything the checked one does, the same
//! way; an accepted header re-encodes to the same fields; a parsed segment file name
//! prints back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mdslog::log::format::{
    self, decode_segment_header, decode_slot, decode_slot_with, encode_footer,
    encode_segment_header, FormatFault, Slot, FRAME_ALIGN_BYTES, FRAME_HEADER_BYTES,
    SEGMENT_HEADER_BYTES,
};
use mdslog::log::SegmentId;

fn check_slot(b: &[u8], seg: SegmentId) {
    let checked = decode_slot(b, seg);
    match &checked {
        Slot::Frame(f) => {
            assert!(f.frame_bytes <= b.len());
            assert_eq!(f.frame_bytes % FRAME_ALIGN_BYTES, 0);
            assert_eq!(f.frame_bytes, format::frame_bytes(f.payload.len()));
            let mut again = Vec::new();
            format::encode_frame(&mut again, seg, f.lsn, f.kind, f.flags, f.payload);
            assert_eq!(
                &again[..],
                &b[..f.frame_bytes],
                "frame re-encodes differently"
            );
        }
        Slot::Footer(ft) => {
            assert_eq!(&encode_footer(seg, ft)[..], &b[..format::FOOTER_BYTES]);
        }
        Slot::Zero => {
            assert!(b[..b.len().min(FRAME_HEADER_BYTES)].iter().all(|&x| x == 0));
        }
        Slot::Incomplete | Slot::Bad(_) => {}
    }
    // The trusted path skips only the CRC.
    let trusted = decode_slot_with(b, seg, false);
    match (&checked, &trusted) {
        (Slot::Frame(a), Slot::Frame(t)) => {
            assert_eq!(
                (a.lsn, a.kind, a.flags, a.payload, a.frame_bytes),
                (t.lsn, t.kind, t.flags, t.payload, t.frame_bytes)
            );
        }
        (Slot::Frame(_), other) => panic!("the trusted path refused a checked frame: {other:?}"),
        (Slot::Bad(FormatFault::RecordChecksum { .. }), _) => {}
        (Slot::Footer(a), Slot::Footer(t)) => assert_eq!(a, t),
        (Slot::Zero, Slot::Zero) | (Slot::Incomplete, Slot::Incomplete) => {}
        (Slot::Bad(a), Slot::Bad(b)) => assert_eq!(a, b),
        (a, t) => panic!("checked {a:?} but trusted {t:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let mode = data[0];
    let seg = SegmentId(u64::from(data[1] % 4));
    let mut b = data[2..].to_vec();
    if mode & 1 != 0 {
        mdslog_fuzz::fix_slot(&mut b, seg.0);
    }
    check_slot(&b, seg);

    if b.len() >= SEGMENT_HEADER_BYTES {
        let mut h = b[..SEGMENT_HEADER_BYTES].to_vec();
        if mode & 4 != 0 {
            mdslog_fuzz::fix_header(&mut h);
        }
        if let Ok(hdr) = decode_segment_header(&h) {
            let again = encode_segment_header(&hdr);
            let back = decode_segment_header(&again).expect("re-encoded header decodes");
            assert_eq!(
                (back.segment, back.first_lsn, back.prev_digest),
                (hdr.segment, hdr.first_lsn, hdr.prev_digest)
            );
            if hdr.version == format::FORMAT_VERSION {
                assert_eq!(&again[..], &h[..]);
            }
        }
    }

    if let Ok(name) = std::str::from_utf8(&data[2..]) {
        if let Some((id, lsn)) = format::parse_segment_file_name(name) {
            assert_eq!(format::segment_file_name(id, lsn), name);
        }
    }
});
