//! Offline sync through bundle files: export a suffix, import it elsewhere; and a bundle
//! as untrusted input: damaged, truncated, for another volume set, out of order, stale,
//! crafted by hand, too large, or random bytes. Every bad bundle is a typed error and
//! writes nothing; nothing panics.

mod store_support;
mod sync_support;

use std::path::{Path, PathBuf};

use mdslog::event::{Envelope, Event, NewBranch, SnapshotUpdate};
use mdslog::sync::batch::{decode_bundle, encode_bundle, BUNDLE_BYTES_MAX, BUNDLE_MAGIC};
use mdslog::sync::{sync, Batch, BundleIn, BundleOut, SyncMode, SyncReport, Winner};
use mdslog::*;
use proptest::prelude::*;
use store_support::*;
use sync_support::*;

/// Exports `vs` of `s` after `since` (the importer's cursor) to `path`.
fn export(s: &Store, vs: VolumeSetId, path: &Path, since: Lsn) -> SyncReport {
    let out = BundleOut::new(path, since);
    let rep = sync(s, &out, vs, SyncMode::PushOnly).unwrap();
    assert!(rep.pulled.is_none());
    assert!(out.bytes_written().unwrap() > 0);
    rep
}

/// Imports the bundle at `path` into `s` (pull-only: the bundle is the remote).
fn import(s: &Store, vs: VolumeSetId, path: &Path) -> Result<SyncReport> {
    let b = BundleIn::open(path)?;
    sync(s, &b, vs, SyncMode::PullOnly)
}

/// A store holding a volume set with some history: a branch, an extension, a second
/// branch, metadata edits and a rename.
fn source() -> (tempfile::TempDir, Store, VolumeSet) {
    let (d, s) = open();
    let vs = new_vs(&s, "src");
    let m = fork(&s, vs.id, "master", None, 3);
    extend(&s, m[2], 2);
    fork(&s, vs.id, "dev", Some(m[0]), 2);
    let init = s.get_volume_set(vs.id).unwrap();
    let mut cur = init.clone();
    cur.description = "edited".into();
    cur.attrs = attrs(&[("k", "v")]);
    s.update_volume_set(&cur, Some(&init)).unwrap();
    let init = s.get_snapshot(m[1]).unwrap();
    let mut cur = init.clone();
    cur.name = "named".into();
    s.update_snapshot(&cur, Some(&init)).unwrap();
    s.rename_branch(vs.id, "dev", "feature").unwrap();
    (d, s, vs)
}

