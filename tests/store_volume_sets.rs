//! Volume sets: import and create, every query filter, sorting and paging (after
//! filtering), the three-way update table row by row, pull, sizes, deletion and the
//! derived fields.

mod store_support;

use mdslog::*;
use store_support::*;

/// A volume set with every field set.
fn full_vs(name: &str, prefix: &str) -> VolumeSet {
    let mut vs = VolumeSet::new(VolumeSetId::random(), name);
    vs.prefix = prefix.to_string();
    vs.description = format!("about {name}");
    vs.attrs = attrs(&[("team", "data"), ("tier", "gold")]);
    vs.creator = "c-id".into();
    vs.creator_name = "carol".into();
    vs.owner = "o-id".into();
    vs.owner_name = "oscar".into();
    vs.created = Timestamp(1_000);
    vs.last_modified = Timestamp(2_000);
    vs.size = 77;
    vs
}

#[test]
fn import_then_get_returns_every_field() {
    let (_d, store) = open();
    let vs = full_vs("db", "acme");
    store.import_volume_set(&vs).unwrap();
    let got = store.get_volume_set(vs.id).unwrap();
    assert_eq!(got, vs);
    assert_eq!(got.num_snapshots, 0);
    assert_eq!(got.num_branches, 0);
    assert_eq!(got.last_snapshot_time, None);
}

#[test]
fn import_existing_id_is_volume_set_already_exists() {
    let (_d, store) = open();
    let vs = full_vs("db", "acme");
    store.import_volume_set(&vs).unwrap();
    let lsn = store.durable_lsn();
    let mut again = vs.clone();
    again.name = "other".into();
    let err = store.import_volume_set(&again).unwrap_err();
    assert!(
        matches!(err, Error::VolumeSetAlreadyExists(id) if id == vs.id),
        "{err:?}"
    );
    assert!(err.to_string().contains(&vs.id.to_string()), "{err}");
    assert_eq!(store.durable_lsn(), lsn, "a refused import writes nothing");
    assert_eq!(store.get_volume_set(vs.id).unwrap().name, "db");
}

#[test]
fn derived_fields_in_an_import_are_ignored() {
    let (_d, store) = open();
    let mut vs = full_vs("db", "");
    vs.num_snapshots = 9;
    vs.num_branches = 4;
    vs.last_snapshot_time = Some(Timestamp(5));
    store.import_volume_set(&vs).unwrap();
    let got = store.get_volume_set(vs.id).unwrap();
    assert_eq!(
        (got.num_snapshots, got.num_branches, got.last_snapshot_time),
        (0, 0, None)
    );
}

#[test]
fn create_volume_set_assigns_random_id_and_times_now() {
    let (_d, store) = open();
    let before = Timestamp::now();
    let a = store
        .create_volume_set("db", "acme", Attrs::new(), "desc", "own", "cre")
        .unwrap();
    let b = store
        .create_volume_set("db", "acme", Attrs::new(), "desc", "own", "cre")
        .unwrap();
    let after = Timestamp::now();
    assert_ne!(a.id, b.id, "each call gets a fresh id");
    assert!(a.created >= before && a.created <= after);
    assert_eq!(a.created, a.last_modified);
    assert_eq!(
        (a.name.as_str(), a.prefix.as_str(), a.description.as_str()),
        ("db", "acme", "desc")
    );
    assert_eq!((a.owner.as_str(), a.creator.as_str()), ("own", "cre"));
    assert!(a.attrs.is_empty(), "empty attrs are fine");
    assert_eq!(store.get_volume_set(a.id).unwrap(), a);
    assert_eq!(store.counts().unwrap().volume_sets, 2);
}

#[test]
fn get_unknown_volume_set_is_not_found() {
    let (_d, store) = open();
    let id = VolumeSetId::random();
    let err = store.get_volume_set(id).unwrap_err();
    assert!(
        matches!(err, Error::VolumeSetNotFound(x) if x == id),
        "{err:?}"
    );
}

#[test]
fn ids_must_be_uuids() {
    for bad in ["", "xyz", "1234", "0000000-0000-0000-0000-000000000000"] {
        let err = bad.parse::<VolumeSetId>().unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{bad:?}: {err:?}");
        let err = bad.parse::<SnapshotId>().unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{bad:?}: {err:?}");
        let err = bad.parse::<BranchId>().unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{bad:?}: {err:?}");
    }
    let id = VolumeSetId::random();
    assert_eq!(id.to_string().parse::<VolumeSetId>().unwrap(), id);
    assert_eq!(
        id.to_string()
            .to_uppercase()
            .parse::<VolumeSetId>()
            .unwrap(),
        id
    );
}

