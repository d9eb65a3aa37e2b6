//! Damage that is not a torn tail, on the real file system: a flipped bit anywhere in a
//! sealed segment, in the middle of the active one, in a header; a missing segment; a
//! segment from another log. Every open fails with `Error::Corruption` naming the damaged
//! file and an offset inside the damaged header, record or footer; readers of an already
//! open log report damage that appears later as corruption too, never a panic.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use mdslog::log::format::{FOOTER_BYTES, SEGMENT_HEADER_BYTES};
use mdslog::log::{Log, LogOptions, Lsn, OwnedRecord, Record, RecordKind, SegmentId};
use mdslog::{Corruption, CorruptionKind, Error};

fn small() -> LogOptions {
    LogOptions {
        segment_bytes_max: 4096,
        prewrite_bytes: 1024,
        record_bytes_max: 512,
        batch_bytes_max: 2048,
        ..LogOptions::default()
    }
}

/// Payload of record `lsn`; `salt` makes another log with the same layout but other bytes.
fn payload(lsn: u64, salt: u8) -> Vec<u8> {
    let len = [0usize, 3, 8, 17, 40, 96, 150, 260][lsn as usize % 8];
    (0..len)
        .map(|j| (lsn as usize * 13 + j) as u8 ^ salt)
        .collect()
}

/// A closed log of `records` records (every fourth append a batch of three); returns the
/// last LSN of every batch.
fn build(dir: &Path, records: u64, salt: u8) -> Vec<u64> {
    let log = Log::open(dir, small()).unwrap();
    let mut lsn = 1;
    let mut batch_ends = Vec::new();
    let mut i = 0;
    while lsn <= records {
        let n = if i % 4 == 3 {
            3.min(records - lsn + 1)
        } else {
            1
        };
        let recs = (lsn..lsn + n)
            .map(|l| Record::new(RecordKind((l % 3 + 1) as u16), payload(l, salt)))
            .collect();
        let r = log.append_batch(recs).unwrap();
        assert_eq!((r.first, r.last), (Lsn(lsn), Lsn(lsn + n - 1)));
        lsn += n;
        batch_ends.push(lsn - 1);
        i += 1;
    }
    log.close().unwrap();
    batch_ends
}

fn seg_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// A part of an undamaged segment, as parsed here (not by the crate).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Part {
    Header,
    Frame {
        start: usize,
        end: usize,
        lsn: u64,
    },
    Footer {
        start: usize,
    },
    /// Past the frames of an active segment: pre-written zeros.
    Zeros {
        start: usize,
    },
}

fn parts(b: &[u8]) -> Vec<Part> {
    let mut v = vec![Part::Header];
    let mut pos = SEGMENT_HEADER_BYTES;
    while pos + 24 <= b.len() {
        if u32_at(b, pos) == u32::MAX {
            v.push(Part::Footer { start: pos });
            assert_eq!(pos + FOOTER_BYTES, b.len());
            return v;
        }
        if b[pos..pos + 24].iter().all(|&x| x == 0) {
            break;
        }
        let end = pos + 24 + (u32_at(b, pos) as usize).div_ceil(8) * 8;
        v.push(Part::Frame {
            start: pos,
            end,
            lsn: u64_at(b, pos + 8),
        });
        pos = end;
    }
    v.push(Part::Zeros { start: pos });
    v
}

fn part_at(parts: &[Part], off: usize) -> Part {
    *parts
        .iter()
        .rev()
        .find(|p| match **p {
            Part::Header => true,
            Part::Frame { start, .. } | Part::Footer { start } | Part::Zeros { start } => {
                start <= off
            }
        })
        .unwrap()
}

fn flip(path: &Path, off: usize, bit: u32) {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, off as u64).unwrap();
    b[0] ^= 1 << bit;
    f.write_all_at(&b, off as u64).unwrap();
}