fn bundle_path(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

fn is_bundle_error(r: &Result<BundleIn>) -> bool {
    matches!(r, Err(Error::Bundle { .. }))
}

// ---- Round trips ------------------------------------------------------------------------

#[test]
fn export_then_import_into_an_empty_store() {
    let (_ds, s, vs) = source();
    let tmp = tempfile::tempdir().unwrap();
    let path = bundle_path(&tmp, "all.mdsb");
    let rep = export(&s, vs.id, &path, Lsn::ZERO);
    assert!(rep.pushed.as_ref().unwrap().records_received > 0);

    // Through the sync driver.
    let (_d2, t) = open();
    let rep = import(&t, vs.id, &path).unwrap();
    let pulled = rep.pulled.unwrap();
    assert!(pulled.volume_set_created);
    assert_eq!(pulled.snapshots_added, 7);
    assert!(rep.conflicts.is_empty() && rep.divergences.is_empty() && rep.missing.is_empty());
    assert_eq!(synced_view(&s, vs.id), synced_view(&t, vs.id));
    assert_eq!(t.sync_cursor(id_of(&s), vs.id).unwrap(), pulled.cursor);
    assert!(pulled.cursor > Lsn::ZERO);

    // Through `apply_batch`, the importer keeping its values.
    let (_d3, u) = open();
    let b = BundleIn::open(&path).unwrap();
    assert_eq!(b.batch().volume_set.id, vs.id);
    assert_eq!(b.batch().source, id_of(&s));
    u.apply_batch(b.batch(), Winner::Receiver).unwrap();
    assert_eq!(synced_view(&s, vs.id), synced_view(&u, vs.id));
}

#[test]
fn a_suffix_bundle_carries_what_came_after_the_cursor() {
    let (_ds, s, vs) = source();
    let (_dt, t) = open();
    let tmp = tempfile::tempdir().unwrap();
    let first = bundle_path(&tmp, "first");
    export(&s, vs.id, &first, Lsn::ZERO);
    import(&t, vs.id, &first).unwrap();
    let since = t.sync_cursor(id_of(&s), vs.id).unwrap();

    let tip = s.get_tip(vs.id, "master").unwrap().id;
    extend(&s, tip, 3);
    s.rename_branch(vs.id, "feature", "feature-2").unwrap();
    let second = bundle_path(&tmp, "second");
    export(&s, vs.id, &second, since);
    let b = BundleIn::open(&second).unwrap();
    assert_eq!(b.batch().after, since);
    assert!(b.batch().records.iter().all(|(lsn, _)| *lsn > since));
    let rep = import(&t, vs.id, &second).unwrap();
    let pulled = rep.pulled.unwrap();
    assert_eq!(pulled.snapshots_added, 3);
    assert_eq!(pulled.branches_renamed, 1);
    assert_eq!(synced_view(&s, vs.id), synced_view(&t, vs.id));
}

#[test]
fn importing_the_same_bundle_twice_changes_nothing_the_second_time() {
    let (_ds, s, vs) = source();
    let tmp = tempfile::tempdir().unwrap();
    let path = bundle_path(&tmp, "b");
    export(&s, vs.id, &path, Lsn::ZERO);
    let (_dt, t) = open();
    import(&t, vs.id, &path).unwrap();
    let lsn = t.durable_lsn();
    let view = synced_view(&t, vs.id);
    let rep = import(&t, vs.id, &path).unwrap();
    assert!(!rep.pulled.as_ref().unwrap().changed_anything(), "{rep:?}");
    assert!(rep.conflicts.is_empty());
    assert_eq!(t.durable_lsn(), lsn);
    assert_eq!(synced_view(&t, vs.id), view);

    // The same for a suffix bundle.
    let since = t.sync_cursor(id_of(&s), vs.id).unwrap();
    let tip = s.get_tip(vs.id, "master").unwrap().id;
    extend(&s, tip, 1);
    let path2 = bundle_path(&tmp, "b2");
    export(&s, vs.id, &path2, since);
    import(&t, vs.id, &path2).unwrap();
    let lsn = t.durable_lsn();
    let rep = import(&t, vs.id, &path2).unwrap();
    assert!(!rep.pulled.as_ref().unwrap().changed_anything(), "{rep:?}");
    assert_eq!(t.durable_lsn(), lsn);
    assert_eq!(synced_view(&s, vs.id), synced_view(&t, vs.id));
}

/// Three suffix bundles a, b, c imported in order; then b again: nothing.
#[test]
fn importing_an_older_suffix_bundle_after_a_newer_one_changes_nothing() {
    let (_ds, s, vs) = source();
    let (_dt, t) = open();
    let tmp = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    let mut since = Lsn::ZERO;
    for (i, d) in ["one", "two", "three"].iter().enumerate() {
        let init = s.get_volume_set(vs.id).unwrap();
        let mut cur = init.clone();
        cur.description = d.to_string();
        s.update_volume_set(&cur, Some(&init)).unwrap();
        let tip = s.get_tip(vs.id, "master").unwrap().id;
        extend(&s, tip, 1);
        let p = bundle_path(&tmp, &format!("b{i}"));
        export(&s, vs.id, &p, since);
        import(&t, vs.id, &p).unwrap();
        since = t.sync_cursor(id_of(&s), vs.id).unwrap();
        paths.push(p);
    }
    assert_eq!(synced_view(&s, vs.id), synced_view(&t, vs.id));
    let lsn = t.durable_lsn();
    for p in &paths[1..] {
        let rep = import(&t, vs.id, p).unwrap();
        assert!(!rep.pulled.as_ref().unwrap().changed_anything(), "{rep:?}");
        assert!(rep.conflicts.is_empty(), "{rep:?}");
    }
    assert_eq!(t.durable_lsn(), lsn);
    assert_eq!(synced_view(&s, vs.id), synced_view(&t, vs.id));
}

/// A full bundle (exported from LSN zero) that is older than what the importer holds
/// must not take the importer back.
#[test]
fn importing_an_older_full_bundle_after_a_newer_one_changes_nothing() {
    let (_ds, s, vs) = source();
    let tmp = tempfile::tempdir().unwrap();
    let old = bundle_path(&tmp, "old");
    export(&s, vs.id, &old, Lsn::ZERO);
    // More history: a metadata edit of the volume set and of a snapshot, an extension.
    let init = s.get_volume_set(vs.id).unwrap();
    let mut cur = init.clone();
    cur.description = "newer".into();
    s.update_volume_set(&cur, Some(&init)).unwrap();
    let tip = s.get_tip(vs.id, "master").unwrap();
    let mut named = tip.clone();
    named.name = "newer name".into();
    s.update_snapshot(&named, Some(&tip)).unwrap();
    extend(&s, tip.id, 2);
    let new = bundle_path(&tmp, "new");
    export(&s, vs.id, &new, Lsn::ZERO);

    let (_dt, t) = open();
    import(&t, vs.id, &new).unwrap();
    assert_eq!(synced_view(&s, vs.id), synced_view(&t, vs.id));
    let lsn = t.durable_lsn();
    let rep = import(&t, vs.id, &old).unwrap();
    assert_eq!(
        t.get_volume_set(vs.id).unwrap().description,
        "newer",
        "the stale bundle took the volume set back: {rep:?}"
    );
    assert_eq!(t.get_snapshot(tip.id).unwrap().name, "newer name");
    assert!(rep.conflicts.is_empty(), "{rep:?}");
    assert!(!rep.pulled.as_ref().unwrap().changed_anything(), "{rep:?}");
    assert_eq!(t.durable_lsn(), lsn);
    assert_eq!(synced_view(&s, vs.id), synced_view(&t, vs.id));
}

// ---- Refused bundles ----------------------------------------------------------------------

#[test]
fn a_bundle_for_another_volume_set_is_refused() {
    let (_ds, s, vs) = source();
    let tmp = tempfile::tempdir().unwrap();
    let path = bundle_path(&tmp, "b");
    export(&s, vs.id, &path, Lsn::ZERO);
    let (_dt, t) = open();
    let other = new_vs(&t, "other");
    let lsn = t.durable_lsn();
    let err = import(&t, other.id, &path).unwrap_err();
    match err {
        Error::Bundle {
            problem: mdslog::BundleProblem::WrongVolumeSet { expected, found },
            ..
        } => assert_eq!((expected, found), (other.id, vs.id)),
        other => panic!("{other:?}"),
    }
    assert_eq!(t.durable_lsn(), lsn);
    assert!(matches!(
        t.get_volume_set(vs.id),
        Err(Error::VolumeSetNotFound(_))
    ));
}

#[test]
fn a_bundle_past_the_importers_cursor_is_a_sync_gap_and_writes_nothing() {
    let (_ds, s, vs) = source();
    let tmp = tempfile::tempdir().unwrap();
    let first = bundle_path(&tmp, "first");
    export(&s, vs.id, &first, Lsn::ZERO);
    let (_dt, t) = open();
    import(&t, vs.id, &first).unwrap();
    let have = t.sync_cursor(id_of(&s), vs.id).unwrap();

    let tip = s.get_tip(vs.id, "master").unwrap().id;
    let ext = extend(&s, tip, 2);
    let past = s.durable_lsn();
    assert!(past > have);
    let tip = s.get_tip(vs.id, "master").unwrap().id;
    extend(&s, tip, 1);
    let gap = bundle_path(&tmp, "gap");
    export(&s, vs.id, &gap, past);
    let lsn = t.durable_lsn();
    let err = import(&t, vs.id, &gap).unwrap_err();
    match err {
        Error::SyncGap {
            peer,
            volume_set,
            have: h,
            after,
        } => {
            assert_eq!(peer, id_of(&s));
            assert_eq!(volume_set, vs.id);
            assert_eq!(h, have);
            assert_eq!(after, past);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(t.durable_lsn(), lsn, "nothing written");
    assert!(t.get_snapshot(ext[0]).is_err());
    // Also directly.
    let b = BundleIn::open(&gap).unwrap();
    assert!(matches!(
        t.apply_batch(b.batch(), Winner::Receiver),
        Err(Error::SyncGap { .. })
    ));
    assert_eq!(t.durable_lsn(), lsn);

    // The right suffix applies.
    let right = bundle_path(&tmp, "right");
    export(&s, vs.id, &right, have);
    import(&t, vs.id, &right).unwrap();
    assert_eq!(synced_view(&s, vs.id), synced_view(&t, vs.id));
}

/// A small bundle: one volume set, one snapshot.
fn small_bundle(tmp: &tempfile::TempDir) -> (Vec<u8>, VolumeSetId) {
    let (_d, s) = open();
    let vs = new_vs(&s, "s");
    fork(&s, vs.id, "m", None, 1);
    let path = bundle_path(tmp, "small");
    export(&s, vs.id, &path, Lsn::ZERO);
    (std::fs::read(&path).unwrap(), vs.id)
}

#[test]
fn every_single_byte_flip_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (bytes, _) = small_bundle(&tmp);
    assert!(bytes.len() < 8192, "{}", bytes.len());
    let path = bundle_path(&tmp, "flipped");
    std::fs::write(&path, &bytes).unwrap();
    assert!(BundleIn::open(&path).is_ok(), "the undamaged bundle opens");
    for i in 0..bytes.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut b = bytes.clone();
            b[i] ^= mask;
            std::fs::write(&path, &b).unwrap();
            let r = BundleIn::open(&path);
            assert!(
                is_bundle_error(&r),
                "byte {i} ^ {mask:#x}: {:?}",
                r.map(|b| b.batch().clone())
            );
        }
    }
}

