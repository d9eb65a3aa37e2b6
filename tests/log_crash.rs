//! Crash simulation after every prefix of random operation sequences.
//!
//! For each seed a random sequence of operations (durable append, durable batch, buffered
//! append, flush, clean reopen) is generated. For every prefix length `k` the first `k`
//! operations run on a fresh `SimStorage`, the power is cut (dropping or tearing unsynced
//! writes), and the reopened log is checked against a model of what was appended and what
//! was acknowledged durable.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use mdslog::error::Error;
use mdslog::log::format;
use mdslog::log::fs::{
    CrashMode, FileBytes, LockFailure, LockGuard, SimStorage, Storage, StorageFile,
};
use mdslog::log::{Durability, Log, LogOptions, Lsn, Record, RecordKind};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

// ---------------------------------------------------------------------------------------
// A power switch in front of the simulated storage.
//
// `SimStorage::crash` kills the file handles opened before it, but directory operations
// (create, rename, sync_dir) carry no generation, so a writer thread still busy with a
// buffered append's rotation could go on changing the directory after the "power cut".
// The gate cuts the old process off atomically: every operation holds the read side of
// the lock, the crash takes the write side, and after it every operation of the old
// epoch fails with EIO, as if the process had died with the machine. The gate can also
// cut the power itself just before its n-th operation.

struct Power {
    sim: SimStorage,
    dead: RwLock<bool>,
    written: Mutex<Written>,
    /// Operations started so far (every call on the storage or one of its files).
    ops: AtomicU64,
    /// Cut the power just before operation number `.0`.
    trip: Option<(u64, CrashMode)>,
}

#[derive(Clone)]
struct Gate(Arc<Power>);

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gate")
    }
}

/// What the writer thread has written so far, for waiting until a buffered record is in
/// the file (the writer works on its own thread; without this the crash point would
/// depend on scheduling).
#[derive(Debug, Default)]
struct Written {
    /// The LSN of the last record frame written in full.
    lsn: u64,
    /// The write of those frames reached into the space kept for a footer, so the writer
    /// pre-writes zeros next.
    zeros_due: bool,
}

fn power_off() -> io::Error {
    io::Error::other("power is off")
}

impl Gate {
    fn new(sim: &SimStorage) -> Gate {
        Gate::tripping(sim, None)
    }

    fn tripping(sim: &SimStorage, trip: Option<(u64, CrashMode)>) -> Gate {
        Gate(Arc::new(Power {
            sim: sim.clone(),
            dead: RwLock::new(false),
            written: Mutex::default(),
            ops: AtomicU64::new(0),
            trip,
        }))
    }

    fn ops(&self) -> u64 {
        self.0.ops.load(Ordering::SeqCst)
    }

    fn is_dead(&self) -> bool {
        *self.0.dead.read().unwrap()
    }

    /// Runs one operation unless the power is off (or goes off now).
    fn run<T>(&self, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
        let n = self.0.ops.fetch_add(1, Ordering::SeqCst);
        if let Some((at, mode)) = self.0.trip {
            if n == at {
                self.crash(mode);
            }
        }
        let dead = self.0.dead.read().unwrap();
        if *dead {
            return Err(power_off());
        }
        f()
    }

    /// Cuts the power: no operation of this epoch is in flight or runs afterwards.
    fn crash(&self, mode: CrashMode) {
        let mut dead = self.0.dead.write().unwrap();
        *dead = true;
        self.0.sim.crash(mode);
    }

    /// Waits until the writer thread has written record `lsn` and the zeros after it.
    fn wait_written(&self, lsn: Lsn) {
        loop {
            let w = self.0.written.lock().unwrap();
            if (w.lsn >= lsn.0 && !w.zeros_due) || self.is_dead() {
                return;
            }
            drop(w);
            std::thread::yield_now();
        }
    }

    /// Waits until the writer thread has published `n` segments.
    fn wait_segments(&self, log: &Log, n: usize) {
        while log.segments().len() < n && !self.is_dead() {
            std::thread::yield_now();
        }
    }

    fn wrap(&self, inner: Box<dyn StorageFile>) -> Box<dyn StorageFile> {
        Box::new(GateFile {
            inner,
            gate: self.clone(),
        })
    }
}

struct GateFile {
    inner: Box<dyn StorageFile>,
    gate: Gate,
}

