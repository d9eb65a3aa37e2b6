//! Projections: the state of the store as the log's records left it, with the indexes
//! every query needs, and the queries themselves.
//!
//! [`State::apply`] folds one record in; it never fails, since every record was validated
//! (`validate`) against the state it is applied to. Projections never touch files.
//!
//! Indexes: volume sets by id (each with its snapshots by creation time, branches by name
//! and all its branch ids, the roots that hold its tips, its volumes), and in each listing
//! order and by name (`vs_index`); snapshots by id (parent, root, depth, child count,
//! blob); branches by id and by tip; bushes by root; volumes by id and counts by base
//! snapshot; sync cursors by volume set.

pub mod query;
pub(crate) mod ranked;
pub(crate) mod validate;
pub(crate) mod vs_index;

pub use validate::{BATCH_SNAPSHOTS_MAX, SNAPSHOTS_MAX};

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::event::{Envelope, Event, NewBranch};
use crate::log::Lsn;
use crate::model::{
    Attrs, BlobId, BranchId, Bush, Snapshot, SnapshotId, SnapshotMeta, StoreId, Timestamp, Volume,
    VolumeId, VolumeSet, VolumeSetId,
};
use ranked::RankedSet;
use vs_index::VsIndex;

/// Hash maps of the projections: foldhash is several times faster than SipHash on 16-byte
/// ids and still seeded per map, so crafted ids cannot force collisions.
pub(crate) type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// Hash sets of the projections (see [`Map`]).
pub(crate) type Set<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// Per volume set: the stored fields plus the indexes of what it holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct VsRow {
    pub vs: VolumeSet,
    /// Snapshots by creation time, then id: time-ordered listings page through it by
    /// position, and its last one is the newest (24 bytes a snapshot, chunks packed).
    pub snapshots: RankedSet<(Timestamp, SnapshotId)>,
    /// Every branch (named or not), in the order listings return them: by name, then id.
    pub branch_order: BTreeSet<(String, BranchId)>,
    /// Named branches only: unnamed ones are not unique by name.
    pub branches_by_name: Map<String, BranchId>,
    /// The roots whose trees hold a branch tip, with the number of tips in each (the
    /// bushes of the tips, without looking at every branch).
    pub tip_roots: BTreeMap<SnapshotId, u32>,
    /// The volumes of this volume set.
    pub volumes: BTreeSet<VolumeId>,
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
///
/// In a checkpoint the index travels as a plain list of (id, slot) pairs and is rebuilt
/// on load by `build_index`, which inserts in bucket order (see there).
#[derive(Debug, Clone, Default)]
pub(crate) struct SnapTable {
    index: Map<SnapshotId, u32>,
    rows: Vec<Option<SnapRow>>,
    free: Vec<u32>,
}

impl Serialize for SnapTable {
    /// The checkpoint form: the index as a sequence of (id, slot) pairs, the rows by slot,
    /// the free slots (`log-format.md` §10).
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        struct Pairs<'a>(&'a Map<SnapshotId, u32>);
        impl Serialize for Pairs<'_> {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                s.collect_seq(self.0.iter())
            }
        }
        let mut st = s.serialize_struct("SnapTable", 3)?;
        st.serialize_field("index", &Pairs(&self.index))?;
        st.serialize_field("rows", &self.rows)?;
        st.serialize_field("free", &self.free)?;
        st.end()
    }
}

impl<'de> Deserialize<'de> for SnapTable {
    /// Reads what `serialize` wrote. The hash index is built on a second thread while the
    /// rows are decoded (the two are the bulk of a checkpoint load).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = SnapTable;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a snapshot table (index pairs, rows, free slots)")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<SnapTable, A::Error> {
                use serde::de::Error;
                let pairs: Vec<(SnapshotId, u32)> = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(0, &self))?;
                let rest = |seq: &mut A| -> std::result::Result<_, A::Error> {
                    let rows: Vec<Option<SnapRow>> = seq
                        .next_element()?
                        .ok_or_else(|| A::Error::invalid_length(1, &self))?;
                    let free: Vec<u32> = seq
                        .next_element()?
                        .ok_or_else(|| A::Error::invalid_length(2, &self))?;
                    Ok((rows, free))
                };
                let (index, rows, free) = if pairs.len() < PARALLEL_INDEX_MIN {
                    let (rows, free) = rest(&mut seq)?;
                    (build_index(&pairs), rows, free)
                } else {
                    std::thread::scope(|scope| {
                        let helper = std::thread::Builder::new()
                            .name("mdslog-index".into())
                            .spawn_scoped(scope, || build_index(&pairs));
                        let (rows, free) = rest(&mut seq)?;
                        let index = match helper.map(|h| h.join()) {
                            Ok(Ok(index)) => index,
                            // No thread (or it died): build it here.
                            _ => build_index(&pairs),
                        };
                        Ok((index, rows, free))
                    })?
                };
                // Every id once, every slot once and in range, and exactly the filled rows
                // indexed (a bitmap of slots: a look at each row by slot would be a cache
                // miss per snapshot).
                let mut seen = vec![0u64; rows.len().div_ceil(64)];
                let slots_ok = pairs.iter().all(|&(_, slot)| {
                    let (w, b) = (slot as usize / 64, 1u64 << (slot % 64));
                    match seen.get_mut(w) {
                        Some(word) if *word & b == 0 && (slot as usize) < rows.len() => {
                            *word |= b;
                            true
                        }
                        _ => false,
                    }
                });
                let filled = rows.iter().filter(|r| r.is_some()).count();
                if !slots_ok || index.len() != pairs.len() || filled != pairs.len() {
                    return Err(A::Error::custom(
                        "snapshot index and rows disagree (a repeated id or slot, or a missing row)",
                    ));
                }
                let table = SnapTable { index, rows, free };
                Ok(table)
            }
        }
        d.deserialize_struct("SnapTable", &["index", "rows", "free"], V)
    }
}

