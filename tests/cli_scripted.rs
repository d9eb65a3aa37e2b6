//! The scripted commands of `mdslog` (volume-set, snapshot, branch, generate), the store
//! directory from `MDSLOG_DIR`, shell completions, help and the demo; checked through the
//! library where they write.

mod cli_support;

use cli_support::*;
use mdslog::{BranchQuery, SnapshotQuery, Store, StoreOptions, VolumeSetQuery};
use serde_json::Value;

fn open(dir: &std::path::Path) -> Store {
    Store::open_read_only(dir, StoreOptions::default()).unwrap()
}

#[test]
fn volume_set_create_list_show_update_delete() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("store").display().to_string();
    let created: Value = serde_json::from_str(&run(
        &[
            "volume-set",
            "create",
            &d,
            "db",
            "--prefix",
            "acme",
            "--description",
            "our database",
            "--attr",
            "team=storage",
            "--attr",
            "tier=silver",
            "--json",
        ],
        0,
    ))
    .unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["name"], "db");
    assert_eq!(created["creator"], "tester");
    assert_eq!(created["owner"], "tester");
    let out = run(&["vs", "create", &d, "web", "--actor", "carol"], 0);
    assert!(out.starts_with("created volume set \"web\""), "{out}");

    let store = open(dir.path().join("store").as_path());
    let all = store.get_volume_sets(&VolumeSetQuery::default()).unwrap();
    assert_eq!(all.len(), 2);
    let db = all.iter().find(|v| v.name == "db").unwrap();
    assert_eq!(db.id.to_string(), id);
    assert_eq!(db.prefix, "acme");
    assert_eq!(db.description, "our database");
    assert_eq!(db.attrs.get("team").map(String::as_str), Some("storage"));
    drop(store);

    let list: Value = serde_json::from_str(&run(&["volume-set", "list", &d, "--json"], 0)).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["db", "web"], "oldest first");
    let list: Value = serde_json::from_str(&run(
        &["volume-set", "list", &d, "--json", "--attr", "team=storage"],
        0,
    ))
    .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let list: Value = serde_json::from_str(&run(
        &["volume-set", "list", &d, "--json", "--glob", "/acme/*"],
        0,
    ))
    .unwrap();
    assert_eq!(list[0]["id"], id);
    let table = run(&["volume-set", "list", &d], 0);
    assert!(
        table.lines().next().unwrap().starts_with("ID") && table.contains("acme/db"),
        "{table}"
    );

    let shown: Value =
        serde_json::from_str(&run(&["volume-set", "show", &d, &id[..5], "--json"], 0)).unwrap();
    assert_eq!(shown["type"], "volume-set");
    assert_eq!(shown["object"]["id"], id);
    assert!(shown["branches"].as_array().unwrap().is_empty());

    let upd: Value = serde_json::from_str(&run(
        &[
            "volume-set",
            "update",
            &d,
            "acme/db",
            "--name",
            "db2",
            "--attr",
            "tier=gold",
            "--remove-attr",
            "team",
            "--size",
            "4096",
            "--json",
        ],
        0,
    ))
    .unwrap();
    assert_eq!(upd["name"], "db2");
    assert_eq!(upd["attrs"]["tier"], "gold");
    assert!(upd["attrs"].get("team").is_none());
    assert_eq!(upd["size"], 4096);
    let err = run_err(&["volume-set", "update", &d, "db2"], 2);
    assert!(err.contains("nothing to change"), "{err}");
    let err = run_err(
        &["volume-set", "update", &d, "db2", "--remove-attr", "nope"],
        2,
    );
    assert!(err.contains("no attribute"), "{err}");
    let err = run_err(&["volume-set", "create", &d, "x", "--attr", "novalue"], 2);
    assert!(err.contains("KEY=VALUE"), "{err}");

    // Deleting asks first; without a terminal it refuses unless --yes.
    let err = run_err(&["volume-set", "delete", &d, "web"], 2);
    assert!(err.contains("--yes"), "{err}");
    run(&["volume-set", "delete", &d, "web", "--yes"], 0);
    let store = open(dir.path().join("store").as_path());
    let all = store.get_volume_sets(&VolumeSetQuery::default()).unwrap();
    assert_eq!(
        all.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(),
        vec!["db2"]
    );
    // The edits were recorded with their actor.
    let lines = json_lines(&run(&["history", "--json", &d, "web"], 0));
    assert_eq!(lines[0]["actor"], "carol");
    assert_eq!(lines[1]["actor"], "tester");
    assert_eq!(lines[1]["kind"], "delete-volume-set");
}

