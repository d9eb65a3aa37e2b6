//! Read queries over the projections, with the reference semantics: filter, then sort,
//! then offset and limit (the original applied the limit before the volume-set filter).

use std::collections::{BTreeMap, HashMap};

use crate::error::{Error, Result};
use crate::model::query::glob_matches;
use crate::model::{
    BlobId, Branch, BranchId, BranchQuery, Bush, Order, Snapshot, SnapshotId, SnapshotQuery,
    SortBy, Volume, VolumeId, VolumeSet, VolumeSetId, VolumeSetQuery,
};
use crate::state::State;

fn attrs_match(want: &crate::model::Attrs, have: &crate::model::Attrs) -> bool {
    want.iter().all(|(k, v)| have.get(k) == Some(v))
}

fn opt_eq(want: &Option<String>, have: &str) -> bool {
    want.as_deref().is_none_or(|w| w == have)
}

fn search_hit(needle: &str, fields: &[&str], attrs: &crate::model::Attrs) -> bool {
    fields.iter().any(|f| f.contains(needle))
        || attrs
            .iter()
            .any(|(k, v)| k.contains(needle) || v.contains(needle))
}

fn sort_by<T>(v: &mut [T], sort: SortBy, order: Order, key: impl Fn(&T) -> (i64, u64, [u8; 16])) {
    match sort {
        SortBy::Id => v.sort_by_key(|x| key(x).2),
        SortBy::Time => v.sort_by_key(|x| (key(x).0, key(x).2)),
        SortBy::Size => v.sort_by_key(|x| (key(x).1, key(x).2)),
    }
    if order == Order::Desc {
        v.reverse();
    }
}

impl State {
    /// One volume set.
    pub fn get_volume_set(&self, id: VolumeSetId) -> Result<VolumeSet> {
        self.volume_sets
            .get(&id)
            .map(|r| self.volume_set_of(r))
            .ok_or(Error::VolumeSetNotFound(id))
    }

    /// Volume sets matching a query.
    pub fn get_volume_sets(&self, q: &VolumeSetQuery) -> Result<Vec<VolumeSet>> {
        if q.id.is_some() && !q.ids.is_empty() {
            return Err(Error::InvalidArgument(
                "give a volume set id or a list of ids, not both".into(),
            ));
        }
        // A malformed glob is a bad query, not a query that matches nothing.
        if let Some(g) = q.glob.as_deref() {
            ::glob::Pattern::new(g.strip_prefix('/').unwrap_or(g))
                .map_err(|e| Error::InvalidArgument(format!("bad volume set glob {g:?}: {e}")))?;
        }
        let candidates: Vec<&super::VsRow> = if let Some(id) = q.id {
            self.volume_sets.get(&id).into_iter().collect()
        } else if !q.ids.is_empty() {
            let mut ids = q.ids.clone();
            ids.sort();
            ids.dedup();
            ids.iter()
                .filter_map(|id| self.volume_sets.get(id))
                .collect()
        } else {
            self.volume_sets.values().collect()
        };
        let mut out: Vec<VolumeSet> = candidates
            .into_iter()
            .filter(|r| {
                let vs = &r.vs;
                opt_eq(&q.name, &vs.name)
                    && opt_eq(&q.prefix, &vs.prefix)
                    && opt_eq(&q.creator, &vs.creator)
                    && opt_eq(&q.creator_name, &vs.creator_name)
                    && opt_eq(&q.owner, &vs.owner)
                    && opt_eq(&q.owner_name, &vs.owner_name)
                    && attrs_match(&q.attrs, &vs.attrs)
                    && q.search.as_deref().is_none_or(|s| {
                        search_hit(s, &[&vs.name, &vs.creator_name, &vs.owner_name], &vs.attrs)
                    })
                    && q.short_id
                        .as_deref()
                        .is_none_or(|p| vs.id.to_hyphenated().starts_with(&p.to_ascii_lowercase()))
                    && q.glob.as_deref().is_none_or(|g| {
                        let path = if vs.prefix.is_empty() {
                            vs.name.clone()
                        } else {
                            format!("{}/{}", vs.prefix, vs.name)
                        };
                        glob_matches(g, &path)
                    })
            })
            .map(|r| self.volume_set_of(r))
            .collect();
        sort_by(&mut out, q.sort, q.order, |v| {
            (v.created.0, v.size, *v.id.0.as_bytes())
        });
        Ok(q.page.apply(out))
    }

