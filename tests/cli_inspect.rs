//! The inspection commands of `mdslog` (verify, stats, dump, tree, history, show, repair)
//! on stores made through the library and on damaged copies of them.

mod cli_support;

use cli_support::*;
use mdslog::{Lsn, Store, StoreOptions};
use predicates::prelude::*;
use serde_json::Value;

// ---- verify ------------------------------------------------------------------------------

#[test]
fn verify_clean_store_exits_0_and_replays_everything() {
    let f = fixture();
    let out = run(&["verify", &f.dir_str()], 0);
    assert!(out.lines().any(|l| l == "clean"), "{out}");
    assert!(out.contains(&format!("{} records", f.last_lsn)), "{out}");
    assert!(!out.contains("FINDING"), "{out}");

    let v: Value = serde_json::from_str(&run(&["verify", "--json", &f.dir_str()], 0)).unwrap();
    assert_eq!(v["clean"], true);
    assert_eq!(v["records"], f.last_lsn.0);
    assert_eq!(v["last_lsn"], f.last_lsn.0);
    assert_eq!(v["findings"].as_array().unwrap().len(), 0);
    let segs = v["segments"].as_array().unwrap();
    assert_eq!(segs.len(), f.segments().len());
    for (s, path) in segs.iter().zip(f.segments()) {
        assert_eq!(s["file"], path.display().to_string());
        for k in ["id", "first_lsn", "last_lsn", "records", "bytes"] {
            assert!(s[k].is_u64(), "{k}: {s}");
        }
        assert!(s["sealed"].is_boolean());
        assert!(s["torn_tail"].is_null());
    }
    assert_eq!(segs[0]["first_lsn"], 1);
    assert_eq!(segs[0]["sealed"], true);
    let replay = &v["replay"];
    assert_eq!(replay["records"], f.last_lsn.0);
    assert_eq!(replay["applied_lsn"], f.last_lsn.0);
    assert_eq!(replay["counts"]["snapshots"], f.counts.snapshots);
    assert_eq!(replay["counts"]["volume_sets"], f.counts.volume_sets);
    assert_eq!(replay["counts"]["branches"], f.counts.branches);
    assert_eq!(replay["counts"]["bushes"], 1);
    assert_eq!(replay["counts"]["volumes"], 1);
}

#[test]
fn verify_lists_every_flipped_byte_in_sealed_segments_and_exits_1() {
    let f = fixture();
    let segs = f.segments();
    assert!(
        segs.len() >= 4,
        "two sealed segments to damage, not the last one"
    );
    let damaged = [
        (&segs[0], flip_first_payload(&segs[0])),
        (&segs[2], flip_first_payload(&segs[2])),
    ];
    let out = run(&["verify", &f.dir_str()], 1);
    let findings: Vec<&str> = out.lines().filter(|l| l.starts_with("FINDING")).collect();
    assert_eq!(findings.len(), 2, "{out}");
    for (line, (path, (offset, lsn))) in findings.iter().zip(&damaged) {
        assert!(
            line.contains(&format!("{} at byte {offset} (LSN {lsn})", path.display())),
            "{line}"
        );
    }
    assert!(out.contains("replay     skipped"), "{out}");
    assert!(out.contains("repair --salvage"), "{out}");

    let v: Value = serde_json::from_str(&run(&["verify", "--json", &f.dir_str()], 1)).unwrap();
    assert_eq!(v["clean"], false);
    assert!(v["replay"].is_null());
    let fs = v["findings"].as_array().unwrap();
    assert_eq!(fs.len(), 2);
    for (x, (path, (offset, lsn))) in fs.iter().zip(&damaged) {
        assert_eq!(x["file"], path.display().to_string());
        assert_eq!(x["offset"], *offset);
        assert_eq!(x["lsn"], *lsn);
        assert!(
            x["what"]
                .as_str()
                .unwrap()
                .contains("record checksum mismatch"),
            "{x}"
        );
    }
}

