//! `mdslog generate`: a synthetic but realistic workload. Volume sets with a master branch
//! each; most snapshots land on a few busy branches (deep chains); forks branch off any
//! snapshot, mostly recent ones; branches get renamed, volume sets and snapshots edited.
//!
//! Everything the workload chooses (names, shapes, sizes, volume set and snapshot ids)
//! follows from the seed; branch ids and record times do not. Writes are buffered and
//! flushed at the end (and every so often), so it runs at the log's full speed.

use std::time::Instant;

use mdslog::{
    Attrs, BlobId, Durability, LogOptions, Snapshot, SnapshotId, Store, StoreOptions, Timestamp,
    VolumeSet, VolumeSetId,
};
use serde_json::json;

use crate::cli::GenerateArgs;
use crate::output::{json, out, plural, progress, thousands, CmdResult, Fail, EXIT_OK};

/// SplitMix64: small, fast, and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() as u128 * n as u128) >> 64) as u64
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    /// Skewed towards 0: index `n * u^k`.
    fn skewed(&mut self, n: usize, k: i32) -> usize {
        ((n as f64 * self.unit().powi(k)) as usize).min(n - 1)
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }
    fn uuid(&mut self) -> uuid::Uuid {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.next().to_le_bytes());
        b[8..].copy_from_slice(&self.next().to_le_bytes());
        uuid::Builder::from_random_bytes(b).into_uuid()
    }
}

const SYSTEMS: [&str; 12] = [
    "orders", "billing", "users", "catalog", "events", "search", "ledger", "metrics", "images",
    "sessions", "audit", "ml",
];
const KINDS: [&str; 5] = ["db", "warehouse", "cache", "store", "index"];
const TEAMS: [&str; 6] = ["acme", "payments", "platform", "data", "growth", "infra"];
const TOPICS: [&str; 8] = [
    "feature",
    "fix",
    "exp",
    "release",
    "hotfix",
    "migration",
    "perf",
    "backfill",
];
const WHAT: [&str; 8] = [
    "nightly",
    "pre-deploy",
    "hourly",
    "manual",
    "post-migration",
    "backup",
    "test run",
    "load",
];

/// Snapshots between two flushes of the buffered log.
const FLUSH_EVERY: u64 = 100_000;

struct GenBranch {
    vs: usize,
    name: String,
    tip: SnapshotId,
    depth: u64,
}

struct GenVs {
    id: VolumeSetId,
    /// Every snapshot with its depth.
    snapshots: Vec<(SnapshotId, u64)>,
    size: u64,
}

struct Workload {
    rng: Rng,
    clock: i64,
    counter: u64,
    vss: Vec<GenVs>,
    branches: Vec<GenBranch>,
    renames: u64,
    edits: u64,
}

impl Workload {
    fn snapshot(
        &mut self,
        vs: usize,
        parent: Option<SnapshotId>,
        branch: &str,
        depth: u64,
    ) -> Snapshot {
        let r = &mut self.rng;
        let mut s = Snapshot::new(SnapshotId(r.uuid()), self.vss[vs].id, parent);
        self.clock += 1 + r.below(300_000_000) as i64; // up to 5 minutes apart
        s.created = Timestamp(self.clock);
        s.last_modified = s.created;
        // Log-uniform sizes from 1 MiB to 64 GiB.
        s.size = (2f64.powf(20.0 + 16.0 * r.unit())) as u64;
        if r.chance(0.8) {
            s.blob = BlobId(format!("blob-{:016x}", r.next()));
        }
        s.name = format!("{} {branch} #{depth}", r.pick(&WHAT));
        if r.chance(0.2) {
            s.attrs.insert("build".into(), r.below(100_000).to_string());
        }
        if r.chance(0.05) {
            s.description = format!("taken before {} {}", r.pick(&TOPICS), r.below(1000));
        }
        s.creator = r.pick(&TEAMS).to_string();
        s.owner = s.creator.clone();
        self.vss[vs].size += s.size;
        s
    }
}

