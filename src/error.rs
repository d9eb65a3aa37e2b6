//! The crate's one error type.
//!
//! Every failure is a distinct, matchable variant. Corruption always names the file, the
//! byte offset and, where known, the LSN; an I/O error is never reported as corruption
//! and corruption never as an I/O error.

use std::path::PathBuf;

use crate::log::format::FormatFault;
use crate::log::{Lsn, SegmentId};
use crate::model::{BranchId, SnapshotId, StoreId, VolumeId, VolumeSetId};

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What is wrong with the bytes of a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorruptionKind {
    /// A header, frame or footer failed a format check.
    Format(FormatFault),
    /// A record carries another LSN than the one that must come next.
    LsnGap { expected: Lsn, found: Lsn },
    /// The segment header disagrees with its file name.
    NameMismatch {
        name_segment: SegmentId,
        name_first_lsn: Lsn,
    },
    /// A segment's `prev_digest` is not the digest of the segment before it.
    ChainBroken { expected: [u8; 32], found: [u8; 32] },
    /// The segment's recomputed blake3 digest is not the one its footer holds.
    DigestMismatch {
        computed: [u8; 32],
        stored: [u8; 32],
    },
    /// The footer's record count or last LSN disagrees with the records before it.
    FooterMismatch {
        footer_count: u64,
        footer_last_lsn: Lsn,
        count: u64,
        last_lsn: Lsn,
    },
    /// A segment file is missing from the sequence.
    MissingSegment { expected: SegmentId },
    /// A segment other than the last one has no footer, or bytes follow a footer.
    NotSealed,
    /// Bytes follow the footer of a sealed segment.
    TrailingBytes,
    /// The file is shorter than a segment header.
    ShortHeader,
    /// A damaged record is followed by a valid one: not a torn tail, real damage.
    DamageBeforeValidRecord {
        valid_at: u64,
        fault: Option<FormatFault>,
    },
    /// A torn tail found in `RecoveryMode::Strict`.
    TornTail { bytes: u64 },
    /// A batch flagged as continuing is cut off where no tail can be torn.
    UnterminatedBatch,
}

impl std::fmt::Display for CorruptionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn hex(d: &[u8; 32]) -> String {
            d.iter()
                .take(8)
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                + ".."
        }
        match self {
            CorruptionKind::Format(x) => write!(f, "{x}"),
            CorruptionKind::LsnGap { expected, found } => write!(f, "expected LSN {expected}, found {found}"),
            CorruptionKind::NameMismatch { name_segment, name_first_lsn } => write!(
                f,
                "header disagrees with the file name (name says segment {name_segment}, first LSN {name_first_lsn})"
            ),
            CorruptionKind::ChainBroken { expected, found } => write!(
                f,
                "hash chain broken: previous segment digests to {}, header holds {}",
                hex(expected),
                hex(found)
            ),
            CorruptionKind::DigestMismatch { computed, stored } => {
                write!(f, "segment digest mismatch: footer holds {}, bytes digest to {}", hex(stored), hex(computed))
            }
            CorruptionKind::FooterMismatch { footer_count, footer_last_lsn, count, last_lsn } => write!(
                f,
                "footer says {footer_count} records up to LSN {footer_last_lsn}, segment holds {count} up to {last_lsn}"
            ),
            CorruptionKind::MissingSegment { expected } => write!(f, "segment {expected} is missing"),
            CorruptionKind::NotSealed => write!(f, "a segment before the last one has no footer"),
            CorruptionKind::TrailingBytes => write!(f, "bytes follow the footer of a sealed segment"),
            CorruptionKind::ShortHeader => write!(f, "file is shorter than a segment header"),
            CorruptionKind::DamageBeforeValidRecord { valid_at, fault } => match fault {
                Some(x) => write!(f, "damaged record ({x}) followed by a valid record at offset {valid_at}"),
                None => write!(f, "damaged record followed by a valid record at offset {valid_at}"),
            },
            CorruptionKind::TornTail { bytes } => {
                write!(f, "torn tail of {bytes} bytes (strict recovery refuses to cut it)")
            }
            CorruptionKind::UnterminatedBatch => write!(f, "a batch is cut off inside a sealed segment"),
        }
    }
}

/// Where damage was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corruption {
    pub file: PathBuf,
    pub offset: u64,
    pub lsn: Option<Lsn>,
    pub kind: CorruptionKind,
}

