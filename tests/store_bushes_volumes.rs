//! Bushes (the data placement of a tree of snapshots) and volumes (local working copies).

mod store_support;

use mdslog::*;
use store_support::*;

fn bush(root: SnapshotId, vs: VolumeSetId, server: i64) -> Bush {
    Bush {
        root,
        volume_set: vs,
        data_server: server,
    }
}

#[test]
fn get_bush_from_any_snapshot_of_the_tree() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let m = fork(&store, vs.id, "master", None, 6);
    let d = fork(&store, vs.id, "dev", Some(m[2]), 4);
    store.import_bush(&bush(m[0], vs.id, 42)).unwrap();
    for s in m.iter().chain(&d) {
        assert_eq!(
            store.get_bush(*s).unwrap(),
            bush(m[0], vs.id, 42),
            "from {s}"
        );
    }
    assert_eq!(
        store.get_snapshot(d[3]).unwrap().depth,
        7,
        "a deep snapshot"
    );
}

#[test]
fn a_tree_without_a_bush_is_bush_not_found() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let a = fork(&store, vs.id, "a", None, 3);
    let b = fork(&store, vs.id, "b", None, 2);
    store.import_bush(&bush(a[0], vs.id, 1)).unwrap();
    let err = store.get_bush(b[1]).unwrap_err();
    assert!(
        matches!(err, Error::BushNotFound(x) if x == b[1]),
        "{err:?}"
    );
    let err = store.get_bush(b[0]).unwrap_err();
    assert!(
        matches!(err, Error::BushNotFound(x) if x == b[0]),
        "{err:?}"
    );
    let ghost = SnapshotId::random();
    let err = store.get_bush(ghost).unwrap_err();
    assert!(
        matches!(err, Error::SnapshotNotFound(x) if x == ghost),
        "{err:?}"
    );
}

#[test]
fn import_bush_refusals() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let other = new_vs(&store, "other");
    let m = fork(&store, vs.id, "master", None, 2);
    let o = fork(&store, other.id, "master", None, 1);
    store.import_bush(&bush(m[0], vs.id, 1)).unwrap();
    let lsn = store.durable_lsn();
    let err = store.import_bush(&bush(m[0], vs.id, 2)).unwrap_err();
    assert!(
        matches!(err, Error::BushAlreadyExists(x) if x == m[0]),
        "{err:?}"
    );
    let err = store.import_bush(&bush(m[1], vs.id, 2)).unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument(_)),
        "not a root: {err:?}"
    );
    let err = store.import_bush(&bush(o[0], vs.id, 2)).unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument(_)),
        "a root of another volume set: {err:?}"
    );
    let ghost = SnapshotId::random();
    let err = store.import_bush(&bush(ghost, vs.id, 2)).unwrap_err();
    assert!(
        matches!(err, Error::SnapshotNotFound(x) if x == ghost),
        "{err:?}"
    );
    let gvs = VolumeSetId::random();
    let err = store.import_bush(&bush(m[0], gvs, 2)).unwrap_err();
    assert!(
        matches!(err, Error::VolumeSetNotFound(x) if x == gvs),
        "{err:?}"
    );
    assert_eq!(store.durable_lsn(), lsn);
    assert_eq!(store.get_bush(m[1]).unwrap().data_server, 1);
}

#[test]
fn delete_bush() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let m = fork(&store, vs.id, "master", None, 2);
    store.import_bush(&bush(m[0], vs.id, 1)).unwrap();
    store.delete_bush(m[0]).unwrap();
    let err = store.get_bush(m[1]).unwrap_err();
    assert!(matches!(err, Error::BushNotFound(_)), "{err:?}");
    let err = store.delete_bush(m[0]).unwrap_err();
    assert!(
        matches!(err, Error::BushNotFound(x) if x == m[0]),
        "{err:?}"
    );
    let err = store.delete_bush(m[1]).unwrap_err();
    assert!(
        matches!(err, Error::BushNotFound(x) if x == m[1]),
        "{err:?}"
    );
    // The snapshots stay; a new bush can be recorded.
    assert_eq!(store.counts().unwrap().snapshots, 2);
    store.import_bush(&bush(m[0], vs.id, 9)).unwrap();
    assert_eq!(store.get_bush(m[1]).unwrap().data_server, 9);
}

