//! Checkpoints: the projections as of an LSN, in a file beside the log, so that opening a
//! store replays only the log after it (`log-format.md` §10).
//!
//! A checkpoint is a cache: the log stays the truth (history, time travel, shipping). A
//! checkpoint that is damaged, of another version, or ahead of the log is ignored with a
//! warning and an older one (or a full replay) is used; bad state is never loaded. A
//! checkpoint is written under a temporary name, fsynced, renamed, and the directory
//! fsynced. This module reads and writes checkpoint files; it never reads the log.

use crate::error::{Error, Result};
use crate::log::fs::{Storage, StorageFile};
use crate::log::Lsn;
use crate::state::State;
use std::sync::atomic::{AtomicBool, Ordering};

/// First eight bytes of a checkpoint file.
pub const CHECKPOINT_MAGIC: [u8; 8] = *b"MDSLCKPT";
/// The checkpoint version this build writes and reads (the layout of the state it holds).
/// 2: the snapshot index is a list of pairs, rebuilt in bucket order on load (version 1
/// held it as a map). A checkpoint is a cache: one of another version is skipped.
pub const CHECKPOINT_VERSION: u32 = 2;
/// Magic, version, reserved, LSN, payload length, digest of the record at the LSN.
const HEADER_BYTES: usize = 8 + 4 + 4 + 8 + 8 + 32;
const DIGEST_BYTES: usize = 32;
/// Checkpoints kept: the newest and one older (in case the newest is damaged).
pub const CHECKPOINTS_KEPT: usize = 2;

/// The file name of the checkpoint as of `lsn`.
pub fn file_name(lsn: Lsn) -> String {
    format!("checkpoint-{:016x}.ckpt", lsn.0)
}

fn parse_name(name: &str) -> Option<Lsn> {
    let hex = name.strip_prefix("checkpoint-")?.strip_suffix(".ckpt")?;
    (hex.len() == 16)
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
        .map(Lsn)
}

/// The checkpoints in a directory, newest first.
pub fn list(storage: &dyn Storage) -> Result<Vec<(Lsn, String)>> {
    let names = storage
        .list()
        .map_err(|e| Error::io("list", storage.location().to_path_buf(), e))?;
    let mut v: Vec<(Lsn, String)> = names
        .into_iter()
        .filter_map(|n| parse_name(&n).map(|l| (l, n)))
        .collect();
    v.sort_by(|a, b| b.cmp(a));
    Ok(v)
}

/// Writes a checkpoint of `state` (durably, atomically) and removes all but the newest
/// [`CHECKPOINTS_KEPT`]. Returns its LSN and size in bytes. [`begin`] then
/// [`Pending::finish`], in one call.
pub fn write(storage: &dyn Storage, state: &State, last_record: [u8; 32]) -> Result<(Lsn, u64)> {
    begin(storage, state, last_record)?.finish(storage)
}

/// A checkpoint written to its temporary file but not yet durable nor in place.
pub struct Pending {
    file: Box<dyn StorageFile>,
    tmp: String,
    name: String,
    lsn: Lsn,
    bytes: u64,
}

/// Bytes the payload is written in (and hashed by).
const WRITE_CHUNK_BYTES: usize = 4 << 20;

/// Streams the payload into a file as it is encoded, hashing it on the way: the state is
/// never held twice in memory.
struct ChunkWriter<'a> {
    file: &'a dyn StorageFile,
    offset: u64,
    buf: Vec<u8>,
    hasher: blake3::Hasher,
}

impl ChunkWriter<'_> {
    fn drain(&mut self) -> std::io::Result<()> {
        self.hasher.update(&self.buf);
        self.file.write_all_at(&self.buf, self.offset)?;
        self.offset += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
}

