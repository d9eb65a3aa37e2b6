//! Round trips across many segments, reopen, reading from any LSN.

use std::sync::Arc;

use mdslog::log::fs::SimStorage;
use mdslog::log::{Durability, Log, LogOptions, Lsn, Record, RecordKind};

fn small() -> LogOptions {
    LogOptions {
        segment_bytes_max: 4096,
        prewrite_bytes: 1024,
        record_bytes_max: 512,
        batch_bytes_max: 2048,
        ..LogOptions::default()
    }
}

fn payload(i: u64) -> Vec<u8> {
    let len = (i * 37 % 300) as usize;
    (0..len).map(|j| (i as usize + j) as u8).collect()
}

#[test]
fn many_segments_round_trip_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let n = 2000u64;
    {
        let log = Log::open(
            dir.path(),
            LogOptions {
                durability: Durability::Buffered,
                ..small()
            },
        )
        .unwrap();
        for i in 1..=n {
            let lsn = log
                .append(RecordKind((i % 7 + 1) as u16), &payload(i))
                .unwrap();
            assert_eq!(lsn, Lsn(i));
        }
        assert_eq!(log.flush().unwrap(), Lsn(n));
        assert!(
            log.segments().len() > 20,
            "segments rotate: {}",
            log.segments().len()
        );
        log.close().unwrap();
    }
    let log = Log::open(dir.path(), small()).unwrap();
    assert_eq!(log.durable_lsn(), Lsn(n));
    assert!(log.recovery_report().torn_tail.is_none());
    let all: Vec<_> = log.iter_from(Lsn(1)).collect::<Result<_, _>>().unwrap();
    assert_eq!(all.len() as u64, n);
    for (i, r) in all.iter().enumerate() {
        let i = i as u64 + 1;
        assert_eq!(r.lsn, Lsn(i));
        assert_eq!(r.kind, RecordKind((i % 7 + 1) as u16));
        assert_eq!(r.payload, payload(i));
    }
    for from in [1u64, 2, 17, 999, 1500, n] {
        let first = log.iter_from(Lsn(from)).next().unwrap().unwrap();
        assert_eq!(first.lsn, Lsn(from));
    }
    assert!(log.iter_from(Lsn(n + 1)).next().is_none());
    // Appending continues the sequence after reopen.
    assert_eq!(log.append(RecordKind(1), b"more").unwrap(), Lsn(n + 1));
}

#[test]
fn sim_storage_round_trip_with_batches() {
    let sim = SimStorage::new();
    let log = Log::open_with(Arc::new(sim.clone()), small()).unwrap();
    for b in 0..100u64 {
        let recs: Vec<_> = (0..(b % 5 + 1))
            .map(|i| Record::new(RecordKind(2), payload(b * 10 + i)))
            .collect();
        log.append_batch(recs).unwrap();
    }
    let last = log.durable_lsn();
    drop(log);
    let log = Log::open_with(Arc::new(sim), small()).unwrap();
    assert_eq!(log.durable_lsn(), last);
    assert_eq!(log.iter_from(Lsn(1)).count() as u64, last.0);
}

/// Iterators remember where they stopped; later iterators start from the nearest such
/// place. Reading from any LSN must give the same records with or without those places,
/// in a big active segment, in sealed ones, and after the active one is sealed.
#[test]
fn reading_from_remembered_places_gives_the_same_records() {
    let dir = tempfile::tempdir().unwrap();
    let opts = LogOptions {
        segment_bytes_max: 1 << 20,
        batch_bytes_max: 64 << 10,
        record_bytes_max: 4096,
        durability: Durability::Buffered,
        ..LogOptions::default()
    };
    let log = Log::open(dir.path(), opts.clone()).unwrap();
    let n = 12_000u64;
    for i in 1..=n {
        log.append(RecordKind(3), &payload(i)).unwrap();
    }
    log.flush().unwrap();
    let check = |log: &Log, from: u64| {
        let got: Vec<_> = log
            .iter_from(Lsn(from))
            .take(3000)
            .collect::<Result<_, _>>()
            .unwrap();
        let last = (from + 2999).min(log.durable_lsn().0);
        assert_eq!(got.len() as u64, last + 1 - from, "from {from}");
        for (k, r) in got.iter().enumerate() {
            let i = from + k as u64;
            assert_eq!((r.lsn, &r.payload), (Lsn(i), &payload(i)), "from {from}");
        }
    };
    let probes = [1u64, 1023, 1024, 1025, 2048, 5000, 9215, 9216, 11_999, n];
    // Cold (no place remembered yet), then warm, after a whole scan has remembered them.
    for &p in &probes {
        check(&log, p);
    }
    assert_eq!(log.iter_from(Lsn(1)).count() as u64, n);
    for &p in &probes {
        check(&log, p);
    }
    // More records seal segments that places point into; the places stay right.
    for i in n + 1..=2 * n {
        log.append(RecordKind(3), &payload(i)).unwrap();
    }
    log.flush().unwrap();
    assert!(log.segments().len() > 2);
    for &p in &probes {
        check(&log, p);
        check(&log, p + n);
    }
}
