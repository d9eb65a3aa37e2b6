//! Reading records in LSN order from any LSN.
//!
//! An iterator captures the durable extent of the log when it is made and never reads
//! past it. Sealed segments are read through a memory map; the active one with plain
//! reads of its durable prefix. Every frame's checksum and LSN is checked again on the
//! way out: bytes on disk can rot after recovery.
//!
//! An iterator remembers where it stopped ([`SeekHints`], shared by one log's iterators,
//! at most [`HINTS_MAX`] places), so a later iterator that starts there (the next suffix a
//! sync or a follower reads) skips the rest of its segment: the cost of reading a short
//! suffix does not grow with the segment.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

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

/// Most places remembered per log.
pub const HINTS_MAX: usize = 4096;

/// Where some records start: LSN → (segment, byte offset of its frame). Bytes before the
/// durable end never change while a log is open, so a place stays right; a read-only
/// handle that sees a writer cut records it had read clears the hints.
#[derive(Debug, Default)]
pub struct SeekHints {
    places: Mutex<BTreeMap<Lsn, (SegmentId, u64)>>,
}

impl SeekHints {
    fn nearest_at_or_before(&self, lsn: Lsn) -> Option<(Lsn, SegmentId, u64)> {
        let p = self.places.lock().unwrap_or_else(|e| e.into_inner());
        p.range(..=lsn).next_back().map(|(l, (s, o))| (*l, *s, *o))
    }

    fn remember(&self, lsn: Lsn, segment: SegmentId, offset: u64) {
        let mut p = self.places.lock().unwrap_or_else(|e| e.into_inner());
        p.insert(lsn, (segment, offset));
        // Bounded: the oldest places go first (readers of suffixes want recent ones).
        while p.len() > HINTS_MAX {
            p.pop_first();
        }
    }

    pub(crate) fn clear(&self) {
        self.places
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
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
    hints: Arc<SeekHints>,
    /// A remembered place in the first segment to read: (LSN, byte offset).
    start: Option<(Lsn, u64)>,
    /// The file offset of `bytes[0]` (non-zero when the active segment is read from a
    /// remembered place).
    base: usize,
}

impl LogIter {
    pub(crate) fn new(
        storage: Arc<dyn Storage>,
        segments: Arc<Vec<SegmentInfo>>,
        active_bytes: u64,
        from: Lsn,
        until: Lsn,
        hints: Arc<SeekHints>,
    ) -> LogIter {
        let from = from.max(Lsn(1));
        // The last segment whose first LSN is at or before `from`.
        let idx = segments
            .partition_point(|s| s.first_lsn <= from)
            .saturating_sub(1);
        let done = from > until || segments.is_empty();
        let start = hints
            .nearest_at_or_before(from)
            .filter(|(_, seg, _)| segments.get(idx).is_some_and(|s| s.id == *seg))
            .map(|(lsn, _, off)| (lsn, off));
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
            hints,
            start,
            base: 0,
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
        if let Some((lsn, off)) = self.start.take() {
            // A remembered place: a sealed segment is mapped whole anyway; of the active
            // one only the bytes from the place on are read. The header was checked when
            // the place was found; the frame's LSN is checked when it is decoded.
            let bytes = if seg.sealed {
                self.base = 0;
                self.pos = off as usize;
                self.storage
                    .read_all(&seg.file_name)
                    .map_err(|e| io("read", e))?
            } else {
                let f = self
                    .storage
                    .open_read(&seg.file_name)
                    .map_err(|e| io("open", e))?;
                let len = self.active_bytes.saturating_sub(off) as usize;
                let mut v = vec![0u8; len];
                let n = f.read_at(&mut v, off).map_err(|e| io("read", e))?;
                v.truncate(n);
                self.base = off as usize;
                self.pos = 0;
                FileBytes::Owned(v)
            };
            self.next = lsn;
            self.bytes = Some(bytes);
            return Ok(true);
        }
        self.base = 0;
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
            // Loading may move `next` up to the segment's first LSN (a log that starts
            // after LSN 1): past the end, there is nothing to read.
            if self.next > self.until {
                return Ok(None);
            }
            let seg = &self.segments[self.idx];
            let bytes = self.bytes.as_ref().expect("loaded");
            let at = self.pos;
            let base = self.base;
            let corrupt = |kind| {
                Error::corrupt(
                    self.storage.path_of(&seg.file_name),
                    (base + at) as u64,
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
                    return Err(corrupt(active_damage(bytes, at, seg.id, base)));
                }
                Slot::Zero | Slot::Incomplete => return Err(corrupt(CorruptionKind::NotSealed)),
                Slot::Bad(f) => return Err(corrupt(CorruptionKind::Format(f))),
            }
        }
    }
}

/// What recovery would call damage at `at` in an active segment's durable bytes: damage
/// before a valid record, or, with none after it, a tail it would have to cut.
fn active_damage(bytes: &[u8], at: usize, seg: SegmentId, base: usize) -> CorruptionKind {
    let mut q = at + format::FRAME_ALIGN_BYTES;
    while q + format::FRAME_HEADER_BYTES <= bytes.len() {
        if let Slot::Frame(_) = format::decode_slot(&bytes[q..], seg) {
            return CorruptionKind::DamageBeforeValidRecord {
                valid_at: (base + q) as u64,
                fault: None,
            };
        }
        q += format::FRAME_ALIGN_BYTES;
    }
    CorruptionKind::TornTail {
        bytes: (bytes.len() - at) as u64,
    }
}

impl Drop for LogIter {
    /// Remembers where the next record would start: the next reader of a suffix (a sync
    /// export, a follower's refresh) usually starts right there. Kept out of the per-record
    /// path, where it would slow a full replay.
    fn drop(&mut self) {
        if self.bytes.is_some() && !self.done {
            if let Some(seg) = self.segments.get(self.idx) {
                self.hints
                    .remember(self.next, seg.id, (self.base + self.pos) as u64);
            }
        }
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