/// The original hid name, prefix and description in reserved attribute keys; here they are
/// real fields and those keys are ordinary attributes.
#[test]
fn reserved_attribute_keys_do_not_exist() {
    let (_d, store) = open();
    let vs = store
        .create_volume_set("db", "acme", Attrs::new(), "the desc", "o", "c")
        .unwrap();
    let got = store.get_volume_set(vs.id).unwrap();
    assert!(
        got.attrs.is_empty(),
        "name, prefix and description are not attributes: {:?}",
        got.attrs
    );
    assert_eq!(
        (
            got.name.as_str(),
            got.prefix.as_str(),
            got.description.as_str()
        ),
        ("db", "acme", "the desc")
    );

    let odd = attrs(&[
        ("$$$CHQ$$$NAME", "evil"),
        ("$$$CHQ$$$PREFIX", "p"),
        ("$$$CHQ$$$DESC", "d"),
    ]);
    let vs2 = store
        .create_volume_set("real", "pre", odd.clone(), "desc", "o", "c")
        .unwrap();
    let got = store.get_volume_set(vs2.id).unwrap();
    assert_eq!(
        got.attrs, odd,
        "the keys are kept verbatim, as user attributes"
    );
    assert_eq!(
        (
            got.name.as_str(),
            got.prefix.as_str(),
            got.description.as_str()
        ),
        ("real", "pre", "desc")
    );
    // And a query by name is not fooled by them.
    let q = VolumeSetQuery {
        name: Some("evil".into()),
        ..Default::default()
    };
    assert!(store.get_volume_sets(&q).unwrap().is_empty());
    // An attribute query finds them like any other attribute.
    let q = VolumeSetQuery {
        attrs: attrs(&[("$$$CHQ$$$NAME", "evil")]),
        ..Default::default()
    };
    assert_eq!(vs_ids(&store.get_volume_sets(&q).unwrap()), vec![vs2.id]);
}

#[test]
fn bad_names_are_invalid_arguments_and_write_nothing() {
    let (_d, store) = open();
    let long = "x".repeat(256);
    for bad in [
        "",
        "   ",
        "a\u{1}b",
        "tab\there",
        "new\nline",
        "nul\0",
        long.as_str(),
    ] {
        let err = store
            .create_volume_set(bad, "", Attrs::new(), "", "", "")
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{bad:?}: {err:?}");
    }
    assert_eq!(store.counts().unwrap().volume_sets, 0);
    assert_eq!(
        store.durable_lsn(),
        Lsn(1),
        "only the store's identity record"
    );
    // The limit itself is fine.
    store
        .create_volume_set(&"x".repeat(255), "", Attrs::new(), "", "", "")
        .unwrap();

    // Other fields are checked too.
    let cases: Vec<VolumeSet> = vec![
        VolumeSet {
            prefix: "p\u{7}".into(),
            ..full_vs("ok", "")
        },
        VolumeSet {
            description: "d".repeat(64 * 1024 + 1),
            ..full_vs("ok", "")
        },
        VolumeSet {
            owner_name: "o\u{1b}".into(),
            ..full_vs("ok", "")
        },
        VolumeSet {
            creator: "c".repeat(256),
            ..full_vs("ok", "")
        },
        VolumeSet {
            attrs: attrs(&[("", "v")]),
            ..full_vs("ok", "")
        },
        VolumeSet {
            attrs: attrs(&[("k\n", "v")]),
            ..full_vs("ok", "")
        },
    ];
    for vs in cases {
        let err = store.import_volume_set(&vs).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{vs:?}: {err:?}");
    }
    // Absurd attribute maps: too many, a key or a value too long.
    let many: Attrs = (0..1025)
        .map(|i| (format!("k{i}"), "v".to_string()))
        .collect();
    let long = "a".repeat(16 * 1024 + 1);
    for at in [
        many,
        attrs(&[(long.as_str(), "v")]),
        attrs(&[("k", long.as_str())]),
    ] {
        let err = store
            .import_volume_set(&VolumeSet {
                attrs: at,
                ..full_vs("ok", "")
            })
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    }
    assert_eq!(store.counts().unwrap().volume_sets, 1);
    // A description may hold new lines and tabs.
    store
        .create_volume_set("ok", "", Attrs::new(), "line one\n\tline two", "", "")
        .unwrap();
}

#[test]
fn update_with_a_bad_name_is_invalid_argument() {
    let (_d, store) = open();
    let vs = store
        .create_volume_set("db", "", Attrs::new(), "", "", "")
        .unwrap();
    let lsn = store.durable_lsn();
    for bad in ["", " ", "a\u{2}", &"n".repeat(300)] {
        let cur = VolumeSet {
            name: bad.to_string(),
            ..vs.clone()
        };
        let err = store.update_volume_set(&cur, None).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{bad:?}: {err:?}");
    }
    assert_eq!(store.durable_lsn(), lsn);
    assert_eq!(store.get_volume_set(vs.id).unwrap().name, "db");
}

// ---- Queries -------------------------------------------------------------------------------

/// Five volume sets with distinct fields, for the filter tests.
struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    a: VolumeSet, // acme/db, carol/oscar, team=data tier=gold
    b: VolumeSet, // acme/web, carol/olga, team=web tier=gold
    c: VolumeSet, // other/db, dave/oscar, team=data tier=silver
    d: VolumeSet, // db (no prefix), dave/olga, no attrs
    e: VolumeSet, // org/team/dbx, erin/erin, misc=needle-in-value
}

