//! The sending side of a sync: the records of one volume set in a log after a cursor,
//! made portable. Reads the log only; the caller resolves the volume set of snapshot
//! updates whose snapshot was created before the cursor (see [`Collected::finish`]).
//!
//! Left out: records that never travel (sizes, blobs, deletions, bushes, volumes,
//! identities, cursors), records that came from the destination itself (a `SyncApplied`
//! header names them, so a sync does not echo back what it just received), and conflicts
//! addressed to another store. Cleared: blob ids and sizes of snapshots, the volume set's
//! size.

use crate::error::Result;
use crate::event::{Envelope, Event};
use crate::log::{Log, Lsn};
use crate::model::{BlobId, SnapshotId, StoreId, VolumeSetId};
use crate::state::{Set, State};

/// Records gathered from the log, before snapshot updates are placed.
pub(crate) struct Collected {
    records: Vec<(Lsn, Envelope)>,
    /// Snapshots the scanned records created in the volume set.
    members: Set<SnapshotId>,
    /// Snapshots the scanned records created in other volume sets.
    others: Set<SnapshotId>,
    vs: VolumeSetId,
}

/// Scans `(after, through]` of `log` for the records of `vs` that travel to `to`.
pub(crate) fn collect(
    log: &Log,
    vs: VolumeSetId,
    after: Lsn,
    through: Lsn,
    to: Option<StoreId>,
) -> Result<Collected> {
    let mut out = Collected {
        records: Vec::new(),
        members: Set::default(),
        others: Set::default(),
        vs,
    };
    let mut skip: u64 = 0;
    let mut it = log.iter_from(after.next());
    while let Some(r) = it.next_record()? {
        if r.lsn > through {
            break;
        }
        if skip > 0 {
            skip -= 1;
            continue;
        }
        // Decode only what can matter: traveling kinds, deletions of the volume set (the
        // history before one no longer applies) and sync headers.
        if !(crate::sync::batch::is_sync_kind(r.kind) || matches!(r.kind.0, 4 | 19)) {
            continue;
        }
        let mut env = Envelope::decode(r.lsn, r.kind, r.payload)?;
        let lsn = r.lsn;
        match &mut env.event {
            Event::SyncApplied { peer, records, .. } => {
                if Some(*peer) == to {
                    skip = u64::from(*records);
                }
                continue;
            }
            Event::DeleteVolumeSet { id } => {
                if *id == vs {
                    out.records.clear();
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
            Event::SyncConflict { peer, .. } if to.is_some_and(|t| t != *peer) => continue,
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
            out.records.push((lsn, env));
        }
    }
    Ok(out)
}

impl Collected {
    /// Keeps only the snapshot updates and conflicts about snapshots of the volume set,
    /// looking up in `state` those the scanned records did not create.
    pub(crate) fn finish(self, state: &State) -> Vec<(Lsn, Envelope)> {
        let Collected {
            mut records,
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
                crate::event::Conflict::Snapshot { id, .. } => ours(id),
                _ => true,
            },
            _ => true,
        });
        records
    }
}
