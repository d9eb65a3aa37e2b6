//! The receiving side of a sync: turns a [`Batch`] into the records this store writes,
//! by the reference rules. Pure: it reads the state and returns events; it never writes.
//!
//! Structure: for every branch the batch touches, the batch's last tip for it is compared
//! with this store's branch of the same id. Unknown branch: imported (its name, or a
//! name that says it clashed). Known: extended when this store's tip is an ancestor of the
//! incoming tip, nothing when the incoming tip is an ancestor of ours (behind), else a
//! [`Divergence`]. Branches go shallowest tip first, as the original pushed them, so a
//! branch that shares a stem with another finds the stem already in place.
//!
//! Metadata: each object's edits in the batch are composed (initial = what the first edit
//! replaced, current = what the last one wrote) and resolved three-way against this
//! store's value, by the [`Winner`] rule. A conflict record addressed to this store (the
//! other side kept its value over ours) composes like an edit from our value to theirs.
//!
//! Every event returned is valid against the state after the ones before it: the plan
//! tracks what it adds in an overlay.

use crate::error::{Error, Result};
use crate::event::{Conflict, Event, NewBranch, SnapshotUpdate};
use crate::log::Lsn;
use crate::model::{
    BranchId, Snapshot, SnapshotId, SnapshotMeta, StoreId, VolumeSet, VolumeSetId, VolumeSetMeta,
};
use crate::state::validate::{check_snapshot_fields, check_volume_set_fields};
use crate::state::{Map, State};
use crate::sync::batch::Batch;
use crate::sync::report::{ApplyReport, Divergence, MissingAncestor, Winner};
use crate::sync::resolve::{resolve, ResolveStatus};

/// The records a batch turns into.
pub(crate) struct Plan {
    /// Data records, in order: each valid after the ones before it.
    pub events: Vec<Event>,
    /// Conflicts decided here, each with the number of data records that must be written
    /// before (or with) it: the records that settle what it is about ([`WITH_CURSOR`]
    /// when none does). In order of that number.
    pub conflicts: Vec<(usize, Conflict)>,
    pub report: ApplyReport,
}

/// The place of a conflict that no record settles (this store kept its value, or the
/// branch was not applied): with the cursor, in the last group, so that a cut sync that
/// decides it again on resume records it once.
pub(crate) const WITH_CURSOR: usize = usize::MAX;

/// How large the records a plan makes may be.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordLimits {
    /// Most snapshots (or snapshot updates) in one record.
    pub snapshots: usize,
    /// Most encoded bytes of snapshots (or updates) in one record.
    pub bytes: usize,
}

/// One branch as the batch leaves it.
struct IncomingBranch {
    /// Its name when the batch created it, with later renames applied.
    name: Option<String>,
    tip: SnapshotId,
}

/// What this plan has added on top of the state.
struct Overlay<'a> {
    st: &'a State,
    vs: VolumeSetId,
    /// Snapshots added: parent and depth.
    added: Map<SnapshotId, (Option<SnapshotId>, u32)>,
    tips: Map<BranchId, SnapshotId>,
    by_tip: Map<SnapshotId, Option<BranchId>>,
    names: Map<String, Option<BranchId>>,
    branch_names: Map<BranchId, String>,
}

