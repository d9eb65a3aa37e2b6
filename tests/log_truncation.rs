//! A cut or garbage-filled tail of the last segment, on the real file system.
//!
//! For every cut offset across the last records of the last segment (active, and sealed
//! with its footer), the log must open with exactly the longest valid prefix (whole
//! batches only), report a torn tail exactly when non-zero bytes lie past that prefix, save
//! those bytes beside the segment, reopen with nothing more to cut, and keep appending at
//! the next LSN. Strict recovery refuses every such tail.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use mdslog::log::format::{FOOTER_BYTES, SEGMENT_HEADER_BYTES};
use mdslog::log::{Log, LogOptions, Lsn, Record, RecordKind, RecoveryMode};
use mdslog::{CorruptionKind, Error};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

fn small() -> LogOptions {
    LogOptions {
        segment_bytes_max: 4096,
        prewrite_bytes: 1024,
        record_bytes_max: 512,
        batch_bytes_max: 2048,
        ..LogOptions::default()
    }
}

fn strict() -> LogOptions {
    LogOptions {
        recovery: RecoveryMode::Strict,
        ..small()
    }
}

fn kind_of(lsn: u64) -> RecordKind {
    RecordKind((lsn % 5 + 1) as u16)
}

/// Payload bytes of record `lsn`: distinct per record, with some zero bytes inside.
fn payload(lsn: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|j| {
            if j % 11 == 3 {
                0
            } else {
                (lsn as usize * 7 + j) as u8 | 1
            }
        })
        .collect()
}

/// Everything appended, and for each LSN the last LSN of its batch.
#[derive(Default, Clone)]
struct Model {
    recs: Vec<(Lsn, RecordKind, Vec<u8>)>,
    batch_last: BTreeMap<u64, u64>,
}

impl Model {
    fn append(&mut self, log: &Log, lens: &[usize]) {
        let first = self.recs.len() as u64 + 1;
        let recs: Vec<Record> = (0..lens.len() as u64)
            .map(|i| Record::new(kind_of(first + i), payload(first + i, lens[i as usize])))
            .collect();
        let last = first + lens.len() as u64 - 1;
        if recs.len() == 1 {
            assert_eq!(
                log.append(recs[0].kind, &recs[0].payload).unwrap(),
                Lsn(first)
            );
        } else {
            let r = log.append_batch(recs.clone()).unwrap();
            assert_eq!((r.first, r.last), (Lsn(first), Lsn(last)));
        }
        for (i, r) in recs.into_iter().enumerate() {
            let lsn = first + i as u64;
            self.recs.push((Lsn(lsn), r.kind, r.payload));
            self.batch_last.insert(lsn, last);
        }
    }
}

const LENS: [usize; 10] = [0, 1, 7, 8, 13, 24, 100, 250, 31, 64];
/// Appended last: singles and batches with empty, padded and aligned payloads.
const TAIL: &[&[usize]] = &[&[13], &[0, 7, 100], &[0], &[8, 1], &[250], &[5, 0, 3]];

/// Builds a closed log of several segments whose last (active) segment ends with `TAIL`.
fn build(dir: &Path) -> Model {
    let log = Log::open(dir, small()).unwrap();
    let mut m = Model::default();
    for i in 0..110usize {
        if i % 3 == 2 {
            let lens: Vec<usize> = (0..i % 4 + 2).map(|j| LENS[(i + j) % LENS.len()]).collect();
            m.append(&log, &lens);
        } else {
            m.append(&log, &[LENS[i % LENS.len()]]);
        }
    }
    // Make sure `TAIL` fits in one segment: if it would not, start a fresh one first.
    let tail_bytes: usize = TAIL
        .iter()
        .flat_map(|b| b.iter())
        .map(|&l| 24 + l.div_ceil(8) * 8)
        .sum();
    let segments = log.segments().len();
    if log.segments().last().unwrap().bytes as usize + tail_bytes + FOOTER_BYTES > 4096 {
        while log.segments().len() == segments {
            m.append(&log, &[250]);
        }
    }
    for b in TAIL {
        m.append(&log, b);
    }
    log.close().unwrap();
    m
}

