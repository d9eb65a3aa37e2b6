//! Reading records in LSN order from any LSN.
//!
//! An iterator captures the durable extent of the log when it is made and never reads
//! past it. Sealed segments are read through a memory map; the active one with plain
//! reads of its durable prefix. Every frame's checksum and LSN is checked again on the
//! way out: bytes on disk can rot after recovery.

use std::sync::Arc;

use crate::error::{CorruptionKind, Error, Result};
use crate::log::format::{self, Slot, SEGMENT_HEADER_BYTES};
use crate::log::fs::{FileBytes, Storage};
use crate::log::segment::SegmentInfo;
use crate::log::{Lsn, RecordKind, SegmentId};

/// A record borrowed from the segment bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub lsn: Lsn,
    pub kind: RecordKind,
    pub payload: &'a [u8],
}

/// A record with its own payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRecord {
    pub lsn: Lsn,
    pub kind: RecordKind,
    pub payload: Vec<u8>,
}

impl RecordRef<'_> {
    pub fn to_owned_record(&self) -> OwnedRecord {
        OwnedRecord {
            lsn: self.lsn,
            kind: self.kind,
            payload: self.payload.to_vec(),
        }
    }
}

/// Records from an LSN up to the durable end at the time the iterator was made. Use
/// [`LogIter::next_record`] to borrow payloads without copying, or the `Iterator` impl
/// for owned records. After an error the iterator ends.
pub struct LogIter {
    storage: Arc<dyn Storage>,
    segments: Arc<Vec<SegmentInfo>>,
    active_bytes: u64,
    from: Lsn,
    until: Lsn,
    idx: usize,
    bytes: Option<FileBytes>,
    pos: usize,
    next: Lsn,
    done: bool,
    verify_crc: bool,
}

impl LogIter {
    pub(crate) fn new(
        storage: Arc<dyn Storage>,
        segments: Arc<Vec<SegmentInfo>>,
        active_bytes: u64,
        from: Lsn,
        until: Lsn,
    ) -> LogIter {
        let from = from.max(Lsn(1));
        // The last segment whose first LSN is at or before `from`.
        let idx = segments
            .partition_point(|s| s.first_lsn <= from)
            .saturating_sub(1);
        let done = from > until || segments.is_empty();
        LogIter {
            storage,
            segments,
            active_bytes,
            from,
            until,
            idx,
            bytes: None,
            pos: 0,
            next: from,
            done,
            verify_crc: true,
        }
    }

    /// Skips recomputing frame checksums. Only for a replay right after the log's open has
    /// checked every byte: the sealed segments are immutable and the active one is read up
    /// to the durable end that open verified, so the second check finds nothing new.
    pub(crate) fn trust_recovered_bytes(mut self) -> Self {
        self.verify_crc = false;
        self
    }

    /// The LSN the next record will have.
    pub fn next_lsn(&self) -> Lsn {
        self.next
    }

    fn load(&mut self) -> Result<bool> {
        let Some(seg) = self.segments.get(self.idx) else {
            return Ok(false);
        };
        let io = |op, e| Error::io(op, self.storage.path_of(&seg.file_name), e);
        let bytes = if seg.sealed {
            self.storage
                .read_all(&seg.file_name)
                .map_err(|e| io("read", e))?
        } else {
            let f = self
                .storage
                .open_read(&seg.file_name)
                .map_err(|e| io("open", e))?;
            let mut v = vec![0u8; self.active_bytes as usize];
            let n = f.read_at(&mut v, 0).map_err(|e| io("read", e))?;
            v.truncate(n);
            FileBytes::Owned(v)
        };
        let path = || self.storage.path_of(&seg.file_name);
        if bytes.len() < SEGMENT_HEADER_BYTES {
            return Err(Error::corrupt(path(), 0, None, CorruptionKind::ShortHeader));
        }
        let h = format::decode_segment_header(&bytes)
            .map_err(|f| Error::corrupt(path(), 0, None, CorruptionKind::Format(f)))?;
        if h.segment != seg.id || h.first_lsn != seg.first_lsn {
            return Err(Error::corrupt(
                path(),
                0,
                None,
                CorruptionKind::NameMismatch {
                    name_segment: seg.id,
                    name_first_lsn: seg.first_lsn,
                },
            ));
        }
        self.next = seg.first_lsn;
        self.pos = SEGMENT_HEADER_BYTES;
        self.bytes = Some(bytes);
        Ok(true)
    }

