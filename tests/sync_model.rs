//! Model-based random test of sync between stores.
//!
//! Each case holds one volume set, created on store 0 and first synced to the others,
//! and runs a few hundred random operations: fork a branch (always with new snapshots;
//! ids drawn from the case's seed, so a case replays exactly), extend a branch, rename a
//! branch (names from a small pool, so that clashes happen), edit the volume set's
//! metadata and a snapshot's (`update_*` with the value read just before as the
//! initial), reopen a store (close, `Store::open`: the canonical dump and the LSN must
//! survive), and sync two stores (mode both, one in five pull-only). A branch is
//! extended only by the store that created it, so branch histories never diverge
//! (divergence is tested in `sync_structure`). Every sync must succeed and report no
//! divergence and no missing ancestor; after a pull the local store holds all the
//! remote's structure. At the end, with editing stopped, every store syncs through store
//! 0 until a round changes nothing; then all stores agree on [`synced_view`] (on its
//! time-less form when edits draw values from a small pool: two edits to equal values at
//! different times never travel, as the resolver compares no times), and survive one
//! more reopen.
//!
//! The conflict oracle (two stores) is written from the reference table. For every
//! object (the volume set's metadata, each snapshot's, each branch's name) it keeps the
//! base: the value both stores held after the last sync that left them equal. A sync is
//! predicted object by object: on the push the remote keeps its value on a conflict
//! (both changed since the base, differently) and takes the local value when only that
//! changed; on the pull the local store takes the remote's value unless only the local
//! one changed. Branch names go through the same table, then the clash rule: a name that
//! another branch still holds once the batch's renames are done clashes, and the branch
//! arrives as `name~<8 hex of its id>` (its old name if that is taken too; unnamed for a
//! new branch); the side that lost adopts that name on its next pull. Every reported
//! conflict must be predicted, with its three values, and every predicted one reported;
//! both stores must hold the predicted values afterwards, and be equal after a full
//! sync.
//!
//! Tests that pass:
//! * [`conflicts_are_what_the_table_predicts_off_known_bugs`]: the oracle, on a workload
//!   that stays off the bugs below: every edit writes a fresh value (no edit reverts one,
//!   no two edits agree by chance), an object both sides changed before a sync is never
//!   edited again, no branch takes back a name it had, and a name another store's branch
//!   holds is taken only by a fork, and only if that branch is new there.
//! * [`three_stores_converge_through_a_hub`]: three stores, each syncing only with
//!   store 0 as the remote (the deployment the reference describes), fresh values, names
//!   chosen as above.
//!
//! * [`conflicts_are_what_the_table_predicts`]: the oracle on any workload, and the
//!   smallest form of each bug these tests found (all fixed), below.
//!
//! Ignored, a known limitation: three stores syncing in any pair, not through a hub
//! ([`three_stores_converge`], [`three_stores_agree_after_every_full_sync`]): with
//! concurrent renames and name clashes in a mesh, stores may disagree after settling.
//!
//! `SYNC_MODEL_CASES` sets the number of cases (default 32), `SYNC_MODEL_SEED` replays a
//! run (the seed is printed on failure), `SYNC_MODEL_CASE` runs one case by its seed,
//! `SYNC_MODEL_OPS` sets the operations per case, `SYNC_MODEL_TRACE` prints every step of
//! a failing case.

mod store_support;
mod sync_support;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Instant;

use mdslog::event::Conflict;
use mdslog::state::query::CanonicalDump;
use mdslog::sync::{sync, SyncMode, SyncReport};
use mdslog::*;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use sync_support::{conflict_key, synced_view, view_diff, without_times, SyncedView};

/// Branch names: few, so that two stores pick the same one.
const NAMES: [&str; 6] = ["main", "dev", "feat", "fix", "rel", "exp"];
/// Metadata values when edits draw from a small pool.
const WORDS: [&str; 3] = ["x", "y", "z"];

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Small log limits, so segments rotate during the run.
fn options() -> StoreOptions {
    StoreOptions {
        log: LogOptions {
            segment_bytes_max: 256 * 1024,
            prewrite_bytes: 16 * 1024,
            record_bytes_max: 64 * 1024,
            batch_bytes_max: 128 * 1024,
            ..LogOptions::default()
        },
        actor: Some("sync-model".into()),
    }
}

// ---- The oracle ---------------------------------------------------------------------------

/// The base of every object between the two stores of an oracle case: the value both
/// held after the last sync that left them equal.
#[derive(Default)]
struct Base {
    vs: Option<VolumeSetMeta>,
    snaps: HashMap<SnapshotId, SnapshotMeta>,
    names: HashMap<BranchId, String>,
}

/// What a sync must report about one object, and with which values.
#[derive(Debug, Clone, PartialEq)]
enum Want {
    /// Volume set or snapshot metadata: target, current, initial (compared on the
    /// fields the resolver compares).
    VolumeSet(VolumeSetMeta, VolumeSetMeta, VolumeSetMeta),
    Snapshot(SnapshotMeta, SnapshotMeta, SnapshotMeta),
    Rename(String, String, String),
    /// Wanted, given, holder.
    Clash(String, String, BranchId),
}

impl Want {
    fn matches(&self, c: &Conflict) -> bool {
        match (self, c) {
            (
                Want::VolumeSet(t, cu, i),
                Conflict::VolumeSet {
                    target,
                    current,
                    initial,
                    ..
                },
            ) => t.same(target) && cu.same(current) && i.same(initial),
            (
                Want::Snapshot(t, cu, i),
                Conflict::Snapshot {
                    target,
                    current,
                    initial,
                    ..
                },
            ) => t.same(target) && cu.same(current) && i.same(initial),
            (
                Want::Rename(t, cu, i),
                Conflict::BranchRename {
                    target,
                    current,
                    initial,
                    ..
                },
            ) => (t, cu, i) == (target, current, initial),
            (
                Want::Clash(w, g, h),
                Conflict::BranchNameClash {
                    wanted,
                    given,
                    holder,
                    ..
                },
            ) => (w, g, h) == (wanted, given, holder),
            _ => false,
        }
    }
}