impl GateFile {
    /// Notes the last LSN among the record frames `buf` holds, if it holds any.
    fn note_write(&self, buf: &[u8], offset: u64, len_before: u64) {
        let mut w = self.gate.0.written.lock().unwrap();
        if buf.iter().all(|&b| b == 0) {
            w.zeros_due = false;
            return;
        }
        if buf.starts_with(&format::SEGMENT_MAGIC) {
            return;
        }
        let mut at = 0;
        let mut last = None;
        while at + format::FRAME_HEADER_BYTES <= buf.len() {
            let len = u32::from_le_bytes(buf[at..at + 4].try_into().unwrap());
            if len == format::FOOTER_MARKER {
                break;
            }
            last = Some(u64::from_le_bytes(buf[at + 8..at + 16].try_into().unwrap()));
            at += format::frame_bytes(len as usize);
        }
        if let Some(lsn) = last {
            w.lsn = w.lsn.max(lsn);
            // The writer keeps a footer's worth of zeros ahead of the frames.
            w.zeros_due = offset + buf.len() as u64 + format::FOOTER_BYTES as u64 > len_before;
        }
    }
}

impl StorageFile for GateFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.gate.run(|| self.inner.read_at(buf, offset))
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.gate.run(|| {
            let len_before = self.inner.len()?;
            self.inner.write_all_at(buf, offset)?;
            self.note_write(buf, offset, len_before);
            Ok(())
        })
    }
    fn sync_data(&self) -> io::Result<()> {
        self.gate.run(|| self.inner.sync_data())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.gate.run(|| self.inner.set_len(len))
    }
    fn len(&self) -> io::Result<u64> {
        self.gate.run(|| self.inner.len())
    }
}

impl Storage for Gate {
    fn location(&self) -> &Path {
        self.0.sim.location()
    }
    fn list(&self) -> io::Result<Vec<String>> {
        self.run(|| self.0.sim.list())
    }
    fn open(&self, name: &str) -> io::Result<Box<dyn StorageFile>> {
        self.run(|| self.0.sim.open(name)).map(|f| self.wrap(f))
    }
    fn create_new(&self, name: &str) -> io::Result<Box<dyn StorageFile>> {
        self.run(|| self.0.sim.create_new(name))
            .map(|f| self.wrap(f))
    }
    fn read_all(&self, name: &str) -> io::Result<FileBytes> {
        self.run(|| self.0.sim.read_all(name))
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.run(|| self.0.sim.rename(from, to))
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.run(|| self.0.sim.remove(name))
    }
    fn sync_dir(&self) -> io::Result<()> {
        self.run(|| self.0.sim.sync_dir())
    }
    fn try_lock(&self, name: &str) -> Result<Box<dyn LockGuard>, LockFailure> {
        self.run(|| Ok(())).map_err(LockFailure::Io)?;
        self.0.sim.try_lock(name)
    }
}

// ---------------------------------------------------------------------------------------
// Operations and the model.

const SEGMENT_BYTES_MAX: u64 = 4096;

fn options(buffer_bytes_max: usize) -> LogOptions {
    LogOptions {
        segment_bytes_max: SEGMENT_BYTES_MAX,
        prewrite_bytes: 1024,
        record_bytes_max: 512,
        batch_bytes_max: 2048,
        buffer_bytes_max,
        ..LogOptions::default()
    }
}

#[derive(Debug, Clone)]
enum Op {
    Append(Record),
    Batch(Vec<Record>),
    /// A buffered append; mostly one record, sometimes a small batch (so a torn write can
    /// cut a batch the crash test then must see whole or not at all).
    Buffered(Vec<Record>),
    Flush,
    Reopen,
}

fn random_record(rng: &mut SmallRng) -> Record {
    // Mostly small records, some large enough to fill a segment in a few appends.
    let len = if rng.gen_bool(0.35) {
        rng.gen_range(300..=512)
    } else {
        rng.gen_range(0..120)
    };
    let payload: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
    Record::new(RecordKind(rng.gen_range(1..=6)), payload)
}

fn random_ops(rng: &mut SmallRng, n: usize) -> Vec<Op> {
    (0..n)
        .map(|_| match rng.gen_range(0..100) {
            0..=29 => Op::Append(random_record(rng)),
            30..=54 => Op::Batch(
                (0..rng.gen_range(1..5))
                    .map(|_| random_record(rng))
                    .collect(),
            ),
            55..=84 => {
                let n = if rng.gen_bool(0.25) {
                    rng.gen_range(2..=3)
                } else {
                    1
                };
                Op::Buffered((0..n).map(|_| random_record(rng)).collect())
            }
            85..=93 => Op::Flush,
            _ => Op::Reopen,
        })
        .collect()
}

