//! The writer thread: frames queued batches, writes them, rotates segments and makes
//! them durable with one fdatasync per group.
//!
//! Appenders assign LSNs and queue batches on a bounded channel (see `Log::submit`). The
//! thread takes the first queued message, then everything else already queued, writes the
//! group with one `write` and, if any message asked for durability, one `fdatasync`; then
//! it publishes the new durable LSN and wakes the waiters. Any failed write or sync
//! poisons the log: the page cache may no longer match the disk, so nothing is retried.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use crate::error::{Error, Result};
use crate::log::format::{
    self, Footer, SegmentHeader, FLAG_BATCH_CONTINUES, FOOTER_BYTES, SEGMENT_HEADER_BYTES,
};
use crate::log::fs::{Storage, StorageFile};
use crate::log::recovery::Recovered;
use crate::log::segment::SegmentInfo;
use crate::log::{LogOptions, Lsn, Record, SegmentId, Shared};

/// A message from appenders to the writer thread.
pub(crate) enum Msg {
    Append {
        first: Lsn,
        records: Vec<Record>,
        sync: bool,
    },
    Flush {
        reply: Sender<Result<Lsn>>,
    },
}

/// A group stops taking more queued messages once it holds this many bytes.
const GROUP_BYTES_MAX: usize = 4 << 20;
/// Zeros are written in pieces of this size when pre-writing.
const ZERO_CHUNK_BYTES: usize = 1 << 20;

pub(crate) struct Writer {
    storage: Arc<dyn Storage>,
    options: LogOptions,
    file: Box<dyn StorageFile>,
    seg: SegmentId,
    /// Bytes of the active segment written to the file (header and frames).
    file_pos: u64,
    /// Length of the file: written bytes plus pre-written zeros.
    allocated: u64,
    /// Frames not yet written to the file; they go at `file_pos`.
    buf: Vec<u8>,
    /// blake3 over everything written to the active segment.
    hasher: blake3::Hasher,
    /// Records in the active segment, buffered ones included.
    records: u64,
    /// Last LSN queued to the writer (buffered or written).
    last_lsn: Lsn,
    /// Last LSN known durable.
    synced_lsn: Lsn,
    segments: Vec<SegmentInfo>,
    segments_changed: bool,
    shared: Option<Arc<Shared>>,
}

fn io_err(
    storage: &dyn Storage,
    op: &'static str,
    name: &str,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = storage.path_of(name);
    move |e| Error::io(op, path, e)
}

