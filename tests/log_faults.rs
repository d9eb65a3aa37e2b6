//! Injected storage faults: ENOSPC (short writes) at every byte, EIO on every write, a
//! failed fsync at every sync, EIO on reads. The failing call returns an error, the handle
//! stays poisoned, and after the fault is gone a reopen (with or without a power cut)
//! finds every acknowledged record and takes appends again.

use std::sync::Arc;

use mdslog::error::Error;
use mdslog::log::fs::{CrashMode, Faults, SimStorage, Storage};
use mdslog::log::{Durability, Log, LogOptions, Lsn, Record, RecordKind};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

fn opts() -> LogOptions {
    LogOptions {
        segment_bytes_max: 4096,
        prewrite_bytes: 1024,
        record_bytes_max: 512,
        batch_bytes_max: 2048,
        ..LogOptions::default()
    }
}

/// What was appended (LSN `i + 1` is `records[i]`) and acknowledged durable.
#[derive(Default, Clone)]
struct Model {
    records: Vec<Record>,
    batch_ends: Vec<u64>,
    acked: u64,
}

impl Model {
    fn push(&mut self, batch: &[Record]) -> Lsn {
        let first = Lsn(self.records.len() as u64 + 1);
        self.records.extend(batch.iter().cloned());
        self.batch_ends.push(self.records.len() as u64);
        first
    }
}

/// What happens between the failure and the reopen.
#[derive(Debug, Clone, Copy)]
enum After {
    /// The process drops the poisoned handle; the disk keeps everything written.
    Drop,
    /// The power goes off.
    Crash(CrashMode),
}

fn after_for(i: u64) -> After {
    match i % 3 {
        0 => After::Drop,
        1 => After::Crash(CrashMode::DropUnsynced),
        _ => After::Crash(CrashMode::Torn { seed: i }),
    }
}

fn is_poisoned<T: std::fmt::Debug>(r: Result<T, Error>) -> bool {
    matches!(r, Err(Error::Poisoned { .. }))
}

/// Every call that would write fails with `Error::Poisoned`, and nothing more is visible.
fn assert_poisoned(log: &Log, model: &Model, ctx: &str) {
    assert!(
        is_poisoned(log.append(RecordKind(1), b"later")),
        "{ctx}: append after the failure"
    );
    let batch = vec![
        Record::new(RecordKind(1), b"a".to_vec()),
        Record::new(RecordKind(1), b"b".to_vec()),
    ];
    assert!(
        is_poisoned(log.append_batch(batch)),
        "{ctx}: append_batch after the failure"
    );
    assert!(
        is_poisoned(log.submit(
            vec![Record::new(RecordKind(1), b"c".to_vec())],
            Durability::Buffered
        )),
        "{ctx}: submit after the failure"
    );
    assert!(is_poisoned(log.flush()), "{ctx}: flush after the failure");
    // Readers see exactly the acknowledged records: nothing of the failed call.
    assert_eq!(log.durable_lsn().0, model.acked, "{ctx}");
    let seen: Vec<_> = log
        .iter_from(Lsn(1))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{ctx}: {e}"));
    assert_eq!(seen.len() as u64, model.acked, "{ctx}");
}