/// What was appended (LSN `i + 1` is `records[i]`) and what was acknowledged durable.
#[derive(Default)]
struct Model {
    records: Vec<Record>,
    /// The last LSN of every batch (a single append is a batch of one).
    batch_ends: Vec<u64>,
    /// Every record up to here was acknowledged durable.
    acked: u64,
    /// Bytes (header and frames) and records of the active segment, and segments sealed,
    /// by the rule of `LogOptions::segment_bytes_max`: a segment is sealed when the next
    /// batch and a footer would not fit.
    active_bytes: u64,
    active_records: u64,
    rotations: usize,
}

impl Model {
    fn next(&self) -> Lsn {
        Lsn(self.records.len() as u64 + 1)
    }
    /// Appends a batch to the model; returns whether it starts a new segment.
    fn push(&mut self, batch: &[Record]) -> bool {
        self.records.extend(batch.iter().cloned());
        self.batch_ends.push(self.records.len() as u64);
        let bytes: u64 = batch
            .iter()
            .map(|r| format::frame_bytes(r.payload.len()) as u64)
            .sum();
        if self.active_bytes == 0 {
            self.active_bytes = format::SEGMENT_HEADER_BYTES as u64;
        }
        let rotate = self.active_records > 0
            && self.active_bytes + bytes + format::FOOTER_BYTES as u64 > SEGMENT_BYTES_MAX;
        if rotate {
            self.rotations += 1;
            self.active_bytes = format::SEGMENT_HEADER_BYTES as u64;
            self.active_records = 0;
        }
        self.active_bytes += bytes;
        self.active_records += batch.len() as u64;
        rotate
    }
}

fn open(storage: Arc<dyn Storage>, opts: &LogOptions, ctx: &str) -> Log {
    match Log::open_with(storage, opts.clone()) {
        Ok(log) => log,
        Err(e) => panic!("{ctx}: open failed: {e}"),
    }
}

/// Runs `ops` against a writer on `gate`, updating the model and checking every answer.
fn run_ops(gate: &Gate, opts: &LogOptions, ops: &[Op], model: &mut Model, ctx: &str) -> Log {
    match try_ops(gate, opts, ops, model, ctx) {
        (Some(log), None) => log,
        (_, Some((i, e))) => panic!("{ctx}: op {i} failed: {e}"),
        (None, None) => unreachable!(),
    }
}

/// Runs `ops` until one fails (the power may go off under them). Records of the failing
/// operation are in the model (appended, maybe durable) but not acknowledged. Returns the
/// open log, if any, and the failure.
fn try_ops(
    gate: &Gate,
    opts: &LogOptions,
    ops: &[Op],
    model: &mut Model,
    ctx: &str,
) -> (Option<Log>, Option<(usize, Error)>) {
    let mut log = match Log::open_with(Arc::new(gate.clone()), opts.clone()) {
        Ok(log) => log,
        Err(e) => return (None, Some((0, e))),
    };
    for (i, op) in ops.iter().enumerate() {
        let ctx = format!("{ctx} op {i} ({op:?})");
        let want = model.next();
        let r = match op {
            Op::Append(r) => {
                model.push(std::slice::from_ref(r));
                log.append(r.kind, &r.payload).map(|lsn| {
                    assert_eq!(lsn, want, "{ctx}");
                    model.acked = lsn.0;
                })
            }
            Op::Batch(rs) => {
                model.push(rs);
                log.append_batch(rs.clone()).map(|range| {
                    assert_eq!(
                        (range.first, range.last),
                        (want, Lsn(want.0 + rs.len() as u64 - 1)),
                        "{ctx}"
                    );
                    model.acked = range.last.0;
                })
            }
            Op::Buffered(rs) => {
                let rotates = model.push(rs);
                let last = Lsn(want.0 + rs.len() as u64 - 1);
                log.submit(rs.clone(), Durability::Buffered)
                    .and_then(|t| log.wait(t))
                    .map(|range| {
                        assert_eq!((range.first, range.last), (want, last), "{ctx}");
                        if rotates {
                            // The writer thread seals the segment on its own: let it finish, so
                            // the crash point does not depend on scheduling.
                            gate.wait_segments(&log, model.rotations + 1);
                        }
                        if opts.buffer_bytes_max == 1 {
                            // Written through at once, unsynced: let the writer finish so the
                            // crash point does not depend on scheduling.
                            gate.wait_written(last);
                        }
                    })
            }
            Op::Flush => log.flush().map(|lsn| {
                assert_eq!(
                    lsn.0,
                    model.records.len() as u64,
                    "{ctx}: flush makes everything appended durable"
                );
                model.acked = lsn.0;
            }),
            Op::Reopen => {
                drop(log);
                log = match Log::open_with(Arc::new(gate.clone()), opts.clone()) {
                    Ok(log) => log,
                    Err(e) => return (None, Some((i, e))),
                };
                // A clean close flushes: everything appended is there, nothing was cut.
                assert_eq!(log.durable_lsn().0, model.records.len() as u64, "{ctx}");
                assert!(
                    log.recovery_report().torn_tail.is_none(),
                    "{ctx}: {:?}",
                    log.recovery_report()
                );
                model.acked = model.records.len() as u64;
                Ok(())
            }
        };
        if let Err(e) = r {
            return (Some(log), Some((i, e)));
        }
        assert!(
            log.durable_lsn().0 >= model.acked,
            "{ctx}: durable LSN below an acknowledged record"
        );
        if !matches!(op, Op::Buffered(_)) {
            assert_eq!(
                log.segments().len(),
                model.rotations + 1,
                "{ctx}: segments rotate by the documented rule"
            );
        }
    }
    (Some(log), None)
}

