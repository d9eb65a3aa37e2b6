//! Durability of the store: every kind of state survives a reopen, a read-only handle sees
//! the same and refuses to write, a second writer is locked out, and past states can be
//! replayed by LSN or by time.

mod store_support;

use std::time::Duration;

use mdslog::state::query::CanonicalDump;
use mdslog::*;
use store_support::*;

/// Ids of what [`populate`] made.
struct Made {
    vs: VolumeSet,
    other: VolumeSetId,
    master: Vec<SnapshotId>,
    dev: Vec<SnapshotId>,
    branch: BranchId,
}

/// Exercises every mutation: volume sets (import, update, size, delete), branches (fork,
/// import, extend, rename), snapshot updates and blobs, deletions with a new tip, bushes
/// and volumes.
fn populate(store: &Store) -> Made {
    let mut vs = VolumeSet::new(VolumeSetId::random(), "repo");
    vs.prefix = "acme".into();
    vs.attrs = attrs(&[("k", "v")]);
    vs.created = Timestamp(1_000);
    store.import_volume_set(&vs).unwrap();
    let mut cur = vs.clone();
    cur.description = "described".into();
    cur.owner_name = "oscar".into();
    store.update_volume_set(&cur, Some(&vs)).unwrap();
    store.set_volume_set_size(vs.id, 4096).unwrap();
    let other = new_vs(store, "other").id;
    let gone = new_vs(store, "gone");
    fork(store, gone.id, "master", None, 2);
    store.delete_volume_set(gone.id).unwrap();

    let master = fork(store, vs.id, "master", None, 3);
    let more = extend(store, master[2], 2);
    let master = [master, more].concat();
    let branch = BranchId::random();
    let dev = chain(vs.id, Some(master[1]), 3);
    store.import_branch(branch, "dev", &dev).unwrap();
    let dev: Vec<SnapshotId> = snap_ids(&dev);
    store.rename_branch(vs.id, "dev", "feature").unwrap();
    fork(store, vs.id, "", Some(master[0]), 1);

    let s = store.get_snapshot(master[2]).unwrap();
    store
        .update_snapshot(
            &Snapshot {
                name: "named".into(),
                attrs: attrs(&[("a", "b")]),
                ..s
            },
            None,
        )
        .unwrap();
    let s = store.get_snapshot(master[3]).unwrap();
    store
        .update_snapshots(&[(
            Snapshot {
                blob: BlobId::from("cas"),
                ..s
            },
            None,
        )])
        .unwrap();
    store
        .set_blob_id_and_size(master[1], &BlobId::from("blob-1"), 77)
        .unwrap();

    store.delete_snapshots(&[dev[2]], Some(dev[1])).unwrap();
    store
        .import_bush(&Bush {
            root: master[0],
            volume_set: vs.id,
            data_server: 5,
        })
        .unwrap();
    let r = fork(store, other, "x", None, 1);
    store
        .import_bush(&Bush {
            root: r[0],
            volume_set: other,
            data_server: 6,
        })
        .unwrap();
    store.delete_bush(r[0]).unwrap();
    store
        .import_volume(&volume("vol-a", vs.id, Some(master[4]), "/mnt/a"))
        .unwrap();
    store
        .import_volume(&volume("vol-b", vs.id, None, "/mnt/b"))
        .unwrap();
    store
        .update_volume(&Volume {
            name: "bee".into(),
            ..volume("vol-b", vs.id, None, "/mnt/b")
        })
        .unwrap();
    store
        .import_volume(&volume("vol-c", other, None, "/mnt/c"))
        .unwrap();
    store.delete_volume(&VolumeId::from("vol-c")).unwrap();
    Made {
        vs,
        other,
        master,
        dev,
        branch,
    }
}

