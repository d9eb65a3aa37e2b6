//! Snapshots: reading one, listing with filters, sorting and paging (after filtering),
//! ids, the three-way update table, batch atomicity, pull, the blob compare-and-set and
//! deletion.

mod store_support;

use mdslog::*;
use store_support::*;

fn unchanged(store: &Store, lsn: Lsn, dump: &mdslog::state::query::CanonicalDump) {
    assert_eq!(store.durable_lsn(), lsn, "a refused call writes no record");
    assert_eq!(
        &store.canonical_dump().unwrap(),
        dump,
        "a refused call changes nothing"
    );
}

fn vs_query(vs: VolumeSetId) -> SnapshotQuery {
    SnapshotQuery {
        volume_set: Some(vs),
        ..Default::default()
    }
}

#[test]
fn get_snapshot_returns_stored_and_derived_fields() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let mut r = snap_at(vs.id, None, 1_000, 11);
    r.name = "root".into();
    r.description = "first".into();
    r.attrs = attrs(&[("k", "v")]);
    r.creator = "cid".into();
    r.creator_name = "carol".into();
    r.owner = "oid".into();
    r.owner_name = "oscar".into();
    r.blob = BlobId::from("blob-1");
    // Derived fields given by a caller are ignored.
    r.depth = 42;
    r.num_children = 9;
    r.is_tip = false;
    r.branch_name = Some("lies".into());
    let c = snap_at(vs.id, Some(r.id), 2_000, 22);
    store
        .fork_branch("master", &[r.clone(), c.clone()])
        .unwrap();

    let got = store.get_snapshot(r.id).unwrap();
    let expect = Snapshot {
        depth: 1,
        num_children: 1,
        is_tip: false,
        branch_name: None,
        ..r.clone()
    };
    assert_eq!(got, expect);
    let got = store.get_snapshot(c.id).unwrap();
    let expect = Snapshot {
        depth: 2,
        num_children: 0,
        is_tip: true,
        branch_name: Some("master".into()),
        ..c.clone()
    };
    assert_eq!(got, expect);

    let ghost = SnapshotId::random();
    let err = store.get_snapshot(ghost).unwrap_err();
    assert!(
        matches!(err, Error::SnapshotNotFound(x) if x == ghost),
        "{err:?}"
    );
    assert!(err.to_string().contains(&ghost.to_string()));
}

#[test]
fn bad_snapshot_fields_are_invalid_arguments() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let long = "n".repeat(256);
    let cases: Vec<Snapshot> = vec![
        Snapshot {
            name: "a\u{1}".into(),
            ..snap(vs.id, None)
        },
        Snapshot {
            name: long.clone(),
            ..snap(vs.id, None)
        },
        Snapshot {
            owner_name: "x\u{7}".into(),
            ..snap(vs.id, None)
        },
        Snapshot {
            creator: long.clone(),
            ..snap(vs.id, None)
        },
        Snapshot {
            description: "d".repeat(64 * 1024 + 1),
            ..snap(vs.id, None)
        },
        Snapshot {
            attrs: attrs(&[("", "v")]),
            ..snap(vs.id, None)
        },
        Snapshot {
            blob: BlobId::from("b\n"),
            ..snap(vs.id, None)
        },
    ];
    for s in cases {
        let err = store.fork_branch("", std::slice::from_ref(&s)).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{s:?}: {err:?}");
    }
    assert_eq!(store.counts().unwrap().snapshots, 0);
    // A description may hold new lines; the limit itself is fine.
    let ok = Snapshot {
        description: "a\nb\tc".into(),
        name: "n".repeat(255),
        ..snap(vs.id, None)
    };
    store.fork_branch("", &[ok]).unwrap();
}

#[test]
fn a_query_needs_id_ids_or_volume_set_and_not_id_with_ids() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let m = fork(&store, vs.id, "master", None, 2);
    let err = store.get_snapshots(&SnapshotQuery::default()).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    let q = SnapshotQuery {
        id: Some(m[0]),
        ids: vec![m[1]],
        ..Default::default()
    };
    let err = store.get_snapshots(&q).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    let ghost = VolumeSetId::random();
    let err = store.get_snapshots(&vs_query(ghost)).unwrap_err();
    assert!(
        matches!(err, Error::VolumeSetNotFound(x) if x == ghost),
        "{err:?}"
    );

    assert_eq!(
        snap_ids(
            &store
                .get_snapshots(&SnapshotQuery {
                    id: Some(m[1]),
                    ..Default::default()
                })
                .unwrap()
        ),
        vec![m[1]]
    );
    let q = SnapshotQuery {
        ids: vec![m[1], m[0], m[1], SnapshotId::random()],
        ..Default::default()
    };
    assert_eq!(
        snap_ids(&store.get_snapshots(&q).unwrap()),
        sorted(&m),
        "unknown ids are absent, duplicates once"
    );
    assert!(store
        .get_snapshots(&SnapshotQuery {
            id: Some(SnapshotId::random()),
            ..Default::default()
        })
        .unwrap()
        .is_empty());
}

