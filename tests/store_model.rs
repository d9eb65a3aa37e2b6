//! Model-based property test of the [`Store`] API.
//!
//! Random operation sequences run on a real store (in a temporary directory, with small
//! log limits so segments rotate) and on a plain in-memory model written here from
//! `reference-semantics.md` alone: maps of volume sets, snapshots with parent links,
//! branches with name and tip, bushes and volumes. No log, no code from `src/state`.
//!
//! * After every operation the outcome agrees: both Ok (with the same returned ids,
//!   conflict entries or deleted snapshots), or both the same error variant (and, where
//!   the variant names one, the same snapshot, volume set, volume or branch).
//! * Every few operations, after each reopen and at the end, every query agrees: volume
//!   sets (default query), snapshot ids, snapshots, branches with their tips, tips by name,
//!   snapshots by branch, bushes, volumes, counts, and "not found" for deleted ids.
//!   Also blob negotiation (find-non-missing, request-blob-diff) along every branch.
//! * `canonical_dump` is identical before and after every reopen (replay determinism),
//!   and `as_of(lsn)` gives back the states checked earlier (replay of a log prefix).
//!
//! Where the reference leaves a choice open the model follows the store's documented one:
//! a delete that leaves a new tip gives it the name of the one named branch removed; and
//! when one call breaks several rules, the error reported is the first in the order
//! arguments, existence, then conflicts (mirrored, so that the variant can be compared).
//! Half the cases run with buffered durability, half with fsync per call.
//!
//! Ids are generated here, deterministically from the case's salt, except the branch ids
//! the store makes itself: a fork returns its id; a delete that leaves a new tip is looked
//! up by the tip the model predicts. A failing case is shrunk by proptest and reported
//! with the trace of resolved operations. `PROPTEST_CASES` overrides the number of cases
//! (default 32), `PROPTEST_RNG_SEED` replays a run (the seed is printed on failure).

use std::borrow::Borrow;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::{Debug, Display};
use std::time::Instant;

use mdslog::state::query::CanonicalDump;
use mdslog::*;
use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, RngSeed, TestCaseError, TestRunner};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

// ---- Rules of the reference, written out independently ---------------------------------

const NAME_MAX: usize = 255;
const DESC_MAX: usize = 64 * 1024;
const ATTR_MAX: usize = 16 * 1024;
/// `LogOptions::record_bytes_max` in this test. Generated records are either far below
/// it or (on purpose) far above it.
const RECORD_MAX: usize = 16 * 1024;
/// A description this long makes a record that the log refuses.
const HUGE: usize = 40_000;

fn text_ok(s: &str, max: usize) -> bool {
    s.len() <= max && !s.chars().any(char::is_control)
}

fn desc_ok(s: &str) -> bool {
    s.len() <= DESC_MAX
        && !s
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
}

fn attrs_ok(a: &Attrs) -> bool {
    a.len() <= 1024
        && a.iter()
            .all(|(k, v)| !k.is_empty() && text_ok(k, ATTR_MAX) && v.len() <= ATTR_MAX)
}

fn branch_name_ok(s: &str) -> bool {
    text_ok(s, NAME_MAX) && !s.contains([':', '*']) && s.trim() == s
}

fn people_ok(p: [&String; 4]) -> bool {
    p.iter().all(|s| text_ok(s, NAME_MAX))
}

fn vs_fields_ok(v: &VolumeSet) -> bool {
    !v.name.trim().is_empty()
        && text_ok(&v.name, NAME_MAX)
        && text_ok(&v.prefix, NAME_MAX)
        && desc_ok(&v.description)
        && people_ok([&v.creator, &v.creator_name, &v.owner, &v.owner_name])
        && attrs_ok(&v.attrs)
}

fn snap_fields_ok(s: &Snapshot) -> bool {
    text_ok(&s.name, NAME_MAX)
        && desc_ok(&s.description)
        && people_ok([&s.creator, &s.creator_name, &s.owner, &s.owner_name])
        && text_ok(&s.blob.0, NAME_MAX)
        && attrs_ok(&s.attrs)
}

/// Snapshots compare on volume set, id, name, description, owner, creator, attrs, parent.
fn snap_same(a: &Snapshot, b: &Snapshot) -> bool {
    (
        a.volume_set,
        a.id,
        &a.name,
        &a.description,
        &a.owner,
        &a.creator,
        &a.attrs,
        a.parent,
    ) == (
        b.volume_set,
        b.id,
        &b.name,
        &b.description,
        &b.owner,
        &b.creator,
        &b.attrs,
        b.parent,
    )
}

/// Volume sets compare on name, prefix, description, id, creator, owner, attrs.
fn vs_same(a: &VolumeSet, b: &VolumeSet) -> bool {
    (
        &a.name,
        &a.prefix,
        &a.description,
        a.id,
        &a.creator,
        &a.owner,
        &a.attrs,
    ) == (
        &b.name,
        &b.prefix,
        &b.description,
        b.id,
        &b.creator,
        &b.owner,
        &b.attrs,
    )
}

/// Every writable field of a snapshot: without an initial an update is an unconditional
/// write, so it is a no-op only when none of them differs.
fn snap_writable_same(a: &Snapshot, b: &Snapshot) -> bool {
    snap_same(a, b)
        && (&a.creator_name, &a.owner_name, a.last_modified)
            == (&b.creator_name, &b.owner_name, b.last_modified)
}

/// Every writable field of a volume set (see [`snap_writable_same`]).
fn vs_writable_same(a: &VolumeSet, b: &VolumeSet) -> bool {
    vs_same(a, b)
        && (&a.creator_name, &a.owner_name, a.last_modified)
            == (&b.creator_name, &b.owner_name, b.last_modified)
}

/// The three-way table (target, current, initial), row by row; no initial: unconditional
/// (`tgt_eq_cur` then compares every writable field).
fn three_way(
    tgt_eq_cur: bool,
    cur_eq_init: Option<bool>,
    tgt_eq_init: Option<bool>,
) -> ResolveStatus {
    use ResolveStatus::*;
    match cur_eq_init {
        None if tgt_eq_cur => NoAction,
        None => UseCurrent,
        Some(true) if tgt_eq_cur => NoAction,
        Some(true) => UseTargetNoConflict,
        Some(false) if tgt_eq_init == Some(true) => UseCurrent,
        Some(false) if tgt_eq_cur => UseTargetNoConflict,
        Some(false) => UseTargetConflict,
    }
}

/// The error the model predicts: the variant, and what it names where that is one id.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ek {
    Invalid,
    VsNotFound(VolumeSetId),
    VsExists(VolumeSetId),
    SnapNotFound(SnapshotId),
    BranchNotFound,
    BranchExists(String, BranchId),
    BranchIdExists(BranchId),
    VolNotFound(VolumeId),
    VolExists(VolumeId),
    MountInUse(String),
    HaveBlob(SnapshotId),
    NoBlob(SnapshotId),
    ImportMismatch,
    NotATip(SnapshotId),
    HasChildren(SnapshotId, u32),
    InUse(SnapshotId, u32),
    BushNotFound(SnapshotId),
    BushExists(SnapshotId),
    TooLarge,
    Other(String),
}

fn kind_of(e: &Error) -> Ek {
    match e {
        Error::InvalidArgument(_) => Ek::Invalid,
        Error::VolumeSetNotFound(v) => Ek::VsNotFound(*v),
        Error::VolumeSetAlreadyExists(v) => Ek::VsExists(*v),
        Error::SnapshotNotFound(s) => Ek::SnapNotFound(*s),
        Error::BranchNotFound { .. } => Ek::BranchNotFound,
        Error::BranchAlreadyExists { name, existing, .. } => {
            Ek::BranchExists(name.clone(), *existing)
        }
        Error::BranchIdAlreadyExists(b) => Ek::BranchIdExists(*b),
        Error::VolumeNotFound(v) => Ek::VolNotFound(v.clone()),
        Error::VolumeAlreadyExists(v) => Ek::VolExists(v.clone()),
        Error::MountPathInUse(p) => Ek::MountInUse(p.clone()),
        Error::AlreadyHaveBlob(s) => Ek::HaveBlob(*s),
        Error::NoBlob(s) => Ek::NoBlob(*s),
        Error::SnapshotImportMismatch(_) => Ek::ImportMismatch,
        Error::NotATip(s) => Ek::NotATip(*s),
        Error::HasChildren { snapshot, children } => Ek::HasChildren(*snapshot, *children),
        Error::SnapshotInUse { snapshot, volumes } => Ek::InUse(*snapshot, *volumes),
        Error::BushNotFound(s) => Ek::BushNotFound(*s),
        Error::BushAlreadyExists(s) => Ek::BushExists(*s),
        Error::RecordTooLarge { .. } => Ek::TooLarge,
        other => Ek::Other(other.to_string()),
    }
}

type Mr<T> = std::result::Result<T, Ek>;

// ---- The model ------------------------------------------------------------------------

/// A snapshot's last-modified time: exact, or (after `update_snapshot`, which stamps
/// "now") somewhere in the window around the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    At(Timestamp),
    Between(Timestamp, Timestamp),
}

#[derive(Debug, Clone)]
struct MSnap {
    vs: VolumeSetId,
    parent: Option<SnapshotId>,
    name: String,
    description: String,
    attrs: Attrs,
    creator: String,
    creator_name: String,
    owner: String,
    owner_name: String,
    created: Timestamp,
    modified: When,
    size: u64,
    blob: String,
}

impl MSnap {
    fn of(s: &Snapshot) -> MSnap {
        MSnap {
            vs: s.volume_set,
            parent: s.parent,
            name: s.name.clone(),
            description: s.description.clone(),
            attrs: s.attrs.clone(),
            creator: s.creator.clone(),
            creator_name: s.creator_name.clone(),
            owner: s.owner.clone(),
            owner_name: s.owner_name.clone(),
            created: s.created,
            modified: When::At(s.last_modified),
            size: s.size,
            blob: s.blob.0.clone(),
        }
    }
}

#[derive(Debug, Clone)]
struct MBranch {
    id: BranchId,
    vs: VolumeSetId,
    name: String,
    tip: SnapshotId,
}

#[derive(Debug, Clone)]
struct MVs {
    /// Creation order, for picking (ids may be random).
    seq: u64,
    /// The stored fields; derived ones are computed on read.
    vs: VolumeSet,
}

/// Derived facts, computed once per full check.
struct Derived {
    children: HashMap<SnapshotId, u32>,
    tips: HashMap<SnapshotId, u64>,
}

impl Derived {
    fn children(&self, s: SnapshotId) -> u32 {
        self.children.get(&s).copied().unwrap_or(0)
    }
}

#[derive(Default)]
struct Model {
    vss: BTreeMap<VolumeSetId, MVs>,
    snaps: BTreeMap<SnapshotId, MSnap>,
    /// Keyed by creation order: store-made branch ids are random.
    branches: BTreeMap<u64, MBranch>,
    bushes: BTreeMap<SnapshotId, Bush>,
    volumes: BTreeMap<VolumeId, Volume>,
    seq: u64,
    /// Deleted ids (some come back: a deleted id may be used again, and must then start
    /// from a clean slate).
    dead_vss: Vec<VolumeSetId>,
    dead_snaps: Vec<SnapshotId>,
    dead_volumes: Vec<Volume>,
}

/// Stands for a branch id until the store's one is known.
const NO_ID: BranchId = BranchId(Uuid::nil());

impl Model {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn derived(&self) -> Derived {
        let mut children = HashMap::new();
        for s in self.snaps.values() {
            if let Some(p) = s.parent {
                *children.entry(p).or_insert(0) += 1;
            }
        }
        let tips = self.branches.iter().map(|(k, b)| (b.tip, *k)).collect();
        Derived { children, tips }
    }

    fn children(&self, s: SnapshotId) -> u32 {
        self.snaps.values().filter(|x| x.parent == Some(s)).count() as u32
    }

    fn branch_at(&self, tip: SnapshotId) -> Option<u64> {
        self.branches
            .iter()
            .find(|(_, b)| b.tip == tip)
            .map(|(k, _)| *k)
    }

    /// The named branch (empty names are not unique and name nothing).
    fn named(&self, vs: VolumeSetId, name: &str) -> Option<u64> {
        if name.is_empty() {
            return None;
        }
        self.branches
            .iter()
            .find(|(_, b)| b.vs == vs && b.name == name)
            .map(|(k, _)| *k)
    }

