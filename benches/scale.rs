//! Scaling (issue 7): a store of one volume set with 1,000 branches grown round-robin to
//! 100k, 1M and 10M snapshots (one record per snapshot, as a live store would have them),
//! with a checkpoint at the end; and at 1M the same data in SQLite.
//!
//! Each open is measured in a fresh process (this benchmark re-runs itself as a child:
//! `MDSLOG_SCALE_CHILD`), so that open time and memory are those of a program that starts,
//! opens and answers; criterion times the children's opens through `iter_custom`. A child
//! reports:
//! - open: `Store::open_read_only` until it answers (full replay with the checkpoints put
//!   aside; or from the checkpoint); SQLite: connect, set the configuration, first `get_tip`;
//! - memory: anonymous resident bytes (`RssAnon`) added by the open, per snapshot (the
//!   fixture's snapshots carry no strings or attributes, so this is the per-snapshot cost
//!   of the projections);
//! - `get_branches` of the 1,000 branches and a walk (`get_snapshots_by_branch` of one
//!   branch, n/1,000 deep): medians of repeated calls in the opened store.
//!
//! `MDSLOG_BENCH_SCALE` sets the sizes (default `100000,1000000,10000000`). Fixtures are
//! kept under `target/bench-tmp/scale-N` and reused when complete (a `FIXTURE` file holds
//! their size); the 10M one takes about a minute to build and 1.8 GB of log.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::measure::{report, show};
use common::sqlite::{build_sqlite, open_sqlite, sqlite_get_tip, Config};
use common::{branch_name, one_volume_set, options};
use criterion::{Criterion, SamplingMode};
use mdslog::{BranchQuery, Durability, Store, StoreOptions, VolumeSetId};

const BRANCHES: usize = 1000;
const SAMPLES: usize = 10;
/// The size at which SQLite is measured too.
const SQLITE_AT: usize = 1_000_000;

fn base() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-tmp")
}

/// Anonymous resident bytes of this process.
fn rss_anon() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// What a child measured.
struct Child {
    open: Duration,
    rss: u64,
    get_branches: Duration,
    walk: Duration,
    walk_len: usize,
}

/// The child: open the store (or SQLite database) in `dir`, measure, print one line.
fn child(dir: &Path, what: &str) {
    let before = rss_anon();
    if let Some(label) = what.strip_prefix("sqlite-") {
        let config = if label == "wal" {
            Config::Wal
        } else {
            Config::Original
        };
        let t = Instant::now();
        let c = open_sqlite(&dir.join("fixture.db"), config);
        let vs: String = c
            .query_row("SELECT id FROM volumesets", [], |r| r.get(0))
            .unwrap();
        std::hint::black_box(sqlite_get_tip(&c, &vs, "trunk"));
        let open = t.elapsed();
        println!("CHILD {} {} 0 0 0", open.as_nanos(), rss_anon() - before);
        return;
    }
    let t = Instant::now();
    let store = Store::open_read_only(dir, StoreOptions::default()).unwrap();
    let open = t.elapsed();
    let rss = rss_anon().saturating_sub(before);
    assert_eq!(
        store.opened_from_checkpoint().is_some(),
        what == "checkpoint",
        "{what}: {:?}",
        store.checkpoint_warnings()
    );
    let vs: VolumeSetId = store.get_volume_sets(&Default::default()).unwrap()[0].id;
    let q = BranchQuery::all(vs);
    let get_branches = median(
        (0..21)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(store.get_branches(&q).unwrap());
                t.elapsed()
            })
            .collect(),
    );
    let walk_q = BranchQuery {
        name: Some(branch_name(1)),
        ..BranchQuery::all(vs)
    };
    let mut walk_len = 0;
    let walk = median(
        (0..5)
            .map(|_| {
                let t = Instant::now();
                walk_len =
                    std::hint::black_box(store.get_snapshots_by_branch(&walk_q).unwrap()).len();
                t.elapsed()
            })
            .collect(),
    );
    println!(
        "CHILD {} {rss} {} {} {walk_len}",
        open.as_nanos(),
        get_branches.as_nanos(),
        walk.as_nanos()
    );
}

