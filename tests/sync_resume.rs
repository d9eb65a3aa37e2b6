//! A sync cut short anywhere resumes without losing or doubling anything.
//!
//! Two stores on the simulated storage, with small log limits so that the push (about
//! 200 snapshots over eight branches, renames, a rename conflict, volume set and snapshot
//! metadata edits, some of them conflicting) is applied as several atomic groups, and the
//! pull as a few. The same sync is then run on fresh copies of the two stores with a
//! fault planted in the receiver's storage, for every fault point in turn:
//!
//! * the n-th write fails (EIO), for every n until the sync gets through; followed by
//!   a power cut, this is a crash after n writes;
//! * the n-th fsync fails, likewise;
//! * the disk fills up after x bytes (a short write), for x stepping through everything
//!   the sync writes (so the cut falls between every two groups, and inside each);
//!
//! and after the failure the receiver is dropped (its unsynced bytes stay), or the power
//! is cut (unsynced writes dropped, or torn at a random byte). Both stores are reopened
//! and the sync is run again (for some cuts, that resumption is cut too, then resumed).
//! Then:
//!
//! * both stores equal ([`synced_view`]) the result of the same sync run uninterrupted;
//! * no log holds a snapshot or a branch created twice;
//! * the receiver's log holds at most one conflict record per object from the sync, the
//!   same objects as the uninterrupted run's;
//! * the cursors are right: one more sync changes nothing and writes nothing.
//!
//! The cut is planted in the push (receiver: the remote), in the pull (receiver: the
//! local store, after the push went through) and between the two (a push-only sync, a
//! power cut, then a full sync).
//!
//! Bugs these tests found, now fixed and kept as regression tests: a branch name clash
//! decided in a group that landed was lost when the cut fell before the last group (the
//! conflict records now go with the records they settle); conflict records overflowed the
//! last group's limits; snapshot records ignored the receiver's record size limit; a
//! buffered-mode sender's cursor skipped records not yet durable.

mod store_support;
mod sync_support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use mdslog::event::Event;
use mdslog::log::fs::{CrashMode, Faults, SimStorage};
use mdslog::sync::{sync, SyncMode, SyncReport};
use mdslog::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use store_support::{attrs, chain, snap};
use sync_support::{
    conflict_key, doubled_objects, log_events, sim_copy, synced_view, view_diff, SyncedView,
};

/// Small limits: a sync of a few hundred snapshots becomes several atomic groups, and
/// segments rotate during it. The last group of an apply carries every conflict on top
/// of up to `batch_records_max / 2 - 1` data records, so the scenarios keep conflicts
/// below `batch_records_max / 2` (see `many_conflicts_fit_the_receivers_batch_limit`).
fn opts() -> StoreOptions {
    StoreOptions {
        log: LogOptions {
            segment_bytes_max: 24 * 1024,
            prewrite_bytes: 2 * 1024,
            record_bytes_max: 4 * 1024,
            batch_bytes_max: 6 * 1024,
            batch_records_max: 16,
            ..LogOptions::default()
        },
        actor: Some("sync-resume".into()),
    }
}

fn open_sim(sim: &SimStorage) -> Store {
    Store::open_with(Arc::new(sim.clone()), opts()).unwrap()
}

/// Two closed stores, ready to sync: `a` (local) and `b` (remote).
struct Scenario {
    a: SimStorage,
    b: SimStorage,
    vs: VolumeSetId,
    /// Durable LSNs of the two logs before the sync under test.
    a_lsn: Lsn,
    b_lsn: Lsn,
}