/// Checks that `c` names `file` at an offset inside `part`, the part holding byte `off`.
fn assert_inside(c: &Corruption, file: &Path, part: Part, ctx: &str) {
    assert_eq!(c.file, file, "{ctx}: {c}");
    match part {
        Part::Header => assert_eq!(c.offset, 0, "{ctx}: {c}"),
        Part::Frame { start, end, lsn } => {
            assert!(
                start as u64 <= c.offset && c.offset < end as u64,
                "{ctx}: frame {start}..{end}: {c}"
            );
            assert_eq!(c.lsn, Some(Lsn(lsn)), "{ctx}: {c}");
        }
        Part::Footer { start } => {
            assert!(
                start as u64 <= c.offset && c.offset < (start + FOOTER_BYTES) as u64,
                "{ctx}: footer: {c}"
            )
        }
        Part::Zeros { .. } => panic!("{ctx}: not a part that holds data"),
    }
}

fn corruption(r: Result<Log, Error>, ctx: &str) -> Box<Corruption> {
    match r {
        Err(Error::Corruption(c)) => c,
        Err(e) => panic!("{ctx}: expected corruption, got {e}"),
        Ok(log) => panic!(
            "{ctx}: opened with damage (report {:?})",
            log.recovery_report()
        ),
    }
}

fn read_all(log: &Log) -> Result<Vec<OwnedRecord>, Error> {
    log.iter_from(Lsn(1)).collect()
}

#[test]
fn flipped_bit_anywhere_in_a_sealed_segment_fails_the_open() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 300, 0);
    let segs = seg_files(dir.path());
    assert!(segs.len() >= 4, "several segments: {}", segs.len());
    let before: Vec<Vec<u8>> = segs.iter().map(|p| fs::read(p).unwrap()).collect();
    let mut checked = 0;
    // Every byte of the first two segments (the first one starts the chain).
    for s in [0, 1] {
        let seg = &segs[s];
        let orig = &before[s];
        let parts = parts(orig);
        assert!(
            matches!(parts.last(), Some(Part::Footer { .. })),
            "segment {s} is sealed"
        );
        for off in 0..orig.len() {
            let bit = (off % 8) as u32;
            let ctx = format!("{} byte {off} bit {bit}", seg.display());
            flip(seg, off, bit);
            let c = corruption(Log::open(dir.path(), small()), &ctx);
            assert_inside(&c, seg, part_at(&parts, off), &ctx);
            // Readers see the same damage (a sample: the read-only path shares the scan).
            if off % 7 == 0 {
                let r = corruption(Log::open_read_only(dir.path(), small()), &ctx);
                assert_eq!(r, c, "{ctx}: read-only open");
            }
            flip(seg, off, bit);
            checked += 1;
        }
    }
    eprintln!("{checked} flipped bits in sealed segments checked");
    let after: Vec<Vec<u8>> = segs.iter().map(|p| fs::read(p).unwrap()).collect();
    assert!(before == after, "a failed open changed a segment");
    assert_eq!(seg_files(dir.path()), segs);
    let log = Log::open(dir.path(), small()).unwrap();
    assert_eq!(read_all(&log).unwrap().len(), 300);
}

