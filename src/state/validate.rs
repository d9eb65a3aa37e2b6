//! Validation: each mutation is checked against the state it will be applied to and
//! turned into the one [`Event`] that records it (or `None` for a no-op). A rejected
//! mutation produces an error and no event. Pure: reads the state, changes nothing.

use crate::error::{Error, Limit, Result};
use crate::event::{Event, NewBranch, NewTip, SnapshotUpdate};
use crate::model::query::{
    validate_attrs, validate_text, DESCRIPTION_BYTES_MAX, MOUNT_PATH_BYTES_MAX, NAME_BYTES_MAX,
};
use crate::model::{
    validate_branch_name, validate_volume_set_name, BlobId, BranchId, Bush, Snapshot, SnapshotId,
    Volume, VolumeId, VolumeSet, VolumeSetId,
};
use crate::state::{Map, Set, State};
use crate::sync::{resolve, MetaConflict, ResolveStatus};

/// Most snapshots in one fork, import, extend, update or delete (a `delete_branch` that
/// removes more writes them as several records of one atomic batch, bounded by the log's
/// `batch_bytes_max`: about 1.9M snapshots by default). With the default record limit (4 MiB) a record of plain snapshots
/// fills up first, at about 50,000 of them (83 bytes each; [`Error::RecordTooLarge`]).
pub const BATCH_SNAPSHOTS_MAX: usize = 100_000;

/// Most snapshots in one store: rows are numbered with 32 bits.
pub const SNAPSHOTS_MAX: usize = u32::MAX as usize;

fn check_batch(n: usize) -> Result<()> {
    if n > BATCH_SNAPSHOTS_MAX {
        return Err(Error::LimitExceeded {
            limit: Limit::SnapshotsPerCall,
            value: n as u64,
            max: BATCH_SNAPSHOTS_MAX as u64,
        });
    }
    Ok(())
}

/// Whether `adding` more snapshots fit beside `held` ([`SNAPSHOTS_MAX`]).
pub(crate) fn check_store_room(held: usize, adding: usize) -> Result<()> {
    let total = held.saturating_add(adding);
    if total > SNAPSHOTS_MAX {
        return Err(Error::LimitExceeded {
            limit: Limit::SnapshotsPerStore,
            value: total as u64,
            max: SNAPSHOTS_MAX as u64,
        });
    }
    Ok(())
}

pub(crate) fn check_snapshot_fields(s: &Snapshot) -> Result<()> {
    validate_text("snapshot name", &s.name, NAME_BYTES_MAX)?;
    validate_text("description", &s.description, DESCRIPTION_BYTES_MAX)?;
    for (what, v) in [
        ("creator", &s.creator),
        ("creator name", &s.creator_name),
        ("owner", &s.owner),
        ("owner name", &s.owner_name),
    ] {
        validate_text(what, v, NAME_BYTES_MAX)?;
    }
    validate_text("blob id", &s.blob.0, NAME_BYTES_MAX)?;
    validate_attrs(&s.attrs)
}

pub(crate) fn check_volume_set_fields(vs: &VolumeSet) -> Result<()> {
    validate_volume_set_name(&vs.name)?;
    validate_text("prefix", &vs.prefix, NAME_BYTES_MAX)?;
    validate_text("description", &vs.description, DESCRIPTION_BYTES_MAX)?;
    for (what, v) in [
        ("creator", &vs.creator),
        ("creator name", &vs.creator_name),
        ("owner", &vs.owner),
        ("owner name", &vs.owner_name),
    ] {
        validate_text(what, v, NAME_BYTES_MAX)?;
    }
    validate_attrs(&vs.attrs)
}

