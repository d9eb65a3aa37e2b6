//! Shipping interrupted at every point: a primary's store grows in phases and is shipped
//! after each phase into a follower on simulated storage; the ship is interrupted by a
//! power cut before every storage operation it makes, by a failed write or fsync at every
//! position, by a full disk at chosen byte counts, and by failed reads. After each
//! interruption the follower's storage loses (or tears) what was not synced, and then:
//!
//! - a log opened read-only on it opens, and holds a prefix of the primary's log: every
//!   record equal to the primary's at the same LSN, and the state replayed from it equal
//!   to the primary's state at that LSN;
//! - every segment file is the primary's (all but the last byte-identical, the last a
//!   byte prefix of the primary's segment of the same name);
//! - shipping again succeeds and reaches the source's last LSN, and after the last phase
//!   the follower's segments are byte-identical to the primary's (and stay so across a
//!   power cut).
//!
//! The number of interruption points covered is printed (`cargo test --test ship_crash
//! -- --nocapture`).

mod store_support;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use mdslog::event::Envelope;
use mdslog::log::fs::{
    CrashMode, Faults, FileBytes, LockFailure, LockGuard, SimStorage, Storage, StorageFile,
};
use mdslog::ship::{ShipReport, Shipper, StorageTarget};
use mdslog::state::query::CanonicalDump;
use mdslog::state::State;
use mdslog::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use store_support::*;

// ---------------------------------------------------------------------------------------
// The primary: a random workload through the store API, in phases.

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
        actor: Some("primary".into()),
    }
}

/// Random mutations of every kind a client makes: volume sets, forks, extensions, renames,
/// metadata edits, blob ids, volumes.
struct Workload {
    rng: SmallRng,
    /// (volume set, branch name, tip).
    branches: Vec<(VolumeSetId, String, SnapshotId)>,
    snaps: Vec<(VolumeSetId, SnapshotId)>,
    vss: Vec<VolumeSetId>,
    n: u64,
}

impl Workload {
    fn new(seed: u64) -> Self {
        Workload {
            rng: SmallRng::seed_from_u64(seed),
            branches: Vec::new(),
            snaps: Vec::new(),
            vss: Vec::new(),
            n: 0,
        }
    }

    fn snapshot(&mut self, vs: VolumeSetId, parent: Option<SnapshotId>) -> Snapshot {
        let mut s = snap(vs, parent);
        self.n += 1;
        s.name = format!("s{}", self.n);
        let len = self.rng.gen_range(0..200);
        s.description = "d".repeat(len);
        s.size = self.rng.gen_range(0..1 << 30);
        s
    }

    fn chain(&mut self, vs: VolumeSetId, parent: Option<SnapshotId>, n: usize) -> Vec<Snapshot> {
        let mut v: Vec<Snapshot> = Vec::new();
        let mut p = parent;
        for _ in 0..n {
            let s = self.snapshot(vs, p);
            p = Some(s.id);
            v.push(s);
        }
        for s in &v {
            self.snaps.push((vs, s.id));
        }
        v
    }

