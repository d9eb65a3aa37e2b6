//! The metadata store: the reference API, where every mutation is validated against the
//! state, appended to the log as one record, and applied to the projections.
//!
//! Writers serialize on one mutex for validate + submit + apply, so log order is
//! validation order and each mutation sees every one queued before it (two extends of one
//! tip: the second sees the first). Durability is waited for outside that mutex, so
//! concurrent writers share fsyncs. Readers see only durable state: a reader that finds
//! applied records not yet durable waits (holding its read lock, so no further records
//! apply meanwhile) until they are, which is at most one group commit. A failed write or
//! fsync poisons the store: the projections may hold records the disk lost, so every
//! later call fails until the store is reopened and replayed.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use crate::error::{Error, Result};
use crate::event::{Envelope, Event};
use crate::log::{fs, Durability, Log, LogOptions, Lsn, Record, RecoveryReport};
use crate::model::{
    Attrs, BlobId, Branch, BranchId, BranchQuery, Bush, Snapshot, SnapshotId, SnapshotQuery,
    StoreId, Timestamp, Volume, VolumeId, VolumeSet, VolumeSetId, VolumeSetQuery,
};
use crate::state::query::{CanonicalDump, Counts};
use crate::state::State;
use crate::sync::MetaConflict;

/// Settings of a store.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    pub log: LogOptions,
    /// Recorded as the actor of every mutation made through this handle.
    pub actor: Option<String>,
}

/// A (volume set, snapshot) pair for [`Store::update_snapshots`]: current and initial.
pub type SnapshotPair = (Snapshot, Option<Snapshot>);

/// The result of negotiating a blob transfer: the base snapshot to diff from (none:
/// start from empty) and its blob id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobBase {
    pub base: Option<SnapshotId>,
    pub base_blob: BlobId,
}

/// An open metadata store. `Send + Sync`: share it with an `Arc`.
pub struct Store {
    log: Log,
    state: RwLock<State>,
    write: Mutex<()>,
    options: StoreOptions,
    poisoned: AtomicBool,
    checkpoint_warnings: Vec<String>,
    opened_from_checkpoint: Option<Lsn>,
    /// Write a checkpoint once this many records follow the last one (0: never).
    checkpoint_every: AtomicU64,
    last_checkpoint: AtomicU64,
    checkpoint_error: Mutex<Option<String>>,
    /// Held while a checkpoint is written: two at once (same LSN, same temporary file)
    /// would break each other.
    checkpointing: Mutex<()>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("log", &self.log).finish()
    }
}

/// Most snapshots a sync puts in one record (bounds record size: ~100-300 bytes each).
const SYNC_SNAPSHOTS_PER_RECORD: usize = 8192;

/// How far a peer's log may run past the cursor, in records that had nothing to apply,
/// before a sync writes a cursor record anyway.
const SYNC_CURSOR_LAG_MAX: u64 = 4096;

/// Records decoded per batch handed from the decoding thread to the applying one.
const REPLAY_BATCH_RECORDS: usize = 4096;
/// Batches in flight between the two replay threads.
const REPLAY_QUEUE_BATCHES: usize = 8;

/// Replays every durable record of a log into a fresh state, up to `until` (inclusive).
///
/// Decoding and applying are about equally expensive, so they run on two threads: this
/// one reads and decodes, a helper applies, connected by a small bounded queue.
fn replay(log: &Log, until: Option<Lsn>, start: Option<State>) -> Result<State> {
    let until = until.unwrap_or(Lsn(u64::MAX));
    let from_start = start.is_none();
    let mut state = start.unwrap_or_default();
    let from = state.applied_lsn().next();
    // Most records add a snapshot: size the table once instead of growing it repeatedly.
    state.reserve_snapshots(
        log.durable_lsn()
            .0
            .min(until.0)
            .saturating_sub(from.0)
            .min(1 << 26) as usize,
    );
    let (tx, rx) = crossbeam_channel::bounded::<Vec<(Lsn, Envelope)>>(REPLAY_QUEUE_BATCHES);
    std::thread::scope(|scope| {
        let applier = scope.spawn(move || {
            for batch in rx {
                for (lsn, env) in &batch {
                    state.apply(*lsn, env);
                }
            }
            state
        });
        let decoded = (|| {
            let mut it = if until == Lsn(u64::MAX) && from_start {
                log.iter_recovered()
            } else {
                log.iter_from(from)
            };
            let mut batch = Vec::with_capacity(REPLAY_BATCH_RECORDS);
            while let Some(r) = it.next_record()? {
                if r.lsn > until {
                    break;
                }
                batch.push((r.lsn, Envelope::decode(r.lsn, r.kind, r.payload)?));
                if batch.len() == REPLAY_BATCH_RECORDS {
                    let full =
                        std::mem::replace(&mut batch, Vec::with_capacity(REPLAY_BATCH_RECORDS));
                    if tx.send(full).is_err() {
                        break;
                    }
                }
            }
            if !batch.is_empty() {
                let _ = tx.send(batch);
            }
            Ok(())
        })();
        drop(tx);
        let state = applier
            .join()
            .map_err(|_| Error::InvalidArgument("replay thread panicked".into()))?;
        decoded.map(|()| state)
    })
}

/// The actor goes into every record: a name, at most `NAME_BYTES_MAX` bytes, no control
/// characters (checked before the log is opened).
fn check_options(options: &StoreOptions) -> Result<()> {
    if let Some(actor) = &options.actor {
        crate::model::query::validate_text("actor", actor, crate::model::query::NAME_BYTES_MAX)?;
    }
    Ok(())
}

/// The blake3 of the payload of the log's record at `lsn` (zeros at LSN 0), for matching a
/// checkpoint to the log it was made from.
fn record_digest(log: &Log, lsn: Lsn) -> Result<Option<[u8; 32]>> {
    if lsn == Lsn::ZERO {
        return Ok(Some([0; 32]));
    }
    let mut it = log.iter_from(lsn);
    Ok(match it.next_record()? {
        Some(r) if r.lsn == lsn => Some(*blake3::hash(r.payload).as_bytes()),
        _ => None,
    })
}

