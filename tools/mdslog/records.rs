//! Reading records for people: a one-line summary of each event, which objects a record
//! touches, and an index of every object the log ever held (deleted ones included).

use std::collections::{HashMap, HashSet};

use mdslog::event::{Envelope, Event, NewBranch};
use mdslog::log::Log;
use mdslog::{Attrs, BranchId, Lsn, SnapshotId, VolumeId, VolumeSetId};

use crate::output::{human_bytes, plural, progress, short, Fail};
use crate::resolve::{BranchEntry, Catalog, Object, VsEntry};

/// Reads every durable record from `from` to `to` (inclusive), decoded, with a progress
/// bar on a terminal. `f` returns `false` to stop early.
pub fn scan(
    log: &Log,
    from: Lsn,
    to: Option<Lsn>,
    what: &str,
    mut f: impl FnMut(Lsn, mdslog::RecordKind, Envelope) -> Result<bool, Fail>,
) -> Result<(), Fail> {
    let last = to.unwrap_or(Lsn(u64::MAX)).min(log.durable_lsn());
    let dir = log.location();
    let pb = progress(last.0.saturating_sub(from.0.max(1)) + 1, what);
    let mut it = log.iter_from(from);
    let mut n = 0u64;
    while let Some(r) = it.next_record().map_err(|e| Fail::store(e, &dir))? {
        if r.lsn > last {
            break;
        }
        let env = Envelope::decode(r.lsn, r.kind, r.payload).map_err(|e| Fail::store(e, &dir))?;
        let (lsn, kind) = (r.lsn, r.kind);
        if !f(lsn, kind, env)? {
            break;
        }
        n += 1;
        if n.is_multiple_of(4096) {
            pb.set_position(n);
        }
    }
    pb.finish_and_clear();
    Ok(())
}

fn attrs_diff(old: &Attrs, new: &Attrs) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in new {
        match old.get(k) {
            None => out.push(format!("+{k}={v}")),
            Some(o) if o != v => out.push(format!("~{k}={v}")),
            _ => {}
        }
    }
    out.extend(
        old.keys()
            .filter(|k| !new.contains_key(*k))
            .map(|k| format!("-{k}")),
    );
    out
}

fn changed(out: &mut Vec<String>, what: &str, old: &str, new: &str) {
    if old != new {
        out.push(format!("{what} {old:?} → {new:?}"));
    }
}

fn new_branch(verb: &str, b: &NewBranch) -> String {
    let from = match b.snapshots.first().and_then(|s| s.parent) {
        Some(p) => format!("off {}", short(p)),
        None if b.snapshots.is_empty() => "at an existing snapshot".to_string(),
        None => "as a new root".to_string(),
    };
    format!(
        "branch {:?} ({}) {verb} in {} {from}: {}, tip {}",
        b.name,
        short(b.branch),
        short(b.volume_set),
        plural(b.snapshots.len() as u64, "new snapshot", "new snapshots"),
        short(b.tip)
    )
}