#[test]
fn get_bushes_lists_the_distinct_bushes_of_tips() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let other = new_vs(&store, "other");
    let a = fork(&store, vs.id, "a1", None, 3);
    fork(&store, vs.id, "a2", Some(a[0]), 2);
    fork(&store, vs.id, "a3", Some(a[1]), 1);
    let b = fork(&store, vs.id, "b", None, 2);
    fork(&store, vs.id, "c", None, 1); // a tree without a bush: not listed
    let o = fork(&store, other.id, "o", None, 1);
    store.import_bush(&bush(a[0], vs.id, 1)).unwrap();
    store.import_bush(&bush(b[0], vs.id, 2)).unwrap();
    store.import_bush(&bush(o[0], other.id, 3)).unwrap();
    let mut got = store.get_bushes(vs.id).unwrap();
    got.sort_by_key(|b| b.data_server);
    assert_eq!(
        got,
        vec![bush(a[0], vs.id, 1), bush(b[0], vs.id, 2)],
        "one per tree, not per tip"
    );
    assert_eq!(
        store.get_bushes(other.id).unwrap(),
        vec![bush(o[0], other.id, 3)]
    );
    let empty = new_vs(&store, "empty");
    assert!(store.get_bushes(empty.id).unwrap().is_empty());
    let ghost = VolumeSetId::random();
    let err = store.get_bushes(ghost).unwrap_err();
    assert!(
        matches!(err, Error::VolumeSetNotFound(x) if x == ghost),
        "{err:?}"
    );
}

// ---- Volumes ---------------------------------------------------------------------------------

#[test]
fn import_and_get_a_volume() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let m = fork(&store, vs.id, "master", None, 1);
    let mut v = volume("vol-1", vs.id, Some(m[0]), "/mnt/a");
    v.attrs = attrs(&[("k", "v")]);
    v.size = 123;
    store.import_volume(&v).unwrap();
    assert_eq!(store.get_volume(&v.id).unwrap(), v);
    let without_base = volume("vol-2", vs.id, None, "/mnt/b");
    store.import_volume(&without_base).unwrap();
    assert_eq!(store.get_volume(&without_base.id).unwrap().base, None);
    let ghost = VolumeId::from("nope");
    let err = store.get_volume(&ghost).unwrap_err();
    assert!(
        matches!(&err, Error::VolumeNotFound(x) if *x == ghost),
        "{err:?}"
    );
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn import_volume_refusals() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let other = new_vs(&store, "other");
    let m = fork(&store, vs.id, "master", None, 1);
    let o = fork(&store, other.id, "master", None, 1);
    store
        .import_volume(&volume("v", vs.id, Some(m[0]), "/mnt/v"))
        .unwrap();
    let lsn = store.durable_lsn();

    let err = store
        .import_volume(&volume("v", vs.id, None, "/mnt/other"))
        .unwrap_err();
    assert!(
        matches!(&err, Error::VolumeAlreadyExists(x) if x.0 == "v"),
        "{err:?}"
    );
    let err = store
        .import_volume(&volume("w", vs.id, None, "/mnt/v"))
        .unwrap_err();
    assert!(
        matches!(&err, Error::MountPathInUse(p) if p == "/mnt/v"),
        "{err:?}"
    );
    let err = store
        .import_volume(&volume("w", other.id, None, "/mnt/v"))
        .unwrap_err();
    assert!(
        matches!(&err, Error::MountPathInUse(_)),
        "mount paths are unique across volume sets: {err:?}"
    );
    let gvs = VolumeSetId::random();
    let err = store
        .import_volume(&volume("w", gvs, None, "/mnt/w"))
        .unwrap_err();
    assert!(
        matches!(err, Error::VolumeSetNotFound(x) if x == gvs),
        "{err:?}"
    );
    let ghost = SnapshotId::random();
    let err = store
        .import_volume(&volume("w", vs.id, Some(ghost), "/mnt/w"))
        .unwrap_err();
    assert!(
        matches!(err, Error::SnapshotNotFound(x) if x == ghost),
        "{err:?}"
    );
    let err = store
        .import_volume(&volume("w", vs.id, Some(o[0]), "/mnt/w"))
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument(_)),
        "a base in another volume set: {err:?}"
    );
    for bad in ["", "  ", "a\u{1}"] {
        let err = store
            .import_volume(&volume(bad, vs.id, None, "/mnt/w"))
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{bad:?}: {err:?}");
    }
    let err = store
        .import_volume(&volume("w", vs.id, None, "/mnt/\u{0}"))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    assert_eq!(store.durable_lsn(), lsn, "nothing written");
    assert_eq!(store.get_all_volumes().unwrap().len(), 1);
}

#[test]
fn volumes_without_a_mount_path_do_not_clash() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    store.import_volume(&volume("a", vs.id, None, "")).unwrap();
    store.import_volume(&volume("b", vs.id, None, "")).unwrap();
    store.delete_volume(&VolumeId::from("a")).unwrap();
    store.import_volume(&volume("c", vs.id, None, "")).unwrap();
    assert_eq!(store.get_volumes(vs.id).unwrap().len(), 2);
}