/// The chain checks shared by fork, import and extend. Returns the snapshots that are new
/// (in order) with derived fields cleared.
fn check_chain(state: &State, snaps: &[Snapshot]) -> Result<(VolumeSetId, Vec<Snapshot>)> {
    check_batch(snaps.len())?;
    let vs = snaps[0].volume_set;
    if !state.volume_sets.contains_key(&vs) {
        return Err(Error::VolumeSetNotFound(vs));
    }
    let mut seen = Set::with_capacity_and_hasher(snaps.len(), Default::default());
    let mut fresh = Vec::new();
    for (i, s) in snaps.iter().enumerate() {
        if s.volume_set != vs {
            return Err(Error::InvalidArgument(format!(
                "snapshot {} is in volume set {}, not {vs} like the first one",
                s.id, s.volume_set
            )));
        }
        if !seen.insert(s.id) {
            return Err(Error::InvalidArgument(format!(
                "snapshot {} appears twice",
                s.id
            )));
        }
        if i > 0 && s.parent != Some(snaps[i - 1].id) {
            return Err(Error::InvalidArgument(format!(
                "snapshot {} does not follow {}: the snapshots must form a chain, oldest first",
                s.id,
                snaps[i - 1].id
            )));
        }
        if let Some(existing) = state.snapshots.get(&s.id) {
            // Already here (an idempotent import): it must be the same snapshot.
            if existing.parent != s.parent || existing.volume_set != s.volume_set {
                return Err(Error::SnapshotImportMismatch(format!(
                    "snapshot {} exists with another parent or volume set",
                    s.id
                )));
            }
            continue;
        }
        if i == 0 {
            if let Some(p) = s.parent {
                let prow = state.snapshots.get(&p).ok_or(Error::SnapshotNotFound(p))?;
                if prow.volume_set != vs {
                    return Err(Error::InvalidArgument(format!(
                        "parent {p} of snapshot {} is in another volume set ({})",
                        s.id, prow.volume_set
                    )));
                }
            }
        }
        check_snapshot_fields(s)?;
        let mut clean = s.clone();
        clean.depth = 0;
        clean.num_children = 0;
        clean.is_tip = false;
        clean.branch_name = None;
        fresh.push(clean);
    }
    check_store_room(state.snapshots.len(), fresh.len())?;
    Ok((vs, fresh))
}

impl State {
    pub(crate) fn check_import_volume_set(&self, vs: &VolumeSet) -> Result<Event> {
        if self.volume_sets.contains_key(&vs.id) {
            return Err(Error::VolumeSetAlreadyExists(vs.id));
        }
        check_volume_set_fields(vs)?;
        let mut vs = vs.clone();
        vs.num_snapshots = 0;
        vs.num_branches = 0;
        vs.last_snapshot_time = None;
        Ok(Event::ImportVolumeSet { volume_set: vs })
    }

    /// Three-way update of a volume set's metadata. Returns the event to write (when
    /// current wins) and the entry to return (when target wins).
    pub(crate) fn check_update_volume_set(
        &self,
        cur: &VolumeSet,
        init: Option<&VolumeSet>,
    ) -> Result<(Option<Event>, Option<MetaConflict<VolumeSet>>)> {
        let target = self.get_volume_set(cur.id)?;
        // Without an initial the write is unconditional: "target equals current" must then
        // cover every writable field (user names, last-modified), which the three-way
        // comparison leaves out, or a change to only those is dropped as "no action".
        let tgt_eq_cur = target.same_meta(cur) && (init.is_some() || target.meta() == cur.meta());
        let status = resolve(
            tgt_eq_cur,
            init.map(|i| cur.same_meta(i)),
            init.map(|i| target.same_meta(i)),
        );
        match status {
            ResolveStatus::NoAction => Ok((None, None)),
            ResolveStatus::UseCurrent => {
                check_volume_set_fields(cur)?;
                Ok((
                    Some(Event::UpdateVolumeSet {
                        id: cur.id,
                        new: cur.meta(),
                        old: target.meta(),
                    }),
                    None,
                ))
            }
            _ => Ok((
                None,
                Some(MetaConflict {
                    target,
                    current: cur.clone(),
                    initial: init.cloned(),
                    status,
                }),
            )),
        }
    }