/// One frame as laid out in an undamaged segment (parsed here, not by the crate).
#[derive(Debug, Clone, Copy)]
struct FrameAt {
    start: usize,
    end: usize,
    lsn: u64,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// The frames of an undamaged segment and where its footer starts, if it has one.
fn layout(b: &[u8]) -> (Vec<FrameAt>, Option<usize>) {
    let mut frames = Vec::new();
    let mut pos = SEGMENT_HEADER_BYTES;
    while pos + 24 <= b.len() {
        let len = u32_at(b, pos);
        if len == u32::MAX {
            return (frames, Some(pos));
        }
        if b[pos..pos + 24].iter().all(|&x| x == 0) {
            break;
        }
        let end = pos + 24 + (len as usize).div_ceil(8) * 8;
        assert!(end <= b.len(), "frame at {pos} runs past the file");
        frames.push(FrameAt {
            start: pos,
            end,
            lsn: u64_at(b, pos + 8),
        });
        pos = end;
    }
    (frames, None)
}

fn seg_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

fn copy_dir(from: &Path, to: &Path) {
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn torn_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains(".torn-"))
        .collect();
    v.sort();
    v
}

fn assert_records(log: &Log, want: &[(Lsn, RecordKind, Vec<u8>)], ctx: &str) {
    let got: Vec<_> = log
        .iter_from(Lsn(1))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{ctx}: {e}"));
    assert_eq!(got.len(), want.len(), "{ctx}: record count");
    for (g, w) in got.iter().zip(want) {
        assert_eq!((g.lsn, g.kind, &g.payload), (w.0, w.1, &w.2), "{ctx}");
    }
    assert_eq!(
        log.durable_lsn(),
        want.last().map(|w| w.0).unwrap_or(Lsn::ZERO),
        "{ctx}: durable LSN"
    );
}

/// What a cut at `t` must leave: the last kept LSN and the torn region (offset, bytes).
#[derive(Debug)]
struct Expect {
    last_lsn: u64,
    torn: Option<(u64, u64)>,
}

fn expect_cut(orig: &[u8], m: &Model, t: usize) -> Expect {
    let (frames, footer) = layout(orig);
    let first_lsn = u64_at(orig, 24);
    if footer.is_some_and(|f| t >= f + FOOTER_BYTES) {
        return Expect {
            last_lsn: frames.last().map(|f| f.lsn).unwrap_or(first_lsn - 1),
            torn: None,
        };
    }
    // `cut`: end of the last whole batch before `t`; `pos`: end of the last whole frame.
    let (mut cut, mut pos, mut last_lsn) =
        (SEGMENT_HEADER_BYTES, SEGMENT_HEADER_BYTES, first_lsn - 1);
    for f in frames.iter().take_while(|f| f.end <= t) {
        pos = f.end;
        if m.batch_last[&f.lsn] == f.lsn {
            cut = f.end;
            last_lsn = f.lsn;
        }
    }
    // Bytes past the prefix are a torn tail when a whole frame or any non-zero byte is among
    // them; a cut that leaves only zeros (say, the first bytes of a length field) is none.
    let nonzero_end = orig[cut..t]
        .iter()
        .rposition(|&b| b != 0)
        .map(|i| cut + i + 1)
        .unwrap_or(cut);
    let end = nonzero_end.max(pos);
    Expect {
        last_lsn,
        torn: (end > cut).then_some((cut as u64, (end - cut) as u64)),
    }
}