    fn volumes_on(&self, s: SnapshotId) -> u32 {
        self.volumes.values().filter(|v| v.base == Some(s)).count() as u32
    }

    fn depth(&self, s: SnapshotId) -> u32 {
        let mut d = 1;
        let mut at = s;
        while let Some(p) = self.snaps[&at].parent {
            d += 1;
            at = p;
        }
        d
    }

    fn root(&self, s: SnapshotId) -> SnapshotId {
        let mut at = s;
        while let Some(p) = self.snaps[&at].parent {
            at = p;
        }
        at
    }

    /// A snapshot as the API should return it. `got`: the store's copy, whose
    /// last-modified time is taken when it lies in the model's window.
    fn view(&self, d: &Derived, id: SnapshotId, got: Option<&Snapshot>) -> Snapshot {
        let s = &self.snaps[&id];
        let branch = d.tips.get(&id).map(|k| &self.branches[k]);
        let last_modified = match s.modified {
            When::At(t) => t,
            When::Between(a, b) => got
                .map(|g| g.last_modified)
                .filter(|t| a <= *t && *t <= b)
                .unwrap_or(Timestamp(i64::MIN)),
        };
        Snapshot {
            id,
            volume_set: s.vs,
            parent: s.parent,
            name: s.name.clone(),
            description: s.description.clone(),
            attrs: s.attrs.clone(),
            creator: s.creator.clone(),
            creator_name: s.creator_name.clone(),
            owner: s.owner.clone(),
            owner_name: s.owner_name.clone(),
            created: s.created,
            last_modified,
            size: s.size,
            blob: BlobId(s.blob.clone()),
            depth: self.depth(id),
            num_children: d.children(id),
            is_tip: branch.is_some(),
            branch_name: branch
                .filter(|b| !b.name.is_empty())
                .map(|b| b.name.clone()),
        }
    }

    fn view1(&self, id: SnapshotId) -> Snapshot {
        self.view(&self.derived(), id, None)
    }

    fn vs_view(&self, id: VolumeSetId) -> Option<VolumeSet> {
        let mut v = self.vss.get(&id)?.vs.clone();
        v.num_snapshots = self.snaps.values().filter(|s| s.vs == id).count() as u64;
        v.num_branches = self.branches.values().filter(|b| b.vs == id).count() as u64;
        v.last_snapshot_time = self
            .snaps
            .values()
            .filter(|s| s.vs == id)
            .map(|s| s.created)
            .max();
        Some(v)
    }

    fn vs_list(&self) -> Vec<VolumeSetId> {
        let mut v: Vec<(u64, VolumeSetId)> = self.vss.iter().map(|(id, m)| (m.seq, *id)).collect();
        v.sort();
        v.into_iter().map(|x| x.1).collect()
    }

    fn snaps_in(&self, vs: VolumeSetId) -> Vec<SnapshotId> {
        self.snaps
            .iter()
            .filter(|(_, s)| s.vs == vs)
            .map(|(id, _)| *id)
            .collect()
    }

    fn all_snaps(&self) -> Vec<SnapshotId> {
        self.snaps.keys().copied().collect()
    }

    fn names_in(&self, vs: VolumeSetId) -> Vec<String> {
        self.branches
            .values()
            .filter(|b| b.vs == vs && !b.name.is_empty())
            .map(|b| b.name.clone())
            .collect()
    }

    /// Blob negotiation: every candidate (oldest first) must be known; the newest with a
    /// blob is the diff base, none: start from empty.
    fn newest_with_blob(&self, candidates: &[SnapshotId]) -> Mr<BlobBase> {
        if let Some(c) = candidates.iter().find(|c| !self.snaps.contains_key(c)) {
            return Err(Ek::SnapNotFound(*c));
        }
        let base = candidates
            .iter()
            .rev()
            .find(|c| !self.snaps[c].blob.is_empty());
        Ok(match base {
            Some(c) => BlobBase {
                base: Some(*c),
                base_blob: BlobId(self.snaps[c].blob.clone()),
            },
            None => BlobBase {
                base: None,
                base_blob: BlobId::nil(),
            },
        })
    }

    // ---- Mutations: validate everything first, then change the model ----------------

    fn import_vs(&mut self, vs: &VolumeSet) -> Mr<()> {
        if self.vss.contains_key(&vs.id) {
            return Err(Ek::VsExists(vs.id));
        }
        if !vs_fields_ok(vs) {
            return Err(Ek::Invalid);
        }
        let mut v = vs.clone();
        v.num_snapshots = 0;
        v.num_branches = 0;
        v.last_snapshot_time = None;
        let seq = self.next_seq();
        self.vss.insert(vs.id, MVs { seq, vs: v });
        Ok(())
    }

    fn update_vs(
        &mut self,
        cur: &VolumeSet,
        init: Option<&VolumeSet>,
    ) -> Mr<Option<ResolveStatus>> {
        let t = self.vs_view(cur.id).ok_or(Ek::VsNotFound(cur.id))?;
        let tgt_eq_cur = if init.is_some() {
            vs_same(&t, cur)
        } else {
            vs_writable_same(&t, cur)
        };
        let st = three_way(
            tgt_eq_cur,
            init.map(|i| vs_same(cur, i)),
            init.map(|i| vs_same(&t, i)),
        );
        match st {
            ResolveStatus::NoAction => Ok(None),
            ResolveStatus::UseCurrent => {
                if !vs_fields_ok(cur) {
                    return Err(Ek::Invalid);
                }
                let v = &mut self.vss.get_mut(&cur.id).expect("checked").vs;
                v.name.clone_from(&cur.name);
                v.prefix.clone_from(&cur.prefix);
                v.description.clone_from(&cur.description);
                v.attrs.clone_from(&cur.attrs);
                v.creator.clone_from(&cur.creator);
                v.creator_name.clone_from(&cur.creator_name);
                v.owner.clone_from(&cur.owner);
                v.owner_name.clone_from(&cur.owner_name);
                v.last_modified = cur.last_modified;
                Ok(None)
            }
            other => Ok(Some(other)),
        }
    }

    fn set_vs_size(&mut self, id: VolumeSetId, size: u64) -> Mr<()> {
        self.vss.get_mut(&id).ok_or(Ek::VsNotFound(id))?.vs.size = size;
        Ok(())
    }

    fn delete_vs(&mut self, id: VolumeSetId) -> Mr<()> {
        self.vss.remove(&id).ok_or(Ek::VsNotFound(id))?;
        self.dead_vss.push(id);
        let gone: Vec<SnapshotId> = self.snaps_in(id);
        for s in &gone {
            self.snaps.remove(s);
        }
        self.dead_snaps.extend(gone);
        self.branches.retain(|_, b| b.vs != id);
        self.bushes.retain(|_, b| b.volume_set != id);
        let (gone, kept): (BTreeMap<VolumeId, Volume>, _) = std::mem::take(&mut self.volumes)
            .into_iter()
            .partition(|(_, v)| v.volume_set == id);
        self.volumes = kept;
        self.dead_volumes.extend(gone.into_values());
        Ok(())
    }

    /// The chain rules: one volume set that exists, no repeats, each the parent of the
    /// next, existing snapshots skipped (they must match), the first new one's parent
    /// existing in the same volume set. Returns the volume set and the new snapshots.
    fn chain(&self, snaps: &[Snapshot]) -> Mr<(VolumeSetId, Vec<Snapshot>)> {
        let vs = snaps[0].volume_set;
        if !self.vss.contains_key(&vs) {
            return Err(Ek::VsNotFound(vs));
        }
        let mut seen = BTreeSet::new();
        let mut fresh = Vec::new();
        for (i, s) in snaps.iter().enumerate() {
            if s.volume_set != vs
                || !seen.insert(s.id)
                || (i > 0 && s.parent != Some(snaps[i - 1].id))
            {
                return Err(Ek::Invalid);
            }
            if let Some(e) = self.snaps.get(&s.id) {
                if e.parent != s.parent || e.vs != s.volume_set {
                    return Err(Ek::ImportMismatch);
                }
                continue;
            }
            if i == 0 {
                if let Some(p) = s.parent {
                    match self.snaps.get(&p) {
                        None => return Err(Ek::SnapNotFound(p)),
                        Some(ps) if ps.vs != vs => return Err(Ek::Invalid),
                        Some(_) => {}
                    }
                }
            }
            if !snap_fields_ok(s) {
                return Err(Ek::Invalid);
            }
            fresh.push(s.clone());
        }
        Ok((vs, fresh))
    }

    fn too_large(fresh: &[Snapshot]) -> bool {
        fresh.iter().map(|s| s.description.len()).sum::<usize>() > RECORD_MAX
    }

    /// Fork (a new branch id, recorded once the store returns it) or import (`given`: the
    /// branch id, which must be new). Returns the new branch (by creation order), `None`
    /// for the empty no-op.
    fn fork(&mut self, name: &str, snaps: &[Snapshot], given: Option<BranchId>) -> Mr<Option<u64>> {
        if snaps.is_empty() {
            return Ok(None);
        }
        if !branch_name_ok(name) {
            return Err(Ek::Invalid);
        }
        let (vs, fresh) = self.chain(snaps)?;
        if let Some(id) = given.filter(|id| self.branches.values().any(|b| b.id == *id)) {
            return Err(Ek::BranchIdExists(id));
        }
        if let Some(k) = self.named(vs, name) {
            return Err(Ek::BranchExists(name.to_string(), self.branches[&k].id));
        }
        let tip = snaps[snaps.len() - 1].id;
        if self.branch_at(tip).is_some() {
            // At most one branch per tip.
            return Err(Ek::Invalid);
        }
        if Self::too_large(&fresh) {
            return Err(Ek::TooLarge);
        }
        for s in &fresh {
            self.snaps.insert(s.id, MSnap::of(s));
        }
        let seq = self.next_seq();
        self.branches.insert(
            seq,
            MBranch {
                id: given.unwrap_or(NO_ID),
                vs,
                name: name.to_string(),
                tip,
            },
        );
        Ok(Some(seq))
    }

    fn extend(&mut self, snaps: &[Snapshot]) -> Mr<()> {
        if snaps.is_empty() {
            return Ok(());
        }
        if snaps[0].parent.is_none() {
            return Err(Ek::Invalid);
        }
        let (_, fresh) = self.chain(snaps)?;
        let Some(first) = fresh.first() else {
            return Ok(());
        };
        let parent = first
            .parent
            .expect("the first has a parent, later ones chain");
        let k = self.branch_at(parent).ok_or(Ek::NotATip(parent))?;
        if Self::too_large(&fresh) {
            return Err(Ek::TooLarge);
        }
        for s in &fresh {
            self.snaps.insert(s.id, MSnap::of(s));
        }
        self.branches.get_mut(&k).expect("found").tip = fresh[fresh.len() - 1].id;
        Ok(())
    }

    fn rename(&mut self, vs: VolumeSetId, old: &str, new: &str) -> Mr<()> {
        if !self.vss.contains_key(&vs) {
            return Err(Ek::VsNotFound(vs));
        }
        if !branch_name_ok(new) || new.is_empty() || old == new {
            return Err(Ek::Invalid);
        }
        let k = self.named(vs, old).ok_or(Ek::BranchNotFound)?;
        if let Some(o) = self.named(vs, new) {
            return Err(Ek::BranchExists(new.to_string(), self.branches[&o].id));
        }
        self.branches.get_mut(&k).expect("found").name = new.to_string();
        Ok(())
    }

