//! A follower in use: a read-only store on it answers like the primary after every ship;
//! `Shipper::follow` runs in a thread while the primary writes in another and a reader
//! refreshes a read-only store on the follower; then the follower is promoted, and the old
//! primary may no longer ship into it.

mod store_support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mdslog::ship::{ship, ShipReport, Shipper, StorageTarget};
use mdslog::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use store_support::*;

fn options() -> StoreOptions {
    StoreOptions {
        log: LogOptions {
            segment_bytes_max: 8192,
            prewrite_bytes: 1024,
            record_bytes_max: 4096,
            batch_bytes_max: 4096 + 24,
            ..LogOptions::default()
        },
        actor: Some("primary".into()),
    }
}

/// Random mutations of every kind: volume sets (created, edited, deleted), forks,
/// extensions, renames, branch deletions, snapshot edits, blob ids, bushes, volumes.
struct Workload {
    rng: SmallRng,
    /// Names are unique across workloads (several may write to one store).
    seed: u64,
    n: u64,
}

impl Workload {
    fn new(seed: u64) -> Self {
        Workload {
            rng: SmallRng::seed_from_u64(seed),
            seed,
            n: 0,
        }
    }

    fn next(&mut self) -> String {
        self.n += 1;
        format!("{}.{}", self.seed, self.n)
    }

    fn volume_sets(st: &Store) -> Vec<VolumeSet> {
        st.get_volume_sets(&VolumeSetQuery::default()).unwrap()
    }

    fn snapshot(&mut self, vs: VolumeSetId, parent: Option<SnapshotId>) -> Snapshot {
        let mut s = snap(vs, parent);
        s.name = format!("s{}", self.next());
        s.description = "d".repeat(self.rng.gen_range(0..120));
        s.size = self.rng.gen_range(0..1 << 30);
        s
    }

    fn chain(&mut self, vs: VolumeSetId, parent: Option<SnapshotId>, n: usize) -> Vec<Snapshot> {
        let mut v: Vec<Snapshot> = Vec::new();
        for _ in 0..n {
            let p = v.last().map(|s: &Snapshot| s.id).or(parent);
            v.push(self.snapshot(vs, p));
        }
        v
    }

    fn step(&mut self, st: &Store) {
        let vss = Self::volume_sets(st);
        let roll = self.rng.gen_range(0..100);
        if vss.len() < 2 || roll < 5 {
            let n = self.next();
            let vs = st
                .create_volume_set(
                    &format!("vs{n}"),
                    "acme",
                    attrs(&[("team", "storage")]),
                    "a volume set",
                    "ann",
                    "ann",
                )
                .unwrap();
            let k = self.rng.gen_range(1..=3);
            let c = self.chain(vs.id, None, k);
            st.fork_branch("master", &c).unwrap();
            return;
        }
        let vs = &vss[self.rng.gen_range(0..vss.len())];
        let branches = st.get_branches(&BranchQuery::all(vs.id)).unwrap();
        let snaps = st.get_snapshot_ids(vs.id).unwrap();
        match roll {
            5..=44 => {
                let b = &branches[self.rng.gen_range(0..branches.len())];
                let k = self.rng.gen_range(1..=4);
                let c = self.chain(vs.id, Some(b.tip), k);
                st.extend_branch(&c).unwrap();
            }
            45..=57 => {
                let from = snaps[self.rng.gen_range(0..snaps.len())];
                let name = format!("b{}", self.next());
                let k = self.rng.gen_range(1..=2);
                let c = self.chain(vs.id, Some(from), k);
                st.fork_branch(&name, &c).unwrap();
            }
            58..=64 => {
                let b = &branches[self.rng.gen_range(0..branches.len())];
                let new = format!("r{}", self.next());
                st.rename_branch(vs.id, &b.name, &new).unwrap();
            }
            65..=67 if branches.len() > 1 => {
                let b = &branches[self.rng.gen_range(0..branches.len())];
                let _ = st.delete_branch(vs.id, &b.name);
            }
            68..=74 => {
                let mut cur = vs.clone();
                let n = self.next();
                cur.attrs
                    .insert(format!("k{}", self.n % 4), format!("v{n}"));
                cur.description = format!("edited {n}");
                st.update_volume_set(&cur, None).unwrap();
            }
            75..=81 => {
                let id = snaps[self.rng.gen_range(0..snaps.len())];
                let mut cur = st.get_snapshot(id).unwrap();
                let n = self.next();
                cur.attrs.insert("note".into(), format!("n{n}"));
                cur.name = format!("renamed {n}");
                st.update_snapshot(&cur, None).unwrap();
            }
            82..=86 => {
                let id = snaps[self.rng.gen_range(0..snaps.len())];
                let n = self.next();
                st.set_blob_id_and_size(id, &BlobId::from(format!("blob-{n}").as_str()), self.n)
                    .unwrap();
            }
            87..=91 => {
                let base = snaps[self.rng.gen_range(0..snaps.len())];
                let id = format!("vol-{}", self.next());
                st.import_volume(&volume(&id, vs.id, Some(base), &format!("/mnt/{id}")))
                    .unwrap();
            }
            92..=94 => {
                let root = st
                    .get_snapshots(&SnapshotQuery {
                        volume_set: Some(vs.id),
                        ..SnapshotQuery::default()
                    })
                    .unwrap()
                    .into_iter()
                    .find(|s| s.parent.is_none())
                    .unwrap();
                let _ = st.import_bush(&Bush {
                    root: root.id,
                    volume_set: vs.id,
                    data_server: self.rng.gen_range(0..9),
                });
            }
            95..=96 if vss.len() > 2 => {
                st.delete_volume_set(vs.id).unwrap();
            }
            _ => {
                st.set_volume_set_size(vs.id, self.rng.gen_range(0..1 << 40))
                    .unwrap();
            }
        }
    }
}