/// Copies `base`, cuts segment `name` at `t` and checks every open against `expect_cut`.
/// Returns whether a torn tail was expected.
fn check_cut(base: &Path, m: &Model, name: &str, orig: &[u8], t: usize) -> bool {
    let ctx = format!("{name} cut at {t}");
    let exp = expect_cut(orig, m, t);
    let want = &m.recs[..exp.last_lsn as usize];
    let w = tempfile::tempdir().unwrap();
    copy_dir(base, w.path());
    let seg = w.path().join(name);
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(t as u64)
        .unwrap();

    // Read-only: the same prefix, the tail reported but left in place.
    let ro = Log::open_read_only(w.path(), small())
        .unwrap_or_else(|e| panic!("{ctx}: read-only open: {e}"));
    let torn = ro.recovery_report().torn_tail.clone();
    assert_eq!(
        torn.as_ref().map(|x| (x.offset, x.bytes)),
        exp.torn,
        "{ctx}: read-only torn tail"
    );
    if let Some(x) = &torn {
        assert_eq!((&x.file, &x.saved_to), (&seg, &None), "{ctx}");
    }
    assert_records(&ro, want, &ctx);
    drop(ro);
    assert_eq!(
        fs::read(&seg).unwrap(),
        &orig[..t],
        "{ctx}: a read-only open changed the segment"
    );

    // Strict: refuses exactly the torn tails, naming file, offset and the next LSN.
    match (Log::open_read_only(w.path(), strict()), exp.torn) {
        (Err(Error::Corruption(c)), Some((off, bytes))) => {
            assert_eq!(c.file, seg, "{ctx}");
            assert_eq!(c.offset, off, "{ctx}");
            assert_eq!(c.lsn, Some(Lsn(exp.last_lsn + 1)), "{ctx}");
            assert_eq!(c.kind, CorruptionKind::TornTail { bytes }, "{ctx}");
        }
        (Ok(log), None) => assert_records(&log, want, &ctx),
        (r, e) => panic!("{ctx}: strict open gave {r:?}, expected torn tail {e:?}"),
    }

    // Writer: cuts the tail, keeping the cut bytes in a side file.
    let log = Log::open(w.path(), small()).unwrap_or_else(|e| panic!("{ctx}: open: {e}"));
    let torn = log.recovery_report().torn_tail.clone();
    assert_eq!(
        torn.as_ref().map(|x| (x.offset, x.bytes)),
        exp.torn,
        "{ctx}: torn tail"
    );
    match exp.torn {
        Some((off, bytes)) => {
            let x = torn.unwrap();
            let side = w.path().join(format!("{name}.torn-{off:016x}"));
            assert_eq!(x.file, seg, "{ctx}");
            assert_eq!(x.saved_to.as_ref(), Some(&side), "{ctx}");
            assert_eq!(
                fs::read(&side).unwrap(),
                &orig[off as usize..(off + bytes) as usize],
                "{ctx}: side file"
            );
            assert_eq!(
                fs::metadata(&seg).unwrap().len(),
                off,
                "{ctx}: segment not cut at the torn offset"
            );
        }
        None => {
            assert!(
                torn_files(w.path()).is_empty(),
                "{ctx}: side file without a torn tail"
            );
            assert_eq!(
                fs::metadata(&seg).unwrap().len(),
                t as u64,
                "{ctx}: segment changed without a torn tail"
            );
        }
    }
    assert_records(&log, want, &ctx);
    log.close().unwrap();

    // Reopen: nothing more to cut; appending continues right after the prefix.
    let log = Log::open(w.path(), small()).unwrap_or_else(|e| panic!("{ctx}: reopen: {e}"));
    assert_eq!(log.recovery_report().torn_tail, None, "{ctx}: reopen");
    assert_records(&log, want, &ctx);
    let next = Lsn(exp.last_lsn + 1);
    assert_eq!(
        log.append(RecordKind(9), b"after the cut").unwrap(),
        next,
        "{ctx}"
    );
    log.close().unwrap();
    let ro =
        Log::open_read_only(w.path(), small()).unwrap_or_else(|e| panic!("{ctx}: last open: {e}"));
    assert_eq!(ro.recovery_report().torn_tail, None, "{ctx}: last open");
    let mut want = want.to_vec();
    want.push((next, RecordKind(9), b"after the cut".to_vec()));
    assert_records(&ro, &want, &ctx);
    exp.torn.is_some()
}

