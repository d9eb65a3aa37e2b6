//! Storage faults at the store level (`Store::open_with` on `SimStorage`): what
//! `log_faults` and `log_crash` check of raw records, checked here of the store as a
//! whole (mutations, projections, checkpoints, shipping), against an uninterrupted twin.
//!
//! A deterministic workload (volume sets, imported branches, extensions, renames, metadata
//! edits, blob ids, sizes, bushes, volumes, deletions, explicit checkpoints and automatic
//! ones every few records; segments of 4 KiB, so it rotates several times) runs once
//! without faults: the twin, whose state after every operation is the model. Then it runs
//! again on fresh simulated storage once per injection point, with one fault:
//!
//! * **ENOSPC** at every write of the second half of the workload, cut at the write's
//!   first byte, second byte, middle and last byte. `Faults::write_bytes_left` is the
//!   only short write `SimStorage` has: the write that crosses the limit writes the bytes
//!   that fit and fails with ENOSPC (a write that succeeds short does not exist at this
//!   interface: `StorageFile::write_all_at` writes all or fails);
//! * **EIO on a write** at every write, and a **failed fsync** at every file or directory
//!   sync, of the same half;
//! * **EIO on a read** at every read of an open (recovery, saving a torn tail, loading a
//!   checkpoint, checking it against the log, replay) and of the queries that read the log
//!   (`as_of`, `as_of_time`, a sync's export);
//! * a **power cut** (`SimStorage::crash`, dropping or tearing unsynced writes) just
//!   before every storage operation of every segment rotation, every checkpoint (explicit
//!   and automatic) and every ship of the primary into a follower on simulated storage.
//!
//! After each fault the failing call returns a typed error and nothing panics:
//! `Poisoned` for a mutation (and every later call until the reopen), `Io` for a
//! checkpoint, an open, a query or a ship; a failed checkpoint or read poisons nothing.
//! Then (the poisoned handle dropped, or the power cut) the store reopens to the twin's
//! state after some operation between the last acknowledged one and the failing one,
//! goes on with the rest of the workload to the twin's final state, and keeps it across
//! one more power cut. A follower cut mid-ship opens (promoted, as a store) to the
//! primary's state as of its last LSN, which is at least what the last finished ship
//! reported; shipping again completes it.
//!
//! Not repeated here: ENOSPC at every byte of raw appends (`log_faults`), power cuts at
//! every storage operation of raw appends (`log_crash`), failed writes, syncs, reads and
//! full disks on the follower's side of a ship (`ship_crash`), faults in a sync's receiver
//! (`sync_resume`).
//!
//! Each test prints the injection points it covered (`cargo test --release --test
//! store_faults -- --nocapture`).

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use mdslog::log::fs::{
    CrashMode, Faults, FileBytes, LockFailure, LockGuard, SimStorage, Storage, StorageFile,
};
use mdslog::ship::StorageTarget;
use mdslog::state::query::CanonicalDump;
use mdslog::sync::{sync, SyncMode};
use mdslog::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------
// Options.

fn log_options() -> LogOptions {
    LogOptions {
        segment_bytes_max: 4096,
        prewrite_bytes: 512,
        record_bytes_max: 2048,
        batch_bytes_max: 2072,
        ..LogOptions::default()
    }
}

fn store_options() -> StoreOptions {
    StoreOptions {
        log: log_options(),
        actor: Some("faults".into()),
    }
}

/// Automatic checkpoints once this many records follow the last one.
const CHECKPOINT_EVERY: u64 = 9;

fn open_store(storage: Arc<dyn Storage>, ctx: &str) -> Store {
    let store = Store::open_with(storage, store_options())
        .unwrap_or_else(|e| panic!("{ctx}: open failed: {e}"));
    store.set_checkpoint_every(Some(CHECKPOINT_EVERY));
    store
}

// ---------------------------------------------------------------------------------------
// A power switch and tracer in front of the simulated storage.
//
// Every call on the storage or one of its files is one numbered operation. The gate can
// cut the power just before operation n: it takes the write side of a lock every
// operation holds the read side of, crashes the simulated storage, and from then on every
// operation of this "process" fails (`SimStorage::crash` kills old file handles, but not
// directory operations). It also records what each operation was, so that a run can find
// the windows of a rotation, a checkpoint or a ship, and check that a faulted run makes
// the very operations the uninterrupted one made.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpKind {
    Read,
    ReadAll,
    Write,
    Sync,
    SyncDir,
    SetLen,
    Len,
    Open,
    Create,
    Rename,
    Remove,
    List,
    Lock,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Traced {
    kind: OpKind,
    name: String,
    bytes: u64,
}

struct Power {
    sim: SimStorage,
    dead: RwLock<bool>,
    ops: AtomicU64,
    trip: Option<(u64, CrashMode)>,
    trace: Mutex<Vec<Traced>>,
}

#[derive(Clone)]
struct Gate(Arc<Power>);

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gate")
    }
}

fn power_off() -> io::Error {
    io::Error::other("power is off")
}

impl Gate {
    fn new(sim: &SimStorage, trip: Option<(u64, CrashMode)>) -> Gate {
        Gate(Arc::new(Power {
            sim: sim.clone(),
            dead: RwLock::new(false),
            ops: AtomicU64::new(0),
            trip,
            trace: Mutex::default(),
        }))
    }

    fn ops(&self) -> u64 {
        self.0.ops.load(Ordering::SeqCst)
    }

    fn is_dead(&self) -> bool {
        *self.0.dead.read().unwrap()
    }

    fn trace(&self) -> Vec<Traced> {
        self.0.trace.lock().unwrap().clone()
    }

    fn run<T>(
        &self,
        kind: OpKind,
        name: &str,
        bytes: usize,
        f: impl FnOnce() -> io::Result<T>,
    ) -> io::Result<T> {
        let n = {
            // Numbering and tracing under one lock: the trace is in operation order.
            let mut t = self.0.trace.lock().unwrap();
            let n = self.0.ops.fetch_add(1, Ordering::SeqCst);
            t.push(Traced {
                kind,
                name: name.to_string(),
                bytes: bytes as u64,
            });
            n
        };
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

    /// Cuts the power: no operation of this process is in flight or runs afterwards.
    fn crash(&self, mode: CrashMode) {
        let mut dead = self.0.dead.write().unwrap();
        *dead = true;
        self.0.sim.crash(mode);
    }

    fn wrap(&self, inner: Box<dyn StorageFile>, name: &str) -> Box<dyn StorageFile> {
        Box::new(GateFile {
            inner,
            gate: self.clone(),
            name: name.to_string(),
        })
    }
}

struct GateFile {
    inner: Box<dyn StorageFile>,
    gate: Gate,
    name: String,
}

impl StorageFile for GateFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let len = buf.len();
        self.gate.run(OpKind::Read, &self.name, len, || {
            self.inner.read_at(buf, offset)
        })
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.gate.run(OpKind::Write, &self.name, buf.len(), || {
            self.inner.write_all_at(buf, offset)
        })
    }
    fn sync_data(&self) -> io::Result<()> {
        self.gate
            .run(OpKind::Sync, &self.name, 0, || self.inner.sync_data())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.gate
            .run(OpKind::SetLen, &self.name, 0, || self.inner.set_len(len))
    }
    fn len(&self) -> io::Result<u64> {
        self.gate
            .run(OpKind::Len, &self.name, 0, || self.inner.len())
    }
}

