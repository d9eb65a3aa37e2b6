//! Opening a log directory: list the segments, check each end to end, and decide.
//!
//! A torn tail of the last segment (an incomplete or damaged record, or an unfinished
//! batch, with no valid record after it) is cut in `TolerateTornTail` mode, its bytes
//! kept in a side file, and reported. Anything else (damage in a sealed segment, damage
//! followed by a valid record, a broken chain, a missing segment) fails the open. A
//! read-only recovery changes no file.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{CorruptionKind, Error, Result};
use crate::log::format::{self, Digest, DIGEST_NONE, FOOTER_BYTES};
use crate::log::fs::{FileBytes, Storage};
use crate::log::segment::{scan_segment, ScanExpect, SegmentInfo};
use crate::log::{LogOptions, Lsn, RecoveryMode, SegmentId};

/// A cut torn tail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    pub segment: SegmentId,
    pub file: PathBuf,
    /// Offset of the first byte cut.
    pub offset: u64,
    /// Bytes cut (up to the last non-zero byte).
    pub bytes: u64,
    /// Where the cut bytes were saved (`None` for a read-only open, which cuts nothing).
    pub saved_to: Option<PathBuf>,
}

/// What recovery found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub segments: usize,
    pub records: u64,
    pub last_lsn: Lsn,
    /// A torn tail that was cut (writer) or left out of view (read-only).
    pub torn_tail: Option<TornTail>,
    /// Temporary files of an interrupted segment creation, removed.
    pub removed_temp_files: Vec<String>,
}

/// The state of the last segment when it is not sealed, for the writer to continue it.
pub(crate) struct ActiveRecovered {
    pub id: SegmentId,
    pub file_name: String,
    pub end: u64,
    pub records: u64,
    pub hasher: blake3::Hasher,
    /// The segment's format version: a writer seals an older one before appending, so a
    /// segment never holds records its version does not describe.
    pub version: u32,
}

pub(crate) struct Recovered {
    pub segments: Vec<SegmentInfo>,
    pub last_lsn: Lsn,
    /// `Some` when the last segment is unsealed.
    pub active: Option<ActiveRecovered>,
    /// For a writer that must start a new segment: its id and the digest it chains to.
    pub next_id: SegmentId,
    pub last_digest: Digest,
}

pub(crate) fn recover(
    storage: &dyn Storage,
    options: &LogOptions,
    writable: bool,
) -> Result<(Recovered, RecoveryReport)> {
    recover_after(storage, options, writable, &[])
}

