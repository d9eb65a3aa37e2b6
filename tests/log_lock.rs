//! One writer per log: a second writer is refused with `Error::Locked` while the first is
//! open (even poisoned), readers open beside it, and the lock goes with the writer.

use std::sync::Arc;

use mdslog::error::Error;
use mdslog::log::fs::{CrashMode, Faults, SimStorage};
use mdslog::log::{Log, LogOptions, Lsn, RecordKind};

fn opts() -> LogOptions {
    LogOptions {
        segment_bytes_max: 4096,
        prewrite_bytes: 1024,
        record_bytes_max: 512,
        batch_bytes_max: 2048,
        ..LogOptions::default()
    }
}

fn open(sim: &SimStorage) -> mdslog::Result<Log> {
    Log::open_with(Arc::new(sim.clone()), opts())
}

fn assert_locked(r: mdslog::Result<Log>, ctx: &str) {
    match r {
        Err(Error::Locked { path, pid }) => {
            assert_eq!(path, std::path::Path::new("sim:"), "{ctx}");
            assert_eq!(pid, Some(std::process::id()), "{ctx}");
        }
        other => panic!("{ctx}: expected Error::Locked, got {other:?}"),
    }
}

#[test]
fn second_writer_is_locked_out_readers_are_not() {
    let sim = SimStorage::new();
    let first = open(&sim).unwrap();
    for i in 1..=40u64 {
        assert_eq!(
            first.append(RecordKind(1), &[i as u8; 200]).unwrap(),
            Lsn(i)
        );
    }
    assert!(first.segments().len() >= 2);

    assert_locked(open(&sim), "second writer");
    // A refused writer changed nothing: the first goes on appending.
    assert_eq!(first.append(RecordKind(1), b"still mine").unwrap(), Lsn(41));

    // Readers open beside the writer, see its durable records, and cannot append.
    let reader = Log::open_read_only_with(Arc::new(sim.clone()), opts()).unwrap();
    assert!(!reader.is_writable());
    assert_eq!(reader.durable_lsn(), Lsn(41));
    assert_eq!(reader.iter_from(Lsn(1)).count(), 41);
    assert!(matches!(
        reader.append(RecordKind(1), b"x"),
        Err(Error::ReadOnly)
    ));
    assert!(matches!(reader.flush(), Err(Error::ReadOnly)));
    // The reader holds no lock: still exactly one writer.
    assert_locked(open(&sim), "second writer beside a reader");
    assert_eq!(
        first.append(RecordKind(1), b"after the reader").unwrap(),
        Lsn(42)
    );
    assert_eq!(reader.refresh().unwrap(), Lsn(42));

    // Dropping the writer releases the lock; the reader stays usable.
    drop(first);
    let second = open(&sim).unwrap();
    assert_eq!(second.durable_lsn(), Lsn(42));
    assert_eq!(
        second.append(RecordKind(2), b"second writer").unwrap(),
        Lsn(43)
    );
    assert_locked(open(&sim), "third writer");
    assert_eq!(reader.refresh().unwrap(), Lsn(43));
    drop(reader);
    second.close().unwrap();
    assert_eq!(open(&sim).unwrap().durable_lsn(), Lsn(43));
}

#[test]
fn poisoned_writer_keeps_the_lock_until_dropped() {
    let sim = SimStorage::new();
    let first = open(&sim).unwrap();
    first.append(RecordKind(1), b"one").unwrap();
    sim.set_faults(Faults {
        sync_error_in: Some(0),
        ..Faults::default()
    });
    assert!(matches!(
        first.append(RecordKind(1), b"two"),
        Err(Error::Poisoned { .. })
    ));
    sim.clear_faults();
    // Poisoned, but it may still hold unsynced state: nobody else may write.
    assert_locked(open(&sim), "beside a poisoned writer");
    assert!(Log::open_read_only_with(Arc::new(sim.clone()), opts()).is_ok());
    drop(first);
    let log = open(&sim).unwrap();
    assert!(log.durable_lsn() >= Lsn(1));
}

#[test]
fn failed_open_releases_the_lock() {
    let sim = SimStorage::new();
    drop(open(&sim).unwrap());
    // Recovery fails reading the segment: the open fails and must not keep the lock.
    sim.set_faults(Faults {
        read_error_in: Some(0),
        ..Faults::default()
    });
    assert!(matches!(open(&sim), Err(Error::Io { .. })));
    sim.clear_faults();
    let log = open(&sim).unwrap();
    assert_locked(open(&sim), "after a failed open");
    drop(log);
}

#[test]
fn power_cut_releases_the_lock() {
    let sim = SimStorage::new();
    let first = open(&sim).unwrap();
    first.append(RecordKind(1), b"durable").unwrap();
    sim.crash(CrashMode::DropUnsynced);
    // The old process is gone with the power; its handle's later drop must not release
    // the new writer's lock.
    let second = open(&sim).unwrap();
    drop(first);
    assert_locked(open(&sim), "after the old handle is dropped");
    assert_eq!(second.durable_lsn(), Lsn(1));
}

#[test]
fn real_directory_second_writer_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let first = Log::open(dir.path(), opts()).unwrap();
    first.append(RecordKind(1), b"one").unwrap();
    match Log::open(dir.path(), opts()) {
        Err(Error::Locked { path, pid }) => {
            assert_eq!(path, dir.path());
            assert_eq!(pid, Some(std::process::id()));
        }
        other => panic!("expected Error::Locked, got {other:?}"),
    }
    let reader = Log::open_read_only(dir.path(), opts()).unwrap();
    assert_eq!(reader.durable_lsn(), Lsn(1));
    drop(first);
    let second = Log::open(dir.path(), opts()).unwrap();
    assert_eq!(second.append(RecordKind(1), b"two").unwrap(), Lsn(2));
}

/// A child being started (fork, then exec) holds a copy of every open file for a moment,
/// the lock file included, and with it the lock: a store closed and reopened in the same
/// process while another thread starts programs must not be refused as `Locked` (a CLI
/// test once was). 300 close/reopen rounds while a thread spawns `true` without pause.
#[test]
fn reopening_while_this_process_starts_children_is_never_locked() {
    let dir = tempfile::tempdir().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spawner = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(mut c) = std::process::Command::new("true").spawn() {
                    let _ = c.wait();
                    n += 1;
                }
            }
            n
        })
    };
    for round in 0..300 {
        let log = Log::open(dir.path(), LogOptions::default())
            .unwrap_or_else(|e| panic!("round {round}: {e:?}"));
        log.append(RecordKind(1), b"x").unwrap();
        log.close().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(spawner.join().unwrap() > 0);
}
