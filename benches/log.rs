//! Log benchmarks on the real file system, with a raw fdatasync baseline from the same run.
//!
//! Everything runs in a temporary directory under `target/bench-tmp` (never `/tmp`, which
//! may be tmpfs, where fdatasync costs nothing). Records carry 200-byte payloads.
//!
//! * `raw_fdatasync/prewritten`: write 232 bytes into a zero-filled, synced file at an
//!   advancing offset, then `File::sync_data` (what the writer does on pre-written space).
//! * `raw_fdatasync/append`: the same, appending to a growing file.
//! * `append_sync/1_writer`: `Log::append` with `Durability::Sync`, one thread.
//! * `append_sync_concurrent/{8,64}_writers`: the same from 8 and 64 threads (records/s).
//! * `raw_sequential_write`: 1 MiB writes with a sync every 64 MiB, the ceiling the disk and
//!   page cache put on buffered appends (a 200-byte record is 224 bytes framed).
//! * `append_buffered/{records,bytes}`: `Durability::Buffered` appends, then one flush.
//! * `scan_1m/{next_record,decode}`: full scan of a 1M-record log, borrowing payloads
//!   (checksums verified) and, second, decoding each payload with `mdslog::codec`.
//!
//! The benchmarks measure; they never assert timings.

use std::fs::File;
use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use mdslog::codec;
use mdslog::log::{Durability, Log, LogOptions, Lsn, RecordKind};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

const PAYLOAD_BYTES: usize = 200;
/// The raw baseline writes what one framed record of the log would roughly take.
const RAW_WRITE_BYTES: usize = 232;
/// Size of the pre-written file of the raw baseline (offsets wrap inside it).
const RAW_PREWRITTEN_BYTES: u64 = 64 << 20;
const KIND: RecordKind = RecordKind(1);
const SCAN_RECORDS: u64 = 1_000_000;

/// A directory on the real file system the bench may litter (under `target/`).
fn bench_root() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("bench-tmp");
    std::fs::create_dir_all(&root).expect("create target/bench-tmp");
    root
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir_in(bench_root()).expect("tempdir under target/bench-tmp")
}

fn payload(seed: u64) -> Vec<u8> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..PAYLOAD_BYTES).map(|_| rng.gen()).collect()
}

fn options(durability: Durability) -> LogOptions {
    LogOptions {
        durability,
        ..LogOptions::default()
    }
}

// ---------------------------------------------------------------------------------------
// 1. Raw fdatasync baseline.

fn raw_fdatasync(c: &mut Criterion) {
    let mut g = c.benchmark_group("raw_fdatasync");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5));
    g.sampling_mode(SamplingMode::Flat);
    let buf = vec![0xa5u8; RAW_WRITE_BYTES];

    {
        let dir = tempdir();
        let f = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(dir.path().join("prewritten"))
            .unwrap();
        let zeros = vec![0u8; 1 << 20];
        let mut at = 0u64;
        while at < RAW_PREWRITTEN_BYTES {
            f.write_all_at(&zeros, at).unwrap();
            at += zeros.len() as u64;
        }
        f.sync_all().unwrap();
        File::open(dir.path()).unwrap().sync_all().unwrap();
        let mut off = 0u64;
        g.bench_function("prewritten", |b| {
            b.iter(|| {
                if off + RAW_WRITE_BYTES as u64 > RAW_PREWRITTEN_BYTES {
                    off = 0;
                }
                f.write_all_at(&buf, off).unwrap();
                f.sync_data().unwrap();
                off += RAW_WRITE_BYTES as u64;
            })
        });
    }

    {
        let dir = tempdir();
        let f = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(dir.path().join("append"))
            .unwrap();
        f.sync_all().unwrap();
        File::open(dir.path()).unwrap().sync_all().unwrap();
        let mut off = 0u64;
        g.bench_function("append", |b| {
            b.iter(|| {
                f.write_all_at(&buf, off).unwrap();
                f.sync_data().unwrap();
                off += RAW_WRITE_BYTES as u64;
            })
        });
    }
    g.finish();
}