    /// One snapshot, with derived fields.
    pub fn get_snapshot(&self, id: SnapshotId) -> Result<Snapshot> {
        self.snapshots
            .get(&id)
            .map(|r| self.snapshot_of(id, r))
            .ok_or(Error::SnapshotNotFound(id))
    }

    /// Snapshots matching a query: by id, ids and/or volume set (one is required).
    pub fn get_snapshots(&self, q: &SnapshotQuery) -> Result<Vec<Snapshot>> {
        if q.id.is_some() && !q.ids.is_empty() {
            return Err(Error::InvalidArgument(
                "give a snapshot id or a list of ids, not both".into(),
            ));
        }
        let ids: Vec<SnapshotId> = if let Some(id) = q.id {
            vec![id]
        } else if !q.ids.is_empty() {
            let mut ids = q.ids.clone();
            ids.sort();
            ids.dedup();
            ids
        } else if let Some(vs) = q.volume_set {
            self.volume_sets
                .get(&vs)
                .ok_or(Error::VolumeSetNotFound(vs))?
                .snapshots
                .clone()
        } else {
            return Err(Error::InvalidArgument(
                "a snapshot query needs an id, ids or a volume set".into(),
            ));
        };
        let mut out: Vec<Snapshot> = ids
            .into_iter()
            .filter_map(|id| self.snapshots.get(&id).map(|r| (id, r)))
            .filter(|(_, r)| q.volume_set.is_none_or(|vs| r.volume_set == vs))
            .map(|(id, r)| self.snapshot_of(id, r))
            .filter(|s| {
                opt_eq(&q.name, &s.name)
                    && opt_eq(&q.creator, &s.creator)
                    && opt_eq(&q.creator_name, &s.creator_name)
                    && opt_eq(&q.owner, &s.owner)
                    && opt_eq(&q.owner_name, &s.owner_name)
                    && attrs_match(&q.attrs, &s.attrs)
                    && q.search.as_deref().is_none_or(|x| {
                        search_hit(x, &[&s.name, &s.creator_name, &s.owner_name], &s.attrs)
                    })
            })
            .collect();
        sort_by(&mut out, q.sort, q.order, |s| {
            (s.created.0, s.size, *s.id.0.as_bytes())
        });
        Ok(q.page.apply(out))
    }

    /// Ids of all snapshots of a volume set (empty when it has none).
    pub fn get_snapshot_ids(&self, vs: VolumeSetId) -> Result<Vec<SnapshotId>> {
        Ok(self
            .volume_sets
            .get(&vs)
            .ok_or(Error::VolumeSetNotFound(vs))?
            .snapshots
            .clone())
    }

    /// The volume set a snapshot belongs to.
    pub fn get_volume_set_by_snap_id(&self, snap: SnapshotId) -> Result<VolumeSetId> {
        self.snapshots
            .get(&snap)
            .map(|r| r.volume_set)
            .ok_or(Error::SnapshotNotFound(snap))
    }

    fn branch_named(&self, vs: VolumeSetId, name: &str) -> Result<BranchId> {
        let row = self
            .volume_sets
            .get(&vs)
            .ok_or(Error::VolumeSetNotFound(vs))?;
        row.branches_by_name
            .get(name)
            .copied()
            .ok_or_else(|| Error::BranchNotFound {
                volume_set: vs,
                what: format!("{name:?}"),
            })
    }

    /// The tip snapshot of a named branch.
    pub fn get_tip(&self, vs: VolumeSetId, name: &str) -> Result<Snapshot> {
        let b = &self.branches[&self.branch_named(vs, name)?];
        let row = self
            .snapshots
            .get(&b.tip)
            .ok_or(Error::SnapshotNotFound(b.tip))?;
        Ok(self.snapshot_with_branch(b.tip, row, Some(b)))
    }

    fn branch_of(&self, id: BranchId) -> Branch {
        let row = &self.branches[&id];
        let tip = self
            .snapshots
            .get(&row.tip)
            .map(|r| self.snapshot_with_branch(row.tip, r, Some(row)));
        Branch {
            id,
            volume_set: row.volume_set,
            name: row.name.clone(),
            tip: row.tip,
            has_child: tip.as_ref().is_some_and(|t| t.num_children > 0),
            tip_snapshot: tip,
        }
    }

