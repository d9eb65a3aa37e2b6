//! The scripted commands: volume sets, snapshots and branches, and the demo. Listings open
//! the store read-only; changes take the writer's lock for the one command.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use mdslog::{
    Attrs, BlobId, BranchQuery, Error, Snapshot, SnapshotId, Store, StoreOptions, Timestamp,
    VolumeSet, VolumeSetId, VolumeSetQuery,
};

use crate::cli::{BranchCmd, SnapshotArgs, VolumeSetCmd};
use crate::inspect::{open_read_only, print_volume_set, state_at};
use crate::output::{
    confirm, human_bytes, human_time, json, out, plural, short, CmdResult, Fail, EXIT_OK,
};
use crate::resolve;

/// Opens a store for writing; unless `create`, the directory must exist already.
pub fn open_writer(dir: &Path, actor: String, create: bool) -> Result<Store, Fail> {
    if !create && !dir.is_dir() {
        return Err(Fail::usage(format!(
            "no store directory at {}; give the store directory as the first argument or set MDSLOG_DIR",
            dir.display()
        )));
    }
    Store::open(
        dir,
        StoreOptions {
            actor: Some(actor),
            ..StoreOptions::default()
        },
    )
    .map_err(|e| Fail::store(e, dir))
}

/// A library error from a change, with what to do next.
fn change_error(e: Error, dir: &Path, vs_query: &str) -> Fail {
    let d = dir.display();
    match &e {
        Error::BranchNotFound { .. } => Fail::usage(format!(
            "{e}; list the branches with `mdslog branch list {d} {vs_query}`"
        )),
        Error::BranchAlreadyExists { .. } => Fail::usage(format!("{e}; pick another name")),
        Error::HasChildren { .. } | Error::SnapshotInUse { .. } => Fail::usage(e.to_string()),
        _ => Fail::store(e, dir),
    }
}

fn attrs_of(pairs: &[(String, String)]) -> Attrs {
    pairs.iter().cloned().collect()
}

fn vs_path(v: &VolumeSet) -> String {
    if v.prefix.is_empty() {
        v.name.clone()
    } else {
        format!("{}/{}", v.prefix, v.name)
    }
}