    /// A batch of three-way snapshot updates. Returns the entries where target won.
    /// `stamp`: the window `update_snapshot` stamps last-modified in.
    fn update_snapshots(
        &mut self,
        pairs: &[SnapshotPair],
        stamp: Option<When>,
    ) -> Mr<Vec<(SnapshotId, ResolveStatus)>> {
        let d = self.derived();
        let mut seen = BTreeSet::new();
        let mut writes = Vec::new();
        let mut returned = Vec::new();
        for (cur, init) in pairs {
            if !seen.insert(cur.id) {
                return Err(Ek::Invalid);
            }
            if !self.snaps.contains_key(&cur.id) {
                return Err(Ek::SnapNotFound(cur.id));
            }
            let t = self.view(&d, cur.id, None);
            // `update_snapshot` stamps "now": then last-modified differs.
            let tgt_eq_cur = match init {
                Some(_) => snap_same(&t, cur),
                None => stamp.is_none() && snap_writable_same(&t, cur),
            };
            let st = three_way(
                tgt_eq_cur,
                init.as_ref().map(|i| snap_same(cur, i)),
                init.as_ref().map(|i| snap_same(&t, i)),
            );
            // The blob may only go from nil to a value.
            let blob = if !cur.blob.is_nil() && cur.blob != t.blob {
                if !t.blob.is_nil() {
                    return Err(Ek::HaveBlob(cur.id));
                }
                if !text_ok(&cur.blob.0, NAME_MAX) {
                    return Err(Ek::Invalid);
                }
                Some(cur.blob.0.clone())
            } else {
                None
            };
            let write_meta = st == ResolveStatus::UseCurrent;
            if write_meta
                && (!snap_fields_ok(cur)
                    || cur.parent != t.parent
                    || cur.volume_set != t.volume_set)
            {
                return Err(Ek::Invalid);
            }
            if write_meta || blob.is_some() {
                writes.push((cur.clone(), write_meta, blob));
            }
            if matches!(
                st,
                ResolveStatus::UseTargetNoConflict | ResolveStatus::UseTargetConflict
            ) {
                returned.push((cur.id, st));
            }
        }
        for (cur, write_meta, blob) in writes {
            let s = self.snaps.get_mut(&cur.id).expect("checked");
            if write_meta {
                s.name = cur.name;
                s.description = cur.description;
                s.attrs = cur.attrs;
                s.creator = cur.creator;
                s.creator_name = cur.creator_name;
                s.owner = cur.owner;
                s.owner_name = cur.owner_name;
                s.modified = stamp.unwrap_or(When::At(cur.last_modified));
            }
            if let Some(b) = blob {
                s.blob = b;
            }
        }
        Ok(returned)
    }

    fn set_blob(&mut self, snap: SnapshotId, blob: &BlobId, size: u64) -> Mr<()> {
        let s = self.snaps.get_mut(&snap).ok_or(Ek::SnapNotFound(snap))?;
        if !text_ok(&blob.0, NAME_MAX) {
            return Err(Ek::Invalid);
        }
        s.blob = blob.0.clone();
        s.size = size;
        Ok(())
    }

    /// Deletes snapshots (no orphans, no volume on one); `new_tip`, left without children
    /// and branch, becomes the tip of a new branch keeping the name of the one named
    /// branch removed. Returns that branch (by creation order).
    fn delete_snapshots(
        &mut self,
        ids: &[SnapshotId],
        new_tip: Option<SnapshotId>,
    ) -> Mr<Option<u64>> {
        if ids.is_empty() {
            return Ok(None);
        }
        let gone: BTreeSet<SnapshotId> = ids.iter().copied().collect();
        if gone.len() != ids.len() {
            return Err(Ek::Invalid);
        }
        let vs = self.snaps.get(&ids[0]).ok_or(Ek::SnapNotFound(ids[0]))?.vs;
        for id in ids {
            let s = self.snaps.get(id).ok_or(Ek::SnapNotFound(*id))?;
            if s.vs != vs {
                return Err(Ek::Invalid);
            }
            let n = self.volumes_on(*id);
            if n > 0 {
                return Err(Ek::InUse(*id, n));
            }
        }
        let left = |m: &Model, s: SnapshotId| {
            m.snaps
                .iter()
                .filter(|(c, x)| x.parent == Some(s) && !gone.contains(c))
                .count() as u32
        };
        for id in ids {
            let n = left(self, *id);
            if n > 0 {
                return Err(Ek::HasChildren(*id, n));
            }
        }
        let mut make = None;
        if let Some(t) = new_tip {
            if gone.contains(&t) {
                return Err(Ek::Invalid);
            }
            let ts = self.snaps.get(&t).ok_or(Ek::SnapNotFound(t))?;
            if ts.vs != vs {
                return Err(Ek::Invalid);
            }
            if left(self, t) == 0 && self.branch_at(t).is_none() {
                let names: Vec<&String> = self
                    .branches
                    .values()
                    .filter(|b| gone.contains(&b.tip) && !b.name.is_empty())
                    .map(|b| &b.name)
                    .collect();
                let name = if names.len() == 1 {
                    names[0].clone()
                } else {
                    String::new()
                };
                make = Some((t, name));
            }
        }
        self.branches.retain(|_, b| !gone.contains(&b.tip));
        for id in ids {
            self.snaps.remove(id);
            self.bushes.remove(id);
        }
        self.dead_snaps.extend(ids);
        Ok(make.map(|(tip, name)| {
            let seq = self.next_seq();
            self.branches.insert(
                seq,
                MBranch {
                    id: NO_ID,
                    vs,
                    name,
                    tip,
                },
            );
            seq
        }))
    }

    /// Deletes a branch the way the original client did: from the tip back while a
    /// snapshot has no other child, no volume and is no other branch's tip. A tip that
    /// cannot go says why: it has children, or (childless) a volume is based on it.
    fn delete_branch(&mut self, vs: VolumeSetId, name: &str) -> Mr<(Vec<SnapshotId>, Option<u64>)> {
        if !self.vss.contains_key(&vs) {
            return Err(Ek::VsNotFound(vs));
        }
        let k = self.named(vs, name).ok_or(Ek::BranchNotFound)?;
        let tip = self.branches[&k].tip;
        let mut doomed = Vec::new();
        let mut at = Some(tip);
        while let Some(s) = at {
            let other_children = self.children(s) - u32::from(!doomed.is_empty());
            if other_children > 0
                || self.volumes_on(s) > 0
                || (s != tip && self.branch_at(s).is_some())
            {
                break;
            }
            doomed.push(s);
            at = self.snaps[&s].parent;
        }
        if doomed.is_empty() {
            let (children, volumes) = (self.children(tip), self.volumes_on(tip));
            return Err(if children == 0 && volumes > 0 {
                Ek::InUse(tip, volumes)
            } else {
                Ek::HasChildren(tip, children)
            });
        }
        let made = self.delete_snapshots(&doomed, at)?;
        Ok((doomed, made))
    }

    fn import_bush(&mut self, b: &Bush) -> Mr<()> {
        if !self.vss.contains_key(&b.volume_set) {
            return Err(Ek::VsNotFound(b.volume_set));
        }
        let s = self.snaps.get(&b.root).ok_or(Ek::SnapNotFound(b.root))?;
        if s.parent.is_some() || s.vs != b.volume_set {
            return Err(Ek::Invalid);
        }
        if self.bushes.contains_key(&b.root) {
            return Err(Ek::BushExists(b.root));
        }
        self.bushes.insert(b.root, b.clone());
        Ok(())
    }

    fn delete_bush(&mut self, root: SnapshotId) -> Mr<()> {
        self.bushes
            .remove(&root)
            .map(|_| ())
            .ok_or(Ek::BushNotFound(root))
    }

    fn import_volume(&mut self, v: &Volume) -> Mr<()> {
        if v.id.0.trim().is_empty()
            || !text_ok(&v.id.0, NAME_MAX)
            || !text_ok(&v.name, NAME_MAX)
            || !text_ok(&v.mount_path, 4096)
            || !attrs_ok(&v.attrs)
        {
            return Err(Ek::Invalid);
        }
        if self.volumes.contains_key(&v.id) {
            return Err(Ek::VolExists(v.id.clone()));
        }
        if !self.vss.contains_key(&v.volume_set) {
            return Err(Ek::VsNotFound(v.volume_set));
        }
        if let Some(b) = v.base {
            if self.snaps.get(&b).ok_or(Ek::SnapNotFound(b))?.vs != v.volume_set {
                return Err(Ek::Invalid);
            }
        }
        if !v.mount_path.is_empty() && self.volumes.values().any(|o| o.mount_path == v.mount_path) {
            return Err(Ek::MountInUse(v.mount_path.clone()));
        }
        self.volumes.insert(v.id.clone(), v.clone());
        Ok(())
    }

    fn update_volume(&mut self, v: &Volume) -> Mr<()> {
        let o = self
            .volumes
            .get_mut(&v.id)
            .ok_or(Ek::VolNotFound(v.id.clone()))?;
        if !text_ok(&v.name, NAME_MAX) || !attrs_ok(&v.attrs) {
            return Err(Ek::Invalid);
        }
        o.name.clone_from(&v.name);
        o.attrs.clone_from(&v.attrs);
        Ok(())
    }

    fn delete_volume(&mut self, id: &VolumeId) -> Mr<()> {
        let v = self.volumes.remove(id).ok_or(Ek::VolNotFound(id.clone()))?;
        self.dead_volumes.push(v);
        Ok(())
    }
}

// ---- Comparing ------------------------------------------------------------------------

fn short(x: &impl Display) -> String {
    x.to_string().chars().take(8).collect()
}

fn clip(s: String) -> String {
    if s.len() <= 6000 {
        return s;
    }
    let mut end = 6000;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

fn outcome<T: Debug, U: Debug>(
    what: &str,
    got: &Result<T>,
    want: &Mr<U>,
) -> std::result::Result<(), String> {
    match (got, want) {
        (Ok(_), Ok(_)) => Ok(()),
        (Err(e), Err(k)) if kind_of(e) == *k => Ok(()),
        (Ok(g), Err(k)) => Err(clip(format!(
            "{what}: store returned Ok({g:?}), model predicts {k:?}"
        ))),
        (Err(e), Ok(w)) => Err(clip(format!(
            "{what}: store returned error \"{e}\", model predicts Ok({w:?})"
        ))),
        (Err(e), Err(k)) => Err(format!(
            "{what}: store returned error \"{e}\" ({:?}), model predicts {k:?}",
            kind_of(e)
        )),
    }
}

/// Where two values' debug forms first differ, with some context.
fn diff(got: &impl Debug, want: &impl Debug) -> String {
    let (g, w) = (format!("{got:?}"), format!("{want:?}"));
    let at = g
        .char_indices()
        .zip(w.chars())
        .find(|((_, a), b)| a != b)
        .map(|((i, _), _)| i);
    let at = at.unwrap_or(g.len().min(w.len()));
    let window = |s: &str| {
        let mut from = at.saturating_sub(200);
        while !s.is_char_boundary(from) {
            from -= 1;
        }
        let mut to = (at + 200).min(s.len());
        while !s.is_char_boundary(to) {
            to += 1;
        }
        format!(
            "{}{}{}",
            if from > 0 { "..." } else { "" },
            &s[from..to],
            if to < s.len() { "..." } else { "" }
        )
    };
    format!(
        "first difference at byte {at}\n  store: {}\n  model: {}",
        window(&g),
        window(&w)
    )
}

fn eq<T: PartialEq + Debug>(what: &str, got: &T, want: &T) -> std::result::Result<(), String> {
    if got == want {
        return Ok(());
    }
    Err(format!("{what} differs: {}", diff(got, want)))
}

fn eq_list<T: PartialEq + Debug>(
    what: &str,
    got: &[T],
    want: &[T],
) -> std::result::Result<(), String> {
    if got == want {
        return Ok(());
    }
    if got.len() != want.len() {
        return Err(clip(format!(
            "{what}: store has {} items, model {}\n  store: {got:?}\n  model: {want:?}",
            got.len(),
            want.len()
        )));
    }
    let i = (0..got.len())
        .find(|i| got[*i] != want[*i])
        .expect("some item differs");
    Err(format!(
        "{what}: item {i} differs: {}",
        diff(&got[i], &want[i])
    ))
}

fn eq_err<T: Debug>(what: &str, got: Result<T>, want: Ek) -> std::result::Result<(), String> {
    outcome(what, &got, &Err::<(), Ek>(want))
}

// ---- Operations -----------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    NewVs,
    Fork,
    Extend,
    Rename,
    Update,
    UpdateOne,
    SetBlob,
    DeleteBranch,
    DeleteSnaps,
    Bush,
    Volume,
    DeleteVs,
    UpdateVs,
    Reopen,
}

