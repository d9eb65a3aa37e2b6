//! Helpers shared by the `sync_*` integration tests.
#![allow(dead_code)]

use mdslog::*;

/// Everything of a volume set that sync carries: its metadata, each snapshot's parent and
/// metadata, each branch's name and tip. Blob ids, sizes, bushes and volumes stay local.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncedView {
    pub volume_set: VolumeSetMeta,
    pub snapshots: Vec<(SnapshotId, Option<SnapshotId>, SnapshotMeta)>,
    pub branches: Vec<(BranchId, String, SnapshotId)>,
}

/// The synced view of `vs` in `s`.
pub fn synced_view(s: &Store, vs: VolumeSetId) -> SyncedView {
    let volume_set = s.get_volume_set(vs).unwrap().meta();
    let mut snapshots: Vec<_> = s
        .get_snapshots(&SnapshotQuery {
            volume_set: Some(vs),
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|x| (x.id, x.parent, x.meta()))
        .collect();
    snapshots.sort_by_key(|x| x.0);
    let mut branches: Vec<_> = s
        .get_branches(&BranchQuery::all(vs))
        .unwrap()
        .into_iter()
        .map(|b| (b.id, b.name, b.tip))
        .collect();
    branches.sort_by_key(|x| x.0);
    SyncedView {
        volume_set,
        snapshots,
        branches,
    }
}

/// Every record of a store's log, as (LSN, kind, payload bytes): compares two moments of
/// one log byte for byte.
pub fn all_records(s: &Store) -> Vec<(Lsn, RecordKind, Vec<u8>)> {
    s.log()
        .iter_from(Lsn(1))
        .map(|r| {
            let r = r.unwrap();
            (r.lsn, r.kind, r.payload)
        })
        .collect()
}

/// The `SyncConflict` records of a store's log (kind 20): to which peer, and the conflict.
pub fn conflict_records(s: &Store) -> Vec<(StoreId, mdslog::event::Conflict)> {
    all_records(s)
        .into_iter()
        .filter(|(_, kind, _)| kind.0 == 20)
        .map(|(lsn, kind, payload)| {
            match mdslog::event::Envelope::decode(lsn, kind, &payload)
                .unwrap()
                .event
            {
                mdslog::event::Event::SyncConflict { peer, conflict, .. } => (peer, *conflict),
                other => panic!("kind 20 holds {other:?}"),
            }
        })
        .collect()
}

/// How many records of a kind a store's log holds.
pub fn count_kind(s: &Store, kind: u16) -> usize {
    all_records(s)
        .iter()
        .filter(|(_, k, _)| k.0 == kind)
        .count()
}

/// A store's identity (every store opened for writing has one).
pub fn id_of(s: &Store) -> StoreId {
    s.store_id()
        .unwrap()
        .expect("a writable store has an identity")
}

/// Every file under a directory with a digest of its bytes, sorted by path: compares two
/// moments of a store's directory byte for byte.
pub fn dir_digest(dir: &std::path::Path) -> Vec<(std::path::PathBuf, [u8; 32])> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                out.push((p, *blake3::hash(&bytes).as_bytes()));
            }
        }
    }
    out.sort();
    out
}

/// `view` with every last-modified time zeroed: what two stores must agree on when two
/// edits may have written equal values at different times (the resolver compares neither
/// times nor user names, so such edits never travel).
pub fn without_times(mut view: SyncedView) -> SyncedView {
    view.volume_set.last_modified = Timestamp(0);
    for s in &mut view.snapshots {
        s.2.last_modified = Timestamp(0);
    }
    view
}

/// The records of a store's log from `from` on, decoded.
pub fn log_events(s: &Store, from: Lsn) -> Vec<(Lsn, mdslog::event::Event)> {
    let mut out = Vec::new();
    let mut it = s.log().iter_from(from);
    while let Some(r) = it.next_record().unwrap() {
        let env = mdslog::event::Envelope::decode(r.lsn, r.kind, r.payload).unwrap();
        out.push((r.lsn, env.event));
    }
    out
}

