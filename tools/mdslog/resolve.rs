//! Names and short id prefixes wherever an id is asked for, like the original tool.
//!
//! A query is, in this order of precedence: a whole id; `VOLUME_SET:BRANCH` (branch names
//! never contain `:`); a volume set's name or `prefix/name`; a prefix of an id (hyphens
//! optional, any case). More than one match is an error that lists the candidates.
//!
//! Objects are looked up in a [`Catalog`]: the state now or at a point in time, or the
//! [`crate::records::LogIndex`] of everything the log ever held (for `history`).

use mdslog::state::State;
use mdslog::{BranchId, BranchQuery, SnapshotId, VolumeSetId, VolumeSetQuery};

use crate::output::{short, Fail};

/// What an id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    VolumeSet(VolumeSetId),
    Snapshot(SnapshotId),
    Branch(VolumeSetId, BranchId),
}

/// Which kinds of object a query may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kinds {
    pub volume_sets: bool,
    pub snapshots: bool,
    pub branches: bool,
}

impl Kinds {
    pub const ANY: Kinds = Kinds {
        volume_sets: true,
        snapshots: true,
        branches: true,
    };
    pub const VOLUME_SET: Kinds = Kinds {
        volume_sets: true,
        snapshots: false,
        branches: false,
    };

    fn describe(&self) -> String {
        let mut v = Vec::new();
        if self.volume_sets {
            v.push("volume set");
        }
        if self.snapshots {
            v.push("snapshot");
        }
        if self.branches {
            v.push("branch");
        }
        match v.len() {
            0 => "object".into(),
            1 => v[0].into(),
            _ => format!("{} or {}", v[..v.len() - 1].join(", "), v[v.len() - 1]),
        }
    }
}

/// A volume set as the resolver sees it.
pub struct VsEntry {
    pub id: VolumeSetId,
    pub name: String,
    pub prefix: String,
}

/// A branch as the resolver sees it.
pub struct BranchEntry {
    pub id: BranchId,
    pub volume_set: VolumeSetId,
    pub name: String,
}

/// Where objects are looked up.
pub trait Catalog {
    fn volume_sets(&self) -> Vec<VsEntry>;
    /// Every snapshot id with its volume set.
    fn snapshots(&self) -> Vec<(SnapshotId, VolumeSetId)>;
    fn branches(&self) -> Vec<BranchEntry>;
    /// A snapshot's name, for messages.
    fn snapshot_name(&self, id: SnapshotId) -> Option<String>;
}

impl Catalog for State {
    fn volume_sets(&self) -> Vec<VsEntry> {
        self.get_volume_sets(&VolumeSetQuery::default())
            .unwrap_or_default()
            .into_iter()
            .map(|v| VsEntry {
                id: v.id,
                name: v.name,
                prefix: v.prefix,
            })
            .collect()
    }
    fn snapshots(&self) -> Vec<(SnapshotId, VolumeSetId)> {
        let mut out = Vec::new();
        for vs in Catalog::volume_sets(self) {
            out.extend(
                self.get_snapshot_ids(vs.id)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|s| (s, vs.id)),
            );
        }
        out
    }
    fn branches(&self) -> Vec<BranchEntry> {
        let mut out = Vec::new();
        for vs in Catalog::volume_sets(self) {
            for b in self
                .get_branches(&BranchQuery::all(vs.id))
                .unwrap_or_default()
            {
                out.push(BranchEntry {
                    id: b.id,
                    volume_set: vs.id,
                    name: b.name,
                });
            }
        }
        out
    }
    fn snapshot_name(&self, id: SnapshotId) -> Option<String> {
        self.get_snapshot(id).ok().map(|s| s.name)
    }
}

/// Normalizes an id prefix: lower case, no hyphens; `None` if it is not hex.
fn hex_prefix(q: &str) -> Option<String> {
    let p: String = q
        .chars()
        .filter(|c| *c != '-')
        .collect::<String>()
        .to_ascii_lowercase();
    (!p.is_empty() && p.len() <= 32 && p.chars().all(|c| c.is_ascii_hexdigit())).then_some(p)
}