fn fixture() -> Fixture {
    let (dir, store) = open();
    let mk = |name: &str, prefix: &str, cn: &str, on: &str, at: Attrs, created: i64, size: u64| {
        let mut vs = VolumeSet::new(VolumeSetId::random(), name);
        vs.prefix = prefix.into();
        vs.creator = format!("{cn}-id");
        vs.creator_name = cn.into();
        vs.owner = format!("{on}-id");
        vs.owner_name = on.into();
        vs.attrs = at;
        vs.created = Timestamp(created);
        vs.last_modified = Timestamp(created);
        vs.size = size;
        store.import_volume_set(&vs).unwrap();
        vs
    };
    let a = mk(
        "db",
        "acme",
        "carol",
        "oscar",
        attrs(&[("team", "data"), ("tier", "gold")]),
        300,
        10,
    );
    let b = mk(
        "web",
        "acme",
        "carol",
        "olga",
        attrs(&[("team", "web"), ("tier", "gold")]),
        100,
        50,
    );
    let c = mk(
        "db",
        "other",
        "dave",
        "oscar",
        attrs(&[("team", "data"), ("tier", "silver")]),
        500,
        30,
    );
    let d = mk("db", "", "dave", "olga", Attrs::new(), 200, 40);
    let e = mk(
        "dbx",
        "org/team",
        "erin",
        "erin",
        attrs(&[("misc", "needle-in-value")]),
        400,
        20,
    );
    Fixture {
        _dir: dir,
        store,
        a,
        b,
        c,
        d,
        e,
    }
}

fn q_ids(store: &Store, q: VolumeSetQuery) -> Vec<VolumeSetId> {
    sorted(&vs_ids(&store.get_volume_sets(&q).unwrap()))
}

#[test]
fn query_by_id_or_ids_but_not_both() {
    let f = fixture();
    let q = VolumeSetQuery {
        id: Some(f.a.id),
        ids: vec![f.b.id],
        ..Default::default()
    };
    let err = f.store.get_volume_sets(&q).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");

    assert_eq!(
        q_ids(
            &f.store,
            VolumeSetQuery {
                id: Some(f.c.id),
                ..Default::default()
            }
        ),
        vec![f.c.id]
    );
    assert_eq!(
        q_ids(
            &f.store,
            VolumeSetQuery {
                ids: vec![f.b.id, f.d.id, f.b.id],
                ..Default::default()
            }
        ),
        sorted(&[f.b.id, f.d.id])
    );
    // Unknown ids simply match nothing.
    assert!(q_ids(
        &f.store,
        VolumeSetQuery {
            id: Some(VolumeSetId::random()),
            ..Default::default()
        }
    )
    .is_empty());
    assert_eq!(
        q_ids(
            &f.store,
            VolumeSetQuery {
                ids: vec![VolumeSetId::random(), f.e.id],
                ..Default::default()
            }
        ),
        vec![f.e.id]
    );
    // An id combines with the other filters.
    let q = VolumeSetQuery {
        id: Some(f.a.id),
        name: Some("web".into()),
        ..Default::default()
    };
    assert!(q_ids(&f.store, q).is_empty());
    // No filter: everything.
    assert_eq!(q_ids(&f.store, VolumeSetQuery::default()).len(), 5);
}

#[test]
fn query_by_name_prefix_creator_owner() {
    let f = fixture();
    let s = &f.store;
    assert_eq!(
        q_ids(
            s,
            VolumeSetQuery {
                name: Some("db".into()),
                ..Default::default()
            }
        ),
        sorted(&[f.a.id, f.c.id, f.d.id])
    );
    assert_eq!(
        q_ids(
            s,
            VolumeSetQuery {
                prefix: Some("acme".into()),
                ..Default::default()
            }
        ),
        sorted(&[f.a.id, f.b.id])
    );
    assert_eq!(
        q_ids(
            s,
            VolumeSetQuery {
                prefix: Some("".into()),
                ..Default::default()
            }
        ),
        vec![f.d.id]
    );
    let q = VolumeSetQuery {
        name: Some("db".into()),
        prefix: Some("acme".into()),
        ..Default::default()
    };
    assert_eq!(q_ids(s, q), vec![f.a.id]);
    assert_eq!(
        q_ids(
            s,
            VolumeSetQuery {
                creator: Some("dave-id".into()),
                ..Default::default()
            }
        ),
        sorted(&[f.c.id, f.d.id])
    );
    assert_eq!(
        q_ids(
            s,
            VolumeSetQuery {
                creator_name: Some("carol".into()),
                ..Default::default()
            }
        ),
        sorted(&[f.a.id, f.b.id])
    );
    assert_eq!(
        q_ids(
            s,
            VolumeSetQuery {
                owner: Some("oscar-id".into()),
                ..Default::default()
            }
        ),
        sorted(&[f.a.id, f.c.id])
    );
    assert_eq!(
        q_ids(
            s,
            VolumeSetQuery {
                owner_name: Some("olga".into()),
                ..Default::default()
            }
        ),
        sorted(&[f.b.id, f.d.id])
    );
    let q = VolumeSetQuery {
        creator_name: Some("dave".into()),
        owner_name: Some("olga".into()),
        ..Default::default()
    };
    assert_eq!(q_ids(s, q), vec![f.d.id]);
    // Exact match, not substring.
    assert!(q_ids(
        s,
        VolumeSetQuery {
            name: Some("d".into()),
            ..Default::default()
        }
    )
    .is_empty());
    assert!(q_ids(
        s,
        VolumeSetQuery {
            owner_name: Some("osc".into()),
            ..Default::default()
        }
    )
    .is_empty());
}