#[test]
fn ids_and_volume_set_combine() {
    let (_d, store) = open();
    let a = new_vs(&store, "a");
    let b = new_vs(&store, "b");
    let ma = fork(&store, a.id, "master", None, 2);
    let mb = fork(&store, b.id, "master", None, 2);
    let q = SnapshotQuery {
        ids: vec![ma[0], mb[0], mb[1]],
        volume_set: Some(b.id),
        ..Default::default()
    };
    assert_eq!(snap_ids(&store.get_snapshots(&q).unwrap()), sorted(&mb));
    let q = SnapshotQuery {
        id: Some(ma[1]),
        volume_set: Some(b.id),
        ..Default::default()
    };
    assert!(store.get_snapshots(&q).unwrap().is_empty());
}

/// Five snapshots of one volume set with distinct fields.
fn filter_fixture() -> (tempfile::TempDir, Store, VolumeSetId, Vec<Snapshot>) {
    let (d, store) = open();
    let vs = new_vs(&store, "repo");
    let spec = [
        (
            "alpha",
            "carol",
            "oscar",
            &[("env", "prod"), ("tier", "1")][..],
            300,
            30,
        ),
        ("beta", "carol", "olga", &[("env", "dev")][..], 100, 50),
        (
            "alpha",
            "dave",
            "oscar",
            &[("env", "prod"), ("tier", "2")][..],
            500,
            10,
        ),
        ("gamma", "dave", "olga", &[][..], 200, 40),
        (
            "delta",
            "erin",
            "erin",
            &[("note", "has-needle")][..],
            400,
            20,
        ),
    ];
    let mut out: Vec<Snapshot> = Vec::new();
    for (name, cn, on, at, created, size) in spec {
        let mut s = snap_at(vs.id, out.last().map(|p| p.id), created, size);
        s.name = name.into();
        s.creator = format!("{cn}-id");
        s.creator_name = cn.into();
        s.owner = format!("{on}-id");
        s.owner_name = on.into();
        s.attrs = attrs(at);
        out.push(s);
    }
    store.fork_branch("master", &out).unwrap();
    (d, store, vs.id, out)
}

#[test]
fn filters_name_users_attrs_search() {
    let (_d, store, vs, s) = filter_fixture();
    let ids = |q: SnapshotQuery| {
        sorted(&snap_ids(
            &store
                .get_snapshots(&SnapshotQuery {
                    volume_set: Some(vs),
                    ..q
                })
                .unwrap(),
        ))
    };
    let d = SnapshotQuery::default;
    assert_eq!(
        ids(SnapshotQuery {
            name: Some("alpha".into()),
            ..d()
        }),
        sorted(&[s[0].id, s[2].id])
    );
    assert_eq!(
        ids(SnapshotQuery {
            creator: Some("dave-id".into()),
            ..d()
        }),
        sorted(&[s[2].id, s[3].id])
    );
    assert_eq!(
        ids(SnapshotQuery {
            creator_name: Some("carol".into()),
            ..d()
        }),
        sorted(&[s[0].id, s[1].id])
    );
    assert_eq!(
        ids(SnapshotQuery {
            owner: Some("olga-id".into()),
            ..d()
        }),
        sorted(&[s[1].id, s[3].id])
    );
    assert_eq!(
        ids(SnapshotQuery {
            owner_name: Some("oscar".into()),
            ..d()
        }),
        sorted(&[s[0].id, s[2].id])
    );
    assert_eq!(
        ids(SnapshotQuery {
            attrs: attrs(&[("env", "prod")]),
            ..d()
        }),
        sorted(&[s[0].id, s[2].id])
    );
    assert_eq!(
        ids(SnapshotQuery {
            attrs: attrs(&[("env", "prod"), ("tier", "2")]),
            ..d()
        }),
        vec![s[2].id]
    );
    assert!(ids(SnapshotQuery {
        attrs: attrs(&[("env", "prod"), ("tier", "3")]),
        ..d()
    })
    .is_empty());
    assert!(
        ids(SnapshotQuery {
            name: Some("alph".into()),
            ..d()
        })
        .is_empty(),
        "exact match"
    );
    let search = |x: &str| {
        ids(SnapshotQuery {
            search: Some(x.into()),
            ..d()
        })
    };
    assert_eq!(search("lph"), sorted(&[s[0].id, s[2].id]), "name");
    assert_eq!(search("ave"), sorted(&[s[2].id, s[3].id]), "creator name");
    assert_eq!(search("lga"), sorted(&[s[1].id, s[3].id]), "owner name");
    assert_eq!(search("tie"), sorted(&[s[0].id, s[2].id]), "attribute key");
    assert_eq!(search("needle"), vec![s[4].id], "attribute value");
    assert!(search("zzz").is_empty());
    let q = SnapshotQuery {
        search: Some("a".into()),
        creator_name: Some("erin".into()),
        ..d()
    };
    assert_eq!(
        ids(q),
        vec![s[4].id],
        "search combines with the other filters"
    );
}