#[test]
fn write_commands_need_an_existing_store_except_create() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let m = missing.display().to_string();
    for args in [
        vec!["volume-set", "update", m.as_str(), "db", "--name", "x"],
        vec!["volume-set", "delete", m.as_str(), "db", "--yes"],
        vec!["snapshot", m.as_str(), "db"],
        vec!["branch", "rename", m.as_str(), "db", "a", "b"],
        vec!["branch", "delete", m.as_str(), "db", "a", "--yes"],
        vec!["branch", "list", m.as_str(), "db"],
        vec!["volume-set", "list", m.as_str()],
    ] {
        let err = run_err(&args, 2);
        assert!(err.contains("no store directory"), "{args:?}: {err}");
        assert!(!missing.exists(), "{args:?} created the directory");
    }
}

#[test]
fn snapshots_on_branches_and_forks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    run(&["volume-set", "create", &d, "db"], 0);
    // No master yet: extending it is an error that says how to start it.
    let err = run_err(&["snapshot", &d, "db"], 2);
    assert!(err.contains("--fork master"), "{err}");

    let root: Value = serde_json::from_str(&run(
        &[
            "snapshot", &d, "db", "--fork", "master", "--name", "first", "--size", "1024",
            "--blob", "b1", "--json",
        ],
        0,
    ))
    .unwrap();
    assert!(root["parent"].is_null());
    assert_eq!(root["depth"], 1);
    assert_eq!(root["blob"], "b1");
    assert_eq!(root["branch_name"], "master");
    let second: Value = serde_json::from_str(&run(
        &[
            "snapshot",
            &d,
            "db",
            "--name",
            "second",
            "--attr",
            "build=2",
            "--description",
            "nightly",
            "--json",
        ],
        0,
    ))
    .unwrap();
    assert_eq!(second["parent"], root["id"]);
    assert_eq!(second["depth"], 2);
    assert_eq!(second["attrs"]["build"], "2");
    // Fork off the root by id prefix, and off master's tip by branch name.
    let root_id = root["id"].as_str().unwrap();
    let dev: Value = serde_json::from_str(&run(
        &[
            "snapshot",
            &d,
            "db",
            "--fork",
            "dev",
            "--from",
            &root_id[..8],
            "--json",
        ],
        0,
    ))
    .unwrap();
    assert_eq!(dev["parent"], root["id"]);
    let out = run(
        &["snapshot", &d, "db", "--fork", "exp", "--from", "master"],
        0,
    );
    assert!(
        out.contains("on new branch \"exp\", forked off") && out.contains("depth 3"),
        "{out}"
    );
    run(
        &["snapshot", &d, "db", "--branch", "dev", "--name", "dev two"],
        0,
    );
    let err = run_err(&["snapshot", &d, "db", "--fork", "dev"], 2);
    assert!(err.contains("already exists"), "{err}");
    let err = run_err(&["snapshot", &d, "db", "--fork", "x", "--from", "zzzz"], 2);
    assert!(err.contains("no branch or snapshot matches"), "{err}");
    run_err(&["snapshot", &d, "db", "--from", "master"], 2); // --from needs --fork
    run_err(&["snapshot", &d, "db", "--branch", "dev", "--fork", "y"], 2); // one or the other

    let store = open(dir.path());
    let vs = store.get_volume_sets(&VolumeSetQuery::default()).unwrap()[0].id;
    let dev_chain = store
        .get_snapshots_by_branch(&BranchQuery::named(vs, "dev"))
        .unwrap();
    assert_eq!(
        dev_chain.iter().map(|s| s.depth).collect::<Vec<_>>(),
        vec![3, 2, 1]
    );
    assert_eq!(dev_chain[0].name, "dev two");
    assert_eq!(store.get_branches(&BranchQuery::all(vs)).unwrap().len(), 3);
}