impl std::io::Write for ChunkWriter<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + b.len() > WRITE_CHUNK_BYTES {
            self.drain()?;
        }
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes a checkpoint of `state` to a temporary file (not fsynced, not in place): the
/// part that needs the state. `last_record` is the blake3 of the payload of the record at
/// the state's LSN (zeros at LSN 0): a checkpoint is only used with the very log it was
/// made from.
pub fn begin(storage: &dyn Storage, state: &State, last_record: [u8; 32]) -> Result<Pending> {
    let lsn = state.applied_lsn();
    let name = file_name(lsn);
    let tmp = format!("{name}.tmp");
    let io = |op, n: &str| {
        let p = storage.path_of(n);
        move |e| Error::io(op, p, e)
    };
    match storage.remove(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("remove", &tmp)(e)),
    }
    let file = storage.create_new(&tmp).map_err(io("create", &tmp))?;
    let mut w = ChunkWriter {
        file: &*file,
        offset: HEADER_BYTES as u64,
        buf: Vec::with_capacity(WRITE_CHUNK_BYTES),
        hasher: blake3::Hasher::new(),
    };
    let encoded = crate::codec::encode_unbounded_into(state, &mut w);
    // An I/O error inside the encoder surfaces as an encode error; say which file.
    let payload_bytes = encoded.map_err(|e| {
        Error::io(
            "write",
            storage.path_of(&tmp),
            std::io::Error::other(e.to_string()),
        )
    })?;
    w.drain().map_err(io("write", &tmp))?;
    assert_eq!(
        w.offset,
        HEADER_BYTES as u64 + payload_bytes,
        "the payload went out whole"
    );
    let payload_digest = w.hasher.finalize();
    let mut header = Vec::with_capacity(HEADER_BYTES);
    header.extend_from_slice(&CHECKPOINT_MAGIC);
    header.extend_from_slice(&CHECKPOINT_VERSION.to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes());
    header.extend_from_slice(&lsn.0.to_le_bytes());
    header.extend_from_slice(&payload_bytes.to_le_bytes());
    header.extend_from_slice(&last_record);
    let digest = file_digest(&header, payload_digest.as_bytes());
    file.write_all_at(&header, 0).map_err(io("write", &tmp))?;
    file.write_all_at(&digest, w.offset)
        .map_err(io("write", &tmp))?;
    let bytes = w.offset + DIGEST_BYTES as u64;
    Ok(Pending {
        file,
        tmp,
        name,
        lsn,
        bytes,
    })
}

/// The file's digest (its last 32 bytes): blake3 of the 64-byte header followed by the
/// blake3 of the payload (so the payload can be hashed as it is written).
fn file_digest(header: &[u8], payload_digest: &[u8; 32]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(header);
    h.update(payload_digest);
    *h.finalize().as_bytes()
}

impl Pending {
    /// Makes the checkpoint durable and puts it in place (fsync, rename, directory fsync),
    /// then removes all but the newest [`CHECKPOINTS_KEPT`]. Needs no state: writers can
    /// go on meanwhile. Returns its LSN and size in bytes.
    pub fn finish(self, storage: &dyn Storage) -> Result<(Lsn, u64)> {
        let io = |op, n: &str| {
            let p = storage.path_of(n);
            move |e| Error::io(op, p, e)
        };
        self.file.sync_data().map_err(io("fsync", &self.tmp))?;
        drop(self.file);
        storage
            .rename(&self.tmp, &self.name)
            .map_err(io("rename", &self.name))?;
        storage.sync_dir().map_err(io("sync directory", "."))?;
        // Best effort from here: the new checkpoint is in place whatever happens to the
        // old ones and to temporary files a crash left (the next checkpoint tries again).
        for (_, old) in list(storage)?.into_iter().skip(CHECKPOINTS_KEPT) {
            let _ = storage.remove(&old);
        }
        if let Ok(names) = storage.list() {
            for n in names
                .iter()
                .filter(|n| n.starts_with("checkpoint-") && n.ends_with(".ckpt.tmp"))
            {
                let _ = storage.remove(n);
            }
        }
        Ok((self.lsn, self.bytes))
    }
}

/// A checkpoint file read and checked on its own (magic, digest, version, header, decode)
/// but not yet against the log: the LSN it is as of and the digest of the log's record
/// there that it names.
type Unbound = std::result::Result<(State, [u8; 32]), String>;