#[test]
fn sort_by_time_and_size_both_ways_default_by_id() {
    let (_d, store, vs, s) = filter_fixture();
    let run = |sort, order| {
        snap_ids(
            &store
                .get_snapshots(&SnapshotQuery {
                    sort,
                    order,
                    ..vs_query(vs)
                })
                .unwrap(),
        )
    };
    // created: 1 100, 3 200, 0 300, 4 400, 2 500; size: 2 10, 4 20, 0 30, 3 40, 1 50.
    assert_eq!(
        run(SortBy::Time, Order::Asc),
        vec![s[1].id, s[3].id, s[0].id, s[4].id, s[2].id]
    );
    assert_eq!(
        run(SortBy::Time, Order::Desc),
        vec![s[2].id, s[4].id, s[0].id, s[3].id, s[1].id]
    );
    assert_eq!(
        run(SortBy::Size, Order::Asc),
        vec![s[2].id, s[4].id, s[0].id, s[3].id, s[1].id]
    );
    assert_eq!(
        run(SortBy::Size, Order::Desc),
        vec![s[1].id, s[3].id, s[0].id, s[4].id, s[2].id]
    );
    assert_eq!(run(SortBy::Id, Order::Asc), sorted(&snap_ids(&s)));
    let q = SnapshotQuery {
        page: Page {
            offset: 1,
            limit: Some(2),
        },
        sort: SortBy::Size,
        ..vs_query(vs)
    };
    assert_eq!(
        snap_ids(&store.get_snapshots(&q).unwrap()),
        vec![s[4].id, s[0].id]
    );
}

/// The original applied the limit to all snapshots before filtering by volume set, so
/// listing the second volume set with a limit returned nothing.
#[test]
fn paging_applies_after_the_volume_set_filter() {
    let (_d, store) = open();
    let first = new_vs(&store, "first");
    let second = new_vs(&store, "second");
    let a = fork(&store, first.id, "master", None, 5);
    let b = fork(&store, second.id, "master", None, 3);
    let page = |vs: VolumeSetId, offset, limit| {
        store
            .get_snapshots(&SnapshotQuery {
                page: Page { offset, limit },
                ..vs_query(vs)
            })
            .unwrap()
    };
    let got = page(second.id, 0, Some(2));
    assert_eq!(got.len(), 2, "limit 2 on the second volume set returns 2");
    assert!(got.iter().all(|s| s.volume_set == second.id));
    assert_eq!(snap_ids(&got), sorted(&b)[..2].to_vec());
    assert_eq!(
        snap_ids(&page(second.id, 2, Some(2))),
        sorted(&b)[2..].to_vec()
    );
    assert!(page(second.id, 3, Some(2)).is_empty());
    assert_eq!(
        snap_ids(&page(first.id, 4, Some(10))),
        sorted(&a)[4..].to_vec()
    );
    // And after the other filters: the one named snapshot, wherever it sorts.
    let mut named = store.get_snapshot(b[2]).unwrap();
    named.name = "wanted".into();
    store.update_snapshot(&named, None).unwrap();
    let q = SnapshotQuery {
        name: Some("wanted".into()),
        page: Page {
            offset: 0,
            limit: Some(1),
        },
        ..vs_query(second.id)
    };
    assert_eq!(snap_ids(&store.get_snapshots(&q).unwrap()), vec![b[2]]);
}

#[test]
fn snapshot_ids_of_a_volume_set() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let empty = new_vs(&store, "empty");
    let ids = store.get_snapshot_ids(empty.id).unwrap();
    assert_eq!(ids, Vec::<SnapshotId>::new(), "an empty list, not an error");
    let m = fork(&store, vs.id, "master", None, 3);
    let d = fork(&store, vs.id, "dev", Some(m[0]), 2);
    let mut all = m.clone();
    all.extend(&d);
    assert_eq!(
        sorted(&store.get_snapshot_ids(vs.id).unwrap()),
        sorted(&all)
    );
    assert!(store.get_snapshot_ids(empty.id).unwrap().is_empty());
    let ghost = VolumeSetId::random();
    let err = store.get_snapshot_ids(ghost).unwrap_err();
    assert!(
        matches!(err, Error::VolumeSetNotFound(x) if x == ghost),
        "{err:?}"
    );
}

#[test]
fn volume_set_by_snapshot_id() {
    let (_d, store) = open();
    let a = new_vs(&store, "a");
    let b = new_vs(&store, "b");
    let ma = fork(&store, a.id, "master", None, 2);
    let mb = fork(&store, b.id, "master", None, 1);
    assert_eq!(store.get_volume_set_by_snap_id(ma[1]).unwrap(), a.id);
    assert_eq!(store.get_volume_set_by_snap_id(mb[0]).unwrap(), b.id);
    let ghost = SnapshotId::random();
    let err = store.get_volume_set_by_snap_id(ghost).unwrap_err();
    assert!(
        matches!(err, Error::SnapshotNotFound(x) if x == ghost),
        "{err:?}"
    );
}

// ---- Three-way update ----------------------------------------------------------------------

/// A store holding `target` (as the tip of a one-snapshot branch).
fn holding(target: &Snapshot) -> (tempfile::TempDir, Store) {
    let (d, store) = open();
    let mut vs = VolumeSet::new(target.volume_set, "repo");
    vs.created = Timestamp::now();
    store.import_volume_set(&vs).unwrap();
    store
        .fork_branch("master", std::slice::from_ref(target))
        .unwrap();
    (d, store)
}