#[test]
fn branch_list_rename_delete() {
    let f = fixture();
    let d = f.dir_str();
    let list: Value =
        serde_json::from_str(&run(&["branch", "list", &d, "db", "--json"], 0)).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["feature", "master"]);
    assert_eq!(list[0]["tip"], f.feature_tip.to_string());
    assert_eq!(list[1]["tip_snapshot"]["depth"], 63);
    let table = run(&["branch", "list", &d, "db"], 0);
    assert!(
        table.lines().count() == 3 && table.contains("feature"),
        "{table}"
    );

    run(
        &[
            "branch",
            "rename",
            &d,
            "db",
            "feature",
            "feature-x",
            "--actor",
            "dave",
        ],
        0,
    );
    let err = run_err(&["branch", "rename", &d, "db", "feature", "y"], 2);
    assert!(
        err.contains("not found") && err.contains("branch list"),
        "{err}"
    );
    let err = run_err(&["branch", "rename", &d, "db", "feature-x", "master"], 2);
    assert!(err.contains("already exists"), "{err}");

    let err = run_err(&["branch", "delete", &d, "db", "feature-x"], 2);
    assert!(err.contains("--yes"), "{err}");
    let out = run(&["branch", "delete", &d, "db", "feature-x", "--yes"], 0);
    assert!(out.contains("2 snapshots"), "{out}");
    let store = open(f.path());
    let branches = store.get_branches(&BranchQuery::all(f.db)).unwrap();
    assert_eq!(branches.len(), 1);
    assert_eq!(branches[0].name, "master");
    // The rename was recorded with its actor, and history follows the branch.
    let lines = json_lines(&run(&["history", "--json", &d, &f.feature.to_string()], 0));
    let kinds: Vec<&str> = lines.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        vec![
            "fork-branch",
            "rename-branch",
            "rename-branch",
            "delete-snapshots"
        ]
    );
    assert_eq!(lines[2]["actor"], "dave");
}

#[test]
fn the_store_directory_can_come_from_mdslog_dir() {
    let f = fixture();
    let d = f.dir_str();
    let with_env = |args: &[&str]| {
        let out = mdslog()
            .env("MDSLOG_DIR", &d)
            .args(args)
            .assert()
            .success()
            .get_output()
            .clone();
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(with_env(&["stats"]), run(&["stats", &d], 0));
    assert_eq!(
        with_env(&["history", "db:feature"]),
        run(&["history", &d, "db:feature"], 0)
    );
    assert_eq!(
        with_env(&["tree", "db", "--at", "4"]),
        run(&["tree", &d, "db", "--at", "4"], 0)
    );
    assert_eq!(
        with_env(&["branch", "list", "db"]),
        run(&["branch", "list", &d, "db"], 0)
    );
    // Given explicitly, the argument wins.
    let other = tempfile::tempdir().unwrap();
    let out = mdslog()
        .env("MDSLOG_DIR", &d)
        .args(["stats", &other.path().display().to_string()])
        .assert()
        .success();
    assert!(String::from_utf8_lossy(&out.get_output().stdout).contains("records     0"));
    // Neither: a usage error.
    let err = run_err(&["history", "db"], 2);
    assert!(err.contains("<ID>") || err.contains("required"), "{err}");
}

#[test]
fn generate_makes_exactly_the_asked_for_workload_and_the_seed_fixes_its_shape() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let args = [
        "--volume-sets",
        "3",
        "--snapshots",
        "400",
        "--branches",
        "15",
        "--seed",
        "9",
        "--json",
    ];
    let mut all = vec!["generate", a.path().to_str().unwrap()];
    all.extend_from_slice(&args);
    let summary: Value = serde_json::from_str(&run(&all, 0)).unwrap();
    assert_eq!(summary["volume_sets"], 3);
    assert_eq!(summary["snapshots"], 400);
    assert_eq!(summary["branches"], 15);
    assert!(summary["renames"].as_u64().unwrap() > 0, "{summary}");
    assert_eq!(summary["first_lsn"], 1);
    let mut all = vec!["generate", b.path().to_str().unwrap()];
    all.extend_from_slice(&args);
    run(&all, 0);

    let (sa, sb) = (open(a.path()), open(b.path()));
    let ca = sa.counts().unwrap();
    assert_eq!((ca.volume_sets, ca.snapshots, ca.branches), (3, 400, 15));
    // Same seed: same volume sets, same snapshots, same tree, same branch names.
    let shape = |s: &Store| {
        let mut out = Vec::new();
        for v in s.get_volume_sets(&VolumeSetQuery::default()).unwrap() {
            let mut snaps: Vec<_> = s
                .get_snapshots(&SnapshotQuery {
                    volume_set: Some(v.id),
                    ..Default::default()
                })
                .unwrap()
                .into_iter()
                .map(|x| (x.id, x.parent, x.name, x.size, x.depth))
                .collect();
            snaps.sort_by_key(|x| x.0);
            let mut branches: Vec<_> = s
                .get_branches(&BranchQuery::all(v.id))
                .unwrap()
                .into_iter()
                .map(|b| (b.name, b.tip))
                .collect();
            branches.sort();
            out.push((v.id, v.name, v.attrs, snaps, branches));
        }
        out
    };
    assert_eq!(shape(&sa), shape(&sb));
    // Deep: most snapshots on a few branches.
    let deepest = sa.get_snapshots(&SnapshotQuery {
        ids: sa.get_snapshot_ids(shape(&sa)[0].0).unwrap(),
        ..Default::default()
    });
    assert!(deepest.unwrap().iter().map(|s| s.depth).max().unwrap() > 20);
    drop((sa, sb));
    run(&["verify", a.path().to_str().unwrap()], 0);

    // The same seed again in the same store: its volume sets exist already.
    let mut again = vec!["generate", a.path().to_str().unwrap()];
    again.extend_from_slice(&args);
    let err = run_err(&again, 2);
    assert!(err.contains("another --seed"), "{err}");
    let out = run(
        &[
            "generate",
            a.path().to_str().unwrap(),
            "--volume-sets",
            "1",
            "--snapshots",
            "5",
            "--branches",
            "2",
            "--seed",
            "10",
        ],
        0,
    );
    assert!(
        out.starts_with("generated 1 volume set, 5 snapshots and 2 branches"),
        "{out}"
    );
    assert_eq!(open(a.path()).counts().unwrap().snapshots, 405);
}

