//! This store against an SQLite implementation of the original schema, side by side in one
//! run (issue 7): the same operations on the same fixture shape (one volume set, 1,000
//! branches, 100k snapshots grown round-robin over the branches), on
//!
//! - `mdslog`: this crate, `Durability::Sync` (the default);
//! - `sqlite-original`: the original's configuration: rollback journal
//!   (`journal_mode=DELETE`), `synchronous=FULL`, `locking_mode=EXCLUSIVE`;
//! - `sqlite-wal`: `journal_mode=WAL`, `synchronous=FULL`.
//!
//! Operations: durable extend from one thread (one transaction per extend in SQLite);
//! batched extends (64 and 1,000 per commit: one `extend_branch` record of a chain, one
//! SQLite transaction of 64 / 1,000 extends); `get_tip`; `get_branches` of the 1,000
//! branches with tip snapshot and child count; durable extend from 64 threads.
//!
//! After each group it prints a `SUMMARY` line with the medians (computed here from the
//! samples criterion measured) and the ratio mdslog/SQLite of the medians (below 1 =
//! mdslog is faster), and its inverse, the speed-up.
//!
//! `MDSLOG_BENCH_SQLITE_SNAPSHOTS` overrides the size of the fixture (default 100,000).
//!
//! The SQLite schema follows `reference-semantics.md`: text UUID primary keys, attrs in a
//! separate table keyed by object id, volume-set name/prefix/description as reserved attrs.
//! Snapshot name and description are columns here (the reference does not say where the
//! original kept them; the benchmark snapshots have empty ones and no attrs, so no attrs
//! rows are written or read for them on either side). Indexes not in the original are
//! marked in `SCHEMA`; each of them only helps SQLite's side.

mod common;

use std::cell::RefCell;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{bench_dir, branch_name, chain, one_volume_set, options, snap};
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, SamplingMode};
use mdslog::{BranchQuery, Durability, Snapshot, SnapshotId, Store, VolumeSetId};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

/// Branches in the fixture.
const BRANCHES: usize = 1000;
/// Samples of the slow (durable, batched, 64-thread) cases.
const SLOW_SAMPLES: usize = 10;
/// Samples of the query cases.
const QUERY_SAMPLES: usize = 20;
/// Threads of the concurrent durable extend.
const THREADS: usize = 64;
/// Extends per thread per iteration of the concurrent case.
const PER_THREAD: usize = 4;