/// What the populated store must answer, checked against any handle or past state.
fn check_populated(store: &Store, m: &Made) {
    let vs = store.get_volume_set(m.vs.id).unwrap();
    assert_eq!(
        (vs.description.as_str(), vs.owner_name.as_str(), vs.size),
        ("described", "oscar", 4096)
    );
    assert_eq!((vs.num_snapshots, vs.num_branches), (8, 3));
    assert_eq!(store.get_tip(m.vs.id, "master").unwrap().id, m.master[4]);
    assert_eq!(store.get_tip(m.vs.id, "feature").unwrap().id, m.dev[1]);
    // The imported branch row went with its deleted tip; the new tip's branch kept the name.
    assert_ne!(
        store
            .get_branches(&BranchQuery::named(m.vs.id, "feature"))
            .unwrap()[0]
            .id,
        m.branch
    );
    assert_eq!(store.get_snapshot(m.master[2]).unwrap().name, "named");
    assert_eq!(store.get_blob_id(m.master[3]).unwrap(), BlobId::from("cas"));
    assert_eq!(store.get_snapshot(m.master[1]).unwrap().size, 77);
    assert_eq!(store.get_bush(m.dev[0]).unwrap().data_server, 5);
    assert_eq!(
        store.get_volume(&VolumeId::from("vol-b")).unwrap().name,
        "bee"
    );
    assert_eq!(store.num_volumes(m.master[4]).unwrap(), 1);
    assert!(store.get_bushes(m.other).unwrap().is_empty());
    let c = store.counts().unwrap();
    assert_eq!(
        (c.volume_sets, c.snapshots, c.branches, c.bushes, c.volumes),
        (2, 9, 4, 1, 2)
    );
}

fn dump(store: &Store) -> CanonicalDump {
    store.canonical_dump().unwrap()
}

#[test]
fn everything_survives_a_reopen() {
    let (dir, store) = open();
    let m = populate(&store);
    check_populated(&store, &m);
    let before = dump(&store);
    let lsn = store.durable_lsn();
    store.close().unwrap();
    let store = reopen(&dir);
    assert_eq!(store.durable_lsn(), lsn);
    assert_eq!(dump(&store), before);
    check_populated(&store, &m);
    // And again after more writes on the reopened store.
    extend(&store, m.master[4], 1);
    let before = dump(&store);
    drop(store);
    let store = reopen(&dir);
    assert_eq!(dump(&store), before);
}

#[test]
fn refused_mutations_leave_no_record_behind() {
    let (dir, store) = open();
    let m = populate(&store);
    let lsn = store.durable_lsn();
    let before = dump(&store);
    assert!(store.rename_branch(m.vs.id, "master", "feature").is_err());
    assert!(store
        .extend_branch(&chain(m.vs.id, Some(m.master[0]), 1))
        .is_err());
    assert!(store.delete_snapshots(&[m.master[0]], None).is_err());
    assert!(store.import_volume_set(&m.vs).is_err());
    assert_eq!(store.durable_lsn(), lsn);
    drop(store);
    let store = reopen(&dir);
    assert_eq!(dump(&store), before);
}

#[test]
fn buffered_writes_survive_close() {
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        log: LogOptions {
            durability: Durability::Buffered,
            ..LogOptions::default()
        },
        ..StoreOptions::default()
    };
    let store = Store::open(dir.path(), opts.clone()).unwrap();
    let m = populate(&store);
    store.flush().unwrap();
    let before = dump(&store);
    store.close().unwrap();
    let store = Store::open(dir.path(), opts).unwrap();
    assert_eq!(dump(&store), before);
    check_populated(&store, &m);
}