#[test]
fn query_by_attrs_needs_every_pair() {
    let f = fixture();
    let s = &f.store;
    let q = |p: &[(&str, &str)]| {
        q_ids(
            s,
            VolumeSetQuery {
                attrs: attrs(p),
                ..Default::default()
            },
        )
    };
    assert_eq!(q(&[("team", "data")]), sorted(&[f.a.id, f.c.id]));
    assert_eq!(q(&[("tier", "gold")]), sorted(&[f.a.id, f.b.id]));
    assert_eq!(q(&[("team", "data"), ("tier", "gold")]), vec![f.a.id]);
    assert!(
        q(&[("team", "data"), ("tier", "bronze")]).is_empty(),
        "one wrong value excludes"
    );
    assert!(
        q(&[("team", "data"), ("missing", "x")]).is_empty(),
        "one missing key excludes"
    );
    assert!(q(&[("team", "dat")]).is_empty(), "values match exactly");
    assert_eq!(q(&[]).len(), 5, "no pairs: no filter");
}

#[test]
fn query_search_is_a_substring_of_name_usernames_and_attrs() {
    let f = fixture();
    let s = &f.store;
    let q = |x: &str| {
        q_ids(
            s,
            VolumeSetQuery {
                search: Some(x.into()),
                ..Default::default()
            },
        )
    };
    assert_eq!(q("we"), vec![f.b.id], "name (and the attr value web)");
    assert_eq!(q("dbx"), vec![f.e.id], "name substring");
    assert_eq!(q("aro"), sorted(&[f.a.id, f.b.id]), "creator name");
    assert_eq!(q("lga"), sorted(&[f.b.id, f.d.id]), "owner name");
    assert_eq!(q("tie"), sorted(&[f.a.id, f.b.id, f.c.id]), "attribute key");
    assert_eq!(q("silv"), vec![f.c.id], "attribute value");
    assert_eq!(q("needle"), vec![f.e.id], "attribute value");
    assert!(q("zzz-nothing").is_empty());
    // Search combines with the other filters.
    let qq = VolumeSetQuery {
        search: Some("db".into()),
        prefix: Some("other".into()),
        ..Default::default()
    };
    assert_eq!(q_ids(s, qq), vec![f.c.id]);
}

#[test]
fn query_by_short_id_prefix() {
    let f = fixture();
    let s = &f.store;
    let full = f.c.id.to_string();
    for n in [1usize, 4, 8, 13, 36] {
        let got = q_ids(
            s,
            VolumeSetQuery {
                short_id: Some(full[..n].to_string()),
                ..Default::default()
            },
        );
        assert!(got.contains(&f.c.id), "prefix of {n}");
        let expect: Vec<VolumeSetId> = [f.a.id, f.b.id, f.c.id, f.d.id, f.e.id]
            .into_iter()
            .filter(|id| id.to_string().starts_with(&full[..n]))
            .collect();
        assert_eq!(got, sorted(&expect), "prefix of {n}");
    }
    let upper = full[..8].to_uppercase();
    assert!(q_ids(
        s,
        VolumeSetQuery {
            short_id: Some(upper),
            ..Default::default()
        }
    )
    .contains(&f.c.id));
    // A prefix that is no id's prefix ("g" is not a hex digit).
    assert!(q_ids(
        s,
        VolumeSetQuery {
            short_id: Some("g".into()),
            ..Default::default()
        }
    )
    .is_empty());
}

#[test]
fn query_by_glob_anchored_or_suffix() {
    let f = fixture();
    let s = &f.store;
    let g = |x: &str| {
        q_ids(
            s,
            VolumeSetQuery {
                glob: Some(x.into()),
                ..Default::default()
            },
        )
    };
    // Without a leading '/', a suffix of prefix/name (at a '/' boundary) matches.
    assert_eq!(g("db"), sorted(&[f.a.id, f.c.id, f.d.id]));
    assert_eq!(g("db*"), sorted(&[f.a.id, f.c.id, f.d.id, f.e.id]));
    assert_eq!(g("acme/db"), vec![f.a.id]);
    assert_eq!(g("*/db"), sorted(&[f.a.id, f.c.id]));
    assert_eq!(g("team/dbx"), vec![f.e.id]);
    assert!(g("b").is_empty(), "a suffix starts at a '/' boundary");
    // A leading '/' anchors at the start.
    assert_eq!(g("/db"), vec![f.d.id]);
    assert_eq!(g("/acme/*"), sorted(&[f.a.id, f.b.id]));
    assert!(g("/team/dbx").is_empty());
    assert_eq!(g("/org/team/dbx"), vec![f.e.id]);
    assert_eq!(g("/*/db"), sorted(&[f.a.id, f.c.id]));
    assert_eq!(g("/?cme/w?b"), vec![f.b.id]);
    // A malformed pattern is a bad query, not one that matches nothing.
    for bad in ["[", "/acme/[db", "a**b"] {
        let err = s
            .get_volume_sets(&VolumeSetQuery {
                glob: Some(bad.into()),
                ..Default::default()
            })
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{bad:?}: {err:?}");
    }
}

