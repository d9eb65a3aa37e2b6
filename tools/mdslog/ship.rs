//! Replication by shipping segments: `ship` (once), `follow` (until stopped) and
//! `status` (what a directory holds, who holds its lock, where it ships from and how far
//! behind it is). Built on `mdslog::ship`: the reports printed are the library's
//! `ShipReport` and `Lag`.
//!
//! The source is always opened read-only (no lock: it may be a live primary in another
//! process); the follower is written only through a `Shipper`, which holds its lock.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use indicatif::ProgressBar;
use mdslog::event::{Envelope, Event};
use mdslog::log::format::FOOTER_BYTES;
use mdslog::log::fs::DirStorage;
use mdslog::log::{Log, LOCK_FILE};
use mdslog::ship::{lag, noted_source, Lag, ShipReport, Shipper, StorageTarget};
use mdslog::{Error, LogOptions, Lsn, RecordKind, StoreId, Timestamp};
use serde::Serialize;

use crate::cli::{FollowArgs, ShipArgs, StatusArgs};
use crate::output::{
    human_bytes, human_time, json, out, plural, rfc3339, thousands, CmdResult, Fail, EXIT_OK,
};

// ---- opening both sides ------------------------------------------------------------------

/// An absolute path for `dir` (what the follower's SHIP-SOURCE notes, so that `status`
/// finds the source from any working directory).
fn absolute(dir: &Path) -> PathBuf {
    dir.canonicalize()
        .or_else(|_| std::path::absolute(dir))
        .unwrap_or_else(|_| dir.to_path_buf())
}

/// Opens the source log read-only: it must be a store directory holding a log.
fn open_source(src: &Path) -> Result<Log, Fail> {
    if !src.is_dir() {
        return Err(Fail::usage(format!(
            "no store directory at {} (the source to ship from); give the primary's store directory first",
            src.display()
        )));
    }
    let log = Log::open_read_only(absolute(src), LogOptions::default())
        .map_err(|e| Fail::store(e, src))?;
    if log.segments().is_empty() {
        return Err(Fail::usage(format!(
            "{} holds no log (no *.seg files): it is not a store directory; give the primary's store directory first",
            src.display()
        )));
    }
    Ok(log)
}

/// The follower directory as a ship target (created if missing).
fn open_target(src: &Path, dst: &Path) -> Result<StorageTarget, Fail> {
    if same_dir(src, dst) {
        return Err(Fail::usage(format!(
            "the source and the follower are the same directory ({}); ship into another directory",
            dst.display()
        )));
    }
    if dst.exists() && !dst.is_dir() {
        return Err(Fail::usage(format!(
            "{} is not a directory; give the follower's directory (created if missing)",
            dst.display()
        )));
    }
    StorageTarget::dir(dst).map_err(|e| Fail::usage(e.to_string()))
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// A library error from shipping `src` into `dst`, with what to do next.
fn ship_fail(e: Error, src: &Path, dst: &Path) -> Fail {
    match &e {
        Error::Locked { pid, .. } => Fail::usage(format!(
            "cannot ship into {}: it is locked{} by a store open on it for writing or by another shipper (`mdslog follow`); one shipper ships into a follower, and nothing writes to it meanwhile",
            dst.display(),
            pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
        )),
        Error::ShipDiverged { .. } => Fail::usage(format!(
            "{e}. Nothing was shipped into it: {} is not a copy of {}'s log (another store, a promoted follower, or a primary that lost records); ship into a new, empty directory instead",
            dst.display(),
            src.display()
        )),
        Error::Corruption(c) => {
            let dir = if c.file.starts_with(absolute(dst)) || c.file.starts_with(dst) {
                dst
            } else {
                src
            };
            Fail::store(e, dir)
        }
        _ => Fail::store(e, src),
    }
}

// ---- ship --------------------------------------------------------------------------------

/// `ship --json` and each line of `follow --json`: the library's report and both sides.
#[derive(Serialize)]
struct ShipJson<'a> {
    source: String,
    follower: String,
    /// When the ship ended (RFC 3339, UTC), for `follow`.
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<String>,
    #[serde(flatten)]
    report: &'a ShipReport,
}

