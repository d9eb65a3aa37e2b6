//! Sync between stores: each side sends the records of a volume set the other has not
//! seen (a [`Batch`], after a durable per-peer cursor), and the receiver replays them
//! through the reference rules and the three-way resolver (`plan`).
//!
//! - [`mod@resolve`]: the three-way table. Pure.
//! - [`batch`]: the batch and its file form, the bundle. Never applies anything.
//! - `export`: builds a batch from a store's log (records after a cursor, local fields
//!   cleared, records that came from the destination left out).
//! - `plan`: turns a batch into the records the receiver writes. Pure.
//! - [`peer`]: the [`Peer`] trait (what sync needs of the other side) with two
//!   implementations: a [`crate::Store`] in this process and a bundle file.
//! - [`driver`]: [`sync`] itself: push, then pull, and the report.
//!
//! Cursors live in the receiver's log ([`crate::event::Event::SyncApplied`]), written in
//! the same atomic batch as what they cover, so a sync cut short anywhere resumes without
//! losing or doubling anything.

pub mod batch;
pub mod driver;
pub(crate) mod export;
pub mod peer;
pub(crate) mod plan;
pub mod report;
pub mod resolve;

pub use batch::{read_bundle, write_bundle, Batch};
pub use driver::{do_sync, sync, sync_with, SyncOptions};
pub use peer::{BundleIn, BundleOut, Peer};
pub use report::{ApplyReport, Divergence, MissingAncestor, SyncMode, SyncReport, Winner};
pub use resolve::{resolve, MetaConflict, ResolveStatus};