#[test]
fn every_truncation_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (bytes, _) = small_bundle(&tmp);
    let path = bundle_path(&tmp, "cut");
    for len in 0..bytes.len() {
        std::fs::write(&path, &bytes[..len]).unwrap();
        let r = BundleIn::open(&path);
        assert!(
            is_bundle_error(&r),
            "length {len}: {:?}",
            r.map(|b| b.batch().clone())
        );
    }
    // Bytes appended after the trailer are damage too.
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0u8; 8]);
    std::fs::write(&path, &longer).unwrap();
    assert!(is_bundle_error(&BundleIn::open(&path)));
}

#[test]
fn a_too_large_file_is_refused_before_it_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let path = bundle_path(&tmp, "huge");
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(BUNDLE_BYTES_MAX + 1).unwrap(); // sparse
    drop(f);
    let started = std::time::Instant::now();
    match BundleIn::open(&path) {
        Err(Error::Bundle {
            problem: mdslog::BundleProblem::TooLarge { bytes, max },
            ..
        }) => assert_eq!((bytes, max), (BUNDLE_BYTES_MAX + 1, BUNDLE_BYTES_MAX)),
        other => panic!("{:?}", other.map(|b| b.batch().clone())),
    }
    // Reading a GiB would take far longer than a stat.
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn a_missing_bundle_is_an_io_error() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(matches!(
        BundleIn::open(bundle_path(&tmp, "absent")),
        Err(Error::Io { .. })
    ));
}

// ---- Crafted bundles ---------------------------------------------------------------------

fn env(event: Event) -> Envelope {
    Envelope {
        time: Timestamp(1_700_000_000_000_000),
        actor: None,
        event,
    }
}

