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
    /// Conflicts decided here, to record after the data.
    pub conflicts: Vec<Conflict>,
    pub report: ApplyReport,
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

fn compose<K: std::hash::Hash + Eq, T: Clone>(m: &mut Map<K, Edit<T>>, k: K, old: &T, new: &T) {
    m.entry(k)
        .and_modify(|e| e.current = new.clone())
        .or_insert_with(|| Edit {
            initial: old.clone(),
            current: new.clone(),
        });
}

fn compose_one<T: Clone>(e: &mut Option<Edit<T>>, old: &T, new: &T) {
    match e {
        Some(e) => e.current = new.clone(),
        None => {
            *e = Some(Edit {
                initial: old.clone(),
                current: new.clone(),
            })
        }
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
    snapshots_per_record: usize,
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
    for (_, env) in &batch.records {
        match &env.event {
            Event::ImportVolumeSet { .. } => {}
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
                compose(&mut renames, *branch, old_name, new_name);
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
            Event::SyncConflict { peer, conflict } if Some(*peer) == receiver => {
                // The other side kept its value over ours: an edit from ours to theirs.
                match &**conflict {
                    Conflict::VolumeSet {
                        id,
                        target,
                        current,
                        ..
                    } if *id == vs_id => compose_one(&mut vs_edit, current, target),
                    Conflict::Snapshot {
                        id,
                        target,
                        current,
                        ..
                    } => {
                        if !snap_edits.contains_key(id) {
                            snap_order.push(*id);
                        }
                        compose(&mut snap_edits, *id, current, target)
                    }
                    Conflict::BranchRename {
                        branch,
                        target,
                        current,
                        ..
                    } => compose(&mut renames, *branch, current, target),
                    // Our branch arrived there under another name: take that name too.
                    Conflict::BranchNameClash {
                        branch,
                        wanted,
                        given,
                        ..
                    } => compose(&mut renames, *branch, wanted, given),
                    Conflict::VolumeSet { .. } | Conflict::BranchTipTaken { .. } => {}
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
    for id in incoming.keys() {
        if let Some(row) = st.snapshots.get(id) {
            if row.volume_set != vs_id {
                return Err(bad(
                    batch,
                    format!(
                        "snapshot {id} belongs to volume set {} here",
                        row.volume_set
                    ),
                ));
            }
        }
    }

    // 3. Renames of branches this store already had, before structure: an incoming branch
    //    may want a name one of them gives up.
    let mut rename_order: Vec<BranchId> = renames.keys().copied().collect();
    rename_order.sort();
    for b in rename_order {
        let Some(here) = ov.name_of(b) else { continue };
        let e = &renames[&b];
        let d = decide(
            winner,
            here == e.current,
            here == e.initial,
            e.current == e.initial,
        );
        let (target, current) = match winner {
            Winner::Receiver => (here.clone(), e.current.clone()),
            Winner::Sender => (e.current.clone(), here.clone()),
        };
        let write = match d {
            Decision::Nothing => false,
            Decision::Adopted => {
                report.adopted += 1;
                false
            }
            Decision::Write => true,
            Decision::Conflict { write } => {
                conflicts.push(Conflict::BranchRename {
                    volume_set: vs_id,
                    branch: b,
                    target,
                    current,
                    initial: e.initial.clone(),
                });
                write
            }
        };
        if write && here != e.current {
            let mut new_name = e.current.clone();
            if let Some(holder) = ov.name_holder(&new_name).filter(|h| *h != b) {
                let alt = clash_name(&new_name, b);
                let given = if ov.name_holder(&alt).is_none() {
                    alt
                } else {
                    here.clone()
                };
                conflicts.push(Conflict::BranchNameClash {
                    volume_set: vs_id,
                    branch: b,
                    wanted: new_name.clone(),
                    given: given.clone(),
                    holder,
                });
                new_name = given;
            }
            if new_name != here {
                events.push(Event::RenameBranch {
                    volume_set: vs_id,
                    branch: b,
                    old_name: here.clone(),
                    new_name: new_name.clone(),
                });
                ov.set_name(b, Some(&here), &new_name);
                report.branches_renamed += 1;
            }
        }
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
    let mut order: Vec<(u64, usize, BranchId)> = Vec::with_capacity(branch_order.len());
    for (i, b) in branch_order.iter().enumerate() {
        let tip = branches[b].tip;
        let depth = match chain_of(&ov, tip) {
            Ok((chain, base)) => {
                chain.len() as u64 + base.and_then(|x| ov.node(x)).map_or(0, |n| u64::from(n.1))
            }
            Err(_) => u64::MAX,
        };
        order.push((depth, i, *b));
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
        let mut chunks: Vec<&[SnapshotId]> = chain.chunks(snapshots_per_record.max(1)).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
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
                    conflicts.push(Conflict::BranchTipTaken {
                        volume_set: vs_id,
                        branch: b,
                        tip,
                        holder,
                    });
                    continue;
                }
                let wanted = inc
                    .name
                    .clone()
                    .or_else(|| renames.get(&b).map(|e| e.current.clone()))
                    .unwrap_or_default();
                let given = match ov.name_holder(&wanted) {
                    Some(holder) => {
                        let alt = clash_name(&wanted, b);
                        let given = if ov.name_holder(&alt).is_none() {
                            alt
                        } else {
                            String::new()
                        };
                        conflicts.push(Conflict::BranchNameClash {
                            volume_set: vs_id,
                            branch: b,
                            wanted: wanted.clone(),
                            given: given.clone(),
                            holder,
                        });
                        given
                    }
                    None => wanted,
                };
                emit_chain(&mut events, &mut ov, b, Some(&given), None, &chain, tip);
                ov.set_name(b, None, &given);
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
                        conflicts.push(Conflict::BranchTipTaken {
                            volume_set: vs_id,
                            branch: b,
                            tip,
                            holder,
                        });
                        continue;
                    }
                    emit_chain(&mut events, &mut ov, b, None, Some(here), &chain, tip);
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
        let d = decide(
            winner,
            here.same(&e.current),
            here.same(&e.initial),
            e.current.same(&e.initial),
        );
        let (target, current) = match winner {
            Winner::Receiver => (here.clone(), e.current.clone()),
            Winner::Sender => (e.current.clone(), here.clone()),
        };
        let write = match d {
            Decision::Nothing => false,
            Decision::Adopted => {
                report.adopted += 1;
                false
            }
            Decision::Write => true,
            Decision::Conflict { write } => {
                conflicts.push(Conflict::VolumeSet {
                    id: vs_id,
                    target,
                    current,
                    initial: e.initial.clone(),
                });
                write
            }
        };
        if write && here != e.current {
            events.push(Event::UpdateVolumeSet {
                id: vs_id,
                new: e.current.clone(),
                old: here,
            });
            report.volume_set_updated = true;
        }
    }

    // 6. Snapshot metadata, for snapshots this store had before the batch.
    let mut updates = Vec::new();
    for id in snap_order {
        let Some(e) = snap_edits.get(&id) else {
            continue;
        };
        let Some(row) = st.snapshots.get(&id) else {
            continue; // not here (deleted, or on a branch that did not apply)
        };
        if row.volume_set != vs_id {
            continue;
        }
        let here = st.snapshot_of(id, row).meta();
        let d = decide(
            winner,
            here.same(&e.current),
            here.same(&e.initial),
            e.current.same(&e.initial),
        );
        let (target, current) = match winner {
            Winner::Receiver => (here.clone(), e.current.clone()),
            Winner::Sender => (e.current.clone(), here.clone()),
        };
        let write = match d {
            Decision::Nothing => false,
            Decision::Adopted => {
                report.adopted += 1;
                false
            }
            Decision::Write => true,
            Decision::Conflict { write } => {
                conflicts.push(Conflict::Snapshot {
                    id,
                    target,
                    current,
                    initial: e.initial.clone(),
                });
                write
            }
        };
        if write && here != e.current {
            updates.push(SnapshotUpdate {
                id,
                new: e.current.clone(),
                old: here,
                set_blob: None,
            });
        }
    }
    report.snapshots_updated = updates.len() as u64;
    let per = snapshots_per_record.max(1);
    while !updates.is_empty() {
        let rest = updates.split_off(updates.len().min(per));
        events.push(Event::UpdateSnapshots { updates });
        updates = rest;
    }
    report.conflicts.clone_from(&conflicts);
    Ok(Plan {
        events,
        conflicts,
        report,
    })
}