fn simple(u: &uuid::Uuid) -> String {
    u.simple().to_string()
}

struct Found {
    object: Object,
    label: String,
}

fn vs_label(vs: &VsEntry) -> String {
    if vs.prefix.is_empty() {
        format!("volume set {:?} ({})", vs.name, short(vs.id))
    } else {
        format!(
            "volume set \"{}/{}\" ({})",
            vs.prefix,
            vs.name,
            short(vs.id)
        )
    }
}

/// Why a query named no one object: nothing matched, or more than one thing did.
struct Unresolved {
    ambiguous: bool,
    fail: Fail,
}

impl From<Unresolved> for Fail {
    fn from(u: Unresolved) -> Fail {
        u.fail
    }
}

fn one(
    query: &str,
    kinds: Kinds,
    mut found: Vec<Found>,
    what_to_do: &str,
) -> Result<Object, Unresolved> {
    found.dedup_by(|a, b| a.object == b.object);
    match found.len() {
        1 => Ok(found.pop().expect("one").object),
        0 => Err(Unresolved {
            ambiguous: false,
            fail: Fail::usage(format!(
                "no {} matches {query:?}; {what_to_do}",
                kinds.describe()
            )),
        }),
        n => {
            let mut names: Vec<String> = found.iter().take(8).map(|f| f.label.clone()).collect();
            if n > 8 {
                names.push(format!("and {} more", n - 8));
            }
            Err(Unresolved {
                ambiguous: true,
                fail: Fail::usage(format!(
                    "{query:?} is ambiguous: it matches {}; give more of the id",
                    names.join(", ")
                )),
            })
        }
    }
}

/// Resolves a query to one object of the allowed kinds.
pub fn resolve(cat: &dyn Catalog, query: &str, kinds: Kinds) -> Result<Object, Fail> {
    lookup(cat, query, kinds).map_err(Fail::from)
}