/// A batch built by hand from `events`, at LSNs 1, 2, ...
fn hand_batch(source: StoreId, vs: &VolumeSet, events: Vec<Event>) -> Batch {
    let records: Vec<(Lsn, Envelope)> = events
        .into_iter()
        .enumerate()
        .map(|(i, e)| (Lsn(i as u64 + 1), env(e)))
        .collect();
    Batch {
        source,
        volume_set: vs.clone(),
        after: Lsn::ZERO,
        through: Lsn(records.len() as u64),
        records,
        origins: Default::default(),
        cursors: Vec::new(),
        echoes: 0,
    }
}

/// A new branch of `snaps` (oldest first) in `vs`.
fn new_branch(vs: VolumeSetId, name: &str, snaps: Vec<Snapshot>) -> NewBranch {
    let tip = snaps.last().unwrap().id;
    NewBranch {
        volume_set: vs,
        branch: BranchId::random(),
        name: name.into(),
        snapshots: snaps,
        tip,
    }
}

/// A hostile batch is refused at every door: the bundle reader (if its rules catch it),
/// the import, and `apply_batch` itself; and writes nothing.
fn assert_refused(t: &Store, vs: VolumeSetId, batch: &Batch, what: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let path = bundle_path(&tmp, "crafted");
    let bytes = encode_bundle(batch).unwrap();
    std::fs::write(&path, &bytes).unwrap();
    let lsn = t.durable_lsn();
    match BundleIn::open(&path) {
        Err(Error::Bundle {
            problem: mdslog::BundleProblem::BadContent(_),
            ..
        }) => {}
        Err(other) => panic!("{what}: opening: {other:?}"),
        Ok(b) => {
            // Well-formed as a bundle: the import must refuse it.
            let r = sync(t, &b, vs, SyncMode::PullOnly);
            let err = match r {
                Err(e) => e,
                Ok(rep) => panic!("{what}: the import accepted it: {rep:?}"),
            };
            assert!(
                matches!(err, Error::BadSyncBatch { .. }),
                "{what}: import: {err:?}"
            );
        }
    }
    for winner in [Winner::Receiver, Winner::Sender] {
        match t.apply_batch(batch, winner) {
            Err(Error::BadSyncBatch { .. }) => {}
            other => panic!("{what}: apply_batch: {other:?}"),
        }
    }
    assert_eq!(t.durable_lsn(), lsn, "{what}: something was written");
}

/// A store that already holds `vs` (created by a first, valid hand-made batch from
/// `source`), with branch "main" of two snapshots.
fn receiver_with(source: StoreId, vs: &VolumeSet) -> (tempfile::TempDir, Store, Vec<Snapshot>) {
    let (d, t) = open();
    let snaps = chain(vs.id, None, 2);
    let ok = hand_batch(
        source,
        vs,
        vec![
            Event::ImportVolumeSet {
                volume_set: vs.clone(),
            },
            Event::ForkBranch(new_branch(vs.id, "main", snaps.clone())),
        ],
    );
    // The well-formed control goes through a bundle file.
    let tmp = tempfile::tempdir().unwrap();
    let path = bundle_path(&tmp, "ok");
    std::fs::write(&path, encode_bundle(&ok).unwrap()).unwrap();
    let rep = import(&t, vs.id, &path).unwrap();
    assert_eq!(rep.pulled.unwrap().snapshots_added, 2);
    assert_eq!(t.get_tip(vs.id, "main").unwrap().id, snaps[1].id);
    (d, t, snaps)
}

#[test]
fn crafted_records_out_of_order_are_refused() {
    let source = StoreId::random();
    let vs = VolumeSet::new(VolumeSetId::random(), "crafted");
    let (_d, t, snaps) = receiver_with(source, &vs);
    let more = chain(vs.id, Some(snaps[1].id), 2);
    let dev = chain(vs.id, Some(snaps[0].id), 1);
    let base = hand_batch(
        source,
        &vs,
        vec![
            Event::ForkBranch(new_branch(vs.id, "dev", dev)),
            Event::ExtendBranch {
                volume_set: vs.id,
                branch: t.get_branches(&BranchQuery::all(vs.id)).unwrap()[0].id,
                old_tip: snaps[1].id,
                snapshots: more,
            },
        ],
    );
    // Reversed.
    let mut b = base.clone();
    b.records.reverse();
    assert_refused(&t, vs.id, &b, "reversed");
    // A repeated LSN.
    let mut b = base.clone();
    b.records[1].0 = b.records[0].0;
    assert_refused(&t, vs.id, &b, "repeated LSN");
    // An LSN past `through`.
    let mut b = base.clone();
    b.records[1].0 = Lsn(b.through.0 + 1);
    assert_refused(&t, vs.id, &b, "LSN past through");
    // `after` past `through`.
    let mut b = base.clone();
    b.records.clear();
    b.after = Lsn(2); // the receiver's cursor: no gap
    b.through = Lsn(1);
    assert_refused(&t, vs.id, &b, "after past through");
}

/// A record at or before the batch's own `after` breaks the batch rules: the bundle
/// reader refuses it; `apply_batch` writes nothing.
#[test]
fn a_crafted_record_not_after_the_batch_start_is_refused_by_the_reader() {
    let source = StoreId::random();
    let vs = VolumeSet::new(VolumeSetId::random(), "crafted");
    let (_d, t, snaps) = receiver_with(source, &vs);
    let cursor = t.sync_cursor(source, vs.id).unwrap();
    assert_eq!(cursor, Lsn(2));
    let b = crafted_not_after_start(source, &vs, &snaps);
    let tmp = tempfile::tempdir().unwrap();
    let path = bundle_path(&tmp, "crafted");
    std::fs::write(&path, encode_bundle(&b).unwrap()).unwrap();
    assert!(matches!(
        BundleIn::open(&path),
        Err(Error::Bundle {
            problem: mdslog::BundleProblem::BadContent(_),
            ..
        })
    ));
    let lsn = t.durable_lsn();
    let _ = t.apply_batch(&b, Winner::Sender);
    assert_eq!(t.durable_lsn(), lsn, "nothing written");
    assert!(t.get_snapshot(snaps[1].id).unwrap().description.is_empty());
}