fn ship_json<'a>(src: &Path, dst: &Path, r: &'a ShipReport, time: Option<String>) -> ShipJson<'a> {
    ShipJson {
        source: src.display().to_string(),
        follower: dst.display().to_string(),
        time,
        report: r,
    }
}

/// Whether a ship changed the follower.
fn shipped_something(r: &ShipReport) -> bool {
    r.records_shipped > 0 || r.bytes_copied > 0 || r.segments_copied > 0 || r.torn_bytes_cut > 0
}

/// What one ship did, in one line: "12 records (LSN 46 … 57), 1 segment copied whole,
/// 3.2 KiB written".
fn ship_summary(r: &ShipReport) -> String {
    let mut v = Vec::new();
    if r.records_shipped > 0 {
        v.push(format!(
            "{} (LSN {} … {})",
            plural(r.records_shipped, "record", "records"),
            r.follower_lsn_before.0 + 1,
            r.follower_last_lsn.0
        ));
    } else {
        v.push("no new records".to_string());
    }
    v.push(format!(
        "{} copied whole",
        plural(r.segments_copied, "segment", "segments")
    ));
    v.push(format!(
        "{} ({}) written",
        human_bytes(r.bytes_copied),
        plural(r.bytes_copied, "byte", "bytes")
    ));
    if r.torn_bytes_cut > 0 {
        v.push(format!(
            "{} of a torn tail cut (an interrupted ship)",
            plural(r.torn_bytes_cut, "byte", "bytes")
        ));
    }
    v.join(", ")
}

pub fn ship(a: &ShipArgs) -> CmdResult {
    let (src, dst) = (a.source.as_path(), a.follower.as_path());
    let log = open_source(src)?;
    let target = open_target(src, dst)?;
    let r = mdslog::ship::ship(&log, &target).map_err(|e| ship_fail(e, src, dst))?;
    if a.json {
        json(&ship_json(src, dst, &r, None))?;
        return Ok(EXIT_OK);
    }
    if !shipped_something(&r) {
        out(format!(
            "nothing to ship: {} is at LSN {}, as {} is",
            dst.display(),
            r.follower_last_lsn,
            src.display()
        ));
        return Ok(EXIT_OK);
    }
    out(format!("shipped {} into {}", src.display(), dst.display()));
    out(format!("  {}", ship_summary(&r)));
    out(format!(
        "the follower is at LSN {} (the source's last durable LSN was {})",
        r.follower_last_lsn, r.source_last_lsn
    ));
    Ok(EXIT_OK)
}

// ---- follow ------------------------------------------------------------------------------

/// Set by the signal handler: the follow loop stops at its next look (within 50 ms, or
/// when the ship in progress ends).
static STOP: AtomicBool = AtomicBool::new(false);
static SIGNALS: AtomicU32 = AtomicU32::new(0);

/// Ctrl-C (SIGINT) and SIGTERM stop the loop; a second one ends the process at once (a
/// ship cut short is harmless: the next ship cuts what it left and goes on).
fn install_stop_handler() -> Result<(), Fail> {
    ctrlc::set_handler(|| {
        if SIGNALS.fetch_add(1, Ordering::SeqCst) > 0 {
            eprintln!("mdslog: stopping at once");
            std::process::exit(130);
        }
        STOP.store(true, Ordering::SeqCst);
    })
    .map_err(|e| Fail::usage(format!("cannot install the Ctrl-C handler: {e}")))
}

/// The status line on a terminal (hidden otherwise).
fn status_line() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new_spinner();
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

