//! Sync of structure between two stores in one process: new branches, fast-forwards,
//! behind, divergence, renames, name clashes; and the cursors that make a second sync
//! send nothing new.

mod store_support;
mod sync_support;

use mdslog::event::Conflict;
use mdslog::sync::{sync, SyncMode};
use mdslog::*;
use store_support::*;
use sync_support::synced_view;

/// Two stores, `a` holding a volume set with a branch "master" of `n` snapshots.
fn two_stores(
    n: usize,
) -> (
    (tempfile::TempDir, Store),
    (tempfile::TempDir, Store),
    VolumeSet,
    Vec<Snapshot>,
) {
    let a = open();
    let b = open();
    let vs = new_vs(&a.1, "db");
    let snaps = chain(vs.id, None, n);
    a.1.fork_branch("master", &snaps).unwrap();
    (a, b, vs, snaps)
}

fn tip(s: &Store, vs: VolumeSetId, name: &str) -> SnapshotId {
    s.get_tip(vs, name).unwrap().id
}

#[test]
fn push_a_new_volume_set_and_branch_then_nothing_twice() {
    let ((_da, a), (_db, b), vs, snaps) = two_stores(5);
    let r = sync(&a, &b, vs.id, SyncMode::Both).unwrap();
    let pushed = r.pushed.as_ref().unwrap();
    assert!(pushed.volume_set_created);
    assert_eq!(pushed.snapshots_added, 5);
    assert_eq!(pushed.branches_added, 1);
    assert!(r.conflicts.is_empty() && r.divergences.is_empty());
    assert_eq!(tip(&b, vs.id, "master"), snaps[4].id);
    assert_eq!(synced_view(&a, vs.id), synced_view(&b, vs.id));
    // The branch keeps its id across stores.
    let ba = a.get_branches(&BranchQuery::all(vs.id)).unwrap();
    let bb = b.get_branches(&BranchQuery::all(vs.id)).unwrap();
    assert_eq!(ba[0].id, bb[0].id);
    // The pull sent nothing back: b's records came from a.
    let pulled = r.pulled.as_ref().unwrap();
    assert_eq!(pulled.records_received, 0, "{pulled:?}");

    // A second sync finds nothing to do and writes nothing.
    let (la, lb) = (a.durable_lsn(), b.durable_lsn());
    let r2 = sync(&a, &b, vs.id, SyncMode::Both).unwrap();
    assert!(!r2.pushed.as_ref().unwrap().changed_anything());
    assert!(!r2.pulled.as_ref().unwrap().changed_anything());
    assert_eq!((a.durable_lsn(), b.durable_lsn()), (la, lb), "{r2:?}");
}

#[test]
fn extend_on_one_side_fast_forwards_the_other() {
    let ((_da, a), (_db, b), vs, snaps) = two_stores(3);
    sync(&a, &b, vs.id, SyncMode::Both).unwrap();
    // b extends; a pulls it.
    let more = chain(vs.id, Some(snaps[2].id), 4);
    b.extend_branch(&more).unwrap();
    let r = sync(&a, &b, vs.id, SyncMode::Both).unwrap();
    let pulled = r.pulled.unwrap();
    assert_eq!(pulled.branches_extended, 1);
    assert_eq!(pulled.snapshots_added, 4);
    assert_eq!(tip(&a, vs.id, "master"), more[3].id);
    assert_eq!(synced_view(&a, vs.id), synced_view(&b, vs.id));
    // a extends; b gets it by a push.
    let again = chain(vs.id, Some(more[3].id), 2);
    a.extend_branch(&again).unwrap();
    let r = sync(&a, &b, vs.id, SyncMode::Both).unwrap();
    assert_eq!(r.pushed.unwrap().branches_extended, 1);
    assert_eq!(tip(&b, vs.id, "master"), again[1].id);
}

#[test]
fn diverged_branch_is_reported_and_the_rest_still_syncs() {
    let ((_da, a), (_db, b), vs, snaps) = two_stores(2);
    sync(&a, &b, vs.id, SyncMode::Both).unwrap();
    // Both extend master from the same tip: diverged.
    let on_a = chain(vs.id, Some(snaps[1].id), 2);
    let on_b = chain(vs.id, Some(snaps[1].id), 3);
    a.extend_branch(&on_a).unwrap();
    b.extend_branch(&on_b).unwrap();
    // And a also forks a new branch and edits the volume set: those still travel.
    let dev = chain(vs.id, Some(snaps[0].id), 1);
    a.fork_branch("dev", &dev).unwrap();
    let mut v = a.get_volume_set(vs.id).unwrap();
    let before = v.clone();
    v.description = "edited on a".into();
    a.update_volume_set(&v, Some(&before)).unwrap();

    let r = sync(&a, &b, vs.id, SyncMode::Both).unwrap();
    assert_eq!(r.divergences.len(), 2, "once each way: {r:?}");
    let d = &r.divergences[0];
    assert_eq!(d.name, "master");
    assert_eq!(d.receiver_tip, on_b[2].id);
    assert_eq!(d.sender_tip, on_a[1].id);
    assert_eq!(d.common, Some(snaps[1].id));
    assert_eq!(tip(&b, vs.id, "master"), on_b[2].id, "b keeps its own");
    assert_eq!(tip(&a, vs.id, "master"), on_a[1].id, "a keeps its own");
    assert_eq!(
        tip(&b, vs.id, "dev"),
        dev[0].id,
        "the other branch still came"
    );
    assert_eq!(b.get_volume_set(vs.id).unwrap().description, "edited on a");
}