    pub(crate) fn check_set_volume_set_size(&self, id: VolumeSetId, size: u64) -> Result<Event> {
        let row = self
            .volume_sets
            .get(&id)
            .ok_or(Error::VolumeSetNotFound(id))?;
        Ok(Event::SetVolumeSetSize {
            id,
            size,
            old_size: row.vs.size,
        })
    }

    pub(crate) fn check_delete_volume_set(&self, id: VolumeSetId) -> Result<Event> {
        if !self.volume_sets.contains_key(&id) {
            return Err(Error::VolumeSetNotFound(id));
        }
        Ok(Event::DeleteVolumeSet { id })
    }

    /// Fork (`import = None`: a fresh branch id) or import (the given branch id).
    pub(crate) fn check_new_branch(
        &self,
        branch: BranchId,
        name: &str,
        snaps: &[Snapshot],
        import: bool,
    ) -> Result<Option<Event>> {
        if snaps.is_empty() {
            return Ok(None);
        }
        validate_branch_name(name)?;
        let (vs, fresh) = check_chain(self, snaps)?;
        if self.branches.contains_key(&branch) {
            return Err(Error::BranchIdAlreadyExists(branch));
        }
        if !name.is_empty() {
            if let Some(existing) = self.volume_sets[&vs].branches_by_name.get(name) {
                return Err(Error::BranchAlreadyExists {
                    volume_set: vs,
                    name: name.to_string(),
                    existing: *existing,
                });
            }
        }
        let tip = snaps[snaps.len() - 1].id;
        if let Some(other) = self.by_tip.get(&tip) {
            return Err(Error::InvalidArgument(format!(
                "snapshot {tip} is already the tip of branch {other}; a snapshot is the tip of at most one branch"
            )));
        }
        let nb = NewBranch {
            volume_set: vs,
            branch,
            name: name.to_string(),
            snapshots: fresh,
            tip,
        };
        Ok(Some(if import {
            Event::ImportBranch(nb)
        } else {
            Event::ForkBranch(nb)
        }))
    }

    pub(crate) fn check_extend_branch(&self, snaps: &[Snapshot]) -> Result<Option<Event>> {
        if snaps.is_empty() {
            return Ok(None);
        }
        if snaps[0].parent.is_none() {
            return Err(Error::InvalidArgument(format!(
                "snapshot {} has no parent: extending needs the tip of a branch as parent (fork a new branch instead)",
                snaps[0].id
            )));
        }
        let (vs, fresh) = check_chain(self, snaps)?;
        let Some(first) = fresh.first() else {
            return Ok(None);
        };
        let parent = first.parent.expect("checked above or chained");
        let branch = *self.by_tip.get(&parent).ok_or(Error::NotATip(parent))?;
        Ok(Some(Event::ExtendBranch {
            volume_set: vs,
            branch,
            old_tip: parent,
            snapshots: fresh,
        }))
    }

    pub(crate) fn check_rename_branch(
        &self,
        vs: VolumeSetId,
        old: &str,
        new: &str,
    ) -> Result<Event> {
        let row = self
            .volume_sets
            .get(&vs)
            .ok_or(Error::VolumeSetNotFound(vs))?;
        validate_branch_name(new)?;
        if new.is_empty() {
            return Err(Error::InvalidArgument(
                "the new branch name is empty".into(),
            ));
        }
        if old == new {
            return Err(Error::InvalidArgument(format!(
                "branch {old:?} already has that name"
            )));
        }
        let branch = *row
            .branches_by_name
            .get(old)
            .ok_or_else(|| Error::BranchNotFound {
                volume_set: vs,
                what: format!("{old:?}"),
            })?;
        if let Some(existing) = row.branches_by_name.get(new) {
            return Err(Error::BranchAlreadyExists {
                volume_set: vs,
                name: new.to_string(),
                existing: *existing,
            });
        }
        Ok(Event::RenameBranch {
            volume_set: vs,
            branch,
            old_name: old.to_string(),
            new_name: new.to_string(),
        })
    }

