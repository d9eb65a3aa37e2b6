//! A whole segment file of arbitrary bytes, through the log's recovery and reader: the
//! pure scanner (`segment::scan_segment`), a read-only `Log` open on simulated storage,
//! iterating every record and decoding its envelope, the offline `verify`, and (mode)
//! a writable open that cuts a torn tail.
//!
//! Input: `[mode, segment bytes...]`. The file is named after the header's segment id and
//! first LSN (bytes 16..32), so a header that decodes matches its name. Mode bits:
//! 0 fix the header CRC, every frame CRC and the footer's CRC and digest; 1 also open it
//! writable (cut the torn tail) and read it again; 2 strict recovery too; 3 put a fixed
//! sealed segment 1 before it (the fuzzed file is then the last of two).
//!
//! Properties: no panic; a refused open is `Error::Corruption`; an opened log yields
//! exactly `recovery_report().records` records with dense LSNs up to the durable LSN;
//! strict recovery opens exactly when tolerant recovery finds no torn tail; a writable
//! open succeeds exactly when the read-only one does, and afterwards the log reads the
//! same records with no torn tail left.
#![no_main]

use std::path::Path;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use mdslog::event::Envelope;
use mdslog::log::format::{self, SEGMENT_HEADER_BYTES};
use mdslog::log::fs::SimStorage;
use mdslog::log::segment::{scan_segment, ScanExpect};
use mdslog::log::{verify, Log, LogOptions, Lsn, OwnedRecord, RecoveryMode, SegmentId};
use mdslog::{CorruptionKind, Error};

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Bug (tests/fuzz_decoders.rs `an_empty_trimmed_log_iterates_from_lsn_1`): iterating
/// from LSN 1 a log whose first segment starts later and holds no record fails with a
/// torn-tail corruption. While it stands, such logs are read from their first LSN.
const KNOWN_BUG_EMPTY_TRIMMED: bool = false;

/// Bug (tests/fuzz_decoders.rs `verify_reports_a_short_segment`): `verify` decodes the
/// header of a segment shorter than a header after the scan refused it, and panics.
/// While it stands, `verify` is left out for such files.
const KNOWN_BUG_VERIFY_SHORT: bool = false;

/// Bugs (tests/fuzz_decoders.rs `a_record_at_the_last_lsn_reads_back`,
/// `a_segment_with_the_last_id_opens`): LSN 2^64-1 and segment id 2^64-1 overflow
/// `Lsn::next` and the next segment id (a panic with overflow checks; without them the
/// record at the last LSN reads back as a torn tail). While they stand, headers within
/// 2^20 of the top of either range are skipped.
const KNOWN_BUG_TOP_OF_RANGE: bool = true;

fn read_all(log: &Log) -> Vec<OwnedRecord> {
    let first = log.segments().first().map_or(Lsn(1), |s| s.first_lsn);
    let it = if KNOWN_BUG_EMPTY_TRIMMED && first > Lsn(1) && log.durable_lsn() < first {
        log.iter_from(first)
    } else {
        log.iter_recovered()
    };
    let recs: Vec<OwnedRecord> = it
        .collect::<Result<_, _>>()
        .expect("an opened log reads back");
    recs
}