/// Reopens and checks the log against the model; then appends and checks those appends
/// survive a power cut. Returns the recovered last LSN.
fn check_reopen(sim: &SimStorage, model: &Model, clean_cut: bool, ctx: &str) -> u64 {
    let log = Log::open_with(Arc::new(sim.clone()), opts())
        .unwrap_or_else(|e| panic!("{ctx}: reopen: {e}"));
    let last = log.durable_lsn().0;
    assert!(
        last >= model.acked,
        "{ctx}: acknowledged LSN {} lost (recovered up to {last})",
        model.acked
    );
    assert!(
        last <= model.records.len() as u64,
        "{ctx}: recovered {last}, appended {}",
        model.records.len()
    );
    assert!(
        last == 0 || model.batch_ends.contains(&last),
        "{ctx}: recovered LSN {last} ends inside a batch"
    );
    let got: Vec<_> = log
        .iter_from(Lsn(1))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{ctx}: {e}"));
    assert_eq!(got.len() as u64, last, "{ctx}: not a dense prefix");
    for (i, r) in got.iter().enumerate() {
        let want = &model.records[i];
        assert_eq!(r.lsn, Lsn(i as u64 + 1), "{ctx}");
        assert_eq!(
            (r.kind, &r.payload),
            (want.kind, &want.payload),
            "{ctx}: record {} differs",
            i + 1
        );
    }
    let report = log.recovery_report().clone();
    assert_eq!(
        (report.last_lsn, report.records),
        (Lsn(last), last),
        "{ctx}: {report:?}"
    );
    if clean_cut {
        assert!(
            report.torn_tail.is_none(),
            "{ctx}: only synced bytes survive, yet a tail was cut: {report:?}"
        );
        assert!(report.removed_temp_files.is_empty(), "{ctx}: {report:?}");
    }
    for tmp in &report.removed_temp_files {
        assert!(
            tmp.ends_with(".seg.tmp") && sim.file_bytes(tmp).is_none(),
            "{ctx}: {report:?}"
        );
    }
    if let Some(torn) = &report.torn_tail {
        assert_eq!(
            torn.segment,
            log.segments().last().unwrap().id,
            "{ctx}: {report:?}"
        );
        let side = torn
            .saved_to
            .as_ref()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            sim.file_bytes(&side).is_some_and(|b| !b.is_empty()),
            "{ctx}: cut bytes not kept"
        );
    }
    let range = log
        .append_batch(vec![
            Record::new(RecordKind(7), b"again".to_vec()),
            Record::new(RecordKind(7), vec![5; 200]),
        ])
        .unwrap_or_else(|e| panic!("{ctx}: append after reopen: {e}"));
    assert_eq!(
        (range.first, range.last),
        (Lsn(last + 1), Lsn(last + 2)),
        "{ctx}"
    );
    sim.crash(CrashMode::DropUnsynced);
    drop(log);
    let log =
        Log::open_with(Arc::new(sim.clone()), opts()).unwrap_or_else(|e| panic!("{ctx}: {e}"));
    assert_eq!(
        log.durable_lsn().0,
        last + 2,
        "{ctx}: appends after recovery were lost"
    );
    let tail: Vec<_> = log
        .iter_from(Lsn(last + 1))
        .map(|r| r.unwrap().payload)
        .collect();
    assert_eq!(tail, vec![b"again".to_vec(), vec![5; 200]], "{ctx}");
    last
}

/// The workload: records already durable before the fault is armed, then durable appends
/// and batches that cross segment rotations.
struct Workload {
    prefill: Vec<Record>,
    ops: Vec<Vec<Record>>,
}

fn workload() -> Workload {
    let mut rng = SmallRng::seed_from_u64(7);
    let mut rec = |len: usize| {
        let payload: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        Record::new(RecordKind(1 + (len % 5) as u16), payload)
    };
    // 25 frames of 128 bytes leave the first segment close to full.
    let prefill = (0..25).map(|_| rec(100)).collect();
    let sizes: &[&[usize]] = &[
        &[100],
        &[60, 60, 60],
        &[300],
        &[0],
        &[200, 10],
        &[500],
        &[100, 100, 100, 100],
        &[250],
        &[40],
        &[480, 480],
        &[512, 400, 300],
        &[200, 200],
        &[450],
        &[100],
        &[480, 480, 480],
    ];
    let ops = sizes
        .iter()
        .map(|b| b.iter().map(|&n| rec(n)).collect())
        .collect();
    Workload { prefill, ops }
}

/// Appends the prefill buffered and flushes it.
fn prefill(log: &Log, w: &Workload, model: &mut Model) {
    for r in &w.prefill {
        model.push(std::slice::from_ref(r));
        let t = log.submit(vec![r.clone()], Durability::Buffered).unwrap();
        log.wait(t).unwrap();
    }
    model.acked = log.flush().unwrap().0;
    assert_eq!(model.acked, w.prefill.len() as u64);
}