impl std::fmt::Display for Corruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.file.display(), self.offset)?;
        if let Some(lsn) = self.lsn {
            write!(f, " (LSN {lsn})")?;
        }
        write!(f, ": {}", self.kind)
    }
}

/// Every error this crate returns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("I/O error: {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupt log: {0}")]
    Corruption(Box<Corruption>),
    #[error("store {} is locked by another writer{}; close it or open read-only", path.display(), pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked { path: PathBuf, pid: Option<u32> },
    #[error("the log is poisoned by an earlier failure ({reason}); reopen it to recover")]
    Poisoned { reason: String },
    #[error("record of {bytes} bytes exceeds the limit of {max} bytes")]
    RecordTooLarge { bytes: usize, max: usize },
    #[error(
        "batch of {records} records / {bytes} bytes exceeds the limit ({records_max} records / {bytes_max} bytes)"
    )]
    BatchTooLarge {
        records: usize,
        bytes: usize,
        records_max: usize,
        bytes_max: usize,
    },
    #[error("the log is open read-only")]
    ReadOnly,
    #[error("the log is closed")]
    Closed,
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("cannot decode record payload at LSN {lsn}: {message}")]
    Decode { lsn: Lsn, message: String },
    #[error("cannot encode record payload: {0}")]
    Encode(String),

    // --- The metadata store's errors, as the reference API names them. ---
    #[error("volume set {0} not found")]
    VolumeSetNotFound(VolumeSetId),
    #[error("volume set {0} already exists")]
    VolumeSetAlreadyExists(VolumeSetId),
    #[error("snapshot {0} not found")]
    SnapshotNotFound(SnapshotId),
    #[error("branch {what} not found in volume set {volume_set}")]
    BranchNotFound {
        volume_set: VolumeSetId,
        what: String,
    },
    #[error("branch {name:?} already exists in volume set {volume_set} (branch {existing})")]
    BranchAlreadyExists {
        volume_set: VolumeSetId,
        name: String,
        existing: BranchId,
    },
    #[error("branch id {0} already exists")]
    BranchIdAlreadyExists(BranchId),
    #[error("volume {0} not found")]
    VolumeNotFound(VolumeId),
    #[error("volume {0} already exists")]
    VolumeAlreadyExists(VolumeId),
    #[error("mount path {0:?} is used by another volume")]
    MountPathInUse(String),
    #[error("snapshot {0} already has its blob")]
    AlreadyHaveBlob(SnapshotId),
    #[error("snapshot {0} has no blob in this store")]
    NoBlob(SnapshotId),
    #[error("snapshot import mismatch: {0}")]
    SnapshotImportMismatch(String),
    #[error(
        "history diverged on branch {branch}: source tip {source_tip}, target tip {target_tip}"
    )]
    HistoryDiverged {
        branch: BranchId,
        source_tip: SnapshotId,
        target_tip: SnapshotId,
    },
    #[error("snapshot {0} is not the tip of a branch; fork a new branch from it instead")]
    NotATip(SnapshotId),
    #[error("snapshot {snapshot} still has children ({children}); delete them first or with it")]
    HasChildren { snapshot: SnapshotId, children: u32 },
    #[error("snapshot {snapshot} is the base of {volumes} volume(s); delete them first")]
    SnapshotInUse { snapshot: SnapshotId, volumes: u32 },
    #[error("no bush for snapshot {0}")]
    BushNotFound(SnapshotId),
    #[error("bush rooted at {0} already exists")]
    BushAlreadyExists(SnapshotId),
    /// A count or size of a call, the store or a bundle over one of the store's limits
    /// ([`Limit`] says which). What breaks a rule about one object's contents (a name,
    /// description or attribute too long, too many attributes) is
    /// [`Error::InvalidArgument`], as the reference has it for bad names; log records and
    /// batches have their own variants ([`Error::RecordTooLarge`], [`Error::BatchTooLarge`]).
    #[error("{limit}: {value} is over the limit of {max}{}", limit.hint())]
    LimitExceeded { limit: Limit, value: u64, max: u64 },

    // --- Sync and bundles. ---
    #[error("bundle {}: {problem} (at byte {offset})", file.display())]
    Bundle {
        file: PathBuf,
        offset: u64,
        problem: BundleProblem,
    },
    #[error(
        "sync gap: this store holds the records of store {peer} for volume set {volume_set} up to its LSN {have}, but the batch starts after LSN {after}; export again with --since {have}"
    )]
    SyncGap {
        peer: StoreId,
        volume_set: VolumeSetId,
        have: Lsn,
        after: Lsn,
    },
    #[error(
        "the peer has this store's records up to LSN {cursor}, but this log ends at LSN {log_end}: this store was restored from an older copy or promoted from a follower that lagged, and records written here would reuse LSNs the peer believes it has; sync from a fresh store instead"
    )]
    SyncCursorAhead { cursor: Lsn, log_end: Lsn },
    #[error("refusing to ship into {target}: segment {segment}: {reason}")]
    ShipDiverged {
        target: String,
        segment: String,
        reason: String,
    },
    #[error("invalid sync batch from store {source_store}: {reason}")]
    BadSyncBatch {
        source_store: StoreId,
        reason: String,
    },
}

