//! The inspection commands: verify, stats, dump, tree, history, show and repair. All but
//! repair open the store read-only (no lock): they work beside a live writer and on copies.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use mdslog::event::{kind_name, Envelope, KINDS};
use mdslog::log::format::{frame_bytes, SEGMENT_HEADER_BYTES};
use mdslog::log::fs::DirStorage;
use mdslog::log::verify::{repair as log_repair, verify as log_verify};
use mdslog::log::Log;
use mdslog::state::State;
use mdslog::{
    Branch, BranchQuery, Corruption, LogOptions, Lsn, Snapshot, SnapshotId, SnapshotQuery, SortBy,
    Store, StoreOptions, Timestamp, VolumeSet, VolumeSetId,
};
use serde::Serialize;
use serde_json::json;

use crate::cli::DumpArgs;
use crate::output::{
    confirm, human_bytes, human_time, json, out, parse_at, plural, progress, rfc3339, short,
    spinner, thousands, At, CmdResult, Fail, RecordLine, EXIT_DAMAGED, EXIT_OK,
};
use crate::records::{scan, summary, LogIndex, Membership, Tracker};
use crate::resolve::{self, Kinds, Object};

/// Opens a store read-only (no lock), replaying it.
pub fn open_read_only(dir: &Path) -> Result<Store, Fail> {
    let pb = spinner("replaying");
    let r = Store::open_read_only(dir, StoreOptions::default()).map_err(|e| Fail::store(e, dir));
    pb.finish_and_clear();
    r
}

fn storage(dir: &Path) -> Result<DirStorage, Fail> {
    DirStorage::new(dir, false).map_err(|e| {
        Fail::usage(format!(
            "no store directory at {} ({e}); give the store directory as the first argument or set MDSLOG_DIR",
            dir.display()
        ))
    })
}

/// The state now, or as of `--at`.
pub enum StateAt<'a> {
    Now(std::sync::RwLockReadGuard<'a, State>),
    Then(Box<State>),
}

impl std::ops::Deref for StateAt<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        match self {
            StateAt::Now(g) => g,
            StateAt::Then(s) => s,
        }
    }
}

/// The state of `store` now or as of a point in time given to `--at`.
pub fn state_at<'a>(store: &'a Store, at: Option<&str>) -> Result<StateAt<'a>, Fail> {
    let dir = store.log().location();
    let Some(at) = at else {
        return Ok(StateAt::Now(
            store.read().map_err(|e| Fail::store(e, &dir))?,
        ));
    };
    let at = parse_at(at).map_err(Fail::usage)?;
    let pb = spinner("replaying");
    let st = match at {
        At::Lsn(l) => store.as_of(l),
        At::Time(t) => store.as_of_time(t),
    }
    .map_err(|e| Fail::store(e, &dir));
    pb.finish_and_clear();
    Ok(StateAt::Then(Box::new(st?)))
}

// ---- verify ------------------------------------------------------------------------------

/// One thing wrong, as `verify` reports it.
#[derive(Serialize, Debug)]
struct Finding {
    /// The segment file (none for a finding about the replayed state).
    file: Option<String>,
    /// Byte offset in that file of the damaged header, frame or footer.
    offset: Option<u64>,
    /// The LSN expected there, when known.
    lsn: Option<u64>,
    /// What is wrong.
    what: String,
}

impl Finding {
    fn of(c: &Corruption) -> Finding {
        Finding {
            file: Some(c.file.display().to_string()),
            offset: Some(c.offset),
            lsn: c.lsn.map(|l| l.0),
            what: c.kind.to_string(),
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.file, self.offset) {
            (Some(file), Some(off)) => write!(f, "{file} at byte {off}")?,
            (Some(file), None) => write!(f, "{file}")?,
            _ => write!(f, "replayed state")?,
        }
        if let Some(l) = self.lsn {
            write!(f, " (LSN {l})")?;
        }
        write!(f, ": {}", self.what)
    }
}

#[derive(Serialize)]
struct ReplayOut {
    records: u64,
    applied_lsn: u64,
    counts: mdslog::state::query::Counts,
}