fn base_snap() -> Snapshot {
    let mut s = snap_at(VolumeSetId::random(), None, 1_000, 5);
    s.name = "orig".into();
    s.attrs = attrs(&[("k", "v")]);
    s
}

fn named(s: &Snapshot, n: &str) -> Snapshot {
    Snapshot {
        name: n.to_string(),
        ..s.clone()
    }
}

/// Runs one pair through update_snapshots (or pull): the answer, whether a record was
/// written, and the stored snapshot after.
fn row(
    target: &Snapshot,
    cur: &Snapshot,
    init: Option<&Snapshot>,
    pull: bool,
) -> (Vec<MetaConflict<Snapshot>>, bool, Snapshot) {
    let (_d, store) = holding(target);
    let lsn = store.durable_lsn();
    let pairs = vec![(cur.clone(), init.cloned())];
    let out = if pull {
        store.pull_snapshots(&pairs)
    } else {
        store.update_snapshots(&pairs)
    }
    .unwrap();
    (
        out,
        store.durable_lsn() != lsn,
        store.get_snapshot(target.id).unwrap(),
    )
}

#[test]
fn update_row_1_all_equal_is_no_action() {
    let t = base_snap();
    let (out, wrote, stored) = row(&t, &t.clone(), Some(&t.clone()), false);
    assert!(out.is_empty());
    assert!(!wrote);
    assert_eq!(stored.name, "orig");
}

#[test]
fn update_row_2_unchanged_current_adopts_target() {
    let t = base_snap();
    let c = named(&t, "stale");
    let (out, wrote, stored) = row(&t, &c, Some(&c.clone()), false);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].status, ResolveStatus::UseTargetNoConflict);
    assert!(!out[0].is_conflict());
    assert_eq!(out[0].target.name, "orig");
    assert_eq!(out[0].current, c);
    assert_eq!(out[0].initial.as_ref(), Some(&c));
    assert!(!wrote);
    assert_eq!(stored.name, "orig");
}

#[test]
fn update_row_3_only_current_changed_writes_current() {
    let t = base_snap();
    let mut c = named(&t, "new");
    c.description = "desc".into();
    c.attrs = attrs(&[("k", "w"), ("x", "y")]);
    c.owner = "o2".into();
    c.owner_name = "on2".into();
    c.creator = "c2".into();
    c.creator_name = "cn2".into();
    c.last_modified = Timestamp(77_777);
    let (out, wrote, stored) = row(&t, &c, Some(&t.clone()), false);
    assert!(out.is_empty(), "{out:?}");
    assert!(wrote);
    let expect = Snapshot {
        depth: 1,
        is_tip: true,
        branch_name: Some("master".into()),
        ..c
    };
    assert_eq!(stored, expect);
}

#[test]
fn update_row_4_same_change_on_both_sides_adopts_target() {
    let i = base_snap();
    let t = named(&i, "same");
    let c = named(&i, "same");
    let (out, wrote, stored) = row(&t, &c, Some(&i), false);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].status, ResolveStatus::UseTargetNoConflict);
    assert!(!wrote);
    assert_eq!(stored.name, "same");
}

#[test]
fn update_row_5_different_changes_conflict_target_wins() {
    let i = base_snap();
    let t = named(&i, "theirs");
    let c = named(&i, "mine");
    let (out, wrote, stored) = row(&t, &c, Some(&i), false);
    assert_eq!(out.len(), 1);
    let e = &out[0];
    assert_eq!(e.status, ResolveStatus::UseTargetConflict);
    assert!(e.is_conflict());
    assert_eq!(
        (e.target.name.as_str(), e.current.name.as_str()),
        ("theirs", "mine")
    );
    assert_eq!(e.initial.as_ref().unwrap().name, "orig");
    assert!(!wrote);
    assert_eq!(stored.name, "theirs");
}

#[test]
fn update_without_initial_is_unconditional() {
    let t = base_snap();
    let (out, wrote, stored) = row(&t, &named(&t, "new"), None, false);
    assert!(out.is_empty());
    assert!(wrote);
    assert_eq!(stored.name, "new");
    let (out, wrote, _) = row(&t, &t.clone(), None, false);
    assert!(out.is_empty());
    assert!(!wrote, "equal to target: no action");
}

#[test]
fn an_empty_attrs_map_equals_none() {
    let mut t = base_snap();
    t.attrs = Attrs::new();
    let c = t.clone();
    let (out, wrote, _) = row(&t, &c, Some(&t.clone()), false);
    assert!(out.is_empty());
    assert!(!wrote);
}

