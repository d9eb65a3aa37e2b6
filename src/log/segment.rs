//! One segment's bytes checked end to end: header, every frame, batch boundaries, footer,
//! digest, and what lies after the last valid record.
//!
//! [`scan_segment`] is pure: it reads a byte slice and reports. Recovery decides what to
//! do with the report (cut a torn tail, fail the open); this module never touches files.

use std::path::Path;

use crate::error::{CorruptionKind, Error, Result};
use crate::log::format::{
    self, Digest, Footer, SegmentHeader, Slot, FLAG_BATCH_CONTINUES, FOOTER_BYTES,
    FRAME_ALIGN_BYTES, SEGMENT_HEADER_BYTES,
};
use crate::log::{Lsn, SegmentId};

/// What the log knows about one segment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    pub id: SegmentId,
    pub first_lsn: Lsn,
    /// Last LSN in the segment (`first_lsn - 1` when empty). For the active segment: the
    /// last durable LSN at the time this info was taken.
    pub last_lsn: Lsn,
    pub file_name: String,
    /// Whether the segment has a footer (and is immutable).
    pub sealed: bool,
    /// Bytes of header and valid frames (and footer, when sealed).
    pub bytes: u64,
    /// The digest of header and frames, known once sealed.
    pub digest: Option<Digest>,
}

/// The region after the valid prefix of an active segment that recovery cuts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TornRegion {
    /// Offset of the first byte cut (start of the first incomplete record or batch).
    pub offset: u64,
    /// Bytes from `offset` up to the last non-zero byte.
    pub bytes: u64,
}

/// The result of scanning one segment.
#[derive(Debug, Clone)]
pub struct SegmentScan {
    pub header: SegmentHeader,
    /// Records in the valid, batch-complete prefix.
    pub records: u64,
    /// Last LSN of that prefix (`first_lsn - 1` when empty).
    pub last_lsn: Lsn,
    /// End offset of the valid prefix (where the footer starts, when sealed).
    pub end: u64,
    /// The footer, when the segment is sealed.
    pub footer: Option<Footer>,
    /// Damage after the valid prefix of a last segment that may be cut as a torn tail.
    pub torn: Option<TornRegion>,
    /// blake3 of bytes `[0, end)`.
    pub digest: Digest,
    /// The blake3 state after bytes `[0, end)`, for a writer that continues the segment.
    pub hasher: blake3::Hasher,
}

/// What the caller expects of the segment being scanned.
pub struct ScanExpect<'a> {
    pub file: &'a Path,
    pub name_id: SegmentId,
    pub name_first_lsn: Lsn,
    /// The LSN the segment must start at (the previous segment's last + 1), if known.
    pub first_lsn: Option<Lsn>,
    /// The digest of the previous segment, if known.
    pub prev_digest: Option<Digest>,
    /// Whether this is the last segment (the only one that may be unsealed or torn).
    pub last: bool,
}

