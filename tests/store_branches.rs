//! Branches: fork, import and extend with their chain rules, names, tips, listings,
//! renames and deleting a branch.

mod store_support;

use mdslog::*;
use store_support::*;

/// Asserts that a refused call wrote nothing: same durable LSN, same state.
fn unchanged(store: &Store, lsn: Lsn, dump: &mdslog::state::query::CanonicalDump) {
    assert_eq!(store.durable_lsn(), lsn, "a refused call writes no record");
    assert_eq!(
        &store.canonical_dump().unwrap(),
        dump,
        "a refused call changes nothing"
    );
}

#[test]
fn fork_a_new_root_branch() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let c = chain(vs.id, None, 3);
    let id = store
        .fork_branch("master", &c)
        .unwrap()
        .expect("a branch id");
    for (i, s) in c.iter().enumerate() {
        let got = store.get_snapshot(s.id).unwrap();
        assert_eq!(got.depth, i as u32 + 1, "root has depth 1");
        assert_eq!(got.num_children, u32::from(i < 2));
        assert_eq!(got.is_tip, i == 2);
        assert_eq!(got.branch_name.as_deref(), (i == 2).then_some("master"));
        assert_eq!(got.parent, s.parent);
    }
    let b = store.get_branch(vs.id, id).unwrap();
    assert_eq!(
        (b.name.as_str(), b.tip, b.volume_set, b.has_child),
        ("master", c[2].id, vs.id, false)
    );
    assert_eq!(store.get_tip(vs.id, "master").unwrap().id, c[2].id);
    assert_eq!(store.counts().unwrap().branches, 1);
}

#[test]
fn fork_off_an_inner_snapshot() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let m = fork(&store, vs.id, "master", None, 3);
    let dev = fork(&store, vs.id, "dev", Some(m[1]), 2);
    assert_eq!(store.get_snapshot(dev[0]).unwrap().depth, 3);
    assert_eq!(store.get_snapshot(dev[1]).unwrap().depth, 4);
    assert_eq!(store.num_children(m[1]).unwrap(), 2);
    assert_eq!(store.get_snapshot(m[1]).unwrap().num_children, 2);
    assert_eq!(store.num_children(m[2]).unwrap(), 0);
    assert_eq!(store.get_tip(vs.id, "dev").unwrap().id, dev[1]);
    assert_eq!(
        store.get_tip(vs.id, "master").unwrap().id,
        m[2],
        "forking leaves the other branch alone"
    );
    // Fork off the root, a third branch.
    let x = fork(&store, vs.id, "x", Some(m[0]), 1);
    assert_eq!(store.get_snapshot(x[0]).unwrap().depth, 2);
    assert_eq!(store.num_children(m[0]).unwrap(), 2);
}

#[test]
fn fork_into_a_missing_volume_set_is_volume_set_not_found() {
    let (_d, store) = open();
    let ghost = VolumeSetId::random();
    let c = chain(ghost, None, 2);
    let err = store.fork_branch("master", &c).unwrap_err();
    assert!(
        matches!(err, Error::VolumeSetNotFound(id) if id == ghost),
        "{err:?}"
    );
    let err = store
        .import_branch(BranchId::random(), "master", &c)
        .unwrap_err();
    assert!(
        matches!(err, Error::VolumeSetNotFound(id) if id == ghost),
        "{err:?}"
    );
    let err = store
        .snapshot_fork(
            ghost,
            SnapshotId::random(),
            "m",
            None,
            BlobId::nil(),
            Attrs::new(),
            "s",
            0,
            "",
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::VolumeSetNotFound(id) if id == ghost),
        "{err:?}"
    );
    assert_eq!(
        store.counts().unwrap().snapshots,
        0,
        "no snapshot with a dangling volume set id"
    );
    assert_eq!(
        store.durable_lsn(),
        Lsn(1),
        "only the store's identity record"
    );
}

#[test]
fn a_broken_chain_is_refused() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let m = fork(&store, vs.id, "master", None, 1);
    let (lsn, dump) = (store.durable_lsn(), store.canonical_dump().unwrap());
    // The second does not name the first as its parent.
    let a = snap(vs.id, Some(m[0]));
    let b = snap(vs.id, Some(m[0]));
    let err = store.fork_branch("x", &[a.clone(), b.clone()]).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    // Newest first instead of oldest first: the first one's parent is not (yet) here.
    let mut c = chain(vs.id, Some(m[0]), 3);
    c.reverse();
    let err = store.fork_branch("x", &c).unwrap_err();
    assert!(
        matches!(err, Error::SnapshotNotFound(id) if id == c[1].id),
        "{err:?}"
    );
    let err = store.extend_branch(&c).unwrap_err();
    assert!(
        matches!(err, Error::SnapshotNotFound(id) if id == c[1].id),
        "{err:?}"
    );
    // Newest first on top of the tip: the first one is fine, the second is no child of it.
    let mut c = chain(vs.id, Some(m[0]), 2);
    c.swap(0, 1);
    c[0].parent = Some(m[0]);
    let err = store.extend_branch(&c).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    // A second root in the middle.
    let mut c = chain(vs.id, None, 3);
    c[1].parent = None;
    let err = store.fork_branch("x", &c).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    // The same snapshot twice.
    let s = snap(vs.id, None);
    let mut s2 = s.clone();
    s2.parent = Some(s.id);
    let err = store.fork_branch("x", &[s.clone(), s2]).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    unchanged(&store, lsn, &dump);
}