fn lookup(cat: &dyn Catalog, query: &str, kinds: Kinds) -> Result<Object, Unresolved> {
    let q = query.trim();
    let hint = if kinds == Kinds::VOLUME_SET {
        "list them with `mdslog volume-set list DIR`"
    } else {
        "give a volume set name, VOLUME_SET:BRANCH, or an id (`mdslog volume-set list DIR`, `mdslog tree DIR VOLUME_SET`)"
    };
    if q.is_empty() {
        return Err(Unresolved {
            ambiguous: false,
            fail: Fail::usage(format!("an empty {} id; {hint}", kinds.describe())),
        });
    }
    let vss = cat.volume_sets();
    let vs_by_id = |id: VolumeSetId| vss.iter().find(|v| v.id == id);
    let vs_name = |id: VolumeSetId| {
        vs_by_id(id)
            .map(|v| v.name.clone())
            .unwrap_or_else(|| short(id))
    };

    // A whole id.
    if let Ok(u) = uuid::Uuid::parse_str(q) {
        let mut found = Vec::new();
        if kinds.volume_sets {
            if let Some(v) = vs_by_id(VolumeSetId(u)) {
                found.push(Found {
                    object: Object::VolumeSet(v.id),
                    label: vs_label(v),
                });
            }
        }
        if kinds.snapshots {
            if let Some((s, vs)) = cat.snapshots().into_iter().find(|(s, _)| s.0 == u) {
                found.push(Found {
                    object: Object::Snapshot(s),
                    label: format!("snapshot {} in {}", short(s), vs_name(vs)),
                });
            }
        }
        if kinds.branches {
            if let Some(b) = cat.branches().into_iter().find(|b| b.id.0 == u) {
                found.push(Found {
                    object: Object::Branch(b.volume_set, b.id),
                    label: format!("branch {:?} in {}", b.name, vs_name(b.volume_set)),
                });
            }
        }
        return one(q, kinds, found, hint);
    }

    // VOLUME_SET:BRANCH.
    if kinds.branches {
        // When the part before the colon names no volume set, the whole may still be a
        // volume set's name (those may hold a colon).
        if let Some((vs_q, name)) = q.rsplit_once(':') {
            if let Ok(Object::VolumeSet(vs)) = lookup(cat, vs_q, Kinds::VOLUME_SET) {
                let found = cat
                    .branches()
                    .into_iter()
                    .filter(|b| b.volume_set == vs && b.name == name)
                    .map(|b| Found {
                        object: Object::Branch(vs, b.id),
                        label: format!("branch {:?} ({})", b.name, short(b.id)),
                    })
                    .collect();
                let hint = format!("list its branches with `mdslog branch list DIR {vs_q}`");
                return one(
                    q,
                    Kinds {
                        volume_sets: false,
                        snapshots: false,
                        branches: true,
                    },
                    found,
                    &hint,
                );
            }
        }
    }

    // A volume set's name or prefix/name.
    if kinds.volume_sets {
        let by_name: Vec<Found> = vss
            .iter()
            .filter(|v| {
                v.name == q || (!v.prefix.is_empty() && format!("{}/{}", v.prefix, v.name) == q)
            })
            .map(|v| Found {
                object: Object::VolumeSet(v.id),
                label: vs_label(v),
            })
            .collect();
        if !by_name.is_empty() {
            return one(q, kinds, by_name, hint);
        }
    }

    // An id prefix.
    let Some(p) = hex_prefix(q) else {
        return one(q, kinds, Vec::new(), hint);
    };
    let mut found = Vec::new();
    if kinds.volume_sets {
        for v in vss.iter().filter(|v| simple(&v.id.0).starts_with(&p)) {
            found.push(Found {
                object: Object::VolumeSet(v.id),
                label: vs_label(v),
            });
        }
    }
    if kinds.snapshots {
        for (s, vs) in cat
            .snapshots()
            .into_iter()
            .filter(|(s, _)| simple(&s.0).starts_with(&p))
        {
            let name = cat
                .snapshot_name(s)
                .filter(|n| !n.is_empty())
                .map(|n| format!(" {n:?}"))
                .unwrap_or_default();
            found.push(Found {
                object: Object::Snapshot(s),
                label: format!("snapshot {}{name} in {}", s, vs_name(vs)),
            });
        }
    }
    if kinds.branches {
        for b in cat
            .branches()
            .into_iter()
            .filter(|b| simple(&b.id.0).starts_with(&p))
        {
            found.push(Found {
                object: Object::Branch(b.volume_set, b.id),
                label: format!("branch {:?} {} in {}", b.name, b.id, vs_name(b.volume_set)),
            });
        }
    }
    one(q, kinds, found, hint)
}

/// Resolves a volume set.
pub fn volume_set(cat: &dyn Catalog, query: &str) -> Result<VolumeSetId, Fail> {
    match resolve(cat, query, Kinds::VOLUME_SET)? {
        Object::VolumeSet(id) => Ok(id),
        _ => unreachable!("only volume sets were asked for"),
    }
}

/// Resolves a volume set in the first of several places that holds a match (`places`:
/// what each is called in messages, and its catalog): a query that matches nothing in one
/// place is looked up in the next; one that is ambiguous in a place is an error there.
pub fn volume_set_first(places: &[(&str, &dyn Catalog)], query: &str) -> Result<VolumeSetId, Fail> {
    // A name (or prefix/name) in any place wins over an id prefix in an earlier one: "db"
    // is the volume set named db in REMOTE, even when a LOCAL id starts with db.
    let q = query.trim();
    for (name, cat) in places {
        let named: Vec<VolumeSetId> = cat
            .volume_sets()
            .iter()
            .filter(|v| {
                v.name == q || (!v.prefix.is_empty() && format!("{}/{}", v.prefix, v.name) == q)
            })
            .map(|v| v.id)
            .collect();
        match named.as_slice() {
            [] => {}
            [id] => return Ok(*id),
            _ => {
                // Let the lookup say how it is ambiguous.
                if let Err(u) = lookup(*cat, query, Kinds::VOLUME_SET) {
                    return Err(Fail::usage(format!("in {name}: {}", u.fail.message)));
                }
            }
        }
    }
    let mut first_miss: Option<Fail> = None;
    for (name, cat) in places {
        match lookup(*cat, query, Kinds::VOLUME_SET) {
            Ok(Object::VolumeSet(id)) => return Ok(id),
            Ok(_) => unreachable!("only volume sets were asked for"),
            Err(u) if u.ambiguous => {
                return Err(Fail::usage(format!("in {name}: {}", u.fail.message)));
            }
            Err(u) => {
                first_miss.get_or_insert(u.fail);
            }
        }
    }
    let names: Vec<&str> = places.iter().map(|(n, _)| *n).collect();
    Err(match first_miss {
        Some(_) if names.len() > 1 => Fail::usage(format!(
            "no volume set matches {:?} in {}; list them with `mdslog volume-set list DIR`",
            query.trim(),
            names.join(" or "),
        )),
        Some(f) => f,
        None => Fail::usage("no place to look up a volume set in"),
    })
}