pub fn follow(a: &FollowArgs) -> CmdResult {
    let (src, dst) = (a.source.as_path(), a.follower.as_path());
    let log = open_source(src)?;
    let target = open_target(src, dst)?;
    let mut shipper = Shipper::new(&target).map_err(|e| ship_fail(e, src, dst))?;
    install_stop_handler()?;
    eprintln!(
        "following {} into {} every {} ms; Ctrl-C (or SIGTERM) stops",
        src.display(),
        dst.display(),
        a.interval_ms
    );
    let pb = status_line();
    let (mut ships, mut records, mut bytes) = (0u64, 0u64, 0u64);
    let mut last_change: Option<Timestamp> = None;
    let mut printed: Result<(), Fail> = Ok(());
    let result = shipper.follow(
        &log,
        Duration::from_millis(a.interval_ms),
        &STOP,
        |r: &ShipReport| {
            ships += 1;
            records += r.records_shipped;
            bytes += r.bytes_copied;
            let now = Timestamp::now();
            if shipped_something(r) {
                last_change = Some(now);
                let line = if a.json {
                    serde_json::to_string(&ship_json(src, dst, r, Some(rfc3339(now))))
                        .map_err(|e| Fail::usage(format!("cannot write JSON: {e}")))
                } else {
                    Ok(format!(
                        "{}  {}; follower at LSN {}",
                        human_time(now),
                        ship_summary(r),
                        r.follower_last_lsn
                    ))
                };
                match line {
                    Ok(l) => pb.suspend(|| out(l)),
                    Err(e) => {
                        printed = Err(e);
                        STOP.store(true, Ordering::SeqCst);
                    }
                }
            }
            pb.set_message(format!(
                "following {} → {}: follower at LSN {} (source at {}); {} in {}; last change {}",
                src.display(),
                dst.display(),
                r.follower_last_lsn,
                r.source_last_lsn,
                plural(records, "record", "records"),
                plural(ships, "ship", "ships"),
                last_change.map_or("-".to_string(), human_time)
            ));
        },
    );
    pb.finish_and_clear();
    let at = log_end(dst);
    drop(shipper); // releases the follower's lock
    result.map_err(|e| ship_fail(e, src, dst))?;
    printed?;
    eprintln!(
        "stopped: {} shipped in {} ({}); {} is at LSN {} and its lock is released",
        plural(records, "record", "records"),
        plural(ships, "ship", "ships"),
        human_bytes(bytes),
        dst.display(),
        at.map_or("?".to_string(), |l| l.to_string())
    );
    Ok(EXIT_OK)
}

/// The last LSN of the log in `dir`, if it opens.
fn log_end(dir: &Path) -> Option<Lsn> {
    Log::open_read_only(dir, LogOptions::default())
        .ok()
        .map(|l| l.durable_lsn())
}

// ---- status ------------------------------------------------------------------------------

/// Who holds a directory's `LOCK`.
#[derive(Serialize)]
struct LockJson {
    held: bool,
    /// The holder's pid, as it wrote it into the file.
    pid: Option<u32>,
    /// The holder's command line, where the system says (Linux).
    command: Option<String>,
}

/// Whether someone holds the directory's lock, without taking it (the lock file is not
/// changed: a shared lock is tried and released at once).
fn lock_state(dir: &Path) -> Result<LockJson, Fail> {
    let path = dir.join(LOCK_FILE);
    let free = LockJson {
        held: false,
        pid: None,
        command: None,
    };
    let mut f = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(free),
        Err(e) => return Err(Fail::usage(format!("cannot read {}: {e}", path.display()))),
    };
    match f.try_lock_shared() {
        Ok(()) => {
            let _ = f.unlock();
            Ok(free)
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut s = String::new();
            let pid: Option<u32> = f
                .read_to_string(&mut s)
                .ok()
                .and_then(|_| s.trim().parse().ok());
            let command = pid.and_then(|p| {
                let raw = std::fs::read(format!("/proc/{p}/cmdline")).ok()?;
                let parts: Vec<String> = raw
                    .split(|&b| b == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect();
                (!parts.is_empty()).then(|| parts.join(" "))
            });
            Ok(LockJson {
                held: true,
                pid,
                command,
            })
        }
        Err(std::fs::TryLockError::Error(e)) => Err(Fail::usage(format!(
            "cannot check the lock {}: {e}",
            path.display()
        ))),
    }
}