#[test]
fn snapshots_of_two_volume_sets_are_refused() {
    let (_d, store) = open();
    let a = new_vs(&store, "a");
    let b = new_vs(&store, "b");
    let mb = fork(&store, b.id, "master", None, 1);
    let (lsn, dump) = (store.durable_lsn(), store.canonical_dump().unwrap());
    let mut c = chain(a.id, None, 3);
    c[2].volume_set = b.id;
    let err = store.fork_branch("x", &c).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    // A parent in another volume set.
    let c = chain(a.id, Some(mb[0]), 1);
    let err = store.fork_branch("x", &c).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    let err = store.extend_branch(&c).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    // SnapshotFork checks the parent belongs to the given volume set.
    let err = store
        .snapshot_fork(
            a.id,
            SnapshotId::random(),
            "x",
            Some(mb[0]),
            BlobId::nil(),
            Attrs::new(),
            "s",
            0,
            "",
        )
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    unchanged(&store, lsn, &dump);
}

#[test]
fn an_unknown_first_parent_is_snapshot_not_found() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let ghost = SnapshotId::random();
    let c = chain(vs.id, Some(ghost), 2);
    let lsn = store.durable_lsn();
    for err in [
        store.fork_branch("x", &c).unwrap_err(),
        store
            .import_branch(BranchId::random(), "x", &c)
            .unwrap_err(),
        store.extend_branch(&c).unwrap_err(),
        store
            .snapshot_extend(
                SnapshotId::random(),
                ghost,
                BlobId::nil(),
                Attrs::new(),
                "",
                0,
                "",
            )
            .unwrap_err(),
    ] {
        assert!(
            matches!(err, Error::SnapshotNotFound(id) if id == ghost),
            "{err:?}"
        );
    }
    assert_eq!(store.durable_lsn(), lsn);
}

#[test]
fn an_empty_list_is_a_no_op() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let lsn = store.durable_lsn();
    assert_eq!(store.fork_branch("master", &[]).unwrap(), None);
    store
        .import_branch(BranchId::random(), "master", &[])
        .unwrap();
    store.extend_branch(&[]).unwrap();
    assert_eq!(store.durable_lsn(), lsn, "nothing written");
    assert_eq!(store.counts().unwrap().branches, 0);
    let err = store.get_tip(vs.id, "master").unwrap_err();
    assert!(matches!(err, Error::BranchNotFound { .. }), "{err:?}");
}

#[test]
fn import_skips_existing_snapshots() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let mut c = chain(vs.id, None, 4);
    c[1].name = "original".into();
    store.fork_branch("master", &c[..2]).unwrap();
    // The same snapshots again, carrying other metadata: skipped, not overwritten. (An
    // extend needs a parent for its first snapshot, so it starts at c[1].)
    let mut again = c[1..].to_vec();
    again[0].name = "changed".into();
    again[0].depth = 99;
    let bid = BranchId::random();
    store.extend_branch(&again).unwrap();
    assert_eq!(store.counts().unwrap().snapshots, 4);
    assert_eq!(store.get_snapshot(c[1].id).unwrap().name, "original");
    assert_eq!(store.get_tip(vs.id, "master").unwrap().id, c[3].id);
    for (i, s) in c.iter().enumerate() {
        assert_eq!(store.get_snapshot(s.id).unwrap().depth, i as u32 + 1);
    }
    // A whole chain that is already here, extended again: nothing to do.
    let lsn = store.durable_lsn();
    store.extend_branch(&c[1..]).unwrap();
    assert_eq!(store.durable_lsn(), lsn);
    // Importing a branch whose first snapshots exist: only the new ones are added.
    let d = chain(vs.id, Some(c[1].id), 2);
    let mut imp = vec![c[0].clone(), c[1].clone()];
    imp.extend(d.iter().cloned());
    store.import_branch(bid, "dev", &imp).unwrap();
    assert_eq!(store.counts().unwrap().snapshots, 6);
    assert_eq!(store.get_snapshot(d[1].id).unwrap().depth, 4);
    assert_eq!(store.num_children(c[1].id).unwrap(), 2);
    assert_eq!(store.get_branch(vs.id, bid).unwrap().tip, d[1].id);
    assert_eq!(store.get_volume_set(vs.id).unwrap().num_snapshots, 6);
}