/// Replays every record through the projections, finding records that do not decode
/// (with their file and offset), then checks the invariants of the state it built.
fn replay_check(dir: &Path, findings: &mut Vec<Finding>) -> Result<ReplayOut, Fail> {
    let log = Log::open_read_only(dir, LogOptions::default()).map_err(|e| Fail::store(e, dir))?;
    let segments = log.segments();
    let pb = progress(log.durable_lsn().0, "replaying");
    let mut state = State::new();
    let mut seg = 0usize;
    let mut offset = SEGMENT_HEADER_BYTES as u64;
    let mut records = 0u64;
    let mut applying = true;
    let mut it = log.iter_from(Lsn(1));
    loop {
        let r = match it.next_record() {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(e) => {
                match e.corruption() {
                    Some(c) => findings.push(Finding::of(c)),
                    None => return Err(Fail::store(e, dir)),
                }
                applying = false;
                break;
            }
        };
        while seg + 1 < segments.len() && r.lsn >= segments[seg + 1].first_lsn {
            seg += 1;
            offset = SEGMENT_HEADER_BYTES as u64;
        }
        let file = segments
            .get(seg)
            .map(|s| dir.join(&s.file_name).display().to_string());
        match Envelope::decode(r.lsn, r.kind, r.payload) {
            Ok(env) if applying => state.apply(r.lsn, &env),
            Ok(_) => {}
            Err(e) => {
                findings.push(Finding {
                    file,
                    offset: Some(offset),
                    lsn: Some(r.lsn.0),
                    what: e.to_string(),
                });
                // Later records were validated against a state this one was part of.
                applying = false;
            }
        }
        offset += frame_bytes(r.payload.len()) as u64;
        records += 1;
        if records.is_multiple_of(4096) {
            pb.set_position(records);
        }
    }
    pb.finish_and_clear();
    if applying {
        for what in check_invariants(&state) {
            findings.push(Finding {
                file: None,
                offset: None,
                lsn: Some(state.applied_lsn().0),
                what,
            });
        }
    }
    Ok(ReplayOut {
        records,
        applied_lsn: state.applied_lsn().0,
        counts: state.counts(),
    })
}

/// The invariants of the projections, checked on the whole replayed state. (A leaf
/// without a branch is not checked: `delete_snapshots` without a new tip may leave one.)
fn check_invariants(st: &State) -> Vec<String> {
    let d = st.canonical_dump();
    let mut bad = Vec::new();
    let vss: HashSet<VolumeSetId> = d.volume_sets.iter().map(|v| v.id).collect();
    let snaps: HashMap<SnapshotId, &Snapshot> = d.snapshots.iter().map(|s| (s.id, s)).collect();
    for s in &d.snapshots {
        if !vss.contains(&s.volume_set) {
            bad.push(format!(
                "snapshot {} belongs to a missing volume set {}",
                s.id, s.volume_set
            ));
        }
        if let Some(p) = s.parent {
            match snaps.get(&p) {
                None => bad.push(format!(
                    "snapshot {} has a missing parent {p} (orphaned)",
                    s.id
                )),
                Some(ps) if ps.volume_set != s.volume_set => bad.push(format!(
                    "snapshot {} and its parent {p} are in different volume sets",
                    s.id
                )),
                _ => {}
            }
        }
    }
    let mut names = HashSet::new();
    for b in &d.branches {
        if !snaps.contains_key(&b.tip) {
            bad.push(format!(
                "branch {} ({:?}) ends at a missing snapshot {}",
                b.id, b.name, b.tip
            ));
        }
        if !b.name.is_empty() && !names.insert((b.volume_set, b.name.clone())) {
            bad.push(format!(
                "two branches are named {:?} in volume set {}",
                b.name, b.volume_set
            ));
        }
    }
    let held: u64 = d.volume_sets.iter().map(|v| v.num_snapshots).sum();
    if held != d.snapshots.len() as u64 {
        bad.push(format!(
            "volume sets hold {held} snapshots, the store {}",
            d.snapshots.len()
        ));
    }
    bad.truncate(100);
    bad
}

