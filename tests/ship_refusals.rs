//! What shipping refuses, and what it repairs.
//!
//! Refused (nothing of it reaches the follower, which is left as it was): damaged bytes
//! in the source (`Error::Corruption`), a follower holding another store's log, a follower
//! promoted to primary that wrote records of its own, a source that lacks records the
//! follower has (`Error::ShipDiverged`, naming the segment).
//!
//! Repaired: bytes after the last whole frame of the follower's last segment that are not
//! records of the source. log-format.md §3 calls such bytes a torn tail when no valid
//! frame follows them (readers ignore them) and §9 says the next ship cuts a torn tail;
//! the shipper checks that everything before them is the source's byte for byte, so what
//! it cuts can only be bytes that are in no log, and what it appends after the cut is the
//! source's own. Garbage is therefore cut, not refused: the result is byte-identical to
//! the source. (Refusing would leave a follower that a plain crash during an append could
//! make unshippable for good.) Even garbage followed by a valid frame, which a reader
//! refuses as damage in the middle (§3 rule 1), is cut back to the common prefix: the
//! source holds the true bytes, and the follower is a copy.

mod store_support;

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::Path;

use mdslog::log::format::{FOOTER_BYTES, SEGMENT_HEADER_BYTES};
use mdslog::ship::{ship, ShipReport, StorageTarget};
use mdslog::*;
use store_support::*;

fn options() -> StoreOptions {
    StoreOptions {
        log: LogOptions {
            segment_bytes_max: 4096,
            prewrite_bytes: 512,
            record_bytes_max: 2048,
            batch_bytes_max: 2072,
            ..LogOptions::default()
        },
        actor: Some("ann".into()),
    }
}

/// A primary store in a temporary directory, with a volume set and a master branch.
struct Primary {
    dir: tempfile::TempDir,
    store: Store,
    vs: VolumeSetId,
    tip: SnapshotId,
}

impl Primary {
    fn new() -> Primary {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), options()).unwrap();
        let vs = new_vs(&store, "db").id;
        let root = snap(vs, None);
        store
            .fork_branch("master", std::slice::from_ref(&root))
            .unwrap();
        Primary {
            dir,
            store,
            vs,
            tip: root.id,
        }
    }

    /// `n` more snapshots on master.
    fn grow(&mut self, n: usize) {
        for _ in 0..n {
            let mut s = snap(self.vs, Some(self.tip));
            s.description = "x".repeat(150);
            self.store.extend_branch(std::slice::from_ref(&s)).unwrap();
            self.tip = s.id;
        }
    }

    /// Grows until the log has at least `n` segments.
    fn grow_to_segments(&mut self, n: usize) {
        while self.store.log().segments().len() < n {
            self.grow(1);
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Every file of a directory but `LOCK`, with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != "LOCK")
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn segment_names(dir: &Path) -> Vec<String> {
    files(dir)
        .into_keys()
        .filter(|n| n.ends_with(".seg"))
        .collect()
}

/// Writes bytes into a file in place (no truncation: a live store may map it).
fn poke(path: &Path, at: u64, bytes: &[u8]) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, at).unwrap();
    f.sync_all().unwrap();
}

fn flip(path: &Path, at: u64) {
    let f = std::fs::File::open(path).unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, at).unwrap();
    poke(path, at, &[b[0] ^ 0x20]);
}

/// The follower's segments are the primary's: all but the last equal, the last a byte
/// prefix of the primary's segment of the same name.
#[track_caller]
fn assert_prefix_of(primary: &Path, follower: &Path) {
    let p = files(primary);
    let names = segment_names(follower);
    for (i, n) in names.iter().enumerate() {
        let mine = std::fs::read(follower.join(n)).unwrap();
        let theirs = p
            .get(n)
            .unwrap_or_else(|| panic!("{n} is not the primary's"));
        if i + 1 < names.len() {
            assert!(mine == *theirs, "{n} differs from the primary's");
        } else {
            assert!(theirs.starts_with(&mine), "{n} is not a prefix");
        }
    }
}