/// Reopens after a crash and checks the recovered log against the model, then proves the
/// log takes appends again and keeps them across another power cut. Returns the last
/// recovered LSN and whether recovery cut a torn tail.
fn check_recovered(
    sim: &SimStorage,
    opts: &LogOptions,
    model: &Model,
    clean_cut: bool,
    ctx: &str,
) -> (u64, bool) {
    let log = open(Arc::new(sim.clone()), opts, ctx);
    let last = log.durable_lsn().0;
    assert!(
        last >= model.acked,
        "{ctx}: acknowledged LSN {} lost (recovered up to {last})",
        model.acked
    );
    assert!(
        last <= model.records.len() as u64,
        "{ctx}: recovered {last} records, only {} appended",
        model.records.len()
    );
    assert!(
        last == 0 || model.batch_ends.contains(&last),
        "{ctx}: recovered LSN {last} ends inside a batch"
    );

    let got: Vec<_> = log
        .iter_from(Lsn(1))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{ctx}: read: {e}"));
    assert_eq!(
        got.len() as u64,
        last,
        "{ctx}: the log is not a dense prefix"
    );
    for (i, r) in got.iter().enumerate() {
        let want = &model.records[i];
        assert_eq!(r.lsn, Lsn(i as u64 + 1), "{ctx}");
        assert_eq!(
            (r.kind, &r.payload),
            (want.kind, &want.payload),
            "{ctx}: record {} differs",
            i + 1
        );
    }

    let report = log.recovery_report().clone();
    assert_eq!(
        (report.last_lsn, report.records),
        (Lsn(last), last),
        "{ctx}: {report:?}"
    );
    assert!(
        report.removed_temp_files.is_empty(),
        "{ctx}: a temporary name was made durable: {report:?}"
    );
    if clean_cut {
        assert!(
            report.torn_tail.is_none(),
            "{ctx}: only synced bytes survive, yet a tail was cut: {report:?}"
        );
    }
    if let Some(torn) = &report.torn_tail {
        let active = log.segments().last().cloned().expect("a segment");
        assert_eq!(
            torn.segment, active.id,
            "{ctx}: only the last segment may be torn: {report:?}"
        );
        assert!(torn.bytes > 0, "{ctx}: {report:?}");
        let side = torn
            .saved_to
            .as_ref()
            .expect("a writer keeps the cut bytes");
        let side = side.file_name().unwrap().to_str().unwrap();
        let saved = sim
            .file_bytes(side)
            .unwrap_or_else(|| panic!("{ctx}: side file {side} missing"));
        assert!(
            !saved.is_empty() && saved.len() as u64 <= torn.bytes,
            "{ctx}: side file of {} bytes",
            saved.len()
        );
    }

    // A reader beside the writer sees the same records and nothing left to cut.
    let ro = Log::open_read_only_with(Arc::new(sim.clone()), opts.clone())
        .unwrap_or_else(|e| panic!("{ctx}: {e}"));
    assert_eq!(ro.durable_lsn().0, last, "{ctx}");
    assert!(
        ro.recovery_report().torn_tail.is_none(),
        "{ctx}: the cut was not made durable"
    );
    drop(ro);

    // The log appends again, and those appends survive the next power cut.
    let more = vec![
        Record::new(RecordKind(9), b"after".to_vec()),
        Record::new(RecordKind(9), vec![7u8; 300]),
    ];
    let range = log
        .append_batch(more.clone())
        .unwrap_or_else(|e| panic!("{ctx}: append after reopen: {e}"));
    assert_eq!(
        (range.first, range.last),
        (Lsn(last + 1), Lsn(last + 2)),
        "{ctx}"
    );
    sim.crash(CrashMode::DropUnsynced);
    drop(log);
    let log = open(Arc::new(sim.clone()), opts, ctx);
    assert_eq!(
        log.durable_lsn().0,
        last + 2,
        "{ctx}: appends after recovery were lost"
    );
    assert!(log.recovery_report().torn_tail.is_none(), "{ctx}");
    let tail: Vec<_> = log
        .iter_from(Lsn(last + 1))
        .collect::<Result<_, _>>()
        .unwrap();
    let tail: Vec<_> = tail.into_iter().map(|r| (r.kind, r.payload)).collect();
    assert_eq!(
        tail,
        more.into_iter()
            .map(|r| (r.kind, r.payload))
            .collect::<Vec<_>>(),
        "{ctx}"
    );
    (last, report.torn_tail.is_some())
}