pub fn verify(dir: &Path, as_json: bool) -> CmdResult {
    let st = storage(dir)?;
    let pb = spinner("checking segments");
    let report = log_verify(&st).map_err(|e| Fail::store(e, dir));
    pb.finish_and_clear();
    let report = report?;
    let mut findings: Vec<Finding> = report.findings.iter().map(Finding::of).collect();
    let replay = if report.is_clean() {
        Some(replay_check(dir, &mut findings)?)
    } else {
        None
    };
    let clean = findings.is_empty();
    let bytes: u64 = report.segments.iter().map(|s| s.bytes).sum();
    let torn = report
        .segments
        .last()
        .and_then(|s| s.torn_tail.map(|t| (s.file.clone(), t)));
    if as_json {
        let segments: Vec<_> = report
            .segments
            .iter()
            .map(|s| {
                json!({
                    "file": s.file.display().to_string(),
                    "id": s.id.0,
                    "first_lsn": s.first_lsn.0,
                    "last_lsn": s.last_lsn.0,
                    "records": s.records,
                    "sealed": s.sealed,
                    "bytes": s.bytes,
                    "torn_tail": s.torn_tail.map(|(offset, bytes)| json!({"offset": offset, "bytes": bytes})),
                })
            })
            .collect();
        json(&json!({
            "dir": dir.display().to_string(),
            "clean": clean,
            "segments": segments,
            "records": report.records,
            "last_lsn": report.last_lsn.0,
            "findings": findings,
            "replay": replay,
        }))?;
    } else {
        let sealed = report.segments.iter().filter(|s| s.sealed).count() as u64;
        out(format!(
            "segments   {} ({} sealed), {}",
            thousands(report.segments.len() as u64),
            thousands(sealed),
            human_bytes(bytes)
        ));
        let intact = if report.is_clean() {
            ""
        } else {
            " in the segments that check out"
        };
        out(format!(
            "records    {}{intact} (last LSN {})",
            thousands(report.records),
            report.last_lsn
        ));
        if let Some((file, (offset, n))) = &torn {
            out(format!(
                "torn tail  {} at byte {offset} of {}: harmless, the next writer's open or `mdslog repair {}` cuts it",
                plural(*n, "byte", "bytes"),
                file.display(),
                dir.display()
            ));
        }
        if let Some(r) = &replay {
            let c = r.counts;
            out(format!(
                "replay     {} through the projections: {}, {}, {}, {}, {}",
                plural(r.records, "record", "records"),
                plural(c.volume_sets, "volume set", "volume sets"),
                plural(c.snapshots, "snapshot", "snapshots"),
                plural(c.branches, "branch", "branches"),
                plural(c.bushes, "bush", "bushes"),
                plural(c.volumes, "volume", "volumes"),
            ));
        } else {
            out("replay     skipped: the log itself is damaged");
        }
        for f in &findings {
            out(format!("FINDING    {f}"));
        }
        if clean {
            out("clean");
        } else {
            out(format!(
                "{}; `mdslog repair --salvage {}` keeps the longest valid prefix (what it cuts is saved beside the log)",
                plural(findings.len() as u64, "finding", "findings"),
                dir.display()
            ));
        }
    }
    Ok(if clean { EXIT_OK } else { EXIT_DAMAGED })
}

// ---- stats -------------------------------------------------------------------------------

#[derive(Serialize)]
struct RecordAt {
    lsn: u64,
    time: String,
    time_us: i64,
    actor: Option<String>,
}

fn record_at(log: &Log, lsn: Lsn, dir: &Path) -> Result<Option<RecordAt>, Fail> {
    if lsn == Lsn::ZERO {
        return Ok(None);
    }
    let mut it = log.iter_from(lsn);
    let Some(r) = it.next_record().map_err(|e| Fail::store(e, dir))? else {
        return Ok(None);
    };
    let env = Envelope::decode(r.lsn, r.kind, r.payload).map_err(|e| Fail::store(e, dir))?;
    Ok(Some(RecordAt {
        lsn: r.lsn.0,
        time: rfc3339(env.time),
        time_us: env.time.0,
        actor: env.actor,
    }))
}