#[test]
fn an_existing_snapshot_that_differs_is_an_import_mismatch() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let m = fork(&store, vs.id, "master", None, 3);
    let (lsn, dump) = (store.durable_lsn(), store.canonical_dump().unwrap());
    // m[2] again but with m[0] as its parent.
    let mut s = store.get_snapshot(m[2]).unwrap();
    s.parent = Some(m[0]);
    let err = store
        .import_branch(BranchId::random(), "x", std::slice::from_ref(&s))
        .unwrap_err();
    assert!(matches!(err, Error::SnapshotImportMismatch(_)), "{err:?}");
    assert!(err.to_string().contains(&m[2].to_string()), "{err}");
    let err = store.extend_branch(std::slice::from_ref(&s)).unwrap_err();
    assert!(matches!(err, Error::SnapshotImportMismatch(_)), "{err:?}");
    // As a root.
    let mut r = store.get_snapshot(m[1]).unwrap();
    r.parent = None;
    let err = store
        .fork_branch("x", std::slice::from_ref(&r))
        .unwrap_err();
    assert!(matches!(err, Error::SnapshotImportMismatch(_)), "{err:?}");
    unchanged(&store, lsn, &dump);
    // In another volume set.
    let other = new_vs(&store, "other");
    let (lsn, dump) = (store.durable_lsn(), store.canonical_dump().unwrap());
    let mut o = store.get_snapshot(m[0]).unwrap();
    o.volume_set = other.id;
    let err = store
        .fork_branch("x", std::slice::from_ref(&o))
        .unwrap_err();
    assert!(matches!(err, Error::SnapshotImportMismatch(_)), "{err:?}");
    unchanged(&store, lsn, &dump);
}

#[test]
fn a_duplicate_name_is_branch_already_exists() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let c = chain(vs.id, None, 1);
    let master = store.fork_branch("master", &c).unwrap().unwrap();
    let (lsn, dump) = (store.durable_lsn(), store.canonical_dump().unwrap());
    let c2 = chain(vs.id, Some(c[0].id), 1);
    let err = store.fork_branch("master", &c2).unwrap_err();
    match &err {
        Error::BranchAlreadyExists {
            volume_set,
            name,
            existing,
        } => {
            assert_eq!(
                (*volume_set, name.as_str(), *existing),
                (vs.id, "master", master)
            );
        }
        other => panic!("expected BranchAlreadyExists, got {other:?}"),
    }
    assert!(err.to_string().contains("master"), "{err}");
    let err = store
        .import_branch(BranchId::random(), "master", &chain(vs.id, None, 1))
        .unwrap_err();
    assert!(matches!(err, Error::BranchAlreadyExists { .. }), "{err:?}");
    unchanged(&store, lsn, &dump);
    // The same name in another volume set is fine.
    let other = new_vs(&store, "other");
    fork(&store, other.id, "master", None, 1);
}

#[test]
fn empty_names_are_not_unique() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let a = fork(&store, vs.id, "", None, 1);
    let b = fork(&store, vs.id, "", None, 1);
    let c = fork(&store, vs.id, "", Some(a[0]), 1);
    let all = store.get_branches(&BranchQuery::all(vs.id)).unwrap();
    assert_eq!(all.len(), 3);
    assert!(all.iter().all(|b| b.name.is_empty()));
    for s in [a[0], b[0], c[0]] {
        let snap = store.get_snapshot(s).unwrap();
        assert!(snap.is_tip);
        assert_eq!(
            snap.branch_name, None,
            "an unnamed branch gives its tip no name"
        );
    }
    let err = store.get_tip(vs.id, "").unwrap_err();
    assert!(matches!(err, Error::BranchNotFound { .. }), "{err:?}");
}

#[test]
fn a_bad_branch_name_is_refused() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let long = "b".repeat(256);
    for bad in [
        "a:b",
        "*",
        "rel*",
        "x\u{1}",
        " lead",
        "trail ",
        long.as_str(),
    ] {
        let err = store.fork_branch(bad, &chain(vs.id, None, 1)).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{bad:?}: {err:?}");
        let err = store
            .import_branch(BranchId::random(), bad, &chain(vs.id, None, 1))
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{bad:?}: {err:?}");
    }
    assert_eq!(store.counts().unwrap().snapshots, 0);
}