    fn step(&mut self, st: &Store) {
        let roll = self.rng.gen_range(0..100);
        if self.vss.is_empty() || roll < 6 {
            self.n += 1;
            let vs = st
                .create_volume_set(
                    &format!("vs{}", self.n),
                    "acme",
                    attrs(&[("team", "storage")]),
                    "a volume set",
                    "ann",
                    "ann",
                )
                .unwrap()
                .id;
            self.vss.push(vs);
            let k = self.rng.gen_range(1..=3);
            let c = self.chain(vs, None, k);
            st.fork_branch("master", &c).unwrap();
            self.branches
                .push((vs, "master".into(), c.last().unwrap().id));
            return;
        }
        match roll {
            6..=49 => {
                let i = self.rng.gen_range(0..self.branches.len());
                let (vs, _, tip) = self.branches[i].clone();
                let k = self.rng.gen_range(1..=3);
                let c = self.chain(vs, Some(tip), k);
                st.extend_branch(&c).unwrap();
                self.branches[i].2 = c.last().unwrap().id;
            }
            50..=61 => {
                let (vs, from) = self.snaps[self.rng.gen_range(0..self.snaps.len())];
                self.n += 1;
                let name = format!("b{}", self.n);
                let k = self.rng.gen_range(1..=2);
                let c = self.chain(vs, Some(from), k);
                st.fork_branch(&name, &c).unwrap();
                self.branches.push((vs, name, c.last().unwrap().id));
            }
            62..=69 => {
                let i = self.rng.gen_range(0..self.branches.len());
                let (vs, old, _) = self.branches[i].clone();
                self.n += 1;
                let new = format!("r{}", self.n);
                st.rename_branch(vs, &old, &new).unwrap();
                self.branches[i].1 = new;
            }
            70..=77 => {
                let vs = self.vss[self.rng.gen_range(0..self.vss.len())];
                let mut cur = st.get_volume_set(vs).unwrap();
                self.n += 1;
                cur.attrs
                    .insert(format!("k{}", self.n % 5), format!("v{}", self.n));
                cur.description = format!("edited {}", self.n);
                st.update_volume_set(&cur, None).unwrap();
            }
            78..=85 => {
                let (_, id) = self.snaps[self.rng.gen_range(0..self.snaps.len())];
                let mut cur = st.get_snapshot(id).unwrap();
                self.n += 1;
                cur.attrs.insert("note".into(), format!("n{}", self.n));
                cur.name = format!("renamed {}", self.n);
                st.update_snapshot(&cur, None).unwrap();
            }
            86..=92 => {
                let (_, id) = self.snaps[self.rng.gen_range(0..self.snaps.len())];
                self.n += 1;
                st.set_blob_id_and_size(
                    id,
                    &BlobId::from(format!("blob-{}", self.n).as_str()),
                    self.n,
                )
                .unwrap();
            }
            _ => {
                let (vs, base) = self.snaps[self.rng.gen_range(0..self.snaps.len())];
                self.n += 1;
                let id = format!("vol-{}", self.n);
                st.import_volume(&volume(&id, vs, Some(base), &format!("/mnt/{id}")))
                    .unwrap();
            }
        }
    }
}

/// The segment files of a simulated directory, current bytes.
fn sim_segments(sim: &SimStorage) -> BTreeMap<String, Vec<u8>> {
    sim.list()
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with(".seg"))
        .map(|n| {
            let b = sim.file_bytes(&n).unwrap();
            (n, b)
        })
        .collect()
}

/// A copy of the primary's log as it is now, opened read-only: the source of one phase.
fn frozen_copy(sim: &SimStorage) -> Log {
    let copy = SimStorage::new();
    for (name, bytes) in sim_segments(sim) {
        copy.put_file(&name, bytes);
    }
    Log::open_read_only_with(Arc::new(copy), log_options()).unwrap()
}

/// Every record of a log: (kind, payload).
fn records(log: &Log) -> Vec<(u16, Vec<u8>)> {
    let mut v = Vec::new();
    let mut it = log.iter_from(Lsn(1));
    while let Some(r) = it.next_record().unwrap() {
        assert_eq!(r.lsn.0, v.len() as u64 + 1);
        v.push((r.kind.0, r.payload.to_vec()));
    }
    v
}

/// What the follower is checked against.
struct Primary {
    /// The source of each phase: the primary's log after that phase.
    sources: Vec<Log>,
    /// The primary's segments at the end (the active one with its pre-written zeros).
    files: BTreeMap<String, Vec<u8>>,
    /// The valid bytes of the last segment at the end.
    last_valid: u64,
    records: Vec<(u16, Vec<u8>)>,
    /// The primary's state at each LSN met so far.
    dumps: std::sync::Mutex<HashMap<u64, CanonicalDump>>,
}

impl Primary {
    fn build(seed: u64, phases: usize) -> Primary {
        let sim = SimStorage::new();
        let store = Store::open_with(Arc::new(sim.clone()), store_options()).unwrap();
        let mut w = Workload::new(seed);
        let mut sources = Vec::new();
        for _ in 0..phases {
            let k = w.rng.gen_range(1..=10);
            for _ in 0..k {
                w.step(&store);
            }
            sources.push(frozen_copy(&sim));
        }
        let last = sources.last().unwrap();
        let files = sim_segments(&sim);
        let last_valid = last.segments().last().unwrap().bytes;
        let records = records(last);
        assert!(
            last.segments().len() >= 2,
            "seed {seed}: the workload should fill more than one segment"
        );
        Primary {
            sources,
            files,
            last_valid,
            records,
            dumps: Default::default(),
        }
    }