#[test]
fn sort_by_time_and_size_both_ways_default_by_id() {
    let f = fixture();
    let s = &f.store;
    let run = |sort: SortBy, order: Order| {
        vs_ids(
            &s.get_volume_sets(&VolumeSetQuery {
                sort,
                order,
                ..Default::default()
            })
            .unwrap(),
        )
    };
    // created: b 100, d 200, a 300, e 400, c 500; size: a 10, e 20, c 30, d 40, b 50.
    assert_eq!(
        run(SortBy::Time, Order::Asc),
        vec![f.b.id, f.d.id, f.a.id, f.e.id, f.c.id]
    );
    assert_eq!(
        run(SortBy::Time, Order::Desc),
        vec![f.c.id, f.e.id, f.a.id, f.d.id, f.b.id]
    );
    assert_eq!(
        run(SortBy::Size, Order::Asc),
        vec![f.a.id, f.e.id, f.c.id, f.d.id, f.b.id]
    );
    assert_eq!(
        run(SortBy::Size, Order::Desc),
        vec![f.b.id, f.d.id, f.c.id, f.e.id, f.a.id]
    );
    let all = [f.a.id, f.b.id, f.c.id, f.d.id, f.e.id];
    assert_eq!(
        vs_ids(&s.get_volume_sets(&VolumeSetQuery::default()).unwrap()),
        sorted(&all),
        "default: by id"
    );
    let mut desc = sorted(&all);
    desc.reverse();
    assert_eq!(run(SortBy::Id, Order::Desc), desc);
}

#[test]
fn offset_and_limit_apply_after_filter_and_sort() {
    let f = fixture();
    let s = &f.store;
    let page = |filter: VolumeSetQuery, offset: usize, limit: Option<usize>| {
        vs_ids(
            &s.get_volume_sets(&VolumeSetQuery {
                page: Page { offset, limit },
                ..filter
            })
            .unwrap(),
        )
    };
    let dbs = VolumeSetQuery {
        name: Some("db".into()),
        sort: SortBy::Time,
        ..Default::default()
    };
    // name=db by time: d 200, a 300, c 500.
    assert_eq!(page(dbs.clone(), 0, Some(2)), vec![f.d.id, f.a.id]);
    assert_eq!(page(dbs.clone(), 1, Some(2)), vec![f.a.id, f.c.id]);
    assert_eq!(page(dbs.clone(), 2, Some(2)), vec![f.c.id]);
    assert_eq!(page(dbs.clone(), 3, Some(2)), Vec::<VolumeSetId>::new());
    assert_eq!(page(dbs.clone(), 1, None), vec![f.a.id, f.c.id]);
    assert_eq!(page(dbs.clone(), 0, Some(0)), Vec::<VolumeSetId>::new());
    assert_eq!(page(dbs, 99, None), Vec::<VolumeSetId>::new());
    // The last one by time (c) is found with a limit of 1 after filtering on an attribute
    // only two volume sets have, whatever order the others are in.
    let q = VolumeSetQuery {
        attrs: attrs(&[("team", "data")]),
        sort: SortBy::Time,
        order: Order::Desc,
        ..Default::default()
    };
    assert_eq!(page(q.clone(), 0, Some(1)), vec![f.c.id]);
    assert_eq!(page(q, 1, Some(1)), vec![f.a.id]);
}

// ---- Three-way update ------------------------------------------------------------------------

fn renamed(vs: &VolumeSet, name: &str) -> VolumeSet {
    VolumeSet {
        name: name.to_string(),
        ..vs.clone()
    }
}

/// Stores `target`, then runs one row: returns the store's answer and whether a record
/// was written.
fn row(
    target: &VolumeSet,
    cur: &VolumeSet,
    init: Option<&VolumeSet>,
    pull: bool,
) -> (Option<MetaConflict<VolumeSet>>, bool, VolumeSet) {
    let (_d, store) = open();
    store.import_volume_set(target).unwrap();
    let lsn = store.durable_lsn();
    let out = if pull {
        store.pull_volume_set(cur, init)
    } else {
        store.update_volume_set(cur, init)
    }
    .unwrap();
    let stored = store.get_volume_set(target.id).unwrap();
    (out, store.durable_lsn() != lsn, stored)
}