#[test]
fn pull_resolves_the_same_but_writes_nothing() {
    let i = base_snap();
    let rows: Vec<(Snapshot, Snapshot, Option<Snapshot>)> = vec![
        (i.clone(), i.clone(), Some(i.clone())),
        (named(&i, "t"), i.clone(), Some(i.clone())),
        (i.clone(), named(&i, "c"), Some(i.clone())),
        (named(&i, "c"), named(&i, "c"), Some(i.clone())),
        (named(&i, "t"), named(&i, "c"), Some(i.clone())),
        (i.clone(), named(&i, "c"), None),
    ];
    for (t, c, init) in rows {
        let (pulled, wrote, stored) = row(&t, &c, init.as_ref(), true);
        assert!(!wrote, "pull never writes");
        assert_eq!(stored.name, t.name);
        let (updated, _, _) = row(&t, &c, init.as_ref(), false);
        assert_eq!(pulled, updated, "pull answers what update would");
    }
}

#[test]
fn update_snapshot_sets_last_modified_to_now() {
    let t = base_snap();
    let (_d, store) = holding(&t);
    let before = Timestamp::now();
    let cur = named(&store.get_snapshot(t.id).unwrap(), "renamed");
    assert!(store.update_snapshot(&cur, None).unwrap().is_none());
    let got = store.get_snapshot(t.id).unwrap();
    assert_eq!(got.name, "renamed");
    assert!(
        got.last_modified >= before,
        "{:?} < {:?}",
        got.last_modified,
        before
    );
    assert_eq!(got.created, t.created);
    // Row 5 through the one-snapshot call.
    let init = got.clone();
    store
        .update_snapshot(&named(&init, "theirs"), None)
        .unwrap();
    let e = store
        .update_snapshot(&named(&init, "mine"), Some(&init))
        .unwrap()
        .expect("a conflict");
    assert!(e.is_conflict());
    assert_eq!(store.get_snapshot(t.id).unwrap().name, "theirs");
}

#[test]
fn parent_volume_set_creation_time_and_depth_are_not_writable() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let other = new_vs(&store, "other");
    let m = fork(&store, vs.id, "master", None, 3);
    let (lsn, dump) = (store.durable_lsn(), store.canonical_dump().unwrap());
    let s = store.get_snapshot(m[2]).unwrap();
    let err = store
        .update_snapshot(
            &Snapshot {
                parent: Some(m[0]),
                ..s.clone()
            },
            None,
        )
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    let err = store
        .update_snapshot(
            &Snapshot {
                parent: None,
                ..s.clone()
            },
            None,
        )
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    let err = store
        .update_snapshot(
            &Snapshot {
                volume_set: other.id,
                ..s.clone()
            },
            None,
        )
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    unchanged(&store, lsn, &dump);
    // Creation time, size, depth and the other derived fields are ignored.
    let cur = Snapshot {
        name: "n".into(),
        created: Timestamp(1),
        size: 12345,
        depth: 99,
        num_children: 99,
        is_tip: false,
        branch_name: Some("x".into()),
        ..s.clone()
    };
    store.update_snapshots(&[(cur, None)]).unwrap();
    let got = store.get_snapshot(m[2]).unwrap();
    assert_eq!(got.name, "n");
    assert_eq!(
        (got.created, got.size, got.depth, got.num_children),
        (s.created, s.size, 3, 0)
    );
    assert_eq!(
        (got.is_tip, got.branch_name.as_deref()),
        (true, Some("master"))
    );
}

#[test]
fn update_with_bad_fields_is_invalid_argument() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let m = fork(&store, vs.id, "master", None, 1);
    let (lsn, dump) = (store.durable_lsn(), store.canonical_dump().unwrap());
    let s = store.get_snapshot(m[0]).unwrap();
    for bad in [
        Snapshot {
            name: "x\u{1}".into(),
            ..s.clone()
        },
        Snapshot {
            name: "x".repeat(256),
            ..s.clone()
        },
        Snapshot {
            attrs: attrs(&[("", "v")]),
            ..s.clone()
        },
    ] {
        let err = store.update_snapshots(&[(bad.clone(), None)]).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{bad:?}: {err:?}");
    }
    unchanged(&store, lsn, &dump);
}

