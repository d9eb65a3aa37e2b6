//! Offline checking and repair of a log directory, for operators.
//!
//! [`verify`] checks every segment on its own (header, every record checksum, footer,
//! digest, the hash chain, LSN continuity) and keeps going after a finding, so one run
//! lists every damaged place. [`repair`] cuts a torn tail, or with `salvage` keeps the
//! longest valid prefix of the whole log, always saving what it cuts beside the log.
//! Neither takes the writer's lock for reading; `repair` takes it for writing.

use std::path::PathBuf;

use crate::error::{Corruption, CorruptionKind, Error, Result};
use crate::log::format::{self, Digest, DIGEST_NONE, FOOTER_BYTES};
use crate::log::fs::{LockFailure, Storage};
use crate::log::segment::{scan_segment, ScanExpect};
use crate::log::{Lsn, SegmentId, LOCK_FILE};

/// What `verify` found in one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentCheck {
    pub id: SegmentId,
    pub file: PathBuf,
    pub first_lsn: Lsn,
    pub records: u64,
    pub last_lsn: Lsn,
    pub sealed: bool,
    pub bytes: u64,
    /// A torn tail (last segment only): cut by a writer's open, harmless.
    pub torn_tail: Option<(u64, u64)>,
}

/// The result of [`verify`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub segments: Vec<SegmentCheck>,
    /// Every damaged place found; empty when the log is clean.
    pub findings: Vec<Corruption>,
    pub records: u64,
    pub last_lsn: Lsn,
}