const SCHEMA: &str = "
CREATE TABLE volumesets (
    id TEXT PRIMARY KEY,
    creator TEXT NOT NULL,
    creator_name TEXT NOT NULL,
    owner TEXT NOT NULL,
    owner_name TEXT NOT NULL,
    creation_time INTEGER NOT NULL,
    last_modified_time INTEGER NOT NULL,
    size INTEGER NOT NULL
);
CREATE TABLE snapshots (
    id TEXT PRIMARY KEY,
    volumeset_id TEXT NOT NULL,
    parent_id TEXT,
    depth INTEGER NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    creator TEXT NOT NULL,
    creator_name TEXT NOT NULL,
    owner TEXT NOT NULL,
    owner_name TEXT NOT NULL,
    creation_time INTEGER NOT NULL,
    last_modified_time INTEGER NOT NULL,
    size INTEGER NOT NULL,
    blob_id TEXT NOT NULL
);
CREATE TABLE branches (
    id TEXT PRIMARY KEY,
    volumeset_id TEXT NOT NULL,
    name TEXT NOT NULL,
    tip_id TEXT NOT NULL
);
CREATE TABLE attrs (
    id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (id, key)
);
-- NOT in the original schema: without it the child-count subquery of get_branches scans
-- every snapshot once per branch (minutes at 100k snapshots and 1,000 branches).
CREATE INDEX snapshots_parent ON snapshots(parent_id);
-- The original's branches(volumeset_id) index, widened here by the name so that get_tip
-- (volume set + name) is one index probe rather than a scan of the volume set's branches.
CREATE INDEX branches_volumeset ON branches(volumeset_id, name);
-- NOT in the original schema (an assumption, in SQLite's favour): the extend's check that
-- the parent is the tip of a branch is an index probe rather than a scan of all branches.
CREATE INDEX branches_tip ON branches(tip_id);
";

const SNAP_COLS: &str = "s.id, s.volumeset_id, s.parent_id, s.depth, s.name, s.description, \
     s.creator, s.creator_name, s.owner, s.owner_name, s.creation_time, \
     s.last_modified_time, s.size, s.blob_id";

const INSERT_SNAPSHOT: &str = "INSERT INTO snapshots (id, volumeset_id, parent_id, depth, \
     name, description, creator, creator_name, owner, owner_name, creation_time, \
     last_modified_time, size, blob_id) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

/// A snapshot row as SQLite stores it (text ids).
#[derive(Debug)]
struct SnapRow {
    id: String,
    volume_set: String,
    parent: Option<String>,
    depth: i64,
    name: String,
    description: String,
    creator: String,
    creator_name: String,
    owner: String,
    owner_name: String,
    created: i64,
    modified: i64,
    size: i64,
    blob: String,
}

impl SnapRow {
    fn from_snapshot(s: &Snapshot) -> SnapRow {
        SnapRow {
            id: s.id.to_string(),
            volume_set: s.volume_set.to_string(),
            parent: s.parent.map(|p| p.to_string()),
            depth: 0,
            name: s.name.clone(),
            description: s.description.clone(),
            creator: s.creator.clone(),
            creator_name: s.creator_name.clone(),
            owner: s.owner.clone(),
            owner_name: s.owner_name.clone(),
            created: s.created.0,
            modified: s.last_modified.0,
            size: s.size as i64,
            blob: s.blob.0.clone(),
        }
    }

    /// Reads the `SNAP_COLS` columns starting at `at`.
    fn read(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<SnapRow> {
        Ok(SnapRow {
            id: r.get(at)?,
            volume_set: r.get(at + 1)?,
            parent: r.get(at + 2)?,
            depth: r.get(at + 3)?,
            name: r.get(at + 4)?,
            description: r.get(at + 5)?,
            creator: r.get(at + 6)?,
            creator_name: r.get(at + 7)?,
            owner: r.get(at + 8)?,
            owner_name: r.get(at + 9)?,
            created: r.get(at + 10)?,
            modified: r.get(at + 11)?,
            size: r.get(at + 12)?,
            blob: r.get(at + 13)?,
        })
    }

    fn insert(&self, c: &Connection, depth: i64) {
        let mut st = c.prepare_cached(INSERT_SNAPSHOT).unwrap();
        st.execute(params![
            self.id,
            self.volume_set,
            self.parent,
            depth,
            self.name,
            self.description,
            self.creator,
            self.creator_name,
            self.owner,
            self.owner_name,
            self.created,
            self.modified,
            self.size,
            self.blob
        ])
        .unwrap();
    }
}

/// A branch row with its tip snapshot and the tip's child count.
#[derive(Debug)]
struct BranchRow {
    id: String,
    name: String,
    tip: SnapRow,
    children: i64,
}

#[derive(Clone, Copy, PartialEq)]
enum Config {
    Original,
    Wal,
}

impl Config {
    fn label(self) -> &'static str {
        match self {
            Config::Original => "sqlite-original",
            Config::Wal => "sqlite-wal",
        }
    }
}

/// Runs a pragma, returning its answer (if it has one).
fn pragma(c: &Connection, p: &str) -> Option<String> {
    c.query_row(&format!("PRAGMA {p}"), [], |r| {
        r.get::<_, rusqlite::types::Value>(0)
    })
    .optional()
    .unwrap()
    .map(|v| match v {
        rusqlite::types::Value::Text(s) => s,
        other => format!("{other:?}"),
    })
}

/// A connection in the given configuration.
fn open_sqlite(path: &Path, config: Config) -> Connection {
    let c = Connection::open(path).unwrap();
    c.busy_timeout(Duration::from_secs(60)).unwrap();
    match config {
        Config::Original => {
            assert_eq!(pragma(&c, "journal_mode=DELETE").as_deref(), Some("delete"));
            pragma(&c, "synchronous=FULL");
            assert_eq!(
                pragma(&c, "locking_mode=EXCLUSIVE").as_deref(),
                Some("exclusive")
            );
        }
        Config::Wal => {
            assert_eq!(pragma(&c, "journal_mode=WAL").as_deref(), Some("wal"));
            pragma(&c, "synchronous=FULL");
        }
    }
    assert_eq!(pragma(&c, "synchronous").as_deref(), Some("Integer(2)"));
    c
}

/// One extend in an open transaction: check the parent is the tip of a branch (and read
/// its depth), insert the snapshot, move the branch tip.
fn extend_in_tx(c: &Connection, row: &SnapRow) {
    let parent = row.parent.as_deref().expect("an extend has a parent");
    let (branch, depth): (String, i64) = c
        .prepare_cached(
            "SELECT b.id, s.depth FROM branches b JOIN snapshots s ON s.id = b.tip_id \
             WHERE b.tip_id = ?1",
        )
        .unwrap()
        .query_row([parent], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .unwrap()
        .expect("parent is not the tip of a branch: use fork");
    row.insert(c, depth + 1);
    c.prepare_cached("UPDATE branches SET tip_id = ?1 WHERE id = ?2")
        .unwrap()
        .execute(params![row.id, branch])
        .unwrap();
}

/// `rows.len()` extends (a chain) in one transaction.
fn sqlite_extend(c: &mut Connection, rows: &[SnapRow]) {
    let tx = c
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    for r in rows {
        extend_in_tx(&tx, r);
    }
    tx.commit().unwrap();
}

fn sqlite_get_tip(c: &Connection, vs: &str, name: &str) -> SnapRow {
    c.prepare_cached(&format!(
        "SELECT {SNAP_COLS} FROM branches b JOIN snapshots s ON s.id = b.tip_id \
         WHERE b.volumeset_id = ?1 AND b.name = ?2"
    ))
    .unwrap()
    .query_row([vs, name], |r| SnapRow::read(r, 0))
    .unwrap()
}

fn sqlite_get_branches(c: &Connection, vs: &str) -> Vec<BranchRow> {
    let mut st = c
        .prepare_cached(&format!(
            "SELECT b.id, b.name, \
             (SELECT COUNT(*) FROM snapshots c WHERE c.parent_id = s.id), {SNAP_COLS} \
             FROM branches b JOIN snapshots s ON s.id = b.tip_id \
             WHERE b.volumeset_id = ?1"
        ))
        .unwrap();
    let rows = st
        .query_map([vs], |r| {
            Ok(BranchRow {
                id: r.get(0)?,
                name: r.get(1)?,
                children: r.get(2)?,
                tip: SnapRow::read(r, 3)?,
            })
        })
        .unwrap();
    rows.map(|r| r.unwrap()).collect()
}

/// The fixture in SQLite, built in one fast transaction (no fsyncs) at `path`: the same
/// shape as `common::one_volume_set` (root on "trunk", one fork of the root per other
/// branch, then extends round-robin). Returns the volume set and the branch tips.
fn build_sqlite(path: &Path, branches: usize, snapshots: usize) -> (VolumeSetId, Vec<SnapshotId>) {
    let mut c = Connection::open(path).unwrap();
    pragma(&c, "synchronous=OFF");
    c.execute_batch(SCHEMA).unwrap();
    let vs = VolumeSetId::random();
    let vss = vs.to_string();
    let tx = c.transaction().unwrap();
    let now = mdslog::Timestamp::now().0;
    tx.execute(
        "INSERT INTO volumesets VALUES (?1, '', '', '', '', ?2, ?2, 0)",
        params![vss, now],
    )
    .unwrap();
    for (k, v) in [
        ("$$$CHQ$$$NAME", "bench"),
        ("$$$CHQ$$$PREFIX", ""),
        ("$$$CHQ$$$DESC", ""),
    ] {
        tx.execute("INSERT INTO attrs VALUES (?1, ?2, ?3)", params![vss, k, v])
            .unwrap();
    }
    let add_branch = |tx: &Connection, b: usize, tip: &SnapRow| {
        tx.execute(
            "INSERT INTO branches VALUES (?1, ?2, ?3, ?4)",
            params![
                SnapshotId::random().to_string(),
                vss,
                branch_name(b),
                tip.id
            ],
        )
        .unwrap();
    };
    let root = snap(vs, None);
    let root_row = SnapRow::from_snapshot(&root);
    root_row.insert(&tx, 1);
    add_branch(&tx, 0, &root_row);
    let mut tips = vec![(root.id, 1i64)];
    for b in 1..branches {
        let s = snap(vs, Some(root.id));
        let row = SnapRow::from_snapshot(&s);
        row.insert(&tx, 2);
        add_branch(&tx, b, &row);
        tips.push((s.id, 2));
    }
    for i in 0..snapshots.saturating_sub(branches) {
        let t = i % tips.len();
        let s = snap(vs, Some(tips[t].0));
        let row = SnapRow::from_snapshot(&s);
        row.insert(&tx, tips[t].1 + 1);
        tx.prepare_cached("UPDATE branches SET tip_id = ?1 WHERE tip_id = ?2")
            .unwrap()
            .execute(params![row.id, tips[t].0.to_string()])
            .unwrap();
        tips[t] = (s.id, tips[t].1 + 1);
    }
    tx.commit().unwrap();
    c.execute_batch("ANALYZE").unwrap();
    drop(c);
    (vs, tips.into_iter().map(|t| t.0).collect())
}

/// One SQLite contender: a connection (behind a mutex so that the 64-thread case of the
/// exclusive configuration can share it) and its branch tips.
struct Sql {
    config: Config,
    path: PathBuf,
    conn: Mutex<Connection>,
    vs: VolumeSetId,
    vss: String,
    tips: Vec<SnapshotId>,
}

/// Per-iteration times of the samples criterion measured: the routine records each call
/// (warm-up included); the last `samples` calls are the measurement.
#[derive(Default)]
struct Samples(RefCell<Vec<Duration>>);

impl Samples {
    fn record(&self, total: Duration, iters: u64) {
        self.0.borrow_mut().push(total / iters.max(1) as u32);
    }

    fn median(&self, samples: usize) -> Duration {
        let all = self.0.borrow();
        let mut v: Vec<Duration> = all[all.len().saturating_sub(samples)..].to_vec();
        v.sort();
        match v.len() {
            0 => Duration::ZERO,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2,
        }
    }
}

/// Benches `f` (given `iters`, returns the time it measured) and records its samples.
fn bench(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    samples: &Samples,
    mut f: impl FnMut(u64) -> Duration,
) {
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let t = f(iters);
            samples.record(t, iters);
            t
        })
    });
}

