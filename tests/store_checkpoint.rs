//! Checkpoints: the open starts from the newest valid one and replays only the log after
//! it; a damaged, foreign or too-new checkpoint is ignored with a warning, never loaded.

mod store_support;

use mdslog::*;
use store_support::*;

fn grow(store: &Store, vs: VolumeSetId, tip: &mut SnapshotId, n: usize) {
    for _ in 0..n {
        let mut s = snap(vs, Some(*tip));
        s.name = format!("s{}", tip.0.as_u128() % 1000);
        store.extend_branch(std::slice::from_ref(&s)).unwrap();
        *tip = s.id;
    }
}

fn checkpoints(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ckpt"))
        .collect();
    v.sort();
    v
}

/// A store with history, a checkpoint, then more history.
fn store_with_checkpoint() -> (tempfile::TempDir, Lsn, CanonicalDumpPair) {
    let (dir, store) = open();
    let vs = new_vs(&store, "db");
    let root = snap(vs.id, None);
    store
        .fork_branch("master", std::slice::from_ref(&root))
        .unwrap();
    let mut tip = root.id;
    grow(&store, vs.id, &mut tip, 50);
    let at = store.checkpoint().unwrap();
    let at_dump = store.canonical_dump().unwrap();
    grow(&store, vs.id, &mut tip, 30);
    store.rename_branch(vs.id, "master", "main").unwrap();
    let end_dump = store.canonical_dump().unwrap();
    store.close().unwrap();
    (dir, at, (at_dump, end_dump))
}

type CanonicalDumpPair = (
    mdslog::state::query::CanonicalDump,
    mdslog::state::query::CanonicalDump,
);

