//! Many appenders at once on the real file system: every record lands exactly once, LSNs
//! stay dense, each appender's records keep its order, batches stay whole and contiguous;
//! readers running beside them only ever see dense, durable prefixes.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use mdslog::log::{Durability, Log, LogOptions, Lsn, OwnedRecord, Record, RecordKind, Ticket};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Segments small enough that appenders race with rotation many times.
fn opts() -> LogOptions {
    LogOptions {
        segment_bytes_max: 32 << 10,
        prewrite_bytes: 8 << 10,
        record_bytes_max: 512,
        batch_bytes_max: 4096,
        ..LogOptions::default()
    }
}

/// `(thread, seq)` and a filler that depends on both, so a mixed-up payload shows.
fn payload(t: u32, seq: u32) -> Vec<u8> {
    let mut p = Vec::with_capacity(48);
    p.extend_from_slice(&t.to_le_bytes());
    p.extend_from_slice(&seq.to_le_bytes());
    p.extend((0..(t + seq) % 40).map(|i| (t * 31 + seq + i) as u8));
    p
}

fn decode(r: &OwnedRecord) -> (u32, u32) {
    let p = &r.payload;
    assert!(p.len() >= 8, "LSN {}: short payload", r.lsn);
    let t = u32::from_le_bytes(p[0..4].try_into().unwrap());
    let seq = u32::from_le_bytes(p[4..8].try_into().unwrap());
    assert_eq!(*p, payload(t, seq), "LSN {}: payload", r.lsn);
    assert_eq!(
        r.kind,
        RecordKind((t % 100 + 1) as u16),
        "LSN {}: kind",
        r.lsn
    );
    (t, seq)
}

/// Checks a read of the log: LSNs dense from 1 and every thread's records a gap-free run
/// `0, 1, 2, ..` of its sequence numbers (each thread appends in order and the reader sees
/// a durable prefix). Returns each thread's count.
fn check_prefix(recs: &[OwnedRecord], threads: u32) -> Vec<u32> {
    let mut next = vec![0u32; threads as usize];
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r.lsn, Lsn(i as u64 + 1), "LSNs are dense");
        let (t, seq) = decode(r);
        assert!(t < threads, "LSN {}: thread {t}", r.lsn);
        assert_eq!(
            seq, next[t as usize],
            "LSN {}: thread {t} out of order or duplicated",
            r.lsn
        );
        next[t as usize] += 1;
    }
    next
}

/// How a thread appends: one record at a time, batches, or several tickets in flight.
#[derive(Clone, Copy, PartialEq)]
enum Style {
    Single,
    Batches,
    Pipelined,
}