/// What the uninterrupted sync left.
struct Reference {
    a: SyncedView,
    b: SyncedView,
    /// The two stores before the sync (the local one after the push, for the pull).
    a_before: SyncedView,
    b_before: SyncedView,
    /// Conflict records written by the sync, per log.
    a_conflicts: BTreeSet<(&'static str, String)>,
    b_conflicts: BTreeSet<(&'static str, String)>,
    /// Bytes the sync wrote to each storage.
    a_bytes: u64,
    b_bytes: u64,
    report: SyncReport,
}

fn edit_vs(s: &Store, vs: VolumeSetId, f: impl FnOnce(&mut VolumeSet)) {
    let before = s.get_volume_set(vs).unwrap();
    let mut cur = before.clone();
    f(&mut cur);
    cur.last_modified = Timestamp::now();
    assert!(s.update_volume_set(&cur, Some(&before)).unwrap().is_none());
}

fn edit_snap(s: &Store, id: SnapshotId, f: impl FnOnce(&mut Snapshot)) {
    let before = s.get_snapshot(id).unwrap();
    let mut cur = before.clone();
    f(&mut cur);
    assert!(s.update_snapshot(&cur, Some(&before)).unwrap().is_none());
}

fn fork_on(
    s: &Store,
    vs: VolumeSetId,
    name: &str,
    at: Option<SnapshotId>,
    n: usize,
) -> Vec<SnapshotId> {
    let c = chain(vs, at, n);
    s.fork_branch(name, &c).unwrap();
    c.iter().map(|x| x.id).collect()
}

fn extend_on(s: &Store, vs: VolumeSetId, tip: SnapshotId, n: usize) -> Vec<SnapshotId> {
    let c = chain(vs, Some(tip), n);
    s.extend_branch(&c).unwrap();
    c.iter().map(|x| x.id).collect()
}

/// Which branch name clash the push decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clash {
    None,
    /// Both sides create a branch named `dev`: the remote keeps the name, the local
    /// branch arrives as `dev~…`.
    NewBranch,
    /// The local store renames `keep2` to `b-feature`, a name the remote gave another
    /// branch.
    Rename,
}

/// Builds the two stores.
fn scenario(seed: u64, clash: Clash) -> Scenario {
    let mut r = SmallRng::seed_from_u64(seed);
    let (sa, sb) = (SimStorage::new(), SimStorage::new());
    let (a, b) = (open_sim(&sa), open_sim(&sb));
    let vs = a
        .create_volume_set("repo", "acme", attrs(&[("k", "v")]), "", "owner", "creator")
        .unwrap()
        .id;
    let master = fork_on(&a, vs, "master", None, 10);
    fork_on(&a, vs, "keep", Some(master[3]), 4);
    fork_on(&a, vs, "keep2", Some(master[4]), 3);
    fork_on(&a, vs, "", Some(master[2]), 2);
    sync(&a, &b, vs, SyncMode::Both).unwrap();

    // The remote's side: new branches, a rename, metadata edits (some conflicting).
    if clash == Clash::NewBranch {
        fork_on(&b, vs, "dev", Some(master[5]), 3);
    }
    let bf = fork_on(&b, vs, "b-feature", Some(master[2]), 12);
    extend_on(&b, vs, bf[11], 5);
    for k in 0..3 {
        let at = master[r.gen_range(0..10)];
        fork_on(&b, vs, &format!("b{k}"), Some(at), r.gen_range(8..16));
    }
    edit_vs(&b, vs, |v| v.description = "from b".into());
    b.rename_branch(vs, "keep", "keep-b").unwrap();
    for (i, id) in master.iter().take(3).enumerate() {
        edit_snap(&b, *id, |s| s.description = format!("b says {i}"));
    }
    edit_snap(&b, bf[0], |s| s.name = "b-first".into());

    // The local side: about 200 snapshots over several branches, renames (one of them
    // conflicting), metadata edits (three of them conflicting). Forks start on master
    // (known on both sides), so each incoming chain is one branch's snapshots: about 84
    // bytes each, at most 37 of them in one record.
    let mut made: Vec<SnapshotId> = master.clone();
    if clash == Clash::NewBranch {
        made.extend(fork_on(&a, vs, "dev", Some(master[1]), 25));
    }
    let mut f0 = Vec::new();
    for k in 0..6 {
        let at = master[r.gen_range(0..10)];
        let ids = fork_on(&a, vs, &format!("f{k}"), Some(at), r.gen_range(15..30));
        if r.gen_bool(0.5) {
            let more = extend_on(&a, vs, *ids.last().unwrap(), r.gen_range(1..8));
            made.extend(more);
        }
        if k == 0 {
            f0.clone_from(&ids);
        }
        made.extend(ids);
    }
    // A branch on a stem that is new to the remote too.
    made.extend(fork_on(&a, vs, "stem", Some(f0[2]), 5));
    made.extend(extend_on(&a, vs, master[9], 20));
    a.rename_branch(vs, "f0", "f0-renamed").unwrap();
    a.rename_branch(vs, "keep", "keep-a").unwrap();
    if clash == Clash::Rename {
        // A rename onto a name the remote holds: a clash on a branch both know.
        a.rename_branch(vs, "keep2", "b-feature").unwrap();
    }
    edit_vs(&a, vs, |v| {
        v.description = "from a".into();
        v.attrs.insert("edited".into(), "yes".into());
    });
    for (i, id) in master.iter().take(2).enumerate() {
        edit_snap(&a, *id, |s| s.description = format!("a says {i}"));
    }
    for id in [master[4], master[6]] {
        edit_snap(&a, id, |s| s.owner = "a-owner".into());
    }
    for _ in 0..10 {
        let id = made[r.gen_range(10..made.len())];
        edit_snap(&a, id, |s| {
            s.attrs.insert("tag".into(), format!("{}", r.gen::<u16>()));
        });
    }
    let (a_lsn, b_lsn) = (a.durable_lsn(), b.durable_lsn());
    a.close().unwrap();
    b.close().unwrap();
    Scenario {
        a: sa,
        b: sb,
        vs,
        a_lsn,
        b_lsn,
    }
}

/// Conflict records in a log after `from`, and any object recorded twice.
fn conflicts_after(s: &Store, from: Lsn) -> (BTreeSet<(&'static str, String)>, Vec<String>) {
    let mut seen = BTreeMap::new();
    let mut twice = Vec::new();
    for (lsn, ev) in log_events(s, from.next()) {
        if let Event::SyncConflict { conflict, .. } = ev {
            let k = conflict_key(&conflict);
            if let Some(first) = seen.insert(k.clone(), lsn) {
                twice.push(format!("{k:?} recorded at LSN {first} and at LSN {lsn}"));
            }
        }
    }
    (seen.into_keys().collect(), twice)
}

fn groups_written(s: &Store, from: Lsn) -> usize {
    log_events(s, from.next())
        .iter()
        .filter(|(_, e)| matches!(e, Event::SyncApplied { .. }))
        .count()
}

fn reference(sc: &Scenario) -> Reference {
    let (sa, sb) = (sim_copy(&sc.a), sim_copy(&sc.b));
    let (a, b) = (open_sim(&sa), open_sim(&sb));
    let (a_before, b_before) = (synced_view(&a, sc.vs), synced_view(&b, sc.vs));
    let (a0, b0) = (sa.bytes_written(), sb.bytes_written());
    let report = sync(&a, &b, sc.vs, SyncMode::Both).unwrap();
    let (a_bytes, b_bytes) = (sa.bytes_written() - a0, sb.bytes_written() - b0);
    let (a_conflicts, twice_a) = conflicts_after(&a, sc.a_lsn);
    let (b_conflicts, twice_b) = conflicts_after(&b, sc.b_lsn);
    assert!(
        twice_a.is_empty() && twice_b.is_empty(),
        "{twice_a:?} {twice_b:?}"
    );
    assert!(
        report.divergences.is_empty() && report.missing.is_empty(),
        "{report:?}"
    );
    let out = Reference {
        a: synced_view(&a, sc.vs),
        b: synced_view(&b, sc.vs),
        a_before,
        b_before,
        a_conflicts,
        b_conflicts,
        a_bytes,
        b_bytes,
        report,
    };
    if let Err(e) = check(sc, &out, &a, &b, "reference") {
        panic!("{e}");
    }
    out
}

/// Every check of a finished sync. `Err` names what is wrong.
fn check(sc: &Scenario, re: &Reference, a: &Store, b: &Store, ctx: &str) -> Result<(), String> {
    let fail = |what: String| Err(format!("{ctx}: {what}"));
    let (va, vb) = (synced_view(a, sc.vs), synced_view(b, sc.vs));
    if vb != re.b {
        return fail(format!(
            "the remote differs from the uninterrupted sync's (got / want):\n{}",
            view_diff(&vb, &re.b)
        ));
    }
    if va != re.a {
        return fail(format!(
            "the local store differs from the uninterrupted sync's (got / want):\n{}",
            view_diff(&va, &re.a)
        ));
    }
    if va != vb {
        return fail("the two stores differ after a full sync".into());
    }
    for (name, s) in [("local", a), ("remote", b)] {
        let doubled = doubled_objects(&log_events(s, Lsn(1)));
        if !doubled.is_empty() {
            return fail(format!("{name} log: {doubled:?}"));
        }
    }
    let (ca, twice_a) = conflicts_after(a, sc.a_lsn);
    let (cb, twice_b) = conflicts_after(b, sc.b_lsn);
    if !twice_a.is_empty() || !twice_b.is_empty() {
        return fail(format!("conflicts recorded twice: {twice_a:?} {twice_b:?}"));
    }
    if cb != re.b_conflicts {
        return fail(format!(
            "the remote recorded conflicts about {cb:?}, the uninterrupted sync about {:?}",
            re.b_conflicts
        ));
    }
    if !ca.is_subset(&re.a_conflicts) {
        return fail(format!(
            "the local store recorded conflicts about {ca:?}, the uninterrupted sync about {:?}",
            re.a_conflicts
        ));
    }
    // The cursors cover everything: one more sync changes nothing (it may move a cursor
    // past the records one side wrote from the other), and the one after writes nothing.
    for round in 0..2 {
        let (la, lb) = (a.durable_lsn(), b.durable_lsn());
        let again =
            sync(a, b, sc.vs, SyncMode::Both).map_err(|e| format!("{ctx}: sync again: {e}"))?;
        let changed = [&again.pushed, &again.pulled]
            .into_iter()
            .flatten()
            .any(|r| r.changed_anything());
        let wrote = (a.durable_lsn(), b.durable_lsn()) != (la, lb);
        if changed || !again.conflicts.is_empty() || (round == 1 && wrote) {
            return fail(format!("a further sync still did something: {again:?}"));
        }
    }
    Ok(())
}

/// Where the fault is planted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Half {
    /// The remote's storage: the push is cut.
    Push,
    /// The local storage: the push went through, the pull is cut.
    Pull,
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    WriteError(u64),
    SyncError(u64),
    NoSpace(u64),
}

impl Fault {
    fn plan(self) -> Faults {
        match self {
            Fault::WriteError(n) => Faults {
                write_error_in: Some(n),
                ..Faults::default()
            },
            Fault::SyncError(n) => Faults {
                sync_error_in: Some(n),
                ..Faults::default()
            },
            Fault::NoSpace(x) => Faults {
                write_bytes_left: Some(x),
                ..Faults::default()
            },
        }
    }
}

/// What happens to the faulty storage between the failure and the reopen.
#[derive(Debug, Clone, Copy)]
enum After {
    /// The process drops the poisoned store: written bytes stay, synced or not.
    Reopen,
    Crash(CrashMode),
}

impl After {
    fn apply(self, sim: &SimStorage) {
        if let After::Crash(mode) = self {
            sim.crash(mode);
        }
    }
}

#[derive(Default, Debug)]
struct Tally {
    runs: u64,
    failed: u64,
    /// Cuts after which the receiver held part of the sync: more than before it, less
    /// than after it.
    partial: u64,
    second_cuts: u64,
}

/// One cut: returns whether the fault fired (the sync failed).
fn cut(
    sc: &Scenario,
    re: &Reference,
    half: Half,
    fault: Fault,
    after: After,
    second: Option<(Fault, After)>,
    tally: &mut Tally,
) -> bool {
    let ctx = format!("{half:?} cut by {fault:?}, then {after:?}, second cut {second:?}");
    let (sa, sb) = (sim_copy(&sc.a), sim_copy(&sc.b));
    let faulty = match half {
        Half::Push => &sb,
        Half::Pull => &sa,
    };
    let (a, b) = (open_sim(&sa), open_sim(&sb));
    faulty.set_faults(fault.plan());
    let first = sync(&a, &b, sc.vs, SyncMode::Both);
    faulty.clear_faults();
    tally.runs += 1;
    let fired = first.is_err();
    let (a, b) = if fired {
        tally.failed += 1;
        drop((a, b));
        after.apply(faulty);
        let (mut a, mut b) = (open_sim(&sa), open_sim(&sb));
        let (receiver, before, done) = match half {
            Half::Push => (&b, &re.b_before, &re.b),
            Half::Pull => (&a, &re.a_before, &re.a),
        };
        let now = synced_view(receiver, sc.vs);
        if now != *before && now != *done {
            tally.partial += 1;
        }
        if let Some((f2, after2)) = second {
            // Cut the resumption too.
            faulty.set_faults(f2.plan());
            let r = sync(&a, &b, sc.vs, SyncMode::Both);
            faulty.clear_faults();
            if r.is_err() {
                tally.second_cuts += 1;
                drop((a, b));
                after2.apply(faulty);
                (a, b) = (open_sim(&sa), open_sim(&sb));
            }
        }
        match sync(&a, &b, sc.vs, SyncMode::Both) {
            Ok(_) => {}
            Err(e) => panic!("{ctx}: the resumed sync failed: {e}"),
        }
        (a, b)
    } else {
        (a, b)
    };
    if let Err(e) = check(sc, re, &a, &b, &ctx) {
        panic!("{e}");
    }
    fired
}

fn after_for(i: u64) -> After {
    match i % 3 {
        0 => After::Reopen,
        1 => After::Crash(CrashMode::DropUnsynced),
        _ => After::Crash(CrashMode::Torn { seed: i * 7919 + 1 }),
    }
}

/// Every fault point of one half: write errors and fsync failures at every count until
/// the sync gets through, and a full disk at byte offsets across everything it writes.
fn every_cut(sc: &Scenario, re: &Reference, half: Half, rng: &mut SmallRng, tally: &mut Tally) {
    for kind in 0..2 {
        let mut n = 0;
        loop {
            let fault = if kind == 0 {
                Fault::WriteError(n)
            } else {
                Fault::SyncError(n)
            };
            let mut fired = false;
            for m in 0..3 {
                let second = (n % 2 == 1)
                    .then(|| (Fault::WriteError(rng.gen_range(0..6)), after_for(n + m + 1)));
                fired |= cut(sc, re, half, fault, after_for(n + m), second, tally);
            }
            if !fired {
                break;
            }
            n += 1;
            assert!(n < 10_000, "the sync never gets through");
        }
    }
    let total = match half {
        Half::Push => re.b_bytes,
        Half::Pull => re.a_bytes,
    };
    let points = 48u64;
    for i in 0..=points {
        let x = (total * i / points).saturating_sub(rng.gen_range(0..64));
        let after = if i % 2 == 0 {
            After::Reopen
        } else {
            After::Crash(CrashMode::Torn { seed: i })
        };
        cut(sc, re, half, Fault::NoSpace(x), after, None, tally);
    }
}

fn seeds() -> Vec<u64> {
    vec![1, 2, 3]
}

#[test]
fn a_cut_push_resumes_without_loss_or_doubling() {
    let started = Instant::now();
    let mut tally = Tally::default();
    for seed in seeds() {
        let sc = scenario(seed, Clash::None);
        let re = reference(&sc);
        assert!(
            re.report.pushed.as_ref().unwrap().snapshots_added >= 150,
            "{:?}",
            re.report.pushed
        );
        assert!(!re.report.conflicts.is_empty());
        let mut rng = SmallRng::seed_from_u64(seed);
        every_cut(&sc, &re, Half::Push, &mut rng, &mut tally);
    }
    println!("sync_resume push: {tally:?} in {:.1?}", started.elapsed());
    assert!(tally.failed > 50 && tally.partial > 10, "{tally:?}");
}

#[test]
fn a_cut_pull_resumes_without_loss_or_doubling() {
    let started = Instant::now();
    let mut tally = Tally::default();
    for seed in seeds() {
        let sc = scenario(seed, Clash::None);
        let re = reference(&sc);
        assert!(
            re.report.pulled.as_ref().unwrap().snapshots_added >= 40,
            "{:?}",
            re.report.pulled
        );
        let mut rng = SmallRng::seed_from_u64(seed ^ 0xff);
        every_cut(&sc, &re, Half::Pull, &mut rng, &mut tally);
    }
    println!("sync_resume pull: {tally:?} in {:.1?}", started.elapsed());
    assert!(tally.failed > 20 && tally.partial > 5, "{tally:?}");
}

/// The groups of one apply really are several (else the cuts above test little).
#[test]
fn the_scenario_applies_as_several_groups() {
    let sc = scenario(1, Clash::None);
    let (sa, sb) = (sim_copy(&sc.a), sim_copy(&sc.b));
    let (a, b) = (open_sim(&sa), open_sim(&sb));
    sync(&a, &b, sc.vs, SyncMode::Both).unwrap();
    let (ga, gb) = (groups_written(&a, sc.a_lsn), groups_written(&b, sc.b_lsn));
    println!("groups: push {gb}, pull {ga}");
    assert!(gb >= 5, "push in {gb} groups");
    assert!(ga >= 2, "pull in {ga} groups");
}

#[test]
fn a_cut_between_push_and_pull_resumes() {
    for seed in seeds() {
        let sc = scenario(seed, Clash::None);
        let re = reference(&sc);
        for mode in [CrashMode::DropUnsynced, CrashMode::Torn { seed }] {
            let (sa, sb) = (sim_copy(&sc.a), sim_copy(&sc.b));
            let (a, b) = (open_sim(&sa), open_sim(&sb));
            let r = sync(&a, &b, sc.vs, SyncMode::PushOnly).unwrap();
            assert!(r.pulled.is_none());
            // Pushing again before the pull changes nothing.
            let again = sync(&a, &b, sc.vs, SyncMode::PushOnly).unwrap();
            assert!(!again.pushed.unwrap().changed_anything());
            drop((a, b));
            sa.crash(mode);
            sb.crash(mode);
            let (a, b) = (open_sim(&sa), open_sim(&sb));
            sync(&a, &b, sc.vs, SyncMode::Both).unwrap();
            if let Err(e) = check(&sc, &re, &a, &b, &format!("push-only, {mode:?}, then both")) {
                panic!("{e}");
            }
        }
        // And a pull-only first (the remote's news), then the full sync.
        let (sa, sb) = (sim_copy(&sc.a), sim_copy(&sc.b));
        let (a, b) = (open_sim(&sa), open_sim(&sb));
        sync(&a, &b, sc.vs, SyncMode::PullOnly).unwrap();
        drop((a, b));
        sa.crash(CrashMode::DropUnsynced);
        let (a, b) = (open_sim(&sa), open_sim(&sb));
        sync(&a, &b, sc.vs, SyncMode::Both).unwrap();
        let (va, vb) = (synced_view(&a, sc.vs), synced_view(&b, sc.vs));
        assert_eq!(va, vb, "pull-only, crash, then both");
        assert!(doubled_objects(&log_events(&a, Lsn(1))).is_empty());
        assert!(doubled_objects(&log_events(&b, Lsn(1))).is_empty());
    }
}

/// Cuts the push at byte offsets across everything it writes, resumes, checks.
fn cut_push_everywhere(clash: Clash) {
    let sc = scenario(1, clash);
    let re = reference(&sc);
    assert!(
        re.b_conflicts.iter().any(|k| k.0 == "branch-name-clash"),
        "{:?}",
        re.b_conflicts
    );
    let mut tally = Tally::default();
    let points = 64u64;
    for i in 0..=points {
        let x = re.b_bytes * i / points;
        cut(
            &sc,
            &re,
            Half::Push,
            Fault::NoSpace(x),
            After::Reopen,
            None,
            &mut tally,
        );
    }
}

/// A new branch arrives under a clash name in a group that landed, and the cut falls
/// before the last group (which carries the clash record): the resumed sync must still
/// tell the local store to adopt the name.
#[test]
fn resume_after_a_cut_push_keeps_a_new_branch_name_clash() {
    cut_push_everywhere(Clash::NewBranch);
}

/// A rename onto a name the remote holds, decided in a group that landed, with the cut
/// before the last group: the resumed sync must record the same clash, not another
/// conflict.
#[test]
fn resume_after_a_cut_push_keeps_a_rename_name_clash() {
    cut_push_everywhere(Clash::Rename);
}

/// Twenty snapshot conflicts in one push, on a receiver whose batches hold 16 records:
/// the conflict records must be spread over groups like the data records.
#[test]
fn many_conflicts_fit_the_receivers_batch_limit() {
    let (sa, sb) = (SimStorage::new(), SimStorage::new());
    let (a, b) = (open_sim(&sa), open_sim(&sb));
    let vs = a
        .create_volume_set("repo", "", Attrs::new(), "", "o", "c")
        .unwrap()
        .id;
    let ids = fork_on(&a, vs, "master", None, 20);
    sync(&a, &b, vs, SyncMode::Both).unwrap();
    for (i, id) in ids.iter().enumerate() {
        edit_snap(&a, *id, |s| s.description = format!("a{i}"));
        edit_snap(&b, *id, |s| s.description = format!("b{i}"));
    }
    let r = sync(&a, &b, vs, SyncMode::Both).unwrap();
    assert_eq!(r.conflicts.len(), 20);
    assert_eq!(synced_view(&a, vs), synced_view(&b, vs));
}

/// A branch whose snapshots were made one by one (each record small) must sync to a
/// store with the default limits, however many snapshots it has.
#[test]
fn a_long_branch_of_large_snapshots_syncs_with_default_limits() {
    let (_da, a) = store_support::open();
    let (_db, b) = store_support::open();
    let vs = store_support::new_vs(&a, "db").id;
    let mut tip = fork_on(&a, vs, "master", None, 1)[0];
    for _ in 0..100 {
        let mut s = snap(vs, Some(tip));
        s.description = "x".repeat(60_000);
        a.extend_branch(std::slice::from_ref(&s)).unwrap();
        tip = s.id;
    }
    sync(&a, &b, vs, SyncMode::Both).unwrap();
    assert_eq!(synced_view(&a, vs), synced_view(&b, vs));
}

/// A sender in buffered mode holds applied records that are not durable yet; its export
/// must not move the receiver's cursor past records it did not send.
#[test]
fn a_buffered_sender_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open(
        dir.path(),
        StoreOptions {
            log: LogOptions {
                durability: Durability::Buffered,
                ..LogOptions::default()
            },
            actor: None,
        },
    )
    .unwrap();
    let (_db, b) = store_support::open();
    let vs = store_support::new_vs(&a, "db").id;
    fork_on(&a, vs, "master", None, 3);
    sync(&a, &b, vs, SyncMode::Both).unwrap();
    a.flush().unwrap();
    sync(&a, &b, vs, SyncMode::Both).unwrap();
    assert_eq!(synced_view(&a, vs), synced_view(&b, vs));
}