#[test]
fn flipped_bit_in_the_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let batch_ends = build(dir.path(), 300, 0);
    let segs = seg_files(dir.path());
    let seg = segs.last().unwrap();
    let orig = fs::read(seg).unwrap();
    let parts = parts(&orig);
    let frames: Vec<Part> = parts
        .iter()
        .copied()
        .filter(|p| matches!(p, Part::Frame { .. }))
        .collect();
    assert!(
        frames.len() >= 6,
        "the active segment holds records: {}",
        frames.len()
    );
    // The last batch starts after the last batch end before LSN 300.
    let prev_end = batch_ends[batch_ends.len() - 2];
    let last_batch_start = frames
        .iter()
        .find_map(|p| match *p {
            Part::Frame { start, lsn, .. } if lsn == prev_end + 1 => Some(start),
            _ => None,
        })
        .unwrap();
    let Some(&Part::Frame {
        start: last_frame_start,
        ..
    }) = frames.last()
    else {
        unreachable!()
    };
    assert!(
        last_frame_start > last_batch_start,
        "the log ends with a multi-record batch"
    );
    let (mut damaged, mut torn) = (0, 0);
    let Some(&Part::Zeros { start: data_end }) = parts.last() else {
        unreachable!()
    };
    // Every byte of header and frames, and the first pre-written zeros after them.
    for off in 0..data_end + 40 {
        let bit = (off % 8) as u32;
        let ctx = format!("active {} byte {off} bit {bit}", seg.display());
        let part = part_at(&parts, off);
        flip(seg, off, bit);
        match part {
            // A damaged header is never a torn tail.
            Part::Header => {
                let c = corruption(Log::open(dir.path(), small()), &ctx);
                assert_inside(&c, seg, part, &ctx);
                assert!(matches!(c.kind, CorruptionKind::Format(_)), "{ctx}: {c}");
            }
            // Damage with a valid record after it (one of the same batch included):
            // corruption, not a tail to cut.
            Part::Frame { start, .. } if start < last_frame_start => {
                let c = corruption(Log::open(dir.path(), small()), &ctx);
                assert_inside(&c, seg, part, &ctx);
                assert!(
                    matches!(c.kind, CorruptionKind::DamageBeforeValidRecord { .. }),
                    "{ctx}: {c}"
                );
                damaged += 1;
            }
            // Damage in the last record: a torn tail that takes its whole batch (checked
            // read-only, which cuts nothing).
            Part::Frame { .. } => {
                let log = Log::open_read_only(dir.path(), small())
                    .unwrap_or_else(|e| panic!("{ctx}: {e}"));
                let t = log
                    .recovery_report()
                    .torn_tail
                    .clone()
                    .unwrap_or_else(|| panic!("{ctx}: no torn tail"));
                assert_eq!((&t.file, t.offset), (seg, last_batch_start as u64), "{ctx}");
                assert_eq!(log.durable_lsn(), Lsn(prev_end), "{ctx}");
                assert_eq!(read_all(&log).unwrap().len() as u64, prev_end, "{ctx}");
                torn += 1;
            }
            // A stray bit in the pre-written zeros: a tail up to it, no record lost.
            Part::Zeros { .. } => {
                let log = Log::open_read_only(dir.path(), small())
                    .unwrap_or_else(|e| panic!("{ctx}: {e}"));
                let t = log
                    .recovery_report()
                    .torn_tail
                    .clone()
                    .unwrap_or_else(|| panic!("{ctx}: no torn tail"));
                assert_eq!(
                    (t.offset, t.bytes),
                    (data_end as u64, (off + 1 - data_end) as u64),
                    "{ctx}"
                );
                assert_eq!(read_all(&log).unwrap().len(), 300, "{ctx}");
            }
            Part::Footer { .. } => unreachable!("the active segment has no footer"),
        }
        flip(seg, off, bit);
    }
    eprintln!("active segment: {damaged} flips before valid records, {torn} flips in the tail");
    assert!(damaged > 100 && torn > 20);
    assert_eq!(
        fs::read(seg).unwrap(),
        orig,
        "a failed open changed the segment"
    );
    assert!(fs::read_dir(dir.path()).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_str()
        .unwrap()
        .contains(".torn-")));
}

#[test]
fn missing_middle_segment() {
    let base = tempfile::tempdir().unwrap();
    build(base.path(), 300, 0);
    let segs = seg_files(base.path());
    assert!(segs.len() >= 4);
    for missing in 1..segs.len() - 1 {
        let w = tempfile::tempdir().unwrap();
        for p in segs
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != missing)
            .map(|(_, p)| p)
        {
            fs::copy(p, w.path().join(p.file_name().unwrap())).unwrap();
        }
        let next = w.path().join(segs[missing + 1].file_name().unwrap());
        for r in [
            Log::open(w.path(), small()),
            Log::open_read_only(w.path(), small()),
        ] {
            let c = corruption(r, &format!("segment {} missing", missing + 1));
            assert_eq!(
                c.kind,
                CorruptionKind::MissingSegment {
                    expected: SegmentId(missing as u64 + 1)
                }
            );
            assert_eq!((&c.file, c.offset), (&next, 0));
        }
    }
}