/// The store's identity: the `SetStoreId` record (a scan of frame kinds; only that record
/// is decoded).
fn store_id(log: &Log, dir: &Path) -> Result<Option<StoreId>, Fail> {
    const SET_STORE_ID: RecordKind = RecordKind(17);
    let mut it = log.iter_from(Lsn(1));
    while let Some(r) = it.next_record().map_err(|e| Fail::store(e, dir))? {
        if r.kind == SET_STORE_ID {
            let env =
                Envelope::decode(r.lsn, r.kind, r.payload).map_err(|e| Fail::store(e, dir))?;
            if let Event::SetStoreId { id } = env.event {
                return Ok(Some(id));
            }
        }
    }
    Ok(None)
}

/// Reads bytes `[0, len)` of a segment of a log.
fn segment_prefix(log: &Log, name: &str, len: u64) -> std::io::Result<Vec<u8>> {
    let f = log.storage().open_read(name)?;
    let mut v = vec![0u8; len as usize];
    let n = f.read_at(&mut v, 0)?;
    v.truncate(n);
    Ok(v)
}

/// `None` when every segment of `follower` is `primary`'s (sealed: the same digest; the
/// last unsealed one: a byte prefix of the primary's); otherwise why not.
fn diverged(follower: &Log, primary: &Log) -> Option<String> {
    let p = primary.segments();
    for (i, f) in follower.segments().iter().enumerate() {
        let Some(ps) = p.get(i) else {
            return Some(format!(
                "the follower has segment {} and the primary has no segment there: the follower holds records the primary does not",
                f.file_name
            ));
        };
        if ps.file_name != f.file_name {
            return Some(format!(
                "the follower's segment {} is {} at the primary",
                f.file_name, ps.file_name
            ));
        }
        if f.sealed {
            if !ps.sealed || ps.digest != f.digest {
                return Some(format!(
                    "segment {} differs from the primary's (another history)",
                    f.file_name
                ));
            }
            continue;
        }
        let plen = if ps.sealed {
            ps.bytes - FOOTER_BYTES as u64
        } else {
            ps.bytes
        };
        if f.bytes > plen {
            return Some(format!(
                "the follower's segment {} holds {} the primary's does not",
                f.file_name,
                plural(f.bytes - plen, "byte", "bytes")
            ));
        }
        match (
            segment_prefix(follower, &f.file_name, f.bytes),
            segment_prefix(primary, &f.file_name, f.bytes),
        ) {
            (Ok(a), Ok(b)) if a == b => {}
            (Ok(_), Ok(_)) => {
                return Some(format!(
                    "the records of segment {} differ from the primary's (another history)",
                    f.file_name
                ))
            }
            (Err(e), _) | (_, Err(e)) => {
                return Some(format!("cannot compare segment {}: {e}", f.file_name))
            }
        }
    }
    None
}

#[derive(Serialize)]
struct PrimaryJson {
    dir: String,
    /// `"argument"` (--primary) or `"ship-source"` (noted by the last ship).
    from: &'static str,
    reachable: bool,
    /// Why it could not be opened, when it could not.
    error: Option<String>,
    /// Why the follower is not a copy of a prefix of this primary's log, if it is not.
    diverged: Option<String>,
    lag: Option<Lag>,
}

#[derive(Serialize)]
struct SegmentsJson {
    count: usize,
    sealed: usize,
    bytes: u64,
}

#[derive(Serialize)]
struct StatusJson {
    dir: String,
    store_id: Option<StoreId>,
    last_lsn: Lsn,
    segments: SegmentsJson,
    torn_tail: Option<serde_json::Value>,
    lock: LockJson,
    ship_source: Option<String>,
    primary: Option<PrimaryJson>,
}

