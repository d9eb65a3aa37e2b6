//! Helpers shared by the `sync_*` integration tests.
#![allow(dead_code)]

use mdslog::*;

/// Everything of a volume set that sync carries: its metadata, each snapshot's parent and
/// metadata, each branch's name and tip. Blob ids, sizes, bushes and volumes stay local.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncedView {
    pub volume_set: VolumeSetMeta,
    pub snapshots: Vec<(SnapshotId, Option<SnapshotId>, SnapshotMeta)>,
    pub branches: Vec<(BranchId, String, SnapshotId)>,
}

/// The synced view of `vs` in `s`.
pub fn synced_view(s: &Store, vs: VolumeSetId) -> SyncedView {
    let volume_set = s.get_volume_set(vs).unwrap().meta();
    let mut snapshots: Vec<_> = s
        .get_snapshots(&SnapshotQuery {
            volume_set: Some(vs),
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|x| (x.id, x.parent, x.meta()))
        .collect();
    snapshots.sort_by_key(|x| x.0);
    let mut branches: Vec<_> = s
        .get_branches(&BranchQuery::all(vs))
        .unwrap()
        .into_iter()
        .map(|b| (b.id, b.name, b.tip))
        .collect();
    branches.sort_by_key(|x| x.0);
    SyncedView {
        volume_set,
        snapshots,
        branches,
    }
}
