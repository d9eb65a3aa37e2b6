//! Helpers shared by the `cli_*` tests: the `mdslog` binary as a command, and a store
//! made through the library (small segments, so there are several) with something of
//! everything: renamed branches, edits, a deleted volume set, a bush and a volume.
//!
//! Each test file uses only some of these.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use mdslog::state::query::Counts;
use mdslog::*;

/// The `mdslog` binary, with `MDSLOG_DIR` cleared and a fixed actor.
pub fn mdslog() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mdslog"));
    c.env_remove("MDSLOG_DIR")
        .env("USER", "tester")
        .write_stdin("");
    c
}

/// Runs `mdslog args...` and returns standard output, asserting the exit code.
pub fn run(args: &[&str], code: i32) -> String {
    let out = mdslog().args(args).assert().code(code).get_output().clone();
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `mdslog args...`, asserts the exit code and returns standard error.
pub fn run_err(args: &[&str], code: i32) -> String {
    let out = mdslog().args(args).assert().code(code).get_output().clone();
    String::from_utf8(out.stderr).unwrap()
}

/// Parses every line of `s` as JSON.
pub fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Log options that make small segments.
pub fn small_segments() -> LogOptions {
    LogOptions {
        segment_bytes_max: 4096,
        prewrite_bytes: 512,
        record_bytes_max: 2048,
        batch_bytes_max: 2072,
        ..LogOptions::default()
    }
}

/// A store made through the library, and what is in it.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    /// "acme/db": master (root → s2 → s3 → ... long chain) and "feature" (was "dev"),
    /// forked off s2.
    pub db: VolumeSetId,
    /// "web": one branch "main".
    pub web: VolumeSetId,
    /// "scratch": created, then deleted.
    pub scratch: VolumeSetId,
    pub root: SnapshotId,
    pub s2: SnapshotId,
    pub master_tip: SnapshotId,
    pub feature: BranchId,
    pub feature_tip: SnapshotId,
    /// The last LSN and a time after the first part (db with master root → s3) was written.
    pub mid_lsn: Lsn,
    pub mid_time: Timestamp,
    pub counts: Counts,
    pub last_lsn: Lsn,
}

impl Fixture {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn dir_str(&self) -> String {
        self.dir.path().display().to_string()
    }

    /// The segment files, in log order.
    pub fn segments(&self) -> Vec<PathBuf> {
        segments(self.path())
    }
}

/// The segment files of a directory, in log order.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut segs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segs.sort();
    segs
}

fn snap(vs: VolumeSetId, parent: Option<SnapshotId>, name: &str) -> Snapshot {
    let mut s = Snapshot::new(SnapshotId::random(), vs, parent);
    s.name = name.to_string();
    s.created = Timestamp::now();
    s.last_modified = s.created;
    s.size = 1 << 20;
    s
}