#[test]
fn validate_branch_name_rules() {
    for good in [
        "master",
        "",
        "feature/x",
        "v1.2-rc",
        "ünïcödé",
        &"n".repeat(255),
    ] {
        assert!(
            mdslog::store::validate_branch_name(good).is_ok(),
            "{good:?}"
        );
    }
    for bad in [
        "a:b",
        ":",
        "*",
        "a*b",
        "tab\t",
        "nl\n",
        "\u{7f}",
        " x",
        "x ",
        &"n".repeat(256),
    ] {
        let err = mdslog::store::validate_branch_name(bad).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{bad:?}: {err:?}");
    }
}

#[test]
fn import_with_an_existing_branch_id_is_refused() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let id = BranchId::random();
    let c = chain(vs.id, None, 2);
    store.import_branch(id, "master", &c).unwrap();
    assert_eq!(store.get_branch(vs.id, id).unwrap().tip, c[1].id);
    let (lsn, dump) = (store.durable_lsn(), store.canonical_dump().unwrap());
    let err = store
        .import_branch(id, "other", &chain(vs.id, Some(c[0].id), 1))
        .unwrap_err();
    assert!(
        matches!(err, Error::BranchIdAlreadyExists(x) if x == id),
        "{err:?}"
    );
    unchanged(&store, lsn, &dump);
    // Also across volume sets: a branch id is global.
    let other = new_vs(&store, "other");
    let (lsn, dump) = (store.durable_lsn(), store.canonical_dump().unwrap());
    let err = store
        .import_branch(id, "master", &chain(other.id, None, 1))
        .unwrap_err();
    assert!(
        matches!(err, Error::BranchIdAlreadyExists(x) if x == id),
        "{err:?}"
    );
    unchanged(&store, lsn, &dump);
}

#[test]
fn a_snapshot_is_the_tip_of_at_most_one_branch() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let c = chain(vs.id, None, 2);
    store.fork_branch("master", &c).unwrap();
    let lsn = store.durable_lsn();
    // A second branch ending on the same (existing) tip.
    let err = store.fork_branch("again", &c).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    assert_eq!(store.durable_lsn(), lsn);
    // Ending on an existing inner snapshot is fine: it becomes an inner tip.
    store.fork_branch("inner", &c[..1]).unwrap();
    let b = &store
        .get_branches(&BranchQuery::named(vs.id, "inner"))
        .unwrap()[0];
    assert!(b.has_child);
    assert_eq!(b.tip, c[0].id);
}

#[test]
fn extend_moves_the_tip() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let m = fork(&store, vs.id, "master", None, 1);
    let id = store
        .get_branches(&BranchQuery::named(vs.id, "master"))
        .unwrap()[0]
        .id;
    let e = extend(&store, m[0], 3);
    let tip = store.get_tip(vs.id, "master").unwrap();
    assert_eq!(tip.id, e[2]);
    assert_eq!(tip.depth, 4);
    assert_eq!(tip.branch_name.as_deref(), Some("master"));
    let old = store.get_snapshot(m[0]).unwrap();
    assert!(!old.is_tip);
    assert_eq!(old.branch_name, None);
    assert_eq!(
        store.get_branch(vs.id, id).unwrap().tip,
        e[2],
        "the same branch, its id kept"
    );
    assert_eq!(store.counts().unwrap().branches, 1);
    // SnapshotExtend does the same for one snapshot.
    let s = store
        .snapshot_extend(
            SnapshotId::random(),
            e[2],
            BlobId::from("b"),
            attrs(&[("k", "v")]),
            "n",
            5,
            "d",
        )
        .unwrap();
    assert_eq!(
        (s.depth, s.size, s.name.as_str(), s.description.as_str()),
        (5, 5, "n", "d")
    );
    assert_eq!(s.blob, BlobId::from("b"));
    assert_eq!(s.attrs, attrs(&[("k", "v")]));
    assert_eq!(store.get_tip(vs.id, "master").unwrap().id, s.id);
}

#[test]
fn extend_from_a_non_tip_is_not_a_tip() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let m = fork(&store, vs.id, "master", None, 3);
    let (lsn, dump) = (store.durable_lsn(), store.canonical_dump().unwrap());
    let c = chain(vs.id, Some(m[1]), 1);
    let err = store.extend_branch(&c).unwrap_err();
    assert!(matches!(err, Error::NotATip(x) if x == m[1]), "{err:?}");
    assert!(
        err.to_string().contains("fork"),
        "the message says what to do: {err}"
    );
    let err = store
        .snapshot_extend(
            SnapshotId::random(),
            m[0],
            BlobId::nil(),
            Attrs::new(),
            "",
            0,
            "",
        )
        .unwrap_err();
    assert!(matches!(err, Error::NotATip(x) if x == m[0]), "{err:?}");
    unchanged(&store, lsn, &dump);
}

