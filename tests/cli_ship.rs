//! The replication commands of `mdslog`: `ship`, `follow` (run as a process, stopped
//! with SIGINT or SIGTERM) and `status`; checked through their output, their JSON and the
//! library.

mod cli_support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cli_support::*;
use mdslog::*;
use serde_json::Value;

fn opts() -> StoreOptions {
    StoreOptions {
        log: small_segments(),
        actor: Some("tester".into()),
    }
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// The segment files of a directory and their bytes.
fn seg_files(d: &Path) -> Vec<(String, Vec<u8>)> {
    segments(d)
        .into_iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

/// The follower's segments are the primary's: all but the last equal, the last a prefix.
#[track_caller]
fn assert_copy(primary: &Path, follower: &Path) {
    let p = seg_files(primary);
    let f = seg_files(follower);
    assert!(!f.is_empty() && f.len() <= p.len());
    for (i, (name, bytes)) in f.iter().enumerate() {
        assert_eq!(name, &p[i].0);
        if i + 1 < f.len() {
            assert!(bytes == &p[i].1, "{name} differs");
        } else {
            assert!(p[i].1.starts_with(bytes), "{name} is not a prefix");
        }
    }
}

fn last_lsn(dir: &Path) -> u64 {
    Log::open_read_only(dir, LogOptions::default())
        .unwrap()
        .durable_lsn()
        .0
}

/// Adds `n` snapshots on master of "acme/db" through the library.
fn grow(dir: &Path, n: usize) {
    let st = Store::open(dir, opts()).unwrap();
    let vs = st
        .get_volume_sets(&VolumeSetQuery::default())
        .unwrap()
        .into_iter()
        .find(|v| v.name == "db")
        .unwrap()
        .id;
    let mut tip = st.get_tip(vs, "master").unwrap().id;
    for i in 0..n {
        let mut sn = Snapshot::new(SnapshotId::random(), vs, Some(tip));
        sn.name = format!("more {i}");
        sn.created = Timestamp::now();
        sn.last_modified = sn.created;
        st.extend_branch(std::slice::from_ref(&sn)).unwrap();
        tip = sn.id;
    }
    st.close().unwrap();
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

// ---- ship ----------------------------------------------------------------------------------

#[test]
fn ship_copies_the_log_and_reports_what_it_did() {
    let f = fixture();
    let root = tempfile::tempdir().unwrap();
    let dst = root.path().join("follower"); // created by the ship
    let out = run(&["ship", &f.dir_str(), &s(&dst)], 0);
    assert!(out.contains("shipped"), "{out}");
    assert!(
        out.contains(&format!("records (LSN 1 … {})", f.last_lsn)),
        "{out}"
    );
    assert!(
        out.contains(&format!("the follower is at LSN {}", f.last_lsn)),
        "{out}"
    );
    assert!(out.contains("segments copied whole"), "{out}");
    assert_copy(f.path(), &dst);
    assert_eq!(last_lsn(&dst), f.last_lsn.0);

    // Again: nothing new.
    let out = run(&["ship", &f.dir_str(), &s(&dst)], 0);
    assert!(out.starts_with("nothing to ship"), "{out}");
    let v = json(&run(&["ship", &f.dir_str(), &s(&dst), "--json"], 0));
    assert_eq!(v["records_shipped"], 0);
    assert_eq!(v["bytes_copied"], 0);
    assert_eq!(v["follower_last_lsn"], f.last_lsn.0);

    // More records: only they are shipped.
    grow(f.path(), 40);
    let v = json(&run(&["ship", &f.dir_str(), &s(&dst), "--json"], 0));
    for k in [
        "source",
        "follower",
        "source_last_lsn",
        "follower_lsn_before",
        "follower_last_lsn",
        "segments_copied",
        "bytes_copied",
        "records_shipped",
        "torn_bytes_cut",
    ] {
        assert!(v.get(k).is_some(), "{k} in {v}");
    }
    assert_eq!(v["follower_lsn_before"], f.last_lsn.0);
    assert_eq!(v["records_shipped"], 40);
    assert_eq!(v["follower_last_lsn"], f.last_lsn.0 + 40);
    assert!(v["segments_copied"].as_u64().unwrap() >= 1, "{v}");
    assert_eq!(v["torn_bytes_cut"], 0);
    assert_copy(f.path(), &dst);

    // The follower reads like the primary with the inspection commands.
    assert_eq!(
        run(&["tree", &s(&dst), "db", "--json"], 0),
        run(&["tree", &f.dir_str(), "db", "--json"], 0)
    );
    run(&["verify", &s(&dst)], 0);
}

#[test]
fn ship_reports_a_torn_tail_it_cut() {
    let f = fixture();
    let dst = tempfile::tempdir().unwrap();
    run(&["ship", &f.dir_str(), &s(dst.path())], 0);
    tear(dst.path());
    grow(f.path(), 3);
    let out = run(&["ship", &f.dir_str(), &s(dst.path())], 0);
    assert!(out.contains("of a torn tail cut"), "{out}");
    assert_copy(f.path(), dst.path());
    assert_eq!(last_lsn(dst.path()), last_lsn(f.path()));
}

#[test]
fn ship_refuses_and_says_why() {
    let f = fixture();
    let root = tempfile::tempdir().unwrap();

    // Not a store.
    let err = run_err(&["ship", &s(&root.path().join("nope")), &s(root.path())], 2);
    assert!(err.contains("no store directory"), "{err}");
    let empty = root.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let err = run_err(&["ship", &s(&empty), &s(&root.path().join("x"))], 2);
    assert!(err.contains("holds no log"), "{err}");
    // The same directory twice.
    let err = run_err(&["ship", &f.dir_str(), &f.dir_str()], 2);
    assert!(err.contains("same directory"), "{err}");
    // A missing argument is a usage error.
    run_err(&["ship", &f.dir_str()], 2);

    // Another store's follower.
    let dst = root.path().join("follower");
    run(&["ship", &f.dir_str(), &s(&dst)], 0);
    let other = root.path().join("other");
    run(&["volume-set", "create", &s(&other), "x"], 0);
    let err = run_err(&["ship", &s(&other), &s(&dst)], 2);
    assert!(err.contains("refusing to ship into"), "{err}");
    assert!(err.contains(".seg"), "names the segment: {err}");
    assert!(err.contains("empty directory"), "says what to do: {err}");

    // A follower a store holds open for writing.
    let held = Store::open(&dst, opts()).unwrap();
    let err = run_err(&["ship", &f.dir_str(), &s(&dst)], 2);
    assert!(err.contains("locked"), "{err}");
    assert!(
        err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    drop(held);

    // A damaged source: exit 1, nothing shipped, `mdslog verify` named.
    let fresh = root.path().join("fresh");
    flip_first_payload(&f.segments()[1]);
    let err = run_err(&["ship", &f.dir_str(), &s(&fresh)], 1);
    assert!(err.contains("mdslog verify"), "{err}");
    assert!(!fresh.exists() || segments(&fresh).is_empty());
}

// ---- status --------------------------------------------------------------------------------

#[test]
fn status_of_a_primary_and_of_a_follower() {
    let f = fixture();
    let root = tempfile::tempdir().unwrap();
    let dst = root.path().join("follower");

    // A primary: no ship source.
    let out = run(&["status", &f.dir_str()], 0);
    assert!(
        out.contains(&format!("last LSN     {}", f.last_lsn)),
        "{out}"
    );
    assert!(out.contains("none noted"), "{out}");
    assert!(out.contains("free"), "{out}");
    let v = json(&run(&["status", &f.dir_str(), "--json"], 0));
    assert_eq!(v["last_lsn"], f.last_lsn.0);
    assert_eq!(v["ship_source"], Value::Null);
    assert_eq!(v["primary"], Value::Null);
    assert_eq!(v["lock"]["held"], false);
    let segs = f.segments().len() as u64;
    assert_eq!(v["segments"]["count"], segs);
    assert_eq!(v["segments"]["sealed"], segs - 1);
    let st = Store::open_read_only(f.path(), StoreOptions::default()).unwrap();
    let sid = st.store_id().unwrap().unwrap().to_string();
    drop(st);
    assert_eq!(v["store_id"], sid.as_str());

    // A follower: the noted source, up to date.
    run(&["ship", &f.dir_str(), &s(&dst)], 0);
    let v = json(&run(&["status", &s(&dst), "--json"], 0));
    let noted = f.path().canonicalize().unwrap();
    assert_eq!(v["ship_source"], s(&noted).as_str());
    assert_eq!(v["store_id"], sid.as_str());
    assert_eq!(v["primary"]["from"], "ship-source");
    assert_eq!(v["primary"]["reachable"], true);
    assert_eq!(v["primary"]["diverged"], Value::Null);
    assert_eq!(v["primary"]["lag"]["records"], 0);
    assert_eq!(v["primary"]["lag"]["bytes"], 0);
    let out = run(&["status", &s(&dst)], 0);
    assert!(out.contains("up to date"), "{out}");

    // Behind: the lag in records and bytes, with the noted source or a given one.
    grow(f.path(), 25);
    let v = json(&run(&["status", &s(&dst), "--json"], 0));
    assert_eq!(v["primary"]["lag"]["records"], 25);
    assert!(v["primary"]["lag"]["bytes"].as_u64().unwrap() > 0);
    assert_eq!(v["primary"]["lag"]["primary_last_lsn"], f.last_lsn.0 + 25);
    assert_eq!(v["primary"]["lag"]["follower_last_lsn"], f.last_lsn.0);
    let v = json(&run(
        &["status", &s(&dst), "--primary", &f.dir_str(), "--json"],
        0,
    ));
    assert_eq!(v["primary"]["from"], "argument");
    assert_eq!(v["primary"]["lag"]["records"], 25);
    let out = run(&["status", &s(&dst)], 0);
    assert!(out.contains("25 records"), "{out}");
    assert!(out.contains("behind"), "{out}");

    // A writer holding the follower (its promotion) shows in the lock.
    {
        let promoted = Store::open(&dst, opts()).unwrap();
        let v = json(&run(&["status", &s(&dst), "--json"], 0));
        assert_eq!(v["lock"]["held"], true);
        assert_eq!(v["lock"]["pid"], std::process::id());
        let out = run(&["status", &s(&dst)], 0);
        assert!(
            out.contains(&format!("held by pid {}", std::process::id())),
            "{out}"
        );
        // It writes: no longer a copy of the primary.
        let vs = promoted
            .get_volume_sets(&VolumeSetQuery::default())
            .unwrap()[0]
            .id;
        promoted.set_volume_set_size(vs, 12345).unwrap();
    }
    let v = json(&run(&["status", &s(&dst), "--json"], 0));
    assert!(v["primary"]["diverged"].is_string(), "{v}");
    assert_eq!(v["primary"]["lag"], Value::Null);
    let out = run(&["status", &s(&dst)], 0);
    assert!(out.contains("not a copy"), "{out}");
}

#[test]
fn status_with_an_unreachable_primary() {
    let f = fixture();
    let root = tempfile::tempdir().unwrap();
    let src = root.path().join("primary");
    std::fs::rename(f.path(), &src).unwrap();
    let dst = root.path().join("follower");
    run(&["ship", &s(&src), &s(&dst)], 0);
    std::fs::rename(&src, root.path().join("moved")).unwrap();

    // A noted source that is gone is reported, not an error.
    let out = run(&["status", &s(&dst)], 0);
    assert!(out.contains("unreachable"), "{out}");
    let v = json(&run(&["status", &s(&dst), "--json"], 0));
    assert_eq!(v["primary"]["reachable"], false);
    assert!(v["primary"]["error"].is_string());
    assert_eq!(v["primary"]["lag"], Value::Null);
    assert_eq!(v["last_lsn"], f.last_lsn.0);

    // A --primary that is not there is an error.
    let err = run_err(&["status", &s(&dst), "--primary", &s(&src)], 2);
    assert!(err.contains("no store directory"), "{err}");
    // So is a directory that is not there.
    run_err(&["status", &s(&root.path().join("nope"))], 2);
}

#[test]
fn help_texts_have_examples() {
    for cmd in ["ship", "follow", "status"] {
        let out = run(&[cmd, "--help"], 0);
        assert!(out.contains("Example"), "{cmd}: {out}");
        assert!(out.contains(&format!("mdslog {cmd} ")), "{cmd}: {out}");
        assert!(out.contains("--json"), "{cmd}: {out}");
    }
    let out = run(&["--help"], 0);
    for cmd in ["ship", "follow", "status"] {
        assert!(out.contains(cmd), "{out}");
    }
}

// ---- follow --------------------------------------------------------------------------------

/// `mdslog follow SRC DST --interval-ms 20 [--json]`, output to files.
fn spawn_follow(src: &Path, dst: &Path, json: bool, out: &Path) -> Child {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mdslog"));
    c.args(["follow", &s(src), &s(dst), "--interval-ms", "20"])
        .env_remove("MDSLOG_DIR")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(out.with_extension("out")).unwrap())
        .stderr(std::fs::File::create(out.with_extension("err")).unwrap());
    if json {
        c.arg("--json");
    }
    c.spawn().unwrap()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

fn wait_exit(child: &mut Child) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("follow did not exit");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn follow_until_signal(sig: &str, json_lines_out: bool) {
    let f = fixture();
    let root = tempfile::tempdir().unwrap();
    let dst = root.path().join("follower");
    let out = root.path().join("follow");
    let mut child = spawn_follow(f.path(), &dst, json_lines_out, &out);
    // It ships at once.
    wait_until("the first ship", || {
        dst.is_dir() && segments(&dst).len() == f.segments().len() && {
            Log::open_read_only(&dst, LogOptions::default())
                .map(|l| l.durable_lsn() == f.last_lsn)
                .unwrap_or(false)
        }
    });
    // It holds the follower: it cannot be promoted meanwhile, and status says so.
    assert!(matches!(
        Store::open(&dst, opts()),
        Err(Error::Locked { pid: Some(p), .. }) if p == child.id()
    ));
    let v = json(&run(&["status", &s(&dst), "--json"], 0));
    assert_eq!(v["lock"]["held"], true);
    assert_eq!(v["lock"]["pid"], child.id());
    // The primary writes (in two steps); the follower keeps up.
    let reader = Store::open_read_only(&dst, StoreOptions::default()).unwrap();
    for _ in 0..2 {
        grow(f.path(), 30);
        let want = last_lsn(f.path());
        wait_until("the follower caught up", || match reader.refresh() {
            Ok(lsn) => lsn == Lsn(want),
            Err(e) => panic!("{e}"),
        });
    }
    signal(&child, sig);
    assert_eq!(wait_exit(&mut child), 0, "follow exits 0 on {sig}");
    // The lock is released: the follower can be promoted.
    let promoted = Store::open(&dst, opts()).unwrap();
    assert_eq!(promoted.durable_lsn(), Lsn(last_lsn(f.path())));
    drop(promoted);

    let stdout = std::fs::read_to_string(out.with_extension("out")).unwrap();
    let stderr = std::fs::read_to_string(out.with_extension("err")).unwrap();
    assert!(stderr.contains("following"), "{stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
    assert!(stderr.contains("lock is released"), "{stderr}");
    if json_lines_out {
        let lines = json_lines(&stdout);
        assert!(lines.len() >= 3, "a line per ship that shipped: {stdout}");
        assert!(lines
            .iter()
            .all(|l| l["records_shipped"].as_u64().unwrap() > 0 && l["time"].is_string()));
        assert_eq!(lines[0]["follower_lsn_before"], 0);
        assert_eq!(lines[0]["follower_last_lsn"], f.last_lsn.0);
        assert_eq!(
            lines.last().unwrap()["follower_last_lsn"],
            f.last_lsn.0 + 60
        );
        let total: u64 = lines
            .iter()
            .map(|l| l["records_shipped"].as_u64().unwrap())
            .sum();
        assert_eq!(total, f.last_lsn.0 + 60);
    } else {
        let lines: Vec<&str> = stdout.lines().collect();
        assert!(lines.len() >= 3, "{stdout}");
        assert!(
            lines.iter().all(|l| l.contains("follower at LSN")),
            "{stdout}"
        );
        assert!(
            lines
                .last()
                .unwrap()
                .ends_with(&format!("follower at LSN {}", f.last_lsn.0 + 60)),
            "{stdout}"
        );
    }
}

#[test]
fn follow_ships_until_sigint_and_releases_the_lock() {
    follow_until_signal("-INT", true);
}

#[test]
fn follow_ships_until_sigterm_and_releases_the_lock() {
    follow_until_signal("-TERM", false);
}

#[test]
fn follow_stops_with_an_error_on_a_diverged_follower() {
    let f = fixture();
    let root = tempfile::tempdir().unwrap();
    let other = root.path().join("other");
    run(&["volume-set", "create", &s(&other), "x"], 0);
    let dst = root.path().join("follower");
    run(&["ship", &s(&other), &s(&dst)], 0);
    let out = root.path().join("follow");
    let mut child = spawn_follow(f.path(), &dst, false, &out);
    assert_eq!(wait_exit(&mut child), 2);
    let stderr = std::fs::read_to_string(out.with_extension("err")).unwrap();
    assert!(stderr.contains("refusing to ship into"), "{stderr}");
    // The lock went with it.
    Store::open(&dst, opts()).unwrap();

    // A follower held by another shipper: refused at once.
    let dst2 = root.path().join("follower2");
    let mut first = spawn_follow(f.path(), &dst2, false, &root.path().join("first"));
    wait_until("the first follow ships", || {
        Log::open_read_only(&dst2, LogOptions::default())
            .map(|l| l.durable_lsn() == f.last_lsn)
            .unwrap_or(false)
    });
    let err = run_err(&["follow", &f.dir_str(), &s(&dst2)], 2);
    assert!(err.contains("locked"), "{err}");
    let err = run_err(&["ship", &f.dir_str(), &s(&dst2)], 2);
    assert!(err.contains("locked"), "{err}");
    signal(&first, "-INT");
    assert_eq!(wait_exit(&mut first), 0);
}
