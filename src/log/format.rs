//! The bytes of a segment file: header, record frames, footer (see `log-format.md`).
//!
//! This module owns the on-disk layout and nothing else: it turns typed values into
//! bytes and bytes back into typed values, checking every checksum and limit on the way
//! in. It never performs I/O, never allocates on behalf of a length read from disk, and
//! never panics on any input: every decoder takes an arbitrary byte slice.

use crate::log::{Lsn, RecordKind, SegmentId};

/// First eight bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"MDSLSEG\0";
/// Eight bytes inside every footer, after the footer marker.
pub const FOOTER_MAGIC: [u8; 8] = *b"MDSLEND\0";
/// The format version this build writes (see `log-format.md` §6).
pub const FORMAT_VERSION: u32 = 2;
/// The oldest format version this build reads.
pub const FORMAT_VERSION_MIN: u32 = 1;

/// Size of the segment header; the first frame starts right after it.
pub const SEGMENT_HEADER_BYTES: usize = 72;
/// Size of a frame header (the fixed part in front of each payload).
pub const FRAME_HEADER_BYTES: usize = 24;
/// Size of the footer of a sealed segment.
pub const FOOTER_BYTES: usize = 72;
/// Frames start at multiples of this many bytes (from the start of the file).
pub const FRAME_ALIGN_BYTES: usize = 8;
/// Hard limit on one record's payload, enforced by writers and checked by readers before
/// any allocation. A length above it can only be damage.
pub const RECORD_PAYLOAD_BYTES_MAX: u32 = 16 * 1024 * 1024;
/// The value of the length field that marks a footer instead of a record frame.
pub const FOOTER_MARKER: u32 = u32::MAX;

/// Frame flag: more records of the same atomic batch follow this one.
pub const FLAG_BATCH_CONTINUES: u16 = 0x0001;
/// All flag bits this version defines; any other bit set is damage.
pub const FLAGS_KNOWN: u16 = FLAG_BATCH_CONTINUES;

/// The digest that chains segments: blake3 over a segment's header and frames.
pub type Digest = [u8; 32];
/// The `prev_digest` of the very first segment of a log.
pub const DIGEST_NONE: Digest = [0u8; 32];

/// Rounds `n` up to the frame alignment.
#[inline]
pub const fn align_up(n: usize) -> usize {
    (n + FRAME_ALIGN_BYTES - 1) & !(FRAME_ALIGN_BYTES - 1)
}

/// Bytes one record with `payload_bytes` of payload takes on disk (header, payload, padding).
#[inline]
pub const fn frame_bytes(payload_bytes: usize) -> usize {
    FRAME_HEADER_BYTES + align_up(payload_bytes)
}

/// The fixed header at offset 0 of every segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The layout version; encoding always writes [`FORMAT_VERSION`].
    pub version: u32,
    pub segment: SegmentId,
    pub first_lsn: Lsn,
    pub prev_digest: Digest,
}

/// What is wrong with a header, frame or footer, as found by a decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatFault {
    BadMagic { found: [u8; 8] },
    UnsupportedVersion { found: u32 },
    BadHeaderSize { found: u32 },
    HeaderChecksum { got: u32, expected: u32 },
    NonZeroReserved,
    UnknownFlags { flags: u16 },
    InvalidKind,
    RecordTooLarge { bytes: u32, max: u32 },
    RecordChecksum { got: u32, expected: u32 },
    NonZeroPadding,
    BadFooterMagic,
    FooterChecksum { got: u32, expected: u32 },
}

impl std::fmt::Display for FormatFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FormatFault::BadMagic { found } => write!(f, "bad magic {found:02x?}"),
            FormatFault::UnsupportedVersion { found } => {
                write!(
                    f,
                    "unsupported format version {found} (this build reads {FORMAT_VERSION_MIN} to {FORMAT_VERSION})"
                )
            }
            FormatFault::BadHeaderSize { found } => {
                write!(
                    f,
                    "header size field {found}, expected {SEGMENT_HEADER_BYTES}"
                )
            }
            FormatFault::HeaderChecksum { got, expected } => {
                write!(
                    f,
                    "header checksum mismatch: stored {expected:08x}, computed {got:08x}"
                )
            }
            FormatFault::NonZeroReserved => write!(f, "reserved field is not zero"),
            FormatFault::UnknownFlags { flags } => write!(f, "unknown frame flags {flags:#06x}"),
            FormatFault::InvalidKind => write!(f, "record kind 0 is invalid"),
            FormatFault::RecordTooLarge { bytes, max } => {
                write!(f, "record length {bytes} exceeds the limit {max}")
            }
            FormatFault::RecordChecksum { got, expected } => {
                write!(
                    f,
                    "record checksum mismatch: stored {expected:08x}, computed {got:08x}"
                )
            }
            FormatFault::NonZeroPadding => write!(f, "frame padding is not zero"),
            FormatFault::BadFooterMagic => write!(f, "bad footer magic"),
            FormatFault::FooterChecksum { got, expected } => {
                write!(
                    f,
                    "footer checksum mismatch: stored {expected:08x}, computed {got:08x}"
                )
            }
        }
    }
}

