//! The sync commands: `sync` (two store directories), `export` and `import` (a bundle
//! file between them), and `cursors`. Built on `mdslog::sync`: the reports printed are
//! the library's `SyncReport` and `ApplyReport`.

use std::collections::HashSet;
use std::path::Path;

use mdslog::event::Conflict;
use mdslog::sync::{
    sync_with, ApplyReport, Batch, BundleIn, BundleOut, Divergence, MissingAncestor, SyncMode,
    SyncOptions, SyncReport, Winner,
};
use mdslog::{Attrs, BranchId, BundleProblem, Error, Lsn, SnapshotId, Store, StoreId, VolumeSetId};
use serde::Serialize;

use crate::cli::{ExportArgs, ImportArgs, Prefer, SyncArgs};
use crate::inspect::open_read_only;
use crate::output::{human_bytes, json, out, plural, short, thousands, CmdResult, Fail, EXIT_OK};
use crate::resolve::{self, Catalog, VsEntry};
use crate::scripted::open_writer;

// ---- errors ------------------------------------------------------------------------------

/// A library error from a sync, an export or an import, with what to do next. `dir` is the
/// store the work was on (named when the store itself is damaged).
fn sync_fail(e: Error, dir: &Path) -> Fail {
    match &e {
        Error::Bundle { problem, .. } => match problem {
            BundleProblem::WrongVolumeSet { .. } => Fail::usage(format!(
                "{e}; leave out --volume-set to import the bundle for the volume set it holds"
            )),
            BundleProblem::UnsupportedVersion { .. } | BundleProblem::TooLarge { .. } => {
                Fail::usage(e.to_string())
            }
            _ => Fail::damaged(format!(
                "{e}; nothing was imported: make the bundle again with `mdslog export`"
            )),
        },
        Error::SyncGap { .. } => Fail::usage(format!(
            "{e} (`mdslog cursors {}` lists this store's cursors); nothing was imported",
            dir.display()
        )),
        _ => Fail::store(e, dir),
    }
}

/// Opens a store that is only read: an error names the directory.
fn open_reader(dir: &Path) -> Result<Store, Fail> {
    if !dir.is_dir() {
        return Err(Fail::usage(format!(
            "no store directory at {}",
            dir.display()
        )));
    }
    open_read_only(dir)
}

fn store_id_of(st: &Store, dir: &Path) -> Result<Option<StoreId>, Fail> {
    st.store_id().map_err(|e| Fail::store(e, dir))
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

// ---- names for people --------------------------------------------------------------------

/// Looks up names of branches and snapshots, in the stores given (first hit wins), for
/// the lines of a report.
struct Names<'a> {
    stores: Vec<&'a Store>,
    vs: VolumeSetId,
}

impl Names<'_> {
    fn branch(&self, id: BranchId) -> String {
        for st in &self.stores {
            if let Ok(b) = st.get_branch(self.vs, id) {
                if !b.name.is_empty() {
                    return format!("{:?} ({})", b.name, short(id));
                }
            }
        }
        format!("({})", short(id))
    }

    fn snapshot(&self, id: SnapshotId) -> String {
        for st in &self.stores {
            if let Ok(s) = st.get_snapshot(id) {
                if !s.name.is_empty() {
                    return format!("{} {:?}", short(id), s.name);
                }
            }
        }
        short(id)
    }

    fn volume_set(&self) -> String {
        for st in &self.stores {
            if let Ok(v) = st.get_volume_set(self.vs) {
                return format!("{:?} ({})", vs_path(&v.prefix, &v.name), short(self.vs));
            }
        }
        format!("({})", short(self.vs))
    }
}