#[test]
fn a_batch_is_atomic() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let m = fork(&store, vs.id, "master", None, 3);
    let (lsn, dump) = (store.durable_lsn(), store.canonical_dump().unwrap());
    let s0 = store.get_snapshot(m[0]).unwrap();
    let s1 = store.get_snapshot(m[1]).unwrap();
    let ghost = snap(vs.id, None);
    // One unknown id: nothing written, not even the valid edits before it.
    let err = store
        .update_snapshots(&[
            (named(&s0, "a"), None),
            (named(&s1, "b"), None),
            (ghost.clone(), None),
        ])
        .unwrap_err();
    assert!(
        matches!(err, Error::SnapshotNotFound(x) if x == ghost.id),
        "{err:?}"
    );
    unchanged(&store, lsn, &dump);
    // One invalid edit: the same.
    let err = store
        .update_snapshots(&[(named(&s0, "a"), None), (named(&s1, "bad\u{1}"), None)])
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    unchanged(&store, lsn, &dump);
    // One blob refusal: the same.
    store
        .set_blob_id_and_size(m[2], &BlobId::from("have"), 1)
        .unwrap();
    let (lsn, dump) = (store.durable_lsn(), store.canonical_dump().unwrap());
    let s2 = store.get_snapshot(m[2]).unwrap();
    let err = store
        .update_snapshots(&[
            (named(&s0, "a"), None),
            (
                Snapshot {
                    blob: BlobId::from("other"),
                    ..s2
                },
                None,
            ),
        ])
        .unwrap_err();
    assert!(
        matches!(err, Error::AlreadyHaveBlob(x) if x == m[2]),
        "{err:?}"
    );
    unchanged(&store, lsn, &dump);
    // The same snapshot twice in one batch.
    let err = store
        .update_snapshots(&[(named(&s0, "a"), None), (named(&s0, "b"), None)])
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    unchanged(&store, lsn, &dump);
    // A good batch lands as one record, with a returned entry for a target-wins pair.
    let stale = named(&s1, "stale");
    let out = store
        .update_snapshots(&[
            (named(&s0, "a"), None),
            (stale.clone(), Some(stale.clone())),
        ])
        .unwrap();
    assert_eq!(
        store.durable_lsn(),
        Lsn(lsn.0 + 1),
        "one record for the batch"
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].current.id, m[1]);
    assert_eq!(store.get_snapshot(m[0]).unwrap().name, "a");
    assert_eq!(store.get_snapshot(m[1]).unwrap().name, "");
    // An empty batch is a no-op.
    assert!(store.update_snapshots(&[]).unwrap().is_empty());
    assert_eq!(store.durable_lsn(), Lsn(lsn.0 + 1));
}

#[test]
fn pull_snapshots_writes_nothing_and_reports_unknown_ids() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let m = fork(&store, vs.id, "master", None, 2);
    let (lsn, dump) = (store.durable_lsn(), store.canonical_dump().unwrap());
    let s0 = store.get_snapshot(m[0]).unwrap();
    let s1 = store.get_snapshot(m[1]).unwrap();
    let init = s1.clone();
    let out = store
        .pull_snapshots(&[
            (named(&s0, "a"), None),
            (named(&s1, "c"), Some(named(&init, "i"))),
        ])
        .unwrap();
    assert_eq!(out.len(), 1);
    assert!(out[0].is_conflict());
    unchanged(&store, lsn, &dump);
    let ghost = snap(vs.id, None);
    let err = store.pull_snapshots(&[(ghost.clone(), None)]).unwrap_err();
    assert!(
        matches!(err, Error::SnapshotNotFound(x) if x == ghost.id),
        "{err:?}"
    );
}

#[test]
fn blob_on_update_only_goes_from_nil_to_a_value() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let m = fork(&store, vs.id, "master", None, 1);
    let s = store.get_snapshot(m[0]).unwrap();
    assert!(s.blob.is_nil());
    // nil -> value: set, even with no metadata change.
    store
        .update_snapshots(&[(
            Snapshot {
                blob: BlobId::from("b1"),
                ..s.clone()
            },
            None,
        )])
        .unwrap();
    assert_eq!(store.get_blob_id(m[0]).unwrap(), BlobId::from("b1"));
    // value -> the same value: fine, nothing to do.
    let lsn = store.durable_lsn();
    store
        .update_snapshots(&[(
            Snapshot {
                blob: BlobId::from("b1"),
                ..s.clone()
            },
            None,
        )])
        .unwrap();
    assert_eq!(store.durable_lsn(), lsn);
    // value -> another value: refused.
    let err = store
        .update_snapshots(&[(
            Snapshot {
                blob: BlobId::from("b2"),
                name: "x".into(),
                ..s.clone()
            },
            None,
        )])
        .unwrap_err();
    assert!(
        matches!(err, Error::AlreadyHaveBlob(x) if x == m[0]),
        "{err:?}"
    );
    assert_eq!(store.get_blob_id(m[0]).unwrap(), BlobId::from("b1"));
    assert_eq!(
        store.get_snapshot(m[0]).unwrap().name,
        "",
        "nothing of the refused update landed"
    );
    // A current with a nil blob leaves the blob alone.
    store
        .update_snapshots(&[(
            Snapshot {
                blob: BlobId::nil(),
                name: "y".into(),
                ..s.clone()
            },
            None,
        )])
        .unwrap();
    let got = store.get_snapshot(m[0]).unwrap();
    assert_eq!(
        (got.name.as_str(), got.blob.clone()),
        ("y", BlobId::from("b1"))
    );
}

#[test]
fn blob_is_set_even_when_target_wins_the_metadata() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let m = fork(&store, vs.id, "master", None, 1);
    let init = store.get_snapshot(m[0]).unwrap();
    store
        .update_snapshots(&[(named(&init, "theirs"), None)])
        .unwrap();
    let cur = Snapshot {
        blob: BlobId::from("b"),
        ..named(&init, "mine")
    };
    let out = store.update_snapshots(&[(cur, Some(init))]).unwrap();
    assert!(out[0].is_conflict());
    let got = store.get_snapshot(m[0]).unwrap();
    assert_eq!(
        (got.name.as_str(), got.blob.clone()),
        ("theirs", BlobId::from("b"))
    );
}

// ---- Deletion --------------------------------------------------------------------------------