/// Checks a whole segment. Errors are corruption naming the file, offset and LSN.
pub fn scan_segment(bytes: &[u8], expect: &ScanExpect<'_>) -> Result<SegmentScan> {
    let corrupt = |offset: usize, lsn: Option<Lsn>, kind: CorruptionKind| {
        Error::corrupt(expect.file.to_path_buf(), offset as u64, lsn, kind)
    };
    if bytes.len() < SEGMENT_HEADER_BYTES {
        return Err(corrupt(0, None, CorruptionKind::ShortHeader));
    }
    let header = format::decode_segment_header(bytes)
        .map_err(|f| corrupt(0, None, CorruptionKind::Format(f)))?;
    if header.segment != expect.name_id || header.first_lsn != expect.name_first_lsn {
        return Err(corrupt(
            0,
            None,
            CorruptionKind::NameMismatch {
                name_segment: expect.name_id,
                name_first_lsn: expect.name_first_lsn,
            },
        ));
    }
    if let Some(first) = expect.first_lsn {
        if header.first_lsn != first {
            return Err(corrupt(
                24,
                Some(first),
                CorruptionKind::LsnGap {
                    expected: first,
                    found: header.first_lsn,
                },
            ));
        }
    }
    if let Some(prev) = expect.prev_digest {
        if header.prev_digest != prev {
            return Err(corrupt(
                32,
                None,
                CorruptionKind::ChainBroken {
                    expected: prev,
                    found: header.prev_digest,
                },
            ));
        }
    }
    if header.first_lsn.0 == 0 {
        return Err(corrupt(
            24,
            None,
            CorruptionKind::LsnGap {
                expected: Lsn(1),
                found: Lsn(0),
            },
        ));
    }

    let seg = header.segment;
    let mut pos = SEGMENT_HEADER_BYTES;
    let mut next = header.first_lsn;
    // The committed prefix: ends after a frame that closes its batch.
    let mut committed = (pos, 0u64, header.first_lsn.prev());
    let mut records = 0u64;
    let mut in_batch = false;
    let stop_fault;
    loop {
        match format::decode_slot(&bytes[pos..], seg) {
            Slot::Frame(f) => {
                if f.lsn != next {
                    return Err(corrupt(
                        pos,
                        Some(next),
                        CorruptionKind::LsnGap {
                            expected: next,
                            found: f.lsn,
                        },
                    ));
                }
                pos += f.frame_bytes;
                records += 1;
                next = next.next();
                in_batch = f.flags & FLAG_BATCH_CONTINUES != 0;
                if !in_batch {
                    committed = (pos, records, f.lsn);
                }
            }
            Slot::Footer(footer) => {
                if in_batch {
                    return Err(corrupt(pos, Some(next), CorruptionKind::UnterminatedBatch));
                }
                if footer.record_count != records || footer.last_lsn != committed.2 {
                    return Err(corrupt(
                        pos,
                        None,
                        CorruptionKind::FooterMismatch {
                            footer_count: footer.record_count,
                            footer_last_lsn: footer.last_lsn,
                            count: records,
                            last_lsn: committed.2,
                        },
                    ));
                }
                let mut hasher = blake3::Hasher::new();
                hasher.update(&bytes[..pos]);
                let digest = *hasher.finalize().as_bytes();
                if digest != footer.digest {
                    return Err(corrupt(
                        pos,
                        None,
                        CorruptionKind::DigestMismatch {
                            computed: digest,
                            stored: footer.digest,
                        },
                    ));
                }
                let after = &bytes[pos + FOOTER_BYTES..];
                // Only a last segment may carry zeros after its footer: a crash between
                // writing the footer and truncating the pre-written zeros leaves them.
                if !after.is_empty() && (!expect.last || after.iter().any(|&b| b != 0)) {
                    return Err(corrupt(
                        pos + FOOTER_BYTES,
                        None,
                        CorruptionKind::TrailingBytes,
                    ));
                }
                return Ok(SegmentScan {
                    header,
                    records,
                    last_lsn: committed.2,
                    end: pos as u64,
                    footer: Some(footer),
                    torn: None,
                    digest,
                    hasher,
                });
            }
            Slot::Zero | Slot::Incomplete => {
                stop_fault = None;
                break;
            }
            Slot::Bad(fault) => {
                stop_fault = Some(fault);
                break;
            }
        }
    }

    // The valid prefix ends at `pos`; the segment has no footer.
    if !expect.last {
        let kind = match stop_fault {
            Some(f) => CorruptionKind::Format(f),
            None if in_batch => CorruptionKind::UnterminatedBatch,
            None => CorruptionKind::NotSealed,
        };
        return Err(corrupt(pos, Some(next), kind));
    }
    // A valid record after the stop means damage in the middle, never a torn tail.
    let mut q = pos + FRAME_ALIGN_BYTES;
    while q + format::FRAME_HEADER_BYTES <= bytes.len() {
        if let Slot::Frame(_) | Slot::Footer(_) = format::decode_slot(&bytes[q..], seg) {
            return Err(corrupt(
                pos,
                Some(next),
                CorruptionKind::DamageBeforeValidRecord {
                    valid_at: q as u64,
                    fault: stop_fault,
                },
            ));
        }
        q += FRAME_ALIGN_BYTES;
    }
    let (cut, records, last_lsn) = committed;
    let nonzero_end = bytes[cut..]
        .iter()
        .rposition(|&b| b != 0)
        .map(|i| cut + i + 1)
        .unwrap_or(cut);
    let torn = (nonzero_end > cut || cut < pos).then(|| TornRegion {
        offset: cut as u64,
        bytes: (nonzero_end.max(pos) - cut) as u64,
    });
    let mut hasher = blake3::Hasher::new();
    hasher.update(&bytes[..cut]);
    Ok(SegmentScan {
        header,
        records,
        last_lsn,
        end: cut as u64,
        footer: None,
        torn,
        digest: *hasher.finalize().as_bytes(),
        hasher,
    })
}
