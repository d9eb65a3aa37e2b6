//! One writer per directory on the real file system, across handles and processes; readers
//! beside it.
//!
//! The cross-process tests run this test binary again as a child (`current_exe`) with
//! `--exact child_process --ignored`, the mode and directory in environment variables.
//! The child prints one `CHILD ...` line per step on stdout.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use mdslog::log::{Log, LogOptions, Lsn, OwnedRecord, Record, RecordKind};
use mdslog::Error;

const ENV_DIR: &str = "MDSLOG_LOCK_TEST_DIR";
const ENV_MODE: &str = "MDSLOG_LOCK_TEST_MODE";

fn small() -> LogOptions {
    LogOptions {
        segment_bytes_max: 4096,
        prewrite_bytes: 1024,
        record_bytes_max: 512,
        batch_bytes_max: 2048,
        ..LogOptions::default()
    }
}

fn payload(lsn: u64) -> Vec<u8> {
    format!("record {lsn} ")
        .repeat((lsn % 7) as usize + 1)
        .into_bytes()
}

fn append_upto(log: &Log, last: u64) {
    for lsn in log.durable_lsn().0 + 1..=last {
        assert_eq!(log.append(RecordKind(1), &payload(lsn)).unwrap(), Lsn(lsn));
    }
}

/// Checks that `recs` are records `1..=n` as `append_upto` wrote them.
fn assert_prefix(recs: &[OwnedRecord], n: u64) {
    assert_eq!(recs.len() as u64, n);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(
            (r.lsn, &r.payload),
            (Lsn(i as u64 + 1), &payload(i as u64 + 1))
        );
    }
}

fn read_all(log: &Log) -> Vec<OwnedRecord> {
    log.iter_from(Lsn(1)).collect::<Result<_, _>>().unwrap()
}

/// Runs in a child process only (see the module comment); does nothing when run directly.
#[test]
#[ignore = "a helper the other tests run as a child process"]
fn child_process() {
    let (Ok(dir), Ok(mode)) = (std::env::var(ENV_DIR), std::env::var(ENV_MODE)) else {
        eprintln!("not started by a test of this file: nothing to do");
        return;
    };
    let say = |s: String| {
        println!("CHILD {s}");
        std::io::stdout().flush().unwrap();
    };
    let describe = |r: &Result<Log, Error>| match r {
        Ok(log) => format!("opened durable={}", log.durable_lsn().0),
        Err(Error::Locked { pid, .. }) => format!("locked pid={pid:?}"),
        Err(e) => format!("error {e}"),
    };
    match mode.as_str() {
        "writer" => say(describe(&Log::open(&dir, small()))),
        "read-only" => {
            let r = Log::open_read_only(&dir, small());
            say(describe(&r));
            if let Ok(log) = r {
                let recs = read_all(&log);
                assert_prefix(&recs, log.durable_lsn().0);
                say(format!("read {}", recs.len()));
            }
        }
        // Takes the lock, appends up to LSN 20, waits for a line on stdin, appends up to
        // LSN 30 and dies without closing the log (no destructor runs).
        "hold" => {
            let log = Log::open(&dir, small()).unwrap();
            append_upto(&log, 20);
            say(format!("holding durable={}", log.durable_lsn().0));
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).unwrap();
            append_upto(&log, 30);
            say(format!("exiting durable={}", log.durable_lsn().0));
            std::process::exit(0);
        }
        m => panic!("unknown mode {m}"),
    }
}

/// A child process, killed if the test fails while it runs so nothing is left waiting.
struct ChildProc(Child);

