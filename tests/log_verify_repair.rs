//! Offline verify (every finding) and repair (torn tail; salvage of the longest prefix).

use std::path::Path;
use std::sync::Arc;

use mdslog::log::fs::DirStorage;
use mdslog::log::verify::{repair, verify};
use mdslog::log::{Log, LogOptions, Lsn, RecordKind};
use mdslog::{CorruptionKind, Error};

fn options() -> LogOptions {
    LogOptions {
        segment_bytes_max: 2048,
        prewrite_bytes: 512,
        record_bytes_max: 256,
        batch_bytes_max: 1024,
        ..Default::default()
    }
}

fn make(dir: &Path, n: u64) -> Vec<std::path::PathBuf> {
    let log = Log::open(dir, options()).unwrap();
    for i in 1..=n {
        log.append(
            RecordKind(1),
            format!("record number {i:04} with some padding text").as_bytes(),
        )
        .unwrap();
    }
    log.close().unwrap();
    let mut segs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segs.sort();
    segs
}

fn flip(path: &Path, at: usize) {
    let mut b = std::fs::read(path).unwrap();
    b[at] ^= 0x20;
    std::fs::write(path, b).unwrap();
}

#[test]
fn verify_lists_every_damaged_segment_and_repair_salvages_the_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let segs = make(dir.path(), 200);
    assert!(segs.len() >= 5);
    let st = DirStorage::new(dir.path(), false).unwrap();
    let clean = verify(&st).unwrap();
    assert!(clean.is_clean(), "{:?}", clean.findings);
    assert_eq!(clean.records, 200);
    assert_eq!(clean.last_lsn, Lsn(200));

    flip(&segs[1], 200);
    flip(&segs[3], 300);
    let r = verify(&st).unwrap();
    assert_eq!(r.findings.len(), 2, "{:#?}", r.findings);
    assert_eq!(r.findings[0].file, segs[1]);
    assert_eq!(r.findings[1].file, segs[3]);
    assert!(r
        .findings
        .iter()
        .all(|f| matches!(f.kind, CorruptionKind::Format(_))));

    // Without salvage, repair refuses real damage.
    assert!(matches!(repair(&st, false), Err(Error::Corruption(_))));
    let fixed = repair(&st, true).unwrap();
    assert!(!fixed.cut.is_empty());
    let first_lsn_of_seg1 = clean.segments[1].first_lsn;
    let log = Log::open(dir.path(), options()).unwrap();
    assert!(
        log.durable_lsn() >= first_lsn_of_seg1.prev()
            && log.durable_lsn() < clean.segments[2].first_lsn
    );
    assert_eq!(log.iter_from(Lsn(1)).count() as u64, log.durable_lsn().0);
    // The cut bytes were kept.
    assert!(fixed.cut.iter().all(|(_, _, _, saved)| saved.exists()));
    log.append(RecordKind(1), b"after the repair").unwrap();
}

#[test]
fn repair_cuts_a_torn_tail_and_holds_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let segs = make(dir.path(), 30);
    let last = segs.last().unwrap();
    let mut b = std::fs::read(last).unwrap();
    let end = b.iter().rposition(|&x| x != 0).unwrap() + 1;
    let at = (end + 7) & !7;
    b[at..at + 3].copy_from_slice(b"xyz");
    std::fs::write(last, &b).unwrap();
    let st = Arc::new(DirStorage::new(dir.path(), false).unwrap());
    let r = verify(&*st).unwrap();
    assert!(r.is_clean());
    assert_eq!(r.segments.last().unwrap().torn_tail, Some((at as u64, 3)));
    {
        let _writer = Log::open(
            dir.path(),
            LogOptions {
                recovery: mdslog::RecoveryMode::Strict,
                ..options()
            },
        )
        .unwrap_err();
    }
    let w = Log::open_read_only(dir.path(), options()).unwrap();
    let fixed = repair(&*st, false).unwrap();
    drop(w);
    assert_eq!(fixed.cut.len(), 1);
    assert_eq!(std::fs::read(&fixed.cut[0].3).unwrap(), b"xyz");
    let log = Log::open(
        dir.path(),
        LogOptions {
            recovery: mdslog::RecoveryMode::Strict,
            ..options()
        },
    )
    .unwrap();
    assert_eq!(log.durable_lsn(), Lsn(30));
    assert!(
        matches!(repair(&*st, false), Err(Error::Locked { .. })),
        "repair takes the writer lock"
    );
}