/// The follower answers like the primary: the whole state, and a sample of queries.
#[track_caller]
fn assert_same_answers(primary: &Store, follower: &Store) {
    assert_eq!(follower.durable_lsn(), primary.durable_lsn());
    assert_eq!(
        follower.canonical_dump().unwrap(),
        primary.canonical_dump().unwrap()
    );
    assert_eq!(follower.store_id().unwrap(), primary.store_id().unwrap());
    assert_eq!(follower.counts().unwrap(), primary.counts().unwrap());
    let q = VolumeSetQuery::default();
    let vss = primary.get_volume_sets(&q).unwrap();
    assert_eq!(follower.get_volume_sets(&q).unwrap(), vss);
    for vs in &vss {
        let bq = BranchQuery::all(vs.id);
        let branches = primary.get_branches(&bq).unwrap();
        assert_eq!(follower.get_branches(&bq).unwrap(), branches);
        for b in &branches {
            assert_eq!(
                follower.get_tip(vs.id, &b.name).unwrap(),
                primary.get_tip(vs.id, &b.name).unwrap()
            );
            let q = BranchQuery::named(vs.id, &b.name);
            assert_eq!(
                follower.get_snapshots_by_branch(&q).unwrap(),
                primary.get_snapshots_by_branch(&q).unwrap()
            );
        }
        let sq = SnapshotQuery {
            volume_set: Some(vs.id),
            ..SnapshotQuery::default()
        };
        assert_eq!(
            follower.get_snapshots(&sq).unwrap(),
            primary.get_snapshots(&sq).unwrap()
        );
        assert_eq!(
            follower.get_volumes(vs.id).unwrap(),
            primary.get_volumes(vs.id).unwrap()
        );
        assert_eq!(
            follower.get_bushes(vs.id).unwrap(),
            primary.get_bushes(vs.id).unwrap()
        );
    }
    assert_eq!(
        follower.get_all_volumes().unwrap(),
        primary.get_all_volumes().unwrap()
    );
}