/// The limit an [`Error::LimitExceeded`] is about (each names its constant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// Snapshots in one fork, import, extend, update or delete
    /// (`state::BATCH_SNAPSHOTS_MAX`).
    SnapshotsPerCall,
    /// Snapshots in one store (`state::SNAPSHOTS_MAX`).
    SnapshotsPerStore,
    /// Bytes of a bundle file (`sync::batch::BUNDLE_BYTES_MAX`).
    BundleBytes,
    /// Bytes of a bundle's header, which holds the volume set
    /// (`sync::batch::BUNDLE_HEADER_BYTES_MAX`).
    BundleHeaderBytes,
}

impl Limit {
    /// What to do about it, as the end of a message (empty when there is nothing to say).
    fn hint(&self) -> &'static str {
        match self {
            Limit::SnapshotsPerCall => "; split the call",
            Limit::BundleBytes => "; export a shorter suffix (--since)",
            Limit::BundleHeaderBytes => {
                "; a volume set with this many attribute bytes syncs in process, not by bundle"
            }
            _ => "",
        }
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Limit::SnapshotsPerCall => "snapshots in one call",
            Limit::SnapshotsPerStore => "snapshots in the store",
            Limit::BundleBytes => "bytes of a bundle",
            Limit::BundleHeaderBytes => {
                "bytes of a bundle header (the volume set with its attributes)"
            }
        })
    }
}

/// What is wrong with a bundle file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleProblem {
    /// The file does not start with the bundle magic.
    BadMagic,
    /// A bundle version this build does not read.
    UnsupportedVersion { found: u32 },
    /// The file ends before the part that starts here.
    Truncated,
    /// The file is larger than the bundle limit.
    TooLarge { bytes: u64, max: u64 },
    /// The blake3 digest in the trailer does not match the bytes before it.
    DigestMismatch,
    /// A record frame is damaged (see the fault).
    BadFrame(FormatFault),
    /// The header or a record does not decode, or breaks a rule (order, volume set, kind).
    BadContent(String),
    /// The bundle is for another volume set than the one asked for.
    WrongVolumeSet {
        expected: VolumeSetId,
        found: VolumeSetId,
    },
}

impl std::fmt::Display for BundleProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BundleProblem::BadMagic => write!(f, "not a bundle (bad magic)"),
            BundleProblem::UnsupportedVersion { found } => {
                write!(f, "unsupported bundle version {found}")
            }
            BundleProblem::Truncated => write!(f, "truncated"),
            BundleProblem::TooLarge { bytes, max } => {
                write!(f, "{bytes} bytes is over the bundle limit of {max} bytes")
            }
            BundleProblem::DigestMismatch => {
                write!(f, "digest mismatch: the bundle is damaged")
            }
            BundleProblem::BadFrame(fault) => write!(f, "damaged record: {fault}"),
            BundleProblem::BadContent(m) => write!(f, "{m}"),
            BundleProblem::WrongVolumeSet { expected, found } => {
                write!(f, "bundle is for volume set {found}, not {expected}")
            }
        }
    }
}

impl Error {
    pub(crate) fn io(op: &'static str, path: PathBuf, source: std::io::Error) -> Self {
        Error::Io { op, path, source }
    }

    pub(crate) fn corrupt(
        file: PathBuf,
        offset: u64,
        lsn: Option<Lsn>,
        kind: CorruptionKind,
    ) -> Self {
        Error::Corruption(Box::new(Corruption {
            file,
            offset,
            lsn,
            kind,
        }))
    }

    /// The corruption details, if this is a corruption error.
    pub fn corruption(&self) -> Option<&Corruption> {
        match self {
            Error::Corruption(c) => Some(c),
            _ => None,
        }
    }
}
