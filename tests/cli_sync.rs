//! The sync commands of `mdslog`: `sync` between two store directories, `export` and
//! `import` through a bundle file, and `cursors`; checked through the library and the
//! commands' JSON.

mod cli_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cli_support::*;
use mdslog::*;
use serde_json::Value;

/// A new (empty) store directory `name` under `root`.
fn dir(root: &Path, name: &str) -> String {
    let d = root.join(name);
    std::fs::create_dir_all(&d).unwrap();
    d.display().to_string()
}

/// A store with volume set "db" holding master: "one" → "two". Returns the volume set id.
fn store_with_db(d: &str) -> String {
    let vs: Value = serde_json::from_str(&run(
        &[
            "volume-set",
            "create",
            d,
            "db",
            "--prefix",
            "acme",
            "--json",
        ],
        0,
    ))
    .unwrap();
    run(
        &["snapshot", d, "db", "--fork", "master", "--name", "one"],
        0,
    );
    run(&["snapshot", d, "db", "--name", "two"], 0);
    vs["id"].as_str().unwrap().to_string()
}

/// Every file of a directory and its bytes.
fn files(d: &str) -> BTreeMap<PathBuf, Vec<u8>> {
    std::fs::read_dir(d)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect()
}

/// Asserts two snapshots of a directory's files are the same, naming the files that differ.
#[track_caller]
fn assert_same(
    before: &BTreeMap<PathBuf, Vec<u8>>,
    after: &BTreeMap<PathBuf, Vec<u8>>,
    what: &str,
) {
    let differ: Vec<_> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .collect();
    assert!(differ.is_empty(), "{what}: these files changed: {differ:?}");
}

/// The log of a store directory: every file but `LOCK` (which holds the last writer's pid).
fn log_files(d: &str) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut f = files(d);
    f.retain(|p, _| !p.ends_with("LOCK"));
    f
}

/// What sync carries of a volume set: its metadata, every snapshot's parent and metadata,
/// every branch's name and tip.
type View = (
    VolumeSetMeta,
    Vec<(SnapshotId, Option<SnapshotId>, SnapshotMeta)>,
    Vec<(BranchId, String, SnapshotId)>,
);