impl Store {
    /// Opens (creating if needed) a store in `dir` for writing: takes the lock, recovers
    /// the log and replays it.
    pub fn open(dir: impl AsRef<Path>, options: StoreOptions) -> Result<Store> {
        let dir = dir.as_ref();
        let storage = fs::DirStorage::new(dir, true)
            .map_err(|e| Error::io("create directory", dir.into(), e))?;
        Store::open_on(Arc::new(storage), options, true)
    }

    /// Opens a store read-only (no lock, no change to any file), beside a live writer or
    /// on a copy. [`Store::refresh`] picks up what a writer made durable since.
    pub fn open_read_only(dir: impl AsRef<Path>, options: StoreOptions) -> Result<Store> {
        let dir = dir.as_ref();
        let storage = fs::DirStorage::new(dir, false)
            .map_err(|e| Error::io("open directory", dir.into(), e))?;
        Store::open_on(Arc::new(storage), options, false)
    }

    /// Opens a store for writing on any storage (tests use the simulated one).
    pub fn open_with(storage: Arc<dyn fs::Storage>, options: StoreOptions) -> Result<Store> {
        Store::open_on(storage, options, true)
    }

    /// Recovers the log and, on a second thread at the same time, reads the newest
    /// checkpoint; then checks the checkpoint against the log and replays the rest.
    fn open_on(
        storage: Arc<dyn fs::Storage>,
        options: StoreOptions,
        writable: bool,
    ) -> Result<Store> {
        check_options(&options)?;
        let cancel = AtomicBool::new(false);
        let (log, prefetched) = std::thread::scope(|scope| {
            let reader = std::thread::Builder::new()
                .name("mdslog-checkpoint".into())
                .spawn_scoped(scope, || crate::checkpoint::prefetch(&*storage, &cancel));
            let log = if writable {
                Log::open_with(storage.clone(), options.log.clone())
            } else {
                Log::open_read_only_with(storage.clone(), options.log.clone())
            };
            if log.is_err() {
                cancel.store(true, Ordering::Release);
            }
            // No thread, or it died: load_newest reads the files itself.
            let prefetched = reader.ok().and_then(|h| h.join().ok()).flatten();
            (log, prefetched)
        });
        Store::from_log(log?, options, prefetched)
    }

    fn from_log(
        log: Log,
        options: StoreOptions,
        prefetched: Option<crate::checkpoint::Prefetched>,
    ) -> Result<Store> {
        let (start, checkpoint_warnings) = crate::checkpoint::load_newest(
            &**log.storage(),
            log.durable_lsn(),
            &|lsn| record_digest(&log, lsn),
            prefetched,
        )?;
        let checkpoint_lsn = start.as_ref().map(|s| s.applied_lsn());
        let state = replay(&log, None, start)?;
        let store = Store {
            log,
            state: RwLock::new(state),
            write: Mutex::new(()),
            options,
            poisoned: AtomicBool::new(false),
            checkpoint_warnings,
            opened_from_checkpoint: checkpoint_lsn,
            checkpoint_every: AtomicU64::new(0),
            last_checkpoint: AtomicU64::new(checkpoint_lsn.unwrap_or(Lsn::ZERO).0),
            checkpoint_error: Mutex::new(None),
            checkpointing: Mutex::new(()),
        };
        if store.log.is_writable() {
            // A store has an identity from its first writable open (sync cursors name
            // peers by it); logs written before identities get one now.
            store.mutate(|st| match st.store_id() {
                Some(_) => Ok((None, ())),
                None => Ok((
                    Some(Event::SetStoreId {
                        id: StoreId::random(),
                    }),
                    (),
                )),
            })?;
        }
        Ok(store)
    }

    /// Writes a checkpoint of the durable state now (atomically, durably; the two newest
    /// are kept). Opening the store later replays only the log after it. Returns its LSN.
    /// Writers wait while the state is encoded (not during the fsync).
    pub fn checkpoint(&self) -> Result<Lsn> {
        if !self.log.is_writable() {
            return Err(Error::ReadOnly);
        }
        let _one = self.checkpointing.lock().unwrap_or_else(|e| e.into_inner());
        self.write_checkpoint()
    }

    /// Writes a checkpoint; the caller holds `checkpointing`.
    fn write_checkpoint(&self) -> Result<Lsn> {
        let pending = {
            // Writers wait while the state is encoded (into the page cache), not during
            // the fsync.
            let st = self.read()?;
            let digest = record_digest(&self.log, st.applied_lsn())?.ok_or_else(|| {
                Error::InvalidArgument("the log has no record at the state's LSN".into())
            })?;
            crate::checkpoint::begin(&**self.log.storage(), &st, digest)?
        };
        let (lsn, _) = pending.finish(&**self.log.storage())?;
        self.last_checkpoint.store(lsn.0, Ordering::Release);
        Ok(lsn)
    }

    /// Writes a checkpoint automatically once `records` records follow the last one
    /// (`None`: only on request, the default).
    pub fn set_checkpoint_every(&self, records: Option<u64>) {
        self.checkpoint_every
            .store(records.unwrap_or(0), Ordering::Release);
    }