pub fn stats(dir: &Path, as_json: bool) -> CmdResult {
    let store = open_read_only(dir)?;
    let log = store.log();
    let counts = store.counts().map_err(|e| Fail::store(e, dir))?;
    let segments = log.segments();
    let bytes: u64 = segments.iter().map(|s| s.bytes).sum();
    let sealed = segments.iter().filter(|s| s.sealed).count();
    let last = log.durable_lsn();
    let first_lsn = segments
        .first()
        .map(|s| s.first_lsn)
        .filter(|_| last > Lsn::ZERO)
        .unwrap_or(Lsn::ZERO);
    // Records by kind: a scan of the frames, no decoding.
    let mut by_kind: BTreeMap<u16, u64> = BTreeMap::new();
    let pb = progress(last.0, "counting");
    let mut it = log.iter_from(Lsn(1));
    let mut n = 0u64;
    while let Some(r) = it.next_record().map_err(|e| Fail::store(e, dir))? {
        *by_kind.entry(r.kind.0).or_default() += 1;
        n += 1;
        if n.is_multiple_of(4096) {
            pb.set_position(n);
        }
    }
    pb.finish_and_clear();
    let first = record_at(log, first_lsn, dir)?;
    let last_rec = record_at(log, last, dir)?;
    let kind_label = |k: u16| {
        kind_name(mdslog::RecordKind(k))
            .map(str::to_string)
            .unwrap_or_else(|| format!("kind-{k}"))
    };
    let torn = store.recovery_report().torn_tail.clone();
    if as_json {
        let kinds: BTreeMap<String, u64> =
            by_kind.iter().map(|(k, n)| (kind_label(*k), *n)).collect();
        json(&json!({
            "dir": dir.display().to_string(),
            "segments": {"count": segments.len(), "sealed": sealed, "bytes": bytes},
            "records": {"count": n, "first_lsn": first_lsn.0, "last_lsn": last.0, "by_kind": kinds},
            "first": first,
            "last": last_rec,
            "objects": counts,
            "torn_tail": torn.map(|t| json!({"file": t.file.display().to_string(), "offset": t.offset, "bytes": t.bytes})),
        }))?;
        return Ok(EXIT_OK);
    }
    out(format!("store       {}", dir.display()));
    out(format!(
        "segments    {} ({} sealed), {}",
        thousands(segments.len() as u64),
        thousands(sealed as u64),
        human_bytes(bytes)
    ));
    out(format!("records     {}", thousands(n)));
    let at = |r: &Option<RecordAt>, t: Option<Timestamp>| match (r, t) {
        (Some(r), Some(t)) => format!(
            "LSN {} at {} by {}",
            r.lsn,
            human_time(t),
            r.actor.as_deref().unwrap_or("-")
        ),
        _ => "-".to_string(),
    };
    out(format!(
        "first       {}",
        at(&first, first.as_ref().map(|r| Timestamp(r.time_us)))
    ));
    out(format!(
        "last        {}",
        at(&last_rec, last_rec.as_ref().map(|r| Timestamp(r.time_us)))
    ));
    out(format!(
        "objects     {}, {}, {}, {}, {}",
        plural(counts.volume_sets, "volume set", "volume sets"),
        plural(counts.snapshots, "snapshot", "snapshots"),
        plural(counts.branches, "branch", "branches"),
        plural(counts.bushes, "bush", "bushes"),
        plural(counts.volumes, "volume", "volumes"),
    ));
    if let Some(t) = torn {
        out(format!(
            "torn tail   {} at byte {} of {} (not shown; the next writer's open or `mdslog repair` cuts it)",
            plural(t.bytes, "byte", "bytes"),
            t.offset,
            t.file.display()
        ));
    }
    if !by_kind.is_empty() {
        out("by kind");
        for (k, c) in &by_kind {
            out(format!("  {:<22}{:>12}", kind_label(*k), thousands(*c)));
        }
    }
    Ok(EXIT_OK)
}

// ---- dump and history --------------------------------------------------------------------

fn parse_kinds(names: &[String]) -> Result<Option<HashSet<u16>>, Fail> {
    if names.is_empty() {
        return Ok(None);
    }
    let mut out = HashSet::new();
    for n in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let k = KINDS
            .iter()
            .find(|(k, name)| *name == n || k.to_string() == n)
            .map(|(k, _)| *k)
            .ok_or_else(|| {
                let all: Vec<&str> = KINDS.iter().map(|(_, n)| *n).collect();
                Fail::usage(format!(
                    "unknown record kind {n:?}; the kinds are {}",
                    all.join(", ")
                ))
            })?;
        out.insert(k);
    }
    Ok(Some(out))
}

