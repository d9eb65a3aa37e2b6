//! This store against an SQLite implementation of the original schema, side by side in one
//! run (issue 7): the same operations on the same fixture shape (one volume set, 1,000
//! branches, 100k snapshots grown round-robin over the branches), on
//!
//! - `mdslog`: this crate, `Durability::Sync` (the default);
//! - `sqlite-original`: the original's configuration: rollback journal
//!   (`journal_mode=DELETE`), `synchronous=FULL`, `locking_mode=EXCLUSIVE`;
//! - `sqlite-wal`: `journal_mode=WAL`, `synchronous=FULL`.
//!
//! Operations: `get_tip`; `get_branches` of the 1,000 branches with tip snapshot and child
//! count; `get_snapshots` of one owner (every 10th snapshot), newest first, a page of 100
//! at offset 1,000; `get_snapshots_by_branch` of a branch 10k snapshots deep; durable
//! extend from one thread (one transaction per extend in SQLite); batched extends (64 and
//! 1,000 per commit: one `extend_branch` record of a chain, one SQLite transaction of 64 /
//! 1,000 extends); durable extend from 64 threads (threads kept across rounds). And the
//! physical limit: a raw `fdatasync` after a 200-byte write (into a pre-written file, and
//! into a growing one) on the same file system, against the one-thread durable extend.
//!
//! After each group it prints a `SUMMARY` line with the medians (computed here from the
//! samples criterion measured) and mdslog's speed-up, and a `REPORT` line that
//! `tools/bench-report` turns into a row of `benches/README.md`.
//!
//! `MDSLOG_BENCH_SQLITE_SNAPSHOTS` overrides the size of the fixture (default 100,000).
//!
//! The SQLite schema and queries are in `common/sqlite.rs`.

mod common;

use std::hint::black_box;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use common::measure::{
    bench, bounded_time, estimate, flat_time, report, show, summary, sync_all, Median, Samples,
};
use common::sqlite::*;
use common::{bench_dir, branch_name, chain, one_volume_set, options, snap};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use mdslog::{
    BranchQuery, Durability, Order, Page, SnapshotId, SnapshotQuery, SortBy, Store, VolumeSetId,
};
use rusqlite::Connection;

/// Branches in the fixture.
const BRANCHES: usize = 1000;
/// Samples of the slow (durable, batched, 64-thread) cases.
const SLOW_SAMPLES: usize = 10;
/// Samples of the query cases.
const QUERY_SAMPLES: usize = 20;
/// Threads of the concurrent durable extend.
const THREADS: usize = 64;
/// Depth of the deep branch walked by `get_snapshots_by_branch`.
const DEEP: usize = 10_000;
/// Every this many snapshots one is owned by "alice" (the `get_snapshots` filter).
const OWNER_EVERY: usize = 10;
/// The `get_snapshots` page.
const PAGE_OFFSET: usize = 1000;
const PAGE_LIMIT: usize = 100;

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

/// Runs `rounds` rounds on `threads` threads that live across the rounds: in each round
/// every thread calls `op(thread)` `per` times. Returns the time of the rounds only
/// (starting the threads is not measured: a server keeps its threads).
fn pool_rounds(threads: usize, rounds: u64, per: usize, op: &(dyn Fn(usize) + Sync)) -> Duration {
    let start = Barrier::new(threads + 1);
    let end = Barrier::new(threads + 1);
    std::thread::scope(|scope| {
        for th in 0..threads {
            let (start, end) = (&start, &end);
            scope.spawn(move || {
                for _ in 0..rounds {
                    start.wait();
                    for _ in 0..per {
                        op(th);
                    }
                    end.wait();
                }
            });
        }
        let mut total = Duration::ZERO;
        for _ in 0..rounds {
            let t = Instant::now();
            start.wait();
            end.wait();
            total += t.elapsed();
        }
        total
    })
}

/// `n` durable appends of 200 bytes, each followed by `fdatasync`, into `file` from
/// `*offset` on (a pre-written file: the writes land on allocated blocks; a new file: each
/// write grows it).
fn raw_fdatasync(file: &std::fs::File, offset: &mut u64, n: u64) -> Duration {
    use std::os::unix::fs::FileExt;
    let buf = [0xA5u8; 200];
    let t = Instant::now();
    for _ in 0..n {
        file.write_all_at(&buf, *offset).unwrap();
        file.sync_data().unwrap();
        *offset += buf.len() as u64;
    }
    t.elapsed()
}

