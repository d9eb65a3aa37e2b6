//! The durable segment log: opaque, kinded record payloads with dense LSNs, in checksummed
//! and hash-chained segment files, made durable by group commit and recovered on open.
//!
//! The log knows nothing of volume sets or snapshots: it stores `(kind, payload)` pairs.
//!
//! * [`format`](mod@format): the bytes (header, frame, footer), pure functions.
//! * [`fs`]: the storage trait, the real directory and the simulated one for crash tests.
//! * [`segment`]: checking one segment's bytes end to end.
//! * `recovery`: opening a directory: list, check, cut a torn tail, report.
//! * `writer`: the writer thread: framing, rotation, pre-writing, group fsync.
//! * `reader`: iterating records from any LSN.
//! * [`verify`]: offline checking (every finding, not just the first) and repair.
//!
//! Invariants: LSNs are dense from 1; every segment but the last is sealed; segment `n`'s
//! header holds the digest of segment `n - 1`; readers only ever see durable records; a
//! failed write or fsync poisons the handle until it is reopened.

pub mod format;
pub mod fs;
mod reader;
mod recovery;
pub mod segment;
pub mod verify;
mod writer;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub use reader::{LogIter, OwnedRecord, RecordRef};
pub use recovery::{RecoveryReport, TornTail};
pub use segment::SegmentInfo;

/// A log sequence number: dense, starting at 1. `Lsn(0)` means "before the first record".
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Lsn(pub u64);

impl Lsn {
    /// The position before any record.
    pub const ZERO: Lsn = Lsn(0);
    /// The LSN after this one.
    pub fn next(self) -> Lsn {
        Lsn(self.0 + 1)
    }
    /// The LSN before this one (saturating at zero).
    pub fn prev(self) -> Lsn {
        Lsn(self.0.saturating_sub(1))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A segment's sequence number, from 1, one more for each new segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SegmentId(pub u64);

impl fmt::Display for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A record's kind: chosen by the layer above, opaque to the log. Zero is reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RecordKind(pub u16);

/// An inclusive range of LSNs, as assigned to one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LsnRange {
    pub first: Lsn,
    pub last: Lsn,
}

/// One record to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub kind: RecordKind,
    pub payload: Vec<u8>,
}

impl Record {
    pub fn new(kind: RecordKind, payload: impl Into<Vec<u8>>) -> Self {
        Record {
            kind,
            payload: payload.into(),
        }
    }
}

/// When an append returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// After the record is on disk (fdatasync), shared with concurrent appenders.
    #[default]
    Sync,
    /// As soon as the record is queued; durable after [`Log::flush`] (or a later sync).
    Buffered,
}

/// What recovery does with a damaged tail of the active segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// Cut an incomplete or checksum-failing tail with no valid record after it, keep the
    /// cut bytes in a side file, report the cut, and open.
    #[default]
    TolerateTornTail,
    /// Fail the open on any damage, a torn tail included.
    Strict,
}

/// Settings of a log. Every limit is checked before any work is done.
#[derive(Debug, Clone)]
pub struct LogOptions {
    pub durability: Durability,
    pub recovery: RecoveryMode,
    /// A segment is sealed and a new one started when the next batch would pass this size.
    pub segment_bytes_max: u64,
    /// The active segment is pre-written with zeros this far ahead, so fdatasync does not
    /// have to update the file size on most appends.
    pub prewrite_bytes: u64,
    /// Largest payload of one record (at most [`format::RECORD_PAYLOAD_BYTES_MAX`]).
    pub record_bytes_max: usize,
    /// Most records in one atomic batch.
    pub batch_records_max: usize,
    /// Most bytes (framed) in one atomic batch; a batch always fits in one segment.
    pub batch_bytes_max: usize,
    /// Depth of the queue between appenders and the writer thread (in batches).
    pub queue_depth_max: usize,
    /// In buffered mode, bytes gathered before they are written to the file.
    pub buffer_bytes_max: usize,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            durability: Durability::Sync,
            recovery: RecoveryMode::TolerateTornTail,
            segment_bytes_max: 64 << 20,
            prewrite_bytes: 4 << 20,
            record_bytes_max: 4 << 20,
            batch_records_max: 1 << 20,
            batch_bytes_max: 32 << 20,
            queue_depth_max: 4096,
            buffer_bytes_max: 1 << 20,
        }
    }
}