    fn dump_at(&self, lsn: u64) -> CanonicalDump {
        let mut dumps = self.dumps.lock().unwrap();
        dumps
            .entry(lsn)
            .or_insert_with(|| replay(&self.records[..lsn as usize]))
            .clone()
    }
}

fn replay(records: &[(u16, Vec<u8>)]) -> CanonicalDump {
    let mut st = State::new();
    for (i, (kind, payload)) in records.iter().enumerate() {
        let lsn = Lsn(i as u64 + 1);
        let env = Envelope::decode(lsn, RecordKind(*kind), payload).unwrap();
        st.apply(lsn, &env);
    }
    st.canonical_dump()
}

// ---------------------------------------------------------------------------------------
// A power switch in front of the follower's storage: cuts the power just before the
// n-th operation that changes something (write, sync, set_len, create, rename, remove,
// directory sync); after that every operation fails, as if the machine were off.

struct Power {
    sim: SimStorage,
    ops: AtomicU64,
    trip_at: u64,
    mode: CrashMode,
    dead: AtomicBool,
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
    fn new(sim: &SimStorage, trip_at: u64, mode: CrashMode) -> Gate {
        Gate(Arc::new(Power {
            sim: sim.clone(),
            ops: AtomicU64::new(0),
            trip_at,
            mode,
            dead: AtomicBool::new(false),
        }))
    }

    fn tripped(&self) -> bool {
        self.0.dead.load(Ordering::SeqCst)
    }

    /// An operation that changes something.
    fn change<T>(&self, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
        if self.tripped() {
            return Err(power_off());
        }
        if self.0.ops.fetch_add(1, Ordering::SeqCst) == self.0.trip_at {
            self.0.dead.store(true, Ordering::SeqCst);
            self.0.sim.crash(self.0.mode);
            return Err(power_off());
        }
        f()
    }

    /// An operation that only reads.
    fn look<T>(&self, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
        if self.tripped() {
            return Err(power_off());
        }
        f()
    }
}

struct GateFile {
    inner: Box<dyn StorageFile>,
    gate: Gate,
}

impl StorageFile for GateFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.gate.look(|| self.inner.read_at(buf, offset))
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.gate.change(|| self.inner.write_all_at(buf, offset))
    }
    fn sync_data(&self) -> io::Result<()> {
        self.gate.change(|| self.inner.sync_data())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.gate.change(|| self.inner.set_len(len))
    }
    fn len(&self) -> io::Result<u64> {
        self.gate.look(|| self.inner.len())
    }
}

impl Storage for Gate {
    fn location(&self) -> &Path {
        self.0.sim.location()
    }
    fn list(&self) -> io::Result<Vec<String>> {
        self.look(|| self.0.sim.list())
    }
    fn open(&self, name: &str) -> io::Result<Box<dyn StorageFile>> {
        let f = self.look(|| self.0.sim.open(name))?;
        Ok(Box::new(GateFile {
            inner: f,
            gate: self.clone(),
        }))
    }
    fn create_new(&self, name: &str) -> io::Result<Box<dyn StorageFile>> {
        let f = self.change(|| self.0.sim.create_new(name))?;
        Ok(Box::new(GateFile {
            inner: f,
            gate: self.clone(),
        }))
    }
    fn read_all(&self, name: &str) -> io::Result<FileBytes> {
        self.look(|| self.0.sim.read_all(name))
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.change(|| self.0.sim.rename(from, to))
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.change(|| self.0.sim.remove(name))
    }
    fn sync_dir(&self) -> io::Result<()> {
        self.change(|| self.0.sim.sync_dir())
    }
    fn try_lock(&self, name: &str) -> Result<Box<dyn LockGuard>, LockFailure> {
        self.look(|| Ok(())).map_err(LockFailure::Io)?;
        self.0.sim.try_lock(name)
    }
}

// ---------------------------------------------------------------------------------------
// The checks.