    /// Three-way update of a batch of snapshots, all against this one state.
    pub(crate) fn check_update_snapshots(
        &self,
        pairs: &[(Snapshot, Option<Snapshot>)],
    ) -> Result<(Option<Event>, Vec<MetaConflict<Snapshot>>)> {
        check_batch(pairs.len())?;
        let mut seen = Set::with_capacity_and_hasher(pairs.len(), Default::default());
        let mut updates = Vec::new();
        let mut returned = Vec::new();
        for (cur, init) in pairs {
            if !seen.insert(cur.id) {
                return Err(Error::InvalidArgument(format!(
                    "snapshot {} appears twice in one update",
                    cur.id
                )));
            }
            let target = self.get_snapshot(cur.id)?;
            // Without an initial the write is unconditional: compare every writable field
            // (see `check_update_volume_set`), so `update_snapshot` always stamps its time.
            let tgt_eq_cur =
                target.same_meta(cur) && (init.is_some() || target.meta() == cur.meta());
            let status = resolve(
                tgt_eq_cur,
                init.as_ref().map(|i| cur.same_meta(i)),
                init.as_ref().map(|i| target.same_meta(i)),
            );
            // The blob may only go from nil to a value (compare-and-set).
            let set_blob = if !cur.blob.is_nil() && cur.blob != target.blob {
                if !target.blob.is_nil() {
                    return Err(Error::AlreadyHaveBlob(cur.id));
                }
                validate_text("blob id", &cur.blob.0, NAME_BYTES_MAX)?;
                Some(cur.blob.clone())
            } else {
                None
            };
            if status == ResolveStatus::UseCurrent {
                check_snapshot_fields(cur)?;
                if cur.parent != target.parent || cur.volume_set != target.volume_set {
                    return Err(Error::InvalidArgument(format!(
                        "snapshot {}: parent and volume set cannot be changed",
                        cur.id
                    )));
                }
            }
            if status == ResolveStatus::UseCurrent || set_blob.is_some() {
                let new = if status == ResolveStatus::UseCurrent {
                    cur.meta()
                } else {
                    target.meta()
                };
                updates.push(SnapshotUpdate {
                    id: cur.id,
                    new,
                    old: target.meta(),
                    set_blob,
                });
            }
            if matches!(
                status,
                ResolveStatus::UseTargetNoConflict | ResolveStatus::UseTargetConflict
            ) {
                returned.push(MetaConflict {
                    target,
                    current: cur.clone(),
                    initial: init.clone(),
                    status,
                });
            }
        }
        let event = (!updates.is_empty()).then_some(Event::UpdateSnapshots { updates });
        Ok((event, returned))
    }

    pub(crate) fn check_set_blob(
        &self,
        snap: SnapshotId,
        blob: &BlobId,
        size: u64,
    ) -> Result<Event> {
        let row = self
            .snapshots
            .get(&snap)
            .ok_or(Error::SnapshotNotFound(snap))?;
        validate_text("blob id", &blob.0, NAME_BYTES_MAX)?;
        Ok(Event::SetBlobIdAndSize {
            snapshot: snap,
            blob: blob.clone(),
            size,
            old_blob: row.blob.as_deref().map(BlobId::from).unwrap_or_default(),
            old_size: row.size,
        })
    }

    /// Deleting snapshots: every child of a deleted snapshot must go too (no orphans), no
    /// volume may be based on one. `new_tip`, if it has no children left and no branch,
    /// becomes the tip of a new branch (`new_branch` id) that keeps the name of the one
    /// named branch removed, if there is exactly one.
    pub(crate) fn check_delete_snapshots(
        &self,
        snaps: &[SnapshotId],
        new_tip: Option<SnapshotId>,
        new_branch: BranchId,
    ) -> Result<Option<Event>> {
        check_batch(snaps.len())?;
        self.delete_snapshots_event(snaps, new_tip, new_branch)
    }