    /// Branches of a volume set matching a query, ordered by name then id.
    pub fn get_branches(&self, q: &BranchQuery) -> Result<Vec<Branch>> {
        let row = self
            .volume_sets
            .get(&q.volume_set)
            .ok_or(Error::VolumeSetNotFound(q.volume_set))?;
        let keep = |name: &str| {
            q.name.as_deref().is_none_or(|n| name == n)
                && q.search.as_deref().is_none_or(|s| name.contains(s))
        };
        let one = match (q.id, &q.name) {
            (Some(id), _) => Some(
                self.branches
                    .get(&id)
                    .filter(|b| b.volume_set == q.volume_set)
                    .map(|_| id),
            ),
            (None, Some(name)) if !name.is_empty() => Some(row.branches_by_name.get(name).copied()),
            _ => None,
        };
        let out = match one {
            Some(id) => id
                .filter(|id| keep(&self.branches[id].name))
                .map(|id| self.branch_of(id))
                .into_iter()
                .collect(),
            None => {
                // Already in listing order (name, then id): no sort; names filter without lookups.
                let mut out = Vec::with_capacity(row.branch_order.len());
                out.extend(
                    row.branch_order
                        .iter()
                        .filter(|(name, _)| keep(name))
                        .map(|(_, id)| self.branch_of(*id)),
                );
                out
            }
        };
        Ok(out)
    }

    /// One branch by id.
    pub fn get_branch(&self, vs: VolumeSetId, id: BranchId) -> Result<Branch> {
        let row = self
            .volume_sets
            .get(&vs)
            .ok_or(Error::VolumeSetNotFound(vs))?;
        if self
            .branches
            .get(&id)
            .is_none_or(|b| b.volume_set != row.vs.id)
        {
            return Err(Error::BranchNotFound {
                volume_set: vs,
                what: id.to_string(),
            });
        }
        Ok(self.branch_of(id))
    }

    /// The snapshots of the one branch a query matches, tip first, root last. O(depth).
    pub fn get_snapshots_by_branch(&self, q: &BranchQuery) -> Result<Vec<Snapshot>> {
        let branches = self.get_branches(q)?;
        let b = match branches.len() {
            1 => &branches[0],
            0 => {
                let what = q
                    .name
                    .clone()
                    .or(q.id.map(|i| i.to_string()))
                    .unwrap_or_else(|| "(any)".into());
                return Err(Error::BranchNotFound {
                    volume_set: q.volume_set,
                    what,
                });
            }
            n => {
                return Err(Error::InvalidArgument(format!(
                    "the branch query matches {n} branches, not one"
                )))
            }
        };
        let mut out = Vec::new();
        let mut at = Some(b.tip);
        while let Some(id) = at {
            let row = &self.snapshots[&id];
            out.push(self.snapshot_of(id, row));
            at = row.parent;
        }
        Ok(out)
    }

    /// The bush of any snapshot: the bush of its root. O(1).
    pub fn get_bush(&self, snap: SnapshotId) -> Result<Bush> {
        let row = self
            .snapshots
            .get(&snap)
            .ok_or(Error::SnapshotNotFound(snap))?;
        self.bushes
            .get(&row.root)
            .cloned()
            .ok_or(Error::BushNotFound(snap))
    }

    /// The distinct bushes of all branch tips of a volume set.
    pub fn get_bushes(&self, vs: VolumeSetId) -> Result<Vec<Bush>> {
        let row = self
            .volume_sets
            .get(&vs)
            .ok_or(Error::VolumeSetNotFound(vs))?;
        let mut roots: Vec<SnapshotId> = row
            .branch_order
            .iter()
            .filter_map(|(_, b)| self.branches.get(b))
            .filter_map(|b| self.snapshots.get(&b.tip).map(|r| r.root))
            .collect();
        roots.sort();
        roots.dedup();
        Ok(roots
            .into_iter()
            .filter_map(|r| self.bushes.get(&r).cloned())
            .collect())
    }

    /// Blob ids of known snapshots (nil for those without data); unknown ids are absent.
    pub fn get_blob_ids(&self, snaps: &[SnapshotId]) -> HashMap<SnapshotId, BlobId> {
        snaps
            .iter()
            .filter_map(|id| {
                self.snapshots
                    .get(id)
                    .map(|r| (*id, r.blob.as_deref().map(BlobId::from).unwrap_or_default()))
            })
            .collect()
    }