impl LogOptions {
    fn check(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidArgument(m));
        if self.record_bytes_max == 0
            || self.record_bytes_max > format::RECORD_PAYLOAD_BYTES_MAX as usize
        {
            return bad(format!(
                "record_bytes_max must be in 1..={} (got {})",
                format::RECORD_PAYLOAD_BYTES_MAX,
                self.record_bytes_max
            ));
        }
        let overhead = (format::SEGMENT_HEADER_BYTES + format::FOOTER_BYTES) as u64;
        if self.segment_bytes_max < overhead + self.batch_bytes_max as u64 {
            return bad(format!(
                "segment_bytes_max ({}) must hold a header, a footer and a whole batch of batch_bytes_max ({})",
                self.segment_bytes_max, self.batch_bytes_max
            ));
        }
        if self.batch_bytes_max < format::frame_bytes(self.record_bytes_max) {
            return bad("batch_bytes_max must hold one record of record_bytes_max".into());
        }
        if self.batch_records_max == 0 || self.queue_depth_max == 0 {
            return bad("batch_records_max and queue_depth_max must be at least 1".into());
        }
        Ok(())
    }
}

/// The name of the lock file a writer holds.
pub const LOCK_FILE: &str = "LOCK";

/// What readers may see: the durable part of the log.
#[derive(Debug, Clone)]
struct View {
    /// Sealed segments and the active one (whose `bytes` and `last_lsn` are stale: the
    /// two fields below hold its durable extent).
    segments: Arc<Vec<SegmentInfo>>,
    active_bytes: u64,
    durable_lsn: Lsn,
    poisoned: Option<String>,
    closed: bool,
}

struct Shared {
    storage: Arc<dyn fs::Storage>,
    options: LogOptions,
    view: Mutex<View>,
    durable_changed: Condvar,
    poisoned: AtomicBool,
    /// `view.durable_lsn`, readable without the lock (hot read paths check it).
    durable_lsn: AtomicU64,
    /// Where iterators found every few thousandth record, so the next one can start there.
    hints: Arc<reader::SeekHints>,
}

impl Shared {
    fn view(&self) -> MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn poison(&self, reason: String) {
        let mut v = self.view();
        if v.poisoned.is_none() {
            v.poisoned = Some(reason);
        }
        self.poisoned.store(true, Ordering::Release);
        self.durable_changed.notify_all();
    }

    fn poison_error(&self) -> Error {
        Error::Poisoned {
            reason: self.view().poisoned.clone().unwrap_or_default(),
        }
    }
}

struct Submitter {
    next_lsn: Lsn,
    tx: Option<Sender<writer::Msg>>,
}

struct WriterHandle {
    submit: Mutex<Submitter>,
    thread: Mutex<Option<JoinHandle<()>>>,
    _lock: Box<dyn fs::LockGuard>,
}

/// An open log: one writer (with the directory lock) or a read-only view.
pub struct Log {
    shared: Arc<Shared>,
    writer: Option<WriterHandle>,
    report: RecoveryReport,
}

/// A claim on appended records; [`Log::wait`] on it returns once they are durable.
#[must_use = "a ticket must be waited on to know the records are durable"]
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    pub range: LsnRange,
    durability: Durability,
}

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Log")
            .field("location", &self.shared.storage.location())
            .field("writer", &self.writer.is_some())
            .finish()
    }
}

impl Log {
    /// Opens (creating if needed) a log in directory `dir` for writing.
    pub fn open(dir: impl AsRef<Path>, options: LogOptions) -> Result<Log> {
        let dir = dir.as_ref();
        let storage = fs::DirStorage::new(dir, true)
            .map_err(|e| Error::io("create directory", dir.into(), e))?;
        Log::open_with(Arc::new(storage), options)
    }

    /// Opens an existing log in `dir` read-only, beside a live writer or not.
    pub fn open_read_only(dir: impl AsRef<Path>, options: LogOptions) -> Result<Log> {
        let dir = dir.as_ref();
        let storage = fs::DirStorage::new(dir, false)
            .map_err(|e| Error::io("open directory", dir.into(), e))?;
        Log::open_read_only_with(Arc::new(storage), options)
    }

