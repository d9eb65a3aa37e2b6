//! Shipping benchmarks: a primary of 1M records (default options, 64 MiB segments) shipped
//! to an empty follower directory, against `cp` of the same segment files followed by an
//! fsync of each copy and of the directory (ship fsyncs what it writes); the catch-up of an
//! empty follower (ship, then a read-only store opened on it and counted); and the time to
//! visibility of a 1k-record suffix on an up-to-date follower (ship, then
//! `Store::refresh`), with a one-shot `ship` and with a long-lived `Shipper`.
//!
//! After each group it prints the medians, MB/s, records/s and the ship/cp ratio.
//!
//! `MDSLOG_BENCH_SHIP_RECORDS` overrides the size of the primary (default 1,000,000).

mod common;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{bench_dir, grow, one_volume_set};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use mdslog::ship::{ship, Shipper, StorageTarget};
use mdslog::{Store, StoreOptions};

/// Samples of the big cases (each iteration ships the whole primary).
const BIG_SAMPLES: usize = 10;
/// Samples of the 1k-record suffix cases.
const SMALL_SAMPLES: usize = 30;

/// An empty directory (created).
fn empty_dir(name: &str) -> PathBuf {
    let d = bench_dir(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The primary's segment files, in order.
fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    v.sort();
    v
}

/// The baseline: `cp` of the segment files into `dst`, then an fsync of every copy and of
/// the directory.
fn cp_and_sync(files: &[PathBuf], dst: &Path) {
    let status = Command::new("cp").args(files).arg(dst).status().unwrap();
    assert!(status.success(), "cp failed: {status}");
    for f in files {
        std::fs::File::open(dst.join(f.file_name().unwrap()))
            .unwrap()
            .sync_all()
            .unwrap();
    }
    std::fs::File::open(dst).unwrap().sync_all().unwrap();
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

fn mb_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

/// A measurement time that makes criterion take one iteration per sample for a routine
/// of about `one` (criterion then warns that it cannot fit the samples: expected).
fn flat_time(one: Duration, samples: usize) -> Duration {
    (one * samples as u32 / 2).max(Duration::from_millis(10))
}

fn ship_benches(c: &mut Criterion) {
    let n: usize = std::env::var("MDSLOG_BENCH_SHIP_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let pdir = bench_dir("ship-primary");
    let t = Instant::now();
    let (src, vs, mut tips) = one_volume_set(&pdir, 100, n);
    let records = src.durable_lsn().0;
    let files = segment_files(&pdir);
    let file_bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    eprintln!(
        "built a primary of {records} records ({n} snapshots) in {:.2?}: {} segment files, {file_bytes} bytes on disk",
        t.elapsed(),
        files.len()
    );

    // One untimed run of each: the sizes, a check, a time estimate, a warm page cache.
    let fdir = empty_dir("ship-follower");
    let t = Instant::now();
    let r = ship(src.log(), &StorageTarget::dir(&fdir).unwrap()).unwrap();
    let ship_one = t.elapsed();
    assert_eq!(r.records_shipped, records);
    assert_eq!(r.follower_last_lsn, src.durable_lsn());
    let ship_bytes = r.bytes_copied;
    eprintln!(
        "ship: {} segments copied whole, {ship_bytes} bytes (the active segment's prewritten zeros are not shipped), {records} records, first run {ship_one:.2?}",
        r.segments_copied
    );
    let cdir = empty_dir("ship-cp");
    let t = Instant::now();
    cp_and_sync(&files, &cdir);
    let cp_one = t.elapsed();
    let t = Instant::now();
    let follower = Store::open_read_only(&fdir, StoreOptions::default()).unwrap();
    let snapshots = follower.counts().unwrap().snapshots;
    let open_one = t.elapsed();
    assert_eq!(snapshots, n.max(100) as u64);
    drop(follower);

    // 1 and 2: ship to an empty follower, and cp + fsync of the same files.
    let ship_s = Samples::default();
    let cp_s = Samples::default();
    let mut g = c.benchmark_group("ship");
    g.sample_size(BIG_SAMPLES)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1));
    g.measurement_time(flat_time(ship_one, BIG_SAMPLES));
    g.throughput(Throughput::Bytes(ship_bytes));
    g.bench_function("full_to_empty_follower", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let d = empty_dir("ship-follower");
                let t = Instant::now();
                let target = StorageTarget::dir(&d).unwrap();
                let r = ship(src.log(), &target).unwrap();
                total += t.elapsed();
                assert_eq!(r.records_shipped, records);
            }
            ship_s.record(total, iters);
            total
        })
    });
    g.measurement_time(flat_time(cp_one, BIG_SAMPLES));
    g.throughput(Throughput::Bytes(file_bytes));
    g.bench_function("cp_fsync_baseline", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let d = empty_dir("ship-cp");
                let t = Instant::now();
                cp_and_sync(&files, &d);
                total += t.elapsed();
            }
            cp_s.record(total, iters);
            total
        })
    });

    // 3a: catch-up of an empty follower: ship, then a read-only store open and counted.
    let catch_s = Samples::default();
    g.measurement_time(flat_time(ship_one + open_one, BIG_SAMPLES));
    g.throughput(Throughput::Elements(records));
    g.bench_function("catch_up_empty_follower_ship_and_open", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let d = empty_dir("ship-follower");
                let t = Instant::now();
                ship(src.log(), &StorageTarget::dir(&d).unwrap()).unwrap();
                let store = Store::open_read_only(&d, StoreOptions::default()).unwrap();
                let counts = store.counts().unwrap();
                total += t.elapsed();
                assert_eq!(counts.snapshots, snapshots);
                drop(store);
            }
            catch_s.record(total, iters);
            total
        })
    });
    g.finish();

    let (ship_m, cp_m, catch_m) = (
        ship_s.median(BIG_SAMPLES),
        cp_s.median(BIG_SAMPLES),
        catch_s.median(BIG_SAMPLES),
    );
    eprintln!(
        "\nSUMMARY full ship of {records} records: ship median {ship_m:.3?} = {:.1} MB/s ({ship_bytes} bytes), {:.0} records/s",
        mb_per_s(ship_bytes, ship_m),
        records as f64 / ship_m.as_secs_f64()
    );
    eprintln!(
        "SUMMARY cp + fsync median {cp_m:.3?} = {:.1} MB/s ({file_bytes} bytes); ship/cp = {:.2}x",
        mb_per_s(file_bytes, cp_m),
        ship_m.as_secs_f64() / cp_m.as_secs_f64()
    );
    eprintln!(
        "SUMMARY catch-up (ship + open_read_only + counts) median {catch_m:.3?} = {:.0} records/s\n",
        records as f64 / catch_m.as_secs_f64()
    );

    // 3b: a follower up to date; the primary appends 1k records (untimed); ship and refresh
    // the follower's read-only store until it sees them.
    let idir = empty_dir("ship-follower-inc");
    ship(src.log(), &StorageTarget::dir(&idir).unwrap()).unwrap();
    let fstore = Store::open_read_only(&idir, StoreOptions::default()).unwrap();
    // Both a one-shot ship (it re-reads the follower's unsealed copy) and a read-only
    // refresh (it rescans the active segment) cost in proportion to the active segment.
    eprintln!(
        "1k suffix cases start with the primary at {} records, active segment {} bytes",
        src.durable_lsn().0,
        src.log().segments().last().map_or(0, |s| s.bytes)
    );
    let suffix = 1000;
    let one_shot = Samples::default();
    let kept = Samples::default();
    // (ship, refresh, calls) over every call, warm-up included.
    let mut parts = (Duration::ZERO, Duration::ZERO, 0u32);
    let mut kept_parts = (Duration::ZERO, Duration::ZERO, 0u32);
    let mut g = c.benchmark_group("ship");
    g.sample_size(SMALL_SAMPLES)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(suffix as u64));
    g.bench_function("1k_suffix_ship_and_refresh", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                grow(&src, vs, &mut tips, suffix);
                let want = src.flush().unwrap();
                let t = Instant::now();
                let r = ship(src.log(), &StorageTarget::dir(&idir).unwrap()).unwrap();
                let shipped = t.elapsed();
                let seen = fstore.refresh().unwrap();
                let d = t.elapsed();
                total += d;
                parts.0 += shipped;
                parts.1 += d - shipped;
                parts.2 += 1;
                assert_eq!(r.records_shipped, suffix as u64);
                assert_eq!(seen, want);
            }
            one_shot.record(total, iters);
            total
        })
    });
    {
        let target = StorageTarget::dir(&idir).unwrap();
        let mut shipper = Shipper::new(&target).unwrap();
        shipper.ship(src.log()).unwrap();
        g.bench_function("1k_suffix_kept_shipper_and_refresh", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    grow(&src, vs, &mut tips, suffix);
                    let want = src.flush().unwrap();
                    let t = Instant::now();
                    let r = shipper.ship(src.log()).unwrap();
                    let shipped = t.elapsed();
                    let seen = fstore.refresh().unwrap();
                    let d = t.elapsed();
                    total += d;
                    kept_parts.0 += shipped;
                    kept_parts.1 += d - shipped;
                    kept_parts.2 += 1;
                    assert_eq!(r.records_shipped, suffix as u64);
                    assert_eq!(seen, want);
                }
                kept.record(total, iters);
                total
            })
        });
    }
    g.finish();
    assert_eq!(fstore.counts().unwrap(), src.counts().unwrap());
    let (one_m, kept_m) = (one_shot.median(SMALL_SAMPLES), kept.median(SMALL_SAMPLES));
    let mean = |p: (Duration, Duration, u32)| (p.0 / p.2.max(1), p.1 / p.2.max(1));
    let (one_ship, one_refresh) = mean(parts);
    let (kept_ship, kept_refresh) = mean(kept_parts);
    eprintln!(
        "\nSUMMARY 1k suffix to visibility on the follower (primary now {} records, active segment {} bytes):",
        src.durable_lsn().0,
        src.log().segments().last().map_or(0, |s| s.bytes)
    );
    eprintln!(
        "SUMMARY   one-shot ship() + refresh median {one_m:.3?} (means: ship {one_ship:.3?} + refresh {one_refresh:.3?})"
    );
    eprintln!(
        "SUMMARY   kept Shipper + refresh median {kept_m:.3?} (means: ship {kept_ship:.3?} + refresh {kept_refresh:.3?})"
    );
    src.close().unwrap();
}

criterion_group!(benches, ship_benches);
criterion_main!(benches);