/// The same batch handed to `apply_batch` directly.
#[test]
fn apply_batch_refuses_a_record_not_after_the_batch_start() {
    let source = StoreId::random();
    let vs = VolumeSet::new(VolumeSetId::random(), "crafted");
    let (_d, t, snaps) = receiver_with(source, &vs);
    let b = crafted_not_after_start(source, &vs, &snaps);
    let r = t.apply_batch(&b, Winner::Sender);
    assert!(matches!(r, Err(Error::BadSyncBatch { .. })), "{r:?}");
}

/// A batch starting after LSN 2 (the receiver's cursor) whose first record is at LSN 2.
fn crafted_not_after_start(source: StoreId, vs: &VolumeSet, snaps: &[Snapshot]) -> Batch {
    let old = snaps[1].meta();
    let mut new = old.clone();
    new.description = "at the start".into();
    let mut b = hand_batch(
        source,
        vs,
        vec![
            Event::UpdateSnapshots {
                updates: vec![SnapshotUpdate {
                    id: snaps[1].id,
                    new,
                    old,
                    set_blob: None,
                }],
            },
            Event::RenameBranch {
                volume_set: vs.id,
                branch: BranchId::random(),
                old_name: "a".into(),
                new_name: "b".into(),
            },
        ],
    );
    b.records[0].0 = Lsn(2);
    b.records[1].0 = Lsn(3);
    b.after = Lsn(2);
    b.through = Lsn(3);
    b
}

#[test]
fn crafted_records_of_kinds_that_never_travel_are_refused() {
    let source = StoreId::random();
    let vs = VolumeSet::new(VolumeSetId::random(), "crafted");
    let (_d, t, snaps) = receiver_with(source, &vs);
    let s0 = snaps[0].id;
    let local_only = vec![
        Event::SetBlobIdAndSize {
            snapshot: s0,
            blob: BlobId::from("evil"),
            size: 7,
            old_blob: BlobId::nil(),
            old_size: 0,
        },
        Event::SetVolumeSetSize {
            id: vs.id,
            size: 7,
            old_size: 0,
        },
        Event::DeleteVolumeSet { id: vs.id },
        Event::DeleteSnapshots {
            volume_set: vs.id,
            snapshots: vec![snaps[1].id],
            removed_branches: vec![],
            new_tip: None,
        },
        Event::ImportBush {
            bush: Bush {
                root: s0,
                volume_set: vs.id,
                data_server: 1,
            },
        },
        Event::DeleteBush { root: s0 },
        Event::ImportVolume {
            volume: volume("v", vs.id, Some(s0), "/mnt/v"),
        },
        Event::DeleteVolume {
            id: VolumeId::from("v"),
        },
        Event::SetStoreId {
            id: StoreId::random(),
        },
        Event::SyncApplied {
            peer: StoreId::random(),
            volume_set: vs.id,
            through: Lsn(1),
            records: 0,
        },
    ];
    for ev in local_only {
        let what = format!("{ev:?}");
        let b = hand_batch(source, &vs, vec![ev]);
        assert_refused(&t, vs.id, &b, &what);
    }
    assert!(t.get_blob_id(s0).unwrap().is_nil());
    assert_eq!(t.get_tip(vs.id, "main").unwrap().id, snaps[1].id);
}

#[test]
fn crafted_records_about_another_volume_set_are_refused() {
    let source = StoreId::random();
    let vs = VolumeSet::new(VolumeSetId::random(), "crafted");
    let (_d, t, snaps) = receiver_with(source, &vs);
    let other = new_vs(&t, "other");
    let other_snaps = chain(other.id, None, 1);
    t.fork_branch("o", &other_snaps).unwrap();
    let o = other.id;
    let meta = other.meta();
    let cases: Vec<(&str, Event)> = vec![
        (
            "update of another volume set",
            Event::UpdateVolumeSet {
                id: o,
                new: {
                    let mut m = meta.clone();
                    m.description = "hijacked".into();
                    m
                },
                old: meta.clone(),
            },
        ),
        (
            "fork in another volume set",
            Event::ForkBranch(new_branch(o, "x", chain(o, None, 1))),
        ),
        (
            "import in another volume set",
            Event::ImportBranch(new_branch(o, "x", chain(o, None, 1))),
        ),
        (
            "a branch of this volume set holding another's snapshot",
            Event::ForkBranch(new_branch(vs.id, "x", chain(o, None, 1))),
        ),
        (
            "extend in another volume set",
            Event::ExtendBranch {
                volume_set: o,
                branch: BranchId::random(),
                old_tip: other_snaps[0].id,
                snapshots: chain(o, Some(other_snaps[0].id), 1),
            },
        ),
        (
            "rename in another volume set",
            Event::RenameBranch {
                volume_set: o,
                branch: BranchId::random(),
                old_name: "o".into(),
                new_name: "p".into(),
            },
        ),
        (
            "import of another volume set",
            Event::ImportVolumeSet {
                volume_set: other.clone(),
            },
        ),
    ];
    for (what, ev) in cases {
        let b = hand_batch(source, &vs, vec![ev]);
        assert_refused(&t, vs.id, &b, what);
    }
    assert_eq!(t.get_volume_set(o).unwrap().description, "");
    assert_eq!(t.get_snapshot_ids(o).unwrap().len(), 1);
    assert_eq!(t.get_snapshot_ids(vs.id).unwrap().len(), snaps.len());
}