/// Index sizes from which a checkpoint load builds the index on a second thread.
const PARALLEL_INDEX_MIN: usize = 1 << 16;

/// Builds a hash index of `pairs`, pre-sized, inserting in the order of the buckets the
/// keys land in. Inserting 10M keys in arbitrary order costs a cache and TLB miss each
/// (about 200 ns here: 2 s of a checkpoint load); in bucket order the table fills front to
/// back. The order comes from a counting sort on the top 16 bits of each key's bucket
/// number (two linear passes). Any order gives the same map: this is only about speed.
fn build_index<K: std::hash::Hash + Eq + Copy, V: Copy>(pairs: &[(K, V)]) -> Map<K, V> {
    use std::hash::BuildHasher;
    const BIN_BITS: u32 = 16;
    let mut map = Map::with_capacity_and_hasher(pairs.len(), Default::default());
    if pairs.len() < 1 << BIN_BITS {
        map.extend(pairs.iter().copied());
        return map;
    }
    // hashbrown keeps at most 7/8 of its power-of-two bucket count full and starts probing
    // at `hash & (buckets - 1)`.
    let buckets = (map.capacity() / 7 * 8).next_power_of_two();
    let shift = buckets.trailing_zeros().saturating_sub(BIN_BITS);
    let bin = |k: &K| (map.hasher().hash_one(k) as usize & (buckets - 1)) >> shift;
    let mut starts = vec![0usize; 1 << BIN_BITS];
    let bins: Vec<u16> = pairs
        .iter()
        .map(|(k, _)| {
            let b = bin(k);
            starts[b] += 1;
            b as u16
        })
        .collect();
    let mut at = 0;
    for s in starts.iter_mut() {
        let n = *s;
        *s = at;
        at += n;
    }
    let mut sorted: Vec<(K, V)> = vec![pairs[0]; pairs.len()];
    for (p, b) in pairs.iter().zip(bins) {
        let slot = &mut starts[b as usize];
        sorted[*slot] = *p;
        *slot += 1;
    }
    map.extend(sorted);
    map
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
    /// Sync cursors: for (volume set, peer), the peer's LSN up to which its records of
    /// that volume set are applied here. Ordered by volume set, so one volume set's
    /// cursors are a range.
    pub(crate) sync_cursors: BTreeMap<(VolumeSetId, StoreId), Lsn>,
    /// All volume sets in listing orders and by name.
    pub(crate) vs_index: VsIndex,
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
                self.vs_index.insert(&vs);
                let old = self.volume_sets.insert(
                    vs.id,
                    VsRow {
                        vs,
                        snapshots: RankedSet::default(),
                        branch_order: BTreeSet::new(),
                        branches_by_name: Map::default(),
                        tip_roots: BTreeMap::new(),
                        volumes: BTreeSet::new(),
                    },
                );
                debug_assert!(old.is_none(), "validated: a new volume set");
            }
            Event::UpdateVolumeSet { id, new, .. } => {
                if let Some(row) = self.volume_sets.get_mut(id) {
                    let vs = &mut row.vs;
                    self.vs_index.rename(*id, &vs.name, &new.name);
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
                    self.vs_index.resize(*id, row.vs.size, *size);
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
                    self.move_tip(*branch, last.id, true);
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
                if let Some(vs) = self.volume_sets.get_mut(&volume.volume_set) {
                    vs.volumes.insert(volume.id.clone());
                }
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
            } => self.move_tip(*branch, *new_tip, false),
            Event::SyncApplied {
                peer,
                volume_set,
                through,
                ..
            } => {
                let c = self.sync_cursors.entry((*volume_set, *peer)).or_default();
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
            .get(&(vs, peer))
            .copied()
            .unwrap_or(Lsn::ZERO)
    }

    /// The sync cursors of one volume set: (peer, the peer's LSN), by peer. O(log n + answer).
    pub(crate) fn cursors_of(&self, vs: VolumeSetId) -> impl Iterator<Item = (StoreId, Lsn)> + '_ {
        self.sync_cursors
            .range((vs, StoreId(uuid::Uuid::nil()))..)
            .take_while(move |((v, _), _)| *v == vs)
            .map(|((_, peer), lsn)| (*peer, *lsn))
    }

    /// Every sync cursor held here: (peer, volume set, the peer's LSN), sorted.
    pub fn sync_cursors(&self) -> Vec<(StoreId, VolumeSetId, Lsn)> {
        let mut out: Vec<_> = self
            .sync_cursors
            .iter()
            .map(|((vs, peer), lsn)| (*peer, *vs, *lsn))
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
            vs.snapshots.insert((s.created, s.id));
        }
    }

    /// Counts a branch tip at `tip` in its root's tree (`add`), or stops counting it.
    fn count_tip(&mut self, volume_set: VolumeSetId, tip: SnapshotId, add: bool) {
        let Some(root) = self.snapshots.get(&tip).map(|r| r.root) else {
            return;
        };
        let Some(vs) = self.volume_sets.get_mut(&volume_set) else {
            return;
        };
        if add {
            *vs.tip_roots.entry(root).or_default() += 1;
        } else if let Some(n) = vs.tip_roots.get_mut(&root) {
            *n -= 1;
            if *n == 0 {
                vs.tip_roots.remove(&root);
            }
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
        self.count_tip(volume_set, tip, true);
        if let Some(vs) = self.volume_sets.get_mut(&volume_set) {
            vs.branch_order.insert((name.to_string(), id));
            if !name.is_empty() {
                vs.branches_by_name.insert(name.to_string(), id);
            }
        }
    }

    /// Moves a branch's tip; `same_tree`: the new tip is known to be in the old one's tree
    /// (an extension), so the tip counts per root stay as they are.
    fn move_tip(&mut self, branch: BranchId, tip: SnapshotId, same_tree: bool) {
        if let Some(row) = self.branches.get_mut(&branch) {
            if self.by_tip.get(&row.tip) == Some(&branch) {
                self.by_tip.remove(&row.tip);
            }
            let (vs, old) = (row.volume_set, row.tip);
            row.tip = tip;
            self.by_tip.insert(tip, branch);
            // Only a move to another tree changes the counts.
            let root = |s: &SnapshotId| self.snapshots.get(s).map(|r| r.root);
            if !same_tree && root(&old) != root(&tip) {
                self.count_tip(vs, old, false);
                self.count_tip(vs, tip, true);
            }
        }
    }

    fn remove_branch(&mut self, id: BranchId) {
        if let Some(row) = self.branches.remove(&id) {
            if self.by_tip.get(&row.tip) == Some(&id) {
                self.by_tip.remove(&row.tip);
            }
            self.count_tip(row.volume_set, row.tip, false);
            if let Some(vs) = self.volume_sets.get_mut(&row.volume_set) {
                vs.branch_order.remove(&(row.name.clone(), id));
                if vs.branches_by_name.get(&row.name) == Some(&id) {
                    vs.branches_by_name.remove(&row.name);
                }
            }
        }
    }

    /// O(k log n) for k snapshots: nothing here looks at the rest of the volume set.
    fn delete_snapshots(&mut self, volume_set: VolumeSetId, ids: &[SnapshotId]) {
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
                if let Some(vs) = self.volume_sets.get_mut(&volume_set) {
                    vs.snapshots.remove(&(row.created, *id));
                }
            }
        }
    }

    fn delete_volume(&mut self, id: &VolumeId) {
        if let Some(v) = self.volumes.remove(id) {
            if let Some(vs) = self.volume_sets.get_mut(&v.volume_set) {
                vs.volumes.remove(id);
            }
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

    /// O(what the volume set holds, times log n): the indexes name every object to remove.
    fn delete_volume_set(&mut self, id: VolumeSetId) {
        // A deleted volume set that syncs in again must come in whole: forget its cursors.
        let peers: Vec<StoreId> = self.cursors_of(id).map(|(peer, _)| peer).collect();
        for peer in peers {
            self.sync_cursors.remove(&(id, peer));
        }
        let Some(row) = self.volume_sets.remove(&id) else {
            return;
        };
        self.vs_index.remove(&row.vs);
        for (_, b) in &row.branch_order {
            if let Some(br) = self.branches.remove(b) {
                if self.by_tip.get(&br.tip) == Some(b) {
                    self.by_tip.remove(&br.tip);
                }
            }
        }
        // A bush is only ever imported for a root of its volume set and goes with it, so
        // removing the roots' bushes removes all of the volume set's.
        for (_, s) in row.snapshots.iter() {
            if let Some(r) = self.snapshots.remove(s) {
                if r.parent.is_none() {
                    self.bushes.remove(s);
                }
            }
        }
        for v in &row.volumes {
            self.delete_volume(v);
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
        vs.last_snapshot_time = row.snapshots.last().map(|(t, _)| *t);
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