#[inline]
fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
#[inline]
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
#[inline]
fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Encodes a segment header (exactly [`SEGMENT_HEADER_BYTES`]).
pub fn encode_segment_header(h: &SegmentHeader) -> [u8; SEGMENT_HEADER_BYTES] {
    let mut b = [0u8; SEGMENT_HEADER_BYTES];
    b[0..8].copy_from_slice(&SEGMENT_MAGIC);
    b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    b[12..16].copy_from_slice(&(SEGMENT_HEADER_BYTES as u32).to_le_bytes());
    b[16..24].copy_from_slice(&h.segment.0.to_le_bytes());
    b[24..32].copy_from_slice(&h.first_lsn.0.to_le_bytes());
    b[32..64].copy_from_slice(&h.prev_digest);
    // 64..68 reserved, zero.
    let crc = crc32fast::hash(&b[0..68]);
    b[68..72].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Decodes and checks a segment header. Fewer than [`SEGMENT_HEADER_BYTES`] bytes are a
/// [`FormatFault::BadHeaderSize`] (no decoder here panics on any input).
pub fn decode_segment_header(b: &[u8]) -> Result<SegmentHeader, FormatFault> {
    if b.len() < SEGMENT_HEADER_BYTES {
        return Err(FormatFault::BadHeaderSize {
            found: b.len() as u32,
        });
    }
    let mut magic = [0u8; 8];
    magic.copy_from_slice(&b[0..8]);
    if magic != SEGMENT_MAGIC {
        return Err(FormatFault::BadMagic { found: magic });
    }
    let expected = u32_at(b, 68);
    let got = crc32fast::hash(&b[0..68]);
    if got != expected {
        return Err(FormatFault::HeaderChecksum { got, expected });
    }
    let version = u32_at(b, 8);
    if !(FORMAT_VERSION_MIN..=FORMAT_VERSION).contains(&version) {
        return Err(FormatFault::UnsupportedVersion { found: version });
    }
    let size = u32_at(b, 12);
    if size as usize != SEGMENT_HEADER_BYTES {
        return Err(FormatFault::BadHeaderSize { found: size });
    }
    if u32_at(b, 64) != 0 {
        return Err(FormatFault::NonZeroReserved);
    }
    let mut prev_digest = [0u8; 32];
    prev_digest.copy_from_slice(&b[32..64]);
    Ok(SegmentHeader {
        version,
        segment: SegmentId(u64_at(b, 16)),
        first_lsn: Lsn(u64_at(b, 24)),
        prev_digest,
    })
}

/// Computes a frame checksum: CRC-32 (IEEE) over the segment id (salt, u64 LE), the first
/// 20 bytes of the frame header and the payload.
#[inline]
pub fn frame_crc(segment: SegmentId, header20: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&segment.0.to_le_bytes());
    h.update(header20);
    h.update(payload);
    h.finalize()
}

/// Appends one frame (header, payload, zero padding) to `out`.
pub fn encode_frame(
    out: &mut Vec<u8>,
    segment: SegmentId,
    lsn: Lsn,
    kind: RecordKind,
    flags: u16,
    payload: &[u8],
) {
    // Writers check limits before they get here; these hold by construction.
    assert!(
        payload.len() <= RECORD_PAYLOAD_BYTES_MAX as usize,
        "payload over the format limit"
    );
    assert!(kind.0 != 0, "record kind 0 is reserved");
    assert!(flags & !FLAGS_KNOWN == 0);
    let mut hdr = [0u8; FRAME_HEADER_BYTES];
    hdr[0..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    hdr[4..6].copy_from_slice(&kind.0.to_le_bytes());
    hdr[6..8].copy_from_slice(&flags.to_le_bytes());
    hdr[8..16].copy_from_slice(&lsn.0.to_le_bytes());
    // 16..20 reserved, zero.
    let crc = frame_crc(segment, &hdr[0..20], payload);
    hdr[20..24].copy_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&hdr);
    out.extend_from_slice(payload);
    let pad = align_up(payload.len()) - payload.len();
    out.extend_from_slice(&[0u8; FRAME_ALIGN_BYTES][..pad]);
}

