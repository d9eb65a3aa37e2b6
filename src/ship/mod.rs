//! Replication by shipping segments: a follower holds a byte-identical copy of a prefix
//! of the primary's log, for read scale-out, backup and failover.
//!
//! A [`Shipper`] holds the follower's lock (so nothing promotes it meanwhile) and, each
//! time it ships: checks that every segment the follower has is the source's (a sealed
//! one by its footer, an unsealed one as a byte prefix of the source's), cutting a torn
//! tail a crash left; then copies each sealed segment the follower lacks whole (verified
//! end to end, written under a temporary name, fsynced, renamed, directory fsynced) and
//! appends the new durable frames of the source's active segment (verified frame by frame
//! before they are written). A segment that does not chain or does not match is refused
//! as [`Error::ShipDiverged`]: a follower is never merged with another history.
//!
//! A store opened read-only on the follower reads what was shipped (`Store::refresh`);
//! once nothing ships into it, `Store::open` promotes it (same log, same store id).
//!
//! This module reads the source only through its [`Log`] and writes only through a
//! [`ShipTarget`]; it never interprets record payloads.

pub mod target;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::log::format::{self, Digest, Slot, DIGEST_NONE, FOOTER_BYTES, SEGMENT_HEADER_BYTES};
use crate::log::fs::LockGuard;
use crate::log::segment::{scan_segment, ScanExpect, SegmentInfo};
use crate::log::{Log, Lsn, SegmentId};

pub use target::{ShipTarget, StorageTarget};

/// The file in a follower's directory naming where it ships from (a hint for `status`;
/// not part of the log).
pub const SHIP_SOURCE_FILE: &str = "SHIP-SOURCE";

/// What one ship did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ShipReport {
    /// The source's last durable LSN when the ship looked.
    pub source_last_lsn: Lsn,
    /// The follower's last LSN before and after.
    pub follower_lsn_before: Lsn,
    pub follower_last_lsn: Lsn,
    /// Sealed segments copied whole.
    pub segments_copied: u64,
    /// Bytes written to the follower (whole segments and appended frames).
    pub bytes_copied: u64,
    /// Records the follower gained.
    pub records_shipped: u64,
    /// Bytes of a torn tail (a crash during an earlier append) cut from the follower.
    pub torn_bytes_cut: u64,
}

/// What the shipper knows of the follower's unsealed last segment.
#[derive(Debug, Clone)]
struct ActiveCopy {
    name: String,
    /// Bytes known equal to the source's.
    len: u64,
    /// The LSN of the next frame.
    next_lsn: Lsn,
}

/// Ships one log into one target, holding the target's lock while it lives.
pub struct Shipper<'t> {
    target: &'t dyn ShipTarget,
    _lock: Box<dyn LockGuard>,
    /// Segments known to equal the source's (name → length checked).
    verified: HashMap<String, u64>,
    active: Option<ActiveCopy>,
    /// The source location last written to [`SHIP_SOURCE_FILE`].
    source_noted: Option<String>,
}

fn diverged(target: &dyn ShipTarget, segment: &str, reason: impl Into<String>) -> Error {
    Error::ShipDiverged {
        target: target.describe(),
        segment: segment.to_string(),
        reason: reason.into(),
    }
}

/// Reads bytes `[offset, offset + len)` of a source segment.
fn read_source(source: &Log, info: &SegmentInfo, offset: u64, len: u64) -> Result<Vec<u8>> {
    let storage = source.storage();
    let io = |op, e| Error::io(op, storage.path_of(&info.file_name), e);
    let f = storage
        .open_read(&info.file_name)
        .map_err(|e| io("open", e))?;
    let mut v = vec![0u8; len as usize];
    let mut got = 0;
    while got < v.len() {
        let n = f
            .read_at(&mut v[got..], offset + got as u64)
            .map_err(|e| io("read", e))?;
        if n == 0 {
            break;
        }
        got += n;
    }
    if got != v.len() {
        return Err(Error::io(
            "read",
            storage.path_of(&info.file_name),
            std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "segment ends at byte {} before {}",
                    offset + got as u64,
                    offset + len
                ),
            ),
        ));
    }
    Ok(v)
}

