//! Stress: writers, readers, a follower and a sync, all at once on real directories, then
//! a check of where they ended.
//!
//! For a bounded time (3 s by default; set `MDSLOG_STRESS_SECS` for longer, e.g.
//! `MDSLOG_STRESS_SECS=180 cargo test --release --test stress_mixed -- --nocapture`) these
//! run together against one primary store (durable mode, 64 KiB segments, automatic
//! checkpoints):
//!
//! * **writers**, one thread each, every one leaning on other mutation kinds (extensions;
//!   forks and renames; metadata edits and blob ids; volumes, bushes, sizes and
//!   deletions), on branches of their own in two shared volume sets and in a volume set
//!   of their own; each keeps a model of what it was acknowledged;
//! * **readers** that must never see a torn state: in one consistent view (`Store::read`)
//!   every branch's tip exists and is a tip carrying the branch's name, parent links hold
//!   (same volume set, depth one more than the parent's, the parent counts the child),
//!   counts match the listings, and every chain a fork or an extension added (its
//!   snapshots are named `c<tag>-<i>of<k>`) is there whole or not at all: a tip is the last
//!   of its chain and below a chain's `i`-th snapshot lies its `i - 1`-th; one reader asks
//!   the same through single calls (`get_branches`, `get_tip`, `get_snapshots_by_branch`),
//!   one through a read-only handle on the primary's directory that refreshes;
//! * a **follower**: `Shipper::follow` into a second directory, and a read-only store on
//!   it that refreshes, never goes back, passes the same checks, and (a few times) equals
//!   the primary as of its LSN;
//! * a **sync** of the two shared volume sets between the primary and a third store,
//!   again and again (no conflicts, no divergences).
//!
//! Then everything is told to stop and must report back within 60 s (a thread that does
//! not is a deadlock and fails the test). The end state: the primary equals the merged
//! models of the writers, also after a reopen; the follower after a last ship equals the
//! primary; the third store after a last sync holds each shared volume set as the primary
//! does (deletions never travel by sync, so the writers delete only in their own volume
//! sets). The counts (operations by kind, reads, ships, syncs) are printed.

mod sync_support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mdslog::ship::{Shipper, StorageTarget};
use mdslog::state::State;
use mdslog::sync::{sync, SyncMode};
use mdslog::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use sync_support::synced_view;

const WRITERS: usize = 4;
const SHARED: usize = 2;
/// How long the stopped threads get to report back before the test calls it a deadlock.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

fn options() -> StoreOptions {
    StoreOptions {
        log: LogOptions {
            segment_bytes_max: 64 * 1024,
            prewrite_bytes: 8 * 1024,
            record_bytes_max: 16 * 1024,
            batch_bytes_max: 16 * 1024 + 64,
            ..LogOptions::default()
        },
        actor: Some("stress".into()),
    }
}

fn duration() -> Duration {
    let secs: f64 = std::env::var("MDSLOG_STRESS_SECS")
        .ok()
        .map(|s| s.trim().parse().expect("MDSLOG_STRESS_SECS: seconds"))
        .unwrap_or(3.0);
    Duration::from_secs_f64(secs)
}

// ---------------------------------------------------------------------------------------
// The model: what a writer was acknowledged.

#[derive(Debug, Clone, Default)]
struct Model {
    snaps: HashMap<SnapshotId, Snapshot>,
    /// Branch id → (volume set, name, tip).
    branches: HashMap<BranchId, (VolumeSetId, String, SnapshotId)>,
    volumes: HashMap<VolumeId, Volume>,
    bushes: HashMap<SnapshotId, Bush>,
    /// The volume sets this model owns (metadata and size).
    volume_sets: HashMap<VolumeSetId, VolumeSet>,
}

impl Model {
    fn merge(&mut self, other: Model) {
        self.snaps.extend(other.snaps);
        self.branches.extend(other.branches);
        self.volumes.extend(other.volumes);
        self.bushes.extend(other.bushes);
        self.volume_sets.extend(other.volume_sets);
    }

    fn add_chain(&mut self, chain: &[Snapshot]) {
        for s in chain {
            self.snaps.insert(s.id, s.clone());
        }
    }
}

