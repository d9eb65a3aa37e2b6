//! Projections: the state of the store as the log's records left it, with the indexes
//! every query needs, and the queries themselves.
//!
//! [`State::apply`] folds one record in; it never fails, since every record was validated
//! (`validate`) against the state it is applied to. Projections never touch files.
//!
//! Indexes: volume sets by id (each with its snapshot list, branches by name and all its
//! branch ids); snapshots by id (parent, root, depth, child count, blob); branches by id
//! and by tip; bushes by root; volumes by id and counts by base snapshot.

pub mod query;
pub(crate) mod validate;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::event::{Envelope, Event, NewBranch};
use crate::log::Lsn;
use crate::model::{
    Attrs, BlobId, BranchId, Bush, Snapshot, SnapshotId, SnapshotMeta, StoreId, Timestamp, Volume,
    VolumeId, VolumeSet, VolumeSetId,
};

/// Hash maps of the projections: foldhash is several times faster than SipHash on 16-byte
/// ids and still seeded per map, so crafted ids cannot force collisions.
pub(crate) type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// Hash sets of the projections (see [`Map`]).
pub(crate) type Set<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// Per volume set: the stored fields plus the indexes of what it holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct VsRow {
    pub vs: VolumeSet,
    /// Snapshot ids in insertion order.
    pub snapshots: Vec<SnapshotId>,
    /// Every branch (named or not), in the order listings return them: by name, then id.
    pub branch_order: BTreeSet<(String, BranchId)>,
    /// Named branches only: unnamed ones are not unique by name.
    pub branches_by_name: Map<String, BranchId>,
    pub last_snapshot_time: Option<Timestamp>,
}

/// Rarely set snapshot fields, boxed so a plain snapshot stays small.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SnapText {
    pub name: String,
    pub description: String,
    pub attrs: Attrs,
    pub creator: String,
    pub creator_name: String,
    pub owner: String,
    pub owner_name: String,
}

impl SnapText {
    fn from_meta(m: &SnapshotMeta) -> Option<Box<SnapText>> {
        Self::from_parts(
            &m.name,
            &m.description,
            &m.attrs,
            [&m.creator, &m.creator_name, &m.owner, &m.owner_name],
        )
    }

    fn from_snapshot(s: &Snapshot) -> Option<Box<SnapText>> {
        Self::from_parts(
            &s.name,
            &s.description,
            &s.attrs,
            [&s.creator, &s.creator_name, &s.owner, &s.owner_name],
        )
    }

    /// `None` when every field is empty: most snapshots carry no text, and replay should
    /// not clone (or allocate) anything for them.
    fn from_parts(
        name: &str,
        description: &str,
        attrs: &Attrs,
        people: [&String; 4],
    ) -> Option<Box<SnapText>> {
        if name.is_empty()
            && description.is_empty()
            && attrs.is_empty()
            && people.iter().all(|p| p.is_empty())
        {
            return None;
        }
        let [creator, creator_name, owner, owner_name] = people.map(|p| p.clone());
        Some(Box::new(SnapText {
            name: name.to_string(),
            description: description.to_string(),
            attrs: attrs.clone(),
            creator,
            creator_name,
            owner,
            owner_name,
        }))
    }
}

/// One snapshot in memory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SnapRow {
    pub volume_set: VolumeSetId,
    pub parent: Option<SnapshotId>,
    pub root: SnapshotId,
    pub created: Timestamp,
    pub last_modified: Timestamp,
    pub size: u64,
    pub depth: u32,
    pub children: u32,
    pub blob: Option<Box<str>>,
    pub text: Option<Box<SnapText>>,
}

/// Snapshots by id: rows in a dense arena, with a hash index of 20-byte entries. A hash
/// table of whole rows would round its capacity up to a power of two and waste up to half
/// of 1M rows' worth of memory; the arena grows by exactly what is added.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct SnapTable {
    index: Map<SnapshotId, u32>,
    rows: Vec<Option<SnapRow>>,
    free: Vec<u32>,
}