fn vs_path(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

fn attrs_text(a: &Attrs) -> String {
    if a.is_empty() {
        return "{}".into();
    }
    let v: Vec<String> = a.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", v.join(", "))
}

// ---- report lines ------------------------------------------------------------------------

/// What an apply changed, in one line: "3 snapshots added, 1 branch extended".
fn changes(r: &ApplyReport) -> String {
    let mut v = Vec::new();
    if r.volume_set_created {
        v.push("volume set created".to_string());
    }
    if r.volume_set_updated {
        v.push("volume set metadata updated".to_string());
    }
    let counts = [
        (r.snapshots_added, "snapshot added", "snapshots added"),
        (r.snapshots_updated, "snapshot updated", "snapshots updated"),
        (r.branches_added, "branch added", "branches added"),
        (r.branches_extended, "branch extended", "branches extended"),
        (r.branches_renamed, "branch renamed", "branches renamed"),
        (
            r.branches_behind,
            "branch behind (nothing to do)",
            "branches behind (nothing to do)",
        ),
        (
            r.adopted,
            "value adopted from the other side",
            "values adopted from the other side",
        ),
    ];
    for (n, one, many) in counts {
        if n > 0 {
            v.push(plural(n, one, many));
        }
    }
    if v.is_empty() {
        "nothing new".into()
    } else {
        v.join(", ")
    }
}

/// One direction of a sync or an import: what arrived and what it changed.
fn apply_line(what: &str, r: &ApplyReport) -> String {
    if r.records_received == 0 && r.records_written == 0 {
        return format!("{what}: nothing to send");
    }
    format!(
        "{what}: {} received ({} new); {}; {} written",
        plural(r.records_received, "record", "records"),
        thousands(r.records_new),
        changes(r),
        plural(r.records_written, "record", "records"),
    )
}

/// Who kept and who lost a conflict, as the report calls them.
struct Sides<'a> {
    kept: &'a str,
    lost: &'a str,
}

fn field_lines<T: PartialEq>(
    out: &mut Vec<String>,
    field: &str,
    get: impl Fn(&T) -> String,
    [kept, lost, before]: [&T; 3],
    sides: &Sides,
) {
    let (k, l, b) = (get(kept), get(lost), get(before));
    if k != l || k != b {
        out.push(format!(
            "      {field}: {} {k}, {} {l}, before {b}",
            sides.kept, sides.lost
        ));
    }
}

/// The lines of one conflict: what it is about, then the three values.
fn conflict_lines(c: &Conflict, sides: &Sides, names: &Names) -> Vec<String> {
    let q = |s: &String| format!("{s:?}");
    let mut v = Vec::new();
    match c {
        Conflict::VolumeSet {
            id,
            target,
            current,
            initial,
        } => {
            v.push(format!(
                "    volume set {:?} ({}) edited on both sides; {}'s value kept:",
                target.name,
                short(id),
                sides.kept
            ));
            let three = [target, current, initial];
            field_lines(&mut v, "name", |m: &mdslog::VolumeSetMeta| q(&m.name), three, sides);
            field_lines(&mut v, "prefix", |m: &mdslog::VolumeSetMeta| q(&m.prefix), three, sides);
            field_lines(
                &mut v,
                "description",
                |m: &mdslog::VolumeSetMeta| q(&m.description),
                three,
                sides,
            );
            field_lines(&mut v, "owner", |m: &mdslog::VolumeSetMeta| q(&m.owner), three, sides);
            field_lines(&mut v, "creator", |m: &mdslog::VolumeSetMeta| q(&m.creator), three, sides);
            field_lines(
                &mut v,
                "attributes",
                |m: &mdslog::VolumeSetMeta| attrs_text(&m.attrs),
                three,
                sides,
            );
        }
        Conflict::Snapshot {
            id,
            target,
            current,
            initial,
        } => {
            v.push(format!(
                "    snapshot {} edited on both sides; {}'s value kept:",
                names.snapshot(*id),
                sides.kept
            ));
            let three = [target, current, initial];
            field_lines(&mut v, "name", |m: &mdslog::SnapshotMeta| q(&m.name), three, sides);
            field_lines(
                &mut v,
                "description",
                |m: &mdslog::SnapshotMeta| q(&m.description),
                three,
                sides,
            );
            field_lines(&mut v, "owner", |m: &mdslog::SnapshotMeta| q(&m.owner), three, sides);
            field_lines(&mut v, "creator", |m: &mdslog::SnapshotMeta| q(&m.creator), three, sides);
            field_lines(
                &mut v,
                "attributes",
                |m: &mdslog::SnapshotMeta| attrs_text(&m.attrs),
                three,
                sides,
            );
        }
        Conflict::BranchRename {
            branch,
            target,
            current,
            initial,
            ..
        } => v.push(format!(
            "    branch ({}) renamed on both sides: {} {target:?}, {} {current:?}, before {initial:?}; {target:?} kept",
            short(branch),
            sides.kept,
            sides.lost
        )),
        Conflict::BranchNameClash {
            branch,
            wanted,
            given,
            holder,
            ..
        } => {
            let now = if given.is_empty() {
                "it is unnamed".to_string()
            } else {
                format!("it is named {given:?} instead")
            };
            v.push(format!(
                "    branch ({}) wanted the name {wanted:?}, held by another branch ({}): {now}",
                short(branch),
                short(holder)
            ))
        }
        Conflict::BranchTipTaken {
            branch,
            tip,
            holder,
            ..
        } => v.push(format!(
            "    branch ({}) not applied: its tip {} is already the tip of branch {}",
            short(branch),
            names.snapshot(*tip),
            names.branch(*holder)
        )),
    }
    if v.len() == 1 && matches!(c, Conflict::VolumeSet { .. } | Conflict::Snapshot { .. }) {
        v.push("      (only user names or times differ)".into());
    }
    v
}