/// The follower's segments are byte-identical to the primary's (the active one up to
/// its valid bytes).
#[track_caller]
fn assert_identical(primary: &Primary, follower: &Path) {
    let segs = primary.store.log().segments();
    let names = segment_names(follower);
    assert_eq!(
        names,
        segs.iter().map(|s| s.file_name.clone()).collect::<Vec<_>>()
    );
    for s in &segs {
        let mine = std::fs::read(follower.join(&s.file_name)).unwrap();
        let theirs = std::fs::read(primary.path().join(&s.file_name)).unwrap();
        assert_eq!(mine.len() as u64, s.bytes, "{}", s.file_name);
        assert!(mine[..] == theirs[..s.bytes as usize], "{}", s.file_name);
    }
}

fn ship_dir(source: &Log, follower: &Path) -> Result<ShipReport> {
    ship(source, &StorageTarget::dir(follower).unwrap())
}

#[track_caller]
fn assert_diverged(r: Result<ShipReport>) -> String {
    match r {
        Err(Error::ShipDiverged {
            segment, reason, ..
        }) => {
            assert!(
                segment.ends_with(".seg"),
                "the error names a segment: {segment:?}"
            );
            format!("{segment}: {reason}")
        }
        other => panic!("expected ShipDiverged, got {other:?}"),
    }
}

// ---- damaged source bytes ----------------------------------------------------------------

#[test]
fn a_damaged_byte_in_a_sealed_source_segment_is_refused_and_nothing_of_it_shipped() {
    let mut p = Primary::new();
    p.grow_to_segments(4);
    let segs = p.store.log().segments();
    let bad = &segs[1];
    assert!(bad.sealed);
    // A byte in the middle of its frames: the footer still reads well, the digest and one
    // record's checksum do not.
    flip(
        &p.path().join(&bad.file_name),
        SEGMENT_HEADER_BYTES as u64
            + (bad.bytes - (SEGMENT_HEADER_BYTES + FOOTER_BYTES) as u64) / 2,
    );
    let f = tempfile::tempdir().unwrap();
    let err = ship_dir(p.store.log(), f.path()).unwrap_err();
    match &err {
        Error::Corruption(c) => assert!(
            c.file.ends_with(&bad.file_name),
            "names the damaged segment: {err}"
        ),
        _ => panic!("expected Corruption, got {err:?}"),
    }
    // Only the segment before it was shipped; nothing of the damaged one, not even a
    // temporary file.
    let names: Vec<String> = files(f.path()).into_keys().collect();
    assert!(
        names.iter().all(|n| !n.starts_with(&bad.file_name)),
        "{names:?}"
    );
    assert_eq!(segment_names(f.path()), vec![segs[0].file_name.clone()]);
    assert_prefix_of(p.path(), f.path());

    // A read-only source opened on the damaged directory does not even open.
    let err = Log::open_read_only(p.path(), LogOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Corruption(_)), "{err}");
}

#[test]
fn a_damaged_footer_or_header_of_a_sealed_source_segment_is_refused() {
    for (what, at) in [
        ("header", 30u64),
        ("footer digest", u64::MAX - 40),
        ("footer crc", u64::MAX - 2),
    ] {
        let mut p = Primary::new();
        p.grow_to_segments(3);
        let bad = p.store.log().segments()[0].clone();
        let at = if at > 1 << 40 {
            bad.bytes - (u64::MAX - at)
        } else {
            at
        };
        flip(&p.path().join(&bad.file_name), at);
        let f = tempfile::tempdir().unwrap();
        let err = ship_dir(p.store.log(), f.path()).unwrap_err();
        assert!(
            matches!(err, Error::Corruption(_)),
            "{what}: expected Corruption, got {err:?}"
        );
        assert!(segment_names(f.path()).is_empty(), "{what}");
    }
}