pub fn status(a: &StatusArgs) -> CmdResult {
    let dir = a.store.dir.as_path();
    let storage = DirStorage::new(dir, false).map_err(|e| {
        Fail::usage(format!(
            "no store directory at {} ({e}); give the store directory as the first argument or set MDSLOG_DIR",
            dir.display()
        ))
    })?;
    let log = Log::open_read_only(dir, LogOptions::default()).map_err(|e| Fail::store(e, dir))?;
    let segments = log.segments();
    let seg = SegmentsJson {
        count: segments.len(),
        sealed: segments.iter().filter(|s| s.sealed).count(),
        bytes: segments.iter().map(|s| s.bytes).sum(),
    };
    let sid = store_id(&log, dir)?;
    let lock = lock_state(dir)?;
    let noted = noted_source(&StorageTarget::new(std::sync::Arc::new(storage)))
        .map_err(|e| Fail::store(e, dir))?;
    let torn = log.recovery_report().torn_tail.clone();

    let primary = match (&a.primary, &noted) {
        (Some(p), _) => {
            let plog = open_source(p)?;
            Some(primary_json(&log, &plog, p, "argument"))
        }
        (None, Some(n)) => {
            let p = Path::new(n);
            Some(match open_source(p) {
                Ok(plog) => primary_json(&log, &plog, p, "ship-source"),
                Err(e) => PrimaryJson {
                    dir: n.clone(),
                    from: "ship-source",
                    reachable: false,
                    error: Some(e.message),
                    diverged: None,
                    lag: None,
                },
            })
        }
        (None, None) => None,
    };

    if a.json {
        json(&StatusJson {
            dir: dir.display().to_string(),
            store_id: sid,
            last_lsn: log.durable_lsn(),
            segments: seg,
            torn_tail: torn.map(|t| {
                serde_json::json!({"file": t.file.display().to_string(), "offset": t.offset, "bytes": t.bytes})
            }),
            lock,
            ship_source: noted,
            primary,
        })?;
        return Ok(EXIT_OK);
    }
    out(format!("store        {}", dir.display()));
    out(format!(
        "store id     {}",
        sid.map_or(
            "none yet (given when first opened for writing)".to_string(),
            |s| s.to_string()
        )
    ));
    out(format!("last LSN     {}", log.durable_lsn()));
    if seg.count == 0 {
        out("segments     none: no log here (not a store directory, or a follower nothing was shipped into yet)");
    } else {
        out(format!(
            "segments     {} ({} sealed), {}",
            thousands(seg.count as u64),
            thousands(seg.sealed as u64),
            human_bytes(seg.bytes)
        ));
    }
    if let Some(t) = torn {
        out(format!(
            "torn tail    {} at byte {} of {} (not read; the next ship or writer's open cuts it)",
            plural(t.bytes, "byte", "bytes"),
            t.offset,
            t.file.display()
        ));
    }
    out(format!(
        "lock         {}",
        if lock.held {
            format!(
                "held by {}{}: a writer, or a shipper shipping into it",
                lock.pid
                    .map_or("another process".to_string(), |p| format!("pid {p}")),
                lock.command
                    .as_ref()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default()
            )
        } else {
            "free (no writer and no shipper holds it)".to_string()
        }
    ));
    out(format!(
        "ship source  {}",
        noted.as_deref().map_or(
            "none noted (never shipped into: a primary, or a plain store)".to_string(),
            |n| format!("{n} (noted by the last ship)")
        )
    ));
    if let Some(p) = &primary {
        out(format!("primary      {}", primary_line(p)));
    }
    Ok(EXIT_OK)
}

fn primary_json(follower: &Log, primary: &Log, dir: &Path, from: &'static str) -> PrimaryJson {
    let d = diverged(follower, primary);
    PrimaryJson {
        dir: dir.display().to_string(),
        from,
        reachable: true,
        lag: d.is_none().then(|| lag(follower, primary)),
        diverged: d,
        error: None,
    }
}

fn primary_line(p: &PrimaryJson) -> String {
    if !p.reachable {
        return format!(
            "{}: unreachable, so the lag is unknown ({})",
            p.dir,
            p.error.as_deref().unwrap_or("cannot open it")
        );
    }
    if let Some(d) = &p.diverged {
        return format!(
            "{}: not a copy of this primary's log ({d}); shipping from it would be refused",
            p.dir
        );
    }
    let l = p
        .lag
        .as_ref()
        .expect("a lag when reachable and not diverged");
    if l.records == 0 && l.bytes == 0 {
        format!("{}: up to date (both at LSN {})", p.dir, l.primary_last_lsn)
    } else {
        format!(
            "{}: at LSN {}; this copy is {} ({}) behind",
            p.dir,
            l.primary_last_lsn,
            plural(l.records, "record", "records"),
            human_bytes(l.bytes)
        )
    }
}