/// Checks the frames of segment `id` in `bytes` (which start at a frame boundary, at file
/// offset `base`) and returns the LSN after the last. Every byte must be whole frames.
fn check_frames(
    bytes: &[u8],
    id: SegmentId,
    mut next: Lsn,
    file: &std::path::Path,
    base: u64,
) -> Result<Lsn> {
    let mut pos = 0;
    while pos < bytes.len() {
        let corrupt =
            |kind| Error::corrupt(file.to_path_buf(), base + pos as u64, Some(next), kind);
        match format::decode_slot(&bytes[pos..], id) {
            Slot::Frame(f) => {
                if f.lsn != next {
                    return Err(corrupt(crate::error::CorruptionKind::LsnGap {
                        expected: next,
                        found: f.lsn,
                    }));
                }
                pos += f.frame_bytes;
                next = next.next();
            }
            Slot::Bad(fault) => return Err(corrupt(crate::error::CorruptionKind::Format(fault))),
            _ => return Err(corrupt(crate::error::CorruptionKind::NotSealed)),
        }
    }
    Ok(next)
}

/// The longest prefix of an unsealed segment copy that is a valid header plus whole
/// frames: (its length, the LSN after its last frame).
fn valid_prefix(bytes: &[u8], id: SegmentId, first: Lsn) -> (u64, Lsn) {
    if bytes.len() < SEGMENT_HEADER_BYTES || format::decode_segment_header(bytes).is_err() {
        return (0, first);
    }
    let mut pos = SEGMENT_HEADER_BYTES;
    let mut next = first;
    while let Slot::Frame(f) = format::decode_slot(&bytes[pos..], id) {
        if f.lsn != next {
            break;
        }
        pos += f.frame_bytes;
        next = next.next();
    }
    (pos as u64, next)
}

impl<'t> Shipper<'t> {
    /// Takes the target's lock (a store open on it for writing, or another shipper, makes
    /// this fail with `Locked`).
    pub fn new(target: &'t dyn ShipTarget) -> Result<Self> {
        let lock = target.lock()?;
        Ok(Shipper {
            target,
            _lock: lock,
            verified: HashMap::new(),
            active: None,
            source_noted: None,
        })
    }