#[test]
fn a_damaged_record_in_the_active_source_segment_is_refused_and_not_appended() {
    let mut p = Primary::new();
    p.grow(3);
    let f = tempfile::tempdir().unwrap();
    let first = ship_dir(p.store.log(), f.path()).unwrap();
    let before = files(f.path());
    p.grow(3);
    let active = p.store.log().segments().last().unwrap().clone();
    assert!(!active.sealed);
    // Damage the second of the three new records (the first of them is left whole, but
    // is not appended either: a chunk is checked before any of it is written).
    let bytes = std::fs::read(p.path().join(&active.file_name)).unwrap();
    let mut at = SEGMENT_HEADER_BYTES;
    let mut lsn = 0;
    let mut frames = Vec::new();
    while at < active.bytes as usize {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        lsn = u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap());
        frames.push((at, len, lsn));
        at += 24 + len.div_ceil(8) * 8;
    }
    assert_eq!(lsn, p.store.durable_lsn().0);
    let (bad_at, bad_len, bad_lsn) = frames[frames.len() - 2];
    flip(
        &p.path().join(&active.file_name),
        (bad_at + 24 + bad_len / 2) as u64,
    );
    let err = ship_dir(p.store.log(), f.path()).unwrap_err();
    match &err {
        Error::Corruption(c) => assert_eq!(c.lsn, Some(Lsn(bad_lsn)), "{err}"),
        _ => panic!("expected Corruption, got {err:?}"),
    }
    assert_eq!(files(f.path()), before, "nothing was appended");
    let ro = Log::open_read_only(f.path(), LogOptions::default()).unwrap();
    assert_eq!(ro.durable_lsn(), first.follower_last_lsn);
}

/// Damage in a source segment the follower already holds whole (here the footer's digest
/// of a sealed one): the source's footer no longer matches the follower's. The ship is
/// refused and the follower left as it is.
#[test]
fn damage_in_a_source_segment_the_follower_already_has_is_refused() {
    let (p, f, before) = damaged_footer_of_a_shipped_segment();
    let err = ship_dir(p.store.log(), f.path()).unwrap_err();
    assert!(
        matches!(err, Error::ShipDiverged { .. } | Error::Corruption(_)),
        "{err:?}"
    );
    assert_eq!(files(f.path()), before);
}

/// The same, held to the contract that damaged source bytes are reported as corruption:
/// when the footers differ, the shipper checks the source's segment before it calls the
/// mismatch "another history".
#[test]
fn damage_in_a_source_segment_the_follower_already_has_is_reported_as_corruption() {
    let (p, f, _) = damaged_footer_of_a_shipped_segment();
    let err = ship_dir(p.store.log(), f.path()).unwrap_err();
    assert!(matches!(err, Error::Corruption(_)), "{err}");
}

/// A primary shipped into a follower, then one byte of the digest in the footer of its
/// first (sealed) segment flipped, and more records written.
fn damaged_footer_of_a_shipped_segment() -> (Primary, tempfile::TempDir, BTreeMap<String, Vec<u8>>)
{
    let mut p = Primary::new();
    p.grow_to_segments(3);
    let f = tempfile::tempdir().unwrap();
    ship_dir(p.store.log(), f.path()).unwrap();
    let before = files(f.path());
    let seg = p.store.log().segments()[0].clone();
    flip(&p.path().join(&seg.file_name), seg.bytes - 40);
    p.grow(2);
    (p, f, before)
}

// ---- another store -----------------------------------------------------------------------

#[test]
fn a_follower_of_another_store_is_refused_and_left_as_it_is() {
    let mut a = Primary::new();
    a.grow_to_segments(3);
    let mut b = Primary::new();
    b.grow_to_segments(3);
    let f = tempfile::tempdir().unwrap();
    ship_dir(a.store.log(), f.path()).unwrap();
    let before = files(f.path());
    let why = assert_diverged(ship_dir(b.store.log(), f.path()));
    assert!(why.starts_with(&segment_names(f.path())[0]), "{why}");
    assert_eq!(files(f.path()), before);

    // Only the first segment of A: still refused (its records are not B's).
    let g = tempfile::tempdir().unwrap();
    let first = &a.store.log().segments()[0].file_name;
    std::fs::copy(a.path().join(first), g.path().join(first)).unwrap();
    assert_diverged(ship_dir(b.store.log(), g.path()));
}