/// Resolves a snapshot of one volume set: an id, a unique id prefix among its
/// snapshots, or a branch name (its tip).
pub fn snapshot_in(state: &State, vs: VolumeSetId, query: &str) -> Result<SnapshotId, Fail> {
    let q = query.trim();
    if let Ok(tip) = state.get_tip(vs, q) {
        return Ok(tip.id);
    }
    let ids = state
        .get_snapshot_ids(vs)
        .map_err(|e| Fail::usage(e.to_string()))?;
    let hint = "give a snapshot id, a unique prefix of one, or a branch name (see `mdslog tree DIR VOLUME_SET`)";
    if let Ok(u) = uuid::Uuid::parse_str(q) {
        return ids
            .into_iter()
            .find(|s| s.0 == u)
            .ok_or_else(|| Fail::usage(format!("no snapshot {q} in this volume set; {hint}")));
    }
    let Some(p) = hex_prefix(q) else {
        return Err(Fail::usage(format!(
            "no branch or snapshot matches {q:?}; {hint}"
        )));
    };
    let found: Vec<Found> = ids
        .into_iter()
        .filter(|s| simple(&s.0).starts_with(&p))
        .map(|s| Found {
            object: Object::Snapshot(s),
            label: format!("snapshot {s}"),
        })
        .collect();
    match one(
        q,
        Kinds {
            volume_sets: false,
            snapshots: true,
            branches: false,
        },
        found,
        hint,
    )
    .map_err(Fail::from)?
    {
        Object::Snapshot(s) => Ok(s),
        _ => unreachable!("only snapshots were asked for"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Volume sets only.
    struct Sets(Vec<VsEntry>);

    impl Catalog for Sets {
        fn volume_sets(&self) -> Vec<VsEntry> {
            self.0
                .iter()
                .map(|v| VsEntry {
                    id: v.id,
                    name: v.name.clone(),
                    prefix: v.prefix.clone(),
                })
                .collect()
        }
        fn snapshots(&self) -> Vec<(SnapshotId, VolumeSetId)> {
            Vec::new()
        }
        fn branches(&self) -> Vec<BranchEntry> {
            Vec::new()
        }
        fn snapshot_name(&self, _: SnapshotId) -> Option<String> {
            None
        }
    }

    fn set(id: &str, name: &str) -> VsEntry {
        VsEntry {
            id: VolumeSetId(uuid::Uuid::parse_str(id).unwrap()),
            name: name.into(),
            prefix: String::new(),
        }
    }

    /// A name in a later place beats an id prefix in an earlier one (a CLI sync once
    /// resolved "db" to a LOCAL volume set whose id began with db, 1 run in 256).
    #[test]
    fn a_name_anywhere_beats_an_id_prefix_first() {
        let local = Sets(vec![set("db0e0000-0000-4000-8000-000000000000", "other")]);
        let remote = Sets(vec![set("11110000-0000-4000-8000-000000000000", "db")]);
        let places: [(&str, &dyn Catalog); 2] = [("LOCAL", &local), ("REMOTE", &remote)];
        assert_eq!(volume_set_first(&places, "db").unwrap(), remote.0[0].id);
        // With no name anywhere, the prefix still resolves.
        assert_eq!(volume_set_first(&places, "db0e").unwrap(), local.0[0].id);
    }
}
