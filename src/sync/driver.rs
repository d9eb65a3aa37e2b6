//! The sync driver: push (local to remote), then pull (remote to local), each one batch
//! after the receiver's cursor, applied atomically with the cursor. The remote side is the
//! target: it keeps its value on a conflict when receiving, and imposes it when sending.
//! Never touches a store except through [`Peer`].

use crate::error::{Error, Result};
use crate::event::Conflict;
use crate::log::Lsn;
use crate::model::{StoreId, VolumeSetId};
use crate::sync::peer::Peer;
use crate::sync::report::{SyncMode, SyncReport, Winner};

/// Options of one sync beyond its mode.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncOptions {
    /// Send whole histories (cursor zero) instead of what follows the cursors: recovers
    /// branches a diverged or missing-ancestor report left behind.
    pub full: bool,
}

/// Syncs `vs` between `local` and `remote` (the target). Errors with `VolumeSetNotFound`
/// when neither holds it.
pub fn sync(
    local: &dyn Peer,
    remote: &dyn Peer,
    vs: VolumeSetId,
    mode: SyncMode,
) -> Result<SyncReport> {
    sync_with(local, remote, vs, mode, SyncOptions::default())
}

/// [`sync`] with options.
pub fn sync_with(
    local: &dyn Peer,
    remote: &dyn Peer,
    vs: VolumeSetId,
    mode: SyncMode,
    options: SyncOptions,
) -> Result<SyncReport> {
    let local_id = local.store_id()?;
    let remote_id = remote.store_id()?;
    if let Some(id) = local_id.filter(|id| Some(*id) == remote_id) {
        return Err(Error::InvalidArgument(format!(
            "both sides are the same store ({id}); a follower of a store cannot sync with it"
        )));
    }
    let cursor = |peer: &dyn Peer, from: Option<StoreId>| -> Result<Lsn> {
        match from {
            Some(from) if !options.full => peer.cursor(from, vs),
            _ => Ok(Lsn::ZERO),
        }
    };
    let mut report = SyncReport {
        volume_set: vs,
        mode,
        pushed: None,
        pulled: None,
        conflicts: Vec::new(),
        divergences: Vec::new(),
        missing: Vec::new(),
    };
    let mut found = false;
    if mode != SyncMode::PullOnly {
        let after = cursor(remote, local_id)?;
        if let Some(batch) = local.export(vs, after, remote_id)? {
            found = true;
            report.pushed = Some(remote.apply(&batch, Winner::Receiver)?);
        }
    }
    if mode != SyncMode::PushOnly {
        let after = cursor(local, remote_id)?;
        if let Some(batch) = remote.export(vs, after, local_id)? {
            found = true;
            report.pulled = Some(local.apply(&batch, Winner::Sender)?);
        }
    }
    if !found {
        return Err(Error::VolumeSetNotFound(vs));
    }
    for r in [&report.pushed, &report.pulled].into_iter().flatten() {
        for c in &r.conflicts {
            // A conflict decided while pushing comes back when pulling (the remote's
            // record of it): report each object once.
            if !report.conflicts.iter().any(|k| same_object(k, c)) {
                report.conflicts.push(c.clone());
            }
        }
        report.divergences.extend(r.divergences.iter().cloned());
        report.missing.extend(r.missing.iter().cloned());
    }
    Ok(report)
}

fn same_object(a: &Conflict, b: &Conflict) -> bool {
    match (a, b) {
        (Conflict::VolumeSet { id: x, .. }, Conflict::VolumeSet { id: y, .. }) => x == y,
        (Conflict::Snapshot { id: x, .. }, Conflict::Snapshot { id: y, .. }) => x == y,
        (Conflict::BranchRename { branch: x, .. }, Conflict::BranchRename { branch: y, .. })
        | (
            Conflict::BranchNameClash { branch: x, .. },
            Conflict::BranchNameClash { branch: y, .. },
        )
        | (
            Conflict::BranchTipTaken { branch: x, .. },
            Conflict::BranchTipTaken { branch: y, .. },
        ) => x == y,
        _ => false,
    }
}

/// The original's `Do(target, current, initial, vs, pull_only)`: `initial` is implicit
/// (each store's log holds the state as of its last exchange with the other, through the
/// cursors), `current` is the local store and `target` the remote one.
pub fn do_sync(
    target: &dyn Peer,
    current: &dyn Peer,
    vs: VolumeSetId,
    pull_only: bool,
) -> Result<SyncReport> {
    let mode = if pull_only {
        SyncMode::PullOnly
    } else {
        SyncMode::Both
    };
    sync(current, target, vs, mode)
}
