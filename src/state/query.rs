//! Read queries over the projections, with the reference semantics: filter, then sort,
//! then offset and limit (the original applied the limit before the volume-set filter).
//!
//! Costs (n: objects in the store): a listing in the order of an index (volume sets in
//! any order; a volume set's snapshots by time) starts at its page in O(log n) and reads
//! only what it returns, or, with a filter, stops once the page is full; a listing of
//! snapshots by id or size sorts nothing it does not return: one pass over the volume
//! set's snapshots selects the page (O(S + page · log page)), without building a snapshot
//! it does not return.

use std::collections::{BTreeMap, HashMap};

use crate::error::{Error, Result};
use crate::model::query::glob_matches;
use crate::model::{
    Attrs, BlobId, Branch, BranchId, BranchQuery, Bush, Order, Page, Snapshot, SnapshotId,
    SnapshotQuery, SortBy, Volume, VolumeId, VolumeSet, VolumeSetId, VolumeSetQuery,
};
use crate::state::{BranchRow, SnapRow, SnapText, State, VsRow};

/// The text of a snapshot that has none.
static NO_TEXT: SnapText = SnapText {
    name: String::new(),
    description: String::new(),
    attrs: Attrs::new(),
    creator: String::new(),
    creator_name: String::new(),
    owner: String::new(),
    owner_name: String::new(),
};

/// Whether a snapshot query filters on anything but ids and the volume set.
fn snapshot_filtered(q: &SnapshotQuery) -> bool {
    q.name.is_some()
        || q.creator.is_some()
        || q.creator_name.is_some()
        || q.owner.is_some()
        || q.owner_name.is_some()
        || !q.attrs.is_empty()
        || q.search.is_some()
}

/// The snapshot filters of a query, on a stored row (nothing is built or cloned).
fn snapshot_matches(q: &SnapshotQuery, r: &SnapRow) -> bool {
    let t = r.text.as_deref().unwrap_or(&NO_TEXT);
    q.volume_set.is_none_or(|vs| r.volume_set == vs)
        && opt_eq(&q.name, &t.name)
        && opt_eq(&q.creator, &t.creator)
        && opt_eq(&q.creator_name, &t.creator_name)
        && opt_eq(&q.owner, &t.owner)
        && opt_eq(&q.owner_name, &t.owner_name)
        && attrs_match(&q.attrs, &t.attrs)
        && q.search
            .as_deref()
            .is_none_or(|x| search_hit(x, &[&t.name, &t.creator_name, &t.owner_name], &t.attrs))
}

/// Whether a volume set query filters on anything but ids.
fn volume_set_filtered(q: &VolumeSetQuery) -> bool {
    q.name.is_some()
        || q.prefix.is_some()
        || q.creator.is_some()
        || q.creator_name.is_some()
        || q.owner.is_some()
        || q.owner_name.is_some()
        || !q.attrs.is_empty()
        || q.search.is_some()
        || q.short_id.is_some()
        || q.glob.is_some()
}

/// The ids whose hyphenated form starts with `prefix` (any case) are exactly those in
/// `lo..=hi`: hex digits sort like the bytes they spell. `None`: no id can.
fn short_id_range(prefix: &str) -> Option<(uuid::Uuid, uuid::Uuid)> {
    let (mut lo, mut hi) = ([0u8; 16], [0xffu8; 16]);
    let mut nibble = 0usize;
    for (i, c) in prefix.chars().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if c != '-' {
                return None;
            }
            continue;
        }
        if i >= 36 {
            return None;
        }
        let v = c.to_digit(16)? as u8;
        let (b, shift) = (nibble / 2, if nibble.is_multiple_of(2) { 4 } else { 0 });
        lo[b] = (lo[b] & !(0x0f << shift)) | (v << shift);
        hi[b] = (hi[b] & !(0x0f << shift)) | (v << shift);
        nibble += 1;
    }
    Some((uuid::Uuid::from_bytes(lo), uuid::Uuid::from_bytes(hi)))
}