pub fn volume_set(cmd: VolumeSetCmd) -> CmdResult {
    match cmd {
        VolumeSetCmd::Create {
            store,
            name,
            prefix,
            description,
            attrs,
            owner,
            actor,
            json: as_json,
        } => {
            let dir = &store.dir;
            let who = actor.name();
            let st = open_writer(dir, who.clone(), true)?;
            let owner = owner.unwrap_or_else(|| who.clone());
            let vs = st
                .create_volume_set(&name, &prefix, attrs_of(&attrs), &description, &owner, &who)
                .map_err(|e| Fail::store(e, dir))?;
            st.close().map_err(|e| Fail::store(e, dir))?;
            if as_json {
                json(&vs)?;
            } else {
                out(format!("created volume set {:?} {}", vs_path(&vs), vs.id));
            }
        }
        VolumeSetCmd::List {
            store,
            search,
            glob,
            attrs,
            json: as_json,
        } => {
            let dir = &store.dir;
            let st = open_read_only(dir)?;
            let q = VolumeSetQuery {
                search,
                glob,
                attrs: attrs_of(&attrs),
                sort: mdslog::SortBy::Time,
                ..Default::default()
            };
            let list = st.get_volume_sets(&q).map_err(|e| Fail::store(e, dir))?;
            if as_json {
                json(&list)?;
            } else {
                out(format!(
                    "{:<10}{:<28}{:>11}{:>10}{:>12}  {}",
                    "ID", "NAME", "SNAPSHOTS", "BRANCHES", "SIZE", "CREATED"
                ));
                for v in &list {
                    out(format!(
                        "{:<10}{:<28}{:>11}{:>10}{:>12}  {}",
                        short(v.id),
                        vs_path(v),
                        v.num_snapshots,
                        v.num_branches,
                        human_bytes(v.size),
                        human_time(v.created)
                    ));
                }
            }
        }
        VolumeSetCmd::Show {
            store,
            volume_set,
            at,
            json: as_json,
        } => {
            let dir = &store.dir;
            let st = open_read_only(dir)?;
            let state = state_at(&st, at.as_deref())?;
            let id = resolve::volume_set(&*state, &volume_set)?;
            let v = state.get_volume_set(id).map_err(|e| Fail::store(e, dir))?;
            let branches = state
                .get_branches(&BranchQuery::all(id))
                .map_err(|e| Fail::store(e, dir))?;
            if as_json {
                json(&serde_json::json!({
                    "type": "volume-set",
                    "as_of_lsn": state.applied_lsn().0,
                    "object": v,
                    "branches": branches,
                }))?;
            } else {
                print_volume_set(&v, &branches);
                out(format!("as of        LSN {}", state.applied_lsn()));
            }
        }
        VolumeSetCmd::Update {
            store,
            volume_set,
            name,
            prefix,
            description,
            owner,
            attrs,
            remove_attrs,
            size,
            actor,
            json: as_json,
        } => {
            let dir = &store.dir;
            if name.is_none()
                && prefix.is_none()
                && description.is_none()
                && owner.is_none()
                && attrs.is_empty()
                && remove_attrs.is_empty()
                && size.is_none()
            {
                return Err(Fail::usage(
                    "nothing to change; give --name, --prefix, --description, --owner, --attr, --remove-attr or --size",
                ));
            }
            let st = open_writer(dir, actor.name(), false)?;
            let id =
                resolve::volume_set(&*st.read().map_err(|e| Fail::store(e, dir))?, &volume_set)?;
            let mut v = st.get_volume_set(id).map_err(|e| Fail::store(e, dir))?;
            for k in &remove_attrs {
                if v.attrs.remove(k).is_none() {
                    return Err(Fail::usage(format!(
                        "volume set {:?} has no attribute {k:?}",
                        v.name
                    )));
                }
            }
            v.attrs.extend(attrs);
            if let Some(n) = name {
                v.name = n;
            }
            if let Some(p) = prefix {
                v.prefix = p;
            }
            if let Some(d) = description {
                v.description = d;
            }
            if let Some(o) = owner {
                v.owner = o;
            }
            v.last_modified = Timestamp::now();
            st.update_volume_set(&v, None)
                .map_err(|e| Fail::store(e, dir))?;
            if let Some(s) = size {
                st.set_volume_set_size(id, s)
                    .map_err(|e| Fail::store(e, dir))?;
            }
            let v = st.get_volume_set(id).map_err(|e| Fail::store(e, dir))?;
            st.close().map_err(|e| Fail::store(e, dir))?;
            if as_json {
                json(&v)?;
            } else {
                out(format!("updated volume set {:?} {}", vs_path(&v), v.id));
            }
        }
        VolumeSetCmd::Delete {
            store,
            volume_set,
            yes,
            actor,
        } => {
            let dir = &store.dir;
            let st = open_writer(dir, actor.name(), false)?;
            let id =
                resolve::volume_set(&*st.read().map_err(|e| Fail::store(e, dir))?, &volume_set)?;
            let v = st.get_volume_set(id).map_err(|e| Fail::store(e, dir))?;
            let what = format!(
                "delete volume set {:?} ({}) with {} and {}",
                vs_path(&v),
                short(id),
                plural(v.num_snapshots, "snapshot", "snapshots"),
                plural(v.num_branches, "branch", "branches")
            );
            if !yes && !confirm(&what)? {
                return Err(Fail::usage("delete not confirmed; nothing changed"));
            }
            st.delete_volume_set(id).map_err(|e| Fail::store(e, dir))?;
            st.close().map_err(|e| Fail::store(e, dir))?;
            out(format!("deleted volume set {:?} {id}", vs_path(&v)));
        }
    }
    Ok(EXIT_OK)
}

pub fn snapshot(a: SnapshotArgs) -> CmdResult {
    let dir = &a.store.dir;
    let st = open_writer(dir, a.actor.name(), false)?;
    let (vs, parent) = {
        let state = st.read().map_err(|e| Fail::store(e, dir))?;
        let vs = resolve::volume_set(&*state, &a.volume_set)?;
        let parent = match (&a.fork, &a.from) {
            (Some(_), Some(from)) => Some(resolve::snapshot_in(&state, vs, from)?),
            (Some(_), None) => None,
            (None, _) => match state.get_tip(vs, &a.branch) {
                Ok(t) => Some(t.id),
                Err(Error::BranchNotFound { .. }) => {
                    return Err(Fail::usage(format!(
                        "branch {:?} not found in volume set {:?}; `--fork {}` starts it (add --from SNAPSHOT to branch \
                         off one)",
                        a.branch, a.volume_set, a.branch
                    )));
                }
                Err(e) => return Err(Fail::store(e, dir)),
            },
        };
        (vs, parent)
    };
    let blob = BlobId(a.blob.clone());
    let id = SnapshotId::random();
    let attrs = attrs_of(&a.attrs);
    let s = match (&a.fork, parent) {
        (Some(name), parent) => st.snapshot_fork(
            vs,
            id,
            name,
            parent,
            blob,
            attrs,
            &a.name,
            a.size,
            &a.description,
        ),
        (None, Some(tip)) => {
            st.snapshot_extend(id, tip, blob, attrs, &a.name, a.size, &a.description)
        }
        (None, None) => unreachable!("extending needs a tip"),
    }
    .map_err(|e| change_error(e, dir, &a.volume_set))?;
    st.close().map_err(|e| Fail::store(e, dir))?;
    if a.json {
        json(&s)?;
    } else {
        let on = match (&a.fork, s.parent) {
            (Some(b), Some(p)) => format!("on new branch {b:?}, forked off {}", short(p)),
            (Some(b), None) => format!("on new branch {b:?}, a new root"),
            (None, _) => format!("on branch {:?}", a.branch),
        };
        out(format!("created snapshot {} {on}, depth {}", s.id, s.depth));
    }
    Ok(EXIT_OK)
}

