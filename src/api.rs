//! The original's interface split as traits: [`Syncable`] (what sync between two stores
//! needs), [`MetadataStore`] (the data-plane server's store), [`Client`] (volumes, on the
//! client side) and [`Server`] (disk usage, on a hub). [`crate::Store`] implements all
//! four. Sync itself does not go through these: it exchanges log records through
//! [`crate::sync::Peer`], which a network peer implements.

use std::collections::HashMap;

use crate::error::Result;
use crate::model::{
    BlobId, Branch, BranchId, BranchQuery, Bush, Snapshot, SnapshotId, SnapshotQuery, Volume,
    VolumeId, VolumeSet, VolumeSetId, VolumeSetQuery,
};
use crate::store::{SnapshotPair, Store};
use crate::sync::MetaConflict;

/// What sync needs of a store.
pub trait Syncable: Send + Sync {
    fn import_volume_set(&self, vs: &VolumeSet) -> Result<()>;
    fn get_volume_sets(&self, q: &VolumeSetQuery) -> Result<Vec<VolumeSet>>;
    fn get_tip(&self, vs: VolumeSetId, branch: &str) -> Result<Snapshot>;
    fn get_branches(&self, q: &BranchQuery) -> Result<Vec<Branch>>;
    fn fork_branch(&self, name: &str, snaps: &[Snapshot]) -> Result<Option<BranchId>>;
    fn extend_branch(&self, snaps: &[Snapshot]) -> Result<()>;
    fn import_branch(&self, id: BranchId, name: &str, snaps: &[Snapshot]) -> Result<()>;
    fn update_volume_set(
        &self,
        cur: &VolumeSet,
        init: Option<&VolumeSet>,
    ) -> Result<Option<MetaConflict<VolumeSet>>>;
    fn pull_volume_set(
        &self,
        cur: &VolumeSet,
        init: Option<&VolumeSet>,
    ) -> Result<Option<MetaConflict<VolumeSet>>>;
    fn update_snapshots(&self, pairs: &[SnapshotPair]) -> Result<Vec<MetaConflict<Snapshot>>>;
    fn pull_snapshots(&self, pairs: &[SnapshotPair]) -> Result<Vec<MetaConflict<Snapshot>>>;
    fn get_snapshots(&self, q: &SnapshotQuery) -> Result<Vec<Snapshot>>;
    fn get_snapshot_ids(&self, vs: VolumeSetId) -> Result<Vec<SnapshotId>>;
}

/// The store of a data-plane server: everything but volumes.
pub trait MetadataStore: Syncable {
    fn set_volume_set_size(&self, vs: VolumeSetId, size: u64) -> Result<()>;
    fn update_snapshot(
        &self,
        cur: &Snapshot,
        init: Option<&Snapshot>,
    ) -> Result<Option<MetaConflict<Snapshot>>>;
    fn delete_volume_set(&self, vs: VolumeSetId) -> Result<()>;
    fn rename_branch(&self, vs: VolumeSetId, old: &str, new: &str) -> Result<()>;
    fn import_bush(&self, bush: &Bush) -> Result<()>;
    fn get_bush(&self, snap: SnapshotId) -> Result<Bush>;
    fn delete_bush(&self, root: SnapshotId) -> Result<()>;
    fn get_blob_ids(&self, snaps: &[SnapshotId]) -> Result<HashMap<SnapshotId, BlobId>>;
    fn set_blob_id_and_size(&self, snap: SnapshotId, blob: &BlobId, size: u64) -> Result<()>;
}

/// A client-side store: adds volumes.
pub trait Client: MetadataStore {
    fn import_volume(&self, v: &Volume) -> Result<()>;
    fn get_volume(&self, id: &VolumeId) -> Result<Volume>;
    fn delete_volume(&self, id: &VolumeId) -> Result<()>;
    fn get_volumes(&self, vs: VolumeSetId) -> Result<Vec<Volume>>;
    fn update_volume(&self, v: &Volume) -> Result<()>;
    fn num_volumes(&self, snap: SnapshotId) -> Result<u32>;
    fn num_children(&self, snap: SnapshotId) -> Result<u32>;
    fn delete_snapshots(&self, snaps: &[SnapshotId], new_tip: Option<SnapshotId>) -> Result<()>;
}

/// A hub's store: adds disk usage.
pub trait Server: MetadataStore {
    fn disk_space_usage(&self, vs: &[VolumeSetId]) -> Result<u64>;
}

macro_rules! delegate {
    ($($name:ident(&self $(, $arg:ident : $ty:ty)*) -> $ret:ty;)*) => {
        $(fn $name(&self $(, $arg: $ty)*) -> $ret { Store::$name(self $(, $arg)*) })*
    };
}

