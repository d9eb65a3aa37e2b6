//! The volume sets in each order a listing sorts them by (id, creation time, size), with
//! positions for paging, and by name: a listing of all volume sets starts at its page in
//! O(log n), a query by name finds its volume sets in O(log n). Per volume set: about 100
//! bytes and a copy of its name.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::model::{Timestamp, VolumeSet, VolumeSetId};
use crate::state::ranked::RankedSet;

/// Indexes over all volume sets (see the module docs).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct VsIndex {
    pub by_id: RankedSet<VolumeSetId>,
    /// By creation time, then id.
    pub by_created: RankedSet<(Timestamp, VolumeSetId)>,
    /// By size, then id.
    pub by_size: RankedSet<(u64, VolumeSetId)>,
    /// By name, then id.
    pub by_name: BTreeSet<(String, VolumeSetId)>,
}

impl VsIndex {
    pub fn insert(&mut self, vs: &VolumeSet) {
        self.by_id.insert(vs.id);
        self.by_created.insert((vs.created, vs.id));
        self.by_size.insert((vs.size, vs.id));
        self.by_name.insert((vs.name.clone(), vs.id));
    }

    pub fn remove(&mut self, vs: &VolumeSet) {
        self.by_id.remove(&vs.id);
        self.by_created.remove(&(vs.created, vs.id));
        self.by_size.remove(&(vs.size, vs.id));
        self.by_name.remove(&(vs.name.clone(), vs.id));
    }

    pub fn rename(&mut self, id: VolumeSetId, old: &str, new: &str) {
        if old != new {
            self.by_name.remove(&(old.to_string(), id));
            self.by_name.insert((new.to_string(), id));
        }
    }

    pub fn resize(&mut self, id: VolumeSetId, old: u64, new: u64) {
        if old != new {
            self.by_size.remove(&(old, id));
            self.by_size.insert((new, id));
        }
    }

    /// The volume sets named `name`, by id. O(log n + answer).
    pub fn named<'a>(&'a self, name: &str) -> impl Iterator<Item = VolumeSetId> + 'a {
        let name = name.to_string();
        let from = (name.clone(), VolumeSetId(uuid::Uuid::nil()));
        self.by_name
            .range(from..)
            .take_while(move |(n, _)| *n == name)
            .map(|(_, id)| *id)
    }
}