fn sqlite_benches(c: &mut Criterion) {
    let n: usize = std::env::var("MDSLOG_BENCH_SQLITE_SNAPSHOTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let branches = BRANCHES.min(n).max(THREADS);
    let names: Vec<String> = (0..branches).map(branch_name).collect();

    report(&["meta", "SQLite", rusqlite::version()]);
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

    // Both sides: every OWNER_EVERY-th snapshot owned by "alice", and a branch "deep"
    // forked off trunk's tip and extended by DEEP snapshots (untimed set-up).
    let t = Instant::now();
    let ids = store.get_snapshot_ids(vs).unwrap();
    for batch in ids
        .iter()
        .step_by(OWNER_EVERY)
        .collect::<Vec<_>>()
        .chunks(500)
    {
        let pairs: Vec<_> = batch
            .iter()
            .map(|id| {
                let mut s = store.get_snapshot(**id).unwrap();
                s.owner = "alice".into();
                (s, None)
            })
            .collect();
        assert!(store.update_snapshots(&pairs).unwrap().is_empty());
    }
    // A smaller fixture (MDSLOG_BENCH_SQLITE_SNAPSHOTS) pages nearer the start.
    let page_offset = PAGE_OFFSET.min(n / OWNER_EVERY / 2);
    let deep_fork = snap(vs, Some(mtips[0]));
    store
        .fork_branch("deep", std::slice::from_ref(&deep_fork))
        .unwrap();
    let mut deep_tip = deep_fork.id;
    for _ in 0..DEEP / 1000 {
        let ch = chain(vs, deep_tip, 1000);
        deep_tip = ch.last().unwrap().id;
        store.extend_branch(&ch).unwrap();
    }
    for s in &mut sqls {
        let mut conn = s.conn.lock().unwrap();
        conn.execute(
            &format!("UPDATE snapshots SET owner = 'alice' WHERE rowid % {OWNER_EVERY} = 0"),
            [],
        )
        .unwrap();
        let fork = snap(s.vs, Some(s.tips[0]));
        sqlite_fork(&mut conn, &s.vss, "deep", &SnapRow::from_snapshot(&fork));
        let ch = chain(s.vs, fork.id, DEEP);
        let rows: Vec<SnapRow> = ch.iter().map(SnapRow::from_snapshot).collect();
        sqlite_extend(&mut conn, &rows);
    }
    eprintln!(
        "set-up: owners tagged, a {DEEP}-deep branch added on each side in {:.2?}",
        t.elapsed()
    );

    // Sanity: both sides answer the same shape.
    let mb = store.get_branches(&BranchQuery::all(vs)).unwrap();
    assert_eq!(mb.len(), branches + 1);
    let owner_query = SnapshotQuery {
        volume_set: Some(vs),
        owner: Some("alice".into()),
        sort: SortBy::Time,
        order: Order::Desc,
        page: Page {
            offset: page_offset,
            limit: Some(PAGE_LIMIT),
        },
        ..SnapshotQuery::default()
    };
    let deep_query = BranchQuery {
        name: Some("deep".into()),
        ..BranchQuery::all(vs)
    };
    let m_page = store.get_snapshots(&owner_query).unwrap();
    assert_eq!(m_page.len(), PAGE_LIMIT);
    assert!(m_page.iter().all(|s| s.owner == "alice"));
    let m_deep = store.get_snapshots_by_branch(&deep_query).unwrap();
    assert!(m_deep.len() > DEEP);
    for s in &sqls {
        let c = s.conn.lock().unwrap();
        let sb = sqlite_get_branches(&c, &s.vss);
        assert_eq!(sb.len(), branches + 1);
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
        let page = sqlite_get_snapshots_owner_page(
            &c,
            &s.vss,
            "alice",
            page_offset as i64,
            PAGE_LIMIT as i64,
        );
        assert_eq!(page.len(), PAGE_LIMIT);
        let walk = sqlite_get_snapshots_by_branch(&c, &s.vss, "deep");
        assert_eq!(walk.len(), m_deep.len());
        assert_eq!(walk[0].depth, m_deep[0].depth as i64);
    }

    // The query cases: each closure is one call; mdslog first, then each SQLite config.
    type SqliteCall<'a> = Box<dyn Fn(&Connection, &Sql) + 'a>;
    type MdslogCall<'a> = Box<dyn Fn(usize) + 'a>;
    type Case<'a> = (&'a str, String, MdslogCall<'a>, SqliteCall<'a>);
    let queries: Vec<Case> = vec![
        (
            "sqlite_get_tip",
            format!("get_tip ({n} snapshots, {branches} branches)"),
            Box::new(|i| {
                black_box(store.get_tip(vs, &names[i % names.len()]).unwrap());
            }),
            Box::new(|c, s| {
                black_box(sqlite_get_tip(c, &s.vss, "trunk"));
            }),
        ),
        (
            "sqlite_get_branches",
            format!("get_branches of {} branches with tip and child count", branches + 1),
            Box::new(|_| {
                black_box(store.get_branches(&BranchQuery::all(vs)).unwrap());
            }),
            Box::new(|c, s| {
                black_box(sqlite_get_branches(c, &s.vss));
            }),
        ),
        (
            "sqlite_get_snapshots_page",
            format!(
                "get_snapshots of one owner (1 in {OWNER_EVERY}), newest first, {PAGE_LIMIT} at offset {page_offset}"
            ),
            Box::new(|_| {
                black_box(store.get_snapshots(&owner_query).unwrap());
            }),
            Box::new(|c, s| {
                black_box(sqlite_get_snapshots_owner_page(
                    c,
                    &s.vss,
                    "alice",
                    page_offset as i64,
                    PAGE_LIMIT as i64,
                ));
            }),
        ),
        (
            "sqlite_get_snapshots_by_branch",
            format!("get_snapshots_by_branch, {} deep", m_deep.len()),
            Box::new(|_| {
                black_box(store.get_snapshots_by_branch(&deep_query).unwrap());
            }),
            Box::new(|c, s| {
                black_box(sqlite_get_snapshots_by_branch(c, &s.vss, "deep"));
            }),
        ),
    ];
    for (group, what, mdslog_call, sqlite_call) in &queries {
        let ms = Samples::default();
        let ss = [Samples::default(), Samples::default()];
        let mut g = c.benchmark_group(*group);
        g.sample_size(QUERY_SAMPLES)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        let mut i = 0;
        bench(&mut g, "mdslog", &ms, |iters| {
            let t = Instant::now();
            for _ in 0..iters {
                i += 1;
                mdslog_call(i);
            }
            t.elapsed()
        });
        for (s, samples) in sqls.iter().zip(&ss) {
            let conn = s.conn.lock().unwrap();
            bench(&mut g, s.config.label(), samples, |iters| {
                let t = Instant::now();
                for _ in 0..iters {
                    sqlite_call(&conn, s);
                }
                t.elapsed()
            });
        }
        g.finish();
        summary(
            what,
            Median::new(ms.median(QUERY_SAMPLES), 1),
            Median::new(ss[0].median(QUERY_SAMPLES), 1),
            Median::new(ss[1].median(QUERY_SAMPLES), 1),
        );
    }
    drop(queries);

    // Durable extends, one thread, round-robin over the branches; then batched: a chain
    // of 64 / 1,000 on one branch per commit.
    let mut one_thread_extend = Duration::ZERO;
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
        g.measurement_time(bounded_time(one, per_commit, SLOW_SAMPLES));
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
            g.measurement_time(bounded_time(one, per_commit, SLOW_SAMPLES));
            bench(&mut g, label, samples, |iters| {
                (0..iters).map(|_| extend_sqlite()).sum()
            });
        }
        g.finish();
        let what = if per_commit == 1 {
            "durable extend_branch, one thread, one extend per commit".to_string()
        } else {
            format!("durable batched extends, {per_commit} per commit")
        };
        let m = Median::new(ms.median(SLOW_SAMPLES), per_commit);
        if per_commit == 1 {
            one_thread_extend = m.time;
        }
        summary(
            &what,
            m,
            Median::new(ss[0].median(SLOW_SAMPLES), per_commit),
            Median::new(ss[1].median(SLOW_SAMPLES), per_commit),
        );
    }

    // The physical limit: a raw fdatasync on the same file system, this run.
    let rdir = bench_dir("sqlite-raw-fdatasync");
    std::fs::create_dir_all(&rdir).unwrap();
    let prewritten = rdir.join("prewritten");
    {
        let mut f = std::fs::File::create(&prewritten).unwrap();
        f.write_all(&vec![0u8; 64 << 20]).unwrap();
        f.sync_all().unwrap();
    }
    let mut g = c.benchmark_group("sqlite_raw_fdatasync");
    g.sample_size(SLOW_SAMPLES)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_millis(300));
    let raw = [Samples::default(), Samples::default()];
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&prewritten)
        .unwrap();
    let mut off = 0;
    sync_all();
    bench(&mut g, "prewritten", &raw[0], |iters| {
        raw_fdatasync(&f, &mut off, iters)
    });
    let f = std::fs::File::create(rdir.join("growing")).unwrap();
    let mut off = 0;
    bench(&mut g, "growing", &raw[1], |iters| {
        raw_fdatasync(&f, &mut off, iters)
    });
    g.finish();
    let (pre, grow) = (raw[0].median(SLOW_SAMPLES), raw[1].median(SLOW_SAMPLES));
    let ratio = one_thread_extend.as_secs_f64() / pre.as_secs_f64();
    eprintln!(
        "\nSUMMARY raw fdatasync: {} pre-written, {} growing; durable extend {} = {ratio:.2}x the pre-written fdatasync\n",
        show(pre),
        show(grow),
        show(one_thread_extend)
    );
    report(&[
        "limit",
        &show(one_thread_extend),
        &show(pre),
        &show(grow),
        &format!("{ratio:.2}x"),
    ]);
    let _ = std::fs::remove_dir_all(&rdir);

    // Durable extends from 64 threads that live across rounds, each on its own branch.
    // mdslog: one Arc<Store>; sqlite-wal: a connection per thread (BEGIN IMMEDIATE,
    // busy_timeout); sqlite-original: its one exclusive connection behind a mutex. The
    // extends per thread per round differ (64 / 2 / 1) so that a round of each lasts
    // about as long; the summary compares time per extend.
    let ms = Samples::default();
    let ss = [Samples::default(), Samples::default()];
    let mut g = c.benchmark_group("sqlite_extend_64_threads");
    g.sample_size(SLOW_SAMPLES)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1));
    const MDSLOG_PER: usize = 64;
    let mtips64: Vec<Mutex<SnapshotId>> = mtips[..THREADS].iter().map(|t| Mutex::new(*t)).collect();
    let op = |th: usize| {
        let mut tip = mtips64[th].lock().unwrap();
        let s = snap(vs, Some(*tip));
        store.extend_branch(std::slice::from_ref(&s)).unwrap();
        *tip = s.id;
    };
    sync_all();
    let one = pool_rounds(THREADS, 1, MDSLOG_PER, &op);
    g.measurement_time(flat_time(one, SLOW_SAMPLES));
    bench(&mut g, "mdslog", &ms, |iters| {
        pool_rounds(THREADS, iters, MDSLOG_PER, &op)
    });
    let mut sqlite_per = [0usize; 2];
    for ((s, samples), per) in sqls.iter().zip(&ss).zip(&mut sqlite_per) {
        *per = if s.config == Config::Wal { 1 } else { 2 };
        // One connection per thread (WAL), or the shared exclusive one.
        let own: Vec<Mutex<Connection>> = if s.config == Config::Wal {
            (0..THREADS)
                .map(|_| Mutex::new(open_sqlite(&s.path, Config::Wal)))
                .collect()
        } else {
            Vec::new()
        };
        let tips64: Vec<Mutex<SnapshotId>> =
            s.tips[..THREADS].iter().map(|t| Mutex::new(*t)).collect();
        let op = |th: usize| {
            let conn = own.get(th).unwrap_or(&s.conn);
            let mut tip = tips64[th].lock().unwrap();
            let sn = snap(s.vs, Some(*tip));
            let row = SnapRow::from_snapshot(&sn);
            sqlite_extend(&mut conn.lock().unwrap(), std::slice::from_ref(&row));
            *tip = sn.id;
        };
        sync_all();
        let one = pool_rounds(THREADS, 1, *per, &op);
        eprintln!(
            "{}: first round of {} extends from {THREADS} threads: {one:.2?}",
            s.config.label(),
            THREADS * *per
        );
        g.measurement_time(flat_time(one, SLOW_SAMPLES));
        bench(&mut g, s.config.label(), samples, |iters| {
            pool_rounds(THREADS, iters, *per, &op)
        });
    }
    g.finish();
    summary(
        &format!("durable extend_branch from {THREADS} threads"),
        Median::new(ms.median(SLOW_SAMPLES), THREADS * MDSLOG_PER),
        Median::new(ss[0].median(SLOW_SAMPLES), THREADS * sqlite_per[0]),
        Median::new(ss[1].median(SLOW_SAMPLES), THREADS * sqlite_per[1]),
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
