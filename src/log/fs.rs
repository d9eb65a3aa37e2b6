//! Storage: the only door between the log and the bytes it keeps.
//!
//! A [`Storage`] is one flat directory of named files. [`DirStorage`] is the real file
//! system; [`SimStorage`] is an in-memory directory for tests that keeps what was written
//! apart from what was made durable, and can crash (dropping or tearing unsynced writes),
//! run out of space (ENOSPC), fail reads or writes (EIO) and fail fsync. The log never
//! calls `std::fs` directly; this module never interprets the bytes it stores.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek};
use std::ops::Deref;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// One open file of a [`Storage`].
pub trait StorageFile: Send + Sync {
    /// Reads up to `buf.len()` bytes at `offset`; fewer only at the end of the file.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Writes all of `buf` at `offset`, growing the file as needed.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Makes every write so far durable (fdatasync).
    fn sync_data(&self) -> io::Result<()>;
    /// Truncates or extends (with zeros) the file.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Whether the file is empty.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
}

/// The whole content of a file, read-only: memory-mapped where the storage allows.
pub enum FileBytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Deref for FileBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(m) => m,
            FileBytes::Owned(v) => v,
        }
    }
}

impl fmt::Debug for FileBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileBytes({} bytes)", self.len())
    }
}

/// Why an exclusive lock could not be taken.
#[derive(Debug)]
pub enum LockFailure {
    /// Someone holds it; the pid is what the holder wrote into the lock file, if readable.
    Held {
        pid: Option<u32>,
    },
    Io(io::Error),
}

/// A held lock; dropping it releases the lock.
pub trait LockGuard: Send + Sync {}

/// A flat directory of named files.
pub trait Storage: Send + Sync + fmt::Debug {
    /// Where this storage lives, for messages.
    fn location(&self) -> &Path;
    /// Names of all files in the directory.
    fn list(&self) -> io::Result<Vec<String>>;
    /// Opens an existing file for reading and writing.
    fn open(&self, name: &str) -> io::Result<Box<dyn StorageFile>>;
    /// Opens an existing file for reading only (readers never need write access, so a log
    /// on read-only media or without write permission can still be read).
    fn open_read(&self, name: &str) -> io::Result<Box<dyn StorageFile>> {
        self.open(name)
    }
    /// Creates a new, empty file (fails if it exists).
    fn create_new(&self, name: &str) -> io::Result<Box<dyn StorageFile>>;
    /// Reads a whole file (memory-mapped for the real file system).
    fn read_all(&self, name: &str) -> io::Result<FileBytes>;
    /// Atomically renames `from` to `to`, replacing `to`.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Removes a file.
    fn remove(&self, name: &str) -> io::Result<()>;
    /// Makes creations, renames and removals in the directory durable.
    fn sync_dir(&self) -> io::Result<()>;
    /// Takes the exclusive lock `name`, writing our pid into it.
    fn try_lock(&self, name: &str) -> Result<Box<dyn LockGuard>, LockFailure>;
    /// Full path of a file, for messages.
    fn path_of(&self, name: &str) -> PathBuf {
        self.location().join(name)
    }
}

// ---------------------------------------------------------------------------------------
// The real file system.

/// How long taking a lock that this same process seems to hold is retried (see
/// `DirStorage::try_lock`).
const LOCK_RETRY_MS: u64 = 200;

/// A directory on the real file system.
#[derive(Debug, Clone)]
pub struct DirStorage {
    dir: PathBuf,
}

impl DirStorage {
    /// Uses `dir`, creating it if `create` and it does not exist.
    pub fn new(dir: impl Into<PathBuf>, create: bool) -> io::Result<Self> {
        let dir = dir.into();
        if create {
            std::fs::create_dir_all(&dir)?;
        }
        if !dir.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} is not a directory", dir.display()),
            ));
        }
        Ok(DirStorage { dir })
    }
}