/// One run of the workload with `faults` armed after the prefill. Returns the index of
/// the failing operation and its error message, if one failed.
fn run_case(w: &Workload, faults: Faults, after: After, ctx: &str) -> Option<(usize, String)> {
    let sim = SimStorage::new();
    let log = Log::open_with(Arc::new(sim.clone()), opts()).unwrap();
    let mut model = Model::default();
    prefill(&log, w, &mut model);

    sim.set_faults(faults);
    let mut failure = None;
    for (i, batch) in w.ops.iter().enumerate() {
        let first = model.push(batch);
        let r = if batch.len() == 1 {
            log.append(batch[0].kind, &batch[0].payload).map(|l| (l, l))
        } else {
            log.append_batch(batch.clone()).map(|r| (r.first, r.last))
        };
        match r {
            Ok((a, b)) => {
                assert_eq!(
                    (a, b),
                    (first, Lsn(first.0 + batch.len() as u64 - 1)),
                    "{ctx} op {i}"
                );
                model.acked = b.0;
            }
            Err(Error::Poisoned { reason }) => {
                failure = Some((i, reason));
                break;
            }
            Err(e) => panic!("{ctx} op {i}: expected Error::Poisoned, got {e:?}"),
        }
    }
    if failure.is_some() {
        assert_poisoned(&log, &model, ctx);
        // A healthy disk again does not revive the handle: nothing is retried.
        sim.clear_faults();
        assert_poisoned(&log, &model, &format!("{ctx} (faults cleared)"));
    }
    sim.clear_faults();
    match after {
        After::Drop => drop(log),
        After::Crash(mode) => {
            sim.crash(mode);
            drop(log);
        }
    }
    check_reopen(
        &sim,
        &model,
        matches!(after, After::Crash(CrashMode::DropUnsynced)),
        ctx,
    );
    failure
}

/// Sweeps `n` upward from 0 with `faults(n)` until a run has no failure, running each
/// `n` with every way of going on after the failure (`all_afters`) or with one of them in
/// turn. Checks that the failing operation moves forward (never back) as the fault moves
/// later, and returns the failure messages (one per `n`).
fn sweep(
    w: &Workload,
    what: &str,
    faults: impl Fn(u64) -> Faults,
    all_afters: bool,
    limit: u64,
) -> Vec<String> {
    let mut reasons = Vec::new();
    let mut last_op = 0;
    for n in 0..limit {
        let afters: Vec<u64> = if all_afters {
            (0..3).map(|i| n * 3 + i).collect()
        } else {
            vec![n]
        };
        let mut outcome = Vec::new();
        for a in afters {
            let after = after_for(a);
            outcome.push(run_case(
                w,
                faults(n),
                after,
                &format!("{what} {n}, then {after:?}"),
            ));
        }
        assert!(
            outcome.windows(2).all(|p| p[0] == p[1]),
            "{what} {n}: runs differ before the reopen: {outcome:?}"
        );
        match outcome.pop().unwrap() {
            Some((op, reason)) => {
                assert!(
                    op >= last_op,
                    "{what} {n}: failed at op {op}, an earlier fault failed op {last_op}"
                );
                last_op = op;
                reasons.push(reason);
            }
            None => return reasons,
        }
    }
    panic!("{what}: still failing at {limit}");
}

fn count(reasons: &[String], needle: &str) -> usize {
    reasons.iter().filter(|r| r.contains(needle)).count()
}

/// Bytes the workload writes after the prefill, and segments it adds.
fn measure(w: &Workload) -> (u64, usize) {
    let sim = SimStorage::new();
    let log = Log::open_with(Arc::new(sim.clone()), opts()).unwrap();
    prefill(&log, w, &mut Model::default());
    let (b0, s0) = (sim.bytes_written(), log.segments().len());
    for batch in &w.ops {
        log.append_batch(batch.clone()).unwrap();
    }
    (sim.bytes_written() - b0, log.segments().len() - s0)
}