    /// Opens a log for writing on any storage.
    pub fn open_with(storage: Arc<dyn fs::Storage>, options: LogOptions) -> Result<Log> {
        options.check()?;
        let lock = storage.try_lock(LOCK_FILE).map_err(|f| match f {
            fs::LockFailure::Held { pid } => Error::Locked {
                path: storage.location().to_path_buf(),
                pid,
            },
            fs::LockFailure::Io(e) => Error::io("lock", storage.path_of(LOCK_FILE), e),
        })?;
        let (recovered, report) = recovery::recover(&*storage, &options, true)?;
        let writer = writer::Writer::start(&storage, &options, &recovered)?;
        let segments = writer.segments().to_vec();
        let view = View {
            active_bytes: segments.last().map(|s| s.bytes).unwrap_or(0),
            segments: Arc::new(segments),
            durable_lsn: recovered.last_lsn,
            poisoned: None,
            closed: false,
        };
        let shared = Arc::new(Shared {
            storage,
            options,
            view: Mutex::new(view),
            durable_changed: Condvar::new(),
            poisoned: AtomicBool::new(false),
            durable_lsn: AtomicU64::new(recovered.last_lsn.0),
            hints: Arc::default(),
        });
        let (tx, thread) = writer.spawn(shared.clone())?;
        Ok(Log {
            shared,
            writer: Some(WriterHandle {
                submit: Mutex::new(Submitter {
                    next_lsn: recovered.last_lsn.next(),
                    tx: Some(tx),
                }),
                thread: Mutex::new(Some(thread)),
                _lock: lock,
            }),
            report,
        })
    }

    /// Opens a log read-only on any storage: no lock, no changes to any file.
    pub fn open_read_only_with(storage: Arc<dyn fs::Storage>, options: LogOptions) -> Result<Log> {
        options.check()?;
        let (recovered, report) = recovery::recover(&*storage, &options, false)?;
        let view = View {
            active_bytes: recovered.segments.last().map(|s| s.bytes).unwrap_or(0),
            segments: Arc::new(recovered.segments),
            durable_lsn: recovered.last_lsn,
            poisoned: None,
            closed: false,
        };
        let shared = Arc::new(Shared {
            storage,
            options,
            view: Mutex::new(view),
            durable_changed: Condvar::new(),
            poisoned: AtomicBool::new(false),
            durable_lsn: AtomicU64::new(recovered.last_lsn.0),
            hints: Arc::default(),
        });
        Ok(Log {
            shared,
            writer: None,
            report,
        })
    }

    /// What recovery found and did when this handle was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    /// Where the log lives.
    pub fn location(&self) -> PathBuf {
        self.shared.storage.location().to_path_buf()
    }

    /// Whether this handle can append.
    pub fn is_writable(&self) -> bool {
        self.writer.is_some()
    }

    /// The options this log was opened with.
    pub fn options(&self) -> &LogOptions {
        &self.shared.options
    }

    /// The last durable LSN (`Lsn::ZERO` for an empty log).
    pub fn durable_lsn(&self) -> Lsn {
        Lsn(self.shared.durable_lsn.load(Ordering::Acquire))
    }

    /// Whether a failed write or fsync has poisoned this handle.
    pub fn is_poisoned(&self) -> bool {
        self.shared.poisoned.load(Ordering::Acquire)
    }

    /// The storage the log lives on (shipping reads segment bytes through it).
    pub fn storage(&self) -> &Arc<dyn fs::Storage> {
        &self.shared.storage
    }

    /// The segments as readers see them (the active one last).
    pub fn segments(&self) -> Vec<SegmentInfo> {
        let v = self.shared.view();
        let mut out = v.segments.to_vec();
        if let Some(active) = out.last_mut().filter(|s| !s.sealed) {
            active.bytes = v.active_bytes;
            active.last_lsn = v.durable_lsn;
        }
        out
    }

    /// Appends one record with the log's default durability; returns its LSN.
    pub fn append(&self, kind: RecordKind, payload: &[u8]) -> Result<Lsn> {
        let t = self.submit(
            vec![Record::new(kind, payload)],
            self.shared.options.durability,
        )?;
        Ok(self.wait(t)?.last)
    }

    /// Appends records as one atomic batch (after a crash: all of them or none).
    pub fn append_batch(&self, records: Vec<Record>) -> Result<LsnRange> {
        let t = self.submit(records, self.shared.options.durability)?;
        self.wait(t)
    }