impl Overlay<'_> {
    fn node(&self, id: SnapshotId) -> Option<(Option<SnapshotId>, u32)> {
        if let Some(n) = self.added.get(&id) {
            return Some(*n);
        }
        self.st.snapshots.get(&id).map(|r| (r.parent, r.depth))
    }

    fn has(&self, id: SnapshotId) -> bool {
        self.node(id).is_some()
    }

    fn tip_of(&self, b: BranchId) -> Option<SnapshotId> {
        self.tips
            .get(&b)
            .copied()
            .or_else(|| self.st.branches.get(&b).map(|r| r.tip))
    }

    fn tip_holder(&self, s: SnapshotId) -> Option<BranchId> {
        match self.by_tip.get(&s) {
            Some(h) => *h,
            None => self.st.by_tip.get(&s).copied(),
        }
    }

    fn name_holder(&self, name: &str) -> Option<BranchId> {
        if name.is_empty() {
            return None;
        }
        match self.names.get(name) {
            Some(h) => *h,
            None => self
                .st
                .volume_sets
                .get(&self.vs)
                .and_then(|v| v.branches_by_name.get(name).copied()),
        }
    }

    fn name_of(&self, b: BranchId) -> Option<String> {
        self.branch_names
            .get(&b)
            .cloned()
            .or_else(|| self.st.branches.get(&b).map(|r| r.name.clone()))
    }

    /// Walks up from `from` (known here) to depth `depth`; `None` if the chain ends first.
    fn ancestor_at(&self, mut from: SnapshotId, depth: u32) -> Option<SnapshotId> {
        let (_, mut d) = self.node(from)?;
        while d > depth {
            from = self.node(from)?.0?;
            d -= 1;
        }
        (d == depth).then_some(from)
    }

    /// Whether `a` is `d` or an ancestor of it (both known here).
    fn is_ancestor(&self, a: SnapshotId, d: SnapshotId) -> bool {
        match self.node(a) {
            Some((_, da)) => self.ancestor_at(d, da) == Some(a),
            None => false,
        }
    }

    /// The newest snapshot that is an ancestor-or-self of both (both known here).
    fn common(&self, a: SnapshotId, b: SnapshotId) -> Option<SnapshotId> {
        let (_, da) = self.node(a)?;
        let (_, db) = self.node(b)?;
        let d = da.min(db);
        let mut x = self.ancestor_at(a, d)?;
        let mut y = self.ancestor_at(b, d)?;
        while x != y {
            x = self.node(x)?.0?;
            y = self.node(y)?.0?;
        }
        Some(x)
    }

    fn set_tip(&mut self, b: BranchId, old: Option<SnapshotId>, new: SnapshotId) {
        if let Some(old) = old {
            if self.tip_holder(old) == Some(b) {
                self.by_tip.insert(old, None);
            }
        }
        self.tips.insert(b, new);
        self.by_tip.insert(new, Some(b));
    }

    fn set_name(&mut self, b: BranchId, old: Option<&str>, new: &str) {
        if let Some(old) = old.filter(|o| !o.is_empty()) {
            if self.name_holder(old) == Some(b) {
                self.names.insert(old.to_string(), None);
            }
        }
        if !new.is_empty() {
            self.names.insert(new.to_string(), Some(b));
        }
        self.branch_names.insert(b, new.to_string());
    }
}

/// Composed edits of one object: what the first replaced, what the last wrote.
struct Edit<T> {
    initial: T,
    current: T,
}

impl<T: Clone> Edit<T> {
    fn new(old: &T, new: &T) -> Self {
        Edit {
            initial: old.clone(),
            current: new.clone(),
        }
    }

    fn push(&mut self, _old: &T, new: &T) {
        self.current = new.clone();
    }
}

fn compose<K: std::hash::Hash + Eq, T: Clone>(m: &mut Map<K, Edit<T>>, k: K, old: &T, new: &T) {
    match m.get_mut(&k) {
        Some(e) => e.push(old, new),
        None => {
            m.insert(k, Edit::new(old, new));
        }
    }
}

/// Starts an object's composed edit afresh (a conflict decision supersedes what came before).
fn reset<K: std::hash::Hash + Eq, T: Clone>(m: &mut Map<K, Edit<T>>, k: K, old: &T, new: &T) {
    m.insert(k, Edit::new(old, new));
}

fn reset_one<T: Clone>(e: &mut Option<Edit<T>>, old: &T, new: &T) {
    *e = Some(Edit::new(old, new));
}

fn compose_one<T: Clone>(e: &mut Option<Edit<T>>, old: &T, new: &T) {
    match e {
        Some(e) => e.push(old, new),
        None => *e = Some(Edit::new(old, new)),
    }
}

/// A branch name that says it clashed: `name~` and the first eight hex digits of its id.
fn clash_name(name: &str, b: BranchId) -> String {
    format!("{name}~{}", &b.0.simple().to_string()[..8])
}

/// Resolves one object: `here` is this store's value, `cur` and `init` the batch's
/// composed edit.
fn decide(winner: Winner, here_eq_cur: bool, here_eq_init: bool, cur_eq_init: bool) -> Decision {
    match winner {
        Winner::Receiver => {
            // target = here, current = theirs.
            match resolve(here_eq_cur, Some(cur_eq_init), Some(here_eq_init)) {
                ResolveStatus::UseCurrent => Decision::Write,
                ResolveStatus::UseTargetConflict => Decision::Conflict { write: false },
                ResolveStatus::UseTargetNoConflict if !here_eq_cur => Decision::Adopted,
                ResolveStatus::UseTargetNoConflict | ResolveStatus::NoAction => Decision::Nothing,
            }
        }
        Winner::Sender => {
            // target = theirs, current = here.
            match resolve(here_eq_cur, Some(here_eq_init), Some(cur_eq_init)) {
                ResolveStatus::UseTargetNoConflict if !here_eq_cur => Decision::Write,
                ResolveStatus::UseTargetNoConflict => Decision::Nothing,
                ResolveStatus::UseTargetConflict => Decision::Conflict { write: true },
                // Their edit undid itself; ours stands.
                ResolveStatus::UseCurrent | ResolveStatus::NoAction => Decision::Nothing,
            }
        }
    }
}