struct RealFile(File);

impl StorageFile for RealFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match self.0.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
}

struct RealLock(#[allow(dead_code)] File);
impl LockGuard for RealLock {}

impl Storage for DirStorage {
    fn location(&self) -> &Path {
        &self.dir
    }
    fn list(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir)? {
            let e = e?;
            if let Some(n) = e.file_name().to_str() {
                out.push(n.to_string());
            }
        }
        Ok(out)
    }
    fn open(&self, name: &str) -> io::Result<Box<dyn StorageFile>> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.dir.join(name))?;
        Ok(Box::new(RealFile(f)))
    }
    fn open_read(&self, name: &str) -> io::Result<Box<dyn StorageFile>> {
        Ok(Box::new(RealFile(File::open(self.dir.join(name))?)))
    }
    fn create_new(&self, name: &str) -> io::Result<Box<dyn StorageFile>> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(self.dir.join(name))?;
        Ok(Box::new(RealFile(f)))
    }
    fn read_all(&self, name: &str) -> io::Result<FileBytes> {
        let f = File::open(self.dir.join(name))?;
        if f.metadata()?.len() == 0 {
            return Ok(FileBytes::Owned(Vec::new()));
        }
        // SAFETY: sealed segments are never written again while the store runs; a file
        // truncated by another program under the map is outside the contract (see README).
        let m = unsafe { memmap2::Mmap::map(&f)? };
        Ok(FileBytes::Mapped(m))
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        std::fs::rename(self.dir.join(from), self.dir.join(to))
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        std::fs::remove_file(self.dir.join(name))
    }
    fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }
    fn try_lock(&self, name: &str) -> Result<Box<dyn LockGuard>, LockFailure> {
        let path = self.dir.join(name);
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(LockFailure::Io)?;
        let me = std::process::id();
        let mut waited_ms = 0;
        loop {
            match f.try_lock() {
                Ok(()) => {
                    let pid = me.to_string();
                    f.set_len(0)
                        .and_then(|_| f.write_all_at(pid.as_bytes(), 0))
                        .map_err(LockFailure::Io)?;
                    return Ok(Box::new(RealLock(f)));
                }
                Err(TryLockError::WouldBlock) => {
                    let mut s = String::new();
                    let pid: Option<u32> = f
                        .read_to_string(&mut s)
                        .ok()
                        .and_then(|_| s.trim().parse().ok());
                    // The lock is an flock, which belongs to the open file: a child this
                    // process is starting (fork, then exec) holds a copy of the file for
                    // a moment, and with it the lock, after this process closed its own
                    // store. When the holder is this very process, wait that moment out
                    // (a store really open twice here is refused after LOCK_RETRY_MS).
                    if pid == Some(me) && waited_ms < LOCK_RETRY_MS {
                        std::thread::sleep(std::time::Duration::from_millis(2));
                        waited_ms += 2;
                        f.seek(io::SeekFrom::Start(0)).map_err(LockFailure::Io)?;
                        continue;
                    }
                    return Err(LockFailure::Held { pid });
                }
                Err(TryLockError::Error(e)) => return Err(LockFailure::Io(e)),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The simulated file system.

/// How a simulated crash treats writes that were not yet synced.
#[derive(Debug, Clone, Copy)]
pub enum CrashMode {
    /// Every unsynced write and directory change is lost.
    DropUnsynced,
    /// A random prefix of each file's unsynced writes survives, the last one possibly
    /// torn at a random byte; directory changes not synced are lost.
    Torn { seed: u64 },
}

/// Faults the simulated storage injects. Counters count down on each matching operation.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// After this many more bytes are written, every write fails with ENOSPC (the write
    /// that crosses the line writes the bytes that fit: a short write).
    pub write_bytes_left: Option<u64>,
    /// The n-th next write (0 = the next one) fails with EIO, writing nothing.
    pub write_error_in: Option<u64>,
    /// The n-th next file sync (0 = the next one) fails with EIO and makes nothing durable.
    pub sync_error_in: Option<u64>,
    /// The n-th next read (0 = the next one) fails with EIO.
    pub read_error_in: Option<u64>,
}

#[derive(Clone, Debug)]
enum Pending {
    Write { offset: u64, bytes: Vec<u8> },
    SetLen(u64),
}

#[derive(Default, Clone)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<Pending>,
}

fn apply(buf: &mut Vec<u8>, op: &Pending) {
    match op {
        Pending::Write { offset, bytes } => {
            let end = *offset as usize + bytes.len();
            if buf.len() < end {
                buf.resize(end, 0);
            }
            buf[*offset as usize..end].copy_from_slice(bytes);
        }
        Pending::SetLen(n) => buf.resize(*n as usize, 0),
    }
}

#[derive(Default)]
struct SimState {
    generation: u64,
    inodes: HashMap<u64, Inode>,
    dir: BTreeMap<String, u64>,
    durable_dir: BTreeMap<String, u64>,
    next_inode: u64,
    locks: HashSet<String>,
    faults: Faults,
    syncs: u64,
    bytes_written: u64,
}

/// An in-memory directory that tracks written and durable bytes apart. Clones share state.
#[derive(Clone, Default)]
pub struct SimStorage {
    state: Arc<Mutex<SimState>>,
    location: PathBuf,
}

impl fmt::Debug for SimStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SimStorage")
    }
}

