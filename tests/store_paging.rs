//! Listings answered from the indexes (issue 7.2) against a naive answer: filter every
//! object, sort them all, then offset and limit. Random volume sets and snapshots (equal
//! names, times and sizes included), edits that move them in the indexes (renames,
//! resizes, deletions), then every combination of sort, order, page and filter; again
//! after a reopen (replay) and from a checkpoint.

mod store_support;

use mdslog::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use store_support::*;

fn page<T>(v: Vec<T>, p: Page) -> Vec<T> {
    v.into_iter()
        .skip(p.offset)
        .take(p.limit.unwrap_or(usize::MAX))
        .collect()
}

fn naive_volume_sets(all: &[VolumeSet], q: &VolumeSetQuery) -> Vec<VolumeSetId> {
    let mut v: Vec<&VolumeSet> = all
        .iter()
        .filter(|vs| {
            q.name.as_ref().is_none_or(|n| *n == vs.name)
                && q.prefix.as_ref().is_none_or(|p| *p == vs.prefix)
                && q.search.as_ref().is_none_or(|s| {
                    vs.name.contains(s.as_str())
                        || vs.creator_name.contains(s.as_str())
                        || vs.owner_name.contains(s.as_str())
                        || vs
                            .attrs
                            .iter()
                            .any(|(k, v)| k.contains(s.as_str()) || v.contains(s.as_str()))
                })
                && q.short_id
                    .as_ref()
                    .is_none_or(|p| vs.id.to_hyphenated().starts_with(&p.to_ascii_lowercase()))
        })
        .collect();
    v.sort_by_key(|vs| match q.sort {
        SortBy::Id => (0, 0, vs.id),
        SortBy::Time => (vs.created.0, 0, vs.id),
        SortBy::Size => (0, vs.size, vs.id),
    });
    if q.order == Order::Desc {
        v.reverse();
    }
    page(v.into_iter().map(|vs| vs.id).collect(), q.page)
}

fn naive_snapshots(all: &[Snapshot], q: &SnapshotQuery) -> Vec<SnapshotId> {
    let mut v: Vec<&Snapshot> = all
        .iter()
        .filter(|s| {
            q.volume_set.is_none_or(|vs| s.volume_set == vs)
                && (q.ids.is_empty() || q.ids.contains(&s.id))
                && q.name.as_ref().is_none_or(|n| *n == s.name)
                && q.attrs.iter().all(|(k, v)| s.attrs.get(k) == Some(v))
                && q.search.as_ref().is_none_or(|x| {
                    s.name.contains(x.as_str())
                        || s.creator_name.contains(x.as_str())
                        || s.owner_name.contains(x.as_str())
                        || s.attrs
                            .iter()
                            .any(|(k, v)| k.contains(x.as_str()) || v.contains(x.as_str()))
                })
        })
        .collect();
    v.sort_by_key(|s| match q.sort {
        SortBy::Id => (0, 0, s.id),
        SortBy::Time => (s.created.0, 0, s.id),
        SortBy::Size => (0, s.size, s.id),
    });
    if q.order == Order::Desc {
        v.reverse();
    }
    page(v.into_iter().map(|s| s.id).collect(), q.page)
}

fn random_page(rng: &mut SmallRng) -> Page {
    Page {
        offset: [0, 0, 1, 3, 17, 64, 150, 10_000][rng.gen_range(0..8)],
        limit: [None, Some(0), Some(1), Some(5), Some(40), Some(1000)][rng.gen_range(0..6)],
    }
}

fn random_sort(rng: &mut SmallRng) -> (SortBy, Order) {
    (
        [SortBy::Id, SortBy::Time, SortBy::Size][rng.gen_range(0..3)],
        [Order::Asc, Order::Desc][rng.gen_range(0..2)],
    )
}

/// Builds the store: 120 volume sets, three of them with 150-400 snapshots each on
/// several branches, with repeated names, times and sizes, then edits and deletions.
fn build(store: &Store, rng: &mut SmallRng) -> Vec<VolumeSetId> {
    let mut vss = Vec::new();
    for i in 0..120 {
        let mut vs = VolumeSet::new(VolumeSetId::random(), format!("vs-{}", i % 23));
        vs.prefix = ["", "acme", "beta"][i % 3].to_string();
        vs.created = Timestamp(rng.gen_range(0..40));
        vs.last_modified = vs.created;
        vs.size = rng.gen_range(0..30);
        if i % 5 == 0 {
            vs.attrs = attrs(&[("team", ["red", "blue"][i % 2])]);
        }
        store.import_volume_set(&vs).unwrap();
        vss.push(vs);
    }
    // Renames and resizes move volume sets in the name and size indexes; deletions leave them.
    for vs in vss.iter_mut().step_by(7) {
        vs.name = format!("renamed-{}", rng.gen_range(0..4));
        store.update_volume_set(vs, None).unwrap();
        store
            .set_volume_set_size(vs.id, rng.gen_range(0..30))
            .unwrap();
    }
    for vs in vss.iter().skip(3).step_by(11) {
        store.delete_volume_set(vs.id).unwrap();
    }
    let live: Vec<VolumeSetId> = vss
        .iter()
        .map(|v| v.id)
        .filter(|id| store.get_volume_set(*id).is_ok())
        .collect();
    let with_snaps: Vec<VolumeSetId> = live[..3].to_vec();
    for (k, vs) in with_snaps.iter().enumerate() {
        let mut tips: Vec<SnapshotId> = Vec::new();
        let n = 150 + 120 * k;
        for i in 0..n {
            let mut s = snap_at(*vs, None, rng.gen_range(0..200), rng.gen_range(0..50));
            if i % 4 == 0 {
                s.name = format!("n{}", i % 9);
            }
            if i % 6 == 0 {
                s.attrs = attrs(&[("kind", ["daily", "weekly"][i % 2])]);
            }
            if tips.is_empty() || rng.gen_range(0..10) == 0 {
                store
                    .fork_branch(&format!("b{i}"), std::slice::from_ref(&s))
                    .unwrap();
            } else {
                let t = rng.gen_range(0..tips.len());
                s.parent = Some(tips[t]);
                store.extend_branch(std::slice::from_ref(&s)).unwrap();
                tips.remove(t);
            }
            tips.push(s.id);
        }
        // Edits (names, sizes) and deletions of whole branches.
        let ids = store.get_snapshot_ids(*vs).unwrap();
        for id in ids.iter().step_by(13) {
            let mut s = store.get_snapshot(*id).unwrap();
            s.name = "edited".into();
            store.update_snapshot(&s, None).unwrap();
            store
                .set_blob_id_and_size(*id, &BlobId::nil(), rng.gen_range(0..50))
                .unwrap();
        }
        let branches = store.get_branches(&BranchQuery::all(*vs)).unwrap();
        for b in branches.iter().step_by(5) {
            if !b.name.is_empty() && !b.has_child {
                store.delete_branch(*vs, &b.name).unwrap();
            }
        }
    }
    with_snaps
}