/// A record frame decoded in place.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub lsn: Lsn,
    pub kind: RecordKind,
    pub flags: u16,
    pub payload: &'a [u8],
    /// Bytes the whole frame takes, padding included.
    pub frame_bytes: usize,
}

/// The footer of a sealed segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    pub record_count: u64,
    pub last_lsn: Lsn,
    pub digest: Digest,
}

/// What lies at one offset of a segment's body.
#[derive(Debug)]
pub enum Slot<'a> {
    /// A record frame that passed every check.
    Frame(Frame<'a>),
    /// A footer that passed its checksum.
    Footer(Footer),
    /// A frame header of all zero bytes: the end of the written part of an active segment.
    Zero,
    /// Fewer bytes remain than the header or its declared length needs.
    Incomplete,
    /// The bytes fail a check.
    Bad(FormatFault),
}

/// Decodes whatever lies at the start of `b` in segment `segment`.
pub fn decode_slot(b: &[u8], segment: SegmentId) -> Slot<'_> {
    decode_slot_with(b, segment, true)
}

/// [`decode_slot`], optionally without recomputing the frame checksum: only for bytes that
/// were fully checked moments ago and cannot have changed since (a replay right after
/// recovery). Every other check (lengths, kind, flags, padding, LSN order) still runs.
pub fn decode_slot_with(b: &[u8], segment: SegmentId, verify_crc: bool) -> Slot<'_> {
    if b.len() < FRAME_HEADER_BYTES {
        return if b.iter().all(|&x| x == 0) {
            Slot::Zero
        } else {
            Slot::Incomplete
        };
    }
    let hdr = &b[0..FRAME_HEADER_BYTES];
    let len = u32_at(hdr, 0);
    if len == FOOTER_MARKER {
        return decode_footer(b, segment);
    }
    if hdr.iter().all(|&x| x == 0) {
        return Slot::Zero;
    }
    if len > RECORD_PAYLOAD_BYTES_MAX {
        return Slot::Bad(FormatFault::RecordTooLarge {
            bytes: len,
            max: RECORD_PAYLOAD_BYTES_MAX,
        });
    }
    let total = frame_bytes(len as usize);
    if b.len() < total {
        return Slot::Incomplete;
    }
    let payload = &b[FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + len as usize];
    if verify_crc {
        let expected = u32_at(hdr, 20);
        let got = frame_crc(segment, &hdr[0..20], payload);
        if got != expected {
            return Slot::Bad(FormatFault::RecordChecksum { got, expected });
        }
    }
    let kind = u16_at(hdr, 4);
    let flags = u16_at(hdr, 6);
    if kind == 0 {
        return Slot::Bad(FormatFault::InvalidKind);
    }
    if flags & !FLAGS_KNOWN != 0 {
        return Slot::Bad(FormatFault::UnknownFlags { flags });
    }
    if u32_at(hdr, 16) != 0 {
        return Slot::Bad(FormatFault::NonZeroReserved);
    }
    if b[FRAME_HEADER_BYTES + len as usize..total]
        .iter()
        .any(|&x| x != 0)
    {
        return Slot::Bad(FormatFault::NonZeroPadding);
    }
    Slot::Frame(Frame {
        lsn: Lsn(u64_at(hdr, 8)),
        kind: RecordKind(kind),
        flags,
        payload,
        frame_bytes: total,
    })
}

/// Encodes the footer of segment `segment`.
pub fn encode_footer(segment: SegmentId, f: &Footer) -> [u8; FOOTER_BYTES] {
    let mut b = [0u8; FOOTER_BYTES];
    b[0..4].copy_from_slice(&FOOTER_MARKER.to_le_bytes());
    // 4..8 reserved, zero.
    b[8..16].copy_from_slice(&FOOTER_MAGIC);
    b[16..24].copy_from_slice(&f.record_count.to_le_bytes());
    b[24..32].copy_from_slice(&f.last_lsn.0.to_le_bytes());
    b[32..64].copy_from_slice(&f.digest);
    // 64..68 reserved, zero.
    let crc = footer_crc(segment, &b[0..68]);
    b[68..72].copy_from_slice(&crc.to_le_bytes());
    b
}

fn footer_crc(segment: SegmentId, first68: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&segment.0.to_le_bytes());
    h.update(first68);
    h.finalize()
}

