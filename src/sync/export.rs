//! The sending side of a sync: the records of one volume set in a log after a cursor,
//! made portable, each with the store it came from when a sync brought it here. Reads the
//! log only; the caller places snapshot updates whose snapshot was created before the
//! cursor (see [`Collected::finish`]).
//!
//! Left out: records that never travel (sizes, blobs, deletions, bushes, volumes,
//! identities, cursors) and conflicts this store settled by adopting the other side's
//! value. Cleared: blob ids and sizes of snapshots, the volume set's size.
//!
//! [`strip_for`] then prepares a batch for one destination (the sender does it when it
//! knows the destination, the receiver always): records that came from the destination
//! itself go (a sync does not echo back what it just received), conflicts addressed to
//! another store go (except name clashes, which every store that knows the branch takes), and so does every edit of an object made before the destination's
//! own last edit of it: the destination's value was this store's value after that edit,
//! so an edit's `old` must be from after it, or the receiver would see a conflict with
//! itself.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::event::{Conflict, Envelope, Event};
use crate::log::{Log, Lsn};
use crate::model::{BlobId, BranchId, SnapshotId, StoreId, VolumeSetId};
use crate::state::{Map, Set, State};

/// An object whose metadata edits compose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Obj {
    VolumeSet,
    Snapshot(SnapshotId),
    Branch(BranchId),
}