const WEIGHTS: [(Kind, u32); 14] = [
    (Kind::NewVs, 6),
    (Kind::Fork, 18),
    (Kind::Extend, 18),
    (Kind::Rename, 6),
    (Kind::Update, 8),
    (Kind::UpdateOne, 3),
    (Kind::SetBlob, 4),
    (Kind::DeleteBranch, 6),
    (Kind::DeleteSnaps, 7),
    (Kind::Bush, 6),
    (Kind::Volume, 8),
    (Kind::DeleteVs, 1),
    (Kind::UpdateVs, 4),
    (Kind::Reopen, 2),
];

/// One operation: what, and the seed of every choice it makes against the current state.
#[derive(Debug, Clone, Copy)]
struct Op {
    kind: Kind,
    seed: u64,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let total: u32 = WEIGHTS.iter().map(|w| w.1).sum();
    (0..total, any::<u64>()).prop_map(|(mut k, seed)| {
        let kind = WEIGHTS
            .iter()
            .find(|(_, w)| {
                let hit = k < *w;
                k = k.saturating_sub(*w);
                hit
            })
            .expect("k < total")
            .0;
        Op { kind, seed }
    })
}

/// Operations in a case: uniform in 1..=OPS_MAX.
const OPS_MAX: usize = 800;
const CHECK_EVERY: usize = 10;
const BASE_TIME: i64 = 1_700_000_000_000_000;

const BRANCH_NAMES: &[&str] = &["", "", "", "master", "dev", "feature", "x", "a b", "ü-π"];
const BAD_BRANCH_NAMES: &[&str] = &["a:b", "st*r", " lead", "trail ", "bell\u{7}"];
const VS_NAMES: &[&str] = &["db", "web", "db", "logs", "ü data"];
const BAD_VS_NAMES: &[&str] = &["", "   ", "ctl\u{1}"];
const SNAP_NAMES: &[&str] = &["", "", "s", "nightly", "v1.0", "ü"];
const PEOPLE: &[&str] = &["", "alice", "bob"];

fn pick_str(r: &mut SmallRng, v: &[&str]) -> String {
    v.choose(r).expect("non-empty").to_string()
}

fn branch_name(r: &mut SmallRng) -> String {
    match r.gen_range(0..1000) {
        0..=599 => pick_str(r, BRANCH_NAMES),
        600..=959 => format!("b{}", r.gen_range(0..1000)),
        960..=989 => pick_str(r, BAD_BRANCH_NAMES),
        _ => "n".repeat(256),
    }
}

fn snap_name(r: &mut SmallRng) -> String {
    match r.gen_range(0..1000) {
        0..=984 => pick_str(r, SNAP_NAMES),
        985..=994 => "tab\tname".into(),
        _ => "s".repeat(256),
    }
}

fn vs_name(r: &mut SmallRng) -> String {
    match r.gen_range(0..100) {
        0..=91 => pick_str(r, VS_NAMES),
        92..=97 => pick_str(r, BAD_VS_NAMES),
        _ => "v".repeat(256),
    }
}

fn attrs(r: &mut SmallRng) -> Attrs {
    let mut a = Attrs::new();
    for _ in 0..r.gen_range(0..=2) {
        let k = if r.gen_bool(0.01) {
            String::new()
        } else {
            pick_str(r, &["k1", "k2", "k3", "ü"])
        };
        a.insert(k, pick_str(r, &["", "v", "w", "ü"]));
    }
    a
}

fn description(r: &mut SmallRng) -> String {
    match r.gen_range(0..1000) {
        0..=799 => String::new(),
        800..=849 => "multi\nline\tdesc".into(),
        // Bigger records, so segments rotate (far below the record limit even when an
        // update record carries three of them twice).
        850..=994 => "d".repeat(r.gen_range(200..1500)),
        _ => "nul\u{0}".into(),
    }
}

fn person(r: &mut SmallRng) -> String {
    pick_str(r, PEOPLE)
}

fn init_of(
    r: &mut SmallRng,
    target: &Snapshot,
    cur: &Snapshot,
    other: Snapshot,
) -> Option<Snapshot> {
    match r.gen_range(0..100) {
        0..=39 => None,
        40..=69 => Some(target.clone()),
        70..=84 => Some(other),
        _ => Some(cur.clone()),
    }
}

#[derive(Default, Debug)]
struct Stats {
    runs: u64,
    ops: u64,
    ok: u64,
    err: u64,
    reopens: u64,
    checks: u64,
    segments_max: usize,
    snapshots_max: usize,
    per_kind: BTreeMap<String, (u64, u64)>,
    errors: BTreeMap<String, u64>,
}

struct Harness {
    dir: tempfile::TempDir,
    options: StoreOptions,
    store: Option<Store>,
    m: Model,
    salt: u64,
    n: u64,
    trace: Vec<String>,
    ok: u64,
    err: u64,
    reopens: u64,
    checks: u64,
    /// Per kind of operation: how many calls returned Ok and Err.
    per_kind: BTreeMap<String, (u64, u64)>,
    /// How often each error variant came back.
    errors: BTreeMap<String, u64>,
    cur_kind: String,
    /// States checked against the model, with the LSN they were at: replaying the log up
    /// to that LSN (`as_of`) must give them back.
    history: Vec<(Lsn, CanonicalDump)>,
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

type Res = std::result::Result<(), String>;

impl Harness {
    fn st(&self) -> &Store {
        self.store.as_ref().expect("open")
    }

    fn uuid(&mut self) -> Uuid {
        self.n += 1;
        let a = splitmix(self.salt ^ self.n);
        let b = splitmix(a ^ self.n.rotate_left(32));
        Uuid::from_u128((u128::from(a) << 64) | u128::from(b))
    }

    fn note<T: Debug, E: Borrow<Error>, U>(
        &mut self,
        line: String,
        got: &std::result::Result<T, E>,
        want: &Mr<U>,
    ) {
        let g = match got {
            Ok(v) => {
                self.ok += 1;
                clip(format!("Ok({v:?})"))
            }
            Err(e) => {
                self.err += 1;
                let k = kind_of(e.borrow());
                let name = format!("{k:?}");
                *self
                    .errors
                    .entry(format!(
                        "{}:{}",
                        self.cur_kind,
                        name.split('(').next().unwrap_or_default()
                    ))
                    .or_default() += 1;
                format!("Err({k:?})")
            }
        };
        let w = match want {
            Ok(_) => "Ok".to_string(),
            Err(k) => format!("Err({k:?})"),
        };
        self.trace.push(format!("{line} -> store {g}, model {w}"));
    }

    /// A live volume set mostly; sometimes a deleted or unknown one.
    fn pick_vs(&mut self, r: &mut SmallRng) -> VolumeSetId {
        let live = self.m.vs_list();
        if !live.is_empty() && !r.gen_bool(0.05) {
            return *live.choose(r).expect("non-empty");
        }
        if let Some(d) = self
            .m
            .dead_vss
            .choose(r)
            .copied()
            .filter(|_| r.gen_bool(0.5))
        {
            return d;
        }
        VolumeSetId(self.uuid())
    }

    fn dead_snap(&mut self, r: &mut SmallRng) -> SnapshotId {
        if let Some(d) = self
            .m
            .dead_snaps
            .choose(r)
            .copied()
            .filter(|_| r.gen_bool(0.5))
        {
            return d;
        }
        SnapshotId(self.uuid())
    }

    fn any_snap(&mut self, r: &mut SmallRng) -> SnapshotId {
        match self.m.all_snaps().choose(r).copied() {
            Some(s) if !r.gen_bool(0.05) => s,
            _ => self.dead_snap(r),
        }
    }

    fn new_snap(
        &mut self,
        r: &mut SmallRng,
        vs: VolumeSetId,
        parent: Option<SnapshotId>,
    ) -> Snapshot {
        let id = match self.m.dead_snaps.choose(r).copied() {
            // The id of a deleted snapshot, free again.
            Some(d) if r.gen_bool(0.03) && !self.m.snaps.contains_key(&d) => d,
            _ => SnapshotId(self.uuid()),
        };
        let mut s = Snapshot::new(id, vs, parent);
        s.name = snap_name(r);
        s.attrs = attrs(r);
        s.description = description(r);
        s.creator = person(r);
        s.creator_name = person(r);
        s.owner = person(r);
        s.owner_name = person(r);
        s.created = Timestamp(BASE_TIME + r.gen_range(0..10_000_000));
        s.last_modified = Timestamp(s.created.0 + r.gen_range(0..1000));
        s.size = r.gen_range(0..1 << 40);
        s.blob = if r.gen_bool(0.5) {
            BlobId::nil()
        } else {
            BlobId(format!("blob-{}", r.gen::<u32>()))
        };
        if r.gen_bool(0.15) {
            // Derived fields are ignored on write.
            s.depth = r.gen();
            s.num_children = r.gen();
            s.is_tip = true;
            s.branch_name = Some("junk".into());
        }
        s
    }

    fn new_vs_value(&mut self, r: &mut SmallRng, id: VolumeSetId) -> VolumeSet {
        let mut v = VolumeSet::new(id, vs_name(r));
        v.prefix = pick_str(r, &["", "acme", "acme/team"]);
        v.description = description(r);
        v.attrs = attrs(r);
        v.creator = person(r);
        v.creator_name = person(r);
        v.owner = person(r);
        v.owner_name = person(r);
        v.created = Timestamp(BASE_TIME + r.gen_range(0..10_000_000));
        v.last_modified = Timestamp(v.created.0 + r.gen_range(0..1000));
        v.size = r.gen_range(0..1 << 40);
        if r.gen_bool(0.2) {
            v.num_snapshots = 42;
            v.num_branches = 7;
            v.last_snapshot_time = Some(Timestamp(1));
        }
        v
    }

    fn mutate_snap(&mut self, r: &mut SmallRng, s: &Snapshot) -> Snapshot {
        let mut c = s.clone();
        for _ in 0..r.gen_range(0..=2) {
            match r.gen_range(0..100) {
                0..=19 => c.name = pick_str(r, SNAP_NAMES),
                20..=39 => c.attrs = attrs(r),
                40..=49 => c.description = pick_str(r, &["", "new desc", "x\ny"]),
                50..=59 => c.creator = person(r),
                60..=67 => c.owner = person(r),
                68..=75 => c.creator_name = person(r),
                76..=79 => c.owner_name = person(r),
                80..=89 => c.blob = BlobId(format!("blob-{}", r.gen::<u16>())),
                90..=96 => c.description = "e".repeat(r.gen_range(100..1000)),
                97..=98 => {
                    c.parent = if c.parent.is_some() {
                        None
                    } else {
                        Some(SnapshotId(self.uuid()))
                    }
                }
                _ => c.name = "bad\u{1}".into(),
            }
        }
        if r.gen_bool(0.5) {
            c.last_modified = Timestamp(BASE_TIME + 20_000_000 + r.gen_range(0..10_000_000));
        }
        c
    }

    fn mutate_vs(&mut self, r: &mut SmallRng, v: &VolumeSet) -> VolumeSet {
        let mut c = v.clone();
        for _ in 0..r.gen_range(0..=2) {
            match r.gen_range(0..100) {
                0..=19 => c.name = vs_name(r),
                20..=29 => c.prefix = pick_str(r, &["", "acme", "other"]),
                30..=39 => c.description = pick_str(r, &["", "about", "two\nlines"]),
                40..=59 => c.attrs = attrs(r),
                60..=69 => c.creator = person(r),
                70..=79 => c.owner = person(r),
                80..=89 => c.creator_name = person(r),
                _ => c.owner_name = person(r),
            }
        }
        if r.gen_bool(0.5) {
            c.last_modified = Timestamp(BASE_TIME + 20_000_000 + r.gen_range(0..10_000_000));
        }
        c
    }

    /// Records the store's id for a branch the model created, found at its tip.
    fn adopt_branch_id(&mut self, seq: u64) -> Res {
        let b = self.m.branches[&seq].clone();
        let got = self
            .st()
            .get_branches(&BranchQuery::all(b.vs))
            .map_err(|e| format!("get_branches: {e}"))?;
        let found = got.iter().find(|x| x.tip == b.tip).ok_or_else(|| {
            format!(
                "model predicts a new branch {:?} at {}, the store has no branch there",
                b.name,
                short(&b.tip)
            )
        })?;
        self.m.branches.get_mut(&seq).expect("present").id = found.id;
        Ok(())
    }