/// Checks the follower after a power cut: its files are the primary's (all but the last
/// segment whole, the last a byte prefix), a log opened read-only on it holds a prefix of
/// the primary's records, and the state replayed from them is the primary's at that LSN.
/// Returns the follower's last LSN.
fn check_prefix(sim: &SimStorage, p: &Primary, what: &str) -> u64 {
    let names = sim.list().unwrap();
    let segs: Vec<&String> = names.iter().filter(|n| n.ends_with(".seg")).collect();
    for (i, name) in segs.iter().enumerate() {
        let mine = sim.file_bytes(name).unwrap();
        let theirs = p
            .files
            .get(*name)
            .unwrap_or_else(|| panic!("{what}: the follower has {name}, the primary does not"));
        if i + 1 < segs.len() {
            assert!(
                mine == *theirs,
                "{what}: {name} is not byte-identical to the primary's ({} vs {} bytes)",
                mine.len(),
                theirs.len()
            );
        } else {
            assert!(
                theirs.starts_with(&mine),
                "{what}: the last segment {name} ({} bytes) is not a byte prefix of the primary's",
                mine.len()
            );
        }
    }
    for n in &names {
        if n.ends_with(".seg") || n == mdslog::ship::SHIP_SOURCE_FILE {
            continue;
        }
        // A segment whose copy was interrupted before its rename.
        let base = n
            .strip_suffix(".tmp")
            .unwrap_or_else(|| panic!("{what}: unexpected file {n} in the follower"));
        let theirs = &p.files[base];
        assert!(
            theirs.starts_with(&sim.file_bytes(n).unwrap()),
            "{what}: {n} is not a prefix of {base}"
        );
    }
    let log = Log::open_read_only_with(Arc::new(sim.clone()), log_options())
        .unwrap_or_else(|e| panic!("{what}: the follower does not open: {e}"));
    let got = records(&log);
    assert!(
        got.len() <= p.records.len(),
        "{what}: more records than the primary"
    );
    for (i, r) in got.iter().enumerate() {
        assert!(
            *r == p.records[i],
            "{what}: the record at LSN {} differs from the primary's",
            i + 1
        );
    }
    let lsn = got.len() as u64;
    assert_eq!(
        replay(&got),
        p.dump_at(lsn),
        "{what}: the state at LSN {lsn} differs from the primary's"
    );
    lsn
}

/// Checks the follower is the primary's final log exactly.
fn check_identical(sim: &SimStorage, p: &Primary, what: &str) {
    let mine = sim_segments(sim);
    assert_eq!(
        mine.keys().collect::<Vec<_>>(),
        p.files.keys().collect::<Vec<_>>(),
        "{what}: segment names"
    );
    let n = mine.len();
    for (i, (name, bytes)) in mine.iter().enumerate() {
        let theirs = &p.files[name];
        if i + 1 < n {
            assert!(bytes == theirs, "{what}: {name} differs");
        } else {
            assert!(
                bytes[..] == theirs[..p.last_valid as usize],
                "{what}: the last segment {name} is not the primary's valid bytes ({} vs {})",
                bytes.len(),
                p.last_valid
            );
        }
    }
}

/// Ships phase `i`'s source into `target`, asserting success and the report.
fn ship_ok(shipper: &mut Shipper<'_>, p: &Primary, i: usize, what: &str) -> ShipReport {
    let src = &p.sources[i];
    let r = shipper
        .ship(src)
        .unwrap_or_else(|e| panic!("{what}: ship of phase {i} failed: {e}"));
    assert_eq!(r.follower_last_lsn, src.durable_lsn(), "{what}: {r:?}");
    assert_eq!(r.source_last_lsn, src.durable_lsn(), "{what}: {r:?}");
    r
}

// ---------------------------------------------------------------------------------------
// The interruptions.

#[derive(Debug, Clone, Copy)]
enum Cut {
    /// A power cut just before the n-th changing operation.
    Power(u64, CrashMode),
    /// The n-th write fails (EIO), then a power cut.
    WriteError(u64, CrashMode),
    /// The n-th file or directory sync fails (EIO), then a power cut.
    SyncError(u64, CrashMode),
    /// The disk is full after n more bytes (a short write), then a power cut.
    Full(u64, CrashMode),
    /// The n-th read of the follower fails (EIO); no power cut.
    ReadError(u64),
}

fn faults_of(cut: Cut) -> Faults {
    match cut {
        Cut::WriteError(n, _) => Faults {
            write_error_in: Some(n),
            ..Faults::default()
        },
        Cut::SyncError(n, _) => Faults {
            sync_error_in: Some(n),
            ..Faults::default()
        },
        Cut::Full(n, _) => Faults {
            write_bytes_left: Some(n),
            ..Faults::default()
        },
        Cut::ReadError(n) => Faults {
            read_error_in: Some(n),
            ..Faults::default()
        },
        Cut::Power(..) => Faults::default(),
    }
}