#[test]
fn a_segment_of_another_store_in_the_middle_of_a_follower_is_refused() {
    let mut a = Primary::new();
    a.grow_to_segments(4);
    let mut b = Primary::new();
    b.grow_to_segments(4);
    let f = tempfile::tempdir().unwrap();
    ship_dir(a.store.log(), f.path()).unwrap();
    // Replace A's second segment by B's second segment under A's name.
    let a2 = a.store.log().segments()[1].file_name.clone();
    let b2 = b.store.log().segments()[1].file_name.clone();
    std::fs::copy(b.path().join(&b2), f.path().join(&a2)).unwrap();
    let before = files(f.path());
    a.grow(3);
    let why = assert_diverged(ship_dir(a.store.log(), f.path()));
    assert!(why.starts_with(&a2), "names the foreign segment: {why}");
    assert_eq!(files(f.path()), before);

    // The foreign segment as the follower's last, unsealed one: its frames are salted
    // with the same segment id but are not A's records.
    let g = tempfile::tempdir().unwrap();
    let a1 = a.store.log().segments()[0].file_name.clone();
    std::fs::copy(a.path().join(&a1), g.path().join(&a1)).unwrap();
    let b_active = std::fs::read(b.path().join(&b2)).unwrap();
    let a2_len = a.store.log().segments()[1].bytes as usize;
    std::fs::write(
        g.path().join(&a2),
        &b_active[..(a2_len - FOOTER_BYTES).min(b_active.len() - FOOTER_BYTES)],
    )
    .unwrap();
    assert_diverged(ship_dir(a.store.log(), g.path()));
}

// ---- the follower's last segment with bytes that are not the source's ---------------------

#[test]
fn garbage_after_the_last_frame_of_an_unsealed_follower_segment_is_cut() {
    let mut p = Primary::new();
    p.grow(5);
    let f = tempfile::tempdir().unwrap();
    let r = ship_dir(p.store.log(), f.path()).unwrap();
    let last = segment_names(f.path()).pop().unwrap();
    let len = std::fs::metadata(f.path().join(&last)).unwrap().len();
    // Not a torn frame of ours: bytes that no prefix of the source's next frame has.
    let garbage: Vec<u8> = (0..100u32).map(|i| (i * 37 + 11) as u8).collect();
    poke(&f.path().join(&last), len, &garbage);
    // Readers ignore it (a torn tail, §3).
    let ro = Store::open_read_only(f.path(), StoreOptions::default()).unwrap();
    assert_eq!(ro.durable_lsn(), r.follower_last_lsn);
    assert!(ro.recovery_report().torn_tail.is_some());

    // The next ship cuts it, whether or not there is anything new.
    let again = ship_dir(p.store.log(), f.path()).unwrap();
    assert_eq!(again.torn_bytes_cut, garbage.len() as u64, "{again:?}");
    assert_eq!(again.records_shipped, 0);
    assert_identical(&p, f.path());
    poke(&f.path().join(&last), len, &garbage);
    p.grow(4);
    let again = ship_dir(p.store.log(), f.path()).unwrap();
    assert_eq!(again.torn_bytes_cut, garbage.len() as u64, "{again:?}");
    assert_eq!(again.follower_last_lsn, p.store.durable_lsn());
    assert_identical(&p, f.path());
    ro.refresh().unwrap();
    assert_eq!(
        ro.canonical_dump().unwrap(),
        p.store.canonical_dump().unwrap()
    );
}

#[test]
fn a_frame_header_claiming_a_huge_payload_after_the_last_frame_is_cut() {
    let mut p = Primary::new();
    p.grow(3);
    let f = tempfile::tempdir().unwrap();
    ship_dir(p.store.log(), f.path()).unwrap();
    let last = segment_names(f.path()).pop().unwrap();
    let len = std::fs::metadata(f.path().join(&last)).unwrap().len();
    let mut junk = vec![0u8; 24];
    junk[0..4].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
    junk[4..6].copy_from_slice(&1u16.to_le_bytes());
    junk.extend_from_slice(&[0xab; 17]);
    poke(&f.path().join(&last), len, &junk);
    p.grow(2);
    let r = ship_dir(p.store.log(), f.path()).unwrap();
    assert_eq!(r.torn_bytes_cut, junk.len() as u64);
    assert_identical(&p, f.path());
}

/// Garbage followed by a valid frame of the follower's segment: damage in the middle to a
/// reader (§3 rule 1, the follower does not open), but the shipper compares the follower
/// with the source up to the damage, cuts the rest and ships the source's bytes.
#[test]
fn damage_followed_by_a_valid_frame_in_the_follower_is_cut_back_to_the_common_prefix() {
    let mut p = Primary::new();
    p.grow(6);
    let f = tempfile::tempdir().unwrap();
    let r = ship_dir(p.store.log(), f.path()).unwrap();
    let last = segment_names(f.path()).pop().unwrap();
    let path = f.path().join(&last);
    let bytes = std::fs::read(&path).unwrap();
    // Damage the payload of the second frame.
    let len1 = u32::from_le_bytes(bytes[72..76].try_into().unwrap()) as usize;
    let second = 72 + 24 + len1.div_ceil(8) * 8;
    flip(&path, (second + 30) as u64);
    let err = Log::open_read_only(f.path(), LogOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Corruption(_)), "{err}");
    let again = ship_dir(p.store.log(), f.path()).unwrap();
    assert_eq!(again.torn_bytes_cut, bytes.len() as u64 - second as u64);
    assert_eq!(again.follower_last_lsn, r.follower_last_lsn);
    assert_identical(&p, f.path());
}