/// Sorts by `key` (unique keys), then applies the page: only the first `offset + limit`
/// are sorted (a selection finds them first). O(m + page · log page).
fn page_by_key<T, K: Ord>(
    mut v: Vec<T>,
    key: impl Fn(&T) -> K,
    order: Order,
    page: Page,
) -> Vec<T> {
    let cmp = |a: &T, b: &T| {
        let o = key(a).cmp(&key(b));
        if order == Order::Desc {
            o.reverse()
        } else {
            o
        }
    };
    let end = match page.limit {
        Some(l) => page.offset.saturating_add(l).min(v.len()),
        None => v.len(),
    };
    if page.offset >= end {
        return Vec::new();
    }
    if end < v.len() {
        v.select_nth_unstable_by(end, cmp);
        v.truncate(end);
    }
    v.sort_unstable_by(cmp);
    v.drain(..page.offset);
    v
}

/// A page of an index walked in order (`rev`: from its end): with no filter it starts at
/// the offset by position, O(log n); with one it filters from the start and stops once the
/// page is full.
fn page_of_index<'a, T: 'a>(
    forward: impl Iterator<Item = T> + 'a,
    backward: impl Iterator<Item = T> + 'a,
    rev: bool,
    filtered: bool,
    keep: impl Fn(&T) -> bool,
    page: Page,
) -> Vec<T> {
    let it: Box<dyn Iterator<Item = T> + 'a> = if rev {
        Box::new(backward)
    } else {
        Box::new(forward)
    };
    let limit = page.limit.unwrap_or(usize::MAX);
    if filtered {
        it.filter(|x| keep(x))
            .skip(page.offset)
            .take(limit)
            .collect()
    } else {
        it.take(limit).collect()
    }
}

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

impl State {
    /// One volume set.
    pub fn get_volume_set(&self, id: VolumeSetId) -> Result<VolumeSet> {
        self.volume_sets
            .get(&id)
            .map(|r| self.volume_set_of(r))
            .ok_or(Error::VolumeSetNotFound(id))
    }