/// Appends `per_thread` records from each of `threads` threads while two readers run, then
/// checks everything. Returns the number of full reads the scanning reader made.
fn run(threads: u32, per_thread: u32, mixed: bool) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts()).unwrap();
    let total = threads as u64 * per_thread as u64;
    let done = AtomicBool::new(false);
    let scans = AtomicU64::new(0);
    let (placed, followed) = std::thread::scope(|s| {
        let log = &log;
        let done = &done;
        let scans = &scans;
        // A reader scanning from the start over and over: each scan a dense prefix, never
        // shorter than the durable LSN seen before it, never past the one seen after.
        let scanner = s.spawn(move || {
            let mut last = 0u64;
            while !done.load(Ordering::Acquire) {
                let before = log.durable_lsn();
                let recs: Vec<OwnedRecord> =
                    log.iter_from(Lsn(1)).collect::<Result<_, _>>().unwrap();
                let after = log.durable_lsn();
                let n = recs.len() as u64;
                assert!(
                    before.0 <= n && n <= after.0,
                    "scan of {n} records, durable {before}..{after}"
                );
                assert!(n >= last, "a later scan saw less");
                check_prefix(&recs, threads);
                last = n;
                scans.fetch_add(1, Ordering::Relaxed);
            }
        });
        // A follower tailing the log with `wait_durable`, reading only what is new.
        let follower = s.spawn(move || {
            let mut got: Vec<OwnedRecord> = Vec::new();
            while (got.len() as u64) < total {
                // Appenders that failed leave the rest of the log unwritten: stop then.
                if done.load(Ordering::Acquire) && got.len() as u64 >= log.durable_lsn().0 {
                    break;
                }
                let next = Lsn(got.len() as u64 + 1);
                let durable = log
                    .wait_durable(next, Some(Duration::from_millis(20)))
                    .unwrap();
                for r in log.iter_from(next) {
                    let r = r.unwrap();
                    assert_eq!(r.lsn, Lsn(got.len() as u64 + 1), "follower: LSNs are dense");
                    got.push(r);
                }
                assert!(
                    got.len() as u64 >= durable.0,
                    "follower read less than was durable"
                );
            }
            got
        });
        let writers: Vec<_> = (0..threads)
            .map(|t| {
                let style = match (mixed, t % 3) {
                    (false, _) => Style::Single,
                    (true, 0) => Style::Single,
                    (true, 1) => Style::Batches,
                    (true, _) => Style::Pipelined,
                };
                s.spawn(move || append_all(log, t, per_thread, style))
            })
            .collect();
        let placed: Vec<_> = writers.into_iter().map(|h| h.join()).collect();
        done.store(true, Ordering::Release);
        let placed: Vec<Vec<(u32, Lsn)>> = placed.into_iter().map(|r| r.unwrap()).collect();
        scanner.join().unwrap();
        (placed, follower.join().unwrap())
    });
    assert_eq!(log.durable_lsn(), Lsn(total));

    // Every record exactly once, at the LSN its append returned; LSNs dense.
    let check_all = |recs: &[OwnedRecord]| {
        assert_eq!(recs.len() as u64, total);
        let counts = check_prefix(recs, threads);
        assert!(
            counts.iter().all(|&c| c == per_thread),
            "every thread's records are all there"
        );
        let at: HashMap<(u32, u32), Lsn> = recs.iter().map(|r| (decode(r), r.lsn)).collect();
        assert_eq!(at.len() as u64, total, "no record twice");
        for (t, v) in placed.iter().enumerate() {
            assert_eq!(v.len() as u32, per_thread);
            for &(seq, lsn) in v {
                assert_eq!(
                    at[&(t as u32, seq)],
                    lsn,
                    "thread {t} seq {seq} is where its append said"
                );
            }
        }
    };
    let all: Vec<OwnedRecord> = log.iter_from(Lsn(1)).collect::<Result<_, _>>().unwrap();
    check_all(&all);
    assert_eq!(followed, all, "the follower read the same log");
    let segments = log.segments().len();
    assert!(
        segments > 2,
        "appenders raced with rotation: {segments} segments"
    );
    log.close().unwrap();

    // The same on disk.
    let log = Log::open(dir.path(), opts()).unwrap();
    assert_eq!(log.recovery_report().torn_tail, None);
    assert_eq!(log.durable_lsn(), Lsn(total));
    check_all(
        &log.iter_from(Lsn(1))
            .collect::<Result<Vec<_>, _>>()
            .unwrap(),
    );
    scans.load(Ordering::Relaxed)
}

/// One thread's appends; returns `(seq, lsn)` of each record as the log reported it.
fn append_all(log: &Log, t: u32, per_thread: u32, style: Style) -> Vec<(u32, Lsn)> {
    let rec = |seq| Record::new(RecordKind((t % 100 + 1) as u16), payload(t, seq));
    let mut rng = SmallRng::seed_from_u64(t as u64);
    let mut out = Vec::with_capacity(per_thread as usize);
    let mut seq = 0;
    let mut in_flight: VecDeque<(u32, u32, Ticket)> = VecDeque::new();
    while seq < per_thread || !in_flight.is_empty() {
        if seq < per_thread {
            match style {
                Style::Single => {
                    out.push((seq, log.append(rec(seq).kind, &rec(seq).payload).unwrap()));
                    seq += 1;
                }
                Style::Batches => {
                    let n = rng.gen_range(1..=6).min(per_thread - seq);
                    let r = log.append_batch((seq..seq + n).map(rec).collect()).unwrap();
                    assert_eq!(
                        r.last.0 - r.first.0 + 1,
                        n as u64,
                        "a batch gets contiguous LSNs"
                    );
                    out.extend((0..n).map(|i| (seq + i, Lsn(r.first.0 + i as u64))));
                    seq += n;
                }
                Style::Pipelined => {
                    let n = rng.gen_range(1..=3).min(per_thread - seq);
                    let ticket = log
                        .submit((seq..seq + n).map(rec).collect(), Durability::Sync)
                        .unwrap();
                    in_flight.push_back((seq, n, ticket));
                    seq += n;
                }
            }
        }
        // Pipelined threads keep up to four tickets in flight.
        if in_flight.len() >= 4 || (seq == per_thread && !in_flight.is_empty()) {
            let (first_seq, n, ticket) = in_flight.pop_front().unwrap();
            let r = log.wait(ticket).unwrap();
            assert!(log.durable_lsn() >= r.last, "a waited ticket is durable");
            assert_eq!(r.last.0 - r.first.0 + 1, n as u64);
            out.extend((0..n).map(|i| (first_seq + i, Lsn(r.first.0 + i as u64))));
        }
    }
    let lsns: Vec<Lsn> = out.iter().map(|x| x.1).collect();
    assert!(
        lsns.windows(2).all(|w| w[0] < w[1]),
        "thread {t}: LSNs in the order of its appends"
    );
    out
}