fn print_record(
    lsn: Lsn,
    kind: mdslog::RecordKind,
    env: &Envelope,
    as_json: bool,
) -> Result<(), Fail> {
    if as_json {
        out(RecordLine::new(lsn, kind, env).to_json()?);
    } else {
        out(format!(
            "{:>8}  {}  {:<10}  {:<20}  {}",
            lsn.0,
            human_time(env.time),
            env.actor.as_deref().unwrap_or("-"),
            kind_name(kind).unwrap_or("unknown"),
            summary(&env.event)
        ));
    }
    Ok(())
}

pub fn dump(a: &DumpArgs) -> CmdResult {
    let dir = a.store.dir.as_path();
    let log = Log::open_read_only(dir, LogOptions::default()).map_err(|e| Fail::store(e, dir))?;
    let kinds = parse_kinds(&a.kind)?;
    let from = Lsn(a.from.unwrap_or(1).max(1));
    let to = a.to.map(Lsn);
    if let Some(t) = to {
        if t < from {
            return Err(Fail::usage(format!(
                "--to {t} is before --from {from}; give --from LSN at or before --to LSN"
            )));
        }
    }
    let keep_kind = |k: mdslog::RecordKind| kinds.as_ref().is_none_or(|ks| ks.contains(&k.0));
    match &a.volume_set {
        None => scan(&log, from, to, "dumping", |lsn, kind, env| {
            if keep_kind(kind) {
                print_record(lsn, kind, &env, a.json)?;
            }
            Ok(true)
        })?,
        Some(q) => {
            let index = LogIndex::build(&log)?;
            let vs = resolve::volume_set(&index, q)?;
            let mut members = Membership::default();
            // Placing a record that names only a snapshot needs every record before it.
            scan(&log, Lsn(1), to, "dumping", |lsn, kind, env| {
                let about = members.apply(&env.event);
                if lsn >= from && keep_kind(kind) && about.contains(&vs) {
                    print_record(lsn, kind, &env, a.json)?;
                }
                Ok(true)
            })?
        }
    }
    Ok(EXIT_OK)
}

fn describe(index: &LogIndex, o: Object) -> String {
    match o {
        Object::VolumeSet(v) => format!("volume set {:?} ({v})", index.vs_name(v)),
        Object::Snapshot(s) => {
            let (vs, name) = index
                .snapshots
                .get(&s)
                .cloned()
                .unwrap_or((VolumeSetId(uuid::Uuid::nil()), String::new()));
            let name = if name.is_empty() {
                String::new()
            } else {
                format!(" {name:?}")
            };
            format!("snapshot{name} ({s}) in volume set {:?}", index.vs_name(vs))
        }
        Object::Branch(vs, b) => {
            let names = index
                .branches
                .get(&b)
                .map(|x| x.names.join("\" → \""))
                .unwrap_or_default();
            format!(
                "branch \"{names}\" ({b}) in volume set {:?}",
                index.vs_name(vs)
            )
        }
    }
}

pub fn history(dir: &Path, id: &str, all: bool, as_json: bool) -> CmdResult {
    let log = Log::open_read_only(dir, LogOptions::default()).map_err(|e| Fail::store(e, dir))?;
    let index = LogIndex::build(&log)?;
    let target = resolve::resolve(&index, id, Kinds::ANY)?;
    if !as_json {
        out(format!("history of {}", describe(&index, target)));
    }
    let mut tracker = Tracker::new(target, &index, all);
    let mut n = 0u64;
    scan(&log, Lsn(1), None, "searching", |lsn, kind, env| {
        if tracker.touches(&env.event) {
            n += 1;
            print_record(lsn, kind, &env, as_json)?;
        }
        Ok(true)
    })?;
    if !as_json {
        out(plural(n, "record", "records"));
    }
    Ok(EXIT_OK)
}

// ---- tree --------------------------------------------------------------------------------

fn snapshot_label(s: &Snapshot) -> String {
    let name = if s.name.is_empty() {
        String::new()
    } else {
        format!(" {:?}", s.name)
    };
    let blob = if s.blob.is_nil() { "no blob" } else { "blob" };
    let tip = match (&s.branch_name, s.is_tip) {
        (Some(b), _) => format!("  [{b}]"),
        (None, true) => "  [unnamed branch]".to_string(),
        _ => String::new(),
    };
    format!(
        "{}{name}  depth {}  {}  {blob}{tip}",
        short(s.id),
        s.depth,
        human_bytes(s.size)
    )
}