#[test]
fn extend_a_root_without_parent_is_refused() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let lsn = store.durable_lsn();
    let err = store.extend_branch(&chain(vs.id, None, 2)).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    assert_eq!(store.durable_lsn(), lsn);
    assert_eq!(store.counts().unwrap().snapshots, 0);
}

#[test]
fn two_extends_of_one_tip_the_second_is_not_a_tip() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let m = fork(&store, vs.id, "master", None, 1);
    let first = chain(vs.id, Some(m[0]), 1);
    let second = chain(vs.id, Some(m[0]), 1);
    store.extend_branch(&first).unwrap();
    let err = store.extend_branch(&second).unwrap_err();
    assert!(matches!(err, Error::NotATip(x) if x == m[0]), "{err:?}");
    assert_eq!(store.get_tip(vs.id, "master").unwrap().id, first[0].id);
    let err = store.get_snapshot(second[0].id).unwrap_err();
    assert!(matches!(err, Error::SnapshotNotFound(_)), "{err:?}");
    // The loser can fork instead.
    store.fork_branch("other", &second).unwrap();
    assert_eq!(store.num_children(m[0]).unwrap(), 2);
}

#[test]
fn two_concurrent_extends_of_one_tip_exactly_one_wins() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let m = fork(&store, vs.id, "master", None, 1);
    let store = std::sync::Arc::new(store);
    for _ in 0..20 {
        let tip = store.get_tip(vs.id, "master").unwrap().id;
        let results: Vec<Result<()>> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    let store = store.clone();
                    let c = chain(vs.id, Some(tip), 1);
                    sc.spawn(move || store.extend_branch(&c))
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
        for r in results.iter().filter(|r| r.is_err()) {
            assert!(matches!(r, Err(Error::NotATip(x)) if *x == tip), "{r:?}");
        }
        assert_eq!(store.num_children(tip).unwrap(), 1);
    }
    assert_eq!(store.get_tip(vs.id, "master").unwrap().depth, 21);
    let _ = m;
}

#[test]
fn extend_an_inner_tip() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let c = chain(vs.id, None, 3);
    store.fork_branch("master", &c).unwrap();
    store.fork_branch("old", &c[..1]).unwrap();
    let e = chain(vs.id, Some(c[0].id), 1);
    store.extend_branch(&e).unwrap();
    assert_eq!(store.get_tip(vs.id, "old").unwrap().id, e[0].id);
    assert_eq!(store.num_children(c[0].id).unwrap(), 2);
    assert!(!store.get_snapshot(c[0].id).unwrap().is_tip);
}

#[test]
fn get_tip_of_an_unknown_branch_is_branch_not_found() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    fork(&store, vs.id, "master", None, 1);
    let err = store.get_tip(vs.id, "nope").unwrap_err();
    match &err {
        Error::BranchNotFound { volume_set, what } => {
            assert_eq!(*volume_set, vs.id);
            assert!(what.contains("nope"), "{what}");
        }
        other => panic!("expected BranchNotFound, got {other:?}"),
    }
    let ghost = VolumeSetId::random();
    let err = store.get_tip(ghost, "master").unwrap_err();
    assert!(
        matches!(err, Error::VolumeSetNotFound(x) if x == ghost),
        "{err:?}"
    );
}

#[test]
fn get_branches_carries_tips_with_derived_fields() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let m = fork(&store, vs.id, "master", None, 3);
    let dev = fork(&store, vs.id, "dev", Some(m[0]), 1);
    store
        .fork_branch("inner", &[store.get_snapshot(m[1]).unwrap()])
        .unwrap();
    let unnamed = fork(&store, vs.id, "", None, 1);
    let all = store.get_branches(&BranchQuery::all(vs.id)).unwrap();
    let names: Vec<&str> = all.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, vec!["", "dev", "inner", "master"], "ordered by name");
    let by = |n: &str| all.iter().find(|b| b.name == n).unwrap().clone();

    let master = by("master");
    let t = master.tip_snapshot.as_ref().unwrap();
    assert_eq!((master.tip, master.has_child), (m[2], false));
    assert_eq!(
        (
            t.id,
            t.depth,
            t.num_children,
            t.is_tip,
            t.branch_name.as_deref()
        ),
        (m[2], 3, 0, true, Some("master"))
    );

    let inner = by("inner");
    let t = inner.tip_snapshot.as_ref().unwrap();
    assert!(
        inner.has_child,
        "an inner snapshot that is a tip has a child"
    );
    assert_eq!(
        (
            t.id,
            t.depth,
            t.num_children,
            t.is_tip,
            t.branch_name.as_deref()
        ),
        (m[1], 2, 1, true, Some("inner"))
    );

    let d = by("dev");
    let t = d.tip_snapshot.as_ref().unwrap();
    assert_eq!(
        (t.id, t.depth, t.num_children, d.has_child),
        (dev[0], 2, 0, false)
    );

    let u = by("");
    assert_eq!(u.tip, unnamed[0]);
    assert_eq!(u.tip_snapshot.as_ref().unwrap().branch_name, None);

    // Every leaf is the tip of some branch.
    for s in store
        .get_snapshots(&SnapshotQuery {
            volume_set: Some(vs.id),
            ..Default::default()
        })
        .unwrap()
    {
        if s.num_children == 0 {
            assert!(s.is_tip, "leaf {} is a tip", s.id);
        }
    }
}