#[derive(Default)]
struct Tally {
    cases: usize,
    with_extras: usize,
    torn_cuts: usize,
    max_rotations: usize,
}

/// Runs every prefix of one seed's sequence, crashing with each mode.
fn crash_every_prefix(seed: u64, n_ops: usize, tally: &mut Tally) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let ops = random_ops(&mut rng, n_ops);
    // Half the seeds write buffered records to the file before any sync (a one-byte
    // buffer), so a crash has unsynced bytes to drop or tear; the others keep them in
    // memory until a flush, a durable append or a rotation.
    let opts = options(if seed.is_multiple_of(2) { 1 } else { 1 << 20 });
    for k in 0..=ops.len() {
        let torn = |i: u64| CrashMode::Torn {
            seed: (seed << 32) ^ ((k as u64) << 8) ^ i,
        };
        for mode in [CrashMode::DropUnsynced, torn(1), torn(2), torn(3)] {
            let ctx = format!("seed {seed} prefix {k} {mode:?}");
            let sim = SimStorage::new();
            let gate = Gate::new(&sim);
            let mut model = Model::default();
            let log = run_ops(&gate, &opts, &ops[..k], &mut model, &ctx);
            tally.max_rotations = tally.max_rotations.max(model.rotations);
            gate.crash(mode);
            drop(log);
            let (last, torn) = check_recovered(
                &sim,
                &opts,
                &model,
                matches!(mode, CrashMode::DropUnsynced),
                &ctx,
            );
            tally.cases += 1;
            tally.with_extras += (last > model.acked) as usize;
            tally.torn_cuts += torn as usize;
        }
    }
}

#[test]
fn crash_after_every_prefix_keeps_acknowledged_records() {
    let seeds = 0..40u64;
    let mut tally = Tally::default();
    for seed in seeds.clone() {
        crash_every_prefix(seed, 40, &mut tally);
    }
    eprintln!(
        "crash prefixes checked: {} ({} recovered unacknowledged records, {} cut a torn tail, up to {} rotations in a run)",
        tally.cases, tally.with_extras, tally.torn_cuts, tally.max_rotations
    );
    assert_eq!(tally.cases, seeds.count() * 41 * 4);
    // The sequences must exercise what they claim to: rotation, records that survive
    // without an acknowledgement, and torn tails that recovery cuts.
    assert!(
        tally.max_rotations >= 3,
        "sequences do not rotate segments enough"
    );
    assert!(
        tally.with_extras > 0,
        "no crash ever kept an unacknowledged record"
    );
    assert!(tally.torn_cuts > 0, "no crash ever left a torn tail");
}