fn conflict_kind(c: &Conflict) -> usize {
    match c {
        Conflict::VolumeSet { .. } => 0,
        Conflict::Snapshot { .. } => 1,
        _ => 2,
    }
}

/// Prints the conflicts grouped by kind.
fn print_conflicts(conflicts: &[Conflict], sides: &Sides, names: &Names) {
    if conflicts.is_empty() {
        return;
    }
    out(format!(
        "conflicts ({}'s value kept on both sides):",
        sides.kept
    ));
    for (kind, title) in [(0, "volume set"), (1, "snapshots"), (2, "branches")] {
        let of: Vec<&Conflict> = conflicts
            .iter()
            .filter(|c| conflict_kind(c) == kind)
            .collect();
        if of.is_empty() {
            continue;
        }
        out(format!("  {title}:"));
        for c in of {
            for l in conflict_lines(c, sides, names) {
                out(l);
            }
        }
    }
}

/// A divergence with the two tips named by side: (branch, receiver side's tip, sender
/// side's tip, common).
struct Diverged {
    branch: BranchId,
    name: String,
    tips: [(String, SnapshotId); 2],
    common: Option<SnapshotId>,
}

fn diverged(d: &Divergence, receiver: &str, sender: &str) -> Diverged {
    Diverged {
        branch: d.branch,
        name: d.name.clone(),
        tips: [
            (receiver.to_string(), d.receiver_tip),
            (sender.to_string(), d.sender_tip),
        ],
        common: d.common,
    }
}

fn print_divergences(ds: &[Diverged], names: &Names) {
    if ds.is_empty() {
        return;
    }
    out("diverged branches (each side kept its own tip; everything else synced):");
    for d in ds {
        let common = match d.common {
            Some(c) => format!("last common snapshot {}", names.snapshot(c)),
            None => "no common snapshot".into(),
        };
        out(format!(
            "  branch {:?} ({}): {} tip {}, {} tip {}, {common}",
            d.name,
            short(d.branch),
            d.tips[0].0,
            names.snapshot(d.tips[0].1),
            d.tips[1].0,
            names.snapshot(d.tips[1].1),
        ));
    }
}

fn print_missing(ms: &[MissingAncestor], names: &Names, hint: &str) {
    if ms.is_empty() {
        return;
    }
    out(format!(
        "branches missing an ancestor (not applied; {hint}):"
    ));
    for m in ms {
        out(format!(
            "  branch {}: its ancestor {} is neither in what was sent nor in the receiving store",
            names.branch(m.branch),
            short(m.missing)
        ));
    }
}

/// The last line: whether anything needs a look.
fn summary_line(what: &str, conflicts: usize, divergences: usize, missing: usize) -> String {
    if conflicts == 0 && divergences == 0 && missing == 0 {
        return format!("{what}: no conflicts, no diverged branches");
    }
    let mut v = Vec::new();
    if conflicts > 0 {
        v.push(plural(conflicts as u64, "conflict", "conflicts"));
    }
    if divergences > 0 {
        v.push(plural(
            divergences as u64,
            "diverged branch",
            "diverged branches",
        ));
    }
    if missing > 0 {
        v.push(plural(
            missing as u64,
            "branch missing an ancestor",
            "branches missing an ancestor",
        ));
    }
    format!("{what} with {} (listed above)", v.join(", "))
}