#[test]
fn open_starts_from_the_checkpoint_and_replays_the_rest() {
    let (dir, at, (at_dump, end_dump)) = store_with_checkpoint();
    assert_eq!(checkpoints(dir.path()).len(), 1);
    let store = reopen(&dir);
    assert_eq!(store.opened_from_checkpoint(), Some(at));
    assert!(store.checkpoint_warnings().is_empty());
    assert_eq!(store.canonical_dump().unwrap(), end_dump);
    // History and time travel still come from the log.
    assert_eq!(store.as_of(at).unwrap().canonical_dump(), at_dump);
    // A read-only open uses it too.
    drop(store);
    let ro = Store::open_read_only(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(ro.opened_from_checkpoint(), Some(at));
    assert_eq!(ro.canonical_dump().unwrap(), end_dump);
}

#[test]
fn a_damaged_checkpoint_is_ignored_with_a_warning() {
    let (dir, _, (_, end_dump)) = store_with_checkpoint();
    let path = checkpoints(dir.path()).pop().unwrap();
    let mut b = std::fs::read(&path).unwrap();
    let n = b.len();
    for at in [0, 20, 100, n / 2, n - 1] {
        let keep = b[at];
        b[at] ^= 0x10;
        std::fs::write(&path, &b).unwrap();
        let store = reopen(&dir);
        assert_eq!(store.opened_from_checkpoint(), None, "byte {at}");
        assert_eq!(store.checkpoint_warnings().len(), 1, "byte {at}");
        assert_eq!(store.canonical_dump().unwrap(), end_dump, "byte {at}");
        drop(store);
        b[at] = keep;
    }
    // Truncated.
    std::fs::write(&path, &b[..n / 3]).unwrap();
    let store = reopen(&dir);
    assert_eq!(store.opened_from_checkpoint(), None);
    assert_eq!(store.canonical_dump().unwrap(), end_dump);
}

#[test]
fn an_older_checkpoint_serves_when_the_newest_is_damaged() {
    let (dir, first, (_, _)) = store_with_checkpoint();
    let store = reopen(&dir);
    let second = store.checkpoint().unwrap();
    assert!(second > first);
    let end = store.canonical_dump().unwrap();
    drop(store);
    let all = checkpoints(dir.path());
    assert_eq!(all.len(), 2);
    let newest = all.last().unwrap();
    let mut b = std::fs::read(newest).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 1;
    std::fs::write(newest, &b).unwrap();
    let store = reopen(&dir);
    assert_eq!(store.opened_from_checkpoint(), Some(first));
    assert_eq!(store.checkpoint_warnings().len(), 1);
    assert_eq!(store.canonical_dump().unwrap(), end);
}

#[test]
fn a_checkpoint_of_another_log_is_never_loaded() {
    // Same LSNs, different records: the checkpoint names the record it was made after.
    let (dir, at, (_, end_dump)) = store_with_checkpoint();
    let (other_dir, other) = open();
    let vs = new_vs(&other, "other");
    let root = snap(vs.id, None);
    other.fork_branch("x", std::slice::from_ref(&root)).unwrap();
    let mut tip = root.id;
    grow(&other, vs.id, &mut tip, 50);
    let other_at = other.checkpoint().unwrap();
    assert_eq!(other_at, at);
    drop(other);
    for p in checkpoints(dir.path()) {
        std::fs::remove_file(p).unwrap();
    }
    for p in checkpoints(other_dir.path()) {
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    let store = reopen(&dir);
    assert_eq!(store.opened_from_checkpoint(), None);
    assert_eq!(
        store.checkpoint_warnings().len(),
        1,
        "{:?}",
        store.checkpoint_warnings()
    );
    assert_eq!(store.canonical_dump().unwrap(), end_dump);
}

#[test]
fn automatic_checkpoints_keep_the_two_newest() {
    let (dir, store) = open();
    store.set_checkpoint_every(Some(20));
    let vs = new_vs(&store, "db");
    let root = snap(vs.id, None);
    store
        .fork_branch("master", std::slice::from_ref(&root))
        .unwrap();
    let mut tip = root.id;
    grow(&store, vs.id, &mut tip, 100);
    let cps = checkpoints(dir.path());
    assert_eq!(cps.len(), 2, "{cps:?}");
    let end = store.canonical_dump().unwrap();
    let last = store.durable_lsn();
    drop(store);
    let store = reopen(&dir);
    let from = store.opened_from_checkpoint().unwrap();
    assert!(from.0 + 20 >= last.0, "{from} {last}");
    assert_eq!(store.canonical_dump().unwrap(), end);
}

/// An automatic checkpoint that fails does not fail the (durable) mutation that
/// triggered it: the error is kept, and the store goes on.
#[test]
fn a_failed_automatic_checkpoint_does_not_fail_the_mutation() {
    let (dir, store) = open();
    let vs = new_vs(&store, "db");
    let next = store.durable_lsn().next();
    // A directory where the checkpoint's temporary file must go: creating it fails.
    for k in 0..4 {
        let name = format!("checkpoint-{:016x}.ckpt.tmp", next.0 + k);
        std::fs::create_dir(dir.path().join(&name)).unwrap();
        std::fs::write(dir.path().join(&name).join("x"), b"x").unwrap();
    }
    store.set_checkpoint_every(Some(1));
    let root = snap(vs.id, None);
    store
        .fork_branch("master", std::slice::from_ref(&root))
        .expect("the mutation is durable; only the checkpoint failed");
    assert!(store.last_checkpoint_error().is_some());
    assert_eq!(store.get_tip(vs.id, "master").unwrap().id, root.id);
    let dump = store.canonical_dump().unwrap();
    drop(store);
    assert_eq!(reopen(&dir).canonical_dump().unwrap(), dump);
}

/// Above 65,536 snapshots a checkpoint load builds the snapshot index on a second thread,
/// in bucket order; with deletions the table has free slots. The answers must not change.
#[test]
fn a_large_checkpoint_with_free_slots_loads_to_the_same_answers() {
    let (dir, store) = open();
    let vs = new_vs(&store, "big");
    let root = snap(vs.id, None);
    store
        .fork_branch("main", std::slice::from_ref(&root))
        .unwrap();
    // 70k snapshots in chains of 1,000, and a side branch that is then deleted.
    let mut tip = root.id;
    for _ in 0..70 {
        let mut chain = Vec::with_capacity(1000);
        for _ in 0..1000 {
            let s = snap(vs.id, Some(tip));
            tip = s.id;
            chain.push(s);
        }
        store.extend_branch(&chain).unwrap();
    }
    let side = snap(vs.id, Some(root.id));
    store
        .fork_branch("side", std::slice::from_ref(&side))
        .unwrap();
    let mut side_tip = side.id;
    grow(&store, vs.id, &mut side_tip, 20);
    store.delete_branch(vs.id, "side").unwrap();
    grow(&store, vs.id, &mut tip, 5);
    let at = store.checkpoint().unwrap();
    let dump = store.canonical_dump().unwrap();
    store.close().unwrap();
    let store = reopen(&dir);
    assert_eq!(store.opened_from_checkpoint(), Some(at));
    assert!(store.checkpoint_warnings().is_empty());
    assert_eq!(store.canonical_dump().unwrap(), dump);
    // Free slots are reused after the load, and the new snapshots are found.
    let mut t = store.get_tip(vs.id, "main").unwrap().id;
    grow(&store, vs.id, &mut t, 30);
    assert_eq!(store.get_tip(vs.id, "main").unwrap().id, t);
    assert!(store.get_snapshot(side_tip).is_err());
    assert_eq!(store.counts().unwrap().snapshots, 70_000 + 1 + 5 + 30);
}

/// A store written by the build before checkpoint version 2 (`tests/fixtures/ckpt-v1`: a
/// log of 25 records with a version-1 checkpoint as of LSN 24; the active segment's
/// pre-written zeros trimmed). This build skips that checkpoint with a warning naming the
/// version, replays the log to the same store, and its own checkpoint then serves.
#[test]
fn a_version_1_checkpoint_is_skipped_and_the_log_replays() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ckpt-v1");
    for e in std::fs::read_dir(&fixture).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
    }
    let check = |store: &Store| {
        let vs = store
            .get_volume_sets(&VolumeSetQuery::default())
            .unwrap()
            .pop()
            .unwrap();
        assert_eq!(vs.name, "fixture");
        assert_eq!(vs.num_snapshots, 23);
        let master = store.get_tip(vs.id, "master").unwrap();
        assert_eq!(master.depth, 22);
        let side = store.get_tip(vs.id, "side").unwrap();
        assert_eq!(side.depth, 2);
        let history = store
            .get_snapshots_by_branch(&BranchQuery::named(vs.id, "master"))
            .unwrap();
        assert_eq!(history.last().unwrap().name, "root");
        assert_eq!(history[1].size, 1900);
        store.canonical_dump().unwrap()
    };
    let store = Store::open_read_only(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(store.recovery_report().last_lsn, Lsn(25));
    assert!(store.recovery_report().torn_tail.is_none());
    assert_eq!(store.opened_from_checkpoint(), None);
    let warnings = store.checkpoint_warnings().join("\n");
    assert!(
        warnings.contains("checkpoint version 1, this build reads 2"),
        "{warnings}"
    );
    let dump = check(&store);
    drop(store);
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let at = store.checkpoint().unwrap();
    store.close().unwrap();
    let store = Store::open_read_only(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(store.opened_from_checkpoint(), Some(at));
    assert_eq!(check(&store), dump);
}