pub fn branch(cmd: BranchCmd) -> CmdResult {
    match cmd {
        BranchCmd::List {
            store,
            volume_set,
            json: as_json,
        } => {
            let dir = &store.dir;
            let st = open_read_only(dir)?;
            let state = st.read().map_err(|e| Fail::store(e, dir))?;
            let vs = resolve::volume_set(&*state, &volume_set)?;
            let list = state
                .get_branches(&BranchQuery::all(vs))
                .map_err(|e| Fail::store(e, dir))?;
            if as_json {
                json(&list)?;
            } else {
                out(format!(
                    "{:<24}{:<10}{:<10}{:>8}  {:<29}{}",
                    "NAME", "ID", "TIP", "DEPTH", "TIP CREATED", "FORKS AT TIP"
                ));
                for b in &list {
                    let t = b.tip_snapshot.as_ref();
                    out(format!(
                        "{:<24}{:<10}{:<10}{:>8}  {:<29}{}",
                        if b.name.is_empty() {
                            "(unnamed)"
                        } else {
                            &b.name
                        },
                        short(b.id),
                        short(b.tip),
                        t.map(|t| t.depth).unwrap_or(0),
                        t.map(|t| human_time(t.created)).unwrap_or_default(),
                        if b.has_child { "yes" } else { "" }
                    ));
                }
            }
        }
        BranchCmd::Rename {
            store,
            volume_set,
            old,
            new,
            actor,
        } => {
            let dir = &store.dir;
            let st = open_writer(dir, actor.name(), false)?;
            let vs =
                resolve::volume_set(&*st.read().map_err(|e| Fail::store(e, dir))?, &volume_set)?;
            st.rename_branch(vs, &old, &new)
                .map_err(|e| change_error(e, dir, &volume_set))?;
            st.close().map_err(|e| Fail::store(e, dir))?;
            out(format!("renamed branch {old:?} to {new:?}"));
        }
        BranchCmd::Delete {
            store,
            volume_set,
            branch,
            yes,
            actor,
        } => {
            let dir = &store.dir;
            let st = open_writer(dir, actor.name(), false)?;
            let vs =
                resolve::volume_set(&*st.read().map_err(|e| Fail::store(e, dir))?, &volume_set)?;
            let tip = st
                .get_tip(vs, &branch)
                .map_err(|e| change_error(e, dir, &volume_set))?;
            if !yes
                && !confirm(&format!(
                    "delete branch {branch:?} (tip {}, depth {})",
                    short(tip.id),
                    tip.depth
                ))?
            {
                return Err(Fail::usage("delete not confirmed; nothing changed"));
            }
            let gone = st
                .delete_branch(vs, &branch)
                .map_err(|e| change_error(e, dir, &volume_set))?;
            st.close().map_err(|e| Fail::store(e, dir))?;
            out(format!(
                "deleted branch {branch:?}: {}",
                plural(gone.len() as u64, "snapshot", "snapshots")
            ));
        }
    }
    Ok(EXIT_OK)
}

// ---- demo ----------------------------------------------------------------------------------

fn demo_snap(vs: VolumeSetId, parent: Option<SnapshotId>, name: &str) -> Snapshot {
    let mut s = Snapshot::new(SnapshotId::random(), vs, parent);
    s.name = name.to_string();
    s.size = 1 << 20;
    s.created = Timestamp::now();
    s.last_modified = s.created;
    s.blob = BlobId(format!("blob-{}", &s.id.to_hyphenated()[..8]));
    s
}