fn dedup_missing(ms: impl Iterator<Item = MissingAncestor>) -> Vec<MissingAncestor> {
    let mut seen = HashSet::new();
    ms.filter(|m| seen.insert((m.branch, m.missing))).collect()
}

// ---- sync --------------------------------------------------------------------------------

#[derive(Serialize)]
struct SideJson<'a> {
    dir: &'a Path,
    store_id: Option<StoreId>,
}

#[derive(Serialize)]
struct SyncJson<'a> {
    local: SideJson<'a>,
    remote: SideJson<'a>,
    #[serde(flatten)]
    report: &'a SyncReport,
}

pub fn sync(a: SyncArgs) -> CmdResult {
    let (ld, rd) = (a.local.as_path(), a.remote.as_path());
    if same_dir(ld, rd) {
        return Err(Fail::usage(format!(
            "LOCAL and REMOTE are the same directory ({}); sync two different stores",
            ld.display()
        )));
    }
    if !rd.is_dir() {
        return Err(Fail::usage(format!(
            "no store directory at {} (REMOTE)",
            rd.display()
        )));
    }
    let local = open_writer(ld, a.actor.name(), false)?;
    let remote = if a.pull_only {
        let r = open_reader(rd)?;
        if r.durable_lsn() == Lsn::ZERO {
            return Err(Fail::usage(format!(
                "{} holds no store yet (its log is empty): nothing to pull",
                rd.display()
            )));
        }
        if store_id_of(&r, rd)?.is_none() {
            return Err(Fail::usage(format!(
                "{} has no store identity yet and a pull-only sync writes nothing there, so it cannot get one; \
                 open it for writing once (a sync without --pull-only, or any command that writes to it)",
                rd.display()
            )));
        }
        r
    } else {
        open_writer(rd, a.actor.name(), false)?
    };
    let vs = {
        let ls = local.read().map_err(|e| Fail::store(e, ld))?;
        let rs = remote.read().map_err(|e| Fail::store(e, rd))?;
        let (ln, rn) = (
            format!("LOCAL {}", ld.display()),
            format!("REMOTE {}", rd.display()),
        );
        resolve::volume_set_first(&[(&ln, &*ls), (&rn, &*rs)], &a.volume_set)?
    };
    let mode = if a.pull_only {
        SyncMode::PullOnly
    } else {
        SyncMode::Both
    };
    let report = sync_with(&local, &remote, vs, mode, SyncOptions { full: a.full }).map_err(
        |e| match e {
            Error::VolumeSetNotFound(_) if a.pull_only => Fail::usage(format!(
                "volume set {:?} is not in REMOTE {}: nothing to pull; sync without --pull-only to push it there",
                a.volume_set,
                rd.display()
            )),
            e => sync_fail(e, ld),
        },
    )?;
    let (lid, rid) = (store_id_of(&local, ld)?, store_id_of(&remote, rd)?);
    if a.json {
        json(&SyncJson {
            local: SideJson {
                dir: ld,
                store_id: lid,
            },
            remote: SideJson {
                dir: rd,
                store_id: rid,
            },
            report: &report,
        })?;
    } else {
        let names = Names {
            stores: vec![&local, &remote],
            vs,
        };
        let id = |i: Option<StoreId>| i.map(short).unwrap_or_else(|| "-".into());
        out(format!(
            "sync of volume set {}: LOCAL {} (store {}), REMOTE {} (store {}){}{}",
            names.volume_set(),
            ld.display(),
            id(lid),
            rd.display(),
            id(rid),
            if a.pull_only { ", pull only" } else { "" },
            if a.full { ", full histories" } else { "" },
        ));
        match &report.pushed {
            Some(r) => out(apply_line("pushed LOCAL → REMOTE", r)),
            None if a.pull_only => out("pushed LOCAL → REMOTE: nothing (--pull-only)"),
            None => out("pushed LOCAL → REMOTE: nothing (LOCAL does not hold the volume set)"),
        }
        match &report.pulled {
            Some(r) => out(apply_line("pulled REMOTE → LOCAL", r)),
            None => out("pulled REMOTE → LOCAL: nothing (REMOTE does not hold the volume set)"),
        }
        if let Some(r) = &report.pushed {
            out(format!(
                "cursors: REMOTE holds LOCAL's records through its LSN {}",
                r.cursor
            ));
        }
        if let Some(r) = &report.pulled {
            out(format!(
                "cursors: LOCAL holds REMOTE's records through its LSN {}",
                r.cursor
            ));
        }
        print_conflicts(
            &report.conflicts,
            &Sides {
                kept: "REMOTE",
                lost: "LOCAL",
            },
            &names,
        );
        // Per direction, so the tips can be named by side; each branch once.
        let mut ds: Vec<Diverged> = Vec::new();
        let pushed = report.pushed.iter().flat_map(|r| r.divergences.iter());
        let pulled = report.pulled.iter().flat_map(|r| r.divergences.iter());
        for d in pushed
            .map(|d| diverged(d, "REMOTE", "LOCAL"))
            .chain(pulled.map(|d| diverged(d, "LOCAL", "REMOTE")))
        {
            if !ds.iter().any(|x| x.branch == d.branch) {
                // LOCAL's tip first.
                let mut d = d;
                if d.tips[0].0 != "LOCAL" {
                    d.tips.swap(0, 1);
                }
                ds.push(d);
            }
        }
        print_divergences(&ds, &names);
        let missing = dedup_missing(report.missing.iter().cloned());
        print_missing(
            &missing,
            &names,
            "rerun with --full to send whole histories",
        );
        out(summary_line(
            "synced",
            report.conflicts.len(),
            ds.len(),
            missing.len(),
        ));
    }
    local.close().map_err(|e| Fail::store(e, ld))?;
    remote.close().map_err(|e| Fail::store(e, rd))?;
    Ok(EXIT_OK)
}