#[test]
fn behind_does_nothing() {
    let ((_da, a), (_db, b), vs, snaps) = two_stores(2);
    sync(&a, &b, vs.id, SyncMode::Both).unwrap();
    let more = chain(vs.id, Some(snaps[1].id), 2);
    b.extend_branch(&more).unwrap();
    // A full push of a's history: b is ahead on master.
    let r = mdslog::sync::sync_with(
        &a,
        &b,
        vs.id,
        SyncMode::Both,
        mdslog::sync::SyncOptions { full: true },
    )
    .unwrap();
    assert_eq!(r.pushed.unwrap().branches_behind, 1);
    assert!(r.divergences.is_empty());
    assert_eq!(tip(&a, vs.id, "master"), more[1].id);
}

#[test]
fn rename_travels_and_two_renames_are_a_branch_conflict() {
    let ((_da, a), (_db, b), vs, _) = two_stores(2);
    sync(&a, &b, vs.id, SyncMode::Both).unwrap();
    a.rename_branch(vs.id, "master", "main").unwrap();
    sync(&a, &b, vs.id, SyncMode::Both).unwrap();
    assert!(b.get_tip(vs.id, "main").is_ok());
    assert!(
        b.get_tip(vs.id, "master").is_err(),
        "no duplicate under the old name"
    );
    assert_eq!(b.get_branches(&BranchQuery::all(vs.id)).unwrap().len(), 1);

    // Both rename: the remote (b) wins, the report names the conflict.
    a.rename_branch(vs.id, "main", "from-a").unwrap();
    b.rename_branch(vs.id, "main", "from-b").unwrap();
    let r = sync(&a, &b, vs.id, SyncMode::Both).unwrap();
    let cs: Vec<_> = r.branch_conflicts().collect();
    assert_eq!(cs.len(), 1, "{r:?}");
    match cs[0] {
        Conflict::BranchRename {
            target,
            current,
            initial,
            ..
        } => {
            assert_eq!(
                (target.as_str(), current.as_str(), initial.as_str()),
                ("from-b", "from-a", "main")
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        a.get_tip(vs.id, "from-b").is_ok(),
        "a adopts the remote's name"
    );
    assert!(b.get_tip(vs.id, "from-b").is_ok());
    assert_eq!(synced_view(&a, vs.id), synced_view(&b, vs.id));
}

#[test]
fn two_branches_named_dev_clash_and_both_survive() {
    let ((_da, a), (_db, b), vs, snaps) = two_stores(1);
    sync(&a, &b, vs.id, SyncMode::Both).unwrap();
    let da = chain(vs.id, Some(snaps[0].id), 1);
    let db = chain(vs.id, Some(snaps[0].id), 1);
    a.fork_branch("dev", &da).unwrap();
    b.fork_branch("dev", &db).unwrap();
    let r = sync(&a, &b, vs.id, SyncMode::Both).unwrap();
    let clashes: Vec<_> = r
        .conflicts
        .iter()
        .filter(|c| matches!(c, Conflict::BranchNameClash { .. }))
        .collect();
    // The remote (the target) keeps "dev" for its own branch; a's branch arrives there
    // under a name that says so, and a adopts that name when it pulls.
    assert_eq!(clashes.len(), 1, "{r:?}");
    let Conflict::BranchNameClash {
        branch,
        wanted,
        given,
        holder,
        ..
    } = clashes[0]
    else {
        unreachable!()
    };
    let a_dev = a.get_branches(&BranchQuery::all(vs.id)).unwrap();
    let a_dev = a_dev.iter().find(|x| x.tip == da[0].id).unwrap();
    assert_eq!(*branch, a_dev.id);
    assert_eq!(wanted, "dev");
    assert!(given.starts_with("dev~"), "{given}");
    assert_eq!(&a_dev.name, given);
    assert_eq!(tip(&a, vs.id, "dev"), db[0].id);
    assert_eq!(tip(&b, vs.id, "dev"), db[0].id);
    assert_eq!(
        *holder,
        b.get_branches(&BranchQuery::all(vs.id))
            .unwrap()
            .iter()
            .find(|x| x.tip == db[0].id)
            .unwrap()
            .id
    );
    assert_eq!(synced_view(&a, vs.id), synced_view(&b, vs.id));
}

#[test]
fn neither_side_has_the_volume_set() {
    let (_da, a) = open();
    let (_db, b) = open();
    let err = sync(&a, &b, VolumeSetId::random(), SyncMode::Both).unwrap_err();
    assert!(matches!(err, Error::VolumeSetNotFound(_)), "{err:?}");
}

#[test]
fn pull_only_writes_nothing_on_the_remote() {
    let ((_da, a), (_db, b), vs, _) = two_stores(3);
    let lb = b.durable_lsn();
    // b pulls from a (a is the remote): a unchanged.
    let la = a.durable_lsn();
    let r = sync(&b, &a, vs.id, SyncMode::PullOnly).unwrap();
    assert!(r.pushed.is_none());
    assert_eq!(r.pulled.unwrap().snapshots_added, 3);
    assert_eq!(a.durable_lsn(), la);
    assert!(b.durable_lsn() > lb);
}