/// One line describing an event for people.
pub fn summary(ev: &Event) -> String {
    match ev {
        Event::ImportVolumeSet { volume_set: v } => {
            let path = if v.prefix.is_empty() {
                v.name.clone()
            } else {
                format!("{}/{}", v.prefix, v.name)
            };
            format!(
                "volume set {path:?} ({}) created, {}",
                short(v.id),
                plural(v.attrs.len() as u64, "attribute", "attributes")
            )
        }
        Event::UpdateVolumeSet { id, new, old } => {
            let mut c = Vec::new();
            changed(&mut c, "name", &old.name, &new.name);
            changed(&mut c, "prefix", &old.prefix, &new.prefix);
            if old.description != new.description {
                c.push("description changed".into());
            }
            changed(&mut c, "owner", &old.owner, &new.owner);
            changed(&mut c, "creator", &old.creator, &new.creator);
            let a = attrs_diff(&old.attrs, &new.attrs);
            if !a.is_empty() {
                c.push(format!("attrs {}", a.join(" ")));
            }
            if c.is_empty() {
                c.push("no field changed".into());
            }
            format!("volume set {} updated: {}", short(id), c.join(", "))
        }
        Event::SetVolumeSetSize { id, size, old_size } => {
            format!(
                "volume set {} size {} → {}",
                short(id),
                human_bytes(*old_size),
                human_bytes(*size)
            )
        }
        Event::DeleteVolumeSet { id } => {
            format!("volume set {} deleted with everything in it", short(id))
        }
        Event::ForkBranch(b) => new_branch("forked", b),
        Event::ImportBranch(b) => new_branch("imported", b),
        Event::ExtendBranch {
            volume_set,
            branch,
            old_tip,
            snapshots,
        } => format!(
            "branch {} in {} extended: {}, tip {} → {}",
            short(branch),
            short(volume_set),
            plural(snapshots.len() as u64, "new snapshot", "new snapshots"),
            short(old_tip),
            snapshots
                .last()
                .map(|s| short(s.id))
                .unwrap_or_else(|| short(old_tip))
        ),
        Event::RenameBranch {
            volume_set,
            branch,
            old_name,
            new_name,
        } => {
            format!(
                "branch {} in {} renamed {old_name:?} → {new_name:?}",
                short(branch),
                short(volume_set)
            )
        }
        Event::UpdateSnapshots { updates } => {
            let parts: Vec<String> = updates
                .iter()
                .take(4)
                .map(|u| {
                    let mut c = Vec::new();
                    changed(&mut c, "name", &u.old.name, &u.new.name);
                    if u.old.description != u.new.description {
                        c.push("description changed".into());
                    }
                    changed(&mut c, "owner", &u.old.owner, &u.new.owner);
                    let a = attrs_diff(&u.old.attrs, &u.new.attrs);
                    if !a.is_empty() {
                        c.push(format!("attrs {}", a.join(" ")));
                    }
                    if let Some(b) = &u.set_blob {
                        c.push(format!("blob {:?}", b.0));
                    }
                    if c.is_empty() {
                        c.push("touched".into());
                    }
                    format!("{} ({})", short(u.id), c.join(", "))
                })
                .collect();
            let more = if updates.len() > 4 {
                format!(" and {} more", updates.len() - 4)
            } else {
                String::new()
            };
            format!(
                "{} updated: {}{more}",
                plural(updates.len() as u64, "snapshot", "snapshots"),
                parts.join("; ")
            )
        }
        Event::SetBlobIdAndSize {
            snapshot,
            blob,
            size,
            old_blob,
            old_size,
        } => format!(
            "snapshot {} blob {:?} → {:?}, size {} → {}",
            short(snapshot),
            old_blob.0,
            blob.0,
            human_bytes(*old_size),
            human_bytes(*size)
        ),
        Event::DeleteSnapshots {
            volume_set,
            snapshots,
            removed_branches,
            new_tip,
        } => {
            let mut s = format!(
                "{} deleted in {}",
                plural(snapshots.len() as u64, "snapshot", "snapshots"),
                short(volume_set)
            );
            if !removed_branches.is_empty() {
                let ids: Vec<String> = removed_branches.iter().map(short).collect();
                s.push_str(&format!(", branches removed: {}", ids.join(" ")));
            }
            if let Some(t) = new_tip {
                s.push_str(&format!(
                    ", {} is now the tip of branch {:?} ({})",
                    short(t.snapshot),
                    t.name,
                    short(t.branch)
                ));
            }
            s
        }
        Event::ImportBush { bush } => {
            format!(
                "bush of root {} in {} on data server {}",
                short(bush.root),
                short(bush.volume_set),
                bush.data_server
            )
        }
        Event::DeleteBush { root } => format!("bush of root {} deleted", short(root)),
        Event::ImportVolume { volume: v } => format!(
            "volume {:?} created in {} on {}, mounted at {:?}",
            v.id.0,
            short(v.volume_set),
            v.base.map(short).unwrap_or_else(|| "no snapshot".into()),
            v.mount_path
        ),
        Event::UpdateVolume {
            id,
            name,
            attrs,
            old_name,
            old_attrs,
        } => {
            let mut c = Vec::new();
            changed(&mut c, "name", old_name, name);
            let a = attrs_diff(old_attrs, attrs);
            if !a.is_empty() {
                c.push(format!("attrs {}", a.join(" ")));
            }
            format!(
                "volume {:?} updated: {}",
                id.0,
                if c.is_empty() {
                    "no field changed".into()
                } else {
                    c.join(", ")
                }
            )
        }
        Event::DeleteVolume { id } => format!("volume {:?} deleted", id.0),
        Event::SetStoreId { id } => format!("store id set to {id}"),
        Event::MoveBranch {
            volume_set,
            branch,
            old_tip,
            new_tip,
        } => format!(
            "branch {} in {} moved from {} to {} by a sync",
            short(branch),
            short(volume_set),
            short(old_tip),
            short(new_tip)
        ),
        Event::SyncApplied {
            peer,
            volume_set,
            through,
            records,
        } => format!(
            "sync from store {}: {} of volume set {} follow; cursor at its LSN {through}",
            short(peer),
            plural(u64::from(*records), "record", "records"),
            short(volume_set)
        ),
        Event::SyncConflict { peer, conflict, .. } => {
            format!(
                "sync with store {}: {}",
                short(peer),
                conflict_summary(conflict)
            )
        }
    }
}