impl Drop for ChildProc {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn spawn_child(dir: &Path, mode: &str) -> ChildProc {
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ENV_DIR, dir)
        .env(ENV_MODE, mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    ChildProc(child)
}

/// The text after `CHILD ` in a line (the test harness may print its own words first).
fn child_line(line: &str) -> Option<String> {
    line.find("CHILD ")
        .map(|i| line[i + "CHILD ".len()..].trim_end().to_string())
}

/// Runs a child to its end; returns its `CHILD` lines.
fn run_child(dir: &Path, mode: &str) -> Vec<String> {
    let mut child = spawn_child(dir, mode);
    drop(child.0.stdin.take());
    let mut stdout = String::new();
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let status = child.0.wait().unwrap();
    assert!(status.success(), "child ({mode}) failed: {stdout}");
    stdout.lines().filter_map(child_line).collect()
}

#[test]
fn second_writer_in_this_process_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small()).unwrap();
    append_upto(&log, 5);
    for _ in 0..3 {
        match Log::open(dir.path(), small()) {
            Err(Error::Locked { path, pid }) => {
                assert_eq!(path, dir.path());
                assert_eq!(pid, Some(std::process::id()));
            }
            other => panic!("second writer: {other:?}"),
        }
    }
    // The refused open changed nothing: the writer goes on.
    append_upto(&log, 10);
    log.close().unwrap();
    // Closing (or dropping) the writer releases the lock.
    let log = Log::open(dir.path(), small()).unwrap();
    assert_prefix(&read_all(&log), 10);
    drop(log);
    let log = Log::open(dir.path(), small()).unwrap();
    assert_eq!(log.durable_lsn(), Lsn(10));
}

#[test]
fn second_writer_in_another_process_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small()).unwrap();
    append_upto(&log, 12);
    let me = std::process::id();
    assert_eq!(
        run_child(dir.path(), "writer"),
        [format!("locked pid=Some({me})")]
    );
    // A reader in another process is welcome beside the writer.
    assert_eq!(
        run_child(dir.path(), "read-only"),
        ["opened durable=12", "read 12"]
    );
    append_upto(&log, 15);
    assert_eq!(
        log.durable_lsn(),
        Lsn(15),
        "the refused child did not disturb the writer"
    );
    log.close().unwrap();
    // With the writer closed, the child may write.
    assert_eq!(run_child(dir.path(), "writer"), ["opened durable=15"]);
}

#[test]
fn lock_held_by_another_process_until_it_dies() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn_child(dir.path(), "hold");
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    let first = loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "child ended early");
        if let Some(l) = child_line(&line) {
            break l;
        }
    };
    assert_eq!(first, "holding durable=20");

    match Log::open(dir.path(), small()) {
        Err(Error::Locked { pid, .. }) => assert_eq!(pid, Some(child.0.id())),
        other => panic!("writer beside a writer in another process: {other:?}"),
    }
    let ro = Log::open_read_only(dir.path(), small()).unwrap();
    assert_eq!(ro.durable_lsn(), Lsn(20));
    assert_prefix(&read_all(&ro), 20);

    // Let the child append more and die without closing its log.
    writeln!(child.0.stdin.take().unwrap(), "go").unwrap();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(child.0.wait().unwrap().success());
    assert_eq!(
        rest.lines().filter_map(child_line).collect::<Vec<_>>(),
        ["exiting durable=30"]
    );

    // The reader picks up what the child made durable; the lock died with the child.
    assert_eq!(ro.durable_lsn(), Lsn(20), "no refresh, no new records");
    assert_eq!(ro.refresh().unwrap(), Lsn(30));
    assert_prefix(&read_all(&ro), 30);
    let log = Log::open(dir.path(), small()).unwrap();
    assert_eq!(log.recovery_report().torn_tail, None);
    assert_prefix(&read_all(&log), 30);
}

#[test]
fn read_only_beside_a_live_writer_refreshes() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small()).unwrap();
    append_upto(&log, 7);
    let ro = Log::open_read_only(dir.path(), small()).unwrap();
    assert!(!ro.is_writable());
    assert!(matches!(
        ro.append(RecordKind(1), b"x"),
        Err(Error::ReadOnly)
    ));
    assert_eq!(ro.durable_lsn(), Lsn(7));
    // Over several segment rotations.
    append_upto(&log, 300);
    assert!(log.segments().len() > 5);
    assert_eq!(ro.durable_lsn(), Lsn(7));
    assert_prefix(&read_all(&ro), 7);
    assert_eq!(ro.refresh().unwrap(), Lsn(300));
    assert_eq!(ro.durable_lsn(), Lsn(300));
    assert_prefix(&read_all(&ro), 300);
    assert_eq!(ro.segments().len(), log.segments().len());
    // A second read-only handle, and the writer keeps the lock throughout.
    let ro2 = Log::open_read_only(dir.path(), small()).unwrap();
    assert_prefix(&read_all(&ro2), 300);
    assert!(matches!(
        Log::open(dir.path(), small()),
        Err(Error::Locked { .. })
    ));
}