/// What a conflict is about: its kind and the id of its object.
pub fn conflict_key(c: &mdslog::event::Conflict) -> (&'static str, String) {
    use mdslog::event::Conflict;
    match c {
        Conflict::VolumeSet { id, .. } => ("volume-set", id.to_string()),
        Conflict::Snapshot { id, .. } => ("snapshot", id.to_string()),
        Conflict::BranchRename { branch, .. } => ("branch-rename", branch.to_string()),
        Conflict::BranchNameClash { branch, .. } => ("branch-name-clash", branch.to_string()),
        Conflict::BranchTipTaken { branch, .. } => ("branch-tip-taken", branch.to_string()),
    }
}

/// Problems in a log's records: a snapshot or a branch created by more than one record.
pub fn doubled_objects(events: &[(Lsn, mdslog::event::Event)]) -> Vec<String> {
    use mdslog::event::Event;
    use std::collections::HashMap;
    let mut snaps: HashMap<SnapshotId, Lsn> = HashMap::new();
    let mut branches: HashMap<BranchId, Lsn> = HashMap::new();
    let mut out = Vec::new();
    for (lsn, ev) in events {
        let (created, branch): (&[Snapshot], Option<BranchId>) = match ev {
            Event::ForkBranch(b) | Event::ImportBranch(b) => (&b.snapshots, Some(b.branch)),
            Event::ExtendBranch { snapshots, .. } => (snapshots, None),
            _ => continue,
        };
        for s in created {
            if let Some(first) = snaps.insert(s.id, *lsn) {
                out.push(format!(
                    "snapshot {} created at LSN {first} and again at LSN {lsn}",
                    s.id
                ));
            }
        }
        if let Some(b) = branch {
            if let Some(first) = branches.insert(b, *lsn) {
                out.push(format!(
                    "branch {b} created at LSN {first} and again at LSN {lsn}"
                ));
            }
        }
    }
    out
}

/// A deep copy of a simulated storage: every file's current bytes, made durable. Copy
/// only while no store is open on it (or after everything is flushed).
pub fn sim_copy(sim: &mdslog::log::fs::SimStorage) -> mdslog::log::fs::SimStorage {
    use mdslog::log::fs::Storage;
    let copy = mdslog::log::fs::SimStorage::new();
    for name in sim.list().unwrap() {
        if let Some(bytes) = sim.file_bytes(&name) {
            copy.put_file(&name, bytes);
        }
    }
    copy
}

/// The differences between two views (time-less), one line each.
pub fn view_diff(x: &SyncedView, y: &SyncedView) -> String {
    let (x, y) = (without_times(x.clone()), without_times(y.clone()));
    let mut out = Vec::new();
    if x.volume_set != y.volume_set {
        out.push(format!(
            "volume set: {:?} / {:?}",
            x.volume_set, y.volume_set
        ));
    }
    let xs: std::collections::BTreeMap<_, _> =
        x.snapshots.iter().map(|s| (s.0, (s.1, &s.2))).collect();
    let ys: std::collections::BTreeMap<_, _> =
        y.snapshots.iter().map(|s| (s.0, (s.1, &s.2))).collect();
    for id in xs
        .keys()
        .chain(ys.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        if xs.get(id) != ys.get(id) {
            out.push(format!(
                "snapshot {id}: {:?} / {:?}",
                xs.get(id),
                ys.get(id)
            ));
        }
    }
    let xb: std::collections::BTreeMap<_, _> =
        x.branches.iter().map(|b| (b.0, (&b.1, b.2))).collect();
    let yb: std::collections::BTreeMap<_, _> =
        y.branches.iter().map(|b| (b.0, (&b.1, b.2))).collect();
    for id in xb
        .keys()
        .chain(yb.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        if xb.get(id) != yb.get(id) {
            out.push(format!("branch {id}: {:?} / {:?}", xb.get(id), yb.get(id)));
        }
    }
    if out.is_empty() {
        out.push("(equal without times; times differ)".into());
    }
    out.join("\n")
}