fn check(store: &Store, with_snaps: &[VolumeSetId], seed: u64) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let dump = store.canonical_dump().unwrap();
    // Most answers must hold something, or the comparison proves little.
    let (mut vs_hits, mut snap_hits) = (0, 0);
    for round in 0..1500 {
        let (sort, order) = random_sort(&mut rng);
        let mut q = VolumeSetQuery {
            sort,
            order,
            page: random_page(&mut rng),
            ..Default::default()
        };
        match rng.gen_range(0..6) {
            0 => q.name = Some(format!("vs-{}", rng.gen_range(0..25))),
            1 => q.prefix = Some("acme".into()),
            2 => q.search = Some(["red", "vs-1", "renamed"][rng.gen_range(0..3)].into()),
            3 => {
                let id = dump.volume_sets[rng.gen_range(0..dump.volume_sets.len())]
                    .id
                    .to_hyphenated();
                let n = rng.gen_range(0..=14);
                let p = &id[..n];
                q.short_id = Some(if round % 2 == 0 {
                    p.to_uppercase()
                } else {
                    p.to_string()
                });
            }
            4 => {
                q.short_id = Some(["0", "f", "a-", "zz", "00000000-0"][rng.gen_range(0..5)].into())
            }
            _ => {}
        }
        let got = vs_ids(&store.get_volume_sets(&q).unwrap());
        assert_eq!(got, naive_volume_sets(&dump.volume_sets, &q), "{q:?}");
        vs_hits += usize::from(!got.is_empty());
    }
    assert!(
        vs_hits > 400,
        "{vs_hits} volume set answers of 1500 hold something"
    );
    for _ in 0..1500 {
        let (sort, order) = random_sort(&mut rng);
        let vs = with_snaps[rng.gen_range(0..with_snaps.len())];
        let mut q = SnapshotQuery {
            volume_set: Some(vs),
            sort,
            order,
            page: random_page(&mut rng),
            ..Default::default()
        };
        match rng.gen_range(0..6) {
            0 => q.name = Some(format!("n{}", rng.gen_range(0..10))),
            1 => q.attrs = attrs(&[("kind", "weekly")]),
            2 => q.search = Some(["n1", "dail", "edit"][rng.gen_range(0..3)].into()),
            3 => {
                let all = store.get_snapshot_ids(vs).unwrap();
                q.ids = (0..rng.gen_range(1..20))
                    .map(|_| all[rng.gen_range(0..all.len())])
                    .collect();
                if rng.gen_bool(0.3) {
                    q.volume_set = None;
                }
            }
            _ => {}
        }
        let got = snap_ids(&store.get_snapshots(&q).unwrap());
        assert_eq!(got, naive_snapshots(&dump.snapshots, &q), "{q:?}");
        snap_hits += usize::from(!got.is_empty());
    }
    assert!(
        snap_hits > 400,
        "{snap_hits} snapshot answers of 1500 hold something"
    );
    // Derived fields the indexes now give: newest snapshot time and counts.
    for vs in with_snaps {
        let mine: Vec<&Snapshot> = dump
            .snapshots
            .iter()
            .filter(|s| s.volume_set == *vs)
            .collect();
        let got = store.get_volume_set(*vs).unwrap();
        assert_eq!(got.num_snapshots, mine.len() as u64);
        assert_eq!(got.last_snapshot_time, mine.iter().map(|s| s.created).max());
        let ids = store.get_snapshot_ids(*vs).unwrap();
        assert_eq!(
            sorted(&ids),
            sorted(&snap_ids(&mine.into_iter().cloned().collect::<Vec<_>>()))
        );
    }
}

#[test]
fn listings_page_like_a_full_sort() {
    let mut rng = SmallRng::seed_from_u64(72);
    let (dir, store) = open();
    let with_snaps = build(&store, &mut rng);
    check(&store, &with_snaps, 1);
    let before = store.canonical_dump().unwrap();
    store.close().unwrap();

    let store = reopen(&dir);
    assert_eq!(store.canonical_dump().unwrap(), before);
    check(&store, &with_snaps, 2);
    store.checkpoint().unwrap();
    store.close().unwrap();

    let store = reopen(&dir);
    assert!(store.opened_from_checkpoint().is_some());
    assert_eq!(store.canonical_dump().unwrap(), before);
    check(&store, &with_snaps, 3);
}
