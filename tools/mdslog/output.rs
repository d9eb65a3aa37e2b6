//! Everything the tool prints: errors with their exit codes, times, sizes, short ids,
//! progress bars, the JSON line of one record, and the `--at` point in time.

use std::fmt;
use std::io::{IsTerminal, Write};
use std::path::Path;

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use mdslog::event::{kind_name, Envelope};
use mdslog::{Error, Lsn, RecordKind, Timestamp};
use serde::Serialize;

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: the log is damaged (verify findings, or a command that met damage).
pub const EXIT_DAMAGED: u8 = 1;
/// Exit code: usage, I/O or any other error.
pub const EXIT_ERROR: u8 = 2;

/// A failure of a command: one line for the operator and the exit code.
#[derive(Debug)]
pub struct Fail {
    pub code: u8,
    pub message: String,
}

impl Fail {
    /// A usage or other error (exit 2).
    pub fn usage(message: impl Into<String>) -> Fail {
        Fail {
            code: EXIT_ERROR,
            message: message.into(),
        }
    }

    /// Damage in the log (exit 1).
    pub fn damaged(message: impl Into<String>) -> Fail {
        Fail {
            code: EXIT_DAMAGED,
            message: message.into(),
        }
    }

    /// A library error met while working on the store in `dir`, with what to do next.
    pub fn store(e: Error, dir: &Path) -> Fail {
        let d = dir.display();
        match &e {
            Error::Corruption(_) | Error::Decode { .. } => Fail::damaged(format!(
                "{e}; run `mdslog verify {d}` to list every finding and `mdslog repair {d}` to fix it"
            )),
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => Fail::usage(format!(
                "no store directory at {d} ({e}); give the store directory as the first argument or set MDSLOG_DIR"
            )),
            Error::Locked { .. } => Fail::usage(format!("{e} (inspection commands never need the lock)")),
            Error::InvalidArgument(m) => Fail::usage(m.clone()),
            _ => Fail::usage(e.to_string()),
        }
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The result of a command: the exit code on success (0, or 1 for verify findings).
pub type CmdResult = Result<u8, Fail>;

/// A timestamp as a UTC date-time (`None` when out of range).
pub fn datetime(t: Timestamp) -> Option<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp_micros(t.0)
}

/// A timestamp for people: `2025-11-24 17:33:01.123 UTC`.
pub fn human_time(t: Timestamp) -> String {
    match datetime(t) {
        Some(d) if t.0 != 0 => d.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string(),
        _ if t.0 == 0 => "-".to_string(),
        _ => format!("{}us", t.0),
    }
}

/// A timestamp for machines: RFC 3339 in UTC with microseconds.
pub fn rfc3339(t: Timestamp) -> String {
    match datetime(t) {
        Some(d) => d.to_rfc3339_opts(SecondsFormat::Micros, true),
        None => t.0.to_string(),
    }
}

/// Bytes for people: `1.5 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

/// A count with thousands separators: `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The first 8 hex digits of an id, as people type them.
pub fn short(id: impl fmt::Display) -> String {
    let s = id.to_string();
    s.chars().take(8).collect()
}

/// `n thing` or `n things`.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

/// A point in time given to `--at`: a log position or a wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    Lsn(Lsn),
    Time(Timestamp),
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            At::Lsn(l) => write!(f, "LSN {l}"),
            At::Time(t) => write!(f, "{}", human_time(*t)),
        }
    }
}

/// Parses `--at`: an LSN (digits), or a time: RFC 3339 (`2025-11-24T17:33:01Z`,
/// `2025-11-24T18:33:01+01:00`), `YYYY-MM-DD HH:MM[:SS]` or `YYYY-MM-DD` (both UTC).
pub fn parse_at(s: &str) -> Result<At, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<u64>()
            .map(|n| At::Lsn(Lsn(n)))
            .map_err(|e| format!("bad LSN {s:?}: {e}"));
    }
    parse_time(s).map(At::Time)
}