/// Prints the group's `SUMMARY` line: medians per iteration (`ops` operations each), the
/// operations per second, and mdslog/SQLite of the medians.
fn summary(what: &str, ops: usize, m: Duration, o: Duration, w: Duration) {
    let per_s = |d: Duration| ops as f64 / d.as_secs_f64();
    let ratio = |d: Duration| m.as_secs_f64() / d.as_secs_f64();
    eprintln!(
        "\nSUMMARY {what}: mdslog {m:.3?} ({:.0} ops/s), sqlite-original {o:.3?} ({:.0} ops/s), \
         sqlite-wal {w:.3?} ({:.0} ops/s); mdslog/original = {:.4} ({:.1}x faster), \
         mdslog/wal = {:.4} ({:.1}x faster)\n",
        per_s(m),
        per_s(o),
        per_s(w),
        ratio(o),
        1.0 / ratio(o),
        ratio(w),
        1.0 / ratio(w),
    );
}

/// A measurement time that makes criterion take one iteration per sample (flat sampling)
/// for a routine of about `one` (criterion then warns that it cannot fit the samples).
fn flat_time(one: Duration, samples: usize) -> Duration {
    (one * samples as u32 / 2).max(Duration::from_millis(10))
}

/// A flat-sampling measurement time for a routine of about `one` that adds `per` snapshots:
/// enough iterations per sample for about 50 ms, at least 1, at most 100, and at most
/// 50,000 snapshots added over the samples (both sides stay near the fixture's size).
fn bounded_time(one: Duration, per: usize) -> Duration {
    let cap = (50_000 / (per * SLOW_SAMPLES)).clamp(1, 100) as f64;
    let k = (Duration::from_millis(50).as_secs_f64() / one.as_secs_f64().max(1e-9)).clamp(1.0, cap);
    flat_time(one.mul_f64(k), SLOW_SAMPLES) * 2
}