/// Whether both sides made the same change: then this store records an *agreement* (a
/// no-op edit, counted as coming from the sender), so that its own edit of the object is
/// not sent back to the sender later with an `initial` the two have both left behind.
fn agreed<T>(here: &T, e: &Edit<T>, same: impl Fn(&T, &T) -> bool) -> bool {
    same(here, &e.current) && !same(&e.current, &e.initial)
}

/// Resolves one object's composed edit against this store's value `here`: whether to
/// write the incoming value, and the conflict (target, current, initial) if there is one.
/// `target` is the winner's value, `current` the loser's.
fn settle<T: Clone>(
    winner: Winner,
    here: &T,
    e: &Edit<T>,
    same: impl Fn(&T, &T) -> bool,
    report: &mut ApplyReport,
) -> (bool, Option<(T, T, T)>) {
    let initial = &e.initial;
    let d = decide(
        winner,
        same(here, &e.current),
        same(here, initial),
        same(&e.current, initial),
    );
    match d {
        Decision::Nothing => (false, None),
        Decision::Adopted => {
            report.adopted += 1;
            (false, None)
        }
        Decision::Write => (true, None),
        Decision::Conflict { write } => {
            let (target, current) = match winner {
                Winner::Receiver => (here.clone(), e.current.clone()),
                Winner::Sender => (e.current.clone(), here.clone()),
            };
            (write, Some((target, current, initial.clone())))
        }
    }
}

enum Decision {
    Nothing,
    Write,
    Adopted,
    Conflict { write: bool },
}

fn bad(batch: &Batch, reason: String) -> Error {
    Error::BadSyncBatch {
        source_store: batch.source,
        reason,
    }
}

fn vs_with_meta(vs: &VolumeSet, m: &VolumeSetMeta) -> VolumeSet {
    let mut v = vs.clone();
    v.name.clone_from(&m.name);
    v.prefix.clone_from(&m.prefix);
    v.description.clone_from(&m.description);
    v.attrs.clone_from(&m.attrs);
    v.creator.clone_from(&m.creator);
    v.creator_name.clone_from(&m.creator_name);
    v.owner.clone_from(&m.owner);
    v.owner_name.clone_from(&m.owner_name);
    v.last_modified = m.last_modified;
    v
}

fn snapshot_with_meta(s: &mut Snapshot, m: &SnapshotMeta) {
    s.name.clone_from(&m.name);
    s.description.clone_from(&m.description);
    s.attrs.clone_from(&m.attrs);
    s.creator.clone_from(&m.creator);
    s.creator_name.clone_from(&m.creator_name);
    s.owner.clone_from(&m.owner);
    s.owner_name.clone_from(&m.owner_name);
    s.last_modified = m.last_modified;
}

/// Whether following parents among `incoming` ever comes back to where it started. Each
/// snapshot is walked once: O(n).
fn check_no_cycle(incoming: &Map<SnapshotId, Snapshot>) -> std::result::Result<(), SnapshotId> {
    // 1: on the walk in progress; 2: known to end outside `incoming` or at a root.
    let mut mark: Map<SnapshotId, u8> = Map::default();
    let mut path = Vec::new();
    for start in incoming.keys() {
        let mut cur = Some(*start);
        while let Some(id) = cur {
            match mark.get(&id) {
                Some(2) => break,
                Some(_) => return Err(id),
                None => {}
            }
            let Some(s) = incoming.get(&id) else { break };
            mark.insert(id, 1);
            path.push(id);
            cur = s.parent;
        }
        for id in path.drain(..) {
            mark.insert(id, 2);
        }
    }
    Ok(())
}

/// Clears what never travels and what is derived.
fn portable(s: &Snapshot) -> Snapshot {
    let mut s = s.clone();
    s.blob = crate::model::BlobId::nil();
    s.size = 0;
    s.depth = 0;
    s.num_children = 0;
    s.is_tip = false;
    s.branch_name = None;
    s
}