    /// Ships what the follower lacks of `source`'s durable log. A read-only source is
    /// refreshed first.
    pub fn ship(&mut self, source: &Log) -> Result<ShipReport> {
        source.refresh()?;
        let src = source.segments();
        let mut report = ShipReport {
            source_last_lsn: source.durable_lsn(),
            ..Default::default()
        };
        let t = self.target;
        // Stale temporary files of an interrupted `put`.
        let names = t.list()?;
        for n in names.iter().filter(|n| n.ends_with(".seg.tmp")) {
            t.remove(n)?;
        }
        let mut dst: Vec<(SegmentId, Lsn, String)> = names
            .iter()
            .filter_map(|n| format::parse_segment_file_name(n).map(|(id, l)| (id, l, n.clone())))
            .collect();
        dst.sort();

        // 1. Every segment the follower has must be the source's.
        let mut matched = 0; // whole segments equal to the source's
        let mut prev_digest: Option<Digest> = None;
        let mut partial: Option<ActiveCopy> = None;
        for (i, (id, first, name)) in dst.iter().enumerate() {
            let Some(s) = src.get(i) else {
                return Err(diverged(
                    t,
                    name,
                    "the follower has a segment the source does not: it holds records the source never had (a promoted follower, or another store)",
                ));
            };
            if s.id != *id || s.first_lsn != *first {
                return Err(diverged(
                    t,
                    name,
                    format!("the source's segment at this place is {}", s.file_name),
                ));
            }
            let dlen = t.len(name)?.unwrap_or(0);
            let last = i + 1 == dst.len();
            if s.sealed && dlen == s.bytes {
                if self.verified.get(name) != Some(&dlen) {
                    let theirs = t.read(
                        name,
                        dlen.saturating_sub(FOOTER_BYTES as u64),
                        FOOTER_BYTES as u64,
                    )?;
                    let ours = read_source(
                        source,
                        s,
                        s.bytes - FOOTER_BYTES as u64,
                        FOOTER_BYTES as u64,
                    )?;
                    if theirs != ours {
                        // Damage in the source is corruption, not another history.
                        let bytes = read_source(source, s, 0, s.bytes)?;
                        scan_segment(
                            &bytes,
                            &ScanExpect {
                                file: &source.storage().path_of(&s.file_name),
                                name_id: s.id,
                                name_first_lsn: s.first_lsn,
                                first_lsn: None,
                                prev_digest: None,
                                last: false,
                            },
                        )?;
                        return Err(diverged(
                            t,
                            name,
                            "its footer (digest) differs from the source's: another history",
                        ));
                    }
                    // Possibly left by an interrupted shipper, in a cache only.
                    t.sync(name)?;
                    self.verified.insert(name.clone(), dlen);
                }
                matched += 1;
                prev_digest = s.digest;
                continue;
            }
            if !last {
                return Err(diverged(
                    t,
                    name,
                    "an unsealed or short segment is followed by another one",
                ));
            }
            let src_len = if s.sealed {
                s.bytes - FOOTER_BYTES as u64
            } else {
                s.bytes
            };
            // The unsealed copy: must be a prefix of the source's segment.
            let known = match &self.active {
                Some(a) if a.name == *name && a.len == dlen => Some(a.clone()),
                _ => None,
            };
            let copy = match known {
                Some(a) => a,
                None => {
                    let theirs = t.read(name, 0, dlen)?;
                    let (valid, next) = valid_prefix(&theirs, *id, *first);
                    let cmp_len = valid.min(src_len);
                    let ours = read_source(source, s, 0, cmp_len)?;
                    if theirs[..cmp_len as usize] != ours[..] {
                        return Err(diverged(
                            t,
                            name,
                            "its records differ from the source's: another history",
                        ));
                    }
                    if valid > src_len {
                        return Err(diverged(
                            t,
                            name,
                            format!(
                                "the follower holds {} bytes of records the source does not have (a promoted follower, or a source that lost records)",
                                valid - src_len
                            ),
                        ));
                    }
                    if valid < dlen {
                        // A crash during an append left a torn tail: cut it.
                        t.truncate(name, valid)?;
                        report.torn_bytes_cut += dlen - valid;
                    }
                    // An interrupted shipper may have left these bytes in a cache only:
                    // make them durable before building on them.
                    if valid > 0 {
                        t.sync(name)?;
                    }
                    ActiveCopy {
                        name: name.clone(),
                        len: valid,
                        next_lsn: next,
                    }
                }
            };
            partial = Some(copy);
        }
        report.follower_lsn_before = match (&partial, matched) {
            (Some(p), _) => p.next_lsn.prev(),
            (None, 0) => Lsn::ZERO,
            (None, m) => src[m - 1].last_lsn,
        };

        // 2. Copy what the follower lacks.
        let mut last_lsn = report.follower_lsn_before;
        for (i, s) in src.iter().enumerate().skip(matched) {
            let file = source.storage().path_of(&s.file_name);
            let expected_first = if i == 0 {
                s.first_lsn
            } else {
                src[i - 1].last_lsn.next()
            };
            let expected_prev = if i > 0 {
                prev_digest.or(src[i - 1].digest)
            } else if s.id.0 == 1 {
                Some(DIGEST_NONE)
            } else {
                None
            };
            if s.sealed {
                let bytes = read_source(source, s, 0, s.bytes)?;
                let scan = scan_segment(
                    &bytes,
                    &ScanExpect {
                        file: &file,
                        name_id: s.id,
                        name_first_lsn: s.first_lsn,
                        first_lsn: Some(expected_first),
                        prev_digest: expected_prev,
                        last: false,
                    },
                )?;
                if scan.footer.is_none() || scan.torn.is_some() {
                    return Err(Error::corrupt(
                        file,
                        scan.end,
                        Some(scan.last_lsn.next()),
                        crate::error::CorruptionKind::NotSealed,
                    ));
                }
                t.put(&s.file_name, &bytes)?;
                self.verified.insert(s.file_name.clone(), s.bytes);
                self.active = None;
                report.segments_copied += 1;
                report.bytes_copied += bytes.len() as u64;
                prev_digest = Some(scan.digest);
                last_lsn = scan.last_lsn;
                partial = None;
            } else {
                let (from, next) = match partial.take() {
                    Some(p) if p.name == s.file_name => (p.len, p.next_lsn),
                    _ => (0, s.first_lsn),
                };
                if s.bytes > from {
                    let bytes = read_source(source, s, from, s.bytes - from)?;
                    let (frames_at, next_in) = if from == 0 {
                        let h = format::decode_segment_header(&bytes).map_err(|f| {
                            Error::corrupt(
                                file.clone(),
                                0,
                                None,
                                crate::error::CorruptionKind::Format(f),
                            )
                        })?;
                        if h.segment != s.id
                            || h.first_lsn != expected_first
                            || expected_prev.is_some_and(|p| p != h.prev_digest)
                        {
                            return Err(diverged(
                                t,
                                &s.file_name,
                                "the source's segment does not chain to the one before it",
                            ));
                        }
                        (SEGMENT_HEADER_BYTES, s.first_lsn)
                    } else {
                        (0, next)
                    };
                    let after = check_frames(
                        &bytes[frames_at..],
                        s.id,
                        next_in,
                        &file,
                        from + frames_at as u64,
                    )?;
                    if from == 0 {
                        // A new segment appears whole or not at all: readers of the
                        // follower never see a file shorter than its header.
                        t.put(&s.file_name, &bytes)?;
                    } else {
                        t.append(&s.file_name, from, &bytes)?;
                    }
                    report.bytes_copied += bytes.len() as u64;
                    self.active = Some(ActiveCopy {
                        name: s.file_name.clone(),
                        len: s.bytes,
                        next_lsn: after,
                    });
                    last_lsn = after.prev();
                } else {
                    self.active = Some(ActiveCopy {
                        name: s.file_name.clone(),
                        len: from,
                        next_lsn: next,
                    });
                    last_lsn = next.prev();
                }
            }
        }
        if let Some(p) = partial {
            // The follower's copy is of a segment the source has sealed meanwhile? Handled
            // above (sealed → copied whole). Here: up to date with the active one.
            last_lsn = p.next_lsn.prev();
            self.active = Some(p);
        }
        report.follower_last_lsn = last_lsn;
        report.records_shipped = last_lsn.0.saturating_sub(report.follower_lsn_before.0);
        let location = source.location().display().to_string();
        if self.source_noted.as_deref() != Some(location.as_str()) {
            let noted = t
                .len(SHIP_SOURCE_FILE)?
                .map(|n| t.read(SHIP_SOURCE_FILE, 0, n))
                .transpose()?;
            if noted.as_deref() != Some(location.as_bytes()) {
                t.put(SHIP_SOURCE_FILE, location.as_bytes())?;
            }
            self.source_noted = Some(location);
        }
        Ok(report)
    }