impl Syncable for Store {
    delegate! {
        import_volume_set(&self, vs: &VolumeSet) -> Result<()>;
        get_volume_sets(&self, q: &VolumeSetQuery) -> Result<Vec<VolumeSet>>;
        get_tip(&self, vs: VolumeSetId, branch: &str) -> Result<Snapshot>;
        get_branches(&self, q: &BranchQuery) -> Result<Vec<Branch>>;
        fork_branch(&self, name: &str, snaps: &[Snapshot]) -> Result<Option<BranchId>>;
        extend_branch(&self, snaps: &[Snapshot]) -> Result<()>;
        import_branch(&self, id: BranchId, name: &str, snaps: &[Snapshot]) -> Result<()>;
        update_volume_set(&self, cur: &VolumeSet, init: Option<&VolumeSet>) -> Result<Option<MetaConflict<VolumeSet>>>;
        pull_volume_set(&self, cur: &VolumeSet, init: Option<&VolumeSet>) -> Result<Option<MetaConflict<VolumeSet>>>;
        update_snapshots(&self, pairs: &[SnapshotPair]) -> Result<Vec<MetaConflict<Snapshot>>>;
        pull_snapshots(&self, pairs: &[SnapshotPair]) -> Result<Vec<MetaConflict<Snapshot>>>;
        get_snapshots(&self, q: &SnapshotQuery) -> Result<Vec<Snapshot>>;
        get_snapshot_ids(&self, vs: VolumeSetId) -> Result<Vec<SnapshotId>>;
    }
}

impl MetadataStore for Store {
    delegate! {
        set_volume_set_size(&self, vs: VolumeSetId, size: u64) -> Result<()>;
        update_snapshot(&self, cur: &Snapshot, init: Option<&Snapshot>) -> Result<Option<MetaConflict<Snapshot>>>;
        delete_volume_set(&self, vs: VolumeSetId) -> Result<()>;
        rename_branch(&self, vs: VolumeSetId, old: &str, new: &str) -> Result<()>;
        import_bush(&self, bush: &Bush) -> Result<()>;
        get_bush(&self, snap: SnapshotId) -> Result<Bush>;
        delete_bush(&self, root: SnapshotId) -> Result<()>;
        get_blob_ids(&self, snaps: &[SnapshotId]) -> Result<HashMap<SnapshotId, BlobId>>;
        set_blob_id_and_size(&self, snap: SnapshotId, blob: &BlobId, size: u64) -> Result<()>;
    }
}

impl Client for Store {
    delegate! {
        import_volume(&self, v: &Volume) -> Result<()>;
        get_volume(&self, id: &VolumeId) -> Result<Volume>;
        delete_volume(&self, id: &VolumeId) -> Result<()>;
        get_volumes(&self, vs: VolumeSetId) -> Result<Vec<Volume>>;
        update_volume(&self, v: &Volume) -> Result<()>;
        num_volumes(&self, snap: SnapshotId) -> Result<u32>;
        num_children(&self, snap: SnapshotId) -> Result<u32>;
        delete_snapshots(&self, snaps: &[SnapshotId], new_tip: Option<SnapshotId>) -> Result<()>;
    }
}

impl Server for Store {
    delegate! {
        disk_space_usage(&self, vs: &[VolumeSetId]) -> Result<u64>;
    }
}

/// The original's free functions over a [`Syncable`]: one snapshot by id.
pub fn get_snapshot(mds: &dyn Syncable, id: SnapshotId) -> Result<Snapshot> {
    let mut v = mds.get_snapshots(&SnapshotQuery {
        id: Some(id),
        ..Default::default()
    })?;
    v.pop().ok_or(crate::Error::SnapshotNotFound(id))
}

/// One volume set by id, over a [`Syncable`].
pub fn get_volume_set(mds: &dyn Syncable, id: VolumeSetId) -> Result<VolumeSet> {
    let mut v = mds.get_volume_sets(&VolumeSetQuery {
        id: Some(id),
        ..Default::default()
    })?;
    v.pop().ok_or(crate::Error::VolumeSetNotFound(id))
}

/// One branch by id, over a [`Syncable`].
pub fn get_branch(mds: &dyn Syncable, vs: VolumeSetId, id: BranchId) -> Result<Branch> {
    let q = BranchQuery {
        volume_set: vs,
        id: Some(id),
        name: None,
        search: None,
    };
    let mut v = mds.get_branches(&q)?;
    v.pop().ok_or_else(|| crate::Error::BranchNotFound {
        volume_set: vs,
        what: id.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn store_is_send_sync_and_every_trait_object_works() {
        assert_send_sync::<Store>();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Default::default()).unwrap();
        let vs = store
            .create_volume_set("x", "", Default::default(), "", "", "")
            .unwrap();
        let s = Snapshot::new(SnapshotId::random(), vs.id, None);
        let sy: &dyn Syncable = &store;
        let b = sy
            .fork_branch("main", std::slice::from_ref(&s))
            .unwrap()
            .unwrap();
        assert_eq!(get_snapshot(sy, s.id).unwrap().depth, 1);
        assert_eq!(get_volume_set(sy, vs.id).unwrap().num_snapshots, 1);
        assert_eq!(get_branch(sy, vs.id, b).unwrap().tip, s.id);
        let c: &dyn Client = &store;
        assert_eq!(c.num_children(s.id).unwrap(), 0);
        let sv: &dyn Server = &store;
        assert_eq!(sv.disk_space_usage(&[vs.id]).unwrap(), 0);
    }
}