#[test]
fn verify_reports_a_torn_tail_without_failing() {
    let f = fixture();
    tear(f.path());
    let out = run(&["verify", &f.dir_str()], 0);
    assert!(out.contains("torn tail"), "{out}");
    assert!(out.lines().any(|l| l == "clean"), "{out}");
    let v: Value = serde_json::from_str(&run(&["verify", "--json", &f.dir_str()], 0)).unwrap();
    let last = v["segments"].as_array().unwrap().last().unwrap().clone();
    assert!(last["torn_tail"]["offset"].as_u64().unwrap() > 72, "{last}");
    assert!(last["torn_tail"]["bytes"].as_u64().unwrap() > 0, "{last}");
    assert_eq!(v["replay"]["records"], f.last_lsn.0);
    // Read-only commands see the valid prefix and name the tail.
    let v: Value = serde_json::from_str(&run(&["stats", "--json", &f.dir_str()], 0)).unwrap();
    assert_eq!(v["records"]["count"], f.last_lsn.0);
    assert!(v["torn_tail"]["bytes"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(
        run(&["dump", &f.dir_str()], 0).lines().count() as u64,
        f.last_lsn.0
    );
}

#[test]
fn verify_replay_checks_the_invariants_of_the_state() {
    let f = fixture();
    // A well-formed record that no store would write: a branch whose snapshot hangs off a
    // parent that does not exist.
    let mut orphan = mdslog::Snapshot::new(
        mdslog::SnapshotId::random(),
        f.db,
        Some(mdslog::SnapshotId::random()),
    );
    orphan.name = "orphan".into();
    let env = mdslog::event::Envelope {
        time: mdslog::Timestamp::now(),
        actor: None,
        event: mdslog::event::Event::ForkBranch(mdslog::event::NewBranch {
            volume_set: f.db,
            branch: mdslog::BranchId::random(),
            name: "stray".into(),
            tip: orphan.id,
            snapshots: vec![orphan.clone()],
        }),
    };
    let log = mdslog::Log::open(f.path(), mdslog::LogOptions::default()).unwrap();
    let lsn = log
        .append(env.event.kind(), &env.encode().unwrap())
        .unwrap();
    log.close().unwrap();
    let v: Value = serde_json::from_str(&run(&["verify", "--json", &f.dir_str()], 1)).unwrap();
    let fs = v["findings"].as_array().unwrap();
    assert_eq!(fs.len(), 1, "{v}");
    assert!(
        fs[0]["file"].is_null() && fs[0]["offset"].is_null(),
        "{}",
        fs[0]
    );
    assert_eq!(fs[0]["lsn"], lsn.0);
    let what = fs[0]["what"].as_str().unwrap();
    assert!(
        what.contains(&orphan.id.to_string()) && what.contains("orphaned"),
        "{what}"
    );
    let out = run(&["verify", &f.dir_str()], 1);
    assert!(out.contains("FINDING    replayed state (LSN"), "{out}");
}

#[test]
fn verify_replay_finds_a_record_this_version_cannot_decode() {
    let f = fixture();
    // A record of a kind this version does not know, with a valid frame and checksum.
    let log = mdslog::Log::open(f.path(), mdslog::LogOptions::default()).unwrap();
    let last = log.segments().pop().unwrap();
    assert!(!last.sealed);
    let lsn = log
        .append(mdslog::RecordKind(999), b"from the future")
        .unwrap();
    log.close().unwrap();
    let v: Value = serde_json::from_str(&run(&["verify", "--json", &f.dir_str()], 1)).unwrap();
    assert_eq!(v["clean"], false);
    assert_eq!(v["records"], lsn.0, "the log itself is fine");
    let fs = v["findings"].as_array().unwrap();
    assert_eq!(fs.len(), 1, "{v}");
    assert_eq!(
        fs[0]["file"],
        f.path().join(&last.file_name).display().to_string()
    );
    assert_eq!(fs[0]["offset"], last.bytes);
    assert_eq!(fs[0]["lsn"], lsn.0);
    assert!(
        fs[0]["what"]
            .as_str()
            .unwrap()
            .contains("unknown record kind 999"),
        "{}",
        fs[0]
    );
    assert_eq!(v["replay"]["records"], lsn.0);
    let out = run(&["verify", &f.dir_str()], 1);
    assert!(
        out.contains(&format!("at byte {} (LSN {lsn})", last.bytes)),
        "{out}"
    );
    // Commands that decode records stop there with exit 1 and say what to run.
    let err = run_err(&["dump", &f.dir_str()], 1);
    assert!(
        err.contains("unknown record kind") && err.contains("mdslog verify"),
        "{err}"
    );
    run_err(&["stats", &f.dir_str()], 1);
    // Up to the record before it, dumping works.
    let prev = (lsn.0 - 1).to_string();
    assert_eq!(
        run(&["dump", &f.dir_str(), "--to", &prev], 0)
            .lines()
            .count() as u64,
        lsn.0 - 1
    );
}

#[test]
fn verify_and_inspection_fail_with_exit_2_on_a_missing_directory_or_bad_usage() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let m = missing.display().to_string();
    for args in [
        vec!["verify", m.as_str()],
        vec!["stats", m.as_str()],
        vec!["dump", m.as_str()],
        vec!["show", m.as_str(), "x"],
        vec!["history", m.as_str(), "x"],
        vec!["tree", m.as_str(), "x"],
        vec!["repair", m.as_str()],
    ] {
        let err = run_err(&args, 2);
        assert!(
            err.contains("no store directory") && err.contains("MDSLOG_DIR"),
            "{args:?}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(
            !missing.exists(),
            "inspection must not create the directory"
        );
    }
    // Usage errors (clap) are exit 2 as well.
    run_err(&["verify"], 2);
    run_err(&["stats", "--no-such-flag", m.as_str()], 2);
    run_err(&["no-such-command"], 2);
}

#[test]
fn inspection_works_beside_a_live_writer() {
    let f = fixture();
    let writer = Store::open(f.path(), StoreOptions::default()).unwrap();
    run(&["verify", &f.dir_str()], 0);
    let out = run(&["stats", &f.dir_str()], 0);
    assert!(
        out.contains(&format!("records     {}", f.last_lsn)),
        "{out}"
    );
    run(&["tree", &f.dir_str(), "db"], 0);
    run(&["dump", &f.dir_str(), "--from", "1", "--to", "3"], 0);
    // Repair needs the lock: damage a sealed segment under the writer (bit rot).
    flip_first_payload(&f.segments()[0]);
    let err = run_err(&["repair", &f.dir_str(), "--salvage", "--yes"], 2);
    assert!(err.contains("locked"), "{err}");
    writer.close().unwrap();
}

// ---- stats -------------------------------------------------------------------------------

#[test]
fn stats_counts_segments_records_kinds_and_objects() {
    let f = fixture();
    let out = run(&["stats", &f.dir_str()], 0);
    assert!(
        out.contains(&format!("segments    {} (", f.segments().len())),
        "{out}"
    );
    assert!(out.contains("by alice"), "{out}");
    assert!(out.contains("fork-branch"), "{out}");
    assert!(out.contains("2 volume sets"), "{out}");

    let v: Value = serde_json::from_str(&run(&["stats", "--json", &f.dir_str()], 0)).unwrap();
    assert_eq!(v["segments"]["count"], f.segments().len());
    let bytes: u64 = f
        .segments()
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(v["segments"]["bytes"].as_u64().unwrap() <= bytes);
    assert_eq!(v["records"]["count"], f.last_lsn.0);
    assert_eq!(v["records"]["first_lsn"], 1);
    assert_eq!(v["records"]["last_lsn"], f.last_lsn.0);
    let by_kind = v["records"]["by_kind"].as_object().unwrap();
    assert_eq!(
        by_kind.values().map(|n| n.as_u64().unwrap()).sum::<u64>(),
        f.last_lsn.0
    );
    assert_eq!(by_kind["extend-branch"], 60);
    assert_eq!(by_kind["rename-branch"], 1);
    assert_eq!(by_kind["delete-volume-set"], 1);
    assert_eq!(v["first"]["lsn"], 1);
    assert_eq!(v["last"]["lsn"], f.last_lsn.0);
    assert_eq!(v["last"]["actor"], "alice");
    assert!(v["first"]["time"].as_str().unwrap().ends_with('Z'));
    assert!(v["first"]["time_us"].as_i64().unwrap() <= v["last"]["time_us"].as_i64().unwrap());
    let objects = &v["objects"];
    assert_eq!(objects["volume_sets"], f.counts.volume_sets);
    assert_eq!(objects["snapshots"], f.counts.snapshots);
    assert_eq!(objects["branches"], f.counts.branches);
    assert!(v["torn_tail"].is_null());
}

#[test]
fn stats_on_an_empty_store_and_on_a_damaged_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["stats", &dir.path().display().to_string()], 0);
    assert!(out.contains("records     0"), "{out}");

    let f = fixture();
    flip_first_payload(&f.segments()[1]);
    let err = run_err(&["stats", &f.dir_str()], 1);
    assert!(
        err.contains("corrupt log") && err.contains("mdslog verify"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

// ---- dump --------------------------------------------------------------------------------

#[test]
fn dump_prints_every_record_readable_and_as_json_lines() {
    let f = fixture();
    let out = run(&["dump", &f.dir_str()], 0);
    assert_eq!(out.lines().count() as u64, f.last_lsn.0);
    let mut lines = out.lines();
    let identity = lines.next().unwrap();
    assert!(identity.contains("set-store-id"), "{identity}");
    let first = lines.next().unwrap();
    assert!(
        first.contains("import-volume-set") && first.contains("alice") && first.contains("acme/db"),
        "{first}"
    );
    assert!(out.contains("renamed \"dev\" → \"feature\""), "{out}");

    let lines = json_lines(&run(&["dump", "--json", &f.dir_str()], 0));
    assert_eq!(lines.len() as u64, f.last_lsn.0);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["lsn"], i as u64 + 1);
        let kind = l["kind"].as_str().unwrap();
        let kind_id = l["kind_id"].as_u64().unwrap() as u16;
        assert_eq!(
            mdslog::event::kind_name(mdslog::RecordKind(kind_id)),
            Some(kind)
        );
        assert!(l["time"].as_str().unwrap().ends_with('Z'));
        assert!(l["time_us"].is_i64());
        assert_eq!(l["actor"], "alice");
        // The event round-trips through the library's own type.
        let ev: mdslog::event::Event = serde_json::from_value(l["event"].clone()).unwrap();
        assert_eq!(ev.kind().0, kind_id);
    }
    let rename = lines.iter().find(|l| l["kind"] == "rename-branch").unwrap();
    assert_eq!(rename["event"]["RenameBranch"]["old_name"], "dev");
    assert_eq!(rename["event"]["RenameBranch"]["new_name"], "feature");
    assert_eq!(
        rename["event"]["RenameBranch"]["branch"],
        f.feature.to_string()
    );
    let created = &lines[1]["event"]["ImportVolumeSet"]["volume_set"];
    assert_eq!(created["id"], f.db.to_string());
    assert_eq!(created["name"], "db");
    assert_eq!(created["attrs"]["team"], "storage");
}