fn view(d: &str, vs: VolumeSetId) -> View {
    let s = Store::open_read_only(d, StoreOptions::default()).unwrap();
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

fn branch_names(d: &str) -> Vec<String> {
    let list: Value =
        serde_json::from_str(&run(&["branch", "list", d, "db", "--json"], 0)).unwrap();
    let mut v: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

fn store_id(d: &str) -> String {
    let c: Value = serde_json::from_str(&run(&["cursors", d, "--json"], 0)).unwrap();
    c["store_id"].as_str().unwrap().to_string()
}

#[test]
fn sync_carries_a_new_branch_both_ways_and_reports_it() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (dir(root.path(), "a"), dir(root.path(), "b"));
    let id = store_with_db(&a);

    // Into an empty directory: b becomes a store holding db.
    let out = run(&["sync", &a, &b, "--volume-set", "db"], 0);
    assert!(
        out.contains("pushed LOCAL → REMOTE")
            && out.contains("volume set created")
            && out.contains("2 snapshots added")
            && out.contains("1 branch added"),
        "{out}"
    );
    assert!(
        out.lines()
            .last()
            .unwrap()
            .contains("no conflicts, no diverged branches"),
        "{out}"
    );
    let vs: VolumeSetId = id.parse().unwrap();
    assert_eq!(view(&a, vs), view(&b, vs));

    // A branch made on b comes back to a (the volume set named by an id prefix).
    run(
        &["snapshot", &b, "db", "--fork", "dev", "--from", "master"],
        0,
    );
    let out = run(&["sync", &a, &b, "--volume-set", &id[..8]], 0);
    assert!(
        out.lines()
            .any(|l| l.starts_with("pulled REMOTE → LOCAL") && l.contains("1 branch added")),
        "{out}"
    );
    assert_eq!(branch_names(&a), vec!["dev", "master"]);
    assert_eq!(view(&a, vs), view(&b, vs));

    // --json: the library's report, with both sides named.
    run(&["snapshot", &a, "db", "--branch", "dev"], 0);
    let r: Value = serde_json::from_str(&run(
        &["sync", &a, &b, "--volume-set", "acme/db", "--json"],
        0,
    ))
    .unwrap();
    assert_eq!(r["volume_set"], id.as_str());
    assert_eq!(r["mode"], "both");
    assert_eq!(r["local"]["store_id"], store_id(&a).as_str());
    assert_eq!(r["remote"]["store_id"], store_id(&b).as_str());
    let pushed = &r["pushed"];
    for field in [
        "source",
        "records_received",
        "records_new",
        "cursor",
        "records_written",
        "volume_set_created",
        "volume_set_updated",
        "snapshots_added",
        "snapshots_updated",
        "branches_added",
        "branches_extended",
        "branches_renamed",
        "branches_behind",
        "adopted",
        "conflicts",
        "divergences",
        "missing",
    ] {
        assert!(pushed.get(field).is_some(), "pushed.{field} missing: {r}");
    }
    assert_eq!(pushed["branches_extended"], 1);
    assert_eq!(pushed["snapshots_added"], 1);
    assert!(r["pulled"].is_object());
    for field in ["conflicts", "divergences", "missing"] {
        assert_eq!(r[field], serde_json::json!([]), "{field}: {r}");
    }
    assert_eq!(view(&a, vs), view(&b, vs));
}

#[test]
fn pull_only_leaves_the_remote_byte_identical() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (dir(root.path(), "a"), dir(root.path(), "b"));
    store_with_db(&b);
    run(&["volume-set", "create", &a, "other"], 0);
    let before = files(&b);
    let out = run(&["sync", &a, &b, "--volume-set", "db", "--pull-only"], 0);
    assert!(
        out.contains("pushed LOCAL → REMOTE: nothing (--pull-only)")
            && out.contains("2 snapshots added"),
        "{out}"
    );
    assert_same(&before, &files(&b), "the remote is not touched");
    assert_eq!(branch_names(&a), vec!["master"]);
    let r: Value = serde_json::from_str(&run(
        &[
            "sync",
            &a,
            &b,
            "--volume-set",
            "db",
            "--pull-only",
            "--json",
        ],
        0,
    ))
    .unwrap();
    assert_eq!(r["mode"], "pull-only");
    assert!(r["pushed"].is_null());
    assert_same(&before, &files(&b), "the remote is not touched");

    // A volume set only LOCAL has: nothing to pull, and nothing written there either.
    let err = run_err(&["sync", &a, &b, "--volume-set", "other", "--pull-only"], 2);
    assert!(err.contains("nothing to pull"), "{err}");
    assert_same(&before, &files(&b), "the remote is not touched");
    // A remote that is no store yet: refused, nothing written.
    let empty = dir(root.path(), "empty");
    let err = run_err(
        &["sync", &a, &empty, "--volume-set", "db", "--pull-only"],
        2,
    );
    assert!(err.contains("holds no store"), "{err}");
    assert!(files(&empty).is_empty());
}