/// The differences of a conflict (lost value → kept value), or that there are none but
/// user names or times.
fn or_times(d: Vec<String>) -> String {
    if d.is_empty() {
        "only user names or times differ".into()
    } else {
        d.join(", ")
    }
}

/// One line describing a sync conflict for people.
pub fn conflict_summary(c: &mdslog::event::Conflict) -> String {
    use mdslog::event::Conflict;
    match c {
        Conflict::VolumeSet {
            id,
            target: t,
            current: c,
            ..
        } => {
            let mut d = Vec::new();
            changed(&mut d, "name", &c.name, &t.name);
            changed(&mut d, "prefix", &c.prefix, &t.prefix);
            changed(&mut d, "description", &c.description, &t.description);
            changed(&mut d, "owner", &c.owner, &t.owner);
            changed(&mut d, "creator", &c.creator, &t.creator);
            d.extend(attrs_diff(&c.attrs, &t.attrs));
            format!(
                "volume set {} edited on both sides; kept the target's value: {}",
                short(id),
                or_times(d)
            )
        }
        Conflict::Snapshot {
            id,
            target: t,
            current: c,
            ..
        } => {
            let mut d = Vec::new();
            changed(&mut d, "name", &c.name, &t.name);
            changed(&mut d, "description", &c.description, &t.description);
            changed(&mut d, "owner", &c.owner, &t.owner);
            changed(&mut d, "creator", &c.creator, &t.creator);
            d.extend(attrs_diff(&c.attrs, &t.attrs));
            format!(
                "snapshot {} edited on both sides; kept the target's value: {}",
                short(id),
                or_times(d)
            )
        }
        Conflict::BranchRename {
            branch,
            target,
            current,
            initial,
            ..
        } => format!(
            "branch {} ({initial:?}) renamed on both sides; kept {target:?} over {current:?}",
            short(branch)
        ),
        Conflict::BranchNameClash {
            branch,
            wanted,
            given,
            holder,
            ..
        } => format!(
            "branch {} arrived as {given:?}: {wanted:?} is held by branch {}",
            short(branch),
            short(holder)
        ),
        Conflict::BranchTipTaken {
            branch,
            tip,
            holder,
            ..
        } => format!(
            "branch {} not applied: its tip {} is the tip of branch {}",
            short(branch),
            short(tip),
            short(holder)
        ),
    }
}

/// Tracks which volume set each snapshot, bush root and volume belongs to, so records
/// that name only a snapshot or volume can be placed in their volume set.
#[derive(Default)]
pub struct Membership {
    snapshots: HashMap<SnapshotId, VolumeSetId>,
    volumes: HashMap<VolumeId, VolumeSetId>,
}