/// Runs a child on `dir` and parses its line.
fn run_child(dir: &Path, what: &str) -> Child {
    let out = Command::new(std::env::current_exe().unwrap())
        .env("MDSLOG_SCALE_CHILD", dir)
        .env("MDSLOG_SCALE_WHAT", what)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "child {what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    Child {
        open: Duration::from_nanos(f[0]),
        rss: f[1],
        get_branches: Duration::from_nanos(f[2]),
        walk: Duration::from_nanos(f[3]),
        walk_len: f[4] as usize,
    }
}

/// The fixture of `n` snapshots, built unless a complete one is there.
fn fixture(n: usize) -> PathBuf {
    let dir = base().join(format!("scale-{n}"));
    let marker = dir.join("FIXTURE");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(&n.to_string()) {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let t = Instant::now();
    let (store, _, _) = one_volume_set(&dir, BRANCHES, n);
    store.close().unwrap();
    let store = Store::open(&dir, options(Durability::Buffered)).unwrap();
    let built = t.elapsed();
    let t = Instant::now();
    store.checkpoint().unwrap();
    eprintln!(
        "scale fixture of {n} snapshots: built in {built:.2?}, checkpoint written in {:.2?}",
        t.elapsed()
    );
    store.close().unwrap();
    std::fs::write(&marker, n.to_string()).unwrap();
    dir
}

fn sqlite_fixture(n: usize) -> PathBuf {
    let dir = base().join(format!("scale-sqlite-{n}"));
    let marker = dir.join("FIXTURE");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(&n.to_string()) {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let t = Instant::now();
    build_sqlite(&dir.join("fixture.db"), BRANCHES, n);
    eprintln!(
        "sqlite scale fixture of {n} snapshots: built in {:.2?}",
        t.elapsed()
    );
    std::fs::write(&marker, n.to_string()).unwrap();
    dir
}

fn dir_bytes(dir: &Path, ext: &str) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == ext))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

/// Puts the checkpoints of `dir` aside (for a full replay) or back.
fn hide_checkpoints(dir: &Path, hide: bool) {
    let (from, to) = if hide {
        ("ckpt", "ckpt-aside")
    } else {
        ("ckpt-aside", "ckpt")
    };
    for e in std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()) {
        let p = e.path();
        if p.extension().is_some_and(|x| x == from) {
            std::fs::rename(&p, p.with_extension(to)).unwrap();
        }
    }
}

/// Times `what` opens of `dir` in children with criterion; returns the children's medians.
fn measure(c: &mut Criterion, group: &str, dir: &Path, what: &str, one: Duration) -> Child {
    let mut seen: Vec<Child> = Vec::new();
    let mut g = c.benchmark_group(group);
    g.sample_size(SAMPLES)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(one * SAMPLES as u32);
    g.bench_function(what, |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let ch = run_child(dir, what);
                    let t = ch.open;
                    seen.push(ch);
                    t
                })
                .sum()
        })
    });
    g.finish();
    if seen.is_empty() {
        // Filtered out (a criterion filter on the command line): one child's numbers.
        seen.push(run_child(dir, what));
    }
    let last = seen.split_off(seen.len().saturating_sub(SAMPLES));
    let mid = |f: &dyn Fn(&Child) -> Duration| median(last.iter().map(f).collect());
    let mut rss: Vec<u64> = last.iter().map(|c| c.rss).collect();
    rss.sort();
    Child {
        open: mid(&|c| c.open),
        rss: rss[rss.len() / 2],
        get_branches: mid(&|c| c.get_branches),
        walk: mid(&|c| c.walk),
        walk_len: last[0].walk_len,
    }
}

