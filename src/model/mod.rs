//! The data model: ids, objects, queries and name rules. Pure values: no state, no I/O.

pub mod ids;
pub mod objects;
pub mod query;

pub use ids::{BlobId, BranchId, SnapshotId, StoreId, Timestamp, VolumeId, VolumeSetId};
pub use objects::{Attrs, Branch, Bush, Snapshot, SnapshotMeta, Volume, VolumeSet, VolumeSetMeta};
pub use query::{
    validate_branch_name, validate_volume_set_name, BranchQuery, Order, Page, SnapshotQuery,
    SortBy, VolumeSetQuery,
};