/// A follower whose last segment is sealed, with garbage after the footer: the segment
/// is copied whole again (the report counts the footer among the bytes cut).
#[test]
fn garbage_after_a_sealed_follower_segment_is_cut_and_the_segment_copied_again() {
    let mut p = Primary::new();
    p.grow_to_segments(2);
    let f = tempfile::tempdir().unwrap();
    ship_dir(p.store.log(), f.path()).unwrap();
    // Keep only the first (sealed) segment, with garbage after it.
    let segs = p.store.log().segments();
    std::fs::remove_file(f.path().join(&segs[1].file_name)).unwrap();
    let first = f.path().join(&segs[0].file_name);
    poke(&first, segs[0].bytes, &[0x5a; 40]);
    let r = ship_dir(p.store.log(), f.path()).unwrap();
    assert!(r.torn_bytes_cut >= 40, "{r:?}");
    assert_eq!(r.follower_last_lsn, p.store.durable_lsn());
    assert_identical(&p, f.path());
}

/// A follower seeded by copying the primary's directory as it is (with the active
/// segment's pre-written zeros): the zeros are cut and shipping goes on.
#[test]
fn a_follower_seeded_by_a_plain_copy_of_the_directory_ships_on() {
    let mut p = Primary::new();
    p.grow_to_segments(2);
    p.grow(2);
    let f = tempfile::tempdir().unwrap();
    for (name, bytes) in files(p.path()) {
        if name.ends_with(".seg") {
            std::fs::write(f.path().join(name), bytes).unwrap();
        }
    }
    p.grow(3);
    let r = ship_dir(p.store.log(), f.path()).unwrap();
    assert_eq!(r.follower_last_lsn, p.store.durable_lsn());
    assert_eq!(r.records_shipped, 3);
    assert_identical(&p, f.path());
}

// ---- the old primary returns after a promotion --------------------------------------------

/// Ships `p` into a new follower, then promotes it (opens it for writing) and lets it
/// write `promoted_writes` snapshots; the old primary then writes `old_writes` more and
/// ships. `sealed_last`: the follower's last segment is sealed when it is promoted (its
/// records go into a new segment), else it continues the copy of the active segment.
fn after_promotion(
    sealed_last: bool,
    promoted_writes: usize,
    old_writes: usize,
) -> Result<ShipReport> {
    let mut p = Primary::new();
    p.grow_to_segments(2);
    p.grow(2);
    let f = tempfile::tempdir().unwrap();
    ship_dir(p.store.log(), f.path()).unwrap();
    if sealed_last {
        // Leave the follower with the sealed segments only.
        let active = p.store.log().segments().last().unwrap().file_name.clone();
        std::fs::remove_file(f.path().join(active)).unwrap();
    }
    {
        let promoted = Store::open(f.path(), options()).unwrap();
        assert_eq!(promoted.store_id().unwrap(), p.store.store_id().unwrap());
        let mut tip = promoted.get_tip(p.vs, "master").unwrap().id;
        for _ in 0..promoted_writes {
            let s = snap(p.vs, Some(tip));
            promoted.extend_branch(std::slice::from_ref(&s)).unwrap();
            tip = s.id;
        }
        promoted.close().unwrap();
    }
    p.grow(old_writes);
    let before = files(f.path());
    let r = ship_dir(p.store.log(), f.path());
    if r.is_err() {
        assert_eq!(files(f.path()), before, "a refused ship changes nothing");
    }
    r
}

