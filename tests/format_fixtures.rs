//! Decode fixtures of format version 1, committed under `tests/fixtures/v1-*`: a clean log
//! (two sealed segments and an active one), the same log with one flipped bit in a sealed
//! segment, and with a torn tail. They pin the bytes: a change to the format that is not a
//! new version makes these tests fail. Regenerate (only with a version bump) with
//! `cargo test --test format_fixtures -- --ignored regenerate`.

use std::path::{Path, PathBuf};

use mdslog::log::{Log, LogOptions, Lsn, Record, RecordKind};
use mdslog::{CorruptionKind, Error};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn options() -> LogOptions {
    LogOptions {
        segment_bytes_max: 1024,
        prewrite_bytes: 256,
        record_bytes_max: 200,
        batch_bytes_max: 512,
        ..Default::default()
    }
}

/// The records of the clean fixture: 30 records, some in batches of 3.
fn expected() -> Vec<(Lsn, RecordKind, Vec<u8>)> {
    (1..=30u64)
        .map(|i| {
            (
                Lsn(i),
                RecordKind((i % 4 + 1) as u16),
                format!("record {i} {}", "x".repeat((i * 7 % 40 + 30) as usize)).into_bytes(),
            )
        })
        .collect()
}

fn copy_dir(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.path().join(e.file_name())).unwrap();
    }
    to
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    v.sort();
    v
}

#[test]
#[ignore = "rewrites the committed fixtures"]
fn regenerate() {
    for name in ["v1-clean", "v1-bitflip", "v1-torn"] {
        let _ = std::fs::remove_dir_all(fixture(name));
    }
    let clean = fixture("v1-clean");
    {
        let log = Log::open(&clean, options()).unwrap();
        let recs = expected();
        let mut i = 0;
        while i < recs.len() {
            let n = if i % 5 == 0 { 3 } else { 1 };
            let batch = recs[i..(i + n).min(recs.len())]
                .iter()
                .map(|(_, k, p)| Record::new(*k, p.clone()))
                .collect();
            log.append_batch(batch).unwrap();
            i += n;
        }
        log.close().unwrap();
    }
    std::fs::remove_file(clean.join("LOCK")).unwrap();
    assert!(segments(&clean).len() >= 3);
    for (name, edit) in [("v1-bitflip", 0usize), ("v1-torn", 1)] {
        let dir = fixture(name);
        std::fs::create_dir_all(&dir).unwrap();
        for s in segments(&clean) {
            std::fs::copy(&s, dir.join(s.file_name().unwrap())).unwrap();
        }
        let segs = segments(&dir);
        if edit == 0 {
            let mut b = std::fs::read(&segs[0]).unwrap();
            b[100] ^= 0x04; // inside the first record of segment 1
            std::fs::write(&segs[0], b).unwrap();
        } else {
            let last = segs.last().unwrap();
            let mut b = std::fs::read(last).unwrap();
            let end = b.iter().rposition(|&x| x != 0).unwrap() + 1;
            let at = (end + 7) & !7;
            b[at..at + 5].copy_from_slice(b"\x10torn");
            std::fs::write(last, b).unwrap();
        }
    }
}

fn read_all(log: &Log) -> Vec<(Lsn, RecordKind, Vec<u8>)> {
    log.iter_from(Lsn(1))
        .map(|r| r.map(|r| (r.lsn, r.kind, r.payload)))
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn v1_clean_decodes_to_the_known_records() {
    let dir = fixture("v1-clean");
    let ro = Log::open_read_only(&dir, options()).unwrap();
    assert_eq!(read_all(&ro), expected());
    assert_eq!(ro.segments().len(), segments(&dir).len());
    assert!(ro
        .segments()
        .iter()
        .rev()
        .skip(1)
        .all(|s| s.sealed && s.digest.is_some()));
    let copy = copy_dir(&dir);
    let log = Log::open(copy.path(), options()).unwrap();
    assert!(log.recovery_report().torn_tail.is_none());
    assert_eq!(read_all(&log), expected());
}

#[test]
fn v1_bitflip_is_corruption_in_the_first_record_of_segment_one() {
    let err = Log::open_read_only(fixture("v1-bitflip"), options()).unwrap_err();
    let c = err
        .corruption()
        .unwrap_or_else(|| panic!("not corruption: {err}"));
    assert!(
        c.file.ends_with("0000000000000001-0000000000000001.seg"),
        "{c}"
    );
    assert_eq!(c.offset, 72, "{c}");
    assert_eq!(c.lsn, Some(Lsn(1)));
    assert!(matches!(c.kind, CorruptionKind::Format(_)), "{c}");
}

#[test]
fn v1_torn_tail_is_cut_and_saved() {
    let copy = copy_dir(&fixture("v1-torn"));
    let log = Log::open(copy.path(), options()).unwrap();
    let torn = log
        .recovery_report()
        .torn_tail
        .clone()
        .expect("a torn tail");
    assert_eq!(torn.bytes, 5);
    assert_eq!(std::fs::read(torn.saved_to.unwrap()).unwrap(), b"\x10torn");
    assert_eq!(read_all(&log), expected());
    match Log::open_read_only_with(
        std::sync::Arc::new(mdslog::log::fs::DirStorage::new(fixture("v1-torn"), false).unwrap()),
        LogOptions {
            recovery: mdslog::RecoveryMode::Strict,
            ..options()
        },
    ) {
        Err(Error::Corruption(c)) => assert!(
            matches!(c.kind, CorruptionKind::TornTail { bytes: 5 }),
            "{c}"
        ),
        other => panic!("strict mode must refuse a torn tail: {other:?}"),
    }
}

/// A version-2 writer opening a version-1 log seals the version-1 active segment as it is
/// and appends to a new version-2 segment: a segment never holds record kinds its version
/// does not list. The old records still read, before and after a reopen.
#[test]
fn v1_log_continues_in_a_version_2_segment() {
    let copy = copy_dir(&fixture("v1-clean"));
    let before = segments(copy.path());
    let version = |p: &Path| {
        let b = std::fs::read(p).unwrap();
        u32::from_le_bytes(b[8..12].try_into().unwrap())
    };
    assert!(before.iter().all(|p| version(p) == 1));
    let log = Log::open(copy.path(), options()).unwrap();
    let segs = log.segments();
    assert_eq!(segs.len(), before.len() + 1, "{segs:?}");
    assert!(
        segs[..before.len()].iter().all(|s| s.sealed),
        "the v1 segments are sealed at open: {segs:?}"
    );
    let lsn = log.append(RecordKind(17), b"new").unwrap();
    assert_eq!(lsn, Lsn(31));
    log.close().unwrap();
    let after = segments(copy.path());
    assert_eq!(after.len(), before.len() + 1);
    assert!(after[..before.len()].iter().all(|p| version(p) == 1));
    assert_eq!(version(after.last().unwrap()), 2);
    let log = Log::open_read_only(copy.path(), options()).unwrap();
    let mut want = expected();
    want.push((Lsn(31), RecordKind(17), b"new".to_vec()));
    assert_eq!(read_all(&log), want);
    assert!(log.segments().iter().rev().skip(1).all(|s| s.sealed));
}