#[test]
fn enospc_at_every_byte_of_appends_and_rotations() {
    let w = workload();
    let (bytes, rotations) = measure(&w);
    assert!(
        rotations >= 2,
        "the workload must rotate segments ({rotations})"
    );
    let reasons = sweep(
        &w,
        "ENOSPC after bytes",
        |n| Faults {
            write_bytes_left: Some(n),
            ..Faults::default()
        },
        false,
        20_000,
    );
    // Exactly the runs with less space than the workload needs fail.
    assert_eq!(
        reasons.len() as u64,
        bytes,
        "the first run without a failure had all the space it needed"
    );
    assert_eq!(
        count(&reasons, "os error 28"),
        reasons.len(),
        "{:?}",
        reasons.first()
    );
    // The sweep hit frames, pre-written zeros, footers, and new segments' headers and zeros.
    assert!(
        count(&reasons, "write footer") > 0,
        "no failure while sealing"
    );
    assert!(
        count(&reasons, ".seg.tmp") > 0,
        "no failure while creating a segment"
    );
    assert!(count(&reasons, "I/O error: write sim:/") > reasons.len() / 2);
    eprintln!(
        "ENOSPC: {} positions over {bytes} bytes and {rotations} rotations",
        reasons.len()
    );
}

#[test]
fn eio_on_every_write() {
    let w = workload();
    let reasons = sweep(
        &w,
        "EIO on write",
        |n| Faults {
            write_error_in: Some(n),
            ..Faults::default()
        },
        true,
        1000,
    );
    assert!(
        reasons.len() > w.ops.len(),
        "every append writes at least once"
    );
    assert_eq!(
        count(&reasons, "simulated I/O error (write)"),
        reasons.len(),
        "{:?}",
        reasons.first()
    );
    assert!(count(&reasons, "write footer") > 0 && count(&reasons, ".seg.tmp") > 0);
    eprintln!("EIO on write: {} writes", reasons.len());
}

#[test]
fn failed_fsync_at_every_sync_poisons() {
    let w = workload();
    let reasons = sweep(
        &w,
        "failed sync",
        |n| Faults {
            sync_error_in: Some(n),
            ..Faults::default()
        },
        true,
        1000,
    );
    assert!(reasons.len() > w.ops.len(), "every durable append syncs");
    assert_eq!(count(&reasons, "simulated I/O error"), reasons.len());
    // Syncs of the active segment, of a new segment before its rename, and of the directory.
    assert!(count(&reasons, "I/O error: fsync sim:/") > 0);
    assert!(count(&reasons, ".seg.tmp: simulated I/O error (fsync)") > 0);
    assert!(count(&reasons, "sync directory") > 0);
    eprintln!("failed fsync: {} syncs", reasons.len());
}

/// The open itself creates the first segment: ENOSPC, EIO or a failed sync there fail the
/// open with `Error::Io`, release the lock, and a later open cleans up and works.
#[test]
fn faults_while_creating_the_first_segment_fail_the_open() {
    let open_bytes = {
        let sim = SimStorage::new();
        drop(Log::open_with(Arc::new(sim.clone()), opts()).unwrap());
        sim.bytes_written()
    };
    let mut cases: Vec<(String, Faults, Option<i32>)> = Vec::new();
    for n in 0..open_bytes {
        cases.push((
            format!("ENOSPC after {n}"),
            Faults {
                write_bytes_left: Some(n),
                ..Faults::default()
            },
            Some(28),
        ));
    }
    // Two writes (header, zeros) and two syncs (the new file, the directory).
    for n in 0..2 {
        cases.push((
            format!("EIO on write {n}"),
            Faults {
                write_error_in: Some(n),
                ..Faults::default()
            },
            None,
        ));
        cases.push((
            format!("failed sync {n}"),
            Faults {
                sync_error_in: Some(n),
                ..Faults::default()
            },
            None,
        ));
    }
    for (i, (ctx, faults, errno)) in cases.into_iter().enumerate() {
        let sim = SimStorage::new();
        sim.set_faults(faults);
        match Log::open_with(Arc::new(sim.clone()), opts()) {
            Err(Error::Io { source, .. }) => {
                if errno.is_some() {
                    assert_eq!(source.raw_os_error(), errno, "{ctx}");
                }
            }
            other => panic!("{ctx}: expected Error::Io, got {other:?}"),
        }
        sim.clear_faults();
        if let After::Crash(mode) = after_for(i as u64) {
            sim.crash(mode);
        }
        // The failed open let go of the lock; nothing was acknowledged.
        check_reopen(&sim, &Model::default(), false, &ctx);
    }
}

