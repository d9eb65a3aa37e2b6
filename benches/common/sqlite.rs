//! The SQLite side of the benchmarks: the original's schema (`reference-semantics.md`),
//! its two configurations, and the same operations as the store's API, in SQL.
//!
//! The schema: text UUID primary keys, attrs in a separate table keyed by object id,
//! volume-set name/prefix/description as reserved attrs. Snapshot name and description are
//! columns here (the reference does not say where the original kept them; the benchmark
//! snapshots carry no attrs, so no attrs rows are written or read for them on either side).
//! Indexes not in the original are marked in `SCHEMA`; each of them only helps SQLite.

use std::path::Path;
use std::time::Duration;

use mdslog::{Snapshot, SnapshotId, VolumeSetId};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{branch_name, snap};

pub const SCHEMA: &str = "
CREATE TABLE volumesets (
    id TEXT PRIMARY KEY,
    creator TEXT NOT NULL,
    creator_name TEXT NOT NULL,
    owner TEXT NOT NULL,
    owner_name TEXT NOT NULL,
    creation_time INTEGER NOT NULL,
    last_modified_time INTEGER NOT NULL,
    size INTEGER NOT NULL
);
CREATE TABLE snapshots (
    id TEXT PRIMARY KEY,
    volumeset_id TEXT NOT NULL,
    parent_id TEXT,
    depth INTEGER NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    creator TEXT NOT NULL,
    creator_name TEXT NOT NULL,
    owner TEXT NOT NULL,
    owner_name TEXT NOT NULL,
    creation_time INTEGER NOT NULL,
    last_modified_time INTEGER NOT NULL,
    size INTEGER NOT NULL,
    blob_id TEXT NOT NULL
);
CREATE TABLE branches (
    id TEXT PRIMARY KEY,
    volumeset_id TEXT NOT NULL,
    name TEXT NOT NULL,
    tip_id TEXT NOT NULL
);
CREATE TABLE attrs (
    id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (id, key)
);
-- NOT in the original schema: without it the child-count subquery of get_branches scans
-- every snapshot once per branch (minutes at 100k snapshots and 1,000 branches).
CREATE INDEX snapshots_parent ON snapshots(parent_id);
-- The original's branches(volumeset_id) index, widened here by the name so that get_tip
-- (volume set + name) is one index probe rather than a scan of the volume set's branches.
CREATE INDEX branches_volumeset ON branches(volumeset_id, name);
-- NOT in the original schema (an assumption, in SQLite's favour): the extend's check that
-- the parent is the tip of a branch is an index probe rather than a scan of all branches.
CREATE INDEX branches_tip ON branches(tip_id);
-- NOT in the original schema: get_snapshots of one owner, newest first, pages through an
-- index rather than scanning and sorting the volume set's snapshots.
CREATE INDEX snapshots_owner ON snapshots(volumeset_id, owner, creation_time);
";

pub const SNAP_COLS: &str = "s.id, s.volumeset_id, s.parent_id, s.depth, s.name, s.description, \
     s.creator, s.creator_name, s.owner, s.owner_name, s.creation_time, \
     s.last_modified_time, s.size, s.blob_id";

pub const INSERT_SNAPSHOT: &str = "INSERT INTO snapshots (id, volumeset_id, parent_id, depth, \
     name, description, creator, creator_name, owner, owner_name, creation_time, \
     last_modified_time, size, blob_id) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

/// A snapshot row as SQLite stores it (text ids).
#[derive(Debug)]
pub struct SnapRow {
    pub id: String,
    pub volume_set: String,
    pub parent: Option<String>,
    pub depth: i64,
    pub name: String,
    pub description: String,
    pub creator: String,
    pub creator_name: String,
    pub owner: String,
    pub owner_name: String,
    pub created: i64,
    pub modified: i64,
    pub size: i64,
    pub blob: String,
}

impl SnapRow {
    pub fn from_snapshot(s: &Snapshot) -> SnapRow {
        SnapRow {
            id: s.id.to_string(),
            volume_set: s.volume_set.to_string(),
            parent: s.parent.map(|p| p.to_string()),
            depth: 0,
            name: s.name.clone(),
            description: s.description.clone(),
            creator: s.creator.clone(),
            creator_name: s.creator_name.clone(),
            owner: s.owner.clone(),
            owner_name: s.owner_name.clone(),
            created: s.created.0,
            modified: s.last_modified.0,
            size: s.size as i64,
            blob: s.blob.0.clone(),
        }
    }

    /// Reads the `SNAP_COLS` columns starting at `at`.
    pub fn read(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<SnapRow> {
        Ok(SnapRow {
            id: r.get(at)?,
            volume_set: r.get(at + 1)?,
            parent: r.get(at + 2)?,
            depth: r.get(at + 3)?,
            name: r.get(at + 4)?,
            description: r.get(at + 5)?,
            creator: r.get(at + 6)?,
            creator_name: r.get(at + 7)?,
            owner: r.get(at + 8)?,
            owner_name: r.get(at + 9)?,
            created: r.get(at + 10)?,
            modified: r.get(at + 11)?,
            size: r.get(at + 12)?,
            blob: r.get(at + 13)?,
        })
    }

    pub fn insert(&self, c: &Connection, depth: i64) {
        let mut st = c.prepare_cached(INSERT_SNAPSHOT).unwrap();
        st.execute(params![
            self.id,
            self.volume_set,
            self.parent,
            depth,
            self.name,
            self.description,
            self.creator,
            self.creator_name,
            self.owner,
            self.owner_name,
            self.created,
            self.modified,
            self.size,
            self.blob
        ])
        .unwrap();
    }
}

/// A branch row with its tip snapshot and the tip's child count.
#[derive(Debug)]
pub struct BranchRow {
    pub id: String,
    pub name: String,
    pub tip: SnapRow,
    pub children: i64,
}

#[derive(Clone, Copy, PartialEq)]
pub enum Config {
    Original,
    Wal,
}

impl Config {
    pub fn label(self) -> &'static str {
        match self {
            Config::Original => "sqlite-original",
            Config::Wal => "sqlite-wal",
        }
    }
}

/// Runs a pragma, returning its answer (if it has one).
pub fn pragma(c: &Connection, p: &str) -> Option<String> {
    c.query_row(&format!("PRAGMA {p}"), [], |r| {
        r.get::<_, rusqlite::types::Value>(0)
    })
    .optional()
    .unwrap()
    .map(|v| match v {
        rusqlite::types::Value::Text(s) => s,
        other => format!("{other:?}"),
    })
}

/// A connection in the given configuration.
pub fn open_sqlite(path: &Path, config: Config) -> Connection {
    let c = Connection::open(path).unwrap();
    c.busy_timeout(Duration::from_secs(60)).unwrap();
    match config {
        Config::Original => {
            assert_eq!(pragma(&c, "journal_mode=DELETE").as_deref(), Some("delete"));
            pragma(&c, "synchronous=FULL");
            assert_eq!(
                pragma(&c, "locking_mode=EXCLUSIVE").as_deref(),
                Some("exclusive")
            );
        }
        Config::Wal => {
            assert_eq!(pragma(&c, "journal_mode=WAL").as_deref(), Some("wal"));
            pragma(&c, "synchronous=FULL");
        }
    }
    assert_eq!(pragma(&c, "synchronous").as_deref(), Some("Integer(2)"));
    c
}

/// One extend in an open transaction: check the parent is the tip of a branch (and read
/// its depth), insert the snapshot, move the branch tip.
pub fn extend_in_tx(c: &Connection, row: &SnapRow) {
    let parent = row.parent.as_deref().expect("an extend has a parent");
    let (branch, depth): (String, i64) = c
        .prepare_cached(
            "SELECT b.id, s.depth FROM branches b JOIN snapshots s ON s.id = b.tip_id \
             WHERE b.tip_id = ?1",
        )
        .unwrap()
        .query_row([parent], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .unwrap()
        .expect("parent is not the tip of a branch: use fork");
    row.insert(c, depth + 1);
    c.prepare_cached("UPDATE branches SET tip_id = ?1 WHERE id = ?2")
        .unwrap()
        .execute(params![row.id, branch])
        .unwrap();
}

/// `rows.len()` extends (a chain) in one transaction.
pub fn sqlite_extend(c: &mut Connection, rows: &[SnapRow]) {
    let tx = c
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    for r in rows {
        extend_in_tx(&tx, r);
    }
    tx.commit().unwrap();
}

pub fn sqlite_get_tip(c: &Connection, vs: &str, name: &str) -> SnapRow {
    c.prepare_cached(&format!(
        "SELECT {SNAP_COLS} FROM branches b JOIN snapshots s ON s.id = b.tip_id \
         WHERE b.volumeset_id = ?1 AND b.name = ?2"
    ))
    .unwrap()
    .query_row([vs, name], |r| SnapRow::read(r, 0))
    .unwrap()
}

pub fn sqlite_get_branches(c: &Connection, vs: &str) -> Vec<BranchRow> {
    let mut st = c
        .prepare_cached(&format!(
            "SELECT b.id, b.name, \
             (SELECT COUNT(*) FROM snapshots c WHERE c.parent_id = s.id), {SNAP_COLS} \
             FROM branches b JOIN snapshots s ON s.id = b.tip_id \
             WHERE b.volumeset_id = ?1"
        ))
        .unwrap();
    let rows = st
        .query_map([vs], |r| {
            Ok(BranchRow {
                id: r.get(0)?,
                name: r.get(1)?,
                children: r.get(2)?,
                tip: SnapRow::read(r, 3)?,
            })
        })
        .unwrap();
    rows.map(|r| r.unwrap()).collect()
}

/// The fixture in SQLite, built in one fast transaction (no fsyncs) at `path`: the same
/// shape as `common::one_volume_set` (root on "trunk", one fork of the root per other
/// branch, then extends round-robin). Returns the volume set and the branch tips.
pub fn build_sqlite(
    path: &Path,
    branches: usize,
    snapshots: usize,
) -> (VolumeSetId, Vec<SnapshotId>) {
    let mut c = Connection::open(path).unwrap();
    pragma(&c, "synchronous=OFF");
    c.execute_batch(SCHEMA).unwrap();
    let vs = VolumeSetId::random();
    let vss = vs.to_string();
    let tx = c.transaction().unwrap();
    let now = mdslog::Timestamp::now().0;
    tx.execute(
        "INSERT INTO volumesets VALUES (?1, '', '', '', '', ?2, ?2, 0)",
        params![vss, now],
    )
    .unwrap();
    for (k, v) in [
        ("$$$CHQ$$$NAME", "bench"),
        ("$$$CHQ$$$PREFIX", ""),
        ("$$$CHQ$$$DESC", ""),
    ] {
        tx.execute("INSERT INTO attrs VALUES (?1, ?2, ?3)", params![vss, k, v])
            .unwrap();
    }
    let add_branch = |tx: &Connection, b: usize, tip: &SnapRow| {
        tx.execute(
            "INSERT INTO branches VALUES (?1, ?2, ?3, ?4)",
            params![
                SnapshotId::random().to_string(),
                vss,
                branch_name(b),
                tip.id
            ],
        )
        .unwrap();
    };
    let root = snap(vs, None);
    let root_row = SnapRow::from_snapshot(&root);
    root_row.insert(&tx, 1);
    add_branch(&tx, 0, &root_row);
    let mut tips = vec![(root.id, 1i64)];
    for b in 1..branches {
        let s = snap(vs, Some(root.id));
        let row = SnapRow::from_snapshot(&s);
        row.insert(&tx, 2);
        add_branch(&tx, b, &row);
        tips.push((s.id, 2));
    }
    for i in 0..snapshots.saturating_sub(branches) {
        let t = i % tips.len();
        let s = snap(vs, Some(tips[t].0));
        let row = SnapRow::from_snapshot(&s);
        row.insert(&tx, tips[t].1 + 1);
        tx.prepare_cached("UPDATE branches SET tip_id = ?1 WHERE tip_id = ?2")
            .unwrap()
            .execute(params![row.id, tips[t].0.to_string()])
            .unwrap();
        tips[t] = (s.id, tips[t].1 + 1);
    }
    tx.commit().unwrap();
    c.execute_batch("ANALYZE").unwrap();
    drop(c);
    (vs, tips.into_iter().map(|t| t.0).collect())
}

/// Forks a branch `name` with one snapshot (in its own transaction).
pub fn sqlite_fork(c: &mut Connection, vs: &str, name: &str, row: &SnapRow) {
    let tx = c
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    let parent = row.parent.as_deref().expect("a fork here has a parent");
    let depth: i64 = tx
        .query_row("SELECT depth FROM snapshots WHERE id = ?1", [parent], |r| {
            r.get(0)
        })
        .unwrap();
    row.insert(&tx, depth + 1);
    tx.execute(
        "INSERT INTO branches VALUES (?1, ?2, ?3, ?4)",
        params![SnapshotId::random().to_string(), vs, name, row.id],
    )
    .unwrap();
    tx.commit().unwrap();
}

/// The snapshots of a branch, tip first (a recursive walk up the parent links).
pub fn sqlite_get_snapshots_by_branch(c: &Connection, vs: &str, name: &str) -> Vec<SnapRow> {
    let mut st = c
        .prepare_cached(&format!(
            "WITH RECURSIVE chain(id) AS ( \
               SELECT tip_id FROM branches WHERE volumeset_id = ?1 AND name = ?2 \
               UNION ALL \
               SELECT p.parent_id FROM snapshots p JOIN chain ON p.id = chain.id \
               WHERE p.parent_id IS NOT NULL) \
             SELECT {SNAP_COLS} FROM chain JOIN snapshots s ON s.id = chain.id \
             ORDER BY s.depth DESC"
        ))
        .unwrap();
    let rows = st.query_map([vs, name], |r| SnapRow::read(r, 0)).unwrap();
    rows.map(|r| r.unwrap()).collect()
}

/// A page of a volume set's snapshots of one owner, newest first.
pub fn sqlite_get_snapshots_owner_page(
    c: &Connection,
    vs: &str,
    owner: &str,
    offset: i64,
    limit: i64,
) -> Vec<SnapRow> {
    let mut st = c
        .prepare_cached(&format!(
            "SELECT {SNAP_COLS} FROM snapshots s WHERE s.volumeset_id = ?1 AND s.owner = ?2 \
             ORDER BY s.creation_time DESC, s.id LIMIT ?3 OFFSET ?4"
        ))
        .unwrap();
    let rows = st
        .query_map(params![vs, owner, limit, offset], |r| SnapRow::read(r, 0))
        .unwrap();
    rows.map(|r| r.unwrap()).collect()
}