/// [`recover`] that trusts the sealed segments in `known` (checked by an earlier recovery
/// of the same log): sealed segments never change, so a read-only handle refreshing
/// beside a writer (or a follower receiving shipped segments) rescans only what is new.
pub(crate) fn recover_after(
    storage: &dyn Storage,
    options: &LogOptions,
    writable: bool,
    known: &[SegmentInfo],
) -> Result<(Recovered, RecoveryReport)> {
    // A live writer may be mid-write while a reader looks: retry a few times before
    // calling damage-then-valid-record corruption.
    let mut tries = 0;
    loop {
        match recover_once(storage, options, writable, known) {
            Err(Error::Corruption(c))
                if !writable
                    && tries < 3
                    && matches!(c.kind, CorruptionKind::DamageBeforeValidRecord { .. }) =>
            {
                tries += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

fn recover_once(
    storage: &dyn Storage,
    options: &LogOptions,
    writable: bool,
    known: &[SegmentInfo],
) -> Result<(Recovered, RecoveryReport)> {
    let io = |op, name: &str, e| Error::io(op, storage.path_of(name), e);
    let names = storage
        .list()
        .map_err(|e| Error::io("list", storage.location().to_path_buf(), e))?;
    let mut report = RecoveryReport::default();
    let mut segs = Vec::new();
    for name in names {
        if let Some((id, first)) = format::parse_segment_file_name(&name) {
            segs.push((id, first, name));
        } else if writable && name.ends_with(".seg.tmp") {
            storage.remove(&name).map_err(|e| io("remove", &name, e))?;
            report.removed_temp_files.push(name);
        }
    }
    if !report.removed_temp_files.is_empty() {
        storage
            .sync_dir()
            .map_err(|e| io("sync directory", ".", e))?;
    }
    segs.sort();
    for w in segs.windows(2) {
        if w[1].0 .0 != w[0].0 .0 + 1 {
            return Err(Error::corrupt(
                storage.path_of(&w[1].2),
                0,
                Some(w[1].1),
                CorruptionKind::MissingSegment {
                    expected: SegmentId(w[0].0 .0 + 1),
                },
            ));
        }
    }

    let mut segments = Vec::with_capacity(segs.len());
    let mut last_lsn = Lsn::ZERO;
    let mut prev_digest: Option<Digest> = None;
    let mut active = None;
    for (i, (id, name_first, name)) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        let trusted = known
            .iter()
            .find(|k| k.id == *id && k.sealed && k.file_name == *name);
        if let Some(k) = trusted {
            if i == 0 || k.first_lsn == last_lsn.next() {
                report.records += k.last_lsn.0 + 1 - k.first_lsn.0;
                last_lsn = k.last_lsn;
                prev_digest = k.digest;
                segments.push(k.clone());
                continue;
            }
        }
        let file = storage.path_of(name);
        let bytes = if last && !writable {
            read_copied(storage, name).map_err(|e| io("read", name, e))?
        } else {
            storage.read_all(name).map_err(|e| io("read", name, e))?
        };
        // The first segment of a log that was never trimmed starts the chain.
        let first_expected = if i > 0 {
            Some(last_lsn.next())
        } else if id.0 == 1 {
            Some(Lsn(1))
        } else {
            None
        };
        let prev_expected = if i > 0 {
            prev_digest
        } else if id.0 == 1 {
            Some(DIGEST_NONE)
        } else {
            None
        };
        let scan = scan_segment(
            &bytes,
            &ScanExpect {
                file: &file,
                name_id: *id,
                name_first_lsn: *name_first,
                first_lsn: first_expected,
                prev_digest: prev_expected,
                last,
            },
        )?;
        drop(bytes);
        let sealed = scan.footer.is_some();
        let mut info = SegmentInfo {
            id: *id,
            first_lsn: *name_first,
            last_lsn: scan.last_lsn,
            file_name: name.clone(),
            sealed,
            bytes: scan.end + if sealed { FOOTER_BYTES as u64 } else { 0 },
            digest: sealed.then_some(scan.digest),
        };
        if let Some(torn) = scan.torn {
            if options.recovery == RecoveryMode::Strict {
                return Err(Error::corrupt(
                    file,
                    torn.offset,
                    Some(scan.last_lsn.next()),
                    CorruptionKind::TornTail { bytes: torn.bytes },
                ));
            }
            let saved_to = if writable {
                Some(cut_tail(storage, name, torn.offset, torn.bytes)?)
            } else {
                None
            };
            report.torn_tail = Some(TornTail {
                segment: *id,
                file: file.clone(),
                offset: torn.offset,
                bytes: torn.bytes,
                saved_to,
            });
        }
        if sealed && last && writable {
            // Zeros left after a footer by a crash before the truncate: drop them.
            let f = storage.open(name).map_err(|e| io("open", name, e))?;
            if f.len().map_err(|e| io("stat", name, e))? != info.bytes {
                f.set_len(info.bytes).map_err(|e| io("truncate", name, e))?;
                f.sync_data().map_err(|e| io("fsync", name, e))?;
            }
        }
        if !sealed {
            active = Some(ActiveRecovered {
                id: *id,
                file_name: name.clone(),
                end: scan.end,
                records: scan.records,
                hasher: scan.hasher.clone(),
                version: scan.header.version,
            });
            info.bytes = scan.end;
        }
        report.records += scan.records;
        last_lsn = scan.last_lsn;
        prev_digest = Some(scan.digest);
        segments.push(info);
    }
    if writable {
        if let Some(last) = segments.last() {
            // What we just read may not be durable: a writer that failed an fsync (its own
            // or the directory's) and was dropped without a power cut leaves its last
            // segment's bytes, its seal, or a new segment's directory entry in the page
            // cache only. Make them durable before we acknowledge anything built on them,
            // or a later power cut loses acknowledged records or leaves an unsealed segment
            // before the last one. Every earlier segment was synced before the one after
            // it was created.
            let name = &last.file_name;
            let f = storage.open(name).map_err(|e| io("open", name, e))?;
            f.sync_data().map_err(|e| io("fsync", name, e))?;
            storage
                .sync_dir()
                .map_err(|e| io("sync directory", ".", e))?;
        }
    }
    report.segments = segments.len();
    report.last_lsn = last_lsn;
    let next_id = SegmentId(segs.last().map(|s| s.0 .0 + 1).unwrap_or(1));
    Ok((
        Recovered {
            segments,
            last_lsn,
            active,
            next_id,
            last_digest: prev_digest.unwrap_or(DIGEST_NONE),
        },
        report,
    ))
}

/// Reads a whole file with plain reads, for a reader beside a live writer. The writer
/// truncates its last segment (the pre-written zeros when it seals it, a torn tail when it
/// opens): a memory map of it would fault (SIGBUS, killing the process) on a page past the
/// new end, while a read just returns the shorter file.
fn read_copied(storage: &dyn Storage, name: &str) -> std::io::Result<FileBytes> {
    let f = storage.open_read(name)?;
    let mut v = vec![0u8; f.len()? as usize];
    let n = f.read_at(&mut v, 0)?;
    v.truncate(n);
    Ok(FileBytes::Owned(v))
}

/// Saves `[offset, offset + bytes)` of `name` beside it, then truncates `name` at `offset`.
fn cut_tail(storage: &dyn Storage, name: &str, offset: u64, bytes: u64) -> Result<PathBuf> {
    let io = |op, n: &str, e| Error::io(op, storage.path_of(n), e);
    let f = storage.open(name).map_err(|e| io("open", name, e))?;
    let mut cut = vec![0u8; bytes as usize];
    let n = f
        .read_at(&mut cut, offset)
        .map_err(|e| io("read", name, e))?;
    cut.truncate(n);
    let mut side = format!("{name}.torn-{offset:016x}");
    let mut k = 1;
    while storage
        .list()
        .map_err(|e| io("list", ".", e))?
        .contains(&side)
    {
        side = format!("{name}.torn-{offset:016x}.{k}");
        k += 1;
    }
    let s = storage
        .create_new(&side)
        .map_err(|e| io("create", &side, e))?;
    s.write_all_at(&cut, 0).map_err(|e| io("write", &side, e))?;
    s.sync_data().map_err(|e| io("fsync", &side, e))?;
    storage
        .sync_dir()
        .map_err(|e| io("sync directory", ".", e))?;
    // Only once the cut bytes are safe beside it is the segment truncated.
    f.set_len(offset).map_err(|e| io("truncate", name, e))?;
    f.sync_data().map_err(|e| io("fsync", name, e))?;
    Ok(storage.path_of(&side))
}