#[test]
fn segment_from_another_log_breaks_the_chain() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    build(a.path(), 300, 0);
    build(b.path(), 300, 0x5a);
    let segs_a = seg_files(a.path());
    let segs_b = seg_files(b.path());
    let names = |v: &[PathBuf]| {
        v.iter()
            .map(|p| p.file_name().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&segs_a), names(&segs_b), "same layout, same names");
    for i in 0..segs_a.len() {
        let w = tempfile::tempdir().unwrap();
        for (j, p) in segs_a.iter().enumerate() {
            let from = if i == j { &segs_b[j] } else { p };
            fs::copy(from, w.path().join(p.file_name().unwrap())).unwrap();
        }
        // The first segment chains to nothing: the break shows in the segment after it.
        let named = w
            .path()
            .join(segs_a[if i == 0 { 1 } else { i }].file_name().unwrap());
        for r in [
            Log::open(w.path(), small()),
            Log::open_read_only(w.path(), small()),
        ] {
            let c = corruption(r, &format!("segment {} from another log", i + 1));
            assert!(matches!(c.kind, CorruptionKind::ChainBroken { .. }), "{c}");
            assert_eq!((&c.file, c.offset), (&named, 32), "{c}");
        }
    }
}

#[test]
fn bad_magic_or_unknown_version_in_a_header() {
    let base = tempfile::tempdir().unwrap();
    build(base.path(), 300, 0);
    let segs = seg_files(base.path());
    for i in [0, 1, segs.len() - 1] {
        for damage in ["magic", "version"] {
            let w = tempfile::tempdir().unwrap();
            for p in &segs {
                fs::copy(p, w.path().join(p.file_name().unwrap())).unwrap();
            }
            let seg = w.path().join(segs[i].file_name().unwrap());
            let mut h = [0u8; SEGMENT_HEADER_BYTES];
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&seg)
                .unwrap();
            f.read_exact_at(&mut h, 0).unwrap();
            let expected = if damage == "magic" {
                h[0..8].copy_from_slice(b"NOTALOG\0");
                CorruptionKind::Format(mdslog::log::format::FormatFault::BadMagic {
                    found: *b"NOTALOG\0",
                })
            } else {
                // A well-formed header of a future version: its checksum is right.
                let future = mdslog::log::format::FORMAT_VERSION + 1;
                h[8..12].copy_from_slice(&future.to_le_bytes());
                let crc = crc32fast::hash(&h[0..68]);
                h[68..72].copy_from_slice(&crc.to_le_bytes());
                CorruptionKind::Format(mdslog::log::format::FormatFault::UnsupportedVersion {
                    found: mdslog::log::format::FORMAT_VERSION + 1,
                })
            };
            f.write_all_at(&h, 0).unwrap();
            for r in [
                Log::open(w.path(), small()),
                Log::open_read_only(w.path(), small()),
            ] {
                let c = corruption(r, &format!("{damage} of segment {}", i + 1));
                assert_eq!((&c.file, c.offset, &c.kind), (&seg, 0, &expected), "{c}");
            }
        }
    }
}

/// Iterates the whole log and from `from`, turning a panic into a test failure with `ctx`.
fn iter_errors(log: &Log, from: Lsn, ctx: &str) -> Vec<Error> {
    let r = catch_unwind(AssertUnwindSafe(|| {
        [Lsn(1), from]
            .into_iter()
            .filter_map(|f| log.iter_from(f).collect::<Result<Vec<_>, _>>().err())
            .collect::<Vec<_>>()
    }));
    r.unwrap_or_else(|_| panic!("{ctx}: the reader panicked"))
}

