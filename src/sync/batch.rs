//! What one store sends another: a [`Batch`] (the records of one volume set after a
//! cursor), and its file form, the bundle (`log-format.md` §8), for offline transfer.
//!
//! A bundle is untrusted input: its size is checked before it is read, every record frame
//! carries a CRC, the whole file a blake3 digest, and decoding checks order and volume set
//! before anything is applied. This module never applies anything.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{BundleProblem, Error, Limit, Result};
use crate::event::Envelope;
use crate::log::format::{self, Slot};
use crate::log::{Lsn, RecordKind, SegmentId};
use crate::model::{StoreId, VolumeSet};

/// The records of one volume set in one store's log after a cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The store whose log the records come from.
    pub source: StoreId,
    /// The volume set as the source holds it now (local fields cleared): lets a receiver
    /// that lacks it create it even when its creation record is before the cursor.
    pub volume_set: VolumeSet,
    /// The cursor the batch starts after (exclusive).
    pub after: Lsn,
    /// The source's LSN the batch runs to (inclusive): the receiver's next cursor.
    pub through: Lsn,
    /// The records, in LSN order, within `(after, through]`, local fields cleared.
    pub records: Vec<(Lsn, Envelope)>,
    /// For records a sync brought into the source's log: the store each came from (a
    /// receiver leaves out what came from itself).
    pub origins: BTreeMap<Lsn, StoreId>,
    /// The source's own sync cursors for this volume set: the source holds the records
    /// of store `s` up to LSN `l` of `s`'s log, and so, once the batch is applied, does
    /// the receiver (a record that reached it through a third store is not sent again
    /// when it syncs with the store that wrote it).
    pub cursors: Vec<(StoreId, Lsn)>,
    /// Records of the range that the source left out because they came from the
    /// receiver: the receiver holds them, and may move its cursor past them.
    pub echoes: u64,
}

impl Batch {
    /// Checks the rules every batch keeps, whatever its origin: LSNs strictly increasing
    /// within `(after, through]`, every record about this volume set.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.after > self.through {
            return Err(format!(
                "starts after LSN {} but ends at LSN {}",
                self.after, self.through
            ));
        }
        let mut prev = self.after;
        for (lsn, env) in &self.records {
            if *lsn <= prev || *lsn > self.through {
                return Err(format!(
                    "record LSN {lsn} out of order (after {prev}, through {})",
                    self.through
                ));
            }
            prev = *lsn;
            if !is_sync_kind(env.event.kind()) {
                return Err(format!(
                    "record LSN {lsn} is a {} record, which never travels between stores",
                    crate::event::kind_name(env.event.kind()).unwrap_or("?")
                ));
            }
            if let Some(vs) = env.event.volume_set() {
                if vs != self.volume_set.id {
                    return Err(format!(
                        "record LSN {lsn} is about volume set {vs}, not {}",
                        self.volume_set.id
                    ));
                }
            }
        }
        Ok(())
    }
}

/// First eight bytes of every bundle file.
pub const BUNDLE_MAGIC: [u8; 8] = *b"MDSLBDL\0";
/// Eight bytes that open the trailer.
pub const BUNDLE_END_MAGIC: [u8; 8] = *b"MDSLBEND";
/// The bundle version this build writes and reads.
pub const BUNDLE_VERSION: u32 = 1;
/// The largest bundle this build reads or writes.
pub const BUNDLE_BYTES_MAX: u64 = 1 << 30;
/// The largest bundle header payload (it holds the volume set, attributes included).
pub const BUNDLE_HEADER_BYTES_MAX: usize = 1 << 20;
/// Magic, version, header length.
const PREAMBLE_BYTES: usize = 16;
/// Trailer magic, record count, blake3 digest.
const TRAILER_BYTES: usize = 8 + 8 + 32;
/// Record frames in a bundle are salted with this "segment id" (they belong to none).
const BUNDLE_FRAME_SALT: SegmentId = SegmentId(0);

/// The bundle header payload (bincode, as record payloads).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct BundleHeader {
    source: StoreId,
    volume_set: VolumeSet,
    after: Lsn,
    through: Lsn,
    records: u64,
    cursors: Vec<(StoreId, Lsn)>,
    echoes: u64,
}

