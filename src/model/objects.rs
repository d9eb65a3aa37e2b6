//! The objects of the store as the API hands them out, and the parts the log records.
//!
//! Fields named "derived" are computed by the projections on every read and ignored on
//! every write. Name, prefix and description are real fields (the original kept them in
//! reserved attribute keys).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::ids::{BlobId, BranchId, SnapshotId, Timestamp, VolumeId, VolumeSetId};

/// Attributes: an ordered string map.
pub type Attrs = BTreeMap<String, String>;

/// A volume set (a repository).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSet {
    pub id: VolumeSetId,
    pub name: String,
    pub prefix: String,
    pub description: String,
    pub attrs: Attrs,
    pub creator: String,
    pub creator_name: String,
    pub owner: String,
    pub owner_name: String,
    pub created: Timestamp,
    pub last_modified: Timestamp,
    pub size: u64,
    /// Derived: snapshots in the volume set.
    #[serde(default)]
    pub num_snapshots: u64,
    /// Derived: branches in the volume set.
    #[serde(default)]
    pub num_branches: u64,
    /// Derived: creation time of the newest snapshot.
    #[serde(default)]
    pub last_snapshot_time: Option<Timestamp>,
}

impl VolumeSet {
    /// A volume set with the given id and name, everything else empty, times zero.
    pub fn new(id: VolumeSetId, name: impl Into<String>) -> Self {
        VolumeSet {
            id,
            name: name.into(),
            prefix: String::new(),
            description: String::new(),
            attrs: Attrs::new(),
            creator: String::new(),
            creator_name: String::new(),
            owner: String::new(),
            owner_name: String::new(),
            created: Timestamp(0),
            last_modified: Timestamp(0),
            size: 0,
            num_snapshots: 0,
            num_branches: 0,
            last_snapshot_time: None,
        }
    }

    /// The writable metadata of this volume set.
    pub fn meta(&self) -> VolumeSetMeta {
        VolumeSetMeta {
            name: self.name.clone(),
            prefix: self.prefix.clone(),
            description: self.description.clone(),
            attrs: self.attrs.clone(),
            creator: self.creator.clone(),
            creator_name: self.creator_name.clone(),
            owner: self.owner.clone(),
            owner_name: self.owner_name.clone(),
            last_modified: self.last_modified,
        }
    }

    /// Whether two versions are the same for three-way resolution: id, name, prefix,
    /// description, creator, owner and attrs.
    pub fn same_meta(&self, other: &VolumeSet) -> bool {
        self.id == other.id
            && self.name == other.name
            && self.prefix == other.prefix
            && self.description == other.description
            && self.creator == other.creator
            && self.owner == other.owner
            && self.attrs == other.attrs
    }
}

/// The writable fields of a volume set, as an update record carries them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSetMeta {
    pub name: String,
    pub prefix: String,
    pub description: String,
    pub attrs: Attrs,
    pub creator: String,
    pub creator_name: String,
    pub owner: String,
    pub owner_name: String,
    pub last_modified: Timestamp,
}

impl VolumeSetMeta {
    /// Whether two versions are the same for three-way resolution: name, prefix,
    /// description, creator, owner and attrs (user names and times are not compared).
    pub fn same(&self, other: &VolumeSetMeta) -> bool {
        self.name == other.name
            && self.prefix == other.prefix
            && self.description == other.description
            && self.creator == other.creator
            && self.owner == other.owner
            && self.attrs == other.attrs
    }
}

/// A snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub id: SnapshotId,
    pub volume_set: VolumeSetId,
    /// `None` for a root.
    pub parent: Option<SnapshotId>,
    pub name: String,
    pub description: String,
    pub attrs: Attrs,
    pub creator: String,
    pub creator_name: String,
    pub owner: String,
    pub owner_name: String,
    pub created: Timestamp,
    pub last_modified: Timestamp,
    pub size: u64,
    /// Local to this store; nil when the store does not hold the data.
    pub blob: BlobId,
    /// Derived: 1 for a root, parent's depth + 1 otherwise.
    #[serde(default)]
    pub depth: u32,
    /// Derived: snapshots whose parent this is.
    #[serde(default)]
    pub num_children: u32,
    /// Derived: whether a branch ends here.
    #[serde(default)]
    pub is_tip: bool,
    /// Derived: the name of the branch that ends here, when it has one.
    #[serde(default)]
    pub branch_name: Option<String>,
}

impl Snapshot {
    /// A snapshot with the given ids, everything else empty, times zero.
    pub fn new(id: SnapshotId, volume_set: VolumeSetId, parent: Option<SnapshotId>) -> Self {
        Snapshot {
            id,
            volume_set,
            parent,
            name: String::new(),
            description: String::new(),
            attrs: Attrs::new(),
            creator: String::new(),
            creator_name: String::new(),
            owner: String::new(),
            owner_name: String::new(),
            created: Timestamp(0),
            last_modified: Timestamp(0),
            size: 0,
            blob: BlobId::nil(),
            depth: 0,
            num_children: 0,
            is_tip: false,
            branch_name: None,
        }
    }

    /// The writable metadata of this snapshot.
    pub fn meta(&self) -> SnapshotMeta {
        SnapshotMeta {
            name: self.name.clone(),
            description: self.description.clone(),
            attrs: self.attrs.clone(),
            creator: self.creator.clone(),
            creator_name: self.creator_name.clone(),
            owner: self.owner.clone(),
            owner_name: self.owner_name.clone(),
            last_modified: self.last_modified,
        }
    }

    /// Whether two versions are the same for three-way resolution: volume set, id, name,
    /// description, owner, creator, attrs and parent.
    pub fn same_meta(&self, other: &Snapshot) -> bool {
        self.id == other.id
            && self.volume_set == other.volume_set
            && self.name == other.name
            && self.description == other.description
            && self.owner == other.owner
            && self.creator == other.creator
            && self.attrs == other.attrs
            && self.parent == other.parent
    }
}

/// The writable fields of a snapshot, as an update record carries them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    pub name: String,
    pub description: String,
    pub attrs: Attrs,
    pub creator: String,
    pub creator_name: String,
    pub owner: String,
    pub owner_name: String,
    pub last_modified: Timestamp,
}

impl SnapshotMeta {
    /// Whether two versions of one snapshot are the same for three-way resolution: name,
    /// description, owner, creator and attrs (id, volume set and parent cannot change).
    pub fn same(&self, other: &SnapshotMeta) -> bool {
        self.name == other.name
            && self.description == other.description
            && self.owner == other.owner
            && self.creator == other.creator
            && self.attrs == other.attrs
    }
}

/// A branch: a chain from a root to its tip. The name may be empty (unnamed branch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Branch {
    pub id: BranchId,
    pub volume_set: VolumeSetId,
    pub name: String,
    pub tip: SnapshotId,
    /// Derived: the tip snapshot, with its derived fields.
    pub tip_snapshot: Option<Snapshot>,
    /// Derived: whether the tip has children (an inner snapshot that is also a tip).
    pub has_child: bool,
}

/// All snapshots under one root: the unit of data placement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bush {
    pub root: SnapshotId,
    pub volume_set: VolumeSetId,
    pub data_server: i64,
}

/// A writable working copy of a snapshot; client side only, local to one store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub id: VolumeId,
    pub volume_set: VolumeSetId,
    pub base: Option<SnapshotId>,
    pub mount_path: String,
    pub attrs: Attrs,
    pub created: Timestamp,
    pub size: u64,
    pub name: String,
}