impl SnapTable {
    pub fn reserve(&mut self, n: usize) {
        self.index.reserve(n);
        self.rows.reserve(n);
    }
    pub fn len(&self) -> usize {
        self.index.len()
    }
    pub fn contains_key(&self, id: &SnapshotId) -> bool {
        self.index.contains_key(id)
    }
    pub fn get(&self, id: &SnapshotId) -> Option<&SnapRow> {
        self.index
            .get(id)
            .and_then(|&slot| self.rows[slot as usize].as_ref())
    }
    pub fn get_mut(&mut self, id: &SnapshotId) -> Option<&mut SnapRow> {
        let slot = *self.index.get(id)?;
        self.rows[slot as usize].as_mut()
    }
    pub fn insert(&mut self, id: SnapshotId, row: SnapRow) {
        if let Some(&slot) = self.index.get(&id) {
            self.rows[slot as usize] = Some(row);
            return;
        }
        let slot = match self.free.pop() {
            Some(slot) => {
                self.rows[slot as usize] = Some(row);
                slot
            }
            None => {
                self.rows.push(Some(row));
                u32::try_from(self.rows.len() - 1).expect("fewer than 2^32 snapshots")
            }
        };
        self.index.insert(id, slot);
    }
    pub fn remove(&mut self, id: &SnapshotId) -> Option<SnapRow> {
        let slot = self.index.remove(id)?;
        self.free.push(slot);
        self.rows[slot as usize].take()
    }
    pub fn iter(&self) -> impl Iterator<Item = (&SnapshotId, &SnapRow)> {
        self.index
            .iter()
            .filter_map(|(id, &slot)| self.rows[slot as usize].as_ref().map(|r| (id, r)))
    }
}

impl std::ops::Index<&SnapshotId> for SnapTable {
    type Output = SnapRow;
    fn index(&self, id: &SnapshotId) -> &SnapRow {
        self.get(id).expect("a known snapshot")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct BranchRow {
    pub volume_set: VolumeSetId,
    pub name: String,
    pub tip: SnapshotId,
}

/// The whole in-memory state as of [`State::applied_lsn`]. Serializable for checkpoints
/// (`crate::checkpoint`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    applied: Lsn,
    pub(crate) volume_sets: Map<VolumeSetId, VsRow>,
    pub(crate) snapshots: SnapTable,
    pub(crate) branches: Map<BranchId, BranchRow>,
    pub(crate) by_tip: Map<SnapshotId, BranchId>,
    pub(crate) bushes: Map<SnapshotId, Bush>,
    pub(crate) volumes: BTreeMap<VolumeId, Volume>,
    pub(crate) volumes_by_base: Map<SnapshotId, u32>,
    pub(crate) mount_paths: Map<String, VolumeId>,
    /// This store's identity, once one was written.
    pub(crate) store_id: Option<StoreId>,
    /// Sync cursors: for (peer, volume set), the peer's LSN up to which its records of
    /// that volume set are applied here.
    pub(crate) sync_cursors: Map<(StoreId, VolumeSetId), Lsn>,
}

impl State {
    /// An empty state.
    pub fn new() -> Self {
        State::default()
    }

    /// The LSN of the last record applied.
    pub fn applied_lsn(&self) -> Lsn {
        self.applied
    }

    /// Reserves room for about this many more snapshots (replay sizes tables up front).
    pub fn reserve_snapshots(&mut self, n: usize) {
        self.snapshots.reserve(n);
    }