    /// Writes a checkpoint if the automatic interval has passed. A failure does not fail
    /// the mutation that triggered it (that one is durable): it is kept for
    /// [`Store::last_checkpoint_error`], and the next interval tries again.
    fn maybe_checkpoint(&self, lsn: Lsn) {
        let every = self.checkpoint_every.load(Ordering::Acquire);
        if every > 0 && lsn.0 >= self.last_checkpoint.load(Ordering::Acquire) + every {
            // Claim it, so concurrent writers do not all write one.
            let last = self.last_checkpoint.swap(lsn.0, Ordering::AcqRel);
            if lsn.0 >= last + every {
                // One in progress already: the next interval tries again (a writer never
                // waits for another's checkpoint).
                let _one = match self.checkpointing.try_lock() {
                    Ok(g) => g,
                    Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
                    Err(std::sync::TryLockError::WouldBlock) => return,
                };
                let outcome = self.write_checkpoint().err().map(|e| e.to_string());
                *self
                    .checkpoint_error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = outcome;
            }
        }
    }

    /// Why the last automatic checkpoint failed, if it did.
    pub fn last_checkpoint_error(&self) -> Option<String> {
        self.checkpoint_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The checkpoints the open skipped, and why (damaged, another version, another log).
    pub fn checkpoint_warnings(&self) -> &[String] {
        &self.checkpoint_warnings
    }

    /// The LSN of the checkpoint the open started from (`None`: a full replay).
    pub fn opened_from_checkpoint(&self) -> Option<Lsn> {
        self.opened_from_checkpoint
    }

    /// What log recovery found when this store was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        self.log.recovery_report()
    }

    /// The log underneath (for inspection, shipping and sync).
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// The LSN of the last durable record.
    pub fn durable_lsn(&self) -> Lsn {
        self.log.durable_lsn()
    }

    /// Makes everything appended so far durable (for buffered mode).
    pub fn flush(&self) -> Result<Lsn> {
        self.log.flush()
    }

    /// Read-only stores: replays what a writer made durable since the last look.
    pub fn refresh(&self) -> Result<Lsn> {
        if self.log.is_writable() {
            return Ok(self.durable_lsn());
        }
        let applied = self
            .state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .applied_lsn();
        let durable = self.log.refresh()?;
        if durable > applied {
            let mut st = self.state.write().unwrap_or_else(|e| e.into_inner());
            let mut it = self.log.iter_from(st.applied_lsn().next());
            while let Some(r) = it.next_record()? {
                let env = Envelope::decode(r.lsn, r.kind, r.payload)?;
                st.apply(r.lsn, &env);
            }
        }
        Ok(durable)
    }

    /// Closes the store, making buffered records durable first.
    pub fn close(self) -> Result<()> {
        self.log.close()
    }

    fn check_poisoned(&self) -> Result<()> {
        if self.poisoned.load(Ordering::Acquire) || self.log.is_poisoned() {
            self.poisoned.store(true, Ordering::Release);
            return Err(Error::Poisoned {
                reason: "a write or fsync failed; reopen the store".into(),
            });
        }
        Ok(())
    }