/// Runs every phase with one interruption armed. Returns whether a ship was interrupted
/// (false: the interruption lies beyond the last operation of the run).
fn run(p: &Primary, cut: Cut, one_shipper: bool, what: &str) -> bool {
    let sim = SimStorage::new();
    let gate = match cut {
        Cut::Power(n, mode) => Some(Gate::new(&sim, n, mode)),
        _ => None,
    };
    sim.set_faults(faults_of(cut));
    let armed: Arc<dyn Storage> = match &gate {
        Some(g) => Arc::new(g.clone()),
        None => Arc::new(sim.clone()),
    };
    let plain = StorageTarget::new(Arc::new(sim.clone()));
    let target = StorageTarget::new(armed);
    let mut interrupted = false;
    let mut shipper = Some(Shipper::new(&target).unwrap());
    for i in 0..p.sources.len() {
        if !one_shipper || shipper.is_none() {
            drop(shipper.take()); // releases the lock first
            shipper = Some(Shipper::new(if interrupted { &plain } else { &target }).unwrap());
        }
        let sh = shipper.as_mut().unwrap();
        match sh.ship(&p.sources[i]) {
            Ok(r) => {
                assert_eq!(
                    r.follower_last_lsn,
                    p.sources[i].durable_lsn(),
                    "{what}: phase {i}: {r:?}"
                );
            }
            Err(e) => {
                assert!(!interrupted, "{what}: phase {i}: a second failure: {e}");
                assert!(
                    matches!(e, Error::Io { .. }),
                    "{what}: phase {i}: an interrupted ship fails with an I/O error, not {e:?}"
                );
                interrupted = true;
                shipper = None;
                sim.clear_faults();
                match cut {
                    Cut::Power(..) => assert!(gate.as_ref().unwrap().tripped()),
                    Cut::WriteError(_, m) | Cut::SyncError(_, m) | Cut::Full(_, m) => sim.crash(m),
                    Cut::ReadError(_) => {}
                }
                let at = format!("{what}: after the cut in phase {i}");
                let lsn = check_prefix(&sim, p, &at);
                assert!(lsn <= p.sources[i].durable_lsn().0, "{at}");
                // Ship the same phase again, on the powered-up storage.
                let mut again = Shipper::new(&plain).unwrap();
                ship_ok(&mut again, p, i, &format!("{at}, shipping again"));
                check_prefix(&sim, p, &format!("{at}, shipped again"));
                if one_shipper {
                    shipper = Some(again);
                }
            }
        }
    }
    drop(shipper);
    sim.clear_faults(); // one that was never reached
    check_identical(&sim, p, what);
    // What the last ship reported is durable.
    sim.crash(CrashMode::DropUnsynced);
    check_identical(&sim, p, &format!("{what}, after a final power cut"));
    // And a follower that is complete has nothing more to ship.
    let r = ship_ok(
        &mut Shipper::new(&plain).unwrap(),
        p,
        p.sources.len() - 1,
        what,
    );
    assert_eq!(
        (r.records_shipped, r.bytes_copied, r.torn_bytes_cut),
        (0, 0, 0),
        "{what}"
    );
    interrupted
}

/// An uninterrupted run: (operations that change something, bytes written).
fn measure(p: &Primary) -> (u64, u64) {
    let sim = SimStorage::new();
    let gate = Gate::new(&sim, u64::MAX, CrashMode::DropUnsynced);
    let target = StorageTarget::new(Arc::new(gate.clone()));
    let mut sh = Shipper::new(&target).unwrap();
    for i in 0..p.sources.len() {
        ship_ok(&mut sh, p, i, "measure");
    }
    (gate.0.ops.load(Ordering::SeqCst), sim.bytes_written())
}

#[derive(Default)]
struct Tally {
    power: u64,
    write: u64,
    sync: u64,
    full: u64,
    read: u64,
    runs: u64,
}

fn modes(k: u64) -> [CrashMode; 2] {
    [
        CrashMode::DropUnsynced,
        CrashMode::Torn { seed: k * 7919 + 1 },
    ]
}