#[test]
fn update_row_1_all_equal_is_no_action() {
    let t = full_vs("one", "p");
    let (out, wrote, stored) = row(&t, &t.clone(), Some(&t.clone()), false);
    assert!(out.is_none());
    assert!(!wrote);
    assert_eq!(stored, t);
}

#[test]
fn update_row_2_unchanged_current_adopts_target() {
    let t = full_vs("target", "p");
    let c = renamed(&t, "old");
    let (out, wrote, stored) = row(&t, &c, Some(&c.clone()), false);
    let e = out.expect("the caller must adopt target");
    assert_eq!(e.status, ResolveStatus::UseTargetNoConflict);
    assert!(!e.is_conflict());
    assert_eq!(
        (e.target.clone(), e.current.clone(), e.initial.clone()),
        (t.clone(), c.clone(), Some(c))
    );
    assert!(!wrote);
    assert_eq!(stored, t);
}

#[test]
fn update_row_3_only_current_changed_writes_current() {
    let t = full_vs("old", "p");
    let mut c = renamed(&t, "new");
    c.attrs.insert("k".into(), "v".into());
    c.last_modified = Timestamp(9_999);
    let (out, wrote, stored) = row(&t, &c, Some(&t.clone()), false);
    assert!(out.is_none(), "{out:?}");
    assert!(wrote);
    assert_eq!(stored, c);
}

#[test]
fn update_row_4_both_made_the_same_change_adopts_target() {
    let i = full_vs("old", "p");
    let t = renamed(&i, "new");
    let c = renamed(&i, "new");
    let (out, wrote, stored) = row(&t, &c, Some(&i), false);
    let e = out.expect("returned");
    assert_eq!(e.status, ResolveStatus::UseTargetNoConflict);
    assert!(!e.is_conflict());
    assert!(!wrote);
    assert_eq!(stored, t);
}

#[test]
fn update_row_5_both_changed_differently_is_a_conflict_target_wins() {
    let i = full_vs("old", "p");
    let t = renamed(&i, "theirs");
    let c = renamed(&i, "mine");
    let (out, wrote, stored) = row(&t, &c, Some(&i), false);
    let e = out.expect("returned");
    assert_eq!(e.status, ResolveStatus::UseTargetConflict);
    assert!(e.is_conflict());
    assert_eq!(
        (e.target.name.as_str(), e.current.name.as_str()),
        ("theirs", "mine")
    );
    assert_eq!(e.initial.as_ref().map(|x| x.name.as_str()), Some("old"));
    assert!(!wrote);
    assert_eq!(stored, t, "target wins");
}

#[test]
fn update_without_initial_is_unconditional() {
    let t = full_vs("old", "p");
    let c = renamed(&t, "new");
    let (out, wrote, stored) = row(&t, &c, None, false);
    assert!(out.is_none());
    assert!(wrote);
    assert_eq!(stored.name, "new");
    // Equal to target: no action, nothing written.
    let (out, wrote, _) = row(&t, &t.clone(), None, false);
    assert!(out.is_none());
    assert!(!wrote);
}

#[test]
fn every_compared_field_is_an_edit() {
    let t = full_vs("n", "p");
    let edits: Vec<VolumeSet> = vec![
        VolumeSet {
            name: "n2".into(),
            ..t.clone()
        },
        VolumeSet {
            prefix: "p2".into(),
            ..t.clone()
        },
        VolumeSet {
            description: "d2".into(),
            ..t.clone()
        },
        VolumeSet {
            attrs: attrs(&[("x", "y")]),
            ..t.clone()
        },
        VolumeSet {
            creator: "c2".into(),
            ..t.clone()
        },
        VolumeSet {
            owner: "o2".into(),
            ..t.clone()
        },
    ];
    for c in edits {
        let (out, wrote, stored) = row(&t, &c, Some(&t.clone()), false);
        assert!(out.is_none());
        assert!(wrote, "{c:?}");
        assert_eq!(stored, c);
    }
}

#[test]
fn writable_fields_are_written_and_the_rest_are_not() {
    let t = full_vs("n", "p");
    let c = VolumeSet {
        name: "n2".into(),
        prefix: "p2".into(),
        description: "d2".into(),
        attrs: attrs(&[("a", "b")]),
        creator: "c2".into(),
        creator_name: "cn2".into(),
        owner: "o2".into(),
        owner_name: "on2".into(),
        last_modified: Timestamp(123_456),
        // Not writable through an update:
        created: Timestamp(5),
        size: 999_999,
        num_snapshots: 42,
        num_branches: 42,
        last_snapshot_time: Some(Timestamp(1)),
        id: t.id,
    };
    let (_, wrote, stored) = row(&t, &c, None, false);
    assert!(wrote);
    let expect = VolumeSet {
        created: t.created,
        size: t.size,
        num_snapshots: 0,
        num_branches: 0,
        last_snapshot_time: None,
        ..c.clone()
    };
    assert_eq!(stored, expect);
}

