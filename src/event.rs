//! The record schema: one variant per mutation of the reference API, wrapped in an
//! [`Envelope`] with the wall-clock time and the actor.
//!
//! Each variant has a fixed record kind (the frame's `kind` field, see `log-format.md`);
//! a new shape of a variant gets a new kind number, so old logs keep decoding. Update
//! records carry the value they replaced, for the three-way resolver, sync and history.
//! This module only describes records: validation lives in `state::validate`, application
//! in `state`.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::log::{Lsn, RecordKind};
use crate::model::{
    Attrs, BlobId, BranchId, Bush, Snapshot, SnapshotId, SnapshotMeta, StoreId, Timestamp, Volume,
    VolumeId, VolumeSet, VolumeSetId, VolumeSetMeta,
};

/// A new branch: the snapshots it adds (oldest first, only those not already present) and
/// its tip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewBranch {
    pub volume_set: VolumeSetId,
    pub branch: BranchId,
    pub name: String,
    pub snapshots: Vec<Snapshot>,
    pub tip: SnapshotId,
}

/// One snapshot's metadata change within an `UpdateSnapshots` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotUpdate {
    pub id: SnapshotId,
    pub new: SnapshotMeta,
    pub old: SnapshotMeta,
    /// A blob id set by the update (only ever from nil to a value).
    pub set_blob: Option<BlobId>,
}

/// The unnamed (or renamed) branch that a `DeleteSnapshots` leaves on the new tip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTip {
    pub snapshot: SnapshotId,
    pub branch: BranchId,
    pub name: String,
}

/// A conflict a sync decided, with the three versions. `target` is the value that won
/// (the remote side of a sync, or the side an import prefers), `current` the value that
/// lost, `initial` the value both had before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Conflict {
    /// Both sides edited a volume set's metadata differently.
    VolumeSet {
        id: VolumeSetId,
        target: VolumeSetMeta,
        current: VolumeSetMeta,
        initial: VolumeSetMeta,
    },
    /// Both sides edited a snapshot's metadata differently.
    Snapshot {
        id: SnapshotId,
        target: SnapshotMeta,
        current: SnapshotMeta,
        initial: SnapshotMeta,
    },
    /// Both sides renamed a branch, to different names.
    BranchRename {
        volume_set: VolumeSetId,
        branch: BranchId,
        target: String,
        current: String,
        initial: String,
    },
    /// An incoming branch's name is held by another branch here: the incoming branch
    /// keeps its id and arrives under `given` (empty: unnamed).
    BranchNameClash {
        volume_set: VolumeSetId,
        branch: BranchId,
        wanted: String,
        given: String,
        holder: BranchId,
    },
    /// An incoming branch ends on a snapshot that is already the tip of another branch
    /// here (at most one branch per tip): the incoming branch was not applied.
    BranchTipTaken {
        volume_set: VolumeSetId,
        branch: BranchId,
        tip: SnapshotId,
        holder: BranchId,
    },
}

/// One mutation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    ImportVolumeSet {
        volume_set: VolumeSet,
    },
    UpdateVolumeSet {
        id: VolumeSetId,
        new: VolumeSetMeta,
        old: VolumeSetMeta,
    },
    SetVolumeSetSize {
        id: VolumeSetId,
        size: u64,
        old_size: u64,
    },
    DeleteVolumeSet {
        id: VolumeSetId,
    },
    ForkBranch(NewBranch),
    ImportBranch(NewBranch),
    ExtendBranch {
        volume_set: VolumeSetId,
        branch: BranchId,
        old_tip: SnapshotId,
        snapshots: Vec<Snapshot>,
    },
    RenameBranch {
        volume_set: VolumeSetId,
        branch: BranchId,
        old_name: String,
        new_name: String,
    },
    UpdateSnapshots {
        updates: Vec<SnapshotUpdate>,
    },
    SetBlobIdAndSize {
        snapshot: SnapshotId,
        blob: BlobId,
        size: u64,
        old_blob: BlobId,
        old_size: u64,
    },
    DeleteSnapshots {
        volume_set: VolumeSetId,
        snapshots: Vec<SnapshotId>,
        removed_branches: Vec<BranchId>,
        new_tip: Option<NewTip>,
    },
    ImportBush {
        bush: Bush,
    },
    DeleteBush {
        root: SnapshotId,
    },
    ImportVolume {
        volume: Volume,
    },
    UpdateVolume {
        id: VolumeId,
        name: String,
        attrs: Attrs,
        old_name: String,
        old_attrs: Attrs,
    },
    DeleteVolume {
        id: VolumeId,
    },
    /// The store's identity, written once (before its first sync or export).
    SetStoreId {
        id: StoreId,
    },
    /// A sync moved a branch forward to a snapshot the store already held.
    MoveBranch {
        volume_set: VolumeSetId,
        branch: BranchId,
        old_tip: SnapshotId,
        new_tip: SnapshotId,
    },
    /// The next `records` records came from `peer`; the records of `volume_set` in
    /// `peer`'s log up to LSN `through` are applied here (the sync cursor).
    SyncApplied {
        peer: StoreId,
        volume_set: VolumeSetId,
        through: Lsn,
        records: u32,
    },
    /// A conflict a sync with `peer` decided here. `adopted`: this store took the peer's
    /// value (nothing to tell the peer); otherwise this store kept its value, and the
    /// record travels to the peer, which adopts it.
    SyncConflict {
        peer: StoreId,
        conflict: Box<Conflict>,
        adopted: bool,
    },
}