    /// One snapshot's blob id (nil when this store has no data for it).
    pub fn get_blob_id(&self, snap: SnapshotId) -> Result<BlobId> {
        let r = self
            .snapshots
            .get(&snap)
            .ok_or(Error::SnapshotNotFound(snap))?;
        Ok(r.blob.as_deref().map(BlobId::from).unwrap_or_default())
    }

    /// Number of volumes based on a snapshot.
    pub fn num_volumes(&self, snap: SnapshotId) -> Result<u32> {
        if !self.snapshots.contains_key(&snap) {
            return Err(Error::SnapshotNotFound(snap));
        }
        Ok(self.volumes_by_base.get(&snap).copied().unwrap_or(0))
    }

    /// Number of snapshots whose parent is this one.
    pub fn num_children(&self, snap: SnapshotId) -> Result<u32> {
        self.snapshots
            .get(&snap)
            .map(|r| r.children)
            .ok_or(Error::SnapshotNotFound(snap))
    }

    /// One volume.
    pub fn get_volume(&self, id: &VolumeId) -> Result<Volume> {
        self.volumes
            .get(id)
            .cloned()
            .ok_or_else(|| Error::VolumeNotFound(id.clone()))
    }

    /// Volumes of a volume set, ordered by id.
    pub fn get_volumes(&self, vs: VolumeSetId) -> Result<Vec<Volume>> {
        if !self.volume_sets.contains_key(&vs) {
            return Err(Error::VolumeSetNotFound(vs));
        }
        Ok(self
            .volumes
            .values()
            .filter(|v| v.volume_set == vs)
            .cloned()
            .collect())
    }

    /// All volumes, ordered by id.
    pub fn get_all_volumes(&self) -> Vec<Volume> {
        self.volumes.values().cloned().collect()
    }

    /// Sum of the sizes of the given volume sets (unknown ids are an error).
    pub fn disk_space_usage(&self, ids: &[VolumeSetId]) -> Result<u64> {
        let mut ids = ids.to_vec();
        ids.sort();
        ids.dedup();
        ids.iter().try_fold(0u64, |acc, id| {
            let r = self
                .volume_sets
                .get(id)
                .ok_or(Error::VolumeSetNotFound(*id))?;
            Ok(acc.saturating_add(r.vs.size))
        })
    }

    /// Counts of everything held.
    pub fn counts(&self) -> Counts {
        Counts {
            volume_sets: self.volume_sets.len() as u64,
            snapshots: self.snapshots.len() as u64,
            branches: self.branches.len() as u64,
            bushes: self.bushes.len() as u64,
            volumes: self.volumes.len() as u64,
        }
    }

    /// The whole state in a canonical order, for comparing two stores or a store before
    /// and after reopen. Equal dumps mean equal answers to every query.
    pub fn canonical_dump(&self) -> CanonicalDump {
        let mut volume_sets: Vec<VolumeSet> = self
            .volume_sets
            .values()
            .map(|r| self.volume_set_of(r))
            .collect();
        volume_sets.sort_by_key(|v| v.id);
        let mut snapshots: Vec<Snapshot> = self
            .snapshots
            .iter()
            .map(|(id, r)| self.snapshot_of(*id, r))
            .collect();
        snapshots.sort_by_key(|s| s.id);
        let mut branches: Vec<Branch> =
            self.branches.keys().map(|id| self.branch_of(*id)).collect();
        branches.sort_by_key(|b| b.id);
        let mut bushes: Vec<Bush> = self.bushes.values().cloned().collect();
        bushes.sort_by_key(|b| b.root);
        let volumes: BTreeMap<VolumeId, Volume> = self.volumes.clone();
        CanonicalDump {
            volume_sets,
            snapshots,
            branches,
            bushes,
            volumes: volumes.into_values().collect(),
        }
    }
}

/// Object counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    pub volume_sets: u64,
    pub snapshots: u64,
    pub branches: u64,
    pub bushes: u64,
    pub volumes: u64,
}

/// Everything a store holds, sorted by id.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CanonicalDump {
    pub volume_sets: Vec<VolumeSet>,
    pub snapshots: Vec<Snapshot>,
    pub branches: Vec<Branch>,
    pub bushes: Vec<Bush>,
    pub volumes: Vec<Volume>,
}