    /// Assigns LSNs to a batch and queues it for the writer, in the order of calls. Returns
    /// at once (blocking only while the queue is full); [`Log::wait`] the ticket for
    /// durability. Callers that validate against queued state hold their own lock across
    /// this call, so log order is validation order.
    pub fn submit(&self, records: Vec<Record>, durability: Durability) -> Result<Ticket> {
        let w = self.writer.as_ref().ok_or(Error::ReadOnly)?;
        let o = &self.shared.options;
        if records.is_empty() {
            return Err(Error::InvalidArgument("an empty batch".into()));
        }
        let mut bytes = 0usize;
        for r in &records {
            if r.payload.len() > o.record_bytes_max {
                return Err(Error::RecordTooLarge {
                    bytes: r.payload.len(),
                    max: o.record_bytes_max,
                });
            }
            if r.kind.0 == 0 {
                return Err(Error::InvalidArgument("record kind 0 is reserved".into()));
            }
            bytes += format::frame_bytes(r.payload.len());
        }
        if records.len() > o.batch_records_max || bytes > o.batch_bytes_max {
            return Err(Error::BatchTooLarge {
                records: records.len(),
                bytes,
                records_max: o.batch_records_max,
                bytes_max: o.batch_bytes_max,
            });
        }
        let mut s = w.submit.lock().unwrap_or_else(|e| e.into_inner());
        if self.shared.poisoned.load(Ordering::Acquire) {
            return Err(self.shared.poison_error());
        }
        let tx = s.tx.as_ref().ok_or(Error::Closed)?;
        let first = s.next_lsn;
        let last = Lsn(first.0 + records.len() as u64 - 1);
        let sync = durability == Durability::Sync;
        tx.send(writer::Msg::Append {
            first,
            records,
            sync,
        })
        .map_err(|_| self.shared.poison_error())?;
        s.next_lsn = last.next();
        Ok(Ticket {
            range: LsnRange { first, last },
            durability,
        })
    }

    /// Waits until a ticket's records are durable (returns at once for buffered tickets).
    pub fn wait(&self, ticket: Ticket) -> Result<LsnRange> {
        if ticket.durability == Durability::Sync {
            self.wait_durable(ticket.range.last, None)?;
        }
        Ok(ticket.range)
    }