/// Writes zeros to `[from, to)`.
fn write_zeros(file: &dyn StorageFile, from: u64, to: u64) -> std::io::Result<()> {
    let zeros = vec![0u8; ZERO_CHUNK_BYTES.min((to - from) as usize)];
    let mut at = from;
    while at < to {
        let n = ((to - at) as usize).min(zeros.len());
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// Creates segment `id` under a temporary name, writes its header and pre-written zeros,
/// syncs it, renames it into place and syncs the directory.
fn create_segment(
    storage: &dyn Storage,
    options: &LogOptions,
    id: SegmentId,
    first_lsn: Lsn,
    prev_digest: format::Digest,
) -> Result<(Box<dyn StorageFile>, String, u64)> {
    let name = format::segment_file_name(id, first_lsn);
    let tmp = format!("{name}.tmp");
    match storage.remove(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("remove", storage.path_of(&tmp), e)),
    }
    let file = storage
        .create_new(&tmp)
        .map_err(io_err(storage, "create", &tmp))?;
    let header = format::encode_segment_header(&SegmentHeader {
        version: format::FORMAT_VERSION,
        segment: id,
        first_lsn,
        prev_digest,
    });
    file.write_all_at(&header, 0)
        .map_err(io_err(storage, "write", &tmp))?;
    let allocated = options
        .prewrite_bytes
        .min(options.segment_bytes_max)
        .max(SEGMENT_HEADER_BYTES as u64);
    write_zeros(&*file, SEGMENT_HEADER_BYTES as u64, allocated)
        .map_err(io_err(storage, "write", &tmp))?;
    file.sync_data().map_err(io_err(storage, "fsync", &tmp))?;
    storage
        .rename(&tmp, &name)
        .map_err(io_err(storage, "rename", &tmp))?;
    storage
        .sync_dir()
        .map_err(io_err(storage, "sync directory", "."))?;
    Ok((file, name, allocated))
}

impl Writer {
    /// Prepares the writer from recovered state, creating a segment if none is active.
    pub(crate) fn start(
        storage: &Arc<dyn Storage>,
        options: &LogOptions,
        rec: &Recovered,
    ) -> Result<Writer> {
        let mut segments = rec.segments.clone();
        let (file, seg, file_pos, allocated, hasher, records) = match &rec.active {
            Some(a) => {
                let file =
                    storage
                        .open(&a.file_name)
                        .map_err(io_err(&**storage, "open", &a.file_name))?;
                let len = file
                    .len()
                    .map_err(io_err(&**storage, "stat", &a.file_name))?;
                (
                    file,
                    a.id,
                    a.end,
                    len.max(a.end),
                    a.hasher.clone(),
                    a.records,
                )
            }
            None => {
                let first = rec.last_lsn.next();
                let (file, name, allocated) =
                    create_segment(&**storage, options, rec.next_id, first, rec.last_digest)?;
                let mut hasher = blake3::Hasher::new();
                hasher.update(&format::encode_segment_header(&SegmentHeader {
                    version: format::FORMAT_VERSION,
                    segment: rec.next_id,
                    first_lsn: first,
                    prev_digest: rec.last_digest,
                }));
                segments.push(SegmentInfo {
                    id: rec.next_id,
                    first_lsn: first,
                    last_lsn: rec.last_lsn,
                    file_name: name,
                    sealed: false,
                    bytes: SEGMENT_HEADER_BYTES as u64,
                    digest: None,
                });
                (
                    file,
                    rec.next_id,
                    SEGMENT_HEADER_BYTES as u64,
                    allocated,
                    hasher,
                    0,
                )
            }
        };
        let upgrade = rec
            .active
            .as_ref()
            .is_some_and(|a| a.version < format::FORMAT_VERSION);
        let mut w = Writer {
            storage: storage.clone(),
            options: options.clone(),
            file,
            seg,
            file_pos,
            allocated,
            buf: Vec::with_capacity(options.buffer_bytes_max.min(GROUP_BYTES_MAX) + 4096),
            hasher,
            records,
            last_lsn: rec.last_lsn,
            synced_lsn: rec.last_lsn,
            segments,
            segments_changed: false,
            shared: None,
        };
        if upgrade {
            // A segment of an older version is sealed as it is: new records go into a
            // segment of this version.
            w.rotate()?;
        }
        Ok(w)
    }

    /// The segment list including the active segment, as the writer starts.
    pub(crate) fn segments(&self) -> &[SegmentInfo] {
        &self.segments
    }

    /// Starts the thread; returns the queue's sending side.
    pub(crate) fn spawn(mut self, shared: Arc<Shared>) -> Result<(Sender<Msg>, JoinHandle<()>)> {
        let (tx, rx) = crossbeam_channel::bounded(shared.options.queue_depth_max);
        self.shared = Some(shared);
        let thread = std::thread::Builder::new()
            .name("mdslog-writer".into())
            .spawn(move || self.run(rx))
            .map_err(|e| Error::io("spawn writer thread", std::path::PathBuf::new(), e))?;
        Ok((tx, thread))
    }

    fn shared(&self) -> &Shared {
        self.shared.as_deref().expect("spawned")
    }

    fn run(mut self, rx: Receiver<Msg>) {
        let mut flushes: Vec<Sender<Result<Lsn>>> = Vec::new();
        while let Ok(first) = rx.recv() {
            let mut need_sync = false;
            let mut failed: Option<Error> = None;
            let poisoned = self
                .shared()
                .poisoned
                .load(std::sync::atomic::Ordering::Acquire);
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Append {
                        first,
                        records,
                        sync,
                    } => {
                        need_sync |= sync;
                        if !poisoned && failed.is_none() {
                            if let Err(e) = self.append(first, &records) {
                                failed = Some(e);
                            }
                        }
                    }
                    Msg::Flush { reply } => {
                        need_sync = true;
                        flushes.push(reply);
                    }
                }
                if self.buf.len() < GROUP_BYTES_MAX {
                    next = rx.try_recv().ok();
                }
            }
            if !poisoned && failed.is_none() {
                let r = if need_sync {
                    self.write_buf().and_then(|_| self.sync())
                } else if self.buf.len() >= self.options.buffer_bytes_max {
                    self.write_buf()
                } else {
                    Ok(())
                };
                if let Err(e) = r {
                    failed = Some(e);
                }
            }
            if let Some(e) = failed {
                self.shared().poison(e.to_string());
            }
            for reply in flushes.drain(..) {
                let r = if self
                    .shared()
                    .poisoned
                    .load(std::sync::atomic::Ordering::Acquire)
                {
                    Err(self.shared().poison_error())
                } else {
                    Ok(self.synced_lsn)
                };
                let _ = reply.send(r);
            }
        }
    }

    /// Frames one batch into the buffer, sealing the segment first if it would not fit.
    fn append(&mut self, first: Lsn, records: &[Record]) -> Result<()> {
        assert_eq!(
            first,
            self.last_lsn.next(),
            "batches reach the writer in LSN order"
        );
        let batch: usize = records
            .iter()
            .map(|r| format::frame_bytes(r.payload.len()))
            .sum();
        let end = self.file_pos + (self.buf.len() + batch + FOOTER_BYTES) as u64;
        if self.records > 0 && end > self.options.segment_bytes_max {
            self.rotate()?;
        }
        let n = records.len();
        for (i, r) in records.iter().enumerate() {
            let flags = if i + 1 < n { FLAG_BATCH_CONTINUES } else { 0 };
            format::encode_frame(
                &mut self.buf,
                self.seg,
                Lsn(first.0 + i as u64),
                r.kind,
                flags,
                &r.payload,
            );
        }
        self.records += n as u64;
        self.last_lsn = Lsn(first.0 + n as u64 - 1);
        Ok(())
    }

    fn name(&self) -> &str {
        &self.segments.last().expect("an active segment").file_name
    }

    /// Writes the buffer at the end of the active segment, pre-writing zeros ahead of it.
    fn write_buf(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let end = self.file_pos + self.buf.len() as u64;
        self.file
            .write_all_at(&self.buf, self.file_pos)
            .map_err(io_err(&*self.storage, "write", self.name()))?;
        if end + FOOTER_BYTES as u64 > self.allocated {
            let to = (self.allocated + self.options.prewrite_bytes)
                .min(self.options.segment_bytes_max)
                .max(end + FOOTER_BYTES as u64);
            write_zeros(&*self.file, end.max(self.allocated), to).map_err(io_err(
                &*self.storage,
                "write",
                self.name(),
            ))?;
            self.allocated = to;
        }
        self.hasher.update(&self.buf);
        self.file_pos = end;
        self.buf.clear();
        Ok(())
    }

    /// Makes everything written durable and publishes it.
    fn sync(&mut self) -> Result<()> {
        if self.synced_lsn == self.last_lsn && !self.segments_changed {
            return Ok(());
        }
        self.file
            .sync_data()
            .map_err(io_err(&*self.storage, "fsync", self.name()))?;
        self.synced_lsn = self.last_lsn;
        self.publish();
        Ok(())
    }

    fn publish(&mut self) {
        // Before the thread is spawned (sealing an older version's segment at open) there
        // is no view yet: the spawn builds it from this writer's state.
        let Some(shared) = self.shared.as_deref() else {
            return;
        };
        let mut v = shared.view();
        if self.segments_changed {
            v.segments = Arc::new(self.segments.clone());
            self.segments_changed = false;
        }
        // Readers read the active segment up to here; every frame before it is durable.
        v.active_bytes = self.file_pos;
        v.durable_lsn = self.synced_lsn;
        shared
            .durable_lsn
            .store(self.synced_lsn.0, std::sync::atomic::Ordering::Release);
        drop(v);
        shared.durable_changed.notify_all();
    }

    /// Seals the active segment (footer, truncate, sync) and starts the next one.
    fn rotate(&mut self) -> Result<()> {
        self.write_buf()?;
        let digest = *self.hasher.finalize().as_bytes();
        let footer = format::encode_footer(
            self.seg,
            &Footer {
                record_count: self.records,
                last_lsn: self.last_lsn,
                digest,
            },
        );
        let name = self.name().to_string();
        let e = |op| io_err(&*self.storage, op, &name);
        self.file
            .write_all_at(&footer, self.file_pos)
            .map_err(e("write footer"))?;
        let sealed_bytes = self.file_pos + FOOTER_BYTES as u64;
        self.file.set_len(sealed_bytes).map_err(e("truncate"))?;
        self.file.sync_data().map_err(e("fsync"))?;
        self.synced_lsn = self.last_lsn;
        {
            let s = self.segments.last_mut().expect("an active segment");
            s.sealed = true;
            s.last_lsn = self.last_lsn;
            s.bytes = sealed_bytes;
            s.digest = Some(digest);
        }
        let id = SegmentId(self.seg.0 + 1);
        let first = self.last_lsn.next();
        let (file, name, allocated) =
            create_segment(&*self.storage, &self.options, id, first, digest)?;
        let header = format::encode_segment_header(&SegmentHeader {
            version: format::FORMAT_VERSION,
            segment: id,
            first_lsn: first,
            prev_digest: digest,
        });
        self.hasher = blake3::Hasher::new();
        self.hasher.update(&header);
        self.file = file;
        self.seg = id;
        self.file_pos = SEGMENT_HEADER_BYTES as u64;
        self.allocated = allocated;
        self.records = 0;
        self.segments.push(SegmentInfo {
            id,
            first_lsn: first,
            last_lsn: self.last_lsn,
            file_name: name,
            sealed: false,
            bytes: SEGMENT_HEADER_BYTES as u64,
            digest: None,
        });
        self.segments_changed = true;
        self.publish();
        Ok(())
    }
}