fn check_open(sim: &SimStorage, options: LogOptions) -> Option<(Vec<OwnedRecord>, bool)> {
    let log = match Log::open_read_only_with(Arc::new(sim.clone()), options) {
        Ok(log) => log,
        Err(Error::Corruption(_)) => return None,
        Err(other) => panic!("refused with a non-corruption error: {other:?}"),
    };
    let report = log.recovery_report().clone();
    let recs = read_all(&log);
    assert_eq!(recs.len() as u64, report.records, "{report:?}");
    assert_eq!(report.last_lsn, log.durable_lsn());
    for w in recs.windows(2) {
        assert_eq!(w[1].lsn.0, w[0].lsn.0.wrapping_add(1), "LSNs not dense");
    }
    if let Some(last) = recs.last() {
        assert_eq!(last.lsn, log.durable_lsn());
    }
    for r in &recs {
        let _ = Envelope::decode(r.lsn, r.kind, &r.payload);
    }
    Some((recs, report.torn_tail.is_some()))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut seg = rest.to_vec();
    if mode & 1 != 0 {
        mdslog_fuzz::fix_segment(&mut seg);
    }
    let (id, first) = if seg.len() >= 32 {
        (u64_at(&seg, 16), u64_at(&seg, 24))
    } else {
        (1, 1)
    };
    if KNOWN_BUG_TOP_OF_RANGE && (id == u64::MAX || first > u64::MAX - (1 << 20)) {
        return;
    }
    let two = mode & 8 != 0;
    let sim = SimStorage::new();
    let mut prev = None;
    let mut first_expected = None;
    if two {
        let (b, d, last) = mdslog_fuzz::fixed_first_segment();
        sim.put_file(&format::segment_file_name(SegmentId(1), Lsn(1)), b.clone());
        prev = Some(*d);
        first_expected = Some(Lsn(last + 1));
    }
    if !two && id == 1 {
        // As recovery expects of a log that was never trimmed.
        prev = Some(format::DIGEST_NONE);
        first_expected = Some(Lsn(1));
    }
    let name = format::segment_file_name(SegmentId(id), Lsn(first));
    if two && id == 1 {
        return; // the same name as the fixed segment
    }
    sim.put_file(&name, seg.clone());

    // The pure scanner, as the last segment and as a sealed one in the middle.
    let mut damage_then_valid = false;
    for last in [true, false] {
        let r = scan_segment(
            &seg,
            &ScanExpect {
                file: Path::new(&name),
                name_id: SegmentId(id),
                name_first_lsn: Lsn(first),
                first_lsn: first_expected,
                prev_digest: prev,
                last,
            },
        );
        match r {
            Ok(scan) => {
                assert!(scan.end as usize <= seg.len());
                assert!(scan.end as usize >= SEGMENT_HEADER_BYTES);
                if !last {
                    assert!(scan.footer.is_some() && scan.torn.is_none());
                }
                assert_eq!(
                    scan.digest,
                    *blake3::hash(&seg[..scan.end as usize]).as_bytes()
                );
            }
            Err(Error::Corruption(c)) => {
                damage_then_valid |=
                    last && matches!(c.kind, CorruptionKind::DamageBeforeValidRecord { .. });
            }
            Err(other) => panic!("scan: not corruption: {other:?}"),
        }
    }

    let options = mdslog_fuzz::small_log_options();
    // A read-only open retries this verdict for 15 ms (a live writer may be mid-write):
    // too slow to repeat on every such input; the scan above is the same check.
    let tolerant = if damage_then_valid {
        None
    } else {
        check_open(&sim, options.clone())
    };
    if !(KNOWN_BUG_VERIFY_SHORT && seg.len() < SEGMENT_HEADER_BYTES) {
        let _ = verify::verify(&sim).expect("verify on simulated storage does no failing I/O");
    }

    if mode & 4 != 0 && !damage_then_valid {
        let strict = check_open(
            &sim,
            LogOptions {
                recovery: RecoveryMode::Strict,
                ..options.clone()
            },
        );
        let expect = matches!(&tolerant, Some((_, false)));
        assert_eq!(strict.is_some(), expect, "strict vs tolerant: {tolerant:?}");
    }

    if mode & 2 != 0 {
        match Log::open_with(Arc::new(sim.clone()), options.clone()) {
            Ok(log) => {
                let (want, _) = tolerant
                    .as_ref()
                    .expect("writable opened what read-only refused");
                let got = read_all(&log);
                assert_eq!(&got, want);
                log.close().expect("close");
                let (again, torn) =
                    check_open(&sim, options).expect("reopen after a writable open");
                assert_eq!(&again, want);
                assert!(!torn, "a torn tail survived a writable open");
            }
            Err(Error::Corruption(_)) => {
                assert!(tolerant.is_none(), "writable refused what read-only opened");
            }
            Err(other) => panic!("writable open: {other:?}"),
        }
    }
});