#[test]
fn delete_a_leaf() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let m = fork(&store, vs.id, "master", None, 3);
    store.delete_snapshots(&[m[2]], None).unwrap();
    assert!(matches!(
        store.get_snapshot(m[2]),
        Err(Error::SnapshotNotFound(_))
    ));
    assert_eq!(store.num_children(m[1]).unwrap(), 0);
    // Without a new tip the branch whose tip it was is gone.
    assert!(matches!(
        store.get_tip(vs.id, "master"),
        Err(Error::BranchNotFound { .. })
    ));
    assert_eq!(store.counts().unwrap().branches, 0);
    assert_eq!(
        sorted(&store.get_snapshot_ids(vs.id).unwrap()),
        sorted(&m[..2])
    );
}

#[test]
fn delete_a_snapshot_with_children_is_refused() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let m = fork(&store, vs.id, "master", None, 3);
    let d = fork(&store, vs.id, "dev", Some(m[0]), 1);
    let (lsn, dump) = (store.durable_lsn(), store.canonical_dump().unwrap());
    // The children would be orphans: refused.
    let err = store.delete_snapshots(&[m[1]], None).unwrap_err();
    assert!(
        matches!(err, Error::HasChildren { snapshot, children: 1 } if snapshot == m[1]),
        "{err:?}"
    );
    assert!(err.to_string().contains(&m[1].to_string()), "{err}");
    let err = store.delete_snapshots(&[m[0]], None).unwrap_err();
    assert!(
        matches!(err, Error::HasChildren { snapshot, children: 2 } if snapshot == m[0]),
        "{err:?}"
    );
    // Part of the subtree is not enough.
    let err = store
        .delete_snapshots(&[m[0], m[1], m[2]], None)
        .unwrap_err();
    assert!(
        matches!(err, Error::HasChildren { snapshot, children: 1 } if snapshot == m[0]),
        "{err:?}"
    );
    unchanged(&store, lsn, &dump);
    // The whole subtree, in any order, is.
    store
        .delete_snapshots(&[m[0], d[0], m[2], m[1]], None)
        .unwrap();
    let c = store.counts().unwrap();
    assert_eq!((c.snapshots, c.branches), (0, 0));
}

#[test]
fn delete_removes_the_bush_of_a_deleted_root() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let a = fork(&store, vs.id, "a", None, 2);
    let b = fork(&store, vs.id, "b", None, 1);
    store
        .import_bush(&Bush {
            root: a[0],
            volume_set: vs.id,
            data_server: 1,
        })
        .unwrap();
    store
        .import_bush(&Bush {
            root: b[0],
            volume_set: vs.id,
            data_server: 2,
        })
        .unwrap();
    store.delete_snapshots(&[a[1]], None).unwrap();
    assert_eq!(
        store.get_bush(a[0]).unwrap().data_server,
        1,
        "the root is still here"
    );
    store.delete_snapshots(&[a[0]], None).unwrap();
    assert_eq!(store.counts().unwrap().bushes, 1);
    assert_eq!(store.get_bush(b[0]).unwrap().data_server, 2);
}

#[test]
fn new_tip_takes_a_branch_with_the_removed_name() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let m = fork(&store, vs.id, "master", None, 4);
    let old_id = store
        .get_branches(&BranchQuery::named(vs.id, "master"))
        .unwrap()[0]
        .id;
    store.delete_snapshots(&[m[3], m[2]], Some(m[1])).unwrap();
    let tip = store.get_tip(vs.id, "master").unwrap();
    assert_eq!(tip.id, m[1]);
    assert_eq!(
        (tip.is_tip, tip.branch_name.as_deref()),
        (true, Some("master"))
    );
    let b = &store.get_branches(&BranchQuery::all(vs.id)).unwrap();
    assert_eq!(b.len(), 1);
    assert_ne!(b[0].id, old_id, "a new branch row");
    // The branch can be extended from its new tip.
    extend(&store, m[1], 1);
}