/// Readers refresh over and over while a writer appends through many rotations of
/// segments whose pre-written space spans several pages.
#[test]
fn refresh_races_with_appends_and_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let opts = LogOptions {
        segment_bytes_max: 40 << 10,
        prewrite_bytes: 16 << 10,
        record_bytes_max: 512,
        batch_bytes_max: 4096,
        ..LogOptions::default()
    };
    let log = Log::open(dir.path(), opts.clone()).unwrap();
    let total = 8000u64;
    let done = AtomicBool::new(false);
    let refreshes = AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let ro = Log::open_read_only(dir.path(), opts.clone()).unwrap();
                let mut last = ro.durable_lsn();
                while !done.load(Ordering::Acquire) {
                    let now = ro.refresh().unwrap();
                    assert!(
                        last <= now && now.0 <= total,
                        "refresh went from {last} to {now}"
                    );
                    let recs = read_all(&ro);
                    assert!(recs.len() as u64 >= now.0);
                    assert_prefix(&recs, recs.len() as u64);
                    last = now;
                    refreshes.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        for first in (1..=total).step_by(10) {
            let recs = (first..first + 10)
                .map(|l| Record::new(RecordKind(1), payload(l)))
                .collect();
            log.append_batch(recs).unwrap();
        }
        done.store(true, Ordering::Release);
    });
    assert!(
        log.segments().len() > 10,
        "rotations: {}",
        log.segments().len()
    );
    eprintln!(
        "{} refreshes beside {} segments of appends",
        refreshes.load(Ordering::Relaxed),
        log.segments().len()
    );
    let ro = Log::open_read_only(dir.path(), opts).unwrap();
    assert_prefix(&read_all(&ro), total);
}

/// A writer seals segments with a megabyte of pre-written zeros, truncating them away, while
/// readers open and refresh. A reader that memory-mapped the last segment for its scan used
/// to die of SIGBUS on the pages the truncation removed (most runs of this test did).
#[test]
fn readers_beside_sealing_of_large_pre_written_segments() {
    let dir = tempfile::tempdir().unwrap();
    let opts = LogOptions {
        durability: mdslog::Durability::Buffered,
        segment_bytes_max: 1 << 20,
        prewrite_bytes: 1 << 20,
        record_bytes_max: 64 << 10,
        batch_bytes_max: 512 << 10,
        ..LogOptions::default()
    };
    let log = Log::open(dir.path(), opts.clone()).unwrap();
    let batches = 200u64;
    let record = |lsn: u64| Record::new(RecordKind(2), vec![lsn as u8; 60 << 10]);
    let done = AtomicBool::new(false);
    let scans = AtomicU64::new(0);
    std::thread::scope(|s| {
        // One reader refreshes a handle, the other opens a new one each time.
        for fresh in [false, true] {
            let (done, scans, opts, dir) = (&done, &scans, opts.clone(), dir.path());
            s.spawn(move || {
                let mut ro = Log::open_read_only(dir, opts.clone()).unwrap();
                let mut last = Lsn::ZERO;
                while !done.load(Ordering::Acquire) {
                    if fresh {
                        ro = Log::open_read_only(dir, opts.clone()).unwrap();
                    } else {
                        ro.refresh().unwrap();
                    }
                    let now = ro.durable_lsn();
                    assert!(
                        last <= now && now.0 <= batches * 4,
                        "durable went from {last} to {now}"
                    );
                    last = now;
                    scans.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        for b in 0..batches {
            log.append_batch((1..=4).map(|i| record(b * 4 + i)).collect())
                .unwrap();
            log.flush().unwrap();
        }
        done.store(true, Ordering::Release);
    });
    assert!(
        log.segments().len() > 40,
        "segments sealed: {}",
        log.segments().len()
    );
    eprintln!(
        "{} reader scans beside {} sealed segments",
        scans.load(Ordering::Relaxed),
        log.segments().len() - 1
    );
    let ro = Log::open_read_only(dir.path(), opts).unwrap();
    let mut n = 0;
    for r in ro.iter_from(Lsn(1)) {
        let r = r.unwrap();
        n += 1;
        assert_eq!((r.lsn, r.payload), (Lsn(n), vec![n as u8; 60 << 10]));
    }
    assert_eq!(n, batches * 4);
}