#[test]
fn dump_filters_by_lsn_kind_and_volume_set() {
    let f = fixture();
    let d = f.dir_str();
    let lines = json_lines(&run(&["dump", "--json", &d, "--from", "3", "--to", "7"], 0));
    assert_eq!(
        lines
            .iter()
            .map(|l| l["lsn"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![3, 4, 5, 6, 7]
    );

    let lines = json_lines(&run(
        &[
            "dump",
            "--json",
            &d,
            "--kind",
            "rename-branch,delete-volume-set",
        ],
        0,
    ));
    assert_eq!(lines.len(), 2);
    let lines = json_lines(&run(&["dump", "--json", &d, "--kind", "7"], 0));
    assert_eq!(lines.len(), 60);
    assert!(lines.iter().all(|l| l["kind"] == "extend-branch"));

    // A deleted volume set can still be dumped, by name.
    let lines = json_lines(&run(&["dump", "--json", &d, "--volume-set", "scratch"], 0));
    let kinds: Vec<&str> = lines.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        vec!["import-volume-set", "fork-branch", "delete-volume-set"]
    );
    // Records that name only a snapshot or a volume are placed in their volume set.
    let web = json_lines(&run(
        &[
            "dump",
            "--json",
            &d,
            "--volume-set",
            &f.web.to_string()[..6],
        ],
        0,
    ));
    assert_eq!(web.len(), 2);
    let db = json_lines(&run(
        &[
            "dump",
            "--json",
            &d,
            "--volume-set",
            "acme/db",
            "--from",
            "10",
        ],
        0,
    ));
    assert!(db.iter().all(|l| l["lsn"].as_u64().unwrap() >= 10));
    assert!(db.iter().any(|l| l["kind"] == "import-volume"));

    let err = run_err(&["dump", &d, "--kind", "no-such-kind"], 2);
    assert!(
        err.contains("unknown record kind") && err.contains("fork-branch"),
        "{err}"
    );
    let err = run_err(&["dump", &d, "--from", "9", "--to", "3"], 2);
    assert!(err.contains("--to"), "{err}");
    let err = run_err(&["dump", &d, "--volume-set", "nope"], 2);
    assert!(err.contains("no volume set matches"), "{err}");
}

#[test]
fn dump_of_a_closed_pipe_ends_quietly() {
    let f = fixture();
    // `| head -1`: standard output closes early; the tool must not report an error.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} dump {} | head -n 1",
            env!("CARGO_BIN_EXE_mdslog"),
            f.dir_str()
        ))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