impl Storage for Gate {
    fn location(&self) -> &Path {
        self.0.sim.location()
    }
    fn list(&self) -> io::Result<Vec<String>> {
        self.run(OpKind::List, "", 0, || self.0.sim.list())
    }
    fn open(&self, name: &str) -> io::Result<Box<dyn StorageFile>> {
        self.run(OpKind::Open, name, 0, || self.0.sim.open(name))
            .map(|f| self.wrap(f, name))
    }
    fn create_new(&self, name: &str) -> io::Result<Box<dyn StorageFile>> {
        self.run(OpKind::Create, name, 0, || self.0.sim.create_new(name))
            .map(|f| self.wrap(f, name))
    }
    fn read_all(&self, name: &str) -> io::Result<FileBytes> {
        self.run(OpKind::ReadAll, name, 0, || self.0.sim.read_all(name))
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.run(OpKind::Rename, to, 0, || self.0.sim.rename(from, to))
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.run(OpKind::Remove, name, 0, || self.0.sim.remove(name))
    }
    fn sync_dir(&self) -> io::Result<()> {
        self.run(OpKind::SyncDir, "", 0, || self.0.sim.sync_dir())
    }
    fn try_lock(&self, name: &str) -> Result<Box<dyn LockGuard>, LockFailure> {
        self.run(OpKind::Lock, name, 0, || Ok(()))
            .map_err(LockFailure::Io)?;
        self.0.sim.try_lock(name)
    }
}

/// A deep copy of a simulated storage: every file's current bytes, made durable.
fn sim_copy(sim: &SimStorage) -> SimStorage {
    let copy = SimStorage::new();
    for name in sim.list().unwrap() {
        if let Some(bytes) = sim.file_bytes(&name) {
            copy.put_file(&name, bytes);
        }
    }
    copy
}

// ---------------------------------------------------------------------------------------
// The workload: every mutation a client makes, with ids and times drawn from a seeded
// generator, so that two runs write the same states.

#[derive(Debug, Clone)]
enum Op {
    ImportVolumeSet(Box<VolumeSet>),
    ImportBranch(BranchId, String, Vec<Snapshot>),
    Extend(Vec<Snapshot>),
    Rename(VolumeSetId, String, String),
    UpdateVolumeSet(Box<VolumeSet>),
    UpdateSnapshots(Vec<Snapshot>),
    SetBlob(SnapshotId, BlobId, u64),
    SetSize(VolumeSetId, u64),
    ImportBush(Bush),
    ImportVolume(Box<Volume>),
    DeleteVolume(VolumeId),
    DeleteSnapshots(Vec<SnapshotId>),
    Checkpoint,
}

impl Op {
    fn apply(&self, st: &Store) -> Result<()> {
        match self {
            Op::ImportVolumeSet(vs) => st.import_volume_set(vs),
            Op::ImportBranch(id, name, c) => st.import_branch(*id, name, c),
            Op::Extend(c) => st.extend_branch(c),
            Op::Rename(vs, old, new) => st.rename_branch(*vs, old, new),
            Op::UpdateVolumeSet(vs) => st.update_volume_set(vs, None).map(|_| ()),
            Op::UpdateSnapshots(v) => {
                let pairs: Vec<SnapshotPair> = v.iter().map(|s| (s.clone(), None)).collect();
                st.update_snapshots(&pairs).map(|_| ())
            }
            Op::SetBlob(id, blob, size) => st.set_blob_id_and_size(*id, blob, *size),
            Op::SetSize(vs, size) => st.set_volume_set_size(*vs, *size),
            Op::ImportBush(b) => st.import_bush(b),
            Op::ImportVolume(v) => st.import_volume(v),
            Op::DeleteVolume(id) => st.delete_volume(id),
            Op::DeleteSnapshots(ids) => st.delete_snapshots(ids, None),
            Op::Checkpoint => st.checkpoint().map(|_| ()),
        }
    }

    fn is_checkpoint(&self) -> bool {
        matches!(self, Op::Checkpoint)
    }
}

struct Gen {
    rng: SmallRng,
    n: u64,
    vss: Vec<VolumeSetId>,
    /// A volume set without a root branch yet.
    fresh: Option<VolumeSetId>,
    /// Branches that grow: (volume set, name, tip).
    branches: Vec<(VolumeSetId, String, SnapshotId)>,
    /// Snapshots that stay: edits, blobs, volumes and forks start on them.
    snaps: Vec<(VolumeSetId, SnapshotId)>,
    /// Roots without a bush yet.
    roots: Vec<(VolumeSetId, SnapshotId)>,
    /// Short-lived branches, deleted whole later (nothing starts on them).
    doomed: Vec<Vec<SnapshotId>>,
    volumes: Vec<VolumeId>,
}

impl Gen {
    fn new(seed: u64) -> Gen {
        Gen {
            rng: SmallRng::seed_from_u64(seed),
            n: 0,
            vss: Vec::new(),
            fresh: None,
            branches: Vec::new(),
            snaps: Vec::new(),
            roots: Vec::new(),
            doomed: Vec::new(),
            volumes: Vec::new(),
        }
    }

    fn uuid(&mut self) -> Uuid {
        Uuid::from_u128(self.rng.gen())
    }

    fn tick(&mut self) -> u64 {
        self.n += 1;
        self.n
    }

    fn snapshot(&mut self, vs: VolumeSetId, parent: Option<SnapshotId>) -> Snapshot {
        let n = self.tick();
        let mut s = Snapshot::new(SnapshotId(self.uuid()), vs, parent);
        s.name = format!("s{n}");
        s.description = "d".repeat(self.rng.gen_range(0..300));
        s.created = Timestamp(1_000_000 + n as i64);
        s.last_modified = s.created;
        s.size = self.rng.gen_range(0..1 << 30);
        s
    }

    fn chain(&mut self, vs: VolumeSetId, parent: Option<SnapshotId>, k: usize) -> Vec<Snapshot> {
        let mut v: Vec<Snapshot> = Vec::new();
        let mut p = parent;
        for _ in 0..k {
            let s = self.snapshot(vs, p);
            p = Some(s.id);
            v.push(s);
        }
        v
    }

    fn pick<T: Clone>(&mut self, v: &[T]) -> T {
        v[self.rng.gen_range(0..v.len())].clone()
    }