#[test]
fn get_branches_filters() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let other = new_vs(&store, "other");
    let m = fork(&store, vs.id, "master", None, 1);
    fork(&store, vs.id, "feature-a", Some(m[0]), 1);
    fork(&store, vs.id, "feature-b", Some(m[0]), 1);
    fork(&store, vs.id, "", Some(m[0]), 1);
    fork(&store, other.id, "feature-c", None, 1);
    let names = |q: BranchQuery| -> Vec<String> {
        store
            .get_branches(&q)
            .unwrap()
            .into_iter()
            .map(|b| b.name)
            .collect()
    };
    assert_eq!(names(BranchQuery::all(vs.id)).len(), 4);
    assert_eq!(
        names(BranchQuery::named(vs.id, "feature-a")),
        vec!["feature-a"]
    );
    assert!(
        names(BranchQuery::named(vs.id, "feature-c")).is_empty(),
        "another volume set's branch"
    );
    assert_eq!(
        names(BranchQuery::named(vs.id, "")),
        vec![""],
        "the unnamed ones"
    );
    let search = |s: &str| {
        names(BranchQuery {
            search: Some(s.into()),
            ..BranchQuery::all(vs.id)
        })
    };
    assert_eq!(search("feature"), vec!["feature-a", "feature-b"]);
    assert_eq!(search("ast"), vec!["master"]);
    assert!(search("zzz").is_empty());
    let id = store
        .get_branches(&BranchQuery::named(vs.id, "feature-b"))
        .unwrap()[0]
        .id;
    assert_eq!(
        names(BranchQuery {
            id: Some(id),
            ..BranchQuery::all(vs.id)
        }),
        vec!["feature-b"]
    );
    assert!(names(BranchQuery {
        id: Some(id),
        ..BranchQuery::all(other.id)
    })
    .is_empty());
    assert!(names(BranchQuery {
        id: Some(id),
        name: Some("master".into()),
        ..BranchQuery::all(vs.id)
    })
    .is_empty());
    let ghost = VolumeSetId::random();
    let err = store.get_branches(&BranchQuery::all(ghost)).unwrap_err();
    assert!(
        matches!(err, Error::VolumeSetNotFound(x) if x == ghost),
        "{err:?}"
    );
}

#[test]
fn get_branch_by_id() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let other = new_vs(&store, "other");
    let c = chain(vs.id, None, 2);
    let id = store.fork_branch("master", &c).unwrap().unwrap();
    let b = store.get_branch(vs.id, id).unwrap();
    assert_eq!((b.id, b.name.as_str(), b.tip), (id, "master", c[1].id));
    assert_eq!(b.tip_snapshot.unwrap().depth, 2);
    let ghost = BranchId::random();
    let err = store.get_branch(vs.id, ghost).unwrap_err();
    assert!(
        matches!(&err, Error::BranchNotFound { what, .. } if what.contains(&ghost.to_string())),
        "{err:?}"
    );
    let err = store.get_branch(other.id, id).unwrap_err();
    assert!(
        matches!(err, Error::BranchNotFound { .. }),
        "a branch of another volume set: {err:?}"
    );
    let err = store.get_branch(VolumeSetId::random(), id).unwrap_err();
    assert!(matches!(err, Error::VolumeSetNotFound(_)), "{err:?}");
}