    /// [`State::check_delete_snapshots`] without the per-call limit: for a list the store
    /// computed itself (`delete_branch`), which splits the event into records of at most
    /// [`BATCH_SNAPSHOTS_MAX`] snapshots.
    pub(crate) fn delete_snapshots_event(
        &self,
        snaps: &[SnapshotId],
        new_tip: Option<SnapshotId>,
        new_branch: BranchId,
    ) -> Result<Option<Event>> {
        if snaps.is_empty() {
            return Ok(None);
        }
        let gone: Set<SnapshotId> = snaps.iter().copied().collect();
        if gone.len() != snaps.len() {
            return Err(Error::InvalidArgument(
                "a snapshot appears twice in one delete".into(),
            ));
        }
        let vs = self
            .snapshots
            .get(&snaps[0])
            .ok_or(Error::SnapshotNotFound(snaps[0]))?
            .volume_set;
        let mut children_gone: Map<SnapshotId, u32> = Map::default();
        for id in snaps {
            let row = self.snapshots.get(id).ok_or(Error::SnapshotNotFound(*id))?;
            if row.volume_set != vs {
                return Err(Error::InvalidArgument(format!(
                    "snapshot {id} is in another volume set than {}",
                    snaps[0]
                )));
            }
            if let Some(n) = self.volumes_by_base.get(id) {
                return Err(Error::SnapshotInUse {
                    snapshot: *id,
                    volumes: *n,
                });
            }
            // Count the deleted children of every parent, not only of deleted ones: the
            // new tip is a surviving parent, and it only becomes a leaf (and takes the
            // branch) once its deleted children are subtracted.
            if let Some(p) = row.parent {
                *children_gone.entry(p).or_default() += 1;
            }
        }
        for id in snaps {
            let row = &self.snapshots[id];
            let left = row.children - children_gone.get(id).copied().unwrap_or(0);
            if left > 0 {
                return Err(Error::HasChildren {
                    snapshot: *id,
                    children: left,
                });
            }
        }
        let removed_branches: Vec<BranchId> = snaps
            .iter()
            .filter_map(|s| self.by_tip.get(s).copied())
            .collect();
        let tip = match new_tip {
            None => None,
            Some(t) => {
                if gone.contains(&t) {
                    return Err(Error::InvalidArgument(format!(
                        "the new tip {t} is among the deleted snapshots"
                    )));
                }
                let row = self.snapshots.get(&t).ok_or(Error::SnapshotNotFound(t))?;
                if row.volume_set != vs {
                    return Err(Error::InvalidArgument(format!(
                        "the new tip {t} is in another volume set"
                    )));
                }
                let left = row.children - children_gone.get(&t).copied().unwrap_or(0);
                if left == 0 && !self.by_tip.contains_key(&t) {
                    let named: Vec<&str> = removed_branches
                        .iter()
                        .map(|b| self.branches[b].name.as_str())
                        .filter(|n| !n.is_empty())
                        .collect();
                    let name = if named.len() == 1 {
                        named[0].to_string()
                    } else {
                        String::new()
                    };
                    Some(NewTip {
                        snapshot: t,
                        branch: new_branch,
                        name,
                    })
                } else {
                    None
                }
            }
        };
        Ok(Some(Event::DeleteSnapshots {
            volume_set: vs,
            snapshots: snaps.to_vec(),
            removed_branches,
            new_tip: tip,
        }))
    }