/// Parses a wall-clock time (see [`parse_at`]).
pub fn parse_time(s: &str) -> Result<Timestamp, String> {
    let micros = |d: DateTime<Utc>| Timestamp(d.timestamp_micros());
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Ok(micros(d.with_timezone(&Utc)));
    }
    for f in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S%.f",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, f) {
            return Ok(micros(n.and_utc()));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(micros(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc()));
    }
    Err(format!(
        "{s:?} is neither an LSN nor a time; give an LSN (e.g. 42) or an RFC 3339 time (e.g. 2025-11-24T17:33:01Z)"
    ))
}

/// A progress bar on standard error when it is a terminal; hidden otherwise.
pub fn progress(total: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(total);
    let style =
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {human_pos}/{human_len} ({eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
    pb.set_style(style);
    pb.set_message(what.to_string());
    pb
}

/// A spinner on standard error while something without a known length runs (a replay);
/// hidden when standard error is not a terminal.
pub fn spinner(what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new_spinner();
    pb.set_message(what.to_string());
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    pb
}

/// Writes a line to standard output; a closed pipe (`| head`) ends the program quietly.
pub fn out(line: impl fmt::Display) {
    let mut o = std::io::stdout().lock();
    if writeln!(o, "{line}").is_err() {
        std::process::exit(EXIT_OK as i32);
    }
}

/// Prints a value as pretty JSON.
pub fn json<T: Serialize + ?Sized>(v: &T) -> Result<(), Fail> {
    let s = serde_json::to_string_pretty(v)
        .map_err(|e| Fail::usage(format!("cannot write JSON: {e}")))?;
    out(s);
    Ok(())
}

/// One record as a JSON line (the stable schema README.md documents).
#[derive(Serialize)]
pub struct RecordLine<'a> {
    /// The record's log sequence number.
    pub lsn: u64,
    /// The kind's name (`fork-branch`, ...).
    pub kind: &'a str,
    /// The kind's number, as stored in the frame.
    pub kind_id: u16,
    /// When it was written: RFC 3339, UTC, microseconds.
    pub time: String,
    /// The same, in microseconds since the Unix epoch.
    pub time_us: i64,
    /// Who wrote it (the store handle's actor), if recorded.
    pub actor: Option<&'a str>,
    /// The event: `mdslog::event::Event` as serde writes it, tagged by variant name.
    pub event: &'a mdslog::event::Event,
}

impl<'a> RecordLine<'a> {
    pub fn new(lsn: Lsn, kind: RecordKind, env: &'a Envelope) -> Self {
        RecordLine {
            lsn: lsn.0,
            kind: kind_name(kind).unwrap_or("unknown"),
            kind_id: kind.0,
            time: rfc3339(env.time),
            time_us: env.time.0,
            actor: env.actor.as_deref(),
            event: &env.event,
        }
    }

    /// The line, compact.
    pub fn to_json(&self) -> Result<String, Fail> {
        serde_json::to_string(self).map_err(|e| Fail::usage(format!("cannot write JSON: {e}")))
    }
}

/// Asks a yes/no question on the terminal; `Ok(false)` unless the answer is yes. Refuses
/// (with what to pass instead) when standard input is not a terminal.
pub fn confirm(question: &str) -> Result<bool, Fail> {
    if !std::io::stdin().is_terminal() {
        return Err(Fail::usage(format!(
            "refusing to {question} without confirmation: standard input is not a terminal; pass --yes"
        )));
    }
    eprint!("{question}? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| Fail::usage(format!("cannot read the answer: {e}")))?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_values() {
        assert_eq!(parse_at("42"), Ok(At::Lsn(Lsn(42))));
        assert_eq!(
            parse_at("1970-01-01T00:00:01Z"),
            Ok(At::Time(Timestamp(1_000_000)))
        );
        assert_eq!(
            parse_at("1970-01-01T01:00:01+01:00"),
            Ok(At::Time(Timestamp(1_000_000)))
        );
        assert_eq!(
            parse_at("1970-01-02"),
            Ok(At::Time(Timestamp(86_400_000_000)))
        );
        assert_eq!(
            parse_at("1970-01-01 00:01"),
            Ok(At::Time(Timestamp(60_000_000)))
        );
        assert!(parse_at("yesterday").is_err());
        assert!(parse_at("").is_err());
    }

    #[test]
    fn numbers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(rfc3339(Timestamp(1_500_000)), "1970-01-01T00:00:01.500000Z");
    }
}