/// Reopening an existing log syncs what it recovered (the last segment, the directory);
/// a failure there fails the open with `Error::Io`, and the next open works.
#[test]
fn failed_sync_while_reopening_fails_the_open() {
    for n in 0..2u64 {
        let (sim, model) = log_with_torn_tail();
        // Cut the tail first, so the reopen below syncs only what it recovered.
        drop(Log::open_with(Arc::new(sim.clone()), opts()).unwrap());
        sim.set_faults(Faults {
            sync_error_in: Some(n),
            ..Faults::default()
        });
        match Log::open_with(Arc::new(sim.clone()), opts()) {
            Err(Error::Io { op, .. }) => assert_eq!(op, ["fsync", "sync directory"][n as usize]),
            other => panic!("sync {n}: expected Error::Io, got {other:?}"),
        }
        sim.clear_faults();
        check_reopen(&sim, &model, true, &format!("sync {n}"));
    }
}

fn segment_names(sim: &SimStorage) -> Vec<String> {
    sim.list()
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with(".seg"))
        .collect()
}

/// A log of several segments whose active segment ends in a torn record.
fn log_with_torn_tail() -> (SimStorage, Model) {
    let sim = SimStorage::new();
    let mut model = Model::default();
    let log = Log::open_with(Arc::new(sim.clone()), opts()).unwrap();
    for i in 0..70u64 {
        let r = Record::new(RecordKind(2), vec![i as u8; 150]);
        model.push(std::slice::from_ref(&r));
        log.append(r.kind, &r.payload).unwrap();
    }
    model.acked = 70;
    drop(log);
    assert!(segment_names(&sim).len() >= 3);
    let active = segment_names(&sim).pop().unwrap();
    let seg = log_segment_end(&sim, &active);
    let mut bytes = sim.file_bytes(&active).unwrap();
    // Half a frame header after the last record: what a torn write leaves.
    bytes[seg..seg + 12].copy_from_slice(&[0xab; 12]);
    sim.put_file(&active, bytes);
    (sim, model)
}

/// Offset of the end of the last record in a segment (its first all-zero frame slot).
fn log_segment_end(sim: &SimStorage, name: &str) -> usize {
    let bytes = sim.file_bytes(name).unwrap();
    let mut at = mdslog::log::format::SEGMENT_HEADER_BYTES;
    loop {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        if bytes[at..at + 24].iter().all(|&b| b == 0) {
            return at;
        }
        at += mdslog::log::format::frame_bytes(len as usize);
    }
}