/// A branch of this volume set whose root's parent is a snapshot of another volume set
/// (held by the receiver): the store itself refuses that shape; so must an import.
#[test]
fn a_crafted_branch_rooted_in_another_volume_set_is_refused() {
    let source = StoreId::random();
    let vs = VolumeSet::new(VolumeSetId::random(), "crafted");
    let (_d, t, _) = receiver_with(source, &vs);
    let other = new_vs(&t, "other");
    let os = chain(other.id, None, 1);
    t.fork_branch("o", &os).unwrap();
    let cross = snap(vs.id, Some(os[0].id));
    // The store's own API refuses it.
    assert!(t.fork_branch("x", std::slice::from_ref(&cross)).is_err());
    let b = hand_batch(
        source,
        &vs,
        vec![Event::ForkBranch(new_branch(
            vs.id,
            "x",
            vec![cross.clone()],
        ))],
    );
    let lsn = t.durable_lsn();
    let r = t.apply_batch(&b, Winner::Sender);
    let got = t.get_snapshot(cross.id).ok();
    assert_eq!(t.durable_lsn(), lsn, "written: {r:?}; snapshot now {got:?}");
    assert!(matches!(r, Err(Error::BadSyncBatch { .. })), "{r:?}");
}

/// A snapshot update naming a snapshot of another volume set (update records name no
/// volume set) is never applied to that snapshot.
#[test]
fn a_crafted_update_of_another_volume_sets_snapshot_is_never_applied() {
    let source = StoreId::random();
    let vs = VolumeSet::new(VolumeSetId::random(), "crafted");
    let (_d, t, _) = receiver_with(source, &vs);
    let (os, b) = crafted_update_of_other(&t, source, &vs);
    let lsn = t.durable_lsn();
    let _ = t.apply_batch(&b, Winner::Sender);
    let tmp = tempfile::tempdir().unwrap();
    let path = bundle_path(&tmp, "crafted");
    std::fs::write(&path, encode_bundle(&b).unwrap()).unwrap();
    let _ = import(&t, vs.id, &path);
    assert_eq!(t.get_snapshot(os).unwrap().description, "");
    assert_eq!(t.durable_lsn(), lsn);
}

/// A batch of `vs` updating a snapshot of another volume set held by `t`.
fn crafted_update_of_other(t: &Store, source: StoreId, vs: &VolumeSet) -> (SnapshotId, Batch) {
    let other = new_vs(t, "other");
    let os = chain(other.id, None, 1);
    t.fork_branch("o", &os).unwrap();
    let old = t.get_snapshot(os[0].id).unwrap().meta();
    let mut new = old.clone();
    new.description = "hijacked".into();
    let b = hand_batch(
        source,
        vs,
        vec![Event::UpdateSnapshots {
            updates: vec![SnapshotUpdate {
                id: os[0].id,
                new,
                old,
                set_blob: None,
            }],
        }],
    );
    (os[0].id, b)
}

/// ... and is refused, as every record about another volume set is.
#[test]
fn a_crafted_update_of_another_volume_sets_snapshot_is_refused() {
    let source = StoreId::random();
    let vs = VolumeSet::new(VolumeSetId::random(), "crafted");
    let (_d, t, _) = receiver_with(source, &vs);
    let (os, b) = crafted_update_of_other(&t, source, &vs);
    let lsn = t.durable_lsn();
    let r = t.apply_batch(&b, Winner::Sender);
    assert_eq!(t.get_snapshot(os).unwrap().description, "");
    assert_eq!(t.durable_lsn(), lsn);
    assert!(matches!(r, Err(Error::BadSyncBatch { .. })), "{r:?}");
}

#[test]
fn a_crafted_parent_loop_is_refused() {
    let source = StoreId::random();
    let vs = VolumeSet::new(VolumeSetId::random(), "crafted");
    let (_d, t, _) = receiver_with(source, &vs);
    // Two snapshots each the other's parent.
    let (x, y) = (SnapshotId::random(), SnapshotId::random());
    let sx = Snapshot::new(x, vs.id, Some(y));
    let sy = Snapshot::new(y, vs.id, Some(x));
    let b = hand_batch(
        source,
        &vs,
        vec![Event::ForkBranch(new_branch(vs.id, "loop", vec![sx, sy]))],
    );
    assert_refused(&t, vs.id, &b, "two-snapshot loop");
    // A snapshot its own parent.
    let z = SnapshotId::random();
    let b = hand_batch(
        source,
        &vs,
        vec![Event::ForkBranch(new_branch(
            vs.id,
            "self",
            vec![Snapshot::new(z, vs.id, Some(z))],
        ))],
    );
    assert_refused(&t, vs.id, &b, "self loop");
    assert!(t.get_snapshot(x).is_err() && t.get_snapshot(z).is_err());

    // Into an empty store: not even the volume set is created.
    let (_d2, e) = open();
    let b = hand_batch(
        source,
        &vs,
        vec![
            Event::ImportVolumeSet {
                volume_set: vs.clone(),
            },
            Event::ForkBranch(new_branch(
                vs.id,
                "self",
                vec![Snapshot::new(z, vs.id, Some(z))],
            )),
        ],
    );
    assert_refused(&e, vs.id, &b, "self loop into an empty store");
    assert!(e.get_volume_set(vs.id).is_err());
}