#[test]
fn a_follower_answers_every_query_like_the_primary_after_each_ship() {
    let pdir = tempfile::tempdir().unwrap();
    let fdir = tempfile::tempdir().unwrap();
    let primary = Store::open(pdir.path(), options()).unwrap();
    let mut w = Workload::new(7);
    let target = StorageTarget::dir(fdir.path()).unwrap();
    w.step(&primary);
    ship(primary.log(), &target).unwrap();
    let follower = Store::open_read_only(fdir.path(), StoreOptions::default()).unwrap();
    assert_same_answers(&primary, &follower);
    let mut shipper = Shipper::new(&target).unwrap();
    let mut rng = SmallRng::seed_from_u64(1);
    for round in 0..40 {
        for _ in 0..rng.gen_range(1..25) {
            w.step(&primary);
        }
        let r = shipper.ship(primary.log()).unwrap();
        assert_eq!(r.follower_last_lsn, primary.durable_lsn(), "round {round}");
        // A store refreshed on the follower, and one opened afresh.
        assert_eq!(follower.refresh().unwrap(), primary.durable_lsn());
        assert_same_answers(&primary, &follower);
        if round % 8 == 0 {
            let fresh = Store::open_read_only(fdir.path(), StoreOptions::default()).unwrap();
            assert_same_answers(&primary, &fresh);
        }
        // Time travel too.
        let at = Lsn(rng.gen_range(1..=primary.durable_lsn().0));
        assert_eq!(
            follower.as_of(at).unwrap().canonical_dump(),
            primary.as_of(at).unwrap().canonical_dump()
        );
    }
    let counts = primary.counts().unwrap();
    assert!(
        counts.volume_sets >= 2 && counts.branches >= 5 && primary.log().segments().len() >= 5,
        "the workload should be varied: {counts:?}, {} segments",
        primary.log().segments().len()
    );
}

/// Where the follower's source comes from: the primary's own log, or a read-only log
/// opened on its directory (as another process would).
#[derive(Debug, Clone, Copy)]
enum Source {
    Own,
    ReadOnly,
}

