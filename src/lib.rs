//! # mdslog
//!
//! An embedded, event-sourced metadata store for versioned data volumes ("git for data").
//! Every mutation is one appended record in a checksummed segment log; in-memory
//! projections answer queries; stores sync by exchanging log suffixes and replicate by
//! shipping segments.
//!
//! ## Architecture map
//!
//! | module | owns | never does |
//! |---|---|---|
//! | [`log::format`] | the bytes of header, frame and footer (see `log-format.md`) | I/O |
//! | [`log::fs`] | the storage trait: real directory, simulated crashes and faults | interpret bytes |
//! | [`log::segment`] | checking one segment end to end | touch files |
//! | `log::recovery` | opening a directory: check, cut a torn tail, report | skip damage silently |
//! | `log::writer` | the writer thread: framing, rotation, pre-writing, group fsync | retry a failed fsync |
//! | `log::reader` | iterating records from any LSN | read past the durable end |
//! | [`codec`] | bincode 2.0.x with one pinned configuration | anything else |
//! | [`error`] | the one typed error enum | |
//!
//! ## The life of an append
//!
//! 1. [`Log::submit`] checks limits, then under the submit lock assigns the next LSNs and
//!    queues the batch on a bounded channel (queue order = LSN order).
//! 2. The writer thread takes the first queued batch and everything else already queued,
//!    frames them (CRC-32 salted with the segment id), writes them with one write, and,
//!    if any asked for durability, calls fdatasync once for the whole group.
//! 3. It publishes the new durable LSN; waiters wake; readers now see the records.
//!
//! ## Invariants
//!
//! * LSNs are dense from 1, and a batch never spans two segments.
//! * Every segment but the last is sealed (footer with count, last LSN, blake3 digest).
//! * Segment `n`'s header holds the digest of segment `n - 1`: a hash chain over the log.
//! * Readers see only durable records.
//! * After a failed write or fsync the log is poisoned until reopened.
//!
//! ## Example
//!
//! ```
//! use mdslog::log::{Log, LogOptions, Lsn, RecordKind};
//! let dir = tempfile::tempdir().unwrap();
//! let log = Log::open(dir.path(), LogOptions::default()).unwrap();
//! let lsn = log.append(RecordKind(1), b"hello").unwrap();
//! assert_eq!(lsn, Lsn(1));
//! drop(log);
//! let log = Log::open(dir.path(), LogOptions::default()).unwrap();
//! let recs: Vec<_> = log.iter_from(Lsn(1)).collect::<Result<_, _>>().unwrap();
//! assert_eq!(recs[0].payload, b"hello");
//! ```

pub mod codec;
pub mod error;
pub mod event;
pub mod log;
pub mod model;
pub mod state;
pub mod store;
pub mod sync;

pub use error::{Corruption, CorruptionKind, Error, Result};
pub use log::{Durability, Log, LogOptions, Lsn, Record, RecordKind, RecoveryMode, SegmentId};
pub use model::*;
pub use store::{BlobBase, SnapshotPair, Store, StoreOptions};
pub use sync::{MetaConflict, ResolveStatus};