    fn step(&mut self, i: usize, op: Op) -> Res {
        let mut r = SmallRng::seed_from_u64(op.seed);
        let r = &mut r;
        // Nothing to work on yet: make a volume set first.
        let kind = if self.m.vss.is_empty() && op.kind != Kind::Reopen {
            Kind::NewVs
        } else {
            op.kind
        };
        let (ok, err) = (self.ok, self.err);
        self.cur_kind = format!("{kind:?}");
        let res = self.step_kind(i, kind, r);
        let e = self.per_kind.entry(format!("{kind:?}")).or_default();
        e.0 += self.ok - ok;
        e.1 += self.err - err;
        res
    }

    fn step_kind(&mut self, i: usize, kind: Kind, r: &mut SmallRng) -> Res {
        match kind {
            Kind::NewVs => self.op_new_vs(i, r),
            Kind::Fork => self.op_fork(i, r),
            Kind::Extend => self.op_extend(i, r),
            Kind::Rename => self.op_rename(i, r),
            Kind::Update => self.op_update(i, r),
            Kind::UpdateOne => self.op_update_one(i, r),
            Kind::SetBlob => self.op_set_blob(i, r),
            Kind::DeleteBranch => self.op_delete_branch(i, r),
            Kind::DeleteSnaps => self.op_delete_snaps(i, r),
            Kind::Bush => self.op_bush(i, r),
            Kind::Volume => self.op_volume(i, r),
            Kind::DeleteVs => self.op_delete_vs(i, r),
            Kind::UpdateVs => self.op_update_vs(i, r),
            Kind::Reopen => {
                self.trace.push(format!("#{i} reopen"));
                self.reopen()
            }
        }
    }

    fn op_new_vs(&mut self, i: usize, r: &mut SmallRng) -> Res {
        let mode = r.gen_range(0..100);
        if mode < 15 {
            // The `VolumeSet` helper: a fresh random id, times now.
            let want_vs = self.new_vs_value(r, VolumeSetId(Uuid::nil()));
            let got = self.st().create_volume_set(
                &want_vs.name,
                &want_vs.prefix,
                want_vs.attrs.clone(),
                &want_vs.description,
                &want_vs.owner,
                &want_vs.creator,
            );
            let want = match &got {
                Ok(vs) => {
                    let mut expect = want_vs.clone();
                    expect.id = vs.id;
                    expect.creator_name = String::new();
                    expect.owner_name = String::new();
                    expect.size = 0;
                    (expect.created, expect.last_modified) = (vs.created, vs.last_modified);
                    (
                        expect.num_snapshots,
                        expect.num_branches,
                        expect.last_snapshot_time,
                    ) = (0, 0, None);
                    eq("create_volume_set result", vs, &expect)?;
                    self.m.import_vs(vs)
                }
                Err(_) if vs_fields_ok(&want_vs) => Ok(()),
                Err(_) => Err(Ek::Invalid),
            };
            self.note(
                format!("#{i} create_volume_set {:?}", want_vs.name),
                &got.as_ref().map(|v| short(&v.id)),
                &want,
            );
            return outcome("create_volume_set", &got, &want);
        }
        let live = self.m.vs_list();
        let dead = self
            .m
            .dead_vss
            .iter()
            .copied()
            .filter(|d| !self.m.vss.contains_key(d))
            .collect::<Vec<_>>();
        let id = match (live.choose(r), dead.choose(r)) {
            (Some(v), _) if mode < 27 => *v,
            // The id of a deleted volume set, free again.
            (_, Some(d)) if mode < 35 => *d,
            _ => VolumeSetId(self.uuid()),
        };
        let vs = self.new_vs_value(r, id);
        let got = self.st().import_volume_set(&vs);
        let want = self.m.import_vs(&vs);
        self.note(
            format!("#{i} import_volume_set {} {:?}", short(&id), vs.name),
            &got,
            &want,
        );
        outcome("import_volume_set", &got, &want)
    }

    /// A snapshot for the one-snapshot helpers: they set no creator or owner, and stamp
    /// both times with "now" (here the start of the call's window, until it is known).
    fn helper_snap(
        &mut self,
        r: &mut SmallRng,
        vs: VolumeSetId,
        parent: Option<SnapshotId>,
        t0: Timestamp,
    ) -> Snapshot {
        let mut s = self.new_snap(r, vs, parent);
        s.creator = String::new();
        s.creator_name = String::new();
        s.owner = String::new();
        s.owner_name = String::new();
        s.created = t0;
        s.last_modified = t0;
        s.depth = 0;
        s.num_children = 0;
        s.is_tip = false;
        s.branch_name = None;
        s
    }

    /// After a helper made `got`: its times lie in the call's window and are equal; the
    /// model takes them, then must agree on the whole snapshot.
    fn pin_times(&mut self, what: &str, got: &Snapshot, t0: Timestamp, t1: Timestamp) -> Res {
        if got.created < t0 || got.created > t1 || got.last_modified != got.created {
            return Err(format!(
                "{what}: created {:?} / last-modified {:?}, not both \"now\" in [{t0:?}, {t1:?}]",
                got.created, got.last_modified
            ));
        }
        let s = self
            .m
            .snaps
            .get_mut(&got.id)
            .ok_or_else(|| format!("{what}: model lacks {}", short(&got.id)))?;
        s.created = got.created;
        s.modified = When::At(got.created);
        eq(what, got, &self.m.view1(got.id))
    }

    /// `snapshot_fork` / `snapshot_extend`: one new snapshot, times now.
    fn op_helper(&mut self, i: usize, r: &mut SmallRng) -> Res {
        let t0 = Timestamp::now();
        if r.gen_bool(0.5) {
            let vs = self.pick_vs(r);
            let parent = match r.gen_range(0..100) {
                0..=39 => None,
                40..=94 => self.m.snaps_in(vs).choose(r).copied(),
                _ => self.m.all_snaps().choose(r).copied(),
            };
            let s = self.helper_snap(r, vs, parent, t0);
            let name = branch_name(r);
            let got = self.st().snapshot_fork(
                vs,
                s.id,
                &name,
                parent,
                s.blob.clone(),
                s.attrs.clone(),
                &s.name,
                s.size,
                &s.description,
            );
            let t1 = Timestamp::now();
            let want = self.m.fork(&name, std::slice::from_ref(&s), None);
            let line = format!(
                "#{i} snapshot_fork {name:?} in {} parent {:?} id {}",
                short(&vs),
                parent.map(|p| short(&p)),
                short(&s.id)
            );
            self.note(line, &got.as_ref().map(|g| short(&g.id)), &want);
            outcome("snapshot_fork", &got, &want)?;
            if let (Ok(g), Ok(Some(seq))) = (&got, &want) {
                self.adopt_branch_id(*seq)?;
                self.pin_times("snapshot_fork", g, t0, t1)?;
            }
            return Ok(());
        }
        let tips: Vec<SnapshotId> = self.m.branches.values().map(|b| b.tip).collect();
        let parent = match r.gen_range(0..100) {
            0..=69 => tips
                .choose(r)
                .copied()
                .unwrap_or_else(|| SnapshotId(Uuid::nil())),
            70..=89 => self.any_snap(r),
            _ => self.dead_snap(r),
        };
        let vs = self
            .m
            .snaps
            .get(&parent)
            .map(|p| p.vs)
            .unwrap_or(VolumeSetId(Uuid::nil()));
        let s = self.helper_snap(r, vs, Some(parent), t0);
        let got = self.st().snapshot_extend(
            s.id,
            parent,
            s.blob.clone(),
            s.attrs.clone(),
            &s.name,
            s.size,
            &s.description,
        );
        let t1 = Timestamp::now();
        let want = if self.m.snaps.contains_key(&parent) {
            self.m.extend(std::slice::from_ref(&s))
        } else {
            Err(Ek::SnapNotFound(parent))
        };
        self.note(
            format!(
                "#{i} snapshot_extend parent {} id {}",
                short(&parent),
                short(&s.id)
            ),
            &got.as_ref().map(|g| short(&g.id)),
            &want,
        );
        outcome("snapshot_extend", &got, &want)?;
        if let Ok(g) = &got {
            self.pin_times("snapshot_extend", g, t0, t1)?;
        }
        Ok(())
    }

    fn op_fork(&mut self, i: usize, r: &mut SmallRng) -> Res {
        if r.gen_bool(0.08) {
            return self.op_helper(i, r);
        }
        let vs = self.pick_vs(r);
        let in_vs = self.m.snaps_in(vs);
        let parent = match r.gen_range(0..100) {
            0..=39 => None,
            40..=89 => in_vs.choose(r).copied(),
            90..=94 => self.m.all_snaps().choose(r).copied(),
            _ => Some(self.dead_snap(r)),
        };
        let len = if r.gen_bool(0.03) {
            0
        } else {
            r.gen_range(1..=3)
        };
        let mut chain: Vec<Snapshot> = Vec::new();
        let mut p = parent;
        for _ in 0..len {
            let s = self.new_snap(r, vs, p);
            p = Some(s.id);
            chain.push(s);
        }
        let mut note = "";
        match r.gen_range(0..100) {
            0..=3 if chain.len() >= 2 => {
                chain[1].parent = Some(SnapshotId(self.uuid()));
                note = " (broken chain)";
            }
            4..=6 if !chain.is_empty() => {
                let other = self.pick_vs(r);
                let l = chain.len() - 1;
                chain[l].volume_set = other;
                note = " (mixed volume sets)";
            }
            7..=8 if !chain.is_empty() => {
                chain.push(chain[0].clone());
                note = " (repeated snapshot)";
            }
            9..=18 => {
                if let Some(p) = parent.filter(|p| self.m.snaps.contains_key(p)) {
                    chain.insert(0, self.m.view1(p));
                    note = " (existing first)";
                }
            }
            19..=22 => {
                if let Some(s) = in_vs.choose(r) {
                    chain = vec![self.m.view1(*s)];
                    note = " (existing only)";
                }
            }
            23..=25 => {
                if let Some(s) = self.m.all_snaps().choose(r).copied() {
                    let mut v = self.m.view1(s);
                    v.parent = if v.parent.is_some() {
                        None
                    } else {
                        Some(SnapshotId(self.uuid()))
                    };
                    if let Some(c) = chain.first_mut() {
                        c.parent = Some(s);
                    }
                    chain.insert(0, v);
                    note = " (existing with another parent)";
                }
            }
            26..=27 if !chain.is_empty() => {
                chain[0].description = "D".repeat(HUGE);
                note = " (oversize record)";
            }
            _ => {}
        }
        let names = self.m.names_in(vs);
        let name = match names.choose(r) {
            Some(n) if r.gen_bool(0.15) => n.clone(),
            _ => branch_name(r),
        };
        let ids: Vec<String> = chain.iter().map(|s| short(&s.id)).collect();
        let line = format!(
            "{name:?} in {} parent {:?} chain {ids:?}{note}",
            short(&vs),
            parent.map(|p| short(&p))
        );
        if r.gen_bool(0.15) {
            // The sync variant: the caller names the branch id (sometimes one in use).
            let existing: Vec<BranchId> = self.m.branches.values().map(|b| b.id).collect();
            let id = match existing.choose(r) {
                Some(b) if r.gen_bool(0.2) => *b,
                _ => BranchId(self.uuid()),
            };
            let got = self.st().import_branch(id, &name, &chain);
            let want = self.m.fork(&name, &chain, Some(id));
            self.note(
                format!("#{i} import_branch {} {line}", short(&id)),
                &got,
                &want,
            );
            return outcome("import_branch", &got, &want);
        }
        let got = self.st().fork_branch(&name, &chain);
        let want = self.m.fork(&name, &chain, None);
        self.note(format!("#{i} fork_branch {line}"), &got, &want);
        outcome("fork_branch", &got, &want)?;
        match (&got, &want) {
            (Ok(Some(bid)), Ok(Some(seq))) => self.m.branches.get_mut(seq).expect("made").id = *bid,
            (Ok(None), Ok(None)) | (Err(_), Err(_)) => {}
            (g, w) => {
                return Err(format!(
                    "fork_branch: store returned {g:?}, model predicts {w:?}"
                ))
            }
        }
        Ok(())
    }