#[test]
fn eight_threads_append_concurrently() {
    let scans = run(8, 600, false);
    eprintln!("8 threads x 600 records; {scans} full scans beside them");
}

#[test]
fn sixty_four_threads_append_concurrently() {
    let scans = run(64, 120, false);
    eprintln!("64 threads x 120 records; {scans} full scans beside them");
}

#[test]
fn eight_threads_with_batches_and_pipelined_tickets() {
    let scans = run(8, 600, true);
    eprintln!("8 threads x 600 records, mixed; {scans} full scans beside them");
}

#[test]
fn sixty_four_threads_with_batches_and_pipelined_tickets() {
    let scans = run(64, 120, true);
    eprintln!("64 threads x 120 records, mixed; {scans} full scans beside them");
}

#[test]
fn wait_durable_with_a_timeout_returns() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts()).unwrap();
    for i in 0..10u32 {
        log.append(RecordKind(1), &i.to_le_bytes()).unwrap();
    }
    // Already durable: at once. Not yet appended: after the timeout, with the durable LSN.
    assert_eq!(log.wait_durable(Lsn(10), None).unwrap(), Lsn(10));
    assert_eq!(
        log.wait_durable(Lsn(5), Some(Duration::from_millis(1)))
            .unwrap(),
        Lsn(10)
    );
    assert_eq!(
        log.wait_durable(Lsn(11), Some(Duration::from_millis(30)))
            .unwrap(),
        Lsn(10)
    );
    assert_eq!(
        log.wait_durable(Lsn(1000), Some(Duration::ZERO)).unwrap(),
        Lsn(10)
    );

    // A waiter for records still to come wakes once they are durable.
    std::thread::scope(|s| {
        let log = &log;
        let waiter = s.spawn(move || {
            log.wait_durable(Lsn(60), Some(Duration::from_secs(60)))
                .unwrap()
        });
        let buffered = log.submit(
            vec![Record::new(RecordKind(2), b"b".to_vec())],
            Durability::Buffered,
        );
        assert_eq!(buffered.unwrap().range.first, Lsn(11));
        for i in 0..49u32 {
            log.append(RecordKind(1), &i.to_le_bytes()).unwrap();
        }
        let got = waiter.join().unwrap();
        assert!(
            got >= Lsn(60),
            "waiter returned {got} before LSN 60 was durable"
        );
    });

    // Buffered records become durable on flush; waiting for them then returns at once.
    let t = log
        .submit(
            vec![Record::new(RecordKind(2), b"late".to_vec())],
            Durability::Buffered,
        )
        .unwrap();
    assert_eq!(
        log.wait(t).unwrap().first,
        Lsn(61),
        "a buffered ticket returns at once"
    );
    assert_eq!(log.flush().unwrap(), Lsn(61));
    assert_eq!(
        log.wait_durable(Lsn(61), Some(Duration::from_secs(60)))
            .unwrap(),
        Lsn(61)
    );

    // A read-only handle has no writer to wait for: it returns what it has.
    let ro = Log::open_read_only(dir.path(), opts()).unwrap();
    assert_eq!(ro.wait_durable(Lsn(1000), None).unwrap(), Lsn(61));
    assert_eq!(
        ro.wait_durable(Lsn(1000), Some(Duration::from_millis(10)))
            .unwrap(),
        Lsn(61)
    );
}