/// The objects a metadata record (or conflict) is about.
fn objects(ev: &Event) -> Vec<Obj> {
    match ev {
        Event::UpdateVolumeSet { .. } => vec![Obj::VolumeSet],
        Event::RenameBranch { branch, .. } => vec![Obj::Branch(*branch)],
        Event::UpdateSnapshots { updates } => updates.iter().map(|u| Obj::Snapshot(u.id)).collect(),
        Event::SyncConflict { conflict, .. } => match &**conflict {
            Conflict::VolumeSet { .. } => vec![Obj::VolumeSet],
            Conflict::Snapshot { id, .. } => vec![Obj::Snapshot(*id)],
            Conflict::BranchRename { branch, .. } | Conflict::BranchNameClash { branch, .. } => {
                vec![Obj::Branch(*branch)]
            }
            Conflict::BranchTipTaken { .. } => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// Records gathered from the log, before snapshot updates are placed.
pub(crate) struct Collected {
    records: Vec<(Lsn, Envelope)>,
    origins: BTreeMap<Lsn, StoreId>,
    /// Snapshots the scanned records created in the volume set.
    members: Set<SnapshotId>,
    /// Snapshots the scanned records created in other volume sets.
    others: Set<SnapshotId>,
    vs: VolumeSetId,
}

/// Scans `(after, through]` of `log` for the records of `vs` that travel.
pub(crate) fn collect(log: &Log, vs: VolumeSetId, after: Lsn, through: Lsn) -> Result<Collected> {
    let mut out = Collected {
        records: Vec::new(),
        origins: BTreeMap::new(),
        members: Set::default(),
        others: Set::default(),
        vs,
    };
    // The store the next `n` records came from (a `SyncApplied` header's count).
    let mut from: Option<(StoreId, u64)> = None;
    let mut it = log.iter_from(after.next());
    // Stop before reading past `through`: the iterator remembers where it stopped, which
    // is where the next export starts.
    while it.next_lsn() <= through {
        let Some(r) = it.next_record()? else { break };
        let origin = match &mut from {
            Some((peer, n)) if *n > 0 => {
                *n -= 1;
                Some(*peer)
            }
            _ => None,
        };
        // Decode only what can matter: traveling kinds, deletions of the volume set (the
        // history before one no longer applies) and sync headers.
        if !(crate::sync::batch::is_sync_kind(r.kind) || matches!(r.kind.0, 4 | 19)) {
            continue;
        }
        let mut env = Envelope::decode(r.lsn, r.kind, r.payload)?;
        let lsn = r.lsn;
        match &mut env.event {
            Event::SyncApplied { peer, records, .. } => {
                from = Some((*peer, u64::from(*records)));
                continue;
            }
            Event::DeleteVolumeSet { id } => {
                if *id == vs {
                    out.records.clear();
                    out.origins.clear();
                    out.members.clear();
                }
                continue;
            }
            Event::ImportVolumeSet { volume_set } => volume_set.size = 0,
            Event::ForkBranch(b) | Event::ImportBranch(b) => {
                let set = if b.volume_set == vs {
                    &mut out.members
                } else {
                    &mut out.others
                };
                for s in &mut b.snapshots {
                    set.insert(s.id);
                    s.blob = BlobId::nil();
                    s.size = 0;
                }
            }
            Event::ExtendBranch {
                volume_set,
                snapshots,
                ..
            } => {
                let set = if *volume_set == vs {
                    &mut out.members
                } else {
                    &mut out.others
                };
                for s in snapshots {
                    set.insert(s.id);
                    s.blob = BlobId::nil();
                    s.size = 0;
                }
            }
            Event::UpdateSnapshots { updates } => {
                updates.retain(|u| !out.others.contains(&u.id));
                for u in updates.iter_mut() {
                    u.set_blob = None;
                }
                if updates.is_empty() {
                    continue;
                }
            }
            // Settled here by taking the other side's value: nothing to tell anyone.
            Event::SyncConflict { adopted: true, .. } => continue,
            _ => {}
        }
        // Snapshot updates and snapshot conflicts name no volume set: placed in `finish`.
        let keep = match env.event.volume_set() {
            Some(v) => v == vs,
            None => matches!(
                env.event,
                Event::UpdateSnapshots { .. } | Event::SyncConflict { .. }
            ),
        };
        if keep {
            if let Some(o) = origin {
                out.origins.insert(lsn, o);
            }
            out.records.push((lsn, env));
        }
    }
    Ok(out)
}

/// Records of a batch with the stores they came from.
pub(crate) type Records = (Vec<(Lsn, Envelope)>, BTreeMap<Lsn, StoreId>);

impl Collected {
    /// Keeps only the snapshot updates and conflicts about snapshots of the volume set,
    /// looking up in `state` those the scanned records did not create.
    pub(crate) fn finish(self, state: &State) -> Records {
        let Collected {
            mut records,
            mut origins,
            members,
            vs,
            ..
        } = self;
        let ours = |id: &SnapshotId| {
            members.contains(id) || state.snapshots.get(id).is_some_and(|r| r.volume_set == vs)
        };
        records.retain_mut(|(_, env)| match &mut env.event {
            Event::UpdateSnapshots { updates } => {
                updates.retain(|u| ours(&u.id));
                !updates.is_empty()
            }
            Event::SyncConflict { conflict, .. } => match &**conflict {
                Conflict::Snapshot { id, .. } => ours(id),
                _ => true,
            },
            _ => true,
        });
        retain_origins(&records, &mut origins);
        (records, origins)
    }
}

fn retain_origins(records: &[(Lsn, Envelope)], origins: &mut BTreeMap<Lsn, StoreId>) {
    if origins.is_empty() {
        return;
    }
    let kept: Set<Lsn> = records.iter().map(|(l, _)| *l).collect();
    origins.retain(|l, _| kept.contains(l));
}

/// Prepares records for the store `dest`: drops what came from it, conflicts addressed to
/// others, and edits made before `dest`'s own last edit of the same object.
/// Returns how many records came from `dest` (left out as echoes).
pub(crate) fn strip_for(
    records: &mut Vec<(Lsn, Envelope)>,
    origins: &mut BTreeMap<Lsn, StoreId>,
    dest: StoreId,
) -> u64 {
    let mut barriers: Map<Obj, Lsn> = Map::default();
    for (lsn, env) in records.iter() {
        if origins.get(lsn) == Some(&dest) {
            for o in objects(&env.event) {
                barriers.insert(o, *lsn);
            }
        }
    }
    let before = |lsn: Lsn, o: Obj| barriers.get(&o).is_some_and(|b| lsn < *b);
    let mut echoes = 0;
    records.retain_mut(|(lsn, env)| {
        if origins.get(lsn) == Some(&dest) {
            echoes += 1;
            return false;
        }
        match &mut env.event {
            Event::UpdateSnapshots { updates } => {
                updates.retain(|u| !before(*lsn, Obj::Snapshot(u.id)));
                !updates.is_empty()
            }
            // A name clash concerns every store that knows the branch; other conflicts
            // only the store they were decided with.
            Event::SyncConflict { peer, conflict, .. }
                if *peer != dest && !matches!(**conflict, Conflict::BranchNameClash { .. }) =>
            {
                false
            }
            Event::UpdateVolumeSet { .. }
            | Event::RenameBranch { .. }
            | Event::SyncConflict { .. } => {
                !objects(&env.event).into_iter().any(|o| before(*lsn, o))
            }
            _ => true,
        }
    });
    retain_origins(records, origins);
    echoes
}