impl VerifyReport {
    /// Whether nothing is wrong (a torn tail is not a finding: recovery cuts it).
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

fn list_segments(storage: &dyn Storage) -> Result<Vec<(SegmentId, Lsn, String)>> {
    let names = storage
        .list()
        .map_err(|e| Error::io("list", storage.location().to_path_buf(), e))?;
    let mut segs: Vec<_> = names
        .into_iter()
        .filter_map(|n| format::parse_segment_file_name(&n).map(|(id, lsn)| (id, lsn, n)))
        .collect();
    segs.sort();
    Ok(segs)
}

/// Checks a whole log directory, segment by segment, without stopping at the first
/// finding. I/O errors end the check with an error (they are never findings).
pub fn verify(storage: &dyn Storage) -> Result<VerifyReport> {
    let segs = list_segments(storage)?;
    let mut report = VerifyReport::default();
    let mut prev: Option<(SegmentId, Lsn, Digest)> = None;
    for (i, (id, first, name)) in segs.iter().enumerate() {
        let file = storage.path_of(name);
        if let Some((pid, _, _)) = prev {
            if id.0 != pid.0 + 1 {
                report.findings.push(Corruption {
                    file: file.clone(),
                    offset: 0,
                    lsn: Some(*first),
                    kind: CorruptionKind::MissingSegment {
                        expected: SegmentId(pid.0 + 1),
                    },
                });
            }
        }
        let bytes = storage
            .read_all(name)
            .map_err(|e| Error::io("read", file.clone(), e))?;
        let (first_expected, prev_expected) = match prev {
            Some((_, last, digest)) => (Some(last.next()), Some(digest)),
            None if id.0 == 1 => (Some(Lsn(1)), Some(DIGEST_NONE)),
            None => (None, None),
        };
        let expect = ScanExpect {
            file: &file,
            name_id: *id,
            name_first_lsn: *first,
            first_lsn: first_expected,
            prev_digest: prev_expected,
            last: i + 1 == segs.len(),
        };
        match scan_segment(&bytes, &expect) {
            Ok(scan) => {
                let sealed = scan.footer.is_some();
                report.records += scan.records;
                report.last_lsn = scan.last_lsn;
                report.segments.push(SegmentCheck {
                    id: *id,
                    file,
                    first_lsn: *first,
                    records: scan.records,
                    last_lsn: scan.last_lsn,
                    sealed,
                    bytes: scan.end + if sealed { FOOTER_BYTES as u64 } else { 0 },
                    torn_tail: scan.torn.map(|t| (t.offset, t.bytes)),
                });
                prev = Some((*id, scan.last_lsn, scan.digest));
            }
            Err(Error::Corruption(c)) => {
                // Keep going: chain the next segment to what this one's header claims, so
                // one damaged segment is one finding, not a cascade.
                report.findings.push(*c);
                let chained = format::decode_segment_header(&bytes).ok();
                report.segments.push(SegmentCheck {
                    id: *id,
                    file,
                    first_lsn: *first,
                    records: 0,
                    last_lsn: first.prev(),
                    sealed: false,
                    bytes: bytes.len() as u64,
                    torn_tail: None,
                });
                let next_first = segs.get(i + 1).map(|s| s.1).unwrap_or(first.next());
                let digest = segs
                    .get(i + 1)
                    .and_then(|n| storage.read_all(&n.2).ok())
                    .and_then(|b| format::decode_segment_header(&b).ok())
                    .map(|h| h.prev_digest)
                    .or(chained.map(|h| h.prev_digest))
                    .unwrap_or(DIGEST_NONE);
                prev = Some((*id, next_first.prev(), digest));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(report)
}

/// What [`repair`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// Files or byte ranges cut, with where their bytes were saved.
    pub cut: Vec<(PathBuf, u64, u64, PathBuf)>,
    /// The last LSN of the log after the repair.
    pub last_lsn: Lsn,
}

/// Repairs a log offline (takes the writer's lock). Without `salvage`, only a torn tail
/// is cut (what a writer's open does). With `salvage`, the log is cut at the first
/// damaged place: the rest of that segment is cut, later segments are moved aside as
/// `<name>.salvaged`, and what remains is the longest valid prefix.
pub fn repair(storage: &dyn Storage, salvage: bool) -> Result<RepairReport> {
    let _lock = storage.try_lock(LOCK_FILE).map_err(|f| match f {
        LockFailure::Held { pid } => Error::Locked {
            path: storage.location().to_path_buf(),
            pid,
        },
        LockFailure::Io(e) => Error::io("lock", storage.path_of(LOCK_FILE), e),
    })?;
    let io = |op, name: &str, e| Error::io(op, storage.path_of(name), e);
    let report = verify(storage)?;
    let mut out = RepairReport {
        last_lsn: report.last_lsn,
        ..Default::default()
    };
    let Some(first_bad) = report.findings.first() else {
        // Clean: cut a torn tail if there is one.
        if let Some(last) = report.segments.last() {
            if let Some((offset, bytes)) = last.torn_tail {
                let name = last
                    .file
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default()
                    .to_string();
                let saved = save_and_truncate(storage, &name, offset, bytes)?;
                out.cut.push((last.file.clone(), offset, bytes, saved));
            }
        }
        return Ok(out);
    };
    if !salvage {
        return Err(Error::Corruption(Box::new(first_bad.clone())));
    }
    // Cut inside the damaged segment at the damaged record, and set aside every later one.
    let bad_idx = report
        .segments
        .iter()
        .position(|s| s.file == first_bad.file)
        .unwrap_or(0);
    for later in &report.segments[bad_idx + 1..] {
        let name = later
            .file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let aside = format!("{name}.salvaged");
        storage
            .rename(&name, &aside)
            .map_err(|e| io("rename", &name, e))?;
        out.cut
            .push((later.file.clone(), 0, later.bytes, storage.path_of(&aside)));
    }
    let bad = &report.segments[bad_idx];
    let name = bad
        .file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let f = storage.open(&name).map_err(|e| io("open", &name, e))?;
    let len = f.len().map_err(|e| io("stat", &name, e))?;
    drop(f);
    // A damaged header leaves nothing of the segment worth keeping.
    let cut_at = if first_bad.offset < format::SEGMENT_HEADER_BYTES as u64 {
        0
    } else {
        first_bad.offset
    };
    if cut_at == 0 {
        let aside = format!("{name}.salvaged");
        storage
            .rename(&name, &aside)
            .map_err(|e| io("rename", &name, e))?;
        out.cut
            .push((bad.file.clone(), 0, len, storage.path_of(&aside)));
    } else {
        let saved = save_and_truncate(storage, &name, cut_at, len - cut_at)?;
        out.cut
            .push((bad.file.clone(), cut_at, len - cut_at, saved));
    }
    storage
        .sync_dir()
        .map_err(|e| io("sync directory", ".", e))?;
    out.last_lsn = first_bad.lsn.map(|l| l.prev()).unwrap_or(report.last_lsn);
    // What is left must now open cleanly.
    let after = verify(storage)?;
    if let Some(f) = after.findings.first() {
        return Err(Error::Corruption(Box::new(f.clone())));
    }
    out.last_lsn = after.last_lsn;
    Ok(out)
}

fn save_and_truncate(
    storage: &dyn Storage,
    name: &str,
    offset: u64,
    bytes: u64,
) -> Result<PathBuf> {
    let io = |op, n: &str, e| Error::io(op, storage.path_of(n), e);
    let f = storage.open(name).map_err(|e| io("open", name, e))?;
    let mut buf = vec![0u8; bytes as usize];
    let n = f
        .read_at(&mut buf, offset)
        .map_err(|e| io("read", name, e))?;
    buf.truncate(n);
    let side = format!("{name}.cut-{offset:016x}");
    let s = match storage.create_new(&side) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            storage.open(&side).map_err(|e| io("open", &side, e))?
        }
        Err(e) => return Err(io("create", &side, e)),
    };
    s.write_all_at(&buf, 0).map_err(|e| io("write", &side, e))?;
    s.set_len(buf.len() as u64)
        .map_err(|e| io("truncate", &side, e))?;
    s.sync_data().map_err(|e| io("fsync", &side, e))?;
    storage
        .sync_dir()
        .map_err(|e| io("sync directory", ".", e))?;
    f.set_len(offset).map_err(|e| io("truncate", name, e))?;
    f.sync_data().map_err(|e| io("fsync", name, e))?;
    Ok(storage.path_of(&side))
}