#[test]
fn snapshots_by_branch_tip_to_root() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let m = fork(&store, vs.id, "master", None, 3);
    let dev = fork(&store, vs.id, "dev", Some(m[1]), 2);
    let got = snap_ids(
        &store
            .get_snapshots_by_branch(&BranchQuery::named(vs.id, "dev"))
            .unwrap(),
    );
    assert_eq!(got, vec![dev[1], dev[0], m[1], m[0]]);
    let got = store
        .get_snapshots_by_branch(&BranchQuery::named(vs.id, "master"))
        .unwrap();
    assert_eq!(snap_ids(&got), vec![m[2], m[1], m[0]]);
    assert_eq!(
        got.iter().map(|s| s.depth).collect::<Vec<_>>(),
        vec![3, 2, 1]
    );
    let id = store
        .get_branches(&BranchQuery::named(vs.id, "dev"))
        .unwrap()[0]
        .id;
    let q = BranchQuery {
        id: Some(id),
        ..BranchQuery::all(vs.id)
    };
    assert_eq!(store.get_snapshots_by_branch(&q).unwrap().len(), 4);

    let err = store
        .get_snapshots_by_branch(&BranchQuery::named(vs.id, "nope"))
        .unwrap_err();
    assert!(
        matches!(err, Error::BranchNotFound { .. }),
        "0 matches: {err:?}"
    );
    let err = store
        .get_snapshots_by_branch(&BranchQuery::all(vs.id))
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument(_)),
        "2 matches: {err:?}"
    );
    let q = BranchQuery {
        search: Some("e".into()),
        ..BranchQuery::all(vs.id)
    };
    let err = store.get_snapshots_by_branch(&q).unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument(_)),
        "2 matches: {err:?}"
    );
    let q = BranchQuery {
        search: Some("ev".into()),
        ..BranchQuery::all(vs.id)
    };
    assert_eq!(store.get_snapshots_by_branch(&q).unwrap()[0].id, dev[1]);
    let err = store
        .get_snapshots_by_branch(&BranchQuery::all(VolumeSetId::random()))
        .unwrap_err();
    assert!(matches!(err, Error::VolumeSetNotFound(_)), "{err:?}");
}

#[test]
fn rename_a_branch() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let m = fork(&store, vs.id, "master", None, 2);
    let id = store
        .get_branches(&BranchQuery::named(vs.id, "master"))
        .unwrap()[0]
        .id;
    store.rename_branch(vs.id, "master", "main").unwrap();
    assert_eq!(store.get_tip(vs.id, "main").unwrap().id, m[1]);
    assert_eq!(
        store.get_tip(vs.id, "main").unwrap().branch_name.as_deref(),
        Some("main")
    );
    let err = store.get_tip(vs.id, "master").unwrap_err();
    assert!(matches!(err, Error::BranchNotFound { .. }), "{err:?}");
    assert_eq!(
        store.get_branch(vs.id, id).unwrap().name,
        "main",
        "same branch id"
    );
    // The old name is free again.
    fork(&store, vs.id, "master", Some(m[0]), 1);
    assert_eq!(store.counts().unwrap().branches, 2);
    // An unnamed branch cannot be renamed by name (it has none).
    fork(&store, vs.id, "", None, 1);
    let err = store.rename_branch(vs.id, "", "named").unwrap_err();
    assert!(matches!(err, Error::BranchNotFound { .. }), "{err:?}");
}

#[test]
fn rename_rules() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let m = fork(&store, vs.id, "master", None, 1);
    fork(&store, vs.id, "dev", Some(m[0]), 1);
    let dev_id = store
        .get_branches(&BranchQuery::named(vs.id, "dev"))
        .unwrap()[0]
        .id;
    let (lsn, dump) = (store.durable_lsn(), store.canonical_dump().unwrap());

    let err = store.rename_branch(vs.id, "master", "master").unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument(_)),
        "same name: {err:?}"
    );

    let err = store.rename_branch(vs.id, "nope", "other").unwrap_err();
    assert!(
        matches!(&err, Error::BranchNotFound { what, .. } if what.contains("nope")),
        "{err:?}"
    );

    // Onto a name in use: a typed error naming the branch (the original leaked an SQL message).
    let err = store.rename_branch(vs.id, "master", "dev").unwrap_err();
    match &err {
        Error::BranchAlreadyExists {
            volume_set,
            name,
            existing,
        } => {
            assert_eq!(
                (*volume_set, name.as_str(), *existing),
                (vs.id, "dev", dev_id)
            );
        }
        other => panic!("expected BranchAlreadyExists, got {other:?}"),
    }
    assert!(err.to_string().contains("\"dev\""), "{err}");

    for bad in ["a:b", "a*", "", " x", "x\u{3}", &"y".repeat(256)] {
        let err = store.rename_branch(vs.id, "master", bad).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{bad:?}: {err:?}");
    }
    let ghost = VolumeSetId::random();
    let err = store.rename_branch(ghost, "master", "x").unwrap_err();
    assert!(
        matches!(err, Error::VolumeSetNotFound(x) if x == ghost),
        "{err:?}"
    );
    unchanged(&store, lsn, &dump);
}

