//! Sync benchmarks: a volume set of 100k snapshots (100 branches) to an empty store, and a
//! 1k-record suffix to an up-to-date store (durable receivers, as in production). For the
//! small case also the time to first byte: how long the sender takes to have the batch
//! ready to send (`export_batch`), the part a network peer would wait for.
//!
//! `MDSLOG_BENCH_SYNC_SNAPSHOTS` overrides the size of the big case (default 100,000).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use mdslog::sync::{sync, SyncMode};
use mdslog::{
    Durability, LogOptions, Snapshot, SnapshotId, Store, StoreOptions, Timestamp, VolumeSetId,
};

fn bench_dir(name: &str) -> PathBuf {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-tmp");
    std::fs::create_dir_all(&base).unwrap();
    let d = base.join(name);
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn options(durability: Durability) -> StoreOptions {
    StoreOptions {
        log: LogOptions {
            durability,
            ..LogOptions::default()
        },
        actor: None,
    }
}

fn snap(vs: VolumeSetId, parent: Option<SnapshotId>) -> Snapshot {
    let mut s = Snapshot::new(SnapshotId::random(), vs, parent);
    s.created = Timestamp::now();
    s.last_modified = s.created;
    s.size = 4096;
    s.name = "nightly".into();
    s
}

/// Extends `tips` round-robin by `n` snapshots, one record each.
fn grow(store: &Store, vs: VolumeSetId, tips: &mut [SnapshotId], n: usize) {
    for i in 0..n {
        let t = i % tips.len();
        let s = snap(vs, Some(tips[t]));
        tips[t] = s.id;
        store.extend_branch(std::slice::from_ref(&s)).unwrap();
    }
}

/// A source store with one volume set of `snapshots` snapshots on `branches` branches.
fn source(dir: &Path, branches: usize, snapshots: usize) -> (Store, VolumeSetId, Vec<SnapshotId>) {
    let store = Store::open(dir, options(Durability::Buffered)).unwrap();
    let vs = store
        .create_volume_set("bench", "", Default::default(), "", "", "")
        .unwrap();
    let root = snap(vs.id, None);
    store
        .fork_branch("trunk", std::slice::from_ref(&root))
        .unwrap();
    let mut tips = vec![root.id];
    for b in 1..branches {
        let s = snap(vs.id, Some(root.id));
        tips.push(s.id);
        store
            .fork_branch(&format!("branch-{b:04}"), std::slice::from_ref(&s))
            .unwrap();
    }
    grow(&store, vs.id, &mut tips, snapshots.saturating_sub(branches));
    store.flush().unwrap();
    (store, vs.id, tips)
}

fn big(c: &mut Criterion) {
    let n: usize = std::env::var("MDSLOG_BENCH_SYNC_SNAPSHOTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let (src, vs, _) = source(&bench_dir("sync-src-big"), 100, n);
    let records = src.durable_lsn().0;
    let mut g = c.benchmark_group("sync");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(30));
    g.throughput(Throughput::Elements(records));
    let mut k = 0;
    g.bench_function(format!("{n} snapshots to an empty store"), |b| {
        b.iter_batched(
            || {
                k += 1;
                let d = bench_dir(&format!("sync-dst-big-{}", k % 2));
                Store::open(&d, options(Durability::Sync)).unwrap()
            },
            |dst| {
                let r = sync(&src, &dst, vs, SyncMode::Both).unwrap();
                assert_eq!(r.pushed.as_ref().unwrap().snapshots_added, n as u64);
                dst
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn small(c: &mut Criterion) {
    let (src, vs, mut tips) = source(&bench_dir("sync-src-small"), 10, 10_000);
    let dst = Store::open(bench_dir("sync-dst-small"), options(Durability::Sync)).unwrap();
    sync(&src, &dst, vs, SyncMode::Both).unwrap();
    let dst_id = dst.store_id().unwrap().unwrap();
    let src_id = src.store_id().unwrap().unwrap();
    let mut g = c.benchmark_group("sync");
    g.sample_size(30);
    g.throughput(Throughput::Elements(1000));
    g.bench_function("1k-record suffix to an up-to-date store", |b| {
        b.iter_batched(
            || {
                grow(&src, vs, &mut tips, 1000);
                src.flush().unwrap();
            },
            |()| {
                let r = sync(&src, &dst, vs, SyncMode::Both).unwrap();
                assert_eq!(r.pushed.as_ref().unwrap().snapshots_added, 1000);
            },
            BatchSize::PerIteration,
        )
    });
    // Time to first byte: the sender's batch of the 1k suffix is ready.
    g.bench_function("1k-record suffix: time to first byte (export)", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                grow(&src, vs, &mut tips, 1000);
                src.flush().unwrap();
                let after = dst.sync_cursor(src_id, vs).unwrap();
                let t = Instant::now();
                let batch = src.export_batch(vs, after, Some(dst_id)).unwrap().unwrap();
                total += t.elapsed();
                assert_eq!(batch.records.len(), 1000);
                dst.apply_batch(&batch, mdslog::sync::Winner::Receiver)
                    .unwrap();
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, small, big);
criterion_main!(benches);