/// Compares a store with the merged model; returns every difference (at most a few of
/// each kind).
fn compare(store: &Store, m: &Model) -> Vec<String> {
    let dump = store.canonical_dump().unwrap();
    let mut out = Vec::new();
    let mut push = |s: String| {
        if out.len() < 20 {
            out.push(s)
        }
    };
    // Derived fields, from the model alone.
    let mut children: HashMap<SnapshotId, u32> = HashMap::new();
    for s in m.snaps.values() {
        if let Some(p) = s.parent {
            *children.entry(p).or_default() += 1;
        }
    }
    let tips: HashMap<SnapshotId, &str> = m
        .branches
        .values()
        .map(|(_, name, tip)| (*tip, name.as_str()))
        .collect();
    let mut depths: HashMap<SnapshotId, u32> = HashMap::new();
    fn depth(m: &Model, id: SnapshotId, memo: &mut HashMap<SnapshotId, u32>) -> u32 {
        if let Some(&d) = memo.get(&id) {
            return d;
        }
        let mut path = vec![id];
        let mut base = 0;
        while let Some(p) = m.snaps[path.last().unwrap()].parent {
            if let Some(&d) = memo.get(&p) {
                base = d;
                break;
            }
            path.push(p);
        }
        for (i, s) in path.iter().rev().enumerate() {
            memo.insert(*s, base + i as u32 + 1);
        }
        memo[&id]
    }

    if dump.snapshots.len() != m.snaps.len() {
        push(format!(
            "{} snapshots, the model has {}",
            dump.snapshots.len(),
            m.snaps.len()
        ));
    }
    for got in &dump.snapshots {
        let Some(want) = m.snaps.get(&got.id) else {
            push(format!(
                "snapshot {} ({}) is not in the model",
                got.id, got.name
            ));
            continue;
        };
        let want = Snapshot {
            depth: depth(m, got.id, &mut depths),
            num_children: children.get(&got.id).copied().unwrap_or(0),
            is_tip: tips.contains_key(&got.id),
            branch_name: tips.get(&got.id).map(|n| n.to_string()),
            ..want.clone()
        };
        if *got != want {
            push(format!(
                "snapshot {}:\n  got  {got:?}\n  want {want:?}",
                got.id
            ));
        }
    }
    let got: HashMap<BranchId, (VolumeSetId, String, SnapshotId)> = dump
        .branches
        .iter()
        .map(|b| (b.id, (b.volume_set, b.name.clone(), b.tip)))
        .collect();
    if got != m.branches {
        for (id, b) in &got {
            if m.branches.get(id) != Some(b) {
                push(format!(
                    "branch {id} {b:?}, the model: {:?}",
                    m.branches.get(id)
                ));
            }
        }
        for (id, b) in &m.branches {
            if !got.contains_key(id) {
                push(format!("branch {id} {b:?} of the model is missing"));
            }
        }
    }
    let got: HashMap<VolumeId, Volume> = dump
        .volumes
        .iter()
        .map(|v| (v.id.clone(), v.clone()))
        .collect();
    if got != m.volumes {
        push(format!(
            "volumes differ: {} in the store, {} in the model",
            got.len(),
            m.volumes.len()
        ));
    }
    let got: HashMap<SnapshotId, Bush> = dump.bushes.iter().map(|b| (b.root, b.clone())).collect();
    if got != m.bushes {
        push(format!("bushes differ: {got:?} / {:?}", m.bushes));
    }
    let mut per_vs: HashMap<VolumeSetId, (u64, u64)> = HashMap::new();
    for s in m.snaps.values() {
        per_vs.entry(s.volume_set).or_default().0 += 1;
    }
    for (vs, _, _) in m.branches.values() {
        per_vs.entry(*vs).or_default().1 += 1;
    }
    if dump.volume_sets.len() != m.volume_sets.len() {
        push(format!(
            "{} volume sets, the model has {}",
            dump.volume_sets.len(),
            m.volume_sets.len()
        ));
    }
    for got in &dump.volume_sets {
        let Some(want) = m.volume_sets.get(&got.id) else {
            push(format!("volume set {} is not in the model", got.id));
            continue;
        };
        let (n_snaps, n_branches) = per_vs.get(&got.id).copied().unwrap_or_default();
        let same = got.meta() == want.meta()
            && got.size == want.size
            && got.created == want.created
            && got.num_snapshots == n_snaps
            && got.num_branches == n_branches;
        if !same {
            push(format!(
                "volume set {}:\n  got  {got:?}\n  want {want:?} with {n_snaps} snapshots and {n_branches} branches",
                got.id
            ));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Invariants a reader checks: nothing torn, ever.

/// `c<tag>-<i>of<k>`: snapshot `i` of a chain of `k` added by one fork or extension.
fn chain_pos(name: &str) -> Option<(&str, u32, u32)> {
    let rest = name.strip_prefix('c')?;
    let (tag, pos) = rest.rsplit_once('-')?;
    let (i, k) = pos.split_once("of")?;
    Some((tag, i.parse().ok()?, k.parse().ok()?))
}

/// Checks a run of snapshots from a tip down (each the parent of the one before): the
/// tip ends its chain, and below a chain's `i`-th snapshot lies its `i - 1`-th.
fn check_chain<'a>(names: impl Iterator<Item = &'a str>, what: &str) -> Result<(), String> {
    let mut above: Option<(&str, u32)> = None;
    for (depth, name) in names.enumerate() {
        let pos = chain_pos(name);
        if depth == 0 {
            if let Some((tag, i, k)) = pos {
                if i != k {
                    return Err(format!(
                        "{what}: the tip {name} is snapshot {i} of {k} of chain {tag}: a chain seen in part"
                    ));
                }
            }
        }
        if let Some((tag, i)) = above {
            if i > 1 && pos.map(|(t, j, _)| (t, j)) != Some((tag, i - 1)) {
                return Err(format!(
                    "{what}: below snapshot {i} of chain {tag} lies {name}, not snapshot {}",
                    i - 1
                ));
            }
        }
        above = pos.map(|(t, i, _)| (t, i));
    }
    Ok(())
}

/// Every check over one consistent view. Returns the number of objects looked at.
fn check_state(st: &State, rng: &mut SmallRng, what: &str) -> Result<u64, String> {
    let e = |x: Error| format!("{what}: {x}");
    let mut looked = 0;
    for vs in st.get_volume_sets(&VolumeSetQuery::default()).map_err(e)? {
        let branches = st.get_branches(&BranchQuery::all(vs.id)).map_err(e)?;
        let ids = st.get_snapshot_ids(vs.id).map_err(e)?;
        if vs.num_branches != branches.len() as u64 || vs.num_snapshots != ids.len() as u64 {
            return Err(format!(
                "{what}: volume set {} counts {} branches and {} snapshots, lists {} and {}",
                vs.name,
                vs.num_branches,
                vs.num_snapshots,
                branches.len(),
                ids.len()
            ));
        }
        for b in &branches {
            let Some(tip) = &b.tip_snapshot else {
                return Err(format!("{what}: branch {} has no tip snapshot", b.name));
            };
            if tip.id != b.tip || !tip.is_tip || tip.branch_name.as_deref() != Some(&b.name) {
                return Err(format!(
                    "{what}: branch {} and its tip {tip:?} disagree",
                    b.name
                ));
            }
            // Walk down from the tip (a bounded stretch) of a sample of the branches: the
            // view holds the store's read lock, so a check must stay short.
            if branches.len() > 8 && !rng.gen_ratio(8, branches.len() as u32) {
                continue;
            }
            let mut names = Vec::new();
            let mut at = Some(b.tip);
            let mut child_depth = None;
            while let Some(id) = at {
                let s = st
                    .get_snapshot(id)
                    .map_err(|x| format!("{what}: below branch {}: {x}", b.name))?;
                if s.volume_set != vs.id {
                    return Err(format!("{what}: {} lies in another volume set", s.id));
                }
                if let Some(d) = child_depth {
                    if s.depth + 1 != d {
                        return Err(format!("{what}: depth {} below depth {d}", s.depth));
                    }
                }
                child_depth = Some(s.depth);
                names.push(s.name);
                looked += 1;
                at = s.parent;
                if names.len() >= 48 {
                    break;
                }
            }
            if at.is_none() && child_depth != Some(1) {
                return Err(format!("{what}: a root at depth {child_depth:?}"));
            }
            check_chain(
                names.iter().map(String::as_str),
                &format!("{what}: branch {}", b.name),
            )?;
        }
        // A sample of parent links.
        for _ in 0..ids.len().min(16) {
            let s = st
                .get_snapshot(ids[rng.gen_range(0..ids.len())])
                .map_err(e)?;
            looked += 1;
            if let Some(p) = s.parent {
                let p = st
                    .get_snapshot(p)
                    .map_err(|x| format!("{what}: the parent of {}: {x}", s.id))?;
                if p.volume_set != s.volume_set || p.depth + 1 != s.depth || p.num_children == 0 {
                    return Err(format!("{what}: parent link {p:?} ← {s:?}"));
                }
            } else if s.depth != 1 {
                return Err(format!("{what}: root {} at depth {}", s.id, s.depth));
            }
        }
    }
    for v in st.get_all_volumes() {
        if let Some(base) = v.base {
            st.get_snapshot(base)
                .map_err(|x| format!("{what}: the base of volume {}: {x}", v.id))?;
        }
    }
    Ok(looked)
}

/// The same through single calls, each its own view: a branch may be renamed or deleted
/// between two calls, but what one call returns is whole.
fn check_calls(store: &Store, vss: &[VolumeSetId], rng: &mut SmallRng) -> Result<u64, String> {
    let vs = vss[rng.gen_range(0..vss.len())];
    let branches = store
        .get_branches(&BranchQuery::all(vs))
        .map_err(|e| format!("get_branches: {e}"))?;
    let mut looked = branches.len() as u64;
    for b in branches.iter().take(6) {
        if b.tip_snapshot.as_ref().map(|t| t.id) != Some(b.tip) {
            return Err(format!("get_branches: branch {} without its tip", b.name));
        }
        match store.get_tip(vs, &b.name) {
            Ok(tip) => check_chain(std::iter::once(tip.name.as_str()), "get_tip")?,
            Err(Error::BranchNotFound { .. }) => {} // renamed or deleted since
            Err(e) => return Err(format!("get_tip: {e}")),
        }
        match store.get_snapshots_by_branch(&BranchQuery::named(vs, &b.name)) {
            Ok(list) => {
                looked += list.len() as u64;
                for w in list.windows(2) {
                    if w[0].parent != Some(w[1].id) || w[0].depth != w[1].depth + 1 {
                        return Err(format!(
                            "get_snapshots_by_branch {}: {} does not sit on {}",
                            b.name, w[0].id, w[1].id
                        ));
                    }
                }
                if list
                    .last()
                    .is_some_and(|s| s.parent.is_some() || s.depth != 1)
                {
                    return Err(format!(
                        "get_snapshots_by_branch {}: ends above the root",
                        b.name
                    ));
                }
                check_chain(
                    list.iter().map(|s| s.name.as_str()),
                    &format!("get_snapshots_by_branch {}", b.name),
                )?;
            }
            Err(Error::BranchNotFound { .. }) => {}
            Err(e) => return Err(format!("get_snapshots_by_branch: {e}")),
        }
    }
    Ok(looked)
}

// ---------------------------------------------------------------------------------------
// The writers.

struct Writer {
    me: usize,
    rng: SmallRng,
    n: u64,
    model: Model,
    shared: Vec<VolumeSetId>,
    own: VolumeSetId,
    /// Branches this writer grows: id (for the model), volume set, name, tip.
    branches: Vec<BranchId>,
    /// Snapshots edits, forks and volumes may start on (never deleted), by volume set.
    stable: HashMap<VolumeSetId, Vec<SnapshotId>>,
    /// Branches in the own volume set to delete whole later: id and snapshots.
    doomed: Vec<(BranchId, Vec<SnapshotId>)>,
    volumes: Vec<VolumeId>,
    counts: BTreeMap<&'static str, u64>,
}

impl Writer {
    fn tick(&mut self) -> u64 {
        self.n += 1;
        self.n
    }

    /// A chain of `k` new snapshots named `c<tag>-<i>of<k>`.
    fn chain(&mut self, vs: VolumeSetId, parent: Option<SnapshotId>, k: u32) -> Vec<Snapshot> {
        let n = self.tick();
        let tag = format!("{}.{n}", self.me);
        let mut out: Vec<Snapshot> = Vec::new();
        let mut p = parent;
        for i in 1..=k {
            let mut s = Snapshot::new(SnapshotId::random(), vs, p);
            s.name = format!("c{tag}-{i}of{k}");
            s.description = "x".repeat(self.rng.gen_range(0..120));
            s.created = Timestamp(self.n as i64 * 10 + i as i64);
            s.last_modified = s.created;
            s.size = self.rng.gen_range(0..1 << 20);
            s.owner = format!("w{}", self.me);
            p = Some(s.id);
            out.push(s);
        }
        out
    }

    fn keep(&mut self, vs: VolumeSetId, ids: impl IntoIterator<Item = SnapshotId>) {
        self.stable.entry(vs).or_default().extend(ids);
    }

    /// A random stable snapshot (of a random volume set).
    fn any_stable(&mut self) -> SnapshotId {
        let vs = self.vs_for_new();
        self.stable_in(vs)
    }

    /// A random stable snapshot of `vs`.
    fn stable_in(&mut self, vs: VolumeSetId) -> SnapshotId {
        let v = &self.stable[&vs];
        v[self.rng.gen_range(0..v.len())]
    }

    fn vs_for_new(&mut self) -> VolumeSetId {
        if self.rng.gen_bool(0.75) {
            self.shared[self.rng.gen_range(0..self.shared.len())]
        } else {
            self.own
        }
    }

    /// Forks a branch of `k` on `parent` in `vs`; returns its id and snapshots.
    fn fork(
        &mut self,
        st: &Store,
        vs: VolumeSetId,
        parent: Option<SnapshotId>,
        name: &str,
        k: u32,
    ) -> Result<(BranchId, Vec<SnapshotId>), Error> {
        let c = self.chain(vs, parent, k);
        let id = st.fork_branch(name, &c)?.expect("a branch");
        self.model.add_chain(&c);
        let tip = c.last().unwrap().id;
        self.model.branches.insert(id, (vs, name.to_string(), tip));
        Ok((id, c.iter().map(|s| s.id).collect()))
    }

    /// One mutation; the kind leans on what this writer is for.
    fn step(&mut self, st: &Store) -> Result<&'static str, Error> {
        let lean: &[(&'static str, u32)] = match self.me % 4 {
            0 => &[
                ("extend", 70),
                ("fork", 8),
                ("edit", 8),
                ("blob", 7),
                ("volume", 7),
            ],
            1 => &[("fork", 35), ("rename", 30), ("extend", 25), ("edit", 10)],
            2 => &[("edit", 40), ("edit-vs", 20), ("blob", 25), ("extend", 15)],
            _ => &[
                ("volume", 20),
                ("bush", 10),
                ("size", 10),
                ("doom", 20),
                ("delete", 20),
                ("extend", 20),
            ],
        };
        let total: u32 = lean.iter().map(|x| x.1).sum();
        let mut roll = self.rng.gen_range(0..total);
        let mut kind = lean[0].0;
        for (k, w) in lean {
            if roll < *w {
                kind = k;
                break;
            }
            roll -= w;
        }
        match kind {
            "extend" => {
                let b = self.branches[self.rng.gen_range(0..self.branches.len())];
                let (vs, _, tip) = self.model.branches[&b].clone();
                let k = self.rng.gen_range(1..=4);
                let c = self.chain(vs, Some(tip), k);
                st.extend_branch(&c)?;
                self.model.add_chain(&c);
                self.model.branches.get_mut(&b).unwrap().2 = c.last().unwrap().id;
                self.keep(vs, c.iter().map(|s| s.id));
            }
            "fork" => {
                let vs = self.vs_for_new();
                let from = self.stable_in(vs);
                let n = self.tick();
                let name = format!("w{}-f{n}", self.me);
                let k = self.rng.gen_range(1..=3);
                let (id, ids) = self.fork(st, vs, Some(from), &name, k)?;
                self.branches.push(id);
                self.keep(vs, ids);
            }
            "rename" => {
                let b = self.branches[self.rng.gen_range(0..self.branches.len())];
                let (vs, old, _) = self.model.branches[&b].clone();
                let n = self.tick();
                let new = format!("w{}-r{n}", self.me);
                st.rename_branch(vs, &old, &new)?;
                self.model.branches.get_mut(&b).unwrap().1 = new;
            }
            "edit" => {
                let k = self.rng.gen_range(1..=3);
                let mut pairs = Vec::new();
                for _ in 0..k {
                    let id = self.any_stable();
                    if pairs.iter().any(|(s, _): &SnapshotPair| s.id == id) {
                        continue;
                    }
                    let mut cur = st.get_snapshot(id)?;
                    let n = self.tick();
                    cur.attrs.insert(format!("k{}", n % 3), format!("v{n}"));
                    cur.description = format!("edited {n}");
                    cur.last_modified = Timestamp(n as i64);
                    pairs.push((cur, None));
                }
                let conflicts = st.update_snapshots(&pairs)?;
                assert!(conflicts.is_empty(), "{conflicts:?}");
                for (s, _) in pairs {
                    let m = self.model.snaps.get_mut(&s.id).unwrap();
                    m.attrs = s.attrs;
                    m.description = s.description;
                    m.last_modified = s.last_modified;
                }
            }
            "edit-vs" => {
                let mut cur = st.get_volume_set(self.own)?;
                let n = self.tick();
                cur.attrs.insert(format!("a{}", n % 4), format!("v{n}"));
                cur.description = format!("edited {n}");
                cur.last_modified = Timestamp(n as i64);
                st.update_volume_set(&cur, None)?;
                let m = self.model.volume_sets.get_mut(&self.own).unwrap();
                m.attrs = cur.attrs;
                m.description = cur.description;
                m.last_modified = cur.last_modified;
            }
            "blob" => {
                let id = self.any_stable();
                let n = self.tick();
                let blob = BlobId::from(format!("blob-{}-{n}", self.me).as_str());
                st.set_blob_id_and_size(id, &blob, n)?;
                let m = self.model.snaps.get_mut(&id).unwrap();
                m.blob = blob;
                m.size = n;
            }
            "size" => {
                let n = self.tick();
                st.set_volume_set_size(self.own, n)?;
                self.model.volume_sets.get_mut(&self.own).unwrap().size = n;
            }
            "volume" => {
                let n = self.tick();
                if !self.volumes.is_empty() && self.rng.gen_bool(0.4) {
                    let i = self.rng.gen_range(0..self.volumes.len());
                    let id = self.volumes[i].clone();
                    if self.rng.gen_bool(0.5) {
                        st.delete_volume(&id)?;
                        self.volumes.swap_remove(i);
                        self.model.volumes.remove(&id);
                    } else {
                        let mut v = self.model.volumes[&id].clone();
                        v.name = format!("renamed {n}");
                        v.attrs.insert("n".into(), n.to_string());
                        st.update_volume(&v)?;
                        self.model.volumes.insert(id, v);
                    }
                } else {
                    let base = self.any_stable();
                    let vs = self.model.snaps[&base].volume_set;
                    let id = VolumeId::from(format!("w{}-vol{n}", self.me).as_str());
                    let v = Volume {
                        id: id.clone(),
                        volume_set: vs,
                        base: Some(base),
                        mount_path: format!("/mnt/w{}/{n}", self.me),
                        attrs: Attrs::new(),
                        created: Timestamp(n as i64),
                        size: n,
                        name: format!("volume {n}"),
                    };
                    st.import_volume(&v)?;
                    self.volumes.push(id.clone());
                    self.model.volumes.insert(id, v);
                }
            }
            "bush" => {
                // On the own volume set's root: import a bush, or delete it.
                let root = self.stable[&self.own][0];
                if self.model.bushes.contains_key(&root) {
                    st.delete_bush(root)?;
                    self.model.bushes.remove(&root);
                } else {
                    let b = Bush {
                        root,
                        volume_set: self.own,
                        data_server: self.tick() as i64,
                    };
                    st.import_bush(&b)?;
                    self.model.bushes.insert(root, b);
                }
            }
            "doom" => {
                // A short-lived branch in the own volume set (sometimes a new root).
                let from = if self.rng.gen_bool(0.2) {
                    None
                } else {
                    Some(self.stable_in(self.own))
                };
                let n = self.tick();
                let name = format!("w{}-d{n}", self.me);
                let k = self.rng.gen_range(1..=3);
                let own = self.own;
                let doomed = self.fork(st, own, from, &name, k)?;
                self.doomed.push(doomed);
            }
            _ => {
                // "delete": a doomed branch, whole.
                if self.doomed.is_empty() {
                    return Ok("delete (none)");
                }
                let i = self.rng.gen_range(0..self.doomed.len());
                let (b, ids) = self.doomed.swap_remove(i);
                st.delete_snapshots(&ids, None)?;
                self.model.branches.remove(&b);
                for id in ids {
                    self.model.snaps.remove(&id);
                }
            }
        }
        Ok(kind)
    }
}

// ---------------------------------------------------------------------------------------
// The run.

/// What a thread reports when it stops.
struct Report {
    name: String,
    counts: BTreeMap<&'static str, u64>,
    model: Option<Model>,
}

type Sent = (String, Result<Report, String>);

/// A thread's work: runs until the flag says stop.
type Body = Box<dyn FnOnce(&AtomicBool) -> Result<Report, String> + Send>;

/// Runs `body` on a thread that reports its result (or its panic) on `tx`. A failing
/// thread tells the others to stop.
fn spawn(
    name: String,
    tx: &mpsc::Sender<Sent>,
    stop: &Arc<AtomicBool>,
    body: impl FnOnce(&AtomicBool) -> Result<Report, String> + Send + 'static,
) -> std::thread::JoinHandle<()> {
    let tx = tx.clone();
    let stop = stop.clone();
    std::thread::spawn(move || {
        let r = catch_unwind(AssertUnwindSafe(|| body(&stop))).unwrap_or_else(|p| {
            Err(p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into()))
        });
        if r.is_err() {
            stop.store(true, Ordering::SeqCst);
        }
        let _ = tx.send((name, r));
    })
}

fn follower_options() -> StoreOptions {
    StoreOptions {
        actor: Some("follower".into()),
        ..options()
    }
}

/// Creates a volume set with a root branch `master` (one snapshot) for the model.
fn volume_set_with_root(st: &Store, name: &str, model: &mut Model) -> VolumeSetId {
    let mut vs = VolumeSet::new(VolumeSetId::random(), name);
    vs.created = Timestamp(1);
    vs.last_modified = Timestamp(1);
    st.import_volume_set(&vs).unwrap();
    let mut root = Snapshot::new(SnapshotId::random(), vs.id, None);
    root.name = "root".into();
    let b = st
        .fork_branch("master", std::slice::from_ref(&root))
        .unwrap()
        .unwrap();
    model.volume_sets.insert(vs.id, vs.clone());
    model.snaps.insert(root.id, root.clone());
    model.branches.insert(b, (vs.id, "master".into(), root.id));
    vs.id
}

#[test]
fn writers_readers_follower_and_sync_at_once() {
    let run_for = duration();
    let pdir = tempfile::tempdir().unwrap();
    let fdir = tempfile::tempdir().unwrap();
    let tdir = tempfile::tempdir().unwrap();
    let primary = Arc::new(Store::open(pdir.path(), options()).unwrap());
    primary.set_checkpoint_every(Some(5_000));
    let third = Arc::new(Store::open(tdir.path(), options()).unwrap());

    // The shared volume sets, and one of each writer's own, each with a root.
    let mut setup = Model::default();
    let shared: Vec<VolumeSetId> = (0..SHARED)
        .map(|i| volume_set_with_root(&primary, &format!("shared-{i}"), &mut setup))
        .collect();
    let mut writers = Vec::new();
    for me in 0..WRITERS {
        let mut model = Model::default();
        let own = volume_set_with_root(&primary, &format!("own-{me}"), &mut model);
        let mut w = Writer {
            me,
            rng: SmallRng::seed_from_u64(me as u64 + 1),
            n: 0,
            model,
            shared: shared.clone(),
            own,
            branches: Vec::new(),
            stable: HashMap::new(),
            doomed: Vec::new(),
            volumes: Vec::new(),
            counts: BTreeMap::new(),
        };
        let root = *w.model.snaps.keys().next().unwrap();
        w.keep(own, [root]);
        w.branches = w.model.branches.keys().copied().collect();
        // A branch of its own in each shared volume set, on the shared root.
        for vs in shared.clone() {
            let root = setup
                .snaps
                .values()
                .find(|s| s.volume_set == vs)
                .unwrap()
                .id;
            let (id, ids) = w
                .fork(&primary, vs, Some(root), &format!("w{me}-main"), 2)
                .unwrap();
            w.branches.push(id);
            w.keep(vs, ids);
        }
        writers.push(w);
    }
    let target = StorageTarget::dir(fdir.path()).unwrap();
    mdslog::ship::ship(primary.log(), &target).unwrap();
    for vs in &shared {
        sync(&*primary, &*third, *vs, SyncMode::Both).unwrap();
    }

    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<Sent>();
    let mut handles = Vec::new();
    let mut names = Vec::new();
    let mut go = |name: String, body: Body| {
        names.push(name.clone());
        handles.push(spawn(name, &tx, &stop, body));
    };

    for mut w in writers {
        let st = primary.clone();
        go(
            format!("writer {}", w.me),
            Box::new(move |stop| {
                while !stop.load(Ordering::SeqCst) {
                    let kind = w
                        .step(&st)
                        .map_err(|e| format!("writer {}: a mutation failed: {e}", w.me))?;
                    *w.counts.entry(kind).or_default() += 1;
                }
                Ok(Report {
                    name: format!("writer {}", w.me),
                    counts: std::mem::take(&mut w.counts),
                    model: Some(w.model),
                })
            }),
        );
    }

    // Readers of the primary: one consistent view; single calls; a read-only handle.
    for r in 0..3usize {
        let st = primary.clone();
        let dir: PathBuf = pdir.path().to_path_buf();
        let shared = shared.clone();
        go(
            format!("reader {r}"),
            Box::new(move |stop| {
                let mut rng = SmallRng::seed_from_u64(100 + r as u64);
                let mut counts = BTreeMap::new();
                let ro = match r {
                    2 => Some(Store::open_read_only(&dir, options()).map_err(|e| e.to_string())?),
                    _ => None,
                };
                while !stop.load(Ordering::SeqCst) {
                    let looked = match (r, &ro) {
                        (1, _) => check_calls(&st, &shared, &mut rng)?,
                        (_, Some(ro)) => {
                            ro.refresh().map_err(|e| format!("refresh: {e}"))?;
                            let view = ro.read().map_err(|e| e.to_string())?;
                            check_state(&view, &mut rng, "read-only handle")?
                        }
                        _ => {
                            let view = st.read().map_err(|e| e.to_string())?;
                            check_state(&view, &mut rng, "primary")?
                        }
                    };
                    *counts.entry("reads").or_default() += 1;
                    *counts.entry("objects looked at").or_default() += looked;
                }
                Ok(Report {
                    name: format!("reader {r}"),
                    counts,
                    model: None,
                })
            }),
        );
    }

    // The follower: `Shipper::follow` into its directory, and a reader on it.
    {
        let st = primary.clone();
        let dir = fdir.path().to_path_buf();
        go(
            "shipper".into(),
            Box::new(move |stop| {
                let target = StorageTarget::dir(&dir).map_err(|e| e.to_string())?;
                let mut shipper = Shipper::new(&target).map_err(|e| e.to_string())?;
                let mut counts = BTreeMap::new();
                shipper
                    .follow(st.log(), Duration::from_millis(2), stop, |r| {
                        *counts.entry("ships").or_default() += 1;
                        *counts.entry("records shipped").or_default() += r.records_shipped;
                        *counts.entry("segments copied").or_default() += r.segments_copied;
                    })
                    .map_err(|e| format!("follow: {e}"))?;
                Ok(Report {
                    name: "shipper".into(),
                    counts,
                    model: None,
                })
            }),
        );
        let st = primary.clone();
        let dir = fdir.path().to_path_buf();
        go(
            "follower reader".into(),
            Box::new(move |stop| {
                let fo = Store::open_read_only(&dir, follower_options())
                    .map_err(|e| format!("follower: {e}"))?;
                let mut rng = SmallRng::seed_from_u64(200);
                let mut counts = BTreeMap::new();
                let mut last = fo.durable_lsn();
                let mut compared_at = Instant::now();
                while !stop.load(Ordering::SeqCst) {
                    let lsn = fo.refresh().map_err(|e| format!("follower refresh: {e}"))?;
                    if lsn < last {
                        return Err(format!("the follower went back from {last} to {lsn}"));
                    }
                    last = lsn;
                    {
                        let view = fo.read().map_err(|e| e.to_string())?;
                        check_state(&view, &mut rng, "follower")?;
                    }
                    *counts.entry("reads").or_default() += 1;
                    // Now and then: the follower is the primary as of its LSN.
                    if compared_at.elapsed() > Duration::from_secs(1)
                        && counts
                            .get("compared with the primary")
                            .copied()
                            .unwrap_or(0)
                            < 3
                    {
                        let want = st.as_of(lsn).map_err(|e| e.to_string())?.canonical_dump();
                        if fo.canonical_dump().map_err(|e| e.to_string())? != want {
                            return Err(format!(
                                "the follower at LSN {lsn} is not the primary as of then"
                            ));
                        }
                        *counts.entry("compared with the primary").or_default() += 1;
                        compared_at = Instant::now();
                    }
                    std::thread::sleep(Duration::from_micros(300));
                }
                Ok(Report {
                    name: "follower reader".into(),
                    counts,
                    model: None,
                })
            }),
        );
    }

    // The sync, again and again.
    {
        let (st, th) = (primary.clone(), third.clone());
        let shared = shared.clone();
        go(
            "sync".into(),
            Box::new(move |stop| {
                let mut counts = BTreeMap::new();
                let mut rng = SmallRng::seed_from_u64(300);
                while !stop.load(Ordering::SeqCst) {
                    for vs in &shared {
                        let r = sync(&*st, &*th, *vs, SyncMode::Both)
                            .map_err(|e| format!("sync: {e}"))?;
                        if !r.conflicts.is_empty() || !r.divergences.is_empty() {
                            return Err(format!("a sync from one writer's store: {r:?}"));
                        }
                        *counts.entry("syncs").or_default() += 1;
                        if let Some(p) = &r.pushed {
                            *counts.entry("records pushed").or_default() += p.records_written;
                        }
                    }
                    let view = th.read().map_err(|e| e.to_string())?;
                    check_state(&view, &mut rng, "third store")?;
                    drop(view);
                    std::thread::sleep(Duration::from_millis(1));
                }
                Ok(Report {
                    name: "sync".into(),
                    counts,
                    model: None,
                })
            }),
        );
    }
    drop(tx);

    // Run, stop, collect: every thread must report back in time.
    let started = Instant::now();
    let mut results: Vec<Sent> = Vec::new();
    while let Some(left) = run_for.checked_sub(started.elapsed()) {
        match rx.recv_timeout(left) {
            Ok(r) => {
                let failed = r.1.is_err();
                results.push(r);
                if failed {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    stop.store(true, Ordering::SeqCst);
    let ran = started.elapsed();
    let stop_deadline = Instant::now() + STOP_TIMEOUT;
    while results.len() < names.len() {
        match rx.recv_timeout(stop_deadline.saturating_duration_since(Instant::now())) {
            Ok(r) => results.push(r),
            Err(_) => {
                let done: HashSet<&String> = results.iter().map(|r| &r.0).collect();
                let missing: Vec<&String> = names.iter().filter(|n| !done.contains(n)).collect();
                panic!(
                    "deadlock? {missing:?} did not stop within {STOP_TIMEOUT:?} of being told to"
                );
            }
        }
    }
    for h in handles {
        h.join().unwrap();
    }
    let errors: Vec<String> = results
        .iter()
        .filter_map(|(n, r)| r.as_ref().err().map(|e| format!("{n}: {e}")))
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));

    // The end state.
    let mut model = setup;
    let mut per: Vec<(String, BTreeMap<&'static str, u64>)> = Vec::new();
    for (_, r) in results {
        let r = r.unwrap();
        if let Some(m) = r.model {
            model.merge(m);
        }
        per.push((r.name, r.counts));
    }
    per.sort_by(|a, b| a.0.cmp(&b.0));
    let diffs = compare(&primary, &model);
    assert!(
        diffs.is_empty(),
        "the primary differs from the writers' models:\n{}",
        diffs.join("\n")
    );

    // The follower after a last ship.
    let r = mdslog::ship::ship(primary.log(), &target).unwrap();
    assert_eq!(r.follower_last_lsn, primary.durable_lsn());
    let fo = Store::open_read_only(fdir.path(), follower_options()).unwrap();
    assert_eq!(fo.durable_lsn(), primary.durable_lsn());
    assert!(
        fo.canonical_dump().unwrap() == primary.canonical_dump().unwrap(),
        "the follower differs from the primary after a last ship"
    );

    // The third store after a last sync.
    for vs in &shared {
        sync(&*primary, &*third, *vs, SyncMode::Both).unwrap();
        assert_eq!(
            synced_view(&third, *vs),
            synced_view(&primary, *vs),
            "the third store's copy of a shared volume set"
        );
    }

    // And the primary after a reopen.
    let end = primary.canonical_dump().unwrap();
    let lsn = primary.durable_lsn();
    drop(fo);
    let primary = Arc::try_unwrap(primary).expect("every thread let go");
    primary.close().unwrap();
    let primary = Store::open(pdir.path(), options()).unwrap();
    assert_eq!(primary.durable_lsn(), lsn);
    assert!(primary.canonical_dump().unwrap() == end, "after a reopen");
    assert!(compare(&primary, &model).is_empty());

    let c = primary.counts().unwrap();
    let sum = |names: &dyn Fn(&str) -> bool, key: &str| -> u64 {
        per.iter()
            .filter(|(n, _)| names(n))
            .map(|(_, c)| c.get(key).copied().unwrap_or(0))
            .sum()
    };
    let mut by_kind: BTreeMap<&str, u64> = BTreeMap::new();
    for (n, counts) in &per {
        if n.starts_with("writer") {
            for (k, v) in counts {
                *by_kind.entry(k).or_default() += v;
            }
        }
    }
    let mutations: u64 = by_kind
        .iter()
        .filter(|(k, _)| !k.contains("none"))
        .map(|(_, v)| v)
        .sum();
    eprintln!(
        "stress_mixed: {ran:.1?}, {WRITERS} writers, 3 readers, a follower, a sync: {mutations} mutations ({}), {} reads of the primary ({}), {} of the follower ({} compared whole with the primary), {} ships ({} records, {} sealed segments copied), {} syncs ({} records applied on the third store); the end: LSN {lsn}, {} snapshots, {} branches, {} volumes, equal to the writers' models, to the follower after a last ship and (shared volume sets) to the third store after a last sync",
        by_kind
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", "),
        sum(&|n| n.starts_with("reader"), "reads"),
        per.iter()
            .filter(|(n, _)| n.starts_with("reader"))
            .map(|(n, c)| format!("{n}: {}", c.get("reads").copied().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join(", "),
        sum(&|n| n == "follower reader", "reads"),
        sum(&|n| n == "follower reader", "compared with the primary"),
        sum(&|n| n == "shipper", "ships"),
        sum(&|n| n == "shipper", "records shipped"),
        sum(&|n| n == "shipper", "segments copied"),
        sum(&|n| n == "sync", "syncs"),
        sum(&|n| n == "sync", "records pushed"),
        c.snapshots,
        c.branches,
        c.volumes,
    );
}