    fn op_extend(&mut self, i: usize, r: &mut SmallRng) -> Res {
        let seqs: Vec<u64> = self.m.branches.keys().copied().collect();
        let Some(seq) = seqs.choose(r).copied() else {
            return self.op_fork(i, r);
        };
        let b = self.m.branches[&seq].clone();
        let mode = r.gen_range(0..100);
        let parent = if mode < 78 {
            Some(b.tip)
        } else if mode < 93 {
            let inner: Vec<SnapshotId> = self
                .m
                .snaps_in(b.vs)
                .into_iter()
                .filter(|s| self.m.branch_at(*s).is_none())
                .collect();
            Some(inner.choose(r).copied().unwrap_or(b.tip))
        } else if mode < 97 {
            Some(self.dead_snap(r))
        } else {
            None
        };
        let mut chain: Vec<Snapshot> = Vec::new();
        let mut p = parent;
        for _ in 0..r.gen_range(1..=3) {
            let s = self.new_snap(r, b.vs, p);
            p = Some(s.id);
            chain.push(s);
        }
        let mut note = "";
        if parent == Some(b.tip) && r.gen_bool(0.1) {
            chain.insert(0, self.m.view1(b.tip));
            note = " (tip first)";
        } else if r.gen_bool(0.02) {
            chain[0].description = "D".repeat(HUGE);
            note = " (oversize record)";
        }
        let got = self.st().extend_branch(&chain);
        let want = self.m.extend(&chain);
        let ids: Vec<String> = chain.iter().map(|s| short(&s.id)).collect();
        self.note(
            format!(
                "#{i} extend_branch {:?} (tip {}) parent {:?} chain {ids:?}{note}",
                b.name,
                short(&b.tip),
                parent.map(|p| short(&p))
            ),
            &got,
            &want,
        );
        outcome("extend_branch", &got, &want)
    }

    /// Mostly the volume set of a named branch (so there is a name to use).
    fn pick_vs_with_names(&mut self, r: &mut SmallRng) -> VolumeSetId {
        let named: Vec<VolumeSetId> = self
            .m
            .branches
            .values()
            .filter(|b| !b.name.is_empty())
            .map(|b| b.vs)
            .collect();
        match named.choose(r) {
            Some(vs) if r.gen_bool(0.9) => *vs,
            _ => self.pick_vs(r),
        }
    }

    fn op_rename(&mut self, i: usize, r: &mut SmallRng) -> Res {
        let vs = self.pick_vs_with_names(r);
        let names = self.m.names_in(vs);
        let old = match r.gen_range(0..10) {
            0..=7 if !names.is_empty() => names.choose(r).expect("non-empty").clone(),
            7 => String::new(),
            _ => pick_str(r, BRANCH_NAMES),
        };
        let new = match r.gen_range(0..20) {
            0..=2 if !names.is_empty() => names.choose(r).expect("non-empty").clone(),
            3 => old.clone(),
            4 => pick_str(r, BAD_BRANCH_NAMES),
            5..=7 => pick_str(r, BRANCH_NAMES),
            _ => format!("r{}", r.gen_range(0..1000)),
        };
        let got = self.st().rename_branch(vs, &old, &new);
        let want = self.m.rename(vs, &old, &new);
        self.note(
            format!("#{i} rename_branch in {} {old:?} -> {new:?}", short(&vs)),
            &got,
            &want,
        );
        outcome("rename_branch", &got, &want)
    }

    fn update_pairs(&mut self, r: &mut SmallRng, n: usize) -> Vec<SnapshotPair> {
        let mut pairs: Vec<SnapshotPair> = Vec::new();
        for k in 0..n {
            let id = match r.gen_range(0..100) {
                0..=1 => self.dead_snap(r),
                2..=3 if k > 0 => pairs[0].0.id,
                _ => self.any_snap(r),
            };
            let target = if self.m.snaps.contains_key(&id) {
                self.m.view1(id)
            } else {
                let vs = self.pick_vs(r);
                Snapshot::new(id, vs, None)
            };
            let cur = self.mutate_snap(r, &target);
            let other = self.mutate_snap(r, &target);
            let init = init_of(r, &target, &cur, other);
            pairs.push((cur, init));
        }
        pairs
    }

    fn pair_note(pairs: &[SnapshotPair]) -> Vec<String> {
        pairs
            .iter()
            .map(|(c, i)| format!("{}{}", short(&c.id), if i.is_some() { "+init" } else { "" }))
            .collect()
    }

    fn op_update(&mut self, i: usize, r: &mut SmallRng) -> Res {
        let n = r.gen_range(1..=3);
        let pairs = self.update_pairs(r, n);
        let before: HashMap<SnapshotId, Snapshot> = pairs
            .iter()
            .filter(|(c, _)| self.m.snaps.contains_key(&c.id))
            .map(|(c, _)| (c.id, self.m.view1(c.id)))
            .collect();
        let got = self.st().update_snapshots(&pairs);
        let want = self.m.update_snapshots(&pairs, None);
        let got_ids = got.as_ref().map(|v| {
            v.iter()
                .map(|c| (short(&c.target.id), c.status))
                .collect::<Vec<_>>()
        });
        self.note(
            format!("#{i} update_snapshots {:?}", Self::pair_note(&pairs)),
            &got_ids,
            &want,
        );
        outcome("update_snapshots", &got, &want)?;
        if let (Ok(g), Ok(w)) = (&got, &want) {
            let g2: Vec<(SnapshotId, ResolveStatus)> =
                g.iter().map(|c| (c.target.id, c.status)).collect();
            eq("update_snapshots returned entries", &g2, w)?;
            for c in g {
                // The returned target is this store's version before the call.
                let mut t = before[&c.target.id].clone();
                t.last_modified = c.target.last_modified;
                eq("returned target", &c.target, &t)?;
            }
        }
        Ok(())
    }

    fn op_update_one(&mut self, i: usize, r: &mut SmallRng) -> Res {
        let pairs = self.update_pairs(r, 1);
        let (cur, init) = pairs[0].clone();
        let t0 = Timestamp::now();
        let got = self.st().update_snapshot(&cur, init.as_ref());
        let t1 = Timestamp::now();
        let want = self.m.update_snapshots(&pairs, Some(When::Between(t0, t1)));
        let got_s = got.as_ref().map(|c| c.as_ref().map(|c| c.status));
        self.note(
            format!("#{i} update_snapshot {:?}", Self::pair_note(&pairs)),
            &got_s,
            &want,
        );
        outcome("update_snapshot", &got, &want)?;
        if let (Ok(g), Ok(w)) = (&got, &want) {
            eq(
                "update_snapshot returned entry",
                &g.as_ref().map(|c| (c.target.id, c.status)),
                &w.first().copied(),
            )?;
        }
        // Pin the stamped time once it is checked to lie in the window of the call.
        if let Some(When::Between(a, b)) = self.m.snaps.get(&cur.id).map(|s| s.modified) {
            let got = self
                .st()
                .get_snapshot(cur.id)
                .map_err(|e| format!("get_snapshot: {e}"))?
                .last_modified;
            if got < a || got > b {
                return Err(format!(
                    "update_snapshot stamped last-modified {got:?}, not in [{a:?}, {b:?}]"
                ));
            }
            self.m.snaps.get_mut(&cur.id).expect("present").modified = When::At(got);
        }
        Ok(())
    }

    fn op_set_blob(&mut self, i: usize, r: &mut SmallRng) -> Res {
        let id = self.any_snap(r);
        let blob = match r.gen_range(0..10) {
            0..=2 => BlobId::nil(),
            3 => BlobId::from("bad\u{1}"),
            _ => BlobId(format!("blob-{}", r.gen::<u32>())),
        };
        let size = r.gen_range(0..1 << 40);
        let got = self.st().set_blob_id_and_size(id, &blob, size);
        let want = self.m.set_blob(id, &blob, size);
        self.note(
            format!("#{i} set_blob_id_and_size {} {blob:?} {size}", short(&id)),
            &got,
            &want,
        );
        outcome("set_blob_id_and_size", &got, &want)
    }

    fn op_delete_branch(&mut self, i: usize, r: &mut SmallRng) -> Res {
        let vs = self.pick_vs_with_names(r);
        let names = self.m.names_in(vs);
        let name = match r.gen_range(0..100) {
            0..=84 if !names.is_empty() => names.choose(r).expect("non-empty").clone(),
            85..=89 => String::new(),
            _ => "no-such-branch".into(),
        };
        let got = self.st().delete_branch(vs, &name);
        let want = self.m.delete_branch(vs, &name);
        let got_ids = got
            .as_ref()
            .map(|v| v.iter().map(short).collect::<Vec<_>>());
        self.note(
            format!("#{i} delete_branch in {} {name:?}", short(&vs)),
            &got_ids,
            &want,
        );
        outcome("delete_branch", &got, &want)?;
        if let (Ok(g), Ok((w, made))) = (&got, &want) {
            eq("delete_branch deleted snapshots", g, w)?;
            if let Some(seq) = made {
                self.adopt_branch_id(*seq)?;
            }
        }
        Ok(())
    }

    fn op_delete_snaps(&mut self, i: usize, r: &mut SmallRng) -> Res {
        let all = self.m.all_snaps();
        let d = self.m.derived();
        let leaves: Vec<SnapshotId> = all
            .iter()
            .copied()
            .filter(|s| d.children(*s) == 0)
            .collect();
        let mut ids: Vec<SnapshotId> = Vec::new();
        match r.gen_range(0..100) {
            0..=69 => {
                if let Some(l) = leaves.choose(r).copied() {
                    ids.push(l);
                    let k = r.gen_range(1..=3);
                    while ids.len() < k {
                        match self.m.snaps[&ids[ids.len() - 1]].parent {
                            Some(p) if d.children(p) == 1 => ids.push(p),
                            _ => break,
                        }
                    }
                }
            }
            70..=84 => {
                if let Some(s) = all.choose(r).copied() {
                    ids.push(s);
                    if let Some(p) = self.m.snaps[&s].parent.filter(|_| r.gen_bool(0.5)) {
                        ids.push(p);
                    }
                }
            }
            85..=89 => {
                ids.push(self.dead_snap(r));
                if let Some(s) = leaves.choose(r).copied().filter(|_| r.gen_bool(0.5)) {
                    ids.insert(0, s);
                }
            }
            90..=93 => {}
            _ => {
                if let Some(l) = leaves.choose(r).copied() {
                    ids.extend([l, l]);
                }
            }
        }
        let top_parent = ids
            .last()
            .and_then(|s| self.m.snaps.get(s))
            .and_then(|s| s.parent);
        let new_tip = match r.gen_range(0..100) {
            0..=54 => top_parent,
            55..=74 => None,
            75..=89 => all.choose(r).copied(),
            _ => ids.first().copied(),
        };
        if r.gen_bool(0.5) {
            ids.shuffle(r);
        }
        let got = self.st().delete_snapshots(&ids, new_tip);
        let want = self.m.delete_snapshots(&ids, new_tip);
        let shown: Vec<String> = ids.iter().map(short).collect();
        self.note(
            format!(
                "#{i} delete_snapshots {shown:?} new tip {:?}",
                new_tip.map(|t| short(&t))
            ),
            &got,
            &want,
        );
        outcome("delete_snapshots", &got, &want)?;
        if let Ok(Some(seq)) = want {
            self.adopt_branch_id(seq)?;
        }
        Ok(())
    }

    fn op_bush(&mut self, i: usize, r: &mut SmallRng) -> Res {
        if r.gen_bool(0.65) {
            let roots: Vec<SnapshotId> = self
                .m
                .snaps
                .iter()
                .filter(|(_, s)| s.parent.is_none())
                .map(|(id, _)| *id)
                .collect();
            let data_server = r.gen_range(-3..100);
            let bush = match (r.gen_range(0..100), roots.choose(r).copied()) {
                (0..=74, Some(root)) => Bush {
                    root,
                    volume_set: self.m.snaps[&root].vs,
                    data_server,
                },
                (75..=84, _) | (0..=74, None) => {
                    let s = self.any_snap(r);
                    let vs = self
                        .m
                        .snaps
                        .get(&s)
                        .map(|x| x.vs)
                        .unwrap_or_else(|| VolumeSetId(Uuid::nil()));
                    Bush {
                        root: s,
                        volume_set: vs,
                        data_server,
                    }
                }
                (85..=89, Some(root)) => Bush {
                    root,
                    volume_set: self.pick_vs(r),
                    data_server,
                },
                (90..=94, _) => Bush {
                    root: self.dead_snap(r),
                    volume_set: self.pick_vs(r),
                    data_server,
                },
                (_, root) => {
                    let root = root.unwrap_or(SnapshotId(Uuid::nil()));
                    Bush {
                        root,
                        volume_set: VolumeSetId(self.uuid()),
                        data_server,
                    }
                }
            };
            let got = self.st().import_bush(&bush);
            let want = self.m.import_bush(&bush);
            self.note(
                format!(
                    "#{i} import_bush {} in {}",
                    short(&bush.root),
                    short(&bush.volume_set)
                ),
                &got,
                &want,
            );
            outcome("import_bush", &got, &want)
        } else {
            let bushes: Vec<SnapshotId> = self.m.bushes.keys().copied().collect();
            let root = match bushes.choose(r).copied() {
                Some(b) if r.gen_bool(0.7) => b,
                _ => self.any_snap(r),
            };
            let got = self.st().delete_bush(root);
            let want = self.m.delete_bush(root);
            self.note(format!("#{i} delete_bush {}", short(&root)), &got, &want);
            outcome("delete_bush", &got, &want)
        }
    }