#[test]
fn the_old_primary_returning_after_a_promotion_is_refused() {
    for sealed_last in [false, true] {
        // Both sides wrote.
        let why = assert_diverged(after_promotion(sealed_last, 3, 3));
        eprintln!("sealed_last {sealed_last}, both wrote: {why}");
        // Only the promoted follower wrote: the old primary lacks its records.
        let why = assert_diverged(after_promotion(sealed_last, 3, 0));
        eprintln!("sealed_last {sealed_last}, the promoted one wrote: {why}");
        // The promoted follower wrote more than the old primary did.
        assert_diverged(after_promotion(sealed_last, 20, 2));
        // The old primary wrote more than the promoted follower did.
        assert_diverged(after_promotion(sealed_last, 1, 20));
    }
}

/// Opening a follower for writing without writing a record does not fork the history:
/// the old primary may still ship into it.
#[test]
fn a_follower_opened_for_writing_that_wrote_nothing_still_takes_the_primarys_records() {
    for sealed_last in [false, true] {
        let r = after_promotion(sealed_last, 0, 4).unwrap();
        assert!(r.records_shipped >= 4, "{r:?}");
    }
}

/// A source that lost records the follower has (a primary restored from an older copy)
/// is refused: shipping never takes records away.
#[test]
fn a_source_behind_the_follower_is_refused() {
    let mut p = Primary::new();
    p.grow_to_segments(2);
    let old = tempfile::tempdir().unwrap();
    for (name, bytes) in files(p.path()) {
        std::fs::write(old.path().join(name), bytes).unwrap();
    }
    p.grow(3);
    let f = tempfile::tempdir().unwrap();
    ship_dir(p.store.log(), f.path()).unwrap();
    let before = files(f.path());
    let older = Log::open_read_only(old.path(), LogOptions::default()).unwrap();
    let why = assert_diverged(ship_dir(&older, f.path()));
    assert!(why.contains("does not"), "{why}");
    assert_eq!(files(f.path()), before);

    // Behind by whole segments, too.
    p.grow_to_segments(4);
    ship_dir(p.store.log(), f.path()).unwrap();
    assert_diverged(ship_dir(&older, f.path()));
}

/// A source opened read-only beside a live writer sees (and so ships) records the writer
/// has written but not yet made durable. If the primary then loses them in a power cut,
/// the follower holds records its primary no longer has: the next ship is refused, as for
/// any source that lost records. (What the follower holds stays a valid log: those records
/// were whole; they were just never acknowledged.)
#[test]
fn a_primary_that_lost_records_a_read_only_source_had_shipped_is_refused() {
    use mdslog::log::fs::{CrashMode, SimStorage};
    use std::sync::Arc;
    let psim = SimStorage::new();
    let mut o = options();
    o.log.durability = Durability::Buffered;
    o.log.buffer_bytes_max = 1; // every batch is written at once, and synced only on flush
    let primary = Store::open_with(Arc::new(psim.clone()), o.clone()).unwrap();
    let vs = new_vs(&primary, "db").id;
    let root = snap(vs, None);
    primary
        .fork_branch("master", std::slice::from_ref(&root))
        .unwrap();
    let synced = primary.flush().unwrap();
    let mut tip = root.id;
    for _ in 0..5 {
        let s = snap(vs, Some(tip));
        primary.extend_branch(std::slice::from_ref(&s)).unwrap();
        tip = s.id;
    }
    let source = Log::open_read_only_with(Arc::new(psim.clone()), LogOptions::default()).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while source.refresh().unwrap() < Lsn(synced.0 + 5) {
        assert!(std::time::Instant::now() < deadline, "the writer wrote");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let f = tempfile::tempdir().unwrap();
    let r = ship_dir(&source, f.path()).unwrap();
    assert_eq!(r.follower_last_lsn, Lsn(synced.0 + 5));
    assert_eq!(
        r.source_last_lsn, r.follower_last_lsn,
        "the read-only source calls them durable"
    );

    // The power cut: the primary keeps only what it had synced.
    psim.crash(CrashMode::DropUnsynced);
    drop(primary);
    let primary = Store::open_with(Arc::new(psim.clone()), o).unwrap();
    assert_eq!(primary.durable_lsn(), synced);
    let before = files(f.path());
    let why = assert_diverged(ship_dir(primary.log(), f.path()));
    assert!(why.contains("does not have"), "{why}");
    assert_eq!(files(f.path()), before);
    // The follower is still a valid log of the lost history.
    let ro = Store::open_read_only(f.path(), StoreOptions::default()).unwrap();
    assert_eq!(ro.durable_lsn(), Lsn(synced.0 + 5));
}