/// Makes or extends the demo store (README.md's main job).
pub fn demo(dir: PathBuf) -> CmdResult {
    let e = |e| Fail::store(e, &dir);
    let store = Store::open(
        &dir,
        StoreOptions {
            actor: Some("demo".into()),
            ..StoreOptions::default()
        },
    )
    .map_err(e)?;
    let found = store
        .get_volume_sets(&VolumeSetQuery {
            name: Some("demo".into()),
            ..Default::default()
        })
        .map_err(e)?;
    let vs: VolumeSet = match found.into_iter().next() {
        Some(vs) => vs,
        None => {
            let mut attrs = Attrs::new();
            attrs.insert("runs".into(), "0".into());
            store
                .create_volume_set(
                    "demo",
                    "acme",
                    attrs,
                    "made by mdslog demo",
                    "operator",
                    "operator",
                )
                .map_err(e)?
        }
    };
    let runs: u64 = vs
        .attrs
        .get("runs")
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
        + 1;

    // Snapshots on two branches: extend master (or start it), then dev (or fork it).
    let master_tip = match store.get_tip(vs.id, "master") {
        Ok(t) => {
            let s = demo_snap(vs.id, Some(t.id), &format!("run {runs}"));
            store.extend_branch(std::slice::from_ref(&s)).map_err(e)?;
            s.id
        }
        Err(Error::BranchNotFound { .. }) => {
            let a = demo_snap(vs.id, None, "initial");
            let b = demo_snap(vs.id, Some(a.id), "run 1");
            let id = b.id;
            store.fork_branch("master", &[a, b]).map_err(e)?;
            id
        }
        Err(err) => return Err(e(err)),
    };
    match store.get_tip(vs.id, "dev") {
        Ok(t) => store
            .extend_branch(&[demo_snap(vs.id, Some(t.id), &format!("dev run {runs}"))])
            .map_err(e)?,
        Err(Error::BranchNotFound { .. }) => {
            store
                .fork_branch("dev", &[demo_snap(vs.id, Some(master_tip), "dev start")])
                .map_err(e)?;
        }
        Err(err) => return Err(e(err)),
    }
    // A fork off the master tip, then a rename of it.
    let tmp = format!("exp-{runs}");
    store
        .fork_branch(
            &tmp,
            &[demo_snap(
                vs.id,
                Some(master_tip),
                &format!("experiment {runs}"),
            )],
        )
        .map_err(e)?;
    store
        .rename_branch(vs.id, &tmp, &format!("feature-{runs}"))
        .map_err(e)?;
    // An attribute edit on the volume set.
    let mut cur = store.get_volume_set(vs.id).map_err(e)?;
    cur.attrs.insert("runs".into(), runs.to_string());
    store.update_volume_set(&cur, None).map_err(e)?;

    print_demo_tree(&store, vs.id).map_err(e)?;
    let c = store.counts().map_err(e)?;
    out(format!(
        "\n{}: run {runs}; {} volume set(s), {} snapshots, {} branches, last LSN {}",
        dir.display(),
        c.volume_sets,
        c.snapshots,
        c.branches,
        store.durable_lsn()
    ));
    store.close().map_err(e)?;
    Ok(EXIT_OK)
}

/// Draws the snapshot forest of a volume set, with branch names at their tips.
fn print_demo_tree(store: &Store, vs: VolumeSetId) -> Result<(), Error> {
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
    out(format!("volume set {}/{} ({})", v.prefix, v.name, v.id));
    let branches = store.get_branches(&BranchQuery::all(vs))?;
    out(format!(
        "branches: {}",
        branches
            .iter()
            .map(|b| b.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    // Depth first with an explicit stack: chains can be deep.
    let roots = children.get(&None).map(|v| v.as_slice()).unwrap_or(&[]);
    let mut stack: Vec<(&Snapshot, String, bool)> = roots
        .iter()
        .rev()
        .enumerate()
        .map(|(i, r)| (*r, String::new(), i == 0))
        .collect();
    while let Some((s, indent, last)) = stack.pop() {
        let tip = s
            .branch_name
            .as_ref()
            .map(|n| format!(" [{n}]"))
            .unwrap_or_default();
        out(format!(
            "{indent}{}{} (depth {}){}",
            if last { "└─ " } else { "├─ " },
            s.name,
            s.depth,
            tip
        ));
        let kids = children
            .get(&Some(s.id))
            .map(|v| v.as_slice())
            .unwrap_or(&[]);
        let next = format!("{indent}{}", if last { "   " } else { "│  " });
        for (i, k) in kids.iter().enumerate().rev() {
            stack.push((k, next.clone(), i + 1 == kids.len()));
        }
    }
    Ok(())
}

/// `mdslog checkpoint DIR`: writes a checkpoint now.
pub fn checkpoint(dir: &Path, as_json: bool) -> CmdResult {
    let store = open_writer(dir, "mdslog".into(), false)?;
    let lsn = store.checkpoint().map_err(|e| Fail::store(e, dir))?;
    let file = dir.join(mdslog::checkpoint::file_name(lsn));
    if as_json {
        #[derive(serde::Serialize)]
        struct CheckpointJson<'a> {
            dir: &'a Path,
            lsn: mdslog::Lsn,
            file: &'a Path,
        }
        json(&CheckpointJson {
            dir,
            lsn,
            file: &file,
        })?;
    } else {
        out(format!(
            "checkpoint as of LSN {lsn} written: {}",
            file.display()
        ));
    }
    Ok(EXIT_OK)
}