#[test]
fn update_of_an_unknown_volume_set_is_not_found() {
    let (_d, store) = open();
    let vs = full_vs("ghost", "");
    let err = store.update_volume_set(&vs, None).unwrap_err();
    assert!(
        matches!(err, Error::VolumeSetNotFound(id) if id == vs.id),
        "{err:?}"
    );
    let err = store.pull_volume_set(&vs, Some(&vs)).unwrap_err();
    assert!(
        matches!(err, Error::VolumeSetNotFound(id) if id == vs.id),
        "{err:?}"
    );
    assert_eq!(
        store.durable_lsn(),
        Lsn(1),
        "only the store's identity record"
    );
}

#[test]
fn pull_resolves_the_same_but_writes_nothing() {
    let i = full_vs("old", "p");
    let t2 = renamed(&i, "theirs");
    let c = renamed(&i, "mine");
    type Row = (VolumeSet, VolumeSet, Option<VolumeSet>);
    let rows: Vec<Row> = vec![
        (i.clone(), i.clone(), Some(i.clone())),
        (t2.clone(), i.clone(), Some(i.clone())),
        (i.clone(), c.clone(), Some(i.clone())),
        (c.clone(), c.clone(), Some(i.clone())),
        (t2.clone(), c.clone(), Some(i.clone())),
        (i.clone(), c.clone(), None),
    ];
    for (t, cur, init) in rows {
        let (pulled, wrote, stored) = row(&t, &cur, init.as_ref(), true);
        assert!(!wrote, "pull never writes");
        assert_eq!(stored, t);
        let (updated, _, _) = row(&t, &cur, init.as_ref(), false);
        assert_eq!(pulled, updated, "pull answers what update would");
    }
}

// ---- Size, usage, deletion, derived fields ---------------------------------------------------

#[test]
fn set_size_and_disk_space_usage() {
    let (_d, store) = open();
    let a = new_vs(&store, "a");
    let b = new_vs(&store, "b");
    let c = new_vs(&store, "c");
    store.set_volume_set_size(a.id, 100).unwrap();
    store.set_volume_set_size(b.id, 20).unwrap();
    store.set_volume_set_size(c.id, 3).unwrap();
    store.set_volume_set_size(c.id, 4).unwrap();
    assert_eq!(store.get_volume_set(a.id).unwrap().size, 100);
    assert_eq!(store.get_volume_set(c.id).unwrap().size, 4);
    assert_eq!(store.disk_space_usage(&[a.id, b.id]).unwrap(), 120);
    assert_eq!(store.disk_space_usage(&[a.id, b.id, c.id]).unwrap(), 124);
    assert_eq!(store.disk_space_usage(&[c.id]).unwrap(), 4);
    assert_eq!(store.disk_space_usage(&[]).unwrap(), 0);
    store.set_volume_set_size(a.id, u64::MAX).unwrap();
    assert_eq!(
        store.disk_space_usage(&[a.id, b.id]).unwrap(),
        u64::MAX,
        "saturates, never wraps"
    );

    let ghost = VolumeSetId::random();
    let err = store.set_volume_set_size(ghost, 1).unwrap_err();
    assert!(
        matches!(err, Error::VolumeSetNotFound(id) if id == ghost),
        "{err:?}"
    );
    let err = store.disk_space_usage(&[a.id, ghost]).unwrap_err();
    assert!(
        matches!(err, Error::VolumeSetNotFound(id) if id == ghost),
        "{err:?}"
    );
}