/// Encodes a batch as bundle bytes.
pub fn encode_bundle(batch: &Batch) -> Result<Vec<u8>> {
    let header = crate::codec::encode(&BundleHeader {
        source: batch.source,
        volume_set: batch.volume_set.clone(),
        after: batch.after,
        through: batch.through,
        records: batch.records.len() as u64,
        cursors: batch.cursors.clone(),
        echoes: batch.echoes,
    })?;
    // A volume set may be stored with more attribute bytes than a header holds: refuse
    // (the store keeps it; the bundle cannot carry it).
    if header.len() > BUNDLE_HEADER_BYTES_MAX {
        return Err(Error::LimitExceeded {
            limit: Limit::BundleHeaderBytes,
            value: header.len() as u64,
            max: BUNDLE_HEADER_BYTES_MAX as u64,
        });
    }
    let mut out = Vec::with_capacity(PREAMBLE_BYTES + header.len() + 256 * batch.records.len());
    out.extend_from_slice(&BUNDLE_MAGIC);
    out.extend_from_slice(&BUNDLE_VERSION.to_le_bytes());
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    out.resize(format::align_up(out.len()), 0);
    for (lsn, env) in &batch.records {
        // The origin, then the envelope: 0, or 1 and the 16 bytes of a store id.
        let mut payload = match batch.origins.get(lsn) {
            None => vec![0u8],
            Some(o) => {
                let mut v = vec![1u8];
                v.extend_from_slice(o.0.as_bytes());
                v
            }
        };
        crate::codec::encode_into(env, &mut payload)?;
        if payload.len() > format::RECORD_PAYLOAD_BYTES_MAX as usize {
            return Err(Error::RecordTooLarge {
                bytes: payload.len(),
                max: format::RECORD_PAYLOAD_BYTES_MAX as usize,
            });
        }
        format::encode_frame(
            &mut out,
            BUNDLE_FRAME_SALT,
            *lsn,
            env.event.kind(),
            0,
            &payload,
        );
    }
    out.extend_from_slice(&BUNDLE_END_MAGIC);
    out.extend_from_slice(&(batch.records.len() as u64).to_le_bytes());
    let digest = blake3::hash(&out);
    out.extend_from_slice(digest.as_bytes());
    if out.len() as u64 > BUNDLE_BYTES_MAX {
        // Export a shorter suffix (`--since`).
        return Err(Error::LimitExceeded {
            limit: Limit::BundleBytes,
            value: out.len() as u64,
            max: BUNDLE_BYTES_MAX,
        });
    }
    Ok(out)
}