/// A batch written to the file but not synced, torn by a crash at random points, is
/// recovered whole or not at all; the record queued after it never survives without it.
#[test]
fn torn_batch_write_is_all_or_nothing() {
    // A one-byte buffer makes the writer write every buffered group at once, unsynced.
    let opts = options(1);
    let (mut kept, mut dropped_partial) = (0, 0);
    for seed in 0..300u64 {
        let ctx = format!("torn batch seed {seed}");
        let sim = SimStorage::new();
        let gate = Gate::new(&sim);
        let mut model = Model::default();
        let first = vec![
            Record::new(RecordKind(1), vec![1u8; 40]),
            Record::new(RecordKind(1), vec![2u8; 200]),
        ];
        let log = run_ops(&gate, &opts, &[Op::Batch(first)], &mut model, &ctx);
        let batch: Vec<_> = (0..4)
            .map(|i| Record::new(RecordKind(2), vec![10 + i as u8; 90]))
            .collect();
        let after = Record::new(RecordKind(3), vec![20u8; 60]);
        let t = log.submit(batch.clone(), Durability::Buffered).unwrap();
        log.wait(t).unwrap();
        model.push(&batch);
        gate.wait_written(Lsn(6));
        let t = log
            .submit(vec![after.clone()], Durability::Buffered)
            .unwrap();
        log.wait(t).unwrap();
        model.push(std::slice::from_ref(&after));
        gate.wait_written(Lsn(7));
        gate.crash(CrashMode::Torn { seed });
        drop(log);
        let (last, torn) = check_recovered(&sim, &opts, &model, false, &ctx);
        match last {
            2 => dropped_partial += torn as usize,
            6 | 7 => kept += 1,
            _ => panic!("{ctx}: recovered up to LSN {last}, inside the batch"),
        }
    }
    eprintln!(
        "torn batch: kept whole {kept} times, cut part way and dropped {dropped_partial} times"
    );
    assert!(kept > 0, "no crash kept the written batch");
    assert!(
        dropped_partial > 0,
        "no crash tore the batch part way (recovery never had to drop a partial batch)"
    );
}

/// The power goes off just before each storage operation in turn (in the writer thread,
/// in rotation, segment creation, pre-writing, recovery on reopen): the call in flight
/// fails, the handle is poisoned, and recovery keeps every acknowledged record.
#[test]
fn crash_at_every_storage_operation() {
    let mut cases = 0;
    let (mut failed_in_open, mut failed_in_ops) = (0, 0);
    for seed in 100..112u64 {
        let mut rng = SmallRng::seed_from_u64(seed);
        let ops = random_ops(&mut rng, 40);
        let opts = options(if seed.is_multiple_of(2) { 1 } else { 1 << 20 });
        // A dry run counts the storage operations the sequence makes.
        let sim = SimStorage::new();
        let gate = Gate::new(&sim);
        let mut model = Model::default();
        drop(run_ops(
            &gate,
            &opts,
            &ops,
            &mut model,
            &format!("seed {seed} dry run"),
        ));
        let total = gate.ops();
        assert!(
            total > 80 && model.rotations >= 2,
            "seed {seed}: {total} storage operations, {} rotations",
            model.rotations
        );
        for at in 0..total {
            let mode = match at % 3 {
                0 => CrashMode::DropUnsynced,
                _ => CrashMode::Torn {
                    seed: seed << 32 | at,
                },
            };
            let ctx = format!("seed {seed} power off before storage op {at} of {total} ({mode:?})");
            let sim = SimStorage::new();
            let gate = Gate::tripping(&sim, Some((at, mode)));
            let mut model = Model::default();
            let (log, failure) = try_ops(&gate, &opts, &ops, &mut model, &ctx);
            match (log, failure) {
                // Every operation succeeded: the power goes off in the final close.
                (Some(log), None) => drop(log),
                // The failing call was an open: its recovery or segment creation failed.
                (None, Some((i, e))) => {
                    assert!(matches!(e, Error::Io { .. }), "{ctx}: op {i}: {e:?}");
                    failed_in_open += 1;
                }
                (Some(log), Some((i, e))) => {
                    assert!(matches!(e, Error::Poisoned { .. }), "{ctx}: op {i}: {e:?}");
                    assert!(
                        matches!(log.append(RecordKind(1), b"x"), Err(Error::Poisoned { .. })),
                        "{ctx}"
                    );
                    assert!(matches!(log.flush(), Err(Error::Poisoned { .. })), "{ctx}");
                    drop(log);
                    failed_in_ops += 1;
                }
                (None, None) => unreachable!(),
            }
            assert!(gate.is_dead(), "{ctx}: the power never went off");
            check_recovered(
                &sim,
                &opts,
                &model,
                matches!(mode, CrashMode::DropUnsynced),
                &ctx,
            );
            cases += 1;
        }
    }
    eprintln!(
        "power cut before each of {cases} storage operations ({failed_in_open} failed an open, {failed_in_ops} an append or flush)"
    );
    assert!(failed_in_open > 0 && failed_in_ops > 0);
}
