//! Where shipped segments go: the [`ShipTarget`] trait and its implementation over the
//! log's own [`Storage`] (a local directory or network mount, or the simulated storage in
//! tests). An object store implements the same calls: `put` is an object write, `append`
//! a rewrite of the object, `lock` a lease.
//!
//! This module moves bytes; it never decides what to ship or checks what it moves.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::log::fs::{LockFailure, LockGuard, Storage};
use crate::log::LOCK_FILE;

/// A place a follower's copy of a log lives.
pub trait ShipTarget: Send + Sync {
    /// Where it is, for messages.
    fn describe(&self) -> String;
    /// Every file name in the target.
    fn list(&self) -> Result<Vec<String>>;
    /// A file's length, `None` when absent.
    fn len(&self, name: &str) -> Result<Option<u64>>;
    /// Bytes `[offset, offset + len)` of a file (fewer at its end).
    fn read(&self, name: &str, offset: u64, len: u64) -> Result<Vec<u8>>;
    /// Makes `name` hold exactly `bytes`, atomically and durably: after a crash it holds
    /// the old content (or nothing) or all of the new.
    fn put(&self, name: &str, bytes: &[u8]) -> Result<()>;
    /// Writes `bytes` at `offset` of `name` (created if absent) and makes them durable.
    /// A crash may leave a prefix of them: a torn tail that the next ship (or a reader's
    /// recovery) cuts or ignores.
    fn append(&self, name: &str, offset: u64, bytes: &[u8]) -> Result<()>;
    /// Cuts `name` to `len` bytes, durably.
    fn truncate(&self, name: &str, len: u64) -> Result<()>;
    /// Makes `name`'s bytes and its directory entry durable (for a file an interrupted
    /// shipper left, which may still sit in a cache only).
    fn sync(&self, name: &str) -> Result<()>;
    /// Removes a file, durably.
    fn remove(&self, name: &str) -> Result<()>;
    /// Excludes writers (a promotion) and other shippers while the guard lives.
    fn lock(&self) -> Result<Box<dyn LockGuard>>;
}

/// A target on a [`Storage`]: the same directory layout a store has, so a store opened
/// on the directory reads what was shipped.
pub struct StorageTarget {
    storage: Arc<dyn Storage>,
}

impl StorageTarget {
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        StorageTarget { storage }
    }

    /// A directory target (created if missing).
    pub fn dir(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let path = path.as_ref();
        let s = crate::log::fs::DirStorage::new(path, true)
            .map_err(|e| Error::io("open directory", path.to_path_buf(), e))?;
        Ok(StorageTarget::new(Arc::new(s)))
    }

    fn io(&self, op: &'static str, name: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
        let path = self.storage.path_of(name);
        move |e| Error::io(op, path, e)
    }
}

impl ShipTarget for StorageTarget {
    fn describe(&self) -> String {
        self.storage.location().display().to_string()
    }

    fn list(&self) -> Result<Vec<String>> {
        self.storage
            .list()
            .map_err(|e| Error::io("list", self.storage.location().to_path_buf(), e))
    }

    fn len(&self, name: &str) -> Result<Option<u64>> {
        match self.storage.open_read(name) {
            Ok(f) => Ok(Some(f.len().map_err(self.io("stat", name))?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io("open", name)(e)),
        }
    }

    fn read(&self, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let f = self
            .storage
            .open_read(name)
            .map_err(self.io("open", name))?;
        let mut v = vec![0u8; len as usize];
        let mut got = 0;
        while got < v.len() {
            let n = f
                .read_at(&mut v[got..], offset + got as u64)
                .map_err(self.io("read", name))?;
            if n == 0 {
                break;
            }
            got += n;
        }
        v.truncate(got);
        Ok(v)
    }

    fn put(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let tmp = format!("{name}.tmp");
        match self.storage.remove(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(self.io("remove", &tmp)(e)),
        }
        let f = self
            .storage
            .create_new(&tmp)
            .map_err(self.io("create", &tmp))?;
        f.write_all_at(bytes, 0).map_err(self.io("write", &tmp))?;
        f.sync_data().map_err(self.io("fsync", &tmp))?;
        drop(f);
        self.storage
            .rename(&tmp, name)
            .map_err(self.io("rename", name))?;
        self.storage
            .sync_dir()
            .map_err(self.io("sync directory", "."))
    }

    fn append(&self, name: &str, offset: u64, bytes: &[u8]) -> Result<()> {
        let (f, created) = match self.storage.open(name) {
            Ok(f) => (f, false),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (
                self.storage
                    .create_new(name)
                    .map_err(self.io("create", name))?,
                true,
            ),
            Err(e) => return Err(self.io("open", name)(e)),
        };
        f.write_all_at(bytes, offset)
            .map_err(self.io("write", name))?;
        f.sync_data().map_err(self.io("fsync", name))?;
        if created {
            self.storage
                .sync_dir()
                .map_err(self.io("sync directory", "."))?;
        }
        Ok(())
    }

    fn truncate(&self, name: &str, len: u64) -> Result<()> {
        let f = self.storage.open(name).map_err(self.io("open", name))?;
        f.set_len(len).map_err(self.io("truncate", name))?;
        f.sync_data().map_err(self.io("fsync", name))
    }

    fn sync(&self, name: &str) -> Result<()> {
        let f = self.storage.open(name).map_err(self.io("open", name))?;
        f.sync_data().map_err(self.io("fsync", name))?;
        self.storage
            .sync_dir()
            .map_err(self.io("sync directory", "."))
    }

    fn remove(&self, name: &str) -> Result<()> {
        self.storage.remove(name).map_err(self.io("remove", name))?;
        self.storage
            .sync_dir()
            .map_err(self.io("sync directory", "."))
    }

    fn lock(&self) -> Result<Box<dyn LockGuard>> {
        self.storage.try_lock(LOCK_FILE).map_err(|f| match f {
            LockFailure::Held { pid } => Error::Locked {
                path: self.storage.location().to_path_buf(),
                pid,
            },
            LockFailure::Io(e) => Error::io("lock", self.storage.path_of(LOCK_FILE), e),
        })
    }
}
