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
//! | [`model`] | ids, objects, queries, name rules | hold state or do I/O |
//! | [`event`] | the record schema: one variant per mutation, kinds, envelope | validate or apply |
//! | [`state`] | projections: `apply(record)`, the indexes, every query; `validate` turns a request into an event | touch files |
//! | [`sync`] | sync between stores: the three-way resolver, batches and bundle files, the receiver's planner (`sync::plan`, pure), the sender's export, the [`sync::Peer`] trait, the driver | touch a store except through `Peer` (the driver) or its public calls (export, apply) |
//! | [`store`] | `Store`: validate → append → apply; the public API | know bytes |
//! | [`checkpoint`] | checkpoint files: the projections as of an LSN, streamed out and blake3-checked (`log-format.md` §10) | read the log, or load a file that fails any check |
//! | [`ship`] | replication by shipping segments: `Shipper`, `follow`, the `ShipTarget` trait | write to the source |
//! | [`api`] | the original's interface split as traits (`Syncable`, `MetadataStore`, `Client`, `Server`) | |
//! | [`error`] | the one typed error enum | |
//!
//! ## The life of a mutation
//!
//! 1. `Store::extend_branch` (say) takes the writer mutex and validates the request
//!    against the state, which includes every mutation queued before it, producing one
//!    [`event::Event`] (or an error, and then nothing is written).
//! 2. The event, in an [`event::Envelope`] with time and actor, is encoded and handed to
//!    [`Log::submit`], which assigns the next LSN and queues it on a bounded channel
//!    (queue order = LSN order = validation order).
//! 3. The event is applied to the projections; the mutex is released; the caller waits
//!    for durability outside it, so concurrent writers share one fsync.
//! 4. The writer thread takes the queued batch and everything else queued, frames them
//!    (CRC-32 salted with the segment id), writes them with one write and calls fdatasync
//!    once for the group; it publishes the new durable LSN and the waiters wake.
//! 5. Readers see only durable state: a read that finds applied records not yet durable
//!    waits (at most one group commit) with its read lock held.
//!
//! Opening a store recovers the log (cutting a torn tail, failing on real damage) and,
//! on a second thread at the same time, reads the newest checkpoint (digest, version,
//! decode; the snapshot index is rebuilt on a third thread while the rows decode). The
//! checkpoint is used only if it is at or before the log's end and names the digest of
//! the log's record at its LSN; otherwise an older one or LSN 1 is the start. The rest is
//! replayed through [`state::State::apply`], which cannot fail: a record is only ever
//! written after it was validated against the state it is applied to.
//!
//! ## The life of a sync
//!
//! 1. `sync::sync(local, remote, vs, mode)` asks the remote for its cursor for the local
//!    store (the local LSN up to which the remote has applied the local store's records
//!    of `vs`), then asks the local store to export a [`sync::Batch`]: its records of `vs`
//!    after that cursor, local fields (blob ids, sizes) cleared, records that came from
//!    the remote itself left out.
//! 2. The remote applies the batch: under its writer mutex, `sync::plan` turns it into
//!    records by the reference rules (import unknown branches, fast-forward known ones,
//!    report divergence, three-way metadata with the remote winning a conflict); they are
//!    appended in atomic groups, each headed by a `SyncApplied` record that names the
//!    source, and the last group carries the conflicts and the new cursor. A sync cut
//!    short anywhere resumes from the cursor; the plan is idempotent.
//! 3. Then the same the other way (pull): the local store applies the remote's batch, and
//!    the remote's value wins conflicts (conflict records the remote wrote in step 2 make
//!    the local side adopt what won).
//! 4. A bundle file is the same batch on disk (`log-format.md` §8): `BundleOut` is a peer
//!    that writes what it is sent, `BundleIn` one that sends what it read.
//!
//! ## Invariants
//!
//! * LSNs are dense from 1, and a batch never spans two segments.
//! * Every segment but the last is sealed (footer with count, last LSN, blake3 digest).
//! * Segment `n`'s header holds the digest of segment `n - 1`: a hash chain over the log.
//! * Readers see only durable records and durable state.
//! * After a failed write or fsync the log and the store are poisoned until reopened.
//! * Snapshots of a volume set form a forest; every leaf made by fork or extend is a tip
//!   (`delete_snapshots` without a new tip may leave a leaf without a branch, as the
//!   reference allows);
//!   a snapshot is the tip of at most one branch; branch names are unique per volume set
//!   (empty names excepted); no snapshot is ever orphaned.

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

pub mod api;
pub mod checkpoint;
pub mod codec;
pub mod error;
pub mod event;
pub mod log;
pub mod model;
pub mod ship;
pub mod state;
pub mod store;
pub mod sync;

pub use error::{BundleProblem, Corruption, CorruptionKind, Error, Limit, Result};
pub use log::{Durability, Log, LogOptions, Lsn, Record, RecordKind, RecoveryMode, SegmentId};
pub use model::*;
pub use store::{BlobBase, SnapshotPair, Store, StoreOptions};
pub use sync::{MetaConflict, ResolveStatus};

/// The code examples of README.md, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