#[test]
fn delete_volume_set_removes_everything_in_it() {
    let (_d, store) = open();
    let vs = new_vs(&store, "doomed");
    let keep = new_vs(&store, "kept");
    let m = fork(&store, vs.id, "master", None, 3);
    let dv = fork(&store, vs.id, "dev", Some(m[0]), 2);
    let r2 = fork(&store, vs.id, "", None, 1);
    store
        .import_bush(&Bush {
            root: m[0],
            volume_set: vs.id,
            data_server: 1,
        })
        .unwrap();
    store
        .import_bush(&Bush {
            root: r2[0],
            volume_set: vs.id,
            data_server: 2,
        })
        .unwrap();
    store
        .import_volume(&volume("v1", vs.id, Some(m[2]), "/mnt/v1"))
        .unwrap();
    store
        .import_volume(&volume("v2", vs.id, None, "/mnt/v2"))
        .unwrap();
    // The other volume set's objects.
    let k = fork(&store, keep.id, "master", None, 2);
    store
        .import_bush(&Bush {
            root: k[0],
            volume_set: keep.id,
            data_server: 3,
        })
        .unwrap();
    store
        .import_volume(&volume("kv", keep.id, Some(k[1]), "/mnt/kv"))
        .unwrap();
    let kept_before: Vec<Snapshot> = store
        .canonical_dump()
        .unwrap()
        .snapshots
        .into_iter()
        .filter(|s| s.volume_set == keep.id)
        .collect();

    store.delete_volume_set(vs.id).unwrap();

    let err = store.get_volume_set(vs.id).unwrap_err();
    assert!(matches!(err, Error::VolumeSetNotFound(_)), "{err:?}");
    for s in m.iter().chain(&dv).chain(&r2) {
        let err = store.get_snapshot(*s).unwrap_err();
        assert!(
            matches!(err, Error::SnapshotNotFound(x) if x == *s),
            "{err:?}"
        );
        let err = store.get_bush(*s).unwrap_err();
        assert!(matches!(err, Error::SnapshotNotFound(_)), "{err:?}");
    }
    let err = store.get_branches(&BranchQuery::all(vs.id)).unwrap_err();
    assert!(matches!(err, Error::VolumeSetNotFound(_)), "{err:?}");
    let err = store.get_tip(vs.id, "master").unwrap_err();
    assert!(matches!(err, Error::VolumeSetNotFound(_)), "{err:?}");
    for v in ["v1", "v2"] {
        let err = store.get_volume(&VolumeId::from(v)).unwrap_err();
        assert!(matches!(err, Error::VolumeNotFound(_)), "{err:?}");
    }
    assert_eq!(
        store.counts().unwrap(),
        mdslog::state::query::Counts {
            volume_sets: 1,
            snapshots: 2,
            branches: 1,
            bushes: 1,
            volumes: 1
        }
    );
    // The other volume set is untouched.
    let d = store.canonical_dump().unwrap();
    let kept_after: Vec<_> = d
        .snapshots
        .iter()
        .filter(|s| s.volume_set == keep.id)
        .cloned()
        .collect();
    assert_eq!(kept_after, kept_before);
    assert_eq!(store.get_tip(keep.id, "master").unwrap().id, k[1]);
    assert_eq!(store.get_bush(k[1]).unwrap().data_server, 3);
    // The mount paths of the removed volumes are free again.
    store
        .import_volume(&volume("v9", keep.id, None, "/mnt/v1"))
        .unwrap();
    // Deleting it again: not found.
    let err = store.delete_volume_set(vs.id).unwrap_err();
    assert!(
        matches!(err, Error::VolumeSetNotFound(id) if id == vs.id),
        "{err:?}"
    );
    // Its id can be imported anew, empty.
    store.import_volume_set(&vs).unwrap();
    assert_eq!(store.get_volume_set(vs.id).unwrap().num_snapshots, 0);
    assert!(store.get_snapshot_ids(vs.id).unwrap().is_empty());
}

#[test]
fn derived_counts_and_last_snapshot_time() {
    let (_d, store) = open();
    let vs = new_vs(&store, "repo");
    let got = store.get_volume_set(vs.id).unwrap();
    assert_eq!(
        (got.num_snapshots, got.num_branches, got.last_snapshot_time),
        (0, 0, None)
    );

    let r = snap_at(vs.id, None, 1_000, 0);
    let a = snap_at(vs.id, Some(r.id), 3_000, 0);
    store
        .fork_branch("master", &[r.clone(), a.clone()])
        .unwrap();
    let got = store.get_volume_set(vs.id).unwrap();
    assert_eq!(
        (got.num_snapshots, got.num_branches, got.last_snapshot_time),
        (2, 1, Some(Timestamp(3_000)))
    );

    // An older snapshot on a new branch does not move the time back.
    let b = snap_at(vs.id, Some(r.id), 2_000, 0);
    store.fork_branch("dev", std::slice::from_ref(&b)).unwrap();
    let got = store.get_volume_set(vs.id).unwrap();
    assert_eq!(
        (got.num_snapshots, got.num_branches, got.last_snapshot_time),
        (3, 2, Some(Timestamp(3_000)))
    );

    let c = snap_at(vs.id, Some(b.id), 5_000, 0);
    store.extend_branch(std::slice::from_ref(&c)).unwrap();
    let got = store.get_volume_set(vs.id).unwrap();
    assert_eq!(
        (got.num_snapshots, got.num_branches, got.last_snapshot_time),
        (4, 2, Some(Timestamp(5_000)))
    );

    // Deleting the newest recomputes the time; the branch moves to b (keeps its name).
    store.delete_snapshots(&[c.id], Some(b.id)).unwrap();
    let got = store.get_volume_set(vs.id).unwrap();
    assert_eq!(
        (got.num_snapshots, got.num_branches, got.last_snapshot_time),
        (3, 2, Some(Timestamp(3_000)))
    );

    // Deleting a branch's whole chain removes the branch.
    store.delete_snapshots(&[b.id], None).unwrap();
    let got = store.get_volume_set(vs.id).unwrap();
    assert_eq!(
        (got.num_snapshots, got.num_branches, got.last_snapshot_time),
        (2, 1, Some(Timestamp(3_000)))
    );

    store.delete_snapshots(&[r.id, a.id], None).unwrap();
    let got = store.get_volume_set(vs.id).unwrap();
    assert_eq!(
        (got.num_snapshots, got.num_branches, got.last_snapshot_time),
        (0, 0, None)
    );

    // The derived fields come back the same from a listing.
    let listed = store
        .get_volume_sets(&VolumeSetQuery {
            id: Some(vs.id),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(listed, vec![got]);
}