/// Whatever else happens, a parent loop never lands in a store that holds the volume set.
#[test]
fn a_crafted_parent_loop_writes_nothing() {
    let source = StoreId::random();
    let vs = VolumeSet::new(VolumeSetId::random(), "crafted");
    let (_d, t, _) = receiver_with(source, &vs);
    let (x, y) = (SnapshotId::random(), SnapshotId::random());
    let b = hand_batch(
        source,
        &vs,
        vec![Event::ForkBranch(new_branch(
            vs.id,
            "loop",
            vec![
                Snapshot::new(x, vs.id, Some(y)),
                Snapshot::new(y, vs.id, Some(x)),
            ],
        ))],
    );
    let lsn = t.durable_lsn();
    let tmp = tempfile::tempdir().unwrap();
    let path = bundle_path(&tmp, "loop");
    std::fs::write(&path, encode_bundle(&b).unwrap()).unwrap();
    let _ = import(&t, vs.id, &path);
    let _ = t.apply_batch(&b, Winner::Receiver);
    assert_eq!(t.durable_lsn(), lsn);
    assert!(t.get_snapshot(x).is_err() && t.get_snapshot(y).is_err());
    assert!(t.get_tip(vs.id, "loop").is_err());
}

// ---- Random bytes ---------------------------------------------------------------------------

/// A valid bundle to mutate (computed once).
fn sample_bundle() -> &'static [u8] {
    static B: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    B.get_or_init(|| {
        let vs = VolumeSet::new(VolumeSetId(uuid::Uuid::from_bytes([9; 16])), "fuzz");
        let snaps = chain(vs.id, None, 3);
        let mut m = snaps[0].meta();
        let old = m.clone();
        m.description = "d".into();
        let b = hand_batch(
            StoreId::random(),
            &vs,
            vec![
                Event::ImportVolumeSet {
                    volume_set: vs.clone(),
                },
                Event::ForkBranch(new_branch(vs.id, "m", snaps.clone())),
                Event::UpdateSnapshots {
                    updates: vec![SnapshotUpdate {
                        id: snaps[0].id,
                        new: m,
                        old,
                        set_blob: None,
                    }],
                },
            ],
        );
        encode_bundle(&b).unwrap()
    })
}

/// Replaces the trailing digest so the damage gets past it.
fn reseal(mut b: Vec<u8>) -> Vec<u8> {
    if b.len() >= 32 {
        let body = b.len() - 32;
        let d = blake3::hash(&b[..body]);
        b[body..].copy_from_slice(d.as_bytes());
    }
    b
}

/// Decodes; whatever comes back, an accepted batch keeps the batch rules.
fn decode_no_panic(b: &[u8]) {
    if let Ok(batch) = decode_bundle(Path::new("fuzz.mdsb"), b) {
        assert!(batch.check().is_ok());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        decode_no_panic(&bytes);
    }

    #[test]
    fn random_bytes_after_the_magic_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        version_one in any::<bool>(),
        sealed in any::<bool>(),
    ) {
        let mut b = BUNDLE_MAGIC.to_vec();
        if version_one {
            b.extend_from_slice(&1u32.to_le_bytes());
        }
        b.extend_from_slice(&bytes);
        if sealed {
            b.extend_from_slice(&[0u8; 32]);
            b = reseal(b);
        }
        decode_no_panic(&b);
    }

    /// A valid bundle with random damage, resealed so the digest does not catch it: the
    /// header and frame decoding face it.
    #[test]
    fn resealed_damage_never_panics(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let mut b = sample_bundle().to_vec();
        let body = b.len() - 32;
        for (at, v) in &edits {
            let i = at.index(body);
            b[i] = *v;
        }
        if let Some(c) = cut {
            b.truncate(c.index(b.len()) + 1);
        }
        decode_no_panic(&reseal(b));
    }
}

#[test]
fn the_sample_bundle_decodes() {
    let b = decode_bundle(Path::new("sample"), sample_bundle()).unwrap();
    assert_eq!(b.records.len(), 3);
}

/// Offline both ways, s and t sharing a volume set through bundles: s edits (t imports
/// it), then t edits on top and sends its records after s's cursor for t back. The
/// bundle from t cannot know s is its destination, so it holds the records t received
/// from s too.
fn round_trip(winner: Winner) -> (String, Vec<mdslog::event::Conflict>) {
    let (_ds, s, vs) = source();
    let (_dt, t) = open();
    let tmp = tempfile::tempdir().unwrap();
    let a = bundle_path(&tmp, "a");
    export(&s, vs.id, &a, Lsn::ZERO);
    import(&t, vs.id, &a).unwrap();
    let set = |st: &Store, d: &str| {
        let init = st.get_volume_set(vs.id).unwrap();
        let mut cur = init.clone();
        cur.description = d.into();
        assert!(st.update_volume_set(&cur, Some(&init)).unwrap().is_none());
    };
    set(&s, "s1");
    let b = bundle_path(&tmp, "b");
    export(&s, vs.id, &b, t.sync_cursor(id_of(&s), vs.id).unwrap());
    let rep = import(&t, vs.id, &b).unwrap();
    assert!(rep.conflicts.is_empty(), "{rep:?}");
    assert_eq!(t.get_volume_set(vs.id).unwrap().description, "s1");
    set(&t, "t1");
    let c = bundle_path(&tmp, "c");
    export(&t, vs.id, &c, s.sync_cursor(id_of(&t), vs.id).unwrap());
    let rep = s
        .apply_batch(BundleIn::open(&c).unwrap().batch(), winner)
        .unwrap();
    (s.get_volume_set(vs.id).unwrap().description, rep.conflicts)
}