#[test]
fn conflicts_and_divergences_are_reported_and_exit_zero() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (dir(root.path(), "a"), dir(root.path(), "b"));
    store_with_db(&a);
    run(
        &["snapshot", &a, "db", "--fork", "dev", "--from", "master"],
        0,
    );
    run(&["sync", &a, &b, "--volume-set", "db"], 0);
    // Both sides edit the description, rename dev and extend master.
    run(
        &["volume-set", "update", &a, "db", "--description", "from a"],
        0,
    );
    run(
        &["volume-set", "update", &b, "db", "--description", "from b"],
        0,
    );
    run(&["branch", "rename", &a, "db", "dev", "dev-a"], 0);
    run(&["branch", "rename", &b, "db", "dev", "dev-b"], 0);
    run(&["snapshot", &a, "db", "--name", "three-a"], 0);
    run(&["snapshot", &b, "db", "--name", "three-b"], 0);

    let out = run(&["sync", &a, &b, "--volume-set", "db"], 0);
    assert!(out.contains("conflicts (REMOTE's value kept"), "{out}");
    assert!(
        out.contains(r#"description: REMOTE "from b", LOCAL "from a", before """#),
        "{out}"
    );
    assert!(
        out.contains(r#"renamed on both sides: REMOTE "dev-b", LOCAL "dev-a", before "dev""#),
        "{out}"
    );
    assert!(out.contains("diverged branches"), "{out}");
    let diverged = out
        .lines()
        .find(|l| l.contains(r#"branch "master""#))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        diverged.contains(r#""three-a""#)
            && diverged.contains(r#""three-b""#)
            && diverged.contains(r#"last common snapshot"#)
            && diverged.contains(r#""two""#),
        "{diverged}"
    );
    assert!(
        out.lines()
            .last()
            .unwrap()
            .contains("with 2 conflicts, 1 diverged branch"),
        "{out}"
    );
    // The remote's values won on both sides.
    assert_eq!(branch_names(&a), vec!["dev-b", "master"]);
    let show: Value =
        serde_json::from_str(&run(&["volume-set", "show", &a, "db", "--json"], 0)).unwrap();
    assert_eq!(show["object"]["description"], "from b");

    // The conflicts are in the log of the side that decided them (the remote): dump and
    // history show them; the local side's log shows it adopting the remote's values.
    let dump = run(
        &["dump", &b, "--kind", "sync-conflict", "--volume-set", "db"],
        0,
    );
    assert_eq!(dump.lines().count(), 2, "{dump}");
    assert!(
        dump.contains(r#"description "from a" → "from b""#),
        "{dump}"
    );
    let hist = run(&["history", &b, "db:dev-b"], 0);
    assert!(hist.contains("sync-conflict"), "{hist}");
    let adopted = run(&["dump", &a, "--kind", "update-volume-set"], 0);
    assert_eq!(
        adopted.lines().count(),
        2,
        "its own edit, then the adoption: {adopted}"
    );

    // Syncing again sends nothing new and finds nothing; a full sync sends whole
    // histories and finds the divergence again. --json has the divergence's shape.
    let r: Value =
        serde_json::from_str(&run(&["sync", &a, &b, "--volume-set", "db", "--json"], 0)).unwrap();
    assert_eq!(r["conflicts"], serde_json::json!([]), "{r}");
    let r: Value = serde_json::from_str(&run(
        &["sync", &a, &b, "--volume-set", "db", "--full", "--json"],
        0,
    ))
    .unwrap();
    let d = &r["divergences"][0];
    for field in [
        "volume_set",
        "branch",
        "name",
        "receiver_tip",
        "sender_tip",
        "common",
    ] {
        assert!(d.get(field).is_some(), "{field}: {r}");
    }
    assert_eq!(d["name"], "master");
    assert_eq!(branch_names(&a), vec!["dev-b", "master"]);
}

#[test]
fn conflict_json_has_the_three_values() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (dir(root.path(), "a"), dir(root.path(), "b"));
    store_with_db(&a);
    run(&["sync", &a, &b, "--volume-set", "db"], 0);
    run(
        &["volume-set", "update", &a, "db", "--attr", "tier=gold"],
        0,
    );
    run(
        &["volume-set", "update", &b, "db", "--attr", "tier=silver"],
        0,
    );
    let r: Value =
        serde_json::from_str(&run(&["sync", &a, &b, "--volume-set", "db", "--json"], 0)).unwrap();
    let cs = r["conflicts"].as_array().unwrap();
    assert_eq!(cs.len(), 1, "{r}");
    let c = &cs[0]["VolumeSet"];
    assert_eq!(c["target"]["attrs"]["tier"], "silver");
    assert_eq!(c["current"]["attrs"]["tier"], "gold");
    assert!(c["initial"]["attrs"].get("tier").is_none());
}

#[test]
fn export_then_import_into_an_empty_store_gives_the_same_volume_set() {
    let f = fixture();
    let root = tempfile::tempdir().unwrap();
    let bundle = root.path().join("db.bundle").display().to_string();
    let c = dir(root.path(), "c");

    let out = run(
        &[
            "export",
            &f.dir_str(),
            "--volume-set",
            "acme/db",
            "--since",
            "0",
            "--out",
            &bundle,
        ],
        0,
    );
    let through = f.last_lsn.0;
    assert!(
        out.contains(&format!("--since {through}")) && out.contains("bytes"),
        "{out}"
    );
    let size = std::fs::metadata(&bundle).unwrap().len();
    assert!(out.contains(&thousands(size)), "{out}");

    let out = run(&["import", &c, &bundle], 0);
    assert!(
        out.contains("preferring ours")
            && out.contains("volume set created")
            && out.contains("2 branches added")
            && out.contains(&format!("through its LSN {through}")),
        "{out}"
    );
    let (mut here, there) = (view(&c, f.db), view(&f.dir_str(), f.db));
    // Times travel; the meta compares equal whole.
    assert!(here.1.len() > 60);
    here.0.last_modified = there.0.last_modified;
    assert_eq!(here, there);
    // Only db came; blobs and sizes stay local.
    let imported = Store::open_read_only(&c, StoreOptions::default()).unwrap();
    assert_eq!(imported.counts().unwrap().volume_sets, 1);
    assert!(imported.get_blob_id(f.root).unwrap().is_nil());

    // The importer's cursor names the exporting store.
    let cur: Value = serde_json::from_str(&run(&["cursors", &c, "--json"], 0)).unwrap();
    assert_eq!(cur["cursors"][0]["peer"], store_id(&f.dir_str()).as_str());
    assert_eq!(cur["cursors"][0]["volume_set"], f.db.to_string().as_str());
    assert_eq!(cur["cursors"][0]["volume_set_name"], "acme/db");
    assert_eq!(cur["cursors"][0]["lsn"], through);

    // --json of export.
    let j: Value = serde_json::from_str(&run(
        &[
            "export",
            &f.dir_str(),
            "--volume-set",
            &f.db.to_string(),
            "--since",
            "0",
            "--out",
            &bundle,
            "--json",
        ],
        0,
    ))
    .unwrap();
    assert_eq!(j["through"], through);
    assert_eq!(j["after"], 0);
    assert_eq!(j["bytes"], size);
    assert!(j["records"].as_u64().unwrap() > 60);

    // Export never writes to the store it reads.
    let before = files(&f.dir_str());
    run(
        &[
            "export",
            &f.dir_str(),
            "--volume-set",
            "db",
            "--since",
            "3",
            "--out",
            &bundle,
        ],
        0,
    );
    assert_same(
        &before,
        &files(&f.dir_str()),
        "export writes nothing to its store",
    );
}

#[test]
fn import_twice_changes_nothing_the_second_time() {
    let root = tempfile::tempdir().unwrap();
    let (a, c) = (dir(root.path(), "a"), dir(root.path(), "c"));
    store_with_db(&a);
    let bundle = root.path().join("db.bundle").display().to_string();
    run(
        &[
            "export",
            &a,
            "--volume-set",
            "db",
            "--since",
            "0",
            "--out",
            &bundle,
        ],
        0,
    );
    run(&["import", &c, &bundle], 0);
    let before = log_files(&c);
    let r: Value = serde_json::from_str(&run(&["import", &c, &bundle, "--json"], 0)).unwrap();
    assert_eq!(r["prefer"], "ours");
    assert_eq!(r["applied"]["records_written"], 0, "{r}");
    assert_eq!(r["applied"]["snapshots_added"], 0, "{r}");
    assert_eq!(r["bundle"]["source"], store_id(&a).as_str());
    let out = run(&["import", &c, &bundle, "--prefer", "theirs"], 0);
    assert!(out.contains("nothing new"), "{out}");
    assert_same(&before, &log_files(&c), "a second import writes nothing");
}

#[test]
fn damaged_and_truncated_bundles_fail_naming_the_file() {
    let root = tempfile::tempdir().unwrap();
    let (a, c) = (dir(root.path(), "a"), dir(root.path(), "c"));
    store_with_db(&a);
    let good = root.path().join("db.bundle");
    run(
        &[
            "export",
            &a,
            "--volume-set",
            "db",
            "--since",
            "0",
            "--out",
            &good.display().to_string(),
        ],
        0,
    );
    let bytes = std::fs::read(&good).unwrap();

    let flipped = root.path().join("flipped.bundle");
    let mut b = bytes.clone();
    b[bytes.len() / 2] ^= 0x20;
    std::fs::write(&flipped, b).unwrap();
    let err = run_err(&["import", &c, &flipped.display().to_string()], 1);
    assert!(
        err.contains(&flipped.display().to_string()) && err.contains("damaged"),
        "{err}"
    );

    let truncated = root.path().join("truncated.bundle");
    std::fs::write(&truncated, &bytes[..bytes.len() - 40]).unwrap();
    let err = run_err(&["import", &c, &truncated.display().to_string()], 1);
    assert!(
        err.contains(&truncated.display().to_string()) && err.contains("truncated"),
        "{err}"
    );
    // The bundle is checked before the store is opened: nothing was written.
    assert!(files(&c).is_empty());

    let err = run_err(&["import", &c, "no-such.bundle"], 2);
    assert!(err.contains("no-such.bundle"), "{err}");
    // The good one still imports.
    run(&["import", &c, &good.display().to_string()], 0);
}

#[test]
fn a_bundle_that_starts_after_the_cursor_is_a_gap() {
    let root = tempfile::tempdir().unwrap();
    let (a, c) = (dir(root.path(), "a"), dir(root.path(), "c"));
    store_with_db(&a);
    let late = root.path().join("late.bundle").display().to_string();
    run(
        &[
            "export",
            &a,
            "--volume-set",
            "db",
            "--since",
            "3",
            "--out",
            &late,
        ],
        0,
    );
    let err = run_err(&["import", &c, &late], 2);
    assert!(
        err.contains("sync gap") && err.contains("--since 0"),
        "{err}"
    );
    let cur: Value = serde_json::from_str(&run(&["cursors", &c, "--json"], 0)).unwrap();
    assert_eq!(cur["cursors"], serde_json::json!([]));
    // A --since past the end of the log is refused at export.
    let err = run_err(
        &[
            "export",
            &a,
            "--volume-set",
            "db",
            "--since",
            "999",
            "--out",
            &late,
        ],
        2,
    );
    assert!(err.contains("past the end"), "{err}");
}

#[test]
fn a_volume_set_that_is_not_the_bundles_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let (a, c) = (dir(root.path(), "a"), dir(root.path(), "c"));
    let id = store_with_db(&a);
    run(&["volume-set", "create", &c, "web"], 0);
    let bundle = root.path().join("db.bundle").display().to_string();
    run(
        &[
            "export",
            &a,
            "--volume-set",
            "db",
            "--since",
            "0",
            "--out",
            &bundle,
        ],
        0,
    );
    let before = log_files(&c);
    for prefer in ["ours", "theirs"] {
        let err = run_err(
            &[
                "import",
                &c,
                &bundle,
                "--volume-set",
                "web",
                "--prefer",
                prefer,
            ],
            2,
        );
        assert!(
            err.contains("bundle is for volume set") && err.contains(&id),
            "{prefer}: {err}"
        );
    }
    assert_same(&before, &log_files(&c), "a refused import writes nothing");
    // Named as the bundle names it (c does not hold it yet): accepted.
    run(&["import", &c, &bundle, "--volume-set", "acme/db"], 0);
    run(&["import", &c, &bundle, "--volume-set", &id[..8]], 0);
}

#[test]
fn a_hub_keeps_its_value_and_the_other_side_adopts_it() {
    let root = tempfile::tempdir().unwrap();
    let (a, hub) = (dir(root.path(), "a"), dir(root.path(), "hub"));
    store_with_db(&a);
    let file = |n: &str| root.path().join(n).display().to_string();
    let export = |from: &str, since: u64, out: &str| {
        let j: Value = serde_json::from_str(&run(
            &[
                "export",
                from,
                "--volume-set",
                "db",
                "--since",
                &since.to_string(),
                "--out",
                out,
                "--json",
            ],
            0,
        ))
        .unwrap();
        j["through"].as_u64().unwrap()
    };
    let cursor = |at: &str, peer: &str| -> u64 {
        let c: Value = serde_json::from_str(&run(&["cursors", at, "--json"], 0)).unwrap();
        c["cursors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["peer"] == peer)
            .map(|x| x["lsn"].as_u64().unwrap())
            .unwrap_or(0)
    };
    export(&a, 0, &file("1.bundle"));
    run(&["import", &hub, &file("1.bundle")], 0);
    let (a_id, hub_id) = (store_id(&a), store_id(&hub));
    export(&hub, cursor(&a, &hub_id), &file("2.bundle"));
    run(&["import", &a, &file("2.bundle")], 0);

    run(
        &["volume-set", "update", &a, "db", "--description", "from a"],
        0,
    );
    run(
        &[
            "volume-set",
            "update",
            &hub,
            "db",
            "--description",
            "from hub",
        ],
        0,
    );
    export(&a, cursor(&hub, &a_id), &file("3.bundle"));
    let out = run(&["import", &hub, &file("3.bundle")], 0);
    assert!(
        out.contains(r#"description: this store "from hub", the bundle "from a""#)
            && out.contains("with 1 conflict"),
        "{out}"
    );
    // The conflict travels back with the hub's next export; a imports it as a pull
    // (--prefer theirs, what `sync` does on its pull half) and adopts the hub's value.
    export(&hub, cursor(&a, &hub_id), &file("4.bundle"));
    let out = run(&["import", &a, &file("4.bundle"), "--prefer", "theirs"], 0);
    assert!(out.contains("preferring theirs"), "{out}");
    // One more round trip changes nothing: both hold the hub's value.
    export(&a, cursor(&hub, &a_id), &file("5.bundle"));
    run(&["import", &hub, &file("5.bundle")], 0);
    for d in [&a, &hub] {
        let show: Value =
            serde_json::from_str(&run(&["volume-set", "show", d, "db", "--json"], 0)).unwrap();
        assert_eq!(show["object"]["description"], "from hub", "{d}");
    }
}

#[test]
fn cursors_list_the_peer_after_a_sync() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (dir(root.path(), "a"), dir(root.path(), "b"));
    let id = store_with_db(&a);
    let out = run(&["cursors", &a], 0);
    assert!(out.contains("no sync cursors"), "{out}");
    run(&["sync", &a, &b, "--volume-set", "db"], 0);
    let (a_id, b_id) = (store_id(&a), store_id(&b));
    let out = run(&["cursors", &b], 0);
    assert!(out.contains(&format!("store {b_id}")), "{out}");
    let row = out
        .lines()
        .find(|l| l.starts_with(&a_id))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(row.contains("acme/db") && row.contains(&id[..8]), "{row}");
    let c: Value = serde_json::from_str(&run(&["cursors", &b, "--json"], 0)).unwrap();
    assert_eq!(c["store_id"], b_id.as_str());
    assert_eq!(c["cursors"][0]["peer"], a_id.as_str());
    assert_eq!(c["cursors"][0]["volume_set"], id.as_str());
    assert!(c["cursors"][0]["lsn"].as_u64().unwrap() > 0);
    // The cursor record shows in dump.
    let dump = run(&["dump", &b, "--kind", "sync-applied"], 0);
    assert!(dump.contains("sync from store"), "{dump}");
}

#[test]
fn usage_errors() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (dir(root.path(), "a"), dir(root.path(), "b"));
    store_with_db(&a);
    let err = run_err(&["sync", &a, &a, "--volume-set", "db"], 2);
    assert!(err.contains("same directory"), "{err}");
    let err = run_err(&["sync", &a, &b, "--volume-set", "nope"], 2);
    assert!(err.contains("no volume set matches"), "{err}");
    let missing = root.path().join("missing").display().to_string();
    let err = run_err(&["sync", &a, &missing, "--volume-set", "db"], 2);
    assert!(err.contains("no store directory"), "{err}");
    run_err(&["sync", &a, "--volume-set", "db"], 2);
    run_err(
        &["export", &a, "--volume-set", "db", "--out", "x.bundle"],
        2,
    );
    run_err(&["import", &b, "x.bundle", "--prefer", "mine"], 2);
}

#[test]
fn the_sync_commands_have_help_with_an_example() {
    for c in ["sync", "export", "import", "cursors"] {
        let out = run(&[c, "--help"], 0);
        assert!(out.contains("Example"), "{c}:\n{out}");
        assert!(out.contains(&format!("mdslog {c} ")), "{c}:\n{out}");
    }
    let top = run(&["--help"], 0);
    for c in ["sync", "export", "import", "cursors"] {
        assert!(top.contains(&format!("  {c} ")), "{c} missing from:\n{top}");
    }
}

/// `1234567` as the tool prints it: `1,234,567`.
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