/// Every kind this version writes, with its name (for dumps and `--kind` filters).
pub const KINDS: [(u16, &str); 20] = [
    (1, "import-volume-set"),
    (2, "update-volume-set"),
    (3, "set-volume-set-size"),
    (4, "delete-volume-set"),
    (5, "fork-branch"),
    (6, "import-branch"),
    (7, "extend-branch"),
    (8, "rename-branch"),
    (9, "update-snapshots"),
    (10, "set-blob-id-and-size"),
    (11, "delete-snapshots"),
    (12, "import-bush"),
    (13, "delete-bush"),
    (14, "import-volume"),
    (15, "update-volume"),
    (16, "delete-volume"),
    (17, "set-store-id"),
    (18, "move-branch"),
    (19, "sync-applied"),
    (20, "sync-conflict"),
];

/// The name of a record kind, if this version knows it.
pub fn kind_name(kind: RecordKind) -> Option<&'static str> {
    KINDS.iter().find(|(k, _)| *k == kind.0).map(|(_, n)| *n)
}

impl Event {
    /// The record kind this event is written with.
    pub fn kind(&self) -> RecordKind {
        RecordKind(match self {
            Event::ImportVolumeSet { .. } => 1,
            Event::UpdateVolumeSet { .. } => 2,
            Event::SetVolumeSetSize { .. } => 3,
            Event::DeleteVolumeSet { .. } => 4,
            Event::ForkBranch(_) => 5,
            Event::ImportBranch(_) => 6,
            Event::ExtendBranch { .. } => 7,
            Event::RenameBranch { .. } => 8,
            Event::UpdateSnapshots { .. } => 9,
            Event::SetBlobIdAndSize { .. } => 10,
            Event::DeleteSnapshots { .. } => 11,
            Event::ImportBush { .. } => 12,
            Event::DeleteBush { .. } => 13,
            Event::ImportVolume { .. } => 14,
            Event::UpdateVolume { .. } => 15,
            Event::DeleteVolume { .. } => 16,
            Event::SetStoreId { .. } => 17,
            Event::MoveBranch { .. } => 18,
            Event::SyncApplied { .. } => 19,
            Event::SyncConflict { .. } => 20,
        })
    }

    /// The volume set this event belongs to, when it names one directly.
    pub fn volume_set(&self) -> Option<VolumeSetId> {
        match self {
            Event::ImportVolumeSet { volume_set } => Some(volume_set.id),
            Event::UpdateVolumeSet { id, .. }
            | Event::SetVolumeSetSize { id, .. }
            | Event::DeleteVolumeSet { id } => Some(*id),
            Event::ForkBranch(b) | Event::ImportBranch(b) => Some(b.volume_set),
            Event::ExtendBranch { volume_set, .. }
            | Event::RenameBranch { volume_set, .. }
            | Event::DeleteSnapshots { volume_set, .. }
            | Event::MoveBranch { volume_set, .. }
            | Event::SyncApplied { volume_set, .. } => Some(*volume_set),
            Event::SyncConflict { conflict, .. } => Some(match &**conflict {
                Conflict::VolumeSet { id, .. } => *id,
                Conflict::Snapshot { .. } => return None,
                Conflict::BranchRename { volume_set, .. }
                | Conflict::BranchNameClash { volume_set, .. }
                | Conflict::BranchTipTaken { volume_set, .. } => *volume_set,
            }),
            Event::ImportBush { bush } => Some(bush.volume_set),
            Event::ImportVolume { volume } => Some(volume.volume_set),
            _ => None,
        }
    }
}

/// A record as stored: the event, when it happened, and who did it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub time: Timestamp,
    pub actor: Option<String>,
    pub event: Event,
}

impl Envelope {
    /// Encodes the record payload.
    pub fn encode(&self) -> Result<Vec<u8>> {
        crate::codec::encode(self)
    }

    /// Decodes a record payload and checks it against the frame's kind.
    pub fn decode(lsn: Lsn, kind: RecordKind, payload: &[u8]) -> Result<Envelope> {
        if kind_name(kind).is_none() {
            return Err(Error::Decode {
                lsn,
                message: format!("unknown record kind {}", kind.0),
            });
        }
        let env: Envelope = crate::codec::decode(lsn, payload)?;
        if env.event.kind() != kind {
            return Err(Error::Decode {
                lsn,
                message: format!(
                    "frame kind {} holds a {} record",
                    kind.0,
                    kind_name(env.event.kind()).unwrap_or("?")
                ),
            });
        }
        Ok(env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins the payload bytes of one record, as `log-format.md` §4 describes them.
    #[test]
    fn payload_bytes_are_as_specified() {
        let id = VolumeSetId(uuid::Uuid::from_bytes([7; 16]));
        let env = Envelope {
            time: Timestamp(-2),
            actor: Some("ab".into()),
            event: Event::DeleteVolumeSet { id },
        };
        let mut want = vec![3u8]; // zigzag(-2) = 3
        want.extend([1, 2, b'a', b'b']); // Some, length 2, "ab"
        want.push(3); // variant index of DeleteVolumeSet
        want.push(16); // uuid as bytes: length 16
        want.extend([7u8; 16]);
        assert_eq!(env.encode().unwrap(), want);
        assert_eq!(Envelope::decode(Lsn(1), RecordKind(4), &want).unwrap(), env);
        assert!(
            Envelope::decode(Lsn(1), RecordKind(5), &want).is_err(),
            "kind must match the variant"
        );
        assert!(Envelope::decode(Lsn(1), RecordKind(999), &want).is_err());
    }

    #[test]
    fn kinds_are_the_variant_order() {
        for (i, (k, _)) in KINDS.iter().enumerate() {
            assert_eq!(*k as usize, i + 1);
        }
    }
}