    pub(crate) fn check_import_bush(&self, bush: &Bush) -> Result<Event> {
        if !self.volume_sets.contains_key(&bush.volume_set) {
            return Err(Error::VolumeSetNotFound(bush.volume_set));
        }
        let row = self
            .snapshots
            .get(&bush.root)
            .ok_or(Error::SnapshotNotFound(bush.root))?;
        if row.parent.is_some() || row.volume_set != bush.volume_set {
            return Err(Error::InvalidArgument(format!(
                "snapshot {} is not a root of volume set {}",
                bush.root, bush.volume_set
            )));
        }
        if self.bushes.contains_key(&bush.root) {
            return Err(Error::BushAlreadyExists(bush.root));
        }
        Ok(Event::ImportBush { bush: bush.clone() })
    }

    pub(crate) fn check_delete_bush(&self, root: SnapshotId) -> Result<Event> {
        if !self.bushes.contains_key(&root) {
            return Err(Error::BushNotFound(root));
        }
        Ok(Event::DeleteBush { root })
    }

    pub(crate) fn check_import_volume(&self, v: &Volume) -> Result<Event> {
        if v.id.0.trim().is_empty() {
            return Err(Error::InvalidArgument("volume id is empty".into()));
        }
        validate_text("volume id", &v.id.0, NAME_BYTES_MAX)?;
        validate_text("volume name", &v.name, NAME_BYTES_MAX)?;
        validate_text("mount path", &v.mount_path, MOUNT_PATH_BYTES_MAX)?;
        validate_attrs(&v.attrs)?;
        if self.volumes.contains_key(&v.id) {
            return Err(Error::VolumeAlreadyExists(v.id.clone()));
        }
        if !self.volume_sets.contains_key(&v.volume_set) {
            return Err(Error::VolumeSetNotFound(v.volume_set));
        }
        if let Some(b) = v.base {
            let row = self.snapshots.get(&b).ok_or(Error::SnapshotNotFound(b))?;
            if row.volume_set != v.volume_set {
                return Err(Error::InvalidArgument(format!(
                    "base snapshot {b} is in another volume set"
                )));
            }
        }
        if !v.mount_path.is_empty() && self.mount_paths.contains_key(&v.mount_path) {
            return Err(Error::MountPathInUse(v.mount_path.clone()));
        }
        Ok(Event::ImportVolume { volume: v.clone() })
    }

    pub(crate) fn check_update_volume(&self, v: &Volume) -> Result<Option<Event>> {
        let old = self
            .volumes
            .get(&v.id)
            .ok_or_else(|| Error::VolumeNotFound(v.id.clone()))?;
        validate_text("volume name", &v.name, NAME_BYTES_MAX)?;
        validate_attrs(&v.attrs)?;
        if old.name == v.name && old.attrs == v.attrs {
            return Ok(None);
        }
        Ok(Some(Event::UpdateVolume {
            id: v.id.clone(),
            name: v.name.clone(),
            attrs: v.attrs.clone(),
            old_name: old.name.clone(),
            old_attrs: old.attrs.clone(),
        }))
    }

    pub(crate) fn check_delete_volume(&self, id: &VolumeId) -> Result<Event> {
        if !self.volumes.contains_key(id) {
            return Err(Error::VolumeNotFound(id.clone()));
        }
        Ok(Event::DeleteVolume { id: id.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_holds_at_most_snapshots_max() {
        assert!(check_store_room(SNAPSHOTS_MAX - 1, 1).is_ok());
        assert!(check_store_room(0, SNAPSHOTS_MAX).is_ok());
        for (held, adding) in [(SNAPSHOTS_MAX, 1), (SNAPSHOTS_MAX - 5, 6), (usize::MAX, 1)] {
            assert!(matches!(
                check_store_room(held, adding),
                Err(Error::LimitExceeded {
                    limit: Limit::SnapshotsPerStore,
                    ..
                })
            ));
        }
        assert!(check_batch(BATCH_SNAPSHOTS_MAX).is_ok());
        assert!(matches!(
            check_batch(BATCH_SNAPSHOTS_MAX + 1),
            Err(Error::LimitExceeded {
                limit: Limit::SnapshotsPerCall,
                value: 100_001,
                max: 100_000
            })
        ));
    }
}