// ---- tree --------------------------------------------------------------------------------

#[test]
fn tree_draws_branches_at_their_tips_and_travels_in_time() {
    let f = fixture();
    let d = f.dir_str();
    let out = run(&["tree", &d, "db"], 0);
    assert!(
        out.contains("[master]") && out.contains("[feature]"),
        "{out}"
    );
    assert!(
        out.contains(&mdslog_short(&f.master_tip.to_string())),
        "{out}"
    );
    assert!(
        out.contains("blob") && out.contains("no blob") && out.contains("depth 63"),
        "{out}"
    );
    assert!(
        out.contains("--full shows them"),
        "a long chain is elided: {out}"
    );
    let full = run(&["tree", &d, "db", "--full"], 0);
    assert_eq!(
        full.lines().count(),
        1 + 65,
        "a header and every db snapshot, one a line: {full}"
    );

    // As of the first part: master with three snapshots, no feature branch.
    let then = run(&["tree", &d, "acme/db", "--at", &f.mid_lsn.to_string()], 0);
    assert!(
        then.contains("[master]") && !then.contains("feature"),
        "{then}"
    );
    assert_eq!(then.lines().count(), 4, "{then}");
    let at_time = chrono_rfc3339(f.mid_time);
    let by_time = run(&["tree", &d, "db", "--at", &at_time], 0);
    assert_eq!(by_time, then);

    let v: Value = serde_json::from_str(&run(&["tree", &d, "db", "--json"], 0)).unwrap();
    assert_eq!(v["volume_set"]["id"], f.db.to_string());
    assert_eq!(v["as_of_lsn"], f.last_lsn.0);
    let names: Vec<&str> = v["branches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["feature", "master"]);
    assert_eq!(v["snapshots"].as_array().unwrap().len(), 65);

    let err = run_err(&["tree", &d, "db", "--at", "yesterday-ish"], 2);
    assert!(err.contains("RFC 3339"), "{err}");
    let err = run_err(&["tree", &d, "scratch"], 2);
    assert!(err.contains("no volume set matches \"scratch\""), "{err}");
}

fn mdslog_short(id: &str) -> String {
    id[..8].to_string()
}

fn chrono_rfc3339(t: mdslog::Timestamp) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_micros(t.0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

// ---- history -----------------------------------------------------------------------------

#[test]
fn history_follows_a_branch_through_its_rename() {
    let f = fixture();
    let d = f.dir_str();
    for id in [
        "db:feature",
        "db:dev",
        &f.feature.to_string(),
        &f.feature.to_string()[..7],
    ] {
        let lines = json_lines(&run(&["history", "--json", &d, id], 0));
        let kinds: Vec<&str> = lines.iter().map(|l| l["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, vec!["fork-branch", "rename-branch"], "{id}");
        assert!(lines
            .iter()
            .all(|l| l["actor"] == "alice" && l["time"].is_string()));
    }
    let out = run(&["history", &d, "db:feature"], 0);
    assert!(
        out.starts_with("history of branch \"dev\" → \"feature\""),
        "{out}"
    );
    assert!(out.contains("2 records"), "{out}");
}

#[test]
fn history_of_volume_sets_snapshots_and_deleted_objects() {
    let f = fixture();
    let d = f.dir_str();
    let kinds = |id: &str, extra: &[&str]| -> Vec<String> {
        let mut args = vec!["history", "--json", d.as_str(), id];
        args.extend_from_slice(extra);
        json_lines(&run(&args, 0))
            .iter()
            .map(|l| l["kind"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        kinds("db", &[]),
        vec![
            "import-volume-set",
            "update-volume-set",
            "set-volume-set-size"
        ]
    );
    assert_eq!(
        kinds("scratch", &[]),
        vec!["import-volume-set", "delete-volume-set"]
    );
    let all = kinds("db", &["--all"]);
    assert!(
        all.len() > 60 && all.contains(&"import-volume".to_string()),
        "{all:?}"
    );
    // The root: created, its branch moved on, its bush recorded.
    assert_eq!(
        kinds(&f.root.to_string(), &[]),
        vec!["fork-branch", "import-bush"]
    );
    // s2: created, forked off, a volume based on it.
    assert_eq!(
        kinds(&f.s2.to_string()[..9], &[]),
        vec!["fork-branch", "fork-branch", "import-volume"]
    );
    // The master tip: created as the tip, then nothing else.
    assert_eq!(kinds(&f.master_tip.to_string(), &[]), vec!["extend-branch"]);

    let err = run_err(&["history", &d, "zzz-nothing"], 2);
    assert!(
        err.contains("no volume set, snapshot or branch matches"),
        "{err}"
    );
}

// ---- show --------------------------------------------------------------------------------

#[test]
fn show_names_prefixes_and_points_in_time() {
    let f = fixture();
    let d = f.dir_str();
    let out = run(&["show", &d, "db"], 0);
    assert!(
        out.contains("volume set   acme/db")
            && out.contains("tier=gold")
            && out.contains("feature"),
        "{out}"
    );

    let v: Value = serde_json::from_str(&run(&["show", "--json", &d, "db"], 0)).unwrap();
    assert_eq!(v["type"], "volume-set");
    assert_eq!(v["object"]["id"], f.db.to_string());
    assert_eq!(v["object"]["attrs"]["tier"], "gold");
    assert_eq!(v["object"]["size"], 5 << 20);
    assert_eq!(v["branches"].as_array().unwrap().len(), 2);

    let v: Value = serde_json::from_str(&run(
        &["show", "--json", &d, "db", "--at", &f.mid_lsn.to_string()],
        0,
    ))
    .unwrap();
    assert_eq!(v["as_of_lsn"], f.mid_lsn.0);
    assert!(
        v["object"]["attrs"].get("tier").is_none(),
        "not yet edited then"
    );

    let v: Value =
        serde_json::from_str(&run(&["show", "--json", &d, &f.s2.to_string()[..10]], 0)).unwrap();
    assert_eq!(v["type"], "snapshot");
    assert_eq!(v["object"]["id"], f.s2.to_string());
    assert_eq!(v["object"]["depth"], 2);
    assert_eq!(v["object"]["num_children"], 2);
    assert_eq!(v["volumes"], 1);

    let v: Value =
        serde_json::from_str(&run(&["show", "--json", &d, "acme/db:feature"], 0)).unwrap();
    assert_eq!(v["type"], "branch");
    assert_eq!(v["object"]["id"], f.feature.to_string());
    assert_eq!(v["object"]["tip"], f.feature_tip.to_string());
    let out = run(&["show", &d, "db:master"], 0);
    assert!(out.contains("depth        63"), "{out}");

    // Gone now, there then.
    run_err(&["show", &d, "scratch"], 2);
    let lsn = f.last_lsn.0 - 3; // before the delete
    let v: Value = serde_json::from_str(&run(
        &["show", "--json", &d, "scratch", "--at", &lsn.to_string()],
        0,
    ))
    .unwrap();
    assert_eq!(v["object"]["id"], f.scratch.to_string());
}

#[test]
fn an_ambiguous_prefix_lists_the_candidates() {
    let f = fixture();
    let d = f.dir_str();
    // Among 65+ snapshot ids some pair shares its first hex digit.
    let mut ids: Vec<String> =
        json_lines(&run(&["dump", "--json", &d, "--kind", "extend-branch"], 0))
            .iter()
            .map(|l| {
                l["event"]["ExtendBranch"]["snapshots"][0]["id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
    ids.sort();
    let pair = ids.windows(2).find(|w| w[0][..1] == w[1][..1]).unwrap();
    let prefix = &pair[0][..1];
    let err = run_err(&["show", &d, prefix], 2);
    assert!(
        err.contains("is ambiguous") && err.contains("give more of the id"),
        "{err}"
    );
    assert!(err.contains(&pair[0]) || err.contains("more"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

// ---- repair ------------------------------------------------------------------------------

#[test]
fn repair_of_a_clean_log_changes_nothing() {
    let f = fixture();
    let before: Vec<Vec<u8>> = f
        .segments()
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let out = run(&["repair", &f.dir_str()], 0);
    assert!(out.contains("nothing to repair"), "{out}");
    let after: Vec<Vec<u8>> = f
        .segments()
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    assert_eq!(before, after);
}

#[test]
fn repair_cuts_a_torn_tail_only_when_confirmed() {
    let f = fixture();
    tear(f.path());
    // Standard input is not a terminal: refuse without --yes.
    let err = run_err(&["repair", &f.dir_str()], 2);
    assert!(
        err.contains("--yes") && err.contains("not a terminal"),
        "{err}"
    );
    assert!(!std::fs::read_dir(f.path()).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains(".cut-")));

    let out = run(&["repair", &f.dir_str(), "--yes"], 0);
    assert!(
        out.contains("torn tail") && out.contains("saved as"),
        "{out}"
    );
    let v: Value = serde_json::from_str(&run(&["verify", "--json", &f.dir_str()], 0)).unwrap();
    assert!(v["segments"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["torn_tail"].is_null()));
    assert_eq!(v["records"], f.last_lsn.0);
}

#[test]
fn repair_salvages_the_longest_valid_prefix_then_verify_is_clean() {
    let f = fixture();
    let segs = f.segments();
    let (_, lsn) = flip_first_payload(&segs[1]);
    let d = f.dir_str();
    // Real damage: plain repair refuses (exit 1) and says what to do.
    let err = run_err(&["repair", &d, "--yes"], 1);
    assert!(err.contains("--salvage"), "{err}");
    let err = run_err(&["repair", &d, "--salvage"], 2);
    assert!(err.contains("--yes"), "{err}");
    run(&["verify", &d], 1);

    let out = run(&["repair", &d, "--salvage", "--yes"], 0);
    assert!(
        out.contains("plan: salvage") && out.contains("saved as"),
        "{out}"
    );
    let v: Value = serde_json::from_str(&run(&["verify", "--json", &d], 0)).unwrap();
    assert_eq!(v["clean"], true);
    let kept = v["last_lsn"].as_u64().unwrap();
    assert_eq!(
        kept,
        lsn - 1,
        "everything before the damaged record is kept"
    );
    assert_eq!(v["replay"]["records"], kept);
    // What was cut is kept beside the log.
    let names: Vec<String> = std::fs::read_dir(f.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().any(|n| n.contains(".cut-")), "{names:?}");
    assert!(names.iter().any(|n| n.ends_with(".salvaged")), "{names:?}");
    // The store opens for writing again and agrees.
    let store = Store::open(f.path(), StoreOptions::default()).unwrap();
    assert_eq!(store.durable_lsn(), Lsn(kept));
    store.close().unwrap();
    mdslog()
        .args(["stats", &d])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!("records     {kept}")));
}