// ---------------------------------------------------------------------------------------
// 2. Durable appends, one writer.

fn append_sync(c: &mut Criterion) {
    let mut g = c.benchmark_group("append_sync");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5));
    g.sampling_mode(SamplingMode::Flat);
    let dir = tempdir();
    let log = Log::open(dir.path(), options(Durability::Sync)).unwrap();
    let p = payload(1);
    g.bench_function("1_writer", |b| {
        b.iter(|| black_box(log.append(KIND, &p).unwrap()))
    });
    g.finish();
    log.close().unwrap();
}

// ---------------------------------------------------------------------------------------
// 3. Durable appends from many threads: records/s.

/// Appends `total` records from `writers` threads (as evenly as possible); returns the
/// time from the moment all threads are ready to the moment the last one is done.
fn concurrent_appends(log: &Log, writers: usize, total: u64, p: &[u8]) -> Duration {
    let barrier = Barrier::new(writers + 1);
    std::thread::scope(|s| {
        for t in 0..writers as u64 {
            let share = total / writers as u64 + u64::from(t < total % writers as u64);
            let barrier = &barrier;
            s.spawn(move || {
                barrier.wait();
                for _ in 0..share {
                    black_box(log.append(KIND, p).unwrap());
                }
            });
        }
        barrier.wait();
        let start = Instant::now();
        // Leaving the scope joins every thread.
        start
    })
    .elapsed()
}

fn append_sync_concurrent(c: &mut Criterion) {
    let mut g = c.benchmark_group("append_sync_concurrent");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(6));
    g.sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Elements(1));
    let p = payload(2);
    for writers in [8usize, 64] {
        let dir = tempdir();
        let log = Log::open(dir.path(), options(Durability::Sync)).unwrap();
        g.bench_with_input(
            BenchmarkId::new("writers", writers),
            &writers,
            |b, &writers| b.iter_custom(|iters| concurrent_appends(&log, writers, iters, &p)),
        );
        log.close().unwrap();
    }
    g.finish();
}

// ---------------------------------------------------------------------------------------
// 4a. Raw sequential write baseline: the page-cache and disk ceiling for buffered appends.

const SEQ_WRITE_BYTES: usize = 1 << 20;
const SEQ_FILE_BYTES: u64 = 64 << 20;

/// 1 MiB writes appended to a file; every 64 MiB (a segment's size) the file is synced with
/// `sync_data` and a new one started, as the log does when it seals a segment.
fn raw_sequential_write(c: &mut Criterion) {
    let mut g = c.benchmark_group("raw_sequential_write");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    g.sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Bytes(SEQ_WRITE_BYTES as u64));
    let dir = tempdir();
    let buf = vec![0x5au8; SEQ_WRITE_BYTES];
    let mut files = 0u64;
    let mut new_file = || {
        files += 1;
        File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(dir.path().join(format!("{files}")))
            .unwrap()
    };
    let mut f = new_file();
    let mut off = 0u64;
    g.bench_function("1MiB_writes_sync_every_64MiB", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                f.write_all_at(&buf, off).unwrap();
                off += SEQ_WRITE_BYTES as u64;
                if off >= SEQ_FILE_BYTES {
                    f.sync_data().unwrap();
                    f = new_file();
                    off = 0;
                }
            }
            f.sync_data().unwrap();
            start.elapsed()
        })
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------
// 4b. Buffered appends: records/s and MB/s.