// ---- export ------------------------------------------------------------------------------

#[derive(Serialize)]
struct ExportJson<'a> {
    dir: &'a Path,
    file: &'a Path,
    volume_set: VolumeSetId,
    source: Option<StoreId>,
    after: Lsn,
    through: Lsn,
    records: u64,
    bytes: u64,
}

pub fn export(a: ExportArgs) -> CmdResult {
    let dir = a.store.dir.as_path();
    if a.out.is_dir() {
        return Err(Fail::usage(format!(
            "--out {} is a directory; give the bundle file to write",
            a.out.display()
        )));
    }
    let mut store = open_reader(dir)?;
    if store_id_of(&store, dir)?.is_none() {
        // A store gets its identity when first opened for writing: do that once.
        drop(store);
        open_writer(dir, crate::cli::Actor { actor: None }.name(), false)?
            .close()
            .map_err(|e| Fail::store(e, dir))?;
        store = open_reader(dir)?;
    }
    let last = store.durable_lsn();
    if a.since > last.0 {
        return Err(Fail::usage(format!(
            "--since {} is past the end of {}'s log (last LSN {last}); give the importer's cursor for this store \
             (`mdslog cursors IMPORTER_DIR`) or 0",
            a.since,
            dir.display()
        )));
    }
    let vs = resolve::volume_set(
        &*store.read().map_err(|e| Fail::store(e, dir))?,
        &a.volume_set,
    )?;
    let bundle = BundleOut::new(&a.out, Lsn(a.since));
    let report = sync_with(
        &store,
        &bundle,
        vs,
        SyncMode::PushOnly,
        SyncOptions::default(),
    )
    .map_err(|e| match e {
        Error::Io { .. } => {
            Fail::usage(format!("cannot write the bundle {}: {e}", a.out.display()))
        }
        e => sync_fail(e, dir),
    })?;
    let pushed = report
        .pushed
        .ok_or_else(|| Fail::usage("the export wrote no bundle"))?;
    let bytes = bundle.bytes_written().unwrap_or(0);
    if a.json {
        json(&ExportJson {
            dir,
            file: &a.out,
            volume_set: vs,
            source: pushed.source,
            after: Lsn(a.since),
            through: pushed.cursor,
            records: pushed.records_received,
            bytes,
        })?;
    } else {
        let names = Names {
            stores: vec![&store],
            vs,
        };
        out(format!(
            "exported volume set {} from {} (store {}) to {}",
            names.volume_set(),
            dir.display(),
            pushed.source.map(short).unwrap_or_else(|| "-".into()),
            a.out.display()
        ));
        out(format!(
            "  {} of its LSNs {} … {}, {} ({} bytes)",
            plural(pushed.records_received, "record", "records"),
            a.since + 1,
            pushed.cursor,
            human_bytes(bytes),
            thousands(bytes)
        ));
        out(format!(
            "through LSN {}: once the importer has imported this bundle, its next export from here should use \
             --since {}",
            pushed.cursor, pushed.cursor
        ));
    }
    Ok(EXIT_OK)
}