fn eio(what: &str) -> io::Error {
    io::Error::other(format!("simulated I/O error ({what})"))
}

fn countdown(slot: &mut Option<u64>) -> bool {
    match slot {
        Some(0) => {
            *slot = None;
            true
        }
        Some(n) => {
            *n -= 1;
            false
        }
        None => false,
    }
}

impl SimStorage {
    pub fn new() -> Self {
        SimStorage {
            state: Arc::default(),
            location: PathBuf::from("sim:"),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        // A panic in a test thread must not hide the state from the others.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the fault plan.
    pub fn set_faults(&self, faults: Faults) {
        self.lock().faults = faults;
    }

    /// Clears every pending fault.
    pub fn clear_faults(&self) {
        self.lock().faults = Faults::default();
    }

    /// Number of file syncs that succeeded so far.
    pub fn syncs(&self) -> u64 {
        self.lock().syncs
    }

    /// Bytes written so far (all files).
    pub fn bytes_written(&self) -> u64 {
        self.lock().bytes_written
    }

    /// Simulates a power cut: unsynced data and directory changes are lost (or torn), every
    /// open handle and lock from before is dead.
    pub fn crash(&self, mode: CrashMode) {
        let mut s = self.lock();
        s.generation += 1;
        s.locks.clear();
        let mut rng = match mode {
            CrashMode::DropUnsynced => 0,
            CrashMode::Torn { seed } => seed | 1,
        };
        let mut next = move || {
            // xorshift64*: enough randomness for choosing cut points.
            rng ^= rng >> 12;
            rng ^= rng << 25;
            rng ^= rng >> 27;
            rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        let live: HashSet<u64> = s.durable_dir.values().copied().collect();
        s.inodes.retain(|ino, _| live.contains(ino));
        for inode in s.inodes.values_mut() {
            let mut data = inode.durable.clone();
            if let CrashMode::Torn { .. } = mode {
                let n = inode.pending.len();
                if n > 0 {
                    let keep = (next() % (n as u64 + 1)) as usize;
                    for (i, op) in inode.pending.iter().take(keep).enumerate() {
                        if i + 1 == keep {
                            if let Pending::Write { offset, bytes } = op {
                                let cut = (next() % (bytes.len() as u64 + 1)) as usize;
                                apply(
                                    &mut data,
                                    &Pending::Write {
                                        offset: *offset,
                                        bytes: bytes[..cut].to_vec(),
                                    },
                                );
                                continue;
                            }
                        }
                        apply(&mut data, op);
                    }
                }
            }
            inode.data = data.clone();
            inode.durable = data;
            inode.pending.clear();
        }
        s.dir = s.durable_dir.clone();
    }

    /// A copy of a file's current (not necessarily durable) bytes.
    pub fn file_bytes(&self, name: &str) -> Option<Vec<u8>> {
        let s = self.lock();
        s.dir.get(name).map(|ino| s.inodes[ino].data.clone())
    }

    /// Replaces a file's bytes, durably (for corrupting a store in tests).
    pub fn put_file(&self, name: &str, bytes: Vec<u8>) {
        let mut s = self.lock();
        let ino = match s.dir.get(name) {
            Some(&ino) => ino,
            None => {
                s.next_inode += 1;
                let ino = s.next_inode;
                s.dir.insert(name.to_string(), ino);
                s.durable_dir.insert(name.to_string(), ino);
                ino
            }
        };
        s.inodes.insert(
            ino,
            Inode {
                data: bytes.clone(),
                durable: bytes,
                pending: Vec::new(),
            },
        );
    }
}

struct SimFile {
    sim: SimStorage,
    inode: u64,
    generation: u64,
}

impl SimFile {
    fn state(&self) -> io::Result<MutexGuard<'_, SimState>> {
        let s = self.sim.lock();
        if s.generation != self.generation {
            return Err(eio("handle from before a crash"));
        }
        Ok(s)
    }
}

impl StorageFile for SimFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut s = self.state()?;
        if countdown(&mut s.faults.read_error_in) {
            return Err(eio("read"));
        }
        let data = &s.inodes[&self.inode].data;
        let start = (offset as usize).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut s = self.state()?;
        if countdown(&mut s.faults.write_error_in) {
            return Err(eio("write"));
        }
        let mut n = buf.len();
        let mut full = false;
        if let Some(left) = s.faults.write_bytes_left.as_mut() {
            if (*left as usize) < n {
                n = *left as usize;
                full = true;
            }
            *left -= n as u64;
        }
        s.bytes_written += n as u64;
        let op = Pending::Write {
            offset,
            bytes: buf[..n].to_vec(),
        };
        let inode = s
            .inodes
            .get_mut(&self.inode)
            .expect("inode of an open handle");
        apply(&mut inode.data, &op);
        inode.pending.push(op);
        if full {
            return Err(io::Error::from_raw_os_error(28)); // ENOSPC
        }
        Ok(())
    }
    fn sync_data(&self) -> io::Result<()> {
        let mut s = self.state()?;
        if countdown(&mut s.faults.sync_error_in) {
            // Like Linux after a failed fsync: the dirty data may be gone; nothing is durable.
            return Err(eio("fsync"));
        }
        s.syncs += 1;
        let inode = s
            .inodes
            .get_mut(&self.inode)
            .expect("inode of an open handle");
        for op in std::mem::take(&mut inode.pending) {
            apply(&mut inode.durable, &op);
        }
        Ok(())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut s = self.state()?;
        let op = Pending::SetLen(len);
        let inode = s
            .inodes
            .get_mut(&self.inode)
            .expect("inode of an open handle");
        apply(&mut inode.data, &op);
        inode.pending.push(op);
        Ok(())
    }
    fn len(&self) -> io::Result<u64> {
        let s = self.state()?;
        Ok(s.inodes[&self.inode].data.len() as u64)
    }
}