    /// Ships every `interval` until `stop` is set (checked at least every 50 ms), calling
    /// `on_ship` after each ship. Stops at the first error (the follower keeps what was
    /// shipped; shipping again resumes).
    pub fn follow(
        &mut self,
        source: &Log,
        interval: Duration,
        stop: &AtomicBool,
        mut on_ship: impl FnMut(&ShipReport),
    ) -> Result<()> {
        while !stop.load(Ordering::Relaxed) {
            let r = self.ship(source)?;
            on_ship(&r);
            let until = Instant::now() + interval;
            while !stop.load(Ordering::Relaxed) {
                let now = Instant::now();
                if now >= until {
                    break;
                }
                std::thread::sleep((until - now).min(Duration::from_millis(50)));
            }
        }
        Ok(())
    }
}

/// How far a follower is behind its primary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lag {
    pub primary_last_lsn: Lsn,
    pub follower_last_lsn: Lsn,
    pub records: u64,
    /// Segment bytes the follower lacks.
    pub bytes: u64,
}

/// Compares a follower's log with its primary's (both opened, read-only or not).
pub fn lag(follower: &Log, primary: &Log) -> Lag {
    let f = follower.segments();
    let p = primary.segments();
    let bytes = p
        .iter()
        .map(|s| {
            let have = f
                .iter()
                .find(|x| x.file_name == s.file_name)
                .map_or(0, |x| x.bytes);
            s.bytes.saturating_sub(have)
        })
        .sum();
    let (pl, fl) = (primary.durable_lsn(), follower.durable_lsn());
    Lag {
        primary_last_lsn: pl,
        follower_last_lsn: fl,
        records: pl.0.saturating_sub(fl.0),
        bytes,
    }
}

/// The source a follower directory was last shipped from, if it records one.
pub fn noted_source(target: &dyn ShipTarget) -> Result<Option<String>> {
    match target.len(SHIP_SOURCE_FILE)? {
        None => Ok(None),
        Some(n) => {
            let b = target.read(SHIP_SOURCE_FILE, 0, n)?;
            Ok(Some(String::from_utf8_lossy(&b).into_owned()))
        }
    }
}

/// Ships once: what `mdslog ship` does. Shipping twice changes nothing.
pub fn ship(source: &Log, target: &dyn ShipTarget) -> Result<ShipReport> {
    Shipper::new(target)?.ship(source)
}
