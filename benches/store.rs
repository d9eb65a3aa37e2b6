//! Store benchmarks: open (replay) of a 1M-snapshot store, `get_tip`, `get_branches` over
//! 1,000 branches, durable and buffered extends (1 and 64 threads), and memory per snapshot.
//!
//! `MDSLOG_BENCH_SNAPSHOTS` overrides the size of the replay store (default 1,000,000).

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{bench_dir, branch_name, one_volume_set, options, snap};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mdslog::{BranchQuery, Durability, Store, StoreOptions, VolumeSetId};

/// A closed store with one volume set, `branches` branches and `snapshots` snapshots in
/// total, spread evenly (`common::one_volume_set`). Returns the volume set and the branch
/// names.
fn build(dir: &Path, branches: usize, snapshots: usize) -> (VolumeSetId, Vec<String>) {
    let (store, vs, _) = one_volume_set(dir, branches, snapshots);
    store.close().unwrap();
    (vs, (0..branches).map(branch_name).collect())
}

fn resident_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    s.split_whitespace()
        .nth(1)
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(0)
        * 4096
}

fn open_and_memory(c: &mut Criterion) {
    let n: usize = std::env::var("MDSLOG_BENCH_SNAPSHOTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = bench_dir("store-open");
    let t = Instant::now();
    build(&dir, 1000, n);
    eprintln!("built a store of {n} snapshots in {:.2?}", t.elapsed());

    // Memory: resident bytes added by opening the store, per snapshot.
    let before = resident_bytes();
    let store = Store::open_read_only(&dir, StoreOptions::default()).unwrap();
    let after = resident_bytes();
    let count = store.counts().unwrap().snapshots;
    eprintln!(
        "memory: {} bytes resident after open for {count} snapshots = {:.0} bytes/snapshot",
        after.saturating_sub(before),
        after.saturating_sub(before) as f64 / count as f64
    );
    drop(store);

    let mut g = c.benchmark_group("store_open");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(BenchmarkId::new("replay", n), |b| {
        b.iter_with_large_drop(|| Store::open_read_only(&dir, StoreOptions::default()).unwrap())
    });
    // The same store from a checkpoint (of all but the last 1,000 records).
    {
        let store = Store::open(&dir, StoreOptions::default()).unwrap();
        let t = Instant::now();
        let at = store.checkpoint().unwrap();
        eprintln!("checkpoint at LSN {at} written in {:.2?}", t.elapsed());
        store.close().unwrap();
    }
    g.bench_function(BenchmarkId::new("from_checkpoint", n), |b| {
        b.iter_with_large_drop(|| {
            let s = Store::open_read_only(&dir, StoreOptions::default()).unwrap();
            assert!(s.opened_from_checkpoint().is_some());
            s
        })
    });
    g.finish();
}

fn queries(c: &mut Criterion) {
    let dir = bench_dir("store-queries");
    let (vs, names) = build(&dir, 1000, 100_000);
    let store = Store::open(&dir, options(Durability::Sync)).unwrap();
    let mut g = c.benchmark_group("store_query");
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("get_tip", |b| {
        b.iter(|| {
            i = (i + 1) % names.len();
            store.get_tip(vs, &names[i]).unwrap()
        })
    });
    g.bench_function("get_branches_1000", |b| {
        b.iter(|| store.get_branches(&BranchQuery::all(vs)).unwrap())
    });
    g.finish();
}

fn extends(c: &mut Criterion) {
    let mut g = c.benchmark_group("store_extend");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(1));
    for (label, durability) in [
        ("durable", Durability::Sync),
        ("buffered", Durability::Buffered),
    ] {
        let dir = bench_dir(&format!("store-extend-{label}"));
        let store = Store::open(&dir, options(durability)).unwrap();
        let vs = store
            .create_volume_set("x", "", Default::default(), "", "", "")
            .unwrap();
        let root = snap(vs.id, None);
        store
            .fork_branch("main", std::slice::from_ref(&root))
            .unwrap();
        let mut tip = root.id;
        g.bench_function(BenchmarkId::new("one_thread", label), |b| {
            b.iter(|| {
                let s = snap(vs.id, Some(tip));
                tip = s.id;
                store.extend_branch(std::slice::from_ref(&s)).unwrap();
            })
        });
        store.close().unwrap();
    }
    // 64 threads, each extending its own branch, durable: fsyncs are shared.
    let threads = 64;
    let dir = bench_dir("store-extend-64");
    let store = Arc::new(Store::open(&dir, options(Durability::Sync)).unwrap());
    let vs = store
        .create_volume_set("x", "", Default::default(), "", "", "")
        .unwrap();
    let mut tips = Vec::new();
    for t in 0..threads {
        let s = snap(vs.id, None);
        store
            .fork_branch(&format!("t{t}"), std::slice::from_ref(&s))
            .unwrap();
        tips.push(s.id);
    }
    let tips = Arc::new(std::sync::Mutex::new(tips));
    g.throughput(Throughput::Elements(threads as u64 * 50));
    g.bench_function(BenchmarkId::new("64_threads", "durable"), |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                std::thread::scope(|scope| {
                    for t in 0..threads {
                        let store = store.clone();
                        let tips = tips.clone();
                        scope.spawn(move || {
                            let mut tip = tips.lock().unwrap()[t];
                            for _ in 0..50 {
                                let s = snap(vs.id, Some(tip));
                                tip = s.id;
                                store.extend_branch(std::slice::from_ref(&s)).unwrap();
                            }
                            tips.lock().unwrap()[t] = tip;
                        });
                    }
                });
            }
            start.elapsed()
        })
    });
    g.finish();
}

criterion_group!(benches, queries, extends, open_and_memory);
criterion_main!(benches);