    /// Folds one record in. Records must come in LSN order and must have been validated
    /// against the state they are applied to; then this cannot fail.
    pub fn apply(&mut self, lsn: Lsn, env: &Envelope) {
        debug_assert!(lsn > self.applied, "records apply in LSN order");
        self.applied = lsn;
        match &env.event {
            Event::ImportVolumeSet { volume_set } => {
                let mut vs = volume_set.clone();
                vs.num_snapshots = 0;
                vs.num_branches = 0;
                vs.last_snapshot_time = None;
                self.volume_sets.insert(
                    vs.id,
                    VsRow {
                        vs,
                        snapshots: Vec::new(),
                        branch_order: BTreeSet::new(),
                        branches_by_name: Map::default(),
                        last_snapshot_time: None,
                    },
                );
            }
            Event::UpdateVolumeSet { id, new, .. } => {
                if let Some(row) = self.volume_sets.get_mut(id) {
                    let vs = &mut row.vs;
                    vs.name.clone_from(&new.name);
                    vs.prefix.clone_from(&new.prefix);
                    vs.description.clone_from(&new.description);
                    vs.attrs.clone_from(&new.attrs);
                    vs.creator.clone_from(&new.creator);
                    vs.creator_name.clone_from(&new.creator_name);
                    vs.owner.clone_from(&new.owner);
                    vs.owner_name.clone_from(&new.owner_name);
                    vs.last_modified = new.last_modified;
                }
            }
            Event::SetVolumeSetSize { id, size, .. } => {
                if let Some(row) = self.volume_sets.get_mut(id) {
                    row.vs.size = *size;
                }
            }
            Event::DeleteVolumeSet { id } => self.delete_volume_set(*id),
            Event::ForkBranch(b) | Event::ImportBranch(b) => self.new_branch(b),
            Event::ExtendBranch {
                branch, snapshots, ..
            } => {
                for s in snapshots {
                    self.insert_snapshot(s);
                }
                if let Some(last) = snapshots.last() {
                    self.move_tip(*branch, last.id);
                }
            }
            Event::RenameBranch {
                branch, new_name, ..
            } => {
                if let Some(row) = self.branches.get_mut(branch) {
                    let vs = self
                        .volume_sets
                        .get_mut(&row.volume_set)
                        .expect("branch's volume set");
                    if !row.name.is_empty() && vs.branches_by_name.get(&row.name) == Some(branch) {
                        vs.branches_by_name.remove(&row.name);
                    }
                    vs.branch_order
                        .remove(&(std::mem::take(&mut row.name), *branch));
                    vs.branch_order.insert((new_name.clone(), *branch));
                    row.name.clone_from(new_name);
                    if !new_name.is_empty() {
                        vs.branches_by_name.insert(new_name.clone(), *branch);
                    }
                }
            }
            Event::UpdateSnapshots { updates } => {
                for u in updates {
                    if let Some(row) = self.snapshots.get_mut(&u.id) {
                        row.text = SnapText::from_meta(&u.new);
                        row.last_modified = u.new.last_modified;
                        if let Some(b) = &u.set_blob {
                            row.blob = (!b.is_nil()).then(|| b.0.clone().into_boxed_str());
                        }
                    }
                }
            }
            Event::SetBlobIdAndSize {
                snapshot,
                blob,
                size,
                ..
            } => {
                if let Some(row) = self.snapshots.get_mut(snapshot) {
                    row.blob = (!blob.is_nil()).then(|| blob.0.clone().into_boxed_str());
                    row.size = *size;
                }
            }
            Event::DeleteSnapshots {
                volume_set,
                snapshots,
                new_tip,
                ..
            } => {
                self.delete_snapshots(*volume_set, snapshots);
                if let Some(t) = new_tip {
                    self.add_branch(*volume_set, t.branch, &t.name, t.snapshot);
                }
            }
            Event::ImportBush { bush } => {
                self.bushes.insert(bush.root, bush.clone());
            }
            Event::DeleteBush { root } => {
                self.bushes.remove(root);
            }
            Event::ImportVolume { volume } => {
                if let Some(b) = volume.base {
                    *self.volumes_by_base.entry(b).or_default() += 1;
                }
                self.mount_paths
                    .insert(volume.mount_path.clone(), volume.id.clone());
                self.volumes.insert(volume.id.clone(), volume.clone());
            }
            Event::UpdateVolume {
                id, name, attrs, ..
            } => {
                if let Some(v) = self.volumes.get_mut(id) {
                    v.name.clone_from(name);
                    v.attrs.clone_from(attrs);
                }
            }
            Event::DeleteVolume { id } => self.delete_volume(id),
            Event::SetStoreId { id } => self.store_id = Some(*id),
            Event::MoveBranch {
                branch, new_tip, ..
            } => self.move_tip(*branch, *new_tip),
            Event::SyncApplied {
                peer,
                volume_set,
                through,
                ..
            } => {
                let c = self.sync_cursors.entry((*peer, *volume_set)).or_default();
                *c = (*c).max(*through);
            }
            // The log keeps the conflict for history; the projections have nothing to do.
            Event::SyncConflict { .. } => {}
        }
    }