#[test]
fn generate_rejects_impossible_workloads() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let err = run_err(
        &["generate", &d, "--volume-sets", "4", "--branches", "3"],
        2,
    );
    assert!(
        err.contains("--branches (3) must be at least --volume-sets (4)"),
        "{err}"
    );
    let err = run_err(
        &[
            "generate",
            &d,
            "--volume-sets",
            "1",
            "--branches",
            "3",
            "--snapshots",
            "2",
        ],
        2,
    );
    assert!(
        err.contains("--snapshots (2) must be at least --branches (3)"),
        "{err}"
    );
    let err = run_err(&["generate", &d, "--volume-sets", "0"], 2);
    assert!(err.contains("at least 1"), "{err}");
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let out = run(&["completions", shell], 0);
        assert!(
            out.contains("mdslog") && out.contains("volume-set") && out.contains("salvage"),
            "{shell}"
        );
    }
    run_err(&["completions", "tcsh"], 2);
}

#[test]
fn every_command_has_help_with_an_example() {
    let commands: &[&[&str]] = &[
        &[],
        &["verify"],
        &["stats"],
        &["dump"],
        &["tree"],
        &["history"],
        &["show"],
        &["repair"],
        &["volume-set", "create"],
        &["volume-set", "list"],
        &["volume-set", "show"],
        &["volume-set", "update"],
        &["volume-set", "delete"],
        &["snapshot"],
        &["branch", "list"],
        &["branch", "rename"],
        &["branch", "delete"],
        &["generate"],
        &["completions"],
        &["demo"],
    ];
    for c in commands {
        let mut args = c.to_vec();
        args.push("--help");
        let out = run(&args, 0);
        assert!(
            out.contains("Example"),
            "{c:?} --help has no example:\n{out}"
        );
        let program = format!("mdslog {}", c.join(" "));
        assert!(
            out.contains(program.trim()),
            "{c:?}: the example runs {program}"
        );
    }
    // Every subcommand listed in the top help is one of those checked.
    let top = run(&["--help"], 0);
    for name in [
        "verify",
        "stats",
        "dump",
        "tree",
        "history",
        "show",
        "repair",
        "volume-set",
        "snapshot",
        "branch",
        "generate",
        "completions",
        "demo",
    ] {
        assert!(
            top.contains(&format!("  {name} ")),
            "{name} missing from:\n{top}"
        );
    }
}

#[test]
fn demo_makes_and_extends_its_store() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("demo").display().to_string();
    let out = run(&["demo", &d], 0);
    assert!(
        out.contains("run 1;") && out.contains("[master]") && out.contains("[feature-1]"),
        "{out}"
    );
    let out = run(&["demo", &d], 0);
    assert!(
        out.contains("run 2;") && out.contains("[feature-2]"),
        "{out}"
    );
    run(&["verify", &d], 0);
}

#[test]
fn checkpoint_writes_one_that_the_next_open_starts_from() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    run(&["volume-set", "create", &d, "db"], 0);
    let v: Value = serde_json::from_str(&run(&["checkpoint", &d, "--json"], 0)).unwrap();
    let lsn = v["lsn"].as_u64().unwrap();
    assert!(std::path::Path::new(v["file"].as_str().unwrap()).is_file());
    let store = Store::open_read_only(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(store.opened_from_checkpoint(), Some(mdslog::Lsn(lsn)));
    assert_eq!(store.counts().unwrap().volume_sets, 1);
    // Not a store: a clear error, nothing created.
    let missing = dir.path().join("nope").display().to_string();
    let err = run_err(&["checkpoint", &missing], 2);
    assert!(err.contains("no store directory"), "{err}");
}