fn main() {
    if let Some(dir) = std::env::var_os("MDSLOG_SCALE_CHILD") {
        let what = std::env::var("MDSLOG_SCALE_WHAT").unwrap();
        child(Path::new(&dir), &what);
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    let sizes: Vec<usize> = std::env::var("MDSLOG_BENCH_SCALE")
        .unwrap_or_else(|_| "100000,1000000,10000000".into())
        .split(',')
        .map(|x| x.trim().parse().unwrap())
        .collect();
    for &n in &sizes {
        let dir = fixture(n);
        let log_bytes = dir_bytes(&dir, "seg");
        let ckpt_bytes = dir_bytes(&dir, "ckpt");
        hide_checkpoints(&dir, true);
        let first = run_child(&dir, "replay");
        let replay = measure(
            &mut c,
            &format!("scale_open_{n}"),
            &dir,
            "replay",
            first.open,
        );
        hide_checkpoints(&dir, false);
        let first = run_child(&dir, "checkpoint");
        let ckpt = measure(
            &mut c,
            &format!("scale_open_{n}"),
            &dir,
            "checkpoint",
            first.open,
        );
        let per_snapshot = ckpt.rss as f64 / n as f64;
        eprintln!(
            "\nSUMMARY scale {n} snapshots: open by replay {}, from checkpoint {}, {per_snapshot:.0} B \
             resident per snapshot, get_branches {}, walk of {} snapshots {}; log {} MB, checkpoint {} MB\n",
            show(replay.open),
            show(ckpt.open),
            show(ckpt.get_branches),
            ckpt.walk_len,
            show(ckpt.walk),
            log_bytes >> 20,
            ckpt_bytes >> 20,
        );
        report(&[
            "scale",
            &n.to_string(),
            &show(replay.open),
            &show(ckpt.open),
            &format!("{per_snapshot:.0} B"),
            &format!("{:.2} GiB", ckpt.rss as f64 / (1u64 << 30) as f64),
            &show(ckpt.get_branches),
            &format!("{} ({} deep)", show(ckpt.walk), ckpt.walk_len),
            &format!("{} MB", log_bytes >> 20),
            &format!("{} MB", ckpt_bytes >> 20),
        ]);
        if n == SQLITE_AT {
            let sdir = sqlite_fixture(n);
            let db_bytes = std::fs::metadata(sdir.join("fixture.db")).unwrap().len();
            let mut sq = Vec::new();
            for what in ["sqlite-original", "sqlite-wal"] {
                let first = run_child(&sdir, what);
                sq.push(measure(
                    &mut c,
                    &format!("scale_open_{n}"),
                    &sdir,
                    what,
                    first.open,
                ));
            }
            // mdslog's speed-up over SQLite; below 1, how many times slower it is.
            let ratio = |m: Duration, s: Duration| {
                let x = s.as_secs_f64() / m.as_secs_f64();
                if x >= 10.0 {
                    format!("{x:.0}x")
                } else if x >= 1.0 {
                    format!("{x:.1}x")
                } else {
                    format!("{:.0}x slower", 1.0 / x)
                }
            };
            eprintln!(
                "\nSUMMARY open of {n} snapshots until the first answer: mdslog replay {}, \
                 from checkpoint {}; sqlite-original {}, sqlite-wal {} (SQLite reads pages on \
                 demand); database {} MB\n",
                show(replay.open),
                show(ckpt.open),
                show(sq[0].open),
                show(sq[1].open),
                db_bytes >> 20
            );
            report(&[
                "compare",
                &format!("open of {n} snapshots until the first answer: full replay"),
                &show(replay.open),
                &show(sq[0].open),
                &show(sq[1].open),
                &ratio(replay.open, sq[0].open),
                &ratio(replay.open, sq[1].open),
            ]);
            report(&[
                "compare",
                &format!("open of {n} snapshots until the first answer: from a checkpoint"),
                &show(ckpt.open),
                &show(sq[0].open),
                &show(sq[1].open),
                &ratio(ckpt.open, sq[0].open),
                &ratio(ckpt.open, sq[1].open),
            ]);
            report(&[
                "compare",
                &format!("memory per snapshot after open ({n} snapshots; SQLite: its page cache, and the database on disk)"),
                &format!("{per_snapshot:.0} B resident"),
                &format!("{:.1} B resident + {} B on disk", sq[0].rss as f64 / n as f64, db_bytes / n as u64),
                &format!("{:.1} B resident + {} B on disk", sq[1].rss as f64 / n as f64, db_bytes / n as u64),
                "-",
                "-",
            ]);
        }
    }
    c.final_summary();
}