    /// The next operation, valid against the state of `st` (the twin).
    fn next(&mut self, st: &Store) -> Op {
        if let Some(vs) = self.fresh.take() {
            let k = self.rng.gen_range(1..=3);
            let c = self.chain(vs, None, k);
            self.roots.push((vs, c[0].id));
            self.snaps.extend(c.iter().map(|s| (vs, s.id)));
            self.branches
                .push((vs, "master".into(), c.last().unwrap().id));
            return Op::ImportBranch(BranchId(self.uuid()), "master".into(), c);
        }
        let roll = self.rng.gen_range(0..100);
        if self.vss.is_empty() || roll < 5 {
            let n = self.tick();
            let mut vs = VolumeSet::new(VolumeSetId(self.uuid()), format!("vs{n}"));
            vs.prefix = "acme".into();
            vs.description = "a volume set".into();
            vs.attrs.insert("team".into(), "storage".into());
            vs.created = Timestamp(n as i64);
            vs.last_modified = vs.created;
            self.vss.push(vs.id);
            self.fresh = Some(vs.id);
            return Op::ImportVolumeSet(Box::new(vs));
        }
        match roll {
            5..=39 => {
                let i = self.rng.gen_range(0..self.branches.len());
                let (vs, _, tip) = self.branches[i].clone();
                let k = self.rng.gen_range(1..=3);
                let c = self.chain(vs, Some(tip), k);
                self.snaps.extend(c.iter().map(|s| (vs, s.id)));
                self.branches[i].2 = c.last().unwrap().id;
                Op::Extend(c)
            }
            40..=47 => {
                let (vs, from) = self.pick(&self.snaps.clone());
                let name = format!("b{}", self.tick());
                let k = self.rng.gen_range(1..=2);
                let c = self.chain(vs, Some(from), k);
                self.snaps.extend(c.iter().map(|s| (vs, s.id)));
                self.branches.push((vs, name.clone(), c.last().unwrap().id));
                Op::ImportBranch(BranchId(self.uuid()), name, c)
            }
            48..=53 => {
                let (vs, from) = self.pick(&self.snaps.clone());
                let name = format!("tmp{}", self.tick());
                let k = self.rng.gen_range(1..=3);
                let c = self.chain(vs, Some(from), k);
                self.doomed.push(c.iter().map(|s| s.id).collect());
                Op::ImportBranch(BranchId(self.uuid()), name, c)
            }
            54..=58 if !self.doomed.is_empty() => {
                let i = self.rng.gen_range(0..self.doomed.len());
                let mut ids = self.doomed.swap_remove(i);
                ids.reverse();
                Op::DeleteSnapshots(ids)
            }
            54..=62 => {
                let i = self.rng.gen_range(0..self.branches.len());
                let (vs, old, _) = self.branches[i].clone();
                let new = format!("r{}", self.tick());
                self.branches[i].1 = new.clone();
                Op::Rename(vs, old, new)
            }
            63..=69 => {
                let vs = self.pick(&self.vss.clone());
                let mut cur = st.get_volume_set(vs).unwrap();
                let n = self.tick();
                cur.attrs.insert(format!("k{}", n % 4), format!("v{n}"));
                cur.description = format!("edited {n}");
                cur.last_modified = Timestamp(2_000_000 + n as i64);
                Op::UpdateVolumeSet(Box::new(cur))
            }
            70..=77 => {
                let k = self.rng.gen_range(1..=3);
                let mut v: Vec<Snapshot> = Vec::new();
                for _ in 0..k {
                    let (_, id) = self.pick(&self.snaps.clone());
                    if v.iter().any(|s| s.id == id) {
                        continue;
                    }
                    let mut cur = st.get_snapshot(id).unwrap();
                    let n = self.tick();
                    cur.attrs.insert("note".into(), format!("n{n}"));
                    cur.name = format!("renamed {n}");
                    cur.last_modified = Timestamp(3_000_000 + n as i64);
                    v.push(cur);
                }
                Op::UpdateSnapshots(v)
            }
            78..=83 => {
                let (_, id) = self.pick(&self.snaps.clone());
                let n = self.tick();
                Op::SetBlob(id, BlobId::from(format!("blob-{n}").as_str()), n)
            }
            84..=86 => {
                let vs = self.pick(&self.vss.clone());
                Op::SetSize(vs, self.tick() * 1000)
            }
            87..=89 if !self.roots.is_empty() => {
                let (vs, root) = self.roots.swap_remove(0);
                let n = self.tick() as i64;
                Op::ImportBush(Bush {
                    root,
                    volume_set: vs,
                    data_server: n,
                })
            }
            87..=93 => {
                let (vs, base) = self.pick(&self.snaps.clone());
                let n = self.tick();
                let id = VolumeId::from(format!("vol-{n}").as_str());
                self.volumes.push(id.clone());
                Op::ImportVolume(Box::new(Volume {
                    id,
                    volume_set: vs,
                    base: Some(base),
                    mount_path: format!("/mnt/vol-{n}"),
                    attrs: Attrs::new(),
                    created: Timestamp(n as i64),
                    size: n,
                    name: format!("volume {n}"),
                }))
            }
            94..=96 if !self.volumes.is_empty() => {
                let i = self.rng.gen_range(0..self.volumes.len());
                Op::DeleteVolume(self.volumes.swap_remove(i))
            }
            _ => Op::Checkpoint,
        }
    }
}

/// The uninterrupted run: the model every faulted run is checked against.
struct Reference {
    seed: u64,
    ops: Vec<Op>,
    /// The twin after its first `i` operations: `lsn[i]`, `dumps[i]`.
    lsn: Vec<Lsn>,
    dumps: Vec<CanonicalDump>,
    /// Segments after the first `i` operations.
    segments: Vec<usize>,
    /// The storage operations of the run; operation `i` of the workload made
    /// `trace[starts[i]..starts[i + 1]]`.
    trace: Vec<Traced>,
    starts: Vec<usize>,
    /// Faults are armed from this operation on.
    prefill: usize,
}

impl Reference {
    fn build(seed: u64, n_ops: usize) -> Reference {
        let sim = SimStorage::new();
        let gate = Gate::new(&sim, None);
        let store = open_store(Arc::new(gate.clone()), "reference");
        let mut g = Gen::new(seed);
        let mut r = Reference {
            seed,
            ops: Vec::new(),
            lsn: vec![store.durable_lsn()],
            dumps: vec![store.canonical_dump().unwrap()],
            segments: vec![store.log().segments().len()],
            trace: Vec::new(),
            starts: vec![gate.ops() as usize],
            prefill: n_ops / 2,
        };
        for i in 0..n_ops {
            // Explicit checkpoints at fixed places, and some more at random.
            let op = if i % 11 == 7 {
                Op::Checkpoint
            } else {
                g.next(&store)
            };
            op.apply(&store)
                .unwrap_or_else(|e| panic!("seed {seed}: reference op {i} ({op:?}): {e}"));
            assert!(store.last_checkpoint_error().is_none());
            r.ops.push(op);
            r.lsn.push(store.durable_lsn());
            r.dumps.push(store.canonical_dump().unwrap());
            r.segments.push(store.log().segments().len());
            r.starts.push(gate.ops() as usize);
        }
        drop(store);
        r.trace = gate.trace();
        r
    }

    fn n(&self) -> usize {
        self.ops.len()
    }

    /// The workload operation that made storage operation `t`.
    fn op_of(&self, t: usize) -> usize {
        self.starts.partition_point(|&s| s <= t) - 1
    }