#[test]
fn get_volumes_ordered_by_id_and_all_volumes() {
    let (_d, store) = open();
    let a = new_vs(&store, "a");
    let b = new_vs(&store, "b");
    let empty = new_vs(&store, "empty");
    for (id, vs) in [
        ("v3", a.id),
        ("v1", a.id),
        ("v2", b.id),
        ("v0", a.id),
        ("v4", b.id),
    ] {
        store
            .import_volume(&volume(id, vs, None, &format!("/mnt/{id}")))
            .unwrap();
    }
    let ids = |v: Vec<Volume>| v.into_iter().map(|v| v.id.0).collect::<Vec<_>>();
    assert_eq!(
        ids(store.get_volumes(a.id).unwrap()),
        vec!["v0", "v1", "v3"]
    );
    assert_eq!(ids(store.get_volumes(b.id).unwrap()), vec!["v2", "v4"]);
    assert!(store.get_volumes(empty.id).unwrap().is_empty());
    assert_eq!(
        ids(store.get_all_volumes().unwrap()),
        vec!["v0", "v1", "v2", "v3", "v4"]
    );
    let ghost = VolumeSetId::random();
    let err = store.get_volumes(ghost).unwrap_err();
    assert!(
        matches!(err, Error::VolumeSetNotFound(x) if x == ghost),
        "{err:?}"
    );
}

#[test]
fn update_volume_changes_name_and_attrs_only() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let m = fork(&store, vs.id, "master", None, 2);
    let v = volume("v", vs.id, Some(m[0]), "/mnt/v");
    store.import_volume(&v).unwrap();
    let cur = Volume {
        name: "renamed".into(),
        attrs: attrs(&[("a", "b")]),
        // Not writable through an update:
        base: Some(m[1]),
        mount_path: "/elsewhere".into(),
        size: 999,
        created: Timestamp(1),
        ..v.clone()
    };
    store.update_volume(&cur).unwrap();
    let got = store.get_volume(&v.id).unwrap();
    assert_eq!(
        got,
        Volume {
            name: "renamed".into(),
            attrs: attrs(&[("a", "b")]),
            ..v.clone()
        }
    );
    assert_eq!(store.num_volumes(m[0]).unwrap(), 1);
    assert_eq!(store.num_volumes(m[1]).unwrap(), 0);
    // No change: nothing written.
    let lsn = store.durable_lsn();
    store.update_volume(&got).unwrap();
    assert_eq!(store.durable_lsn(), lsn);
    // Refusals.
    let err = store
        .update_volume(&volume("ghost", vs.id, None, ""))
        .unwrap_err();
    assert!(
        matches!(&err, Error::VolumeNotFound(x) if x.0 == "ghost"),
        "{err:?}"
    );
    let err = store
        .update_volume(&Volume {
            name: "x\u{1}".into(),
            ..got.clone()
        })
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    let err = store
        .update_volume(&Volume {
            attrs: attrs(&[("", "v")]),
            ..got.clone()
        })
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    assert_eq!(store.durable_lsn(), lsn);
}

#[test]
fn delete_volume_frees_its_mount_path_and_base() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let m = fork(&store, vs.id, "master", None, 1);
    store
        .import_volume(&volume("v", vs.id, Some(m[0]), "/mnt/v"))
        .unwrap();
    store
        .import_volume(&volume("w", vs.id, Some(m[0]), "/mnt/w"))
        .unwrap();
    assert_eq!(store.num_volumes(m[0]).unwrap(), 2);
    store.delete_volume(&VolumeId::from("v")).unwrap();
    assert_eq!(store.num_volumes(m[0]).unwrap(), 1);
    let err = store.get_volume(&VolumeId::from("v")).unwrap_err();
    assert!(matches!(err, Error::VolumeNotFound(_)), "{err:?}");
    let err = store.delete_volume(&VolumeId::from("v")).unwrap_err();
    assert!(
        matches!(&err, Error::VolumeNotFound(x) if x.0 == "v"),
        "{err:?}"
    );
    // The path and the id are free again.
    store
        .import_volume(&volume("v", vs.id, None, "/mnt/v"))
        .unwrap();
    store.delete_volume(&VolumeId::from("w")).unwrap();
    assert_eq!(store.num_volumes(m[0]).unwrap(), 0);
    // With no volume left on it, the snapshot can be deleted.
    store.delete_snapshots(&[m[0]], None).unwrap();
}

#[test]
fn num_volumes_counts_volumes_based_on_a_snapshot() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let m = fork(&store, vs.id, "master", None, 2);
    assert_eq!(store.num_volumes(m[0]).unwrap(), 0);
    for i in 0..3 {
        store
            .import_volume(&volume(
                &format!("v{i}"),
                vs.id,
                Some(m[1]),
                &format!("/m/{i}"),
            ))
            .unwrap();
    }
    store
        .import_volume(&volume("free", vs.id, None, "/m/free"))
        .unwrap();
    assert_eq!(store.num_volumes(m[1]).unwrap(), 3);
    assert_eq!(store.num_volumes(m[0]).unwrap(), 0);
    let ghost = SnapshotId::random();
    let err = store.num_volumes(ghost).unwrap_err();
    assert!(
        matches!(err, Error::SnapshotNotFound(x) if x == ghost),
        "{err:?}"
    );
}