/// Reads and checks one checkpoint file, except for its binding to the log.
fn read_unbound(storage: &dyn Storage, name: &str, lsn: Lsn, cancel: &AtomicBool) -> Unbound {
    let b = storage
        .read_all(name)
        .map_err(|e| format!("cannot read: {e}"))?;
    if b.len() < HEADER_BYTES + DIGEST_BYTES || b[0..8] != CHECKPOINT_MAGIC {
        return Err("not a checkpoint (bad magic or too short)".into());
    }
    // The version first: another version's digest may be computed another way (version 1
    // hashed the whole file), and "damaged" would be the wrong thing to say.
    let version = u32::from_le_bytes(b[8..12].try_into().expect("4 bytes"));
    if version != CHECKPOINT_VERSION {
        return Err(format!(
            "checkpoint version {version}, this build reads {CHECKPOINT_VERSION}"
        ));
    }
    let body = b.len() - DIGEST_BYTES;
    let payload_digest = blake3::hash(&b[HEADER_BYTES..body]);
    if file_digest(&b[..HEADER_BYTES], payload_digest.as_bytes()) != b[body..] {
        return Err("digest mismatch: the file is damaged".into());
    }
    let at = Lsn(u64::from_le_bytes(b[16..24].try_into().expect("8 bytes")));
    let len = u64::from_le_bytes(b[24..32].try_into().expect("8 bytes"));
    if at != lsn || len != (body - HEADER_BYTES) as u64 {
        return Err("header does not match the file name or size".into());
    }
    if cancel.load(Ordering::Acquire) {
        return Err("not read: the open was abandoned".into());
    }
    let state: State = crate::codec::decode_unbounded(&b[HEADER_BYTES..body])?;
    if state.applied_lsn() != lsn {
        return Err("state is not as of the named LSN".into());
    }
    let last_record: [u8; 32] = b[32..64].try_into().expect("32 bytes");
    Ok((state, last_record))
}

/// The newest checkpoint file of a directory, read and checked on its own, so that an
/// open can load it while (on another thread) it recovers the log; [`load_newest`] then
/// checks it against the log. `cancel` stops it before the decode (the open failed).
pub struct Prefetched {
    name: String,
    outcome: Unbound,
}

/// Reads the newest checkpoint of `storage` (see [`Prefetched`]); `None` if there is none
/// or the directory cannot be listed (the open then finds out itself).
pub fn prefetch(storage: &dyn Storage, cancel: &AtomicBool) -> Option<Prefetched> {
    let (lsn, name) = list(storage).ok()?.into_iter().next()?;
    let outcome = read_unbound(storage, &name, lsn, cancel);
    Some(Prefetched { name, outcome })
}

/// The newest valid checkpoint at or before `log_end`, with a warning for every one
/// skipped (damaged, of another version, past the end of the log, or made from another
/// log). `prefetched`, if given, stands for the file of its name (read before the log was
/// opened).
///
/// `record_digest(lsn)` gives the blake3 of the payload of the log's record at `lsn`
/// (zeros for LSN 0; `None` if the log has none; an error if it could not be read, and
/// then the checkpoint is skipped with that error as the warning).
pub fn load_newest(
    storage: &dyn Storage,
    log_end: Lsn,
    record_digest: &dyn Fn(Lsn) -> Result<Option<[u8; 32]>>,
    mut prefetched: Option<Prefetched>,
) -> Result<(Option<State>, Vec<String>)> {
    let mut warnings = Vec::new();
    let never = AtomicBool::new(false);
    for (lsn, name) in list(storage)? {
        let shown = storage.path_of(&name).display().to_string();
        if lsn > log_end {
            warnings.push(format!(
                "{shown}: ignored: it is as of LSN {lsn}, past the end of the log (LSN {log_end})"
            ));
            continue;
        }
        let outcome = match prefetched.take() {
            Some(p) if p.name == name => p.outcome,
            _ => read_unbound(storage, &name, lsn, &never),
        };
        let bound = outcome.and_then(|(state, last_record)| match record_digest(lsn) {
            Err(e) => Err(format!("cannot read the log's record at LSN {lsn}: {e}")),
            Ok(d) if d == Some(last_record) => Ok(state),
            Ok(_) => Err(format!(
                    "the log's record at LSN {lsn} is not the one the checkpoint was made after (the log was repaired or replaced)"
                )),
        });
        match bound {
            Ok(state) => return Ok((Some(state), warnings)),
            Err(why) => warnings.push(format!("{shown}: ignored: {why}")),
        }
    }
    Ok((None, warnings))
}