/// Plans the records that apply `batch` here. `receiver` is this store's id (conflict
/// records addressed to it are adoptions); `snapshots_per_record` bounds record sizes.
pub(crate) fn plan(
    st: &State,
    batch: &Batch,
    receiver: Option<StoreId>,
    winner: Winner,
    limits: RecordLimits,
    seen_through: Lsn,
) -> Result<Plan> {
    let vs_id = batch.volume_set.id;
    batch.check().map_err(|m| bad(batch, m))?;
    check_volume_set_fields(&batch.volume_set).map_err(|e| bad(batch, e.to_string()))?;
    let mut report = ApplyReport {
        source: Some(batch.source),
        records_received: batch.records.len() as u64,
        records_new: batch.records.len() as u64,
        ..Default::default()
    };
    let mut events = Vec::new();
    let mut conflicts = Vec::new();

    // 1. Gather: incoming snapshots, branches, renames and composed metadata edits.
    let mut incoming: Map<SnapshotId, Snapshot> = Map::default();
    let mut branches: Map<BranchId, IncomingBranch> = Map::default();
    let mut branch_order: Vec<BranchId> = Vec::new();
    let mut renames: Map<BranchId, Edit<String>> = Map::default();
    let mut vs_edit: Option<Edit<VolumeSetMeta>> = None;
    let mut snap_edits: Map<SnapshotId, Edit<SnapshotMeta>> = Map::default();
    let mut snap_order: Vec<SnapshotId> = Vec::new();
    let mut add_snaps = |snaps: &[Snapshot]| -> Result<()> {
        for s in snaps {
            if s.volume_set != vs_id {
                return Err(bad(
                    batch,
                    format!("snapshot {} is in volume set {}", s.id, s.volume_set),
                ));
            }
            check_snapshot_fields(s).map_err(|e| bad(batch, e.to_string()))?;
            incoming.insert(s.id, portable(s));
        }
        Ok(())
    };
    fn touch(
        branches: &mut Map<BranchId, IncomingBranch>,
        order: &mut Vec<BranchId>,
        b: BranchId,
        name: Option<&str>,
        tip: SnapshotId,
    ) {
        if !branches.contains_key(&b) {
            order.push(b);
        }
        let e = branches
            .entry(b)
            .or_insert(IncomingBranch { name: None, tip });
        e.tip = tip;
        if let Some(n) = name {
            e.name = Some(n.to_string());
        }
    }
    for (lsn, env) in &batch.records {
        // Metadata edits up to the cursor were applied before (a full batch repeats them).
        let fresh = *lsn > seen_through;
        match &env.event {
            Event::ImportVolumeSet { .. } => {}
            Event::UpdateSnapshots { updates }
                if updates.iter().any(|u| {
                    st.snapshots
                        .get(&u.id)
                        .is_some_and(|r| r.volume_set != vs_id)
                }) =>
            {
                return Err(bad(
                    batch,
                    "an update of a snapshot that belongs to another volume set here".into(),
                ))
            }
            Event::UpdateVolumeSet { .. } | Event::UpdateSnapshots { .. } if !fresh => {}
            Event::UpdateVolumeSet { new, old, .. } => compose_one(&mut vs_edit, old, new),
            Event::ForkBranch(b) | Event::ImportBranch(b) => {
                crate::model::validate_branch_name(&b.name)
                    .map_err(|e| bad(batch, e.to_string()))?;
                add_snaps(&b.snapshots)?;
                touch(
                    &mut branches,
                    &mut branch_order,
                    b.branch,
                    Some(&b.name),
                    b.tip,
                );
            }
            Event::ExtendBranch {
                branch, snapshots, ..
            } => {
                add_snaps(snapshots)?;
                if let Some(last) = snapshots.last() {
                    touch(&mut branches, &mut branch_order, *branch, None, last.id);
                }
            }
            Event::MoveBranch {
                branch, new_tip, ..
            } => touch(&mut branches, &mut branch_order, *branch, None, *new_tip),
            Event::RenameBranch {
                branch,
                old_name,
                new_name,
                ..
            } => {
                crate::model::validate_branch_name(new_name)
                    .map_err(|e| bad(batch, e.to_string()))?;
                if fresh {
                    compose(&mut renames, *branch, old_name, new_name);
                }
                if let Some(b) = branches.get_mut(branch) {
                    if b.name.is_some() {
                        b.name = Some(new_name.clone());
                    }
                }
            }
            Event::UpdateSnapshots { updates } => {
                for u in updates {
                    if !snap_edits.contains_key(&u.id) {
                        snap_order.push(u.id);
                    }
                    compose(&mut snap_edits, u.id, &u.old, &u.new);
                }
            }
            // A branch the other side holds under a clash name: everyone who knows the
            // branch by its wanted name takes the clash name too.
            Event::SyncConflict { conflict, .. }
                if fresh && matches!(**conflict, Conflict::BranchNameClash { .. }) =>
            {
                if let Conflict::BranchNameClash {
                    branch,
                    wanted,
                    given,
                    ..
                } = &**conflict
                {
                    reset(&mut renames, *branch, wanted, given);
                    if let Some(b) = branches.get_mut(branch) {
                        if b.name.as_deref() == Some(wanted.as_str()) {
                            b.name = Some(given.clone());
                        }
                    }
                }
            }
            Event::SyncConflict { peer, conflict, .. } if fresh && Some(*peer) == receiver => {
                // The other side saw our edit and kept its value: an edit from ours to
                // theirs that replaces (not extends) its earlier edits in this batch,
                // which its decision already took into account.
                match &**conflict {
                    Conflict::VolumeSet {
                        id,
                        target,
                        current,
                        ..
                    } if *id == vs_id => reset_one(&mut vs_edit, current, target),
                    Conflict::Snapshot {
                        id,
                        target,
                        current,
                        ..
                    } => {
                        if !snap_edits.contains_key(id) {
                            snap_order.push(*id);
                        }
                        reset(&mut snap_edits, *id, current, target)
                    }
                    Conflict::BranchRename {
                        branch,
                        target,
                        current,
                        ..
                    } => reset(&mut renames, *branch, current, target),
                    Conflict::VolumeSet { .. }
                    | Conflict::BranchNameClash { .. }
                    | Conflict::BranchTipTaken { .. } => {}
                }
            }
            Event::SyncConflict { .. } => {}
            other => {
                return Err(bad(
                    batch,
                    format!(
                        "a {} record never travels between stores",
                        crate::event::kind_name(other.kind()).unwrap_or("?")
                    ),
                ))
            }
        }
    }
    if let Some(e) = &vs_edit {
        check_volume_set_fields(&vs_with_meta(&batch.volume_set, &e.current))
            .map_err(|e| bad(batch, e.to_string()))?;
    }
    for e in snap_edits.values() {
        let mut probe = Snapshot::new(SnapshotId::random(), vs_id, None);
        snapshot_with_meta(&mut probe, &e.current);
        check_snapshot_fields(&probe).map_err(|e| bad(batch, e.to_string()))?;
    }
    // New snapshots arrive with their latest metadata: no separate update for them.
    for (id, s) in incoming.iter_mut() {
        if !st.snapshots.contains_key(id) {
            if let Some(e) = snap_edits.remove(id) {
                snapshot_with_meta(s, &e.current);
            }
        }
    }

    // 2. The volume set.
    let vs_existed = match st.volume_sets.get(&vs_id) {
        Some(_) => true,
        None => {
            let mut vs = batch.volume_set.clone();
            vs.size = 0;
            vs.num_snapshots = 0;
            vs.num_branches = 0;
            vs.last_snapshot_time = None;
            events.push(Event::ImportVolumeSet { volume_set: vs });
            report.volume_set_created = true;
            false
        }
    };
    let mut ov = Overlay {
        st,
        vs: vs_id,
        added: Map::default(),
        tips: Map::default(),
        by_tip: Map::default(),
        names: Map::default(),
        branch_names: Map::default(),
    };
    for b in &branch_order {
        if let Some(row) = st.branches.get(b) {
            if row.volume_set != vs_id {
                return Err(bad(
                    batch,
                    format!("branch {b} belongs to volume set {} here", row.volume_set),
                ));
            }
        }
    }
    for (id, s) in &incoming {
        for x in std::iter::once(id).chain(s.parent.as_ref()) {
            if let Some(row) = st.snapshots.get(x) {
                if row.volume_set != vs_id {
                    return Err(bad(
                        batch,
                        format!("snapshot {x} belongs to volume set {} here", row.volume_set),
                    ));
                }
            }
        }
    }
    // A branch may end on a snapshot this store already holds (a move, or an import of
    // a branch at an existing snapshot): it must be one of this volume set.
    for (b, inc) in &branches {
        if let Some(row) = st.snapshots.get(&inc.tip) {
            if row.volume_set != vs_id {
                return Err(bad(
                    batch,
                    format!(
                        "branch {b} ends on snapshot {}, which belongs to volume set {} here",
                        inc.tip, row.volume_set
                    ),
                ));
            }
        }
    }
    check_no_cycle(&incoming)
        .map_err(|id| bad(batch, format!("the parents of snapshot {id} form a loop")))?;

    // 3. Renames of branches this store already had, before structure: an incoming branch
    //    may want a name one of them gives up.
    let mut rename_order: Vec<BranchId> = renames.keys().copied().collect();
    rename_order.sort();
    let mut wanted: Vec<(BranchId, String)> = Vec::new();
    let mut resumed: crate::state::Set<BranchId> = Default::default();
    // Conflicts that go with the rename record that settles them.
    let mut with_rename: Map<BranchId, Conflict> = Map::default();
    for b in rename_order {
        let Some(here) = ov.name_of(b) else { continue };
        let e = &renames[&b];
        if here == clash_name(&e.current, b) && here != e.initial {
            // This sync gave it the clash name before it was cut short: take the name if
            // it is free now, else leave it (the clash is recorded already).
            wanted.push((b, e.current.clone()));
            resumed.insert(b);
            continue;
        }
        if agreed(&here, e, |x, y| x == y) {
            events.push(Event::RenameBranch {
                volume_set: vs_id,
                branch: b,
                old_name: here.clone(),
                new_name: here.clone(),
            });
            continue;
        }
        let (write, conflict) = settle(winner, &here, e, |x, y| x == y, &mut report);
        if let Some((target, current, initial)) = conflict {
            let c = Conflict::BranchRename {
                volume_set: vs_id,
                branch: b,
                target,
                current,
                initial,
            };
            if write && here != e.current {
                with_rename.insert(b, c);
            } else {
                conflicts.push((WITH_CURSOR, c));
            }
        }
        if write && here != e.current {
            wanted.push((b, e.current.clone()));
        }
    }
    // Emit in an order where each new name is free when its record applies: a name
    // another renamed branch gives up waits for it; a cycle (two branches swapping names)
    // is broken with a temporary name; a name held by a branch that keeps it is a clash.
    while !wanted.is_empty() {
        let before = wanted.len();
        let mut i = 0;
        while i < wanted.len() {
            let (b, name) = wanted[i].clone();
            if ov.name_holder(&name).is_none_or(|h| h == b) {
                let here = ov.name_of(b).unwrap_or_default();
                events.push(Event::RenameBranch {
                    volume_set: vs_id,
                    branch: b,
                    old_name: here.clone(),
                    new_name: name.clone(),
                });
                ov.set_name(b, Some(&here), &name);
                report.branches_renamed += 1;
                if let Some(c) = with_rename.remove(&b) {
                    conflicts.push((events.len(), c));
                }
                wanted.remove(i);
            } else {
                i += 1;
            }
        }
        if wanted.len() < before {
            continue;
        }
        let (b, name) = wanted[0].clone();
        let holder = ov.name_holder(&name).expect("stuck only on a held name");
        let here = ov.name_of(b).unwrap_or_default();
        if wanted.iter().any(|(x, _)| *x == holder) {
            // A cycle: the holder steps aside under a temporary name first.
            let holder_name = ov.name_of(holder).unwrap_or_default();
            let temp = clash_name(&holder_name, holder);
            events.push(Event::RenameBranch {
                volume_set: vs_id,
                branch: holder,
                old_name: holder_name.clone(),
                new_name: temp.clone(),
            });
            ov.set_name(holder, Some(&holder_name), &temp);
            continue;
        }
        if resumed.contains(&b) {
            wanted.remove(0);
            continue;
        }
        let alt = clash_name(&name, b);
        let given = if ov.name_holder(&alt).is_none() {
            alt
        } else {
            here.clone()
        };
        if given != here {
            events.push(Event::RenameBranch {
                volume_set: vs_id,
                branch: b,
                old_name: here.clone(),
                new_name: given.clone(),
            });
            ov.set_name(b, Some(&here), &given);
            report.branches_renamed += 1;
        }
        if let Some(c) = with_rename.remove(&b) {
            conflicts.push((events.len(), c));
        }
        conflicts.push((
            events.len(),
            Conflict::BranchNameClash {
                volume_set: vs_id,
                branch: b,
                wanted: name,
                given,
                holder,
            },
        ));
        wanted.remove(0);
    }

    // 4. Structure, shallowest incoming tip first.
    let chain_of = |ov: &Overlay<'_>,
                    tip: SnapshotId|
     -> std::result::Result<(Vec<SnapshotId>, Option<SnapshotId>), SnapshotId> {
        let mut chain = Vec::new();
        let mut cur = Some(tip);
        while let Some(id) = cur {
            if ov.has(id) {
                chain.reverse();
                return Ok((chain, Some(id)));
            }
            let s = incoming.get(&id).ok_or(id)?;
            if chain.len() > incoming.len() {
                return Err(id); // a parent cycle in hostile input
            }
            chain.push(id);
            cur = s.parent;
        }
        chain.reverse();
        Ok((chain, None))
    };
    // The depth of every incoming tip (`u64::MAX`: its chain breaks off or loops), each
    // incoming snapshot walked once: branches forked from one deep stem would otherwise
    // walk the stem once each (branches × depth).
    let mut depths: Map<SnapshotId, u64> = Map::default();
    let mut depth_of = |tip: SnapshotId| -> u64 {
        let mut path = Vec::new();
        let mut cur = Some(tip);
        let below = loop {
            let Some(id) = cur else { break 0 };
            if let Some(d) = depths.get(&id) {
                break *d;
            }
            if let Some((_, d)) = ov.node(id) {
                break u64::from(d);
            }
            match incoming.get(&id) {
                Some(s) if path.len() <= incoming.len() => {
                    path.push(id);
                    cur = s.parent;
                }
                _ => break u64::MAX,
            }
        };
        let mut d = below;
        for id in path.into_iter().rev() {
            d = d.saturating_add(1);
            depths.insert(id, d);
        }
        d
    };
    let mut order: Vec<(u64, usize, BranchId)> = Vec::with_capacity(branch_order.len());
    for (i, b) in branch_order.iter().enumerate() {
        order.push((depth_of(branches[b].tip), i, *b));
    }
    order.sort();
    let mut emit_chain = |events: &mut Vec<Event>,
                          ov: &mut Overlay<'_>,
                          b: BranchId,
                          new_name: Option<&str>,
                          old_tip: Option<SnapshotId>,
                          chain: &[SnapshotId],
                          tip: SnapshotId| {
        let mut prev = old_tip;
        let mut first = true;
        // Records of at most `limits.snapshots` snapshots and about `limits.bytes` bytes.
        let mut chunks: Vec<&[SnapshotId]> = Vec::new();
        let (mut start, mut bytes) = (0, 0usize);
        for (i, id) in chain.iter().enumerate() {
            let n = crate::codec::encoded_len(&incoming[id])?;
            if i > start && (i - start >= limits.snapshots || bytes + n > limits.bytes) {
                chunks.push(&chain[start..i]);
                (start, bytes) = (i, 0);
            }
            bytes += n;
        }
        if start < chain.len() || chain.is_empty() {
            chunks.push(&chain[start..]);
        }
        for chunk in chunks {
            let snaps: Vec<Snapshot> = chunk.iter().map(|id| incoming[id].clone()).collect();
            for s in &snaps {
                let depth = s.parent.and_then(|p| ov.node(p)).map_or(1, |(_, d)| d + 1);
                ov.added.insert(s.id, (s.parent, depth));
            }
            let chunk_tip = chunk.last().copied().unwrap_or(tip);
            match (first, new_name) {
                (true, Some(name)) => events.push(Event::ImportBranch(NewBranch {
                    volume_set: vs_id,
                    branch: b,
                    name: name.to_string(),
                    snapshots: snaps,
                    tip: chunk_tip,
                })),
                _ if snaps.is_empty() => events.push(Event::MoveBranch {
                    volume_set: vs_id,
                    branch: b,
                    old_tip: prev.expect("a known branch has a tip"),
                    new_tip: chunk_tip,
                }),
                _ => events.push(Event::ExtendBranch {
                    volume_set: vs_id,
                    branch: b,
                    old_tip: prev.expect("a known branch has a tip"),
                    snapshots: snaps,
                }),
            }
            ov.set_tip(b, prev, chunk_tip);
            prev = Some(chunk_tip);
            first = false;
        }
        report.snapshots_added += chain.len() as u64;
        Ok(())
    };
    for (_, _, b) in order {
        let inc = &branches[&b];
        let tip = inc.tip;
        let (chain, base) = match chain_of(&ov, tip) {
            Ok(c) => c,
            Err(missing) => {
                report.missing.push(MissingAncestor {
                    volume_set: vs_id,
                    branch: b,
                    missing,
                });
                continue;
            }
        };
        let known_holder = if chain.is_empty() {
            ov.tip_holder(tip).filter(|h| *h != b)
        } else {
            None
        };
        match ov.tip_of(b) {
            None => {
                if let Some(holder) = known_holder {
                    conflicts.push((
                        WITH_CURSOR,
                        Conflict::BranchTipTaken {
                            volume_set: vs_id,
                            branch: b,
                            tip,
                            holder,
                        },
                    ));
                    continue;
                }
                let wanted = inc
                    .name
                    .clone()
                    .or_else(|| renames.get(&b).map(|e| e.current.clone()))
                    .unwrap_or_default();
                let (given, clash) = match ov.name_holder(&wanted) {
                    Some(holder) => {
                        let alt = clash_name(&wanted, b);
                        let given = if ov.name_holder(&alt).is_none() {
                            alt
                        } else {
                            String::new()
                        };
                        let clash = Conflict::BranchNameClash {
                            volume_set: vs_id,
                            branch: b,
                            wanted: wanted.clone(),
                            given: given.clone(),
                            holder,
                        };
                        (given, Some(clash))
                    }
                    None => (wanted, None),
                };
                emit_chain(&mut events, &mut ov, b, Some(&given), None, &chain, tip)?;
                ov.set_name(b, None, &given);
                // With the import's first record: a resumed sync finds the branch known
                // and would not decide the clash again.
                if let Some(c) = clash {
                    conflicts.push((events.len(), c));
                }
                report.branches_added += 1;
            }
            Some(here) if here == tip => {}
            Some(here) => {
                let forward = match base {
                    Some(base) => ov.is_ancestor(here, base),
                    None => false,
                };
                if forward {
                    if let Some(holder) = known_holder {
                        conflicts.push((
                            WITH_CURSOR,
                            Conflict::BranchTipTaken {
                                volume_set: vs_id,
                                branch: b,
                                tip,
                                holder,
                            },
                        ));
                        continue;
                    }
                    emit_chain(&mut events, &mut ov, b, None, Some(here), &chain, tip)?;
                    report.branches_extended += 1;
                } else if chain.is_empty() && ov.is_ancestor(tip, here) {
                    report.branches_behind += 1;
                } else {
                    report.divergences.push(Divergence {
                        volume_set: vs_id,
                        branch: b,
                        name: ov.name_of(b).unwrap_or_default(),
                        receiver_tip: here,
                        sender_tip: tip,
                        common: base.and_then(|x| ov.common(x, here)),
                    });
                }
            }
        }
    }

    // 5. Volume set metadata.
    if let (true, Some(e)) = (vs_existed, &vs_edit) {
        let here = st.volume_sets[&vs_id].vs.meta();
        let (write, conflict) = settle(winner, &here, e, VolumeSetMeta::same, &mut report);
        let wrote = write && here != e.current;
        if agreed(&here, e, VolumeSetMeta::same) {
            events.push(Event::UpdateVolumeSet {
                id: vs_id,
                new: here.clone(),
                old: here.clone(),
            });
        }
        if wrote {
            events.push(Event::UpdateVolumeSet {
                id: vs_id,
                new: e.current.clone(),
                old: here,
            });
            report.volume_set_updated = true;
        }
        if let Some((target, current, initial)) = conflict {
            conflicts.push((
                if wrote { events.len() } else { WITH_CURSOR },
                Conflict::VolumeSet {
                    id: vs_id,
                    target,
                    current,
                    initial,
                },
            ));
        }
    }

    // 6. Snapshot metadata, for snapshots this store had before the batch, in records of
    //    bounded size, each conflict after the record that settles its snapshot.
    let mut updates = Vec::new();
    let mut pending_conflicts = Vec::new();
    let mut bytes = 0usize;
    let flush = |events: &mut Vec<Event>,
                 conflicts: &mut Vec<(usize, Conflict)>,
                 updates: &mut Vec<SnapshotUpdate>,
                 pending: &mut Vec<Conflict>| {
        if !updates.is_empty() {
            events.push(Event::UpdateSnapshots {
                updates: std::mem::take(updates),
            });
        }
        for c in pending.drain(..) {
            conflicts.push((events.len(), c));
        }
    };
    for id in snap_order {
        let Some(e) = snap_edits.get(&id) else {
            continue;
        };
        let Some(row) = st.snapshots.get(&id) else {
            continue; // not here (deleted, or on a branch that did not apply)
        };
        if row.volume_set != vs_id {
            return Err(bad(
                batch,
                format!(
                    "an update of snapshot {id}, which belongs to volume set {} here",
                    row.volume_set
                ),
            ));
        }
        let here = st.snapshot_of(id, row).meta();
        let (write, conflict) = settle(winner, &here, e, SnapshotMeta::same, &mut report);
        let agree = agreed(&here, e, SnapshotMeta::same);
        let wrote = write && here != e.current;
        if wrote || agree {
            let new = if wrote {
                e.current.clone()
            } else {
                here.clone()
            };
            let u = SnapshotUpdate {
                id,
                new,
                old: here,
                set_blob: None,
            };
            let n = crate::codec::encoded_len(&u)?;
            if !updates.is_empty()
                && (updates.len() >= limits.snapshots || bytes + n > limits.bytes)
            {
                flush(
                    &mut events,
                    &mut conflicts,
                    &mut updates,
                    &mut pending_conflicts,
                );
                bytes = 0;
            }
            bytes += n;
            updates.push(u);
            if wrote {
                report.snapshots_updated += 1;
            }
        }
        if let Some((target, current, initial)) = conflict {
            let c = Conflict::Snapshot {
                id,
                target,
                current,
                initial,
            };
            if wrote {
                pending_conflicts.push(c);
            } else {
                conflicts.push((WITH_CURSOR, c));
            }
        }
    }
    flush(
        &mut events,
        &mut conflicts,
        &mut updates,
        &mut pending_conflicts,
    );
    report.conflicts = conflicts.iter().map(|(_, c)| c.clone()).collect();
    crate::state::validate::check_store_room(st.snapshots.len(), report.snapshots_added as usize)?;
    Ok(Plan {
        events,
        conflicts,
        report,
    })
}