    /// Volume sets matching a query. By id, ids, name or short id: O(log n + matches +
    /// page · log page). Otherwise the index of the sort order is walked: O(log n + page)
    /// without a filter; with one, until the page is full (at most every volume set).
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
        let keep = |r: &VsRow| {
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
        };
        let idx = &self.vs_index;
        let row = |id: &VolumeSetId| self.volume_sets.get(id);
        let candidates: Option<Vec<&VsRow>> = if let Some(id) = q.id {
            Some(row(&id).into_iter().collect())
        } else if !q.ids.is_empty() {
            let mut ids = q.ids.clone();
            ids.sort();
            ids.dedup();
            Some(ids.iter().filter_map(row).collect())
        } else if let Some(name) = q.name.as_deref() {
            Some(idx.named(name).filter_map(|id| row(&id)).collect())
        } else {
            q.short_id.as_deref().map(|p| match short_id_range(p) {
                None => Vec::new(),
                Some((lo, hi)) => idx
                    .by_id
                    .iter_from(idx.by_id.rank(&VolumeSetId(lo)))
                    .take_while(|id| id.0 <= hi)
                    .filter_map(row)
                    .collect(),
            })
        };
        let rows: Vec<&VsRow> = match candidates {
            Some(c) => {
                let c: Vec<&VsRow> = c.into_iter().filter(|r| keep(r)).collect();
                page_by_key(
                    c,
                    |r| {
                        let v = &r.vs;
                        match q.sort {
                            SortBy::Id => (0, 0, v.id),
                            SortBy::Time => (v.created.0, 0, v.id),
                            SortBy::Size => (0, v.size, v.id),
                        }
                    },
                    q.order,
                    q.page,
                )
            }
            None => {
                let filtered = volume_set_filtered(q);
                let from = if filtered { 0 } else { q.page.offset };
                let rev = q.order == Order::Desc;
                let keep = |r: &&VsRow| keep(r);
                match q.sort {
                    SortBy::Id => page_of_index(
                        idx.by_id.iter_from(from).filter_map(row),
                        idx.by_id.iter_rev_from(from).filter_map(row),
                        rev,
                        filtered,
                        keep,
                        q.page,
                    ),
                    SortBy::Time => page_of_index(
                        idx.by_created.iter_from(from).filter_map(|(_, id)| row(id)),
                        idx.by_created
                            .iter_rev_from(from)
                            .filter_map(|(_, id)| row(id)),
                        rev,
                        filtered,
                        keep,
                        q.page,
                    ),
                    SortBy::Size => page_of_index(
                        idx.by_size.iter_from(from).filter_map(|(_, id)| row(id)),
                        idx.by_size
                            .iter_rev_from(from)
                            .filter_map(|(_, id)| row(id)),
                        rev,
                        filtered,
                        keep,
                        q.page,
                    ),
                }
            }
        };
        Ok(rows.into_iter().map(|r| self.volume_set_of(r)).collect())
    }

    /// One snapshot, with derived fields.
    pub fn get_snapshot(&self, id: SnapshotId) -> Result<Snapshot> {
        self.snapshots
            .get(&id)
            .map(|r| self.snapshot_of(id, r))
            .ok_or(Error::SnapshotNotFound(id))
    }

    /// Snapshots matching a query: by id, ids and/or volume set (one is required). By id
    /// or ids: O(ids · log ids). By volume set, sorted by time: O(log n + page) without a
    /// filter, with one until the page is full. By volume set, sorted by id or size: one
    /// pass over its S snapshots, O(S + page · log page).
    pub fn get_snapshots(&self, q: &SnapshotQuery) -> Result<Vec<Snapshot>> {
        if q.id.is_some() && !q.ids.is_empty() {
            return Err(Error::InvalidArgument(
                "give a snapshot id or a list of ids, not both".into(),
            ));
        }
        let with_row = |id: &SnapshotId| self.snapshots.get(id).map(|r| (*id, r));
        let keep = |(_, r): &(SnapshotId, &SnapRow)| snapshot_matches(q, r);
        let picked: Vec<(SnapshotId, &SnapRow)> = if let Some(id) = q.id {
            with_row(&id).into_iter().filter(keep).collect()
        } else if !q.ids.is_empty() {
            let mut ids = q.ids.clone();
            ids.sort();
            ids.dedup();
            ids.iter().filter_map(with_row).filter(keep).collect()
        } else if let Some(vs) = q.volume_set {
            let index = &self
                .volume_sets
                .get(&vs)
                .ok_or(Error::VolumeSetNotFound(vs))?
                .snapshots;
            let at = |(_, id): &(_, SnapshotId)| (*id, &self.snapshots[id]);
            if q.sort == SortBy::Time {
                // The index is in this order: no sort, and only the page is read.
                let filtered = snapshot_filtered(q);
                let from = if filtered { 0 } else { q.page.offset };
                return Ok(page_of_index(
                    index.iter_from(from).map(at),
                    index.iter_rev_from(from).map(at),
                    q.order == Order::Desc,
                    filtered,
                    keep,
                    q.page,
                )
                .into_iter()
                .map(|(id, r)| self.snapshot_of(id, r))
                .collect());
            }
            index.iter().map(at).filter(keep).collect()
        } else {
            return Err(Error::InvalidArgument(
                "a snapshot query needs an id, ids or a volume set".into(),
            ));
        };
        let page = page_by_key(
            picked,
            |(id, r)| match q.sort {
                SortBy::Id => (0, 0, *id),
                SortBy::Time => (r.created.0, 0, *id),
                SortBy::Size => (0, r.size, *id),
            },
            q.order,
            q.page,
        );
        Ok(page
            .into_iter()
            .map(|(id, r)| self.snapshot_of(id, r))
            .collect())
    }

    /// Ids of all snapshots of a volume set (empty when it has none), oldest first (by
    /// creation time, then id).
    pub fn get_snapshot_ids(&self, vs: VolumeSetId) -> Result<Vec<SnapshotId>> {
        Ok(self
            .volume_sets
            .get(&vs)
            .ok_or(Error::VolumeSetNotFound(vs))?
            .snapshots
            .iter()
            .map(|(_, id)| *id)
            .collect())
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
        self.branch_from(id, row, self.snapshots.get(&row.tip))
    }

    /// A branch as the API returns it, from its row and its tip's row.
    fn branch_from(&self, id: BranchId, row: &BranchRow, tip: Option<&SnapRow>) -> Branch {
        let tip = tip.map(|r| self.snapshot_with_branch(row.tip, r, Some(row)));
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
                // Already in listing order (name, then id): no sort; names filter without
                // lookups. Two passes: first every branch's row and its tip's row (lookups
                // that do not depend on each other, so their cache misses overlap), then
                // the answer is built from them.
                let rows: Vec<(BranchId, &BranchRow, Option<&SnapRow>)> = row
                    .branch_order
                    .iter()
                    .filter(|(name, _)| keep(name))
                    .map(|(_, id)| {
                        let b = &self.branches[id];
                        (*id, b, self.snapshots.get(&b.tip))
                    })
                    .collect();
                rows.into_iter()
                    .map(|(id, b, tip)| self.branch_from(id, b, tip))
                    .collect()
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

    /// The one branch a query matches, without building any branch: O(1) by id or name,
    /// else O(branches of the volume set) to see that exactly one matches.
    fn the_branch(&self, q: &BranchQuery) -> Result<&super::BranchRow> {
        let row = self
            .volume_sets
            .get(&q.volume_set)
            .ok_or(Error::VolumeSetNotFound(q.volume_set))?;
        let keep = |name: &str| {
            q.name.as_deref().is_none_or(|n| name == n)
                && q.search.as_deref().is_none_or(|s| name.contains(s))
        };
        let one = match (q.id, &q.name) {
            (Some(id), _) => self
                .branches
                .get(&id)
                .filter(|b| b.volume_set == q.volume_set)
                .map(|_| id),
            (None, Some(name)) if !name.is_empty() => row.branches_by_name.get(name).copied(),
            _ => {
                let mut matching = row.branch_order.iter().filter(|(name, _)| keep(name));
                match (matching.next(), matching.next()) {
                    (Some((_, id)), None) => Some(*id),
                    (None, _) => None,
                    (Some(_), Some(_)) => {
                        let n = 2 + matching.count();
                        return Err(Error::InvalidArgument(format!(
                            "the branch query matches {n} branches, not one"
                        )));
                    }
                }
            }
        };
        match one
            .and_then(|id| self.branches.get(&id))
            .filter(|b| keep(&b.name))
        {
            Some(b) => Ok(b),
            None => Err(Error::BranchNotFound {
                volume_set: q.volume_set,
                what: q
                    .name
                    .clone()
                    .or(q.id.map(|i| i.to_string()))
                    .unwrap_or_else(|| "(any)".into()),
            }),
        }
    }

    /// The snapshots of the one branch a query matches, tip first, root last. O(depth).
    pub fn get_snapshots_by_branch(&self, q: &BranchQuery) -> Result<Vec<Snapshot>> {
        self.get_snapshots_by_branch_limit(q, usize::MAX)
    }

    /// The first `limit` snapshots of [`State::get_snapshots_by_branch`]: the tip and its
    /// ancestors, newest first. O(min(limit, depth)).
    pub fn get_snapshots_by_branch_limit(
        &self,
        q: &BranchQuery,
        limit: usize,
    ) -> Result<Vec<Snapshot>> {
        let b = self.the_branch(q)?;
        let mut out = Vec::with_capacity(limit.min(4096));
        let mut at = Some(b.tip);
        while let Some(id) = at.filter(|_| out.len() < limit) {
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

    /// The distinct bushes of all branch tips of a volume set, by root. O(roots that
    /// hold a tip): the volume set counts its tips per root.
    pub fn get_bushes(&self, vs: VolumeSetId) -> Result<Vec<Bush>> {
        let row = self
            .volume_sets
            .get(&vs)
            .ok_or(Error::VolumeSetNotFound(vs))?;
        Ok(row
            .tip_roots
            .keys()
            .filter_map(|r| self.bushes.get(r).cloned())
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

    /// Volumes of a volume set, ordered by id. O(answer · log n).
    pub fn get_volumes(&self, vs: VolumeSetId) -> Result<Vec<Volume>> {
        let row = self
            .volume_sets
            .get(&vs)
            .ok_or(Error::VolumeSetNotFound(vs))?;
        Ok(row
            .volumes
            .iter()
            .filter_map(|id| self.volumes.get(id).cloned())
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
