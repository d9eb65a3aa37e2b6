//! Writes the seed corpora: `cargo run --release --example gen_seeds -- <dir>` (default
//! `seeds`, relative to the fuzz directory) makes `<dir>/<target>/<name>` files of valid
//! bytes, each with the mode byte its target reads first. See README.md.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mdslog::checkpoint;
use mdslog::log::format::{self, SEGMENT_HEADER_BYTES};
use mdslog::log::fs::SimStorage;
use mdslog::log::{Log, Lsn, SegmentId};
use mdslog::state::State;
use mdslog::sync::{sync, BundleOut, SyncMode};
use mdslog::{Store, StoreOptions};
use mdslog_fuzz::*;

fn put(dir: &Path, target: &str, name: &str, mode: &[u8], bytes: &[u8]) {
    let d = dir.join(target);
    std::fs::create_dir_all(&d).unwrap();
    let mut v = mode.to_vec();
    v.extend_from_slice(bytes);
    std::fs::write(d.join(name), v).unwrap();
}

/// The frames of a segment's bytes, and its footer if any: (offset, length).
fn slots(b: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut pos = SEGMENT_HEADER_BYTES;
    while pos + 24 <= b.len() {
        let len = u32::from_le_bytes(b[pos..pos + 4].try_into().unwrap());
        if len == u32::MAX {
            out.push((pos, format::FOOTER_BYTES));
            break;
        }
        if b[pos..pos + 24].iter().all(|&x| x == 0) {
            break;
        }
        let n = format::frame_bytes(len as usize);
        out.push((pos, n));
        pos += n;
    }
    out
}

fn trim_zeros(b: &[u8]) -> &[u8] {
    let end = b.iter().rposition(|&x| x != 0).map_or(0, |i| i + 1);
    &b[..format::align_up(end).min(b.len())]
}