pub fn generate(a: &GenerateArgs) -> CmdResult {
    let dir = &a.store.dir;
    let (v, n, b) = (a.volume_sets, a.snapshots, a.branches);
    if v == 0 {
        return Err(Fail::usage("--volume-sets must be at least 1"));
    }
    if b < v {
        return Err(Fail::usage(format!(
            "--branches ({b}) must be at least --volume-sets ({v}): every volume set has a master branch"
        )));
    }
    if n < b {
        return Err(Fail::usage(format!(
            "--snapshots ({n}) must be at least --branches ({b}): every branch starts with a snapshot of its own"
        )));
    }
    let options = StoreOptions {
        log: LogOptions {
            durability: Durability::Buffered,
            ..LogOptions::default()
        },
        actor: Some(a.actor.name()),
    };
    let store = Store::open(dir, options).map_err(|e| Fail::store(e, dir))?;
    let before = store.counts().map_err(|e| Fail::store(e, dir))?;
    let first_lsn = store.durable_lsn().next();
    let started = Instant::now();
    let err = |e| Fail::store(e, dir);
    let mut w = Workload {
        rng: Rng(a.seed ^ 0x6d64_736c_6f67),
        clock: Timestamp::now().0 - (n as i64) * 300_000_000,
        counter: 0,
        vss: Vec::new(),
        branches: Vec::new(),
        renames: 0,
        edits: 0,
    };
    let pb = progress(n, "snapshots");
    let mut made = 0u64;
    let mut flushed = 0u64;

    // Volume sets, each with a master branch on a root snapshot.
    for i in 0..v {
        let r = &mut w.rng;
        let mut vs = VolumeSet::new(
            VolumeSetId(r.uuid()),
            format!("{}-{}-{i}", r.pick(&SYSTEMS), r.pick(&KINDS)),
        );
        vs.prefix = r.pick(&TEAMS).to_string();
        vs.description = format!("{} data of the {} team", r.pick(&SYSTEMS), vs.prefix);
        vs.attrs = Attrs::from([
            (
                "tier".to_string(),
                r.pick(&["gold", "silver", "bronze"]).to_string(),
            ),
            ("seed".to_string(), a.seed.to_string()),
        ]);
        vs.owner = vs.prefix.clone();
        vs.creator = vs.prefix.clone();
        vs.created = Timestamp(w.clock);
        vs.last_modified = vs.created;
        store.import_volume_set(&vs).map_err(|e| match e {
            mdslog::Error::VolumeSetAlreadyExists(_) => Fail::usage(format!(
                "{e}: this store already holds the workload of seed {}; give another --seed",
                a.seed
            )),
            e => err(e),
        })?;
        w.vss.push(GenVs {
            id: vs.id,
            snapshots: Vec::new(),
            size: 0,
        });
        let root = w.snapshot(i as usize, None, "master", 1);
        store
            .fork_branch("master", std::slice::from_ref(&root))
            .map_err(err)?;
        w.vss[i as usize].snapshots.push((root.id, 1));
        w.branches.push(GenBranch {
            vs: i as usize,
            name: "master".into(),
            tip: root.id,
            depth: 1,
        });
        made += 1;
    }
    pb.set_position(made);

    let mut forks_left = b - v;
    let mut extends_left = n - v - forks_left;
    while forks_left + extends_left > 0 {
        // Forks spread evenly over the run: the chance of one is its share of what is left.
        let fork = w.rng.below(forks_left + extends_left) < forks_left;
        if fork {
            let vs = w.rng.below(w.vss.len() as u64) as usize;
            let snaps = &w.vss[vs].snapshots;
            // Mostly off a recent snapshot, sometimes off an old one.
            let at = snaps.len() - 1 - w.rng.skewed(snaps.len(), 3);
            let (parent, parent_depth) = snaps[at];
            let depth = parent_depth + 1;
            w.counter += 1;
            let name = format!("{}-{}", w.rng.pick(&TOPICS), w.counter);
            let s = w.snapshot(vs, Some(parent), &name, depth);
            store
                .fork_branch(&name, std::slice::from_ref(&s))
                .map_err(err)?;
            w.vss[vs].snapshots.push((s.id, depth));
            w.branches.push(GenBranch {
                vs,
                name,
                tip: s.id,
                depth,
            });
            forks_left -= 1;
            made += 1;
        } else {
            // A few busy branches get most snapshots: deep chains.
            let bi = w.rng.skewed(w.branches.len(), 4);
            let len = (1 + w.rng.below(8)).min(extends_left);
            let (vs, mut tip, mut depth, name) = (
                w.branches[bi].vs,
                w.branches[bi].tip,
                w.branches[bi].depth,
                w.branches[bi].name.clone(),
            );
            let mut chain = Vec::with_capacity(len as usize);
            for _ in 0..len {
                depth += 1;
                let s = w.snapshot(vs, Some(tip), &name, depth);
                tip = s.id;
                w.vss[vs].snapshots.push((s.id, depth));
                chain.push(s);
            }
            store.extend_branch(&chain).map_err(err)?;
            w.branches[bi].tip = tip;
            w.branches[bi].depth = depth;
            extends_left -= len;
            made += len;
        }
        pb.set_position(made);

        // Now and then: a rename, an edit of a volume set or of a snapshot.
        if w.branches.len() > w.vss.len() && w.rng.chance(0.03) {
            let candidates: Vec<usize> = (0..w.branches.len())
                .filter(|i| w.branches[*i].name != "master")
                .collect();
            let bi = candidates[w.rng.below(candidates.len() as u64) as usize];
            w.counter += 1;
            let new = format!("{}-{}", w.rng.pick(&TOPICS), w.counter);
            let vs = w.vss[w.branches[bi].vs].id;
            store
                .rename_branch(vs, &w.branches[bi].name, &new)
                .map_err(err)?;
            w.branches[bi].name = new;
            w.renames += 1;
        }
        if w.rng.chance(0.01) {
            let vi = w.rng.below(w.vss.len() as u64) as usize;
            let mut cur = store.get_volume_set(w.vss[vi].id).map_err(err)?;
            cur.attrs
                .insert("edited".into(), w.rng.below(1000).to_string());
            cur.last_modified = Timestamp(w.clock);
            store.update_volume_set(&cur, None).map_err(err)?;
            store
                .set_volume_set_size(cur.id, w.vss[vi].size)
                .map_err(err)?;
            w.edits += 2;
        }
        if w.rng.chance(0.02) {
            let vi = w.rng.below(w.vss.len() as u64) as usize;
            let snaps = &w.vss[vi].snapshots;
            let id = snaps[w.rng.below(snaps.len() as u64) as usize].0;
            let mut s = store.get_snapshot(id).map_err(err)?;
            s.attrs.insert(
                "checked".into(),
                w.rng.pick(&["ok", "slow", "flaky"]).to_string(),
            );
            store.update_snapshot(&s, None).map_err(err)?;
            w.edits += 1;
        }
        // Bound what a crash in the middle of a long run could lose.
        if made >= flushed + FLUSH_EVERY {
            store.flush().map_err(err)?;
            flushed = made;
        }
    }
    store.flush().map_err(err)?;
    pb.finish_and_clear();
    let after = store.counts().map_err(err)?;
    let last_lsn = store.durable_lsn();
    store.close().map_err(err)?;
    let secs = started.elapsed().as_secs_f64();
    let records = last_lsn.0 + 1 - first_lsn.0;
    if a.json {
        json(&json!({
            "dir": dir.display().to_string(),
            "seed": a.seed,
            "volume_sets": after.volume_sets - before.volume_sets,
            "snapshots": after.snapshots - before.snapshots,
            "branches": after.branches - before.branches,
            "renames": w.renames,
            "edits": w.edits,
            "records": records,
            "first_lsn": first_lsn.0,
            "last_lsn": last_lsn.0,
            "counts": after,
        }))?;
    } else {
        let deepest = w.branches.iter().map(|b| b.depth).max().unwrap_or(0);
        out(format!(
            "generated {}, {} and {} (deepest branch: depth {deepest}), {} and {} in {:.2} s",
            plural(
                after.volume_sets - before.volume_sets,
                "volume set",
                "volume sets"
            ),
            plural(after.snapshots - before.snapshots, "snapshot", "snapshots"),
            plural(after.branches - before.branches, "branch", "branches"),
            plural(w.renames, "rename", "renames"),
            plural(w.edits, "edit", "edits"),
            secs
        ));
        out(format!(
            "{}: {} records, LSN {first_lsn} … {last_lsn} ({:.0} records/s)",
            dir.display(),
            thousands(records),
            records as f64 / secs.max(1e-9)
        ));
    }
    Ok(EXIT_OK)
}