impl Membership {
    /// Folds a record in and returns the volume sets it is about.
    pub fn apply(&mut self, ev: &Event) -> Vec<VolumeSetId> {
        match ev {
            Event::ForkBranch(b) | Event::ImportBranch(b) => {
                for s in &b.snapshots {
                    self.snapshots.insert(s.id, b.volume_set);
                }
            }
            Event::ExtendBranch {
                volume_set,
                snapshots,
                ..
            } => {
                for s in snapshots {
                    self.snapshots.insert(s.id, *volume_set);
                }
            }
            Event::ImportVolume { volume } => {
                self.volumes.insert(volume.id.clone(), volume.volume_set);
            }
            _ => {}
        }
        if let Some(v) = ev.volume_set() {
            return vec![v];
        }
        let mut out: Vec<VolumeSetId> = match ev {
            Event::UpdateSnapshots { updates } => updates
                .iter()
                .filter_map(|u| self.snapshots.get(&u.id).copied())
                .collect(),
            Event::SetBlobIdAndSize { snapshot, .. } => {
                self.snapshots.get(snapshot).copied().into_iter().collect()
            }
            Event::DeleteBush { root } => self.snapshots.get(root).copied().into_iter().collect(),
            Event::UpdateVolume { id, .. } | Event::DeleteVolume { id } => {
                self.volumes.get(id).copied().into_iter().collect()
            }
            // A conflict about a snapshot names only the snapshot.
            Event::SyncConflict { conflict, .. } => match &**conflict {
                mdslog::event::Conflict::Snapshot { id, .. } => {
                    self.snapshots.get(id).copied().into_iter().collect()
                }
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        out.sort();
        out.dedup();
        out
    }
}

/// A volume set the log ever held.
pub struct IndexedVs {
    pub name: String,
    pub prefix: String,
}

/// A branch the log ever held: every name it had, the last one last.
pub struct IndexedBranch {
    pub volume_set: VolumeSetId,
    pub names: Vec<String>,
}

/// Every object the log ever held, deleted ones included (for `history` and `dump
/// --volume-set`, which must find objects that are gone).
#[derive(Default)]
pub struct LogIndex {
    pub volume_sets: HashMap<VolumeSetId, IndexedVs>,
    /// Insertion order, for stable listings.
    vs_order: Vec<VolumeSetId>,
    pub snapshots: HashMap<SnapshotId, (VolumeSetId, String)>,
    snap_order: Vec<SnapshotId>,
    pub branches: HashMap<BranchId, IndexedBranch>,
    branch_order: Vec<BranchId>,
}

impl LogIndex {
    /// Builds the index from the whole log.
    pub fn build(log: &Log) -> Result<LogIndex, Fail> {
        let mut ix = LogIndex::default();
        scan(log, Lsn(1), None, "indexing", |_, _, env| {
            ix.add(&env.event);
            Ok(true)
        })?;
        Ok(ix)
    }

    fn add_branch(&mut self, vs: VolumeSetId, id: BranchId, name: &str) {
        match self.branches.get_mut(&id) {
            Some(b) => {
                if b.names.last().map(|n| n.as_str()) != Some(name) {
                    b.names.push(name.to_string());
                }
            }
            None => {
                self.branches.insert(
                    id,
                    IndexedBranch {
                        volume_set: vs,
                        names: vec![name.to_string()],
                    },
                );
                self.branch_order.push(id);
            }
        }
    }

    fn add_snapshots(&mut self, vs: VolumeSetId, snaps: &[mdslog::Snapshot]) {
        for s in snaps {
            if self.snapshots.insert(s.id, (vs, s.name.clone())).is_none() {
                self.snap_order.push(s.id);
            }
        }
    }

    fn add(&mut self, ev: &Event) {
        match ev {
            Event::ImportVolumeSet { volume_set: v } => {
                let fresh = IndexedVs {
                    name: v.name.clone(),
                    prefix: v.prefix.clone(),
                };
                let known = self.volume_sets.insert(v.id, fresh).is_some();
                if !known {
                    self.vs_order.push(v.id);
                }
            }
            Event::UpdateVolumeSet { id, new, .. } => {
                if let Some(v) = self.volume_sets.get_mut(id) {
                    v.name.clone_from(&new.name);
                    v.prefix.clone_from(&new.prefix);
                }
            }
            Event::ForkBranch(b) | Event::ImportBranch(b) => {
                self.add_snapshots(b.volume_set, &b.snapshots);
                self.add_branch(b.volume_set, b.branch, &b.name);
            }
            Event::ExtendBranch {
                volume_set,
                snapshots,
                ..
            } => self.add_snapshots(*volume_set, snapshots),
            Event::RenameBranch {
                volume_set,
                branch,
                new_name,
                ..
            } => self.add_branch(*volume_set, *branch, new_name),
            Event::UpdateSnapshots { updates } => {
                for u in updates {
                    if let Some(s) = self.snapshots.get_mut(&u.id) {
                        s.1.clone_from(&u.new.name);
                    }
                }
            }
            Event::DeleteSnapshots {
                volume_set,
                new_tip: Some(t),
                ..
            } => self.add_branch(*volume_set, t.branch, &t.name),
            _ => {}
        }
    }

    /// A volume set's last name, or its short id.
    pub fn vs_name(&self, id: VolumeSetId) -> String {
        self.volume_sets
            .get(&id)
            .map(|v| v.name.clone())
            .unwrap_or_else(|| short(id))
    }
}

impl Catalog for LogIndex {
    fn volume_sets(&self) -> Vec<VsEntry> {
        self.vs_order
            .iter()
            .map(|id| {
                let v = &self.volume_sets[id];
                VsEntry {
                    id: *id,
                    name: v.name.clone(),
                    prefix: v.prefix.clone(),
                }
            })
            .collect()
    }
    fn snapshots(&self) -> Vec<(SnapshotId, VolumeSetId)> {
        self.snap_order
            .iter()
            .map(|s| (*s, self.snapshots[s].0))
            .collect()
    }
    fn branches(&self) -> Vec<BranchEntry> {
        // A branch answers to every name it ever had.
        let mut out = Vec::new();
        for id in &self.branch_order {
            let b = &self.branches[id];
            for n in b.names.iter().rev() {
                out.push(BranchEntry {
                    id: *id,
                    volume_set: b.volume_set,
                    name: n.clone(),
                });
            }
        }
        out
    }
    fn snapshot_name(&self, id: SnapshotId) -> Option<String> {
        self.snapshots.get(&id).map(|s| s.1.clone())
    }
}

/// Decides which records touch one object, following it through the log in order.
pub struct Tracker {
    target: Object,
    /// For a volume set: every record about what it holds too.
    all: bool,
    /// The object's volume set.
    vs: VolumeSetId,
    alive: bool,
    /// For a snapshot: the branch whose tip it is.
    tip_of: Option<BranchId>,
    /// For a snapshot: volumes based on it.
    volumes: HashSet<VolumeId>,
    members: Membership,
}

impl Tracker {
    pub fn new(target: Object, index: &LogIndex, all: bool) -> Tracker {
        let vs = match target {
            Object::VolumeSet(v) | Object::Branch(v, _) => v,
            Object::Snapshot(s) => index
                .snapshots
                .get(&s)
                .map(|x| x.0)
                .unwrap_or(VolumeSetId(uuid::Uuid::nil())),
        };
        Tracker {
            target,
            all,
            vs,
            alive: false,
            tip_of: None,
            volumes: HashSet::new(),
            members: Membership::default(),
        }
    }

    /// Whether this record touches the object (records must come in LSN order).
    pub fn touches(&mut self, ev: &Event) -> bool {
        let in_vs = self.members.apply(ev).contains(&self.vs);
        let t = match self.target {
            Object::VolumeSet(v) => {
                let own = match ev {
                    Event::ImportVolumeSet { volume_set } => volume_set.id == v,
                    Event::UpdateVolumeSet { id, .. }
                    | Event::SetVolumeSetSize { id, .. }
                    | Event::DeleteVolumeSet { id } => *id == v,
                    Event::SyncConflict { conflict, .. } => matches!(
                        &**conflict,
                        mdslog::event::Conflict::VolumeSet { id, .. } if *id == v
                    ),
                    _ => false,
                };
                own || (self.all && in_vs)
            }
            Object::Snapshot(s) => self.snapshot_touch(s, ev),
            Object::Branch(_, b) => self.branch_touch(b, ev),
        };
        // A deleted volume set takes everything in it along.
        if let Event::DeleteVolumeSet { id } = ev {
            if *id == self.vs && self.alive {
                self.alive = false;
                return true;
            }
        }
        t
    }

    fn snapshot_touch(&mut self, s: SnapshotId, ev: &Event) -> bool {
        match ev {
            Event::ForkBranch(b) | Event::ImportBranch(b) => {
                let created = b.snapshots.iter().any(|x| x.id == s);
                if created {
                    self.alive = true;
                }
                if b.tip == s {
                    self.tip_of = Some(b.branch);
                }
                created || b.tip == s || b.snapshots.first().and_then(|x| x.parent) == Some(s)
            }
            Event::ExtendBranch {
                branch,
                old_tip,
                snapshots,
                ..
            } => {
                let created = snapshots.iter().any(|x| x.id == s);
                if created {
                    self.alive = true;
                }
                if *old_tip == s {
                    self.tip_of = None;
                }
                if snapshots.last().map(|x| x.id) == Some(s) {
                    self.tip_of = Some(*branch);
                }
                created || *old_tip == s
            }
            Event::RenameBranch { branch, .. } => self.tip_of == Some(*branch),
            Event::MoveBranch {
                branch,
                old_tip,
                new_tip,
                ..
            } => {
                if *old_tip == s {
                    self.tip_of = None;
                }
                if *new_tip == s {
                    self.tip_of = Some(*branch);
                }
                *old_tip == s || *new_tip == s
            }
            Event::SyncConflict { conflict, .. } => match &**conflict {
                mdslog::event::Conflict::Snapshot { id, .. } => *id == s,
                mdslog::event::Conflict::BranchTipTaken { tip, .. } => *tip == s,
                _ => false,
            },
            Event::UpdateSnapshots { updates } => updates.iter().any(|u| u.id == s),
            Event::SetBlobIdAndSize { snapshot, .. } => *snapshot == s,
            Event::DeleteSnapshots {
                snapshots, new_tip, ..
            } => {
                if snapshots.contains(&s) {
                    self.alive = false;
                    return true;
                }
                match new_tip {
                    Some(t) if t.snapshot == s => {
                        self.tip_of = Some(t.branch);
                        true
                    }
                    _ => false,
                }
            }
            Event::ImportBush { bush } => bush.root == s,
            Event::DeleteBush { root } => *root == s,
            Event::ImportVolume { volume } => {
                if volume.base == Some(s) {
                    self.volumes.insert(volume.id.clone());
                    return true;
                }
                false
            }
            Event::UpdateVolume { id, .. } | Event::DeleteVolume { id } => {
                self.volumes.contains(id)
            }
            _ => false,
        }
    }

    fn branch_touch(&mut self, b: BranchId, ev: &Event) -> bool {
        match ev {
            Event::ForkBranch(n) | Event::ImportBranch(n) if n.branch == b => {
                self.alive = true;
                true
            }
            Event::ExtendBranch { branch, .. }
            | Event::RenameBranch { branch, .. }
            | Event::MoveBranch { branch, .. } => *branch == b,
            Event::SyncConflict { conflict, .. } => match &**conflict {
                mdslog::event::Conflict::BranchRename { branch, .. } => *branch == b,
                mdslog::event::Conflict::BranchNameClash { branch, holder, .. }
                | mdslog::event::Conflict::BranchTipTaken { branch, holder, .. } => {
                    *branch == b || *holder == b
                }
                _ => false,
            },
            Event::DeleteSnapshots {
                removed_branches,
                new_tip,
                ..
            } => {
                if removed_branches.contains(&b) {
                    self.alive = false;
                    return true;
                }
                if new_tip.as_ref().is_some_and(|t| t.branch == b) {
                    self.alive = true;
                    return true;
                }
                false
            }
            _ => false,
        }
    }
}