/// Decodes bundle bytes read from `file` (named in errors).
pub fn decode_bundle(file: &Path, b: &[u8]) -> Result<Batch> {
    let bad = |offset: usize, problem: BundleProblem| Error::Bundle {
        file: file.to_path_buf(),
        offset: offset as u64,
        problem,
    };
    if b.len() as u64 > BUNDLE_BYTES_MAX {
        return Err(bad(
            0,
            BundleProblem::TooLarge {
                bytes: b.len() as u64,
                max: BUNDLE_BYTES_MAX,
            },
        ));
    }
    if b.len() < 8 || b[0..8] != BUNDLE_MAGIC {
        return Err(bad(0, BundleProblem::BadMagic));
    }
    if b.len() < PREAMBLE_BYTES + TRAILER_BYTES {
        return Err(bad(b.len(), BundleProblem::Truncated));
    }
    let version = u32::from_le_bytes(b[8..12].try_into().expect("4 bytes"));
    if version != BUNDLE_VERSION {
        return Err(bad(8, BundleProblem::UnsupportedVersion { found: version }));
    }
    // The digest covers everything: check it first, so damage anywhere is reported as
    // damage and not as whatever the damaged bytes happen to decode to.
    let body = b.len() - 32;
    if blake3::hash(&b[..body]).as_bytes() != &b[body..] {
        let trailer_ok = b[body - 16..body - 8] == BUNDLE_END_MAGIC;
        let problem = if trailer_ok {
            BundleProblem::DigestMismatch
        } else {
            BundleProblem::Truncated
        };
        return Err(bad(body, problem));
    }
    let header_len = u32::from_le_bytes(b[12..16].try_into().expect("4 bytes")) as usize;
    let records_start = format::align_up(PREAMBLE_BYTES + header_len);
    let trailer = body - 16;
    if header_len > BUNDLE_HEADER_BYTES_MAX || records_start > trailer {
        return Err(bad(12, BundleProblem::Truncated));
    }
    let header: BundleHeader =
        crate::codec::decode(Lsn::ZERO, &b[PREAMBLE_BYTES..PREAMBLE_BYTES + header_len])
            .map_err(|e| bad(PREAMBLE_BYTES, BundleProblem::BadContent(e.to_string())))?;
    let count = u64::from_le_bytes(b[trailer + 8..trailer + 16].try_into().expect("8 bytes"));
    if b[trailer..trailer + 8] != BUNDLE_END_MAGIC || count != header.records {
        return Err(bad(trailer, BundleProblem::Truncated));
    }
    let mut records = Vec::with_capacity(count.min(1 << 20) as usize);
    let mut origins = BTreeMap::new();
    let mut pos = records_start;
    while pos < trailer {
        match format::decode_slot(&b[pos..trailer], BUNDLE_FRAME_SALT) {
            Slot::Frame(f) => {
                let content = |m: String| bad(pos, BundleProblem::BadContent(m));
                let body = match f.payload.first() {
                    Some(0) => &f.payload[1..],
                    Some(1) if f.payload.len() >= 17 => {
                        let id = uuid::Uuid::from_slice(&f.payload[1..17]).expect("16 bytes");
                        origins.insert(f.lsn, StoreId(id));
                        &f.payload[17..]
                    }
                    _ => return Err(content("a record without a valid origin".into())),
                };
                let env =
                    Envelope::decode(f.lsn, f.kind, body).map_err(|e| content(e.to_string()))?;
                records.push((f.lsn, env));
                pos += f.frame_bytes;
            }
            Slot::Bad(fault) => return Err(bad(pos, BundleProblem::BadFrame(fault))),
            _ => return Err(bad(pos, BundleProblem::Truncated)),
        }
    }
    if records.len() as u64 != count {
        return Err(bad(trailer, BundleProblem::Truncated));
    }
    let batch = Batch {
        source: header.source,
        volume_set: header.volume_set,
        after: header.after,
        through: header.through,
        records,
        origins,
        cursors: header.cursors,
        echoes: header.echoes,
    };
    batch
        .check()
        .map_err(|m| bad(records_start, BundleProblem::BadContent(m)))?;
    Ok(batch)
}

/// Writes a batch to a bundle file: a temporary name, fsync, rename, directory fsync, so a
/// crash leaves either no bundle or a whole one.
pub fn write_bundle(path: &Path, batch: &Batch) -> Result<u64> {
    let bytes = encode_bundle(batch)?;
    let tmp = tmp_name(path);
    let io = |op, p: PathBuf| move |e| Error::io(op, p, e);
    {
        let mut f = std::fs::File::create(&tmp).map_err(io("create", tmp.clone()))?;
        f.write_all(&bytes).map_err(io("write", tmp.clone()))?;
        f.sync_all().map_err(io("fsync", tmp.clone()))?;
    }
    std::fs::rename(&tmp, path).map_err(io("rename", path.to_path_buf()))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(io("fsync", dir.clone()))?;
    Ok(bytes.len() as u64)
}

/// Reads and checks a bundle file (the size is checked before anything is read).
pub fn read_bundle(path: &Path) -> Result<Batch> {
    let io = |op| move |e| Error::io(op, path.to_path_buf(), e);
    let len = std::fs::metadata(path).map_err(io("stat"))?.len();
    if len > BUNDLE_BYTES_MAX {
        return Err(Error::Bundle {
            file: path.to_path_buf(),
            offset: 0,
            problem: BundleProblem::TooLarge {
                bytes: len,
                max: BUNDLE_BYTES_MAX,
            },
        });
    }
    let bytes = std::fs::read(path).map_err(io("read"))?;
    decode_bundle(path, &bytes)
}

fn tmp_name(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// The record kinds a batch may carry.
pub(crate) fn is_sync_kind(kind: RecordKind) -> bool {
    // Volume set create/update, structure (fork, import, extend, rename, move), snapshot
    // updates and conflicts. Sizes, blobs, deletions, bushes, volumes, identities and
    // cursors are local to a store.
    matches!(kind.0, 1 | 2 | 5 | 6 | 7 | 8 | 9 | 18 | 20)
}