#[test]
fn new_tip_rules() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let m = fork(&store, vs.id, "master", None, 3);
    let d = fork(&store, vs.id, "dev", Some(m[0]), 1);
    let e = fork(&store, vs.id, "", Some(m[0]), 1);
    // The new tip still has children: no new branch.
    store.delete_snapshots(&[d[0]], Some(m[0])).unwrap();
    assert!(!store.get_snapshot(m[0]).unwrap().is_tip);
    assert!(matches!(
        store.get_tip(vs.id, "dev"),
        Err(Error::BranchNotFound { .. })
    ));
    // The new tip is already a tip: no second branch on it.
    let x = fork(&store, vs.id, "x", Some(m[2]), 1);
    store.delete_snapshots(&[x[0]], Some(m[2])).unwrap();
    assert_eq!(store.get_tip(vs.id, "master").unwrap().id, m[2]);
    assert!(matches!(
        store.get_tip(vs.id, "x"),
        Err(Error::BranchNotFound { .. })
    ));
    assert_eq!(
        store.get_branches(&BranchQuery::all(vs.id)).unwrap().len(),
        2
    );
    let other = new_vs(&store, "other");
    let o = fork(&store, other.id, "master", None, 1);
    let (lsn, dump) = (store.durable_lsn(), store.canonical_dump().unwrap());
    // Refusals: a new tip among the deleted, unknown, or in another volume set.
    let err = store.delete_snapshots(&[e[0]], Some(e[0])).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    let ghost = SnapshotId::random();
    let err = store.delete_snapshots(&[e[0]], Some(ghost)).unwrap_err();
    assert!(
        matches!(err, Error::SnapshotNotFound(x) if x == ghost),
        "{err:?}"
    );
    let err = store.delete_snapshots(&[e[0]], Some(o[0])).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    let err = store.delete_snapshots(&[e[0], o[0]], None).unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument(_)),
        "two volume sets: {err:?}"
    );
    let err = store.delete_snapshots(&[e[0], e[0]], None).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "twice: {err:?}");
    let err = store.delete_snapshots(&[e[0], ghost], None).unwrap_err();
    assert!(
        matches!(err, Error::SnapshotNotFound(x) if x == ghost),
        "{err:?}"
    );
    unchanged(&store, lsn, &dump);
    // Two named branches removed at once: the new tip's branch is unnamed.
    let y = fork(&store, vs.id, "y", None, 2);
    let z = fork(&store, vs.id, "z", Some(y[0]), 1);
    store.delete_snapshots(&[z[0], y[1]], Some(y[0])).unwrap();
    let t = store.get_snapshot(y[0]).unwrap();
    assert!(t.is_tip);
    assert_eq!(t.branch_name, None);
    for n in ["y", "z"] {
        assert!(
            matches!(store.get_tip(vs.id, n), Err(Error::BranchNotFound { .. })),
            "{n}"
        );
    }
}

#[test]
fn delete_a_snapshot_a_volume_is_based_on_is_snapshot_in_use() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let m = fork(&store, vs.id, "master", None, 2);
    store
        .import_volume(&volume("v1", vs.id, Some(m[1]), "/mnt/1"))
        .unwrap();
    store
        .import_volume(&volume("v2", vs.id, Some(m[1]), "/mnt/2"))
        .unwrap();
    let (lsn, dump) = (store.durable_lsn(), store.canonical_dump().unwrap());
    let err = store.delete_snapshots(&[m[1]], Some(m[0])).unwrap_err();
    assert!(
        matches!(err, Error::SnapshotInUse { snapshot, volumes: 2 } if snapshot == m[1]),
        "{err:?}"
    );
    unchanged(&store, lsn, &dump);
    store.delete_volume(&VolumeId::from("v1")).unwrap();
    store.delete_volume(&VolumeId::from("v2")).unwrap();
    store.delete_snapshots(&[m[1]], Some(m[0])).unwrap();
    assert_eq!(store.get_tip(vs.id, "master").unwrap().id, m[0]);
}

#[test]
fn delete_nothing_is_a_no_op() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let m = fork(&store, vs.id, "master", None, 1);
    let lsn = store.durable_lsn();
    store.delete_snapshots(&[], Some(m[0])).unwrap();
    assert_eq!(store.durable_lsn(), lsn);
}

#[test]
fn num_children_counts_direct_children() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let m = fork(&store, vs.id, "master", None, 3);
    assert_eq!(store.num_children(m[0]).unwrap(), 1);
    fork(&store, vs.id, "a", Some(m[0]), 2);
    fork(&store, vs.id, "b", Some(m[0]), 1);
    assert_eq!(store.num_children(m[0]).unwrap(), 3);
    assert_eq!(store.num_children(m[2]).unwrap(), 0);
    let ghost = SnapshotId::random();
    let err = store.num_children(ghost).unwrap_err();
    assert!(
        matches!(err, Error::SnapshotNotFound(x) if x == ghost),
        "{err:?}"
    );
}

#[test]
fn snapshot_fork_helper_builds_one_snapshot() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let before = Timestamp::now();
    let id = SnapshotId::random();
    let s = store
        .snapshot_fork(
            vs.id,
            id,
            "main",
            None,
            BlobId::from("b"),
            attrs(&[("a", "1")]),
            "s",
            9,
            "d",
        )
        .unwrap();
    assert_eq!(
        (s.id, s.volume_set, s.parent, s.depth),
        (id, vs.id, None, 1)
    );
    assert_eq!(
        (s.name.as_str(), s.description.as_str(), s.size),
        ("s", "d", 9)
    );
    assert_eq!(s.blob, BlobId::from("b"));
    assert_eq!(s.attrs, attrs(&[("a", "1")]));
    assert!(s.created >= before && s.created == s.last_modified);
    assert_eq!(s.branch_name.as_deref(), Some("main"));
    // An existing id with the same parent is skipped; a second branch cannot end on it.
    let err = store
        .snapshot_fork(
            vs.id,
            id,
            "again",
            None,
            BlobId::nil(),
            Attrs::new(),
            "",
            0,
            "",
        )
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    let err = store
        .snapshot_fork(
            vs.id,
            id,
            "again",
            Some(id),
            BlobId::nil(),
            Attrs::new(),
            "",
            0,
            "",
        )
        .unwrap_err();
    assert!(matches!(err, Error::SnapshotImportMismatch(_)), "{err:?}");
}