#[test]
fn cut_at_every_offset_of_the_active_tail() {
    let base = tempfile::tempdir().unwrap();
    let m = build(base.path());
    let segs = seg_files(base.path());
    assert!(segs.len() >= 4, "several segments: {}", segs.len());
    let last = segs.last().unwrap();
    let name = last.file_name().unwrap().to_str().unwrap().to_string();
    let orig = fs::read(last).unwrap();
    let (frames, footer) = layout(&orig);
    assert!(footer.is_none(), "the last segment is active");
    let tail_records: usize = TAIL.iter().map(|b| b.len()).sum();
    assert!(
        frames.len() >= tail_records,
        "the tail is in the last segment"
    );
    let tail = &frames[frames.len() - tail_records..];
    let tail_lsns: Vec<u64> = tail.iter().map(|f| f.lsn).collect();
    assert_eq!(
        tail_lsns,
        ((m.recs.len() - tail_records) as u64 + 1..=m.recs.len() as u64).collect::<Vec<_>>()
    );
    let data_end = tail.last().unwrap().end;
    assert!(
        orig[data_end..].iter().all(|&b| b == 0) && orig.len() >= data_end + 40,
        "pre-written zeros"
    );

    // From the start of the tail to 40 bytes into the pre-written zeros.
    let (mut offsets, mut torn) = (0, 0);
    for t in tail[0].start..=data_end + 40 {
        offsets += 1;
        torn += check_cut(base.path(), &m, &name, &orig, t) as usize;
    }
    eprintln!("active tail: {offsets} cut offsets checked, {torn} with a torn tail");
    assert!(torn > 0 && torn < offsets);
}

#[test]
fn cut_at_every_offset_of_a_sealed_last_segment_and_its_footer() {
    let base = tempfile::tempdir().unwrap();
    let mut m = build(base.path());
    // A writer that sealed a segment and died before creating the next leaves the sealed
    // segment last: remove the active one to get there.
    let segs = seg_files(base.path());
    fs::remove_file(segs.last().unwrap()).unwrap();
    let last = &segs[segs.len() - 2];
    let name = last.file_name().unwrap().to_str().unwrap().to_string();
    let orig = fs::read(last).unwrap();
    let (frames, footer) = layout(&orig);
    let footer = footer.expect("sealed");
    assert_eq!(
        footer + FOOTER_BYTES,
        orig.len(),
        "a sealed segment ends with its footer"
    );
    let last_lsn = frames.last().unwrap().lsn;
    m.recs.truncate(last_lsn as usize);

    // The last eight frames (with a batch among them) and the whole footer.
    let tail = &frames[frames.len() - 8..];
    assert!(
        tail.iter().any(|f| m.batch_last[&f.lsn] != f.lsn),
        "a multi-record batch in the tail"
    );
    let (mut offsets, mut torn) = (0, 0);
    for t in tail[0].start..=orig.len() {
        offsets += 1;
        torn += check_cut(base.path(), &m, &name, &orig, t) as usize;
    }
    eprintln!("sealed last segment: {offsets} cut offsets checked, {torn} with a torn tail");
    assert!(torn > FOOTER_BYTES);
}

#[test]
fn bytes_after_the_footer_of_a_sealed_last_segment() {
    let base = tempfile::tempdir().unwrap();
    let mut m = build(base.path());
    let segs = seg_files(base.path());
    fs::remove_file(segs.last().unwrap()).unwrap();
    let last = &segs[segs.len() - 2];
    let orig = fs::read(last).unwrap();
    let (frames, _) = layout(&orig);
    m.recs.truncate(frames.last().unwrap().lsn as usize);

    // Zeros after the footer (a crash before the writer truncated its pre-written space)
    // are dropped; the writer then starts the next segment.
    for extra in [1u64, 8, 100, 5000] {
        let w = tempfile::tempdir().unwrap();
        copy_dir(base.path(), w.path());
        let seg = w.path().join(last.file_name().unwrap());
        OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(orig.len() as u64 + extra)
            .unwrap();
        let log = Log::open(w.path(), small()).unwrap();
        assert_eq!(log.recovery_report().torn_tail, None);
        assert_records(&log, &m.recs, "zeros after footer");
        assert_eq!(
            fs::read(&seg).unwrap(),
            orig,
            "zeros after the footer are dropped"
        );
        assert_eq!(
            log.append(RecordKind(1), b"x").unwrap(),
            Lsn(m.recs.len() as u64 + 1)
        );
        assert_eq!(seg_files(w.path()).len(), segs.len());
    }
    // Anything else after a footer is damage, never a torn tail.
    for (at, byte) in [(0usize, 1u8), (7, 0x80), (300, 0xff)] {
        let w = tempfile::tempdir().unwrap();
        copy_dir(base.path(), w.path());
        let seg = w.path().join(last.file_name().unwrap());
        let f = OpenOptions::new().write(true).open(&seg).unwrap();
        f.write_all_at(&[byte], (orig.len() + at) as u64).unwrap();
        for r in [
            Log::open(w.path(), small()),
            Log::open_read_only(w.path(), small()),
        ] {
            match r {
                Err(Error::Corruption(c)) => {
                    assert_eq!(
                        (&c.file, c.offset, &c.kind),
                        (&seg, orig.len() as u64, &CorruptionKind::TrailingBytes)
                    )
                }
                other => panic!("byte after footer (+{at}): {other:?}"),
            }
        }
        assert!(torn_files(w.path()).is_empty());
    }
}