#[test]
fn ship_survives_an_interruption_at_every_point() {
    let seeds = 0..40u64;
    let mut t = Tally::default();
    let (mut segments, mut records) = (0, 0);
    let started = std::time::Instant::now();
    for seed in seeds.clone() {
        let p = Primary::build(seed, 8);
        segments += p.files.len();
        records += p.records.len();
        let (changes, bytes) = measure(&p);
        let what = |c: Cut| format!("seed {seed}, {c:?}");
        for k in 0..changes {
            for (j, m) in modes(k).into_iter().enumerate() {
                let c = Cut::Power(k, m);
                t.runs += 1;
                t.power += run(&p, c, (k + j as u64).is_multiple_of(2), &what(c)) as u64;
            }
        }
        // Failed writes and syncs at every position (the count of each is below the
        // count of changing operations); the run reports when the fault was not reached.
        for k in 0..changes {
            let mut reached = false;
            for (j, m) in modes(k).into_iter().enumerate() {
                let c = Cut::WriteError(k, m);
                t.runs += 1;
                let hit = run(&p, c, j == 0, &what(c));
                t.write += hit as u64;
                let c = Cut::SyncError(k, m);
                t.runs += 1;
                let hit2 = run(&p, c, j == 1, &what(c));
                t.sync += hit2 as u64;
                reached |= hit || hit2;
            }
            if !reached {
                break;
            }
        }
        // A full disk at random byte counts, and at the very first byte.
        let mut rng = SmallRng::seed_from_u64(seed);
        for i in 0..40 {
            let n = if i == 0 { 0 } else { rng.gen_range(0..bytes) };
            let c = Cut::Full(n, modes(i)[(i % 2) as usize]);
            t.runs += 1;
            t.full += run(&p, c, i.is_multiple_of(2), &what(c)) as u64;
        }
        for k in 0..40 {
            let c = Cut::ReadError(k);
            t.runs += 1;
            t.read += run(&p, c, k.is_multiple_of(2), &what(c)) as u64;
        }
    }
    eprintln!(
        "ship_crash: {} seeds (primaries of {} segments and {} records in all, shipped in 8 phases each), {} runs in {:.1?}; interruption points covered: {} power cuts before a storage operation, {} failed writes, {} failed syncs, {} full disks, {} failed reads; total {}",
        seeds.end - seeds.start,
        segments,
        records,
        t.runs,
        started.elapsed(),
        t.power,
        t.write,
        t.sync,
        t.full,
        t.read,
        t.power + t.write + t.sync + t.full + t.read
    );
    assert!(t.power > 500 && t.write > 100 && t.sync > 100);
}

/// A ship interrupted by a failed write or fsync, with no power cut: the shipper (the same
/// one, as a retrying loop would, or a new one, as a restarted `mdslog follow`) ships
/// again, and reports the follower at the source's last LSN. Then the power goes off:
/// what that ship reported must have been durable.
fn run_retry(p: &Primary, cut: Cut, same_shipper: bool, what: &str) -> Option<String> {
    let sim = SimStorage::new();
    sim.set_faults(faults_of(cut));
    let target = StorageTarget::new(Arc::new(sim.clone()));
    let mut shipper = Some(Shipper::new(&target).unwrap());
    let mut lost = None;
    for i in 0..p.sources.len() {
        let Err(e) = shipper.as_mut().unwrap().ship(&p.sources[i]) else {
            continue;
        };
        assert!(matches!(e, Error::Io { .. }), "{what}: {e:?}");
        sim.clear_faults();
        if !same_shipper {
            shipper.take();
            shipper = Some(Shipper::new(&target).unwrap());
        }
        let at = format!("{what}: phase {i}, shipped again without a power cut");
        let r = ship_ok(shipper.as_mut().unwrap(), p, i, &at);
        shipper.take();
        sim.crash(CrashMode::DropUnsynced);
        match Log::open_read_only_with(Arc::new(sim.clone()), log_options()) {
            Err(e) => {
                lost = Some(format!(
                    "the ship reported LSN {}; after a power cut the follower does not open: {e}",
                    r.follower_last_lsn
                ))
            }
            Ok(_) => {
                let lsn = check_prefix(&sim, p, &at);
                if lsn < r.follower_last_lsn.0 {
                    lost = Some(format!(
                        "the ship reported LSN {}; after a power cut the follower has LSN {lsn}",
                        r.follower_last_lsn
                    ));
                }
            }
        }
        // Shipping once more repairs the follower either way.
        shipper = Some(Shipper::new(&target).unwrap());
        ship_ok(
            shipper.as_mut().unwrap(),
            p,
            i,
            &format!("{at}, then once more"),
        );
    }
    drop(shipper);
    sim.clear_faults();
    check_identical(&sim, p, what);
    lost
}