fn decode_footer(b: &[u8], segment: SegmentId) -> Slot<'_> {
    if b.len() < FOOTER_BYTES {
        return Slot::Incomplete;
    }
    let expected = u32_at(b, 68);
    let got = footer_crc(segment, &b[0..68]);
    if got != expected {
        return Slot::Bad(FormatFault::FooterChecksum { got, expected });
    }
    if b[8..16] != FOOTER_MAGIC {
        return Slot::Bad(FormatFault::BadFooterMagic);
    }
    if u32_at(b, 4) != 0 || u32_at(b, 64) != 0 {
        return Slot::Bad(FormatFault::NonZeroReserved);
    }
    let mut digest = [0u8; 32];
    digest.copy_from_slice(&b[32..64]);
    Slot::Footer(Footer {
        record_count: u64_at(b, 16),
        last_lsn: Lsn(u64_at(b, 24)),
        digest,
    })
}

/// The file name of a segment: `{segment:016x}-{first_lsn:016x}.seg`, so `ls` sorts them.
pub fn segment_file_name(segment: SegmentId, first_lsn: Lsn) -> String {
    format!("{:016x}-{:016x}.seg", segment.0, first_lsn.0)
}

/// Parses a segment file name; `None` for any other name.
pub fn parse_segment_file_name(name: &str) -> Option<(SegmentId, Lsn)> {
    let stem = name.strip_suffix(".seg")?;
    if stem.len() != 33 || stem.as_bytes()[16] != b'-' {
        return None;
    }
    let hex = |s: &str| {
        if s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        {
            u64::from_str_radix(s, 16).ok()
        } else {
            None
        }
    };
    Some((SegmentId(hex(&stem[..16])?), Lsn(hex(&stem[17..])?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_damage() {
        let h = SegmentHeader {
            version: FORMAT_VERSION,
            segment: SegmentId(7),
            first_lsn: Lsn(99),
            prev_digest: [3u8; 32],
        };
        let b = encode_segment_header(&h);
        assert_eq!(decode_segment_header(&b).unwrap(), h);
        for i in 0..SEGMENT_HEADER_BYTES {
            let mut d = b;
            d[i] ^= 0x10;
            assert!(decode_segment_header(&d).is_err(), "flip at {i} accepted");
        }
    }

    #[test]
    fn frame_round_trip_and_salt() {
        let mut out = Vec::new();
        encode_frame(
            &mut out,
            SegmentId(1),
            Lsn(5),
            RecordKind(3),
            FLAG_BATCH_CONTINUES,
            b"hello",
        );
        assert_eq!(out.len(), frame_bytes(5));
        assert_eq!(out.len() % FRAME_ALIGN_BYTES, 0);
        match decode_slot(&out, SegmentId(1)) {
            Slot::Frame(f) => {
                assert_eq!(
                    (f.lsn, f.kind, f.flags, f.payload),
                    (Lsn(5), RecordKind(3), FLAG_BATCH_CONTINUES, &b"hello"[..])
                );
            }
            other => panic!("{other:?}"),
        }
        // The same bytes in another segment fail their checksum.
        assert!(matches!(
            decode_slot(&out, SegmentId(2)),
            Slot::Bad(FormatFault::RecordChecksum { .. })
        ));
        assert!(matches!(
            decode_slot(&out[..out.len() - 1], SegmentId(1)),
            Slot::Incomplete
        ));
    }

    #[test]
    fn trusted_decode_skips_only_the_checksum() {
        let mut out = Vec::new();
        encode_frame(&mut out, SegmentId(1), Lsn(5), RecordKind(3), 0, b"hello");
        out[20] ^= 1; // the stored CRC
        assert!(matches!(
            decode_slot(&out, SegmentId(1)),
            Slot::Bad(FormatFault::RecordChecksum { .. })
        ));
        assert!(matches!(
            decode_slot_with(&out, SegmentId(1), false),
            Slot::Frame(_)
        ));
        out[4] = 0; // kind 0 is still refused
        out[5] = 0;
        assert!(matches!(
            decode_slot_with(&out, SegmentId(1), false),
            Slot::Bad(FormatFault::InvalidKind)
        ));
    }

    #[test]
    fn names_sort_and_parse() {
        let a = segment_file_name(SegmentId(2), Lsn(0x10));
        let b = segment_file_name(SegmentId(10), Lsn(0x100));
        assert!(a < b);
        assert_eq!(
            parse_segment_file_name(&b),
            Some((SegmentId(10), Lsn(0x100)))
        );
        assert_eq!(
            parse_segment_file_name("0000000000000001-000000000000000G.seg"),
            None
        );
        assert_eq!(parse_segment_file_name("x.seg"), None);
    }
}