struct SimLock {
    sim: SimStorage,
    name: String,
    generation: u64,
}
impl LockGuard for SimLock {}
impl Drop for SimLock {
    fn drop(&mut self) {
        let mut s = self.sim.lock();
        if s.generation == self.generation {
            s.locks.remove(&self.name);
        }
    }
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{name}: no such file"))
}

impl Storage for SimStorage {
    fn location(&self) -> &Path {
        &self.location
    }
    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.lock().dir.keys().cloned().collect())
    }
    fn open(&self, name: &str) -> io::Result<Box<dyn StorageFile>> {
        let s = self.lock();
        let inode = *s.dir.get(name).ok_or_else(|| not_found(name))?;
        Ok(Box::new(SimFile {
            sim: self.clone(),
            inode,
            generation: s.generation,
        }))
    }
    fn create_new(&self, name: &str) -> io::Result<Box<dyn StorageFile>> {
        let mut s = self.lock();
        if s.dir.contains_key(name) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{name} exists"),
            ));
        }
        s.next_inode += 1;
        let inode = s.next_inode;
        s.inodes.insert(inode, Inode::default());
        s.dir.insert(name.to_string(), inode);
        Ok(Box::new(SimFile {
            sim: self.clone(),
            inode,
            generation: s.generation,
        }))
    }
    fn read_all(&self, name: &str) -> io::Result<FileBytes> {
        let mut s = self.lock();
        if countdown(&mut s.faults.read_error_in) {
            return Err(eio("read"));
        }
        let inode = *s.dir.get(name).ok_or_else(|| not_found(name))?;
        Ok(FileBytes::Owned(s.inodes[&inode].data.clone()))
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut s = self.lock();
        let inode = s.dir.remove(from).ok_or_else(|| not_found(from))?;
        s.dir.insert(to.to_string(), inode);
        Ok(())
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        let mut s = self.lock();
        s.dir.remove(name).ok_or_else(|| not_found(name))?;
        Ok(())
    }
    fn sync_dir(&self) -> io::Result<()> {
        let mut s = self.lock();
        if countdown(&mut s.faults.sync_error_in) {
            return Err(eio("directory fsync"));
        }
        s.durable_dir = s.dir.clone();
        Ok(())
    }
    fn try_lock(&self, name: &str) -> Result<Box<dyn LockGuard>, LockFailure> {
        let mut s = self.lock();
        if !s.locks.insert(name.to_string()) {
            return Err(LockFailure::Held {
                pid: Some(std::process::id()),
            });
        }
        Ok(Box::new(SimLock {
            sim: self.clone(),
            name: name.to_string(),
            generation: s.generation,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sim_crash_drops_unsynced_and_keeps_synced() {
        let sim = SimStorage::new();
        let f = sim.create_new("a").unwrap();
        f.write_all_at(b"durable", 0).unwrap();
        f.sync_data().unwrap();
        sim.sync_dir().unwrap();
        f.write_all_at(b"-lost", 7).unwrap();
        let g = sim.create_new("b").unwrap();
        g.sync_data().unwrap();
        sim.crash(CrashMode::DropUnsynced);
        assert_eq!(sim.file_bytes("a").unwrap(), b"durable");
        assert!(
            sim.file_bytes("b").is_none(),
            "a file whose directory entry was never synced is gone"
        );
        assert!(
            f.write_all_at(b"x", 0).is_err(),
            "old handles are dead after a crash"
        );
    }

    #[test]
    fn sim_enospc_is_a_short_write() {
        let sim = SimStorage::new();
        let f = sim.create_new("a").unwrap();
        sim.set_faults(Faults {
            write_bytes_left: Some(3),
            ..Faults::default()
        });
        let e = f.write_all_at(b"hello", 0).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(28));
        assert_eq!(sim.file_bytes("a").unwrap(), b"hel");
    }

    #[test]
    fn real_lock_is_exclusive_and_names_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let st = DirStorage::new(dir.path(), false).unwrap();
        let held = st.try_lock("LOCK").ok().unwrap();
        match st.try_lock("LOCK") {
            Err(LockFailure::Held { pid }) => assert_eq!(pid, Some(std::process::id())),
            _ => panic!("second lock must fail"),
        }
        drop(held);
        assert!(st.try_lock("LOCK").is_ok());
    }
}