#[test]
fn damage_after_open_is_corruption_for_readers() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 300, 0);
    let segs = seg_files(dir.path());
    let log = Log::open_read_only(dir.path(), small()).unwrap();
    let all = read_all(&log).unwrap();
    assert_eq!(all.len(), 300);
    let mut checked = 0;
    for s in [1, segs.len() - 1] {
        let seg = &segs[s];
        let orig = fs::read(seg).unwrap();
        let parts = parts(&orig);
        // Flips past the durable end of the active segment are never read.
        let end = match parts.last().unwrap() {
            Part::Zeros { start } => *start,
            _ => orig.len(),
        };
        let first_lsn = u64_at(&orig, 24);
        for off in 0..end {
            let bit = (off % 8) as u32;
            let ctx = format!("{} byte {off} bit {bit} after open", seg.display());
            flip(seg, off, bit);
            let errs = iter_errors(&log, Lsn(first_lsn + 1), &ctx);
            assert_eq!(errs.len(), 2, "{ctx}: damage not reported");
            for e in errs {
                match e {
                    Error::Corruption(c) => assert_inside(&c, seg, part_at(&parts, off), &ctx),
                    e => panic!("{ctx}: {e}"),
                }
            }
            flip(seg, off, bit);
            checked += 1;
        }
        // A sealed segment cut short after open.
        if s == 1 {
            for len in [
                0,
                10,
                SEGMENT_HEADER_BYTES as u64,
                200,
                orig.len() as u64 - 1,
            ] {
                let ctx = format!("{} cut to {len} bytes after open", seg.display());
                OpenOptions::new()
                    .write(true)
                    .open(seg)
                    .unwrap()
                    .set_len(len)
                    .unwrap();
                let errs = iter_errors(&log, Lsn(first_lsn), &ctx);
                assert_eq!(errs.len(), 2, "{ctx}: damage not reported");
                for e in errs {
                    match e {
                        Error::Corruption(c) => assert_eq!(c.file, *seg, "{ctx}: {c}"),
                        e => panic!("{ctx}: {e}"),
                    }
                }
                fs::write(seg, &orig).unwrap();
            }
        }
        assert_eq!(read_all(&log).unwrap(), all);
    }
    eprintln!("{checked} flips after open checked");
}

/// A record of the active segment zeroed after open: the reader reports it instead of
/// ending early (it used to end quietly there, dropping every durable record after it).
#[test]
fn zeroed_record_in_the_active_segment_after_open() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 300, 0);
    let seg = seg_files(dir.path()).pop().unwrap();
    let orig = fs::read(&seg).unwrap();
    let frames: Vec<(usize, usize, u64)> = parts(&orig)
        .into_iter()
        .filter_map(|p| match p {
            Part::Frame { start, end, lsn } => Some((start, end, lsn)),
            _ => None,
        })
        .collect();
    assert!(frames.len() >= 4);
    let writer = Log::open(dir.path(), small()).unwrap();
    let reader = Log::open_read_only(dir.path(), small()).unwrap();
    let f = OpenOptions::new().write(true).open(&seg).unwrap();
    let middle = frames.len() / 2;
    for (k, expected) in [
        (
            middle,
            CorruptionKind::DamageBeforeValidRecord {
                valid_at: frames[middle + 1].0 as u64,
                fault: None,
            },
        ),
        (
            frames.len() - 1,
            CorruptionKind::TornTail {
                bytes: (frames[frames.len() - 1].1 - frames[frames.len() - 1].0) as u64,
            },
        ),
    ] {
        let (start, end, lsn) = frames[k];
        f.write_all_at(&vec![0u8; end - start], start as u64)
            .unwrap();
        for log in [&writer, &reader] {
            let e =
                read_all(log).expect_err("a zeroed durable record must not end the log quietly");
            let c = e.corruption().unwrap_or_else(|| panic!("{e}"));
            assert_eq!(
                (&c.file, c.offset, c.lsn, &c.kind),
                (&seg, start as u64, Some(Lsn(lsn)), &expected),
                "{c}"
            );
        }
        f.write_all_at(&orig[start..end], start as u64).unwrap();
    }
    assert_eq!(read_all(&reader).unwrap().len(), 300);
    assert_eq!(read_all(&writer).unwrap().len(), 300);
}