/// Runs `f` 6 times untimed (a warm-up) and returns the median of the last 5 of its times.
fn estimate(mut f: impl FnMut() -> Duration) -> Duration {
    f();
    let mut v: Vec<Duration> = (0..5).map(|_| f()).collect();
    v.sort();
    v[2]
}

/// `sync(1)`, untimed, before each durable case: dirty pages left by the previous case
/// (the other contender's writes) would otherwise slow this case's fsyncs.
fn sync_all() {
    let _ = std::process::Command::new("sync").status();
}

fn sqlite_benches(c: &mut Criterion) {
    let n: usize = std::env::var("MDSLOG_BENCH_SQLITE_SNAPSHOTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let branches = BRANCHES.min(n).max(THREADS);
    let names: Vec<String> = (0..branches).map(branch_name).collect();

    // The fixture: mdslog (built buffered, reopened with the default Durability::Sync).
    let mdir = bench_dir("sqlite-vs-mdslog");
    let t = Instant::now();
    let (store, vs, mut mtips) = one_volume_set(&mdir, branches, n);
    store.close().unwrap();
    let store = Arc::new(Store::open(&mdir, options(Durability::Sync)).unwrap());
    eprintln!(
        "mdslog fixture: {n} snapshots, {branches} branches, built and reopened in {:.2?}",
        t.elapsed()
    );

    // The fixture in SQLite, built once and copied for each configuration.
    let sdir = bench_dir("sqlite-vs-sqlite");
    std::fs::create_dir_all(&sdir).unwrap();
    let built = sdir.join("fixture.db");
    let t = Instant::now();
    let (svs, stips) = build_sqlite(&built, branches, n);
    eprintln!(
        "sqlite fixture: {n} snapshots, {branches} branches, built in {:.2?}, {} bytes",
        t.elapsed(),
        std::fs::metadata(&built).unwrap().len()
    );
    let mut sqls: Vec<Sql> = [Config::Original, Config::Wal]
        .into_iter()
        .map(|config| {
            let path = sdir.join(format!("{}.db", config.label()));
            std::fs::copy(&built, &path).unwrap();
            let conn = open_sqlite(&path, config);
            Sql {
                config,
                path,
                conn: Mutex::new(conn),
                vs: svs,
                vss: svs.to_string(),
                tips: stips.clone(),
            }
        })
        .collect();
    std::fs::remove_file(&built).unwrap();

    // Sanity: both sides answer the same shape.
    let mb = store.get_branches(&BranchQuery::all(vs)).unwrap();
    assert_eq!(mb.len(), branches);
    for s in &sqls {
        let c = s.conn.lock().unwrap();
        let sb = sqlite_get_branches(&c, &s.vss);
        assert_eq!(sb.len(), branches);
        let trunk = sb.iter().find(|b| b.name == "trunk").unwrap();
        assert_eq!(trunk.tip.volume_set, s.vss);
        assert!(!trunk.id.is_empty());
        let mtrunk = mb.iter().find(|b| b.name == "trunk").unwrap();
        let mt = mtrunk.tip_snapshot.as_ref().unwrap();
        assert_eq!(trunk.tip.depth, mt.depth as i64);
        assert_eq!(trunk.children, mt.num_children as i64);
        let tip = sqlite_get_tip(&c, &s.vss, "trunk");
        assert_eq!(tip.id, trunk.tip.id);
        assert_eq!(tip.id, s.tips[0].to_string());
    }

    // 1. get_tip, cycling over the branch names.
    let ms = Samples::default();
    let ss = [Samples::default(), Samples::default()];
    let mut g = c.benchmark_group("sqlite_get_tip");
    g.sample_size(QUERY_SAMPLES)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let mut i = 0;
    bench(&mut g, "mdslog", &ms, |iters| {
        let t = Instant::now();
        for _ in 0..iters {
            i = (i + 1) % names.len();
            black_box(store.get_tip(vs, &names[i]).unwrap());
        }
        t.elapsed()
    });
    for (s, samples) in sqls.iter().zip(&ss) {
        let c = s.conn.lock().unwrap();
        let mut i = 0;
        bench(&mut g, s.config.label(), samples, |iters| {
            let t = Instant::now();
            for _ in 0..iters {
                i = (i + 1) % names.len();
                black_box(sqlite_get_tip(&c, &s.vss, &names[i]));
            }
            t.elapsed()
        });
    }
    g.finish();
    summary(
        &format!("get_tip ({n} snapshots, {branches} branches)"),
        1,
        ms.median(QUERY_SAMPLES),
        ss[0].median(QUERY_SAMPLES),
        ss[1].median(QUERY_SAMPLES),
    );

    // 2. get_branches of the volume set: tip snapshot and its child count per branch.
    let ms = Samples::default();
    let ss = [Samples::default(), Samples::default()];
    let mut g = c.benchmark_group("sqlite_get_branches");
    g.sample_size(QUERY_SAMPLES)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    bench(&mut g, "mdslog", &ms, |iters| {
        let t = Instant::now();
        for _ in 0..iters {
            black_box(store.get_branches(&BranchQuery::all(vs)).unwrap());
        }
        t.elapsed()
    });
    for (s, samples) in sqls.iter().zip(&ss) {
        let c = s.conn.lock().unwrap();
        bench(&mut g, s.config.label(), samples, |iters| {
            let t = Instant::now();
            for _ in 0..iters {
                black_box(sqlite_get_branches(&c, &s.vss));
            }
            t.elapsed()
        });
    }
    g.finish();
    summary(
        &format!("get_branches of {branches} branches with tip and child count ({n} snapshots)"),
        1,
        ms.median(QUERY_SAMPLES),
        ss[0].median(QUERY_SAMPLES),
        ss[1].median(QUERY_SAMPLES),
    );

    // 3. Durable extends, one thread, round-robin over the branches; then batched: a chain
    //    of 64 / 1,000 on one branch per commit.
    for per_commit in [1usize, 64, 1000] {
        let ms = Samples::default();
        let ss = [Samples::default(), Samples::default()];
        let mut g = c.benchmark_group(format!("sqlite_extend_{per_commit}_per_commit"));
        // Flat sampling, a bounded number of iterations per sample: every iteration adds
        // snapshots, and an unbounded count (criterion's linear sampling of a fast case)
        // would grow one side's store far beyond the other's.
        g.sample_size(SLOW_SAMPLES)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_millis(1));
        let mut i = 0;
        let mut extend_mdslog = || {
            i = (i + 1) % mtips.len();
            let snaps = chain(vs, mtips[i], per_commit);
            let t = Instant::now();
            store.extend_branch(&snaps).unwrap();
            let d = t.elapsed();
            mtips[i] = snaps.last().unwrap().id;
            d
        };
        sync_all();
        let one = estimate(&mut extend_mdslog);
        g.measurement_time(bounded_time(one, per_commit));
        bench(&mut g, "mdslog", &ms, |iters| {
            (0..iters).map(|_| extend_mdslog()).sum()
        });
        for (s, samples) in sqls.iter_mut().zip(&ss) {
            let label = s.config.label();
            let (svs, tips, conn) = (s.vs, &mut s.tips, &s.conn);
            let mut conn = conn.lock().unwrap();
            let mut i = 0;
            let mut extend_sqlite = || {
                i = (i + 1) % tips.len();
                let snaps = chain(svs, tips[i], per_commit);
                let rows: Vec<SnapRow> = snaps.iter().map(SnapRow::from_snapshot).collect();
                let t = Instant::now();
                sqlite_extend(&mut conn, &rows);
                let d = t.elapsed();
                tips[i] = snaps.last().unwrap().id;
                d
            };
            sync_all();
            let one = estimate(&mut extend_sqlite);
            g.measurement_time(bounded_time(one, per_commit));
            bench(&mut g, label, samples, |iters| {
                (0..iters).map(|_| extend_sqlite()).sum()
            });
        }
        g.finish();
        let what = if per_commit == 1 {
            "durable extend_branch, one thread, one extend per commit".to_string()
        } else {
            format!("durable batched extends, {per_commit} per commit (time per commit)")
        };
        summary(
            &what,
            per_commit,
            ms.median(SLOW_SAMPLES),
            ss[0].median(SLOW_SAMPLES),
            ss[1].median(SLOW_SAMPLES),
        );
    }

    // 4. Durable extends from 64 threads, each on its own branch, PER_THREAD extends each
    //    per iteration. mdslog: one Arc<Store>; sqlite-wal: a connection per thread
    //    (BEGIN IMMEDIATE, busy_timeout); sqlite-original: its one exclusive connection
    //    behind a mutex.
    let ms = Samples::default();
    let ss = [Samples::default(), Samples::default()];
    let mut g = c.benchmark_group("sqlite_extend_64_threads");
    g.sample_size(SLOW_SAMPLES)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1));
    let ops = THREADS * PER_THREAD;
    let mtips64 = Mutex::new(mtips[..THREADS].to_vec());
    let run_mdslog = || {
        let t = Instant::now();
        std::thread::scope(|scope| {
            for th in 0..THREADS {
                let (store, mtips64) = (&store, &mtips64);
                scope.spawn(move || {
                    let mut tip = mtips64.lock().unwrap()[th];
                    for _ in 0..PER_THREAD {
                        let s = snap(vs, Some(tip));
                        tip = s.id;
                        store.extend_branch(std::slice::from_ref(&s)).unwrap();
                    }
                    mtips64.lock().unwrap()[th] = tip;
                });
            }
        });
        t.elapsed()
    };
    sync_all();
    let one = run_mdslog();
    g.measurement_time(flat_time(one, SLOW_SAMPLES));
    bench(&mut g, "mdslog", &ms, |iters| {
        (0..iters).map(|_| run_mdslog()).sum()
    });
    for (s, samples) in sqls.iter().zip(&ss) {
        // One connection per thread (WAL), or the shared exclusive one.
        let own: Vec<Mutex<Connection>> = if s.config == Config::Wal {
            (0..THREADS)
                .map(|_| Mutex::new(open_sqlite(&s.path, Config::Wal)))
                .collect()
        } else {
            Vec::new()
        };
        let tips64 = Mutex::new(s.tips[..THREADS].to_vec());
        let run = || {
            let t = Instant::now();
            std::thread::scope(|scope| {
                for th in 0..THREADS {
                    let conn = own.get(th).unwrap_or(&s.conn);
                    let tips64 = &tips64;
                    let svs = s.vs;
                    scope.spawn(move || {
                        let mut tip = tips64.lock().unwrap()[th];
                        for _ in 0..PER_THREAD {
                            let sn = snap(svs, Some(tip));
                            tip = sn.id;
                            let row = SnapRow::from_snapshot(&sn);
                            sqlite_extend(&mut conn.lock().unwrap(), std::slice::from_ref(&row));
                        }
                        tips64.lock().unwrap()[th] = tip;
                    });
                }
            });
            t.elapsed()
        };
        sync_all();
        let one = run();
        eprintln!(
            "{}: first run of {ops} extends from {THREADS} threads: {one:.2?}",
            s.config.label()
        );
        g.measurement_time(flat_time(one, SLOW_SAMPLES));
        bench(&mut g, s.config.label(), samples, |iters| {
            (0..iters).map(|_| run()).sum()
        });
    }
    g.finish();
    summary(
        &format!("durable extend_branch from {THREADS} threads ({PER_THREAD} each, time per {ops} extends)"),
        ops,
        ms.median(SLOW_SAMPLES),
        ss[0].median(SLOW_SAMPLES),
        ss[1].median(SLOW_SAMPLES),
    );

    let counts = store.counts().unwrap();
    eprintln!("mdslog at the end: {} snapshots", counts.snapshots);
    for s in &sqls {
        let c = s.conn.lock().unwrap();
        let k: i64 = c
            .query_row("SELECT COUNT(*) FROM snapshots", [], |r| r.get(0))
            .unwrap();
        eprintln!("{} at the end: {k} snapshots", s.config.label());
    }
    drop(sqls);
    Arc::try_unwrap(store).ok().unwrap().close().unwrap();
}

criterion_group!(benches, sqlite_benches);
criterion_main!(benches);