// ---- import ------------------------------------------------------------------------------

/// The one volume set a bundle holds, as a place to look a name up in.
struct BundleCatalog<'a>(&'a Batch);

impl Catalog for BundleCatalog<'_> {
    fn volume_sets(&self) -> Vec<VsEntry> {
        let v = &self.0.volume_set;
        vec![VsEntry {
            id: v.id,
            name: v.name.clone(),
            prefix: v.prefix.clone(),
        }]
    }
    fn snapshots(&self) -> Vec<(SnapshotId, VolumeSetId)> {
        Vec::new()
    }
    fn branches(&self) -> Vec<resolve::BranchEntry> {
        Vec::new()
    }
    fn snapshot_name(&self, _: SnapshotId) -> Option<String> {
        None
    }
}

#[derive(Serialize)]
struct BundleJson {
    source: StoreId,
    volume_set: VolumeSetId,
    after: Lsn,
    through: Lsn,
    records: u64,
}

#[derive(Serialize)]
struct ImportJson<'a> {
    dir: &'a Path,
    file: &'a Path,
    store_id: Option<StoreId>,
    prefer: &'static str,
    bundle: BundleJson,
    applied: &'a ApplyReport,
}

fn open_bundle(file: &Path, dir: &Path) -> Result<BundleIn, Fail> {
    if !file.is_file() {
        return Err(Fail::usage(format!(
            "no bundle file at {}; make one with `mdslog export`",
            file.display()
        )));
    }
    BundleIn::open(file).map_err(|e| match e {
        Error::Io { .. } => Fail::usage(format!("cannot read the bundle: {e}")),
        e => sync_fail(e, dir),
    })
}