    /// This store's identity, if one was written.
    pub fn store_id(&self) -> Option<StoreId> {
        self.store_id
    }

    /// The LSN of `peer`'s log up to which its records of `vs` are applied here
    /// (`Lsn::ZERO`: none).
    pub fn sync_cursor(&self, peer: StoreId, vs: VolumeSetId) -> Lsn {
        self.sync_cursors
            .get(&(peer, vs))
            .copied()
            .unwrap_or(Lsn::ZERO)
    }

    /// Every sync cursor held here: (peer, volume set, the peer's LSN), sorted.
    pub fn sync_cursors(&self) -> Vec<(StoreId, VolumeSetId, Lsn)> {
        let mut out: Vec<_> = self
            .sync_cursors
            .iter()
            .map(|((peer, vs), lsn)| (*peer, *vs, *lsn))
            .collect();
        out.sort();
        out
    }

    fn insert_snapshot(&mut self, s: &Snapshot) {
        let (depth, root) = match s
            .parent
            .and_then(|p| self.snapshots.get_mut(&p).map(|r| (p, r)))
        {
            Some((_, parent)) => {
                parent.children += 1;
                (parent.depth + 1, parent.root)
            }
            None => (1, s.id),
        };
        let row = SnapRow {
            volume_set: s.volume_set,
            parent: s.parent,
            root,
            created: s.created,
            last_modified: s.last_modified,
            size: s.size,
            depth,
            children: 0,
            blob: (!s.blob.is_nil()).then(|| s.blob.0.clone().into_boxed_str()),
            text: SnapText::from_snapshot(s),
        };
        self.snapshots.insert(s.id, row);
        if let Some(vs) = self.volume_sets.get_mut(&s.volume_set) {
            vs.snapshots.push(s.id);
            vs.last_snapshot_time = Some(
                vs.last_snapshot_time
                    .map_or(s.created, |t| t.max(s.created)),
            );
        }
    }

    fn new_branch(&mut self, b: &NewBranch) {
        for s in &b.snapshots {
            self.insert_snapshot(s);
        }
        self.add_branch(b.volume_set, b.branch, &b.name, b.tip);
    }

    fn add_branch(&mut self, volume_set: VolumeSetId, id: BranchId, name: &str, tip: SnapshotId) {
        self.branches.insert(
            id,
            BranchRow {
                volume_set,
                name: name.to_string(),
                tip,
            },
        );
        self.by_tip.insert(tip, id);
        if let Some(vs) = self.volume_sets.get_mut(&volume_set) {
            vs.branch_order.insert((name.to_string(), id));
            if !name.is_empty() {
                vs.branches_by_name.insert(name.to_string(), id);
            }
        }
    }

    fn move_tip(&mut self, branch: BranchId, tip: SnapshotId) {
        if let Some(row) = self.branches.get_mut(&branch) {
            if self.by_tip.get(&row.tip) == Some(&branch) {
                self.by_tip.remove(&row.tip);
            }
            row.tip = tip;
            self.by_tip.insert(tip, branch);
        }
    }

    fn remove_branch(&mut self, id: BranchId) {
        if let Some(row) = self.branches.remove(&id) {
            if self.by_tip.get(&row.tip) == Some(&id) {
                self.by_tip.remove(&row.tip);
            }
            if let Some(vs) = self.volume_sets.get_mut(&row.volume_set) {
                vs.branch_order.remove(&(row.name.clone(), id));
                if vs.branches_by_name.get(&row.name) == Some(&id) {
                    vs.branches_by_name.remove(&row.name);
                }
            }
        }
    }

    fn delete_snapshots(&mut self, volume_set: VolumeSetId, ids: &[SnapshotId]) {
        let gone: Set<SnapshotId> = ids.iter().copied().collect();
        for id in ids {
            if let Some(b) = self.by_tip.get(id).copied() {
                self.remove_branch(b);
            }
            if let Some(row) = self.snapshots.remove(id) {
                if let Some(p) = row.parent.and_then(|p| self.snapshots.get_mut(&p)) {
                    p.children = p.children.saturating_sub(1);
                }
                if row.parent.is_none() {
                    self.bushes.remove(id);
                }
            }
        }
        if let Some(vs) = self.volume_sets.get_mut(&volume_set) {
            vs.snapshots.retain(|s| !gone.contains(s));
            let snaps = &self.snapshots;
            vs.last_snapshot_time = vs
                .snapshots
                .iter()
                .filter_map(|s| snaps.get(s).map(|r| r.created))
                .max();
        }
    }

