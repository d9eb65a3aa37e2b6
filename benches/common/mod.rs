//! Helpers shared by the benchmarks: scratch directories under `target/bench-tmp`, store
//! options, snapshots, and a store of one volume set grown one record per snapshot.
#![allow(dead_code)]

pub mod measure;
pub mod sqlite;

use std::path::{Path, PathBuf};

use mdslog::{
    Durability, LogOptions, Snapshot, SnapshotId, Store, StoreOptions, Timestamp, VolumeSetId,
};

/// A fresh (removed, not created) scratch path under `target/bench-tmp`.
pub fn bench_dir(name: &str) -> PathBuf {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-tmp");
    std::fs::create_dir_all(&base).unwrap();
    let d = base.join(name);
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Default store options with the given durability.
pub fn options(durability: Durability) -> StoreOptions {
    StoreOptions {
        log: LogOptions {
            durability,
            ..LogOptions::default()
        },
        actor: None,
    }
}

/// A snapshot created now, 4 KiB, on `parent`.
pub fn snap(vs: VolumeSetId, parent: Option<SnapshotId>) -> Snapshot {
    let mut s = Snapshot::new(SnapshotId::random(), vs, parent);
    s.created = Timestamp::now();
    s.last_modified = s.created;
    s.size = 4096;
    s
}

/// Extends `tips` round-robin by `n` snapshots, one record each.
pub fn grow(store: &Store, vs: VolumeSetId, tips: &mut [SnapshotId], n: usize) {
    for i in 0..n {
        let t = i % tips.len();
        let s = snap(vs, Some(tips[t]));
        tips[t] = s.id;
        store.extend_branch(std::slice::from_ref(&s)).unwrap();
    }
}

/// A store (open for writing, buffered) of one volume set with `snapshots` snapshots on
/// `branches` branches ("trunk", then "branch-0001", ...): one record per snapshot.
/// Returns the store, the volume set and the branch tips.
pub fn one_volume_set(
    dir: &Path,
    branches: usize,
    snapshots: usize,
) -> (Store, VolumeSetId, Vec<SnapshotId>) {
    let store = Store::open(dir, options(Durability::Buffered)).unwrap();
    let vs = store
        .create_volume_set("bench", "", Default::default(), "", "", "")
        .unwrap();
    let root = snap(vs.id, None);
    store
        .fork_branch("trunk", std::slice::from_ref(&root))
        .unwrap();
    let mut tips = vec![root.id];
    for b in 1..branches {
        let s = snap(vs.id, Some(root.id));
        tips.push(s.id);
        store
            .fork_branch(&format!("branch-{b:04}"), std::slice::from_ref(&s))
            .unwrap();
    }
    grow(&store, vs.id, &mut tips, snapshots.saturating_sub(branches));
    store.flush().unwrap();
    (store, vs.id, tips)
}

/// The name `one_volume_set` gives branch `b` (0 is "trunk"); the SQLite fixture of
/// `benches/sqlite.rs` uses the same names.
pub fn branch_name(b: usize) -> String {
    if b == 0 {
        "trunk".to_string()
    } else {
        format!("branch-{b:04}")
    }
}

/// A chain of `n` new snapshots on `parent`, oldest first (one `extend_branch` record).
pub fn chain(vs: VolumeSetId, parent: SnapshotId, n: usize) -> Vec<Snapshot> {
    let mut v: Vec<Snapshot> = Vec::with_capacity(n);
    let mut p = parent;
    for _ in 0..n {
        let s = snap(vs, Some(p));
        p = s.id;
        v.push(s);
    }
    v
}