#[test]
fn delete_branch_back_to_the_fork_point() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let m = fork(&store, vs.id, "master", None, 3);
    let dev = fork(&store, vs.id, "dev", Some(m[1]), 3);
    let deleted = store.delete_branch(vs.id, "dev").unwrap();
    assert_eq!(sorted(&deleted), sorted(&dev));
    for s in &dev {
        assert!(matches!(
            store.get_snapshot(*s),
            Err(Error::SnapshotNotFound(_))
        ));
    }
    assert!(matches!(
        store.get_tip(vs.id, "dev"),
        Err(Error::BranchNotFound { .. })
    ));
    assert_eq!(store.num_children(m[1]).unwrap(), 1);
    assert_eq!(
        store.counts().unwrap().branches,
        1,
        "the fork point keeps its child: no new tip"
    );
    assert_eq!(store.get_tip(vs.id, "master").unwrap().id, m[2]);
    assert!(matches!(
        store.delete_branch(vs.id, "dev"),
        Err(Error::BranchNotFound { .. })
    ));
}

#[test]
fn delete_branch_stops_at_another_tip_and_at_a_volume() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let m = fork(&store, vs.id, "master", None, 4);
    // m[1] is also the tip of "keep".
    store
        .fork_branch("keep", &[store.get_snapshot(m[1]).unwrap()])
        .unwrap();
    let deleted = store.delete_branch(vs.id, "master").unwrap();
    assert_eq!(sorted(&deleted), sorted(&[m[2], m[3]]));
    assert_eq!(store.get_tip(vs.id, "keep").unwrap().id, m[1]);
    assert!(
        matches!(
            store.get_tip(vs.id, "master"),
            Err(Error::BranchNotFound { .. })
        ),
        "m[1] already has a branch: master is not moved onto it"
    );

    // A volume based on a snapshot stops the walk there; that snapshot becomes the tip of
    // a branch that keeps the deleted branch's name.
    let vs2 = new_vs(&store, "repo2");
    let n = fork(&store, vs2.id, "main", None, 3);
    store
        .import_volume(&volume("vol", vs2.id, Some(n[0]), "/mnt/vol"))
        .unwrap();
    let deleted = store.delete_branch(vs2.id, "main").unwrap();
    assert_eq!(sorted(&deleted), sorted(&[n[1], n[2]]));
    let tip = store.get_tip(vs2.id, "main").unwrap();
    assert_eq!(tip.id, n[0]);
    assert_eq!(tip.branch_name.as_deref(), Some("main"));
    assert_eq!(store.get_volume_set(vs2.id).unwrap().num_branches, 1);
}

#[test]
fn delete_a_whole_branch_removes_root_and_bush() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let m = fork(&store, vs.id, "master", None, 3);
    store
        .import_bush(&Bush {
            root: m[0],
            volume_set: vs.id,
            data_server: 7,
        })
        .unwrap();
    let deleted = store.delete_branch(vs.id, "master").unwrap();
    assert_eq!(deleted, vec![m[2], m[1], m[0]], "tip first");
    let c = store.counts().unwrap();
    assert_eq!((c.snapshots, c.branches, c.bushes), (0, 0, 0));
    assert!(store.get_snapshot_ids(vs.id).unwrap().is_empty());
}

#[test]
fn delete_branch_refusals() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let m = fork(&store, vs.id, "master", None, 2);
    store
        .fork_branch("inner", &[store.get_snapshot(m[0]).unwrap()])
        .unwrap();
    let (lsn, dump) = (store.durable_lsn(), store.canonical_dump().unwrap());
    // An inner tip has children: nothing can go.
    let err = store.delete_branch(vs.id, "inner").unwrap_err();
    assert!(
        matches!(err, Error::HasChildren { snapshot, children: 1 } if snapshot == m[0]),
        "{err:?}"
    );
    unchanged(&store, lsn, &dump);
    // A volume on the tip itself: the tip is in use.
    store
        .import_volume(&volume("v", vs.id, Some(m[1]), "/v"))
        .unwrap();
    let (lsn, dump) = (store.durable_lsn(), store.canonical_dump().unwrap());
    let err = store.delete_branch(vs.id, "master").unwrap_err();
    assert!(
        matches!(err, Error::SnapshotInUse { snapshot, volumes: 1 } if snapshot == m[1]),
        "{err:?}"
    );
    unchanged(&store, lsn, &dump);
    let err = store.delete_branch(vs.id, "nope").unwrap_err();
    assert!(matches!(err, Error::BranchNotFound { .. }), "{err:?}");
    let err = store
        .delete_branch(VolumeSetId::random(), "master")
        .unwrap_err();
    assert!(matches!(err, Error::VolumeSetNotFound(_)), "{err:?}");
}
