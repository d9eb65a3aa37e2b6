//! Shipping segments to a follower directory: byte-identical copies, resumable, refused
//! when the histories differ.

mod store_support;

use mdslog::ship::{ship, ShipTarget, Shipper, StorageTarget};
use mdslog::*;
use store_support::*;

fn small_segments() -> StoreOptions {
    StoreOptions {
        log: LogOptions {
            segment_bytes_max: 64 << 10,
            prewrite_bytes: 16 << 10,
            batch_bytes_max: 32 << 10,
            record_bytes_max: 16 << 10,
            ..LogOptions::default()
        },
        actor: None,
    }
}

fn files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".seg"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Every follower segment is the primary's (sealed: equal; the last: a byte prefix).
fn assert_prefix_copy(primary: &std::path::Path, follower: &std::path::Path) {
    let p = files(primary);
    let f = files(follower);
    assert!(f.len() <= p.len());
    for (i, (name, bytes)) in f.iter().enumerate() {
        assert_eq!(name, &p[i].0);
        if i + 1 < f.len() {
            assert_eq!(bytes, &p[i].1, "{name}");
        } else {
            assert!(p[i].1.starts_with(bytes), "{name} is a prefix");
        }
    }
}

fn grow(store: &Store, vs: VolumeSetId, tip: &mut SnapshotId, n: usize) {
    for _ in 0..n {
        let mut s = snap(vs, Some(*tip));
        s.description = "x".repeat(200);
        store.extend_branch(std::slice::from_ref(&s)).unwrap();
        *tip = s.id;
    }
}

#[test]
fn ship_copies_a_prefix_and_a_follower_store_reads_it() {
    let pdir = tempfile::tempdir().unwrap();
    let fdir = tempfile::tempdir().unwrap();
    let primary = Store::open(pdir.path(), small_segments()).unwrap();
    let vs = new_vs(&primary, "db");
    let root = snap(vs.id, None);
    primary
        .fork_branch("master", std::slice::from_ref(&root))
        .unwrap();
    let mut tip = root.id;
    let target = StorageTarget::dir(fdir.path()).unwrap();

    let r = ship(primary.log(), &target).unwrap();
    assert_eq!(r.follower_last_lsn, primary.durable_lsn());
    assert_prefix_copy(pdir.path(), fdir.path());

    grow(&primary, vs.id, &mut tip, 600);
    assert!(primary.log().segments().len() > 3);
    let r = ship(primary.log(), &target).unwrap();
    assert_eq!(r.follower_last_lsn, primary.durable_lsn(), "{r:?}");
    assert!(r.segments_copied >= 3, "{r:?}");
    assert_prefix_copy(pdir.path(), fdir.path());

    // Shipping twice changes nothing.
    let before = files(fdir.path());
    let r = ship(primary.log(), &target).unwrap();
    assert_eq!((r.records_shipped, r.bytes_copied), (0, 0), "{r:?}");
    assert_eq!(files(fdir.path()), before);

    // A read-only store on the follower answers like the primary.
    let follower = Store::open_read_only(fdir.path(), StoreOptions::default()).unwrap();
    assert_eq!(
        follower.canonical_dump().unwrap(),
        primary.canonical_dump().unwrap()
    );
    grow(&primary, vs.id, &mut tip, 50);
    let mut shipper = Shipper::new(&target).unwrap();
    shipper.ship(primary.log()).unwrap();
    follower.refresh().unwrap();
    assert_eq!(
        follower.canonical_dump().unwrap(),
        primary.canonical_dump().unwrap()
    );
    assert_eq!(follower.store_id().unwrap(), primary.store_id().unwrap());

    // While a shipper holds the follower, it cannot be promoted.
    assert!(matches!(
        Store::open(fdir.path(), StoreOptions::default()),
        Err(Error::Locked { .. })
    ));
    drop(shipper);
}

#[test]
fn a_follower_of_another_store_or_a_promoted_one_is_refused() {
    let pdir = tempfile::tempdir().unwrap();
    let fdir = tempfile::tempdir().unwrap();
    let primary = Store::open(pdir.path(), small_segments()).unwrap();
    let vs = new_vs(&primary, "db");
    let root = snap(vs.id, None);
    primary
        .fork_branch("master", std::slice::from_ref(&root))
        .unwrap();
    let mut tip = root.id;
    grow(&primary, vs.id, &mut tip, 300);
    let target = StorageTarget::dir(fdir.path()).unwrap();
    ship(primary.log(), &target).unwrap();

    // Promote the follower: it writes records the primary never had.
    {
        let promoted = Store::open(fdir.path(), small_segments()).unwrap();
        let mut ftip = tip;
        grow(&promoted, vs.id, &mut ftip, 5);
    }
    // The old primary writes more too, then ships: refused as diverged.
    grow(&primary, vs.id, &mut tip, 5);
    let err = ship(primary.log(), &target).unwrap_err();
    assert!(matches!(err, Error::ShipDiverged { .. }), "{err}");

    // A different store entirely.
    let odir = tempfile::tempdir().unwrap();
    let other = Store::open(odir.path(), small_segments()).unwrap();
    new_vs(&other, "x");
    let err = ship(other.log(), &target).unwrap_err();
    assert!(matches!(err, Error::ShipDiverged { .. }), "{err}");
    let _ = target.describe();
}