fn main() {
    let dir: PathBuf = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "seeds".into())
        .into();

    // ---- event_decoder: one envelope of every kind, and every conflict variant.
    for e in sample_events() {
        let k = e.kind().0;
        put(
            &dir,
            "event_decoder",
            &format!("kind-{k:02}"),
            &[k as u8],
            &envelope(e).encode().unwrap(),
        );
    }
    for (i, c) in sample_conflicts().into_iter().enumerate() {
        let e = mdslog::event::Event::SyncConflict {
            peer: mdslog::StoreId(uuid::Uuid::from_bytes([3; 16])),
            conflict: Box::new(c),
            adopted: i % 2 == 0,
        };
        put(
            &dir,
            "event_decoder",
            &format!("conflict-{i}"),
            &[20],
            &envelope(e).encode().unwrap(),
        );
    }

    // ---- Hand-made segments.
    let recs = sample_records();
    let (active, _) = build_segment(1, 1, format::DIGEST_NONE, &recs, false);
    let (sealed, _) = build_segment(1, 1, format::DIGEST_NONE, &recs[..6], true);
    let (_, d1, last1) = fixed_first_segment();
    let (second, _) = build_segment(2, last1 + 1, *d1, &recs[4..9], true);
    let (second_active, _) = build_segment(2, last1 + 1, *d1, &recs[9..12], false);
    let mut torn = active.clone();
    torn.truncate(torn.len() - 5);
    let mut prewritten = sealed.clone();
    prewritten.extend_from_slice(&[0u8; 64]);
    put(&dir, "segment_scanner", "active", &[1], &active);
    put(
        &dir,
        "segment_scanner",
        "active-writable-strict",
        &[7],
        &active,
    );
    put(&dir, "segment_scanner", "sealed", &[1], &sealed);
    put(
        &dir,
        "segment_scanner",
        "sealed-zeros-writable",
        &[3],
        &prewritten,
    );
    put(&dir, "segment_scanner", "torn-writable", &[3], &torn);
    put(&dir, "segment_scanner", "torn-strict", &[5], &torn);
    put(&dir, "segment_scanner", "second-sealed", &[9], &second);
    put(
        &dir,
        "segment_scanner",
        "second-active-writable",
        &[11],
        &second_active,
    );
    put(
        &dir,
        "segment_scanner",
        "header-only",
        &[1],
        &active[..SEGMENT_HEADER_BYTES],
    );

    // ---- record_decoder: every slot of the hand-made segments, and a header.
    for (name, seg) in [("active", &active), ("sealed", &sealed)] {
        for (i, (at, n)) in slots(seg).into_iter().enumerate() {
            let salt = 1u8;
            put(
                &dir,
                "record_decoder",
                &format!("{name}-{i:02}"),
                &[3, salt],
                &seg[at..at + n],
            );
        }
    }
    put(
        &dir,
        "record_decoder",
        "header",
        &[4, 1],
        &active[..SEGMENT_HEADER_BYTES + 24],
    );
    put(
        &dir,
        "record_decoder",
        "name",
        &[0, 0],
        format::segment_file_name(SegmentId(10), Lsn(0xabc)).as_bytes(),
    );

    // ---- A real store: its segments, records, checkpoint and an exported bundle.
    let sim = sample_store();
    let mut names = sim_names(&sim);
    names.sort();
    for name in names.iter().filter(|n| n.ends_with(".seg")) {
        let b = sim.file_bytes(name).unwrap();
        let b = trim_zeros(&b);
        let (id, _) = format::parse_segment_file_name(name).unwrap();
        if id.0 <= 2 {
            put(&dir, "segment_scanner", &format!("store-{name}"), &[1], b);
        }
        for (i, (at, n)) in slots(b).into_iter().enumerate().take(6) {
            put(
                &dir,
                "record_decoder",
                &format!("store-{}-{i}", id.0),
                &[3, (id.0 % 4) as u8],
                &b[at..at + n],
            );
        }
    }
    {
        let log = Log::open_read_only_with(Arc::new(sim.clone()), small_log_options()).unwrap();
        for r in log.iter_from(Lsn(1)) {
            let r = r.unwrap();
            put(
                &dir,
                "event_decoder",
                &format!("store-{:03}", r.lsn.0),
                &[r.kind.0 as u8],
                &r.payload,
            );
        }
    }
    for name in names.iter().filter(|n| n.ends_with(".ckpt")) {
        let b = sim.file_bytes(name).unwrap();
        // The seed must load (as the target loads it: the log's record matches).
        let last: [u8; 32] = b[32..64].try_into().unwrap();
        let (st, w) =
            checkpoint::load_newest(&sim, Lsn(u64::MAX), &|_| Ok(Some(last)), None).unwrap();
        assert!(st.is_some(), "{w:?}");
        put(
            &dir,
            "checkpoint_loader",
            &format!("store-{name}"),
            &[1],
            &b,
        );
    }
    {
        let empty = SimStorage::new();
        checkpoint::write(&empty, &State::new(), [0; 32]).unwrap();
        let n = checkpoint::file_name(Lsn(0));
        put(
            &dir,
            "checkpoint_loader",
            "empty",
            &[1],
            &empty.file_bytes(&n).unwrap(),
        );
    }
    {
        let store = Store::open_with(Arc::new(sim.clone()), StoreOptions::default()).unwrap();
        let vs = store.canonical_dump().unwrap().volume_sets[0].id;
        let tmp = std::env::temp_dir().join(format!("mdslog-seed-{}.mdsb", std::process::id()));
        sync(
            &store,
            &BundleOut::new(&tmp, Lsn::ZERO),
            vs,
            SyncMode::PushOnly,
        )
        .unwrap();
        let b = std::fs::read(&tmp).unwrap();
        std::fs::remove_file(&tmp).unwrap();
        put(&dir, "bundle_importer", "store-export", &[1], &b);
        put(&dir, "bundle_importer", "store-export-receiver", &[3], &b);
        store.close().unwrap();
    }
    let b = sample_bundle();
    put(&dir, "bundle_importer", "hand-made", &[1], &b);
    put(&dir, "bundle_importer", "hand-made-receiver", &[3], &b);
    println!("seeds written to {}", dir.display());
}

fn sim_names(sim: &SimStorage) -> Vec<String> {
    use mdslog::log::fs::Storage;
    sim.list().unwrap()
}
