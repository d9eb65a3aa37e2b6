//! Sync benchmarks: a volume set of 100k snapshots (100 branches) to an empty store, and a
//! 1k-record suffix to an up-to-date store (durable receivers, as in production). For the
//! small case also the time to first byte: how long the sender takes to have the batch
//! ready to send (`export_batch`), the part a network peer would wait for.
//!
//! `MDSLOG_BENCH_SYNC_SNAPSHOTS` overrides the size of the big case (default 100,000).

mod common;

use std::time::{Duration, Instant};

use common::{bench_dir, grow, one_volume_set, options};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use mdslog::sync::{sync, SyncMode};
use mdslog::{Durability, Store};

fn big(c: &mut Criterion) {
    let n: usize = std::env::var("MDSLOG_BENCH_SYNC_SNAPSHOTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let (src, vs, _) = one_volume_set(&bench_dir("sync-src-big"), 100, n);
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
    let (src, vs, mut tips) = one_volume_set(&bench_dir("sync-src-small"), 10, 10_000);
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