    fn op_volume(&mut self, i: usize, r: &mut SmallRng) -> Res {
        let ids: Vec<VolumeId> = self.m.volumes.keys().cloned().collect();
        let mode = r.gen_range(0..100);
        if mode < 55 {
            let vs = self.pick_vs(r);
            let in_vs = self.m.snaps_in(vs);
            let base = match r.gen_range(0..100) {
                0..=29 => None,
                30..=89 => in_vs.choose(r).copied(),
                90..=94 => self.m.all_snaps().choose(r).copied(),
                _ => Some(self.dead_snap(r)),
            };
            self.n += 1;
            let dead = self.m.dead_volumes.choose(r).cloned();
            let id = match r.gen_range(0..100) {
                0..=79 => VolumeId(format!("vol-{}", self.n)),
                // The id of a deleted volume, free again (or live again: then a clash).
                80..=84 => dead
                    .as_ref()
                    .map(|d| d.id.clone())
                    .unwrap_or_else(|| VolumeId(format!("vol-{}", self.n))),
                85..=94 => ids
                    .choose(r)
                    .cloned()
                    .unwrap_or_else(|| VolumeId(format!("vol-{}", self.n))),
                _ => VolumeId(pick_str(r, &["", "  ", "bad\u{2}"])),
            };
            let paths: Vec<String> = self
                .m
                .volumes
                .values()
                .map(|v| v.mount_path.clone())
                .collect();
            let mount_path = match r.gen_range(0..100) {
                0..=69 => format!("/mnt/{}", self.n),
                70..=74 => dead.map(|d| d.mount_path).unwrap_or_default(),
                75..=84 => paths.choose(r).cloned().unwrap_or_default(),
                _ => String::new(),
            };
            let name = if r.gen_bool(0.03) {
                "bad\u{3}".into()
            } else {
                pick_str(r, &["vol", "", "work"])
            };
            let v = Volume {
                id,
                volume_set: vs,
                base,
                mount_path,
                attrs: attrs(r),
                created: Timestamp(BASE_TIME + r.gen_range(0..10_000_000)),
                size: r.gen_range(0..1 << 30),
                name,
            };
            let got = self.st().import_volume(&v);
            let want = self.m.import_volume(&v);
            self.note(
                format!(
                    "#{i} import_volume {:?} in {} base {:?} path {:?}",
                    v.id,
                    short(&vs),
                    base.map(|b| short(&b)),
                    v.mount_path
                ),
                &got,
                &want,
            );
            return outcome("import_volume", &got, &want);
        }
        let id = match ids.choose(r) {
            Some(v) if r.gen_bool(0.85) => v.clone(),
            _ => VolumeId::from("vol-missing"),
        };
        if mode < 80 {
            let got = self.st().delete_volume(&id);
            let want = self.m.delete_volume(&id);
            self.note(format!("#{i} delete_volume {id:?}"), &got, &want);
            return outcome("delete_volume", &got, &want);
        }
        let mut v = self.m.volumes.get(&id).cloned().unwrap_or_else(|| Volume {
            id: id.clone(),
            volume_set: VolumeSetId(Uuid::nil()),
            base: None,
            mount_path: String::new(),
            attrs: Attrs::new(),
            created: Timestamp(0),
            size: 0,
            name: String::new(),
        });
        v.name = if r.gen_bool(0.05) {
            "bad\u{4}".into()
        } else {
            pick_str(r, &["vol", "renamed", ""])
        };
        v.attrs = attrs(r);
        let got = self.st().update_volume(&v);
        let want = self.m.update_volume(&v);
        self.note(
            format!("#{i} update_volume {id:?} name {:?}", v.name),
            &got,
            &want,
        );
        outcome("update_volume", &got, &want)
    }

    fn op_delete_vs(&mut self, i: usize, r: &mut SmallRng) -> Res {
        let live = self.m.vs_list();
        let id = match live.choose(r) {
            Some(v) if r.gen_bool(0.9) => *v,
            _ => self.pick_vs(r),
        };
        let got = self.st().delete_volume_set(id);
        let want = self.m.delete_vs(id);
        self.note(
            format!("#{i} delete_volume_set {}", short(&id)),
            &got,
            &want,
        );
        outcome("delete_volume_set", &got, &want)
    }

    fn op_update_vs(&mut self, i: usize, r: &mut SmallRng) -> Res {
        let id = self.pick_vs(r);
        if r.gen_bool(0.3) {
            let size = r.gen_range(0..1 << 40);
            let got = self.st().set_volume_set_size(id, size);
            let want = self.m.set_vs_size(id, size);
            self.note(
                format!("#{i} set_volume_set_size {} {size}", short(&id)),
                &got,
                &want,
            );
            return outcome("set_volume_set_size", &got, &want);
        }
        let target = self
            .m
            .vs_view(id)
            .unwrap_or_else(|| VolumeSet::new(id, "ghost"));
        let cur = self.mutate_vs(r, &target);
        let init = match r.gen_range(0..100) {
            0..=39 => None,
            40..=69 => Some(target.clone()),
            70..=84 => Some(self.mutate_vs(r, &target)),
            _ => Some(cur.clone()),
        };
        let got = self.st().update_volume_set(&cur, init.as_ref());
        let want = self.m.update_vs(&cur, init.as_ref());
        let got_s = got.as_ref().map(|c| c.as_ref().map(|c| c.status));
        self.note(
            format!(
                "#{i} update_volume_set {} init {}",
                short(&id),
                init.is_some()
            ),
            &got_s,
            &want,
        );
        outcome("update_volume_set", &got, &want)?;
        if let (Ok(g), Ok(w)) = (&got, &want) {
            eq(
                "update_volume_set returned status",
                &g.as_ref().map(|c| c.status),
                w,
            )?;
            if let Some(c) = g {
                eq("returned target", &c.target, &target)?;
            }
        }
        Ok(())
    }

    /// Closes and reopens the store: the replayed state must be the same, and agree.
    fn reopen(&mut self) -> Res {
        let before = self
            .st()
            .canonical_dump()
            .map_err(|e| format!("canonical_dump: {e}"))?;
        self.store
            .take()
            .expect("open")
            .close()
            .map_err(|e| format!("close: {e}"))?;
        let store = Store::open(self.dir.path(), self.options.clone())
            .map_err(|e| format!("reopen: {e}"))?;
        let after = store
            .canonical_dump()
            .map_err(|e| format!("canonical_dump after reopen: {e}"))?;
        self.store = Some(store);
        self.reopens += 1;
        eq(
            "canonical_dump after reopen (volume sets)",
            &after.volume_sets,
            &before.volume_sets,
        )?;
        eq(
            "canonical_dump after reopen (snapshots)",
            &after.snapshots,
            &before.snapshots,
        )?;
        eq(
            "canonical_dump after reopen (branches)",
            &after.branches,
            &before.branches,
        )?;
        eq(
            "canonical_dump after reopen (bushes)",
            &after.bushes,
            &before.bushes,
        )?;
        eq(
            "canonical_dump after reopen (volumes)",
            &after.volumes,
            &before.volumes,
        )?;
        eq("canonical_dump after reopen", &after, &before)?;
        self.check_all("after reopen")
    }

    /// Keeps the current (checked) state and its LSN for [`Harness::check_history`].
    fn remember(&mut self) -> Res {
        let lsn = self
            .st()
            .read()
            .map_err(|e| format!("read: {e}"))?
            .applied_lsn();
        let dump = self
            .st()
            .canonical_dump()
            .map_err(|e| format!("canonical_dump: {e}"))?;
        self.history.push((lsn, dump));
        Ok(())
    }

    /// Replaying the log up to each remembered LSN gives the state remembered there.
    fn check_history(&self) -> Res {
        for (lsn, dump) in &self.history {
            let past = self
                .st()
                .as_of(*lsn)
                .map_err(|e| format!("as_of({lsn}): {e}"))?;
            eq(
                &format!("as_of({lsn}) canonical_dump"),
                &past.canonical_dump(),
                dump,
            )?;
        }
        Ok(())
    }