#[test]
fn bundles_both_ways_carry_an_edit_back_without_a_conflict() {
    let got: Vec<(String, usize)> = [Winner::Sender, Winner::Receiver]
        .into_iter()
        .map(|w| {
            let (desc, conflicts) = round_trip(w);
            (desc, conflicts.len())
        })
        .collect();
    assert_eq!(got, vec![("t1".to_string(), 0), ("t1".to_string(), 0)]);
}

/// A laptop and a hub exchange bundles, both importing with "ours wins" (the importer
/// keeps its value on a conflict). Both edit the description: the hub keeps its value
/// and records the conflict; the laptop's next import carries that decision and the
/// laptop adopts the hub's value, with no new conflict. Both end equal.
#[test]
fn bundles_with_ours_on_both_sides_converge_on_the_first_importers_value() {
    let tmp = tempfile::tempdir().unwrap();
    let (_dl, laptop, vs) = source();
    let (_dh, hub) = open();
    let hub_id = hub.store_id().unwrap().unwrap();
    let laptop_id = laptop.store_id().unwrap().unwrap();
    let ours = |s: &Store, p: &Path| {
        let b = BundleIn::open(p).unwrap();
        s.apply_batch(b.batch(), Winner::Receiver).unwrap()
    };
    // First exchange: the hub gets everything.
    let p = bundle_path(&tmp, "1.bundle");
    export(&laptop, vs.id, &p, Lsn::ZERO);
    ours(&hub, &p);
    let p = bundle_path(&tmp, "2.bundle");
    export(&hub, vs.id, &p, laptop.sync_cursor(hub_id, vs.id).unwrap());
    ours(&laptop, &p);
    // Both edit.
    for (s, d) in [(&laptop, "from laptop"), (&hub, "from hub")] {
        let init = s.get_volume_set(vs.id).unwrap();
        let mut cur = init.clone();
        cur.description = d.into();
        s.update_volume_set(&cur, Some(&init)).unwrap();
    }
    let p = bundle_path(&tmp, "3.bundle");
    export(
        &laptop,
        vs.id,
        &p,
        hub.sync_cursor(laptop_id, vs.id).unwrap(),
    );
    let r = ours(&hub, &p);
    assert_eq!(r.conflicts.len(), 1, "{r:?}");
    let p = bundle_path(&tmp, "4.bundle");
    export(&hub, vs.id, &p, laptop.sync_cursor(hub_id, vs.id).unwrap());
    let r = ours(&laptop, &p);
    assert!(r.conflicts.is_empty(), "the hub decided already: {r:?}");
    assert_eq!(
        laptop.get_volume_set(vs.id).unwrap().description,
        "from hub"
    );
    assert_eq!(synced_view(&laptop, vs.id), synced_view(&hub, vs.id));
    // And a further round changes nothing.
    let p = bundle_path(&tmp, "5.bundle");
    export(
        &laptop,
        vs.id,
        &p,
        hub.sync_cursor(laptop_id, vs.id).unwrap(),
    );
    let r = ours(&hub, &p);
    assert!(!r.changed_anything() && r.conflicts.is_empty(), "{r:?}");
    assert_eq!(hub.get_volume_set(vs.id).unwrap().description, "from hub");
}

/// A crafted branch (new, or a move of a known one) that ends on a snapshot the receiver
/// holds in another volume set is refused, and nothing is written.
#[test]
fn a_crafted_branch_ending_in_another_volume_set_is_refused() {
    let source = StoreId::random();
    let vs = VolumeSet::new(VolumeSetId::random(), "crafted");
    let (_d, t, snaps) = receiver_with(source, &vs);
    let other = new_vs(&t, "other");
    let os = chain(other.id, None, 1);
    t.fork_branch("o", &os).unwrap();
    let main = t.get_branches(&BranchQuery::all(vs.id)).unwrap()[0].id;
    for event in [
        Event::ImportBranch(NewBranch {
            volume_set: vs.id,
            branch: BranchId::random(),
            name: "x".into(),
            snapshots: Vec::new(),
            tip: os[0].id,
        }),
        Event::MoveBranch {
            volume_set: vs.id,
            branch: main,
            old_tip: snaps[1].id,
            new_tip: os[0].id,
        },
    ] {
        let lsn = t.durable_lsn();
        let mut b = hand_batch(source, &vs, vec![event]);
        b.after = Lsn::ZERO;
        let r = t.apply_batch(&b, Winner::Sender);
        assert!(matches!(r, Err(Error::BadSyncBatch { .. })), "{r:?}");
        assert_eq!(t.durable_lsn(), lsn);
        assert_eq!(t.get_tip(vs.id, "main").unwrap().id, snaps[1].id);
    }
}