    /// Blocks until `lsn` is durable, the timeout passes, or the log fails. Returns the
    /// durable LSN (which may be below `lsn` after a timeout). Followers use this to tail.
    pub fn wait_durable(&self, lsn: Lsn, timeout: Option<Duration>) -> Result<Lsn> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut v = self.shared.view();
        loop {
            if v.durable_lsn >= lsn {
                return Ok(v.durable_lsn);
            }
            if let Some(reason) = &v.poisoned {
                return Err(Error::Poisoned {
                    reason: reason.clone(),
                });
            }
            if v.closed || self.writer.is_none() {
                return Ok(v.durable_lsn);
            }
            match deadline {
                None => {
                    v = self
                        .shared
                        .durable_changed
                        .wait(v)
                        .unwrap_or_else(|e| e.into_inner())
                }
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Ok(v.durable_lsn);
                    }
                    v = self
                        .shared
                        .durable_changed
                        .wait_timeout(v, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
    }

    /// Makes every record appended so far durable; returns the durable LSN.
    pub fn flush(&self) -> Result<Lsn> {
        let w = self.writer.as_ref().ok_or(Error::ReadOnly)?;
        let (tx, rx) = crossbeam_channel::bounded(1);
        {
            let s = w.submit.lock().unwrap_or_else(|e| e.into_inner());
            if self.shared.poisoned.load(Ordering::Acquire) {
                return Err(self.shared.poison_error());
            }
            let sender = s.tx.as_ref().ok_or(Error::Closed)?;
            sender
                .send(writer::Msg::Flush { reply: tx })
                .map_err(|_| self.shared.poison_error())?;
        }
        rx.recv().map_err(|_| self.shared.poison_error())?
    }

    /// Reads records from `from` (inclusive) up to the durable LSN at the time of the call.
    pub fn iter_from(&self, from: Lsn) -> LogIter {
        let v = self.shared.view();
        LogIter::new(
            self.shared.storage.clone(),
            v.segments.clone(),
            v.active_bytes,
            from,
            v.durable_lsn,
            self.shared.hints.clone(),
        )
    }

    /// [`Log::iter_from`] for the replay that follows the open: records up to the durable
    /// LSN the open verified are not checksummed a second time.
    pub fn iter_recovered(&self) -> LogIter {
        let it = self.iter_from(Lsn(1));
        if self.durable_lsn() == self.report.last_lsn {
            it.trust_recovered_bytes()
        } else {
            it
        }
    }

    /// Read-only handles: picks up records a writer (in this or another process) made
    /// durable since the open or the last refresh. Returns the new durable LSN.
    pub fn refresh(&self) -> Result<Lsn> {
        if self.writer.is_some() {
            return Ok(self.durable_lsn());
        }
        if let Some(lsn) = self.refresh_active()? {
            return Ok(lsn);
        }
        let known = self.shared.view().segments.clone();
        let (recovered, _) =
            recovery::recover_after(&*self.shared.storage, &self.shared.options, false, &known)?;
        let mut v = self.shared.view();
        if recovered.last_lsn < v.durable_lsn {
            // A writer cut records this handle had seen (they were never durable): the
            // places remembered for them may now hold other records.
            self.shared.hints.clear();
        }
        if recovered.last_lsn >= v.durable_lsn {
            v.active_bytes = recovered.segments.last().map(|s| s.bytes).unwrap_or(0);
            v.segments = Arc::new(recovered.segments);
            v.durable_lsn = recovered.last_lsn;
            self.shared
                .durable_lsn
                .store(recovered.last_lsn.0, Ordering::Release);
            self.shared.durable_changed.notify_all();
        }
        Ok(v.durable_lsn)
    }

    /// The common case of [`Log::refresh`]: the active segment grew. Reads only its new
    /// bytes and takes the whole batches among them. `None` when that is not the case (a
    /// footer, a shorter file, a frame out of order): then a recovery pass decides.
    fn refresh_active(&self) -> Result<Option<Lsn>> {
        let (last, from, durable) = {
            let v = self.shared.view();
            match v.segments.last().filter(|s| !s.sealed) {
                Some(s) => (s.clone(), v.active_bytes, v.durable_lsn),
                None => return Ok(None),
            }
        };
        let storage = &self.shared.storage;
        let io = |op, e| Error::io(op, storage.path_of(&last.file_name), e);
        let f = match storage.open_read(&last.file_name) {
            Ok(f) => f,
            Err(_) => return Ok(None),
        };
        let len = f.len().map_err(|e| io("stat", e))?;
        if len < from {
            return Ok(None);
        }
        let mut buf = vec![0u8; (len - from) as usize];
        let n = f.read_at(&mut buf, from).map_err(|e| io("read", e))?;
        buf.truncate(n);
        let (mut pos, mut next) = (0usize, durable.next());
        let (mut whole_pos, mut whole_lsn) = (0usize, durable);
        loop {
            match format::decode_slot(&buf[pos..], last.id) {
                format::Slot::Frame(fr) => {
                    if fr.lsn != next {
                        return Ok(None);
                    }
                    pos += fr.frame_bytes;
                    next = next.next();
                    if fr.flags & format::FLAG_BATCH_CONTINUES == 0 {
                        (whole_pos, whole_lsn) = (pos, fr.lsn);
                    }
                }
                // Sealed meanwhile (the next segment's chain needs this one's digest), or
                // bytes that do not decode: a recovery pass tells damage from a write in
                // progress.
                format::Slot::Footer(_) | format::Slot::Bad(_) => return Ok(None),
                // The end of what is written (or a write in progress).
                _ => break,
            }
        }
        let mut v = self.shared.view();
        if whole_lsn > v.durable_lsn && v.active_bytes == from {
            v.active_bytes = from + whole_pos as u64;
            v.durable_lsn = whole_lsn;
            self.shared
                .durable_lsn
                .store(whole_lsn.0, Ordering::Release);
            self.shared.durable_changed.notify_all();
        }
        Ok(Some(v.durable_lsn))
    }

    /// Flushes, stops the writer and releases the lock. Dropping the log does the same
    /// but cannot report a failure.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        let Some(w) = self.writer.as_ref() else {
            return Ok(());
        };
        if self.shared.view().closed {
            return Ok(());
        }
        let mut result = Ok(());
        if !self.shared.poisoned.load(Ordering::Acquire) {
            if let Err(e) = self.flush() {
                result = Err(e);
            }
        }
        // Dropping the sender ends the writer thread's loop.
        w.submit.lock().unwrap_or_else(|e| e.into_inner()).tx = None;
        if let Some(t) = w.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
        let mut v = self.shared.view();
        v.closed = true;
        self.shared.durable_changed.notify_all();
        result
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}