#[test]
fn garbage_after_the_last_record_is_a_torn_tail() {
    let base = tempfile::tempdir().unwrap();
    let m = build(base.path());
    let last = seg_files(base.path()).pop().unwrap();
    let name = last.file_name().unwrap().to_str().unwrap().to_string();
    let orig = fs::read(&last).unwrap();
    let (frames, _) = layout(&orig);
    let end = frames.last().unwrap().end;
    let mut rng = SmallRng::seed_from_u64(0x7a11);
    let mut cases = 0;
    // Garbage right after the last record, after a gap of zeros, and past the file's end.
    for gap in [0usize, 5, 8, 24, 200, orig.len() - end] {
        for len in [1usize, 2, 7, 8, 23, 24, 25, 64, 300] {
            let mut garbage: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            // The cut runs to the last non-zero byte: make that the garbage's last byte.
            *garbage.last_mut().unwrap() |= 0x40;
            let ctx = format!("{len} bytes of garbage {gap} bytes after the last record");
            let w = tempfile::tempdir().unwrap();
            copy_dir(base.path(), w.path());
            let seg = w.path().join(&name);
            OpenOptions::new()
                .write(true)
                .open(&seg)
                .unwrap()
                .write_all_at(&garbage, (end + gap) as u64)
                .unwrap();
            let expected_bytes = (gap + len) as u64;

            // Strict refuses it, as reader and as writer, and changes nothing.
            for r in [
                Log::open_read_only(w.path(), strict()),
                Log::open(w.path(), strict()),
            ] {
                match r {
                    Err(Error::Corruption(c)) => {
                        assert_eq!((&c.file, c.offset), (&seg, end as u64), "{ctx}");
                        assert_eq!(
                            c.kind,
                            CorruptionKind::TornTail {
                                bytes: expected_bytes
                            },
                            "{ctx}"
                        );
                    }
                    other => panic!("{ctx}: strict open gave {other:?}"),
                }
            }
            assert!(
                torn_files(w.path()).is_empty(),
                "{ctx}: strict open cut the tail"
            );

            let log = Log::open(w.path(), small()).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            let x = log
                .recovery_report()
                .torn_tail
                .clone()
                .unwrap_or_else(|| panic!("{ctx}: no torn tail"));
            assert_eq!((x.offset, x.bytes), (end as u64, expected_bytes), "{ctx}");
            let side = w.path().join(format!("{name}.torn-{end:016x}"));
            assert_eq!(x.saved_to.as_ref(), Some(&side), "{ctx}");
            let mut saved = vec![0u8; gap];
            saved.extend_from_slice(&garbage);
            assert_eq!(
                fs::read(&side).unwrap(),
                saved,
                "{ctx}: the side file holds exactly the cut bytes"
            );
            assert_records(&log, &m.recs, &ctx);
            assert_eq!(
                log.append(RecordKind(3), b"next").unwrap(),
                Lsn(m.recs.len() as u64 + 1),
                "{ctx}"
            );
            log.close().unwrap();

            let log = Log::open(w.path(), small()).unwrap();
            assert_eq!(log.recovery_report().torn_tail, None, "{ctx}: reopen");
            assert_eq!(log.durable_lsn(), Lsn(m.recs.len() as u64 + 1), "{ctx}");
            assert_eq!(
                torn_files(w.path()),
                vec![format!("{name}.torn-{end:016x}")],
                "{ctx}"
            );
            cases += 1;
        }
    }
    eprintln!("{cases} garbage cases checked");
}