fn append_buffered(c: &mut Criterion) {
    let mut g = c.benchmark_group("append_buffered");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    g.sampling_mode(SamplingMode::Flat);
    let p = payload(3);
    let dir = tempdir();
    let log = Log::open(dir.path(), options(Durability::Buffered)).unwrap();
    let mut run = |iters: u64| {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(log.append(KIND, &p).unwrap());
        }
        log.flush().unwrap();
        start.elapsed()
    };
    g.throughput(Throughput::Elements(1));
    g.bench_function("records", |b| b.iter_custom(&mut run));
    // Payload bytes per record (the framed size on disk is 224 bytes).
    g.throughput(Throughput::Bytes(PAYLOAD_BYTES as u64));
    g.bench_function("bytes", |b| b.iter_custom(&mut run));
    g.finish();
    log.close().unwrap();
}

// ---------------------------------------------------------------------------------------
// 5. Full scan of a 1M-record log.

/// A small metadata event, about 200 bytes encoded.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    id: u64,
    volume: u64,
    version: u64,
    size: u64,
    created_ns: u64,
    modified_ns: u64,
    name: String,
    attrs: Vec<(String, String)>,
}

fn meta(i: u64) -> Meta {
    Meta {
        id: i,
        volume: i % 97,
        version: i / 7,
        size: i.wrapping_mul(0x9e37_79b9) % (1 << 40),
        created_ns: 1_700_000_000_000_000_000 + i * 1_000,
        modified_ns: 1_700_000_000_000_000_000 + i * 1_003,
        name: format!("datasets/imagenet-2012/training/shard-{i:08}.parquet"),
        attrs: vec![
            ("owner".into(), "team-ml-infra".into()),
            ("content-type".into(), "application/x-parquet".into()),
            (
                "checksum".into(),
                format!("{:032x}", u128::from(i).wrapping_mul(0x2545_f491_4f6c_dd1d)),
            ),
            ("tier".into(), "hot".into()),
        ],
    }
}

/// Builds a log of `SCAN_RECORDS` encoded `Meta` records (buffered, then flushed).
fn build_scan_log() -> tempfile::TempDir {
    let dir = tempdir();
    let log = Log::open(dir.path(), options(Durability::Buffered)).unwrap();
    let mut total = 0usize;
    let start = Instant::now();
    for i in 0..SCAN_RECORDS {
        let b = codec::encode(&meta(i)).unwrap();
        total += b.len();
        log.append(KIND, &b).unwrap();
    }
    log.close().unwrap();
    eprintln!(
        "scan_1m: built {SCAN_RECORDS} records, {:.1} payload bytes each on average, in {:.2?}",
        total as f64 / SCAN_RECORDS as f64,
        start.elapsed()
    );
    dir
}

fn scan(c: &mut Criterion) {
    let dir = build_scan_log();
    let log = Log::open_read_only(dir.path(), LogOptions::default()).unwrap();
    assert_eq!(log.durable_lsn(), Lsn(SCAN_RECORDS));
    let mut g = c.benchmark_group("scan_1m");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10));
    g.sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Elements(SCAN_RECORDS));
    g.bench_function("next_record", |b| {
        b.iter(|| {
            let mut it = log.iter_from(Lsn(1));
            let mut n = 0u64;
            let mut bytes = 0usize;
            while let Some(r) = it.next_record().unwrap() {
                n += 1;
                bytes += r.payload.len();
            }
            assert_eq!(n, SCAN_RECORDS);
            black_box(bytes)
        })
    });
    g.bench_function("decode", |b| {
        b.iter(|| {
            let mut it = log.iter_from(Lsn(1));
            let mut n = 0u64;
            let mut sum = 0u64;
            while let Some(r) = it.next_record().unwrap() {
                let m: Meta = codec::decode(r.lsn, r.payload).unwrap();
                sum = sum.wrapping_add(m.id ^ m.attrs.len() as u64);
                n += 1;
            }
            assert_eq!(n, SCAN_RECORDS);
            black_box(sum)
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    raw_fdatasync,
    append_sync,
    append_sync_concurrent,
    raw_sequential_write,
    append_buffered,
    scan
);
criterion_main!(benches);