type Key = (&'static str, String);

/// One side's objects as the oracle tracks them.
#[derive(Clone)]
struct Side {
    vs: VolumeSetMeta,
    snaps: BTreeMap<SnapshotId, SnapshotMeta>,
    names: BTreeMap<BranchId, String>,
}

impl Side {
    fn of(v: &SyncedView) -> Side {
        Side {
            vs: v.volume_set.clone(),
            snaps: v.snapshots.iter().map(|s| (s.0, s.2.clone())).collect(),
            names: v.branches.iter().map(|b| (b.0, b.1.clone())).collect(),
        }
    }
}

fn clash_name(name: &str, b: BranchId) -> String {
    format!("{name}~{}", &b.to_string().replace('-', "")[..8])
}

/// A prediction of one sync.
struct Prediction {
    local: Side,
    remote: Side,
    conflicts: BTreeMap<Key, Want>,
    /// Branches that arrived somewhere under a clash name: their base becomes the name
    /// they wanted (the side that lost adopts the given one from there).
    wanted: HashMap<BranchId, String>,
    /// Objects both sides had changed since the base.
    both_changed: BTreeSet<Key>,
}

/// The three-way decision on one object. `push`: the receiver (here = `b`) keeps its
/// value on a conflict; else (pull) the sender's value `b` is imposed on `a`. Returns
/// the value the receiver ends with and whether it is a conflict.
fn decide<T: Clone>(a: &T, b: &T, i: &T, same: impl Fn(&T, &T) -> bool, push: bool) -> (T, bool) {
    // `a`: the side applying; `b`: the other side; `i`: the base.
    let a_changed = !same(a, i);
    let b_changed = !same(b, i);
    match (a_changed, b_changed) {
        (_, false) => (a.clone(), false),
        (false, true) => (b.clone(), false),
        (true, true) if same(a, b) => (a.clone(), false),
        (true, true) => (if push { a.clone() } else { b.clone() }, true),
    }
}

/// Applies the names of the sending side (`theirs`) to the receiving side (`here`):
/// for branches both know, the three-way table against the base (`push`: the receiver
/// keeps its name on a conflict; else the sender's wins); a name another branch holds
/// once the batch's renames are done clashes: the branch takes `name~<8 hex>` (or keeps
/// its name if that is taken too). Then the sender's new branches, under their name or
/// a clash name (or none).
fn apply_names(
    here: &mut BTreeMap<BranchId, String>,
    theirs: &BTreeMap<BranchId, String>,
    base: &dyn Fn(BranchId) -> String,
    push: bool,
    conflicts: &mut BTreeMap<Key, Want>,
    wanted: &mut HashMap<BranchId, String>,
) {
    let same = |x: &String, y: &String| x == y;
    let mut takers: Vec<(BranchId, String)> = Vec::new();
    for (b, t) in theirs {
        let Some(h) = here.get(b) else { continue };
        let i = base(*b);
        let (v, c) = decide(h, t, &i, same, push);
        if c {
            let (target, current) = if push { (h, t) } else { (t, h) };
            conflicts
                .entry(("branch-rename", b.to_string()))
                .or_insert_with(|| Want::Rename(target.clone(), current.clone(), i.clone()));
        }
        if v != *h {
            takers.push((*b, v));
        }
    }
    let taking: HashSet<BranchId> = takers.iter().map(|t| t.0).collect();
    let keeps: HashMap<String, BranchId> = here
        .iter()
        .filter(|(b, n)| !taking.contains(b) && !n.is_empty())
        .map(|(b, n)| (n.clone(), *b))
        .collect();
    let mut finals: Vec<(BranchId, String)> = Vec::new();
    for (b, v) in &takers {
        let given = match keeps.get(v).filter(|h| **h != *b) {
            Some(holder) => {
                let alt = clash_name(v, *b);
                let taken = keeps.contains_key(&alt) || takers.iter().any(|t| t.1 == alt);
                let given = if taken { here[b].clone() } else { alt };
                conflicts
                    .entry(("branch-name-clash", b.to_string()))
                    .or_insert_with(|| Want::Clash(v.clone(), given.clone(), *holder));
                wanted.insert(*b, v.clone());
                given
            }
            None => v.clone(),
        };
        finals.push((*b, given));
    }
    here.extend(finals);
    for (b, name) in theirs {
        if here.contains_key(b) {
            continue;
        }
        let holder = (!name.is_empty())
            .then(|| here.iter().find(|(_, n)| *n == name).map(|(h, _)| *h))
            .flatten();
        let given = match holder {
            Some(holder) => {
                let alt = clash_name(name, *b);
                let given = if here.values().any(|n| *n == alt) {
                    String::new()
                } else {
                    alt
                };
                conflicts
                    .entry(("branch-name-clash", b.to_string()))
                    .or_insert_with(|| Want::Clash(name.clone(), given.clone(), holder));
                given
            }
            None => name.clone(),
        };
        wanted.insert(*b, name.clone());
        here.insert(*b, given);
    }
}

impl Base {
    /// Predicts `sync(local, remote, mode)` from the two views before it.
    fn predict(&self, vl: &SyncedView, vr: &SyncedView, mode: SyncMode) -> Prediction {
        let mut l = Side::of(vl);
        let mut r = Side::of(vr);
        let mut conflicts: BTreeMap<Key, Want> = BTreeMap::new();
        let mut wanted: HashMap<BranchId, String> = HashMap::new();
        let mut both_changed = BTreeSet::new();
        let base_vs = self.vs.clone().expect("a base volume set");
        let vs_key: Key = ("volume-set", String::new());
        let vs_same = |x: &VolumeSetMeta, y: &VolumeSetMeta| x.same(y);
        let snap_same = |x: &SnapshotMeta, y: &SnapshotMeta| x.same(y);
        if !l.vs.same(&base_vs) && !r.vs.same(&base_vs) {
            both_changed.insert(vs_key.clone());
        }
        for (id, a) in &l.snaps {
            if let (Some(b), Some(i)) = (r.snaps.get(id), self.snaps.get(id)) {
                if !a.same(i) && !b.same(i) {
                    both_changed.insert(("snapshot", id.to_string()));
                }
            }
        }
        for (id, a) in &l.names {
            if let (Some(b), Some(i)) = (r.names.get(id), self.names.get(id)) {
                if a != i && b != i {
                    both_changed.insert(("branch-name", id.to_string()));
                }
            }
        }

        // The push: the remote applies the local side's news, keeping its own value on
        // a conflict.
        let pushed_new: BTreeSet<BranchId>;
        if mode == SyncMode::Both {
            // Remote = receiver: `decide(here = remote, other = local)` with the roles
            // of the table: the receiver keeps its value on a conflict.
            let (v, c) = decide(&r.vs, &l.vs, &base_vs, vs_same, true);
            if c {
                conflicts.insert(
                    ("volume-set", String::new()),
                    Want::VolumeSet(r.vs.clone(), l.vs.clone(), base_vs.clone()),
                );
            }
            r.vs = v;
            for (id, a) in &l.snaps {
                match (r.snaps.get(id).cloned(), self.snaps.get(id)) {
                    (Some(b), Some(i)) => {
                        let (v, c) = decide(&b, a, i, snap_same, true);
                        if c {
                            conflicts.insert(
                                ("snapshot", id.to_string()),
                                Want::Snapshot(b.clone(), a.clone(), i.clone()),
                            );
                        }
                        r.snaps.insert(*id, v);
                    }
                    (Some(_), None) => panic!("snapshot {id} on both sides without a base"),
                    (None, _) => {
                        r.snaps.insert(*id, a.clone());
                    }
                }
            }
            pushed_new = l
                .names
                .keys()
                .filter(|b| !r.names.contains_key(b))
                .copied()
                .collect();
            let base = |b: BranchId| self.names.get(&b).cloned().expect("a base name");
            apply_names(
                &mut r.names,
                &l.names,
                &base,
                true,
                &mut conflicts,
                &mut wanted,
            );
        } else {
            pushed_new = BTreeSet::new();
        }

        // The pull: the local store applies the remote's news; the remote's value wins.
        let (v, c) = decide(&l.vs, &r.vs, &base_vs, vs_same, false);
        if c {
            conflicts
                .entry(("volume-set", String::new()))
                .or_insert_with(|| Want::VolumeSet(r.vs.clone(), l.vs.clone(), base_vs.clone()));
        }
        l.vs = v;
        for (id, b) in &r.snaps {
            match l.snaps.get(id).cloned() {
                Some(a) => {
                    let i = match self.snaps.get(id) {
                        Some(i) => i.clone(),
                        // Pushed by this sync: the base is what the local side sent.
                        None => a.clone(),
                    };
                    let (v, c) = decide(&a, b, &i, snap_same, false);
                    if c {
                        conflicts
                            .entry(("snapshot", id.to_string()))
                            .or_insert_with(|| Want::Snapshot(b.clone(), a.clone(), i.clone()));
                    }
                    l.snaps.insert(*id, v);
                }
                None => {
                    l.snaps.insert(*id, b.clone());
                }
            }
        }
        let remote_names = r.names.clone();
        let wanted_in_push = wanted.clone();
        let base = |b: BranchId| match wanted_in_push.get(&b).or(self.names.get(&b)) {
            Some(i) => i.clone(),
            None => {
                // Pushed by this sync: the base is the name it was sent with.
                assert!(
                    pushed_new.contains(&b),
                    "branch {b} on both sides without a base"
                );
                l.names[&b].clone()
            }
        };
        let mut local_names = l.names.clone();
        apply_names(
            &mut local_names,
            &remote_names,
            &base,
            false,
            &mut conflicts,
            &mut wanted,
        );
        l.names = local_names;
        Prediction {
            local: l,
            remote: r,
            conflicts,
            wanted,
            both_changed,
        }
    }

    /// After a sync: every object both stores hold equal gets that value as its base; a
    /// branch that arrived under a clash name gets the name it wanted.
    fn update(&mut self, va: &SyncedView, vb: &SyncedView, wanted: &HashMap<BranchId, String>) {
        if va.volume_set.same(&vb.volume_set) {
            self.vs = Some(va.volume_set.clone());
        }
        let b_snaps: HashMap<SnapshotId, &SnapshotMeta> =
            vb.snapshots.iter().map(|s| (s.0, &s.2)).collect();
        for s in &va.snapshots {
            if let Some(m) = b_snaps.get(&s.0) {
                if s.2.same(m) {
                    self.snaps.insert(s.0, s.2.clone());
                }
            }
        }
        let b_names: HashMap<BranchId, &String> = vb.branches.iter().map(|b| (b.0, &b.1)).collect();
        for (id, name, _) in &va.branches {
            if let Some(n) = b_names.get(id) {
                if name == *n {
                    self.names.insert(*id, name.clone());
                } else if let Some(w) = wanted.get(id) {
                    self.names.insert(*id, w.clone());
                }
            }
        }
    }
}

fn conflict_map(r: &SyncReport, vs: VolumeSetId) -> Result<BTreeMap<Key, Conflict>, String> {
    let mut out = BTreeMap::new();
    for c in &r.conflicts {
        let mut k = conflict_key(c);
        if let Conflict::VolumeSet { id, .. } = c {
            if *id != vs {
                return Err(format!("a conflict about another volume set: {c:?}"));
            }
            k.1 = String::new();
        }
        if out.insert(k.clone(), c.clone()).is_some() {
            return Err(format!("{k:?} reported twice in one sync"));
        }
    }
    Ok(out)
}

// ---- The harness --------------------------------------------------------------------------

impl Workload {
    fn oracle(self) -> bool {
        matches!(self, Workload::Oracle | Workload::OracleOffBugs)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    /// Three stores: convergence at the end.
    Converge,
    /// Three stores, each syncing only with store 0 as the remote (a hub), fresh values,
    /// branch names chosen off the known bugs (see [`Case::free_name`]).
    ConvergeStar,
    /// Three stores, and after every full sync the two stores agree.
    ConvergeStrict,
    /// Two stores and the oracle, edits from small pools.
    Oracle,
    /// Two stores and the oracle, off the known bugs.
    OracleOffBugs,
}

struct Node {
    dir: tempfile::TempDir,
    store: Option<Store>,
}

impl Node {
    fn st(&self) -> &Store {
        self.store.as_ref().expect("open")
    }
}

#[derive(Default, Debug)]
struct Stats {
    cases: u64,
    ops: BTreeMap<&'static str, u64>,
    syncs: u64,
    pull_only: u64,
    conflicts: BTreeMap<&'static str, u64>,
    reopens: u64,
    snapshots_max: usize,
    branches_max: usize,
    hub_rounds_max: u64,
}

struct Case {
    nodes: Vec<Node>,
    vs: VolumeSetId,
    rng: SmallRng,
    workload: Workload,
    /// Fresh values for every edit (else values from a small pool).
    unique: bool,
    n: u64,
    /// Which store created each branch: only that one extends it.
    owner: HashMap<BranchId, usize>,
    base: Base,
    /// Objects that must not be edited again (off-bugs workload).
    frozen: BTreeSet<Key>,
    /// Every name each branch had, anywhere (off-bugs workload: no name comes back).
    had: HashMap<BranchId, HashSet<String>>,
    /// The name each branch was forked with.
    fork_names: HashMap<BranchId, String>,

    trace: Vec<String>,
    stats: Stats,
}

fn fail<T>(msg: String) -> Result<T, String> {
    Err(msg)
}

impl Case {
    fn new(seed: u64, workload: Workload) -> Result<Case, String> {
        let mut rng = SmallRng::seed_from_u64(seed);
        let stores = if workload.oracle() { 2 } else { 3 };
        let unique = match workload {
            Workload::Converge | Workload::ConvergeStrict => rng.gen_bool(0.5),
            Workload::ConvergeStar => true,
            Workload::Oracle => false,
            Workload::OracleOffBugs => true,
        };
        let mut nodes = Vec::new();
        for _ in 0..stores {
            let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
            let store = Store::open(dir.path(), options()).map_err(|e| e.to_string())?;
            nodes.push(Node {
                dir,
                store: Some(store),
            });
        }
        let vs = nodes[0]
            .st()
            .create_volume_set("repo", "pre", Attrs::new(), "", "owner", "creator")
            .map_err(|e| e.to_string())?
            .id;
        let mut case = Case {
            nodes,
            vs,
            rng,
            workload,
            unique,
            n: 0,
            owner: HashMap::new(),
            base: Base::default(),
            frozen: BTreeSet::new(),
            had: HashMap::new(),
            fork_names: HashMap::new(),

            trace: Vec::new(),
            stats: Stats::default(),
        };
        case.fork(0)?;
        for i in 1..stores {
            sync(case.nodes[i].st(), case.nodes[0].st(), vs, SyncMode::Both)
                .map_err(|e| format!("first sync of store {i}: {e}"))?;
        }
        let v0 = synced_view(case.nodes[0].st(), vs);
        for i in 1..stores {
            if synced_view(case.nodes[i].st(), vs) != v0 {
                return fail(format!(
                    "store {i} differs from store 0 after the first sync"
                ));
            }
        }
        case.base.update(&v0, &v0, &HashMap::new());
        Ok(case)
    }

    fn oracle(&self) -> bool {
        self.workload.oracle()
    }

    /// Whether every full sync must leave the two stores equal.
    fn strict(&self) -> bool {
        !matches!(self.workload, Workload::Converge | Workload::ConvergeStar)
    }

    fn uuid(&mut self) -> uuid::Uuid {
        uuid::Uuid::from_u128(self.rng.gen())
    }

    fn fresh(&mut self, what: &str) -> String {
        self.n += 1;
        if self.unique {
            format!("{what}{}", self.n)
        } else {
            WORDS.choose(&mut self.rng).unwrap().to_string()
        }
    }

    fn view(&self, i: usize) -> SyncedView {
        synced_view(self.nodes[i].st(), self.vs)
    }

    fn pick_store(&mut self) -> usize {
        self.rng.gen_range(0..self.nodes.len())
    }

    fn note(&mut self, kind: &'static str, what: String) {
        *self.stats.ops.entry(kind).or_default() += 1;
        self.trace.push(what);
    }

    /// A name no branch on store `s` holds, for a fork (`branch` = `None`) or for a
    /// rename of `branch`.
    ///
    /// Off the known bugs (the oracle's workload off bugs, and the hub's): no branch takes
    /// back a name it had, and a name another branch holds on another store is taken only
    /// by a fork, and only if that branch is new
    /// there (unknown here) and still has the name it was forked with: a rename onto a
    /// name the other side's known branch has, or is renamed to, makes the receiver's
    /// branch-id ordered renames clash where no clash is left once the batch is applied.
    fn free_name(&mut self, s: usize, branch: Option<BranchId>) -> Option<String> {
        let here = self.view(s);
        let held: HashSet<String> = here.branches.iter().map(|b| b.1.clone()).collect();
        let known: HashSet<BranchId> = here.branches.iter().map(|b| b.0).collect();
        let off_bugs = matches!(
            self.workload,
            Workload::OracleOffBugs | Workload::ConvergeStar
        );
        let mut there: Vec<(BranchId, String)> = Vec::new();
        for o in (0..self.nodes.len()).filter(|o| *o != s) {
            if off_bugs && self.nodes[o].st().get_volume_set(self.vs).is_ok() {
                there.extend(self.view(o).branches.into_iter().map(|b| (b.0, b.1)));
            }
        }
        let had = branch.and_then(|b| self.had.get(&b));
        let free: Vec<&str> = NAMES
            .iter()
            .copied()
            .filter(|n| !held.contains(*n))
            .filter(|n| !(off_bugs && had.is_some_and(|h| h.contains(*n))))
            .filter(|n| {
                there.iter().all(|(h, name)| {
                    name != n
                        || (branch.is_none()
                            && !known.contains(h)
                            && self.fork_names.get(h) == Some(name))
                })
            })
            .collect();
        free.choose(&mut self.rng).map(|s| s.to_string())
    }

    fn new_chain(&mut self, parent: Option<SnapshotId>, n: usize) -> Vec<Snapshot> {
        let mut out: Vec<Snapshot> = Vec::new();
        let mut p = parent;
        for _ in 0..n {
            let mut x = Snapshot::new(SnapshotId(self.uuid()), self.vs, p);
            x.created = Timestamp::now();
            x.last_modified = x.created;
            if self.rng.gen_bool(0.3) {
                x.name = self.fresh("s");
            }

            p = Some(x.id);
            out.push(x);
        }
        out
    }

    /// Forks a new branch on store `s`: new snapshots on any snapshot (or a new root).
    fn fork(&mut self, s: usize) -> Result<(), String> {
        let v = self.view(s);
        let parent = if v.snapshots.is_empty() || self.rng.gen_bool(0.05) {
            None
        } else {
            Some(v.snapshots.choose(&mut self.rng).unwrap().0)
        };
        let name = if self.rng.gen_bool(0.15) {
            String::new()
        } else {
            self.free_name(s, None).unwrap_or_default()
        };
        let n = self.rng.gen_range(1..=4);
        let snaps = self.new_chain(parent, n);
        // A fork with an id drawn here (`fork_branch` draws a random one), so that a case
        // replays exactly: branch ids order renames and make clash names.
        let id = BranchId(self.uuid());
        self.nodes[s]
            .st()
            .import_branch(id, &name, &snaps)
            .map_err(|e| format!("fork on {s}: {e}"))?;
        self.owner.insert(id, s);
        self.fork_names.insert(id, name.clone());
        self.had.entry(id).or_default().insert(name.clone());
        self.note(
            "fork",
            format!("fork on {s}: {id} {name:?} with {n} on {parent:?}"),
        );
        Ok(())
    }

    fn extend(&mut self, s: usize) -> Result<(), String> {
        let mine: Vec<(BranchId, SnapshotId)> = self
            .view(s)
            .branches
            .into_iter()
            .filter(|b| self.owner.get(&b.0) == Some(&s))
            .map(|b| (b.0, b.2))
            .collect();
        let Some((b, tip)) = mine.choose(&mut self.rng).copied() else {
            return self.fork(s);
        };
        let n = self.rng.gen_range(1..=3);
        let snaps = self.new_chain(Some(tip), n);
        self.nodes[s]
            .st()
            .extend_branch(&snaps)
            .map_err(|e| format!("extend {b} on {s}: {e}"))?;
        self.note("extend", format!("extend on {s}: {b} by {n}"));
        Ok(())
    }

    fn rename(&mut self, s: usize) -> Result<(), String> {
        let named: Vec<(BranchId, String)> = self
            .view(s)
            .branches
            .into_iter()
            .filter(|b| !b.1.is_empty())
            .filter(|b| !self.frozen.contains(&("branch-name", b.0.to_string())))
            .map(|b| (b.0, b.1))
            .collect();
        let Some((b, old)) = named.choose(&mut self.rng).cloned() else {
            return Ok(());
        };
        let Some(new) = self.free_name(s, Some(b)) else {
            return Ok(());
        };
        self.nodes[s]
            .st()
            .rename_branch(self.vs, &old, &new)
            .map_err(|e| format!("rename {b} {old:?} -> {new:?} on {s}: {e}"))?;
        self.had.entry(b).or_default().insert(new.clone());
        self.note("rename", format!("rename on {s}: {b} {old:?} -> {new:?}"));
        Ok(())
    }

    fn edit_vs(&mut self, s: usize) -> Result<(), String> {
        if self.frozen.contains(&("volume-set", String::new())) {
            return Ok(());
        }
        let st = self.nodes[s].st();
        let before = st.get_volume_set(self.vs).map_err(|e| e.to_string())?;
        let mut cur = before.clone();
        let field = self.rng.gen_range(0..6);
        let value = self.fresh("v");
        match field {
            0 => cur.description = value.clone(),
            1 => cur.prefix = value.clone(),
            2 => cur.owner = value.clone(),
            3 => cur.creator = value.clone(),
            4 => cur.name = format!("repo-{value}"),
            _ => {
                let k = ["a", "b"].choose(&mut self.rng).unwrap().to_string();
                if !self.unique && self.rng.gen_bool(0.3) {
                    cur.attrs.remove(&k);
                } else {
                    cur.attrs.insert(k, value.clone());
                }
            }
        }
        cur.last_modified = Timestamp::now();
        let st = self.nodes[s].st();
        match st.update_volume_set(&cur, Some(&before)) {
            Ok(None) => {}
            Ok(Some(m)) => return fail(format!("edit of the volume set on {s} returned {m:?}")),
            Err(e) => return fail(format!("edit of the volume set on {s}: {e}")),
        }
        self.note(
            "edit-vs",
            format!("edit volume set on {s}: field {field} = {value:?}"),
        );
        Ok(())
    }

    fn edit_snap(&mut self, s: usize) -> Result<(), String> {
        let v = self.view(s);
        let ids: Vec<SnapshotId> = v
            .snapshots
            .iter()
            .map(|x| x.0)
            .filter(|id| !self.frozen.contains(&("snapshot", id.to_string())))
            .collect();
        // Half the edits go to the oldest few snapshots (by id), so that both sides edit
        // the same ones.
        let hot = ids.len().min(4);
        let pick = if hot > 0 && self.rng.gen_bool(0.5) {
            ids.get(self.rng.gen_range(0..hot)).copied()
        } else {
            ids.choose(&mut self.rng).copied()
        };
        let Some(id) = pick else {
            return Ok(());
        };
        let st = self.nodes[s].st();
        let before = st.get_snapshot(id).map_err(|e| e.to_string())?;
        let mut cur = before.clone();
        let field = self.rng.gen_range(0..5);
        let value = self.fresh("m");
        match field {
            0 => cur.description = value.clone(),
            1 => cur.name = value.clone(),
            2 => cur.owner = value.clone(),
            3 => cur.creator = value.clone(),
            _ => {
                let k = ["a", "b"].choose(&mut self.rng).unwrap().to_string();
                if !self.unique && self.rng.gen_bool(0.3) {
                    cur.attrs.remove(&k);
                } else {
                    cur.attrs.insert(k, value.clone());
                }
            }
        }
        let st = self.nodes[s].st();
        match st.update_snapshot(&cur, Some(&before)) {
            Ok(None) => {}
            Ok(Some(m)) => return fail(format!("edit of {id} on {s} returned {m:?}")),
            Err(e) => return fail(format!("edit of {id} on {s}: {e}")),
        }
        self.note(
            "edit-snap",
            format!("edit snapshot {id} on {s}: field {field} = {value:?}"),
        );
        Ok(())
    }

    fn reopen(&mut self, s: usize) -> Result<(), String> {
        let node = &mut self.nodes[s];
        let store = node.store.take().expect("open");
        let before: CanonicalDump = store.canonical_dump().map_err(|e| e.to_string())?;
        let lsn = store.durable_lsn();
        store.close().map_err(|e| format!("close {s}: {e}"))?;
        let store =
            Store::open(node.dir.path(), options()).map_err(|e| format!("reopen {s}: {e}"))?;
        if store.durable_lsn() != lsn {
            return fail(format!(
                "store {s} reopened at LSN {}, closed at {lsn}",
                store.durable_lsn()
            ));
        }
        let after = store.canonical_dump().map_err(|e| e.to_string())?;
        node.store = Some(store);
        if after != before {
            return fail(format!(
                "store {s}: the canonical dump changed across a reopen"
            ));
        }
        self.stats.reopens += 1;
        self.note("reopen", format!("reopen {s}"));
        Ok(())
    }

    /// Syncs `l` (local) with `r` (remote) and checks what the sync did.
    fn sync(&mut self, l: usize, r: usize, mode: SyncMode) -> Result<SyncReport, String> {
        let (vl, vr) = (self.view(l), self.view(r));
        let prediction = (self.oracle() && !self.base.names.is_empty())
            .then(|| self.base.predict(&vl, &vr, mode));
        let report = sync(self.nodes[l].st(), self.nodes[r].st(), self.vs, mode)
            .map_err(|e| format!("sync({l}, {r}, {mode:?}) failed: {e}"))?;
        self.stats.syncs += 1;
        if mode == SyncMode::PullOnly {
            self.stats.pull_only += 1;
        }
        for c in &report.conflicts {
            *self.stats.conflicts.entry(conflict_key(c).0).or_default() += 1;
        }
        self.trace.push(format!(
            "sync({l}, {r}, {mode:?}): {} conflicts {:?}",
            report.conflicts.len(),
            report
                .conflicts
                .iter()
                .map(|c| conflict_key(c).0)
                .collect::<Vec<_>>()
        ));
        if !report.divergences.is_empty() || !report.missing.is_empty() {
            return fail(format!(
                "sync({l}, {r}, {mode:?}): divergences {:?}, missing {:?}",
                report.divergences, report.missing
            ));
        }
        let (al, ar) = (self.view(l), self.view(r));
        // Structure: after a full sync both hold the same snapshots and branch tips;
        // after a pull the local store holds everything the remote does.
        let structure = |v: &SyncedView| {
            let s: BTreeMap<SnapshotId, Option<SnapshotId>> =
                v.snapshots.iter().map(|x| (x.0, x.1)).collect();
            let b: BTreeMap<BranchId, SnapshotId> = v.branches.iter().map(|x| (x.0, x.2)).collect();
            (s, b)
        };
        // The oracle first: its message says the most.
        if let Some(p) = &prediction {
            self.check_prediction(l, r, mode, p, &report, &al, &ar)?;
        }
        let (sl, sr) = (structure(&al), structure(&ar));
        if mode == SyncMode::Both && self.strict() {
            if sl != sr {
                return fail(format!(
                    "sync({l}, {r}): the two stores hold different structure"
                ));
            }
            if without_times(al.clone()) != without_times(ar.clone()) {
                return fail(format!(
                    "sync({l}, {r}): the two stores differ after a full sync (local, remote):\n{}",
                    view_diff(&al, &ar)
                ));
            }
        } else if !sr.0.keys().all(|k| sl.0.contains_key(k))
            || !sr.1.iter().all(|(b, t)| {
                // The local store's tip is the remote's, or (its own branch, extended
                // since) a descendant of it.
                let mut at = sl.1.get(b).copied();
                while let Some(x) = at {
                    if x == *t {
                        return true;
                    }
                    at = sl.0.get(&x).copied().flatten();
                }
                false
            })
        {
            return fail(format!(
                "sync({l}, {r}, pull-only): the local store lacks some of the remote's structure"
            ));
        }
        if let Some(p) = &prediction {
            self.base.update(&al, &ar, &p.wanted);
            if self.workload == Workload::OracleOffBugs {
                self.frozen.extend(p.both_changed.iter().cloned());
            }
        }
        for (id, name, _) in al.branches.iter().chain(&ar.branches) {
            self.had.entry(*id).or_default().insert(name.clone());
        }
        Ok(report)
    }

    #[allow(clippy::too_many_arguments)]
    fn check_prediction(
        &self,
        l: usize,
        r: usize,
        mode: SyncMode,
        p: &Prediction,
        report: &SyncReport,
        al: &SyncedView,
        ar: &SyncedView,
    ) -> Result<(), String> {
        let ctx = format!("sync({l}, {r}, {mode:?})");
        let got = conflict_map(report, self.vs).map_err(|e| format!("{ctx}: {e}"))?;
        let got_keys: BTreeSet<&Key> = got.keys().collect();
        let want_keys: BTreeSet<&Key> = p.conflicts.keys().collect();
        if got_keys != want_keys {
            let extra: Vec<_> = got
                .iter()
                .filter(|(k, _)| !p.conflicts.contains_key(*k))
                .map(|(_, c)| c)
                .collect();
            let missing: Vec<_> = p
                .conflicts
                .iter()
                .filter(|(k, _)| !got.contains_key(*k))
                .collect();
            return fail(format!(
                "{ctx}: conflicts not as the table predicts\nreported, not predicted: {extra:#?}\npredicted, not reported: {missing:#?}"
            ));
        }
        for (k, c) in &got {
            let w = &p.conflicts[k];
            if !w.matches(c) {
                return fail(format!(
                    "{ctx}: conflict {k:?} has other values\n got {c:#?}\nwant {w:#?}"
                ));
            }
        }
        for (who, side, v) in [("local", &p.local, al), ("remote", &p.remote, ar)] {
            if !side.vs.same(&v.volume_set) {
                return fail(format!(
                    "{ctx}: {who} volume set is {:?}, predicted {:?}",
                    v.volume_set, side.vs
                ));
            }
            for (id, _, m) in &v.snapshots {
                match side.snaps.get(id) {
                    Some(w) if w.same(m) => {}
                    w => {
                        return fail(format!(
                            "{ctx}: {who} snapshot {id} is {m:?}, predicted {w:?}"
                        ))
                    }
                }
            }
            let names: BTreeMap<BranchId, String> =
                v.branches.iter().map(|b| (b.0, b.1.clone())).collect();
            if names != side.names {
                return fail(format!(
                    "{ctx}: {who} branch names are {names:?}, predicted {:?}",
                    side.names
                ));
            }
        }
        Ok(())
    }

    fn step(&mut self) -> Result<(), String> {
        let s = self.pick_store();
        match self.rng.gen_range(0..100) {
            0..=11 => self.fork(s),
            12..=31 => self.extend(s),
            32..=43 => self.rename(s),
            44..=53 => self.edit_vs(s),
            54..=68 => self.edit_snap(s),
            69..=72 => self.reopen(s),
            _ => {
                let (mut s, mut r) = (s, self.pick_store());
                if self.workload == Workload::ConvergeStar {
                    // A leaf syncs with the hub, the hub being the remote.
                    (s, r) = (self.rng.gen_range(1..self.nodes.len()), 0);
                }
                while r == s {
                    r = self.pick_store();
                }
                let mode = if self.rng.gen_bool(0.2) {
                    SyncMode::PullOnly
                } else {
                    SyncMode::Both
                };
                self.sync(s, r, mode).map(|_| ())
            }
        }
    }

    /// Editing stopped: every store syncs through store 0 until nothing changes; then
    /// all agree.
    fn settle(&mut self) -> Result<(), String> {
        let mut rounds = 0;
        loop {
            rounds += 1;
            if rounds > 10 {
                return fail("the stores never settle: 10 rounds through the hub".into());
            }
            let mut changed = false;
            for i in 1..self.nodes.len() {
                let r = self.sync(i, 0, SyncMode::Both)?;
                changed |= [&r.pushed, &r.pulled]
                    .into_iter()
                    .flatten()
                    .any(|a| a.changed_anything())
                    || !r.conflicts.is_empty();
            }
            if !changed {
                break;
            }
        }
        self.stats.hub_rounds_max = self.stats.hub_rounds_max.max(rounds);
        let v0 = self.view(0);
        for i in 1..self.nodes.len() {
            let vi = self.view(i);
            let same = if self.unique {
                vi == v0
            } else {
                without_times(vi.clone()) == without_times(v0.clone())
            };
            if !same {
                return fail(format!(
                    "after settling, store {i} differs from store 0:\n{}",
                    view_diff(&vi, &v0)
                ));
            }
        }
        self.stats.snapshots_max = v0.snapshots.len();
        self.stats.branches_max = v0.branches.len();
        // Every store survives a last reopen.
        for i in 0..self.nodes.len() {
            self.reopen(i)?;
        }
        Ok(())
    }
}

fn run_case(seed: u64, ops: u64, workload: Workload, stats: &mut Stats) -> Result<(), String> {
    let mut case = Case::new(seed, workload)?;
    let result = (|| {
        for _ in 0..ops {
            case.step()?;
        }
        case.settle()
    })();
    stats.cases += 1;
    for (k, v) in &case.stats.ops {
        *stats.ops.entry(k).or_default() += v;
    }
    for (k, v) in &case.stats.conflicts {
        *stats.conflicts.entry(k).or_default() += v;
    }
    stats.syncs += case.stats.syncs;
    stats.pull_only += case.stats.pull_only;
    stats.reopens += case.stats.reopens;
    stats.snapshots_max = stats.snapshots_max.max(case.stats.snapshots_max);
    stats.branches_max = stats.branches_max.max(case.stats.branches_max);
    stats.hub_rounds_max = stats.hub_rounds_max.max(case.stats.hub_rounds_max);
    result.map_err(|e| {
        let keep = if std::env::var_os("SYNC_MODEL_TRACE").is_some() {
            usize::MAX
        } else {
            60
        };
        let skip = case.trace.len().saturating_sub(keep);
        format!(
            "{e}\n\ncase seed {seed}, unique values {}; last {} steps:\n{}",
            case.unique,
            case.trace.len() - skip,
            case.trace[skip..].join("\n")
        )
    })
}

fn run(name: &str, workload: Workload) {
    let cases = env_u64("SYNC_MODEL_CASES", 32);
    let ops = env_u64("SYNC_MODEL_OPS", 300);
    let seed = env_u64("SYNC_MODEL_SEED", rand::random());
    let started = Instant::now();
    let mut stats = Stats::default();
    let mut rng = SmallRng::seed_from_u64(seed);
    let only = std::env::var("SYNC_MODEL_CASE")
        .ok()
        .and_then(|v| v.parse().ok());
    for _ in 0..cases {
        let case_seed: u64 = only.unwrap_or_else(|| rng.gen());
        if let Err(e) = run_case(case_seed, ops, workload, &mut stats) {
            panic!("{name}: {e}\n\nreplay the whole run with SYNC_MODEL_SEED={seed}");
        }
    }
    println!(
        "{name}: {} cases of {ops} operations in {:.1?}; {} syncs ({} pull-only), {} reopens, \
         up to {} snapshots and {} branches, up to {} hub rounds; SYNC_MODEL_SEED={seed}",
        stats.cases,
        started.elapsed(),
        stats.syncs,
        stats.pull_only,
        stats.reopens,
        stats.snapshots_max,
        stats.branches_max,
        stats.hub_rounds_max,
    );
    println!("{name}: operations {:?}", stats.ops);
    println!("{name}: conflicts reported {:?}", stats.conflicts);
}

#[test]
#[ignore = "known limitation: stores syncing pairwise in an arbitrary mesh (not through a hub) may disagree after concurrent renames and name clashes; cursors track direct and one-hop exchanges only (see README, Sync)"]
fn three_stores_converge() {
    run("three_stores_converge", Workload::Converge);
}

#[test]
fn three_stores_converge_through_a_hub() {
    run(
        "three_stores_converge_through_a_hub",
        Workload::ConvergeStar,
    );
}

/// A store in a temporary directory (keep the directory alive).
type Opened = (tempfile::TempDir, Store);

fn three_synced() -> (Opened, Opened, Opened, VolumeSetId) {
    let a = store_support::open();
    let b = store_support::open();
    let c = store_support::open();
    let vs = store_support::new_vs(&a.1, "db").id;
    sync(&b.1, &a.1, vs, SyncMode::Both).unwrap();
    sync(&c.1, &a.1, vs, SyncMode::Both).unwrap();
    (a, b, c, vs)
}

/// Only a edits. b gets a's first edit through c; then a edits again and syncs with b:
/// a's second edit must reach b, with no conflict.
#[test]
fn a_single_writers_edit_is_not_lost_through_a_third_store() {
    let ((_da, a), (_db, b), (_dc, c), vs) = three_synced();
    set_description(&a, vs, "d1");
    sync(&c, &a, vs, SyncMode::Both).unwrap();
    sync(&b, &c, vs, SyncMode::Both).unwrap();
    set_description(&a, vs, "d2");
    let r = sync(&a, &b, vs, SyncMode::Both).unwrap();
    assert!(r.conflicts.is_empty(), "{:#?}", r.conflicts);
    for s in [&a, &b] {
        assert_eq!(s.get_volume_set(vs).unwrap().description, "d2");
    }
}

/// c's branch `fix` reaches b; then it clashes at a with a's own `fix` and becomes
/// `fix~…` at a (and at c, which adopts it). b must learn the new name too.
#[test]
fn a_clash_name_reaches_a_third_store() {
    let ((_da, a), (_db, b), (_dc, c), vs) = three_synced();
    store_support::fork(&c, vs, "fix", None, 1);
    sync(&b, &c, vs, SyncMode::Both).unwrap();
    store_support::fork(&a, vs, "fix", None, 1);
    sync(&c, &a, vs, SyncMode::Both).unwrap();
    for _ in 0..3 {
        sync(&b, &a, vs, SyncMode::Both).unwrap();
        sync(&c, &a, vs, SyncMode::Both).unwrap();
    }
    let names = |s: &Store| {
        let mut v: Vec<(BranchId, String)> = s
            .get_branches(&BranchQuery::all(vs))
            .unwrap()
            .into_iter()
            .map(|b| (b.id, b.name))
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&a), names(&c));
    assert_eq!(names(&a), names(&b));
}

#[test]
#[ignore = "known limitation: stores syncing pairwise in an arbitrary mesh (not through a hub) may disagree after concurrent renames and name clashes; cursors track direct and one-hop exchanges only (see README, Sync)"]
fn three_stores_agree_after_every_full_sync() {
    run(
        "three_stores_agree_after_every_full_sync",
        Workload::ConvergeStrict,
    );
}

#[test]
fn conflicts_are_what_the_table_predicts() {
    run("conflicts_are_what_the_table_predicts", Workload::Oracle);
}

#[test]
fn conflicts_are_what_the_table_predicts_off_known_bugs() {
    run(
        "conflicts_are_what_the_table_predicts_off_known_bugs",
        Workload::OracleOffBugs,
    );
}

// ---- Bugs found earlier, each in its smallest form (fixed) ----------------------------------------------

/// Sets the volume set's description (initial: the value read just before).
fn set_description(s: &Store, vs: VolumeSetId, d: &str) {
    let before = s.get_volume_set(vs).unwrap();
    let mut cur = before.clone();
    cur.description = d.into();
    assert!(s.update_volume_set(&cur, Some(&before)).unwrap().is_none());
}

fn two_synced() -> (Opened, Opened, VolumeSetId) {
    let a = store_support::open();
    let b = store_support::open();
    let vs = store_support::new_vs(&a.1, "db").id;
    store_support::fork(&a.1, vs, "master", None, 2);
    sync(&a.1, &b.1, vs, SyncMode::Both).unwrap();
    (a, b, vs)
}

/// a and b both edit, sync (b wins, a adopts); a edits again, b does not: the next sync
/// must carry a's edit to b, with no conflict.
#[test]
fn an_edit_after_a_conflict_travels() {
    let ((_da, a), (_db, b), vs) = two_synced();
    set_description(&a, vs, "a1");
    set_description(&b, vs, "b1");
    let r = sync(&a, &b, vs, SyncMode::Both).unwrap();
    assert_eq!(r.conflicts.len(), 1);
    set_description(&a, vs, "a2");
    let r = sync(&a, &b, vs, SyncMode::Both).unwrap();
    assert!(r.conflicts.is_empty(), "{:#?}", r.conflicts);
    assert_eq!(b.get_volume_set(vs).unwrap().description, "a2");
    assert_eq!(a.get_volume_set(vs).unwrap().description, "a2");
}

/// b forks `dev` while a renames its branch X to `dev`. The push gives b's branch
/// `dev~…` at a; on the pull, b must rename its branch to `dev~…` and then take X's new
/// name `dev`: no clash is left once the batch is applied.
#[test]
fn a_name_given_up_in_the_same_batch_does_not_clash() {
    let ((_da, a), (_db, b), vs) = two_synced();
    let id = |n: u128| BranchId(uuid::Uuid::from_u128(n));
    let (x, y) = (id(1), id(2));
    let root = a.get_tip(vs, "master").unwrap().id;
    a.import_branch(x, "exp", &store_support::chain(vs, Some(root), 1))
        .unwrap();
    sync(&a, &b, vs, SyncMode::Both).unwrap();
    b.import_branch(y, "dev", &store_support::chain(vs, Some(root), 1))
        .unwrap();
    a.rename_branch(vs, "exp", "dev").unwrap();
    let r = sync(&b, &a, vs, SyncMode::Both).unwrap();
    let name = |s: &Store, id: BranchId| s.get_branch(vs, id).unwrap().name;
    assert_eq!(name(&a, x), "dev");
    assert_eq!(name(&b, x), "dev", "{:#?}", r.conflicts);
    assert_eq!(name(&b, y), name(&a, y));
    assert_eq!(r.conflicts.len(), 1, "{:#?}", r.conflicts);
}

/// a and b conflict (b wins, both hold b1); then b sets the value a had, a1. The next
/// sync must leave both with a1: b's edit is the only change since they agreed.
#[test]
fn a_stale_conflict_record_never_reverts_an_edit() {
    let ((_da, a), (_db, b), vs) = two_synced();
    set_description(&a, vs, "a1");
    set_description(&b, vs, "b1");
    sync(&a, &b, vs, SyncMode::Both).unwrap();
    set_description(&b, vs, "a1");
    for _ in 0..3 {
        sync(&a, &b, vs, SyncMode::Both).unwrap();
    }
    assert_eq!(b.get_volume_set(vs).unwrap().description, "a1");
    assert_eq!(a.get_volume_set(vs).unwrap().description, "a1");
}

/// The same with the remote editing after the conflict: no conflict may be reported.
#[test]
fn a_remote_edit_after_a_conflict_is_no_conflict() {
    let ((_da, a), (_db, b), vs) = two_synced();
    set_description(&a, vs, "a1");
    set_description(&b, vs, "b1");
    sync(&a, &b, vs, SyncMode::Both).unwrap();
    set_description(&b, vs, "b2");
    let r = sync(&a, &b, vs, SyncMode::Both).unwrap();
    assert!(r.conflicts.is_empty(), "{:#?}", r.conflicts);
    assert_eq!(a.get_volume_set(vs).unwrap().description, "b2");
}

/// Both sides make the same edit, sync (nothing to do, so no cursor moves); then a edits
/// again: the two agreed on "same", so a's edit must travel without a conflict.
#[test]
fn an_edit_after_equal_edits_travels() {
    let ((_da, a), (_db, b), vs) = two_synced();
    set_description(&a, vs, "same");
    set_description(&b, vs, "same");
    let r = sync(&a, &b, vs, SyncMode::Both).unwrap();
    assert!(r.conflicts.is_empty());
    set_description(&a, vs, "a2");
    let r = sync(&a, &b, vs, SyncMode::Both).unwrap();
    assert!(r.conflicts.is_empty(), "{:#?}", r.conflicts);
    assert_eq!(b.get_volume_set(vs).unwrap().description, "a2");
}
