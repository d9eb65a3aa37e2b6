//! Checkpoints: the projections as of an LSN, in a file beside the log, so that opening a
//! store replays only the log after it (`log-format.md` §10).
//!
//! A checkpoint is a cache: the log stays the truth (history, time travel, shipping). A
//! checkpoint that is damaged, of another version, or ahead of the log is ignored with a
//! warning and an older one (or a full replay) is used; bad state is never loaded. A
//! checkpoint is written under a temporary name, fsynced, renamed, and the directory
//! fsynced. This module reads and writes checkpoint files; it never reads the log.

use crate::error::{Error, Result};
use crate::log::fs::Storage;
use crate::log::Lsn;
use crate::state::State;

/// First eight bytes of a checkpoint file.
pub const CHECKPOINT_MAGIC: [u8; 8] = *b"MDSLCKPT";
/// The checkpoint version this build writes and reads (the layout of the state it holds).
pub const CHECKPOINT_VERSION: u32 = 1;
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
/// [`CHECKPOINTS_KEPT`]. Returns its LSN and size in bytes.
///
/// `last_record` is the blake3 of the payload of the record at the state's LSN (zeros at
/// LSN 0): a checkpoint is only used with the very log it was made from.
pub fn write(storage: &dyn Storage, state: &State, last_record: [u8; 32]) -> Result<(Lsn, u64)> {
    let lsn = state.applied_lsn();
    let payload = crate::codec::encode_unbounded(state)?;
    let mut bytes = Vec::with_capacity(HEADER_BYTES + payload.len() + DIGEST_BYTES);
    bytes.extend_from_slice(&CHECKPOINT_MAGIC);
    bytes.extend_from_slice(&CHECKPOINT_VERSION.to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend_from_slice(&lsn.0.to_le_bytes());
    bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&last_record);
    bytes.extend_from_slice(&payload);
    let digest = blake3::hash(&bytes);
    bytes.extend_from_slice(digest.as_bytes());
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
    {
        let f = storage.create_new(&tmp).map_err(io("create", &tmp))?;
        f.write_all_at(&bytes, 0).map_err(io("write", &tmp))?;
        f.sync_data().map_err(io("fsync", &tmp))?;
    }
    storage.rename(&tmp, &name).map_err(io("rename", &name))?;
    storage.sync_dir().map_err(io("sync directory", "."))?;
    // Best effort from here: the new checkpoint is in place whatever happens to the old
    // ones and to temporary files a crash left (the next checkpoint tries again).
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
    Ok((lsn, bytes.len() as u64))
}

/// Reads and checks one checkpoint file.
fn read_one(
    storage: &dyn Storage,
    name: &str,
    lsn: Lsn,
    record_digest: &dyn Fn(Lsn) -> Option<[u8; 32]>,
) -> std::result::Result<State, String> {
    let b = storage
        .read_all(name)
        .map_err(|e| format!("cannot read: {e}"))?;
    if b.len() < HEADER_BYTES + DIGEST_BYTES || b[0..8] != CHECKPOINT_MAGIC {
        return Err("not a checkpoint (bad magic or too short)".into());
    }
    let body = b.len() - DIGEST_BYTES;
    if blake3::hash(&b[..body]).as_bytes() != &b[body..] {
        return Err("digest mismatch: the file is damaged".into());
    }
    let version = u32::from_le_bytes(b[8..12].try_into().expect("4 bytes"));
    if version != CHECKPOINT_VERSION {
        return Err(format!(
            "checkpoint version {version}, this build reads {CHECKPOINT_VERSION}"
        ));
    }
    let at = Lsn(u64::from_le_bytes(b[16..24].try_into().expect("8 bytes")));
    let len = u64::from_le_bytes(b[24..32].try_into().expect("8 bytes"));
    if at != lsn || len != (body - HEADER_BYTES) as u64 {
        return Err("header does not match the file name or size".into());
    }
    if record_digest(lsn).as_ref().map(|d| &d[..]) != Some(&b[32..64]) {
        return Err(format!(
            "the log's record at LSN {lsn} is not the one the checkpoint was made after (the log was repaired or replaced)"
        ));
    }
    let state: State = crate::codec::decode_unbounded(&b[HEADER_BYTES..body])?;
    if state.applied_lsn() != lsn {
        return Err("state is not as of the named LSN".into());
    }
    Ok(state)
}

/// The newest valid checkpoint at or before `log_end`, with a warning for every one
/// skipped (damaged, of another version, or past the end of the log).
///
/// `record_digest(lsn)` gives the blake3 of the payload of the log's record at `lsn`
/// (zeros for LSN 0; `None` if the log has none).
pub fn load_newest(
    storage: &dyn Storage,
    log_end: Lsn,
    record_digest: &dyn Fn(Lsn) -> Option<[u8; 32]>,
) -> Result<(Option<State>, Vec<String>)> {
    let mut warnings = Vec::new();
    for (lsn, name) in list(storage)? {
        if lsn > log_end {
            warnings.push(format!(
                "{}: ignored: it is as of LSN {lsn}, past the end of the log (LSN {log_end})",
                storage.path_of(&name).display()
            ));
            continue;
        }
        match read_one(storage, &name, lsn, record_digest) {
            Ok(state) => return Ok((Some(state), warnings)),
            Err(why) => warnings.push(format!(
                "{}: ignored: {why}",
                storage.path_of(&name).display()
            )),
        }
    }
    Ok((None, warnings))
}
