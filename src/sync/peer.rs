//! The other side of a sync, as a trait holding exactly what sync needs: the peer's
//! identity, its cursor for a given source, the records of a volume set after a cursor,
//! and applying a batch. [`crate::Store`] implements it in process; [`BundleOut`] and
//! [`BundleIn`] are the two ends of an offline transfer through a file. A network peer
//! implements the same four calls; the sync driver never sees which it talks to.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{BundleProblem, Error, Result};
use crate::log::Lsn;
use crate::model::{StoreId, VolumeSetId};
use crate::store::Store;
use crate::sync::batch::{read_bundle, write_bundle, Batch};
use crate::sync::report::{ApplyReport, Winner};

/// What sync needs of a store it exchanges records with.
pub trait Peer {
    /// The peer's identity (`None`: a destination that is not a store, like a bundle
    /// being written).
    fn store_id(&self) -> Result<Option<StoreId>>;
    /// Up to which LSN of `from`'s log the records of `vs` are applied on this peer.
    fn cursor(&self, from: StoreId, vs: VolumeSetId) -> Result<Lsn>;
    /// The records of `vs` on this peer after its LSN `after`, for the store `to`.
    /// `None` when the peer does not hold `vs`.
    fn export(&self, vs: VolumeSetId, after: Lsn, to: Option<StoreId>) -> Result<Option<Batch>>;
    /// Applies a batch from another store; `winner` takes metadata conflicts.
    fn apply(&self, batch: &Batch, winner: Winner) -> Result<ApplyReport>;
}

impl Peer for Store {
    fn store_id(&self) -> Result<Option<StoreId>> {
        Store::store_id(self)
    }
    fn cursor(&self, from: StoreId, vs: VolumeSetId) -> Result<Lsn> {
        self.sync_cursor(from, vs)
    }
    fn export(&self, vs: VolumeSetId, after: Lsn, to: Option<StoreId>) -> Result<Option<Batch>> {
        self.export_batch(vs, after, to)
    }
    fn apply(&self, batch: &Batch, winner: Winner) -> Result<ApplyReport> {
        self.apply_batch(batch, winner)
    }
}

/// A bundle file being written: the receiving end of an export. Its cursor is the
/// `since` the caller gives (what the eventual importer already holds).
pub struct BundleOut {
    path: PathBuf,
    since: Lsn,
    written: Mutex<Option<u64>>,
}

impl BundleOut {
    pub fn new(path: impl AsRef<Path>, since: Lsn) -> Self {
        BundleOut {
            path: path.as_ref().to_path_buf(),
            since,
            written: Mutex::new(None),
        }
    }
    /// Bytes written, once the export ran.
    pub fn bytes_written(&self) -> Option<u64> {
        *self.written.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Peer for BundleOut {
    fn store_id(&self) -> Result<Option<StoreId>> {
        Ok(None)
    }
    fn cursor(&self, _from: StoreId, _vs: VolumeSetId) -> Result<Lsn> {
        Ok(self.since)
    }
    fn export(&self, _: VolumeSetId, _: Lsn, _: Option<StoreId>) -> Result<Option<Batch>> {
        Err(Error::InvalidArgument(
            "a bundle being written has no records to send; import a bundle instead".into(),
        ))
    }
    fn apply(&self, batch: &Batch, _winner: Winner) -> Result<ApplyReport> {
        let bytes = write_bundle(&self.path, batch)?;
        *self.written.lock().unwrap_or_else(|e| e.into_inner()) = Some(bytes);
        Ok(ApplyReport {
            source: Some(batch.source),
            records_received: batch.records.len() as u64,
            records_new: batch.records.len() as u64,
            cursor: batch.through,
            records_written: batch.records.len() as u64,
            ..Default::default()
        })
    }
}

/// A bundle file being read: the sending end of an import.
pub struct BundleIn {
    path: PathBuf,
    batch: Batch,
}

impl BundleIn {
    /// Reads and checks the bundle (digest, frames, order) before anything is applied.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let batch = read_bundle(&path)?;
        Ok(BundleIn { path, batch })
    }
    /// The batch the bundle holds.
    pub fn batch(&self) -> &Batch {
        &self.batch
    }
}

impl Peer for BundleIn {
    fn store_id(&self) -> Result<Option<StoreId>> {
        Ok(Some(self.batch.source))
    }
    fn cursor(&self, _from: StoreId, _vs: VolumeSetId) -> Result<Lsn> {
        Ok(Lsn::ZERO)
    }
    fn export(&self, vs: VolumeSetId, _after: Lsn, _to: Option<StoreId>) -> Result<Option<Batch>> {
        if vs != self.batch.volume_set.id {
            return Err(Error::Bundle {
                file: self.path.clone(),
                offset: 0,
                problem: BundleProblem::WrongVolumeSet {
                    expected: vs,
                    found: self.batch.volume_set.id,
                },
            });
        }
        Ok(Some(self.batch.clone()))
    }
    fn apply(&self, _: &Batch, _: Winner) -> Result<ApplyReport> {
        Err(Error::InvalidArgument(
            "a bundle being read cannot receive records; export to a new bundle instead".into(),
        ))
    }
}
