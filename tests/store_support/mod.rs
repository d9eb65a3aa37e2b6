//! Helpers shared by the `store_*` integration tests: a store in a temporary directory,
//! volume sets, and chains of snapshots built the way a client builds them.
//!
//! Each test file uses only some of these.
#![allow(dead_code)]

use mdslog::*;

/// A writable store in a fresh temporary directory (keep the directory alive).
pub fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    (dir, store)
}

/// Reopens a store for writing.
pub fn reopen(dir: &tempfile::TempDir) -> Store {
    Store::open(dir.path(), StoreOptions::default()).unwrap()
}

/// Attributes from pairs.
pub fn attrs(pairs: &[(&str, &str)]) -> Attrs {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A volume set named `name`, created through the `VolumeSet` helper.
pub fn new_vs(store: &Store, name: &str) -> VolumeSet {
    store
        .create_volume_set(name, "", Attrs::new(), "", "owner", "creator")
        .unwrap()
}

/// A snapshot of `vs` on `parent`, with the given creation time and size.
pub fn snap_at(vs: VolumeSetId, parent: Option<SnapshotId>, created: i64, size: u64) -> Snapshot {
    let mut s = Snapshot::new(SnapshotId::random(), vs, parent);
    s.created = Timestamp(created);
    s.last_modified = Timestamp(created);
    s.size = size;
    s
}

/// A snapshot of `vs` on `parent`, created now.
pub fn snap(vs: VolumeSetId, parent: Option<SnapshotId>) -> Snapshot {
    snap_at(vs, parent, Timestamp::now().0, 0)
}

/// A chain of `n` new snapshots of `vs` on `parent`, oldest first.
pub fn chain(vs: VolumeSetId, parent: Option<SnapshotId>, n: usize) -> Vec<Snapshot> {
    let mut out: Vec<Snapshot> = Vec::with_capacity(n);
    let mut p = parent;
    for _ in 0..n {
        let s = snap(vs, p);
        p = Some(s.id);
        out.push(s);
    }
    out
}

/// Forks a new branch `name` of `n` new snapshots on `parent`; returns their ids, oldest
/// first.
pub fn fork(
    store: &Store,
    vs: VolumeSetId,
    name: &str,
    parent: Option<SnapshotId>,
    n: usize,
) -> Vec<SnapshotId> {
    let c = chain(vs, parent, n);
    store.fork_branch(name, &c).unwrap();
    c.iter().map(|s| s.id).collect()
}

/// Extends the branch whose tip is `tip` by `n` new snapshots; returns their ids.
pub fn extend(store: &Store, tip: SnapshotId, n: usize) -> Vec<SnapshotId> {
    let vs = store.get_volume_set_by_snap_id(tip).unwrap();
    let c = chain(vs, Some(tip), n);
    store.extend_branch(&c).unwrap();
    c.iter().map(|s| s.id).collect()
}

/// A volume of `vs` based on `base`, mounted at `path`.
pub fn volume(id: &str, vs: VolumeSetId, base: Option<SnapshotId>, path: &str) -> Volume {
    Volume {
        id: VolumeId::from(id),
        volume_set: vs,
        base,
        mount_path: path.to_string(),
        attrs: Attrs::new(),
        created: Timestamp::now(),
        size: 0,
        name: id.to_string(),
    }
}

/// The ids of a list of objects, for order-sensitive comparisons.
pub fn snap_ids(v: &[Snapshot]) -> Vec<SnapshotId> {
    v.iter().map(|s| s.id).collect()
}

/// The ids of a list of volume sets.
pub fn vs_ids(v: &[VolumeSet]) -> Vec<VolumeSetId> {
    v.iter().map(|s| s.id).collect()
}

/// Sorted copy.
pub fn sorted<T: Ord + Clone>(v: &[T]) -> Vec<T> {
    let mut v = v.to_vec();
    v.sort();
    v
}