    /// Storage operations of the faulted half (from `prefill` on): (index, what).
    fn armed_trace(&self) -> impl Iterator<Item = (usize, &Traced)> {
        let (a, b) = (self.starts[self.prefill], self.starts[self.n()]);
        self.trace[a..b]
            .iter()
            .enumerate()
            .map(move |(i, t)| (a + i, t))
    }

    fn a_volume_set(&self) -> VolumeSetId {
        match &self.ops[0] {
            Op::ImportVolumeSet(vs) => vs.id,
            other => panic!("the workload starts with {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// One faulted run.

#[derive(Debug, Clone, Copy)]
enum Fault {
    /// The disk is full after this many more bytes (from `prefill` on).
    Space(u64),
    /// The n-th write from `prefill` on fails with EIO.
    WriteError(u64),
    /// The n-th file or directory sync from `prefill` on fails.
    SyncError(u64),
    /// The power goes off just before storage operation n (counted from the open).
    Power(u64, CrashMode),
}

impl Fault {
    fn plan(self) -> Option<Faults> {
        match self {
            Fault::Space(n) => Some(Faults {
                write_bytes_left: Some(n),
                ..Faults::default()
            }),
            Fault::WriteError(n) => Some(Faults {
                write_error_in: Some(n),
                ..Faults::default()
            }),
            Fault::SyncError(n) => Some(Faults {
                sync_error_in: Some(n),
                ..Faults::default()
            }),
            Fault::Power(..) => None,
        }
    }
}

/// What happens between the failure and the reopen (a power cut is itself the failure for
/// `Fault::Power`).
#[derive(Debug, Clone, Copy)]
enum After {
    /// The process drops the poisoned store: the disk keeps everything written.
    Drop,
    Crash(CrashMode),
}

fn after_for(i: u64, seed: u64) -> After {
    match i % 3 {
        0 => After::Drop,
        1 => After::Crash(CrashMode::DropUnsynced),
        _ => After::Crash(CrashMode::Torn {
            seed: seed << 32 ^ i,
        }),
    }
}

/// Where a faulted run failed.
#[derive(Debug, Clone)]
struct Hit {
    /// The workload operation whose call failed (or whose automatic checkpoint did).
    op: usize,
    error: String,
}

fn is_poisoned<T>(r: &Result<T>) -> bool {
    matches!(r, Err(Error::Poisoned { .. }))
}

/// Runs the workload with one fault, then recovers and checks. Returns where the run
/// failed (`None`: the fault lies beyond the workload's last operation).
fn run_case(r: &Reference, fault: Fault, after: After, ctx: &str) -> Option<Hit> {
    let sim = SimStorage::new();
    let trip = match fault {
        Fault::Power(at, mode) => Some((at, mode)),
        _ => None,
    };
    let gate = Gate::new(&sim, trip);
    let store = open_store(Arc::new(gate.clone()), ctx);
    let mut hit: Option<Hit> = None;
    let mut acked = 0;
    let mut attempted = 0;
    for (i, op) in r.ops.iter().enumerate() {
        if i == r.prefill {
            if let Some(plan) = fault.plan() {
                sim.set_faults(plan);
            }
        }
        attempted = i + 1;
        match op.apply(&store) {
            Ok(()) => {
                acked = i + 1;
                assert_eq!(
                    store.durable_lsn(),
                    r.lsn[i + 1],
                    "{ctx}: op {i} ({op:?}) acknowledged at another LSN than the twin's"
                );
                if let Some(e) = store.last_checkpoint_error() {
                    // An automatic checkpoint failed: the mutation is durable all the same.
                    hit.get_or_insert(Hit {
                        op: i,
                        error: format!("automatic checkpoint: {e}"),
                    });
                }
            }
            Err(e) if op.is_checkpoint() => {
                assert!(
                    matches!(e, Error::Io { .. }),
                    "{ctx}: op {i}: a failed checkpoint is an I/O error, not {e:?}"
                );
                // It poisons nothing: the state is intact and mutations go on.
                assert_eq!(
                    store.canonical_dump().unwrap_or_else(|e| panic!(
                        "{ctx}: op {i}: read after a failed checkpoint: {e}"
                    )),
                    r.dumps[i],
                    "{ctx}: op {i}"
                );
                acked = i + 1;
                hit.get_or_insert(Hit {
                    op: i,
                    error: e.to_string(),
                });
            }
            Err(e) => {
                assert!(
                    matches!(e, Error::Poisoned { .. }),
                    "{ctx}: op {i} ({op:?}): a failed mutation poisons the store, got {e:?}"
                );
                // Every later call fails the same way until the store is reopened.
                assert!(is_poisoned(&store.canonical_dump()), "{ctx}: read");
                assert!(is_poisoned(&store.counts()), "{ctx}: counts");
                assert!(
                    is_poisoned(&store.set_volume_set_size(r.a_volume_set(), 1)),
                    "{ctx}: mutation"
                );
                assert!(is_poisoned(&store.checkpoint()), "{ctx}: checkpoint");
                sim.clear_faults();
                assert!(
                    is_poisoned(&store.set_volume_set_size(r.a_volume_set(), 2)),
                    "{ctx}: a healthy disk again does not revive the handle"
                );
                hit.get_or_insert(Hit {
                    op: i,
                    error: e.to_string(),
                });
                break;
            }
        }
    }
    sim.clear_faults();
    if let Fault::Power(at, _) = fault {
        let trace = gate.trace();
        assert_eq!(
            trace.get(at as usize),
            r.trace.get(at as usize),
            "{ctx}: the run made other storage operations than the twin"
        );
        assert!(gate.is_dead(), "{ctx}: the power never went off");
        hit.get_or_insert(Hit {
            op: r.n(),
            error: "power cut after the last operation".into(),
        });
    } else if let After::Crash(mode) = after {
        gate.crash(mode);
    }
    drop(store);
    if hit.is_some() {
        let clean = matches!(fault, Fault::Power(_, CrashMode::DropUnsynced))
            || matches!(after, After::Crash(CrashMode::DropUnsynced))
                && !matches!(fault, Fault::Power(..));
        check_reopen(&sim, r, acked, attempted, clean, ctx);
    }
    hit
}

/// Reopens after a failure and checks the store against the twin: the state of some
/// operation between the last acknowledged and the last attempted; then the rest of the
/// workload leads to the twin's final state, which survives one more power cut.
fn check_reopen(
    sim: &SimStorage,
    r: &Reference,
    acked: usize,
    attempted: usize,
    clean: bool,
    ctx: &str,
) {
    let store = open_store(Arc::new(sim.clone()), &format!("{ctx}: reopen"));
    let lsn = store.durable_lsn();
    let j = (acked..=attempted)
        .rev()
        .find(|&j| r.lsn[j] == lsn)
        .unwrap_or_else(|| {
            panic!(
                "{ctx}: recovered up to LSN {lsn}, which ends no operation between the last acknowledged (op {acked}, LSN {}) and the last attempted (op {attempted}, LSN {})",
                r.lsn[acked], r.lsn[attempted]
            )
        });
    assert!(
        store.canonical_dump().unwrap() == r.dumps[j],
        "{ctx}: the recovered state (LSN {lsn}) is not the twin's after op {j}"
    );
    assert!(
        store.checkpoint_warnings().is_empty(),
        "{ctx}: {:?}",
        store.checkpoint_warnings()
    );
    if let Some(c) = store.opened_from_checkpoint() {
        assert!(
            c <= lsn,
            "{ctx}: opened from a checkpoint at {c}, past {lsn}"
        );
    }
    if clean {
        let report = store.recovery_report();
        assert!(
            report.torn_tail.is_none() && report.removed_temp_files.is_empty(),
            "{ctx}: only synced bytes survived, yet recovery cut something: {report:?}"
        );
    }
    for (k, op) in r.ops.iter().enumerate().skip(j) {
        op.apply(&store)
            .unwrap_or_else(|e| panic!("{ctx}: op {k} ({op:?}) after the reopen: {e}"));
        assert_eq!(
            store.durable_lsn(),
            r.lsn[k + 1],
            "{ctx}: op {k} after the reopen"
        );
    }
    assert!(
        store.last_checkpoint_error().is_none(),
        "{ctx}: {:?}",
        store.last_checkpoint_error()
    );
    let end = r.dumps.last().unwrap();
    assert!(
        store.canonical_dump().unwrap() == *end,
        "{ctx}: after the rest of the workload"
    );
    sim.crash(CrashMode::DropUnsynced);
    drop(store);
    let store = open_store(Arc::new(sim.clone()), &format!("{ctx}: final reopen"));
    assert_eq!(store.durable_lsn(), *r.lsn.last().unwrap(), "{ctx}");
    assert!(
        store.canonical_dump().unwrap() == *end,
        "{ctx}: after a final power cut"
    );
}

fn seeds() -> std::ops::Range<u64> {
    0..4
}

const OPS: usize = 72;

fn references() -> Vec<Reference> {
    seeds()
        .map(|seed| {
            let r = Reference::build(seed, OPS);
            let rotations = r.segments[r.n()] - r.segments[r.prefill];
            assert!(
                rotations >= 2,
                "seed {seed}: the faulted half rotates segments only {rotations} times"
            );
            assert!(
                r.ops[r.prefill..].iter().any(Op::is_checkpoint),
                "seed {seed}: no explicit checkpoint in the faulted half"
            );
            r
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Write faults: ENOSPC (short writes) and EIO on every write, a failed fsync at every sync.

/// Runs every case of one sweep; checks that each one failed where the twin made the
/// faulted storage operation. Returns (cases run, cases that hit).
fn sweep(
    r: &Reference,
    cases: &[(Fault, usize)],
    what: &str,
    expect_errno: Option<i32>,
) -> (u64, u64) {
    let mut hits = 0;
    for (k, &(fault, t)) in cases.iter().enumerate() {
        let after = after_for(k as u64, r.seed);
        let ctx = format!("seed {}, {what}: {fault:?}, then {after:?}", r.seed);
        let hit = run_case(r, fault, after, &ctx)
            .unwrap_or_else(|| panic!("{ctx}: the fault was never hit"));
        assert_eq!(
            hit.op,
            r.op_of(t),
            "{ctx}: failed in another operation than the one making storage operation {t} ({:?}): {}",
            r.trace[t],
            hit.error
        );
        if let Some(errno) = expect_errno {
            assert!(
                hit.error.contains(&format!("os error {errno}")),
                "{ctx}: {}",
                hit.error
            );
        }
        hits += 1;
    }
    (cases.len() as u64, hits)
}

#[test]
fn enospc_eio_and_failed_fsync_at_every_write_and_sync() {
    let started = std::time::Instant::now();
    let (mut space, mut write, mut syncs) = ((0, 0), (0, 0), (0, 0));
    let (mut in_checkpoint, mut in_rotation) = (0, 0);
    for r in references() {
        let mut space_cases = Vec::new();
        let mut write_cases = Vec::new();
        let mut sync_cases = Vec::new();
        let mut bytes_before = 0u64;
        let rotates = |t: usize| {
            let i = r.op_of(t);
            r.segments[i + 1] > r.segments[i]
        };
        for (t, op) in r.armed_trace() {
            match op.kind {
                OpKind::Write => {
                    let len = op.bytes;
                    let mut offsets = vec![0, 1, len / 2, len.saturating_sub(1)];
                    offsets.dedup();
                    offsets.retain(|&o| o < len);
                    offsets.sort();
                    offsets.dedup();
                    for o in offsets {
                        space_cases.push((Fault::Space(bytes_before + o), t));
                    }
                    write_cases.push((Fault::WriteError(write_cases.len() as u64), t));
                    bytes_before += len;
                    if op.name.contains(".ckpt") {
                        in_checkpoint += 1;
                    } else if rotates(t) {
                        in_rotation += 1;
                    }
                }
                OpKind::Sync | OpKind::SyncDir => {
                    sync_cases.push((Fault::SyncError(sync_cases.len() as u64), t));
                }
                _ => {}
            }
        }
        let a = sweep(&r, &space_cases, "ENOSPC", Some(28));
        let b = sweep(&r, &write_cases, "EIO on write", None);
        let c = sweep(&r, &sync_cases, "failed sync", None);
        space = (space.0 + a.0, space.1 + a.1);
        write = (write.0 + b.0, write.1 + b.1);
        syncs = (syncs.0 + c.0, syncs.1 + c.1);
    }
    eprintln!(
        "store_faults: write faults over {} seeds of {OPS} operations ({:.1?}): ENOSPC (short writes) at {} points of {} writes, EIO at {} writes ({} into checkpoints, {} by mutations that rotate segments), failed fsync at {} syncs; each failed with a typed error, recovered to the twin and finished the workload",
        seeds().count(),
        started.elapsed(),
        space.1,
        write.1,
        write.1,
        in_checkpoint,
        in_rotation,
        syncs.1,
    );
}

// ---------------------------------------------------------------------------------------
// Power cuts during segment rotation and checkpoints.

/// Whether a storage operation belongs to a checkpoint: the writer thread never reads,
/// lists or touches a checkpoint file; a checkpoint starts by reading the log.
fn checkpoint_op(t: &Traced) -> bool {
    matches!(
        t.kind,
        OpKind::Read | OpKind::ReadAll | OpKind::Open | OpKind::List
    ) || t.name.contains(".ckpt")
}

#[test]
fn power_cut_at_every_storage_operation_of_rotations_and_checkpoints() {
    let started = std::time::Instant::now();
    let (mut rotation, mut explicit, mut automatic) = (0u64, 0u64, 0u64);
    let (mut rotations, mut checkpoints) = (0, 0);
    for r in references() {
        let mut points: Vec<(usize, &'static str)> = Vec::new();
        for i in 0..r.n() {
            let window = r.starts[i]..r.starts[i + 1];
            let rotates = r.segments[i + 1] > r.segments[i];
            let ckpt_from = window
                .clone()
                .find(|&t| checkpoint_op(&r.trace[t]))
                .unwrap_or(window.end);
            rotations += rotates as usize;
            checkpoints += (ckpt_from < window.end) as usize;
            for t in window {
                if t >= ckpt_from {
                    let what = if r.ops[i].is_checkpoint() {
                        "checkpoint"
                    } else {
                        "automatic checkpoint"
                    };
                    points.push((t, what));
                } else if rotates {
                    points.push((t, "rotation"));
                }
            }
        }
        for (k, &(t, what)) in points.iter().enumerate() {
            for mode in [
                CrashMode::DropUnsynced,
                CrashMode::Torn {
                    seed: (r.seed << 32) ^ (k as u64 * 7919 + 1),
                },
            ] {
                let fault = Fault::Power(t as u64, mode);
                let ctx = format!(
                    "seed {}, power cut before storage op {t} ({:?}) in the {what} of op {} ({mode:?})",
                    r.seed,
                    r.trace[t],
                    r.op_of(t)
                );
                let hit = run_case(&r, fault, After::Drop, &ctx).expect("a power cut");
                let op = r.op_of(t);
                assert!(
                    hit.op == op || hit.op == op + 1,
                    "{ctx}: failed in op {} ({})",
                    hit.op,
                    hit.error
                );
            }
            match what {
                "rotation" => rotation += 1,
                "checkpoint" => explicit += 1,
                _ => automatic += 1,
            }
        }
    }
    eprintln!(
        "store_faults: power cuts over {} seeds ({:.1?}): before each of {} storage operations of {rotations} segment rotations and {} of {checkpoints} checkpoints ({explicit} in explicit ones, {automatic} in automatic ones), each in both crash modes; every acknowledged mutation kept, the state the twin's",
        seeds().count(),
        started.elapsed(),
        rotation,
        explicit + automatic,
    );
    assert!(rotation > 0 && explicit > 0 && automatic > 0);
}

// ---------------------------------------------------------------------------------------
// EIO on reads.

/// A closed store on simulated storage: the whole workload, its checkpoints (the newest
/// damaged, so an open tries it, warns and falls back to the older), and garbage after
/// the last record of the active segment (a torn tail the open cuts and saves aside).
fn store_to_open(r: &Reference) -> SimStorage {
    let sim = SimStorage::new();
    let store = open_store(Arc::new(sim.clone()), "store to open");
    for op in &r.ops {
        op.apply(&store).unwrap();
    }
    store.checkpoint().unwrap();
    store.close().unwrap();
    let mut ckpts: Vec<String> = sim
        .list()
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with(".ckpt"))
        .collect();
    ckpts.sort();
    assert_eq!(ckpts.len(), 2, "{ckpts:?}");
    let newest = ckpts.pop().unwrap();
    let mut b = sim.file_bytes(&newest).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x40;
    sim.put_file(&newest, b);
    let active = sim
        .list()
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with(".seg"))
        .max()
        .unwrap();
    let mut b = sim.file_bytes(&active).unwrap();
    let end = segment_end(&b);
    b[end..end + 12].copy_from_slice(&[0xab; 12]);
    sim.put_file(&active, b);
    sim
}

/// Offset of the end of the last record in a segment (its first all-zero frame slot).
fn segment_end(bytes: &[u8]) -> usize {
    let mut at = mdslog::log::format::SEGMENT_HEADER_BYTES;
    loop {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        if bytes[at..at + 24].iter().all(|&b| b == 0) {
            return at;
        }
        at += mdslog::log::format::frame_bytes(len as usize);
    }
}

fn reads_of(trace: &[Traced]) -> usize {
    trace
        .iter()
        .filter(|t| matches!(t.kind, OpKind::Read | OpKind::ReadAll))
        .count()
}

/// EIO on every read an open makes (recovery's checks of every segment, saving the torn
/// tail, the checkpoints, checking one against the log, replay): the open fails with
/// `Error::Io` (never `Corruption`), or, when the read was of a checkpoint or of the
/// record it names, opens by another route to the same state. The next open works.
#[test]
fn eio_on_every_read_of_an_open() {
    let (mut failed, mut other_route, mut points, mut misreported) = (0, 0, 0, 0);
    for r in references().into_iter().take(2) {
        let base = store_to_open(&r);
        let end = r.dumps.last().unwrap();
        let reads = {
            let copy = sim_copy(&base);
            let gate = Gate::new(&copy, None);
            let store = Store::open_with(Arc::new(gate.clone()), store_options()).unwrap();
            assert!(store.recovery_report().torn_tail.is_some());
            assert_eq!(store.checkpoint_warnings().len(), 1);
            assert!(store.opened_from_checkpoint().is_some());
            assert!(store.canonical_dump().unwrap() == *end);
            reads_of(&gate.trace())
        };
        assert!(reads > 8, "seed {}: {reads} reads", r.seed);
        for n in 0..reads as u64 {
            let ctx = format!("seed {}, read {n} of {reads} fails", r.seed);
            let sim = sim_copy(&base);
            let ckpts_before: Vec<String> = sim
                .list()
                .unwrap()
                .into_iter()
                .filter(|n| n.ends_with(".ckpt"))
                .collect();
            sim.set_faults(Faults {
                read_error_in: Some(n),
                ..Faults::default()
            });
            match Store::open_with(Arc::new(sim.clone()), store_options()) {
                Ok(store) => {
                    // The read failed where the store has another route: a checkpoint
                    // it cannot read (or match to the log) is skipped with a warning.
                    let w = store.checkpoint_warnings();
                    assert!(
                        w.iter().any(|w| w.contains("cannot read")
                            || w.contains("is not the one the checkpoint was made after")),
                        "{ctx}: opened without a word about the failed read: {w:?}"
                    );
                    if w.iter().any(|w| w.contains("is not the one")) {
                        misreported += 1;
                    }
                    assert!(store.canonical_dump().unwrap() == *end, "{ctx}");
                    other_route += 1;
                }
                Err(Error::Io { op: "read", .. }) => failed += 1,
                Err(e) => panic!("{ctx}: expected Error::Io, got {e:?}"),
            }
            sim.clear_faults();
            let ckpts_after: Vec<String> = sim
                .list()
                .unwrap()
                .into_iter()
                .filter(|n| n.ends_with(".ckpt"))
                .collect();
            assert_eq!(ckpts_before, ckpts_after, "{ctx}: checkpoints went away");
            let store = Store::open_with(Arc::new(sim.clone()), store_options())
                .unwrap_or_else(|e| panic!("{ctx}: the next open: {e}"));
            assert!(
                store.canonical_dump().unwrap() == *end,
                "{ctx}: the next open"
            );
            assert_eq!(store.durable_lsn(), *r.lsn.last().unwrap(), "{ctx}");
            points += 1;
        }
    }
    eprintln!(
        "store_faults: EIO on every read of an open: {points} reads ({failed} failed the open with Error::Io, {other_route} were of a checkpoint or of the record it names, and the open went on without it; {misreported} of those warned that the log was replaced)"
    );
    assert!(failed > 0 && other_route > 0);
}

/// EIO on every read of the queries that read the log (`as_of`, `as_of_time`, a sync's
/// export): the query fails with `Error::Io`, the store is not poisoned (a mutation and
/// the same query work after), and a sync cut that way applies nothing and resumes.
#[test]
fn eio_on_every_read_of_a_query_that_reads_the_log() {
    let mut points: HashMap<&'static str, u64> = HashMap::new();
    for r in references().into_iter().take(2) {
        let sim = SimStorage::new();
        {
            let store = open_store(Arc::new(sim.clone()), "query store");
            for op in &r.ops {
                op.apply(&store).unwrap();
            }
        }
        let gate = Gate::new(&sim, None);
        let store = open_store(Arc::new(gate.clone()), "query store");
        let mid = r.n() / 2;
        let vs = r.a_volume_set();
        // Each query, with what it must answer.
        let as_of = |s: &Store| s.as_of(r.lsn[mid]).map(|st| st.canonical_dump());
        // The time of the workload's last record; the mutations below come later.
        let t_end = {
            let last = *r.lsn.last().unwrap();
            let rec = store.log().iter_from(last).next().unwrap().unwrap();
            mdslog::event::Envelope::decode(rec.lsn, rec.kind, &rec.payload)
                .unwrap()
                .time
        };
        std::thread::sleep(std::time::Duration::from_millis(2));
        let as_of_time = |s: &Store| s.as_of_time(t_end).map(|st| st.canonical_dump());
        for (what, query, want) in [
            (
                "as_of",
                &as_of as &dyn Fn(&Store) -> Result<CanonicalDump>,
                &r.dumps[mid],
            ),
            ("as_of_time", &as_of_time, r.dumps.last().unwrap()),
        ] {
            let before = gate.trace().len();
            assert!(query(&store).unwrap() == *want, "{what}");
            let reads = reads_of(&gate.trace()[before..]);
            assert!(reads >= 3, "{what}: {reads} reads");
            for n in 0..reads as u64 {
                let ctx = format!("seed {}, {what}, read {n} of {reads} fails", r.seed);
                sim.set_faults(Faults {
                    read_error_in: Some(n),
                    ..Faults::default()
                });
                match query(&store) {
                    Err(Error::Io { op: "read", .. }) => {}
                    other => panic!(
                        "{ctx}: expected Error::Io, got {:?}",
                        other.map(|d| d.snapshots.len())
                    ),
                }
                sim.clear_faults();
                // Not poisoned: a read, a mutation (of another volume set) and the query.
                assert!(store.canonical_dump().is_ok(), "{ctx}");
                store
                    .set_volume_set_size(vs, n)
                    .unwrap_or_else(|e| panic!("{ctx}: a mutation after: {e}"));
                assert!(query(&store).unwrap() == *want, "{ctx}: the query again");
                *points.entry(what).or_default() += 1;
            }
        }
        // A sync whose export fails: nothing is applied, and the next sync completes.
        let before = gate.trace().len();
        let probe = open_store(Arc::new(SimStorage::new()), "probe");
        sync(&store, &probe, vs, SyncMode::PushOnly).unwrap();
        let reads = reads_of(&gate.trace()[before..]);
        assert!(reads >= 2, "export: {reads} reads");
        // What the uninterrupted sync left (deletions are local to a store: the
        // workload's deleted branches arrive all the same).
        let want = synced(&probe, vs);

        for n in 0..reads as u64 {
            let ctx = format!("seed {}, sync export, read {n} of {reads} fails", r.seed);
            let other = open_store(Arc::new(SimStorage::new()), &ctx);
            sim.set_faults(Faults {
                read_error_in: Some(n),
                ..Faults::default()
            });
            match sync(&store, &other, vs, SyncMode::PushOnly) {
                Err(Error::Io { op: "read", .. }) => {}
                other => panic!("{ctx}: expected Error::Io, got {other:?}"),
            }
            sim.clear_faults();
            assert!(
                other.get_volume_set(vs).is_err(),
                "{ctx}: a failed export applied something"
            );
            sync(&store, &other, vs, SyncMode::PushOnly)
                .unwrap_or_else(|e| panic!("{ctx}: the sync again: {e}"));
            assert!(synced(&other, vs) == want, "{ctx}");
            *points.entry("sync export").or_default() += 1;
        }
    }
    eprintln!(
        "store_faults: EIO on every read of a query: {} reads of as_of, {} of as_of_time, {} of a sync's export; each an Error::Io, nothing poisoned, the query right again after",
        points["as_of"], points["as_of_time"], points["sync export"]
    );
}

/// What a sync carries of a volume set: its metadata and its snapshots' and branches'.
type Synced = (
    VolumeSetMeta,
    Vec<(SnapshotId, Option<SnapshotId>, SnapshotMeta)>,
    Vec<(BranchId, String, SnapshotId)>,
);

fn synced(s: &Store, vs: VolumeSetId) -> Synced {
    let meta = s.get_volume_set(vs).unwrap().meta();
    let mut snaps: Vec<_> = s
        .get_snapshots(&SnapshotQuery {
            volume_set: Some(vs),
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|x| (x.id, x.parent, x.meta()))
        .collect();
    snaps.sort_by_key(|x| x.0);
    let mut branches: Vec<_> = s
        .get_branches(&BranchQuery::all(vs))
        .unwrap()
        .into_iter()
        .map(|b| (b.id, b.name, b.tip))
        .collect();
    branches.sort_by_key(|x| x.0);
    (meta, snaps, branches)
}

// ---------------------------------------------------------------------------------------
// Shipping: power cuts on the follower before every storage operation of every ship, and
// EIO on every read a ship makes of the source.

/// The primary in phases: after each one, a frozen copy of its log (read-only, behind a
/// counting gate) is what a ship of that phase ships.
struct Shipped {
    sources: Vec<(SimStorage, Gate, Log)>,
    primary: Store,
    dumps: std::cell::RefCell<HashMap<u64, CanonicalDump>>,
}

impl Shipped {
    fn build(r: &Reference, phases: usize) -> Shipped {
        let sim = SimStorage::new();
        let primary = open_store(Arc::new(sim.clone()), "primary");
        let mut sources = Vec::new();
        for (i, op) in r.ops.iter().enumerate() {
            op.apply(&primary).unwrap();
            if (i + 1) % (r.n() / phases) == 0 && sources.len() < phases - 1 || i + 1 == r.n() {
                let copy = sim_copy(&sim);
                let gate = Gate::new(&copy, None);
                let log = Log::open_read_only_with(Arc::new(gate.clone()), log_options()).unwrap();
                sources.push((copy, gate, log));
            }
        }
        Shipped {
            sources,
            primary,
            dumps: Default::default(),
        }
    }

    fn source(&self, k: usize) -> &Log {
        &self.sources[k].2
    }

    fn dump_at(&self, lsn: Lsn) -> CanonicalDump {
        self.dumps
            .borrow_mut()
            .entry(lsn.0)
            .or_insert_with(|| self.primary.as_of(lsn).unwrap().canonical_dump())
            .clone()
    }

    /// Checks a follower after an interrupted ship: promoted (on a copy), it opens to the
    /// primary's state as of its last LSN, which is at least `acked` (what the last
    /// finished ship reported) and at most `most`, and takes writes.
    fn check_follower(&self, sim: &SimStorage, acked: Lsn, most: Lsn, ctx: &str) -> Lsn {
        let copy = sim_copy(sim);
        let promoted = Store::open_with(Arc::new(copy), store_options())
            .unwrap_or_else(|e| panic!("{ctx}: the follower does not open: {e}"));
        let lsn = promoted.recovery_report().last_lsn;
        assert!(
            lsn >= acked,
            "{ctx}: a ship reported LSN {acked}; after the cut the follower holds {lsn}"
        );
        assert!(lsn <= most, "{ctx}: the follower holds {lsn}, past {most}");
        assert!(
            promoted.canonical_dump().unwrap() == self.dump_at(lsn),
            "{ctx}: the follower's state (LSN {lsn}) is not the primary's at that LSN"
        );
        promoted
            .create_volume_set("after promotion", "", Attrs::new(), "", "", "")
            .unwrap_or_else(|e| panic!("{ctx}: the promoted follower takes no write: {e}"));
        lsn
    }

    /// Ships phases `from..` into a healthy follower; then the follower is the primary.
    fn finish(&self, sim: &SimStorage, from: usize, ctx: &str) {
        let target = StorageTarget::new(Arc::new(sim.clone()));
        for k in from..self.sources.len() {
            let rep = mdslog::ship::ship(self.source(k), &target)
                .unwrap_or_else(|e| panic!("{ctx}: shipping phase {k} again: {e}"));
            assert_eq!(rep.follower_last_lsn, self.source(k).durable_lsn(), "{ctx}");
        }
        // What the last ship reported is durable.
        sim.crash(CrashMode::DropUnsynced);
        let store = Store::open_with(Arc::new(sim_copy(sim)), store_options()).unwrap();
        assert_eq!(
            store.recovery_report().last_lsn,
            self.primary.durable_lsn(),
            "{ctx}"
        );
        assert!(
            store.canonical_dump().unwrap() == self.primary.canonical_dump().unwrap(),
            "{ctx}: the complete follower differs from the primary"
        );
    }
}

#[test]
fn power_cut_on_the_follower_at_every_storage_operation_of_a_ship() {
    let started = std::time::Instant::now();
    let (mut points, mut reads, mut ships) = (0u64, 0u64, 0u64);
    for r in references().into_iter().take(2) {
        let p = Shipped::build(&r, 6);
        // An uninterrupted run: the storage operations of each ship.
        let sim = SimStorage::new();
        let gate = Gate::new(&sim, None);
        let target = StorageTarget::new(Arc::new(gate.clone()));
        let mut windows = Vec::new();
        let mut source_reads = Vec::new();
        for k in 0..p.sources.len() {
            let (before, src_before) = (gate.ops(), p.sources[k].1.trace().len());
            mdslog::ship::ship(p.source(k), &target).unwrap();
            windows.push(before..gate.ops());
            source_reads.push(reads_of(&p.sources[k].1.trace()[src_before..]));
        }
        let trace = gate.trace();
        ships += windows.len() as u64;

        for (k, window) in windows.iter().enumerate() {
            for t in window.clone() {
                for mode in [
                    CrashMode::DropUnsynced,
                    CrashMode::Torn {
                        seed: (r.seed << 40) ^ (t * 104_729 + 7),
                    },
                ] {
                    let ctx = format!(
                        "seed {}, power cut before follower op {t} ({:?}) in the ship of phase {k} ({mode:?})",
                        r.seed, trace[t as usize]
                    );
                    let sim = SimStorage::new();
                    let gate = Gate::new(&sim, Some((t, mode)));
                    let target = StorageTarget::new(Arc::new(gate.clone()));
                    let mut acked = Lsn::ZERO;
                    for j in 0..=k {
                        match mdslog::ship::ship(p.source(j), &target) {
                            Ok(rep) => {
                                assert!(j < k, "{ctx}: the ship of phase {j} went through");
                                assert_eq!(rep.follower_last_lsn, p.source(j).durable_lsn());
                                acked = rep.follower_last_lsn;
                            }
                            Err(e) => {
                                assert_eq!(j, k, "{ctx}: phase {j} failed: {e}");
                                assert!(
                                    matches!(e, Error::Io { .. }),
                                    "{ctx}: an interrupted ship is an I/O error, not {e:?}"
                                );
                            }
                        }
                    }
                    assert!(gate.is_dead(), "{ctx}: the power never went off");
                    assert_eq!(
                        gate.trace().get(t as usize),
                        trace.get(t as usize),
                        "{ctx}: the run made other storage operations"
                    );
                    p.check_follower(&sim, acked, p.source(k).durable_lsn(), &ctx);
                    p.finish(&sim, k, &ctx);
                    points += 1;
                }
            }
        }

        // EIO on each read a ship makes of its source: the ship fails with `Error::Io`
        // (the source is not "diverged" or "corrupt"), the follower keeps what it had,
        // and shipping again completes it.
        for (k, &n_reads) in source_reads.iter().enumerate() {
            for n in 0..n_reads as u64 {
                let ctx = format!(
                    "seed {}, ship of phase {k}, source read {n} of {n_reads} fails",
                    r.seed
                );
                let sim = SimStorage::new();
                let target = StorageTarget::new(Arc::new(sim.clone()));
                for j in 0..k {
                    mdslog::ship::ship(p.source(j), &target).unwrap();
                }
                let src = &p.sources[k].0;
                src.set_faults(Faults {
                    read_error_in: Some(n),
                    ..Faults::default()
                });
                let res = mdslog::ship::ship(p.source(k), &target);
                src.clear_faults();
                match res {
                    Err(Error::Io { op: "read", .. }) => {}
                    other => panic!("{ctx}: expected Error::Io, got {other:?}"),
                }
                let acked = match k {
                    0 => Lsn::ZERO,
                    _ => p.source(k - 1).durable_lsn(),
                };
                sim.crash(CrashMode::Torn { seed: n + 1 });
                p.check_follower(&sim, acked, p.source(k).durable_lsn(), &ctx);
                p.finish(&sim, k, &ctx);
                reads += 1;
            }
        }
    }
    eprintln!(
        "store_faults: shipping ({:.1?}): power cuts on the follower before each of {} storage operations of {ships} ships, in both crash modes ({points} runs), EIO on {reads} reads of the source; each ship failed with Error::Io, the follower (promoted) held at least what the last ship reported and was the primary's state at its LSN, and shipping again completed it",
        started.elapsed(),
        points / 2
    );
    assert!(points > 100 && reads > 10);
}

// ---------------------------------------------------------------------------------------
// Bugs found (fixed).

/// `Store::checkpoint` looks up the record at the state's LSN; a failed read of the log
/// there is an I/O error (it once came back as `InvalidArgument("the log has no record at
/// the state's LSN")`, and at open as a checkpoint "made from another log").
#[test]
fn a_read_error_while_writing_a_checkpoint_is_an_io_error() {
    let sim = SimStorage::new();
    let store = Store::open_with(Arc::new(sim.clone()), store_options()).unwrap();
    store
        .create_volume_set("db", "", Attrs::new(), "", "", "")
        .unwrap();
    sim.set_faults(Faults {
        read_error_in: Some(0),
        ..Faults::default()
    });
    let e = store.checkpoint().unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
}
