//! The `mdslog` command-line tool, built only on the library's public API.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mdslog::{
    Attrs, BlobId, BranchQuery, Error, Snapshot, SnapshotId, Store, StoreOptions, VolumeSet, VolumeSetId,
    VolumeSetQuery,
};

#[derive(Parser)]
#[command(name = "mdslog", version, about = "An event-sourced metadata store for versioned data volumes")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make or extend a demo store: a volume set, snapshots on two branches, a fork, a
    /// rename and an attribute edit; then print the branch tree and counts. Running it
    /// again extends the same store.
    ///
    /// Example: mdslog demo ./mdslog-demo
    Demo {
        /// Store directory (created if missing).
        #[arg(default_value = "mdslog-demo")]
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo { dir } => demo(dir),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mdslog: {e}");
            ExitCode::from(2)
        }
    }
}

fn snap(vs: VolumeSetId, parent: Option<SnapshotId>, name: &str) -> Snapshot {
    let mut s = Snapshot::new(SnapshotId::random(), vs, parent);
    s.name = name.to_string();
    s.size = 1 << 20;
    s.created = mdslog::Timestamp::now();
    s.last_modified = s.created;
    s.blob = BlobId(format!("blob-{}", &s.id.to_hyphenated()[..8]));
    s
}

fn demo(dir: PathBuf) -> Result<(), Error> {
    let store = Store::open(&dir, StoreOptions { actor: Some("demo".into()), ..StoreOptions::default() })?;
    let found = store.get_volume_sets(&VolumeSetQuery { name: Some("demo".into()), ..Default::default() })?;
    let vs: VolumeSet = match found.into_iter().next() {
        Some(vs) => vs,
        None => {
            let mut attrs = Attrs::new();
            attrs.insert("runs".into(), "0".into());
            store.create_volume_set("demo", "acme", attrs, "made by mdslog demo", "operator", "operator")?
        }
    };
    let runs: u64 = vs.attrs.get("runs").and_then(|r| r.parse().ok()).unwrap_or(0) + 1;

    // Snapshots on two branches: extend master (or start it), then dev (or fork it).
    let master_tip = match store.get_tip(vs.id, "master") {
        Ok(t) => {
            let s = snap(vs.id, Some(t.id), &format!("run {runs}"));
            store.extend_branch(std::slice::from_ref(&s))?;
            s.id
        }
        Err(Error::BranchNotFound { .. }) => {
            let a = snap(vs.id, None, "initial");
            let b = snap(vs.id, Some(a.id), "run 1");
            let id = b.id;
            store.fork_branch("master", &[a, b])?;
            id
        }
        Err(e) => return Err(e),
    };
    match store.get_tip(vs.id, "dev") {
        Ok(t) => store.extend_branch(&[snap(vs.id, Some(t.id), &format!("dev run {runs}"))])?,
        Err(Error::BranchNotFound { .. }) => {
            store.fork_branch("dev", &[snap(vs.id, Some(master_tip), "dev start")])?;
        }
        Err(e) => return Err(e),
    }
    // A fork off the master tip, then a rename of it.
    let tmp = format!("exp-{runs}");
    store.fork_branch(&tmp, &[snap(vs.id, Some(master_tip), &format!("experiment {runs}"))])?;
    store.rename_branch(vs.id, &tmp, &format!("feature-{runs}"))?;
    // An attribute edit on the volume set.
    let mut cur = store.get_volume_set(vs.id)?;
    cur.attrs.insert("runs".into(), runs.to_string());
    store.update_volume_set(&cur, None)?;

    print_tree(&store, vs.id)?;
    let c = store.counts()?;
    println!(
        "\n{}: run {runs}; {} volume set(s), {} snapshots, {} branches, last LSN {}",
        dir.display(),
        c.volume_sets,
        c.snapshots,
        c.branches,
        store.durable_lsn()
    );
    store.close()
}

/// Draws the snapshot forest of a volume set, with branch names at their tips.
fn print_tree(store: &Store, vs: VolumeSetId) -> Result<(), Error> {
    let all = store.get_snapshots(&mdslog::SnapshotQuery {
        volume_set: Some(vs),
        sort: mdslog::SortBy::Time,
        ..Default::default()
    })?;
    let mut children: HashMap<Option<SnapshotId>, Vec<&Snapshot>> = HashMap::new();
    for s in &all {
        children.entry(s.parent).or_default().push(s);
    }
    let v = store.get_volume_set(vs)?;
    println!("volume set {}/{} ({})", v.prefix, v.name, v.id);
    let branches = store.get_branches(&BranchQuery::all(vs))?;
    println!("branches: {}", branches.iter().map(|b| b.name.as_str()).collect::<Vec<_>>().join(", "));
    fn walk(s: &Snapshot, children: &HashMap<Option<SnapshotId>, Vec<&Snapshot>>, indent: &str, last: bool) {
        let label = |s: &Snapshot| {
            let tip = s.branch_name.as_ref().map(|n| format!(" [{n}]")).unwrap_or_default();
            format!("{} (depth {}){}", s.name, s.depth, tip)
        };
        println!("{indent}{}{}", if last { "└─ " } else { "├─ " }, label(s));
        let kids = children.get(&Some(s.id)).map(|v| v.as_slice()).unwrap_or(&[]);
        let next = format!("{indent}{}", if last { "   " } else { "│  " });
        for (i, k) in kids.iter().enumerate() {
            walk(k, children, &next, i + 1 == kids.len());
        }
    }
    let roots = children.get(&None).map(|v| v.as_slice()).unwrap_or(&[]);
    for (i, r) in roots.iter().enumerate() {
        walk(r, &children, "", i + 1 == roots.len());
    }
    Ok(())
}