/// Sets the flag when dropped (also when unwinding from a failed assertion).
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// `Shipper::follow` in a thread while the primary writes in another; a reader refreshes
/// a read-only store on the follower all along and sees a growing prefix of the primary's
/// states, never an error. Returns the directories (primary, follower) and the primary.
fn follow_while_writing(source: Source) -> (tempfile::TempDir, tempfile::TempDir, Arc<Store>) {
    let pdir = tempfile::tempdir().unwrap();
    let fdir = tempfile::tempdir().unwrap();
    let primary = Arc::new(Store::open(pdir.path(), options()).unwrap());
    let mut w = Workload::new(11);
    w.step(&primary);
    let target = StorageTarget::dir(fdir.path()).unwrap();
    ship(primary.log(), &target).unwrap();

    let stop = AtomicBool::new(false);
    let writing_done = AtomicBool::new(false);
    let shipped_to = AtomicU64::new(0);
    let reports: Mutex<Vec<ShipReport>> = Mutex::default();
    let seen: Mutex<Vec<Lsn>> = Mutex::default();
    std::thread::scope(|s| {
        let shipper_thread = s.spawn(|| {
            let ro;
            let log = match source {
                Source::Own => primary.log(),
                Source::ReadOnly => {
                    ro = Log::open_read_only(pdir.path(), LogOptions::default()).unwrap();
                    &ro
                }
            };
            let mut shipper = Shipper::new(&target).unwrap();
            shipper
                .follow(log, Duration::from_millis(3), &stop, |r| {
                    shipped_to.store(r.follower_last_lsn.0, Ordering::SeqCst);
                    reports.lock().unwrap().push(r.clone());
                })
                .unwrap();
        });
        s.spawn(|| {
            let mut rng = SmallRng::seed_from_u64(5);
            for _ in 0..300 {
                w.step(&primary);
                if rng.gen_bool(0.1) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            writing_done.store(true, Ordering::SeqCst);
        });
        // The reader. If it fails, the shipper must still stop, or the scope never ends.
        let _stop_on_failure = StopOnDrop(&stop);
        let follower = Store::open_read_only(fdir.path(), StoreOptions::default()).unwrap();
        let mut last = follower.durable_lsn();
        let mut checked = 0;
        let mut refused_promotion = false;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let lsn = match follower.refresh() {
                Ok(lsn) => lsn,
                Err(e) => panic!("a refreshing follower never errors: {e}"),
            };
            assert!(lsn >= last, "the follower went back from {last} to {lsn}");
            assert_eq!(follower.durable_lsn(), lsn);
            if lsn > last && checked < 12 {
                // The follower's state is the primary's as of that LSN. (A read-only
                // source may ship records the primary has written and not yet made
                // durable: wait until it has.)
                checked += 1;
                while primary.durable_lsn() < lsn {
                    std::thread::sleep(Duration::from_micros(100));
                }
                assert_eq!(
                    follower.canonical_dump().unwrap(),
                    primary.as_of(lsn).unwrap().canonical_dump(),
                    "at LSN {lsn}"
                );
            }
            last = lsn;
            seen.lock().unwrap().push(lsn);
            if writing_done.load(Ordering::SeqCst)
                && shipped_to.load(Ordering::SeqCst) == primary.durable_lsn().0
                && lsn == primary.durable_lsn()
            {
                break;
            }
            assert!(Instant::now() < deadline, "the follower did not catch up");
            // While the shipper holds the follower, it cannot be promoted. (Once: in this
            // process a refusal takes up to 200 ms, see `DirStorage::try_lock`.)
            if checked == 1 && !refused_promotion {
                refused_promotion = true;
                assert!(matches!(
                    Store::open(fdir.path(), options()),
                    Err(Error::Locked { .. })
                ));
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        stop.store(true, Ordering::SeqCst);
        shipper_thread.join().unwrap();
        assert_same_answers(&primary, &follower);
    });
    let reports = reports.into_inner().unwrap();
    let seen = seen.into_inner().unwrap();
    let distinct = {
        let mut d = seen.clone();
        d.dedup();
        d.len()
    };
    eprintln!(
        "{source:?}: {} ships ({} shipped something), the reader saw {} distinct LSNs",
        reports.len(),
        reports.iter().filter(|r| r.records_shipped > 0).count(),
        distinct
    );
    assert!(reports.len() > 3, "follow shipped repeatedly");
    assert!(
        reports
            .windows(2)
            .all(|w| w[1].follower_last_lsn >= w[0].follower_last_lsn),
        "each ship continues the last"
    );
    assert!(distinct > 2, "the reader saw the follower grow");
    (pdir, fdir, primary)
}

#[test]
fn follow_while_the_primary_writes_from_its_own_log() {
    follow_while_writing(Source::Own);
}

/// The same, holding the reader to "never errors".
#[test]
fn follow_while_the_primary_writes_and_the_reader_never_errors() {
    for _ in 0..20 {
        follow_while_writing(Source::Own);
        follow_while_writing(Source::ReadOnly);
    }
}

/// After `follow` stops, the follower is promoted (opened for writing): same log, same
/// identity, it takes writes; a reader that was refreshing it sees them. The old primary
/// shipping into it again is refused, whether it wrote more meanwhile or not; the
/// promoted store can have followers of its own.
#[test]
fn follow_from_a_read_only_source_then_promote_and_refuse_the_old_primary() {
    let (pdir, fdir, primary) = follow_while_writing(Source::ReadOnly);
    let reader = Store::open_read_only(fdir.path(), StoreOptions::default()).unwrap();
    let promoted = Store::open(fdir.path(), options()).unwrap();
    assert_eq!(promoted.store_id().unwrap(), primary.store_id().unwrap());
    assert_same_answers(&primary, &promoted);
    let mut w = Workload::new(99);
    for _ in 0..10 {
        w.step(&promoted);
    }
    assert!(promoted.durable_lsn() > primary.durable_lsn());
    reader.refresh().unwrap();
    assert_eq!(
        reader.canonical_dump().unwrap(),
        promoted.canonical_dump().unwrap()
    );
    drop(promoted);

    // The old primary comes back with nothing new: the follower has records it lacks.
    let target = StorageTarget::dir(fdir.path()).unwrap();
    let err = ship(primary.log(), &target).unwrap_err();
    assert!(matches!(err, Error::ShipDiverged { .. }), "{err}");
    // It writes more: still refused, from its own log or read-only.
    let mut w = Workload::new(100);
    for _ in 0..10 {
        w.step(&primary);
    }
    let err = ship(primary.log(), &target).unwrap_err();
    assert!(matches!(err, Error::ShipDiverged { .. }), "{err}");
    let ro = Log::open_read_only(pdir.path(), LogOptions::default()).unwrap();
    let err = ship(&ro, &target).unwrap_err();
    assert!(matches!(err, Error::ShipDiverged { .. }), "{err}");
    let promoted = Store::open(fdir.path(), options()).unwrap();
    reader.refresh().unwrap();
    assert_same_answers(&promoted, &reader);

    // The promoted store's own follower.
    let gdir = tempfile::tempdir().unwrap();
    let r = ship(promoted.log(), &StorageTarget::dir(gdir.path()).unwrap()).unwrap();
    assert_eq!(r.follower_last_lsn, promoted.durable_lsn());
    let g = Store::open_read_only(gdir.path(), StoreOptions::default()).unwrap();
    assert_same_answers(&promoted, &g);
}

/// `follow` stops within its polling period when asked, even with a long interval, and
/// ships at once when it starts.
#[test]
fn follow_ships_at_once_and_stops_promptly() {
    let pdir = tempfile::tempdir().unwrap();
    let fdir = tempfile::tempdir().unwrap();
    let primary = Store::open(pdir.path(), options()).unwrap();
    let mut w = Workload::new(3);
    for _ in 0..30 {
        w.step(&primary);
    }
    let target = StorageTarget::dir(fdir.path()).unwrap();
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let calls = AtomicU64::new(0);
    std::thread::scope(|s| {
        s.spawn(|| {
            Shipper::new(&target)
                .unwrap()
                .follow(primary.log(), Duration::from_secs(3600), &stop, |r| {
                    assert_eq!(r.follower_last_lsn, primary.durable_lsn());
                    calls.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
        });
        while calls.load(Ordering::SeqCst) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        stop.store(true, Ordering::SeqCst);
    });
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(started.elapsed() < Duration::from_secs(2));
    // The lock is released: the follower can be promoted.
    Store::open(fdir.path(), options()).unwrap();
}

/// The state a reader meets when a ship has created the follower's next segment file but
/// not yet written it (here made to last by a failed write; in
/// `follow_while_the_primary_writes_and_the_reader_never_errors` it is a race): a reader
/// refreshing the follower, or opening it, fails with corruption, where the log's own
/// writer never shows a segment before its header is written (`*.seg.tmp`, then rename).
#[test]
fn a_segment_in_creation_on_the_follower_does_not_fail_its_readers() {
    use mdslog::log::fs::{Faults, SimStorage};
    let psim = SimStorage::new();
    let primary = Store::open_with(Arc::new(psim), options()).unwrap();
    let mut w = Workload::new(21);
    w.step(&primary);
    let fsim = SimStorage::new();
    let target = StorageTarget::new(Arc::new(fsim.clone()));
    ship(primary.log(), &target).unwrap();
    let reader = Log::open_read_only_with(Arc::new(fsim.clone()), LogOptions::default()).unwrap();
    let before = reader.durable_lsn();
    while primary.log().segments().len() < 2 {
        w.step(&primary);
    }
    // Write 0 copies the sealed first segment whole; write 1 is the first of the next
    // segment, which `append` has just created.
    fsim.set_faults(Faults {
        write_error_in: Some(1),
        ..Faults::default()
    });
    assert!(ship(primary.log(), &target).is_err());
    fsim.clear_faults();
    let lsn = reader
        .refresh()
        .expect("a reader of the follower refreshes");
    assert!(lsn >= before);
    Log::open_read_only_with(Arc::new(fsim.clone()), LogOptions::default())
        .expect("a reader opens the follower");
}