/// Runs of more plain snapshots (one child, no branch ending there) than this are elided.
const ELIDE_RUN: usize = 6;

fn draw_tree(snaps: &[Snapshot], full: bool) -> Vec<String> {
    let index: HashMap<SnapshotId, usize> =
        snaps.iter().enumerate().map(|(i, s)| (s.id, i)).collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); snaps.len()];
    let mut roots = Vec::new();
    for (i, s) in snaps.iter().enumerate() {
        match s.parent.and_then(|p| index.get(&p)) {
            Some(&p) => children[p].push(i),
            None => roots.push(i),
        }
    }
    let plain = |i: usize| children[i].len() == 1 && !snaps[i].is_tip;
    let mut lines = Vec::new();
    // (snapshot, what goes before its label, what goes before the lines below it)
    let mut stack: Vec<(usize, String, String)> = Vec::new();
    let push_kids = |stack: &mut Vec<(usize, String, String)>, kids: &[usize], cont: &str| {
        if kids.len() == 1 {
            stack.push((kids[0], cont.to_string(), cont.to_string()));
            return;
        }
        for (k, kid) in kids.iter().enumerate().rev() {
            let last = k + 1 == kids.len();
            let lead = format!("{cont}{}", if last { "└─ " } else { "├─ " });
            let next = format!("{cont}{}", if last { "   " } else { "│  " });
            stack.push((*kid, lead, next));
        }
    };
    push_kids(&mut stack, &roots, "");
    while let Some((i, lead, cont)) = stack.pop() {
        lines.push(format!("{lead}{}", snapshot_label(&snaps[i])));
        let kids = &children[i];
        if !full && kids.len() == 1 {
            // Measure the run of plain snapshots below this one.
            let mut run = Vec::new();
            let mut j = kids[0];
            while plain(j) {
                run.push(j);
                j = children[j][0];
            }
            if run.len() > ELIDE_RUN {
                for &r in &run[..2] {
                    lines.push(format!("{cont}{}", snapshot_label(&snaps[r])));
                }
                let hidden = run.len() - 4;
                let (a, b) = (snaps[run[2]].depth, snaps[run[run.len() - 3]].depth);
                lines.push(format!(
                    "{cont}┆  … {} (depth {a}–{b}; --full shows them)",
                    plural(hidden as u64, "snapshot", "snapshots")
                ));
                stack.push((run[run.len() - 2], cont.clone(), cont.clone()));
                continue;
            }
        }
        push_kids(&mut stack, kids, &cont);
    }
    lines
}

fn vs_path(v: &VolumeSet) -> String {
    if v.prefix.is_empty() {
        v.name.clone()
    } else {
        format!("{}/{}", v.prefix, v.name)
    }
}

pub fn tree(dir: &Path, vs_query: &str, at: Option<&str>, full: bool, as_json: bool) -> CmdResult {
    let store = open_read_only(dir)?;
    let st = state_at(&store, at)?;
    let vs = resolve::volume_set(&*st, vs_query)?;
    let v = st.get_volume_set(vs).map_err(|e| Fail::store(e, dir))?;
    let snaps = st
        .get_snapshots(&SnapshotQuery {
            volume_set: Some(vs),
            sort: SortBy::Time,
            ..Default::default()
        })
        .map_err(|e| Fail::store(e, dir))?;
    let branches = st
        .get_branches(&BranchQuery::all(vs))
        .map_err(|e| Fail::store(e, dir))?;
    if as_json {
        json(&json!({
            "as_of_lsn": st.applied_lsn().0,
            "volume_set": v,
            "branches": branches,
            "snapshots": snaps,
        }))?;
        return Ok(EXIT_OK);
    }
    out(format!(
        "volume set {:?} ({}) as of LSN {}: {}, {}",
        vs_path(&v),
        v.id,
        st.applied_lsn(),
        plural(snaps.len() as u64, "snapshot", "snapshots"),
        plural(branches.len() as u64, "branch", "branches")
    ));
    for l in draw_tree(&snaps, full) {
        out(l);
    }
    Ok(EXIT_OK)
}