    /// Every query against the model.
    fn check_all(&mut self, when: &str) -> Res {
        self.checks += 1;
        let st = self.st();
        let m = &self.m;
        let d = m.derived();
        let q = |what: &str, e: Error| format!("{when}: {what}: unexpected error {e}");
        let w = |what: &str| format!("{when}: {what}");

        let dead_snaps: Vec<SnapshotId> = m
            .dead_snaps
            .iter()
            .rev()
            .filter(|d| !m.snaps.contains_key(d))
            .take(16)
            .copied()
            .collect();
        let dead_vss: Vec<VolumeSetId> = m
            .dead_vss
            .iter()
            .rev()
            .filter(|d| !m.vss.contains_key(d))
            .take(8)
            .copied()
            .collect();

        let got = st
            .get_volume_sets(&VolumeSetQuery::default())
            .map_err(|e| q("get_volume_sets", e))?;
        let want: Vec<VolumeSet> = m
            .vss
            .keys()
            .map(|id| m.vs_view(*id).expect("live"))
            .collect();
        eq_list(&w("get_volume_sets"), &got, &want)?;
        let counts = st.counts().map_err(|e| q("counts", e))?;
        let want_counts = (
            m.vss.len() as u64,
            m.snaps.len() as u64,
            m.branches.len() as u64,
            m.bushes.len() as u64,
            m.volumes.len() as u64,
        );
        eq(
            &w("counts"),
            &(
                counts.volume_sets,
                counts.snapshots,
                counts.branches,
                counts.bushes,
                counts.volumes,
            ),
            &want_counts,
        )?;

        for vs in m.vss.keys() {
            let vs = *vs;
            let got = st.get_volume_set(vs).map_err(|e| q("get_volume_set", e))?;
            eq(&w("get_volume_set"), &got, &m.vs_view(vs).expect("live"))?;

            let got: BTreeSet<SnapshotId> = st
                .get_snapshot_ids(vs)
                .map_err(|e| q("get_snapshot_ids", e))?
                .into_iter()
                .collect();
            let want: BTreeSet<SnapshotId> = m.snaps_in(vs).into_iter().collect();
            eq(&w("get_snapshot_ids"), &got, &want)?;

            let sq = SnapshotQuery {
                volume_set: Some(vs),
                ..SnapshotQuery::default()
            };
            let got = st.get_snapshots(&sq).map_err(|e| q("get_snapshots", e))?;
            let got_by_id: HashMap<SnapshotId, &Snapshot> = got.iter().map(|s| (s.id, s)).collect();
            let want: Vec<Snapshot> = m
                .snaps_in(vs)
                .into_iter()
                .map(|id| m.view(&d, id, got_by_id.get(&id).copied()))
                .collect();
            eq_list(&w("get_snapshots by volume set"), &got, &want)?;

            // Branches, each with its tip.
            let got = st
                .get_branches(&BranchQuery::all(vs))
                .map_err(|e| q("get_branches", e))?;
            let by_id: HashMap<BranchId, &Branch> = got.iter().map(|b| (b.id, b)).collect();
            let mut want: Vec<Branch> = m
                .branches
                .values()
                .filter(|b| b.vs == vs)
                .map(|b| Branch {
                    id: b.id,
                    volume_set: vs,
                    name: b.name.clone(),
                    tip: b.tip,
                    tip_snapshot: Some(m.view(
                        &d,
                        b.tip,
                        by_id.get(&b.id).and_then(|g| g.tip_snapshot.as_ref()),
                    )),
                    has_child: d.children(b.tip) > 0,
                })
                .collect();
            want.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
            eq_list(&w("get_branches"), &got, &want)?;

            for b in &want {
                let got = st.get_branch(vs, b.id).map_err(|e| q("get_branch", e))?;
                eq(&w("get_branch"), &got, b)?;

                // Blob negotiation for the tip, the branch's history (oldest first) as
                // candidates, now and then with an unknown one among them.
                let mut history = Vec::new();
                let mut at = m.snaps[&b.tip].parent;
                while let Some(s) = at {
                    history.push(s);
                    at = m.snaps[&s].parent;
                }
                history.reverse();
                if let Some(dead) = dead_snaps.first().filter(|_| history.len() % 3 == 2) {
                    history.insert(history.len() / 2, *dead);
                }
                let base = m.newest_with_blob(&history);
                let blob = BlobId(m.snaps[&b.tip].blob.clone());
                let want_find = if blob.is_nil() {
                    base.clone()
                } else {
                    Err(Ek::HaveBlob(b.tip))
                };
                let got = st.find_non_missing_snapshot(b.tip, &history);
                outcome(&w("find_non_missing_snapshot"), &got, &want_find)?;
                if let (Ok(g), Ok(wf)) = (&got, &want_find) {
                    eq(&w("find_non_missing_snapshot"), g, wf)?;
                }
                let want_diff = if blob.is_nil() {
                    Err(Ek::NoBlob(b.tip))
                } else {
                    base.map(|x| (x, blob))
                };
                let got = st.request_blob_diff(b.tip, &history);
                outcome(&w("request_blob_diff"), &got, &want_diff)?;
                if let (Ok(g), Ok(wd)) = (&got, &want_diff) {
                    eq(&w("request_blob_diff"), g, wd)?;
                }
                if b.name.is_empty() {
                    continue;
                }
                let got = st.get_tip(vs, &b.name).map_err(|e| q("get_tip", e))?;
                eq(
                    &w(&format!("get_tip {:?}", b.name)),
                    &got,
                    b.tip_snapshot.as_ref().expect("tip"),
                )?;
                let got = st
                    .get_snapshots_by_branch(&BranchQuery::named(vs, &b.name))
                    .map_err(|e| q("get_snapshots_by_branch", e))?;
                let got_by_id: HashMap<SnapshotId, &Snapshot> =
                    got.iter().map(|s| (s.id, s)).collect();
                let mut path = Vec::new();
                let mut at = Some(b.tip);
                while let Some(s) = at {
                    path.push(m.view(&d, s, got_by_id.get(&s).copied()));
                    at = m.snaps[&s].parent;
                }
                eq_list(
                    &w(&format!("get_snapshots_by_branch {:?}", b.name)),
                    &got,
                    &path,
                )?;
            }
            let unnamed: Vec<&Branch> = want.iter().filter(|b| b.name.is_empty()).collect();
            let got = st.get_snapshots_by_branch(&BranchQuery::named(vs, ""));
            match unnamed.len() {
                0 => eq_err(
                    &w("get_snapshots_by_branch \"\" (none)"),
                    got,
                    Ek::BranchNotFound,
                )?,
                1 => {
                    let got = got.map_err(|e| q("get_snapshots_by_branch \"\"", e))?;
                    eq(
                        &w("get_snapshots_by_branch \"\" tip"),
                        &got.first().map(|s| s.id),
                        &Some(unnamed[0].tip),
                    )?;
                    eq(
                        &w("get_snapshots_by_branch \"\" length"),
                        &got.len(),
                        &(m.depth(unnamed[0].tip) as usize),
                    )?;
                }
                _ => eq_err(
                    &w("get_snapshots_by_branch \"\" (several)"),
                    got,
                    Ek::Invalid,
                )?,
            }
            eq_err(
                &w("get_tip of an unknown name"),
                st.get_tip(vs, "no-such-branch"),
                Ek::BranchNotFound,
            )?;

            let got = st.get_volumes(vs).map_err(|e| q("get_volumes", e))?;
            let want: Vec<Volume> = m
                .volumes
                .values()
                .filter(|v| v.volume_set == vs)
                .cloned()
                .collect();
            eq_list(&w("get_volumes"), &got, &want)?;

            let got = st.get_bushes(vs).map_err(|e| q("get_bushes", e))?;
            let roots: BTreeSet<SnapshotId> = m
                .branches
                .values()
                .filter(|b| b.vs == vs)
                .map(|b| m.root(b.tip))
                .collect();
            let want: Vec<Bush> = roots
                .iter()
                .filter_map(|r| m.bushes.get(r).cloned())
                .collect();
            eq_list(&w("get_bushes"), &got, &want)?;
        }

        for (id, s) in &m.snaps {
            let id = *id;
            let got = st.get_snapshot(id).map_err(|e| q("get_snapshot", e))?;
            eq(&w("get_snapshot"), &got, &m.view(&d, id, Some(&got)))?;
            let want = m
                .bushes
                .get(&m.root(id))
                .cloned()
                .ok_or(Ek::BushNotFound(id));
            let got = st.get_bush(id);
            outcome(&w("get_bush"), &got, &want)?;
            if let (Ok(g), Ok(wb)) = (&got, &want) {
                eq(&w("get_bush"), g, wb)?;
            }
            eq(
                &w("num_volumes"),
                &st.num_volumes(id).map_err(|e| q("num_volumes", e))?,
                &m.volumes_on(id),
            )?;
            eq(
                &w("num_children"),
                &st.num_children(id).map_err(|e| q("num_children", e))?,
                &d.children(id),
            )?;
            let vs = st
                .get_volume_set_by_snap_id(id)
                .map_err(|e| q("get_volume_set_by_snap_id", e))?;
            eq(&w("get_volume_set_by_snap_id"), &vs, &s.vs)?;
        }
        let mut probe: Vec<SnapshotId> = m.snaps.keys().copied().collect();
        probe.extend(&dead_snaps);
        let got: BTreeMap<SnapshotId, BlobId> = st
            .get_blob_ids(&probe)
            .map_err(|e| q("get_blob_ids", e))?
            .into_iter()
            .collect();
        let want: BTreeMap<SnapshotId, BlobId> = m
            .snaps
            .iter()
            .map(|(id, s)| (*id, BlobId(s.blob.clone())))
            .collect();
        eq(&w("get_blob_ids"), &got, &want)?;

        for dead in &dead_snaps {
            eq_err(
                &w("get_snapshot of a deleted snapshot"),
                st.get_snapshot(*dead),
                Ek::SnapNotFound(*dead),
            )?;
            eq_err(
                &w("get_bush of a deleted snapshot"),
                st.get_bush(*dead),
                Ek::SnapNotFound(*dead),
            )?;
            eq_err(
                &w("num_children of a deleted snapshot"),
                st.num_children(*dead),
                Ek::SnapNotFound(*dead),
            )?;
        }
        for dead in &dead_vss {
            eq_err(
                &w("get_volume_set of a deleted one"),
                st.get_volume_set(*dead),
                Ek::VsNotFound(*dead),
            )?;
            eq_err(
                &w("get_snapshot_ids of a deleted one"),
                st.get_snapshot_ids(*dead),
                Ek::VsNotFound(*dead),
            )?;
            eq_err(
                &w("get_branches of a deleted one"),
                st.get_branches(&BranchQuery::all(*dead)),
                Ek::VsNotFound(*dead),
            )?;
            eq_err(
                &w("get_volumes of a deleted one"),
                st.get_volumes(*dead),
                Ek::VsNotFound(*dead),
            )?;
        }
        let got = st.get_all_volumes().map_err(|e| q("get_all_volumes", e))?;
        let want: Vec<Volume> = m.volumes.values().cloned().collect();
        eq_list(&w("get_all_volumes"), &got, &want)
    }
}

fn segments(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
                .count()
        })
        .unwrap_or(0)
}

/// Runs one case; on a mismatch returns the message with the trace of operations.
fn run(salt: u64, ops: &[Op], stats: &RefCell<Stats>) -> Res {
    let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let options = StoreOptions {
        log: LogOptions {
            segment_bytes_max: 64 * 1024,
            prewrite_bytes: 16 * 1024,
            record_bytes_max: RECORD_MAX,
            batch_bytes_max: 32 * 1024,
            // Half the cases append without waiting for fsync (made durable by close).
            durability: if salt & 1 == 0 {
                Durability::Sync
            } else {
                Durability::Buffered
            },
            ..LogOptions::default()
        },
        actor: Some("store-model".into()),
    };
    let store = Store::open(dir.path(), options.clone()).map_err(|e| format!("open: {e}"))?;
    let mut h = Harness {
        dir,
        options,
        store: Some(store),
        m: Model::default(),
        salt,
        n: 0,
        trace: Vec::new(),
        ok: 0,
        err: 0,
        reopens: 0,
        checks: 0,
        per_kind: BTreeMap::new(),
        errors: BTreeMap::new(),
        cur_kind: String::new(),
        history: Vec::new(),
    };
    let result = (|| {
        for (i, op) in ops.iter().enumerate() {
            h.step(i, *op)?;
            if (i + 1) % CHECK_EVERY == 0 {
                h.check_all(&format!("after op #{i}"))?;
                if (i + 1) % (5 * CHECK_EVERY) == 0 {
                    h.remember()?;
                }
            }
        }
        h.check_all("at the end")?;
        h.remember()?;
        h.reopen()?;
        h.check_history()
    })();
    {
        let mut s = stats.borrow_mut();
        s.runs += 1;
        s.ops += ops.len() as u64;
        s.ok += h.ok;
        s.err += h.err;
        s.reopens += h.reopens;
        s.checks += h.checks;
        s.segments_max = s.segments_max.max(segments(h.dir.path()));
        s.snapshots_max = s.snapshots_max.max(h.m.snaps.len());
        for (k, (ok, err)) in &h.per_kind {
            let e = s.per_kind.entry(k.clone()).or_default();
            e.0 += ok;
            e.1 += err;
        }
        for (k, n) in &h.errors {
            *s.errors.entry(k.clone()).or_default() += n;
        }
    }
    result.map_err(|e| {
        let skip = h.trace.len().saturating_sub(80);
        format!(
            "{e}\n\nsalt {salt:#x}; trace (last {} ops):\n{}",
            h.trace.len() - skip,
            h.trace[skip..].join("\n")
        )
    })
}

#[test]
fn store_agrees_with_model() {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 32;
    }
    if std::env::var_os("PROPTEST_MAX_SHRINK_TIME").is_none() {
        config.max_shrink_time = 180_000;
    }
    config.failure_persistence = Some(Box::new(FileFailurePersistence::Direct(
        "tests/store_model.proptest-regressions",
    )));
    let seed = match config.rng_seed {
        RngSeed::Fixed(s) => s,
        RngSeed::Random => rand::random(),
    };
    config.rng_seed = RngSeed::Fixed(seed);
    let strategy = (
        any::<u64>(),
        proptest::collection::vec(op_strategy(), 1..=OPS_MAX),
    );
    let stats = RefCell::new(Stats::default());
    let started = Instant::now();
    let mut runner = TestRunner::new(config.clone());
    let result = runner.run(&strategy, |(salt, ops)| {
        run(salt, &ops, &stats).map_err(TestCaseError::fail)
    });
    let s = stats.borrow();
    println!(
        "store_model: {} cases, {} runs (with shrinking), {} ops ({} ok, {} err), {} reopens, {} full checks, \
         up to {} snapshots and {} segments in a case, {:.1?}; PROPTEST_RNG_SEED={seed}",
        config.cases,
        s.runs,
        s.ops,
        s.ok,
        s.err,
        s.reopens,
        s.checks,
        s.snapshots_max,
        s.segments_max,
        started.elapsed()
    );
    let kinds: Vec<String> = s
        .per_kind
        .iter()
        .map(|(k, (ok, err))| format!("{k} {ok}/{err}"))
        .collect();
    println!("store_model: ok/err by operation: {}", kinds.join(", "));
    let errors: Vec<String> = s.errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!("store_model: errors by variant: {}", errors.join(", "));
    if let Err(e) = result {
        panic!("{e}\nreplay with PROPTEST_RNG_SEED={seed}");
    }
}