#[test]
fn a_ship_after_a_failed_write_or_fsync_makes_what_it_reports_durable() {
    let mut lost = Vec::new();
    let mut points = 0;
    for seed in 100..106u64 {
        let p = Primary::build(seed, 6);
        let (changes, _) = measure(&p);
        for k in 0..changes {
            for same in [false, true] {
                for c in [
                    Cut::WriteError(k, CrashMode::DropUnsynced),
                    Cut::SyncError(k, CrashMode::DropUnsynced),
                ] {
                    points += 1;
                    let what = format!("seed {seed}, {c:?}, same shipper: {same}");
                    if let Some(l) = run_retry(&p, c, same, &what) {
                        lost.push((what, l));
                    }
                }
            }
        }
    }
    eprintln!(
        "a_ship_after_a_failed_write_or_fsync: {points} runs, {} lost what a ship reported",
        lost.len()
    );
    for (what, l) in lost.iter().take(16) {
        eprintln!("  {what}: {l}");
    }
    assert!(lost.is_empty(), "{} runs lost shipped records", lost.len());
}

/// A primary on simulated storage with `n` small records (one segment while `n` is small).
fn small_primary(n: usize) -> (SimStorage, Store, Workload) {
    let sim = SimStorage::new();
    let store = Store::open_with(Arc::new(sim.clone()), store_options()).unwrap();
    let mut w = Workload::new(1);
    for _ in 0..n {
        w.step(&store);
    }
    (sim, store, w)
}

/// The smallest case of the failure above: the follower's first segment is created and
/// written but its fsync fails; the next ship finds the bytes (they are in the page cache)
/// and reports them shipped without making them durable; its note of the source
/// (SHIP-SOURCE) syncs the directory, so after a power cut the follower holds an empty
/// segment file and does not open at all.
#[test]
fn a_ship_after_a_failed_fsync_leaves_a_follower_that_opens_after_a_power_cut() {
    let (_psim, primary, _) = small_primary(3);
    assert_eq!(primary.log().segments().len(), 1);
    let sim = SimStorage::new();
    let target = StorageTarget::new(Arc::new(sim.clone()));
    sim.set_faults(Faults {
        sync_error_in: Some(0),
        ..Faults::default()
    });
    assert!(mdslog::ship::ship(primary.log(), &target).is_err());
    sim.clear_faults();
    let r = mdslog::ship::ship(primary.log(), &target).unwrap();
    assert_eq!(r.follower_last_lsn, primary.durable_lsn());
    sim.crash(CrashMode::DropUnsynced);
    let log = Log::open_read_only_with(Arc::new(sim.clone()), log_options())
        .expect("the follower opens after a power cut");
    assert_eq!(log.durable_lsn(), r.follower_last_lsn);
}

/// The other half: a ship whose first write into a new segment file fails leaves the
/// file created (its directory entry not synced); the next ship appends to it and syncs
/// its data, but never the directory (`StorageTarget::append` syncs the directory only
/// when it created the file itself), so a power cut loses the whole segment it reported.
#[test]
fn a_ship_after_a_failed_write_into_a_new_segment_keeps_it_after_a_power_cut() {
    let (_psim, primary, mut w) = small_primary(3);
    let sim = SimStorage::new();
    let target = StorageTarget::new(Arc::new(sim.clone()));
    mdslog::ship::ship(primary.log(), &target).unwrap();
    while primary.log().segments().len() < 2 {
        w.step(&primary);
    }
    // Write 0 is the sealed segment 1 copied whole; write 1 the first of segment 2.
    sim.set_faults(Faults {
        write_error_in: Some(1),
        ..Faults::default()
    });
    assert!(mdslog::ship::ship(primary.log(), &target).is_err());
    sim.clear_faults();
    let r = mdslog::ship::ship(primary.log(), &target).unwrap();
    assert_eq!(r.follower_last_lsn, primary.durable_lsn());
    sim.crash(CrashMode::DropUnsynced);
    let log = Log::open_read_only_with(Arc::new(sim.clone()), log_options()).unwrap();
    assert_eq!(
        log.durable_lsn(),
        r.follower_last_lsn,
        "segments after the power cut: {:?}",
        sim.list().unwrap()
    );
}