// ---- show --------------------------------------------------------------------------------

fn attrs_line(a: &mdslog::Attrs) -> String {
    if a.is_empty() {
        return "-".into();
    }
    a.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

/// Prints a volume set for people.
pub fn print_volume_set(v: &VolumeSet, branches: &[Branch]) {
    out(format!("volume set   {}", vs_path(v)));
    out(format!("id           {}", v.id));
    out(format!("description  {}", or_dash(&v.description)));
    out(format!(
        "owner        {} (creator {})",
        or_dash(&v.owner),
        or_dash(&v.creator)
    ));
    out(format!("created      {}", human_time(v.created)));
    out(format!("modified     {}", human_time(v.last_modified)));
    out(format!("size         {}", human_bytes(v.size)));
    let last = v
        .last_snapshot_time
        .map(|t| format!(", the last at {}", human_time(t)))
        .unwrap_or_default();
    out(format!("snapshots    {}{last}", thousands(v.num_snapshots)));
    out(format!("attributes   {}", attrs_line(&v.attrs)));
    out(format!("branches     {}", thousands(v.num_branches)));
    for b in branches {
        let depth = b.tip_snapshot.as_ref().map(|t| t.depth).unwrap_or(0);
        let name = if b.name.is_empty() {
            "(unnamed)"
        } else {
            &b.name
        };
        out(format!(
            "  {name:<20} tip {}  depth {depth}  branch {}",
            short(b.tip),
            short(b.id)
        ));
    }
}

/// Prints a snapshot for people.
pub fn print_snapshot(s: &Snapshot, vs_name: &str, volumes: u32) {
    out(format!("snapshot     {}", s.id));
    out(format!("name         {}", or_dash(&s.name)));
    out(format!("volume set   {vs_name} ({})", s.volume_set));
    out(format!(
        "parent       {}",
        s.parent
            .map(|p| p.to_string())
            .unwrap_or_else(|| "none (a root)".into())
    ));
    out(format!("depth        {}", s.depth));
    out(format!("children     {}", s.num_children));
    let tip = match (&s.branch_name, s.is_tip) {
        (Some(b), _) => format!("yes, of branch {b:?}"),
        (None, true) => "yes, of an unnamed branch".into(),
        _ => "no".into(),
    };
    out(format!("tip          {tip}"));
    out(format!("description  {}", or_dash(&s.description)));
    out(format!(
        "owner        {} (creator {})",
        or_dash(&s.owner),
        or_dash(&s.creator)
    ));
    out(format!("created      {}", human_time(s.created)));
    out(format!("modified     {}", human_time(s.last_modified)));
    out(format!("size         {}", human_bytes(s.size)));
    out(format!(
        "blob         {}",
        if s.blob.is_nil() {
            "none in this store"
        } else {
            &s.blob.0
        }
    ));
    out(format!("attributes   {}", attrs_line(&s.attrs)));
    out(format!("volumes      {volumes}"));
}

/// Prints a branch for people.
pub fn print_branch(b: &Branch, vs_name: &str) {
    out(format!(
        "branch       {}",
        if b.name.is_empty() {
            "(unnamed)"
        } else {
            &b.name
        }
    ));
    out(format!("id           {}", b.id));
    out(format!("volume set   {vs_name} ({})", b.volume_set));
    out(format!("tip          {}", b.tip));
    if let Some(t) = &b.tip_snapshot {
        out(format!(
            "depth        {} (snapshots from the root to the tip)",
            t.depth
        ));
        out(format!("tip name     {}", or_dash(&t.name)));
        out(format!("tip created  {}", human_time(t.created)));
        out(format!("tip size     {}", human_bytes(t.size)));
    }
    out(format!(
        "tip children {}",
        if b.has_child {
            "yes (other branches fork off it)"
        } else {
            "none"
        }
    ));
}

pub fn show(dir: &Path, id: &str, at: Option<&str>, as_json: bool) -> CmdResult {
    let store = open_read_only(dir)?;
    let st = state_at(&store, at)?;
    let lsn = st.applied_lsn().0;
    let err = |e| Fail::store(e, dir);
    let vs_name = |v: VolumeSetId| {
        st.get_volume_set(v)
            .map(|v| vs_path(&v))
            .unwrap_or_else(|_| short(v))
    };
    match resolve::resolve(&*st, id, Kinds::ANY)? {
        Object::VolumeSet(v) => {
            let vs = st.get_volume_set(v).map_err(err)?;
            let branches = st.get_branches(&BranchQuery::all(v)).map_err(err)?;
            if as_json {
                json(
                    &json!({"type": "volume-set", "as_of_lsn": lsn, "object": vs, "branches": branches}),
                )?;
            } else {
                print_volume_set(&vs, &branches);
                out(format!("as of        LSN {lsn}"));
            }
        }
        Object::Snapshot(s) => {
            let snap = st.get_snapshot(s).map_err(err)?;
            let volumes = st.num_volumes(s).map_err(err)?;
            if as_json {
                json(
                    &json!({"type": "snapshot", "as_of_lsn": lsn, "object": snap, "volumes": volumes}),
                )?;
            } else {
                print_snapshot(&snap, &vs_name(snap.volume_set), volumes);
                out(format!("as of        LSN {lsn}"));
            }
        }
        Object::Branch(v, b) => {
            let br = st.get_branch(v, b).map_err(err)?;
            if as_json {
                json(&json!({"type": "branch", "as_of_lsn": lsn, "object": br}))?;
            } else {
                print_branch(&br, &vs_name(v));
                out(format!("as of        LSN {lsn}"));
            }
        }
    }
    Ok(EXIT_OK)
}

// ---- repair ------------------------------------------------------------------------------

pub fn repair(dir: &Path, salvage: bool, yes: bool) -> CmdResult {
    let st = storage(dir)?;
    let report = log_verify(&st).map_err(|e| Fail::store(e, dir))?;
    let d = dir.display();
    let plan = match report.findings.first() {
        None => match report.segments.last().and_then(|s| s.torn_tail.map(|t| (s, t))) {
            None => {
                out(format!("nothing to repair: the log is clean (last LSN {})", report.last_lsn));
                return Ok(EXIT_OK);
            }
            Some((s, (offset, bytes))) => format!(
                "cut the torn tail of {}: {} from byte {offset} (saved beside it as *.cut-{offset:016x}); the log keeps LSN 1 … {}",
                s.file.display(),
                plural(bytes, "byte", "bytes"),
                report.last_lsn
            ),
        },
        Some(first) if !salvage => {
            return Err(Fail::damaged(format!(
                "the log is damaged, not just torn ({}); `mdslog repair --salvage {d}` keeps the longest valid prefix, \
                 saving what it cuts beside the log",
                Finding::of(first)
            )));
        }
        Some(first) => {
            let keep = first.lsn.map(|l| l.prev()).unwrap_or(report.last_lsn);
            let later = report.segments.iter().skip_while(|s| s.file != first.file).skip(1).count();
            let cut = if first.offset < SEGMENT_HEADER_BYTES as u64 {
                format!("move {} aside (*.salvaged)", first.file.display())
            } else {
                format!("cut {} from byte {} (saved beside it as *.cut-{:016x})", first.file.display(), first.offset, first.offset)
            };
            let later = if later > 0 { format!(" and move {} after it aside (*.salvaged)", plural(later as u64, "segment", "segments")) } else { String::new() };
            format!(
                "salvage: {cut}{later}; the log keeps LSN 1 … {keep} at most and loses everything after ({})",
                plural(report.findings.len() as u64, "finding", "findings")
            )
        }
    };
    out(format!("plan: {plan}"));
    if !yes && !confirm("repair the log")? {
        return Err(Fail::usage("repair not confirmed; nothing changed"));
    }
    let done = log_repair(&st, salvage).map_err(|e| Fail::store(e, dir))?;
    for (file, offset, bytes, saved) in &done.cut {
        if *offset == 0 {
            out(format!(
                "moved {} ({}) aside as {}",
                file.display(),
                plural(*bytes, "byte", "bytes"),
                saved.display()
            ));
        } else {
            out(format!(
                "cut {} from byte {offset} of {}, saved as {}",
                plural(*bytes, "byte", "bytes"),
                file.display(),
                saved.display()
            ));
        }
    }
    out(format!(
        "the log now ends at LSN {}; `mdslog verify {d}` checks it",
        done.last_lsn
    ));
    Ok(EXIT_OK)
}