#[test]
fn read_only_sees_the_same_and_refuses_every_mutation() {
    let (dir, store) = open();
    let m = populate(&store);
    let before = dump(&store);
    // Beside the live writer.
    let ro = Store::open_read_only(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(dump(&ro), before);
    check_populated(&ro, &m);

    let vs = ro.get_volume_set(m.vs.id).unwrap();
    let s = ro.get_snapshot(m.master[4]).unwrap();
    let ro_err = |r: Result<()>, what: &str| {
        let err = r.unwrap_err();
        assert!(matches!(err, Error::ReadOnly), "{what}: {err:?}");
    };
    ro_err(
        ro.import_volume_set(&VolumeSet::new(VolumeSetId::random(), "x")),
        "import_volume_set",
    );
    ro_err(
        ro.create_volume_set("x", "", Attrs::new(), "", "", "")
            .map(|_| ()),
        "create_volume_set",
    );
    ro_err(
        ro.update_volume_set(
            &VolumeSet {
                name: "y".into(),
                ..vs.clone()
            },
            None,
        )
        .map(|_| ()),
        "update_vs",
    );
    ro_err(ro.set_volume_set_size(vs.id, 1), "set_volume_set_size");
    ro_err(ro.delete_volume_set(vs.id), "delete_volume_set");
    ro_err(
        ro.fork_branch("x", &chain(vs.id, None, 1)).map(|_| ()),
        "fork_branch",
    );
    ro_err(
        ro.import_branch(BranchId::random(), "x", &chain(vs.id, None, 1)),
        "import_branch",
    );
    ro_err(
        ro.extend_branch(&chain(vs.id, Some(s.id), 1)),
        "extend_branch",
    );
    ro_err(ro.rename_branch(vs.id, "master", "main"), "rename_branch");
    ro_err(
        ro.snapshot_fork(
            vs.id,
            SnapshotId::random(),
            "x",
            None,
            BlobId::nil(),
            Attrs::new(),
            "",
            0,
            "",
        )
        .map(|_| ()),
        "snapshot_fork",
    );
    ro_err(
        ro.snapshot_extend(
            SnapshotId::random(),
            s.id,
            BlobId::nil(),
            Attrs::new(),
            "",
            0,
            "",
        )
        .map(|_| ()),
        "snapshot_extend",
    );
    ro_err(
        ro.update_snapshot(
            &Snapshot {
                name: "z".into(),
                ..s.clone()
            },
            None,
        )
        .map(|_| ()),
        "update_snapshot",
    );
    ro_err(
        ro.update_snapshots(&[(
            Snapshot {
                name: "z".into(),
                ..s.clone()
            },
            None,
        )])
        .map(|_| ()),
        "update_snapshots",
    );
    ro_err(
        ro.set_blob_id_and_size(s.id, &BlobId::from("b"), 1),
        "set_blob_id_and_size",
    );
    ro_err(ro.delete_snapshots(&[m.dev[1]], None), "delete_snapshots");
    ro_err(
        ro.delete_branch(vs.id, "feature").map(|_| ()),
        "delete_branch",
    );
    ro_err(
        ro.import_bush(&Bush {
            root: m.master[0],
            volume_set: vs.id,
            data_server: 1,
        }),
        "import_bush",
    );
    ro_err(ro.delete_bush(m.master[0]), "delete_bush");
    ro_err(
        ro.import_volume(&volume("new", vs.id, None, "/new")),
        "import_volume",
    );
    ro_err(
        ro.update_volume(&volume("vol-b", vs.id, None, "/mnt/b")),
        "update_volume",
    );
    ro_err(ro.delete_volume(&VolumeId::from("vol-b")), "delete_volume");
    // Pulls are reads: they work.
    assert!(ro.pull_volume_set(&vs, Some(&vs)).unwrap().is_none());
    assert!(ro
        .pull_snapshots(&[(s.clone(), Some(s.clone()))])
        .unwrap()
        .is_empty());
    assert_eq!(dump(&ro), before);
    assert_eq!(dump(&store), before, "the writer is untouched too");

    // What the writer makes durable later shows up after a refresh.
    let e = extend(&store, m.master[4], 1);
    assert_eq!(ro.refresh().unwrap(), store.durable_lsn());
    assert_eq!(ro.get_tip(m.vs.id, "master").unwrap().id, e[0]);
    assert_eq!(dump(&ro), dump(&store));
    // And with the writer gone.
    store.close().unwrap();
    let ro2 = Store::open_read_only(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(dump(&ro2), dump(&ro));
}

#[test]
fn a_second_writer_is_locked_out() {
    let (dir, store) = open();
    let m = populate(&store);
    let err = Store::open(dir.path(), StoreOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err:?}");
    assert!(
        err.to_string().contains("read-only"),
        "the message says what to do: {err}"
    );
    // The first writer carries on.
    extend(&store, m.master[4], 1);
    let before = dump(&store);
    drop(store);
    let store = reopen(&dir);
    assert_eq!(dump(&store), before);
}

#[test]
fn as_of_an_lsn_shows_the_state_then() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let m = fork(&store, vs.id, "master", None, 3);
    let before_rename = store.durable_lsn();
    let dump_before_rename = dump(&store);
    store.rename_branch(vs.id, "master", "main").unwrap();
    let before_delete = store.durable_lsn();
    store.delete_snapshots(&[m[2]], Some(m[1])).unwrap();

    let then = store.as_of(before_rename).unwrap();
    assert_eq!(then.applied_lsn(), before_rename);
    assert_eq!(then.get_tip(vs.id, "master").unwrap().id, m[2]);
    assert!(matches!(
        then.get_tip(vs.id, "main"),
        Err(Error::BranchNotFound { .. })
    ));
    assert_eq!(then.canonical_dump(), dump_before_rename);

    let then = store.as_of(before_delete).unwrap();
    assert_eq!(then.get_tip(vs.id, "main").unwrap().id, m[2]);
    assert_eq!(then.get_snapshot(m[2]).unwrap().depth, 3);

    // Now: deleted, and the name moved to the new tip.
    assert!(matches!(
        store.get_snapshot(m[2]),
        Err(Error::SnapshotNotFound(_))
    ));
    assert_eq!(store.get_tip(vs.id, "main").unwrap().id, m[1]);
    let now = store.as_of(store.durable_lsn()).unwrap();
    assert_eq!(now.canonical_dump(), dump(&store));
    // Beyond the end: the end.
    let past_end = store.as_of(Lsn(store.durable_lsn().0 + 100)).unwrap();
    assert_eq!(past_end.canonical_dump(), dump(&store));
    // Before the first record: empty.
    let empty = store.as_of(Lsn::ZERO).unwrap();
    assert_eq!(empty.counts(), Default::default());
    assert!(matches!(
        empty.get_volume_set(vs.id),
        Err(Error::VolumeSetNotFound(_))
    ));
    // The store's identity, then the volume set, nothing in it.
    let first = store.as_of(Lsn(2)).unwrap();
    assert_eq!(first.get_volume_set(vs.id).unwrap().num_snapshots, 0);
}

#[test]
fn as_of_a_time_shows_the_state_then() {
    let (dir, store) = open();
    let vs = new_vs(&store, "repo");
    let m = fork(&store, vs.id, "master", None, 2);
    std::thread::sleep(Duration::from_millis(5));
    let t = Timestamp::now();
    let dump_at_t = dump(&store);
    std::thread::sleep(Duration::from_millis(5));
    store.rename_branch(vs.id, "master", "main").unwrap();
    store.delete_snapshots(&[m[1]], None).unwrap();

    let then = store.as_of_time(t).unwrap();
    assert_eq!(then.canonical_dump(), dump_at_t);
    assert_eq!(then.get_tip(vs.id, "master").unwrap().id, m[1]);
    assert!(matches!(
        then.get_tip(vs.id, "main"),
        Err(Error::BranchNotFound { .. })
    ));
    assert_eq!(
        store.as_of_time(Timestamp::now()).unwrap().canonical_dump(),
        dump(&store)
    );
    assert_eq!(
        store.as_of_time(Timestamp(0)).unwrap().counts(),
        Default::default()
    );
    // Past states are the same after a reopen, and from a read-only handle.
    drop(store);
    let ro = Store::open_read_only(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(ro.as_of_time(t).unwrap().canonical_dump(), dump_at_t);
}