    fn delete_volume(&mut self, id: &VolumeId) {
        if let Some(v) = self.volumes.remove(id) {
            if let Some(b) = v.base {
                if let Some(n) = self.volumes_by_base.get_mut(&b) {
                    *n -= 1;
                    if *n == 0 {
                        self.volumes_by_base.remove(&b);
                    }
                }
            }
            if self.mount_paths.get(&v.mount_path) == Some(id) {
                self.mount_paths.remove(&v.mount_path);
            }
        }
    }

    fn delete_volume_set(&mut self, id: VolumeSetId) {
        // A deleted volume set that syncs in again must come in whole: forget its cursors.
        self.sync_cursors.retain(|(_, vs), _| *vs != id);
        let Some(row) = self.volume_sets.remove(&id) else {
            return;
        };
        for (_, b) in &row.branch_order {
            if let Some(br) = self.branches.remove(b) {
                if self.by_tip.get(&br.tip) == Some(b) {
                    self.by_tip.remove(&br.tip);
                }
            }
        }
        for s in &row.snapshots {
            if let Some(r) = self.snapshots.remove(s) {
                if r.parent.is_none() {
                    self.bushes.remove(s);
                }
            }
        }
        self.bushes.retain(|_, b| b.volume_set != id);
        let vols: Vec<VolumeId> = self
            .volumes
            .values()
            .filter(|v| v.volume_set == id)
            .map(|v| v.id.clone())
            .collect();
        for v in vols {
            self.delete_volume(&v);
        }
    }

    /// Rebuilds a snapshot as the API returns it, derived fields included.
    pub(crate) fn snapshot_of(&self, id: SnapshotId, row: &SnapRow) -> Snapshot {
        let branch = self.by_tip.get(&id).and_then(|b| self.branches.get(b));
        self.snapshot_with_branch(id, row, branch)
    }

    /// [`State::snapshot_of`] when the caller already holds the branch ending here (or
    /// knows there is none): tip and branch listings skip two lookups per snapshot.
    pub(crate) fn snapshot_with_branch(
        &self,
        id: SnapshotId,
        row: &SnapRow,
        branch: Option<&BranchRow>,
    ) -> Snapshot {
        let t = row.text.as_deref();
        let s = |f: fn(&SnapText) -> &String| t.map(|t| f(t).clone()).unwrap_or_default();
        Snapshot {
            id,
            volume_set: row.volume_set,
            parent: row.parent,
            name: s(|t| &t.name),
            description: s(|t| &t.description),
            attrs: t.map(|t| t.attrs.clone()).unwrap_or_default(),
            creator: s(|t| &t.creator),
            creator_name: s(|t| &t.creator_name),
            owner: s(|t| &t.owner),
            owner_name: s(|t| &t.owner_name),
            created: row.created,
            last_modified: row.last_modified,
            size: row.size,
            blob: row.blob.as_deref().map(BlobId::from).unwrap_or_default(),
            depth: row.depth,
            num_children: row.children,
            is_tip: branch.is_some(),
            branch_name: branch
                .filter(|b| !b.name.is_empty())
                .map(|b| b.name.clone()),
        }
    }

    /// Rebuilds a volume set as the API returns it, derived fields included.
    pub(crate) fn volume_set_of(&self, row: &VsRow) -> VolumeSet {
        let mut vs = row.vs.clone();
        vs.num_snapshots = row.snapshots.len() as u64;
        vs.num_branches = row.branch_order.len() as u64;
        vs.last_snapshot_time = row.last_snapshot_time;
        vs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-snapshot row is what memory per snapshot is made of: keep it small.
    #[test]
    fn snapshot_row_stays_small() {
        let row = std::mem::size_of::<Option<SnapRow>>();
        let entry = row + std::mem::size_of::<(SnapshotId, u32)>();
        assert!(entry <= 136, "a snapshot costs {entry} bytes in the table");
    }
}
