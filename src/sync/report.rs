//! What a sync did: per direction an [`ApplyReport`], for the whole exchange a
//! [`SyncReport`]. Plain values, serializable for `--json`.

use serde::Serialize;

use crate::event::Conflict;
use crate::log::Lsn;
use crate::model::{BranchId, SnapshotId, StoreId, VolumeSetId};

/// Who wins a metadata conflict when a batch is applied. In a sync the remote side is the
/// target and wins: [`Winner::Receiver`] when pushing to it, [`Winner::Sender`] when
/// pulling from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Winner {
    /// The store applying the batch keeps its value.
    Receiver,
    /// The store the batch comes from imposes its value.
    Sender,
}

/// A branch whose two histories diverged: neither tip is an ancestor of the other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Divergence {
    pub volume_set: VolumeSetId,
    pub branch: BranchId,
    /// The branch's name on the receiving side (or the incoming name).
    pub name: String,
    /// The branch's tip on the receiving side.
    pub receiver_tip: SnapshotId,
    /// The branch's tip on the sending side.
    pub sender_tip: SnapshotId,
    /// The newest snapshot both histories share, if any.
    pub common: Option<SnapshotId>,
}

/// A branch that could not be applied because an ancestor of its tip is in neither the
/// batch nor the receiving store (it was deleted there, or is before the cursor): a full
/// sync (`SyncMode` with cursor zero) sends the whole history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MissingAncestor {
    pub volume_set: VolumeSetId,
    pub branch: BranchId,
    pub missing: SnapshotId,
}

/// What applying one batch did to the receiving store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ApplyReport {
    /// The store the batch came from (nil until known).
    pub source: Option<StoreId>,
    /// Records in the batch, and those of them not applied before (after the cursor).
    pub records_received: u64,
    pub records_new: u64,
    /// The receiver's cursor for the source after the apply.
    pub cursor: Lsn,
    /// Records the receiver wrote (data, conflicts and cursor).
    pub records_written: u64,
    pub volume_set_created: bool,
    pub volume_set_updated: bool,
    pub snapshots_added: u64,
    pub snapshots_updated: u64,
    pub branches_added: u64,
    pub branches_extended: u64,
    pub branches_renamed: u64,
    /// Branches where the receiver was ahead of the batch: nothing to do.
    pub branches_behind: u64,
    /// Objects where the target's value was kept or adopted without a conflict.
    pub adopted: u64,
    pub conflicts: Vec<Conflict>,
    pub divergences: Vec<Divergence>,
    pub missing: Vec<MissingAncestor>,
}

impl ApplyReport {
    /// Whether the apply changed anything but the cursor.
    pub fn changed_anything(&self) -> bool {
        self.volume_set_created
            || self.volume_set_updated
            || self.snapshots_added > 0
            || self.snapshots_updated > 0
            || self.branches_added > 0
            || self.branches_extended > 0
            || self.branches_renamed > 0
    }
}

/// How a sync runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SyncMode {
    /// Push local to remote, then pull remote to local.
    Both,
    /// Pull only: nothing is written on the remote side.
    PullOnly,
    /// Push only: nothing is written on the local side (exporting to a bundle).
    PushOnly,
}

/// What a sync did, both directions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    pub volume_set: VolumeSetId,
    pub mode: SyncMode,
    /// Local to remote (absent in pull-only mode).
    pub pushed: Option<ApplyReport>,
    /// Remote to local (absent in push-only mode).
    pub pulled: Option<ApplyReport>,
    /// Every conflict of both directions, once each (the remote side's value won).
    pub conflicts: Vec<Conflict>,
    pub divergences: Vec<Divergence>,
    pub missing: Vec<MissingAncestor>,
}

impl SyncReport {
    /// Volume set metadata conflicts.
    pub fn volume_set_conflicts(&self) -> impl Iterator<Item = &Conflict> {
        self.conflicts
            .iter()
            .filter(|c| matches!(c, Conflict::VolumeSet { .. }))
    }
    /// Snapshot metadata conflicts.
    pub fn snapshot_conflicts(&self) -> impl Iterator<Item = &Conflict> {
        self.conflicts
            .iter()
            .filter(|c| matches!(c, Conflict::Snapshot { .. }))
    }
    /// Branch conflicts: renames on both sides, name clashes, tips held by another branch.
    pub fn branch_conflicts(&self) -> impl Iterator<Item = &Conflict> {
        self.conflicts.iter().filter(|c| {
            matches!(
                c,
                Conflict::BranchRename { .. }
                    | Conflict::BranchNameClash { .. }
                    | Conflict::BranchTipTaken { .. }
            )
        })
    }
}