/// EIO on any read while opening is `Error::Io`, never corruption; it changes no file,
/// and the next open (writer or reader) works.
#[test]
fn eio_on_read_during_open_is_an_io_error() {
    let (sim, model) = log_with_torn_tail();
    let before: Vec<_> = sim
        .list()
        .unwrap()
        .into_iter()
        .map(|n| (sim.file_bytes(&n), n))
        .collect();
    // One whole-file read per segment, and one more to save the torn bytes aside.
    let reads = segment_names(&sim).len() as u64 + 1;
    for n in 0..reads {
        for writable in [true, false] {
            let ctx = format!("read {n} fails, writable {writable}");
            sim.set_faults(Faults {
                read_error_in: Some(n),
                ..Faults::default()
            });
            let r = if writable {
                Log::open_with(Arc::new(sim.clone()), opts())
            } else {
                Log::open_read_only_with(Arc::new(sim.clone()), opts())
            };
            match r {
                Err(Error::Io { op: "read", .. }) => {}
                // A read-only open does not read the torn bytes to save them.
                Ok(log) if !writable && n + 1 == reads => {
                    assert_eq!(log.durable_lsn().0, model.acked)
                }
                other => panic!("{ctx}: expected Error::Io, got {other:?}"),
            }
            sim.clear_faults();
            let after: Vec<_> = sim
                .list()
                .unwrap()
                .into_iter()
                .map(|n| (sim.file_bytes(&n), n))
                .collect();
            assert!(before == after, "{ctx}: a failed open changed the files");
        }
    }
    sim.set_faults(Faults {
        read_error_in: Some(reads),
        ..Faults::default()
    });
    let log = Log::open_with(Arc::new(sim.clone()), opts()).unwrap();
    assert!(log.recovery_report().torn_tail.is_some());
    drop(log);
    sim.clear_faults();
    check_reopen(&sim, &model, true, "after the read faults");
}

/// ENOSPC while saving a torn tail aside fails the open without cutting anything.
#[test]
fn enospc_while_cutting_a_torn_tail_fails_the_open() {
    for n in 0..12u64 {
        let (sim, model) = log_with_torn_tail();
        let active = segment_names(&sim).pop().unwrap();
        let torn = sim.file_bytes(&active).unwrap();
        sim.set_faults(Faults {
            write_bytes_left: Some(n),
            ..Faults::default()
        });
        match Log::open_with(Arc::new(sim.clone()), opts()) {
            Err(Error::Io { source, .. }) => {
                assert_eq!(source.raw_os_error(), Some(28), "left {n}")
            }
            other => panic!("left {n}: expected Error::Io, got {other:?}"),
        }
        assert_eq!(
            sim.file_bytes(&active).unwrap(),
            torn,
            "left {n}: the segment was cut before the save"
        );
        sim.clear_faults();
        if n % 2 == 1 {
            sim.crash(CrashMode::DropUnsynced);
        }
        let log = Log::open_with(Arc::new(sim.clone()), opts()).unwrap();
        assert!(log.recovery_report().torn_tail.is_some(), "left {n}");
        drop(log);
        check_reopen(&sim, &model, true, &format!("left {n}"));
    }
}

/// EIO while reading records is `Error::Io` from the iterator, which then ends. Reads do
/// not poison the writer (only failed writes and syncs do): appends go on.
#[test]
fn eio_while_iterating_is_an_io_error_and_does_not_poison() {
    let (sim, mut model) = log_with_torn_tail();
    let log = Log::open_with(Arc::new(sim.clone()), opts()).unwrap();
    let segments = log.segments().len() as u64;
    for n in 0..segments {
        sim.set_faults(Faults {
            read_error_in: Some(n),
            ..Faults::default()
        });
        let mut it = log.iter_from(Lsn(1));
        let mut ok = 0;
        let err = loop {
            match it.next() {
                Some(Ok(_)) => ok += 1,
                Some(Err(e)) => break e,
                None => panic!("read {n}: no error"),
            }
        };
        assert!(
            matches!(err, Error::Io { op: "read", .. }),
            "read {n}: {err:?}"
        );
        assert!(
            it.next().is_none(),
            "read {n}: the iterator goes on after an error"
        );
        assert!(ok < model.acked, "read {n}");
        sim.clear_faults();
        let r = Record::new(RecordKind(3), vec![n as u8; 10]);
        let first = model.push(std::slice::from_ref(&r));
        assert_eq!(
            log.append(r.kind, &r.payload).unwrap(),
            first,
            "read {n}: a read error poisoned the writer"
        );
        model.acked = first.0;
    }
    drop(log);
    check_reopen(&sim, &model, true, "after read errors");
}