    /// The durable state, for reading. Waits (at most one group commit) if records were
    /// applied that are not durable yet.
    pub fn read(&self) -> Result<RwLockReadGuard<'_, State>> {
        self.check_poisoned()?;
        let g = self.state.read().unwrap_or_else(|e| e.into_inner());
        if self.options.log.durability == Durability::Sync && self.log.is_writable() {
            let applied = g.applied_lsn();
            if self.log.durable_lsn() < applied {
                if let Err(e) = self.log.wait_durable(applied, None) {
                    self.poisoned.store(true, Ordering::Release);
                    return Err(e);
                }
            }
        }
        Ok(g)
    }

    /// Validates under the writer mutex, appends the event, applies it, then waits for
    /// durability outside the mutex.
    fn mutate<T>(&self, f: impl FnOnce(&State) -> Result<(Option<Event>, T)>) -> Result<T> {
        self.check_poisoned()?;
        if !self.log.is_writable() {
            return Err(Error::ReadOnly);
        }
        let ticket = {
            let _w = self.write.lock().unwrap_or_else(|e| e.into_inner());
            self.check_poisoned()?;
            let (event, out) = {
                let st = self.state.read().unwrap_or_else(|e| e.into_inner());
                f(&st)?
            };
            let Some(event) = event else { return Ok(out) };
            let env = Envelope {
                time: Timestamp::now(),
                actor: self.options.actor.clone(),
                event,
            };
            let record = Record {
                kind: env.event.kind(),
                payload: env.encode()?,
            };
            let ticket = self.log.submit(vec![record], self.options.log.durability)?;
            self.state
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .apply(ticket.range.last, &env);
            (ticket, out)
        };
        match self.log.wait(ticket.0) {
            Ok(range) => {
                self.maybe_checkpoint(range.last);
                Ok(ticket.1)
            }
            Err(e) => {
                // The projections hold a record the disk may not: refuse everything until reopened.
                self.poisoned.store(true, Ordering::Release);
                Err(e)
            }
        }
    }

    /// [`Store::mutate`] for several records: `f` returns groups of events; each group is
    /// appended as one atomic batch and applied, in order. Waits for the last group only
    /// (batches become durable in order).
    fn mutate_many<T>(&self, f: impl FnOnce(&State) -> Result<(Vec<Vec<Event>>, T)>) -> Result<T> {
        self.check_poisoned()?;
        if !self.log.is_writable() {
            return Err(Error::ReadOnly);
        }
        let (last, out) = {
            let _w = self.write.lock().unwrap_or_else(|e| e.into_inner());
            self.check_poisoned()?;
            let (groups, out) = {
                let st = self.state.read().unwrap_or_else(|e| e.into_inner());
                f(&st)?
            };
            let mut last = None;
            for group in groups.into_iter().filter(|g| !g.is_empty()) {
                let time = Timestamp::now();
                let envs: Vec<Envelope> = group
                    .into_iter()
                    .map(|event| Envelope {
                        time,
                        actor: self.options.actor.clone(),
                        event,
                    })
                    .collect();
                let records = envs
                    .iter()
                    .map(|env| {
                        Ok(Record {
                            kind: env.event.kind(),
                            payload: env.encode()?,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                let ticket = match self.log.submit(records, self.options.log.durability) {
                    Ok(t) => t,
                    Err(e) => {
                        if last.is_some() {
                            // Earlier groups are applied but may not reach the disk.
                            self.poisoned.store(true, Ordering::Release);
                        }
                        return Err(e);
                    }
                };
                let mut st = self.state.write().unwrap_or_else(|e| e.into_inner());
                for (i, env) in envs.iter().enumerate() {
                    st.apply(Lsn(ticket.range.first.0 + i as u64), env);
                }
                last = Some(ticket);
            }
            (last, out)
        };
        if let Some(ticket) = last {
            if let Err(e) = self.log.wait(ticket) {
                self.poisoned.store(true, Ordering::Release);
                return Err(e);
            }
        }
        Ok(out)
    }

    // ---- Sync --------------------------------------------------------------------------

    /// This store's identity: written when the store was first opened for writing. `None`
    /// only for a store opened read-only that no writer of this version has opened yet.
    pub fn store_id(&self) -> Result<Option<StoreId>> {
        Ok(self.read()?.store_id())
    }

    fn require_store_id(&self) -> Result<StoreId> {
        self.store_id()?.ok_or_else(|| {
            Error::InvalidArgument(
                "this store has no identity yet: open it for writing once (older logs get one then)"
                    .into(),
            )
        })
    }

    /// Up to which LSN of `peer`'s log its records of `vs` are applied here.
    pub fn sync_cursor(&self, peer: StoreId, vs: VolumeSetId) -> Result<Lsn> {
        Ok(self.read()?.sync_cursor(peer, vs))
    }

    /// Every sync cursor this store holds: (peer, volume set, the peer's LSN), sorted.
    pub fn sync_cursors(&self) -> Result<Vec<(StoreId, VolumeSetId, Lsn)>> {
        Ok(self.read()?.sync_cursors())
    }

    /// The records of `vs` after `after` (this log's LSNs), portable, for the store `to`
    /// (records that came from `to` are left out). `None` when this store lacks `vs`.
    pub fn export_batch(
        &self,
        vs: VolumeSetId,
        after: Lsn,
        to: Option<StoreId>,
    ) -> Result<Option<crate::sync::Batch>> {
        let source = self.require_store_id()?;
        let (volume_set, through, cursors) = {
            let st = self.read()?;
            let Some(row) = st.volume_sets.get(&vs) else {
                return Ok(None);
            };
            let mut v = st.volume_set_of(row);
            v.size = 0;
            v.num_snapshots = 0;
            v.num_branches = 0;
            v.last_snapshot_time = None;
            // Only durable records leave: a receiver must never hold what a crash here
            // could still take back (and the scan below reads durable records only).
            let cursors: Vec<(StoreId, Lsn)> = st
                .cursors_of(vs)
                .filter(|(peer, _)| Some(*peer) != to)
                .collect();
            (v, st.applied_lsn().min(self.log.durable_lsn()), cursors)
        };
        if after > through {
            // The peer holds this store's records past the end of this log: this log was
            // restored from an older copy (or is a follower that never got them). Records
            // written here now would reuse LSNs the peer believes it has.
            return Err(Error::SyncCursorAhead {
                cursor: after,
                log_end: through,
            });
        }
        let collected = crate::sync::export::collect(&self.log, vs, after, through)?;
        let (mut records, mut origins) = collected.finish(&*self.read()?);
        let echoes = match to {
            Some(to) => crate::sync::export::strip_for(&mut records, &mut origins, to),
            None => 0,
        };
        Ok(Some(crate::sync::Batch {
            source,
            volume_set,
            after,
            through,
            records,
            origins,
            cursors,
            echoes,
        }))
    }

    /// Applies a batch from another store: structure by the reference rules, metadata
    /// three-way with `winner` taking conflicts, conflicts recorded, and the cursor for
    /// the source advanced in the same atomic batch as the last records. A batch the
    /// cursor already covers changes nothing; one that starts after the cursor is a
    /// [`Error::SyncGap`].
    pub fn apply_batch(
        &self,
        batch: &crate::sync::Batch,
        winner: crate::sync::Winner,
    ) -> Result<crate::sync::ApplyReport> {
        use crate::sync::plan::{plan, RecordLimits};
        let vs = batch.volume_set.id;
        let limits = RecordLimits {
            snapshots: SYNC_SNAPSHOTS_PER_RECORD,
            bytes: self.options.log.record_bytes_max / 2,
        };
        let group_bytes_max = self.options.log.batch_bytes_max / 2;
        let group_records_max = (self.options.log.batch_records_max / 2).max(2);
        let (batch_bytes_max, batch_records_max) = (
            self.options.log.batch_bytes_max,
            self.options.log.batch_records_max.max(2),
        );
        batch.check().map_err(|reason| Error::BadSyncBatch {
            source_store: batch.source,
            reason,
        })?;
        self.mutate_many(|st| {
            let receiver = st.store_id();
            if receiver == Some(batch.source) {
                return Err(Error::InvalidArgument(
                    "a store cannot sync with itself (both sides have the same store id)".into(),
                ));
            }
            let cursor = st.sync_cursor(batch.source, vs);
            if batch.after > cursor {
                return Err(Error::SyncGap {
                    peer: batch.source,
                    volume_set: vs,
                    have: cursor,
                    after: batch.after,
                });
            }
            let mut fresh = batch.clone();
            let mut echoes = batch.echoes;
            if let Some(me) = receiver {
                echoes +=
                    crate::sync::export::strip_for(&mut fresh.records, &mut fresh.origins, me);
            }
            if batch.after > Lsn::ZERO {
                fresh.records.retain(|(lsn, _)| *lsn > cursor);
            }
            // A full batch (after = 0) applies its structure whole (the plan is
            // idempotent), but only the metadata edits after the cursor: older ones were
            // applied before, and composing them again would resolve against history.
            let mut p = plan(st, &fresh, receiver, winner, limits, cursor)?;
            p.report.records_received = batch.records.len() as u64;
            p.report.records_new = fresh.records.len() as u64;
            let through = batch.through.max(cursor);
            p.report.cursor = through;
            // Nothing to apply and no record new to this store: move the cursor only past
            // a long stretch of unrelated records (so later exports need not rescan it).
            // Advancing it for cursor records alone would make two stores trade cursor
            // records forever, each one the other's news. When records came but changed
            // nothing, the cursor does move: otherwise their edits would compose again,
            // with an initial this store has long left behind.
            // A batch that brings nothing past the cursor writes nothing, conflicts or not:
            // they were recorded when the cursor passed them (re-importing a full bundle
            // once wrote its unsettled conflicts again every time).
            if p.events.is_empty()
                && (through == cursor
                    || (p.conflicts.is_empty()
                        && fresh.records.is_empty()
                        && echoes == 0
                        && through.0 < cursor.0.saturating_add(SYNC_CURSOR_LAG_MAX)))
            {
                p.report.cursor = cursor;
                return Ok((Vec::new(), p.report));
            }
            // Groups of data records within the batch limits, each headed by the cursor
            // record that says they came from the source and followed by the conflicts
            // those records settle (so a cut sync never applies one without the other);
            // the new cursor goes with the last group.
            let header = |records: usize, through: Lsn| Event::SyncApplied {
                peer: batch.source,
                volume_set: vs,
                through,
                records: records as u32,
            };
            let conflict_event = |conflict: crate::event::Conflict| {
                // Metadata conflicts won by the sender were adopted here; structural ones
                // (name clash, tip taken) and those won here travel back to the sender.
                let adopted = winner == crate::sync::Winner::Sender
                    && matches!(
                        conflict,
                        crate::event::Conflict::VolumeSet { .. }
                            | crate::event::Conflict::Snapshot { .. }
                            | crate::event::Conflict::BranchRename { .. }
                    );
                Event::SyncConflict {
                    peer: batch.source,
                    conflict: Box::new(conflict),
                    adopted,
                }
            };
            let fits = |records: usize, bytes: usize| {
                // One more record for the group's header.
                records < group_records_max && bytes <= group_bytes_max
            };
            let mut groups: Vec<Vec<Event>> = Vec::new();
            let (mut data, mut notes, mut bytes) = (Vec::new(), Vec::new(), 0usize);
            let mut close = |data: &mut Vec<Event>, notes: &mut Vec<Event>, through: Lsn| {
                let mut g = vec![header(data.len(), through)];
                g.append(data);
                g.append(notes);
                groups.push(g);
            };
            let mut conflicts = p.conflicts;
            conflicts.sort_by_key(|(at, _)| *at);
            let mut conflicts = conflicts.into_iter().peekable();
            for (i, ev) in p.events.into_iter().enumerate() {
                while let Some((_, c)) = conflicts.next_if(|(at, _)| *at <= i) {
                    let e = conflict_event(c);
                    bytes += crate::codec::encoded_len(&e)?;
                    notes.push(e);
                }
                let n = crate::codec::encoded_len(&ev)?;
                if !data.is_empty() && !fits(data.len() + notes.len() + 1, bytes + n) {
                    close(&mut data, &mut notes, cursor);
                    bytes = 0;
                }
                bytes += n;
                data.push(ev);
            }
            // The rest: conflicts settled by the last records, then those no record
            // settles. The latter go with the cursor, so a cut sync that decides them again
            // on resume records them once; the last group may use the whole batch limit
            // for them (and only splits, at the risk of a repeat, beyond it).
            let fits_last = |records: usize, bytes: usize| {
                records < batch_records_max && bytes <= batch_bytes_max * 3 / 4
            };
            for (at, c) in conflicts {
                let e = conflict_event(c);
                let n = crate::codec::encoded_len(&e)?;
                let started = !data.is_empty() || !notes.is_empty();
                let room = if at == crate::sync::plan::WITH_CURSOR {
                    fits_last(data.len() + notes.len() + 1, bytes + n)
                } else {
                    fits(data.len() + notes.len() + 1, bytes + n)
                };
                if started && !room {
                    close(&mut data, &mut notes, cursor);
                    bytes = 0;
                }
                bytes += n;
                notes.push(e);
            }
            // The source's cursors for third stores: this store now holds what they cover.
            for (peer, lsn) in &batch.cursors {
                if Some(*peer) != receiver
                    && *peer != batch.source
                    && *lsn > st.sync_cursor(*peer, vs)
                {
                    notes.push(Event::SyncApplied {
                        peer: *peer,
                        volume_set: vs,
                        through: *lsn,
                        records: 0,
                    });
                }
            }
            close(&mut data, &mut notes, through);
            p.report.records_written = groups.iter().map(|g| g.len() as u64).sum();
            Ok((groups, p.report))
        })
    }

    /// A read-only state as of a past LSN, replayed from the log.
    pub fn as_of(&self, lsn: Lsn) -> Result<State> {
        replay(&self.log, Some(lsn.min(self.durable_lsn())), None)
    }

    /// A read-only state as of a wall-clock time: every record stamped at or before it.
    pub fn as_of_time(&self, time: Timestamp) -> Result<State> {
        let mut last = Lsn::ZERO;
        let mut it = self.log.iter_from(Lsn(1));
        while let Some(r) = it.next_record()? {
            let env = Envelope::decode(r.lsn, r.kind, r.payload)?;
            if env.time > time {
                break;
            }
            last = r.lsn;
        }
        self.as_of(last)
    }

    /// Counts of everything held.
    pub fn counts(&self) -> Result<Counts> {
        Ok(self.read()?.counts())
    }

    /// The whole durable state, sorted by id.
    pub fn canonical_dump(&self) -> Result<CanonicalDump> {
        Ok(self.read()?.canonical_dump())
    }

    // ---- Volume sets -------------------------------------------------------------------

    /// Creates a volume set with the given id (`VolumeSetAlreadyExists` if present).
    pub fn import_volume_set(&self, vs: &VolumeSet) -> Result<()> {
        self.mutate(|st| Ok((Some(st.check_import_volume_set(vs)?), ())))
    }

    /// Creates a volume set with a fresh random id, times now (the original `VolumeSet`
    /// helper).
    pub fn create_volume_set(
        &self,
        name: &str,
        prefix: &str,
        attrs: Attrs,
        description: &str,
        owner: &str,
        creator: &str,
    ) -> Result<VolumeSet> {
        let now = Timestamp::now();
        let mut vs = VolumeSet::new(VolumeSetId::random(), name);
        vs.prefix = prefix.to_string();
        vs.attrs = attrs;
        vs.description = description.to_string();
        vs.owner = owner.to_string();
        vs.creator = creator.to_string();
        vs.created = now;
        vs.last_modified = now;
        self.import_volume_set(&vs)?;
        Ok(vs)
    }

    /// One volume set.
    pub fn get_volume_set(&self, id: VolumeSetId) -> Result<VolumeSet> {
        self.read()?.get_volume_set(id)
    }

    /// Volume sets matching a query (filter, sort, then offset and limit).
    pub fn get_volume_sets(&self, q: &VolumeSetQuery) -> Result<Vec<VolumeSet>> {
        self.read()?.get_volume_sets(q)
    }

    /// Three-way update of a volume set's metadata (`init = None`: unconditional). Returns
    /// an entry when target won (the caller should adopt it).
    pub fn update_volume_set(
        &self,
        cur: &VolumeSet,
        init: Option<&VolumeSet>,
    ) -> Result<Option<MetaConflict<VolumeSet>>> {
        self.mutate(|st| st.check_update_volume_set(cur, init))
    }

    /// Like [`Store::update_volume_set`] but writes nothing: what would be returned.
    pub fn pull_volume_set(
        &self,
        cur: &VolumeSet,
        init: Option<&VolumeSet>,
    ) -> Result<Option<MetaConflict<VolumeSet>>> {
        Ok(self.read()?.check_update_volume_set(cur, init)?.1)
    }

    /// Sets a volume set's size.
    pub fn set_volume_set_size(&self, id: VolumeSetId, size: u64) -> Result<()> {
        self.mutate(|st| Ok((Some(st.check_set_volume_set_size(id, size)?), ())))
    }

    /// Removes a volume set and everything in it.
    pub fn delete_volume_set(&self, id: VolumeSetId) -> Result<()> {
        self.mutate(|st| Ok((Some(st.check_delete_volume_set(id)?), ())))
    }

    /// Sum of the sizes of the given volume sets.
    pub fn disk_space_usage(&self, ids: &[VolumeSetId]) -> Result<u64> {
        self.read()?.disk_space_usage(ids)
    }

    // ---- Branches and snapshots --------------------------------------------------------

    /// Creates a branch (fresh random id) from a chain of snapshots, oldest first; the
    /// first one's parent is an existing snapshot or none. Empty: no-op. Returns the
    /// branch id (`None` for the no-op).
    pub fn fork_branch(&self, name: &str, snaps: &[Snapshot]) -> Result<Option<BranchId>> {
        let id = BranchId::random();
        self.mutate(|st| {
            Ok((
                st.check_new_branch(id, name, snaps, false)?,
                (!snaps.is_empty()).then_some(id),
            ))
        })
    }

    /// Like [`Store::fork_branch`] with a given branch id (used by sync).
    pub fn import_branch(&self, id: BranchId, name: &str, snaps: &[Snapshot]) -> Result<()> {
        self.mutate(|st| Ok((st.check_new_branch(id, name, snaps, true)?, ())))
    }

    /// Adds a chain of snapshots to the branch whose tip is the first one's parent.
    pub fn extend_branch(&self, snaps: &[Snapshot]) -> Result<()> {
        self.mutate(|st| Ok((st.check_extend_branch(snaps)?, ())))
    }

    /// Renames a branch.
    pub fn rename_branch(&self, vs: VolumeSetId, old: &str, new: &str) -> Result<()> {
        self.mutate(|st| Ok((Some(st.check_rename_branch(vs, old, new)?), ())))
    }

    /// The tip of a named branch.
    pub fn get_tip(&self, vs: VolumeSetId, name: &str) -> Result<Snapshot> {
        self.read()?.get_tip(vs, name)
    }

    /// Branches of a volume set matching a query, each with its tip.
    pub fn get_branches(&self, q: &BranchQuery) -> Result<Vec<Branch>> {
        self.read()?.get_branches(q)
    }

    /// One branch by id.
    pub fn get_branch(&self, vs: VolumeSetId, id: BranchId) -> Result<Branch> {
        self.read()?.get_branch(vs, id)
    }

    /// The snapshots of the one branch a query matches, tip first.
    pub fn get_snapshots_by_branch(&self, q: &BranchQuery) -> Result<Vec<Snapshot>> {
        self.read()?.get_snapshots_by_branch(q)
    }

    /// At most `limit` snapshots of the one branch a query matches, tip first: a page of
    /// a deep branch's history without reading all of it (O(limit)).
    pub fn get_snapshots_by_branch_limit(
        &self,
        q: &BranchQuery,
        limit: usize,
    ) -> Result<Vec<Snapshot>> {
        self.read()?.get_snapshots_by_branch_limit(q, limit)
    }

    /// Builds one snapshot (times now) and forks a new branch `branch_name` with it; the
    /// parent must belong to `vs`.
    #[allow(clippy::too_many_arguments)]
    pub fn snapshot_fork(
        &self,
        vs: VolumeSetId,
        id: SnapshotId,
        branch_name: &str,
        parent: Option<SnapshotId>,
        blob: BlobId,
        attrs: Attrs,
        name: &str,
        size: u64,
        description: &str,
    ) -> Result<Snapshot> {
        let s = new_snapshot(vs, id, parent, blob, attrs, name, size, description);
        self.fork_branch(branch_name, std::slice::from_ref(&s))?;
        self.get_snapshot(id)
    }

    /// Builds one snapshot (times now) on top of the tip `parent` and extends its branch.
    #[allow(clippy::too_many_arguments)]
    pub fn snapshot_extend(
        &self,
        id: SnapshotId,
        parent: SnapshotId,
        blob: BlobId,
        attrs: Attrs,
        name: &str,
        size: u64,
        description: &str,
    ) -> Result<Snapshot> {
        let vs = self.get_volume_set_by_snap_id(parent)?;
        let s = new_snapshot(vs, id, Some(parent), blob, attrs, name, size, description);
        self.extend_branch(std::slice::from_ref(&s))?;
        self.get_snapshot(id)
    }

    /// One snapshot, with depth, child count, tip flag and branch name.
    pub fn get_snapshot(&self, id: SnapshotId) -> Result<Snapshot> {
        self.read()?.get_snapshot(id)
    }

    /// Snapshots matching a query (filter, sort, then offset and limit).
    pub fn get_snapshots(&self, q: &SnapshotQuery) -> Result<Vec<Snapshot>> {
        self.read()?.get_snapshots(q)
    }

    /// Ids of all snapshots of a volume set.
    pub fn get_snapshot_ids(&self, vs: VolumeSetId) -> Result<Vec<SnapshotId>> {
        self.read()?.get_snapshot_ids(vs)
    }

    /// The volume set of a snapshot.
    pub fn get_volume_set_by_snap_id(&self, snap: SnapshotId) -> Result<VolumeSetId> {
        self.read()?.get_volume_set_by_snap_id(snap)
    }

    /// Three-way update of one snapshot's metadata; sets last-modified to now.
    pub fn update_snapshot(
        &self,
        cur: &Snapshot,
        init: Option<&Snapshot>,
    ) -> Result<Option<MetaConflict<Snapshot>>> {
        let mut cur = cur.clone();
        cur.last_modified = Timestamp::now();
        Ok(self.update_snapshots(&[(cur, init.cloned())])?.pop())
    }

    /// Three-way update of a batch of snapshots: resolved against one state and written
    /// as one record, or not at all.
    pub fn update_snapshots(&self, pairs: &[SnapshotPair]) -> Result<Vec<MetaConflict<Snapshot>>> {
        self.mutate(|st| st.check_update_snapshots(pairs))
    }

    /// Like [`Store::update_snapshots`] but writes nothing.
    pub fn pull_snapshots(&self, pairs: &[SnapshotPair]) -> Result<Vec<MetaConflict<Snapshot>>> {
        Ok(self.read()?.check_update_snapshots(pairs)?.1)
    }

    /// Sets a snapshot's blob id and size, unconditionally.
    pub fn set_blob_id_and_size(&self, snap: SnapshotId, blob: &BlobId, size: u64) -> Result<()> {
        self.mutate(|st| Ok((Some(st.check_set_blob(snap, blob, size)?), ())))
    }

    /// Deletes snapshots (every child of a deleted snapshot must be deleted too); then
    /// `new_tip`, if it has no children left, becomes the tip of a new branch that keeps
    /// the name of the removed branch.
    pub fn delete_snapshots(
        &self,
        snaps: &[SnapshotId],
        new_tip: Option<SnapshotId>,
    ) -> Result<()> {
        let id = BranchId::random();
        self.mutate(|st| Ok((st.check_delete_snapshots(snaps, new_tip, id)?, ())))
    }

    /// Deletes a branch the way the original client did: walks back from the tip while a
    /// snapshot has at most one child (the one just deleted), no volume based on it, and
    /// is no other branch's tip; deletes those. The snapshot where the walk stopped, left
    /// without children, becomes the tip of a branch that keeps the deleted branch's name
    /// (the reference leaves the name question open; keeping it means the history up to the
    /// fork point stays reachable by name). Returns the deleted snapshot ids.
    pub fn delete_branch(&self, vs: VolumeSetId, name: &str) -> Result<Vec<SnapshotId>> {
        let id = BranchId::random();
        self.mutate_many(|st| {
            let tip = st.get_tip(vs, name)?;
            let mut doomed = Vec::new();
            let mut at = Some(tip.id);
            while let Some(s) = at {
                let snap = st.get_snapshot(s)?;
                let children_left = snap.num_children - u32::from(!doomed.is_empty());
                if children_left > 0 || st.num_volumes(s)? > 0 || (s != tip.id && snap.is_tip) {
                    break;
                }
                doomed.push(s);
                at = snap.parent;
            }
            if doomed.is_empty() {
                // The tip itself stopped the walk: say why (children, or volumes based on
                // it), rather than reporting "0 children" for a tip that is in use.
                let volumes = st.num_volumes(tip.id)?;
                if tip.num_children == 0 && volumes > 0 {
                    return Err(Error::SnapshotInUse {
                        snapshot: tip.id,
                        volumes,
                    });
                }
                return Err(Error::HasChildren {
                    snapshot: tip.id,
                    children: tip.num_children,
                });
            }
            // One record per BATCH_SNAPSHOTS_MAX snapshots, tip side first (children go
            // before their parents), all in one atomic batch: a branch 1M snapshots deep
            // is deleted whole or not at all. Only the last record places a new tip.
            let Some(Event::DeleteSnapshots {
                volume_set,
                snapshots,
                removed_branches,
                new_tip,
            }) = st.delete_snapshots_event(&doomed, at, id)?
            else {
                unreachable!("a non-empty delete makes a DeleteSnapshots event")
            };
            let chunks: Vec<&[SnapshotId]> = snapshots
                .chunks(crate::state::BATCH_SNAPSHOTS_MAX)
                .collect();
            let last = chunks.len() - 1;
            let events = chunks
                .into_iter()
                .enumerate()
                .map(|(i, chunk)| Event::DeleteSnapshots {
                    volume_set,
                    snapshots: chunk.to_vec(),
                    removed_branches: if i == 0 {
                        removed_branches.clone()
                    } else {
                        Vec::new()
                    },
                    new_tip: if i == last { new_tip.clone() } else { None },
                })
                .collect();
            Ok((vec![events], doomed))
        })
    }

    /// Number of snapshots whose parent is this one.
    pub fn num_children(&self, snap: SnapshotId) -> Result<u32> {
        self.read()?.num_children(snap)
    }

    // ---- Blobs ---------------------------------------------------------------------------

    /// Blob ids of known snapshots (nil for known ones without data; unknown ids absent).
    pub fn get_blob_ids(&self, snaps: &[SnapshotId]) -> Result<HashMap<SnapshotId, BlobId>> {
        Ok(self.read()?.get_blob_ids(snaps))
    }

    /// One snapshot's blob id.
    pub fn get_blob_id(&self, snap: SnapshotId) -> Result<BlobId> {
        self.read()?.get_blob_id(snap)
    }

    /// For an upload of `target`: the newest candidate (oldest → newest) this store has a
    /// blob for, as the diff base. `AlreadyHaveBlob` if the target's data is here;
    /// `SnapshotNotFound` for an unknown target or candidate.
    pub fn find_non_missing_snapshot(
        &self,
        target: SnapshotId,
        candidates: &[SnapshotId],
    ) -> Result<BlobBase> {
        let st = self.read()?;
        if !st.get_blob_id(target)?.is_nil() {
            return Err(Error::AlreadyHaveBlob(target));
        }
        newest_with_blob(&st, candidates)
    }

    /// For a download of `target`: the newest candidate with a blob (the diff base), its
    /// blob id and the target's blob id. The target must be here with its data.
    pub fn request_blob_diff(
        &self,
        target: SnapshotId,
        candidates: &[SnapshotId],
    ) -> Result<(BlobBase, BlobId)> {
        let st = self.read()?;
        let blob = st.get_blob_id(target)?;
        if blob.is_nil() {
            return Err(Error::NoBlob(target));
        }
        Ok((newest_with_blob(&st, candidates)?, blob))
    }

    // ---- Bushes ----------------------------------------------------------------------------

    /// Records the bush of a root snapshot.
    pub fn import_bush(&self, bush: &Bush) -> Result<()> {
        self.mutate(|st| Ok((Some(st.check_import_bush(bush)?), ())))
    }

    /// The bush of any snapshot (its root's).
    pub fn get_bush(&self, snap: SnapshotId) -> Result<Bush> {
        self.read()?.get_bush(snap)
    }

    /// Removes a bush.
    pub fn delete_bush(&self, root: SnapshotId) -> Result<()> {
        self.mutate(|st| Ok((Some(st.check_delete_bush(root)?), ())))
    }

    /// The distinct bushes of all branch tips of a volume set.
    pub fn get_bushes(&self, vs: VolumeSetId) -> Result<Vec<Bush>> {
        self.read()?.get_bushes(vs)
    }

    // ---- Volumes -----------------------------------------------------------------------------

    /// Records a volume.
    pub fn import_volume(&self, v: &Volume) -> Result<()> {
        self.mutate(|st| Ok((Some(st.check_import_volume(v)?), ())))
    }

    /// One volume.
    pub fn get_volume(&self, id: &VolumeId) -> Result<Volume> {
        self.read()?.get_volume(id)
    }

    /// Removes a volume.
    pub fn delete_volume(&self, id: &VolumeId) -> Result<()> {
        self.mutate(|st| Ok((Some(st.check_delete_volume(id)?), ())))
    }

    /// Volumes of a volume set, ordered by id.
    pub fn get_volumes(&self, vs: VolumeSetId) -> Result<Vec<Volume>> {
        self.read()?.get_volumes(vs)
    }

    /// All volumes, ordered by id.
    pub fn get_all_volumes(&self) -> Result<Vec<Volume>> {
        Ok(self.read()?.get_all_volumes())
    }

    /// Updates a volume's name and attributes.
    pub fn update_volume(&self, v: &Volume) -> Result<()> {
        self.mutate(|st| Ok((st.check_update_volume(v)?, ())))
    }

    /// Number of volumes based on a snapshot.
    pub fn num_volumes(&self, snap: SnapshotId) -> Result<u32> {
        self.read()?.num_volumes(snap)
    }
}

#[allow(clippy::too_many_arguments)]
fn new_snapshot(
    vs: VolumeSetId,
    id: SnapshotId,
    parent: Option<SnapshotId>,
    blob: BlobId,
    attrs: Attrs,
    name: &str,
    size: u64,
    description: &str,
) -> Snapshot {
    let now = Timestamp::now();
    let mut s = Snapshot::new(id, vs, parent);
    s.blob = blob;
    s.attrs = attrs;
    s.name = name.to_string();
    s.size = size;
    s.description = description.to_string();
    s.created = now;
    s.last_modified = now;
    s
}

fn newest_with_blob(st: &State, candidates: &[SnapshotId]) -> Result<BlobBase> {
    let blobs = candidates
        .iter()
        .map(|c| st.get_blob_id(*c))
        .collect::<Result<Vec<_>>>()?;
    Ok(candidates
        .iter()
        .zip(blobs)
        .rev()
        .find(|(_, b)| !b.is_nil())
        .map(|(c, b)| BlobBase {
            base: Some(*c),
            base_blob: b,
        })
        .unwrap_or(BlobBase {
            base: None,
            base_blob: BlobId::nil(),
        }))
}

/// Checks a branch name the way the original `ValidateBranchName` did, and more.
pub fn validate_branch_name(name: &str) -> Result<()> {
    crate::model::validate_branch_name(name)
}