/// Builds the fixture store.
pub fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        StoreOptions {
            log: small_segments(),
            actor: Some("alice".into()),
        },
    )
    .unwrap();
    let attrs = |pairs: &[(&str, &str)]| -> Attrs {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let db = store
        .create_volume_set(
            "db",
            "acme",
            attrs(&[("team", "storage")]),
            "our database",
            "ann",
            "ann",
        )
        .unwrap();
    let mut root = snap(db.id, None, "root");
    root.blob = BlobId::from("blob-root");
    let s2 = snap(db.id, Some(root.id), "second");
    let s3 = snap(db.id, Some(s2.id), "third");
    store
        .fork_branch("master", &[root.clone(), s2.clone(), s3.clone()])
        .unwrap();
    let mid_lsn = store.durable_lsn();
    let mid_time = Timestamp::now();
    // Records after this point are stamped later than mid_time.
    std::thread::sleep(std::time::Duration::from_millis(5));

    let web = store
        .create_volume_set("web", "", Attrs::new(), "", "bob", "bob")
        .unwrap();
    let d1 = snap(db.id, Some(s2.id), "dev one");
    let d2 = snap(db.id, Some(d1.id), "dev two");
    let feature = store
        .fork_branch("dev", &[d1, d2.clone()])
        .unwrap()
        .unwrap();
    store.rename_branch(db.id, "dev", "feature").unwrap();
    let mut tip = s3.id;
    for i in 0..60 {
        let s = snap(db.id, Some(tip), &format!("nightly {i}"));
        store.extend_branch(std::slice::from_ref(&s)).unwrap();
        tip = s.id;
    }
    let mut cur = store.get_volume_set(db.id).unwrap();
    cur.attrs.insert("tier".into(), "gold".into());
    store.update_volume_set(&cur, None).unwrap();
    store.set_volume_set_size(db.id, 5 << 20).unwrap();
    store
        .fork_branch("main", &[snap(web.id, None, "web root")])
        .unwrap();
    let scratch = store
        .create_volume_set("scratch", "", Attrs::new(), "", "bob", "bob")
        .unwrap();
    store
        .fork_branch("master", &[snap(scratch.id, None, "tmp")])
        .unwrap();
    store.delete_volume_set(scratch.id).unwrap();
    store
        .import_bush(&Bush {
            root: root.id,
            volume_set: db.id,
            data_server: 7,
        })
        .unwrap();
    store
        .import_volume(&Volume {
            id: VolumeId::from("vol-1"),
            volume_set: db.id,
            base: Some(s2.id),
            mount_path: "/mnt/vol-1".into(),
            attrs: Attrs::new(),
            created: Timestamp::now(),
            size: 0,
            name: "work".into(),
        })
        .unwrap();
    let counts = store.counts().unwrap();
    let last_lsn = store.durable_lsn();
    store.close().unwrap();
    let f = Fixture {
        dir,
        db: db.id,
        web: web.id,
        scratch: scratch.id,
        root: root.id,
        s2: s2.id,
        master_tip: tip,
        feature,
        feature_tip: d2.id,
        mid_lsn,
        mid_time,
        counts,
        last_lsn,
    };
    assert!(
        f.segments().len() >= 3,
        "the fixture needs several segments"
    );
    f
}

/// Flips one bit of a byte of a file.
pub fn flip(path: &Path, at: usize) {
    let mut b = std::fs::read(path).unwrap();
    b[at] ^= 0x20;
    std::fs::write(path, b).unwrap();
}

/// Flips a byte in the middle of the payload of the first record of a segment; returns
/// that frame's offset (72, right after the header) and LSN.
pub fn flip_first_payload(path: &Path) -> (u64, u64) {
    let b = std::fs::read(path).unwrap();
    let len = u32::from_le_bytes(b[72..76].try_into().unwrap()) as usize;
    let lsn = u64::from_le_bytes(b[80..88].try_into().unwrap());
    assert!(len > 0);
    flip(path, 72 + 24 + len / 2);
    (72, lsn)
}

/// Appends garbage to the last segment after its valid records: a torn tail.
pub fn tear(dir: &Path) {
    let st = mdslog::log::fs::DirStorage::new(dir, false).unwrap();
    let report = mdslog::log::verify::verify(&st).unwrap();
    let seg = report.segments.last().unwrap();
    assert!(!seg.sealed, "a torn tail needs an active last segment");
    let end = seg.bytes as usize;
    let mut b = std::fs::read(&seg.file).unwrap();
    // A frame header claiming a payload, with a bad checksum and nothing after it.
    let mut junk = vec![0u8; 24];
    junk[0..4].copy_from_slice(&40u32.to_le_bytes());
    junk[4..6].copy_from_slice(&1u16.to_le_bytes());
    junk[20..24].copy_from_slice(&0xdead_beefu32.to_le_bytes());
    junk.extend_from_slice(&[0xab; 40]);
    b.truncate(end);
    b.extend_from_slice(&junk);
    std::fs::write(&seg.file, b).unwrap();
}