pub fn import(a: ImportArgs) -> CmdResult {
    let dir = a.store.dir.as_path();
    let file = a.file.as_path();
    // The bundle is checked in full before the store is opened (and possibly given its
    // identity): a damaged bundle changes nothing.
    let bundle = open_bundle(file, dir)?;
    let batch = bundle.batch();
    let store = open_writer(dir, a.actor.name(), false)?;
    let vs = match &a.volume_set {
        None => batch.volume_set.id,
        Some(q) => {
            let st = store.read().map_err(|e| Fail::store(e, dir))?;
            let here = format!("{}", dir.display());
            let there = format!("the bundle {}", file.display());
            resolve::volume_set_first(&[(&here, &*st), (&there, &BundleCatalog(batch))], q)?
        }
    };
    let applied = match a.prefer {
        Prefer::Theirs => {
            // Pulling from the bundle: its value wins.
            let r = sync_with(
                &store,
                &bundle,
                vs,
                SyncMode::PullOnly,
                SyncOptions::default(),
            )
            .map_err(|e| sync_fail(e, dir))?;
            r.pulled
                .ok_or_else(|| Fail::usage("the bundle held nothing to apply"))?
        }
        Prefer::Ours => {
            if vs != batch.volume_set.id {
                return Err(sync_fail(
                    Error::Bundle {
                        file: file.to_path_buf(),
                        offset: 0,
                        problem: BundleProblem::WrongVolumeSet {
                            expected: vs,
                            found: batch.volume_set.id,
                        },
                    },
                    dir,
                ));
            }
            store
                .apply_batch(batch, Winner::Receiver)
                .map_err(|e| sync_fail(e, dir))?
        }
    };
    let sid = store_id_of(&store, dir)?;
    let prefer = match a.prefer {
        Prefer::Ours => "ours",
        Prefer::Theirs => "theirs",
    };
    if a.json {
        json(&ImportJson {
            dir,
            file,
            store_id: sid,
            prefer,
            bundle: BundleJson {
                source: batch.source,
                volume_set: batch.volume_set.id,
                after: batch.after,
                through: batch.through,
                records: batch.records.len() as u64,
            },
            applied: &applied,
        })?;
    } else {
        let names = Names {
            stores: vec![&store],
            vs,
        };
        let vsname = vs_path(&batch.volume_set.prefix, &batch.volume_set.name);
        out(format!(
            "imported {} into {} (store {}), preferring {prefer}",
            file.display(),
            dir.display(),
            sid.map(short).unwrap_or_else(|| "-".into())
        ));
        out(format!(
            "  bundle: volume set {vsname:?} ({}) from store {}, {} of its LSNs {} … {}",
            short(batch.volume_set.id),
            short(batch.source),
            plural(batch.records.len() as u64, "record", "records"),
            batch.after.0 + 1,
            batch.through
        ));
        out(apply_line("  applied", &applied));
        let (kept, lost) = match a.prefer {
            Prefer::Ours => ("this store", "the bundle"),
            Prefer::Theirs => ("the bundle", "this store"),
        };
        print_conflicts(&applied.conflicts, &Sides { kept, lost }, &names);
        if a.prefer == Prefer::Ours && !applied.conflicts.is_empty() {
            out(format!(
                "  (recorded here: this store's next export carries them back to store {}; imported there with \
                 --prefer theirs, it adopts this store's values)",
                short(batch.source)
            ));
        }
        let ds: Vec<Diverged> = applied
            .divergences
            .iter()
            .map(|d| diverged(d, "this store's", "the bundle's"))
            .collect();
        print_divergences(&ds, &names);
        let missing = dedup_missing(applied.missing.iter().cloned());
        print_missing(
            &missing,
            &names,
            "import a bundle exported with --since 0 to send whole histories",
        );
        out(format!(
            "cursor: {} holds store {}'s records of {vsname:?} through its LSN {}; the next export from that \
             store for this one should use --since {}",
            dir.display(),
            short(batch.source),
            applied.cursor,
            applied.cursor
        ));
        out(summary_line(
            "imported",
            applied.conflicts.len(),
            ds.len(),
            missing.len(),
        ));
    }
    store.close().map_err(|e| Fail::store(e, dir))?;
    Ok(EXIT_OK)
}

// ---- cursors -----------------------------------------------------------------------------

#[derive(Serialize)]
struct CursorJson {
    peer: StoreId,
    volume_set: VolumeSetId,
    /// The volume set's name here (`null` if this store does not hold it).
    volume_set_name: Option<String>,
    lsn: Lsn,
}

#[derive(Serialize)]
struct CursorsJson<'a> {
    dir: &'a Path,
    store_id: Option<StoreId>,
    cursors: Vec<CursorJson>,
}

pub fn cursors(dir: &Path, as_json: bool) -> CmdResult {
    let store = open_reader(dir)?;
    let sid = store_id_of(&store, dir)?;
    let list: Vec<CursorJson> = store
        .sync_cursors()
        .map_err(|e| Fail::store(e, dir))?
        .into_iter()
        .map(|(peer, vs, lsn)| CursorJson {
            peer,
            volume_set: vs,
            volume_set_name: store
                .get_volume_set(vs)
                .ok()
                .map(|v| vs_path(&v.prefix, &v.name)),
            lsn,
        })
        .collect();
    if as_json {
        json(&CursorsJson {
            dir,
            store_id: sid,
            cursors: list,
        })?;
        return Ok(EXIT_OK);
    }
    match sid {
        Some(id) => out(format!("store {id} ({})", dir.display())),
        None => out(format!(
            "store without an identity yet ({}): it gets one when first opened for writing",
            dir.display()
        )),
    }
    if list.is_empty() {
        out("no sync cursors: this store has not received records from another store");
        return Ok(EXIT_OK);
    }
    out(format!(
        "{:<38}{:<30}{:>10}",
        "PEER STORE", "VOLUME SET", "LSN"
    ));
    for c in &list {
        let name = match &c.volume_set_name {
            Some(n) => format!("{n} ({})", short(c.volume_set)),
            None => c.volume_set.to_string(),
        };
        out(format!(
            "{:<38}{:<30}{:>10}",
            c.peer.to_string(),
            name,
            c.lsn.0
        ));
    }
    Ok(EXIT_OK)
}