    /// The next record, borrowed; `Ok(None)` at the end.
    pub fn next_record(&mut self) -> Result<Option<RecordRef<'_>>> {
        match self.advance() {
            Ok(Some((start, len, lsn, kind))) => {
                let b = self.bytes.as_ref().expect("loaded");
                Ok(Some(RecordRef {
                    lsn,
                    kind,
                    payload: &b[start..start + len],
                }))
            }
            Ok(None) => {
                self.done = true;
                Ok(None)
            }
            Err(e) => {
                self.done = true;
                Err(e)
            }
        }
    }

    /// Finds the next record at or after `from`; returns its payload's place.
    fn advance(&mut self) -> Result<Option<(usize, usize, Lsn, RecordKind)>> {
        loop {
            if self.done || self.next > self.until {
                return Ok(None);
            }
            if self.bytes.is_none() && !self.load()? {
                return Ok(None);
            }
            let seg = &self.segments[self.idx];
            let bytes = self.bytes.as_ref().expect("loaded");
            let at = self.pos;
            let corrupt = |kind| {
                Error::corrupt(
                    self.storage.path_of(&seg.file_name),
                    at as u64,
                    Some(self.next),
                    kind,
                )
            };
            match format::decode_slot_with(&bytes[at..], seg.id, self.verify_crc) {
                Slot::Frame(f) => {
                    if f.lsn != self.next {
                        return Err(corrupt(CorruptionKind::LsnGap {
                            expected: self.next,
                            found: f.lsn,
                        }));
                    }
                    self.pos += f.frame_bytes;
                    self.next = self.next.next();
                    if f.lsn >= self.from {
                        return Ok(Some((
                            at + format::FRAME_HEADER_BYTES,
                            f.payload.len(),
                            f.lsn,
                            f.kind,
                        )));
                    }
                }
                Slot::Footer(_) => {
                    self.bytes = None;
                    self.idx += 1;
                }
                // The durable part of the active segment holds every record up to `until`
                // (checked above): running out of frames before that is damage done after
                // recovery, never the end of the log. Ending quietly would drop records.
                Slot::Zero | Slot::Incomplete if !seg.sealed => {
                    return Err(corrupt(active_damage(bytes, at, seg.id)));
                }
                Slot::Zero | Slot::Incomplete => return Err(corrupt(CorruptionKind::NotSealed)),
                Slot::Bad(f) => return Err(corrupt(CorruptionKind::Format(f))),
            }
        }
    }
}

/// What recovery would call damage at `at` in an active segment's durable bytes: damage
/// before a valid record, or, with none after it, a tail it would have to cut.
fn active_damage(bytes: &[u8], at: usize, seg: SegmentId) -> CorruptionKind {
    let mut q = at + format::FRAME_ALIGN_BYTES;
    while q + format::FRAME_HEADER_BYTES <= bytes.len() {
        if let Slot::Frame(_) = format::decode_slot(&bytes[q..], seg) {
            return CorruptionKind::DamageBeforeValidRecord {
                valid_at: q as u64,
                fault: None,
            };
        }
        q += format::FRAME_ALIGN_BYTES;
    }
    CorruptionKind::TornTail {
        bytes: (bytes.len() - at) as u64,
    }
}

impl Iterator for LogIter {
    type Item = Result<OwnedRecord>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_record()
            .map(|r| r.map(|r| r.to_owned_record()))
            .transpose()
    }
}
